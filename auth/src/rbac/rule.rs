//! Whether one PolicyRule allows a request, exactly as kube's `RuleAllows` and the
//! `rbacv1helpers` matchers decide it.

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::Attributes;

/// `*` in `verbs`, `apiGroups`, `resources` or `nonResourceURLs`.
pub const ALL: &str = "*";

/// The items of an optional list field.
pub(crate) fn items(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or_default()
}

/// Whether `rule` allows the request.
pub fn rule_allows(attrs: &Attributes, rule: &PolicyRule) -> bool {
    if attrs.resource_request {
        let combined = if attrs.subresource.is_empty() {
            attrs.resource.clone()
        } else {
            format!("{}/{}", attrs.resource, attrs.subresource)
        };
        return verb_matches(rule, &attrs.verb)
            && api_group_matches(rule, &attrs.api_group)
            && resource_matches(rule, &combined, &attrs.subresource)
            && resource_name_matches(rule, &attrs.name);
    }
    verb_matches(rule, &attrs.verb) && non_resource_url_matches(rule, &attrs.path)
}

/// A verb of the rule is `*` or the requested verb.
pub fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == ALL || v == verb)
}

/// An API group of the rule is `*` or the requested group.
pub fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    items(&rule.api_groups)
        .iter()
        .any(|g| g == ALL || g == group)
}

/// A resource of the rule is `*`, the requested `resource[/subresource]`, or `*/subresource`.
pub fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    items(&rule.resources).iter().any(|r| {
        r == ALL
            || r == combined
            || (!subresource.is_empty()
                && r.len() == subresource.len() + 2
                && r.starts_with("*/")
                && r.ends_with(subresource))
    })
}

/// The rule names no object, or names the requested one. A rule with resourceNames never
/// matches a request without a name (list, watch, create).
pub fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    let names = items(&rule.resource_names);
    names.is_empty() || names.iter().any(|n| n == name)
}

/// A non-resource URL of the rule is `*`, the path, or a prefix ending in `*`.
pub fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    items(&rule.non_resource_urls)
        .iter()
        .any(|u| url_covers(u, path))
}

/// `pattern` (a rule's URL) covers `path`: equal, `*`, or a `prefix*` (every trailing `*` is
/// dropped before the prefix test, as Go's `TrimRight`).
pub(crate) fn url_covers(pattern: &str, path: &str) -> bool {
    pattern == ALL
        || pattern == path
        || (pattern.ends_with('*') && path.starts_with(pattern.trim_end_matches('*')))
}
