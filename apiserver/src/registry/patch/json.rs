//! JSON patch (RFC 6902) with the error messages kube-apiserver's JSON patch library prints.

use serde_json::Value;

use super::PatchError;

/// Applies an RFC 6902 patch document (`[{op, path, value|from}]`) to `doc`.
pub fn apply_json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = patch.as_array().ok_or_else(|| {
        PatchError::Malformed(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch".into(),
        )
    })?;
    let mut doc = doc.clone();
    for op in ops {
        apply_op(&mut doc, op)?;
    }
    Ok(doc)
}

fn str_field<'a>(op: &'a Value, name: &str) -> Result<&'a str, PatchError> {
    match op.get(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(PatchError::Invalid(format!(
            "{} operation does not apply: missing {name} field",
            op.get("op").and_then(Value::as_str).unwrap_or("unknown")
        ))),
    }
}

fn value_field(op: &Value, name: &str) -> Result<Value, PatchError> {
    op.get("value").cloned().ok_or_else(|| {
        PatchError::Invalid(format!(
            "{name} operation does not apply: missing value field"
        ))
    })
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), PatchError> {
    let kind = match op.get("op") {
        Some(Value::String(s)) => s.as_str(),
        _ => return Err(PatchError::Invalid("Unexpected kind: unknown".into())),
    };
    match kind {
        "add" => {
            let path = str_field(op, "path")?;
            add(doc, path, value_field(op, "add")?).map_err(|_| missing("add", "path", path))
        }
        "remove" => {
            let path = str_field(op, "path")?;
            remove(doc, path)
                .map(drop)
                .ok_or_else(|| missing("remove", "path", path))
        }
        "replace" => {
            let path = str_field(op, "path")?;
            let value = value_field(op, "replace")?;
            match pointer_mut(doc, path) {
                Some(target) => {
                    *target = value;
                    Ok(())
                }
                None => Err(PatchError::Invalid(format!(
                    "replace operation does not apply: doc is missing key: {path}: missing value"
                ))),
            }
        }
        "move" => {
            let from = str_field(op, "from")?;
            let path = str_field(op, "path")?;
            let value = remove(doc, from).ok_or_else(|| missing("move", "from path", from))?;
            add(doc, path, value).map_err(|_| missing("move", "path", path))
        }
        "copy" => {
            let from = str_field(op, "from")?;
            let path = str_field(op, "path")?;
            let value = pointer(doc, from)
                .cloned()
                .ok_or_else(|| missing("copy", "from path", from))?;
            add(doc, path, value).map_err(|_| missing("copy", "path", path))
        }
        "test" => {
            let path = str_field(op, "path")?;
            let expected = op.get("value").unwrap_or(&Value::Null);
            let actual = pointer(doc, path).unwrap_or(&Value::Null);
            if actual == expected {
                Ok(())
            } else {
                Err(PatchError::Invalid(format!(
                    "testing value {path} failed: test failed"
                )))
            }
        }
        other => Err(PatchError::Invalid(format!("Unexpected kind: {other}"))),
    }
}

fn missing(op: &str, what: &str, path: &str) -> PatchError {
    PatchError::Invalid(format!(
        "{op} operation does not apply: doc is missing {what}: \"{path}\": missing value"
    ))
}

/// Splits a JSON pointer into unescaped reference tokens (`~1` → `/`, `~0` → `~`).
pub(crate) fn tokens(path: &str) -> Option<Vec<String>> {
    if path.is_empty() {
        return Some(Vec::new());
    }
    let rest = path.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

fn pointer<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = doc;
    for t in tokens(path)? {
        cur = match cur {
            Value::Object(m) => m.get(&t)?,
            Value::Array(a) => a.get(index(&t)?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn pointer_mut<'a>(doc: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let mut cur = doc;
    for t in tokens(path)? {
        cur = match cur {
            Value::Object(m) => m.get_mut(&t)?,
            Value::Array(a) => a.get_mut(index(&t)?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

fn split_parent(path: &str) -> Option<(String, String)> {
    let mut toks = tokens(path)?;
    let last = toks.pop()?;
    let parent = toks
        .iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect();
    Some((parent, last))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), ()> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_parent(path).ok_or(())?;
    match pointer_mut(doc, &parent).ok_or(())? {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i = index(&last).ok_or(())?;
            if i > a.len() {
                return Err(());
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(()),
    }
}

fn remove(doc: &mut Value, path: &str) -> Option<Value> {
    let (parent, last) = split_parent(path)?;
    match pointer_mut(doc, &parent)? {
        Value::Object(m) => m.remove(&last),
        Value::Array(a) => {
            let i = index(&last)?;
            (i < a.len()).then(|| a.remove(i))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn run(doc: Value, patch: Value) -> Result<Value, PatchError> {
        apply_json_patch(&doc, &patch)
    }

    #[test]
    fn add_replace_remove_with_escaped_pointers() {
        let doc = json!({"metadata": {"annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"list": [1, 2]}});
        let out = run(
            doc,
            json!([
                {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "x"},
                {"op": "remove", "path": "/metadata/annotations/c~0d"},
                {"op": "add", "path": "/spec/list/-", "value": 3},
                {"op": "add", "path": "/spec/list/0", "value": 0},
                {"op": "add", "path": "/spec/new", "value": {"k": true}},
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"annotations": {"a/b": "x"}}, "spec": {"list": [0, 1, 2, 3], "new": {"k": true}}})
        );
    }

    #[test]
    fn move_copy_and_test() {
        let out = run(
            json!({"a": {"b": 1}, "c": []}),
            json!([
                {"op": "test", "path": "/a/b", "value": 1},
                {"op": "copy", "from": "/a/b", "path": "/c/-"},
                {"op": "move", "from": "/a", "path": "/d"},
            ]),
        )
        .unwrap();
        assert_eq!(out, json!({"c": [1], "d": {"b": 1}}));
    }

    #[test]
    fn failed_test_is_invalid_with_kube_message() {
        let err = run(
            json!({"spec": {"replicas": 1}}),
            json!([{"op": "test", "path": "/spec/replicas", "value": 2}]),
        )
        .unwrap_err();
        assert_eq!(err.code(), 422);
        assert_eq!(
            err.to_string(),
            "testing value /spec/replicas failed: test failed"
        );
    }

    #[test]
    fn missing_paths_are_invalid() {
        let err = run(json!({}), json!([{"op": "remove", "path": "/a/b"}])).unwrap_err();
        assert!(matches!(err, PatchError::Invalid(_)));
        assert!(err.to_string().contains("doc is missing path"), "{err}");
        let err = run(
            json!({"l": [1]}),
            json!([{"op": "add", "path": "/l/5", "value": 1}]),
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::Invalid(_)));
        let err = run(
            json!({}),
            json!([{"op": "replace", "path": "/x", "value": 1}]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("replace operation does not apply")
        );
        let err = run(json!({}), json!([{"op": "frob", "path": "/x"}])).unwrap_err();
        assert_eq!(err.to_string(), "Unexpected kind: frob");
    }

    #[test]
    fn non_array_patch_is_malformed() {
        let err = run(json!({}), json!({"op": "add"})).unwrap_err();
        assert_eq!(err.code(), 400);
    }
}
