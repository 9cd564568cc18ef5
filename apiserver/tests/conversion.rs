//! CRD conversion: a webhook over TLS (service reference + caBundle, as kube-apiserver calls
//! it) and the in-process converter hook.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use axum::Json;
use axum::routing::post;
use base64::Engine;
use common::{TempDir, call, json, state};
use serde_json::{Value, json};

/// v1 has `spec.size`, v1beta1 calls it `spec.sz`.
fn convert(mut o: Value, desired: &str) -> Value {
    let spec = o["spec"].as_object_mut().unwrap();
    if desired.ends_with("v1beta1") {
        if let Some(v) = spec.remove("size") {
            spec.insert("sz".into(), v);
        }
    } else if let Some(v) = spec.remove("sz") {
        spec.insert("size".into(), v);
    }
    o["apiVersion"] = json!(desired);
    o
}

async fn review(Json(r): Json<Value>) -> Json<Value> {
    let desired = r["request"]["desiredAPIVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let objects: Vec<Value> = r["request"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| convert(o.clone(), &desired))
        .collect();
    Json(
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
        "response": {"uid": r["request"]["uid"], "convertedObjects": objects, "result": {"status": "Success"}}}),
    )
}

fn crd(conversion: Value) -> Value {
    let schema = json!({"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}});
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "conversion": conversion,
            "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": schema},
                {"name": "v1beta1", "served": true, "storage": false, "schema": schema}]}})
}

async fn exercise(st: &cellfed_apiserver::AppState) {
    let old = json!({"apiVersion": "example.com/v1beta1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"sz": 7}});
    let (code, o) = json(
        st,
        "POST",
        "/apis/example.com/v1beta1/namespaces/default/things",
        &old,
    )
    .await;
    assert_eq!(code, 201, "{o}");
    assert_eq!(o["spec"]["sz"], 7);
    let stored = st
        .store
        .get("/registry/example.com/things/default/t", None)
        .await
        .unwrap()
        .unwrap();
    let stored: Value = serde_json::from_slice(&stored.value).unwrap();
    assert_eq!(stored["apiVersion"], "example.com/v1");
    assert_eq!(
        stored["spec"]["size"], 7,
        "stored in the storage version: {stored}"
    );
    let (_, v1) = call(
        st,
        "GET",
        "/apis/example.com/v1/namespaces/default/things/t",
        "",
        "",
    )
    .await;
    assert_eq!(v1["spec"]["size"], 7);
    let (_, list) = call(st, "GET", "/apis/example.com/v1beta1/things", "", "").await;
    assert_eq!(list["items"][0]["spec"]["sz"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_conversion_over_tls_with_service_reference() {
    let dir = TempDir::new("conv-webhook");
    // The webhook's certificate is for hook.sys.svc, signed by a CA we hand over as caBundle.
    let app = axum::Router::new().route("/convert", post(review));
    let (ca_bundle, addr) = common::serve_https(&dir.0.join("hook"), &["hook.sys.svc"], app).await;
    let mut st = state(&dir).await;
    st.service_addresses = Arc::new(
        [("hook.sys.svc:8443".to_string(), addr.to_string())]
            .into_iter()
            .collect(),
    );
    let conversion = json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
        "clientConfig": {"service": {"namespace": "sys", "name": "hook", "path": "/convert", "port": 8443}, "caBundle": ca_bundle}}});
    let (code, c) = json(
        &st,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd(conversion),
    )
    .await;
    assert_eq!(code, 201, "{c}");
    exercise(&st).await;

    // A wrong caBundle fails the request instead of trusting the server.
    let (_, mut c) = call(
        &st,
        "GET",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.example.com",
        "",
        "",
    )
    .await;
    let other = cellfed_apiserver::tls::ensure(&dir.0.join("other"), &[]).unwrap();
    c["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"] =
        json!(base64::engine::general_purpose::STANDARD.encode(&other.ca_pem));
    let (code, e) = json(
        &st,
        "PUT",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.example.com",
        &c,
    )
    .await;
    assert_eq!(code, 200, "{e}");
    let (code, e) = call(
        &st,
        "GET",
        "/apis/example.com/v1beta1/namespaces/default/things/t",
        "",
        "",
    )
    .await;
    assert_eq!(code, 500, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("conversion webhook for things.example.com failed"),
        "{e}"
    );
}

struct InProcess;

impl cellfed_apiserver::Converter for InProcess {
    fn handles(&self, crd_name: &str) -> bool {
        crd_name == "things.example.com"
    }
    fn convert(&self, objects: Vec<Value>, desired: &str) -> Result<Vec<Value>, String> {
        Ok(objects.into_iter().map(|o| convert(o, desired)).collect())
    }
}

#[tokio::test]
async fn in_process_converter_needs_no_network() {
    let dir = TempDir::new("conv-inproc");
    let mut st = state(&dir).await;
    st.converter = Some(Arc::new(InProcess));
    // The webhook address does not exist: only the in-process converter can succeed.
    let conversion = json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {"url": "https://127.0.0.1:1/convert"}}});
    let (code, c) = json(
        &st,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd(conversion),
    )
    .await;
    assert_eq!(code, 201, "{c}");
    exercise(&st).await;
}
