//! Deletion semantics and watch through the router: namespaces, owner references, watch
//! streams (initial state, selectors, bookmarks, 410), patch flavours.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::body::Body;
use common::{TempDir, call, eventually, json, state};
use futures::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;

fn cm(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}})
}

async fn gc_until(st: &cellfed_apiserver::AppState, what: &str, uri: &str, gone: bool) {
    eventually(10, what, || async {
        cellfed_apiserver::registry::gc::pass(st).await.unwrap();
        let (code, _) = call(st, "GET", uri, "", "").await;
        ((code == 404) == gone).then_some(())
    })
    .await;
}

#[tokio::test]
async fn namespace_deletion_terminates_then_removes_content() {
    let dir = TempDir::new("ns-del");
    let st = state(&dir).await;
    json(
        &st,
        "POST",
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
    )
    .await;
    json(
        &st,
        "POST",
        "/api/v1/namespaces/team/configmaps",
        &cm("team", "a"),
    )
    .await;
    let (code, ns) = call(&st, "DELETE", "/api/v1/namespaces/team", "", "").await;
    assert_eq!(code, 200);
    assert_eq!(ns["status"]["phase"], "Terminating");
    let (code, e) = json(
        &st,
        "POST",
        "/api/v1/namespaces/team/configmaps",
        &cm("team", "b"),
    )
    .await;
    assert_eq!(code, 403, "{e}");
    gc_until(&st, "namespace gone", "/api/v1/namespaces/team", true).await;
    let (code, _) = call(&st, "GET", "/api/v1/namespaces/team/configmaps/a", "", "").await;
    assert_eq!(code, 404);
    let (code, _) = call(&st, "DELETE", "/api/v1/namespaces/default", "", "").await;
    assert_eq!(code, 403);
}

#[tokio::test]
async fn owner_references_background_orphan_foreground() {
    let dir = TempDir::new("gc");
    let st = state(&dir).await;
    let base = "/api/v1/namespaces/default/configmaps";
    let mk = |name: &str, owner: &Value| {
        let mut c = cm("default", name);
        c["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"], "blockOwnerDeletion": true}]);
        c
    };
    // Background: the dependent goes after the owner.
    let (_, owner) = json(&st, "POST", base, &cm("default", "owner")).await;
    json(&st, "POST", base, &mk("dep", &owner)).await;
    call(&st, "DELETE", &format!("{base}/owner"), "", "").await;
    gc_until(&st, "dependent collected", &format!("{base}/dep"), true).await;

    // Orphan: the dependent stays without the owner reference.
    let (_, owner) = json(&st, "POST", base, &cm("default", "owner2")).await;
    json(&st, "POST", base, &mk("dep2", &owner)).await;
    call(
        &st,
        "DELETE",
        &format!("{base}/owner2?propagationPolicy=Orphan"),
        "",
        "",
    )
    .await;
    gc_until(&st, "owner gone", &format!("{base}/owner2"), true).await;
    let (code, dep) = call(&st, "GET", &format!("{base}/dep2"), "", "").await;
    assert_eq!(code, 200);
    assert!(dep["metadata"].get("ownerReferences").is_none(), "{dep}");

    // Foreground: the owner waits (with the finalizer) until its dependents are gone.
    let (_, owner) = json(&st, "POST", base, &cm("default", "owner3")).await;
    json(&st, "POST", base, &mk("dep3", &owner)).await;
    let (_, o) = call(
        &st,
        "DELETE",
        &format!("{base}/owner3?propagationPolicy=Foreground"),
        "",
        "",
    )
    .await;
    assert_eq!(o["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    gc_until(&st, "owner3 gone", &format!("{base}/owner3"), true).await;
    let (code, _) = call(&st, "GET", &format!("{base}/dep3"), "", "").await;
    assert_eq!(code, 404);
}

/// Reads watch lines until `n` events arrived.
/// A ConfigMap as stored, with `uid` and owners' uids.
fn stored_cm(name: &str, uid: &str, owners: &[&str]) -> Vec<u8> {
    let refs: Vec<Value> = owners
        .iter()
        .map(|u| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": u}))
        .collect();
    let mut c = cm("default", name);
    c["metadata"]["uid"] = json!(uid);
    if !refs.is_empty() {
        c["metadata"]["ownerReferences"] = json!(refs);
    }
    serde_json::to_vec(&c).unwrap()
}

#[tokio::test]
async fn the_collector_follows_changes_without_listing_the_store() {
    let s = common::start("gc-watch").await;
    let store = s.state.store.clone();
    let key = |name: &str| format!("/registry/core/configmaps/default/{name}");
    for i in 0..500 {
        let name = format!("unrelated-{i}");
        store
            .create(&key(&name), stored_cm(&name, &format!("u-{i}"), &[]), 0)
            .await
            .unwrap();
    }
    let gone = |k: String| {
        let store = store.clone();
        async move { store.get(&k, None).await.unwrap().is_none().then_some(()) }
    };
    // a dependent whose owner never existed goes: the collector is following
    store
        .create(
            &key("dangling"),
            stored_cm("dangling", "ud", &["nobody"]),
            0,
        )
        .await
        .unwrap();
    eventually(10, "the dangling dependent deleted", || {
        gone(key("dangling"))
    })
    .await;

    let prefix = "/registry/core/configmaps/default/";
    let (before, _) = store.count(prefix).await.unwrap();
    let lists = store.list_calls("/registry/");
    store
        .create(&key("owner"), stored_cm("owner", "uo", &[]), 0)
        .await
        .unwrap();
    store
        .create(&key("dep"), stored_cm("dep", "udep", &["uo"]), 0)
        .await
        .unwrap();
    store
        .create(&key("late"), stored_cm("late", "ul", &["nobody-either"]), 0)
        .await
        .unwrap();
    eventually(10, "the late dangling dependent deleted", || {
        gone(key("late"))
    })
    .await;
    store.delete(&key("owner"), None).await.unwrap();
    eventually(10, "the owner's dependent deleted", || gone(key("dep"))).await;
    assert_eq!(
        store.list_calls("/registry/"),
        lists,
        "the collector listed the store for a change"
    );
    let (after, _) = store.count(prefix).await.unwrap();
    assert_eq!(after, before, "only the dependents went");
}

#[tokio::test]
async fn the_collector_lists_again_when_its_watch_is_cut() {
    // watchers may hold one event: a burst of writes by another process cuts the collector's
    // watch off
    let dir = TempDir::new("gc-cut");
    let mut config = cellfed_store::Config::new(format!("sqlite://{}/store.db", dir.0.display()));
    config.watch_buffer = 1;
    let store = cellfed_store::Store::open_with(config).await.unwrap();
    let s = common::start_with("gc-cut", |c| c.store = Some(store.clone())).await;
    // another process's writes: the server's poller delivers them in batches
    let writer = common::store(&dir).await;
    let key = |name: &str| format!("/registry/core/configmaps/default/{name}");
    let gone = |k: String| {
        let store = store.clone();
        async move { store.get(&k, None).await.unwrap().is_none().then_some(()) }
    };
    for round in 0..3 {
        let lists = store.list_calls("/registry/");
        let (owner, dep) = (format!("owner-{round}"), format!("dep-{round}"));
        let owner_uid = format!("uo-{round}");
        writer
            .create(&key(&owner), stored_cm(&owner, &owner_uid, &[]), 0)
            .await
            .unwrap();
        writer
            .create(
                &key(&dep),
                stored_cm(&dep, &format!("ud-{round}"), &[&owner_uid]),
                0,
            )
            .await
            .unwrap();
        for i in 0..50 {
            let name = format!("burst-{round}-{i}");
            writer
                .create(&key(&name), stored_cm(&name, &name, &[]), 0)
                .await
                .unwrap();
        }
        writer.delete(&key(&owner), None).await.unwrap();
        eventually(10, "the dependent deleted after the watch was cut", || {
            gone(key(&dep))
        })
        .await;
        assert!(
            store.list_calls("/registry/") > lists,
            "no LIST after the cut"
        );
    }
    drop(s);
}

async fn watch_events(
    st: &cellfed_apiserver::AppState,
    uri: &str,
    n: usize,
    during: impl std::future::Future<Output = ()>,
) -> Vec<Value> {
    let req = http::Request::get(uri).body(Body::empty()).unwrap();
    let resp = cellfed_apiserver::router(st.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body().into_data_stream();
    during.await;
    let mut buf = String::new();
    let mut out = Vec::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("event in time");
        let Some(chunk) = chunk else { break };
        buf.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        while let Some(i) = buf.find('\n') {
            let line: String = buf.drain(..=i).collect();
            out.push(serde_json::from_str(line.trim()).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn watch_initial_state_selectors_and_expired() {
    let dir = TempDir::new("watch");
    let st = state(&dir).await;
    let base = "/api/v1/namespaces/default/configmaps";
    let mut a = cm("default", "a");
    a["metadata"]["labels"] = json!({"sel": "yes"});
    let (_, a) = json(&st, "POST", base, &a).await;
    json(&st, "POST", base, &cm("default", "b")).await;
    let st2 = st.clone();
    let a2 = a.clone();
    let events = watch_events(
        &st,
        &format!("{base}?watch=true&labelSelector=sel%3Dyes"),
        3,
        async move {
            let mut moved = a2.clone();
            moved["data"] = json!({"x": "1"});
            json(&st2, "PUT", &format!("{base}/a"), &moved).await;
            let mut out = json(&st2, "GET", &format!("{base}/a"), &Value::Null)
                .await
                .1;
            out["metadata"]["labels"] = json!({"sel": "no"});
            json(&st2, "PUT", &format!("{base}/a"), &out).await;
        },
    )
    .await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["ADDED", "MODIFIED", "DELETED"], "{events:?}");
    assert_eq!(events[0]["object"]["metadata"]["name"], "a");

    // From a resourceVersion: only later changes.
    let rv = a["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let events = watch_events(
        &st,
        &format!("{base}?watch=1&resourceVersion={rv}"),
        1,
        async {},
    )
    .await;
    assert_eq!(events[0]["object"]["metadata"]["name"], "b");

    // Compacted history: an in-stream 410 Expired.
    let now = st.store.current_revision().await.unwrap();
    st.store.compact(now).await.unwrap();
    let events = watch_events(
        &st,
        &format!("{base}?watch=1&resourceVersion=1"),
        1,
        async {},
    )
    .await;
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");

    // Streaming list: initial events end with the annotated bookmark.
    let events = watch_events(&st, &format!("{base}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"), 3, async {}).await;
    assert_eq!(events[2]["type"], "BOOKMARK");
    assert_eq!(
        events[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
}

#[tokio::test]
async fn patch_flavours() {
    let dir = TempDir::new("patch");
    let st = state(&dir).await;
    let base = "/api/v1/namespaces/default/configmaps";
    json(&st, "POST", base, &cm("default", "p")).await;
    let (code, o) = call(
        &st,
        "PATCH",
        &format!("{base}/p"),
        "application/merge-patch+json",
        r#"{"data":{"k":"v"}}"#,
    )
    .await;
    assert_eq!(code, 200, "{o}");
    assert_eq!(o["data"]["k"], "v");
    let (code, o) = call(
        &st,
        "PATCH",
        &format!("{base}/p"),
        "application/json-patch+json",
        r#"[{"op":"add","path":"/data/j","value":"w"}]"#,
    )
    .await;
    assert_eq!(code, 200, "{o}");
    assert_eq!(o["data"]["j"], "w");
    let (code, o) = call(
        &st,
        "PATCH",
        &format!("{base}/p"),
        "application/strategic-merge-patch+json",
        r#"{"metadata":{"labels":{"s":"t"}}}"#,
    )
    .await;
    assert_eq!(code, 200, "{o}");
    assert_eq!(o["metadata"]["labels"]["s"], "t");
    let (code, e) = call(
        &st,
        "PATCH",
        &format!("{base}/p"),
        "application/json-patch+json",
        r#"{"not":"a list"}"#,
    )
    .await;
    assert!(code == 400 || code == 422, "{e}");
    let (code, e) = call(
        &st,
        "PATCH",
        &format!("{base}/missing"),
        "application/merge-patch+json",
        "{}",
    )
    .await;
    assert_eq!(code, 404, "{e}");
    // Server-side apply creates a missing object.
    let (code, o) = call(
        &st,
        "PATCH",
        &format!("{base}/applied?fieldManager=me"),
        "application/apply-patch+yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: b\n",
    )
    .await;
    assert_eq!(code, 201, "{o}");
    assert_eq!(o["data"]["a"], "b");
    assert_eq!(o["metadata"]["managedFields"][0]["manager"], "me");
}

/// A DELETE without a resourceVersion precondition that races other writes of the object
/// re-reads and succeeds, as kube-apiserver's does (it answered 409 Conflict before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_racing_other_writes_succeeds() {
    let dir = TempDir::new("delete-race");
    let st = state(&dir).await;
    for i in 0..20 {
        let uri = "/api/v1/namespaces/default/configmaps";
        let (code, _) = json(
            &st,
            "POST",
            uri,
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("race-{i}")}, "data": {"n": "0"}}),
        )
        .await;
        assert_eq!(code, 201);
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let st = st.clone();
                tokio::spawn(async move {
                    for n in 1..200 {
                        let (code, _) = call(
                            &st,
                            "PATCH",
                            &format!("{uri}/race-{i}"),
                            "application/merge-patch+json",
                            json!({"data": {"n": n.to_string()}}).to_string(),
                        )
                        .await;
                        if code == 404 {
                            break; // deleted
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (code, body) = json(&st, "DELETE", &format!("{uri}/race-{i}"), &json!({})).await;
        assert_eq!(code, 200, "delete race-{i}: {body}");
        for w in writers {
            w.await.unwrap();
        }
    }
}
