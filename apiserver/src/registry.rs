//! The served resources: built-in kinds (stored generically as JSON) and the resources of
//! established CRDs. Store keys are `/registry/<group>/<plural>/[<namespace>/]<name>` with the
//! core group spelled `core`.

use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::table::PrinterColumn;

/// The standard verbs of a fully served resource.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The verbs of a resource that only takes POSTs and stores nothing (access reviews).
pub const CREATE_ONLY: &[&str] = &["create"];

/// Where `/scale` finds replicas and the selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    /// JSON pointer, e.g. `/spec/replicas`.
    pub spec_replicas: String,
    pub status_replicas: String,
    /// Pointer to a selector; for built-ins a LabelSelector object, for CRs a string.
    pub label_selector: Option<String>,
}

/// How objects of a CRD are converted between versions.
#[derive(Debug, Clone, PartialEq)]
pub enum ConversionStrategy {
    /// Only `apiVersion` changes.
    None,
    /// The CRD's `spec.conversion.webhook.clientConfig` and review versions.
    Webhook { client_config: Value },
}

/// What a CRD-backed resource carries beyond a built-in one.
#[derive(Debug, Clone, PartialEq)]
pub struct CrdInfo {
    /// `<plural>.<group>`.
    pub crd_name: String,
    /// The version objects are stored in.
    pub storage_version: String,
    /// This version's `openAPIV3Schema`.
    pub schema: Option<Value>,
    pub printer_columns: Vec<PrinterColumn>,
    pub conversion: ConversionStrategy,
}

/// One served group/version/resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// "" for core.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    /// `status`, `scale`.
    pub subresources: Vec<String>,
    /// Scale subresource paths.
    pub scale: Option<ScalePaths>,
    /// `metadata.generation` is maintained (bumped on spec changes).
    pub generation: bool,
    /// PUT without `metadata.resourceVersion` is allowed.
    pub unconditional_update: bool,
    /// PUT on a missing object creates it.
    pub create_on_update: bool,
    /// Set for custom resources.
    pub crd: Option<CrdInfo>,
    /// The verbs served: [`VERBS`], or [`CREATE_ONLY`] for the reviews, which are answered
    /// without touching the store.
    pub verbs: &'static [&'static str],
}

impl Resource {
    /// Whether the resource is a review answered on POST and never stored.
    pub fn is_review(&self) -> bool {
        self.verbs == CREATE_ONLY
    }
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
    pub fn has_status(&self) -> bool {
        self.subresources.iter().any(|s| s == "status")
    }
    /// `/registry/<group>/<plural>/`.
    pub fn prefix(&self) -> String {
        let g = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        format!("/registry/{g}/{}/", self.plural)
    }
    /// The prefix of one namespace (or of all when None / cluster-scoped).
    pub fn collection_prefix(&self, namespace: Option<&str>) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{ns}/", self.prefix()),
            _ => self.prefix(),
        }
    }
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}{name}", self.collection_prefix(namespace))
    }
    /// `group/plural` identity across versions.
    pub fn same_resource(&self, other: &Resource) -> bool {
        self.group == other.group && self.plural == other.plural
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    short: &'static [&'static str],
    namespaced: bool,
    all: bool,
    status: bool,
    scale: bool,
    generation: bool,
    verbs: &'static [&'static str],
}

const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    short: &'static [&'static str],
    namespaced: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        short,
        namespaced,
        all: false,
        status: false,
        scale: false,
        generation: false,
        verbs: VERBS,
    }
}

/// A review of `group`/v1: POST only, answered from the request, never stored.
const fn review(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> Builtin {
    let mut x = b(group, "v1", kind, plural, &[], namespaced);
    x.verbs = CREATE_ONLY;
    x
}

const fn workload(mut x: Builtin, scale: bool) -> Builtin {
    x.all = true;
    x.status = true;
    x.scale = scale;
    x.generation = true;
    x
}

const BUILTINS: &[Builtin] = &[
    {
        let mut x = b("", "v1", "Namespace", "namespaces", &["ns"], false);
        x.status = true;
        x
    },
    b("", "v1", "Secret", "secrets", &[], true),
    b("", "v1", "ConfigMap", "configmaps", &["cm"], true),
    {
        let mut x = b("", "v1", "Service", "services", &["svc"], true);
        x.all = true;
        x.status = true;
        x
    },
    b("", "v1", "ServiceAccount", "serviceaccounts", &["sa"], true),
    b("", "v1", "Event", "events", &["ev"], true),
    {
        let mut x = b("", "v1", "Pod", "pods", &["po"], true);
        x.all = true;
        x.status = true;
        x
    },
    workload(
        b("apps", "v1", "Deployment", "deployments", &["deploy"], true),
        true,
    ),
    workload(
        b("apps", "v1", "StatefulSet", "statefulsets", &["sts"], true),
        true,
    ),
    workload(
        b("apps", "v1", "DaemonSet", "daemonsets", &["ds"], true),
        false,
    ),
    workload(
        b("apps", "v1", "ReplicaSet", "replicasets", &["rs"], true),
        true,
    ),
    workload(b("batch", "v1", "Job", "jobs", &[], true), false),
    {
        let mut x = b(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            &["ing"],
            true,
        );
        x.status = true;
        x.generation = true;
        x
    },
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        &[],
        true,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        &[],
        true,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        &[],
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        &[],
        false,
    ),
    b("coordination.k8s.io", "v1", "Lease", "leases", &[], true),
    review(
        "authorization.k8s.io",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        false,
    ),
    review(
        "authorization.k8s.io",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        false,
    ),
    review(
        "authorization.k8s.io",
        "SubjectAccessReview",
        "subjectaccessreviews",
        false,
    ),
    review(
        "authorization.k8s.io",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        true,
    ),
    review(
        "authentication.k8s.io",
        "SelfSubjectReview",
        "selfsubjectreviews",
        false,
    ),
    review(
        "authentication.k8s.io",
        "TokenReview",
        "tokenreviews",
        false,
    ),
    {
        let mut x = b(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            &[],
            false,
        );
        x.generation = true;
        x
    },
    {
        let mut x = b(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            &[],
            false,
        );
        x.generation = true;
        x
    },
    {
        let mut x = b(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            &["crd", "crds"],
            false,
        );
        x.status = true;
        x.generation = true;
        x
    },
];

/// The built-in resources.
pub fn builtins() -> Vec<Resource> {
    BUILTINS
        .iter()
        .map(|x| {
            let mut subresources = Vec::new();
            if x.status {
                subresources.push("status".to_string());
            }
            if x.scale {
                subresources.push("scale".to_string());
            }
            Resource {
                group: x.group.into(),
                version: x.version.into(),
                kind: x.kind.into(),
                plural: x.plural.into(),
                singular: x.kind.to_lowercase(),
                short_names: x.short.iter().map(|s| s.to_string()).collect(),
                categories: if x.all { vec!["all".into()] } else { vec![] },
                namespaced: x.namespaced,
                subresources,
                scale: x.scale.then(|| ScalePaths {
                    spec_replicas: "/spec/replicas".into(),
                    status_replicas: "/status/replicas".into(),
                    label_selector: Some("/spec/selector".into()),
                }),
                generation: x.generation,
                unconditional_update: x.kind != "CustomResourceDefinition",
                create_on_update: matches!(x.kind, "Lease" | "Event"),
                crd: None,
                verbs: x.verbs,
            }
        })
        .collect()
}

/// The live set of served resources; cheap to clone, shared by handlers and background tasks.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<RwLock<Vec<Resource>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// Built-ins only.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(RwLock::new(builtins())),
        }
    }
    /// All served resources.
    pub fn all(&self) -> Vec<Resource> {
        match self.inner.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
    /// Replaces the CRD-backed resources.
    pub fn set_custom(&self, custom: Vec<Resource>) {
        let mut all = builtins();
        all.extend(custom);
        match self.inner.write() {
            Ok(mut g) => *g = all,
            Err(p) => *p.into_inner() = all,
        }
    }
    /// The resource served at `group/version/plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Resource> {
        self.all()
            .into_iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }
    /// Whether `group/version` is served at all.
    pub fn serves_group_version(&self, group: &str, version: &str) -> bool {
        self.all()
            .iter()
            .any(|r| r.group == group && r.version == version)
    }
    /// Served groups in order of first appearance, each with its versions (preferred first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.all() {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, vs)) => {
                    if !vs.contains(&r.version) {
                        vs.push(r.version.clone());
                    }
                }
                None => out.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        for (_, vs) in &mut out {
            vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        out
    }
}

/// Kubernetes version ordering: GA > beta > alpha > other, higher numbers first.
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (class, num) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    match num.parse::<u32>() {
        Ok(n) => (class, major, n),
        Err(_) => (0, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout() {
        let reg = Registry::new();
        let cm = reg.find("", "v1", "configmaps").unwrap();
        assert_eq!(cm.key(Some("ns1"), "a"), "/registry/core/configmaps/ns1/a");
        let ns = reg.find("", "v1", "namespaces").unwrap();
        assert_eq!(ns.key(None, "ns1"), "/registry/core/namespaces/ns1");
        let d = reg.find("apps", "v1", "deployments").unwrap();
        assert_eq!(d.short_names, vec!["deploy"]);
        assert!(d.categories.contains(&"all".to_string()));
        assert!(d.subresources.contains(&"scale".to_string()));
    }

    #[test]
    fn versions_sort_like_kube() {
        let mut v = vec!["v1alpha1", "v1beta2", "v2", "v1", "v1beta1", "foo"];
        v.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(v, vec!["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]);
    }
}
