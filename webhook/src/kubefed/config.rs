//! KubeFedConfig validation and defaulting, KubeFed's `ValidateKubeFedConfig` and
//! `SetDefaultKubeFedConfig`. Validation: `scope` set and immutable; every duration present and
//! greater than 0; `leaseDuration > renewDeadline > retryPeriod × 1.2` (client-go's jitter
//! factor); `resourceLock` known; feature gate names known and unique, each `Enabled` or
//! `Disabled`; health check thresholds and controller concurrency at least 1; `adoptResources`
//! `Enabled` or `Disabled`. Defaulting fills what is missing with KubeFed's defaults
//! ([`cellfed_api::kubefed::KubeFedConfigSpec::with_defaults`]) and never changes a value given.

use std::collections::BTreeSet;
use std::time::Duration;

use cellfed_api::features::FeatureGate;
use cellfed_api::kubefed::{GoDuration, KubeFedConfigSpec};
use serde_json::{Map, Value, json};

use super::field::{self, ErrorList};
use super::type_config::enumeration;

/// client-go's `leaderelection.JitterFactor`: the leader must be able to retry within its
/// renew deadline.
const JITTER_FACTOR: f64 = 1.2;

/// Every field error of a KubeFedConfig; `old` is the stored object on update (pure).
pub fn validate(obj: &Value, old: Option<&Value>) -> ErrorList {
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let mut errs = ErrorList::new();
    enumeration(
        spec.get("scope"),
        "spec.scope",
        &["Cluster", "Namespaced"],
        true,
        &mut errs,
    );
    if let Some(before) = old.and_then(|o| o.pointer("/spec/scope"))
        && spec.get("scope") != Some(before)
    {
        errs.push(field::invalid(
            "spec.scope",
            spec.get("scope").cloned().unwrap_or(Value::Null),
            "field is immutable",
        ));
    }
    if let Some(d) = section(&spec, "controllerDuration", &mut errs) {
        positive_duration(
            d,
            "spec.controllerDuration",
            "availableDelay",
            true,
            &mut errs,
        );
        positive_duration(
            d,
            "spec.controllerDuration",
            "unavailableDelay",
            true,
            &mut errs,
        );
        // cellfed's extension; unset means the controller's default (5m)
        positive_duration(
            d,
            "spec.controllerDuration",
            "cacheSyncTimeout",
            false,
            &mut errs,
        );
    }
    if let Some(l) = section(&spec, "leaderElect", &mut errs) {
        leader_elect(l, &mut errs);
    }
    feature_gates(spec.get("featureGates"), &mut errs);
    if let Some(h) = section(&spec, "clusterHealthCheck", &mut errs) {
        const P: &str = "spec.clusterHealthCheck";
        positive_duration(h, P, "period", true, &mut errs);
        positive_int(h, P, "failureThreshold", &mut errs);
        positive_int(h, P, "successThreshold", &mut errs);
        positive_duration(h, P, "timeout", true, &mut errs);
    }
    if let Some(s) = section(&spec, "syncController", &mut errs) {
        if s.get("adoptResources").is_none_or(Value::is_null) {
            errs.push(field::required("spec.syncController.adoptResources", ""));
        } else {
            positive_int(
                s,
                "spec.syncController",
                "maxConcurrentReconciles",
                &mut errs,
            );
            enumeration(
                s.get("adoptResources"),
                "spec.syncController.adoptResources",
                &["Enabled", "Disabled"],
                true,
                &mut errs,
            );
        }
    }
    if let Some(s) = section(&spec, "statusController", &mut errs) {
        positive_int(
            s,
            "spec.statusController",
            "maxConcurrentReconciles",
            &mut errs,
        );
    }
    errs
}

/// `spec.<key>`, or a Required error.
fn section<'a>(spec: &'a Value, key: &str, errs: &mut ErrorList) -> Option<&'a Value> {
    let s = spec.get(key).filter(|v| v.is_object());
    if s.is_none() {
        errs.push(field::required(format!("spec.{key}"), ""));
    }
    s
}

/// The duration at `parent.key`; None (with an error) when missing, malformed or not > 0, or
/// when missing and not `required` (without one).
fn positive_duration(
    parent: &Value,
    path: &str,
    key: &str,
    required: bool,
    errs: &mut ErrorList,
) -> Option<Duration> {
    let path = format!("{path}.{key}");
    let value = parent.get(key).filter(|v| !v.is_null());
    let Some(value) = value else {
        if required {
            errs.push(field::required(path, ""));
        }
        return None;
    };
    let parsed = value
        .as_str()
        .ok_or_else(|| "must be a duration such as 10s".to_string())
        .and_then(|s| {
            GoDuration(s.to_string())
                .to_std()
                .map_err(|e| e.to_string())
        });
    match parsed {
        Ok(d) if !d.is_zero() => Some(d),
        Ok(_) => {
            errs.push(field::invalid(
                path,
                value.clone(),
                "should be greater than 0",
            ));
            None
        }
        Err(why) => {
            errs.push(field::invalid(path, value.clone(), why));
            None
        }
    }
}

/// The integer at `parent.key` must be present and at least 1.
fn positive_int(parent: &Value, path: &str, key: &str, errs: &mut ErrorList) {
    let path = format!("{path}.{key}");
    match parent.get(key) {
        None | Some(Value::Null) => errs.push(field::required(path, "")),
        Some(v) if v.as_i64().is_some_and(|n| n > 0) => {}
        Some(v) => errs.push(field::invalid(path, v.clone(), "should be greater than 0")),
    }
}

fn leader_elect(l: &Value, errs: &mut ErrorList) {
    const P: &str = "spec.leaderElect";
    let lease = positive_duration(l, P, "leaseDuration", true, errs);
    let renew = positive_duration(l, P, "renewDeadline", true, errs);
    let retry = positive_duration(l, P, "retryPeriod", true, errs);
    if let (Some(lease), Some(renew)) = (lease, renew)
        && lease <= renew
    {
        errs.push(field::invalid(
            format!("{P}.leaseDuration"),
            l["leaseDuration"].clone(),
            "leaseDuration must be greater than renewDeadline",
        ));
    }
    if let (Some(renew), Some(retry)) = (renew, retry)
        && renew.as_secs_f64() <= retry.as_secs_f64() * JITTER_FACTOR
    {
        errs.push(field::invalid(
            format!("{P}.renewDeadline"),
            l["renewDeadline"].clone(),
            format!(
                "renewDeadline must be greater than retryPeriod*JitterFactor({JITTER_FACTOR:.1})"
            ),
        ));
    }
    // cellfed also takes leases (coordination.k8s.io), which client-go recommends today
    enumeration(
        l.get("resourceLock"),
        &format!("{P}.resourceLock"),
        &["configmaps", "endpoints", "leases"],
        true,
        errs,
    );
}

fn feature_gates(gates: Option<&Value>, errs: &mut ErrorList) {
    const P: &str = "spec.featureGates";
    let Some(gates) = gates.and_then(Value::as_array) else {
        errs.push(field::required(P, ""));
        return;
    };
    let known = FeatureGate::ALL.map(FeatureGate::name);
    let mut seen = BTreeSet::new();
    for (i, gate) in gates.iter().enumerate() {
        let name = gate.get("name").cloned().unwrap_or(Value::Null);
        if let Some(n) = name.as_str()
            && !seen.insert(n.to_string())
        {
            errs.push(field::duplicate(format!("{P}[{i}].name"), name.clone()));
            continue;
        }
        enumeration(Some(&name), &format!("{P}[{i}].name"), &known, true, errs);
        enumeration(
            gate.get("configuration"),
            &format!("{P}[{i}].configuration"),
            &["Enabled", "Disabled"],
            true,
            errs,
        );
    }
}

/// The JSON patch that applies KubeFed's defaults to `obj`, or None when nothing is missing or
/// the spec is too malformed to default (validation then names the problem). Values given are
/// kept as written; missing feature gates are added with their defaults, sorted by name.
pub fn default_patch(obj: &Value) -> Option<Value> {
    let spec = obj.get("spec")?;
    let typed: KubeFedConfigSpec = serde_json::from_value(spec.clone()).ok()?;
    let defaults = serde_json::to_value(typed.with_defaults()).ok()?;
    let mut merged = spec.clone();
    fill(&mut merged, &defaults);
    if let (Some(m), Some(gates)) = (merged.as_object_mut(), defaults.get("featureGates")) {
        m.insert("featureGates".into(), gates.clone());
    }
    (&merged != spec).then(|| json!([{"op": "replace", "path": "/spec", "value": merged}]))
}

/// Adds to `target` every key of `defaults` it lacks, recursively through objects.
fn fill(target: &mut Value, defaults: &Value) {
    let (Some(t), Some(d)) = (target.as_object_mut(), defaults.as_object()) else {
        return;
    };
    fill_map(t, d);
}

fn fill_map(t: &mut Map<String, Value>, d: &Map<String, Value>) {
    for (k, v) in d {
        match t.get_mut(k) {
            None | Some(Value::Null) => {
                t.insert(k.clone(), v.clone());
            }
            Some(existing) => fill(existing, v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the defaulter makes of KubeFed's minimal config (`scope` only).
    fn defaulted(spec: Value) -> Value {
        let obj = json!({"apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedConfig",
                         "metadata": {"name": "kubefed", "namespace": "kube-federation-system"}, "spec": spec});
        match default_patch(&obj) {
            Some(p) => p[0]["value"].clone(),
            None => obj["spec"].clone(),
        }
    }

    fn config(spec: Value) -> Value {
        json!({"metadata": {"name": "kubefed"}, "spec": spec})
    }

    fn full() -> Value {
        config(defaulted(json!({"scope": "Cluster"})))
    }

    fn with(pointer: &str, value: Value) -> Value {
        let mut o = full();
        *o.pointer_mut(pointer).unwrap() = value;
        o
    }

    fn fields(obj: &Value) -> Vec<String> {
        validate(obj, None).into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn defaults_are_kubefeds() {
        let d = defaulted(json!({"scope": "Namespaced"}));
        assert_eq!(
            d,
            json!({
                "scope": "Namespaced",
                "controllerDuration": {"availableDelay": "20s", "unavailableDelay": "60s"},
                "leaderElect": {"leaseDuration": "15s", "renewDeadline": "10s", "retryPeriod": "5s", "resourceLock": "configmaps"},
                "featureGates": [
                    {"name": "PushReconciler", "configuration": "Enabled"},
                    {"name": "RawResourceStatusCollection", "configuration": "Disabled"},
                    {"name": "SchedulerPreferences", "configuration": "Enabled"},
                    {"name": "TenantIsolation", "configuration": "Enabled"}],
                "clusterHealthCheck": {"period": "10s", "failureThreshold": 3, "successThreshold": 1, "timeout": "3s"},
                "syncController": {"maxConcurrentReconciles": 1, "adoptResources": "Enabled"},
                "statusController": {"maxConcurrentReconciles": 1}
            })
        );
        assert!(fields(&config(d)).is_empty());
    }

    #[test]
    fn defaulting_keeps_what_is_given_and_is_idempotent() {
        let d = defaulted(
            json!({"scope": "Cluster", "leaderElect": {"leaseDuration": "1m"},
                                 "featureGates": [{"name": "TenantIsolation", "configuration": "Disabled"}],
                                 "syncController": {"adoptResources": "Disabled"}}),
        );
        assert_eq!(d["leaderElect"]["leaseDuration"], "1m");
        assert_eq!(d["leaderElect"]["renewDeadline"], "10s");
        assert_eq!(
            d["syncController"],
            json!({"adoptResources": "Disabled", "maxConcurrentReconciles": 1})
        );
        let gates = d["featureGates"].as_array().unwrap();
        assert_eq!(gates.len(), 4);
        assert_eq!(
            gates[3],
            json!({"name": "TenantIsolation", "configuration": "Disabled"})
        );
        assert_eq!(
            default_patch(&config(d)),
            None,
            "a defaulted config needs no patch"
        );
        // a spec that does not parse is left to validation
        assert_eq!(default_patch(&config(json!({"scope": "Everywhere"}))), None);
    }

    #[test]
    fn scope_is_required_and_immutable() {
        let mut o = full();
        o["spec"].as_object_mut().unwrap().remove("scope");
        assert_eq!(fields(&o), ["spec.scope"]);
        assert_eq!(
            fields(&with("/spec/scope", json!("Galaxy"))),
            ["spec.scope"]
        );
        let namespaced = with("/spec/scope", json!("Namespaced"));
        let errs = validate(&namespaced, Some(&full()));
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "spec.scope: Invalid value: \"Namespaced\": field is immutable"
        );
        assert!(validate(&full(), Some(&full())).is_empty());
    }

    #[test]
    fn durations_must_be_greater_than_zero() {
        for p in [
            "/spec/controllerDuration/availableDelay",
            "/spec/controllerDuration/unavailableDelay",
            "/spec/clusterHealthCheck/period",
            "/spec/clusterHealthCheck/timeout",
        ] {
            let errs = validate(&with(p, json!("0s")), None);
            assert_eq!(errs.len(), 1, "{p}: {errs:?}");
            assert_eq!(format!("/{}", errs[0].field.replace('.', "/")), p);
            assert!(
                errs[0].to_string().ends_with("should be greater than 0"),
                "{}",
                errs[0]
            );
        }
        let errs = validate(
            &with("/spec/controllerDuration/availableDelay", json!("soon")),
            None,
        );
        assert_eq!(errs[0].field, "spec.controllerDuration.availableDelay");
        let mut o = full();
        o["spec"]["controllerDuration"] =
            json!({"availableDelay": "1s", "unavailableDelay": "1s", "cacheSyncTimeout": "0s"});
        assert_eq!(fields(&o), ["spec.controllerDuration.cacheSyncTimeout"]);
        let mut o = full();
        o["spec"]["controllerDuration"]
            .as_object_mut()
            .unwrap()
            .remove("availableDelay");
        assert_eq!(fields(&o), ["spec.controllerDuration.availableDelay"]);
    }

    #[test]
    fn lease_beats_renew_beats_retry() {
        let mut o = full();
        o["spec"]["leaderElect"]["leaseDuration"] = json!("10s");
        let errs = validate(&o, None);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.leaderElect.leaseDuration");
        assert!(errs[0].detail.contains("greater than renewDeadline"));
        let mut o = full();
        o["spec"]["leaderElect"]["retryPeriod"] = json!("9s"); // 9s × 1.2 > 10s
        let errs = validate(&o, None);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.leaderElect.renewDeadline");
        assert!(errs[0].detail.contains("JitterFactor(1.2)"), "{}", errs[0]);
        assert_eq!(
            fields(&with("/spec/leaderElect/resourceLock", json!("secrets"))),
            ["spec.leaderElect.resourceLock"]
        );
        assert!(fields(&with("/spec/leaderElect/resourceLock", json!("leases"))).is_empty());
        assert_eq!(
            fields(&with("/spec/leaderElect/retryPeriod", json!("-1s"))),
            ["spec.leaderElect.retryPeriod"]
        );
    }

    #[test]
    fn feature_gates_are_known_unique_and_on_or_off() {
        let gates = |g: Value| fields(&with("/spec/featureGates", g));
        assert_eq!(
            gates(
                json!([{"name": "PushReconciler", "configuration": "Enabled"},
                         {"name": "PushReconciler", "configuration": "Disabled"}])
            ),
            ["spec.featureGates[1].name"]
        );
        let errs = validate(
            &with(
                "/spec/featureGates",
                json!([{"name": "PushReconciler", "configuration": "Enabled"}, {"name": "PushReconciler", "configuration": "Enabled"}]),
            ),
            None,
        );
        assert_eq!(errs[0].type_, field::ErrorType::Duplicate);
        assert_eq!(
            gates(json!([{"name": "Warp", "configuration": "Enabled"}])),
            ["spec.featureGates[0].name"]
        );
        assert_eq!(
            gates(json!([{"name": "PushReconciler", "configuration": "true"}])),
            ["spec.featureGates[0].configuration"]
        );
        assert!(gates(json!([])).is_empty(), "an empty list is fine");
        let mut o = full();
        o["spec"].as_object_mut().unwrap().remove("featureGates");
        assert_eq!(fields(&o), ["spec.featureGates"]);
    }

    #[test]
    fn thresholds_and_concurrency_are_at_least_one() {
        for p in [
            "/spec/clusterHealthCheck/failureThreshold",
            "/spec/clusterHealthCheck/successThreshold",
            "/spec/syncController/maxConcurrentReconciles",
            "/spec/statusController/maxConcurrentReconciles",
        ] {
            let errs = validate(&with(p, json!(0)), None);
            assert_eq!(errs.len(), 1, "{p}");
            assert_eq!(format!("/{}", errs[0].field.replace('.', "/")), p);
            assert!(validate(&with(p, json!(1)), None).is_empty(), "{p}");
        }
        assert_eq!(
            fields(&with(
                "/spec/syncController/adoptResources",
                json!("Sometimes")
            )),
            ["spec.syncController.adoptResources"]
        );
        let mut o = full();
        o["spec"]["syncController"] = json!({"maxConcurrentReconciles": 1});
        assert_eq!(fields(&o), ["spec.syncController.adoptResources"]);
        let mut o = full();
        o["spec"]
            .as_object_mut()
            .unwrap()
            .remove("clusterHealthCheck");
        assert_eq!(fields(&o), ["spec.clusterHealthCheck"]);
    }

    /// The KubeFedConfig cellfed ships passes its own validation unchanged.
    #[test]
    fn the_shipped_config_is_valid_and_complete() {
        let shipped =
            serde_json::to_value(cellfed_api::kubefed::KubeFedConfig::cellfed_default()).unwrap();
        assert!(
            validate(&shipped, None).is_empty(),
            "{:?}",
            validate(&shipped, None)
        );
        assert_eq!(default_patch(&shipped), None);
    }
}
