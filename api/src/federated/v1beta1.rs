//! `types.kubefed.io/v1beta1`: KubeFed's cluster view of a federated resource, the storage version
//! and what the controller reads.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::v1beta2::TopologyType;
use super::{
    ClusterOverride, FederatedCondition, MemberStatus, NameRef, Rollout, preserved_object_schema,
};
use crate::well_known::TOPOLOGY_TYPE_ANNOTATION;

/// Spec of a federated resource in the cluster view.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FederatedSpec {
    /// The object to create in member clusters, without namespace (it takes the federated
    /// resource's) and without status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved_object_schema")]
    pub template: Option<Map<String, Value>>,
    /// Where to propagate: a list of clusters or, when the list is absent, a label selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Per-cluster changes to the template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<ClusterOverrides>,
    /// Keep the member's `spec.replicas` (e.g. set by an autoscaler) instead of the template's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_replicas: Option<bool>,
    /// cellfed (grey release): when set, only these clusters are written by the next change;
    /// clusters outside it keep their current objects and are reported as behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_mask: Option<PlacementMask>,
}

/// Placement by cluster names or by cluster labels.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// Clusters to place on. When present (even empty) the selector is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<Vec<NameRef>>,
    /// Label selector over KubeFedClusters, used when `clusters` is absent. An empty selector
    /// selects every cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<LabelSelector>,
}

/// The clusters a change may be written to (grey release).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct PlacementMask {
    /// Cluster names.
    #[serde(default)]
    pub clusters: Vec<NameRef>,
}

/// Overrides of one cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterOverrides {
    /// Name of the cluster.
    pub cluster_name: String,
    /// Changes applied in order to the template for this cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_overrides: Vec<ClusterOverride>,
}

/// Status of a federated resource in the cluster view.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FederatedStatus {
    /// Generation of the spec the controller last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Propagation` and `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<FederatedCondition>,
    /// Per placed cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<MemberStatus>,
    /// How far the current generation has rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

impl super::FederatedResource {
    /// The topology type kept in the annotation `cellfed.io/topology-type` (`cluster` when
    /// absent), or `None` when the annotation holds an unknown value.
    pub fn topology_type(&self) -> Option<TopologyType> {
        match self
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(TOPOLOGY_TYPE_ANNOTATION))
        {
            None => Some(TopologyType::Cluster),
            Some(value) => TopologyType::parse(value),
        }
    }
}

impl FederatedSpec {
    /// Names of the placement's clusters, if placement lists them.
    pub fn placement_clusters(&self) -> Option<Vec<&str>> {
        let clusters = self.placement.as_ref()?.clusters.as_ref()?;
        Some(clusters.iter().map(|c| c.name.as_str()).collect())
    }

    /// Names of the mask's clusters, if there is a mask.
    pub fn mask_clusters(&self) -> Option<Vec<&str>> {
        let mask = self.placement_mask.as_ref()?;
        Some(mask.clusters.iter().map(|c| c.name.as_str()).collect())
    }

    /// The overrides of `cluster`.
    pub fn overrides_for(&self, cluster: &str) -> &[ClusterOverride] {
        self.overrides
            .iter()
            .find(|o| o.cluster_name == cluster)
            .map_or(&[], |o| o.cluster_overrides.as_slice())
    }
}
