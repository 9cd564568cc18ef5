//! The generic federated resource of `types.kubefed.io`, usable for any federated kind
//! (`FederatedDeployment`, `FederatedConfigMap`, …): typed spec and status around a template kept as
//! JSON. [`v1beta1`] is KubeFed's cluster view (the storage version), [`v1beta2`] cellfed's topology
//! view, [`convert`] the pure conversion between them on whole objects.

pub mod convert;
pub mod v1beta1;
pub mod v1beta2;
pub mod validate;

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{ApiResource, DynamicResourceScope};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A federated object of any kind: `apiVersion`, `kind`, `metadata`, typed `spec` and `status`.
/// As a [`kube::Resource`] its dynamic type is the [`ApiResource`] of the federated kind.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FederatedObject<Spec, Status> {
    /// `types.kubefed.io/v1beta1` or `types.kubefed.io/v1beta2`.
    #[serde(default)]
    pub api_version: String,
    /// `Federated<Kind>`.
    #[serde(default)]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What to propagate where.
    pub spec: Spec,
    /// What happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

/// A federated resource in KubeFed's cluster view (`types.kubefed.io/v1beta1`).
pub type FederatedResource = FederatedObject<v1beta1::FederatedSpec, v1beta1::FederatedStatus>;
/// A federated resource in the topology view (`types.kubefed.io/v1beta2`).
pub type TopologyResource = FederatedObject<v1beta2::TopologySpec, v1beta2::TopologyStatus>;

impl<Spec, Status> kube::Resource for FederatedObject<Spec, Status> {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }
    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }
    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }
    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }
    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// How an override changes the member object (RFC 6902 operations).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OverrideOp {
    /// Add the value at the path.
    Add,
    /// Remove what is at the path.
    Remove,
    /// Replace what is at the path (the default).
    #[default]
    Replace,
}

/// One change to the template for one cluster (or topology).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct ClusterOverride {
    /// `add`, `remove` or `replace` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<OverrideOp>,
    /// JSON pointer into the member object, e.g. `/spec/replicas`.
    pub path: String,
    /// The value to add or replace with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_value_schema")]
    pub value: Option<Value>,
}

impl OverrideOp {
    /// `add`, `remove` or `replace`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Replace => "replace",
        }
    }
}

impl ClusterOverride {
    /// The operation, `replace` when unset.
    pub fn op(&self) -> OverrideOp {
        self.op.unwrap_or_default()
    }
}

/// Reference to a cluster or a topology by name.
#[derive(
    Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub struct NameRef {
    /// Name of the cluster (v1beta1) or topology (v1beta2).
    pub name: String,
}

impl From<&str> for NameRef {
    fn from(name: &str) -> Self {
        Self { name: name.into() }
    }
}

/// Propagation state in one cluster (v1beta1) or topology (v1beta2).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// Name of the cluster or topology.
    pub name: String,
    /// Propagation status reason (`CreationFailed`, `AlreadyExists`, …); `OK` when in sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Generation of the federated resource last written to this member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Status of the member object, when status collection is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved_object_schema")]
    pub remote_status: Option<Value>,
}

/// A condition of a federated resource (`Propagation`, `Ready`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FederatedCondition {
    /// Type of the condition.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// One-word reason (`CheckClusters`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Last time the controller updated this condition (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<String>,
    /// Last time the condition changed status (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// How far the current generation has rolled out.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// Placed clusters (or topologies) running the current generation.
    pub updated: i64,
    /// Placed clusters (or topologies).
    pub total: i64,
    /// `updated/total`, e.g. `1/2`, shown in the UPDATED column.
    #[serde(default)]
    pub summary: String,
}

impl Rollout {
    /// A rollout summary of `updated` out of `total`.
    pub fn new(updated: i64, total: i64) -> Self {
        Self {
            updated,
            total,
            summary: format!("{updated}/{total}"),
        }
    }

    /// Whether every placed member runs the current generation.
    pub fn complete(&self) -> bool {
        self.updated == self.total
    }
}

/// Schema of an object whose fields are not checked (templates, remote status).
pub(crate) fn preserved_object_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}

/// Schema of any JSON value (override values).
pub(crate) fn any_value_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}
