//! Validating admission webhooks: `admissionregistration.k8s.io/v1` ValidatingWebhookConfigurations
//! are called with an `AdmissionReview` (admission.k8s.io/v1) for matching CREATE and UPDATE
//! requests, over HTTPS with the webhook's caBundle (or a service reference resolved like the
//! conversion webhooks), as kube-apiserver does. A denial answers the client with the webhook's
//! status code (400 when none) and `admission webhook "<name>" denied the request: <message>`;
//! a failing call — no answer within `timeoutSeconds` (default 10, at most 30, as kube), a
//! response over [`MAX_RESPONSE_BYTES`], anything not an allowed AdmissionReview — refuses the
//! request under `failurePolicy: Fail` (the default) and is skipped under `Ignore`. The review's
//! `userInfo` is the requesting user (name, uid, groups, extra), `system:apiserver` for the
//! server's own writes. Not dispatched: DELETE and CONNECT, namespaceSelector/objectSelector
//! (every namespace and object matches), mutating webhooks.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::list::{ListQuery, list};
use crate::registry::Resource;
use crate::state::AppState;
use crate::webhook_client::{post, target};

/// The largest AdmissionReview response accepted (a validating webhook's answer is a few
/// hundred bytes; this leaves room for a long message).
pub const MAX_RESPONSE_BYTES: usize = 3 * 1024 * 1024;

/// The operation being admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// POST.
    Create,
    /// PUT/PATCH of the main resource.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
        }
    }
}

/// Whether one rule of a webhook matches the request (pure).
pub fn rule_matches(rule: &Value, res: &Resource, op: Operation, namespaced: bool) -> bool {
    let list_has = |key: &str, value: &str| {
        rule.get(key)
            .and_then(Value::as_array)
            .is_some_and(|l| l.iter().any(|v| v == "*" || v == value))
    };
    let scope_ok = match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Namespaced" => namespaced,
        "Cluster" => !namespaced,
        _ => true,
    };
    list_has("apiGroups", &res.group)
        && list_has("apiVersions", &res.version)
        && list_has("resources", &res.plural)
        && list_has("operations", op.as_str())
        && scope_ok
}

/// Calls every matching validating webhook; Err when one denies (or fails under Fail).
pub async fn validate(
    state: &AppState,
    res: &Resource,
    op: Operation,
    obj: &Value,
    old: Option<&Value>,
    opts: &crate::write::WriteOpts,
) -> ApiResult<()> {
    if res.group == "admissionregistration.k8s.io" {
        return Ok(());
    }
    let Some(configs_res) = state.registry.find(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
    ) else {
        return Ok(());
    };
    let configs = list(
        state,
        &configs_res,
        None,
        &ListQuery::parse(&configs_res, &HashMap::new())?,
    )
    .await?;
    for config in configs.items {
        for hook in config
            .get("webhooks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let rules = hook
                .get("rules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if !rules
                .iter()
                .any(|r| rule_matches(r, res, op, res.namespaced))
            {
                continue;
            }
            call(state, res, op, hook, obj, old, opts).await?;
        }
    }
    Ok(())
}

async fn call(
    state: &AppState,
    res: &Resource,
    op: Operation,
    hook: &Value,
    obj: &Value,
    old: Option<&Value>,
    opts: &crate::write::WriteOpts,
) -> ApiResult<()> {
    let user: k8s_openapi::api::authentication::v1::UserInfo = opts
        .user
        .clone()
        .unwrap_or_else(crate::auth::apiserver_user)
        .into();
    let name = hook.get("name").and_then(Value::as_str).unwrap_or_default();
    let ignore = hook.get("failurePolicy").and_then(Value::as_str) == Some("Ignore");
    let uid = crate::meta::new_uid();
    let gvk = json!({"group": res.group, "version": res.version, "kind": res.kind});
    let gvr = json!({"group": res.group, "version": res.version, "resource": res.plural});
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": obj.pointer("/metadata/name"),
            "namespace": obj.pointer("/metadata/namespace"),
            "operation": op.as_str(),
            "userInfo": user,
            "object": obj,
            "oldObject": old,
            "dryRun": opts.dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": if op == Operation::Create { "CreateOptions" } else { "UpdateOptions" }},
        },
    });
    let cc = hook.get("clientConfig").cloned().unwrap_or(Value::Null);
    let failed = |why: String| {
        if ignore {
            tracing::warn!(webhook = name, error = %why, "failed calling webhook, failing open (failurePolicy: Ignore)");
            Ok(())
        } else {
            Err(ApiError::internal(format!(
                "Internal error occurred: failed calling webhook \"{name}\": {why}"
            )))
        }
    };
    let t = match target(state, &cc) {
        Ok(t) => t,
        Err(e) => return failed(e.to_string()),
    };
    let body = serde_json::to_vec(&review).map_err(|e| ApiError::internal(e.to_string()))?;
    // kube's defaulting and validation: 10 s unless set, 1..=30.
    let timeout = hook
        .get("timeoutSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(10)
        .clamp(1, 30);
    let raw = match post(
        state,
        &cc,
        &t,
        body,
        Duration::from_secs(timeout),
        MAX_RESPONSE_BYTES,
    )
    .await
    {
        Ok(raw) => raw,
        Err(e) => return failed(e.to_string()),
    };
    let resp: Value = match serde_json::from_slice(&raw) {
        Ok(v) => v,
        Err(e) => return failed(format!("the response is not an AdmissionReview: {e}")),
    };
    let r = &resp["response"];
    if r.get("uid").and_then(Value::as_str) != Some(uid.as_str()) {
        return failed("the response uid does not match the request".into());
    }
    if r.get("allowed").and_then(Value::as_bool) == Some(true) {
        return Ok(());
    }
    let status = &r["status"];
    let code = status
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c >= 400)
        .unwrap_or(400);
    let reason = status
        .get("reason")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .unwrap_or(if code == 403 {
            "Forbidden"
        } else {
            "BadRequest"
        });
    let message = status.get("message").and_then(Value::as_str).unwrap_or("");
    Err(ApiError::new(
        code,
        reason,
        format!("admission webhook \"{name}\" denied the request: {message}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_like_kube() {
        let res = crate::registry::Registry::new()
            .find("", "v1", "configmaps")
            .unwrap();
        let rule = json!({"apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"], "operations": ["CREATE"]});
        assert!(rule_matches(&rule, &res, Operation::Create, true));
        assert!(!rule_matches(&rule, &res, Operation::Update, true));
        let wild = json!({"apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "operations": ["*"], "scope": "Cluster"});
        assert!(!rule_matches(&wild, &res, Operation::Create, true));
        let other = json!({"apiGroups": ["apps"], "apiVersions": ["*"], "resources": ["*"], "operations": ["*"]});
        assert!(!rule_matches(&other, &res, Operation::Create, true));
    }
}
