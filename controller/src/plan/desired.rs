//! The desired member object of one cluster, and whether a member already carries it.
//!
//! desired = template + the cluster's overrides, named like the federated resource (in the cell's
//! member namespace for a cell cluster), labelled `kubefed.io/managed: "true"`, stamped with a hash
//! of that content (`cellfed.io/template-hash`) and the federated generation it came from. On update
//! the member's own fields are retained as KubeFed retains them (see [`retain`]).

use std::collections::BTreeSet;

use cellfed_api::well_known::{
    FEDERATED_RESOURCE_ANNOTATION, FEDERATED_RESOURCE_UID_ANNOTATION, MANAGED_LABEL,
    MANAGED_LABEL_VALUE, PROPAGATED_ANNOTATIONS_ANNOTATION,
};
use serde_json::{Map, Value, json};

use super::{TargetType, overrides};

/// Hash of the desired content (template + overrides) written on members.
pub const TEMPLATE_HASH_ANNOTATION: &str = "cellfed.io/template-hash";
/// Federated generation whose content the member carries.
pub const FEDERATED_GENERATION_ANNOTATION: &str = "cellfed.io/federated-generation";

/// Builds the desired object for a cluster (before retention); the error is an override failure.
pub fn build(
    template: &Map<String, Value>,
    overrides: &[cellfed_api::federated::ClusterOverride],
    target: &TargetType,
    name: &str,
    namespace: Option<&str>,
) -> Result<Value, String> {
    let mut obj = Value::Object(template.clone());
    obj["apiVersion"] = json!(target.api_version);
    obj["kind"] = json!(target.kind);
    overrides::apply(&mut obj, overrides)?;
    let Some(map) = obj.as_object_mut() else {
        return Err("the template is not an object".into());
    };
    map.remove("status");
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    let meta = meta.as_object_mut().ok_or("metadata is not an object")?;
    for server_field in [
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "generation",
        "managedFields",
        "selfLink",
        "ownerReferences",
        "deletionTimestamp",
        "generateName",
    ] {
        meta.remove(server_field);
    }
    meta.insert("name".into(), json!(name));
    match namespace {
        Some(ns) if target.namespaced => drop(meta.insert("namespace".into(), json!(ns))),
        _ => drop(meta.remove("namespace")),
    }
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels[MANAGED_LABEL] = json!(MANAGED_LABEL_VALUE);
    let hash = content_hash(&obj);
    if let Some(ann) = annotations_mut(&mut obj) {
        ann.insert(TEMPLATE_HASH_ANNOTATION.into(), json!(hash));
    }
    Ok(obj)
}

/// A stable hash of `obj` (FNV-1a over its canonical JSON).
pub fn content_hash(obj: &Value) -> String {
    let bytes = serde_json::to_vec(&canonical(obj)).unwrap_or_default();
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: std::collections::BTreeMap<_, _> =
                m.iter().map(|(k, v)| (k.clone(), canonical(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The hash a member object carries, if any.
pub fn member_hash(member: &Value) -> Option<&str> {
    member
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(TEMPLATE_HASH_ANNOTATION))
        .and_then(Value::as_str)
}

/// The desired object's annotations, created when missing.
pub fn annotations_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let meta = obj
        .as_object_mut()?
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let ann = meta
        .as_object_mut()?
        .entry("annotations")
        .or_insert_with(|| json!({}));
    if !ann.is_object() {
        *ann = json!({});
    }
    ann.as_object_mut()
}

/// Annotations on update. Without rules (KubeFed): the member's annotations are kept and only
/// keys the cluster's overrides set are forced. With `propagatedAnnotations` rules: template keys
/// matching a rule are set, matching keys we set earlier and the template dropped are removed,
/// every other member key is kept. Our own bookkeeping keys always come from `desired`.
pub fn merge_annotations(
    desired: &mut Value,
    member: &Value,
    rules: &[String],
    override_keys: &BTreeSet<String>,
) {
    let ours = [
        TEMPLATE_HASH_ANNOTATION,
        FEDERATED_GENERATION_ANNOTATION,
        PROPAGATED_ANNOTATIONS_ANNOTATION,
        FEDERATED_RESOURCE_ANNOTATION,
        FEDERATED_RESOURCE_UID_ANNOTATION,
    ];
    let wanted = annotations_mut(desired).cloned().unwrap_or_default();
    let member_ann = member
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = member_ann.clone();
    if rules.is_empty() {
        for (k, v) in &wanted {
            if override_keys.contains(k) || ours.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
    } else {
        let previously: BTreeSet<String> = member_ann
            .get(PROPAGATED_ANNOTATIONS_ANNOTATION)
            .and_then(Value::as_str)
            .map(|s| {
                s.split(',')
                    .filter(|k| !k.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let matching = |k: &str| {
            rules
                .iter()
                .any(|r| cellfed_api::kubefed::wildcard_match(r, k))
        };
        for k in &previously {
            if !wanted.contains_key(k) {
                out.remove(k);
            }
        }
        for (k, v) in &wanted {
            if matching(k) || override_keys.contains(k) || ours.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(set) = wanted.get(PROPAGATED_ANNOTATIONS_ANNOTATION) {
        out.insert(PROPAGATED_ANNOTATIONS_ANNOTATION.into(), set.clone());
    } else {
        out.remove(PROPAGATED_ANNOTATIONS_ANNOTATION);
    }
    desired["metadata"]["annotations"] = Value::Object(out);
}

/// Records which annotation keys the rules made us set (for removal when the template drops them).
pub fn record_propagated(desired: &mut Value, rules: &[String]) {
    if rules.is_empty() {
        return;
    }
    let Some(ann) = annotations_mut(desired) else {
        return;
    };
    let keys: Vec<String> = ann
        .keys()
        .filter(|k| {
            rules
                .iter()
                .any(|r| cellfed_api::kubefed::wildcard_match(r, k))
        })
        .cloned()
        .collect();
    if keys.is_empty() {
        ann.remove(PROPAGATED_ANNOTATIONS_ANNOTATION);
    } else {
        ann.insert(
            PROPAGATED_ANNOTATIONS_ANNOTATION.into(),
            json!(keys.join(",")),
        );
    }
}

/// Keys under `/metadata/annotations` that overrides touch.
pub fn override_annotation_keys(
    overrides: &[cellfed_api::federated::ClusterOverride],
) -> BTreeSet<String> {
    overrides
        .iter()
        .filter_map(|o| o.path.strip_prefix("/metadata/annotations/"))
        .map(|k| k.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// KubeFed's retained member fields, copied from `member` into `desired` before an update.
pub fn retain(desired: &mut Value, member: &Value, kind: &str, retain_replicas: bool) {
    if let Some(rv) = member.pointer("/metadata/resourceVersion") {
        desired["metadata"]["resourceVersion"] = rv.clone();
    }
    if let Some(f) = member.pointer("/metadata/finalizers") {
        desired["metadata"]["finalizers"] = f.clone();
    }
    match kind {
        "Service" => retain_service(desired, member),
        "ServiceAccount" => {
            if desired.get("secrets").is_none()
                && let Some(s) = member.get("secrets")
            {
                desired["secrets"] = s.clone();
            }
        }
        _ => {}
    }
    if retain_replicas && let Some(r) = member.pointer("/spec/replicas") {
        desired["spec"]["replicas"] = r.clone();
    }
}

fn retain_service(desired: &mut Value, member: &Value) {
    let Some(mspec) = member.get("spec") else {
        return;
    };
    if !desired["spec"].is_object() {
        desired["spec"] = json!({});
    }
    for field in ["clusterIP", "clusterIPs", "healthCheckNodePort"] {
        if desired["spec"].get(field).is_none()
            && let Some(v) = mspec.get(field)
        {
            desired["spec"][field] = v.clone();
        }
    }
    let member_ports = mspec
        .get("ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(ports) = desired["spec"]
        .get_mut("ports")
        .and_then(Value::as_array_mut)
    {
        for (i, port) in ports.iter_mut().enumerate() {
            if port.get("nodePort").is_some() {
                continue;
            }
            let same = member_ports
                .iter()
                .find(|m| match (port.get("name"), m.get("name")) {
                    (Some(a), Some(b)) => a == b,
                    _ => m.get("port") == port.get("port"),
                });
            let same = same.or_else(|| {
                member_ports
                    .get(i)
                    .filter(|m| m.get("port") == port.get("port"))
            });
            if let Some(np) = same.and_then(|m| m.get("nodePort")) {
                port["nodePort"] = np.clone();
            }
        }
    }
}

/// Whether every field of `desired` has the same value in `member` (extra member fields, such as
/// the member's defaulting, are fine). Arrays must have the same length.
pub fn is_subset(desired: &Value, member: &Value) -> bool {
    match (desired, member) {
        (Value::Object(d), Value::Object(m)) => d.iter().all(|(k, v)| match m.get(k) {
            Some(mv) => is_subset(v, mv),
            None => {
                v.is_null()
                    || v.as_object().is_some_and(Map::is_empty)
                    || v.as_array().is_some_and(Vec::is_empty)
            }
        }),
        (Value::Array(d), Value::Array(m)) => {
            d.len() == m.len() && d.iter().zip(m).all(|(a, b)| is_subset(a, b))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_ignores_member_defaults_but_not_drift() {
        let desired = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        let defaulted = json!({"spec": {"replicas": 2, "strategy": {"type": "RollingUpdate"}, "template": {"spec": {"containers": [{"name": "a", "image": "x", "imagePullPolicy": "Always"}]}}}});
        assert!(is_subset(&desired, &defaulted));
        let drifted = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        assert!(!is_subset(&desired, &drifted));
    }

    #[test]
    fn service_keeps_allocated_ip_and_node_ports() {
        let mut desired =
            json!({"spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80}]}});
        let member = json!({"metadata": {"resourceVersion": "7"}, "spec": {"clusterIP": "10.0.0.9", "clusterIPs": ["10.0.0.9"], "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}});
        retain(&mut desired, &member, "Service", false);
        assert_eq!(desired["spec"]["clusterIP"], "10.0.0.9");
        assert_eq!(desired["spec"]["ports"][0]["nodePort"], 30080);
        assert_eq!(desired["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn hash_is_order_independent() {
        assert_eq!(
            content_hash(&json!({"a": 1, "b": [1, 2]})),
            content_hash(&json!({"b": [1, 2], "a": 1}))
        );
        assert_ne!(
            content_hash(&json!({"a": 1})),
            content_hash(&json!({"a": 2}))
        );
    }
}
