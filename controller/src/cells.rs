//! Cells: for every `cellfed.io/v1alpha1` Cell, a derived KubeFedCluster `<cell>.<namespace>` in
//! the federation namespace with the base cluster's access (endpoint, CA, secret, proxy, TLS
//! settings), the labels `cellfed.io/cell`, `cellfed.io/tenant`, `cellfed.io/workspace`, and the
//! cell's member namespace as an annotation. Derived clusters of deleted Cells are removed. The
//! derived cluster is probed like any member, so its health mirrors the base cluster's. Each
//! Cell's `status` says its `derivedClusterName` and whether it is `Ready` (the derived cluster
//! exists and is ready; otherwise why not). Reads come from the host caches; only a difference
//! is written.
//!
//! Tenancy is re-checked on every change of a Cell, a Namespace or a KubeFedCluster (admission
//! may have been bypassed, or the Cell predates it): a Cell whose base cluster belongs to another
//! tenant or whose member namespace is not its tenant's (`cellfed_api::tenancy`) reads
//! `Ready=False`, reason `TenantMismatch`, and its derived cluster is refused
//! ([`refusals`]): the controller builds no client for it and no federated resource propagates
//! through it (their status reads `TenantMismatch` there). So is a derived cluster whose Cell is
//! unknown or which does not (yet) say what its Cell says.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cellfed_api::features::FeatureGate;
use cellfed_api::kubefed::{ConditionStatus, KubeFedCluster};
use cellfed_api::tenancy::{Tenancy, member_namespace_problem};
use cellfed_api::well_known::{CELL_LABEL, TENANT_LABEL, WORKSPACE_LABEL};
use cellfed_api::{Cell, CellCondition, CellStatus};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};

use crate::context::Context;
use crate::members::MEMBER_NAMESPACE_ANNOTATION;
use crate::{Error, Result};

/// Field manager of the derived clusters.
const MANAGER: &str = "cellfed-cell-controller";

/// The derived KubeFedCluster of `cell` (pure): None when its base cluster is unknown.
pub fn derived_cluster(
    cell: &Cell,
    base: &KubeFedCluster,
    namespace_labels: Option<&BTreeMap<String, String>>,
    fed_namespace: &str,
) -> Option<Value> {
    let name = cell.derived_cluster_name().ok()?;
    let cell_ns = cell.namespace().unwrap_or_default();
    let tenancy = Tenancy::from_labels(namespace_labels);
    let mut labels = json!({ CELL_LABEL: cell.name_any() });
    if let Some(t) = tenancy.tenant {
        labels[TENANT_LABEL] = json!(t);
    }
    if let Some(w) = tenancy.workspace {
        labels[WORKSPACE_LABEL] = json!(w);
    }
    Some(json!({
        "apiVersion": "core.kubefed.io/v1beta1",
        "kind": "KubeFedCluster",
        "metadata": {
            "name": name,
            "namespace": fed_namespace,
            "labels": labels,
            "annotations": {
                MEMBER_NAMESPACE_ANNOTATION: cell.member_namespace(&cell_ns),
                "cellfed.io/base-cluster": base.name_any(),
            },
        },
        "spec": serde_json::to_value(&base.spec).ok()?,
    }))
}

/// Reason of a Cell (and of its resources' clusters) that fails the tenancy rules.
pub const TENANT_MISMATCH: &str = "TenantMismatch";

/// Why `cell` may not be used (pure), or None: with `isolation`, its base cluster must serve
/// the Cell's tenant ([`Tenancy::base_cluster_refusal`]); its member namespace must be its
/// tenant's ([`member_namespace_problem`]). `namespace_tenancy(ns)` is the tenancy of host
/// namespace `ns` (None when it does not exist); `cells` are all Cells.
pub fn tenancy_problem<'a>(
    cell: &Cell,
    base: Option<&KubeFedCluster>,
    namespace_tenancy: &dyn Fn(&str) -> Option<Tenancy>,
    cells: impl IntoIterator<Item = &'a Cell>,
    isolation: bool,
) -> Option<String> {
    let own = namespace_tenancy(&cell.namespace().unwrap_or_default()).unwrap_or_default();
    if isolation
        && let Some(base) = base
        && let Some(why) = own.base_cluster_refusal(
            &cell.spec.cluster_name,
            &Tenancy::from_labels(base.metadata.labels.as_ref()),
        )
    {
        return Some(why);
    }
    member_namespace_problem(cell, namespace_tenancy, cells, isolation)
}

/// Why each derived cluster may not be used, by cluster name (pure): its Cell fails
/// [`tenancy_problem`], or is unknown (`cells` is None while the Cells are not listed yet), or
/// the derived cluster does not say what its Cell says (tenancy labels, member namespace) until
/// [`sync`] rewrote it. A cluster is derived when it carries the `cellfed.io/cell` label or the
/// member-namespace annotation.
pub fn refusals_of(
    cells: Option<&[Arc<Cell>]>,
    clusters: &[Arc<KubeFedCluster>],
    namespace_tenancy: &dyn Fn(&str) -> Option<Tenancy>,
    isolation: bool,
) -> BTreeMap<String, String> {
    let by_name: BTreeMap<String, &KubeFedCluster> = clusters
        .iter()
        .map(|c| (c.name_any(), c.as_ref()))
        .collect();
    let mut out = BTreeMap::new();
    for c in clusters {
        let member_ns = c.annotations().get(MEMBER_NAMESPACE_ANNOTATION);
        if !c.labels().contains_key(CELL_LABEL) && member_ns.is_none() {
            continue;
        }
        let name = c.name_any();
        let parts = cellfed_api::naming::split_cell_cluster(&name).ok();
        let cell = parts.zip(cells).and_then(|((cell, ns), cells)| {
            cells
                .iter()
                .find(|x| x.name_any() == cell && x.namespace().as_deref() == Some(ns))
        });
        let Some(cell) = cell else {
            out.insert(
                name.clone(),
                format!(
                    "cluster {name} stands for a Cell that is not known (deleted, or the Cells are not read yet); nothing is written through it"
                ),
            );
            continue;
        };
        let cell_ns = cell.namespace().unwrap_or_default();
        let base = by_name.get(&cell.spec.cluster_name).copied();
        let problem = tenancy_problem(
            cell,
            base,
            namespace_tenancy,
            cells.into_iter().flatten().map(|c| &**c),
            isolation,
        );
        if let Some(problem) = problem {
            out.insert(
                name,
                format!(
                    "Cell {cell_ns}/{}: {problem}; nothing is written through it",
                    cell.name_any()
                ),
            );
            continue;
        }
        let tenancy = namespace_tenancy(&cell_ns).unwrap_or_default();
        let stale = base.is_none()
            || member_ns.map(String::as_str) != Some(cell.member_namespace(&cell_ns))
            || (isolation && Tenancy::from_labels(Some(c.labels())) != tenancy);
        if stale {
            out.insert(
                name.clone(),
                format!(
                    "cluster {name} does not match its Cell {cell_ns}/{} (base cluster, tenancy labels or member namespace); it is used once the controller has rewritten it",
                    cell.name_any()
                ),
            );
        }
    }
    out
}

/// [`refusals_of`] over the host caches.
pub fn refusals(ctx: &Context) -> BTreeMap<String, String> {
    let cells = ctx.caches.cells_synced().then(|| ctx.caches.cells.state());
    let isolation = ctx.settings().gates.enabled(FeatureGate::TenantIsolation);
    refusals_of(
        cells.as_deref(),
        &ctx.caches.clusters.state(),
        &|ns| namespace_tenancy(ctx, ns),
        isolation,
    )
}

/// Tenancy of host namespace `ns` from the cache; None when it does not exist.
fn namespace_tenancy(ctx: &Context, ns: &str) -> Option<Tenancy> {
    ctx.caches
        .namespaces
        .get(&ObjectRef::<Namespace>::new(ns))
        .map(|n| Tenancy::from_labels(n.metadata.labels.as_ref()))
}

/// The status of `cell` (pure): `derivedClusterName` and the `Ready` condition from its tenancy
/// (`problem`, from [`tenancy_problem`]), its base cluster (`base_known`) and its derived
/// cluster as cached; the condition keeps its previous transition time while its status holds.
pub fn cell_status(
    cell: &Cell,
    base_known: bool,
    derived: Option<&KubeFedCluster>,
    problem: Option<&str>,
    now: Time,
) -> CellStatus {
    let name = cell.derived_cluster_name();
    let (ready, reason, message) = match (&name, base_known, derived) {
        (Err(e), _, _) => (
            false,
            "InvalidName",
            format!("the derived cluster name is invalid: {e}; rename the Cell"),
        ),
        (Ok(_), _, _) if problem.is_some() => (
            false,
            TENANT_MISMATCH,
            format!(
                "{}; nothing is propagated through this cell until it is fixed",
                problem.unwrap_or_default()
            ),
        ),
        (Ok(_), false, _) => (
            false,
            "ClusterNotFound",
            format!(
                "spec.clusterName: cluster {:?} is not a KubeFedCluster of the federation; join it (kubectl cellfed join) or fix the name",
                cell.spec.cluster_name
            ),
        ),
        (Ok(n), true, None) => (
            false,
            "DerivedClusterPending",
            format!("the derived cluster {n} is being created"),
        ),
        (Ok(n), true, Some(c)) if !c.is_ready() => {
            let why = c
                .status
                .as_ref()
                .and_then(|s| {
                    s.conditions
                        .iter()
                        .find(|c| c.type_ == cellfed_api::kubefed::ClusterConditionType::Ready)
                })
                .and_then(|c| c.message.clone())
                .unwrap_or_else(|| "not probed yet".into());
            (
                false,
                "ClusterNotReady",
                format!(
                    "the derived cluster {n} (cluster {:?}) is not ready: {why}",
                    cell.spec.cluster_name
                ),
            )
        }
        (Ok(n), true, Some(_)) => (
            true,
            "ClusterReady",
            format!("the derived cluster {n} is ready"),
        ),
    };
    let status = if ready {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    let previous = cell.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == cellfed_api::well_known::CONDITION_READY)
    });
    let transition = previous
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(now);
    CellStatus {
        conditions: vec![CellCondition {
            type_: cellfed_api::well_known::CONDITION_READY.into(),
            status,
            last_transition_time: Some(transition),
            reason: Some(reason.into()),
            message: Some(message),
        }],
        derived_cluster_name: name.ok(),
        observed_generation: cell.metadata.generation,
    }
}

/// Whether two Cell statuses say the same, transition times aside (pure).
fn same_status(current: Option<&CellStatus>, next: &CellStatus) -> bool {
    let strip = |s: &CellStatus| {
        let mut s = s.clone();
        for c in &mut s.conditions {
            c.last_transition_time = None;
        }
        s
    };
    current.is_some_and(|c| strip(c) == strip(next))
}

/// Brings the derived clusters in line with the cached Cells, KubeFedClusters and Namespaces,
/// and writes each Cell's status when it changed; returns how many objects were written or
/// removed.
pub async fn sync(ctx: &Context) -> Result<usize> {
    if !ctx.caches.cells_synced() {
        return Ok(0); // the Cell CRD is not served (yet)
    }
    let fed_namespace = &ctx.config.fed_namespace;
    let clusters: Api<KubeFedCluster> = Api::namespaced(ctx.host.clone(), fed_namespace);
    let existing = ctx.caches.clusters.state();
    let by_name: BTreeMap<String, &KubeFedCluster> = existing
        .iter()
        .map(|c| (c.name_any(), c.as_ref()))
        .collect();
    let mut wanted = BTreeSet::new();
    let mut writes = 0;
    let cells = ctx.caches.cells.state();
    let isolation = ctx.settings().gates.enabled(FeatureGate::TenantIsolation);
    for cell in &cells {
        let problem = tenancy_problem(
            cell,
            by_name.get(&cell.spec.cluster_name).copied(),
            &|ns| namespace_tenancy(ctx, ns),
            cells.iter().map(|c| &**c),
            isolation,
        );
        writes += write_status(ctx, cell, &by_name, problem.as_deref()).await;
        let Some(base) = by_name.get(&cell.spec.cluster_name) else {
            continue;
        };
        let cell_ns = cell.namespace().unwrap_or_default();
        let ns = ctx
            .caches
            .namespaces
            .get(&ObjectRef::<Namespace>::new(&cell_ns));
        let Some(desired) = derived_cluster(
            cell,
            base,
            ns.as_ref().and_then(|n| n.metadata.labels.as_ref()),
            fed_namespace,
        ) else {
            continue;
        };
        let name = desired["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        wanted.insert(name.clone());
        let current = by_name
            .get(&name)
            .map(|c| serde_json::to_value(c).unwrap_or_default());
        let same = current.as_ref().is_some_and(|c| {
            c["spec"] == desired["spec"]
                && c["metadata"]["labels"] == desired["metadata"]["labels"]
                && c["metadata"]["annotations"][MEMBER_NAMESPACE_ANNOTATION]
                    == desired["metadata"]["annotations"][MEMBER_NAMESPACE_ANNOTATION]
        });
        if !same && ctx.leadership.may_write() {
            // network: server-side apply of the derived cluster
            clusters
                .patch(
                    &name,
                    &PatchParams::apply(MANAGER).force(),
                    &Patch::Apply(&desired),
                )
                .await
                .map_err(|source| Error::WriteDerivedCluster {
                    name: name.clone(),
                    source,
                })?;
            writes += 1;
        }
    }
    for c in &existing {
        let derived = c.labels().contains_key(CELL_LABEL);
        if derived && !wanted.contains(&c.name_any()) && ctx.leadership.may_write() {
            // network: the Cell is gone
            let _ = clusters
                .delete(&c.name_any(), &DeleteParams::default())
                .await;
            writes += 1;
        }
    }
    Ok(writes)
}

/// Writes `cell`'s status when it changed; 1 when written.
async fn write_status(
    ctx: &Context,
    cell: &Cell,
    clusters: &BTreeMap<String, &KubeFedCluster>,
    problem: Option<&str>,
) -> usize {
    let derived = cell
        .derived_cluster_name()
        .ok()
        .and_then(|n| clusters.get(&n).copied());
    let next = cell_status(
        cell,
        clusters.contains_key(&cell.spec.cluster_name),
        derived,
        problem,
        Time(k8s_openapi::jiff::Timestamp::now()),
    );
    if same_status(cell.status.as_ref(), &next) || !ctx.leadership.may_write() {
        return 0;
    }
    let Some(ns) = cell.namespace() else { return 0 };
    let api: Api<Cell> = Api::namespaced(ctx.host.clone(), &ns);
    // network: Cell status, only when it changed
    match api
        .patch_status(
            &cell.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": next })),
        )
        .await
    {
        Ok(_) => 1,
        Err(e) => {
            tracing::debug!(cell = %cell.name_any(), error = %e, "writing cell status");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_cluster_copies_access_and_labels_tenancy() {
        let cell: Cell = serde_json::from_value(json!({
            "apiVersion": "cellfed.io/v1alpha1", "kind": "Cell",
            "metadata": {"name": "rz00a", "namespace": "team-a"},
            "spec": {"clusterName": "member1", "memberNamespace": "team-a-rz00a"}
        }))
        .unwrap();
        let base: KubeFedCluster = serde_json::from_value(json!({
            "apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
            "metadata": {"name": "member1", "namespace": "kube-federation-system"},
            "spec": {"apiEndpoint": "https://127.0.0.1:1234", "secretRef": {"name": "member1-secret"}}
        }))
        .unwrap();
        let labels = BTreeMap::from([("cellfed.io/tenant".to_string(), "a".to_string())]);
        let d = derived_cluster(&cell, &base, Some(&labels), "kube-federation-system").unwrap();
        assert_eq!(d["metadata"]["name"], "rz00a.team-a");
        assert_eq!(d["metadata"]["labels"]["cellfed.io/cell"], "rz00a");
        assert_eq!(d["metadata"]["labels"]["cellfed.io/tenant"], "a");
        assert_eq!(
            d["metadata"]["annotations"][MEMBER_NAMESPACE_ANNOTATION],
            "team-a-rz00a"
        );
        assert_eq!(d["spec"]["apiEndpoint"], "https://127.0.0.1:1234");
        assert_eq!(d["spec"]["secretRef"]["name"], "member1-secret");
    }

    #[test]
    fn cell_status_says_why_it_is_not_ready() {
        let mut cell: Cell = serde_json::from_value(json!({
            "apiVersion": "cellfed.io/v1alpha1", "kind": "Cell",
            "metadata": {"name": "rz00a", "namespace": "team-a", "generation": 3},
            "spec": {"clusterName": "member1"}
        }))
        .unwrap();
        let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(1).unwrap());
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(2).unwrap());
        let reason = |s: &CellStatus| s.conditions[0].reason.clone().unwrap();
        let s = cell_status(&cell, false, None, None, t0.clone());
        assert_eq!(reason(&s), "ClusterNotFound");
        assert!(
            s.conditions[0]
                .message
                .as_deref()
                .unwrap()
                .contains("member1")
        );
        assert_eq!(s.derived_cluster_name.as_deref(), Some("rz00a.team-a"));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(
            reason(&cell_status(&cell, true, None, None, t0.clone())),
            "DerivedClusterPending"
        );
        let mut derived: KubeFedCluster = serde_json::from_value(json!({
            "apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
            "metadata": {"name": "rz00a.team-a", "namespace": "kube-federation-system"},
            "spec": {"apiEndpoint": "https://127.0.0.1:1234", "secretRef": {"name": "s"}},
            "status": {"conditions": [{"type": "Ready", "status": "False", "message": "connection refused"}]}
        }))
        .unwrap();
        let s = cell_status(&cell, true, Some(&derived), None, t0.clone());
        assert_eq!(reason(&s), "ClusterNotReady");
        assert!(
            s.conditions[0]
                .message
                .as_deref()
                .unwrap()
                .contains("connection refused")
        );
        cell.status = Some(s.clone());
        // the same status later keeps its transition time and is no change
        let again = cell_status(&cell, true, Some(&derived), None, t1.clone());
        assert_eq!(again.conditions[0].last_transition_time, Some(t0));
        assert!(same_status(cell.status.as_ref(), &again));
        derived.status.as_mut().unwrap().conditions[0].status = ConditionStatus::True;
        let ready = cell_status(&cell, true, Some(&derived), None, t1.clone());
        assert_eq!(ready.conditions[0].status, ConditionStatus::True);
        assert_eq!(ready.conditions[0].last_transition_time, Some(t1));
        assert!(!same_status(cell.status.as_ref(), &ready));
    }

    fn cluster(
        name: &str,
        labels: serde_json::Value,
        member_ns: Option<&str>,
    ) -> Arc<KubeFedCluster> {
        let annotations = member_ns.map_or(json!({}), |m| json!({MEMBER_NAMESPACE_ANNOTATION: m}));
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
                "metadata": {"name": name, "namespace": "kube-federation-system",
                             "labels": labels, "annotations": annotations},
                "spec": {"apiEndpoint": "https://127.0.0.1:1234", "secretRef": {"name": "s"}}
            }))
            .unwrap(),
        )
    }

    fn cell(ns: &str, name: &str, base: &str, member_ns: Option<&str>) -> Arc<Cell> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "cellfed.io/v1alpha1", "kind": "Cell",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"clusterName": base, "memberNamespace": member_ns}
            }))
            .unwrap(),
        )
    }

    /// Host namespaces: acme (tenant acme), demo (tenant demo).
    fn host(ns: &str) -> Option<Tenancy> {
        let tenant = |t: &str| Tenancy {
            tenant: Some(t.into()),
            workspace: None,
        };
        match ns {
            "acme" => Some(tenant("acme")),
            "demo" => Some(tenant("demo")),
            _ => None,
        }
    }

    /// Issue 9: a Cell that admission should have refused (or that became wrong later) is
    /// refused by the controller: its derived cluster is used by no resource.
    #[test]
    fn derived_clusters_of_cells_failing_tenancy_are_refused() {
        let shared = cluster("member1", json!({}), None);
        let globex = cluster("member2", json!({TENANT_LABEL: "globex"}), None);
        let acme = json!({CELL_LABEL: "c", TENANT_LABEL: "acme"});
        let cells = vec![
            // fine: shared base, own prefix
            cell("acme", "ok", "member1", Some("acme-ok")),
            // bypass 1: another tenant's namespace
            cell("acme", "evil", "member1", Some("demo")),
            // bypass 2: the base cluster was relabelled to another tenant
            cell("acme", "moved", "member2", None),
        ];
        let clusters = vec![
            shared,
            globex,
            cluster("ok.acme", acme.clone(), Some("acme-ok")),
            cluster("evil.acme", acme.clone(), Some("demo")),
            cluster("moved.acme", acme.clone(), Some("acme")),
            // a derived cluster whose Cell is gone
            cluster("gone.acme", acme.clone(), Some("acme")),
        ];
        let refused = refusals_of(Some(cells.as_slice()), &clusters, &host, true);
        assert_eq!(
            refused.keys().map(String::as_str).collect::<Vec<_>>(),
            ["evil.acme", "gone.acme", "moved.acme"]
        );
        assert!(
            refused["evil.acme"]
                .starts_with("Cell acme/evil: spec.memberNamespace: namespace \"demo\""),
            "{}",
            refused["evil.acme"]
        );
        assert!(
            refused["moved.acme"]
                .contains("spec.clusterName: cluster \"member2\" belongs to another tenant"),
            "{}",
            refused["moved.acme"]
        );
        assert!(
            !refused["moved.acme"].contains("globex"),
            "{}",
            refused["moved.acme"]
        );
        // until the Cells are listed, no derived cluster is trusted; plain clusters always are
        let unknown = refusals_of(None, &clusters, &host, true);
        assert!(unknown.contains_key("ok.acme") && !unknown.contains_key("member1"));
        // a derived cluster relabelled by hand (another tenant) is refused until rewritten
        let mut relabelled = clusters.clone();
        relabelled[2] = cluster(
            "ok.acme",
            json!({CELL_LABEL: "c", TENANT_LABEL: "demo"}),
            Some("acme-ok"),
        );
        assert!(
            refusals_of(Some(cells.as_slice()), &relabelled, &host, true).contains_key("ok.acme")
        );
        // without TenantIsolation only reserved namespaces and unknown Cells are refused
        let off = refusals_of(Some(cells.as_slice()), &clusters, &host, false);
        assert_eq!(
            off.keys().map(String::as_str).collect::<Vec<_>>(),
            ["gone.acme"]
        );
    }

    #[test]
    fn a_cell_failing_tenancy_reads_tenant_mismatch() {
        let c = cell("acme", "evil", "member1", Some("demo"));
        let problem = tenancy_problem(&c, None, &host, [&*c], true).unwrap();
        let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(1).unwrap());
        let s = cell_status(&c, true, None, Some(&problem), t0);
        assert_eq!(s.conditions[0].reason.as_deref(), Some(TENANT_MISMATCH));
        assert_eq!(s.conditions[0].status, ConditionStatus::False);
        assert!(
            s.conditions[0]
                .message
                .as_deref()
                .unwrap()
                .contains("spec.memberNamespace"),
            "{s:?}"
        );
    }
}
