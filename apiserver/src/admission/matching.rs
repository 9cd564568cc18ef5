//! Which webhooks a request goes to, as kube-apiserver decides it: `rules` (operations, API
//! groups and versions, `resource[/subresource]` with `*`, scope), `namespaceSelector` (on the
//! labels of the object's namespace, or of the Namespace itself) and `objectSelector` (on the
//! labels of the new or the old object). Pure functions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

use super::cache::Rule;

/// What a rule is matched against.
#[derive(Debug, Clone, Copy)]
pub struct Coordinates<'a> {
    pub group: &'a str,
    pub version: &'a str,
    /// The resource's plural.
    pub resource: &'a str,
    /// "" for the resource itself.
    pub subresource: &'a str,
    /// `CREATE`, `UPDATE`, …
    pub operation: &'a str,
    /// Whether the object lives in a namespace (a Namespace itself does not).
    pub namespaced: bool,
}

/// Whether `rule` matches the request.
pub fn rule_matches(rule: &Rule, c: &Coordinates<'_>) -> bool {
    let has = |list: &[String], value: &str| list.iter().any(|v| v == "*" || v == value);
    let resource_ok = rule.resources.iter().any(|r| {
        let (res, sub) = r.split_once('/').unwrap_or((r, ""));
        (res == "*" || res == c.resource) && (sub == "*" || sub == c.subresource)
    });
    let scope_ok = match rule.scope.as_str() {
        "Namespaced" => c.namespaced,
        "Cluster" => !c.namespaced,
        _ => true,
    };
    has(&rule.operations, c.operation)
        && has(&rule.api_groups, c.group)
        && has(&rule.api_versions, c.version)
        && resource_ok
        && scope_ok
}

/// Whether `labels` (a `metadata.labels` map, None when the object has none) satisfy a
/// `metav1.LabelSelector`. The empty selector matches everything; an unknown operator matches
/// nothing (kube refuses such a selector when the configuration is written).
pub fn selector_matches(selector: &LabelSelector, labels: Option<&Value>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| get(k) == Some(v.as_str()));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let have = get(&e.key);
        let listed = have.is_some_and(|h| values.iter().any(|v| v == h));
        match e.operator.as_str() {
            "In" => listed,
            "NotIn" => !listed,
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// kube's objectSelector rule: the new object's labels or the old object's match.
pub fn object_matches(
    selector: Option<&LabelSelector>,
    obj: Option<&Value>,
    old: Option<&Value>,
) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    [obj, old]
        .into_iter()
        .flatten()
        .any(|o| selector_matches(selector, o.pointer("/metadata/labels")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: Value) -> Rule {
        let s =
            |k: &str| -> Vec<String> { serde_json::from_value(v[k].clone()).unwrap_or_default() };
        Rule {
            operations: s("operations"),
            api_groups: s("apiGroups"),
            api_versions: s("apiVersions"),
            resources: s("resources"),
            scope: v["scope"].as_str().unwrap_or("*").into(),
        }
    }

    const CM: Coordinates<'static> = Coordinates {
        group: "",
        version: "v1",
        resource: "configmaps",
        subresource: "",
        operation: "CREATE",
        namespaced: true,
    };

    #[test]
    fn rules_match_like_kube() {
        let r = rule(
            json!({"apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"], "operations": ["CREATE"]}),
        );
        assert!(rule_matches(&r, &CM));
        assert!(!rule_matches(
            &r,
            &Coordinates {
                operation: "UPDATE",
                ..CM
            }
        ));
        let wild = rule(
            json!({"apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "operations": ["*"], "scope": "Cluster"}),
        );
        assert!(!rule_matches(&wild, &CM), "scope Cluster");
        let other = rule(
            json!({"apiGroups": ["apps"], "apiVersions": ["*"], "resources": ["*"], "operations": ["*"]}),
        );
        assert!(!rule_matches(&other, &CM));
    }

    #[test]
    fn subresources_match_only_when_named() {
        let status = Coordinates {
            resource: "deployments",
            subresource: "status",
            operation: "UPDATE",
            ..CM
        };
        let with = |resources: Value| {
            rule(
                json!({"apiGroups": ["*"], "apiVersions": ["*"], "resources": resources, "operations": ["*"]}),
            )
        };
        assert!(!rule_matches(&with(json!(["deployments"])), &status));
        assert!(!rule_matches(&with(json!(["*"])), &status));
        assert!(rule_matches(&with(json!(["deployments/status"])), &status));
        assert!(rule_matches(&with(json!(["deployments/*"])), &status));
        assert!(rule_matches(&with(json!(["*/status"])), &status));
        assert!(rule_matches(&with(json!(["*/*"])), &status));
        assert!(!rule_matches(&with(json!(["deployments/scale"])), &status));
        assert!(!rule_matches(&with(json!(["*/status"])), &CM));
    }

    #[test]
    fn label_selectors_match_like_kube() {
        let sel = |v: Value| -> LabelSelector { serde_json::from_value(v).unwrap() };
        let labels = json!({"env": "prod", "team": "a"});
        let l = Some(&labels);
        assert!(selector_matches(&sel(json!({})), None));
        assert!(selector_matches(
            &sel(json!({"matchLabels": {"env": "prod"}})),
            l
        ));
        assert!(!selector_matches(
            &sel(json!({"matchLabels": {"env": "dev"}})),
            l
        ));
        let expr = |op: &str, values: Value| {
            sel(json!({"matchExpressions": [{"key": "env", "operator": op, "values": values}]}))
        };
        assert!(selector_matches(&expr("In", json!(["dev", "prod"])), l));
        assert!(!selector_matches(&expr("NotIn", json!(["prod"])), l));
        assert!(selector_matches(&expr("NotIn", json!(["prod"])), None));
        assert!(selector_matches(&expr("Exists", json!([])), l));
        assert!(!selector_matches(&expr("DoesNotExist", json!([])), l));
        assert!(!selector_matches(&expr("Bogus", json!([])), l));
        // objectSelector: the old object's labels count too
        let s = sel(json!({"matchLabels": {"env": "prod"}}));
        let new = json!({"metadata": {"labels": {"env": "dev"}}});
        let old = json!({"metadata": {"labels": labels}});
        assert!(object_matches(Some(&s), Some(&new), Some(&old)));
        assert!(!object_matches(Some(&s), Some(&new), None));
        assert!(object_matches(None, Some(&new), None));
    }
}
