//! The `/scale` subresource: an `autoscaling/v1` Scale view of replicas and selector.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::registry::Resource;

fn set_pointer(obj: &mut Value, ptr: &str, v: Value) {
    let mut cur = obj;
    let parts: Vec<&str> = ptr.split('/').skip(1).collect();
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Value::Object(m) = cur else { return };
        if i + 1 == parts.len() {
            m.insert((*p).to_string(), v);
            return;
        }
        cur = m.entry((*p).to_string()).or_insert_with(|| json!({}));
    }
}

/// The Scale of an object.
pub fn to_scale(res: &Resource, obj: &Value) -> Value {
    let Some(paths) = &res.scale else {
        return Value::Null;
    };
    let spec = obj
        .pointer(&paths.spec_replicas)
        .and_then(Value::as_i64)
        .unwrap_or(if res.crd.is_none() { 1 } else { 0 });
    let status = obj
        .pointer(&paths.status_replicas)
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let selector = paths
        .label_selector
        .as_ref()
        .and_then(|p| obj.pointer(p))
        .map(|s| match s {
            Value::String(s) => s.clone(),
            // A ReplicationController's selector is a plain label map.
            Value::Object(m)
                if !m.contains_key("matchLabels") && !m.contains_key("matchExpressions") =>
            {
                let mut pairs: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                pairs.sort();
                pairs.join(",")
            }
            other => crate::registry::selector::label_selector_string(other),
        })
        .unwrap_or_default();
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut meta = json!({});
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(k) {
            meta[k] = v.clone();
        }
    }
    let mut status_obj = json!({"replicas": status});
    if !selector.is_empty() {
        status_obj["selector"] = json!(selector);
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta, "spec": {"replicas": spec}, "status": status_obj})
}

/// Writes a Scale's `spec.replicas` (and its resourceVersion precondition) into the object.
pub fn apply_scale(res: &Resource, mut obj: Value, scale: &Value) -> ApiResult<Value> {
    let Some(paths) = &res.scale else {
        return Err(ApiError::path_not_found());
    };
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            ApiError::invalid(
                "autoscaling",
                "Scale",
                scale
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                vec![crate::error::Cause::required("spec.replicas", "")],
            )
        })?;
    if replicas < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            scale
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            vec![crate::error::Cause::invalid(
                "spec.replicas",
                &json!(replicas),
                "must be greater than or equal to 0",
            )],
        ));
    }
    set_pointer(&mut obj, &paths.spec_replicas, json!(replicas));
    if let Some(rv) = scale
        .pointer("/metadata/resourceVersion")
        .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
    {
        crate::registry::meta::metadata_mut(&mut obj).insert("resourceVersion".into(), rv.clone());
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn deployment_scale_round_trip() {
        let res = Registry::new().find("apps", "v1", "deployments").unwrap();
        let d = json!({"metadata": {"name": "d", "namespace": "n"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}}}, "status": {"replicas": 1}});
        let s = to_scale(&res, &d);
        assert_eq!(s["spec"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=d");
        let d2 = apply_scale(&res, d, &json!({"spec": {"replicas": 5}})).unwrap();
        assert_eq!(d2["spec"]["replicas"], 5);
    }

    #[test]
    fn replication_controller_selector_is_a_label_map() {
        let res = Registry::new()
            .find("", "v1", "replicationcontrollers")
            .unwrap();
        let rc = json!({"metadata": {"name": "rc"}, "spec": {"replicas": 3, "selector": {"tier": "web", "app": "shop"}}});
        let s = to_scale(&res, &rc);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["selector"], "app=shop,tier=web");
    }
}
