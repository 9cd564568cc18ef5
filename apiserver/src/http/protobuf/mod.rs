//! Kubernetes protobuf (`application/vnd.kubernetes.protobuf`) for every built-in kind, both
//! ways: request bodies become the JSON objects the rest of the server handles, and responses
//! are written as protobuf when the client prefers it.
//!
//! A body is `k8s\0` followed by a `runtime.Unknown` (apiVersion, kind, the object's bytes). The
//! object is bridged to JSON generically by the descriptor table ([`descriptor`], generated from
//! the k8s-pb crate's message definitions and k8s-openapi's JSON names), with the few special
//! encodings (Time, Duration, Quantity, IntOrString, embedded JSON) handled once
//! ([`special`]). Custom resources have no protobuf form: their bodies answer 415, as in
//! kube-apiserver, and their responses stay JSON.

mod decode;
pub mod descriptor;
mod encode;
mod special;
pub mod wire;

#[cfg(test)]
mod generate;
#[cfg(test)]
mod tests;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, header};
use k8s_pb::apimachinery::pkg::apis::meta::v1::WatchEvent;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use prost::Message as _;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use descriptor::TABLE;

/// The media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Magic prefix of the Kubernetes protobuf envelope.
pub const MAGIC: &[u8] = b"k8s\0";

fn bad(message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid protobuf body: {message}"))
}

/// Decodes a protobuf request body into a JSON object (with `apiVersion` and `kind`).
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    decode_envelope(body)
}

/// `k8s\0` + `runtime.Unknown` → the JSON object it carries.
pub(crate) fn decode_envelope(body: &[u8]) -> ApiResult<Value> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("it does not start with the Kubernetes magic number k8s\\0"))?;
    let unknown = Unknown::decode(envelope).map_err(bad)?;
    if unknown
        .content_encoding
        .as_deref()
        .is_some_and(|e| !e.is_empty())
    {
        return Err(bad("content encodings are not supported"));
    }
    let tm = unknown.type_meta.unwrap_or_default();
    let api_version = tm.api_version.unwrap_or_default();
    let kind = tm.kind.unwrap_or_default();
    let Some(idx) = TABLE.kind(&api_version, &kind) else {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "{kind:?} of {api_version:?} has no protobuf form (custom resources are sent as application/json)"
            ),
        ));
    };
    let raw = unknown.raw.unwrap_or_default();
    let mut obj = decode::message(&TABLE, idx, &raw)
        .map_err(|e| bad(format!("{kind}: {e}")))?
        .unwrap_or(Value::Null);
    let Some(map) = obj.as_object_mut() else {
        return Err(bad(format!("{kind} is not an object")));
    };
    map.insert("apiVersion".into(), Value::String(api_version));
    map.insert("kind".into(), Value::String(kind));
    Ok(obj)
}

/// The protobuf encoding of a JSON object of a built-in kind (its `apiVersion` and `kind` name
/// the message); None for kinds without one, or an object that does not fit its message.
pub fn encode(obj: &Value) -> Option<Vec<u8>> {
    let api_version = obj.get("apiVersion")?.as_str()?;
    let kind = obj.get("kind")?.as_str()?;
    let idx = TABLE.kind(api_version, kind)?;
    let mut w = wire::Writer::default();
    if let Err(e) = encode::message(&TABLE, idx, obj, &mut w) {
        tracing::warn!("{api_version} {kind} has no protobuf form, answering JSON: {e}");
        return None;
    }
    Some(envelope(api_version, kind, w.buf))
}

/// One watch event as kube-apiserver streams it to protobuf clients: a 4-byte big-endian length,
/// then a `WatchEvent` (no envelope) whose object is the enveloped object. An object without a
/// protobuf form becomes an ERROR event, which ends the client's watch.
pub fn watch_frame(kind: &str, object: &Value) -> Vec<u8> {
    let (kind, raw) = match encode(object) {
        Some(raw) => (kind, raw),
        None => {
            let e =
                ApiError::internal("the object has no protobuf form; watch with application/json");
            ("ERROR", encode(&e.status()).unwrap_or_default())
        }
    };
    let event = WatchEvent {
        r#type: Some(kind.to_string()),
        object: Some(RawExtension { raw: Some(raw) }),
    };
    let payload = event.encode_to_vec();
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend(payload);
    out
}

/// An error as kube-apiserver answers clients that prefer protobuf: the Status in protobuf.
pub fn error_response(e: ApiError) -> Response {
    let status = encode(&e.status());
    let resp = e.into_response();
    let Some(bytes) = status else {
        return resp;
    };
    let (mut parts, _) = resp.into_parts();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    Response::from_parts(parts, Body::from(bytes))
}

/// `k8s\0` + `runtime.Unknown` around an encoded object.
fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

/// Whether the client's `Accept` header prefers protobuf over JSON: the media range of highest
/// quality (the first of equal ones) is protobuf. Table and metadata-only requests (`as=`) are
/// JSON here.
pub fn preferred(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut best: Option<(f32, bool)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let mime = parts.next().unwrap_or_default();
        let mut q = 1.0f32;
        let mut transformed = false;
        for p in parts {
            match p.split_once('=') {
                Some(("q", v)) => q = v.trim().parse().unwrap_or(0.0),
                Some(("as", _)) => transformed = true,
                _ => {}
            }
        }
        let proto = mime == MEDIA_TYPE && !transformed;
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, proto));
        }
    }
    best.is_some_and(|(_, proto)| proto)
}
