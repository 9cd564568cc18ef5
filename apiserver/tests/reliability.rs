//! Bounded history and memory, and input that cannot break the store: compaction in the running
//! server, watchers that do not read, objects too deep or too large, corrupt rows, CRDs that
//! shadow built-ins, webhooks that never answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::body::Body;
use cellfed_apiserver::AppState;
use common::*;
use futures::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}})
}

/// Rows of `key` in the log table.
async fn rows_of(st: &AppState, key: &str) -> i64 {
    let sql = format!(
        "SELECT COUNT(*) FROM {} WHERE name = ?",
        st.store.log_table()
    );
    sqlx::query_scalar::<_, i64>(&sql)
        .bind(key)
        .fetch_one(st.store.pool())
        .await
        .unwrap()
}

/// Opens a watch through the router; the body is returned unread.
async fn open_watch(st: &AppState, uri: &str) -> axum::body::BodyDataStream {
    let req = http::Request::get(uri).body(Body::empty()).unwrap();
    let resp = within(
        10,
        "the watch to open",
        cellfed_apiserver::router(st.clone()).oneshot(req),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().into_data_stream()
}

/// Reads watch events until `stop` says so or the stream ends; the whole read is bounded.
async fn read_events(
    body: &mut axum::body::BodyDataStream,
    secs: u64,
    stop: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    within(secs, "watch events", async {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            buf.extend_from_slice(&chunk.unwrap());
            while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                let event: Value = serde_json::from_slice(&line).unwrap();
                let done = stop(&event);
                out.push(event);
                if done {
                    return out;
                }
            }
        }
        out
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_interval_forgets_history_and_expires_old_watches() {
    let srv = start_with("compact", |cfg| {
        cfg.anonymous = true;
        cfg.compaction_interval = Duration::from_secs(1);
    })
    .await;
    let st = srv.state.clone();

    // A Secret created and deleted: its history (values included) must go with compaction.
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "rotated", "namespace": "default"}, "stringData": {"password": "old"}});
    let (code, created) = json(&st, "POST", "/api/v1/namespaces/default/secrets", &secret).await;
    assert_eq!(code, 201, "{created}");
    let secret_rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _) = call(
        &st,
        "DELETE",
        "/api/v1/namespaces/default/secrets/rotated",
        "",
        "",
    )
    .await;
    assert_eq!(code, 200);
    let secret_key = "/registry/core/secrets/default/rotated";
    assert!(rows_of(&st, secret_key).await > 0);

    // 200 updates in four rounds; after each, compaction catches up and the key keeps one row.
    let base = "/api/v1/namespaces/default/configmaps";
    let (code, _) = json(&st, "POST", base, &cm("counter")).await;
    assert_eq!(code, 201);
    let key = "/registry/core/configmaps/default/counter";
    for round in 0..4 {
        let mut last = 0_i64;
        for i in 0..50 {
            let patch = json!({"data": {"n": format!("{round}-{i}")}});
            let (code, out) = call(
                &st,
                "PATCH",
                &format!("{base}/counter"),
                "application/merge-patch+json",
                patch.to_string(),
            )
            .await;
            assert_eq!(code, 200, "{out}");
            last = out["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
        }
        let st2 = st.clone();
        eventually(30, "compaction to reach the last update", move || {
            let st = st2.clone();
            async move { (st.store.compacted_revision().await.ok()? >= last).then_some(()) }
        })
        .await;
        // the compacted revision is recorded first, then superseded rows go in batches
        let st2 = st.clone();
        eventually(
            30,
            &format!("round {round}: one row left of the key"),
            move || {
                let st = st2.clone();
                async move { (rows_of(&st, key).await == 1).then_some(()) }
            },
        )
        .await;
    }
    let st2 = st.clone();
    eventually(30, "the deleted secret's history to go", move || {
        let st = st2.clone();
        async move { (rows_of(&st, secret_key).await == 0).then_some(()) }
    })
    .await;

    // Old reads answer 410 Expired; a watch from revision 1 gets an in-stream 410.
    let (code, status) = call(
        &st,
        "GET",
        &format!(
            "/api/v1/namespaces/default/secrets?resourceVersion={secret_rv}&resourceVersionMatch=Exact"
        ),
        "",
        "",
    )
    .await;
    assert_eq!((code, status["reason"].as_str()), (410, Some("Expired")));
    let mut body = open_watch(&st, &format!("{base}?watch=1&resourceVersion=1")).await;
    let events = read_events(&mut body, 10, |_| true).await;
    assert_eq!(events[0]["type"], "ERROR", "{events:?}");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");

    // The current state is intact.
    let (code, now) = call(&st, "GET", &format!("{base}/counter"), "", "").await;
    assert_eq!((code, now["data"]["n"].as_str()), (200, Some("3-49")));
}

#[tokio::test]
async fn compaction_rounds_take_turns_between_replicas() {
    use cellfed_apiserver::storage::compaction::{Outcome, Round, round};
    let dir = TempDir::new("compact-turns");
    let a = store(&dir).await;
    let b = store(&dir).await;
    // First round: A takes the key and has nothing to compact yet; B learns of it.
    let (ra, outcome) = round(&a, Round::default()).await.unwrap();
    assert_eq!(outcome, Outcome::Compacted(0));
    let (rb, outcome) = round(&b, Round::default()).await.unwrap();
    assert_eq!(outcome, Outcome::Skipped);
    for i in 0..10 {
        a.create(&format!("/registry/x/{i}"), b"{}".to_vec(), 0)
            .await
            .unwrap();
    }
    // Second round: B, holding the key's current version, compacts to what it saw a round ago;
    // A, a round behind, skips.
    let (_, outcome) = round(&b, rb).await.unwrap();
    assert_eq!(outcome, Outcome::Compacted(rb.revision));
    assert_eq!(a.compacted_revision().await.unwrap(), rb.revision);
    let (_, outcome) = round(&a, ra).await.unwrap();
    assert_eq!(outcome, Outcome::Skipped);
    // What was written after B's first round is all still readable.
    let newest = a.current_revision().await.unwrap();
    assert!(a.get("/registry/x/0", Some(rb.revision)).await.is_ok());
    assert_eq!(
        a.list("/registry/x/", Default::default())
            .await
            .unwrap()
            .items
            .len(),
        10
    );
    assert!(newest > rb.revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_that_never_reads_is_ended_and_memory_stays_bounded() {
    let dir = TempDir::new("slow-watch");
    let st = state(&dir).await;
    let base = "/api/v1/namespaces/default/configmaps";
    let mut big = cm("big");
    big["data"] = json!({"blob": "x".repeat(1_000_000), "n": "0"});
    let (code, created) = json(&st, "POST", base, &big).await;
    assert_eq!(code, 201);
    let rv = created["metadata"]["resourceVersion"].as_str().unwrap();

    // The watcher: its body is never polled while the object changes 200 times (~1 MB each).
    let mut body = open_watch(&st, &format!("{base}?watch=1&resourceVersion={rv}")).await;
    // Stated bound: one watch's share plus the small ERROR line that ends it; the store's own
    // buffer for the watch at most its byte budget plus one event.
    let bound = st.watches.per_watch() + 4096;
    let store_bound = cellfed_store::Config::new("").watch_buffer_bytes + 2_100_000;
    for i in 1..=200 {
        let (code, out) = call(
            &st,
            "PATCH",
            &format!("{base}/big"),
            "application/merge-patch+json",
            json!({"data": {"n": i.to_string()}}).to_string(),
        )
        .await;
        assert_eq!(code, 200, "{out}");
        assert!(st.watches.used() <= bound, "{} bytes", st.watches.used());
        let in_store = st.store.watch_buffered_bytes();
        assert!(in_store <= store_bound, "{in_store} bytes in the store");
    }
    let st2 = st.clone();
    eventually(30, "the lagging watch to be ended", move || {
        let st = st2.clone();
        async move { (st.watches.terminated("configmaps") == 1).then_some(()) }
    })
    .await;
    assert!(
        st.watches.peak() <= bound,
        "peak {} bytes",
        st.watches.peak()
    );
    assert!(st.watches.peak() >= st.watches.per_watch() / 2);
    let (_, metrics) = call(&st, "GET", "/metrics", "", "").await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("apiserver_terminated_watchers_total{resource=\"configmaps\"} 1"),
        "{metrics}"
    );

    // The client reads at last: what fitted, then a 410 Expired ERROR, then the end.
    let events = read_events(&mut body, 30, |e| e["type"] == "ERROR").await;
    let (last, modified) = events.split_last().unwrap();
    assert_eq!(last["type"], "ERROR", "{}", last);
    assert_eq!(last["object"]["code"], 410);
    assert_eq!(last["object"]["reason"], "Expired");
    assert!(
        !modified.is_empty() && modified.len() < 200,
        "{}",
        modified.len()
    );
    assert!(modified.iter().all(|e| e["type"] == "MODIFIED"));
    assert!(within(10, "the stream to end", body.next()).await.is_none());
    drop(body);
    assert_eq!(st.watches.used(), 0);

    // The re-list a client does then sees the newest state, and a watch from it follows on.
    let (code, listed) = call(&st, "GET", base, "", "").await;
    assert_eq!(code, 200);
    assert_eq!(listed["items"][0]["data"]["n"], "200");
    let rv = listed["metadata"]["resourceVersion"].as_str().unwrap();
    let mut body = open_watch(&st, &format!("{base}?watch=1&resourceVersion={rv}")).await;
    let (code, _) = call(
        &st,
        "PATCH",
        &format!("{base}/big"),
        "application/merge-patch+json",
        json!({"data": {"n": "after"}}).to_string(),
    )
    .await;
    assert_eq!(code, 200);
    let events = read_events(&mut body, 30, |_| true).await;
    assert_eq!(events[0]["type"], "MODIFIED");
    assert_eq!(events[0]["object"]["data"]["n"], "after");
}

fn nested(levels: usize) -> Value {
    let mut v = json!("bottom");
    for _ in 0..levels {
        v = json!({ "a": v });
    }
    v
}

/// The state of a running server without authentication, for router calls next to kubectl.
fn open_state(srv: &Running) -> AppState {
    let mut st = srv.state.clone();
    st.security = None;
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_bomb_is_refused_and_corrupt_rows_do_not_break_lists() {
    let srv = start("corrupt").await;
    let st = open_state(&srv);
    for name in ["deep", "garbage", "bomb", "fine"] {
        srv.kubectl_ok(&["create", "configmap", name, "--from-literal=k=v"], None)
            .await;
    }

    // Two JSON patches of 100 levels each: the first fits, the second would nest ~200 deep.
    let first = json!([{"op": "add", "path": "/deep", "value": nested(100)}]);
    srv.kubectl_ok(
        &[
            "patch",
            "configmap",
            "deep",
            "--type=json",
            "-p",
            &first.to_string(),
        ],
        None,
    )
    .await;
    let inner = format!("/deep{}/more", "/a".repeat(99));
    let second = json!([{"op": "add", "path": inner, "value": nested(100)}]);
    let (ok, _, err) = srv
        .kubectl(
            &[
                "patch",
                "configmap",
                "deep",
                "--type=json",
                "-p",
                &second.to_string(),
            ],
            None,
        )
        .await;
    assert!(!ok);
    assert!(err.contains("is invalid"), "{err}");
    assert!(err.contains("nesting depth limit"), "{err}");
    let (code, status) = call(
        &st,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/deep",
        "application/json-patch+json",
        second.to_string(),
    )
    .await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["details"]["causes"][0]["field"], "deep");
    // A merge patch and a server-side apply are checked the same way.
    let (code, _) = call(
        &st,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/fine",
        "application/merge-patch+json",
        json!({"deep": nested(115)}).to_string(),
    )
    .await;
    assert_eq!(code, 422);
    srv.kubectl_ok(&["get", "configmaps", "-A"], None).await;

    // Rows corrupted in the table itself: garbage bytes, and a value nested past what the
    // parser accepts (what the nesting bomb stored before objects were checked).
    let mut too_deep = String::new();
    for _ in 0..200 {
        too_deep.push_str("{\"a\":");
    }
    too_deep.push('1');
    too_deep.push_str(&"}".repeat(200));
    for (name, value) in [
        ("garbage", b"\x00not json{".to_vec()),
        ("bomb", too_deep.into_bytes()),
    ] {
        let sql = format!(
            "UPDATE {} SET value = ? WHERE name = ?",
            st.store.log_table()
        );
        let done = sqlx::query(&sql)
            .bind(value)
            .bind(format!("/registry/core/configmaps/default/{name}"))
            .execute(st.store.pool())
            .await
            .unwrap();
        assert!(done.rows_affected() >= 1);
    }

    // LIST keeps working: kubectl in every namespace, and plain HTTP with a warning per row.
    let (ok, out, err) = srv
        .kubectl(&["get", "configmaps", "-A", "-o", "name"], None)
        .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("configmap/deep") && out.contains("configmap/fine"),
        "{out}"
    );
    assert!(!out.contains("garbage") && !out.contains("bomb"), "{out}");
    assert!(
        err.contains("cannot be decoded"),
        "kubectl shows the warning: {err}"
    );
    let req = http::Request::get("/api/v1/configmaps")
        .body(Body::empty())
        .unwrap();
    let resp = cellfed_apiserver::router(st.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let warnings: Vec<String> = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("default/garbage")));
    assert!(st.decode_errors.get("configmaps") >= 2);
    let (_, metrics) = call(&st, "GET", "/metrics", "", "").await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("apiserver_storage_decode_errors_total{resource=\"configmaps\"}")
    );

    // GET says what is wrong; DELETE by name removes them.
    let (code, status) = call(
        &st,
        "GET",
        "/api/v1/namespaces/default/configmaps/bomb",
        "",
        "",
    )
    .await;
    assert_eq!(code, 500);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("can be deleted"),
        "{status}"
    );
    // A watch that meets one of them ends with an ERROR instead of skipping it silently.
    let (_, listed) = call(&st, "GET", "/api/v1/namespaces/default/configmaps", "", "").await;
    let rv = listed["metadata"]["resourceVersion"].as_str().unwrap();
    let mut body = open_watch(
        &st,
        &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}"),
    )
    .await;
    srv.kubectl_ok(&["delete", "configmap", "garbage", "bomb"], None)
        .await;
    let events = read_events(&mut body, 10, |e| e["type"] == "ERROR").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["object"]["code"], 500);
    assert!(
        events[0]["object"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be decoded")
    );
    assert!(within(10, "the watch to end", body.next()).await.is_none());
    for name in ["garbage", "bomb"] {
        let (code, _) = call(
            &st,
            "GET",
            &format!("/api/v1/namespaces/default/configmaps/{name}"),
            "",
            "",
        )
        .await;
        assert_eq!(code, 404);
    }
    let (ok, _, err) = srv.kubectl(&["get", "configmaps", "-A"], None).await;
    assert!(ok && !err.contains("cannot be decoded"), "{err}");
}

fn shadowing_crd(group: &str, plural: &str, kind: &str) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"plural": plural, "kind": kind},
            "versions": [{"name": "v9", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})
}

#[tokio::test]
async fn crds_that_would_shadow_built_in_resources_are_refused() {
    let dir = TempDir::new("shadow");
    let st = state(&dir).await;
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "leader", "namespace": "default"}, "spec": {"holderIdentity": "a"}});
    let leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
    let (code, _) = json(&st, "POST", leases, &lease).await;
    assert_eq!(code, 201);

    for (group, plural, kind, field) in [
        (
            "coordination.k8s.io",
            "leases",
            "Lease",
            "spec.names.plural",
        ),
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
            "spec.names.plural",
        ),
        (
            "coordination.k8s.io",
            "myleases",
            "Lease",
            "spec.names.kind",
        ),
    ] {
        let (code, status) = json(&st, "POST", crds, &shadowing_crd(group, plural, kind)).await;
        assert_eq!(code, 422, "{plural}.{group}: {status}");
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(status["details"]["causes"][0]["field"], field, "{status}");
        assert!(
            status["message"].as_str().unwrap().contains("built-in"),
            "{status}"
        );
    }
    let (code, _) = call(
        &st,
        "GET",
        "/apis/coordination.k8s.io/v9/namespaces/default/leases",
        "",
        "",
    )
    .await;
    assert_eq!(code, 404, "no v9 of leases is served");

    // One stored before such CRDs were refused is not served, and deleting it keeps the Leases.
    let key = format!(
        "{}leases.coordination.k8s.io",
        cellfed_apiserver::registry::crd::CRD_PREFIX
    );
    let old = shadowing_crd("coordination.k8s.io", "leases", "Lease");
    st.store
        .create(&key, serde_json::to_vec(&old).unwrap(), 0)
        .await
        .unwrap();
    cellfed_apiserver::registry::crd::reload(&st).await.unwrap();
    let (code, _) = call(
        &st,
        "GET",
        "/apis/coordination.k8s.io/v9/namespaces/default/leases",
        "",
        "",
    )
    .await;
    assert_eq!(code, 404);
    let (code, out) = call(
        &st,
        "DELETE",
        &format!("{crds}/leases.coordination.k8s.io"),
        "",
        "",
    )
    .await;
    assert_eq!(code, 200, "{out}");
    let (code, got) = call(&st, "GET", &format!("{leases}/leader"), "", "").await;
    assert_eq!(
        (code, got["spec"]["holderIdentity"].as_str()),
        (200, Some("a"))
    );
}

/// A webhook that accepts connections and never answers (not even a TLS handshake).
async fn never_answering_webhook() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    addr
}

/// A plain-HTTP webhook that answers every request with `len` bytes of body.
async fn flooding_webhook(len: usize) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0_u8; 64 * 1024];
                let _ = conn.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(&vec![b' '; len]).await;
            });
        }
    });
    addr
}

fn validating_hook(name: &str, url: &str, policy: &str) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{"name": format!("{name}.example.com"), "clientConfig": {"url": url},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"], "operations": ["CREATE"]}],
            "failurePolicy": policy, "timeoutSeconds": 1, "sideEffects": "None", "admissionReviewVersions": ["v1"]}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_webhook_that_never_answers_or_floods_fails_within_its_limits() {
    let dir = TempDir::new("hooks");
    let st = state(&dir).await;
    let hooks = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations";
    let cms = "/api/v1/namespaces/default/configmaps";
    let hang = never_answering_webhook().await;
    let url = format!("https://{hang}/validate");
    let (code, _) = json(&st, "POST", hooks, &validating_hook("hang", &url, "Fail")).await;
    assert_eq!(code, 201);

    // failurePolicy Fail: refused once timeoutSeconds (1 s) pass, saying why.
    let (code, status) = within(20, "the write to give up", json(&st, "POST", cms, &cm("a"))).await;
    assert_eq!(code, 500, "{status}");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains("failed calling webhook \"hang.example.com\""),
        "{message}"
    );
    assert!(message.contains("no response within 1s"), "{message}");
    assert!(message.contains(&url), "{message}");

    // failurePolicy Ignore: the same webhook lets the write pass.
    let (_, mut config) = call(&st, "GET", &format!("{hooks}/hang"), "", "").await;
    config["webhooks"][0]["failurePolicy"] = json!("Ignore");
    let (code, _) = json(&st, "PUT", &format!("{hooks}/hang"), &config).await;
    assert_eq!(code, 200);
    let (code, out) = within(20, "the write to pass", json(&st, "POST", cms, &cm("b"))).await;
    assert_eq!(code, 201, "{out}");
    let (code, _) = call(&st, "DELETE", &format!("{hooks}/hang"), "", "").await;
    assert_eq!(code, 200);

    // A response larger than the cap is refused without reading it all.
    let flood = flooding_webhook(8 * 1024 * 1024).await;
    let config = validating_hook("flood", &format!("http://{flood}/validate"), "Fail");
    let (code, _) = json(&st, "POST", hooks, &config).await;
    assert_eq!(code, 201);
    let (code, status) = within(20, "the write to give up", json(&st, "POST", cms, &cm("c"))).await;
    assert_eq!(code, 500, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("the response is larger than 3145728 bytes"),
        "{status}"
    );
    let (code, _) = call(&st, "GET", &format!("{cms}/c"), "", "").await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversion_webhook_that_never_answers_fails_reads_and_ends_watches() {
    let dir = TempDir::new("convert-hang");
    let mut st = state(&dir).await;
    st.conversion_timeout = Duration::from_secs(1);
    let hang = never_answering_webhook().await;
    let schema = json!({"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}});
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "conversion": {"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
                "clientConfig": {"url": format!("https://{hang}/convert")}}},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": schema},
                {"name": "v2", "served": true, "storage": false, "schema": schema}]}});
    let (code, out) = json(
        &st,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    )
    .await;
    assert_eq!(code, 201, "{out}");
    let v1 = "/apis/example.com/v1/namespaces/default/widgets";
    let v2 = "/apis/example.com/v2/namespaces/default/widgets";
    let widget = |name: &str| json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {"size": 1}});
    let (code, created) = json(&st, "POST", v1, &widget("w1")).await;
    assert_eq!(code, 201, "{created}");

    // A read that needs the webhook gives up after the configured time, saying why.
    let (code, status) = within(
        20,
        "the read to give up",
        call(&st, "GET", &format!("{v2}/w1"), "", ""),
    )
    .await;
    assert_eq!(code, 500, "{status}");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains("conversion webhook for widgets.example.com failed"),
        "{message}"
    );
    assert!(message.contains("no response within 1s"), "{message}");

    // A watch event that cannot be converted ends the watch with an ERROR, not a silent gap.
    let rv = created["metadata"]["resourceVersion"].as_str().unwrap();
    let mut body = open_watch(&st, &format!("{v2}?watch=1&resourceVersion={rv}")).await;
    let (code, _) = json(&st, "POST", v1, &widget("w2")).await;
    assert_eq!(code, 201);
    let events = read_events(&mut body, 20, |e| e["type"] == "ERROR").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["object"]["code"], 500);
    assert!(
        events[0]["object"]["message"]
            .as_str()
            .unwrap()
            .contains("no response within 1s")
    );
    assert!(within(10, "the watch to end", body.next()).await.is_none());
}

/// A plain-HTTP admission webhook that allows everything and counts the connections it
/// accepted; with `close_idle_after`, it closes each connection once it was idle that long.
async fn counting_webhook(
    close_idle_after: Option<Duration>,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        use http_body_util::BodyExt;
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let review: Value = serde_json::from_slice(&body).unwrap();
                        let answer = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                        "response": {"uid": review["request"]["uid"], "allowed": true}});
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(hyper::body::Bytes::from(answer.to_string())),
                        ))
                    },
                );
                let mut builder = hyper::server::conn::http1::Builder::new();
                if close_idle_after.is_some() {
                    builder.timer(hyper_util::rt::TokioTimer::new());
                    builder.header_read_timeout(close_idle_after);
                }
                let _ = builder
                    .serve_connection(hyper_util::rt::TokioIo::new(conn), svc)
                    .await;
            });
        }
    });
    (addr, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_webhook_connections_are_kept_alive_and_replaced_when_closed() {
    use std::sync::atomic::Ordering;
    let dir = TempDir::new("keepalive");
    let st = state(&dir).await;
    let hooks = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations";
    let cms = "/api/v1/namespaces/default/configmaps";

    // twenty admitted writes, one after another: one connection
    let (addr, accepted) = counting_webhook(None).await;
    let config = validating_hook("count", &format!("http://{addr}/validate"), "Fail");
    let (code, _) = json(&st, "POST", hooks, &config).await;
    assert_eq!(code, 201);
    for i in 0..20 {
        let (code, out) = json(&st, "POST", cms, &cm(&format!("k{i}"))).await;
        assert_eq!(code, 201, "{out}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "every call reused one connection"
    );
    assert_eq!(st.webhook_clients.idle(), 1);

    // a webhook that drops idle connections: every write still passes, on new connections
    let (code, _) = call(&st, "DELETE", &format!("{hooks}/count"), "", "").await;
    assert_eq!(code, 200);
    let (addr, accepted) = counting_webhook(Some(Duration::from_millis(100))).await;
    let config = validating_hook("closing", &format!("http://{addr}/validate"), "Fail");
    let (code, _) = json(&st, "POST", hooks, &config).await;
    assert_eq!(code, 201);
    for i in 0..5 {
        let (code, out) = json(&st, "POST", cms, &cm(&format!("c{i}"))).await;
        assert_eq!(code, 201, "{out}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        5,
        "each write after the webhook closed the idle connection dialled anew"
    );
}
