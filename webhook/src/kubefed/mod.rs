//! KubeFed's admission webhooks for its own types, on KubeFed's paths:
//! `/validate-kubefedcluster`, `/validate-federatedtypeconfigs`, `/validate-kubefedconfig` and
//! the mutating `/default-kubefedconfig`. The rules are pure functions of the object (and the
//! stored object on update) returning kube field errors ([`field`]); a refusal is kube's
//! `422 Invalid` `Status` with one cause per field. KubeFed answered `403 Forbidden` with the
//! same messages; cellfed answers as kube-apiserver does for its own types.
//!
//! Status subresource writes are allowed without checks (only the controller writes status).

pub mod cluster;
pub mod config;
pub mod field;
pub mod type_config;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use serde_json::{Value, json};

/// The API group of KubeFed's own types.
pub const GROUP: &str = "core.kubefed.io";

/// The four routes, for any router state (the handlers read none).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/validate-kubefedcluster",
            post(|body: Bytes| async move { axum::Json(review(&body, Hook::KubeFedCluster)) }),
        )
        .route(
            "/validate-federatedtypeconfigs",
            post(|body: Bytes| async move { axum::Json(review(&body, Hook::FederatedTypeConfig)) }),
        )
        .route(
            "/validate-kubefedconfig",
            post(|body: Bytes| async move { axum::Json(review(&body, Hook::KubeFedConfig)) }),
        )
        .route(
            "/default-kubefedconfig",
            post(
                |body: Bytes| async move { axum::Json(review(&body, Hook::DefaultKubeFedConfig)) },
            ),
        )
}

/// Which webhook a review is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// Validates KubeFedClusters.
    KubeFedCluster,
    /// Validates FederatedTypeConfigs.
    FederatedTypeConfig,
    /// Validates KubeFedConfigs.
    KubeFedConfig,
    /// Defaults KubeFedConfigs (mutating).
    DefaultKubeFedConfig,
}

impl Hook {
    /// The resource (plural) and kind the hook is about.
    fn resource(self) -> (&'static str, &'static str) {
        match self {
            Self::KubeFedCluster => ("kubefedclusters", "KubeFedCluster"),
            Self::FederatedTypeConfig => ("federatedtypeconfigs", "FederatedTypeConfig"),
            Self::KubeFedConfig | Self::DefaultKubeFedConfig => ("kubefedconfigs", "KubeFedConfig"),
        }
    }
}

/// The AdmissionReview answering `body` (pure): allowed, refused with a `422 Invalid` status, or
/// (defaulting) allowed with a JSON patch. A body that is not an `admission.k8s.io/v1`
/// AdmissionReview is refused with `400 BadRequest`.
pub fn review(body: &[u8], hook: Hook) -> Value {
    let review: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return respond(
                "",
                refusal(
                    400,
                    "BadRequest",
                    format!("the request body is not an AdmissionReview: {e}"),
                ),
            );
        }
    };
    if review.get("apiVersion").and_then(Value::as_str) != Some("admission.k8s.io/v1")
        || review.get("kind").and_then(Value::as_str) != Some("AdmissionReview")
    {
        return respond(
            "",
            refusal(
                400,
                "BadRequest",
                "expected apiVersion admission.k8s.io/v1, kind AdmissionReview".into(),
            ),
        );
    }
    let Some(req) = review.get("request").filter(|r| r.is_object()) else {
        return respond(
            "",
            refusal(
                400,
                "BadRequest",
                "the AdmissionReview has no request".into(),
            ),
        );
    };
    let uid = req.get("uid").and_then(Value::as_str).unwrap_or_default();
    respond(uid, decide(req, hook))
}

/// The `response` of one request (pure).
fn decide(req: &Value, hook: Hook) -> Value {
    let text = |p: &str| req.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let (plural, kind) = hook.resource();
    // KubeFed's `webhook.Allowed`: other operations, resources and subresources pass
    let ours = text("/resource/group") == GROUP && text("/resource/resource") == plural;
    let writes = matches!(text("/operation"), "CREATE" | "UPDATE");
    if !ours || !writes || !text("/subResource").is_empty() {
        return json!({"allowed": true});
    }
    let Some(obj) = req.get("object").filter(|o| o.is_object()) else {
        return refusal(
            400,
            "BadRequest",
            format!("the {kind} AdmissionReview has no object"),
        );
    };
    let old = req
        .get("oldObject")
        .filter(|o| o.is_object() && text("/operation") == "UPDATE");
    let errors = match hook {
        Hook::KubeFedCluster => cluster::validate(obj),
        Hook::FederatedTypeConfig => type_config::validate(obj, old),
        Hook::KubeFedConfig => config::validate(obj, old),
        Hook::DefaultKubeFedConfig => {
            return match config::default_patch(obj) {
                None => json!({"allowed": true}),
                Some(patch) => {
                    let bytes = serde_json::to_vec(&patch).unwrap_or_default();
                    json!({"allowed": true, "patchType": "JSONPatch",
                           "patch": k8s_openapi::ByteString(bytes)})
                }
            };
        }
    };
    if errors.is_empty() {
        return json!({"allowed": true});
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or(text("/name"));
    let subject = field::Subject {
        group: GROUP,
        kind,
        name,
    };
    json!({"allowed": false, "status": field::invalid_status(subject, &errors)})
}

fn refusal(code: u16, reason: &str, message: String) -> Value {
    json!({"allowed": false, "status": {"kind": "Status", "apiVersion": "v1", "metadata": {},
           "status": "Failure", "code": code, "reason": reason, "message": message}})
}

fn respond(uid: &str, mut response: Value) -> Value {
    response["uid"] = json!(uid);
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(op: &str, resource: &str, sub: &str, obj: Value, old: Value) -> Vec<u8> {
        serde_json::to_vec(
            &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u1", "operation": op, "subResource": sub,
                        "resource": {"group": GROUP, "version": "v1beta1", "resource": resource},
                        "object": obj, "oldObject": old}}),
        )
        .unwrap()
    }

    #[test]
    fn other_operations_resources_and_status_pass() {
        let bad = json!({"metadata": {"name": "x"}, "spec": {}});
        for (op, res, sub) in [
            ("DELETE", "kubefedclusters", ""),
            ("CREATE", "kubefedconfigs", ""),
            ("UPDATE", "kubefedclusters", "status"),
        ] {
            let out = review(
                &request(op, res, sub, bad.clone(), Value::Null),
                Hook::KubeFedCluster,
            );
            assert_eq!(out["response"]["allowed"], true, "{op} {res} {sub}");
            assert_eq!(out["response"]["uid"], "u1");
        }
        let out = review(
            &request("CREATE", "kubefedclusters", "", bad, Value::Null),
            Hook::KubeFedCluster,
        );
        assert_eq!(out["response"]["allowed"], false);
        assert_eq!(out["response"]["status"]["code"], 422);
    }

    #[test]
    fn updates_compare_with_the_old_object() {
        let cfg = |scope: &str| {
            let mut c =
                serde_json::to_value(cellfed_api::kubefed::KubeFedConfig::cellfed_default())
                    .unwrap();
            c["spec"]["scope"] = json!(scope);
            c
        };
        let out = review(
            &request(
                "UPDATE",
                "kubefedconfigs",
                "",
                cfg("Namespaced"),
                cfg("Cluster"),
            ),
            Hook::KubeFedConfig,
        );
        assert_eq!(
            out["response"]["status"]["details"]["causes"][0]["field"],
            "spec.scope"
        );
        // the same object as a create has nothing to compare with
        let out = review(
            &request(
                "CREATE",
                "kubefedconfigs",
                "",
                cfg("Namespaced"),
                cfg("Cluster"),
            ),
            Hook::KubeFedConfig,
        );
        assert_eq!(out["response"]["allowed"], true);
    }

    #[test]
    fn malformed_reviews_are_bad_requests() {
        let out = review(b"{", Hook::KubeFedConfig);
        assert_eq!(out["response"]["status"]["code"], 400);
        let out = review(
            br#"{"apiVersion": "v1", "kind": "Pod"}"#,
            Hook::KubeFedConfig,
        );
        assert_eq!(out["response"]["status"]["reason"], "BadRequest");
    }
}
