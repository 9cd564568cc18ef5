#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The webhook's HTTP surface without a socket, plus property tests of the conversion.

use axum::body::Body;
use cellfed_webhook::{WebhookState, router};
use http::Request;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn post(path: &str, body: Vec<u8>) -> Value {
    let app = router(WebhookState::new(None, "kube-federation-system"));
    let resp = app
        .oneshot(
            Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn review(desired: &str, objects: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
        "request": {"uid": "u-1", "desiredAPIVersion": desired, "objects": objects}
    }))
    .unwrap()
}

fn cell_v1beta2() -> Value {
    json!({
        "apiVersion": "types.kubefed.io/v1beta2", "kind": "FederatedDeployment",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {"topologyType": "cell", "template": {"spec": {"replicas": 1}},
                 "placement": {"topologies": [{"name": "rz00a"}, {"name": "rz01a"}]},
                 "placementMask": {"topologies": [{"name": "rz00a"}]},
                 "overrides": [{"topologyName": "rz01a", "clusterOverrides": [{"path": "/spec/replicas", "value": 3}]}]}
    })
}

#[tokio::test]
async fn converts_cells_to_clusters_and_back() {
    let out = post(
        "/convert",
        review("types.kubefed.io/v1beta1", json!([cell_v1beta2()])),
    )
    .await;
    assert_eq!(out["response"]["uid"], "u-1");
    assert_eq!(out["response"]["result"]["status"], "Success");
    let v1 = out["response"]["convertedObjects"][0].clone();
    assert_eq!(v1["apiVersion"], "types.kubefed.io/v1beta1");
    assert_eq!(
        v1["spec"]["placement"]["clusters"],
        json!([{"name": "rz00a.ns"}, {"name": "rz01a.ns"}])
    );
    assert_eq!(v1["spec"]["overrides"][0]["clusterName"], "rz01a.ns");
    let back = post("/convert", review("types.kubefed.io/v1beta2", json!([v1]))).await;
    assert_eq!(back["response"]["convertedObjects"][0], cell_v1beta2());
}

#[tokio::test]
async fn bad_input_is_a_failure_result_with_a_message() {
    let out = post("/convert", b"{not json".to_vec()).await;
    assert_eq!(out["response"]["result"]["status"], "Failure");
    assert!(
        out["response"]["result"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid JSON")
    );

    let out = post(
        "/convert",
        review("types.kubefed.io/v9", json!([cell_v1beta2()])),
    )
    .await;
    assert_eq!(out["response"]["result"]["status"], "Failure");
    assert!(
        out["response"]["result"]["message"]
            .as_str()
            .unwrap()
            .contains("v9"),
        "{out}"
    );

    let wrong_kind =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}});
    let out = post(
        "/convert",
        review("types.kubefed.io/v1beta1", json!([wrong_kind])),
    )
    .await;
    assert_eq!(out["response"]["result"]["status"], "Failure");
    assert!(
        out["response"]["result"]["message"]
            .as_str()
            .unwrap()
            .contains("Deployment"),
        "{out}"
    );

    let not_review = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Pod"})).unwrap();
    let out = post("/convert", not_review).await;
    assert_eq!(out["response"]["result"]["status"], "Failure");

    let out = post("/validate", b"[]".to_vec()).await;
    assert_eq!(out["response"]["allowed"], false);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    /// v1beta2 (cell) → v1beta1 → v1beta2 is the identity, for any cell names and overrides.
    #[test]
    fn cell_round_trip(cells in prop::collection::btree_set("[a-z][a-z0-9]{0,10}", 1..5), ns in "[a-z][a-z0-9-]{0,8}[a-z0-9]", replicas in 0i64..100, masked in any::<bool>()) {
        let cells: Vec<String> = cells.into_iter().collect();
        let topologies: Vec<Value> = cells.iter().map(|c| json!({"name": c})).collect();
        let mut obj = json!({
            "apiVersion": "types.kubefed.io/v1beta2", "kind": "FederatedConfigMap",
            "metadata": {"name": "x", "namespace": ns},
            "spec": {"topologyType": "cell", "template": {"data": {"r": replicas.to_string()}},
                     "placement": {"topologies": topologies},
                     "overrides": [{"topologyName": cells[0], "clusterOverrides": [{"op": "add", "path": "/data/k", "value": replicas}]}]}
        });
        if masked {
            obj["spec"]["placementMask"] = json!({"topologies": [{"name": cells[0]}]});
        }
        let v1 = cellfed_webhook::convert_objects(vec![obj.clone()], "types.kubefed.io/v1beta1").unwrap();
        let expected: Vec<Value> = cells.iter().map(|c| json!({"name": format!("{c}.{ns}")})).collect();
        prop_assert_eq!(&v1[0]["spec"]["placement"]["clusters"], &json!(expected));
        let back = cellfed_webhook::convert_objects(v1, "types.kubefed.io/v1beta2").unwrap();
        prop_assert_eq!(&back[0], &obj);
    }

    /// Cluster topology: v1beta1 → v1beta2 → v1beta1 is the identity.
    #[test]
    fn cluster_round_trip(clusters in prop::collection::btree_set("[a-z][a-z0-9.-]{0,12}[a-z0-9]", 0..5)) {
        let list: Vec<Value> = clusters.iter().map(|c| json!({"name": c})).collect();
        let obj = json!({
            "apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedSecret",
            "metadata": {"name": "s", "namespace": "n"},
            "spec": {"template": {"data": {}}, "placement": {"clusters": list}}
        });
        let v2 = cellfed_webhook::convert_objects(vec![obj.clone()], "types.kubefed.io/v1beta2").unwrap();
        let back = cellfed_webhook::convert_objects(v2, "types.kubefed.io/v1beta1").unwrap();
        prop_assert_eq!(&back[0], &obj);
    }
}

async fn get(state: WebhookState, path: &str) -> (u16, String) {
    let resp = router(state)
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (code, String::from_utf8(bytes.to_vec()).unwrap())
}

/// `/readyz` is public: ok, or failed without the reason (here: the host cannot be reached, and
/// its address stays out of the answer).
#[tokio::test]
async fn readyz_says_ok_or_failed_and_never_why() {
    let conversion_only = WebhookState::new(None, "kube-federation-system");
    assert_eq!(
        get(conversion_only.clone(), "/readyz").await,
        (200, "ok".into())
    );
    let unreachable = kube::Config::new("https://127.0.0.1:9".parse().unwrap());
    let client = kube::Client::try_from(unreachable).unwrap();
    let state = WebhookState::new(Some(client), "kube-federation-system");
    let (code, body) = get(state.clone(), "/readyz").await;
    assert_eq!((code, body.as_str()), (500, "readyz check failed\n"));
    let (code, body) = get(state.clone(), "/readyz?verbose").await;
    assert_eq!(code, 500);
    assert_eq!(
        body,
        "[-]admission-caches failed: reason withheld\nreadyz check failed\n"
    );
    assert_eq!(get(state, "/healthz").await, (200, "ok".into()));
}
