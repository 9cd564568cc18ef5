//! PATCH and server-side apply as pure functions: JSON patch, merge patch, strategic merge
//! patch for built-in kinds, and apply with managedFields.
//!
//! `apply` dispatches on the patch type: [`json`] (RFC 6902), [`merge`] (RFC 7386),
//! [`strategic`] (built-in kinds, merge keys from [`strategy`]) and [`ssa`] (server-side apply
//! with [`managed_fields`]). `track_update` records `Update` ownership for every other write.

pub mod json;
pub mod managed_fields;
pub mod merge;
#[path = "apply.rs"]
pub mod ssa;
pub mod strategic;
pub mod strategy;

use serde_json::{Value, json};

/// The patch flavour, from the request's Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json` (built-in kinds only).
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type of a Content-Type header value (parameters ignored).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Everything a patch needs to know.
#[derive(Debug, Clone, Copy)]
pub struct PatchRequest<'a> {
    /// `apps/v1`, `v1`, `types.kubefed.io/v1beta1`.
    pub api_version: &'a str,
    /// `Deployment`.
    pub kind: &'a str,
    /// True for built-in kinds (strategic merge keys known), false for custom resources.
    pub builtin: bool,
    /// The object now; None when it does not exist (only apply may create).
    pub live: Option<&'a Value>,
    /// The request body.
    pub patch: &'a [u8],
    pub patch_type: PatchType,
    /// `fieldManager` query parameter (required for apply).
    pub field_manager: Option<&'a str>,
    /// `force` query parameter (apply only).
    pub force: bool,
    /// RFC 3339 time written into managedFields entries.
    pub now: &'a str,
}

/// One field owned by another manager that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyConflict {
    pub manager: String,
    /// The field path as kube-apiserver prints it, e.g. `.spec.replicas`.
    pub field: String,
    /// The manager as kube prints it in conflict messages: `"hpa"` for an Apply manager,
    /// `"kubectl-edit" using apps/v1` for an Update manager.
    pub manager_description: String,
}

/// Why a patch failed; each maps to the Status kube-apiserver would return.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body does not parse as the declared patch type (400 BadRequest).
    #[error("{0}")]
    Malformed(String),
    /// This patch type is not supported for this kind (415 UnsupportedMediaType).
    #[error("{0}")]
    Unsupported(String),
    /// An operation could not be applied, e.g. a failed `test` or a missing path (422 Invalid).
    #[error("{0}")]
    Invalid(String),
    /// Apply would take fields owned by other managers (409 Conflict).
    #[error("Apply failed with {} conflict(s)", conflicts.len())]
    Conflict { conflicts: Vec<ApplyConflict> },
}

impl PatchError {
    /// The HTTP status code kube-apiserver uses for this failure.
    pub fn code(&self) -> u16 {
        match self {
            Self::Malformed(_) => 400,
            Self::Unsupported(_) => 415,
            Self::Invalid(_) => 422,
            Self::Conflict { .. } => 409,
        }
    }
    /// The `Status.reason` kube-apiserver uses for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "BadRequest",
            Self::Unsupported(_) => "UnsupportedMediaType",
            Self::Invalid(_) => "Invalid",
            Self::Conflict { .. } => "Conflict",
        }
    }
}

impl PatchError {
    /// The `metav1.Status` kube-apiserver returns for this failure (message, reason, code and
    /// `details.causes`), e.g. `FieldManagerConflict` causes for apply conflicts.
    pub fn status(&self) -> Value {
        let (message, causes) = match self {
            Self::Malformed(m) | Self::Unsupported(m) => (m.clone(), Vec::new()),
            Self::Invalid(m) if m.starts_with("PatchOptions.meta.k8s.io") => {
                (m.clone(), Vec::new())
            }
            Self::Invalid(m) => (
                "the server rejected our request due to an error in our request".to_string(),
                vec![json!({"type": "UnexpectedServerResponse", "message": m})],
            ),
            Self::Conflict { conflicts } => (
                conflict_message(conflicts),
                conflicts
                    .iter()
                    .map(|c| {
                        json!({
                            "type": "FieldManagerConflict",
                            "message": format!("conflict with {}", c.manager_description),
                            "field": c.field,
                        })
                    })
                    .collect(),
            ),
        };
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": self.reason(),
            "code": self.code(),
        });
        if !causes.is_empty() {
            status["details"] = json!({"causes": causes});
        }
        status
    }
}

/// kube's conflict message: one line per manager, its fields below.
fn conflict_message(conflicts: &[ApplyConflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager_description, c.field
        );
    }
    let mut managers: Vec<&str> = conflicts
        .iter()
        .map(|c| c.manager_description.as_str())
        .collect();
    managers.sort_unstable();
    managers.dedup();
    let mut lines = Vec::new();
    for m in managers {
        lines.push(format!("conflicts with {m}:"));
        for c in conflicts.iter().filter(|c| c.manager_description == m) {
            lines.push(format!("- {}", c.field));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

fn parse_json(body: &[u8]) -> Result<Value, PatchError> {
    serde_json::from_slice(body).map_err(|e| PatchError::Malformed(e.to_string()))
}

/// Applies the patch to the live object and returns the new object (for apply, with
/// `metadata.managedFields` updated). JSON, merge and strategic merge patches leave
/// managedFields alone: call [`track_update`] on the result.
pub fn apply(req: &PatchRequest<'_>) -> Result<Value, PatchError> {
    let root = strategy::root(strategy::group_of(req.api_version), req.kind);
    let live = || {
        req.live
            .ok_or_else(|| PatchError::Invalid(format!("{} not found: nothing to patch", req.kind)))
    };
    match req.patch_type {
        PatchType::Json => json::apply_json_patch(live()?, &parse_json(req.patch)?),
        PatchType::Merge => {
            let mut doc = live()?.clone();
            merge::merge_patch(&mut doc, &parse_json(req.patch)?);
            Ok(doc)
        }
        PatchType::StrategicMerge => {
            if !req.builtin {
                return Err(PatchError::Unsupported(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
                ));
            }
            strategic::strategic_merge(live()?, &parse_json(req.patch)?, root)
        }
        PatchType::Apply => {
            let manager = match req.field_manager {
                Some(m) if !m.is_empty() => m,
                _ => {
                    return Err(PatchError::Invalid(
                        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply requests".into(),
                    ));
                }
            };
            let applied: Value = serde_yaml::from_slice(req.patch)
                .map_err(|e| PatchError::Malformed(format!("error decoding YAML: {e}")))?;
            ssa::server_side_apply(&ssa::ApplyInput {
                live: req.live,
                applied: &applied,
                manager,
                force: req.force,
                api_version: req.api_version,
                kind: req.kind,
                root,
                now: req.now,
                reset_status: req.builtin,
            })
        }
    }
}

/// Records a create/update/non-apply patch by `manager` in `new.metadata.managedFields`, as
/// kube-apiserver does (operation `Update`).
pub fn track_update(live: Option<&Value>, new: &mut Value, manager: &str, now: &str) {
    let api_version = new.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = new.get("kind").and_then(Value::as_str).unwrap_or("");
    let root = strategy::root(strategy::group_of(api_version), kind);
    ssa::track(live, new, manager, root, now);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req<'a>(live: &'a Value, body: &'a str, t: PatchType, builtin: bool) -> PatchRequest<'a> {
        PatchRequest {
            api_version: "apps/v1",
            kind: "Deployment",
            builtin,
            live: Some(live),
            patch: body.as_bytes(),
            patch_type: t,
            field_manager: None,
            force: false,
            now: "2026-01-01T00:00:00Z",
        }
    }

    /// The shape of the patch `kubectl apply -v=8` sends for a changed Deployment (3-way
    /// strategic merge: last-applied annotation, `$setElementOrder`, `$patch: delete`, nulls).
    #[test]
    fn kubectl_client_side_apply_three_way_patch() {
        let live: Value = serde_json::from_str(r#"{"apiVersion":"apps/v1","kind":"Deployment",
          "metadata":{"name":"web","labels":{"app":"web","old":"x"},"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}","deployment.kubernetes.io/revision":"1"}},
          "spec":{"replicas":1,"template":{"spec":{"containers":[
            {"name":"nginx","image":"nginx:1.25","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]},
            {"name":"sidecar","image":"busybox"}]}}}}"#).unwrap();
        let patch = r#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\"}\n"},"labels":{"old":null}},"spec":{"replicas":3,"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],"containers":[{"$setElementOrder/env":[{"name":"A"}],"env":[{"$patch":"delete","name":"B"}],"image":"nginx:1.26","name":"nginx"},{"$patch":"delete","name":"sidecar"}]}}}}"#;
        let out = apply(&req(&live, patch, PatchType::StrategicMerge, true)).unwrap();
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(
            out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\"}\n"
        );
        assert_eq!(
            out["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
            "1"
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "nginx", "image": "nginx:1.26", "env": [{"name": "A", "value": "1"}]}])
        );
        assert!(!out.to_string().contains("$setElementOrder"));
    }

    #[test]
    fn strategic_merge_on_custom_resource_is_415() {
        let live = json!({"apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedDeployment"});
        let err = apply(&req(&live, "{}", PatchType::StrategicMerge, false)).unwrap_err();
        assert_eq!((err.code(), err.reason()), (415, "UnsupportedMediaType"));
    }

    #[test]
    fn json_and_merge_patch_through_apply_and_status_shape() {
        let live = json!({"spec": {"replicas": 1}});
        let out = apply(&req(
            &live,
            r#"{"spec":{"paused":true}}"#,
            PatchType::Merge,
            false,
        ))
        .unwrap();
        assert_eq!(out, json!({"spec": {"replicas": 1, "paused": true}}));
        let err = apply(&req(
            &live,
            r#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
            PatchType::Json,
            false,
        ))
        .unwrap_err();
        let status = err.status();
        assert_eq!(status["code"], 422);
        assert_eq!(
            status["message"],
            "the server rejected our request due to an error in our request"
        );
        assert_eq!(
            status["details"]["causes"][0]["message"],
            "testing value /spec/replicas failed: test failed"
        );
        assert_eq!(
            apply(&req(&live, "{not json", PatchType::Merge, false))
                .unwrap_err()
                .code(),
            400
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml; charset=utf-8"),
            Some(PatchType::Apply)
        );
        assert_eq!(PatchType::from_content_type("text/plain"), None);
    }
}

#[cfg(test)]
mod captured {
    #![allow(clippy::unwrap_used)]
    //! Bodies kubectl 1.32 sent (`kubectl apply -f` twice, captured from the wire): the create,
    //! then the three-way strategic merge patch for a manifest that bumped replicas and image,
    //! dropped a label, an env var and a container.
    use super::*;

    #[test]
    fn real_kubectl_three_way_patch_applies_as_kubectl_expects() {
        let mut live: Value =
            serde_json::from_str(include_str!("testdata/kubectl-apply-create.json")).unwrap();
        track_update(
            None,
            &mut live,
            "kubectl-client-side-apply",
            "2026-01-01T00:00:00Z",
        );
        let body = include_str!("testdata/kubectl-apply-patch.json");
        let out = apply(&PatchRequest {
            api_version: "apps/v1",
            kind: "Deployment",
            builtin: true,
            live: Some(&live),
            patch: body.as_bytes(),
            patch_type: PatchType::StrategicMerge,
            field_manager: Some("kubectl-client-side-apply"),
            force: false,
            now: "2026-01-01T00:01:00Z",
        })
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "nginx", "image": "nginx:1.26", "env": [{"name": "A", "value": "1"}]}])
        );
        let last: Value = serde_json::from_str(
            out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(last["spec"]["replicas"], 3);
        // The patched object still carries the creator's managedFields for the handler's
        // track_update to adjust.
        let mut tracked = out.clone();
        track_update(
            Some(&live),
            &mut tracked,
            "kubectl-client-side-apply",
            "2026-01-01T00:01:00Z",
        );
        let entries = tracked["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        let f = &entries[0]["fieldsV1"];
        assert!(
            f["f:spec"]["f:template"]["f:spec"]["f:containers"]
                .get("k:{\"name\":\"sidecar\"}")
                .is_none()
        );
        assert!(f["f:metadata"]["f:labels"].get("f:old").is_none());
        assert!(f["f:spec"].get("f:replicas").is_some());
    }
}
