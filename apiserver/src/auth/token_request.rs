//! The TokenRequest subresource, `POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token`
//! (`kubectl create token`): a JWT signed with the server's ServiceAccount signing key for the
//! requested audiences (default: the API audiences) and lifetime (default one hour, at least ten
//! minutes), optionally bound to a Pod or Secret of the namespace, which must exist. The token
//! authenticates as `system:serviceaccount:<ns>:<name>` for as long as it is valid and the
//! ServiceAccount (with the same uid) exists.

use std::time::{Duration, SystemTime};

use cellfed_auth::service_account::{self, ObjectRef, TokenRequest};
use http::StatusCode;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Cause};
use crate::registry::Resource;
use crate::state::AppState;

/// TokenRequest's API version and kind.
const API_VERSION: &str = "authentication.k8s.io/v1";

/// Issues a token for the ServiceAccount `namespace/name`.
pub async fn create(
    state: &AppState,
    sa_res: &Resource,
    namespace: &str,
    name: &str,
    body: Value,
    dry_run: bool,
) -> ApiResult<(StatusCode, Value)> {
    let issuer = state
        .security
        .as_ref()
        .and_then(|s| s.issuer.as_ref())
        .ok_or_else(ApiError::path_not_found)?;
    if let Some(av) = body.get("apiVersion").and_then(Value::as_str)
        && av != API_VERSION
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({API_VERSION})"
        )));
    }
    let sa = crate::http::rest::get(state, sa_res, Some(namespace), name).await?;
    if sa.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(ApiError::not_found("", "serviceaccounts", name));
    }
    let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let expiration = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => service_account::DEFAULT_EXPIRATION,
        Some(v) => Duration::from_secs(v.as_u64().ok_or_else(|| {
            invalid(
                "spec.expirationSeconds",
                v,
                "must be a positive number of seconds",
            )
        })?),
    };
    if let Err(e) = service_account::validate_expiration(expiration) {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: e
                    .to_string()
                    .trim_start_matches("spec.expirationSeconds: ")
                    .to_string(),
                field: "spec.expirationSeconds".into(),
            }],
        ));
    }
    let mut request = TokenRequest {
        namespace: namespace.to_string(),
        name: name.to_string(),
        uid: str_at(&sa, "/metadata/uid"),
        audiences,
        expiration: Some(expiration),
        ..TokenRequest::default()
    };
    if let Some(bound) = spec.get("boundObjectRef").filter(|b| !b.is_null()) {
        let object = bound_object(state, namespace, bound).await?;
        match str_at(bound, "/kind").as_str() {
            "Pod" => request.pod = Some(object),
            _ => request.secret = Some(object),
        }
    }
    let issued = issuer
        .issue(&request, SystemTime::now())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let expires = jiff::Timestamp::try_from(issued.expires_at)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let token = if dry_run { String::new() } else { issued.token };
    let mut spec = spec;
    spec["expirationSeconds"] = json!(expiration.as_secs());
    if spec
        .get("audiences")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        spec["audiences"] = json!(token_audiences(&token));
    }
    Ok((
        StatusCode::CREATED,
        json!({
            "apiVersion": API_VERSION,
            "kind": "TokenRequest",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": crate::registry::meta::now()},
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": expires},
        }),
    ))
}

fn str_at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn invalid(field: &str, value: &Value, detail: &str) -> ApiError {
    ApiError::invalid(
        "authentication.k8s.io",
        "TokenRequest",
        "",
        vec![Cause::invalid(field, value, detail)],
    )
}

/// The audiences written into a token (to echo them in `spec.audiences` as kube does).
fn token_audiences(token: &str) -> Vec<String> {
    use base64::Engine as _;
    token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<service_account::Claims>(&b).ok())
        .map(|c| c.aud)
        .unwrap_or_default()
}

/// The Pod or Secret a token is bound to: it must exist in the namespace (and have the uid the
/// request names, if any).
async fn bound_object(state: &AppState, namespace: &str, bound: &Value) -> ApiResult<ObjectRef> {
    let kind = str_at(bound, "/kind");
    let name = str_at(bound, "/name");
    let plural = match kind.as_str() {
        "Pod" => "pods",
        "Secret" => "secrets",
        other => {
            return Err(invalid(
                "spec.boundObjectRef.kind",
                &json!(other),
                "supported values: \"Pod\", \"Secret\"",
            ));
        }
    };
    let res = state
        .registry
        .find("", "v1", plural)
        .ok_or_else(ApiError::path_not_found)?;
    let obj = crate::http::rest::get(state, &res, Some(namespace), &name).await?;
    let uid = str_at(&obj, "/metadata/uid");
    let wanted = str_at(bound, "/uid");
    if !wanted.is_empty() && wanted != uid {
        return Err(ApiError::conflict(
            "",
            plural,
            &name,
            &format!(
                "the UID in the bound object reference ({wanted}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        ));
    }
    Ok(ObjectRef { name, uid })
}
