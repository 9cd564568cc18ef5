//! The simulated member cluster behind `cellfed member`: what makes the cellfed apiserver behave
//! like a member cluster's control plane — kube's defaulting of built-in kinds, Service
//! ClusterIP/NodePort allocation, and a workload status simulator (no containers run: statuses
//! are written as if they did).
//!
//! It plugs into the apiserver from outside: [`Member`] is the apiserver's `WriteHook` (defaulting
//! and allocation on every write) and [`run_until`] runs the simulated workload controllers next
//! to a server. The production apiserver carries none of this. Everything but `runtime` is pure
//! functions over `serde_json::Value`: no I/O, no async, no clock (the caller passes `now`).
//! See docs/member.md.

mod allocate;
mod defaults;
mod field_error;
mod runtime;
mod service_spec;
mod simulate;

pub use allocate::{Allocator, DEFAULT_NODE_PORTS, DEFAULT_SERVICE_CIDR, Error as AllocatorError};
pub use defaults::{apply_defaults, image_pull_policy};
pub use field_error::{FieldError, FieldErrorReason, invalid_message, invalid_status};
pub use runtime::{Member, run_simulator, run_until};
pub use simulate::{
    DEPLOYMENT_REVISION, SimConfig, SimWrites, next_status, simulate, template_hash,
};

#[cfg(test)]
mod allocate_tests;
#[cfg(test)]
mod defaults_tests;
#[cfg(test)]
mod simulate_tests;
#[cfg(test)]
mod typed_tests;
