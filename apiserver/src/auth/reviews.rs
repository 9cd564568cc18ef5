//! The reviews of `authorization.k8s.io/v1` and `authentication.k8s.io/v1`, answered from the
//! request and never stored, as kube-apiserver answers them: SelfSubjectAccessReview and
//! SelfSubjectRulesReview (`kubectl auth can-i [--list]`), SubjectAccessReview and
//! LocalSubjectAccessReview (may someone else…?), SelfSubjectReview (`kubectl auth whoami`) and
//! TokenReview (whom does this token stand for?). Creating a review is itself authorized like
//! any request: every authenticated user may create the self reviews (`system:basic-user`),
//! the others need a binding.

use std::collections::BTreeMap;

use cellfed_auth::UserInfo;
use cellfed_auth::rbac::{Attributes, Decision, RulesFor, rules_for};
use http::StatusCode;
use k8s_openapi::api::authorization::v1::SubjectRulesReviewStatus;
use serde_json::{Value, json};

use super::Mode;
use crate::error::{ApiError, ApiResult, Cause};
use crate::registry::Resource;
use crate::state::AppState;

/// Answers a POST of a review of kind `res.kind`; `namespace` is the URL's (local reviews).
pub async fn create(
    state: &AppState,
    res: &Resource,
    namespace: Option<&str>,
    user: UserInfo,
    mut review: Value,
) -> ApiResult<(StatusCode, Value)> {
    crate::registry::write::check_type(res, &review)?;
    review["apiVersion"] = json!(res.api_version());
    review["kind"] = json!(res.kind);
    let spec = review.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status = match res.kind.as_str() {
        "SelfSubjectAccessReview" => access_status(state, &attributes(res, &spec, user)?),
        "SubjectAccessReview" => {
            access_status(state, &attributes(res, &spec, subject(res, &spec)?)?)
        }
        "LocalSubjectAccessReview" => {
            let ns = namespace.unwrap_or_default();
            let mut spec = spec.clone();
            let spec_ns = spec
                .pointer("/resourceAttributes/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if spec.get("nonResourceAttributes").is_some() {
                return Err(invalid(
                    res,
                    "spec.nonResourceAttributes",
                    "disallowed on this kind of request",
                ));
            }
            if !spec_ns.is_empty() && spec_ns != ns {
                return Err(ApiError::bad_request(format!(
                    "spec.resourceAttributes.namespace must match namespace: {ns}"
                )));
            }
            if let Some(ra) = spec
                .get_mut("resourceAttributes")
                .and_then(Value::as_object_mut)
            {
                ra.insert("namespace".into(), json!(ns));
            }
            review["spec"] = spec.clone();
            access_status(state, &attributes(res, &spec, subject(res, &spec)?)?)
        }
        "SelfSubjectRulesReview" => {
            let ns = spec
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if ns.is_empty() {
                return Err(ApiError::bad_request("no namespace on request"));
            }
            serde_json::to_value(rules_status(state, &user, ns))
                .map_err(|e| ApiError::internal(e.to_string()))?
        }
        "SelfSubjectReview" => {
            let info: k8s_openapi::api::authentication::v1::UserInfo = user.into();
            json!({"userInfo": info})
        }
        "TokenReview" => token_review_status(state, &spec).await,
        _ => return Err(ApiError::method_not_allowed()),
    };
    review["status"] = status;
    let meta = crate::registry::meta::metadata_mut(&mut review);
    meta.insert("creationTimestamp".into(), Value::Null);
    Ok((StatusCode::CREATED, review))
}

fn invalid(res: &Resource, field: &str, detail: &str) -> ApiError {
    ApiError::invalid(
        &res.group,
        &res.kind,
        "",
        vec![Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {detail}"),
            field: field.into(),
        }],
    )
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// The user a (Local)SubjectAccessReview asks about.
fn subject(res: &Resource, spec: &Value) -> ApiResult<UserInfo> {
    let name = spec.get("user").and_then(Value::as_str).unwrap_or_default();
    let groups = strings(spec.get("groups"));
    if name.is_empty() && groups.is_empty() {
        return Err(invalid(
            res,
            "spec.user",
            "at least one of user or group must be specified",
        ));
    }
    let mut user = UserInfo::new(name, groups);
    user.uid = spec
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if let Some(extra) = spec.get("extra").and_then(Value::as_object) {
        user.extra = extra
            .iter()
            .map(|(k, v)| (k.clone(), strings(Some(v))))
            .collect::<BTreeMap<_, _>>();
    }
    Ok(user)
}

/// The attributes an access review's spec asks about.
fn attributes(res: &Resource, spec: &Value, user: UserInfo) -> ApiResult<Attributes> {
    let s = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match (
        spec.get("resourceAttributes"),
        spec.get("nonResourceAttributes"),
    ) {
        (Some(ra), None) => Ok(Attributes {
            user,
            verb: s(ra, "verb"),
            resource_request: true,
            namespace: s(ra, "namespace"),
            api_group: s(ra, "group"),
            api_version: s(ra, "version"),
            resource: s(ra, "resource"),
            subresource: s(ra, "subresource"),
            name: s(ra, "name"),
            path: String::new(),
        }),
        (None, Some(nra)) => Ok(Attributes::non_resource(
            user,
            &s(nra, "verb"),
            &s(nra, "path"),
        )),
        (Some(_), Some(_)) => Err(invalid(
            res,
            "spec.nonResourceAttributes",
            "cannot be specified in combination with resourceAttributes",
        )),
        (None, None) => Err(invalid(
            res,
            "spec.resourceAttributes",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
    }
}

/// `SubjectAccessReviewStatus` of a decision.
fn access_status(state: &AppState, attrs: &Attributes) -> Value {
    let decision = match &state.security {
        Some(security) => security.decide(attrs),
        None => Decision::Allow {
            reason: String::new(),
        },
    };
    let mut status = json!({"allowed": decision.is_allowed()});
    if !decision.reason().is_empty() {
        status["reason"] = json!(decision.reason());
    }
    status
}

/// Every rule `user` holds in `namespace`, as SelfSubjectRulesReview reports it.
fn rules_status(state: &AppState, user: &UserInfo, namespace: &str) -> SubjectRulesReviewStatus {
    let modes = state
        .security
        .as_ref()
        .map_or_else(|| vec![Mode::AlwaysAllow], |s| s.modes.clone());
    let mut out = RulesFor::default();
    for mode in modes {
        match mode {
            Mode::AlwaysAllow => out
                .rules
                .extend(cellfed_auth::rbac::escalation::full_authority()),
            Mode::Rbac => {
                if let Some(security) = &state.security {
                    let found = rules_for(&*security.rbac.snapshot(), user, namespace);
                    out.rules.extend(found.rules);
                    out.errors.extend(found.errors);
                }
            }
        }
    }
    out.review_status()
}

/// `TokenReviewStatus`: whom `spec.token` stands for, for `spec.audiences`.
async fn token_review_status(state: &AppState, spec: &Value) -> Value {
    let token = spec
        .get("token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let audiences = strings(spec.get("audiences"));
    let requested = (!audiences.is_empty()).then_some(audiences.as_slice());
    let Some(security) = &state.security else {
        return json!({"authenticated": false, "error": "authentication is off"});
    };
    match security.authn.review_token(state, token, requested).await {
        Ok((user, audiences)) => {
            let info: k8s_openapi::api::authentication::v1::UserInfo = user.into();
            let mut status = json!({"authenticated": true, "user": info});
            if !audiences.is_empty() {
                status["audiences"] = json!(audiences);
            }
            status
        }
        Err(why) => json!({"authenticated": false, "error": why.to_string()}),
    }
}
