//! ClusterRole aggregation: a ClusterRole with an `aggregationRule` holds the union of the rules
//! of every other ClusterRole its label selectors match, as kube's ClusterRole aggregation
//! controller keeps it (roles taken in name order, a rule already present not repeated).

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `selector` matches `labels` (`matchLabels` and `matchExpressions` with `In`, `NotIn`,
/// `Exists`, `DoesNotExist`; an empty selector matches everything, an unknown operator nothing).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// Fills in the rules of every aggregated ClusterRole of `roles` until nothing changes.
pub fn aggregate(roles: &mut [ClusterRole]) {
    for _ in 0..=roles.len() {
        let mut changed = false;
        for i in 0..roles.len() {
            let Some(rule) = roles[i].aggregation_rule.clone() else {
                continue;
            };
            let me = roles[i].metadata.name.clone();
            let mut rules: Vec<PolicyRule> = Vec::new();
            for selector in rule.cluster_role_selectors.iter().flatten() {
                let mut matched: Vec<&ClusterRole> = roles
                    .iter()
                    .filter(|r| r.metadata.name != me)
                    .filter(|r| {
                        selector_matches(
                            selector,
                            r.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
                        )
                    })
                    .collect();
                matched.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
                for r in matched {
                    for rule in r.rules.iter().flatten() {
                        if !rules.contains(rule) {
                            rules.push(rule.clone());
                        }
                    }
                }
            }
            if roles[i].rules.as_ref() != Some(&rules) {
                roles[i].rules = Some(rules);
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}
