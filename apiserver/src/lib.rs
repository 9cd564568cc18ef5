//! A Kubernetes-compatible API server over `cellfed-store`: discovery, OpenAPI, CRUD, watch,
//! CRDs, patch and apply, tables, authentication and RBAC (over `cellfed-auth`). It never
//! imports the controller or the webhook, and never keeps state outside the store but caches
//! that follow it (several replicas may serve one database).
//!
//! Layers, top to bottom (docs/architecture.md, "Inside the apiserver"): [`http`] (routing,
//! content negotiation, protobuf, tables, discovery, OpenAPI, watch) → [`auth`] → [`admission`]
//! → [`registry`] (kinds and their rules, reads and writes) → [`storage`] (what a stored value
//! is: codec, storage version, limits, encryption at rest) → `cellfed-store`. [`server`] wires
//! them to a socket and runs the background work; [`state`] is what they share.

pub mod admission;
pub mod auth;
pub mod error;
pub mod http;
pub mod registry;
pub mod server;
pub mod state;
pub mod storage;
pub mod tls;
pub mod webhook_client;

pub use http::router;
pub use server::{ServeError, Server, ServerConfig, serve};
pub use state::{AppState, Converter, HeldUntilStored, WriteHook};

/// Largest accepted request body (kube-apiserver's 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
