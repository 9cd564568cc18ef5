#![allow(clippy::unwrap_used)]
//! The documents carry what kubectl reads: schemas with GVK extensions, PATCH operations with
//! `fieldValidation`, strategic merge metadata, and refs that all resolve.

use super::*;

fn deployment() -> ResourceSchema {
    ResourceSchema {
        group: "apps".into(),
        version: "v1".into(),
        kind: "Deployment".into(),
        list_kind: "DeploymentList".into(),
        plural: "deployments".into(),
        namespaced: true,
        verbs: vec![],
        subresources: vec!["status".into(), "scale".into()],
        schema: None,
    }
}

fn federated() -> ResourceSchema {
    ResourceSchema {
        group: "types.kubefed.io".into(),
        version: "v1beta1".into(),
        kind: "FederatedDeployment".into(),
        list_kind: "FederatedDeploymentList".into(),
        plural: "federateddeployments".into(),
        namespaced: true,
        verbs: [
            "get",
            "list",
            "watch",
            "create",
            "update",
            "patch",
            "delete",
            "deletecollection",
        ]
        .map(String::from)
        .to_vec(),
        subresources: vec!["status".into()],
        schema: Some(json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "placement": {"type": "object", "properties": {"clusters": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}},
                    "template": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }
        })),
    }
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value, prefix: &str) -> &'a Value {
    let r = schema
        .get("$ref")
        .or_else(|| schema.pointer("/allOf/0/$ref"))
        .and_then(Value::as_str);
    match r {
        Some(r) => {
            let name = r.strip_prefix(prefix).unwrap();
            let defs = if prefix.starts_with("#/components") {
                &doc["components"]["schemas"]
            } else {
                &doc["definitions"]
            };
            &defs[name]
        }
        None => schema,
    }
}

fn all_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|v| all_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| all_refs(v, out)),
        _ => {}
    }
}

#[test]
fn deployment_schema_from_k8s_openapi_with_gvk_and_typed_replicas() {
    let doc = v3_document("apps", "v1", &[deployment()]);
    assert_eq!(doc["openapi"], "3.0.0");
    let schemas = &doc["components"]["schemas"];
    let d = &schemas["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        d["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    let spec = resolve(&doc, &d["properties"]["spec"], "#/components/schemas/");
    assert_eq!(spec["properties"]["replicas"]["type"], "integer");
    assert_eq!(spec["properties"]["replicas"]["format"], "int32");
    assert!(d["properties"]["spec"]["description"].is_string());
    assert_eq!(
        schemas["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"][0]["kind"],
        "DeploymentList"
    );
    let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    assert_eq!(
        schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["finalizers"]["x-kubernetes-patch-strategy"],
        "merge"
    );
}

#[test]
fn every_ref_resolves() {
    for doc in [
        v3_document("apps", "v1", &[deployment()]),
        v3_document("types.kubefed.io", "v1beta1", &[federated()]),
    ] {
        let mut refs = Vec::new();
        all_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "dangling {r}"
            );
        }
    }
}

#[test]
fn patch_operation_has_field_validation_gvk_and_content_types() {
    let doc = v3_document("apps", "v1", &[deployment()]);
    let item = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    let patch = &item["patch"];
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    let params: Vec<&str> = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        params.contains(&"fieldValidation") && params.contains(&"force"),
        "{params:?}"
    );
    let content = patch["requestBody"]["content"].as_object().unwrap();
    for t in [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    ] {
        assert!(content.contains_key(t), "{t}");
    }
    for (verb, action) in [("get", "get"), ("put", "put"), ("delete", "delete")] {
        assert_eq!(item[verb]["x-kubernetes-action"], action);
    }
    let coll = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"];
    assert_eq!(coll["get"]["x-kubernetes-action"], "list");
    assert_eq!(coll["post"]["x-kubernetes-action"], "post");
    assert_eq!(coll["delete"]["x-kubernetes-action"], "deletecollection");
    assert_eq!(
        coll["delete"]["operationId"],
        "deleteAppsV1CollectionNamespacedDeployment"
    );
    assert_eq!(
        doc["paths"]["/apis/apps/v1/deployments"]["get"]["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
    let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["patch"]["x-kubernetes-group-version-kind"]["kind"],
        "Scale"
    );
    assert!(
        doc["components"]["schemas"]
            .get("io.k8s.api.autoscaling.v1.Scale")
            .is_some()
    );
    let status = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"];
    assert_eq!(
        status["patch"]["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
}

#[test]
fn crd_schema_refs_object_meta_and_has_no_strategic_merge() {
    let doc = v3_document("types.kubefed.io", "v1beta1", &[federated()]);
    let s = &doc["components"]["schemas"]["io.kubefed.types.v1beta1.FederatedDeployment"];
    assert_eq!(
        s["x-kubernetes-group-version-kind"],
        json!([{"group": "types.kubefed.io", "kind": "FederatedDeployment", "version": "v1beta1"}])
    );
    assert_eq!(
        s["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(s["properties"]["apiVersion"]["type"], "string");
    assert_eq!(
        s["properties"]["spec"]["properties"]["placement"]["type"],
        "object"
    );
    let patch = &doc["paths"]["/apis/types.kubefed.io/v1beta1/namespaces/{namespace}/federateddeployments/{name}"]
        ["patch"];
    let content = patch["requestBody"]["content"].as_object().unwrap();
    assert!(!content.contains_key("application/strategic-merge-patch+json"));
    assert!(content.contains_key("application/apply-patch+yaml"));
    assert!(
        doc["components"]["schemas"]
            .get("io.kubefed.types.v1beta1.FederatedDeploymentList")
            .is_some()
    );
}

#[test]
fn core_group_and_cluster_scoped_paths() {
    let ns = ResourceSchema {
        group: String::new(),
        version: "v1".into(),
        kind: "Namespace".into(),
        list_kind: "NamespaceList".into(),
        plural: "namespaces".into(),
        namespaced: false,
        verbs: vec!["get".into(), "list".into(), "create".into()],
        ..Default::default()
    };
    let doc = v3_document("", "v1", &[ns]);
    let item = &doc["paths"]["/api/v1/namespaces/{name}"];
    assert_eq!(item["get"]["operationId"], "readCoreV1Namespace");
    assert_eq!(item["get"]["x-kubernetes-group-version-kind"]["group"], "");
    assert!(item.get("patch").is_none(), "patch is not among the verbs");
    assert!(
        doc["components"]["schemas"]
            .get("io.k8s.api.core.v1.Namespace")
            .is_some()
    );
}

#[test]
fn swagger_v2_uses_definitions_and_body_parameters() {
    let doc = v2_document(&[deployment(), federated()]);
    assert_eq!(doc["swagger"], "2.0");
    let defs = &doc["definitions"];
    assert!(defs.get("io.k8s.api.apps.v1.Deployment").is_some());
    assert!(
        defs.get("io.kubefed.types.v1beta1.FederatedDeployment")
            .is_some()
    );
    let mut refs = Vec::new();
    all_refs(&doc, &mut refs);
    for r in refs {
        let name = r.strip_prefix("#/definitions/").unwrap();
        assert!(defs.get(name).is_some(), "dangling {r}");
    }
    let spec = resolve(
        &doc,
        &defs["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"],
        "#/definitions/",
    );
    assert_eq!(spec["properties"]["replicas"]["type"], "integer");
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(patch["parameters"][0]["in"], "body");
    assert!(
        patch["consumes"]
            .as_array()
            .unwrap()
            .contains(&json!("application/strategic-merge-patch+json"))
    );
    let fv = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "fieldValidation")
        .unwrap();
    assert_eq!(fv["type"], "string");
    assert!(patch["responses"]["200"]["schema"]["$ref"].is_string());
}

#[test]
fn v3_index_points_at_documents() {
    let idx = v3_index(
        &[("".into(), "v1".into()), ("apps".into(), "v1".into())],
        &|g, v| format!("{g}{v}hash"),
    );
    assert_eq!(
        idx["paths"]["api/v1"]["serverRelativeURL"],
        "/openapi/v3/api/v1?hash=v1hash"
    );
    assert_eq!(
        idx["paths"]["apis/apps/v1"]["serverRelativeURL"],
        "/openapi/v3/apis/apps/v1?hash=appsv1hash"
    );
}
