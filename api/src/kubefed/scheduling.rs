//! `ReplicaSchedulingPreference` (`scheduling.kubefed.io/v1alpha1`): how many replicas of a
//! FederatedDeployment or FederatedReplicaSet of the same namespace and name run in which
//! cluster. Same fields and JSON shape as KubeFed's, so KubeFed manifests apply unchanged.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The key of [`ReplicaSchedulingPreferenceSpec::clusters`] that applies to every cluster
/// without an entry of its own.
pub const ANY_CLUSTER: &str = "*";

/// The federated kinds a preference can target.
pub const SCHEDULING_TARGET_KINDS: [&str; 2] = ["FederatedDeployment", "FederatedReplicaSet"];

/// Distribution of the replicas of the federated workload named like this object, in its
/// namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "scheduling.kubefed.io",
    version = "v1alpha1",
    kind = "ReplicaSchedulingPreference",
    doc = "ReplicaSchedulingPreference distributes spec.totalReplicas of the FederatedDeployment or FederatedReplicaSet with the same namespace and name over the ready member clusters, by weight within per-cluster minimum and maximum; the controller writes the target's spec.placement.clusters and a /spec/replicas override per cluster.",
    plural = "replicaschedulingpreferences",
    shortname = "rsp",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSchedulingPreferenceSpec {
    /// Kind of the target: `FederatedDeployment` or `FederatedReplicaSet`.
    pub target_kind: String,
    /// Total number of replicas across the clusters; replaces the template's replicas.
    pub total_replicas: i32,
    /// Move running replicas to match the preferences; when false, replicas already running in
    /// a cluster stay there as long as the totals allow.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rebalance: bool,
    /// Place only on the clusters the target's `spec.placement.clusterSelector` selects too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub intersect_with_cluster_selector: bool,
    /// Preferences by cluster name; `*` applies to clusters without an entry. A cluster
    /// matched by neither gets no replicas; no entry at all means `{"*": {weight: 1}}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clusters: BTreeMap<String, ClusterPreferences>,
}

/// Replicas preferences of one cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPreferences {
    /// Replicas this cluster gets before any is distributed by weight (default 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_replicas: i64,
    /// Most replicas this cluster gets (unbounded when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i64>,
    /// Share of the replicas left after the minimums (default 0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weight: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn kubefed_manifest_deserializes_and_crd_names_match() {
        let rsp: ReplicaSchedulingPreference = serde_yaml::from_str(
            r#"
apiVersion: scheduling.kubefed.io/v1alpha1
kind: ReplicaSchedulingPreference
metadata: {name: web, namespace: demo}
spec:
  targetKind: FederatedDeployment
  totalReplicas: 9
  rebalance: true
  clusters:
    "*": {weight: 1}
    cluster1: {minReplicas: 2, maxReplicas: 5, weight: 2}
"#,
        )
        .unwrap();
        assert_eq!(rsp.spec.total_replicas, 9);
        assert!(rsp.spec.rebalance && !rsp.spec.intersect_with_cluster_selector);
        assert_eq!(rsp.spec.clusters["cluster1"].max_replicas, Some(5));
        assert_eq!(rsp.spec.clusters[ANY_CLUSTER].weight, 1);
        let crd = ReplicaSchedulingPreference::crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("replicaschedulingpreferences.scheduling.kubefed.io")
        );
        assert_eq!(crd.spec.names.short_names, Some(vec!["rsp".to_string()]));
        assert_eq!(crd.spec.scope, "Namespaced");
    }
}
