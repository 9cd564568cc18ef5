//! Protobuf bodies of the authentication and authorization kinds, which kubectl's typed clients
//! send that way (`kubectl auth can-i`, `kubectl create token`, `kubectl auth whoami`,
//! `kubectl create serviceaccount|role|clusterrole|rolebinding|clusterrolebinding`), decoded into
//! the JSON the handlers read. Field numbers are those of `k8s.io/api`'s `authorization/v1`,
//! `authentication/v1`, `rbac/v1` and `core/v1` `generated.proto`.

use serde_json::{Map, Value, json};

use crate::error::ApiResult;
use crate::protobuf::{Fields, Wire, object_meta, push, signed, string};

/// The kinds [`decode`] reads.
const KINDS: &[&str] = &[
    "SelfSubjectAccessReview",
    "SubjectAccessReview",
    "LocalSubjectAccessReview",
    "SelfSubjectRulesReview",
    "SelfSubjectReview",
    "TokenReview",
    "TokenRequest",
    "ServiceAccount",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
];

/// Whether [`decode`] reads `kind`.
pub fn decodes(kind: &str) -> bool {
    KINDS.contains(&kind)
}

/// The object (metadata and spec; status is the server's) of a protobuf-encoded `kind`.
pub fn decode(kind: &str, raw: &[u8]) -> ApiResult<Value> {
    let mut o = Map::new();
    for f in Fields::new(raw) {
        match (f?, kind) {
            ((1, Wire::Bytes(v)), _) => drop(o.insert("metadata".into(), object_meta(v)?)),
            (
                (2, Wire::Bytes(v)),
                "SelfSubjectAccessReview" | "SubjectAccessReview" | "LocalSubjectAccessReview",
            ) => drop(o.insert("spec".into(), access_spec(v)?)),
            ((2, Wire::Bytes(v)), "SelfSubjectRulesReview") => {
                let mut spec = Map::new();
                for g in Fields::new(v) {
                    if let (1, Wire::Bytes(s)) = g? {
                        spec.insert("namespace".into(), string(s)?.into());
                    }
                }
                o.insert("spec".into(), Value::Object(spec));
            }
            ((2, Wire::Bytes(v)), "TokenReview") => {
                let mut spec = Map::new();
                for g in Fields::new(v) {
                    match g? {
                        (1, Wire::Bytes(s)) => drop(spec.insert("token".into(), string(s)?.into())),
                        (2, Wire::Bytes(s)) => push(&mut spec, "audiences", string(s)?.into()),
                        _ => {}
                    }
                }
                o.insert("spec".into(), Value::Object(spec));
            }
            ((2, Wire::Bytes(v)), "TokenRequest") => {
                drop(o.insert("spec".into(), token_request_spec(v)?));
            }
            ((2, Wire::Bytes(v)), "Role" | "ClusterRole") => {
                let names = [
                    "",
                    "verbs",
                    "apiGroups",
                    "resources",
                    "resourceNames",
                    "nonResourceURLs",
                ];
                push(&mut o, "rules", string_lists(v, &names)?);
            }
            ((3, Wire::Bytes(v)), "ClusterRole") => {
                let mut selectors = Vec::new();
                for g in Fields::new(v) {
                    if let (1, Wire::Bytes(sel)) = g? {
                        selectors.push(label_selector(sel)?);
                    }
                }
                o.insert(
                    "aggregationRule".into(),
                    json!({"clusterRoleSelectors": selectors}),
                );
            }
            ((2, Wire::Bytes(v)), "RoleBinding" | "ClusterRoleBinding") => {
                let names = ["", "kind", "apiGroup", "name", "namespace"];
                push(&mut o, "subjects", strings(v, &names)?);
            }
            ((3, Wire::Bytes(v)), "RoleBinding" | "ClusterRoleBinding") => {
                drop(o.insert(
                    "roleRef".into(),
                    strings(v, &["", "apiGroup", "kind", "name"])?,
                ));
            }
            ((2, Wire::Bytes(v)), "ServiceAccount") => {
                let names = [
                    "",
                    "kind",
                    "namespace",
                    "name",
                    "uid",
                    "apiVersion",
                    "resourceVersion",
                    "fieldPath",
                ];
                push(&mut o, "secrets", strings(v, &names)?);
            }
            ((3, Wire::Bytes(v)), "ServiceAccount") => {
                push(&mut o, "imagePullSecrets", strings(v, &["", "name"])?);
            }
            ((4, Wire::Varint(v)), "ServiceAccount") => {
                drop(o.insert("automountServiceAccountToken".into(), (v != 0).into()));
            }
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

/// `SubjectAccessReviewSpec` (the self review uses its first two fields).
fn access_spec(b: &[u8]) -> ApiResult<Value> {
    let mut spec = Map::new();
    for f in Fields::new(b) {
        match f? {
            (1, Wire::Bytes(v)) => {
                let names = [
                    "",
                    "namespace",
                    "verb",
                    "group",
                    "version",
                    "resource",
                    "subresource",
                    "name",
                ];
                spec.insert("resourceAttributes".into(), strings(v, &names)?);
            }
            (2, Wire::Bytes(v)) => {
                spec.insert(
                    "nonResourceAttributes".into(),
                    strings(v, &["", "path", "verb"])?,
                );
            }
            (3, Wire::Bytes(v)) => drop(spec.insert("user".into(), string(v)?.into())),
            (4, Wire::Bytes(v)) => push(&mut spec, "groups", string(v)?.into()),
            (5, Wire::Bytes(v)) => {
                let (key, values) = extra_entry(v)?;
                if let Some(extra) = spec
                    .entry("extra")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                {
                    extra.insert(key, values);
                }
            }
            (6, Wire::Bytes(v)) => drop(spec.insert("uid".into(), string(v)?.into())),
            _ => {}
        }
    }
    Ok(Value::Object(spec))
}

/// A message of string fields numbered by their position in `names` (0 unused).
fn strings(b: &[u8], names: &[&str]) -> ApiResult<Value> {
    let mut o = Map::new();
    for f in Fields::new(b) {
        if let (n, Wire::Bytes(v)) = f?
            && let Some(name) = usize::try_from(n).ok().and_then(|n| names.get(n))
            && !name.is_empty()
        {
            o.insert((*name).to_string(), string(v)?.into());
        }
    }
    Ok(Value::Object(o))
}

/// A message of repeated string fields numbered by their position in `names` (0 unused).
fn string_lists(b: &[u8], names: &[&str]) -> ApiResult<Value> {
    let mut o = Map::new();
    for f in Fields::new(b) {
        if let (n, Wire::Bytes(v)) = f?
            && let Some(name) = usize::try_from(n).ok().and_then(|n| names.get(n))
            && !name.is_empty()
        {
            push(&mut o, name, string(v)?.into());
        }
    }
    Ok(Value::Object(o))
}

/// `meta.v1.LabelSelector`: matchLabels (1), matchExpressions (2: key, operator, values).
fn label_selector(b: &[u8]) -> ApiResult<Value> {
    let mut o = Map::new();
    for f in Fields::new(b) {
        match f? {
            (1, Wire::Bytes(v)) => {
                let mut key = String::new();
                let mut value = String::new();
                for g in Fields::new(v) {
                    match g? {
                        (1, Wire::Bytes(s)) => key = string(s)?,
                        (2, Wire::Bytes(s)) => value = string(s)?,
                        _ => {}
                    }
                }
                if let Some(labels) = o
                    .entry("matchLabels")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                {
                    labels.insert(key, value.into());
                }
            }
            (2, Wire::Bytes(v)) => {
                let mut e = string_lists(v, &["", "key", "operator", "values"])?;
                for single in ["key", "operator"] {
                    if let Some(first) = e.get(single).and_then(|l| l.get(0)).cloned() {
                        e[single] = first;
                    }
                }
                push(&mut o, "matchExpressions", e);
            }
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

/// One `map<string, ExtraValue>` entry (`ExtraValue` holds `repeated string items = 1`).
fn extra_entry(b: &[u8]) -> ApiResult<(String, Value)> {
    let mut key = String::new();
    let mut items = Vec::new();
    for f in Fields::new(b) {
        match f? {
            (1, Wire::Bytes(v)) => key = string(v)?,
            (2, Wire::Bytes(v)) => {
                for g in Fields::new(v) {
                    if let (1, Wire::Bytes(s)) = g? {
                        items.push(Value::String(string(s)?));
                    }
                }
            }
            _ => {}
        }
    }
    Ok((key, Value::Array(items)))
}

/// `TokenRequestSpec`: audiences (1), boundObjectRef (3), expirationSeconds (4).
fn token_request_spec(b: &[u8]) -> ApiResult<Value> {
    let mut spec = Map::new();
    for f in Fields::new(b) {
        match f? {
            (1, Wire::Bytes(v)) => push(&mut spec, "audiences", string(v)?.into()),
            (3, Wire::Bytes(v)) => {
                let names = ["", "kind", "apiVersion", "name", "uid"];
                spec.insert("boundObjectRef".into(), strings(v, &names)?);
            }
            (4, Wire::Varint(v)) => drop(spec.insert("expirationSeconds".into(), signed(v).into())),
            _ => {}
        }
    }
    Ok(Value::Object(spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_kubectl_auth_can_i_sends() {
        // Captured from kubectl v1.32 `auth can-i get pods -n foo` (after the envelope).
        let raw = b"\n\x10\n\x00\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x1a\n\x18\n\x03foo\x12\x03get\x1a\x00\"\x00*\x04pods2\x00:\x00\x1a\x08\x08\x00\x12\x00\x1a\x00 \x00";
        let v = decode("SelfSubjectAccessReview", raw).unwrap();
        assert_eq!(v["spec"]["resourceAttributes"]["namespace"], "foo");
        assert_eq!(v["spec"]["resourceAttributes"]["verb"], "get");
        assert_eq!(v["spec"]["resourceAttributes"]["resource"], "pods");
        assert_eq!(v["spec"]["resourceAttributes"]["group"], "");
        // `auth can-i --list -n foo`
        let raw = b"\n\x10\n\x00\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x05\n\x03foo\x1a\x04\x18\x00\"\x00";
        let v = decode("SelfSubjectRulesReview", raw).unwrap();
        assert_eq!(v["spec"]["namespace"], "foo");
    }

    fn field(n: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(n << 3) | 2, u8::try_from(payload.len()).unwrap()];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn reads_rbac_objects_and_service_accounts() {
        let rule = [
            field(1, b"get"),
            field(1, b"list"),
            field(2, b""),
            field(3, b"pods"),
        ]
        .concat();
        let role = [field(2, &rule)].concat();
        let v = decode("Role", &role).unwrap();
        assert_eq!(
            v["rules"],
            json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}])
        );
        let labels = [field(1, b"k"), field(2, b"v")].concat();
        let expr = [
            field(1, b"tier"),
            field(2, b"In"),
            field(3, b"a"),
            field(3, b"b"),
        ]
        .concat();
        let selector = [field(1, &labels), field(2, &expr)].concat();
        let v = decode("ClusterRole", &field(3, &field(1, &selector))).unwrap();
        assert_eq!(
            v["aggregationRule"]["clusterRoleSelectors"][0],
            json!({"matchLabels": {"k": "v"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]})
        );
        let subject = [
            field(1, b"User"),
            field(2, b"rbac.authorization.k8s.io"),
            field(3, b"bob"),
        ]
        .concat();
        let role_ref = [
            field(1, b"rbac.authorization.k8s.io"),
            field(2, b"ClusterRole"),
            field(3, b"view"),
        ]
        .concat();
        let v = decode(
            "RoleBinding",
            &[field(2, &subject), field(3, &role_ref)].concat(),
        )
        .unwrap();
        assert_eq!(v["subjects"][0]["name"], "bob");
        assert_eq!(v["roleRef"]["kind"], "ClusterRole");
        let v = decode(
            "ServiceAccount",
            &[field(3, &field(1, b"pull")), vec![4 << 3, 0]].concat(),
        )
        .unwrap();
        assert_eq!(v["imagePullSecrets"], json!([{"name": "pull"}]));
        assert_eq!(v["automountServiceAccountToken"], false);
    }

    #[test]
    fn reads_token_requests_and_subject_reviews() {
        let bound = [field(1, b"Pod"), field(3, b"p")].concat();
        let spec = [
            field(1, b"a"),
            field(1, b"b"),
            vec![4 << 3, 0xd8, 0x04],
            field(3, &bound),
        ]
        .concat();
        let v = decode("TokenRequest", &field(2, &spec)).unwrap();
        assert_eq!(v["spec"]["audiences"], json!(["a", "b"]));
        assert_eq!(v["spec"]["expirationSeconds"], 600);
        assert_eq!(v["spec"]["boundObjectRef"]["kind"], "Pod");
        assert_eq!(v["spec"]["boundObjectRef"]["name"], "p");

        let nra = [field(1, b"/x"), field(2, b"get")].concat();
        let extra = [field(1, b"k"), field(2, &field(1, b"v"))].concat();
        let spec = [
            field(2, &nra),
            field(3, b"bob"),
            field(4, b"g"),
            field(5, &extra),
        ]
        .concat();
        let v = decode("SubjectAccessReview", &field(2, &spec)).unwrap();
        assert_eq!(v["spec"]["nonResourceAttributes"]["path"], "/x");
        assert_eq!(v["spec"]["nonResourceAttributes"]["verb"], "get");
        assert_eq!(v["spec"]["user"], "bob");
        assert_eq!(v["spec"]["groups"], json!(["g"]));
        assert_eq!(v["spec"]["extra"]["k"], json!(["v"]));
    }
}
