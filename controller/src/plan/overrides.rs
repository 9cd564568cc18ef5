//! KubeFed overrides: `add`, `remove` and `replace` (the default) at a JSON pointer path of the
//! desired member object, applied in order.

use cellfed_api::federated::{ClusterOverride, OverrideOp};
use serde_json::Value;

/// Applies `overrides` to `obj`; the error names the override that failed and why.
pub fn apply(obj: &mut Value, overrides: &[ClusterOverride]) -> Result<(), String> {
    for (i, o) in overrides.iter().enumerate() {
        apply_one(obj, o).map_err(|why| {
            format!(
                "override {i} ({} {}): {why}",
                o.op().as_str(),
                if o.path.is_empty() { "\"\"" } else { &o.path }
            )
        })?;
    }
    Ok(())
}

fn apply_one(obj: &mut Value, o: &ClusterOverride) -> Result<(), String> {
    let tokens = parse_pointer(&o.path)?;
    let Some((last, parents)) = tokens.split_last() else {
        return Err("the path must name a field below the object root".into());
    };
    let op = o.op();
    let value = match (op, &o.value) {
        (OverrideOp::Remove, _) => None,
        (_, Some(v)) => Some(v.clone()),
        (_, None) => return Err("add and replace need a value".into()),
    };
    let mut cur = obj;
    for (depth, token) in parents.iter().enumerate() {
        let missing = || format!("{} does not exist", pointer_of(&tokens[..=depth]));
        cur = match cur {
            Value::Object(map) => {
                if op == OverrideOp::Add && !map.contains_key(token.as_str()) {
                    // KubeFed's add creates missing intermediate objects.
                    map.insert(token.clone(), Value::Object(Default::default()));
                }
                map.get_mut(token.as_str()).ok_or_else(missing)?
            }
            Value::Array(items) => {
                let idx = index(token, items.len(), false)?;
                items.get_mut(idx).ok_or_else(missing)?
            }
            _ => {
                return Err(format!(
                    "{} is not an object or array",
                    pointer_of(&tokens[..depth])
                ));
            }
        };
    }
    match (cur, op) {
        (Value::Object(map), OverrideOp::Remove) => map
            .remove(last.as_str())
            .map(drop)
            .ok_or_else(|| format!("{} does not exist", o.path)),
        (Value::Object(map), OverrideOp::Replace) if !map.contains_key(last.as_str()) => Err(
            format!("{} does not exist (use op add to create it)", o.path),
        ),
        (Value::Object(map), _) => {
            map.insert(last.clone(), value.unwrap_or(Value::Null));
            Ok(())
        }
        (Value::Array(items), OverrideOp::Add) => {
            let idx = index(last, items.len(), true)?;
            items.insert(idx, value.unwrap_or(Value::Null));
            Ok(())
        }
        (Value::Array(items), OverrideOp::Remove) => {
            let idx = index(last, items.len(), false)?;
            items.remove(idx);
            Ok(())
        }
        (Value::Array(items), OverrideOp::Replace) => {
            let idx = index(last, items.len(), false)?;
            items[idx] = value.unwrap_or(Value::Null);
            Ok(())
        }
        _ => Err(format!(
            "the parent of {} is not an object or array",
            o.path
        )),
    }
}

/// An array index token; `-` means "after the last" and only for add.
fn index(token: &str, len: usize, for_add: bool) -> Result<usize, String> {
    if token == "-" && for_add {
        return Ok(len);
    }
    let idx: usize = token
        .parse()
        .map_err(|_| format!("{token:?} is not an array index"))?;
    let limit = if for_add { len } else { len.saturating_sub(1) };
    if idx > limit || (!for_add && len == 0) {
        return Err(format!("array index {idx} is out of range (length {len})"));
    }
    Ok(idx)
}

/// RFC 6901 tokens of `path`.
fn parse_pointer(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("path {path:?} must start with '/'"))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn pointer_of(tokens: &[String]) -> String {
    tokens
        .iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ov(op: &str, path: &str, value: Option<Value>) -> ClusterOverride {
        serde_json::from_value(json!({"op": op, "path": path, "value": value})).unwrap()
    }

    #[test]
    fn replace_is_the_default_and_reaches_into_arrays() {
        let mut obj = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "nginx:1"}]}}}});
        let default_op: ClusterOverride =
            serde_json::from_value(json!({"path": "/spec/replicas", "value": 5})).unwrap();
        apply(
            &mut obj,
            &[
                default_op,
                ov(
                    "replace",
                    "/spec/template/spec/containers/0/image",
                    Some(json!("nginx:2")),
                ),
            ],
        )
        .unwrap();
        assert_eq!(obj["spec"]["replicas"], 5);
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:2"
        );
    }

    #[test]
    fn add_creates_parents_and_appends_remove_deletes() {
        let mut obj = json!({"metadata": {"name": "x"}, "spec": {"args": ["a"]}});
        apply(
            &mut obj,
            &[
                ov(
                    "add",
                    "/metadata/annotations/team~1owner",
                    Some(json!("ops")),
                ),
                ov("add", "/spec/args/-", Some(json!("b"))),
                ov("add", "/spec/args/0", Some(json!("first"))),
                ov("remove", "/metadata/name", None),
            ],
        )
        .unwrap();
        assert_eq!(
            obj,
            json!({"metadata": {"annotations": {"team/owner": "ops"}}, "spec": {"args": ["first", "a", "b"]}})
        );
    }

    #[test]
    fn bad_paths_say_which_override_and_why() {
        let mut obj = json!({"spec": {"replicas": 1}});
        let err = apply(&mut obj, &[ov("replace", "/spec/missing", Some(json!(1)))]).unwrap_err();
        assert!(
            err.contains("override 0 (replace /spec/missing)") && err.contains("does not exist"),
            "{err}"
        );
        let err = apply(&mut obj, &[ov("replace", "spec", Some(json!(1)))]).unwrap_err();
        assert!(err.contains("must start with '/'"), "{err}");
        let err = apply(&mut obj, &[ov("remove", "/spec/replicas/x", None)]).unwrap_err();
        assert!(err.contains("not an object or array"), "{err}");
        let err = apply(&mut obj, &[ov("replace", "/spec/replicas", None)]).unwrap_err();
        assert!(err.contains("need a value"), "{err}");
        let mut arr = json!({"a": [1]});
        let err = apply(&mut arr, &[ov("replace", "/a/3", Some(json!(1)))]).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
    }
}
