//! RBAC escalation prevention, as kube's role and binding storage enforce it: nobody may create
//! or update a Role/ClusterRole with rules they do not hold themselves, nor bind a role whose
//! rules they do not hold, unless they are in `system:masters`, hold `escalate` on the role
//! (role writes) or `bind` on the role (binding writes).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role, RoleRef};

use super::forbidden::go_quote_list;
use super::rule::{ALL, items, url_covers};
use super::{Attributes, GROUP, RbacSource, authorize, role_reference_rules, rules_for};
use crate::user::UserInfo;

/// Why a role or binding write was refused; the apiserver wraps the message in a 403 for the
/// object (`roles.rbac.authorization.k8s.io "x" is forbidden: <message>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The user does not hold every rule they try to grant (kube's wording).
    #[error(
        "user {user} (groups={groups}) is attempting to grant RBAC permissions not currently held:\n{missing}{resolution}"
    )]
    ConfirmNoEscalation {
        /// The user, Go-quoted.
        user: String,
        /// The groups, as Go's `%q` of a list.
        groups: String,
        /// The missing rules, compacted, one per line.
        missing: String,
        /// `; resolution errors: [...]` when some of the user's bindings did not resolve.
        resolution: String,
    },
    /// A ClusterRole with an aggregationRule needs full authority.
    #[error("must have cluster-admin privileges to use the aggregationRule")]
    ConfirmAggregationRule,
    /// The referenced role of a binding does not exist (kube answers 400 BadRequest).
    #[error(transparent)]
    ResolveRoleRef(#[from] super::Error),
}

/// Every verb on every resource and every non-resource URL (what `cluster-admin` holds).
pub fn full_authority() -> Vec<PolicyRule> {
    vec![
        PolicyRule {
            verbs: vec![ALL.into()],
            api_groups: Some(vec![ALL.into()]),
            resources: Some(vec![ALL.into()]),
            ..PolicyRule::default()
        },
        PolicyRule {
            verbs: vec![ALL.into()],
            non_resource_urls: Some(vec![ALL.into()]),
            ..PolicyRule::default()
        },
    ]
}

/// Whether `owner` rules cover every `requested` rule (kube's `Covers`); otherwise the atomic
/// rules (one group, resource, verb and name each) that none covers.
pub fn covers(owner: &[PolicyRule], requested: &[PolicyRule]) -> Result<(), Vec<PolicyRule>> {
    let missing: Vec<PolicyRule> = requested
        .iter()
        .flat_map(breakdown_rule)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing)
    }
}

/// One rule per (group, resource, verb[, name]) and per (non-resource URL, verb).
pub fn breakdown_rule(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| Some(vec![s.clone()]);
    let mut out = Vec::new();
    for group in items(&rule.api_groups) {
        for resource in items(&rule.resources) {
            for verb in &rule.verbs {
                let base = PolicyRule {
                    api_groups: one(group),
                    resources: one(resource),
                    verbs: vec![verb.clone()],
                    ..PolicyRule::default()
                };
                let names = items(&rule.resource_names);
                if names.is_empty() {
                    out.push(base);
                } else {
                    out.extend(names.iter().map(|n| PolicyRule {
                        resource_names: one(n),
                        ..base.clone()
                    }));
                }
            }
        }
    }
    for url in items(&rule.non_resource_urls) {
        for verb in &rule.verbs {
            out.push(PolicyRule {
                non_resource_urls: one(url),
                verbs: vec![verb.clone()],
                ..PolicyRule::default()
            });
        }
    }
    out
}

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| has(set, w))
}

fn resources_cover_all(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, ALL) || has_all(owner, wanted) {
        return true;
    }
    wanted.iter().all(|path| {
        has(owner, path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

/// Whether `owner` covers the atomic rule `sub` (kube's `ruleCovers`).
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, ALL) || has_all(&owner.verbs, &sub.verbs);
    let groups = has(items(&owner.api_groups), ALL)
        || has_all(items(&owner.api_groups), items(&sub.api_groups));
    let resources = resources_cover_all(items(&owner.resources), items(&sub.resources));
    let urls = items(&sub.non_resource_urls).iter().all(|p| {
        items(&owner.non_resource_urls)
            .iter()
            .any(|o| url_covers(o, p))
    });
    let owner_names = items(&owner.resource_names);
    let sub_names = items(&sub.resource_names);
    let names = if sub_names.is_empty() {
        owner_names.is_empty()
    } else {
        owner_names.is_empty() || has_all(owner_names, sub_names)
    };
    verbs && groups && resources && names && urls
}

/// kube's `CompactRules`: atomic rules on the same group, resource and (single) name merged into
/// one rule with all their verbs.
pub fn compact_rules(rules: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    let mut simple: BTreeMap<(String, String, Option<String>), PolicyRule> = BTreeMap::new();
    for r in rules {
        let (groups, resources, names) = (
            items(&r.api_groups),
            items(&r.resources),
            items(&r.resource_names),
        );
        let is_simple = names.len() <= 1
            && items(&r.non_resource_urls).is_empty()
            && groups.len() == 1
            && resources.len() == 1;
        if !is_simple {
            out.push(r.clone());
            continue;
        }
        let key = (
            groups[0].clone(),
            resources[0].clone(),
            names.first().cloned(),
        );
        simple
            .entry(key)
            .and_modify(|e| e.verbs.extend(r.verbs.iter().cloned()))
            .or_insert_with(|| r.clone());
    }
    out.extend(simple.into_values());
    out
}

/// kube's `CompactString`: `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get" "list"]}`.
pub fn compact_string(rule: &PolicyRule) -> String {
    let mut parts = Vec::new();
    let fields = [
        ("APIGroups", items(&rule.api_groups)),
        ("Resources", items(&rule.resources)),
        ("NonResourceURLs", items(&rule.non_resource_urls)),
        ("ResourceNames", items(&rule.resource_names)),
        ("Verbs", rule.verbs.as_slice()),
    ];
    for (name, values) in fields {
        if !values.is_empty() {
            parts.push(format!("{name}:{}", go_quote_list(values)));
        }
    }
    format!("{{{}}}", parts.join(", "))
}

/// kube's `ConfirmNoEscalation`: `user` must already hold, in `namespace` (empty for
/// cluster-scoped objects), every rule of `requested`.
pub fn confirm_no_escalation(
    source: &impl RbacSource,
    user: &UserInfo,
    namespace: &str,
    requested: &[PolicyRule],
) -> Result<(), Error> {
    let owner = rules_for(source, user, namespace);
    let Err(missing) = covers(&owner.rules, requested) else {
        return Ok(());
    };
    let described: BTreeSet<String> = compact_rules(&missing).iter().map(compact_string).collect();
    let resolution = if owner.errors.is_empty() {
        String::new()
    } else {
        // Go: fmt.Sprintf("%v", []error{utilerrors.NewAggregate(errs)})
        let errs: Vec<String> = owner.errors.iter().map(ToString::to_string).collect();
        format!("; resolution errors: [{}]", super::aggregate_errors(&errs))
    };
    Err(Error::ConfirmNoEscalation {
        user: super::forbidden::go_quote(&user.name),
        groups: go_quote_list(&user.groups),
        missing: described.into_iter().collect::<Vec<_>>().join("\n"),
        resolution,
    })
}

/// Whether `user` may write a role of kind `resource` (`roles` or `clusterroles`) named `name`
/// in `namespace` without the escalation check: in `system:masters`, or allowed to `escalate` it.
pub fn escalation_allowed(
    source: &impl RbacSource,
    user: &UserInfo,
    resource: &str,
    namespace: &str,
    name: &str,
) -> bool {
    user.is_privileged()
        || authorize(
            &Attributes::resource(user.clone(), "escalate", GROUP, resource)
                .namespace(namespace)
                .name(name),
            source,
        )
        .is_allowed()
}

/// Whether `user` may bind `role_ref` in `binding_namespace` (empty for a ClusterRoleBinding)
/// without holding its rules: allowed to `bind` that role (kube's `BindingAuthorized`).
pub fn bind_allowed(
    source: &impl RbacSource,
    user: &UserInfo,
    role_ref: &RoleRef,
    binding_namespace: &str,
) -> bool {
    let resource = if role_ref.kind == "ClusterRole" {
        "clusterroles"
    } else {
        "roles"
    };
    authorize(
        &Attributes::resource(user.clone(), "bind", GROUP, resource)
            .namespace(binding_namespace)
            .name(&role_ref.name),
        source,
    )
    .is_allowed()
}

/// The check kube's Role storage makes on create and on an update that changes rules.
pub fn check_role_write(
    source: &impl RbacSource,
    user: &UserInfo,
    role: &Role,
) -> Result<(), Error> {
    let namespace = role.metadata.namespace.as_deref().unwrap_or_default();
    let name = role.metadata.name.as_deref().unwrap_or_default();
    if escalation_allowed(source, user, "roles", namespace, name) {
        return Ok(());
    }
    confirm_no_escalation(
        source,
        user,
        namespace,
        role.rules.as_deref().unwrap_or_default(),
    )
}

/// The check kube's ClusterRole storage makes on create and on an update that changes rules or
/// the aggregationRule (which needs full authority, since it can gather anything).
pub fn check_cluster_role_write(
    source: &impl RbacSource,
    user: &UserInfo,
    role: &ClusterRole,
) -> Result<(), Error> {
    let name = role.metadata.name.as_deref().unwrap_or_default();
    if escalation_allowed(source, user, "clusterroles", "", name) {
        return Ok(());
    }
    confirm_no_escalation(source, user, "", role.rules.as_deref().unwrap_or_default())?;
    if role.aggregation_rule.is_some()
        && confirm_no_escalation(source, user, "", &full_authority()).is_err()
    {
        return Err(Error::ConfirmAggregationRule);
    }
    Ok(())
}

/// The check kube's RoleBinding/ClusterRoleBinding storage makes on create and on an update that
/// changes `roleRef` (`binding_namespace` empty for ClusterRoleBindings).
pub fn check_binding_write(
    source: &impl RbacSource,
    user: &UserInfo,
    binding_namespace: &str,
    role_ref: &RoleRef,
) -> Result<(), Error> {
    if user.is_privileged() || bind_allowed(source, user, role_ref, binding_namespace) {
        return Ok(());
    }
    let rules = role_reference_rules(source, role_ref, binding_namespace)?;
    confirm_no_escalation(source, user, binding_namespace, rules)
}
