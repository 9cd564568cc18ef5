//! Bad input through the router: every failure is a kube-shaped Status and stores nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TempDir, call, json, state};
use serde_json::json;

fn cm(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn malformed_json_is_400_and_stores_nothing() {
    let dir = TempDir::new("malformed");
    let st = state(&dir).await;
    let (code, s) = call(&st, "POST", CMS, "application/json", "{\"kind\": ").await;
    assert_eq!(code, 400);
    assert_eq!(s["kind"], "Status");
    assert_eq!(s["reason"], "BadRequest");
    let (code, s) = call(&st, "POST", CMS, "application/yaml", "a: [unclosed").await;
    assert_eq!(code, 400, "{s}");
    let (_, list) = call(&st, "GET", CMS, "", "").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn yaml_body_creates() {
    let dir = TempDir::new("yaml");
    let st = state(&dir).await;
    let (code, o) = call(
        &st,
        "POST",
        CMS,
        "application/yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  k: v\n",
    )
    .await;
    assert_eq!(code, 201, "{o}");
    assert_eq!(o["data"]["k"], "v");
    assert!(o["metadata"]["uid"].as_str().unwrap().len() == 36);
    assert!(
        o["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn bad_name_is_422_with_causes() {
    let dir = TempDir::new("badname");
    let st = state(&dir).await;
    let (code, s) = json(&st, "POST", CMS, &cm("Bad_Name")).await;
    assert_eq!(code, 422);
    assert_eq!(s["reason"], "Invalid");
    assert_eq!(s["details"]["kind"], "ConfigMap");
    assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueInvalid");
    assert!(s["message"].as_str().unwrap().starts_with(
        "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""
    ));
    let (code, _) = call(&st, "GET", &format!("{CMS}/Bad_Name"), "", "").await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn conflicts_already_exists_and_not_found() {
    let dir = TempDir::new("conflict");
    let st = state(&dir).await;
    let (code, created) = json(&st, "POST", CMS, &cm("a")).await;
    assert_eq!(code, 201);
    let (code, s) = json(&st, "POST", CMS, &cm("a")).await;
    assert_eq!(code, 409);
    assert_eq!(s["reason"], "AlreadyExists");
    assert_eq!(s["message"], "configmaps \"a\" already exists");

    let mut upd = created.clone();
    upd["data"]["a"] = json!("2");
    let (code, updated) = json(&st, "PUT", &format!("{CMS}/a"), &upd).await;
    assert_eq!(code, 200, "{updated}");
    assert_ne!(
        updated["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    // Same stale resourceVersion again: conflict, and the stored value stays "2".
    upd["data"]["a"] = json!("3");
    let (code, s) = json(&st, "PUT", &format!("{CMS}/a"), &upd).await;
    assert_eq!(code, 409);
    assert_eq!(s["reason"], "Conflict");
    assert_eq!(
        s["message"],
        "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let (_, now) = call(&st, "GET", &format!("{CMS}/a"), "", "").await;
    assert_eq!(now["data"]["a"], "2");

    let (code, s) = call(&st, "GET", &format!("{CMS}/missing"), "", "").await;
    assert_eq!(code, 404);
    assert_eq!(
        s["details"],
        json!({"name": "missing", "group": "", "kind": "configmaps"})
    );
    let (code, _) = call(&st, "DELETE", &format!("{CMS}/missing"), "", "").await;
    assert_eq!(code, 404);
    let (code, s) = json(&st, "POST", "/api/v1/namespaces/nope/configmaps", &cm("x")).await;
    assert_eq!(code, 404);
    assert_eq!(s["message"], "namespaces \"nope\" not found");
}

#[tokio::test]
async fn too_large_is_413_and_stores_nothing() {
    let dir = TempDir::new("large");
    let st = state(&dir).await;
    let mut big = cm("big");
    big["data"]["a"] = json!("x".repeat(cellfed_apiserver::MAX_BODY_BYTES + 10));
    let (code, s) = json(&st, "POST", CMS, &big).await;
    assert_eq!(code, 413);
    assert_eq!(s["reason"], "RequestEntityTooLarge");
    let (code, _) = call(&st, "GET", &format!("{CMS}/big"), "", "").await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn kind_mismatch_is_400() {
    let dir = TempDir::new("kind");
    let st = state(&dir).await;
    let mut o = cm("k");
    o["kind"] = json!("Secret");
    let (code, s) = json(&st, "POST", CMS, &o).await;
    assert_eq!(code, 400, "{s}");
    let mut o = cm("k");
    o["apiVersion"] = json!("apps/v1");
    let (code, _) = json(&st, "POST", CMS, &o).await;
    assert_eq!(code, 400);
    let (code, _) = call(&st, "GET", &format!("{CMS}/k"), "", "").await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn generation_moves_on_spec_changes_only() {
    let dir = TempDir::new("gen");
    let st = state(&dir).await;
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    let url = "/apis/apps/v1/namespaces/default/deployments";
    let (code, c) = json(&st, "POST", url, &d).await;
    assert_eq!(code, 201, "{c}");
    assert_eq!(c["metadata"]["generation"], 1);
    let mut l = c.clone();
    l["metadata"]["labels"] = json!({"x": "y"});
    let (_, l) = json(&st, "PUT", &format!("{url}/d"), &l).await;
    assert_eq!(l["metadata"]["generation"], 1);
    let mut s = l.clone();
    s["status"] = json!({"replicas": 1});
    let (code, s) = json(&st, "PUT", &format!("{url}/d/status"), &s).await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["metadata"]["generation"], 1);
    assert_eq!(s["status"]["replicas"], 1);
    let mut sp = s.clone();
    sp["spec"]["replicas"] = json!(3);
    sp["status"] = json!({"replicas": 99});
    let (_, sp) = json(&st, "PUT", &format!("{url}/d"), &sp).await;
    assert_eq!(sp["metadata"]["generation"], 2);
    assert_eq!(sp["status"]["replicas"], 1, "main endpoint ignores status");
    let (code, scale) = call(&st, "GET", &format!("{url}/d/scale"), "", "").await;
    assert_eq!(code, 200);
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "app=d");
}

#[tokio::test]
async fn dry_run_stores_nothing() {
    let dir = TempDir::new("dry");
    let st = state(&dir).await;
    let (code, o) = json(&st, "POST", &format!("{CMS}?dryRun=All"), &cm("dry")).await;
    assert_eq!(code, 201);
    assert_eq!(o["metadata"]["name"], "dry");
    let (code, _) = call(&st, "GET", &format!("{CMS}/dry"), "", "").await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn list_selectors_and_pages() {
    let dir = TempDir::new("list");
    let st = state(&dir).await;
    for i in 0..5 {
        let mut o = cm(&format!("c{i}"));
        o["metadata"]["labels"] = json!({"parity": if i % 2 == 0 { "even" } else { "odd" }});
        assert_eq!(json(&st, "POST", CMS, &o).await.0, 201);
    }
    let (_, l) = call(
        &st,
        "GET",
        &format!("{CMS}?labelSelector=parity%3Deven"),
        "",
        "",
    )
    .await;
    assert_eq!(l["items"].as_array().unwrap().len(), 3);
    let (_, l) = call(
        &st,
        "GET",
        &format!("{CMS}?labelSelector=parity+notin+%28even%29"),
        "",
        "",
    )
    .await;
    assert_eq!(l["items"].as_array().unwrap().len(), 2);
    let (_, l) = call(
        &st,
        "GET",
        &format!("{CMS}?fieldSelector=metadata.name%3Dc3"),
        "",
        "",
    )
    .await;
    assert_eq!(l["items"][0]["metadata"]["name"], "c3");
    let (code, s) = call(
        &st,
        "GET",
        &format!("{CMS}?fieldSelector=spec.x%3D1"),
        "",
        "",
    )
    .await;
    assert_eq!(code, 400, "{s}");
    let mut names = Vec::new();
    let mut cont = String::new();
    loop {
        let (code, page) = call(
            &st,
            "GET",
            &format!("{CMS}?limit=2&continue={cont}"),
            "",
            "",
        )
        .await;
        assert_eq!(code, 200, "{page}");
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match page["metadata"]["continue"].as_str() {
            Some(c) => cont = c.to_string(),
            None => break,
        }
    }
    assert_eq!(names, vec!["c0", "c1", "c2", "c3", "c4"]);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let dir = TempDir::new("fin");
    let st = state(&dir).await;
    let mut o = cm("f");
    o["metadata"]["finalizers"] = json!(["example.com/hold"]);
    json(&st, "POST", CMS, &o).await;
    let (code, d) = call(&st, "DELETE", &format!("{CMS}/f"), "", "").await;
    assert_eq!(code, 200);
    assert!(d["metadata"]["deletionTimestamp"].is_string());
    let (code, mut live) = call(&st, "GET", &format!("{CMS}/f"), "", "").await;
    assert_eq!(code, 200);
    live["metadata"]["finalizers"] = json!([]);
    let (code, _) = json(&st, "PUT", &format!("{CMS}/f"), &live).await;
    assert_eq!(code, 200);
    let (code, _) = call(&st, "GET", &format!("{CMS}/f"), "", "").await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn unauthenticated_is_401() {
    let dir = TempDir::new("auth");
    let mut st = state(&dir).await;
    st.security = Some(std::sync::Arc::new(cellfed_apiserver::auth::Security {
        authn: cellfed_apiserver::auth::Authenticator {
            tokens: Some(cellfed_auth::token_file::TokenFile::parse("secret,admin,1").unwrap()),
            ..Default::default()
        },
        modes: vec![cellfed_apiserver::auth::Mode::Rbac],
        rbac: cellfed_apiserver::auth::RbacCache::bootstrap_only(),
        issuer: None,
    }));
    let (code, s) = call(&st, "GET", CMS, "", "").await;
    assert_eq!(code, 401);
    assert_eq!(s["reason"], "Unauthorized");
    let (code, _) = call(&st, "GET", "/healthz", "", "").await;
    assert_eq!(code, 200);
}
