//! One call of an admission webhook: the AdmissionReview (admission.k8s.io/v1) sent, and the
//! answer read as kube-apiserver reads it.

use base64::Engine as _;
use serde_json::{Value, json};

use super::MAX_RESPONSE_BYTES;
use super::cache::Hook;
use crate::error::ApiError;
use crate::state::AppState;
use crate::webhook_client::{post, target};

/// What a webhook answered.
pub(super) enum Answer {
    /// Allowed, with its JSON patch (decoded, not yet applied) and warnings.
    Allowed {
        patch: Option<Value>,
        warnings: Vec<String>,
    },
    /// Denied: the client's error, whatever the failure policy.
    Denied(ApiError),
}

/// Why a call gave no usable answer; `failurePolicy` decides what follows.
#[derive(Debug)]
pub(super) struct CallFailed(pub String);

/// Sends `request` (an AdmissionRequest without its uid) to the webhook.
pub(super) async fn call(
    state: &AppState,
    hook: &Hook,
    mut request: Value,
    mutating: bool,
) -> Result<Answer, CallFailed> {
    let uid = crate::registry::meta::new_uid();
    request["uid"] = json!(uid);
    let review =
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request});
    let cc = &hook.client_config;
    let t = target(state, cc).map_err(|e| CallFailed(e.to_string()))?;
    let body = serde_json::to_vec(&review).map_err(|e| CallFailed(e.to_string()))?;
    let credentials = state
        .webhook_credentials
        .for_admission(mutating, &t.credentials_target);
    let raw = post(
        state,
        cc,
        &t,
        body,
        hook.timeout,
        MAX_RESPONSE_BYTES,
        credentials,
    )
    .await
    .map_err(|e| CallFailed(e.to_string()))?;
    let resp: Value = serde_json::from_slice(&raw)
        .map_err(|e| CallFailed(format!("the response is not an AdmissionReview: {e}")))?;
    read(&hook.name, &uid, &resp, mutating)
}

/// Reads an AdmissionReview response (pure).
fn read(name: &str, uid: &str, resp: &Value, mutating: bool) -> Result<Answer, CallFailed> {
    let failed = |why: String| Err(CallFailed(why));
    let Some(r) = resp.get("response").filter(|r| r.is_object()) else {
        return failed("webhook response was absent".into());
    };
    let got = r.get("uid").and_then(Value::as_str).unwrap_or_default();
    if got != uid {
        return failed(format!("expected response.uid={uid:?}, got {got:?}"));
    }
    if r.get("allowed").and_then(Value::as_bool) != Some(true) {
        return Ok(Answer::Denied(denied(name, r.get("status"))));
    }
    let warnings = r
        .get("warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let patch = match r
        .get("patch")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(_) if !mutating => return failed("validating webhooks may not return patches".into()),
        Some(encoded) => {
            match r.get("patchType").and_then(Value::as_str) {
                None | Some("") => {
                    return failed(
                        "webhook returned response.patch but not response.patchType".into(),
                    );
                }
                Some("JSONPatch") => {}
                Some(other) => {
                    return failed(format!(
                        "webhook returned invalid response.patchType of {other:?}"
                    ));
                }
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| CallFailed(format!("response.patch is not base64: {e}")))?;
            let patch: Value = serde_json::from_slice(&bytes)
                .map_err(|e| CallFailed(format!("response.patch is not a JSON patch: {e}")))?;
            Some(patch)
        }
    };
    Ok(Answer::Allowed { patch, warnings })
}

/// kube's error for a denial (`webhookerrors.ToStatusErr`): the webhook's status as it sent it —
/// code (400 when below 400), reason (possibly none) and `details` (causes included) — with the
/// message prefixed by `admission webhook "<name>" denied the request`.
fn denied(name: &str, status: Option<&Value>) -> ApiError {
    let status = status.cloned().unwrap_or(Value::Null);
    let code = status
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c >= 400)
        .unwrap_or(400);
    let text = |k: &str| {
        status
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let by = format!("admission webhook \"{name}\" denied the request");
    let message = match text("message").or(text("reason")) {
        Some(m) => format!("{by}: {m}"),
        None => format!("{by} without explanation"),
    };
    let mut e = ApiError::new(code, text("reason").unwrap_or_default(), message);
    e.details = status.get("details").filter(|d| d.is_object()).cloned();
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(r: Value, mutating: bool) -> Result<Answer, CallFailed> {
        read("h.example.com", "u1", &json!({"response": r}), mutating)
    }

    #[test]
    fn patches_need_their_type_and_only_mutating_webhooks_send_them() {
        let patch = base64::engine::general_purpose::STANDARD
            .encode(r#"[{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]"#);
        let ok = json!({"uid": "u1", "allowed": true, "patchType": "JSONPatch", "patch": patch, "warnings": ["careful"]});
        match answer(ok.clone(), true) {
            Ok(Answer::Allowed { patch, warnings }) => {
                assert_eq!(patch.unwrap()[0]["op"], "add");
                assert_eq!(warnings, ["careful"]);
            }
            _ => panic!("allowed"),
        }
        let err = |r, m| answer(r, m).err().map(|e| e.0).unwrap_or_default();
        assert_eq!(
            err(ok.clone(), false),
            "validating webhooks may not return patches"
        );
        let mut untyped = ok.clone();
        untyped["patchType"] = Value::Null;
        assert!(err(untyped, true).contains("but not response.patchType"));
        let mut merge = ok;
        merge["patchType"] = json!("MergePatch");
        assert!(err(merge, true).contains("invalid response.patchType of \"MergePatch\""));
        assert!(
            err(json!({"uid": "other", "allowed": true}), true).contains("expected response.uid")
        );
    }

    #[test]
    fn denials_carry_the_webhooks_status() {
        let Ok(Answer::Denied(e)) = answer(
            json!({"uid": "u1", "allowed": false, "status": {"code": 403, "message": "no"}}),
            true,
        ) else {
            panic!("denied")
        };
        // no reason sent, none invented (kube's ToStatusErr keeps the webhook's status)
        assert_eq!((e.code, e.reason.as_str()), (403, ""));
        assert_eq!(e.details, None);
        assert_eq!(
            e.message,
            "admission webhook \"h.example.com\" denied the request: no"
        );
        let Ok(Answer::Denied(e)) = answer(json!({"uid": "u1", "allowed": false}), false) else {
            panic!("denied")
        };
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "admission webhook \"h.example.com\" denied the request without explanation"
        );
        // a 422 Invalid keeps its reason and details, causes and field paths included
        let details = json!({"name": "n", "group": "g.io", "kind": "K",
            "causes": [{"reason": "FieldValueInvalid", "message": "Invalid value: 1: bad", "field": "spec.a"}]});
        let Ok(Answer::Denied(e)) = answer(
            json!({"uid": "u1", "allowed": false, "status": {"code": 422, "reason": "Invalid",
                "message": "K.g.io \"n\" is invalid: spec.a: Invalid value: 1: bad", "details": details}}),
            false,
        ) else {
            panic!("denied")
        };
        assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
        assert_eq!(e.details.as_ref(), Some(&details));
        assert_eq!(e.status()["details"]["causes"][0]["field"], "spec.a");
        // a code below 400 becomes 400; the reason alone explains when there is no message
        let Ok(Answer::Denied(e)) = answer(
            json!({"uid": "u1", "allowed": false, "status": {"code": 200, "reason": "NotMine"}}),
            false,
        ) else {
            panic!("denied")
        };
        assert_eq!((e.code, e.reason.as_str()), (400, "NotMine"));
        assert_eq!(
            e.message,
            "admission webhook \"h.example.com\" denied the request: NotMine"
        );
    }
}
