//! Validating admission of federated resources, Cells and KubeFedClusters. The decision is a pure
//! function of the object and the [`Facts`] read from the host (Cells, KubeFedClusters, namespace
//! labels); [`crate::facts`] builds them from watch-fed caches, [`references`] says which names a
//! decision looks up.

use std::collections::{BTreeMap, BTreeSet};

use cellfed_api::Cell;
use cellfed_api::federated::v1beta1::FederatedSpec;
use cellfed_api::federated::v1beta2::{TopologySpec, TopologyType};
use cellfed_api::federated::validate::{validate_v1beta1, validate_v1beta2};
use cellfed_api::kubefed::{KubeFedCluster, TlsValidation};
use cellfed_api::tenancy::Tenancy;
use cellfed_api::well_known::{TYPES_GROUP, TYPES_V1BETA2};
use kube::ResourceExt;
use serde_json::{Value, json};

/// What the decision needs from the host.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// KubeFedClusters of the federation namespace: name → labels.
    pub clusters: BTreeMap<String, BTreeMap<String, String>>,
    /// Every Cell.
    pub cells: Vec<Cell>,
    /// Namespace → labels.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// TenantIsolation gate.
    pub tenant_isolation: bool,
}

/// A refusal: HTTP code, reason and the sentence users see.
#[derive(Clone, Debug, PartialEq)]
pub struct Denial {
    /// 403 for tenancy, 422 for invalid specs.
    pub code: u16,
    /// `Forbidden` or `Invalid`.
    pub reason: &'static str,
    /// Names the field and the fix.
    pub message: String,
}

fn invalid(message: String) -> Denial {
    Denial {
        code: 422,
        reason: "Invalid",
        message,
    }
}

/// Decides on one object of `group`/`kind` in `namespace` (pure).
pub fn decide(
    group: &str,
    kind: &str,
    namespace: Option<&str>,
    obj: &Value,
    facts: &Facts,
) -> Result<(), Denial> {
    match (group, kind) {
        (TYPES_GROUP, _) => federated(namespace, obj, facts),
        ("cellfed.io", "Cell") => cell(obj, facts),
        ("core.kubefed.io", "KubeFedCluster") => cluster(obj),
        _ => Ok(()),
    }
}

fn federated(namespace: Option<&str>, obj: &Value, facts: &Facts) -> Result<(), Denial> {
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let spec_value = obj.get("spec").cloned().unwrap_or(json!({}));
    let tenancy = match namespace {
        Some(ns) => Tenancy::from_labels(facts.namespaces.get(ns)),
        None => Tenancy::from_labels(
            obj.pointer("/metadata/labels")
                .and_then(|l| serde_json::from_value::<BTreeMap<String, String>>(l.clone()).ok())
                .as_ref(),
        ),
    };
    let v1beta1 = if api_version == format!("{TYPES_GROUP}/{TYPES_V1BETA2}") {
        let spec: TopologySpec =
            serde_json::from_value(spec_value).map_err(|e| invalid(format!("spec: {e}")))?;
        let errors = validate_v1beta2(&spec, namespace);
        if !errors.is_empty() {
            return Err(invalid(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        if spec.topology_type() == TopologyType::Cell {
            let ns = namespace.unwrap_or_default();
            for (field, topo) in topology_names(&spec) {
                let known = facts
                    .cells
                    .iter()
                    .any(|c| c.name_any() == topo && c.namespace().as_deref() == Some(ns));
                if !known {
                    return Err(invalid(format!(
                        "{field}: cell {topo:?} does not exist in namespace {ns:?}; create the Cell (cellfed.io/v1alpha1) or fix the name"
                    )));
                }
            }
        }
        cellfed_api::convert(obj, &format!("{TYPES_GROUP}/v1beta1"))
            .map_err(|e| invalid(e.to_string()))?
    } else {
        obj.clone()
    };
    let spec: FederatedSpec =
        serde_json::from_value(v1beta1.get("spec").cloned().unwrap_or(json!({})))
            .map_err(|e| invalid(format!("spec: {e}")))?;
    let errors = validate_v1beta1(&spec);
    if !errors.is_empty() {
        return Err(invalid(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    let mut names: Vec<(&str, &str)> = Vec::new();
    for c in spec.placement_clusters().unwrap_or_default() {
        names.push(("spec.placement.clusters", c));
    }
    for c in spec.mask_clusters().unwrap_or_default() {
        names.push(("spec.placementMask.clusters", c));
    }
    for (field, cluster) in names {
        // A cluster not joined yet is accepted, as in KubeFed (GitOps manifests name every
        // cluster): the resource's status says `ClusterNotFound` until it joins.
        let Some(labels) = cluster_labels(cluster, facts) else {
            continue;
        };
        if facts.tenant_isolation {
            let of_cluster = Tenancy::from_labels(Some(&labels));
            if let Some(why) = tenancy.refusal(
                &format!(
                    "{} {name:?}",
                    obj.get("kind")
                        .and_then(Value::as_str)
                        .unwrap_or("resource")
                ),
                cluster,
                &of_cluster,
            ) {
                return Err(Denial {
                    code: 403,
                    reason: "Forbidden",
                    message: format!("{field}: {why}"),
                });
            }
        }
    }
    Ok(())
}

/// Labels of a cluster: a KubeFedCluster's, or for `<cell>.<ns>` not derived yet, the tenancy of
/// the Cell's namespace.
fn cluster_labels(cluster: &str, facts: &Facts) -> Option<BTreeMap<String, String>> {
    if let Some(l) = facts.clusters.get(cluster) {
        return Some(l.clone());
    }
    let (cell, ns) = cellfed_api::naming::split_cell_cluster(cluster).ok()?;
    facts
        .cells
        .iter()
        .any(|c| c.name_any() == cell && c.namespace().as_deref() == Some(ns))
        .then(|| facts.namespaces.get(ns).cloned().unwrap_or_default())
}

fn topology_names(spec: &TopologySpec) -> Vec<(String, String)> {
    let v = serde_json::to_value(spec).unwrap_or_default();
    let mut out = Vec::new();
    for (path, field) in [
        ("/placement/topologies", "spec.placement.topologies"),
        ("/placementMask/topologies", "spec.placementMask.topologies"),
    ] {
        for (i, t) in v
            .pointer(path)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(n) = t.get("name").and_then(Value::as_str) {
                out.push((format!("{field}[{i}].name"), n.to_string()));
            }
        }
    }
    for (i, o) in v
        .get("overrides")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(n) = o.get("topologyName").and_then(Value::as_str) {
            out.push((format!("spec.overrides[{i}].topologyName"), n.to_string()));
        }
    }
    out
}

fn cell(obj: &Value, facts: &Facts) -> Result<(), Denial> {
    let cell: Cell =
        serde_json::from_value(obj.clone()).map_err(|e| invalid(format!("Cell: {e}")))?;
    let ns = cell.namespace().unwrap_or_default();
    let name = cell.name_any();
    let Some(base) = facts.clusters.get(&cell.spec.cluster_name) else {
        return Err(invalid(format!(
            "spec.clusterName: cluster {:?} is not a KubeFedCluster of the federation; join it first or fix the name",
            cell.spec.cluster_name
        )));
    };
    let forbidden = |message| Denial {
        code: 403,
        reason: "Forbidden",
        message,
    };
    if facts.tenant_isolation {
        let own = Tenancy::from_labels(facts.namespaces.get(&ns));
        let theirs = Tenancy::from_labels(Some(base));
        if let Some(why) = own.base_cluster_refusal(&cell.spec.cluster_name, &theirs) {
            return Err(forbidden(why));
        }
    }
    // the member namespace belongs to the Cell's tenant (the controller re-checks the same rule)
    let tenancy_of = |n: &str| {
        facts
            .namespaces
            .get(n)
            .map(|labels| Tenancy::from_labels(Some(labels)))
    };
    if let Some(why) = cellfed_api::tenancy::member_namespace_problem(
        &cell,
        tenancy_of,
        &facts.cells,
        facts.tenant_isolation,
    ) {
        return Err(forbidden(why));
    }
    let target_ns = cell.member_namespace(&ns).to_string();
    for other in &facts.cells {
        let same = other.name_any() == name && other.namespace().as_deref() == Some(ns.as_str());
        let other_ns = other.namespace().unwrap_or_default();
        if !same
            && other.spec.cluster_name == cell.spec.cluster_name
            && other.member_namespace(&other_ns) == target_ns
        {
            return Err(invalid(format!(
                "spec.memberNamespace: cell {other_ns}/{} already uses namespace {target_ns:?} of cluster {:?}; give this cell its own spec.memberNamespace",
                other.name_any(),
                cell.spec.cluster_name
            )));
        }
    }
    Ok(())
}

/// KubeFed's KubeFedCluster validation: `apiEndpoint` a URL or a bare `host[:port]` (which means
/// https), `secretRef.name` set, `*` alone in `disabledTLSValidations`, `proxyURL` http(s) or
/// socks5.
fn cluster(obj: &Value) -> Result<(), Denial> {
    let c: KubeFedCluster =
        serde_json::from_value(obj.clone()).map_err(|e| invalid(format!("KubeFedCluster: {e}")))?;
    if let Err(why) = cellfed_api::kubefed::api_endpoint_url(&c.spec.api_endpoint) {
        return Err(invalid(format!("spec.apiEndpoint: {why}")));
    }
    let validations = &c.spec.disabled_tls_validations;
    if validations.contains(&TlsValidation::All) && validations.len() > 1 {
        return Err(invalid(
            "spec.disabledTLSValidations: when * is given it must be the only entry (it disables every check)".into(),
        ));
    }
    if let Some(proxy) = &c.spec.proxy_url {
        let scheme = proxy.split_once("://").map(|(s, _)| s);
        if !matches!(scheme, Some("http" | "https" | "socks5")) {
            return Err(invalid(format!(
                "spec.proxyURL: {proxy:?} must be a URL with scheme http, https or socks5"
            )));
        }
    }
    if c.spec.secret_ref.name.is_empty() {
        return Err(invalid(
            "spec.secretRef.name: required; name the Secret holding the member's token".into(),
        ));
    }
    Ok(())
}

/// The objects a decision on `obj` looks up by name (pure). The admission caches answer them; a
/// name a synced cache lacks is read with one GET before deciding, so an object created a moment
/// ago (its watch event still in flight) is not refused as unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct References {
    /// Namespaces whose labels give a tenancy: the request's own.
    pub namespaces: BTreeSet<String>,
    /// KubeFedClusters named by placement, placementMask or `spec.clusterName`.
    pub clusters: BTreeSet<String>,
    /// Cells named by a cell topology, as (namespace, name).
    pub cells: BTreeSet<(String, String)>,
}

/// Whether a decision on `group`/`kind` reads [`Facts`] at all (KubeFedClusters are checked on
/// their own spec; other groups are allowed).
pub fn uses_facts(group: &str, kind: &str) -> bool {
    matches!((group, kind), (TYPES_GROUP, _) | ("cellfed.io", "Cell"))
}

/// What [`decide`] will look up for `obj` (pure). A cluster named `<cell>.<namespace>` is listed
/// as a cluster only: the caller falls back to the Cell and its namespace when the derived
/// KubeFedCluster does not exist yet, as [`decide`] does.
pub fn references(group: &str, kind: &str, namespace: Option<&str>, obj: &Value) -> References {
    let mut refs = References::default();
    if !uses_facts(group, kind) {
        return refs;
    }
    if let Some(ns) = namespace {
        refs.namespaces.insert(ns.to_string());
    }
    if group == "cellfed.io" {
        if let Some(c) = obj.pointer("/spec/clusterName").and_then(Value::as_str) {
            refs.clusters.insert(c.to_string());
        }
        // a host namespace named like the member namespace is read from the cache only: a
        // member namespace usually has none, and a GET per miss would cost every Cell write a
        // request (the controller re-checks the rule on every change anyway)
        return refs;
    }
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let v1beta1 = if api_version == format!("{TYPES_GROUP}/{TYPES_V1BETA2}") {
        let spec = obj.get("spec").cloned().unwrap_or(json!({}));
        if let (Ok(spec), Some(ns)) = (serde_json::from_value::<TopologySpec>(spec), namespace)
            && spec.topology_type() == TopologyType::Cell
        {
            for (_, topo) in topology_names(&spec) {
                refs.cells.insert((ns.to_string(), topo));
            }
        }
        cellfed_api::convert(obj, &format!("{TYPES_GROUP}/v1beta1")).ok()
    } else {
        Some(obj.clone())
    };
    let spec =
        v1beta1.and_then(|o| serde_json::from_value::<FederatedSpec>(o.get("spec")?.clone()).ok());
    if let Some(spec) = spec {
        let placed = spec.placement_clusters().unwrap_or_default();
        let masked = spec.mask_clusters().unwrap_or_default();
        refs.clusters
            .extend(placed.into_iter().chain(masked).map(str::to_string));
    }
    refs
}

/// The AdmissionReview response for `uid` and a decision.
pub fn response(uid: &str, decision: Result<(), Denial>) -> Value {
    let mut r = json!({"uid": uid, "allowed": decision.is_ok()});
    if let Err(d) = decision {
        r["status"] =
            json!({"code": d.code, "reason": d.reason, "message": d.message, "status": "Failure"});
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": r})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        let cell = |name: &str, ns: &str, cluster: &str, member_ns: Option<&str>| -> Cell {
            serde_json::from_value(json!({"apiVersion": "cellfed.io/v1alpha1", "kind": "Cell", "metadata": {"name": name, "namespace": ns}, "spec": {"clusterName": cluster, "memberNamespace": member_ns}})).unwrap()
        };
        Facts {
            clusters: BTreeMap::from([
                (
                    "a1".to_string(),
                    BTreeMap::from([("cellfed.io/tenant".to_string(), "a".to_string())]),
                ),
                (
                    "b1".to_string(),
                    BTreeMap::from([("cellfed.io/tenant".to_string(), "b".to_string())]),
                ),
            ]),
            cells: vec![
                cell("rz00a", "team-a", "a1", Some("a-rz00a")),
                cell("rzb", "team-b", "b1", None),
            ],
            namespaces: BTreeMap::from([
                (
                    "team-a".to_string(),
                    BTreeMap::from([("cellfed.io/tenant".to_string(), "a".to_string())]),
                ),
                (
                    "team-b".to_string(),
                    BTreeMap::from([("cellfed.io/tenant".to_string(), "b".to_string())]),
                ),
            ]),
            tenant_isolation: true,
        }
    }

    fn fd(api_version: &str, spec: Value) -> Value {
        json!({"apiVersion": api_version, "kind": "FederatedDeployment", "metadata": {"name": "web", "namespace": "team-a"}, "spec": spec})
    }

    #[test]
    fn own_cells_and_clusters_are_allowed() {
        let f = facts();
        let ok = fd(
            "types.kubefed.io/v1beta2",
            json!({"topologyType": "cell", "template": {}, "placement": {"topologies": [{"name": "rz00a"}]}}),
        );
        assert_eq!(
            decide(
                "types.kubefed.io",
                "FederatedDeployment",
                Some("team-a"),
                &ok,
                &f
            ),
            Ok(())
        );
        let ok = fd(
            "types.kubefed.io/v1beta1",
            json!({"template": {}, "placement": {"clusters": [{"name": "a1"}]}}),
        );
        assert_eq!(
            decide(
                "types.kubefed.io",
                "FederatedDeployment",
                Some("team-a"),
                &ok,
                &f
            ),
            Ok(())
        );
    }

    #[test]
    fn another_tenants_cell_is_forbidden_and_says_why() {
        let f = facts();
        let bad = fd(
            "types.kubefed.io/v1beta1",
            json!({"template": {}, "placement": {"clusters": [{"name": "rzb.team-b"}]}}),
        );
        let d = decide(
            "types.kubefed.io",
            "FederatedDeployment",
            Some("team-a"),
            &bad,
            &f,
        )
        .unwrap_err();
        assert_eq!(d.code, 403);
        assert!(
            d.message.contains("spec.placement.clusters")
                && d.message.contains("rzb.team-b")
                && d.message.contains("is not available to tenant \"a\""),
            "{}",
            d.message
        );
        // the owner of the cluster is not the requester's to know
        assert!(!d.message.contains("tenant \"b\""), "{}", d.message);
        let bad = fd(
            "types.kubefed.io/v1beta1",
            json!({"template": {}, "placement": {"clusters": [{"name": "b1"}]}}),
        );
        let d = decide(
            "types.kubefed.io",
            "FederatedDeployment",
            Some("team-a"),
            &bad,
            &f,
        )
        .unwrap_err();
        assert_eq!(d.code, 403);
        assert!(
            d.message
                .contains("cluster \"b1\": the cluster is not available to tenant \"a\"")
                && !d.message.contains("tenant \"b\""),
            "{}",
            d.message
        );
    }

    #[test]
    fn unknown_topologies_and_cell_scope_are_invalid() {
        let f = facts();
        let bad = fd(
            "types.kubefed.io/v1beta2",
            json!({"topologyType": "cell", "template": {}, "placement": {"topologies": [{"name": "nope"}]}}),
        );
        let d = decide(
            "types.kubefed.io",
            "FederatedDeployment",
            Some("team-a"),
            &bad,
            &f,
        )
        .unwrap_err();
        assert!(
            d.message.contains("spec.placement.topologies[0].name")
                && d.message.contains("create the Cell"),
            "{}",
            d.message
        );
        // a cluster not joined yet is accepted (KubeFed does; GitOps manifests name them all)
        let later = fd(
            "types.kubefed.io/v1beta1",
            json!({"template": {}, "placement": {"clusters": [{"name": "ghost"}, {"name": "a1"}]},
                   "placementMask": {"clusters": [{"name": "ghost"}]}}),
        );
        assert_eq!(
            decide(
                "types.kubefed.io",
                "FederatedDeployment",
                Some("team-a"),
                &later,
                &f
            ),
            Ok(())
        );
        let mut ns_less = fd(
            "types.kubefed.io/v1beta2",
            json!({"topologyType": "cell", "template": {}, "placement": {"topologies": [{"name": "rz00a"}]}}),
        );
        ns_less["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("namespace");
        let d = decide(
            "types.kubefed.io",
            "FederatedClusterRole",
            None,
            &ns_less,
            &f,
        )
        .unwrap_err();
        assert!(d.message.contains("spec.topologyType"), "{}", d.message);
    }

    #[test]
    fn references_name_what_the_decision_looks_up() {
        let v2 = fd(
            "types.kubefed.io/v1beta2",
            json!({"topologyType": "cell", "template": {},
                   "placement": {"topologies": [{"name": "rz00a"}]},
                   "placementMask": {"topologies": [{"name": "rz00a"}]},
                   "overrides": [{"topologyName": "rz01a", "clusterOverrides": []}]}),
        );
        let refs = references(
            "types.kubefed.io",
            "FederatedDeployment",
            Some("team-a"),
            &v2,
        );
        let set = |v: &[&str]| v.iter().map(ToString::to_string).collect::<BTreeSet<_>>();
        assert_eq!(refs.namespaces, set(&["team-a"]));
        assert_eq!(refs.clusters, set(&["rz00a.team-a"]));
        assert_eq!(
            refs.cells,
            BTreeSet::from([
                ("team-a".to_string(), "rz00a".to_string()),
                ("team-a".to_string(), "rz01a".to_string())
            ])
        );
        let v1 = fd(
            "types.kubefed.io/v1beta1",
            json!({"template": {}, "placement": {"clusters": [{"name": "a1"}]},
                   "placementMask": {"clusters": [{"name": "b1"}]}}),
        );
        let refs = references(
            "types.kubefed.io",
            "FederatedDeployment",
            Some("team-a"),
            &v1,
        );
        assert_eq!(refs.clusters, set(&["a1", "b1"]));
        assert!(refs.cells.is_empty());
        let cell = json!({"apiVersion": "cellfed.io/v1alpha1", "kind": "Cell", "metadata": {"name": "x", "namespace": "team-a"}, "spec": {"clusterName": "b1"}});
        let refs = references("cellfed.io", "Cell", Some("team-a"), &cell);
        assert_eq!(refs.clusters, set(&["b1"]));
        assert_eq!(refs.namespaces, set(&["team-a"]));
        let kfc = json!({"apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster", "metadata": {"name": "a1"}});
        assert_eq!(
            references("core.kubefed.io", "KubeFedCluster", Some("x"), &kfc),
            References::default()
        );
    }

    /// KubeFed's `TestValidateAPIEndpoint` and `validateDisabledTLSValidations` as admission
    /// sees them.
    #[test]
    fn kubefed_clusters_are_validated_as_kubefed_does() {
        let kfc = |spec: Value| {
            json!({"apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
                   "metadata": {"name": "m1", "namespace": "kube-federation-system"}, "spec": spec})
        };
        let decide_on = |spec: Value| {
            decide(
                "core.kubefed.io",
                "KubeFedCluster",
                Some("kube-federation-system"),
                &kfc(spec),
                &Facts::default(),
            )
        };
        for ok in [
            "10.0.0.1:6443",
            "member.example.com",
            "https://[::1]:6443/prefix",
        ] {
            assert_eq!(
                decide_on(json!({"apiEndpoint": ok, "secretRef": {"name": "s"}})),
                Ok(()),
                "{ok}"
            );
        }
        assert_eq!(
            decide_on(
                json!({"apiEndpoint": "10.0.0.1:6443", "secretRef": {"name": "s"},
                             "disabledTLSValidations": ["SubjectName", "ValidityPeriod"]})
            ),
            Ok(())
        );
        let d = decide_on(json!({"apiEndpoint": "example.com/path", "secretRef": {"name": "s"}}))
            .unwrap_err();
        assert!(d.message.starts_with("spec.apiEndpoint:"), "{}", d.message);
        let d = decide_on(json!({"apiEndpoint": "ftp://example.com", "secretRef": {"name": "s"}}))
            .unwrap_err();
        assert!(d.message.contains("scheme"), "{}", d.message);
        let d = decide_on(json!({"apiEndpoint": "a:1", "secretRef": {"name": "s"},
                                 "disabledTLSValidations": ["*", "SubjectName"]}))
        .unwrap_err();
        assert!(
            d.message.contains("disabledTLSValidations"),
            "{}",
            d.message
        );
        let d = decide_on(json!({"apiEndpoint": "a:1", "secretRef": {"name": "s"},
                                 "proxyURL": "gopher://p:1"}))
        .unwrap_err();
        assert!(d.message.contains("spec.proxyURL"), "{}", d.message);
    }

    /// Issue 9: a Cell's member namespace belongs to its tenant (the rule is
    /// `cellfed_api::tenancy::member_namespace_problem`, which the controller re-checks).
    #[test]
    fn a_cell_may_not_write_into_another_tenants_or_a_system_namespace() {
        let f = facts();
        let cell = |member_ns: &str| {
            json!({"apiVersion": "cellfed.io/v1alpha1", "kind": "Cell",
                   "metadata": {"name": "rz05a", "namespace": "team-a"},
                   "spec": {"clusterName": "a1", "memberNamespace": member_ns}})
        };
        for (member_ns, says) in [
            ("team-b", "is not a namespace of this Cell's tenant"),
            ("b-rzb", "is not a namespace of this Cell's tenant"),
            ("kube-system", "reserved"),
            ("default", "reserved"),
        ] {
            let d = decide("cellfed.io", "Cell", Some("team-a"), &cell(member_ns), &f).unwrap_err();
            assert_eq!(d.code, 403, "{member_ns}: {}", d.message);
            assert!(
                d.message.starts_with("spec.memberNamespace:") && d.message.contains(says),
                "{member_ns}: {}",
                d.message
            );
            assert!(
                !d.message.contains("\"b\""),
                "names tenant b: {}",
                d.message
            );
        }
        // a host namespace of another tenant that happens to carry this tenant's prefix
        let mut f2 = f.clone();
        f2.namespaces.insert(
            "a-shared".into(),
            BTreeMap::from([("cellfed.io/tenant".to_string(), "b".to_string())]),
        );
        let d = decide("cellfed.io", "Cell", Some("team-a"), &cell("a-shared"), &f2).unwrap_err();
        assert_eq!(d.code, 403, "{}", d.message);
        // its own namespace (the default), <namespace>-… and <tenant>-… are fine
        for ok in ["team-a", "team-a-rz05a", "a-rz05a"] {
            assert_eq!(
                decide("cellfed.io", "Cell", Some("team-a"), &cell(ok), &f),
                Ok(()),
                "{ok}"
            );
        }
    }

    #[test]
    fn two_cells_on_one_member_namespace_are_refused() {
        let f = facts();
        let dup = json!({"apiVersion": "cellfed.io/v1alpha1", "kind": "Cell", "metadata": {"name": "rz01a", "namespace": "team-a"}, "spec": {"clusterName": "a1", "memberNamespace": "a-rz00a"}});
        let d = decide("cellfed.io", "Cell", Some("team-a"), &dup, &f).unwrap_err();
        assert!(
            d.message.contains("spec.memberNamespace") && d.message.contains("team-a/rz00a"),
            "{}",
            d.message
        );
        let ok = json!({"apiVersion": "cellfed.io/v1alpha1", "kind": "Cell", "metadata": {"name": "rz01a", "namespace": "team-a"}, "spec": {"clusterName": "a1", "memberNamespace": "a-rz01a"}});
        assert_eq!(
            decide("cellfed.io", "Cell", Some("team-a"), &ok, &f),
            Ok(())
        );
        let foreign = json!({"apiVersion": "cellfed.io/v1alpha1", "kind": "Cell", "metadata": {"name": "x", "namespace": "team-a"}, "spec": {"clusterName": "b1"}});
        assert_eq!(
            decide("cellfed.io", "Cell", Some("team-a"), &foreign, &f)
                .unwrap_err()
                .code,
            403
        );
    }
}
