//! Who may do what in cellfed's apiserver, and how its secrets rest: the building blocks of
//! kube-apiserver's security chain, as pure, tested functions the apiserver calls.
//!
//! - Authentication: [`token_file`] (`--token-auth-file`), [`x509`] (`--client-ca-file`),
//!   [`service_account`] (TokenRequest tokens: `--service-account-*` flags), all yielding a
//!   [`user::UserInfo`].
//! - Authorization: [`rbac`], Kubernetes' RBAC evaluated over a snapshot of Roles, ClusterRoles
//!   and their bindings, with `system:masters` as the only bypass, escalation prevention, the
//!   bootstrap roles and kube's 403 wording.
//! - Encryption at rest: [`encryption`] (`--encryption-provider-config`, kube's
//!   EncryptionConfiguration and storage format).
//!
//! This crate never does network I/O, never reads the clock (callers pass `now`), never logs,
//! and never holds more than the caller gives it; it reads files only in the `from_path`
//! helpers. It must never print or format a token, key or secret (its `Debug` impls show names
//! only). Nothing here depends on the apiserver or the store.

pub mod encryption;
pub mod rbac;
pub mod service_account;
pub mod token_file;
pub mod user;
pub mod x509;

pub use user::UserInfo;
