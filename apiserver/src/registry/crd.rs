//! CustomResourceDefinitions: validation, the status kube's controllers would write
//! (NamesAccepted, Established), and the served resources a CRD contributes.

use serde_json::{Value, json};

use crate::error::{ApiResult, Cause};
use crate::http::table::PrinterColumn;
use crate::registry::{ConversionStrategy, CrdInfo, Registry, Resource, ScalePaths};
use crate::state::AppState;

/// The prefix CRDs are stored under.
pub const CRD_PREFIX: &str = "/registry/apiextensions.k8s.io/customresourcedefinitions/";

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// The built-in resource `group`/`plural` names, if a CRD of that group and plural would take
/// its place: its objects live under the same keys, so serving it would serve (and deleting it
/// would delete) the built-in objects.
pub fn shadowed_builtin(group: &str, plural: &str) -> Option<String> {
    crate::registry::builtins()
        .iter()
        .find(|b| b.group == group && b.plural == plural)
        .map(|b| format!("{}.{}", b.plural, b.group))
}

/// Field errors when a CRD would take the place of a built-in resource (same group and plural,
/// or same group and kind).
fn collisions(group: &str, plural: &str, kind: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    if let Some(builtin) = shadowed_builtin(group, plural) {
        out.push(Cause::invalid(
            "spec.names.plural",
            &json!(plural),
            &format!(
                "{builtin} is a built-in resource of this API server; a CustomResourceDefinition must not redefine it"
            ),
        ));
    }
    if let Some(b) = crate::registry::builtins()
        .iter()
        .find(|b| b.group == group && b.kind == kind && b.plural != plural)
    {
        out.push(Cause::invalid(
            "spec.names.kind",
            &json!(kind),
            &format!(
                "kind {kind} of group {group} is the built-in resource {}.{}; a CustomResourceDefinition must not redefine it",
                b.plural, b.group
            ),
        ));
    }
    out
}

/// Field errors of a CRD spec.
pub fn validate(crd: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let group = s(crd, "/spec/group");
    let plural = s(crd, "/spec/names/plural");
    let name = s(crd, "/metadata/name");
    out.extend(collisions(group, plural, s(crd, "/spec/names/kind")));
    if group.is_empty() {
        out.push(Cause::required("spec.group", ""));
    } else if !group.contains('.') {
        out.push(Cause::invalid(
            "spec.group",
            &json!(group),
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        out.push(Cause::required("spec.names.plural", ""));
    }
    if s(crd, "/spec/names/kind").is_empty() {
        out.push(Cause::required("spec.names.kind", ""));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        out.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    match s(crd, "/spec/scope") {
        "Namespaced" | "Cluster" => {}
        other => out.push(Cause::not_supported(
            "spec.scope",
            &json!(other),
            &[json!("Cluster"), json!("Namespaced")],
        )),
    }
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
    match versions {
        None => out.push(Cause::required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        )),
        Some(vs) => {
            let storage = vs
                .iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .count();
            if storage != 1 {
                out.push(Cause::invalid(
                    "spec.versions",
                    &json!(vs),
                    "must have exactly one version marked as storage version",
                ));
            }
            for (i, v) in vs.iter().enumerate() {
                if v.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .is_empty()
                {
                    out.push(Cause::required(&format!("spec.versions[{i}].name"), ""));
                }
                if v.pointer("/schema/openAPIV3Schema").is_none() {
                    out.push(Cause::required(
                        &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                        "schemas are required",
                    ));
                }
            }
        }
    }
    out
}

/// Sets `status` as kube's naming and establishing controllers would.
pub fn set_status(crd: &mut Value, now: &str) {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let mut accepted = names.clone();
    if accepted.get("singular").is_none() {
        accepted["singular"] = json!(s(&names, "/kind").to_lowercase());
    }
    if accepted.get("listKind").is_none() {
        accepted["listKind"] = json!(format!("{}List", s(&names, "/kind")));
    }
    let storage: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let mut stored: Vec<Value> = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in storage {
        if !stored.contains(&v) {
            stored.push(v);
        }
    }
    let cond = |t: &str, reason: &str, msg: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": msg});
    crd["status"] = json!({
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": accepted,
        "storedVersions": stored,
    });
}

/// The resources one CRD serves (one per served version).
pub fn resources(crd: &Value) -> Vec<Resource> {
    let group = s(crd, "/spec/group").to_string();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let kind = s(&names, "/kind").to_string();
    let plural = s(&names, "/plural").to_string();
    let strs = |p: &str| -> Vec<String> {
        names
            .pointer(p)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .map(|v| s(v, "/name").to_string())
        .unwrap_or_default();
    let conversion = match s(crd, "/spec/conversion/strategy") {
        "Webhook" => ConversionStrategy::Webhook {
            client_config: crd
                .pointer("/spec/conversion/webhook/clientConfig")
                .cloned()
                .unwrap_or(json!({})),
        },
        _ => ConversionStrategy::None,
    };
    versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
        .map(|v| {
            let mut subresources = Vec::new();
            if v.pointer("/subresources/status").is_some() {
                subresources.push("status".to_string());
            }
            let scale = v.pointer("/subresources/scale").map(|sc| ScalePaths {
                spec_replicas: json_path_to_pointer(s(sc, "/specReplicasPath")),
                status_replicas: json_path_to_pointer(s(sc, "/statusReplicasPath")),
                label_selector: sc
                    .get("labelSelectorPath")
                    .and_then(Value::as_str)
                    .map(json_path_to_pointer),
            });
            if scale.is_some() {
                subresources.push("scale".to_string());
            }
            let printer_columns = v
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .map(|cols| {
                    cols.iter()
                        .map(|c| PrinterColumn {
                            name: s(c, "/name").into(),
                            type_: s(c, "/type").into(),
                            format: s(c, "/format").into(),
                            description: s(c, "/description").into(),
                            priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32,
                            json_path: s(c, "/jsonPath").into(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Resource {
                group: group.clone(),
                version: s(v, "/name").to_string(),
                kind: kind.clone(),
                plural: plural.clone(),
                singular: names
                    .get("singular")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| kind.to_lowercase()),
                short_names: strs("/shortNames"),
                categories: strs("/categories"),
                namespaced: s(crd, "/spec/scope") == "Namespaced",
                subresources,
                scale,
                generation: true,
                unconditional_update: false,
                create_on_update: false,
                crd: Some(CrdInfo {
                    crd_name: s(crd, "/metadata/name").to_string(),
                    storage_version: storage_version.clone(),
                    schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                    printer_columns,
                    conversion: conversion.clone(),
                }),
                verbs: crate::registry::VERBS,
            }
        })
        .collect()
}

/// `.spec.replicas` → `/spec/replicas`.
pub fn json_path_to_pointer(p: &str) -> String {
    p.trim_start_matches('.')
        .split('.')
        .filter(|x| !x.is_empty())
        .fold(String::new(), |acc, x| format!("{acc}/{x}"))
}

/// Rebuilds the registry's custom resources from the stored, established CRDs.
pub async fn reload(state: &AppState) -> ApiResult<()> {
    reload_registry(&state.store, &state.registry).await?;
    Ok(())
}

/// Serializes reloads, so that the registry always ends up with the newest LIST: a reload after
/// a write and one driven by the watch never overwrite a newer set with an older one.
static RELOADING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Rebuilds the registry's custom resources from one LIST of the stored CRDs; returns the
/// revision read at.
pub async fn reload_registry(store: &cellfed_store::Store, registry: &Registry) -> ApiResult<i64> {
    let _serial = RELOADING.lock().await;
    let list = store.list(CRD_PREFIX, Default::default()).await?;
    let mut custom = Vec::new();
    for kv in list.items {
        let Ok(crd) = serde_json::from_slice::<Value>(&kv.value) else {
            continue;
        };
        if crd.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        // Stored before such CRDs were refused: never let one take a built-in's place.
        if let Some(builtin) =
            shadowed_builtin(s(&crd, "/spec/group"), s(&crd, "/spec/names/plural"))
        {
            tracing::warn!(
                crd = s(&crd, "/metadata/name"),
                builtin,
                "not serving a CustomResourceDefinition that would shadow a built-in resource; delete it"
            );
            continue;
        }
        custom.extend(resources(&crd));
    }
    registry.set_custom(custom);
    Ok(list.revision)
}

/// Keeps the served custom resources in step with the stored CRDs until the task is aborted,
/// so a CRD created, changed or deleted through another replica on the same database is served
/// here within the store's poll interval.
pub async fn follow(state: AppState) {
    let (store, registry) = (state.store.clone(), state.registry.clone());
    let reload = || {
        let (store, registry) = (store.clone(), registry.clone());
        async move {
            reload_registry(&store, &registry)
                .await
                .map_err(|e| e.message)
        }
    };
    // writes through this server reload at once too; a second reload costs one LIST
    crate::storage::follow::follow(
        store.clone(),
        CRD_PREFIX,
        "custom resource definitions",
        || 0,
        reload,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}},
                 "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                 "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]},
                {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}}
            ]}})
    }

    #[test]
    fn crd_contributes_one_resource_per_served_version() {
        let rs = resources(&crd());
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].subresources, vec!["status", "scale"]);
        assert_eq!(
            rs[0].scale.as_ref().unwrap().spec_replicas,
            "/spec/replicas"
        );
        assert_eq!(rs[1].crd.as_ref().unwrap().storage_version, "v1");
        assert_eq!(
            rs[0].crd.as_ref().unwrap().printer_columns[0].json_path,
            ".spec.size"
        );
        assert!(validate(&crd()).is_empty());
    }

    #[test]
    fn status_is_established() {
        let mut c = crd();
        set_status(&mut c, "2024-01-01T00:00:00Z");
        assert_eq!(c["status"]["conditions"][1]["type"], "Established");
        assert_eq!(c["status"]["storedVersions"], json!(["v1"]));
        assert_eq!(c["status"]["acceptedNames"]["listKind"], "WidgetList");
    }

    #[test]
    fn crds_that_would_shadow_built_ins_are_invalid() {
        let mut c = crd();
        c["metadata"]["name"] = json!("leases.coordination.k8s.io");
        c["spec"]["group"] = json!("coordination.k8s.io");
        c["spec"]["names"] = json!({"plural": "leases", "kind": "Lease"});
        let causes = validate(&c);
        assert_eq!(causes.len(), 1, "{causes:?}");
        assert_eq!(causes[0].field, "spec.names.plural");
        assert!(
            causes[0]
                .message
                .contains("leases.coordination.k8s.io is a built-in")
        );
        c["metadata"]["name"] = json!("myleases.coordination.k8s.io");
        c["spec"]["names"] = json!({"plural": "myleases", "kind": "Lease"});
        assert_eq!(validate(&c)[0].field, "spec.names.kind");
        c["spec"]["names"] = json!({"plural": "myleases", "kind": "MyLease"});
        assert!(validate(&c).is_empty());
    }

    #[test]
    fn bad_crd_names() {
        let mut c = crd();
        c["metadata"]["name"] = json!("wrong");
        assert_eq!(validate(&c)[0].field, "metadata.name");
    }
}
