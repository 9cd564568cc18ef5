//! OpenAPI v2 and v3 documents for built-in kinds and CRDs, so `kubectl apply` validates and
//! `kubectl explain` works.
//!
//! [`schemas`] builds `components.schemas` (k8s-openapi for built-in kinds, the CRD schema
//! otherwise), [`paths`] the operations, [`v2`] turns both into Swagger 2.0.

pub mod paths;
pub mod schemas;
pub mod v2;

use serde_json::{Map, Value, json};

/// One served resource, as the OpenAPI documents need it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceSchema {
    /// "" for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    /// Lower-case plural, e.g. `deployments`.
    pub plural: String,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    /// `status`, `scale`.
    pub subresources: Vec<String>,
    /// A CRD version's `openAPIV3Schema`; None for built-in kinds (the module knows those).
    pub schema: Option<Value>,
}

/// `/openapi/v3`: the index of group-version documents; `hash` gives each document's ETag.
pub fn v3_index(group_versions: &[(String, String)], hash: &dyn Fn(&str, &str) -> String) -> Value {
    let mut paths = serde_json::Map::new();
    for (group, version) in group_versions {
        let path = if group.is_empty() {
            format!("api/{version}")
        } else {
            format!("apis/{group}/{version}")
        };
        let url = format!("/openapi/v3/{path}?hash={}", hash(group, version));
        paths.insert(path, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

/// `/openapi/v3/apis/<group>/<version>`: schemas and paths of these resources.
pub fn v3_document(group: &str, version: &str, resources: &[ResourceSchema]) -> Value {
    let _ = (group, version);
    let (paths, schemas) = build(resources);
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
        },
        "security": [{"BearerToken": []}],
    })
}

/// `/openapi/v2`: one Swagger 2.0 document of all resources.
pub fn v2_document(resources: &[ResourceSchema]) -> Value {
    let (paths, schemas) = build(resources);
    v2::from_v3(paths, schemas)
}

fn build(resources: &[ResourceSchema]) -> (Map<String, Value>, Map<String, Value>) {
    let mut schemas = schemas::Schemas::new();
    let mut paths = Map::new();
    for r in resources {
        let added = schemas.add(r);
        let scale = if r.subresources.iter().any(|s| s == "scale") {
            schemas.add_kind("autoscaling", "v1", "Scale")
        } else {
            None
        };
        paths::add_paths(
            &mut paths,
            r,
            &added.name,
            &added.list_name,
            scale.as_deref(),
            added.builtin,
        );
    }
    (paths, schemas.finish())
}

#[cfg(test)]
mod tests;
