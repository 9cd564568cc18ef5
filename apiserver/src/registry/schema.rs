//! Structural-schema handling of custom resources: pruning of unknown fields and the basic
//! OpenAPI v3 validations (type, required, enum, minimum/maximum, length, pattern).

use serde_json::{Map, Value, json};

use crate::error::Cause;

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn preserves(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Removes fields the schema does not declare; returns the paths removed (for strict
/// field validation). `apiVersion`, `kind` and `metadata` of the root are kept.
pub fn prune(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut removed = Vec::new();
    if let Value::Object(map) = obj {
        let props = schema.get("properties").and_then(Value::as_object);
        let keep_unknown = preserves(schema);
        let keys: Vec<String> = map.keys().cloned().collect();
        for k in keys {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match props.and_then(|p| p.get(&k)) {
                Some(s) => {
                    if let Some(v) = map.get_mut(&k) {
                        prune_value(v, s, &k, &mut removed);
                    }
                }
                None if keep_unknown => {}
                None => {
                    map.remove(&k);
                    removed.push(k);
                }
            }
        }
    }
    removed
}

fn prune_value(v: &mut Value, schema: &Value, path: &str, removed: &mut Vec<String>) {
    let embedded = schema
        .get("x-kubernetes-embedded-resource")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match v {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let keep_unknown = preserves(schema);
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let p = child(path, &k);
                if let Some(s) = props.and_then(|p| p.get(&k)) {
                    if let Some(x) = map.get_mut(&k) {
                        prune_value(x, s, &p, removed);
                    }
                } else if let Some(a) = additional.filter(|a| a.is_object()) {
                    if let Some(x) = map.get_mut(&k) {
                        prune_value(x, a, &p, removed);
                    }
                } else if keep_unknown || additional.and_then(Value::as_bool) == Some(true) {
                } else {
                    map.remove(&k);
                    removed.push(p);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, x) in items.iter_mut().enumerate() {
                    prune_value(x, s, &format!("{path}[{i}]"), removed);
                }
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Validation errors of `obj` against the schema (root fields other than metadata).
pub fn validate(obj: &Value, schema: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if let Some(map) = obj.as_object() {
        let mut root = Map::new();
        for (k, v) in map {
            if !matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                root.insert(k.clone(), v.clone());
            }
        }
        let mut s = schema.clone();
        if let Some(req) = s.get_mut("required").and_then(Value::as_array_mut) {
            req.retain(|r| !matches!(r.as_str(), Some("apiVersion" | "kind" | "metadata")));
        }
        validate_value(&Value::Object(root), &s, "", &mut out);
    }
    out
}

fn validate_value(v: &Value, schema: &Value, path: &str, out: &mut Vec<Cause>) {
    let shown = if path.is_empty() { "body" } else { path };
    if v.is_null() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        return;
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let have = type_name(v);
        let ok = have == t || (t == "number" && have == "integer");
        let int_or_string = schema
            .get("x-kubernetes-int-or-string")
            .and_then(Value::as_bool)
            == Some(true);
        if !(ok || int_or_string && matches!(have, "integer" | "string")) {
            out.push(Cause::type_invalid(
                path,
                &json!(have),
                &format!("{shown} in body must be of type {t}: {:?}", have),
            ));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        out.push(Cause::not_supported(path, v, allowed));
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            let excl = schema.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
            if n < min || (excl && n == min) {
                let rel = if excl {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                out.push(Cause::invalid(
                    path,
                    v,
                    &format!("{shown} in body should be {rel} {}", fmt_num(min)),
                ));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            let excl = schema.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
            if n > max || (excl && n == max) {
                let rel = if excl {
                    "less than"
                } else {
                    "less than or equal to"
                };
                out.push(Cause::invalid(
                    path,
                    v,
                    &format!("{shown} in body should be {rel} {}", fmt_num(max)),
                ));
            }
        }
    }
    if let Some(s) = v.as_str() {
        let len = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            out.push(Cause::invalid(
                path,
                v,
                &format!("{shown} in body should be at least {min} chars long"),
            ));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            out.push(Cause {
                reason: "FieldValueTooLong".into(),
                message: format!("Too long: may not be more than {max} bytes"),
                field: path.to_string(),
            });
        }
        if let Some(p) = schema.get("pattern").and_then(Value::as_str)
            && let Ok(re) = regex::Regex::new(p)
            && !re.is_match(s)
        {
            out.push(Cause::invalid(
                path,
                v,
                &format!("{shown} in body should match '{p}'"),
            ));
        }
    }
    match v {
        Value::Object(map) => {
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        out.push(Cause::required(&child(path, r), ""));
                    }
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, x) in map {
                if let Some(s) = props.and_then(|p| p.get(k)).or(additional) {
                    validate_value(x, s, &child(path, k), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                out.push(Cause::invalid(
                    path,
                    v,
                    &format!("{shown} in body should have at least {min} items"),
                ));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && (items.len() as u64) > max
            {
                out.push(Cause::invalid(
                    path,
                    v,
                    &format!("{shown} in body should have at most {max} items"),
                ));
            }
            if let Some(s) = schema.get("items") {
                for (i, x) in items.iter().enumerate() {
                    validate_value(x, s, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "name": {"type": "string", "pattern": "^[a-z]+$"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "tags": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}}}
            }},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
        }})
    }

    #[test]
    fn prune_removes_unknown_and_keeps_preserved() {
        let mut o = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
            "spec": {"size": 1, "bogus": 1, "free": {"any": {"thing": 1}}, "tags": [{"k": "v", "z": 1}]},
            "extra": true});
        let removed = prune(&mut o, &schema());
        assert_eq!(removed, vec!["extra", "spec.bogus", "spec.tags[0].z"]);
        assert_eq!(o["spec"]["free"]["any"]["thing"], 1);
        assert_eq!(o["metadata"]["name"], "a");
    }

    #[test]
    fn validation_reports_causes() {
        let o = json!({"spec": {"size": 11, "mode": "c", "name": "A1"}});
        let causes = validate(&o, &schema());
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.mode", "spec.name", "spec.size"]);
        assert!(causes[2].message.contains("less than or equal to 10"));
        let missing = validate(&json!({"spec": {}}), &schema());
        assert_eq!(missing[0].reason, "FieldValueRequired");
        assert_eq!(missing[0].field, "spec.size");
        let wrong_type = validate(&json!({"spec": {"size": "x"}}), &schema());
        assert_eq!(wrong_type[0].reason, "FieldValueTypeInvalid");
    }
}
