//! Conversion between the forms of a built-in resource served under more than one
//! group/version, which share one store key prefix and are stored in one form like
//! kube-apiserver does:
//!
//! - HorizontalPodAutoscaler `autoscaling/v1` ⟷ `autoscaling/v2`, stored as v2. v1 knows one
//!   metric, the CPU utilization target (`spec.targetCPUUtilizationPercentage`,
//!   `status.currentCPUUtilizationPercentage`), which maps to a v2 `Resource` metric named `cpu`
//!   with an `Utilization` target. What v1 cannot express (other metrics, `behavior`, status
//!   conditions and other current metrics) travels in the `autoscaling.alpha.kubernetes.io/…`
//!   annotations kube uses, so an object read and written back as v1 keeps it. (Kube writes the
//!   other metrics there in its internal v1 metric form; here they keep their v2 form.)
//! - Event `v1` ⟷ `events.k8s.io/v1`, stored as core v1 under `/registry/core/events/`: the
//!   same fields under kube's other names (`involvedObject` is `regarding`, `message` is
//!   `note`, `source` is `deprecatedSource`, …).

use serde_json::{Value, json};

use super::Resource;
use crate::error::{ApiError, ApiResult};

const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";

/// The apiVersion a built-in resource served in several forms is stored in.
pub fn storage_api_version(group: &str, plural: &str) -> Option<&'static str> {
    match (group, plural) {
        ("autoscaling", "horizontalpodautoscalers") => Some("autoscaling/v2"),
        ("" | "events.k8s.io", "events") => Some("v1"),
        _ => None,
    }
}

/// The group spelled in store keys: `core` for the core group and for the resources stored
/// with a core one (events.k8s.io events).
pub fn storage_group<'a>(group: &'a str, plural: &str) -> &'a str {
    match (group, plural) {
        ("" | "events.k8s.io", "events") | ("", _) => "core",
        (g, _) => g,
    }
}

/// Converts stored objects of a built-in resource to the form `res` serves.
pub fn to_served(res: &Resource, objs: Vec<Value>) -> ApiResult<Vec<Value>> {
    let target = res.api_version();
    let Some(stored) = storage_api_version(&res.group, &res.plural) else {
        return Ok(objs);
    };
    objs.into_iter()
        .map(|o| {
            // An object without apiVersion is taken to be in the storage form.
            let from = o
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or(stored)
                .to_string();
            if from == target {
                Ok(o)
            } else {
                convert(o, &from, &target)
            }
        })
        .collect()
}

/// Converts an object of `res`'s form to the storage form.
pub fn to_storage(res: &Resource, obj: Value) -> ApiResult<Value> {
    let from = res.api_version();
    match storage_api_version(&res.group, &res.plural) {
        Some(to) if to != from => convert(obj, &from, to),
        _ => Ok(obj),
    }
}

fn convert(obj: Value, from: &str, to: &str) -> ApiResult<Value> {
    let mut out = match (from, to) {
        ("autoscaling/v2", "autoscaling/v1") => hpa_v2_to_v1(obj),
        ("autoscaling/v1", "autoscaling/v2") => hpa_v1_to_v2(obj),
        ("v1", "events.k8s.io/v1") => rename(obj, EVENT_FIELDS.iter().map(|(c, e)| (*c, *e))),
        ("events.k8s.io/v1", "v1") => event_as_core(obj),
        _ => {
            return Err(ApiError::internal(format!(
                "no conversion from {from} to {to}"
            )));
        }
    };
    out["apiVersion"] = json!(to);
    Ok(out)
}

/// Core v1 Event fields and their events.k8s.io/v1 names; all others are the same in both.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// An events.k8s.io/v1 Event under its core v1 field names.
pub fn event_as_core(obj: Value) -> Value {
    rename(obj, EVENT_FIELDS.iter().map(|(c, e)| (*e, *c)))
}

fn rename<'a>(mut obj: Value, names: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    if let Some(m) = obj.as_object_mut() {
        let moved: Vec<(&str, Option<Value>)> =
            names.map(|(from, to)| (to, m.remove(from))).collect();
        for (to, v) in moved {
            if let Some(v) = v {
                m.insert(to.to_string(), v);
            }
        }
    }
    obj
}

fn is_cpu_utilization(m: &Value) -> bool {
    m.get("type").and_then(Value::as_str) == Some("Resource")
        && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        && m.pointer("/resource/target/type").and_then(Value::as_str) == Some("Utilization")
}

fn is_cpu_current(m: &Value) -> bool {
    m.get("type").and_then(Value::as_str) == Some("Resource")
        && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        && m.pointer("/resource/current/averageUtilization").is_some()
}

fn set_annotation(obj: &mut Value, key: &str, value: String) {
    let meta = crate::registry::meta::metadata_mut(obj);
    let a = meta.entry("annotations").or_insert_with(|| json!({}));
    if !a.is_object() {
        *a = json!({});
    }
    if let Value::Object(m) = a {
        m.insert(key.into(), Value::String(value));
    }
}

/// Moves `value` into the annotation `key` as JSON, unless it is empty.
fn stash(obj: &mut Value, key: &str, value: Option<Value>) {
    let empty = match &value {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(m)) => m.is_empty(),
        _ => false,
    };
    if !empty && let Some(v) = value {
        set_annotation(obj, key, v.to_string());
    }
}

/// Takes the annotation `key` out of the object, parsed.
fn unstash(obj: &mut Value, key: &str) -> Option<Value> {
    let a = obj.pointer_mut("/metadata/annotations")?.as_object_mut()?;
    let raw = a.remove(key)?;
    if a.is_empty()
        && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        m.remove("annotations");
    }
    serde_json::from_str(raw.as_str()?).ok()
}

fn hpa_v2_to_v1(mut obj: Value) -> Value {
    let spec = obj.get_mut("spec").and_then(Value::as_object_mut);
    let (metrics, behavior) = match spec {
        Some(s) => (s.remove("metrics"), s.remove("behavior")),
        None => (None, None),
    };
    let mut others = Vec::new();
    for m in metrics
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if is_cpu_utilization(m)
            && obj
                .pointer("/spec/targetCPUUtilizationPercentage")
                .is_none()
        {
            if let Some(n) = m.pointer("/resource/target/averageUtilization") {
                obj["spec"]["targetCPUUtilizationPercentage"] = n.clone();
            }
        } else {
            others.push(m.clone());
        }
    }
    stash(&mut obj, METRICS, Some(Value::Array(others)));
    stash(&mut obj, BEHAVIOR, behavior);
    let status = obj.get_mut("status").and_then(Value::as_object_mut);
    let (current, conditions) = match status {
        Some(s) => (s.remove("currentMetrics"), s.remove("conditions")),
        None => (None, None),
    };
    let mut other_current = Vec::new();
    for m in current
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if is_cpu_current(m)
            && obj
                .pointer("/status/currentCPUUtilizationPercentage")
                .is_none()
        {
            if let Some(n) = m.pointer("/resource/current/averageUtilization") {
                obj["status"]["currentCPUUtilizationPercentage"] = n.clone();
            }
        } else {
            other_current.push(m.clone());
        }
    }
    stash(&mut obj, CURRENT_METRICS, Some(Value::Array(other_current)));
    stash(&mut obj, CONDITIONS, conditions);
    obj
}

fn hpa_v1_to_v2(mut obj: Value) -> Value {
    let mut metrics = Vec::new();
    if let Some(n) = obj
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .and_then(|s| s.remove("targetCPUUtilizationPercentage"))
    {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": n}}}));
    }
    if let Some(Value::Array(others)) = unstash(&mut obj, METRICS) {
        metrics.extend(others);
    }
    if !metrics.is_empty() {
        obj["spec"]["metrics"] = Value::Array(metrics);
    }
    if let Some(b) = unstash(&mut obj, BEHAVIOR) {
        obj["spec"]["behavior"] = b;
    }
    let mut current = Vec::new();
    if let Some(n) = obj
        .get_mut("status")
        .and_then(Value::as_object_mut)
        .and_then(|s| s.remove("currentCPUUtilizationPercentage"))
    {
        current.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": n}}}));
    }
    if let Some(Value::Array(others)) = unstash(&mut obj, CURRENT_METRICS) {
        current.extend(others);
    }
    if !current.is_empty() {
        obj["status"]["currentMetrics"] = Value::Array(current);
    }
    if let Some(c) = unstash(&mut obj, CONDITIONS) {
        obj["status"]["conditions"] = c;
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn hpa(version: &str) -> std::sync::Arc<Resource> {
        Registry::new()
            .find("autoscaling", version, "horizontalpodautoscalers")
            .unwrap()
    }

    #[test]
    fn cpu_target_maps_between_v1_and_v2() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70},
            "status": {"currentReplicas": 2, "desiredReplicas": 2, "currentCPUUtilizationPercentage": 40}});
        let v2 = to_storage(&hpa("v1"), v1.clone()).unwrap();
        assert_eq!(v2["apiVersion"], "autoscaling/v2");
        assert_eq!(
            v2["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70}}}])
        );
        assert!(v2["spec"].get("targetCPUUtilizationPercentage").is_none());
        assert_eq!(
            v2["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
            40
        );
        let back = to_served(&hpa("v1"), vec![v2]).unwrap().remove(0);
        assert_eq!(back, v1);
    }

    #[test]
    fn what_v1_cannot_express_survives_a_v1_round_trip() {
        let v2 = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "annotations": {"team": "a"}},
            "spec": {"maxReplicas": 5,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}}},
            "status": {"conditions": [{"type": "AbleToScale", "status": "True"}]}});
        let v1 = to_served(&hpa("v1"), vec![v2.clone()]).unwrap().remove(0);
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 80);
        assert!(v1["spec"].get("metrics").is_none());
        assert!(
            v1["metadata"]["annotations"][METRICS]
                .as_str()
                .unwrap()
                .contains("memory")
        );
        assert!(v1["metadata"]["annotations"][BEHAVIOR].is_string());
        let again = to_storage(&hpa("v1"), v1).unwrap();
        assert_eq!(again["metadata"]["annotations"], json!({"team": "a"}));
        assert_eq!(again["spec"]["behavior"], v2["spec"]["behavior"]);
        assert_eq!(again["spec"]["metrics"].as_array().unwrap().len(), 2);
        assert_eq!(again["status"], v2["status"]);
    }

    #[test]
    fn events_map_between_core_and_events_k8s_io() {
        let reg = Registry::new();
        let core = reg.find("", "v1", "events").unwrap();
        let events = reg.find("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(core.prefix(), "/registry/core/events/");
        assert_eq!(events.prefix(), core.prefix());
        let e = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e1", "namespace": "default"},
            "regarding": {"kind": "Pod", "name": "web-1"}, "note": "pulled", "reason": "Pulled",
            "reportingController": "kubelet", "deprecatedCount": 2, "type": "Normal"});
        let stored = to_storage(&events, e.clone()).unwrap();
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "web-1");
        assert_eq!(stored["message"], "pulled");
        assert_eq!(stored["reportingComponent"], "kubelet");
        assert_eq!(stored["count"], 2);
        assert!(stored.get("note").is_none());
        assert_eq!(to_storage(&core, stored.clone()).unwrap(), stored);
        assert_eq!(
            to_served(&core, vec![stored.clone()]).unwrap(),
            vec![stored.clone()]
        );
        assert_eq!(to_served(&events, vec![stored]).unwrap(), vec![e]);
    }

    #[test]
    fn single_version_resources_are_left_alone() {
        let deploy = Registry::new().find("apps", "v1", "deployments").unwrap();
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}});
        assert_eq!(to_storage(&deploy, d.clone()).unwrap(), d);
        assert_eq!(to_served(&deploy, vec![d.clone()]).unwrap(), vec![d]);
    }
}
