//! A webhook's denial reaches the client as kube-apiserver passes it on
//! (`webhookerrors.ToStatusErr`): its code, its reason and its `details` — so a `422 Invalid`
//! with causes shows every field path in kubectl's message and in the HTTP `Status`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::Json;
use common::{Running, TempDir, eventually, start_with};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

/// The `status` the test webhook denies with: kube's `NewInvalid` for a ConfigMap with two
/// causes.
fn invalid(name: &str) -> Value {
    json!({"status": "Failure", "code": 422, "reason": "Invalid",
        "message": format!("ConfigMap \"{name}\" is invalid: [data.size: Invalid value: \"huge\": must be a number, data.owner: Required value]"),
        "details": {"name": name, "kind": "ConfigMap", "causes": [
            {"reason": "FieldValueInvalid", "message": "Invalid value: \"huge\": must be a number", "field": "data.size"},
            {"reason": "FieldValueRequired", "message": "Required value", "field": "data.owner"}]}})
}

/// A real HTTPS validating webhook on `localhost` that denies every request with [`invalid`];
/// returns (base64 CA bundle, URL) and keeps serving while the test runs.
async fn start_webhook(dir: &TempDir) -> (String, String) {
    let app = axum::Router::new().route(
        "/invalid",
        axum::routing::post(|Json(review): Json<Value>| async move {
            let request = &review["request"];
            Json(
                json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": {"uid": request["uid"], "allowed": false,
                    "status": invalid(request["name"].as_str().unwrap_or_default())}}),
            )
        }),
    );
    let (ca_bundle, addr) = common::serve_https(&dir.0, &["localhost"], app).await;
    (
        ca_bundle,
        format!("https://localhost:{}/invalid", addr.port()),
    )
}

/// A kube-rs client for `s`, to read the HTTP answer itself.
async fn client(s: &Running) -> kube::Client {
    let kc = Kubeconfig::read_from(&s.kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

const SIZED: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sized, namespace: default}\ndata: {size: huge}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhooks_invalid_status_reaches_the_client_with_its_causes() {
    let s = start_with("admission-details", |_| {}).await;
    let hook_dir = TempDir::new("admission-details-hook");
    let (ca_bundle, url) = start_webhook(&hook_dir).await;
    let config = json!({"apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "sizes"},
        "webhooks": [{"name": "sizes.example.com",
            "clientConfig": {"url": url, "caBundle": ca_bundle},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"], "operations": ["CREATE"]}],
            "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"]}]});
    s.kubectl_ok(&["apply", "-f", "-"], Some(&config.to_string()))
        .await;

    // kubectl prints the kind and name from the details and one line per cause (as with
    // kube-apiserver, the webhook's name is in the Status message, which kubectl does not show
    // when there are causes)
    let err = eventually(10, "the webhook to deny", || async {
        let (ok, _, err) = s.kubectl(&["create", "-f", "-"], Some(SIZED)).await;
        (!ok && err.contains("is invalid")).then_some(err)
    })
    .await;
    assert!(
        err.contains("The ConfigMap \"sized\" is invalid"),
        "kubectl's message: {err}"
    );
    assert!(
        err.contains("* data.size: Invalid value: \"huge\": must be a number"),
        "kubectl's message: {err}"
    );
    assert!(
        err.contains("* data.owner: Required value"),
        "kubectl's message: {err}"
    );

    // the HTTP answer is the webhook's Status, its message prefixed
    let client = client(&s).await;
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "raw"}, "data": {"size": "huge"}});
    let request = http::Request::post("/api/v1/namespaces/default/configmaps")
        .header("content-type", "application/json")
        .body(body.to_string().into_bytes())
        .unwrap();
    let response = client.send(request.map(Into::into)).await.unwrap();
    let code = response.status().as_u16();
    let bytes = response.into_body().collect_bytes().await.unwrap();
    let status: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["code"], 422);
    assert_eq!(
        status["message"],
        format!(
            "admission webhook \"sizes.example.com\" denied the request: {}",
            invalid("raw")["message"].as_str().unwrap()
        )
    );
    assert_eq!(status["details"], invalid("raw")["details"]);
    assert_eq!(status["details"]["causes"][1]["field"], "data.owner");
    let (ok, _, err) = s
        .kubectl(&["get", "configmap", "raw", "-n", "default"], None)
        .await;
    assert!(!ok && err.contains("NotFound"), "nothing was stored: {err}");
}
