//! fetch: what planning one federated resource needs, from the caches: the tenant's clusters and
//! their objects, the FederatedNamespace placement of the resource's namespace, and for a
//! FederatedNamespace the uid of the host's own Namespace. The only network call is a GET of an
//! object a placed, ready member lacks in its managed-objects cache (an unmanaged object there
//! means `AlreadyExists` or adoption).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use cellfed_api::FederatedResource;
use cellfed_api::features::FeatureGate;
use cellfed_api::federated::v1beta1::FederatedSpec;
use cellfed_api::tenancy::Tenancy;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt as _;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::ObjectRef;
use serde_json::Value;

use crate::context::{NamespacePlacement, TypeContext};
use crate::members::Member;
use crate::plan::{ClusterView, placement};
use crate::settings::Effective;

/// How long a GET of one member object may take.
const GET_TIMEOUT: Duration = Duration::from_secs(10);

/// What fetch observed for one federated resource.
pub struct Fetched {
    /// Members the resource's tenant may use.
    pub visible: Vec<Arc<Member>>,
    /// Those members as planning sees them.
    pub clusters: Vec<ClusterView>,
    /// Member objects by cluster.
    pub members: BTreeMap<String, Value>,
    /// Ready members whose cache is still listing, or with a write of this object still under
    /// way: nothing is planned there and no status is written until they synced or the write
    /// ended (either reconciles the resource again).
    pub pending: BTreeSet<String>,
    /// The FederatedNamespace placement of the resource's namespace (namespaced target types).
    pub namespace_placement: Option<FederatedSpec>,
    /// The FederatedNamespaces are still being listed: nothing can be planned yet.
    pub namespace_pending: bool,
    /// For a FederatedNamespace: uid of the host's own Namespace it federates.
    pub host_uid: Option<String>,
    /// The clusters the resource's tenant may not use, with why (another tenant's cluster, or a
    /// derived cluster refused for tenancy).
    pub other_tenants_clusters: BTreeMap<String, String>,
}

/// Tenant and workspace of a federated resource: its namespace's labels (its own when
/// cluster-scoped).
pub fn tenancy_of(ctx: &TypeContext, fed: &FederatedResource) -> Tenancy {
    match fed.namespace() {
        Some(ns) => {
            let ns = ctx
                .shared
                .caches
                .namespaces
                .get(&ObjectRef::<Namespace>::new(&ns));
            Tenancy::from_labels(ns.as_ref().and_then(|n| n.metadata.labels.as_ref()))
        }
        None => Tenancy::from_labels(fed.metadata.labels.as_ref()),
    }
}

/// Gathers the clusters and member objects of `fed`.
pub async fn fetch(ctx: &TypeContext, fed: &FederatedResource, settings: &Effective) -> Fetched {
    let name = fed.name_any();
    let tenancy = tenancy_of(ctx, fed);
    let isolation = settings.gates.enabled(FeatureGate::TenantIsolation);
    let visible = ctx.shared.members.for_tenancy(&tenancy, isolation);
    let (namespace_placement, namespace_pending) = match fed.namespace() {
        Some(ns) if ctx.target.namespaced => match ctx.shared.namespace_placement(&ns) {
            NamespacePlacement::Verbatim => (None, false),
            NamespacePlacement::Pending => (None, true),
            NamespacePlacement::Of(spec) => (Some(*spec), false),
        },
        _ => (None, false),
    };
    let host_uid = fed
        .namespace()
        .filter(|_| ctx.target.is_namespace())
        .and_then(|ns| {
            ctx.shared
                .caches
                .namespaces
                .get(&ObjectRef::<Namespace>::new(&ns))
        })
        .and_then(|n| n.metadata.uid.clone());
    let mut out = Fetched {
        visible: Vec::new(),
        clusters: Vec::new(),
        members: BTreeMap::new(),
        pending: BTreeSet::new(),
        namespace_placement,
        namespace_pending,
        host_uid,
        other_tenants_clusters: BTreeMap::new(),
    };
    for m in &visible {
        let cache = ctx.cache(&m.name);
        if cache.is_none() && m.client.is_some() {
            // no watch of this member yet (no resource of its tenant existed): ask for one
            out.pending.insert(m.name.clone());
            ctx.shared.caches.changed.notify_one();
        }
        let synced = cache.as_ref().is_some_and(|c| c.synced());
        let syncing = cache
            .as_ref()
            .is_some_and(|c| !c.synced() && c.started().elapsed() < settings.cache_sync_timeout);
        // a write to this member still under way (a slow member) holds only this member back
        let writing = cache
            .as_ref()
            .is_some_and(|c| c.writing(&member_namespace(ctx, m, fed), &name));
        if (m.ready() && syncing) || writing {
            out.pending.insert(m.name.clone());
        }
        out.clusters.push(ClusterView {
            name: m.name.clone(),
            labels: m.labels.clone(),
            ready: m.ready() && synced && !writing,
            member_namespace: m.member_namespace.clone(),
            endpoint: Some(m.endpoint.clone()),
        });
        if let Some(obj) = cache.and_then(|c| c.get(&member_namespace(ctx, m, fed), &name)) {
            out.members.insert(m.name.clone(), obj);
        }
    }
    if fed.metadata.deletion_timestamp.is_none() {
        // network: GET where a placed, ready member has no managed object of this name
        let placed =
            placement::effective(&fed.spec, out.namespace_placement.as_ref(), &out.clusters)
                .map(|p| p.clusters)
                .unwrap_or_default();
        let lookups = visible
            .iter()
            .filter(|m| placed.contains(&m.name) && !out.members.contains_key(&m.name))
            .filter(|m| out.clusters.iter().any(|c| c.name == m.name && c.ready))
            .map(|m| async {
                let obj = get_unmanaged(ctx, m, &member_namespace(ctx, m, fed), &name).await;
                (m.name.clone(), obj)
            });
        for (cluster, obj) in futures::future::join_all(lookups).await {
            if let Some(obj) = obj {
                out.members.insert(cluster, obj);
            }
        }
    }
    out.other_tenants_clusters = ctx
        .shared
        .members
        .snapshot()
        .iter()
        .filter(|m| !visible.iter().any(|v| v.name == m.name))
        .map(|m| {
            // why a cell of the resource's own tenant is refused; another tenant's is only that
            let why = match &m.tenancy_refusal {
                Some(refusal) if !isolation || tenancy.may_use(&m.tenancy) => {
                    format!("is refused: {refusal}")
                }
                _ => "belongs to another tenant or workspace; nothing is written there: remove it from spec.placement".into(),
            };
            (m.name.clone(), why)
        })
        .collect();
    out.visible = visible;
    out
}

/// The namespace of `fed`'s object in member `m` (empty for cluster-scoped kinds).
pub fn member_namespace(ctx: &TypeContext, m: &Member, fed: &FederatedResource) -> String {
    if !ctx.target.namespaced {
        return String::new();
    }
    m.member_namespace
        .clone()
        .or_else(|| fed.namespace())
        .unwrap_or_default()
}

async fn get_unmanaged(
    ctx: &TypeContext,
    m: &Member,
    namespace: &str,
    name: &str,
) -> Option<Value> {
    let client = m.client.clone()?;
    let api: Api<DynamicObject> = if namespace.is_empty() {
        Api::all_with(client, &ctx.target_resource)
    } else {
        Api::namespaced_with(client, namespace, &ctx.target_resource)
    };
    match tokio::time::timeout(GET_TIMEOUT, api.get_opt(name)).await {
        Ok(Ok(Some(mut obj))) => {
            obj.managed_fields_mut().clear();
            serde_json::to_value(obj).ok()
        }
        Ok(Ok(None)) => None,
        Ok(Err(e)) => {
            tracing::debug!(cluster = %m.name, error = %e, "reading a member object");
            None
        }
        Err(_) => None,
    }
}
