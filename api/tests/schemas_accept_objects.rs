#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The generated CRD schemas are structural and accept, without pruning anything, the objects the
//! typed structs and the conversion produce: a field missing from a schema would be silently
//! dropped by the apiserver.

use cellfed_api::all_crds;
use serde_json::{Value, json};

/// Schema of `version` of the CRD `name`.
fn schema(name: &str, version: &str) -> Value {
    let crd = all_crds()
        .unwrap()
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no CRD {name}"));
    let v = crd
        .spec
        .versions
        .into_iter()
        .find(|v| v.name == version)
        .unwrap();
    serde_json::to_value(v.schema.unwrap().open_api_v3_schema.unwrap()).unwrap()
}

/// Checks the structural-schema rules the apiserver enforces that our generator could break.
fn assert_structural(schema: &Value, path: &str) {
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&json!(true));
    for forbidden in [
        "$ref",
        "anyOf",
        "oneOf",
        "allOf",
        "not",
        "definitions",
        "$schema",
    ] {
        assert!(
            schema.get(forbidden).is_none() || int_or_string,
            "{path}: {forbidden} in a CRD schema"
        );
    }
    assert!(
        schema.get("type").is_some() || preserve || int_or_string,
        "{path}: no type"
    );
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            assert_structural(v, &format!("{path}.{k}"));
        }
    }
    if let Some(items) = schema.get("items") {
        assert_structural(items, &format!("{path}[]"));
    }
    if let Some(extra) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        assert_structural(extra, &format!("{path}{{}}"));
    }
}

/// Errors of `value` against `schema`: wrong types, missing required fields, values outside an
/// enum, and fields the apiserver would prune.
fn check(value: &Value, schema: &Value, path: &str, errors: &mut Vec<String>) {
    if value.is_null() && schema.get("nullable") == Some(&json!(true)) {
        return;
    }
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    let type_ok = match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some(other) => panic!("{path}: unexpected type {other}"),
    };
    if !type_ok {
        errors.push(format!("{path}: {value} is not of type {}", schema["type"]));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{path}: {value} not in {allowed:?}"));
    }
    match value {
        Value::Object(map) => {
            for req in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !map.contains_key(req.as_str().unwrap()) {
                    errors.push(format!("{path}: missing required {req}"));
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties").filter(|v| v.is_object());
            for (k, v) in map {
                let sub = format!("{path}.{k}");
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    check(v, s, &sub, errors);
                } else if let Some(s) = extra {
                    check(v, s, &sub, errors);
                } else if !preserve
                    && path != ".metadata"
                    && !(path.is_empty()
                        && ["apiVersion", "kind", "metadata"].contains(&k.as_str()))
                {
                    // The apiserver keeps apiVersion, kind and metadata and validates ObjectMeta
                    // itself, whatever the CRD schema says.
                    errors.push(format!("{sub}: would be pruned"));
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    check(v, s, &format!("{path}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}

fn assert_accepts(crd: &str, version: &str, object: &Value) {
    let mut errors = Vec::new();
    check(object, &schema(crd, version), "", &mut errors);
    assert!(
        errors.is_empty(),
        "{crd} {version} rejects the object:\n{}",
        errors.join("\n")
    );
}

fn yaml(s: &str) -> Value {
    serde_yaml::from_str(s).unwrap()
}

#[test]
fn every_generated_schema_is_structural() {
    for crd in all_crds().unwrap() {
        for v in crd.spec.versions {
            let schema =
                serde_json::to_value(v.schema.unwrap().open_api_v3_schema.unwrap()).unwrap();
            assert_structural(
                &schema,
                &format!("{}/{}", crd.metadata.name.clone().unwrap(), v.name),
            );
        }
    }
}

#[test]
fn the_checker_finds_pruned_and_mistyped_fields() {
    let mut errors = Vec::new();
    let bad = json!({"apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedDeployment",
        "metadata": {"name": "x"},
        "spec": {"placement": {"clusters": [{"name": 1}], "topologies": []}, "overrides": [{"clusterOverrides": []}]}});
    check(
        &bad,
        &schema("federateddeployments.types.kubefed.io", "v1beta1"),
        "",
        &mut errors,
    );
    let text = errors.join("\n");
    assert!(
        text.contains(".spec.placement.topologies: would be pruned"),
        "{text}"
    );
    assert!(
        text.contains(".spec.placement.clusters[0].name: 1 is not of type"),
        "{text}"
    );
    assert!(text.contains("missing required \"clusterName\""), "{text}");
}

#[test]
fn federated_objects_of_both_versions_are_accepted() {
    let v2 = yaml(
        r#"
apiVersion: types.kubefed.io/v1beta2
kind: FederatedDeployment
metadata: {name: web, namespace: ns, annotations: {team: blue}}
spec:
  topologyType: cell
  template:
    metadata: {labels: {app: web}}
    spec: {replicas: 3, template: {spec: {containers: [{name: web, image: "nginx:1"}]}}}
  placement:
    topologies: [{name: rz00a}, {name: rz00b}]
    clusterSelector:
      matchLabels: {zone: a}
      matchExpressions: [{key: region, operator: In, values: [east]}]
  placementMask: {topologies: [{name: rz00a}]}
  overrides:
  - topologyName: rz00b
    clusterOverrides:
    - {op: replace, path: /spec/replicas, value: 5}
    - {path: /metadata/annotations, op: add, value: {foo: bar}}
    - {path: /metadata/annotations/foo, op: remove}
  retainReplicas: false
status:
  observedGeneration: 3
  conditions:
  - {type: Propagation, status: "True", reason: "", lastUpdateTime: "2026-01-01T00:00:00Z", lastTransitionTime: "2026-01-01T00:00:00Z", message: ok}
  topologies:
  - {name: rz00a, generation: 3, remoteStatus: {readyReplicas: 3}}
  - {name: rz00b, status: CreationFailed}
  rollout: {updated: 1, total: 2, summary: 1/2}
"#,
    );
    assert_accepts("federateddeployments.types.kubefed.io", "v1beta2", &v2);
    let v1 = cellfed_api::to_v1beta1(&v2).unwrap();
    assert_accepts("federateddeployments.types.kubefed.io", "v1beta1", &v1);
}

#[test]
fn control_plane_objects_are_accepted() {
    let config = serde_json::to_value(cellfed_api::KubeFedConfig::cellfed_default()).unwrap();
    assert_accepts("kubefedconfigs.core.kubefed.io", "v1beta1", &config);

    let target = cellfed_api::TargetType::new(
        "",
        "v1",
        "Service",
        "services",
        cellfed_api::Scope::Namespaced,
    );
    let mut ftc = cellfed_api::FederatedTypeConfig::for_target(&target, "kube-federation-system");
    ftc.spec.propagated_annotations = vec!["example.com/*".into()];
    let ftc = serde_json::to_value(ftc).unwrap();
    assert_accepts("federatedtypeconfigs.core.kubefed.io", "v1beta1", &ftc);

    let cluster = yaml(
        r#"
apiVersion: core.kubefed.io/v1beta1
kind: KubeFedCluster
metadata: {name: rz00a.ns, namespace: kube-federation-system, labels: {cellfed.io/cell: rz00a}}
spec:
  apiEndpoint: https://10.0.0.1:6443
  caBundle: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
  secretRef: {name: member1}
  disabledTLSValidations: [SubjectName]
  proxyURL: http://proxy:3128
status:
  conditions: [{type: Ready, status: "True", lastProbeTime: "2026-01-01T00:00:00Z", reason: ClusterReady}]
  zones: [a]
  region: r
"#,
    );
    assert_accepts("kubefedclusters.core.kubefed.io", "v1beta1", &cluster);

    let cell = yaml(
        r#"
apiVersion: cellfed.io/v1alpha1
kind: Cell
metadata: {name: rz00a, namespace: ns}
spec: {clusterName: member1, memberNamespace: ns-rz00a}
status: {derivedClusterName: rz00a.ns, observedGeneration: 1, conditions: [{type: Ready, status: "True"}]}
"#,
    );
    assert_accepts("cells.cellfed.io", "v1alpha1", &cell);
}

#[test]
fn kubefed_samples_are_accepted() {
    let fd = yaml(
        r#"
apiVersion: types.kubefed.io/v1beta1
kind: FederatedDeployment
metadata: {name: test-deployment, namespace: test-namespace}
spec:
  template:
    metadata: {labels: {app: nginx}}
    spec:
      replicas: 3
      selector: {matchLabels: {app: nginx}}
      template:
        metadata: {labels: {app: nginx}}
        spec: {containers: [{image: nginx, name: nginx}]}
  placement:
    clusters: [{name: cluster2}, {name: cluster1}]
  overrides:
  - clusterName: cluster2
    clusterOverrides:
    - path: "/spec/replicas"
      value: 5
    - path: "/spec/template/spec/containers/0/image"
      value: "nginx:1.17.0-alpine"
    - path: "/metadata/annotations"
      op: "add"
      value: {foo: bar}
    - path: "/metadata/annotations/foo"
      op: "remove"
"#,
    );
    assert_accepts("federateddeployments.types.kubefed.io", "v1beta1", &fd);
    let config = yaml(
        r#"
apiVersion: core.kubefed.io/v1beta1
kind: KubeFedConfig
metadata: {name: kubefed, namespace: kube-federation-system}
spec:
  scope: Cluster
  controllerDuration: {availableDelay: 20s, unavailableDelay: 60s}
  leaderElect: {leaseDuration: 1500ms, renewDeadline: 1000ms, resourceLock: configmaps, retryPeriod: 500ms}
  featureGates:
  - {name: PushReconciler, configuration: "Enabled"}
  - {name: RawResourceStatusCollection, configuration: "Enabled"}
  - {name: SchedulerPreferences, configuration: "Enabled"}
  clusterHealthCheck: {failureThreshold: 3, period: 10s, successThreshold: 1, timeout: 3s}
  syncController: {maxConcurrentReconciles: 1, adoptResources: Enabled}
  statusController: {maxConcurrentReconciles: 1}
"#,
    );
    assert_accepts("kubefedconfigs.core.kubefed.io", "v1beta1", &config);
    let ftc = yaml(
        r#"
apiVersion: core.kubefed.io/v1beta1
kind: FederatedTypeConfig
metadata: {name: clusterroles.rbac.authorization.k8s.io}
spec:
  federatedType: {group: types.kubefed.io, kind: FederatedClusterRole, pluralName: federatedclusterroles, scope: Cluster, version: v1beta1}
  propagation: Enabled
  targetType: {group: rbac.authorization.k8s.io, kind: ClusterRole, pluralName: clusterroles, scope: Cluster, version: v1}
"#,
    );
    assert_accepts("federatedtypeconfigs.core.kubefed.io", "v1beta1", &ftc);
}
