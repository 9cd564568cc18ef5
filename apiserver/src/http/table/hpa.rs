//! The TARGETS cell of a HorizontalPodAutoscaler, as kubectl prints it (kube's
//! `formatHPAMetrics`): each metric's current value against its target, by metric source.

use serde_json::{Value, json};

use super::cells::str_at;
use super::columns::none_if_empty;

/// kubectl's TARGETS of an HPA: `cpu: 40%/80%, memory: <unknown>/1Gi`, two at most.
pub fn hpa_targets(o: &Value, _: &str) -> Value {
    let specs: Vec<&Value> = o
        .pointer("/spec/metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    if specs.is_empty() {
        return json!("<none>");
    }
    let statuses = o
        .pointer("/status/currentMetrics")
        .and_then(Value::as_array);
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let ty = str_at(m, "/type");
            let key = match ty {
                "Resource" => "resource",
                "ContainerResource" => "containerResource",
                "Pods" => "pods",
                "Object" => "object",
                "External" => "external",
                _ => return "<unknown type>".to_string(),
            };
            let spec = m.get(key).cloned().unwrap_or(json!({}));
            let current = statuses
                .and_then(|s| s.get(i))
                .and_then(|s| s.get(key))
                .and_then(|s| s.get("current"));
            let quantity = |v: Option<&Value>| {
                v.map(|q| match q {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            };
            let target = spec.get("target").cloned().unwrap_or(json!({}));
            let (cur, tgt, avg) = if let Some(u) = target.get("averageUtilization") {
                let cur = current
                    .and_then(|c| c.get("averageUtilization"))
                    .map(|u| format!("{u}%"));
                (cur, format!("{u}%"), false)
            } else if let Some(v) = target.get("averageValue") {
                let cur = quantity(current.and_then(|c| c.get("averageValue")));
                (cur, quantity(Some(v)).unwrap_or_default(), key != "pods")
            } else {
                let cur = quantity(current.and_then(|c| c.get("value")));
                let tgt = if key == "resource" || key == "containerResource" {
                    "<auto>".to_string()
                } else {
                    quantity(target.get("value")).unwrap_or_default()
                };
                (cur, tgt, false)
            };
            let cur = cur.unwrap_or_else(|| "<unknown>".into());
            match key {
                "resource" | "containerResource" => {
                    format!("{}: {cur}/{tgt}", str_at(&spec, "/name"))
                }
                _ if avg => format!("{cur}/{tgt} (avg)"),
                _ => format!("{cur}/{tgt}"),
            }
        })
        .collect();
    let more = list.len().saturating_sub(2);
    let text = list.into_iter().take(2).collect::<Vec<_>>().join(", ");
    json!(if more > 0 {
        format!("{text} + {more} more...")
    } else {
        none_if_empty(text)
    })
}
