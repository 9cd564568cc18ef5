//! The replica scheduler: KubeFed's `ReplicaSchedulingPreference` controller. For a preference
//! named like a FederatedDeployment (or FederatedReplicaSet) of its namespace, it distributes
//! `totalReplicas` over the ready member clusters ([`crate::plan::schedule`]) and writes the
//! target's `spec.placement.clusters` (the clusters that got replicas) and a `/spec/replicas`
//! override per cluster, keeping every other override; the type controller then propagates the
//! target as usual. A preference already applied costs no write.
//!
//! Reconciles are triggered by the preference, by its target and by member readiness or
//! membership changes (the supervisor calls [`Scheduler::reconcile_all`]). The pipeline is
//! fetch → plan → apply; KubeFed's preference has no status, neither has ours.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cellfed_api::FederatedResource;
use cellfed_api::features::FeatureGate;
use cellfed_api::kubefed::{ReplicaSchedulingPreference, SCHEDULING_TARGET_KINDS};
use cellfed_api::tenancy::Tenancy;
use cellfed_api::well_known::{TYPES_GROUP, TYPES_V1BETA1};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt as _;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, WatchStreamExt as _, watcher};
use serde_json::json;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::context::Context;
use crate::host::AbortOnDrop;
use crate::plan::placement::matches;
use crate::plan::schedule::{Observed, placement_with, schedule, scheduled_spec};

/// Field manager of the scheduler's writes to federated resources.
pub const FIELD_MANAGER: &str = "cellfed-scheduler";

/// How long a transient failure waits before the preference is reconciled again.
const RETRY: Duration = Duration::from_secs(5);

/// Errors of scheduling one preference.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the target federated resource failed.
    #[error("reading {kind} {name}: {source}")]
    ReadTarget {
        /// The target's kind.
        kind: String,
        /// `namespace/name` of the target.
        name: String,
        /// The client error.
        source: kube::Error,
    },
    /// Writing the target's placement and overrides failed.
    #[error("writing placement and replica overrides of {kind} {name}: {source}")]
    WriteTarget {
        /// The target's kind.
        kind: String,
        /// `namespace/name` of the target.
        name: String,
        /// The client error.
        source: kube::Error,
    },
    /// The preference cannot be applied as written; it waits for a change.
    #[error("ReplicaSchedulingPreference {name}: {problem}")]
    Invalid {
        /// `namespace/name` of the preference.
        name: String,
        /// What is wrong and what to do.
        problem: String,
    },
}

/// A running scheduler; stops when dropped.
pub struct Scheduler {
    all: UnboundedSender<()>,
    _task: AbortOnDrop,
}

impl Scheduler {
    /// Whether the host serves the `ReplicaSchedulingPreference` CRD.
    pub async fn served(client: &kube::Client) -> bool {
        let api: Api<ReplicaSchedulingPreference> = Api::all(client.clone());
        // network: one LIST of at most one object
        api.list(&ListParams::default().limit(1)).await.is_ok()
    }

    /// Starts the controller over every preference.
    pub fn start(ctx: Arc<Context>) -> Self {
        let (all, rx) = unbounded_channel();
        let rsps: Api<ReplicaSchedulingPreference> = Api::all(ctx.host.clone());
        let deployments = federated_type("FederatedDeployment");
        let targets = watcher(
            Api::<FederatedResource>::all_with(ctx.host.clone(), &deployments),
            watcher::Config::default(),
        )
        .default_backoff()
        .touched_objects();
        let controller = Controller::new(rsps, watcher::Config::default())
            .watches_stream_with(
                targets,
                |fed: FederatedResource| {
                    fed.namespace()
                        .map(|ns| ObjectRef::new(&fed.name_any()).within(&ns))
                },
                deployments,
            )
            .reconcile_all_on(UnboundedReceiverStream::new(rx))
            .run(reconcile, error_policy, ctx)
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "replica scheduler");
                }
            });
        tracing::info!("started replica scheduler");
        Self {
            all,
            _task: AbortOnDrop(tokio::spawn(controller)),
        }
    }

    /// Reconciles every preference (cluster readiness or membership changed).
    pub fn reconcile_all(&self) {
        let _ = self.all.send(());
    }
}

/// The federated type `kind` in KubeFed's cluster view.
fn federated_type(kind: &str) -> ApiResource {
    ApiResource {
        group: TYPES_GROUP.into(),
        version: TYPES_V1BETA1.into(),
        api_version: format!("{TYPES_GROUP}/{TYPES_V1BETA1}"),
        kind: kind.into(),
        plural: format!("{}s", kind.to_lowercase()),
    }
}

async fn reconcile(
    rsp: Arc<ReplicaSchedulingPreference>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let namespace = rsp.namespace().unwrap_or_default();
    let name = rsp.name_any();
    let key = format!("{namespace}/{name}");
    let kind = rsp.spec.target_kind.clone();
    if !SCHEDULING_TARGET_KINDS.contains(&kind.as_str()) {
        return Err(Error::Invalid {
            name: key,
            problem: format!(
                "spec.targetKind {kind:?} is not supported: use FederatedDeployment or FederatedReplicaSet"
            ),
        });
    }
    // fetch (network: one GET of the target)
    let api: Api<FederatedResource> =
        Api::namespaced_with(ctx.host.clone(), &namespace, &federated_type(&kind));
    let target = match api.get_opt(&name).await {
        Ok(Some(t)) => t,
        // no target (or its type is not enabled): its creation triggers us
        Ok(None) => return Ok(Action::await_change()),
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Action::await_change()),
        Err(source) => {
            return Err(Error::ReadTarget {
                kind,
                name: key,
                source,
            });
        }
    };
    let clusters = candidate_clusters(&ctx, &rsp, &target).map_err(|problem| Error::Invalid {
        name: key.clone(),
        problem,
    })?;
    if clusters.is_empty() {
        // KubeFed: no ready (or selected) cluster, nothing to do until one is
        return Ok(Action::await_change());
    }

    // plan (pure)
    let observed = observed(&target, &clusters);
    let replicas = schedule(&rsp.spec, &clusters, &observed, &key);
    let Some(scheduled) = scheduled_spec(&target.spec, &replicas) else {
        return Ok(Action::await_change());
    };
    if !ctx.leadership.may_write() {
        return Ok(Action::requeue(RETRY));
    }

    // apply (network: one merge patch, guarded by the resourceVersion read)
    let patch = json!({
        "metadata": {"resourceVersion": target.resource_version()},
        "spec": {
            "placement": placement_with(&target.spec, scheduled.clusters),
            "overrides": scheduled.overrides,
        }
    });
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(|source| Error::WriteTarget {
        kind: kind.clone(),
        name: key.clone(),
        source,
    })?;
    tracing::info!(rsp = %key, ?replicas, "scheduled replicas");
    Ok(Action::await_change())
}

/// Ready clusters the target's tenant may use; with `intersectWithClusterSelector`, only those
/// its `clusterSelector` selects too (none without a selector, as in KubeFed).
fn candidate_clusters(
    ctx: &Context,
    rsp: &ReplicaSchedulingPreference,
    target: &FederatedResource,
) -> Result<Vec<String>, String> {
    let namespace = ctx.caches.namespaces.get(&ObjectRef::<Namespace>::new(
        &rsp.namespace().unwrap_or_default(),
    ));
    let tenancy = Tenancy::from_labels(namespace.as_ref().and_then(|n| n.metadata.labels.as_ref()));
    let isolation = ctx.settings().gates.enabled(FeatureGate::TenantIsolation);
    let selector = target
        .spec
        .placement
        .as_ref()
        .and_then(|p| p.cluster_selector.as_ref());
    let mut clusters = Vec::new();
    for member in ctx.members.for_tenancy(&tenancy, isolation) {
        if !member.ready() || member.client.is_none() {
            continue;
        }
        if rsp.spec.intersect_with_cluster_selector {
            let Some(selector) = selector else { continue };
            if !matches(selector, &member.labels)? {
                continue;
            }
        }
        clusters.push(member.name.clone());
    }
    clusters.sort();
    Ok(clusters)
}

/// Replicas running per cluster as the target's status reports them (`readyReplicas` of the
/// member object, when status collection is on). No capacity estimate: cellfed does not list
/// member pods.
fn observed(target: &FederatedResource, clusters: &[String]) -> Observed {
    let current: BTreeMap<String, i64> = target
        .status
        .iter()
        .flat_map(|s| &s.clusters)
        .filter(|c| clusters.contains(&c.name))
        .filter_map(|c| {
            let remote = c.remote_status.as_ref()?;
            let ready = remote
                .get("readyReplicas")
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            Some((c.name.clone(), ready))
        })
        .collect();
    Observed {
        current,
        capacity: BTreeMap::new(),
    }
}

fn error_policy(
    rsp: Arc<ReplicaSchedulingPreference>,
    error: &Error,
    _ctx: Arc<Context>,
) -> Action {
    match error {
        Error::Invalid { .. } => {
            tracing::warn!(rsp = %rsp.name_any(), %error, "not scheduled until the preference changes");
            Action::await_change()
        }
        Error::WriteTarget {
            source: kube::Error::Api(s),
            ..
        } if s.code == 409 => Action::requeue(Duration::from_millis(200)),
        _ => {
            tracing::warn!(%error, "scheduling failed; retrying");
            Action::requeue(RETRY)
        }
    }
}
