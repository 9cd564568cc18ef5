//! Well-known names: labels, annotations, finalizers, namespaces, condition types and KubeFed's
//! propagation status reasons. KubeFed's names are kept verbatim so its tooling and habits carry over.

use std::fmt;
use std::str::FromStr;

/// Group of KubeFed's control-plane types (`KubeFedCluster`, `FederatedTypeConfig`, `KubeFedConfig`).
pub const CORE_GROUP: &str = "core.kubefed.io";
/// Version of KubeFed's control-plane types.
pub const CORE_VERSION: &str = "v1beta1";
/// Group of the federated kinds (`FederatedDeployment`, …).
pub const TYPES_GROUP: &str = "types.kubefed.io";
/// KubeFed's cluster view of a federated kind: the storage version, what the controller reads.
pub const TYPES_V1BETA1: &str = "v1beta1";
/// cellfed's topology view of a federated kind.
pub const TYPES_V1BETA2: &str = "v1beta2";
/// Group of cellfed's own types (`Cell`).
pub const CELLFED_GROUP: &str = "cellfed.io";
/// Version of cellfed's own types.
pub const CELLFED_VERSION: &str = "v1alpha1";

/// Default namespace of the federation control plane.
pub const DEFAULT_SYSTEM_NAMESPACE: &str = "kube-federation-system";
/// Name of the `KubeFedConfig` the controller reads.
pub const KUBEFED_CONFIG_NAME: &str = "kubefed";
/// Service of the conversion/admission webhook.
pub const WEBHOOK_SERVICE_NAME: &str = "cellfed-webhook";
/// Path of the conversion endpoint of the webhook.
pub const WEBHOOK_CONVERT_PATH: &str = "/convert";
/// Category every federated CRD belongs to (`kubectl get federated`).
pub const FEDERATED_CATEGORY: &str = "federated";

/// Label KubeFed puts on every member object it manages (`"true"`); `"false"` opts an object out.
pub const MANAGED_LABEL: &str = "kubefed.io/managed";
/// Value of [`MANAGED_LABEL`] on managed member objects.
pub const MANAGED_LABEL_VALUE: &str = "true";
/// Value of [`MANAGED_LABEL`] that tells the sync controller to leave a member object alone.
pub const UNMANAGED_LABEL_VALUE: &str = "false";
/// Annotation on a federated resource: `"true"` leaves member objects in place when it is deleted.
pub const ORPHAN_ANNOTATION: &str = "kubefed.io/orphan";
/// Value of [`ORPHAN_ANNOTATION`] that enables orphaning.
pub const ORPHAN_ANNOTATION_VALUE: &str = "true";
/// Annotation on a federated resource holding JSON `DeleteOptions` used for member deletions.
pub const DELETE_OPTION_ANNOTATION: &str = "kubefed.io/deleteoption";
/// Annotation cellfed sets on a member object it adopted (it existed before propagation).
pub const ADOPTED_ANNOTATION: &str = "kubefed.io/adopted";
/// Finalizer the sync controller keeps on federated resources until members are cleaned up.
pub const SYNC_FINALIZER: &str = "kubefed.io/sync-controller";
/// Finalizer KubeFed's type-config controller keeps on `FederatedTypeConfig`s.
pub const FTC_FINALIZER: &str = "core.kubefed.io/federated-type-config";

/// Label on a derived `KubeFedCluster`: the name of the `Cell` it stands for.
pub const CELL_LABEL: &str = "cellfed.io/cell";
/// Label of tenancy (on namespaces, cluster-scoped federated resources and `KubeFedCluster`s).
pub const TENANT_LABEL: &str = "cellfed.io/tenant";
/// Label of the workspace within a tenant (same places as [`TENANT_LABEL`]).
pub const WORKSPACE_LABEL: &str = "cellfed.io/workspace";
/// Annotation of a stored (v1beta1) federated resource keeping its v1beta2 `spec.topologyType`.
pub const TOPOLOGY_TYPE_ANNOTATION: &str = "cellfed.io/topology-type";
/// Annotation on a member object listing the annotation keys the controller set from the template.
pub const PROPAGATED_ANNOTATIONS_ANNOTATION: &str = "cellfed.io/propagated-annotations";
/// Annotation on every member object the controller writes: the federated resource that owns it,
/// `<group>/<Kind>/<namespace>/<name>` (namespace empty for cluster-scoped kinds), e.g.
/// `types.kubefed.io/FederatedDeployment/shop/web`. Version-free, so a change of the served
/// version never changes the owner. The controller never writes or deletes a member object whose
/// owner is another federated resource.
pub const FEDERATED_RESOURCE_ANNOTATION: &str = "cellfed.io/federated-resource";
/// Annotation next to [`FEDERATED_RESOURCE_ANNOTATION`]: the uid of the federated resource that
/// last wrote the member object (informational: ownership is by name, as KubeFed's).
pub const FEDERATED_RESOURCE_UID_ANNOTATION: &str = "cellfed.io/federated-resource-uid";

/// Condition type on federated resources: did propagation to all placed clusters succeed.
pub const CONDITION_PROPAGATION: &str = "Propagation";
/// Condition type on federated resources and `Cell`s: the object is ready everywhere it should be.
pub const CONDITION_READY: &str = "Ready";

/// Per-cluster propagation status of a federated resource (`status.clusters[].status`), KubeFed's
/// `PropagationStatus`. An empty string (no status) means the cluster is in sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PropagationStatus {
    /// The member object is being deleted and the controller waits for it to go.
    WaitingForRemoval,
    /// The cluster is not ready; nothing was written.
    ClusterNotReady,
    /// Reading the member object from the informer cache failed.
    CachedRetrievalFailed,
    /// Computing the desired member object failed.
    ComputeResourceFailed,
    /// The overrides of this cluster could not be applied to the template.
    ApplyOverridesFailed,
    /// Creating the member object failed.
    CreationFailed,
    /// Updating the member object failed.
    UpdateFailed,
    /// Deleting the member object failed.
    DeletionFailed,
    /// Removing the managed label from a member object failed.
    LabelRemovalFailed,
    /// Reading the member object failed.
    RetrievalFailed,
    /// The member object exists, was not created by federation, and adoption is disabled.
    AlreadyExists,
    /// Retaining member-owned fields failed.
    FieldRetentionFailed,
    /// Reading the propagated version failed.
    VersionRetrievalFailed,
    /// No client for the member cluster could be built.
    ClientRetrievalFailed,
    /// The member object carries `kubefed.io/managed: "false"` and is left alone.
    ManagedLabelFalse,
    /// Creating the member object timed out.
    CreationTimedOut,
    /// Updating the member object timed out.
    UpdateTimedOut,
    /// Deleting the member object timed out.
    DeletionTimedOut,
    /// Removing the managed label timed out.
    LabelRemovalTimedOut,
    /// cellfed: the cluster is outside the placement mask and still runs an older generation.
    MaskedOut,
    /// cellfed: the cluster belongs to another tenant or workspace; nothing was written.
    TenantMismatch,
    /// cellfed (KubeFed's aggregate reason, per cluster): the resource places this cluster but
    /// the FederatedNamespace of its namespace does not; nothing is written there.
    NamespaceNotFederated,
    /// cellfed: the placement names a cluster that is not joined (no KubeFedCluster of this
    /// name the resource's tenant may use); it is propagated once the cluster joins.
    ClusterNotFound,
    /// cellfed: the member object belongs to another federated resource (its
    /// `cellfed.io/federated-resource` annotation names it); nothing is written or deleted there.
    ManagedByAnotherResource,
}

const PROPAGATION_STATUSES: &[(PropagationStatus, &str)] = &[
    (PropagationStatus::WaitingForRemoval, "WaitingForRemoval"),
    (PropagationStatus::ClusterNotReady, "ClusterNotReady"),
    (
        PropagationStatus::CachedRetrievalFailed,
        "CachedRetrievalFailed",
    ),
    (
        PropagationStatus::ComputeResourceFailed,
        "ComputeResourceFailed",
    ),
    (
        PropagationStatus::ApplyOverridesFailed,
        "ApplyOverridesFailed",
    ),
    (PropagationStatus::CreationFailed, "CreationFailed"),
    (PropagationStatus::UpdateFailed, "UpdateFailed"),
    (PropagationStatus::DeletionFailed, "DeletionFailed"),
    (PropagationStatus::LabelRemovalFailed, "LabelRemovalFailed"),
    (PropagationStatus::RetrievalFailed, "RetrievalFailed"),
    (PropagationStatus::AlreadyExists, "AlreadyExists"),
    (
        PropagationStatus::FieldRetentionFailed,
        "FieldRetentionFailed",
    ),
    (
        PropagationStatus::VersionRetrievalFailed,
        "VersionRetrievalFailed",
    ),
    (
        PropagationStatus::ClientRetrievalFailed,
        "ClientRetrievalFailed",
    ),
    (PropagationStatus::ManagedLabelFalse, "ManagedLabelFalse"),
    (PropagationStatus::CreationTimedOut, "CreationTimedOut"),
    (PropagationStatus::UpdateTimedOut, "UpdateTimedOut"),
    (PropagationStatus::DeletionTimedOut, "DeletionTimedOut"),
    (
        PropagationStatus::LabelRemovalTimedOut,
        "LabelRemovalTimedOut",
    ),
    (PropagationStatus::MaskedOut, "MaskedOut"),
    (PropagationStatus::TenantMismatch, "TenantMismatch"),
    (
        PropagationStatus::NamespaceNotFederated,
        "NamespaceNotFederated",
    ),
    (PropagationStatus::ClusterNotFound, "ClusterNotFound"),
    (
        PropagationStatus::ManagedByAnotherResource,
        "ManagedByAnotherResource",
    ),
];

impl PropagationStatus {
    /// KubeFed's string for this status.
    pub fn as_str(self) -> &'static str {
        PROPAGATION_STATUSES
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("", |(_, name)| name)
    }

    /// Whether this status reports a failure (as opposed to waiting or a deliberate skip).
    pub fn is_error(self) -> bool {
        !matches!(
            self,
            Self::WaitingForRemoval
                | Self::ManagedLabelFalse
                | Self::MaskedOut
                | Self::NamespaceNotFederated
                | Self::ClusterNotFound
        )
    }
}

impl fmt::Display for PropagationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string is not one of the known propagation status reasons.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown propagation status {0:?}")]
pub struct UnknownPropagationStatus(pub String);

impl FromStr for PropagationStatus {
    type Err = UnknownPropagationStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PROPAGATION_STATUSES
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(status, _)| *status)
            .ok_or_else(|| UnknownPropagationStatus(s.to_owned()))
    }
}

impl serde::Serialize for PropagationStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for PropagationStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Reason of the aggregate `Propagation` condition of a federated resource (KubeFed's
/// `AggregateReason`; success has no reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggregateReason {
    /// Listing the member clusters failed.
    ClusterRetrievalFailed,
    /// Computing the placement failed (e.g. a bad selector).
    ComputePlacementFailed,
    /// At least one cluster has a non-empty propagation status: see `status.clusters`.
    CheckClusters,
    /// The resource's namespace is not federated.
    NamespaceNotFederated,
}

impl AggregateReason {
    /// KubeFed's string for this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterRetrievalFailed => "ClusterRetrievalFailed",
            Self::ComputePlacementFailed => "ComputePlacementFailed",
            Self::CheckClusters => "CheckClusters",
            Self::NamespaceNotFederated => "NamespaceNotFederated",
        }
    }
}

impl fmt::Display for AggregateReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_status_round_trips_through_kubefed_strings() {
        for (status, name) in PROPAGATION_STATUSES {
            assert_eq!(status.as_str(), *name);
            assert_eq!(name.parse::<PropagationStatus>(), Ok(*status));
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, serde_json::json!(name));
            let back: PropagationStatus = serde_json::from_value(json).unwrap();
            assert_eq!(back, *status);
        }
        assert_eq!(
            PropagationStatus::AlreadyExists.to_string(),
            "AlreadyExists"
        );
    }

    #[test]
    fn unknown_propagation_status_is_refused() {
        let err = "Bogus".parse::<PropagationStatus>().unwrap_err();
        assert!(err.to_string().contains("Bogus"));
    }
}
