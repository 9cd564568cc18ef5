//! `FederatedTypeConfig`: which API type is federated and how.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Scope;
use crate::well_known::{TYPES_GROUP, TYPES_V1BETA1};

/// Desired state of a FederatedTypeConfig: the target type, its federated type and the switches.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "core.kubefed.io",
    version = "v1beta1",
    kind = "FederatedTypeConfig",
    doc = "FederatedTypeConfig tells the federation plane about one API type (the target type) to federate, and the federated type (Federated<Kind>) whose template, placement and overrides say how the target type appears in each member cluster. Its name is <plural>.<group> of the target type (<plural> for the core group).",
    plural = "federatedtypeconfigs",
    shortname = "ftc",
    namespaced,
    status = "FederatedTypeConfigStatus",
    printcolumn = r#"{"name":"TARGET","type":"string","jsonPath":".spec.targetType.kind"}"#,
    printcolumn = r#"{"name":"PROPAGATION","type":"string","jsonPath":".spec.propagation"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FederatedTypeConfigSpec {
    /// The target type. When group or pluralName are empty they come from this object's name.
    pub target_type: TargetType,
    /// Whether propagation to member clusters is enabled.
    pub propagation: PropagationMode,
    /// The federated type holding template, placement and overrides of the target type.
    pub federated_type: TargetType,
    /// The type holding collected status; defaults to the federated type's group and version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_type: Option<TargetType>,
    /// Whether the status of member objects is collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_collection: Option<StatusCollectionMode>,
    /// cellfed: annotation keys of the template that are spec (patterns, `*` is a wildcard). They
    /// are set on members from the template and removed when the template drops them; other
    /// annotations on member objects are left untouched. Empty: KubeFed's behaviour.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub propagated_annotations: Vec<String>,
}

/// An API type, KubeFed's `APIResource`: group, version, kind, plural and scope.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetType {
    /// API group; empty for the core group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// CamelCase singular kind, e.g. `ConfigMap`.
    pub kind: String,
    /// Lower-case plural, e.g. `configmaps`; computed from the kind when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub plural_name: String,
    /// Scope of the type: `Namespaced` or `Cluster`.
    pub scope: Scope,
}

impl TargetType {
    /// A type from its parts.
    pub fn new(group: &str, version: &str, kind: &str, plural: &str, scope: Scope) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural_name: plural.into(),
            scope,
        }
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The plural name, computed from the kind as KubeFed does when it is empty.
    pub fn plural(&self) -> String {
        if self.plural_name.is_empty() {
            plural_name(&self.kind)
        } else {
            self.plural_name.clone()
        }
    }

    /// Whether objects of this type live in a namespace.
    pub fn is_namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    /// `<plural>.<group>` (`<plural>` for the core group): the name of its `FederatedTypeConfig`.
    pub fn type_config_name(&self) -> String {
        if self.group.is_empty() {
            self.plural()
        } else {
            format!("{}.{}", self.plural(), self.group)
        }
    }

    /// The [`ApiResource`](kube::core::ApiResource) of this type, for dynamic clients and for
    /// [`FederatedObject`](crate::federated::FederatedObject) as `kube::Resource`.
    pub fn api_resource(&self) -> kube::core::ApiResource {
        kube::core::ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: self.api_version(),
            kind: self.kind.clone(),
            plural: self.plural(),
        }
    }

    /// The federated type of this target type: `types.kubefed.io/v1beta1` `Federated<Kind>`,
    /// plural `federated<plural>`. Its scope is the target's, except that `FederatedNamespace` is
    /// namespaced (it lives in the namespace it federates), as in KubeFed.
    pub fn federated(&self) -> TargetType {
        let scope = if self.group.is_empty() && self.kind == "Namespace" {
            Scope::Namespaced
        } else {
            self.scope
        };
        TargetType {
            group: TYPES_GROUP.into(),
            version: TYPES_V1BETA1.into(),
            kind: format!("Federated{}", self.kind),
            plural_name: format!("federated{}", self.plural()),
            scope,
        }
    }
}

/// KubeFed's plural of a kind: lower case, then `es` after s, x, ch, sh, z or o, `ies` for a final
/// `y`, `s` otherwise.
pub fn plural_name(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if ["s", "x", "ch", "sh", "z", "o"]
        .iter()
        .any(|s| lower.ends_with(s))
    {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

/// Whether propagation to member clusters is on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PropagationMode {
    /// Federated resources of this type are propagated.
    Enabled,
    /// Nothing is propagated.
    Disabled,
}

/// Whether status of member objects is collected.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum StatusCollectionMode {
    /// Status is collected.
    Enabled,
    /// Status is not collected.
    Disabled,
}

/// State of a controller for a federated type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ControllerStatus {
    /// The controller runs.
    Running,
    /// The controller does not run.
    NotRunning,
}

/// Observed state of a `FederatedTypeConfig`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FederatedTypeConfigStatus {
    /// Generation of the spec the controller last acted on.
    #[serde(default)]
    pub observed_generation: i64,
    /// State of the propagation (sync) controller.
    pub propagation_controller: ControllerStatus,
    /// State of the status controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_controller: Option<ControllerStatus>,
}

impl FederatedTypeConfig {
    /// The `FederatedTypeConfig` enabling propagation of `target` in `namespace`, as
    /// `kubefedctl enable` writes it (status collection disabled, no annotation rules).
    pub fn for_target(target: &TargetType, namespace: &str) -> Self {
        let mut target = target.clone();
        target.plural_name = target.plural();
        let mut ftc = FederatedTypeConfig::new(
            &target.type_config_name(),
            FederatedTypeConfigSpec {
                federated_type: target.federated(),
                target_type: target,
                propagation: PropagationMode::Enabled,
                status_type: None,
                status_collection: Some(StatusCollectionMode::Disabled),
                propagated_annotations: Vec::new(),
            },
        );
        ftc.metadata.namespace = Some(namespace.into());
        ftc
    }

    /// Whether propagation is enabled.
    pub fn propagation_enabled(&self) -> bool {
        self.spec.propagation == PropagationMode::Enabled
    }

    /// Whether the annotation `key` of the template is spec (propagated and owned by the
    /// controller) under `spec.propagatedAnnotations`. Always false without rules.
    pub fn propagates_annotation(&self, key: &str) -> bool {
        self.spec
            .propagated_annotations
            .iter()
            .any(|pattern| wildcard_match(pattern, key))
    }

    /// Whether status collection is enabled.
    pub fn status_enabled(&self) -> bool {
        self.spec.status_collection == Some(StatusCollectionMode::Enabled)
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (possibly empty)
/// and every other character for itself.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let last = parts.pop().unwrap_or_default();
    for part in parts {
        match remaining.find(part) {
            Some(i) => remaining = &remaining[i + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_globs() {
        assert!(wildcard_match("example.com/*", "example.com/owner"));
        assert!(wildcard_match("example.com/*", "example.com/"));
        assert!(!wildcard_match("example.com/*", "other.com/owner"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("team", "team"));
        assert!(!wildcard_match("team", "teams"));
        assert!(wildcard_match("*.io/*-id", "cellfed.io/rollout-id"));
        assert!(!wildcard_match("*.io/*-id", "cellfed.io/rollout-ids"));
        assert!(!wildcard_match("a*a", "a"), "the two a's cannot overlap");
        assert!(wildcard_match("a*b*c", "abc"));
    }

    #[test]
    fn annotation_rules_select_spec_keys() {
        let target = TargetType::new("apps", "v1", "Deployment", "deployments", Scope::Namespaced);
        let mut ftc = FederatedTypeConfig::for_target(&target, "kube-federation-system");
        assert!(!ftc.propagates_annotation("anything"), "no rules: KubeFed");
        ftc.spec.propagated_annotations = vec!["example.com/*".into(), "team".into()];
        assert!(ftc.propagates_annotation("example.com/owner"));
        assert!(ftc.propagates_annotation("team"));
        assert!(!ftc.propagates_annotation("deployment.kubernetes.io/revision"));
        let ar = target.federated().api_resource();
        assert_eq!(
            (ar.api_version.as_str(), ar.plural.as_str()),
            ("types.kubefed.io/v1beta1", "federateddeployments")
        );
    }

    #[test]
    fn plural_names_follow_kubefed() {
        assert_eq!(plural_name("ConfigMap"), "configmaps");
        assert_eq!(plural_name("Ingress"), "ingresses");
        assert_eq!(plural_name("NetworkPolicy"), "networkpolicies");
        assert_eq!(plural_name("Mesh"), "meshes");
    }

    #[test]
    fn federated_type_of_namespace_is_namespaced() {
        let ns = TargetType::new("", "v1", "Namespace", "namespaces", Scope::Cluster);
        let fed = ns.federated();
        assert_eq!(fed.kind, "FederatedNamespace");
        assert_eq!(fed.plural_name, "federatednamespaces");
        assert_eq!(fed.scope, Scope::Namespaced);
        let cr = TargetType::new(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            Scope::Cluster,
        );
        assert_eq!(cr.federated().scope, Scope::Cluster);
        assert_eq!(
            cr.type_config_name(),
            "clusterroles.rbac.authorization.k8s.io"
        );
        assert_eq!(cr.api_version(), "rbac.authorization.k8s.io/v1");
    }

    #[test]
    fn type_config_for_target_names_it_like_kubefedctl() {
        let deploy = TargetType::new("apps", "v1", "Deployment", "", Scope::Namespaced);
        let ftc = FederatedTypeConfig::for_target(&deploy, "kube-federation-system");
        assert_eq!(ftc.metadata.name.as_deref(), Some("deployments.apps"));
        assert_eq!(ftc.spec.target_type.plural_name, "deployments");
        assert_eq!(ftc.spec.federated_type.kind, "FederatedDeployment");
        assert!(ftc.propagation_enabled());
        assert!(!ftc.status_enabled());
    }
}
