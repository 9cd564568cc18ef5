//! CRD conversion webhooks: a `ConversionReview` (apiextensions.k8s.io/v1) POSTed as
//! kube-apiserver does, over TLS with the CRD's caBundle as the only trust root, through the
//! bounded, pooled client of [`crate::webhook_client`].

use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::webhook_client::{WebhookError, post, target};

/// Default time a conversion webhook call may take (`ServerConfig::conversion_webhook_timeout`).
pub const DEFAULT_CONVERSION_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest response a conversion webhook may send for a request of `request_bytes`: the
/// converted objects are about the size of the originals, so twice the request plus the
/// request-body limit, however many objects a list converts at once.
pub fn conversion_response_limit(request_bytes: usize) -> usize {
    request_bytes
        .saturating_mul(2)
        .saturating_add(crate::MAX_BODY_BYTES)
}

/// Converts `objects` through the CRD's webhook.
pub async fn webhook_convert(
    state: &AppState,
    crd_name: &str,
    client_config: &Value,
    objects: Vec<Value>,
    desired: &str,
) -> ApiResult<Vec<Value>> {
    let fail = |e: WebhookError| {
        ApiError::internal(format!("conversion webhook for {crd_name} failed: {e}"))
    };
    let uid = crate::registry::meta::new_uid();
    let review = json!({
        "kind": "ConversionReview",
        "apiVersion": "apiextensions.k8s.io/v1",
        "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects},
    });
    let t = target(state, client_config).map_err(fail)?;
    let body = serde_json::to_vec(&review).map_err(|e| ApiError::internal(e.to_string()))?;
    let limit = conversion_response_limit(body.len());
    let raw = post(
        state,
        client_config,
        &t,
        body,
        state.conversion_timeout,
        limit,
        // kube-apiserver presents no admission credentials to conversion webhooks
        None,
    )
    .await
    .map_err(fail)?;
    let resp: Value = serde_json::from_slice(&raw)
        .map_err(|e| fail(WebhookError::ReadResponse(e.to_string())))?;
    let r = resp
        .get("response")
        .ok_or_else(|| fail(WebhookError::ReadResponse("no response".into())))?;
    if r.get("uid").and_then(Value::as_str) != Some(uid.as_str()) {
        return Err(fail(WebhookError::ReadResponse("uid mismatch".into())));
    }
    if r.pointer("/result/status").and_then(Value::as_str) != Some("Success") {
        let msg = r
            .pointer("/result/message")
            .and_then(Value::as_str)
            .unwrap_or("conversion failed");
        return Err(fail(WebhookError::ReadResponse(msg.to_string())));
    }
    let converted = r
        .get("convertedObjects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if converted.len() != objects_len(&review) {
        return Err(fail(WebhookError::ReadResponse(
            "returned a different number of objects".into(),
        )));
    }
    Ok(converted)
}

fn objects_len(review: &Value) -> usize {
    review
        .pointer("/request/objects")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}
