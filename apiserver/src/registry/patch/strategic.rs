//! Strategic merge patch for built-in kinds: lists merge by their patch merge keys, with the
//! directives kubectl sends (`$patch`, `$retainKeys`, `$deleteFromPrimitiveList/<f>`,
//! `$setElementOrder/<f>`).

use serde_json::{Map, Value};

use super::PatchError;
use super::strategy::{FieldInfo, ListKind, Ty, field};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";
const SET_ORDER: &str = "$setElementOrder/";

/// Applies a strategic merge patch to `doc`, whose root type is `root`.
pub fn strategic_merge(doc: &Value, patch: &Value, root: Ty) -> Result<Value, PatchError> {
    let Value::Object(p) = patch else {
        return Err(PatchError::Malformed(
            "invalid JSON document: a strategic merge patch must be an object".into(),
        ));
    };
    let mut out = match doc {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    match merge_map(&mut out, p, root)? {
        MapOutcome::Keep => Ok(Value::Object(out)),
        MapOutcome::Delete => Ok(Value::Object(Map::new())),
    }
}

enum MapOutcome {
    Keep,
    Delete,
}

fn directive(p: &Map<String, Value>) -> Result<Option<&str>, PatchError> {
    match p.get(PATCH) {
        None => Ok(None),
        Some(Value::String(s)) if matches!(s.as_str(), "replace" | "delete" | "merge") => {
            Ok(Some(s.as_str()))
        }
        Some(other) => Err(PatchError::Invalid(format!(
            "Unknown patch type: {other} in map: {}",
            Value::Object(p.clone())
        ))),
    }
}

/// Removes every directive from a patch fragment used as a value with nothing to merge into.
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|v| !is_list_directive(v))
                .map(strip)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn is_list_directive(v: &Value) -> bool {
    v.as_object().is_some_and(|m| m.contains_key(PATCH))
}

fn merge_map(
    orig: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    ty: Ty,
) -> Result<MapOutcome, PatchError> {
    match directive(patch)? {
        Some("delete") => return Ok(MapOutcome::Delete),
        Some("replace") => {
            if let Value::Object(m) = strip(&Value::Object(patch.clone())) {
                *orig = m;
            }
            return Ok(MapOutcome::Keep);
        }
        _ => {}
    }
    let before = patch
        .keys()
        .any(|k| k.starts_with(SET_ORDER))
        .then(|| orig.clone());
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let keys = retain.as_array().ok_or_else(|| {
            PatchError::Malformed("invalid patch: $retainKeys must be a list of strings".into())
        })?;
        let keep: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        orig.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (key, value) in patch {
        if key.starts_with('$') {
            continue;
        }
        let info = field(ty, key);
        match value {
            Value::Null => {
                orig.remove(key);
            }
            Value::Object(pm) => {
                let slot = orig
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(om) = slot
                    && let MapOutcome::Delete = merge_map(om, pm, info.ty)?
                {
                    orig.remove(key);
                }
            }
            Value::Array(items) => {
                let current = match orig.remove(key) {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                let merged = merge_list(current, items, info)?;
                orig.insert(key.clone(), Value::Array(merged));
            }
            scalar => {
                orig.insert(key.clone(), scalar.clone());
            }
        }
    }
    for (key, value) in patch {
        if let Some(f) = key.strip_prefix(DELETE_PRIMITIVE) {
            let gone = value.as_array().ok_or_else(|| {
                PatchError::Malformed(
                    "invalid patch: $deleteFromPrimitiveList must be a list".into(),
                )
            })?;
            if let Some(Value::Array(list)) = orig.get_mut(f) {
                list.retain(|v| !gone.contains(v));
            }
        }
    }
    for (key, value) in patch {
        if let Some(f) = key.strip_prefix(SET_ORDER) {
            let order = value.as_array().ok_or_else(|| {
                PatchError::Malformed("invalid patch: $setElementOrder must be a list".into())
            })?;
            let merge_key = match field(ty, f).list {
                ListKind::Map(k) => Some(k),
                _ => None,
            };
            if let Some(Value::Array(list)) = orig.get_mut(f) {
                let server = before
                    .as_ref()
                    .and_then(|b| b.get(f))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                *list = reorder(std::mem::take(list), order, &server, merge_key);
            }
        }
    }
    Ok(MapOutcome::Keep)
}

fn identity<'a>(item: &'a Value, key: Option<&str>) -> Option<&'a Value> {
    match key {
        Some(k) => item.get(k),
        None => Some(item),
    }
}

/// Orders `list` as kube's `$setElementOrder` does: items named in `order` follow it; other
/// (server-only) items keep their place relative to the items around them.
fn reorder(list: Vec<Value>, order: &[Value], server: &[Value], key: Option<&str>) -> Vec<Value> {
    let order_pos = |item: &Value| {
        let id = identity(item, key)?;
        order.iter().position(|o| identity(o, key) == Some(id))
    };
    let server_pos = |item: &Value| {
        let id = identity(item, key)?;
        server.iter().position(|s| identity(s, key) == Some(id))
    };
    let (mut ordered, rest): (Vec<Value>, Vec<Value>) =
        list.into_iter().partition(|v| order_pos(v).is_some());
    ordered.sort_by_key(|v| order_pos(v).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(ordered.len() + rest.len());
    let (mut left, mut right) = (ordered.into_iter().peekable(), rest.into_iter().peekable());
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => match (server_pos(l), server_pos(r)) {
                (Some(li), Some(ri)) => li < ri,
                _ => true,
            },
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

fn merge_list(
    mut orig: Vec<Value>,
    patch: &[Value],
    info: FieldInfo,
) -> Result<Vec<Value>, PatchError> {
    let replace = patch.iter().any(|v| {
        v.as_object()
            .is_some_and(|m| m.get(PATCH).and_then(Value::as_str) == Some("replace"))
    });
    if replace {
        return Ok(patch
            .iter()
            .filter(|v| !is_list_directive(v))
            .map(strip)
            .collect());
    }
    match info.list {
        ListKind::Atomic => Ok(patch.iter().map(strip).collect()),
        ListKind::Set => {
            for item in patch {
                if item.is_object() || item.is_array() {
                    return Err(PatchError::Malformed(
                        "invalid patch: a list of primitives cannot hold objects".into(),
                    ));
                }
                if !orig.contains(item) {
                    orig.push(item.clone());
                }
            }
            Ok(orig)
        }
        ListKind::Map(key) => {
            for item in patch {
                let Value::Object(pm) = item else {
                    return Err(PatchError::Invalid(format!(
                        "map: {item} does not contain declared merge key: {key}"
                    )));
                };
                let id = pm.get(key).ok_or_else(|| {
                    PatchError::Invalid(format!(
                        "map: {item} does not contain declared merge key: {key}"
                    ))
                })?;
                let at = orig.iter().position(|o| o.get(key) == Some(id));
                if directive(pm)? == Some("delete") {
                    orig.retain(|o| o.get(key) != Some(id));
                    continue;
                }
                match at {
                    Some(i) => {
                        let mut target = match std::mem::take(&mut orig[i]) {
                            Value::Object(m) => m,
                            _ => Map::new(),
                        };
                        merge_map(&mut target, pm, info.ty)?;
                        orig[i] = Value::Object(target);
                    }
                    None => {
                        let mut fresh = Map::new();
                        merge_map(&mut fresh, pm, info.ty)?;
                        orig.push(Value::Object(fresh));
                    }
                }
            }
            Ok(orig)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::strategy::root;
    use super::*;
    use serde_json::json;

    fn deploy() -> Value {
        serde_json::from_str(
            r#"{"apiVersion":"apps/v1","kind":"Deployment",
            "metadata":{"name":"web","labels":{"app":"web"},"finalizers":["a"]},
            "spec":{"replicas":1,"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}},
              "template":{"spec":{"containers":[
                {"name":"nginx","image":"nginx:1.25","env":[{"name":"A","value":"1"}],"ports":[{"containerPort":80}]},
                {"name":"sidecar","image":"busybox"}]}}}}"#,
        )
        .unwrap()
    }

    fn smp(doc: &Value, patch: Value) -> Result<Value, PatchError> {
        strategic_merge(doc, &patch, root("apps", "Deployment"))
    }

    #[test]
    fn containers_merge_by_name_and_env_by_name() {
        let out = smp(
            &deploy(),
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.26", "env": [{"name": "B", "value": "2"}]}
            ]}}}}),
        )
        .unwrap();
        let c = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(c.as_array().unwrap().len(), 2);
        assert_eq!(c[0]["image"], "nginx:1.26");
        assert_eq!(
            c[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
        );
        assert_eq!(c[0]["ports"], json!([{"containerPort": 80}]));
        assert_eq!(c[1]["name"], "sidecar");
    }

    #[test]
    fn patch_delete_and_replace_directives() {
        let out = smp(
            &deploy(),
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "sidecar", "$patch": "delete"}
            ]}}, "strategy": {"$patch": "replace", "type": "Recreate"}}}),
        )
        .unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let out = smp(
            &deploy(),
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "only", "image": "x"}, {"$patch": "replace"}
            ]}}}}),
        )
        .unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "only", "image": "x"}])
        );
        let out = smp(
            &deploy(),
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
        )
        .unwrap();
        assert!(out["metadata"].get("labels").is_none());
    }

    #[test]
    fn retain_keys_drops_other_union_members() {
        let out = smp(
            &deploy(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn finalizers_are_a_set_and_delete_from_primitive_list() {
        let out = smp(&deploy(), json!({"metadata": {"finalizers": ["b", "a"]}})).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
        let out = smp(
            &out,
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        )
        .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn set_element_order_reorders_and_keeps_server_only_items() {
        let out = smp(
            &deploy(),
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "new"}, {"name": "nginx"}],
                "containers": [{"name": "new", "image": "x"}]
            }}}}),
        )
        .unwrap();
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["new", "nginx", "sidecar"]);
        assert!(
            out["spec"]["template"]["spec"]
                .get("$setElementOrder/containers")
                .is_none()
        );
    }

    #[test]
    fn null_deletes_and_tolerations_are_atomic() {
        let doc =
            json!({"spec": {"replicas": 2, "template": {"spec": {"tolerations": [{"key": "a"}]}}}});
        let out = smp(
            &doc,
            json!({"spec": {"replicas": null, "template": {"spec": {"tolerations": [{"key": "b"}]}}}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"spec": {"template": {"spec": {"tolerations": [{"key": "b"}]}}}})
        );
    }

    #[test]
    fn missing_merge_key_and_bad_directive_fail() {
        let err = smp(
            &deploy(),
            json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("does not contain declared merge key: name"),
            "{err}"
        );
        let err = smp(&deploy(), json!({"spec": {"$patch": "frob"}})).unwrap_err();
        assert_eq!(err.code(), 422);
        assert_eq!(smp(&deploy(), json!([1])).unwrap_err().code(), 400);
    }

    #[test]
    fn service_ports_merge_by_port() {
        let svc = json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}});
        let out = strategic_merge(
            &svc,
            &json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}),
            root("", "Service"),
        )
        .unwrap();
        assert_eq!(
            out["spec"]["ports"][1],
            json!({"port": 443, "name": "https", "targetPort": 8443})
        );
    }
}
