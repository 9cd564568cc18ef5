//! Server-side apply: merge the applied configuration into the live object, track ownership
//! per manager in `metadata.managedFields`, detect conflicts, remove fields a manager stopped
//! applying; and `Update` ownership for every other write.

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use super::managed_fields::{
    FieldSet, ManagedEntry, diff_sets, entries, object_set, path_string, remove_at, set_entries,
    value_at,
};
use super::strategy::{ListKind, Ty, field};
use super::{ApplyConflict, PatchError};

/// What an apply needs besides the body.
pub struct ApplyInput<'a> {
    pub live: Option<&'a Value>,
    pub applied: &'a Value,
    pub manager: &'a str,
    pub force: bool,
    pub api_version: &'a str,
    pub kind: &'a str,
    pub root: Ty,
    pub now: &'a str,
    /// Drop `status` from the applied configuration (kube resets status on writes to the main
    /// resource of built-in kinds; status is written through `/status`).
    pub reset_status: bool,
}

/// Runs a server-side apply and returns the new object with managedFields.
pub fn server_side_apply(input: &ApplyInput<'_>) -> Result<Value, PatchError> {
    check_applied(input)?;
    let mut applied = Cow::Borrowed(input.applied);
    if input.reset_status
        && input.applied.get("status").is_some()
        && let Value::Object(m) = applied.to_mut()
    {
        m.remove("status");
    }
    let applied = applied.as_ref();
    let live = input.live.cloned().unwrap_or_else(|| json!({}));
    let mut managers = entries(&live);
    if input.live.is_some() && managers.is_empty() {
        // kube hands an object written before any tracking to this pseudo-manager.
        managers.push(ManagedEntry {
            manager: "before-first-apply".into(),
            operation: "Update".into(),
            api_version: input.api_version.to_string(),
            time: None,
            subresource: None,
            fields: object_set(&live, input.root),
        });
    }
    let applied_set = object_set(applied, input.root);

    let mut merged = live.clone();
    ssa_merge(&mut merged, applied, input.root);
    for k in ["apiVersion", "kind"] {
        if let (Some(v), Value::Object(m)) = (applied.get(k), &mut merged) {
            m.insert(k.into(), v.clone());
        }
    }

    let mut conflicts = Vec::new();
    for entry in &managers {
        if entry.same_manager(input.manager, "Apply") {
            continue;
        }
        for path in &entry.fields.0 {
            if !applied_set.contains(path) {
                continue;
            }
            let changed = if applied_set.has_children(path) {
                value_at(&live, path).is_some() != value_at(&merged, path).is_some()
            } else {
                value_at(&live, path) != value_at(&merged, path)
            };
            if changed {
                conflicts.push((entry.clone(), path.clone()));
            }
        }
    }
    if !conflicts.is_empty() {
        if !input.force {
            return Err(PatchError::Conflict {
                conflicts: conflicts
                    .into_iter()
                    .map(|(entry, path)| ApplyConflict {
                        manager_description: entry.description(),
                        manager: entry.manager,
                        field: path_string(&path),
                    })
                    .collect(),
            });
        }
        for entry in managers.iter_mut() {
            if !entry.same_manager(input.manager, "Apply") {
                for (_, path) in &conflicts {
                    entry.fields.0.remove(path);
                }
            }
        }
    }

    let previous = managers
        .iter()
        .find(|e| e.same_manager(input.manager, "Apply"))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others = managers
        .iter()
        .filter(|e| !e.same_manager(input.manager, "Apply"))
        .fold(FieldSet::default(), |acc, e| acc.union(&e.fields));
    let removable: Vec<_> = previous
        .difference(&applied_set)
        .0
        .into_iter()
        .filter(|p| !others.touches(p) && !applied_set.touches(p))
        .collect();
    for path in &removable {
        let under_removed = (1..path.len()).any(|i| removable.iter().any(|r| r[..] == path[..i]));
        if !under_removed && remove_at(&mut merged, path) {
            prune_empty_parent(&mut merged, path, &others.union(&applied_set));
        }
    }

    let entry = ManagedEntry {
        manager: input.manager.to_string(),
        operation: "Apply".into(),
        api_version: input.api_version.to_string(),
        time: Some(input.now.to_string()),
        subresource: None,
        fields: applied_set,
    };
    match managers
        .iter_mut()
        .find(|e| e.same_manager(input.manager, "Apply"))
    {
        Some(e) => *e = entry,
        None => managers.push(entry),
    }
    set_entries(&mut merged, &managers);
    Ok(merged)
}

/// Drops the list or map that held a removed field when it is now empty and nobody owns it.
fn prune_empty_parent(obj: &mut Value, path: &[String], owned: &FieldSet) {
    let parent = &path[..path.len() - 1];
    if parent.is_empty() || owned.touches(parent) {
        return;
    }
    let empty = match value_at(obj, parent) {
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(m)) => m.is_empty(),
        _ => false,
    };
    if empty {
        remove_at(obj, parent);
    }
}

fn check_applied(input: &ApplyInput<'_>) -> Result<(), PatchError> {
    let applied = input.applied;
    if !applied.is_object() {
        return Err(PatchError::Malformed(
            "error decoding YAML: the applied configuration must be an object".into(),
        ));
    }
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = applied.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version.is_empty() || kind.is_empty() {
        return Err(PatchError::Malformed(format!(
            "invalid object type: {api_version}, Kind={kind}"
        )));
    }
    if api_version != input.api_version {
        return Err(PatchError::Malformed(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            input.api_version
        )));
    }
    if kind != input.kind {
        return Err(PatchError::Malformed(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            input.kind
        )));
    }
    if applied.pointer("/metadata/managedFields").is_some() {
        return Err(PatchError::Malformed(
            "metadata.managedFields must be nil".into(),
        ));
    }
    Ok(())
}

/// Merges an applied configuration into `live`: maps by key, keyed lists by their merge key,
/// sets as unions, everything else replaced.
pub fn ssa_merge(live: &mut Value, applied: &Value, ty: Ty) {
    let Value::Object(am) = applied else {
        *live = applied.clone();
        return;
    };
    if !live.is_object() {
        *live = Value::Object(Map::new());
    }
    let Value::Object(lm) = live else { return };
    for (k, v) in am {
        let info = field(ty, k);
        match (v, info.list) {
            (Value::Null, _) => {
                lm.remove(k);
            }
            (Value::Object(_), _) => {
                ssa_merge(lm.entry(k.clone()).or_insert(Value::Null), v, info.ty);
            }
            (Value::Array(items), ListKind::Set) => {
                let slot = lm.entry(k.clone()).or_insert_with(|| json!([]));
                if let Value::Array(cur) = slot {
                    for item in items {
                        if !cur.contains(item) {
                            cur.push(item.clone());
                        }
                    }
                } else {
                    *slot = v.clone();
                }
            }
            (Value::Array(items), ListKind::Map(key)) => {
                let slot = lm.entry(k.clone()).or_insert_with(|| json!([]));
                if !slot.is_array() {
                    *slot = json!([]);
                }
                if let Value::Array(cur) = slot {
                    for item in items {
                        let id = item.get(key);
                        match cur.iter_mut().find(|c| id.is_some() && c.get(key) == id) {
                            Some(existing) => ssa_merge(existing, item, info.ty),
                            None => cur.push(item.clone()),
                        }
                    }
                }
            }
            _ => {
                lm.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Records a write by `manager` (operation `Update`) in `new.metadata.managedFields`: the
/// fields it changed become its own and are taken from every other manager; fields it removed
/// are owned by nobody.
pub fn track(live: Option<&Value>, new: &mut Value, manager: &str, root: Ty, now: &str) {
    let base = match (live, new.pointer("/metadata/managedFields")) {
        (_, Some(mine))
            if live.and_then(|l| l.pointer("/metadata/managedFields")) != Some(mine) =>
        {
            entries(new)
        }
        (Some(l), _) => entries(l),
        (None, _) => Vec::new(),
    };
    let (changed, removed) = diff_sets(live, new, root);
    let mut managers = base;
    for e in managers.iter_mut() {
        for path in &removed.0 {
            e.fields.remove_tree(path);
        }
        if !e.same_manager(manager, "Update") {
            e.fields = e.fields.difference(&changed);
        }
    }
    let api_version = new
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match managers
        .iter_mut()
        .find(|e| e.same_manager(manager, "Update"))
    {
        Some(e) if !changed.is_empty() => {
            e.fields = e.fields.union(&changed);
            e.time = Some(now.to_string());
            e.api_version = api_version;
        }
        Some(_) => {}
        None if !changed.is_empty() => managers.push(ManagedEntry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version,
            time: Some(now.to_string()),
            subresource: None,
            fields: changed,
        }),
        None => {}
    }
    set_entries(new, &managers);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::{PatchRequest, PatchType, apply, track_update};
    use super::*;

    const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports: [{containerPort: 80}]
"#;

    fn ssa(
        live: Option<&Value>,
        body: &str,
        manager: &str,
        force: bool,
    ) -> Result<Value, PatchError> {
        apply(&PatchRequest {
            api_version: "apps/v1",
            kind: "Deployment",
            builtin: true,
            live,
            patch: body.as_bytes(),
            patch_type: PatchType::Apply,
            field_manager: Some(manager),
            force,
            now: "2026-01-01T00:00:00Z",
        })
    }

    fn entry<'a>(obj: &'a Value, manager: &str) -> &'a Value {
        obj["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["manager"] == manager)
            .unwrap()
    }

    #[test]
    fn apply_creates_with_managed_fields_in_fields_v1_format() {
        let obj = ssa(None, DEPLOY, "kubectl", false).unwrap();
        assert_eq!(obj["spec"]["replicas"], 2);
        assert_eq!(obj["metadata"]["name"], "web");
        let e = entry(&obj, "kubectl");
        assert_eq!(e["operation"], "Apply");
        assert_eq!(e["apiVersion"], "apps/v1");
        assert_eq!(e["fieldsType"], "FieldsV1");
        assert_eq!(e["time"], "2026-01-01T00:00:00Z");
        assert_eq!(
            e["fieldsV1"],
            json!({
                "f:metadata": {"f:labels": {"f:app": {}, "f:tier": {}}},
                "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80}": {".": {}, "f:containerPort": {}}}
                    }}}
                }}
            })
        );
    }

    #[test]
    fn second_manager_conflicts_then_force_moves_ownership() {
        let live = ssa(None, DEPLOY, "kubectl", false).unwrap();
        let body =
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 5}\n";
        let err = ssa(Some(&live), body, "hpa", false).unwrap_err();
        let PatchError::Conflict { conflicts } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            conflicts,
            &[ApplyConflict {
                manager: "kubectl".into(),
                field: ".spec.replicas".into(),
                manager_description: "\"kubectl\"".into(),
            }]
        );
        assert_eq!(err.code(), 409);
        assert_eq!(
            err.status()["message"],
            "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"
        );
        assert_eq!(
            err.status()["details"]["causes"][0]["type"],
            "FieldManagerConflict"
        );

        // Same value: shared ownership, no conflict.
        let same =
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 2}\n";
        let shared = ssa(Some(&live), same, "hpa", false).unwrap();
        assert_eq!(
            entry(&shared, "hpa")["fieldsV1"],
            json!({"f:spec": {"f:replicas": {}}})
        );
        assert!(
            entry(&shared, "kubectl")["fieldsV1"]["f:spec"]
                .get("f:replicas")
                .is_some()
        );

        let forced = ssa(Some(&live), body, "hpa", true).unwrap();
        assert_eq!(forced["spec"]["replicas"], 5);
        assert!(
            entry(&forced, "kubectl")["fieldsV1"]["f:spec"]
                .get("f:replicas")
                .is_none()
        );
        assert_eq!(
            entry(&forced, "hpa")["fieldsV1"],
            json!({"f:spec": {"f:replicas": {}}})
        );

        // kubectl re-applies without replicas: it no longer owns it and must not remove it.
        let without = DEPLOY.replace("  replicas: 2\n", "");
        let again = ssa(Some(&forced), &without, "kubectl", false).unwrap();
        assert_eq!(again["spec"]["replicas"], 5);
    }

    #[test]
    fn fields_dropped_from_applied_config_are_removed_unless_owned_by_others() {
        let live = ssa(None, DEPLOY, "kubectl", false).unwrap();
        let other =
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, labels: {tier: front}}\n";
        let live = ssa(Some(&live), other, "labeler", false).unwrap();
        let smaller = DEPLOY
            .replace("  labels: {app: web, tier: front}\n", "")
            .replace("  replicas: 2\n", "")
            .replace("        ports: [{containerPort: 80}]\n", "");
        let out = ssa(Some(&live), &smaller, "kubectl", false).unwrap();
        assert!(out["spec"].get("replicas").is_none(), "{out}");
        assert_eq!(out["metadata"]["labels"], json!({"tier": "front"}));
        let c = &out["spec"]["template"]["spec"]["containers"][0];
        assert!(c.get("ports").is_none(), "{c}");
        assert_eq!(c["image"], "nginx:1.25");
    }

    #[test]
    fn apply_merges_keyed_lists_and_reports_item_conflicts() {
        let live = ssa(None, DEPLOY, "kubectl", false).unwrap();
        let sidecar = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
          "spec":{"template":{"spec":{"containers":[{"name":"log","image":"busybox"}]}}}}"#;
        let out = ssa(Some(&live), sidecar, "injector", false).unwrap();
        let names: Vec<_> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["nginx", "log"]);
        let bump = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
          "spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:2"}]}}}}"#;
        let err = ssa(Some(&out), bump, "injector", false).unwrap_err();
        let PatchError::Conflict { conflicts } = err else {
            panic!()
        };
        assert_eq!(
            conflicts[0].field,
            ".spec.template.spec.containers[name=\"nginx\"].image"
        );
    }

    #[test]
    fn apply_errors_missing_manager_and_bad_body() {
        let req = |manager, body: &'static str| PatchRequest {
            api_version: "apps/v1",
            kind: "Deployment",
            builtin: true,
            live: None,
            patch: body.as_bytes(),
            patch_type: PatchType::Apply,
            field_manager: manager,
            force: false,
            now: "2026-01-01T00:00:00Z",
        };
        let err = apply(&req(None, DEPLOY)).unwrap_err();
        assert_eq!(err.code(), 422);
        assert!(err.to_string().contains("fieldManager: Required value"));
        assert_eq!(apply(&req(Some("m"), "a: [")).unwrap_err().code(), 400);
        let wrong = "apiVersion: v1\nkind: Deployment\nmetadata: {name: web}\n";
        assert_eq!(apply(&req(Some("m"), wrong)).unwrap_err().code(), 400);
    }

    #[test]
    fn update_tracking_takes_changed_fields_from_appliers() {
        let live = ssa(None, DEPLOY, "kubectl", false).unwrap();
        let mut new = live.clone();
        new["spec"]["replicas"] = json!(7);
        new["metadata"]["annotations"] = json!({"note": "x"});
        track_update(
            Some(&live),
            &mut new,
            "kubectl-edit",
            "2026-01-01T00:01:00Z",
        );
        let e = entry(&new, "kubectl-edit");
        assert_eq!(e["operation"], "Update");
        assert_eq!(
            e["fieldsV1"],
            json!({"f:metadata": {"f:annotations": {".": {}, "f:note": {}}}, "f:spec": {"f:replicas": {}}})
        );
        assert!(
            entry(&new, "kubectl")["fieldsV1"]["f:spec"]
                .get("f:replicas")
                .is_none()
        );
        // Now an apply of the old replicas conflicts with the editor.
        let err = ssa(Some(&new), DEPLOY, "kubectl", false).unwrap_err();
        assert_eq!(
            err.status()["details"]["causes"][0]["field"],
            ".spec.replicas"
        );
    }

    #[test]
    fn create_tracking_marks_new_maps_and_list_items() {
        let mut obj: Value = serde_yaml::from_str(DEPLOY).unwrap();
        track_update(None, &mut obj, "kubectl-create", "2026-01-01T00:00:00Z");
        let f = &entry(&obj, "kubectl-create")["fieldsV1"];
        assert_eq!(f["f:metadata"]["f:labels"]["."], json!({}));
        assert!(f["f:metadata"].get("f:name").is_none());
        assert!(f["f:spec"].get(".").is_none());
        assert_eq!(
            f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]["."],
            json!({})
        );
    }

    #[test]
    fn apply_ignores_status_of_builtin_kinds() {
        let body = format!("{DEPLOY}status: {{replicas: 9}}\n");
        let obj = ssa(None, &body, "kubectl", false).unwrap();
        assert!(obj.get("status").is_none());
        assert!(entry(&obj, "kubectl")["fieldsV1"].get("f:status").is_none());
    }

    #[test]
    fn apply_to_object_without_managed_fields_conflicts_with_before_first_apply() {
        let live: Value = serde_yaml::from_str(DEPLOY).unwrap();
        let body = DEPLOY.replace("replicas: 2", "replicas: 3");
        let err = ssa(Some(&live), &body, "kubectl", false).unwrap_err();
        let PatchError::Conflict { conflicts } = err else {
            panic!()
        };
        assert_eq!(conflicts[0].manager, "before-first-apply");
    }
}
