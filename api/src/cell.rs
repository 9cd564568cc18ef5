//! `Cell` (`cellfed.io/v1alpha1`): a deployment unit of a tenant, bound to a member cluster.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kubefed::ConditionStatus;
use crate::naming;

/// Desired state of a Cell: the member cluster it runs on and where its objects live there.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "cellfed.io",
    version = "v1alpha1",
    kind = "Cell",
    doc = "A Cell is a deployment unit in a tenant's namespace, placed on one member cluster. For each Cell the controller keeps a derived KubeFedCluster named <cell>.<namespace> with the access configuration of spec.clusterName; v1beta2 federated resources with topologyType cell place onto cells by name.",
    plural = "cells",
    namespaced,
    status = "CellStatus",
    printcolumn = r#"{"name":"CLUSTER","type":"string","jsonPath":".spec.clusterName"}"#,
    printcolumn = r#"{"name":"MEMBER-NAMESPACE","type":"string","jsonPath":".spec.memberNamespace"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CellSpec {
    /// Name of the member's KubeFedCluster (in the federation system namespace) this cell runs on.
    pub cluster_name: String,
    /// Namespace in the member cluster where this cell's objects live; defaults to the namespace of
    /// the federated resource. Required when two cells share one cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_namespace: Option<String>,
}

/// Observed state of a Cell.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CellStatus {
    /// Conditions of the cell (`Ready`: the derived cluster exists and is ready).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<CellCondition>,
    /// Name of the derived KubeFedCluster, `<cell>.<namespace>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived_cluster_name: Option<String>,
    /// Generation of the spec the controller last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A condition of a Cell.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CellCondition {
    /// Type of the condition, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: ConditionStatus,
    /// Last time the condition changed status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// One-word reason of the last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Cell {
    /// Name of the derived KubeFedCluster of this cell, `<cell>.<namespace>`. Fails when the cell
    /// has no namespace or the name would be invalid.
    pub fn derived_cluster_name(&self) -> Result<String, naming::Error> {
        let namespace = self.namespace().unwrap_or_default();
        naming::cell_cluster_name(&self.name_any(), &namespace)
    }

    /// The namespace in the member cluster for objects of this cell: `spec.memberNamespace`, or
    /// `default_namespace` (the federated resource's own namespace) when unset.
    pub fn member_namespace<'a>(&'a self, default_namespace: &'a str) -> &'a str {
        self.spec
            .member_namespace
            .as_deref()
            .unwrap_or(default_namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_cluster_name_follows_naming_rule() {
        let mut cell = Cell::new(
            "rz00a",
            CellSpec {
                cluster_name: "member1".into(),
                member_namespace: None,
            },
        );
        assert!(cell.derived_cluster_name().is_err(), "no namespace");
        cell.metadata.namespace = Some("tenant-a".into());
        assert_eq!(cell.derived_cluster_name().unwrap(), "rz00a.tenant-a");
        assert_eq!(cell.member_namespace("tenant-a"), "tenant-a");
    }

    #[test]
    fn the_ready_column_reads_the_ready_condition_status() {
        use kube::CustomResourceExt;
        let crd = serde_json::to_value(Cell::crd()).unwrap();
        let columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap();
        let ready = columns.iter().find(|c| c["name"] == "READY").unwrap();
        assert_eq!(
            ready["jsonPath"],
            format!(
                ".status.conditions[?(@.type=='{}')].status",
                crate::well_known::CONDITION_READY
            )
        );
        // the status the controller writes has that shape
        let status = CellStatus {
            conditions: vec![CellCondition {
                type_: crate::well_known::CONDITION_READY.into(),
                status: ConditionStatus::True,
                last_transition_time: None,
                reason: Some("ClusterReady".into()),
                message: None,
            }],
            ..CellStatus::default()
        };
        let status = serde_json::to_value(status).unwrap();
        assert_eq!(status["conditions"][0]["type"], "Ready");
        assert_eq!(status["conditions"][0]["status"], "True");
    }
}
