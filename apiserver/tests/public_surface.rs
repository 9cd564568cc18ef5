//! What the apiserver tells the world without being asked properly (issue 9, hardening):
//! `/readyz` says only ok/failed and never the store's error text; request metrics keep a bounded
//! set of label values whatever paths clients make up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TempDir, call, state};

async fn text(state: &cellfed_apiserver::AppState, uri: &str) -> (u16, String) {
    let (code, v) = call(state, "GET", uri, "application/json", "").await;
    let body = match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    (code, body)
}

#[tokio::test]
async fn readyz_withholds_the_store_error() {
    let dir = TempDir::new("readyz-withheld");
    let st = state(&dir).await;
    assert_eq!(text(&st, "/readyz").await, (200, "ok".to_string()));
    assert_eq!(
        text(&st, "/readyz?verbose").await,
        (200, "[+]store ok\nreadyz check passed\n".to_string())
    );

    // the store fails: its error (here a table name; elsewhere a host, a user) stays in the log
    sqlx::query("ALTER TABLE cellfed_meta RENAME TO cellfed_meta_gone")
        .execute(st.store.pool())
        .await
        .unwrap();
    let err = st.store.current_revision().await.unwrap_err().to_string();
    assert!(err.contains("cellfed_meta"), "{err}");
    let (code, body) = text(&st, "/readyz").await;
    assert_eq!((code, body.as_str()), (500, "readyz check failed\n"));
    let (code, body) = text(&st, "/readyz?verbose").await;
    assert_eq!(code, 500);
    assert_eq!(
        body,
        "[-]store failed: reason withheld\nreadyz check failed\n"
    );
    assert!(!body.contains(&err), "{body} leaks {err}");
    // liveness does not depend on the store
    assert_eq!(text(&st, "/healthz").await, (200, "ok".to_string()));
}

/// The `apiserver_request_total` series on `/metrics`.
async fn series(st: &cellfed_apiserver::AppState) -> Vec<String> {
    let (code, body) = text(st, "/metrics").await;
    assert_eq!(code, 200);
    body.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .map(|l| l.rsplit_once(' ').unwrap().0.to_string())
        .collect()
}

#[tokio::test]
async fn made_up_paths_do_not_create_metric_series() {
    let dir = TempDir::new("metrics-bounded");
    let st = state(&dir).await;
    let (code, _) = text(&st, "/api/v1/namespaces/default/configmaps").await;
    assert_eq!(code, 200);
    let paths = |i: usize| {
        [
            format!("/apis/x{i}.example.com/v1/r{i}"),
            format!("/api/v1/namespaces/default/thing{i}"),
            format!("/api/v1/namespaces/default/configmaps/cm/sub{i}"),
            format!("/apis/apps/z{i}/deployments"),
        ]
    };
    // a first round: the "other" series appear once
    for p in paths(0) {
        assert_eq!(text(&st, &p).await.0, 404, "{p}");
    }
    let before = series(&st).await;
    assert!(
        before.iter().any(|s| s.contains("resource=\"configmaps\"")),
        "{before:?}"
    );
    assert!(
        before.iter().any(|s| s.contains("resource=\"other\"")),
        "{before:?}"
    );
    for i in 1..=250 {
        for p in paths(i) {
            text(&st, &p).await;
        }
    }
    let after = series(&st).await;
    assert_eq!(before, after, "1,000 made-up paths changed the series");
    // and they were counted, as "other"
    let (_, body) = text(&st, "/metrics").await;
    let other_404: u64 = body
        .lines()
        .filter(|l| l.contains("resource=\"other\"") && l.contains("code=\"404\""))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    assert_eq!(other_404, 1004, "{body}");
}
