//! RBAC authorization as Kubernetes evaluates it, as pure functions over a snapshot of Roles,
//! ClusterRoles, RoleBindings and ClusterRoleBindings:
//!
//! - [`authorize`]: kube's RBAC authorizer, preceded by the `system:masters` bypass kube-apiserver
//!   puts in front of it. ClusterRoleBindings grant everywhere; RoleBindings (to a Role of their
//!   namespace or to a ClusterRole) grant only in their namespace. No rule means
//!   [`Decision::NoOpinion`], which an RBAC-only chain turns into 403.
//! - [`rules_for`]: every rule a user holds in a namespace (SelfSubjectRulesReview).
//! - [`escalation`]: kube's escalation prevention (`covers`, `ConfirmNoEscalation`, `bind`,
//!   `escalate`).
//! - [`bootstrap`]: `cluster-admin`, `admin`, `edit`, `view` and the discovery roles.
//! - [`forbidden`]: kube's 403 message.
//! - [`aggregate`]: ClusterRole aggregation (what kube's aggregation controller computes).

pub mod aggregate;
pub mod bootstrap;
pub mod escalation;
pub mod forbidden;
pub mod rule;

use std::collections::HashMap;

use k8s_openapi::api::authorization::v1::{
    NonResourceRule, ResourceRule, SubjectRulesReviewStatus,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use crate::user::{UserInfo, matches_service_account};

/// The RBAC API group.
pub const GROUP: &str = "rbac.authorization.k8s.io";

/// Why a binding's rules could not be resolved (kube reports these in the denial reason and in
/// SelfSubjectRulesReview's `evaluationError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A RoleBinding names a Role that does not exist in its namespace.
    #[error("role.rbac.authorization.k8s.io {name:?} not found")]
    GetRole {
        /// The binding's namespace.
        namespace: String,
        /// The missing Role.
        name: String,
    },
    /// A binding names a ClusterRole that does not exist.
    #[error("clusterrole.rbac.authorization.k8s.io {0:?} not found")]
    GetClusterRole(String),
    /// A binding's `roleRef.kind` is neither Role nor ClusterRole.
    #[error("unsupported role reference kind: {0:?}")]
    ResolveRoleRef(String),
}

/// What a request asks to do, as kube's `authorizer.Attributes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// Who asks.
    pub user: UserInfo,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or any
    /// custom verb (`bind`, `escalate`, `impersonate`, `use`, `approve`).
    pub verb: String,
    /// Whether this is a request for an API resource (`false`: a non-resource path).
    pub resource_request: bool,
    /// The namespace, empty for cluster-scoped requests.
    pub namespace: String,
    /// The API group, empty for the core group.
    pub api_group: String,
    /// The API version (only used to label the 403 Status).
    pub api_version: String,
    /// The resource (`pods`).
    pub resource: String,
    /// The subresource (`log`), or empty.
    pub subresource: String,
    /// The object name, empty for list/watch/create-without-name.
    pub name: String,
    /// The URL path of a non-resource request (`/metrics`).
    pub path: String,
}

impl Attributes {
    /// A request on `resource` of `api_group`, cluster-wide and unnamed until refined with the
    /// builder methods.
    pub fn resource(user: UserInfo, verb: &str, api_group: &str, resource: &str) -> Self {
        Self {
            user,
            verb: verb.into(),
            resource_request: true,
            api_group: api_group.into(),
            resource: resource.into(),
            ..Self::default()
        }
    }

    /// A request on a non-resource path.
    pub fn non_resource(user: UserInfo, verb: &str, path: &str) -> Self {
        Self {
            user,
            verb: verb.into(),
            path: path.into(),
            ..Self::default()
        }
    }

    /// In `namespace`.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// On the object `name`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }

    /// On `subresource`.
    pub fn subresource(mut self, subresource: &str) -> Self {
        self.subresource = subresource.into();
        self
    }
}

/// The outcome of [`authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Some rule allows it; the reason names the binding (`RBAC: allowed by …`), empty for
    /// `system:masters`.
    Allow {
        /// kube's reason text.
        reason: String,
    },
    /// No rule allows it. The reason lists rule resolution errors (`RBAC: …`), if any.
    NoOpinion {
        /// kube's reason text.
        reason: String,
    },
}

impl Decision {
    /// Whether the request may go on.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }

    /// kube's reason text.
    pub fn reason(&self) -> &str {
        match self {
            Self::Allow { reason } | Self::NoOpinion { reason } => reason,
        }
    }
}

/// Where RBAC objects come from: the apiserver's watch-fed caches, or a [`Snapshot`].
pub trait RbacSource {
    /// Every ClusterRoleBinding.
    fn cluster_role_bindings(&self) -> &[ClusterRoleBinding];
    /// The RoleBindings of `namespace`.
    fn role_bindings(&self, namespace: &str) -> &[RoleBinding];
    /// The Role `namespace/name`.
    fn role(&self, namespace: &str, name: &str) -> Option<&Role>;
    /// The ClusterRole `name`.
    fn cluster_role(&self, name: &str) -> Option<&ClusterRole>;
}

/// An immutable copy of every RBAC object, indexed for evaluation.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    roles: HashMap<(String, String), Role>,
    cluster_roles: HashMap<String, ClusterRole>,
    role_bindings: HashMap<String, Vec<RoleBinding>>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
}

impl Snapshot {
    /// A snapshot of the given objects (bindings keep their order).
    pub fn new(
        roles: impl IntoIterator<Item = Role>,
        cluster_roles: impl IntoIterator<Item = ClusterRole>,
        role_bindings: impl IntoIterator<Item = RoleBinding>,
        cluster_role_bindings: impl IntoIterator<Item = ClusterRoleBinding>,
    ) -> Self {
        let mut s = Self {
            cluster_role_bindings: cluster_role_bindings.into_iter().collect(),
            ..Self::default()
        };
        for r in roles {
            s.roles
                .insert((namespace_of(&r.metadata), name_of(&r.metadata)), r);
        }
        for r in cluster_roles {
            s.cluster_roles.insert(name_of(&r.metadata), r);
        }
        for b in role_bindings {
            s.role_bindings
                .entry(namespace_of(&b.metadata))
                .or_default()
                .push(b);
        }
        s
    }

    /// kube's bootstrap policy ([`bootstrap`]) plus the given objects; an object named like a
    /// bootstrap one replaces it.
    pub fn with_bootstrap(
        roles: impl IntoIterator<Item = Role>,
        cluster_roles: impl IntoIterator<Item = ClusterRole>,
        role_bindings: impl IntoIterator<Item = RoleBinding>,
        cluster_role_bindings: impl IntoIterator<Item = ClusterRoleBinding>,
    ) -> Self {
        let mut crbs: Vec<ClusterRoleBinding> = cluster_role_bindings.into_iter().collect();
        let mut all = bootstrap::cluster_role_bindings();
        all.retain(|b| !crbs.iter().any(|c| c.metadata.name == b.metadata.name));
        all.append(&mut crbs);
        Self::new(
            roles,
            bootstrap::cluster_roles().into_iter().chain(cluster_roles),
            role_bindings,
            all,
        )
    }
}

fn name_of(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    m.name.clone().unwrap_or_default()
}

fn namespace_of(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    m.namespace.clone().unwrap_or_default()
}

impl RbacSource for Snapshot {
    fn cluster_role_bindings(&self) -> &[ClusterRoleBinding] {
        &self.cluster_role_bindings
    }

    fn role_bindings(&self, namespace: &str) -> &[RoleBinding] {
        self.role_bindings.get(namespace).map_or(&[], Vec::as_slice)
    }

    fn role(&self, namespace: &str, name: &str) -> Option<&Role> {
        self.roles.get(&(namespace.to_string(), name.to_string()))
    }

    fn cluster_role(&self, name: &str) -> Option<&ClusterRole> {
        self.cluster_roles.get(name)
    }
}

/// Which binding granted a rule (kube's `fmt.Stringer` sources).
#[derive(Debug, Clone, Copy)]
pub enum RuleSourceRef<'a> {
    /// A ClusterRoleBinding and its first matching subject.
    ClusterRoleBinding(&'a ClusterRoleBinding, &'a Subject),
    /// A RoleBinding and its first matching subject.
    RoleBinding(&'a RoleBinding, &'a Subject),
}

impl std::fmt::Display for RuleSourceRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = forbidden::go_quote;
        match self {
            Self::ClusterRoleBinding(b, s) => write!(
                f,
                "ClusterRoleBinding {} of {} {} to {}",
                q(&name_of(&b.metadata)),
                b.role_ref.kind,
                q(&b.role_ref.name),
                describe_subject(s, "")
            ),
            Self::RoleBinding(b, s) => {
                let ns = namespace_of(&b.metadata);
                write!(
                    f,
                    "RoleBinding {} of {} {} to {}",
                    q(&format!("{}/{ns}", name_of(&b.metadata))),
                    b.role_ref.kind,
                    q(&b.role_ref.name),
                    describe_subject(s, &ns)
                )
            }
        }
    }
}

fn describe_subject(s: &Subject, binding_namespace: &str) -> String {
    let q = forbidden::go_quote;
    if s.kind == "ServiceAccount" {
        let ns = s
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(binding_namespace);
        format!("{} {}", s.kind, q(&format!("{}/{ns}", s.name)))
    } else {
        format!("{} {}", s.kind, q(&s.name))
    }
}

/// What [`visit_rules_for`] hands its visitor.
pub enum Visit<'a> {
    /// A rule and the binding that grants it.
    Rule(RuleSourceRef<'a>, &'a PolicyRule),
    /// A binding whose role could not be resolved.
    Error(Error),
}

/// kube's `VisitRulesFor`: every rule `user` holds in `namespace` (ClusterRoleBindings first,
/// then the namespace's RoleBindings), until the visitor returns `false`.
pub fn visit_rules_for<'a>(
    source: &'a impl RbacSource,
    user: &UserInfo,
    namespace: &str,
    mut visitor: impl FnMut(Visit<'a>) -> bool,
) {
    for b in source.cluster_role_bindings() {
        let Some(subject) = applies_to(user, b.subjects.as_deref(), "") else {
            continue;
        };
        match role_reference_rules(source, &b.role_ref, "") {
            Ok(rules) => {
                for r in rules {
                    if !visitor(Visit::Rule(
                        RuleSourceRef::ClusterRoleBinding(b, subject),
                        r,
                    )) {
                        return;
                    }
                }
            }
            Err(e) => {
                if !visitor(Visit::Error(e)) {
                    return;
                }
            }
        }
    }
    if namespace.is_empty() {
        return;
    }
    for b in source.role_bindings(namespace) {
        let Some(subject) = applies_to(user, b.subjects.as_deref(), namespace) else {
            continue;
        };
        match role_reference_rules(source, &b.role_ref, namespace) {
            Ok(rules) => {
                for r in rules {
                    if !visitor(Visit::Rule(RuleSourceRef::RoleBinding(b, subject), r)) {
                        return;
                    }
                }
            }
            Err(e) => {
                if !visitor(Visit::Error(e)) {
                    return;
                }
            }
        }
    }
}

/// The rules a binding's `roleRef` grants (kube's `GetRoleReferenceRules`).
pub fn role_reference_rules<'a>(
    source: &'a impl RbacSource,
    role_ref: &RoleRef,
    binding_namespace: &str,
) -> Result<&'a [PolicyRule], Error> {
    match role_ref.kind.as_str() {
        "Role" => source
            .role(binding_namespace, &role_ref.name)
            .map(|r| r.rules.as_deref().unwrap_or_default())
            .ok_or_else(|| Error::GetRole {
                namespace: binding_namespace.into(),
                name: role_ref.name.clone(),
            }),
        "ClusterRole" => source
            .cluster_role(&role_ref.name)
            .map(|r| r.rules.as_deref().unwrap_or_default())
            .ok_or_else(|| Error::GetClusterRole(role_ref.name.clone())),
        other => Err(Error::ResolveRoleRef(other.into())),
    }
}

/// The first subject of a binding that is `user` (kube's `appliesTo`). A ServiceAccount subject
/// without a namespace means the binding's namespace, and never matches in a ClusterRoleBinding.
fn applies_to<'s>(
    user: &UserInfo,
    subjects: Option<&'s [Subject]>,
    namespace: &str,
) -> Option<&'s Subject> {
    subjects?.iter().find(|s| match s.kind.as_str() {
        "User" => user.name == s.name,
        "Group" => user.in_group(&s.name),
        "ServiceAccount" => {
            let ns = s
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(namespace);
            !ns.is_empty() && matches_service_account(ns, &s.name, &user.name)
        }
        _ => false,
    })
}

/// Decides a request: `system:masters` is allowed outright (kube-apiserver's privileged-group
/// authorizer), anything else needs a rule that allows it.
pub fn authorize(attrs: &Attributes, source: &impl RbacSource) -> Decision {
    if attrs.user.is_privileged() {
        return Decision::Allow {
            reason: String::new(),
        };
    }
    let mut allowed_by = None;
    let mut errors = Vec::new();
    visit_rules_for(source, &attrs.user, &attrs.namespace, |visit| match visit {
        Visit::Rule(source, r) => {
            if rule::rule_allows(attrs, r) {
                allowed_by = Some(source.to_string());
                return false;
            }
            true
        }
        Visit::Error(e) => {
            errors.push(e.to_string());
            true
        }
    });
    match allowed_by {
        Some(source) => Decision::Allow {
            reason: format!("RBAC: allowed by {source}"),
        },
        None if errors.is_empty() => Decision::NoOpinion {
            reason: String::new(),
        },
        None => Decision::NoOpinion {
            reason: format!("RBAC: {}", aggregate_errors(&errors)),
        },
    }
}

/// Every rule a user holds in a namespace (cluster-wide ones included), and the bindings that
/// could not be resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RulesFor {
    /// The rules, in evaluation order.
    pub rules: Vec<PolicyRule>,
    /// Resolution errors; non-empty means the list is incomplete.
    pub errors: Vec<Error>,
}

impl RulesFor {
    /// The SelfSubjectRulesReview status kube answers with.
    pub fn review_status(&self) -> SubjectRulesReviewStatus {
        let mut status = SubjectRulesReviewStatus {
            incomplete: !self.errors.is_empty(),
            ..SubjectRulesReviewStatus::default()
        };
        for r in &self.rules {
            if r.resources.as_ref().is_some_and(|v| !v.is_empty()) {
                status.resource_rules.push(ResourceRule {
                    verbs: r.verbs.clone(),
                    api_groups: r.api_groups.clone(),
                    resources: r.resources.clone(),
                    resource_names: r.resource_names.clone(),
                });
            }
            if r.non_resource_urls.as_ref().is_some_and(|v| !v.is_empty()) {
                status.non_resource_rules.push(NonResourceRule {
                    verbs: r.verbs.clone(),
                    non_resource_urls: r.non_resource_urls.clone(),
                });
            }
        }
        if !self.errors.is_empty() {
            let msgs: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
            status.evaluation_error = Some(aggregate_errors(&msgs));
        }
        status
    }
}

/// kube's `RulesFor` (SelfSubjectRulesReview, escalation checks).
pub fn rules_for(source: &impl RbacSource, user: &UserInfo, namespace: &str) -> RulesFor {
    let mut out = RulesFor::default();
    visit_rules_for(source, user, namespace, |visit| {
        match visit {
            Visit::Rule(_, r) => out.rules.push(r.clone()),
            Visit::Error(e) => out.errors.push(e),
        }
        true
    });
    out
}

/// Go's `utilerrors.NewAggregate(errs).Error()`: one message alone, several deduplicated in
/// brackets.
pub(crate) fn aggregate_errors(messages: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for m in messages {
        if !seen.contains(&m.as_str()) {
            seen.push(m);
        }
    }
    match seen.as_slice() {
        [one] => (*one).to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests;
