//! Which clusters a federated resource is placed on, and which of them this change may touch.
//!
//! KubeFed semantics: `placement.clusters` given → exactly those (the selector is ignored);
//! otherwise `clusterSelector` — an empty selector `{}` selects every cluster, an absent one none.
//! cellfed's `placementMask`: without a mask every cluster may be written; with one, create and
//! update only `mask ∩ placed`, delete only `mask \ placed`.
//!
//! Namespace placement (KubeFed's `ComputeNamespacedPlacement`): a namespaced resource whose
//! namespace has a FederatedNamespace is placed on the intersection of both placements. Without
//! a FederatedNamespace the resource's placement holds verbatim (KubeFed does so only when its
//! control plane is namespace-scoped; cellfed always, see docs/kubefed-compat.md). A cell's
//! derived cluster keeps its objects in the cell's member namespace, which the FederatedNamespace
//! does not govern, so it is never dropped by the intersection.

use std::collections::{BTreeMap, BTreeSet};

use cellfed_api::federated::v1beta1::FederatedSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::ClusterView;

/// Where a resource goes, with why it does not go where it asked to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placed {
    /// Clusters to propagate to.
    pub clusters: BTreeSet<String>,
    /// Clusters the resource places but its namespace's FederatedNamespace does not.
    pub outside_namespace: BTreeSet<String>,
    /// Names in `placement.clusters` of no known cluster (not joined yet, or not the tenant's).
    pub unknown: BTreeSet<String>,
}

/// The effective placement of a resource among `clusters`: its own placement, intersected with
/// its FederatedNamespace's (`namespace`, for namespaced target types) when there is one.
pub fn effective(
    spec: &FederatedSpec,
    namespace: Option<&FederatedSpec>,
    clusters: &[ClusterView],
) -> Result<Placed, String> {
    let own = placed(spec, clusters)?;
    let unknown = spec
        .placement_clusters()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| !clusters.iter().any(|c| c.name == *n))
        .map(str::to_string)
        .collect();
    let Some(ns_spec) = namespace else {
        return Ok(Placed {
            clusters: own,
            outside_namespace: BTreeSet::new(),
            unknown,
        });
    };
    let of_namespace =
        placed(ns_spec, clusters).map_err(|e| format!("of the FederatedNamespace: {e}"))?;
    let (inside, outside) = own.into_iter().partition(|name| {
        of_namespace.contains(name)
            || clusters
                .iter()
                .any(|c| c.name == *name && c.member_namespace.is_some())
    });
    Ok(Placed {
        clusters: inside,
        outside_namespace: outside,
        unknown,
    })
}

/// Names of the clusters `spec` places the resource on, among `clusters`.
pub fn placed(spec: &FederatedSpec, clusters: &[ClusterView]) -> Result<BTreeSet<String>, String> {
    let known = |name: &str| clusters.iter().any(|c| c.name == name);
    if let Some(names) = spec.placement_clusters() {
        return Ok(names
            .into_iter()
            .filter(|n| known(n))
            .map(str::to_string)
            .collect());
    }
    let Some(selector) = spec
        .placement
        .as_ref()
        .and_then(|p| p.cluster_selector.as_ref())
    else {
        return Ok(BTreeSet::new());
    };
    let mut out = BTreeSet::new();
    for c in clusters {
        if matches(selector, &c.labels)? {
            out.insert(c.name.clone());
        }
    }
    Ok(out)
}

/// Whether the mask lets this change touch `cluster` (no mask = every cluster).
pub fn in_mask(spec: &FederatedSpec, cluster: &str) -> bool {
    spec.mask_clusters()
        .is_none_or(|mask| mask.contains(&cluster))
}

/// Whether `labels` satisfy a Kubernetes label selector; a malformed selector is an error.
pub fn matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Result<bool, String> {
    for (k, v) in selector.match_labels.iter().flatten() {
        if labels.get(k) != Some(v) {
            return Ok(false);
        }
    }
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.as_deref().unwrap_or_default();
        let value = labels.get(&expr.key);
        let ok = match expr.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => {
                return Err(format!(
                    "clusterSelector: unknown operator {other:?} for key {:?} (use In, NotIn, Exists or DoesNotExist)",
                    expr.key
                ));
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster(name: &str, labels: &[(&str, &str)]) -> ClusterView {
        ClusterView {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ready: true,
            member_namespace: None,
            endpoint: None,
        }
    }

    fn spec(v: serde_json::Value) -> FederatedSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn clusters_win_over_selector_and_unknown_names_are_dropped() {
        let cs = [cluster("a", &[("env", "prod")]), cluster("b", &[])];
        let s = spec(
            json!({"placement": {"clusters": [{"name": "b"}, {"name": "zz"}], "clusterSelector": {"matchLabels": {"env": "prod"}}}}),
        );
        assert_eq!(placed(&s, &cs).unwrap(), BTreeSet::from(["b".to_string()]));
    }

    #[test]
    fn selector_semantics() {
        let cs = [
            cluster("a", &[("env", "prod"), ("region", "eu")]),
            cluster("b", &[("env", "dev")]),
            cluster("c", &[]),
        ];
        let all = spec(json!({"placement": {"clusterSelector": {}}}));
        assert_eq!(placed(&all, &cs).unwrap().len(), 3);
        let none = spec(json!({"placement": {}}));
        assert!(placed(&none, &cs).unwrap().is_empty());
        let expr = spec(
            json!({"placement": {"clusterSelector": {"matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "region", "operator": "DoesNotExist"}]}}}),
        );
        assert_eq!(
            placed(&expr, &cs).unwrap(),
            BTreeSet::from(["b".to_string()])
        );
        let notin = spec(
            json!({"placement": {"clusterSelector": {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}}}),
        );
        assert_eq!(
            placed(&notin, &cs).unwrap(),
            BTreeSet::from(["b".to_string(), "c".to_string()])
        );
        let bad = spec(
            json!({"placement": {"clusterSelector": {"matchExpressions": [{"key": "env", "operator": "Near"}]}}}),
        );
        assert!(placed(&bad, &cs).unwrap_err().contains("Near"));
    }

    /// KubeFed's `ComputeNamespacedPlacement` (pkg/controller/util/placement.go) with a
    /// FederatedNamespace: the intersection; mirrors KubeFed's e2e "Placement should be computed
    /// from namespace and resource placement".
    #[test]
    fn namespace_placement_intersects() {
        let mut cell = cluster("rz00a.demo", &[]);
        cell.member_namespace = Some("demo-rz00a".into());
        let cs = [
            cluster("member1", &[("env", "prod")]),
            cluster("member2", &[]),
            cell,
        ];
        let resource = spec(
            json!({"placement": {"clusters": [{"name": "member1"}, {"name": "member2"}, {"name": "rz00a.demo"}, {"name": "member9"}]}}),
        );
        let ns = spec(json!({"placement": {"clusters": [{"name": "member1"}]}}));
        let p = effective(&resource, Some(&ns), &cs).unwrap();
        let set = |v: &[&str]| v.iter().map(ToString::to_string).collect::<BTreeSet<_>>();
        assert_eq!(p.clusters, set(&["member1", "rz00a.demo"]));
        assert_eq!(p.outside_namespace, set(&["member2"]));
        assert_eq!(p.unknown, set(&["member9"]));
        // by selector on both sides
        let everywhere = spec(json!({"placement": {"clusterSelector": {}}}));
        let prod =
            spec(json!({"placement": {"clusterSelector": {"matchLabels": {"env": "prod"}}}}));
        let p = effective(&everywhere, Some(&prod), &cs).unwrap();
        assert_eq!(p.clusters, set(&["member1", "rz00a.demo"]));
        assert_eq!(p.outside_namespace, set(&["member2"]));
        // a FederatedNamespace placed nowhere keeps the resource out of every plain cluster
        let nowhere = spec(json!({"placement": {"clusters": []}}));
        let p = effective(&everywhere, Some(&nowhere), &cs).unwrap();
        assert_eq!(p.clusters, set(&["rz00a.demo"]));
        // without a FederatedNamespace the resource's placement holds
        let p = effective(&everywhere, None, &cs).unwrap();
        assert_eq!(p.clusters.len(), 3);
        assert!(p.outside_namespace.is_empty());
        // a bad selector on the FederatedNamespace says so
        let bad = spec(
            json!({"placement": {"clusterSelector": {"matchExpressions": [{"key": "env", "operator": "Near"}]}}}),
        );
        assert!(
            effective(&everywhere, Some(&bad), &cs)
                .unwrap_err()
                .contains("FederatedNamespace")
        );
    }

    #[test]
    fn mask_limits_what_may_be_touched() {
        let s = spec(json!({"placementMask": {"clusters": [{"name": "rz00a.ns"}]}}));
        assert!(in_mask(&s, "rz00a.ns"));
        assert!(!in_mask(&s, "rz01a.ns"));
        assert!(in_mask(&spec(json!({})), "anything"));
    }
}
