//! Cells: for every `cellfed.io/v1alpha1` Cell, a derived KubeFedCluster `<cell>.<namespace>` in
//! the federation namespace with the base cluster's access (endpoint, CA, secret, proxy, TLS
//! settings), the labels `cellfed.io/cell`, `cellfed.io/tenant`, `cellfed.io/workspace`, and the
//! cell's member namespace as an annotation. Derived clusters of deleted Cells are removed. The
//! derived cluster is probed like any member, so its health mirrors the base cluster's. Each
//! Cell's `status` says its `derivedClusterName` and whether it is `Ready` (the derived cluster
//! exists and is ready; otherwise why not). Reads come from the host caches; only a difference
//! is written.

use std::collections::{BTreeMap, BTreeSet};

use cellfed_api::kubefed::{ConditionStatus, KubeFedCluster};
use cellfed_api::tenancy::Tenancy;
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

/// The status of `cell` (pure): `derivedClusterName` and the `Ready` condition from its base
/// cluster (`base_known`) and its derived cluster as cached; the condition keeps its previous
/// transition time while its status holds.
pub fn cell_status(
    cell: &Cell,
    base_known: bool,
    derived: Option<&KubeFedCluster>,
    now: Time,
) -> CellStatus {
    let name = cell.derived_cluster_name();
    let (ready, reason, message) = match (&name, base_known, derived) {
        (Err(e), _, _) => (
            false,
            "InvalidName",
            format!("the derived cluster name is invalid: {e}; rename the Cell"),
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
    for cell in ctx.caches.cells.state() {
        writes += write_status(ctx, &cell, &by_name).await;
        let Some(base) = by_name.get(&cell.spec.cluster_name) else {
            continue;
        };
        let cell_ns = cell.namespace().unwrap_or_default();
        let ns = ctx
            .caches
            .namespaces
            .get(&ObjectRef::<Namespace>::new(&cell_ns));
        let Some(desired) = derived_cluster(
            &cell,
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
) -> usize {
    let derived = cell
        .derived_cluster_name()
        .ok()
        .and_then(|n| clusters.get(&n).copied());
    let next = cell_status(
        cell,
        clusters.contains_key(&cell.spec.cluster_name),
        derived,
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
        let s = cell_status(&cell, false, None, t0.clone());
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
            reason(&cell_status(&cell, true, None, t0.clone())),
            "DerivedClusterPending"
        );
        let mut derived: KubeFedCluster = serde_json::from_value(json!({
            "apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
            "metadata": {"name": "rz00a.team-a", "namespace": "kube-federation-system"},
            "spec": {"apiEndpoint": "https://127.0.0.1:1234", "secretRef": {"name": "s"}},
            "status": {"conditions": [{"type": "Ready", "status": "False", "message": "connection refused"}]}
        }))
        .unwrap();
        let s = cell_status(&cell, true, Some(&derived), t0.clone());
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
        let again = cell_status(&cell, true, Some(&derived), t1.clone());
        assert_eq!(again.conditions[0].last_transition_time, Some(t0));
        assert!(same_status(cell.status.as_ref(), &again));
        derived.status.as_mut().unwrap().conditions[0].status = ConditionStatus::True;
        let ready = cell_status(&cell, true, Some(&derived), t1.clone());
        assert_eq!(ready.conditions[0].status, ConditionStatus::True);
        assert_eq!(ready.conditions[0].last_transition_time, Some(t1));
        assert!(!same_status(cell.status.as_ref(), &ready));
    }
}
