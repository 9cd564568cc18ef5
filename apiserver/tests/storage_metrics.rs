//! `/metrics` tells how the store's single writer is doing: commits, the writes they carried
//! (their ratio is the mean group-commit batch) and the time it spent in transactions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cellfed_apiserver::AppState;
use common::*;
use serde_json::json;

async fn storage_counters(st: &AppState) -> (f64, f64, f64) {
    let (code, text) = call(st, "GET", "/metrics", "", "").await;
    assert_eq!(code, 200);
    let text = text.as_str().unwrap().to_owned();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
    };
    (
        value("apiserver_storage_commits_total"),
        value("apiserver_storage_committed_writes_total"),
        value("apiserver_storage_writer_busy_seconds_total"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_stores_commits_writes_and_busy_time() {
    let dir = TempDir::new("storage-metrics");
    let st = state(&dir).await;
    let (commits0, writes0, busy0) = storage_counters(&st).await;
    let creates = (0..20).map(|i| {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm{i}"), "namespace": "default"}});
        let st = st.clone();
        async move { json(&st, "POST", "/api/v1/namespaces/default/configmaps", &body).await }
    });
    for (code, body) in futures::future::join_all(creates).await {
        assert_eq!(code, 201, "{body}");
    }
    // A refused write (AlreadyExists) is no committed write.
    let again = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cm0", "namespace": "default"}});
    let (code, _) = json(&st, "POST", "/api/v1/namespaces/default/configmaps", &again).await;
    assert_eq!(code, 409);

    let (commits, writes, busy) = storage_counters(&st).await;
    assert_eq!(writes - writes0, 20.0);
    assert!(
        (1.0..=20.0).contains(&(commits - commits0)),
        "{} commits for 20 writes",
        commits - commits0
    );
    assert!(
        busy > busy0,
        "writer busy time did not grow: {busy0} → {busy}"
    );
}
