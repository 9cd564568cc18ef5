//! Request bodies in Kubernetes protobuf (`application/vnd.kubernetes.protobuf`), for the kinds
//! client-go's typed clients send that way to us in practice: Helm stores releases in Secrets (or
//! ConfigMaps) and creates Namespaces through typed clients, which encode bodies as protobuf, and
//! deletes send `DeleteOptions` the same way. Each body is decoded into the JSON object the rest
//! of the server handles; responses stay JSON, which those clients accept.
//!
//! Other kinds answer 415 UnsupportedMediaType, naming the kind, so the gap is visible.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

/// Magic prefix of the Kubernetes protobuf envelope.
const MAGIC: &[u8] = b"k8s\0";

/// Decodes a protobuf request body into a JSON object.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("protobuf body does not start with the Kubernetes magic number"))?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for field in Fields::new(envelope) {
        match field? {
            (1, Wire::Bytes(type_meta)) => {
                for f in Fields::new(type_meta) {
                    match f? {
                        (1, Wire::Bytes(b)) => api_version = string(b)?,
                        (2, Wire::Bytes(b)) => kind = string(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            (3, Wire::Bytes(enc)) if !enc.is_empty() => {
                return Err(bad("protobuf content encodings are not supported"));
            }
            _ => {}
        }
    }
    let mut obj = match kind.as_str() {
        "Secret" => secret(raw)?,
        "ConfigMap" => config_map(raw)?,
        "Namespace" => namespace(raw)?,
        "DeleteOptions" => delete_options(raw)?,
        other if crate::auth::wire::decodes(other) => crate::auth::wire::decode(other, raw)?,
        other => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "protobuf request bodies are supported for Secret, ConfigMap, Namespace, ServiceAccount, the RBAC kinds, DeleteOptions, TokenRequest and the access reviews, not {other:?}; send application/json"
                ),
            ));
        }
    };
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(api_version));
        map.insert("kind".into(), Value::String(kind));
    }
    Ok(obj)
}

fn bad(message: &str) -> ApiError {
    ApiError::bad_request(format!("invalid protobuf body: {message}"))
}

/// A field's payload by wire type.
pub(crate) enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Iterates `(field number, payload)` over one message.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn varint(&mut self) -> ApiResult<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| bad("truncated varint"))?;
            self.buf = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(bad("varint too long"))
    }

    fn take(&mut self, n: usize) -> ApiResult<&'a [u8]> {
        if self.buf.len() < n {
            return Err(bad("truncated field"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn next_field(&mut self) -> ApiResult<(u64, Wire<'a>)> {
        let key = self.varint()?;
        let number = key >> 3;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| bad("length overflow"))?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed
            }
            other => return Err(bad(&format!("unsupported wire type {other}"))),
        };
        Ok((number, wire))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = ApiResult<(u64, Wire<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let item = self.next_field();
        if item.is_err() {
            self.buf = &[];
        }
        Some(item)
    }
}

pub(crate) fn string(b: &[u8]) -> ApiResult<String> {
    String::from_utf8(b.to_vec()).map_err(|_| bad("string field is not UTF-8"))
}

pub(crate) fn signed(v: u64) -> i64 {
    i64::from_ne_bytes(v.to_ne_bytes())
}

/// A `map<string, string>` or `map<string, bytes>` entry; bytes values become base64 as in JSON.
fn map_entry(entry: &[u8], bytes_value: bool) -> ApiResult<(String, Value)> {
    let mut key = String::new();
    let mut value = Value::String(String::new());
    for f in Fields::new(entry) {
        match f? {
            (1, Wire::Bytes(b)) => key = string(b)?,
            (2, Wire::Bytes(b)) if bytes_value => {
                use base64::Engine as _;
                value = Value::String(base64::engine::general_purpose::STANDARD.encode(b));
            }
            (2, Wire::Bytes(b)) => value = Value::String(string(b)?),
            _ => {}
        }
    }
    Ok((key, value))
}

fn insert_entry(obj: &mut Map<String, Value>, field: &str, entry: (String, Value)) {
    if let Some(map) = obj
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
    {
        map.insert(entry.0, entry.1);
    }
}

pub(crate) fn push(obj: &mut Map<String, Value>, field: &str, value: Value) {
    if let Some(list) = obj
        .entry(field)
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
    {
        list.push(value);
    }
}

/// `meta.v1.Time` as RFC 3339.
fn time(b: &[u8]) -> ApiResult<Value> {
    let mut seconds = 0i64;
    for f in Fields::new(b) {
        if let (1, Wire::Varint(v)) = f? {
            seconds = signed(v);
        }
    }
    let ts = jiff::Timestamp::from_second(seconds).map_err(|_| bad("timestamp out of range"))?;
    Ok(Value::String(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

fn owner_reference(b: &[u8]) -> ApiResult<Value> {
    let mut o = Map::new();
    for f in Fields::new(b) {
        match f? {
            (1, Wire::Bytes(v)) => drop(o.insert("kind".into(), string(v)?.into())),
            (3, Wire::Bytes(v)) => drop(o.insert("name".into(), string(v)?.into())),
            (4, Wire::Bytes(v)) => drop(o.insert("uid".into(), string(v)?.into())),
            (5, Wire::Bytes(v)) => drop(o.insert("apiVersion".into(), string(v)?.into())),
            (6, Wire::Varint(v)) => drop(o.insert("controller".into(), (v != 0).into())),
            (7, Wire::Varint(v)) => drop(o.insert("blockOwnerDeletion".into(), (v != 0).into())),
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

/// `meta.v1.ObjectMeta` (managedFields are dropped: the server keeps its own).
pub(crate) fn object_meta(b: &[u8]) -> ApiResult<Value> {
    let mut m = Map::new();
    for f in Fields::new(b) {
        match f? {
            (1, Wire::Bytes(v)) => drop(m.insert("name".into(), string(v)?.into())),
            (2, Wire::Bytes(v)) => drop(m.insert("generateName".into(), string(v)?.into())),
            (3, Wire::Bytes(v)) => drop(m.insert("namespace".into(), string(v)?.into())),
            (5, Wire::Bytes(v)) => drop(m.insert("uid".into(), string(v)?.into())),
            (6, Wire::Bytes(v)) => drop(m.insert("resourceVersion".into(), string(v)?.into())),
            (7, Wire::Varint(v)) => drop(m.insert("generation".into(), signed(v).into())),
            (8, Wire::Bytes(v)) => drop(m.insert("creationTimestamp".into(), time(v)?)),
            (9, Wire::Bytes(v)) => drop(m.insert("deletionTimestamp".into(), time(v)?)),
            (10, Wire::Varint(v)) => {
                drop(m.insert("deletionGracePeriodSeconds".into(), signed(v).into()));
            }
            (11, Wire::Bytes(v)) => insert_entry(&mut m, "labels", map_entry(v, false)?),
            (12, Wire::Bytes(v)) => insert_entry(&mut m, "annotations", map_entry(v, false)?),
            (13, Wire::Bytes(v)) => push(&mut m, "ownerReferences", owner_reference(v)?),
            (14, Wire::Bytes(v)) => push(&mut m, "finalizers", string(v)?.into()),
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

fn secret(b: &[u8]) -> ApiResult<Value> {
    let mut o = Map::new();
    for f in Fields::new(b) {
        match f? {
            (1, Wire::Bytes(v)) => drop(o.insert("metadata".into(), object_meta(v)?)),
            (2, Wire::Bytes(v)) => insert_entry(&mut o, "data", map_entry(v, true)?),
            (3, Wire::Bytes(v)) => drop(o.insert("type".into(), string(v)?.into())),
            (4, Wire::Bytes(v)) => insert_entry(&mut o, "stringData", map_entry(v, false)?),
            (5, Wire::Varint(v)) => drop(o.insert("immutable".into(), (v != 0).into())),
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

fn config_map(b: &[u8]) -> ApiResult<Value> {
    let mut o = Map::new();
    for f in Fields::new(b) {
        match f? {
            (1, Wire::Bytes(v)) => drop(o.insert("metadata".into(), object_meta(v)?)),
            (2, Wire::Bytes(v)) => insert_entry(&mut o, "data", map_entry(v, false)?),
            (3, Wire::Bytes(v)) => insert_entry(&mut o, "binaryData", map_entry(v, true)?),
            (4, Wire::Varint(v)) => drop(o.insert("immutable".into(), (v != 0).into())),
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

fn namespace(b: &[u8]) -> ApiResult<Value> {
    let mut o = Map::new();
    for f in Fields::new(b) {
        match f? {
            (1, Wire::Bytes(v)) => drop(o.insert("metadata".into(), object_meta(v)?)),
            (2, Wire::Bytes(v)) => {
                let mut finalizers = Vec::new();
                for g in Fields::new(v) {
                    if let (1, Wire::Bytes(s)) = g? {
                        finalizers.push(Value::String(string(s)?));
                    }
                }
                o.insert("spec".into(), json!({ "finalizers": finalizers }));
            }
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

fn delete_options(b: &[u8]) -> ApiResult<Value> {
    let mut o = Map::new();
    for f in Fields::new(b) {
        match f? {
            (1, Wire::Varint(v)) => drop(o.insert("gracePeriodSeconds".into(), signed(v).into())),
            (2, Wire::Bytes(v)) => {
                let mut p = Map::new();
                for g in Fields::new(v) {
                    match g? {
                        (1, Wire::Bytes(s)) => drop(p.insert("uid".into(), string(s)?.into())),
                        (2, Wire::Bytes(s)) => {
                            drop(p.insert("resourceVersion".into(), string(s)?.into()));
                        }
                        _ => {}
                    }
                }
                o.insert("preconditions".into(), Value::Object(p));
            }
            (3, Wire::Varint(v)) => drop(o.insert("orphanDependents".into(), (v != 0).into())),
            (4, Wire::Bytes(v)) => drop(o.insert("propagationPolicy".into(), string(v)?.into())),
            (5, Wire::Bytes(v)) => push(&mut o, "dryRun", string(v)?.into()),
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn bytes(field: u64, payload: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }
    fn entry(k: &str, v: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        bytes(1, k.as_bytes(), &mut e);
        bytes(2, v, &mut e);
        e
    }
    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut tm = Vec::new();
        bytes(1, api_version.as_bytes(), &mut tm);
        bytes(2, kind.as_bytes(), &mut tm);
        let mut out = MAGIC.to_vec();
        bytes(1, &tm, &mut out);
        bytes(2, raw, &mut out);
        out
    }

    /// A Secret as Helm's release driver writes it: name, labels, type and binary data.
    #[test]
    fn decodes_a_helm_release_secret() {
        let mut meta = Vec::new();
        bytes(1, b"sh.helm.release.v1.fed.v1", &mut meta);
        bytes(3, b"kube-federation-system", &mut meta);
        bytes(11, &entry("owner", b"helm"), &mut meta);
        bytes(11, &entry("status", b"deployed"), &mut meta);
        let mut raw = Vec::new();
        bytes(1, &meta, &mut raw);
        bytes(2, &entry("release", &[0, 1, 2, 255]), &mut raw);
        bytes(3, b"helm.sh/release.v1", &mut raw);
        let obj = decode(&envelope("v1", "Secret", &raw)).unwrap();
        assert_eq!(
            obj,
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {
                    "name": "sh.helm.release.v1.fed.v1",
                    "namespace": "kube-federation-system",
                    "labels": {"owner": "helm", "status": "deployed"}
                },
                "data": {"release": "AAEC/w=="},
                "type": "helm.sh/release.v1"
            })
        );
    }

    #[test]
    fn decodes_namespace_and_delete_options() {
        let mut meta = Vec::new();
        bytes(1, b"team-a", &mut meta);
        let mut raw = Vec::new();
        bytes(1, &meta, &mut raw);
        let obj = decode(&envelope("v1", "Namespace", &raw)).unwrap();
        assert_eq!(obj["metadata"]["name"], "team-a");

        let mut raw = Vec::new();
        bytes(4, b"Background", &mut raw);
        varint(1 << 3, &mut raw);
        varint(30, &mut raw);
        let obj = decode(&envelope("meta.k8s.io/v1", "DeleteOptions", &raw)).unwrap();
        assert_eq!(obj["propagationPolicy"], "Background");
        assert_eq!(obj["gracePeriodSeconds"], 30);
    }

    #[test]
    fn bad_bodies_are_errors_not_panics() {
        assert_eq!(decode(b"{}").unwrap_err().code, 400);
        assert_eq!(decode(b"k8s\0\x0a\xff").unwrap_err().code, 400);
        let e = decode(&envelope("apps/v1", "Deployment", &[])).unwrap_err();
        assert_eq!(e.code, 415);
        assert!(e.message.contains("Deployment"), "{}", e.message);
        for cut in 0..20 {
            let mut raw = Vec::new();
            bytes(1, b"some-name-here", &mut raw);
            let body = envelope("v1", "Secret", &raw);
            let _ = decode(&body[..body.len().saturating_sub(cut)]);
        }
    }
}
