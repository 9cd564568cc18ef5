//! FederatedTypeConfig validation, KubeFed's `ValidateFederatedTypeConfig`: the name is the
//! target type's `<plural>(.<group>)`; `targetType`, `federatedType` and `statusType` are API
//! types (DNS group, DNS-1035 version, kind and plural, scope `Namespaced` or `Cluster`; the
//! federated and status types need a group with a dot); `propagation` is `Enabled` or
//! `Disabled`, `statusCollection` too when set. cellfed adds: on update the scopes of the target
//! and federated types are immutable (a type's objects cannot move in or out of namespaces), and
//! `pluralName` may be left out (it is computed from the kind).

use serde_json::{Value, json};

use super::field::{self, ErrorList};

const ON_OFF: [&str; 2] = ["Enabled", "Disabled"];
const SCOPES: [&str; 2] = ["Cluster", "Namespaced"];

/// Every field error of a FederatedTypeConfig; `old` is the stored object on update (pure).
pub fn validate(obj: &Value, old: Option<&Value>) -> ErrorList {
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let mut errs = ErrorList::new();
    name(obj, &spec, &mut errs);
    api_resource(spec.get("targetType"), "spec.targetType", false, &mut errs);
    enumeration(
        spec.get("propagation"),
        "spec.propagation",
        &ON_OFF,
        true,
        &mut errs,
    );
    api_resource(
        spec.get("federatedType"),
        "spec.federatedType",
        true,
        &mut errs,
    );
    if let Some(status_type) = spec.get("statusType").filter(|v| !v.is_null()) {
        api_resource(Some(status_type), "spec.statusType", true, &mut errs);
    }
    enumeration(
        spec.get("statusCollection"),
        "spec.statusCollection",
        &ON_OFF,
        false,
        &mut errs,
    );
    if let Some(old) = old {
        for (pointer, path) in [
            ("/spec/targetType/scope", "spec.targetType.scope"),
            ("/spec/federatedType/scope", "spec.federatedType.scope"),
        ] {
            let (now, before) = (obj.pointer(pointer), old.pointer(pointer));
            if before.is_some() && now != before {
                errs.push(field::invalid(
                    path,
                    now.cloned().unwrap_or(Value::Null),
                    "field is immutable",
                ));
            }
        }
    }
    errs
}

/// `metadata.name` must be `<plural>.<group>` of the target type (`<plural>` for the core group).
fn name(obj: &Value, spec: &Value, errs: &mut ErrorList) {
    let text = |p: &str| spec.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let kind = text("/targetType/kind");
    if kind.is_empty() {
        return; // reported on spec.targetType.kind
    }
    let plural = match text("/targetType/pluralName") {
        "" => cellfed_api::kubefed::plural_name(kind),
        p => p.to_string(),
    };
    let expected = match text("/targetType/group") {
        "" => plural,
        group => format!("{plural}.{group}"),
    };
    let actual = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if actual != expected {
        errs.push(field::invalid(
            "metadata.name",
            json!(actual),
            format!("name must be 'TARGET_PLURAL_NAME(.TARGET_GROUP_NAME)', here {expected:?}"),
        ));
    }
}

/// KubeFed's `ValidateAPIResource` (and `ValidateFederatedAPIResource` when `federated`).
fn api_resource(value: Option<&Value>, path: &str, federated: bool, errs: &mut ErrorList) {
    let Some(res) = value.filter(|v| v.is_object()) else {
        errs.push(field::required(path, ""));
        return;
    };
    let text = |k: &str| res.get(k).and_then(Value::as_str).unwrap_or_default();
    let group = text("group");
    if federated && group.is_empty() {
        errs.push(field::required(format!("{path}.group"), ""));
    } else if federated && !group.contains('.') {
        errs.push(field::invalid(
            format!("{path}.group"),
            json!(group),
            "should be a domain with at least one dot",
        ));
    }
    if !group.is_empty()
        && let Err(why) = field::dns1123_subdomain(group)
    {
        errs.push(field::invalid(format!("{path}.group"), json!(group), why));
    }
    for (key, lower) in [("version", false), ("kind", true), ("pluralName", false)] {
        let value = text(key);
        let required = key != "pluralName";
        if value.is_empty() {
            if required {
                errs.push(field::required(format!("{path}.{key}"), ""));
            }
            continue;
        }
        let checked = if lower {
            value.to_lowercase()
        } else {
            value.to_string()
        };
        if let Err(why) = field::dns1035_label(&checked) {
            errs.push(field::invalid(format!("{path}.{key}"), json!(value), why));
        }
    }
    enumeration(
        res.get("scope"),
        &format!("{path}.scope"),
        &SCOPES,
        true,
        errs,
    );
}

/// A string that must be one of `accepted` (KubeFed's `validateEnumStrings`); a missing value is
/// an error only when `required`.
pub(super) fn enumeration(
    value: Option<&Value>,
    path: &str,
    accepted: &[&str],
    required: bool,
    errs: &mut ErrorList,
) {
    match value {
        None | Some(Value::Null) if !required => {}
        None | Some(Value::Null) => errs.push(field::required(path, "")),
        Some(Value::String(s)) if s.is_empty() => errs.push(field::required(path, "")),
        Some(Value::String(s)) if accepted.contains(&s.as_str()) => {}
        Some(other) => errs.push(field::not_supported(path, other.clone(), accepted)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployments() -> Value {
        json!({"apiVersion": "core.kubefed.io/v1beta1", "kind": "FederatedTypeConfig",
               "metadata": {"name": "deployments.apps", "namespace": "kube-federation-system"},
               "spec": {
                 "targetType": {"group": "apps", "version": "v1", "kind": "Deployment", "pluralName": "deployments", "scope": "Namespaced"},
                 "propagation": "Enabled",
                 "federatedType": {"group": "types.kubefed.io", "version": "v1beta1", "kind": "FederatedDeployment", "pluralName": "federateddeployments", "scope": "Namespaced"},
                 "statusCollection": "Disabled"}})
    }

    fn fields(obj: &Value, old: Option<&Value>) -> Vec<String> {
        validate(obj, old).into_iter().map(|e| e.field).collect()
    }

    fn with(pointer: &str, value: Value) -> Value {
        let mut o = deployments();
        *o.pointer_mut(pointer).unwrap() = value;
        o
    }

    #[test]
    fn kubefedctl_enable_output_is_accepted() {
        assert!(fields(&deployments(), None).is_empty());
        // the core group and a computed plural
        let cm = json!({"metadata": {"name": "configmaps"}, "spec": {
            "targetType": {"version": "v1", "kind": "ConfigMap", "scope": "Namespaced"},
            "propagation": "Disabled",
            "federatedType": {"group": "types.kubefed.io", "version": "v1beta1", "kind": "FederatedConfigMap", "pluralName": "federatedconfigmaps", "scope": "Namespaced"}}});
        assert!(fields(&cm, None).is_empty(), "{:?}", validate(&cm, None));
        // the same object again is an allowed update
        assert!(fields(&deployments(), Some(&deployments())).is_empty());
    }

    #[test]
    fn the_name_must_be_plural_dot_group() {
        let o = with("/metadata/name", json!("deployments"));
        let errs = validate(&o, None);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.name");
        assert!(
            errs[0].detail.contains("\"deployments.apps\""),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn type_fields_are_required_and_well_formed() {
        let mut o = deployments();
        o["spec"]["targetType"]
            .as_object_mut()
            .unwrap()
            .remove("version");
        assert_eq!(fields(&o, None), ["spec.targetType.version"]);
        assert_eq!(
            fields(&with("/spec/targetType/kind", json!("Deploy_ment")), None),
            ["spec.targetType.kind"]
        );
        assert_eq!(
            fields(&with("/spec/targetType/scope", json!("Global")), None),
            ["spec.targetType.scope"]
        );
        assert_eq!(
            fields(&with("/spec/federatedType/group", json!("types")), None),
            ["spec.federatedType.group"]
        );
        assert_eq!(
            fields(&with("/spec/federatedType/group", json!("")), None),
            ["spec.federatedType.group"]
        );
        assert_eq!(
            fields(&with("/spec/federatedType/version", json!("V1")), None),
            ["spec.federatedType.version"]
        );
        let mut o = deployments();
        o["spec"].as_object_mut().unwrap().remove("federatedType");
        assert_eq!(fields(&o, None), ["spec.federatedType"]);
        let o = with("/spec/statusCollection", json!("Yes"));
        let mut status_type = deployments();
        status_type["spec"]["statusType"] =
            json!({"group": "core", "version": "v1", "kind": "X", "scope": "Namespaced"});
        assert_eq!(fields(&status_type, None), ["spec.statusType.group"]);
        assert_eq!(fields(&o, None), ["spec.statusCollection"]);
    }

    #[test]
    fn propagation_is_enabled_or_disabled() {
        let errs = validate(&with("/spec/propagation", json!("On")), None);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            (errs[0].field.as_str(), errs[0].type_),
            ("spec.propagation", field::ErrorType::NotSupported)
        );
        let mut o = deployments();
        o["spec"].as_object_mut().unwrap().remove("propagation");
        assert_eq!(validate(&o, None)[0].type_, field::ErrorType::Required);
    }

    #[test]
    fn scopes_are_immutable_on_update() {
        let cluster = with("/spec/targetType/scope", json!("Cluster"));
        let errs = validate(&cluster, Some(&deployments()));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.targetType.scope");
        assert!(
            errs[0].to_string().ends_with("field is immutable"),
            "{}",
            errs[0]
        );
        let fed = with("/spec/federatedType/scope", json!("Cluster"));
        assert_eq!(
            fields(&fed, Some(&deployments())),
            ["spec.federatedType.scope"]
        );
        // on create there is nothing to compare with
        assert!(fields(&cluster, None).is_empty());
    }
}
