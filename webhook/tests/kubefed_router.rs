#![allow(clippy::unwrap_used, clippy::expect_used)]
//! KubeFed's own webhooks on KubeFed's paths, through the router without a socket.

use axum::body::Body;
use cellfed_webhook::{WebhookState, router};
use http::Request;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn post(path: &str, review: &Value) -> Value {
    let app = router(WebhookState::new(None, "kube-federation-system"));
    let resp = app
        .oneshot(
            Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(review).unwrap()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn review(op: &str, resource: &str, object: Value, old: Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
           "request": {"uid": "u-7", "operation": op, "name": object["metadata"]["name"],
                       "namespace": "kube-federation-system",
                       "resource": {"group": "core.kubefed.io", "version": "v1beta1", "resource": resource},
                       "kind": {"group": "core.kubefed.io", "version": "v1beta1", "kind": object["kind"]},
                       "object": object, "oldObject": old}})
}

fn kubefed_config(spec: Value) -> Value {
    json!({"apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedConfig",
           "metadata": {"name": "kubefed", "namespace": "kube-federation-system"}, "spec": spec})
}

/// Mirrors KubeFed test/e2e/defaulting.go "KubeFedConfig is created by mutating admissing webhook
/// and preserves values set by user" and validation.go for KubeFedConfig.
#[tokio::test]
async fn kubefedconfig_is_defaulted_then_validated() {
    let minimal = kubefed_config(json!({"scope": "Cluster"}));
    let out = post(
        "/default-kubefedconfig",
        &review("CREATE", "kubefedconfigs", minimal.clone(), Value::Null),
    )
    .await;
    let r = &out["response"];
    assert_eq!(
        (r["uid"].as_str(), r["allowed"].as_bool()),
        (Some("u-7"), Some(true))
    );
    assert_eq!(r["patchType"], "JSONPatch");
    let patch: Value = serde_json::from_value::<k8s_openapi::ByteString>(r["patch"].clone())
        .map(|b| serde_json::from_slice(&b.0).unwrap())
        .unwrap();
    let defaulted = kubefed_config(patch[0]["value"].clone());
    assert_eq!(
        defaulted["spec"]["leaderElect"]["resourceLock"],
        "configmaps"
    );
    assert_eq!(
        defaulted["spec"]["clusterHealthCheck"]["failureThreshold"],
        3
    );

    // the minimal config itself is refused by validation (KubeFed runs defaulting first)
    let out = post(
        "/validate-kubefedconfig",
        &review("CREATE", "kubefedconfigs", minimal, Value::Null),
    )
    .await;
    let status = &out["response"]["status"];
    assert_eq!(out["response"]["allowed"], false);
    assert_eq!(
        (status["code"].as_u64(), status["reason"].as_str()),
        (Some(422), Some("Invalid"))
    );
    assert_eq!(status["details"]["kind"], "KubeFedConfig");
    assert_eq!(
        status["details"]["causes"][0]["field"],
        "spec.controllerDuration"
    );
    // the defaulted one passes
    let out = post(
        "/validate-kubefedconfig",
        &review("CREATE", "kubefedconfigs", defaulted.clone(), Value::Null),
    )
    .await;
    assert_eq!(out["response"]["allowed"], true, "{out}");
    // and renewDeadline ≥ leaseDuration does not
    let mut bad = defaulted;
    bad["spec"]["leaderElect"]["renewDeadline"] = json!("15s");
    let out = post(
        "/validate-kubefedconfig",
        &review("UPDATE", "kubefedconfigs", bad.clone(), bad),
    )
    .await;
    let message = out["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("KubeFedConfig.core.kubefed.io \"kubefed\" is invalid: spec.leaderElect.leaseDuration: Invalid value: \"15s\": leaseDuration must be greater than renewDeadline"),
        "{message}"
    );
}

/// Mirrors KubeFed test/e2e/validation.go "Core API Validation for <resource> should fail when an
/// invalid <resource> is created or updated" for KubeFedCluster and FederatedTypeConfig.
#[tokio::test]
async fn kubefedclusters_and_type_configs_are_refused_with_field_paths() {
    let cluster = json!({"apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
        "metadata": {"name": "member1"},
        "spec": {"apiEndpoint": "ftp://member1", "secretRef": {"name": "member1-secret"},
                 "disabledTLSValidations": ["Hostname"]}});
    let out = post(
        "/validate-kubefedcluster",
        &review("CREATE", "kubefedclusters", cluster, Value::Null),
    )
    .await;
    let causes: Vec<&str> = out["response"]["status"]["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        causes,
        ["spec.apiEndpoint", "spec.disabledTLSValidations[0]"]
    );

    let ftc = json!({"apiVersion": "core.kubefed.io/v1beta1", "kind": "FederatedTypeConfig",
        "metadata": {"name": "configmaps"},
        "spec": {"targetType": {"version": "v1", "kind": "ConfigMap", "pluralName": "configmaps", "scope": "Namespaced"},
                 "propagation": "Enabled",
                 "federatedType": {"group": "types.kubefed.io", "version": "v1beta1", "kind": "FederatedConfigMap", "pluralName": "federatedconfigmaps", "scope": "Namespaced"}}});
    let out = post(
        "/validate-federatedtypeconfigs",
        &review("CREATE", "federatedtypeconfigs", ftc.clone(), Value::Null),
    )
    .await;
    assert_eq!(out["response"]["allowed"], true, "{out}");
    let mut cluster_scoped = ftc.clone();
    cluster_scoped["spec"]["targetType"]["scope"] = json!("Cluster");
    let out = post(
        "/validate-federatedtypeconfigs",
        &review("UPDATE", "federatedtypeconfigs", cluster_scoped, ftc),
    )
    .await;
    assert_eq!(
        out["response"]["status"]["details"]["causes"][0],
        json!({"reason": "FieldValueInvalid", "field": "spec.targetType.scope",
               "message": "Invalid value: \"Cluster\": field is immutable"})
    );
}
