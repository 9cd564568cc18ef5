//! CustomResourceDefinitions through the router: dynamic serving, pruning, strict field
//! validation, status subresource, versions with `strategy: None`, deletion of the objects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TempDir, call, json, state};
use serde_json::{Value, json};

fn crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "shortNames": ["gd"], "categories": ["all"]},
        "versions": [
            {"name": "v1", "served": true, "storage": true,
             "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
             "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "required": ["size"], "properties": {
                    "size": {"type": "integer", "minimum": 1},
                    "replicas": {"type": "integer"},
                    "color": {"type": "string", "enum": ["red", "blue"]},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                "status": {"type": "object", "properties": {"ready": {"type": "boolean"}, "replicas": {"type": "integer"}}}}}}},
            {"name": "v1beta1", "served": true, "storage": false,
             "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}
        ]}})
}

const URL: &str = "/apis/example.com/v1/namespaces/default/gadgets";

async fn setup(tag: &str) -> (TempDir, cellfed_apiserver::AppState) {
    let dir = TempDir::new(tag);
    let st = state(&dir).await;
    let (code, c) = json(
        &st,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd(),
    )
    .await;
    assert_eq!(code, 201, "{c}");
    (dir, st)
}

#[tokio::test]
async fn crd_appears_in_discovery_and_serves_objects() {
    let (_d, st) = setup("crd-serve").await;
    let (code, g) = call(&st, "GET", "/apis/example.com", "", "").await;
    assert_eq!(code, 200);
    assert_eq!(g["preferredVersion"]["version"], "v1");
    let (_, rl) = call(&st, "GET", "/apis/example.com/v1", "", "").await;
    let names: Vec<&str> = rl["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["gadgets", "gadgets/status", "gadgets/scale"]);
    let (_, c) = call(
        &st,
        "GET",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.com",
        "",
        "",
    )
    .await;
    assert_eq!(c["status"]["conditions"][0]["type"], "NamesAccepted");
    assert_eq!(c["status"]["conditions"][1]["status"], "True");

    let obj = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g1"},
        "spec": {"size": 2, "unknown": 1, "extra": {"free": {"form": true}}}, "status": {"ready": true}});
    let (code, o) = json(&st, "POST", URL, &obj).await;
    assert_eq!(code, 201, "{o}");
    assert!(o["spec"].get("unknown").is_none(), "pruned: {o}");
    assert_eq!(o["spec"]["extra"]["free"]["form"], true);
    assert!(
        o.get("status").is_none(),
        "status is ignored on create with the status subresource"
    );
    assert_eq!(o["metadata"]["generation"], 1);

    // Status subresource changes status only and keeps generation.
    let mut s = o.clone();
    s["status"] = json!({"ready": true});
    s["spec"]["size"] = json!(9);
    let (code, s) = json(&st, "PUT", &format!("{URL}/g1/status"), &s).await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["status"]["ready"], true);
    assert_eq!(s["spec"]["size"], 2);
    assert_eq!(s["metadata"]["generation"], 1);

    // PUT without resourceVersion on a CR is refused, as kube does.
    let mut u = s.clone();
    u["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let (code, e) = json(&st, "PUT", &format!("{URL}/g1"), &u).await;
    assert_eq!(code, 422, "{e}");
    assert_eq!(
        e["details"]["causes"][0]["field"],
        "metadata.resourceVersion"
    );

    // The other version reads the same object with the apiVersion rewritten.
    let (code, b) = call(
        &st,
        "GET",
        "/apis/example.com/v1beta1/namespaces/default/gadgets/g1",
        "",
        "",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(b["apiVersion"], "example.com/v1beta1");
    assert_eq!(b["spec"]["size"], 2);

    // Deleting the CRD removes its objects and its endpoints.
    let (code, _) = call(
        &st,
        "DELETE",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.com",
        "",
        "",
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = call(&st, "GET", URL, "", "").await;
    assert_eq!(code, 404);
    let left = st
        .store
        .list("/registry/example.com/gadgets/", Default::default())
        .await
        .unwrap();
    assert!(left.items.is_empty());
}

#[tokio::test]
async fn cr_validation_and_strict_fields() {
    let (_d, st) = setup("crd-validate").await;
    let bad = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "bad"}, "spec": {"size": 0, "color": "green"}});
    let (code, e) = json(&st, "POST", URL, &bad).await;
    assert_eq!(code, 422, "{e}");
    assert_eq!(e["reason"], "Invalid");
    let fields: Vec<&str> = e["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["spec.color", "spec.size"]);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("Gadget.example.com \"bad\" is invalid"),
        "{e}"
    );
    let missing = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "m"}, "spec": {}});
    let (code, e) = json(&st, "POST", URL, &missing).await;
    assert_eq!(code, 422);
    assert_eq!(e["details"]["causes"][0]["reason"], "FieldValueRequired");
    let unknown = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "u"}, "spec": {"size": 1, "bogus": true}});
    let (code, e) = json(
        &st,
        "POST",
        &format!("{URL}?fieldValidation=Strict"),
        &unknown,
    )
    .await;
    assert_eq!(code, 400, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"spec.bogus\""),
        "{e}"
    );
    let (_, l) = call(&st, "GET", URL, "", "").await;
    assert!(
        l["items"].as_array().unwrap().is_empty(),
        "nothing stored on errors"
    );
}

#[tokio::test]
async fn cr_scale_subresource_and_table() {
    let (_d, st) = setup("crd-scale").await;
    let obj = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "s"}, "spec": {"size": 1, "replicas": 2}});
    json(&st, "POST", URL, &obj).await;
    let (code, sc) = call(&st, "GET", &format!("{URL}/s/scale"), "", "").await;
    assert_eq!(code, 200);
    assert_eq!(sc["spec"]["replicas"], 2);
    let (code, sc) = json(&st, "PUT", &format!("{URL}/s/scale"), &json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "s"}, "spec": {"replicas": 4}})).await;
    assert_eq!(code, 200, "{sc}");
    let (_, o) = call(&st, "GET", &format!("{URL}/s"), "", "").await;
    assert_eq!(o["spec"]["replicas"], 4);
    assert_eq!(o["metadata"]["generation"], 2);
    let req = http::Request::get(URL)
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(cellfed_apiserver::router(st.clone()), req)
        .await
        .unwrap();
    let t: Value = serde_json::from_slice(
        &axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["rows"].as_array().unwrap().len(), 1);
}

/// A KubeFed-style CRD serving v1beta1 (storage, listed first) and v1beta2: discovery prefers
/// v1beta2 by Kubernetes version priority, as kube-apiserver does, so `kubectl get
/// federateddeployments` reads v1beta2.
#[tokio::test]
async fn discovery_prefers_higher_version_priority_not_storage() {
    let dir = TempDir::new("crd-prio");
    let st = state(&dir).await;
    let open = json!({"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}});
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "federateddeployments.types.kubefed.io"},
    "spec": {"group": "types.kubefed.io", "scope": "Namespaced",
        "names": {"plural": "federateddeployments", "singular": "federateddeployment", "kind": "FederatedDeployment"},
        "versions": [
            {"name": "v1beta1", "served": true, "storage": true, "schema": open},
            {"name": "v1beta2", "served": true, "storage": false, "schema": open}]}});
    let (code, c) = json(
        &st,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    )
    .await;
    assert_eq!(code, 201, "{c}");
    let (code, g) = call(&st, "GET", "/apis/types.kubefed.io", "", "").await;
    assert_eq!(code, 200, "{g}");
    assert_eq!(g["preferredVersion"]["version"], "v1beta2", "{g}");
    assert_eq!(g["versions"][0]["version"], "v1beta2", "{g}");
    let (_, list) = call(&st, "GET", "/apis", "", "").await;
    let grp = list["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "types.kubefed.io")
        .cloned()
        .unwrap();
    assert_eq!(
        grp["preferredVersion"]["groupVersion"],
        "types.kubefed.io/v1beta2"
    );
}
