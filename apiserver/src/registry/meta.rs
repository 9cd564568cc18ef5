//! Object metadata rules: name validation, uid, timestamps, generation.

use rand::Rng;
use serde_json::{Value, json};

use crate::error::Cause;

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// Which naming rule a kind's `metadata.name` follows.
fn name_rule(kind: &str) -> &'static str {
    match kind {
        "Namespace" => "label",
        "Service" => "dns1035",
        // RBAC names are path segments: anything without '/' or '%' and not '.'/'..'.
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => "path",
        _ => "subdomain",
    }
}

/// Field errors of `metadata.name` for this kind.
pub fn validate_name(kind: &str, name: &str) -> Vec<Cause> {
    let v = json!(name);
    let mut out = Vec::new();
    match name_rule(kind) {
        "label" => {
            if name.len() > 63 {
                out.push(Cause::invalid(
                    "metadata.name",
                    &v,
                    "must be no more than 63 characters",
                ));
            }
            if !is_label(name) && name.len() <= 63 {
                out.push(Cause::invalid("metadata.name", &v, DNS1123_LABEL_MSG));
            }
        }
        "dns1035" => {
            if !is_label(name) || !name.as_bytes()[0].is_ascii_lowercase() {
                out.push(Cause::invalid("metadata.name", &v, DNS1035_LABEL_MSG));
            }
        }
        "path" => {
            if name == "." || name == ".." || name.contains('/') || name.contains('%') {
                out.push(Cause::invalid(
                    "metadata.name",
                    &v,
                    "may not contain '/' or '%' and may not be '.' or '..'",
                ));
            }
        }
        _ => {
            if name.len() > 253 {
                out.push(Cause::invalid(
                    "metadata.name",
                    &v,
                    "must be no more than 253 characters",
                ));
            } else if !is_dns1123_subdomain(name) {
                out.push(Cause::invalid("metadata.name", &v, DNS1123_SUBDOMAIN_MSG));
            }
        }
    }
    out
}

/// Field errors of labels and annotations.
pub fn validate_labels(obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if let Some(labels) = obj.pointer("/metadata/labels") {
        match labels.as_object() {
            Some(m) => {
                for (k, v) in m {
                    let key_ok = {
                        let (prefix, name) = match k.rsplit_once('/') {
                            Some((p, n)) => (Some(p), n),
                            None => (None, k.as_str()),
                        };
                        prefix.is_none_or(is_dns1123_subdomain) && is_qualified_name(name)
                    };
                    if !key_ok {
                        out.push(Cause::invalid("metadata.labels", &json!(k), "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"));
                    }
                    match v.as_str() {
                        Some(s) if s.is_empty() || is_qualified_name(s) => {}
                        _ => out.push(Cause::invalid("metadata.labels", v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")),
                    }
                }
            }
            None if labels.is_null() => {}
            None => out.push(Cause::type_invalid(
                "metadata.labels",
                labels,
                "must be a map of strings",
            )),
        }
    }
    if let Some(ann) = obj.pointer("/metadata/annotations") {
        if let Some(m) = ann.as_object() {
            if m.values().any(|v| !v.is_string()) {
                out.push(Cause::type_invalid(
                    "metadata.annotations",
                    ann,
                    "must be a map of strings",
                ));
            }
        } else if !ann.is_null() {
            out.push(Cause::type_invalid(
                "metadata.annotations",
                ann,
                "must be a map of strings",
            ));
        }
    }
    out
}

fn is_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// RFC 3339 now, seconds precision, as kube writes timestamps.
pub fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// A random RFC 4122 v4 uid.
pub fn new_uid() -> String {
    let mut b: [u8; 16] = rand::thread_rng().r#gen();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Five random characters as kube appends to `generateName`.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::thread_rng();
    (0..5)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `obj.metadata`, created if missing (and `obj` made an object if it is not one).
pub fn metadata_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let Value::Object(root) = obj else {
        unreachable!("made an object above")
    };
    let entry = root.entry("metadata").or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    match entry {
        Value::Object(m) => m,
        _ => unreachable!("made an object above"),
    }
}

pub fn str_at<'a>(obj: &'a Value, ptr: &str) -> Option<&'a str> {
    obj.pointer(ptr).and_then(Value::as_str)
}

/// The object without metadata and status: what `generation` tracks.
pub fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    o
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("ConfigMap", "a.b-c").is_empty());
        assert_eq!(validate_name("ConfigMap", "Bad_Name").len(), 1);
        assert_eq!(validate_name("Namespace", "a.b").len(), 1);
        assert_eq!(validate_name("Service", "1abc").len(), 1);
        assert!(validate_name("ClusterRole", "system:admin").is_empty());
    }

    #[test]
    fn uid_shape() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn label_values_checked() {
        let o = json!({"metadata": {"labels": {"a": "ok", "b": "not ok"}}});
        assert_eq!(validate_labels(&o).len(), 1);
    }
}
