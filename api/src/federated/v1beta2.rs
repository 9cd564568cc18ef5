//! `types.kubefed.io/v1beta2`: the topology view of a federated resource. With
//! `topologyType: cluster` topologies are clusters; with `topologyType: cell` they are the cells of
//! the resource's namespace (cell `rz00a` in `ns` is the cluster `rz00a.ns`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    ClusterOverride, FederatedCondition, MemberStatus, NameRef, Rollout, preserved_object_schema,
};

/// What the names of placement, mask, overrides and status designate.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TopologyType {
    /// KubeFedClusters (the default).
    #[default]
    Cluster,
    /// Cells of the resource's namespace.
    Cell,
}

impl TopologyType {
    /// `cluster` or `cell`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cluster => "cluster",
            Self::Cell => "cell",
        }
    }

    /// Parses `cluster` or `cell`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cluster" => Some(Self::Cluster),
            "cell" => Some(Self::Cell),
            _ => None,
        }
    }
}

/// Spec of a federated resource in the topology view.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopologySpec {
    /// `cluster` (default) or `cell`: what topology names designate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "default_topology_type")]
    pub topology_type: Option<TopologyType>,
    /// The object to create in member clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved_object_schema")]
    pub template: Option<Map<String, Value>>,
    /// Where to propagate: a list of topologies or, when the list is absent, a cluster selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<TopologyPlacement>,
    /// Per-topology changes to the template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<TopologyOverrides>,
    /// Keep the member's `spec.replicas` instead of the template's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_replicas: Option<bool>,
    /// Grey release: when set, only these topologies are written by the next change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_mask: Option<TopologyMask>,
}

fn default_topology_type() -> Option<TopologyType> {
    Some(TopologyType::Cluster)
}

/// Placement by topology names or by cluster labels.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopologyPlacement {
    /// Topologies to place on. When present (even empty) the selector is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topologies: Option<Vec<NameRef>>,
    /// Label selector over KubeFedClusters, used when `topologies` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<LabelSelector>,
}

/// The topologies a change may be written to (grey release).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct TopologyMask {
    /// Topology names.
    #[serde(default)]
    pub topologies: Vec<NameRef>,
}

/// Overrides of one topology.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopologyOverrides {
    /// Name of the topology.
    pub topology_name: String,
    /// Changes applied in order to the template for this topology.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_overrides: Vec<ClusterOverride>,
}

/// Status of a federated resource in the topology view.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopologyStatus {
    /// Generation of the spec the controller last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Propagation` and `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<FederatedCondition>,
    /// Per placed topology.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topologies: Vec<MemberStatus>,
    /// How far the current generation has rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

impl TopologySpec {
    /// The topology type, `cluster` when unset.
    pub fn topology_type(&self) -> TopologyType {
        self.topology_type.unwrap_or_default()
    }
}
