//! Cells: for every `cellfed.io/v1alpha1` Cell, a derived KubeFedCluster `<cell>.<namespace>` in
//! the federation namespace with the base cluster's access (endpoint, CA, secret, proxy, TLS
//! settings), the labels `cellfed.io/cell`, `cellfed.io/tenant`, `cellfed.io/workspace`, and the
//! cell's member namespace as an annotation. Derived clusters of deleted Cells are removed. The
//! derived cluster is probed like any member, so its health mirrors the base cluster's. Reads
//! come from the host caches; only a difference is written.

use std::collections::{BTreeMap, BTreeSet};

use cellfed_api::Cell;
use cellfed_api::kubefed::KubeFedCluster;
use cellfed_api::tenancy::Tenancy;
use cellfed_api::well_known::{CELL_LABEL, TENANT_LABEL, WORKSPACE_LABEL};
use k8s_openapi::api::core::v1::Namespace;
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

/// Brings the derived clusters in line with the cached Cells, KubeFedClusters and Namespaces;
/// returns how many were written or removed.
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
}
