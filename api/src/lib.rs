//! The cellfed API: the types every other crate builds on. KubeFed's control-plane types
//! (`core.kubefed.io/v1beta1`), the generic federated resource of `types.kubefed.io` in its two
//! views (v1beta1 clusters, v1beta2 topologies) and their conversion, the `Cell`
//! (`cellfed.io/v1alpha1`), well-known names, feature gates, naming rules and CRD generation.
//!
//! This crate is pure data and functions: it has no client and does no I/O (no network, no files,
//! no clock). Keep it that way; callers bring the I/O.

pub mod cell;
pub mod crdgen;
pub mod features;
pub mod federated;
pub mod kubefed;
pub mod naming;
pub mod targets;
pub mod tenancy;
pub mod well_known;

pub use cell::{Cell, CellCondition, CellSpec, CellStatus};
pub use crdgen::{all_crds, crd_files, federated_crd};
pub use federated::convert::{convert, to_v1beta1, to_v1beta2};
pub use federated::{FederatedObject, FederatedResource, TopologyResource};
pub use kubefed::{
    FederatedTypeConfig, FederatedTypeConfigSpec, KubeFedCluster, KubeFedClusterSpec,
    KubeFedConfig, KubeFedConfigSpec, Scope, TargetType,
};
