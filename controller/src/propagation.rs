//! Propagation of one federated type, one pass: fetch → plan → apply → status for every federated
//! resource of the type. Steps that touch the network are marked. A resource in sync costs reads
//! only: one LIST of the target type per ready member cluster per pass, no member write.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use cellfed_api::FederatedResource;
use cellfed_api::kubefed::FederatedTypeConfig;
use cellfed_api::tenancy::Tenancy;
use cellfed_api::well_known::{PropagationStatus, SYNC_FINALIZER};
use futures::StreamExt as _;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use serde_json::{Value, json};

use crate::error_policy::Backoff;
use crate::members::{Member, Members};
use crate::metrics::Metrics;
use crate::plan::{self, ClusterView, MemberAction, PlanInput, TargetType};
use crate::{Error, Result};

/// What one pass over a type needs.
pub struct TypeContext<'a> {
    /// Host client.
    pub host: &'a kube::Client,
    /// The type's configuration.
    pub ftc: &'a FederatedTypeConfig,
    /// Member clusters.
    pub members: &'a Members,
    /// Labels of host namespaces (tenancy).
    pub namespace_labels: &'a BTreeMap<String, BTreeMap<String, String>>,
    /// TenantIsolation gate.
    pub tenant_isolation: bool,
    /// adoptResources.
    pub adopt_resources: bool,
    /// Concurrent reconciles.
    pub workers: usize,
    /// How long listing one member's objects may take before that member counts as not synced
    /// (not ready) for this pass (KubeFed's cache sync timeout).
    pub cache_sync_timeout: std::time::Duration,
    /// Metrics.
    pub metrics: &'a Arc<Metrics>,
    /// Failures remembered across passes ([`crate::error_policy`]).
    pub backoff: &'a Backoff,
    /// First retry delay of a transient failure.
    pub retry_base: std::time::Duration,
}

/// Member objects of the target type in one cluster, by (namespace, name).
type MemberIndex = BTreeMap<(String, String), Value>;

/// Runs one pass over every federated resource of the type.
pub async fn pass(ctx: &TypeContext<'_>) -> Result<()> {
    let fed_ar = ctx.ftc.spec.federated_type.api_resource();
    let target_ar = ctx.ftc.spec.target_type.api_resource();
    let target = TargetType {
        api_version: target_ar.api_version.clone(),
        kind: target_ar.kind.clone(),
        namespaced: ctx.ftc.spec.target_type.is_namespaced(),
        propagated_annotations: ctx.ftc.spec.propagated_annotations.clone(),
        collect_status: ctx.ftc.status_enabled(),
    };
    // network: list the federated resources on the host
    let feds: Api<FederatedResource> = Api::all_with(ctx.host.clone(), &fed_ar);
    let list = match feds.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()), // CRD not (yet) served
        Err(e) => {
            return Err(Error::ListFederated {
                kind: fed_ar.kind.clone(),
                source: e,
            });
        }
    };
    ctx.metrics
        .queue_depth
        .store(list.len() as u64, std::sync::atomic::Ordering::Relaxed);
    // network: one list of the target type per ready member that some resource's tenant may
    // use; members of tenants without resources of this type are never read
    let mut indexes: BTreeMap<String, Option<MemberIndex>> = BTreeMap::new();
    let tenancies: std::collections::HashSet<_> = list.iter().map(|f| tenancy_of(ctx, f)).collect();
    for tenancy in &tenancies {
        for m in ctx.members.for_tenancy(tenancy, ctx.tenant_isolation) {
            if indexes.contains_key(&m.name) {
                continue;
            }
            let idx = if m.ready {
                list_member(m, &target_ar, ctx.cache_sync_timeout).await
            } else {
                None
            };
            indexes.insert(m.name.clone(), idx);
        }
    }
    let indexes = &indexes;
    let target = &target;
    let fed_ar = &fed_ar;
    futures::stream::iter(list)
        .for_each_concurrent(ctx.workers.max(1), |fed| async move {
            let key = format!(
                "{}/{}/{}",
                fed_ar.kind,
                fed.namespace().unwrap_or_default(),
                fed.name_any()
            );
            let version = fed.resource_version().unwrap_or_default();
            if !ctx.backoff.due(&key, &version, Instant::now()) {
                return;
            }
            let started = Instant::now();
            ctx.metrics
                .reconciles
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match reconcile(ctx, fed_ar, target, fed, indexes).await {
                Ok(()) => ctx.backoff.succeeded(&key),
                Err(e) => {
                    ctx.metrics
                        .errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let retry =
                        ctx.backoff
                            .failed(&key, &version, &e, ctx.retry_base, Instant::now());
                    tracing::warn!(resource = %key, error = %e, ?retry, "reconcile failed");
                }
            }
            ctx.metrics.observe_latency(started.elapsed());
        })
        .await;
    Ok(())
}

/// Tenant and workspace of a federated resource: its namespace's labels (its own when
/// cluster-scoped).
fn tenancy_of(ctx: &TypeContext<'_>, fed: &FederatedResource) -> Tenancy {
    match fed.namespace() {
        Some(ns) => Tenancy::from_labels(ctx.namespace_labels.get(&ns)),
        None => Tenancy::from_labels(fed.metadata.labels.as_ref()),
    }
}

async fn list_member(
    member: &Member,
    ar: &ApiResource,
    timeout: std::time::Duration,
) -> Option<MemberIndex> {
    let client = member.client.clone()?;
    let api: Api<DynamicObject> = Api::all_with(client, ar);
    let list = tokio::time::timeout(timeout, api.list(&ListParams::default()))
        .await
        .ok()?
        .ok()?;
    Some(
        list.items
            .into_iter()
            .filter_map(|o| {
                let key = (o.namespace().unwrap_or_default(), o.name_any());
                Some((key, serde_json::to_value(&o).ok()?))
            })
            .collect(),
    )
}

/// fetch (from the pass's lists) → plan → apply → status for one resource.
async fn reconcile(
    ctx: &TypeContext<'_>,
    fed_ar: &ApiResource,
    target: &TargetType,
    fed: FederatedResource,
    indexes: &BTreeMap<String, Option<MemberIndex>>,
) -> Result<()> {
    let name = fed.name_any();
    let namespace = fed.namespace();
    let api: Api<FederatedResource> = match &namespace {
        Some(ns) => Api::namespaced_with(ctx.host.clone(), ns, fed_ar),
        None => Api::all_with(ctx.host.clone(), fed_ar),
    };
    // fetch: the tenant's clusters and their member objects
    let tenancy = tenancy_of(ctx, &fed);
    let visible: Vec<&Member> = ctx
        .members
        .for_tenancy(&tenancy, ctx.tenant_isolation)
        .collect();
    let mut clusters = Vec::new();
    let mut members = BTreeMap::new();
    for m in &visible {
        let index = indexes.get(&m.name).and_then(Option::as_ref);
        clusters.push(ClusterView {
            name: m.name.clone(),
            labels: m.labels.clone(),
            ready: m.ready && index.is_some(),
            member_namespace: m.member_namespace.clone(),
        });
        let ns = if target.namespaced {
            m.member_namespace
                .clone()
                .or_else(|| namespace.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        if let Some(obj) = index.and_then(|i| i.get(&(ns, name.clone()))) {
            members.insert(m.name.clone(), obj.clone());
        }
    }
    let input = PlanInput {
        federated: &fed,
        target,
        clusters: &clusters,
        members: &members,
        adopt_resources: ctx.adopt_resources,
    };

    if fed.metadata.deletion_timestamp.is_some() {
        if !fed.finalizers().iter().any(|f| f == SYNC_FINALIZER) {
            return Ok(());
        }
        let p = plan::plan_deletion(&input);
        let failures = apply(ctx, &visible, target, &p.actions).await;
        let remaining = p.clusters.len();
        if remaining == 0 && failures.is_empty() {
            // network: release the finalizer
            let finalizers: Vec<String> = fed
                .finalizers()
                .iter()
                .filter(|f| *f != SYNC_FINALIZER)
                .cloned()
                .collect();
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": {"finalizers": finalizers}})),
            )
            .await
            .map_err(|source| Error::WriteFederated {
                name: name.clone(),
                source,
            })?;
        }
        return Ok(());
    }
    if !fed.finalizers().iter().any(|f| f == SYNC_FINALIZER) {
        // network: add the finalizer before writing to members
        let mut finalizers = fed.finalizers().to_vec();
        finalizers.push(SYNC_FINALIZER.into());
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"finalizers": finalizers}})),
        )
        .await
        .map_err(|source| Error::WriteFederated {
            name: name.clone(),
            source,
        })?;
    }
    let status = match plan::plan(&input) {
        Ok(p) => {
            let failures = apply(ctx, &visible, target, &p.actions).await;
            status_of(&fed, &p, &failures)
        }
        Err(e) => json!({
            "observedGeneration": fed.metadata.generation,
            "conditions": [condition(&fed, "False", "ComputePlacementFailed", &format!("{name}: {e}"))],
        }),
    };
    write_status(&api, &fed, status).await
}

/// apply: member writes with the resource's bounded concurrency; returns failures by cluster.
async fn apply(
    ctx: &TypeContext<'_>,
    visible: &[&Member],
    target: &TargetType,
    actions: &[MemberAction],
) -> BTreeMap<String, (PropagationStatus, String)> {
    let ar = ctx.ftc.spec.target_type.api_resource();
    // owned actions: a closure over borrowed ones is not `Send` for every lifetime
    let results = futures::stream::iter(actions.iter().cloned())
        .map(|action: MemberAction| {
            let ar = ar.clone();
            let member = visible.iter().find(|m| m.name == action.cluster()).copied();
            async move {
                let cluster = action.cluster().to_string();
                let Some(client) = member.and_then(|m| m.client.clone()) else {
                    return Some((
                        cluster,
                        (
                            PropagationStatus::ClientRetrievalFailed,
                            "no client".to_string(),
                        ),
                    ));
                };
                ctx.metrics.member_write(&cluster);
                // network: one member write
                let outcome = write_member(client, &ar, target.namespaced, &action).await;
                outcome.err().map(|(status, e)| (cluster, (status, e)))
            }
        })
        .buffer_unordered(ctx.workers.max(1))
        .collect::<Vec<_>>()
        .await;
    results.into_iter().flatten().collect()
}

async fn write_member(
    client: kube::Client,
    ar: &ApiResource,
    namespaced: bool,
    action: &MemberAction,
) -> std::result::Result<(), (PropagationStatus, String)> {
    let api_for = |ns: Option<&str>| -> Api<DynamicObject> {
        match ns.filter(|_| namespaced) {
            Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
            None => Api::all_with(client.clone(), ar),
        }
    };
    match action {
        MemberAction::Create { object, .. } => {
            let obj: DynamicObject = serde_json::from_value(object.clone())
                .map_err(|e| (PropagationStatus::ComputeResourceFailed, e.to_string()))?;
            let api = api_for(obj.metadata.namespace.as_deref());
            if let Some(ns) = obj.metadata.namespace.as_deref().filter(|_| namespaced) {
                ensure_namespace(&client, ns).await;
            }
            api.create(&PostParams::default(), &obj)
                .await
                .map(drop)
                .map_err(|e| (PropagationStatus::CreationFailed, e.to_string()))
        }
        MemberAction::Update { object, .. } => {
            let obj: DynamicObject = serde_json::from_value(object.clone())
                .map_err(|e| (PropagationStatus::ComputeResourceFailed, e.to_string()))?;
            let api = api_for(obj.metadata.namespace.as_deref());
            api.replace(&obj.name_any(), &PostParams::default(), &obj)
                .await
                .map(drop)
                .map_err(|e| (PropagationStatus::UpdateFailed, e.to_string()))
        }
        MemberAction::Delete {
            namespace, name, ..
        } => {
            let api = api_for(namespace.as_deref());
            match api.delete(name, &DeleteParams::background()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                Err(e) => Err((PropagationStatus::DeletionFailed, e.to_string())),
            }
        }
    }
}

/// Namespaced objects need their namespace in the member (KubeFed expects a FederatedNamespace;
/// cellfed creates a missing one, labelled as managed, so cells' member namespaces just work).
async fn ensure_namespace(client: &kube::Client, ns: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    if matches!(api.get_opt(ns).await, Ok(Some(_))) {
        return;
    }
    let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    if let Ok(obj) = serde_json::from_value(obj) {
        let _ = api.create(&PostParams::default(), &obj).await;
    }
}

fn condition(fed: &FederatedResource, status: &str, reason: &str, message: &str) -> Value {
    let previous = fed
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Propagation"));
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let transition = previous
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(now.clone());
    let mut c = json!({"type": "Propagation", "status": status, "lastTransitionTime": transition, "lastUpdateTime": now});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
    }
    if !message.is_empty() {
        c["message"] = json!(message);
    }
    c
}

/// status: per-cluster statuses (apply failures win), the Propagation condition, the rollout.
fn status_of(
    fed: &FederatedResource,
    p: &plan::Plan,
    failures: &BTreeMap<String, (PropagationStatus, String)>,
) -> Value {
    let mut clusters = Vec::new();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for c in &p.clusters {
        seen.insert(c.cluster.clone());
        let (status, message) = match failures.get(&c.cluster) {
            Some((s, m)) => (Some(*s), Some(format!("cluster {}: {m}", c.cluster))),
            None => (c.status, c.message.clone()),
        };
        if let Some(s) = status.filter(|s| s.is_error()) {
            problems.push(message.unwrap_or_else(|| format!("cluster {}: {s}", c.cluster)));
        }
        let mut entry =
            json!({"name": c.cluster, "status": status.map_or("OK", PropagationStatus::as_str)});
        if let Some(g) = c.generation {
            entry["generation"] = json!(g);
        }
        if let Some(r) = &c.remote_status {
            entry["remoteStatus"] = r.clone();
        }
        clusters.push(entry);
    }
    for (cluster, (s, m)) in failures.iter().filter(|(c, _)| !seen.contains(*c)) {
        problems.push(format!("cluster {cluster}: {m}"));
        clusters.push(json!({"name": cluster, "status": s.as_str()}));
    }
    let cond = if problems.is_empty() {
        condition(fed, "True", "", "")
    } else {
        condition(fed, "False", "CheckClusters", &problems.join("; "))
    };
    json!({
        "observedGeneration": fed.metadata.generation,
        "conditions": [cond],
        "clusters": clusters,
        "rollout": {"updated": p.updated, "total": p.placed, "summary": format!("{}/{}", p.updated, p.placed)},
    })
}

/// Writes status only when it changed (timestamps aside), so a resource in sync costs no write.
async fn write_status(
    api: &Api<FederatedResource>,
    fed: &FederatedResource,
    status: Value,
) -> Result<()> {
    let current = fed
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    if strip_times(&current) == strip_times(&status) {
        return Ok(());
    }
    // network: status subresource
    api.patch_status(
        &fed.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await
    .map(drop)
    .map_err(|source| Error::WriteFederated {
        name: fed.name_any(),
        source,
    })
}

fn strip_times(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| *k != "lastUpdateTime" && *k != "lastTransitionTime")
                .map(|(k, v)| (k.clone(), strip_times(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_times).collect()),
        other => other.clone(),
    }
}
