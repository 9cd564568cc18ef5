//! The target types cellfed federates out of the box (their CRDs are shipped in `crds/`).

use crate::kubefed::{Scope, TargetType};

/// `(group, version, kind, plural, scope)` of each default target type.
pub const DEFAULT_TARGETS: &[(&str, &str, &str, &str, Scope)] = &[
    ("apps", "v1", "Deployment", "deployments", Scope::Namespaced),
    ("", "v1", "Service", "services", Scope::Namespaced),
    ("", "v1", "ConfigMap", "configmaps", Scope::Namespaced),
    ("", "v1", "Secret", "secrets", Scope::Namespaced),
    ("", "v1", "Namespace", "namespaces", Scope::Cluster),
    (
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        Scope::Namespaced,
    ),
    ("batch", "v1", "Job", "jobs", Scope::Namespaced),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        Scope::Namespaced,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        Scope::Cluster,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        Scope::Cluster,
    ),
    (
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        Scope::Namespaced,
    ),
    ("apps", "v1", "DaemonSet", "daemonsets", Scope::Namespaced),
];

/// The default target types, in [`DEFAULT_TARGETS`] order.
pub fn default_targets() -> Vec<TargetType> {
    DEFAULT_TARGETS
        .iter()
        .map(|(g, v, k, p, s)| TargetType::new(g, v, k, p, *s))
        .collect()
}
