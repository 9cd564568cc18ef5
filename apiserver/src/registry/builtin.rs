//! The built-in resources. Group, version, kind, plural and scope come from k8s-openapi's
//! `Resource` impls of the Kubernetes 1.33 types listed once in [`with_builtin_types`]; the few
//! facts k8s-openapi does not carry (short names, the `all` category, status/scale
//! subresources, generation tracking, POST-only reviews) are the [`FACTS`] table, as
//! kube-apiserver 1.33 serves them (`kubectl api-resources`).
//!
//! Policy kinds (ResourceQuota, LimitRange, NetworkPolicy, PriorityClass,
//! ValidatingAdmissionPolicy…) are stored and served, so they can be federated to member
//! clusters, but this server does not enforce them. Left out: ComponentStatus, Binding and
//! APIService, which need a kubelet, a scheduler or API aggregation, and alpha/beta versions,
//! which a 1.33 cluster does not serve by default.

use std::sync::{Arc, LazyLock};

use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};

use super::{CREATE_ONLY, Resource, ScalePaths, VERBS};

/// Calls the macro `$m` with the path of every built-in type, in discovery order: the served
/// resources, then (after `;`) the kinds only the OpenAPI documents need.
macro_rules! with_builtin_types {
    ($m:ident) => {
        $m! {
            ::k8s_openapi::api::core::v1::Namespace,
            ::k8s_openapi::api::core::v1::Secret,
            ::k8s_openapi::api::core::v1::ConfigMap,
            ::k8s_openapi::api::core::v1::Service,
            ::k8s_openapi::api::core::v1::ServiceAccount,
            ::k8s_openapi::api::core::v1::Event,
            ::k8s_openapi::api::core::v1::Pod,
            ::k8s_openapi::api::core::v1::Endpoints,
            ::k8s_openapi::api::core::v1::LimitRange,
            ::k8s_openapi::api::core::v1::Node,
            ::k8s_openapi::api::core::v1::PersistentVolume,
            ::k8s_openapi::api::core::v1::PersistentVolumeClaim,
            ::k8s_openapi::api::core::v1::PodTemplate,
            ::k8s_openapi::api::core::v1::ReplicationController,
            ::k8s_openapi::api::core::v1::ResourceQuota,
            ::k8s_openapi::api::apps::v1::Deployment,
            ::k8s_openapi::api::apps::v1::StatefulSet,
            ::k8s_openapi::api::apps::v1::DaemonSet,
            ::k8s_openapi::api::apps::v1::ReplicaSet,
            ::k8s_openapi::api::apps::v1::ControllerRevision,
            ::k8s_openapi::api::batch::v1::Job,
            ::k8s_openapi::api::batch::v1::CronJob,
            ::k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler,
            ::k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler,
            ::k8s_openapi::api::policy::v1::PodDisruptionBudget,
            ::k8s_openapi::api::networking::v1::Ingress,
            ::k8s_openapi::api::networking::v1::IngressClass,
            ::k8s_openapi::api::networking::v1::NetworkPolicy,
            ::k8s_openapi::api::networking::v1::IPAddress,
            ::k8s_openapi::api::networking::v1::ServiceCIDR,
            ::k8s_openapi::api::rbac::v1::Role,
            ::k8s_openapi::api::rbac::v1::RoleBinding,
            ::k8s_openapi::api::rbac::v1::ClusterRole,
            ::k8s_openapi::api::rbac::v1::ClusterRoleBinding,
            ::k8s_openapi::api::coordination::v1::Lease,
            ::k8s_openapi::api::authorization::v1::SelfSubjectAccessReview,
            ::k8s_openapi::api::authorization::v1::SelfSubjectRulesReview,
            ::k8s_openapi::api::authorization::v1::SubjectAccessReview,
            ::k8s_openapi::api::authorization::v1::LocalSubjectAccessReview,
            ::k8s_openapi::api::authentication::v1::SelfSubjectReview,
            ::k8s_openapi::api::authentication::v1::TokenReview,
            ::k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration,
            ::k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration,
            ::k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy,
            ::k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
            ::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
            ::k8s_openapi::api::certificates::v1::CertificateSigningRequest,
            ::k8s_openapi::api::discovery::v1::EndpointSlice,
            ::k8s_openapi::api::events::v1::Event,
            ::k8s_openapi::api::flowcontrol::v1::FlowSchema,
            ::k8s_openapi::api::flowcontrol::v1::PriorityLevelConfiguration,
            ::k8s_openapi::api::node::v1::RuntimeClass,
            ::k8s_openapi::api::scheduling::v1::PriorityClass,
            ::k8s_openapi::api::storage::v1::StorageClass,
            ::k8s_openapi::api::storage::v1::CSIDriver,
            ::k8s_openapi::api::storage::v1::CSINode,
            ::k8s_openapi::api::storage::v1::CSIStorageCapacity,
            ::k8s_openapi::api::storage::v1::VolumeAttachment;
            ::k8s_openapi::api::autoscaling::v1::Scale,
            ::k8s_openapi::api::authentication::v1::TokenRequest,
        }
    };
}
pub(crate) use with_builtin_types;

/// Whether a k8s-openapi scope is namespaced.
pub trait Scope {
    const NAMESPACED: bool;
}
impl Scope for ClusterResourceScope {
    const NAMESPACED: bool = false;
}
impl Scope for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

/// One built-in kind as k8s-openapi defines it.
#[derive(Debug, Clone, Copy)]
struct Kind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
}

impl Kind {
    fn of<T>() -> Self
    where
        T: k8s_openapi::Resource,
        T::Scope: Scope,
    {
        Self {
            group: T::GROUP,
            version: T::VERSION,
            kind: T::KIND,
            plural: T::URL_PATH_SEGMENT,
            namespaced: <T::Scope as Scope>::NAMESPACED,
        }
    }
}

macro_rules! kinds {
    ($($t:ty),* ; $($_extra:ty),* $(,)?) => {
        fn kinds() -> Vec<Kind> {
            vec![$(Kind::of::<$t>()),*]
        }
    };
}
with_builtin_types!(kinds);

/// What kube-apiserver knows about a resource beyond its type (all versions of a resource share
/// one entry).
#[derive(Debug, Clone, Copy)]
struct Facts {
    group: &'static str,
    plural: &'static str,
    short: &'static [&'static str],
    /// In the `all` category (`kubectl get all`).
    all: bool,
    status: bool,
    scale: bool,
    /// `metadata.generation` is bumped on spec changes.
    generation: bool,
    /// POST only, answered from the request, never stored.
    review: bool,
}

const fn f(group: &'static str, plural: &'static str, short: &'static [&'static str]) -> Facts {
    Facts {
        group,
        plural,
        short,
        all: false,
        status: false,
        scale: false,
        generation: false,
        review: false,
    }
}

impl Facts {
    const fn all(mut self) -> Self {
        self.all = true;
        self
    }
    const fn status(mut self) -> Self {
        self.status = true;
        self
    }
    const fn scale(mut self) -> Self {
        self.scale = true;
        self
    }
    const fn generation(mut self) -> Self {
        self.generation = true;
        self
    }
    const fn review(mut self) -> Self {
        self.review = true;
        self
    }
    /// A workload controller: `all`, status, generation.
    const fn workload(self) -> Self {
        self.all().status().generation()
    }
}

const AUTHZ: &str = "authorization.k8s.io";
const AUTHN: &str = "authentication.k8s.io";
const NET: &str = "networking.k8s.io";
const STORAGE: &str = "storage.k8s.io";
const FLOW: &str = "flowcontrol.apiserver.k8s.io";
const ADMISSION: &str = "admissionregistration.k8s.io";

/// The facts of kube-apiserver 1.33 that differ from the defaults of [`f`].
const FACTS: &[Facts] = &[
    f("", "namespaces", &["ns"]).status(),
    f("", "configmaps", &["cm"]),
    f("", "services", &["svc"]).all().status(),
    f("", "serviceaccounts", &["sa"]),
    f("", "events", &["ev"]),
    f("", "pods", &["po"]).all().status(),
    f("", "endpoints", &["ep"]),
    f("", "limitranges", &["limits"]),
    f("", "nodes", &["no"]).status(),
    f("", "persistentvolumes", &["pv"]).status(),
    f("", "persistentvolumeclaims", &["pvc"]).status(),
    f("", "replicationcontrollers", &["rc"]).workload().scale(),
    f("", "resourcequotas", &["quota"]).status(),
    f("apps", "deployments", &["deploy"]).workload().scale(),
    f("apps", "statefulsets", &["sts"]).workload().scale(),
    f("apps", "daemonsets", &["ds"]).workload(),
    f("apps", "replicasets", &["rs"]).workload().scale(),
    f("batch", "jobs", &[]).workload(),
    f("batch", "cronjobs", &["cj"]).workload(),
    f("autoscaling", "horizontalpodautoscalers", &["hpa"])
        .all()
        .status(),
    f("policy", "poddisruptionbudgets", &["pdb"])
        .status()
        .generation(),
    f(NET, "ingresses", &["ing"]).status().generation(),
    f(NET, "ingressclasses", &[]).generation(),
    f(NET, "networkpolicies", &["netpol"]).generation(),
    f(NET, "ipaddresses", &["ip"]),
    f(NET, "servicecidrs", &[]).status(),
    f(AUTHZ, "selfsubjectaccessreviews", &[]).review(),
    f(AUTHZ, "selfsubjectrulesreviews", &[]).review(),
    f(AUTHZ, "subjectaccessreviews", &[]).review(),
    f(AUTHZ, "localsubjectaccessreviews", &[]).review(),
    f(AUTHN, "selfsubjectreviews", &[]).review(),
    f(AUTHN, "tokenreviews", &[]).review(),
    f(ADMISSION, "validatingwebhookconfigurations", &[]).generation(),
    f(ADMISSION, "mutatingwebhookconfigurations", &[]).generation(),
    f(ADMISSION, "validatingadmissionpolicies", &[])
        .status()
        .generation(),
    f(ADMISSION, "validatingadmissionpolicybindings", &[]).generation(),
    f(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        &["crd", "crds"],
    )
    .status()
    .generation(),
    f(
        "certificates.k8s.io",
        "certificatesigningrequests",
        &["csr"],
    )
    .status(),
    f(FLOW, "flowschemas", &[]).status().generation(),
    f(FLOW, "prioritylevelconfigurations", &[])
        .status()
        .generation(),
    f("scheduling.k8s.io", "priorityclasses", &["pc"]),
    f(STORAGE, "storageclasses", &["sc"]),
    f(STORAGE, "volumeattachments", &[]).status(),
];

fn facts(group: &str, plural: &str) -> Facts {
    FACTS
        .iter()
        .find(|x| x.group == group && x.plural == plural)
        .copied()
        .unwrap_or_else(|| f("", "", &[]))
}

fn resource(k: Kind) -> Resource {
    let x = facts(k.group, k.plural);
    let mut subresources = Vec::new();
    if x.status {
        subresources.push("status".to_string());
    }
    if x.scale {
        subresources.push("scale".to_string());
    }
    Resource {
        group: k.group.into(),
        version: k.version.into(),
        kind: k.kind.into(),
        plural: k.plural.into(),
        singular: k.kind.to_lowercase(),
        short_names: x.short.iter().map(|s| s.to_string()).collect(),
        categories: if x.all { vec!["all".into()] } else { vec![] },
        namespaced: k.namespaced,
        subresources,
        scale: x.scale.then(|| ScalePaths {
            spec_replicas: "/spec/replicas".into(),
            status_replicas: "/status/replicas".into(),
            label_selector: Some("/spec/selector".into()),
        }),
        generation: x.generation,
        unconditional_update: k.kind != "CustomResourceDefinition",
        create_on_update: matches!(
            (k.group, k.kind),
            ("coordination.k8s.io", "Lease") | ("", "Event")
        ),
        crd: None,
        verbs: if x.review { CREATE_ONLY } else { VERBS },
    }
}

static BUILTINS: LazyLock<Vec<Arc<Resource>>> =
    LazyLock::new(|| kinds().into_iter().map(|k| Arc::new(resource(k))).collect());

/// The built-in resources, built once.
pub fn builtins() -> &'static [Arc<Resource>] {
    &BUILTINS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fact_names_a_served_resource() {
        for x in FACTS {
            assert!(
                builtins()
                    .iter()
                    .any(|r| r.group == x.group && r.plural == x.plural),
                "{}/{} is not served",
                x.group,
                x.plural
            );
        }
    }

    #[test]
    fn resources_come_from_the_kubernetes_types() {
        let find = |g: &str, v: &str, p: &str| {
            builtins()
                .iter()
                .find(|r| r.group == g && r.version == v && r.plural == p)
                .cloned()
                .unwrap_or_else(|| panic!("{g}/{v}/{p} missing"))
        };
        let hpa = find("autoscaling", "v2", "horizontalpodautoscalers");
        assert_eq!(hpa.kind, "HorizontalPodAutoscaler");
        assert_eq!(hpa.short_names, ["hpa"]);
        assert!(hpa.namespaced && hpa.has_status());
        assert!(hpa.categories.contains(&"all".to_string()));
        find("autoscaling", "v1", "horizontalpodautoscalers");
        let pc = find("scheduling.k8s.io", "v1", "priorityclasses");
        assert!(!pc.namespaced);
        assert_eq!(pc.short_names, ["pc"]);
        let rc = find("", "v1", "replicationcontrollers");
        assert!(rc.subresources.contains(&"scale".to_string()));
        assert!(find("", "v1", "events").create_on_update);
        assert!(find("coordination.k8s.io", "v1", "leases").create_on_update);
        assert!(
            !find("apiextensions.k8s.io", "v1", "customresourcedefinitions").unconditional_update
        );
        assert!(find(AUTHZ, "v1", "subjectaccessreviews").is_review());
        assert!(find(AUTHZ, "v1", "localsubjectaccessreviews").namespaced);
        let n = builtins().len();
        assert!(n >= 50, "{n} built-ins");
    }
}
