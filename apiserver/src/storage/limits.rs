//! Limits every object must respect before it is stored, whatever built it (a create, an update,
//! a JSON/merge/strategic patch or a server-side apply): nesting depth and encoded size. An
//! object past either is refused with a 422 naming the limit, so nothing is ever stored that
//! a read could not decode again.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Cause};
use crate::registry::Resource;

/// The deepest nesting of objects and arrays an object may have, `metadata.managedFields` aside
/// (which mirrors the object's fields 5 levels further down, see [`MAX_STORED_DEPTH`]).
pub const MAX_OBJECT_DEPTH: usize = 110;

/// The deepest nesting of the stored object, managedFields included. Readers parse with
/// serde_json, whose recursion limit is 128; a list (`{"items": [obj]}`) adds 2 levels and a
/// watch event of a Table row (`{"object": {"rows": [{"object": obj}]}}`) 4, so 120 keeps every
/// response parseable by clients with that limit (kube-rs) too.
pub const MAX_STORED_DEPTH: usize = 120;

/// The largest stored object in bytes (its JSON without resourceVersion): the request body limit,
/// so anything stored can be written back whole.
pub const MAX_OBJECT_BYTES: usize = crate::MAX_BODY_BYTES;

/// How deeply objects and arrays nest in `v` (a scalar is 0, `{}` is 1), and the top-level
/// field of the deepest path; `metadata.managedFields` is left out unless `with_managed_fields`.
/// Iterative: no recursion on untrusted input.
pub fn depth(v: &Value, with_managed_fields: bool) -> (usize, Option<String>) {
    let mut deepest = (0, None);
    let mut stack: Vec<(&Value, usize, Option<&str>)> = vec![(v, 1, None)];
    while let Some((v, d, top)) = stack.pop() {
        let in_metadata = d == 2 && top == Some("metadata");
        let children: Box<dyn Iterator<Item = (Option<&str>, &Value)>> = match v {
            Value::Object(m) => Box::new(m.iter().map(|(k, v)| (Some(k.as_str()), v))),
            Value::Array(a) => Box::new(a.iter().map(|v| (None, v))),
            _ => continue,
        };
        if d > deepest.0 {
            deepest = (d, top.map(str::to_string));
        }
        for (key, child) in children {
            if in_metadata && !with_managed_fields && key == Some("managedFields") {
                continue;
            }
            let top = if d == 1 { key } else { top };
            stack.push((child, d + 1, top));
        }
    }
    deepest
}

fn refused(res: &Resource, name: &str, field: Option<String>, detail: String) -> ApiError {
    ApiError::invalid(
        &res.group,
        &res.kind,
        name,
        vec![Cause::invalid(
            field.as_deref().unwrap_or("<root>"),
            &json!({}),
            &detail,
        )],
    )
}

/// Encodes `obj` for the store after checking it against the limits.
pub fn encode_checked(res: &Resource, name: &str, obj: &Value) -> ApiResult<Vec<u8>> {
    let (nesting, field) = depth(obj, false);
    if nesting > MAX_OBJECT_DEPTH {
        return Err(refused(
            res,
            name,
            field,
            format!(
                "objects and arrays must not nest more than {MAX_OBJECT_DEPTH} levels deep (nesting depth limit); this object nests {nesting} levels"
            ),
        ));
    }
    let (stored, _) = depth(obj, true);
    if stored > MAX_STORED_DEPTH {
        return Err(refused(
            res,
            name,
            Some("metadata.managedFields".into()),
            format!(
                "the stored object must not nest more than {MAX_STORED_DEPTH} levels deep (nesting depth limit); with its managed fields it nests {stored} levels"
            ),
        ));
    }
    let bytes = super::codec::encode(obj)?;
    if bytes.len() > MAX_OBJECT_BYTES {
        return Err(refused(
            res,
            name,
            None,
            format!(
                "the object must not be larger than {MAX_OBJECT_BYTES} bytes when stored (object size limit); it is {} bytes",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> Value {
        let mut v = json!("bottom");
        for _ in 0..levels {
            v = json!({ "a": v });
        }
        v
    }

    #[test]
    fn depth_counts_objects_and_arrays_and_names_the_top_field() {
        assert_eq!(depth(&json!("x"), true), (0, None));
        assert_eq!(depth(&json!({}), true), (1, None));
        assert_eq!(
            depth(&json!({"a": 1, "b": [[{}]]}), true),
            (4, Some("b".to_string()))
        );
        assert_eq!(
            depth(&json!({"spec": nested(10)}), true),
            (11, Some("spec".to_string()))
        );
        let managed =
            json!({"metadata": {"managedFields": [{"fieldsV1": nested(10)}]}, "spec": {}});
        assert_eq!(depth(&managed, true), (14, Some("metadata".to_string())));
        assert_eq!(depth(&managed, false).0, 2);
    }

    #[test]
    fn the_deepest_allowed_object_stays_parseable_inside_any_response() {
        // Wrapped as a watch event of a Table row, the deepest response we send.
        let mut wrapped = json!({"spec": nested(MAX_STORED_DEPTH - 1)});
        assert_eq!(depth(&wrapped, true).0, MAX_STORED_DEPTH);
        wrapped = json!({"type": "ADDED", "object": {"rows": [{"object": wrapped}]}});
        let text = serde_json::to_string(&wrapped).unwrap_or_default();
        assert!(serde_json::from_str::<Value>(&text).is_ok());
    }

    #[test]
    fn too_deep_or_too_large_is_refused_with_the_limit() {
        let res = crate::registry::Registry::new()
            .find("", "v1", "configmaps")
            .unwrap_or_else(|| panic!("configmaps are built in"));
        let deep = json!({"metadata": {"name": "x"}, "deep": nested(MAX_OBJECT_DEPTH)});
        let e = encode_checked(&res, "x", &deep).unwrap_err();
        assert_eq!(e.code, 422);
        assert!(e.message.contains("nesting depth limit"), "{}", e.message);
        assert!(e.message.contains("deep:"), "{}", e.message);
        let big = json!({"metadata": {"name": "x"}, "data": {"k": "x".repeat(MAX_OBJECT_BYTES)}});
        let e = encode_checked(&res, "x", &big).unwrap_err();
        assert_eq!(e.code, 422);
        assert!(e.message.contains("object size limit"), "{}", e.message);
        let fine = json!({"metadata": {"name": "x", "resourceVersion": "7"}, "deep": nested(50)});
        let bytes = encode_checked(&res, "x", &fine).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains("resourceVersion"));
    }
}
