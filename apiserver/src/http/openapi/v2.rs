//! Swagger 2.0 (`/openapi/v2`) from the OpenAPI 3 paths and schemas: `definitions` named like
//! `io.k8s.api.apps.v1.Deployment`, body parameters instead of request bodies.

use serde_json::{Map, Value, json};

fn rewrite_refs(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("nullable");
            if let Some(Value::String(r)) = m.get_mut("$ref")
                && let Some(rest) = r.strip_prefix("#/components/schemas/")
            {
                *r = format!("#/definitions/{rest}");
            }
            m.values_mut().for_each(rewrite_refs);
        }
        Value::Array(a) => a.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

fn param_v2(p: &Value) -> Value {
    let mut out = p.clone();
    if let Some(Value::Object(schema)) = out.as_object_mut().and_then(|o| o.remove("schema")) {
        for (k, v) in schema {
            out[k] = v;
        }
    }
    out
}

fn op_v2(op: &Value) -> Value {
    let mut out = op.clone();
    let Some(o) = out.as_object_mut() else {
        return out;
    };
    let mut params: Vec<Value> = o
        .remove("parameters")
        .and_then(|p| p.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(param_v2)
        .collect();
    let mut consumes = Vec::new();
    if let Some(body) = o.remove("requestBody") {
        let content = body.get("content").and_then(Value::as_object);
        consumes = content
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default();
        let schema = content
            .and_then(|c| c.values().next())
            .and_then(|t| t.get("schema"))
            .cloned()
            .unwrap_or(json!({"type": "object"}));
        let mut p = json!({"name": "body", "in": "body", "schema": schema});
        if body.get("required") == Some(&json!(true)) {
            p["required"] = json!(true);
        }
        params.insert(0, p);
    }
    if let Some(Value::Object(responses)) = o.get_mut("responses") {
        for resp in responses.values_mut() {
            if let Some(Value::Object(content)) =
                resp.as_object_mut().and_then(|r| r.remove("content"))
                && let Some(schema) = content.values().next().and_then(|t| t.get("schema"))
            {
                resp["schema"] = schema.clone();
            }
        }
    }
    o.insert("parameters".into(), json!(params));
    if !consumes.is_empty() {
        o.insert("consumes".into(), json!(consumes));
    }
    o.insert(
        "produces".into(),
        json!([
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf"
        ]),
    );
    o.insert("schemes".into(), json!(["https"]));
    out
}

/// The Swagger 2.0 document of these OpenAPI 3 paths and schemas.
pub fn from_v3(paths: Map<String, Value>, schemas: Map<String, Value>) -> Value {
    let mut v2_paths = Map::new();
    for (path, item) in paths {
        let Value::Object(item) = item else { continue };
        let converted: Map<String, Value> = item
            .into_iter()
            .map(|(k, v)| {
                let v = if k == "parameters" {
                    Value::Array(v.as_array().into_iter().flatten().map(param_v2).collect())
                } else {
                    op_v2(&v)
                };
                (k, v)
            })
            .collect();
        v2_paths.insert(path, Value::Object(converted));
    }
    let mut doc = json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": v2_paths,
        "definitions": schemas,
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    });
    rewrite_refs(&mut doc);
    doc
}
