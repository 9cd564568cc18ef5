//! The supervisor keeps the running pieces in line with the host caches: the effective settings
//! (KubeFedConfig), Cells' derived clusters, member clients, one type controller per enabled
//! FederatedTypeConfig (started and stopped at runtime) and each type's member watches. It wakes
//! on any host change, and tells the type controllers to reconcile everything when what every
//! resource depends on changed (clusters, their readiness, namespace tenancy, settings) and on
//! the resync period. When a FederatedNamespace's placement changes, the namespaced resources of
//! its namespace are reconciled (KubeFed's `fedNamespaceEnqueue`). A prober task checks member
//! health concurrently. The replica scheduler ([`crate::scheduler`]) starts once the host serves
//! the `ReplicaSchedulingPreference` CRD (checked at most every [`SCHEDULER_CHECK`], on a host
//! change or resync) and reconciles every preference when clusters or their readiness change.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash as _, Hasher as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cellfed_api::features::FeatureGate;
use cellfed_api::kubefed::{ControllerStatus, FederatedTypeConfig, FederatedTypeConfigStatus};
use cellfed_api::well_known::{KUBEFED_CONFIG_NAME, TENANT_LABEL, WORKSPACE_LABEL};
use kube::ResourceExt as _;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;

use crate::context::Context;
use crate::host::AbortOnDrop;
use crate::scheduler::Scheduler;
use crate::types::{self, TypeController};
use crate::{Result, cells, settings};

/// What the previous pass saw, to tell what changed.
#[derive(Default)]
struct Seen {
    namespaces: u64,
    readiness: u64,
    config_problem: Option<String>,
    federated_namespaces: FederatedNamespaces,
}

/// The FederatedNamespaces as namespace placement sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum FederatedNamespaces {
    /// The namespaces type is not enabled.
    #[default]
    Off,
    /// Enabled, still listing.
    Listing,
    /// Namespace → fingerprint of its FederatedNamespace's placement.
    Placed(BTreeMap<String, u64>),
}

/// Least time between two checks whether the host serves the `ReplicaSchedulingPreference` CRD.
pub const SCHEDULER_CHECK: Duration = Duration::from_secs(30);

/// Runs until dropped.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let readiness = Arc::new(AtomicU64::new(0));
    let _prober = AbortOnDrop(tokio::spawn(probe_forever(ctx.clone(), readiness.clone())));
    let mut types: BTreeMap<String, TypeController> = BTreeMap::new();
    let mut seen = Seen::default();
    let resync = ctx.config.resync_period;
    let mut next_resync = tokio::time::Instant::now() + resync;
    let mut scheduler: Option<Scheduler> = None;
    let mut next_scheduler_check = tokio::time::Instant::now();
    loop {
        let all = pass(
            &ctx,
            &mut types,
            &mut seen,
            readiness.load(Ordering::Relaxed),
        )
        .await;
        match &scheduler {
            Some(s) if all => s.reconcile_all(),
            Some(_) => {}
            None if tokio::time::Instant::now() >= next_scheduler_check => {
                next_scheduler_check = tokio::time::Instant::now() + SCHEDULER_CHECK;
                // network: one LIST of at most one preference until the CRD is served
                if Scheduler::served(&ctx.host).await {
                    scheduler = Some(Scheduler::start(ctx.clone()));
                }
            }
            None => {}
        }
        tokio::select! {
            () = ctx.caches.changed.notified() => {}
            () = tokio::time::sleep_until(next_resync), if !resync.is_zero() => {
                next_resync = tokio::time::Instant::now() + resync;
                for t in types.values() {
                    t.reconcile_all();
                }
                if let Some(s) = &scheduler {
                    s.reconcile_all();
                }
            }
        }
    }
}

/// One pass; returns whether everything was reconciled (clusters, readiness, tenancy or
/// settings changed).
async fn pass(
    ctx: &Arc<Context>,
    types: &mut BTreeMap<String, TypeController>,
    seen: &mut Seen,
    readiness: u64,
) -> bool {
    let settings_changed = refresh_settings(ctx, seen);
    if let Err(e) = cells::sync(ctx).await {
        tracing::warn!(error = %e, "derived clusters of cells");
    }
    // tenancy of derived clusters, re-checked on every change of a Cell, Namespace or cluster
    let refusals = cells::refusals(ctx);
    let members_changed = ctx
        .members
        .refresh(&ctx.caches.clusters, &ctx.caches.secrets, &refusals)
        .await;
    sync_types(ctx, types).await;
    // published before anything is reconciled below
    let federated_namespaces = federated_namespaces(ctx, types);
    let settings = ctx.settings();
    let members = ctx.members.snapshot();
    let namespaces = tenancy_fingerprint(ctx);
    for t in types.values_mut() {
        t.sync_members(&members, settings.cache_sync_timeout, namespaces);
    }
    let all = members_changed
        || settings_changed
        || namespaces != seen.namespaces
        || readiness != seen.readiness;
    if all {
        for t in types.values() {
            t.reconcile_all();
        }
    }
    seen.namespaces = namespaces;
    seen.readiness = readiness;
    if !all {
        match (&seen.federated_namespaces, &federated_namespaces) {
            (FederatedNamespaces::Placed(before), FederatedNamespaces::Placed(now)) => {
                let changed: BTreeSet<&String> = before
                    .iter()
                    .filter(|(ns, h)| now.get(*ns) != Some(*h))
                    .chain(now.iter().filter(|(ns, h)| before.get(*ns) != Some(*h)))
                    .map(|(ns, _)| ns)
                    .collect();
                for t in types.values().filter(|t| t.namespaced()) {
                    for ns in &changed {
                        t.reconcile_namespace(ns);
                    }
                }
            }
            (before, now) if before != now => {
                for t in types.values().filter(|t| t.namespaced()) {
                    t.reconcile_all();
                }
            }
            _ => {}
        }
    }
    seen.federated_namespaces = federated_namespaces;
    all
}

/// Publishes the namespaces type's FederatedNamespaces to every reconcile and fingerprints their
/// placements.
fn federated_namespaces(
    ctx: &Context,
    types: &BTreeMap<String, TypeController>,
) -> FederatedNamespaces {
    let found = types
        .values()
        .find_map(TypeController::federated_namespaces);
    if let Ok(mut published) = ctx.federated_namespaces.write() {
        published.clone_from(&found);
    }
    let Some((store, _)) = found else {
        return FederatedNamespaces::Off;
    };
    if futures::FutureExt::now_or_never(store.wait_until_ready()).is_none() {
        return FederatedNamespaces::Listing;
    }
    let placed = store
        .state()
        .iter()
        .filter_map(|f| {
            let ns = f.namespace()?;
            // KubeFed: only the FederatedNamespace named like its namespace places it
            (f.name_any() == ns).then(|| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                serde_json::to_string(&f.spec.placement)
                    .unwrap_or_default()
                    .hash(&mut h);
                (ns, h.finish())
            })
        })
        .collect();
    FederatedNamespaces::Placed(placed)
}

/// Re-reads the KubeFedConfig; an unparseable one is reported once and the previous settings
/// stay in force. Returns whether the settings changed.
fn refresh_settings(ctx: &Context, seen: &mut Seen) -> bool {
    let key = ObjectRef::new(KUBEFED_CONFIG_NAME).within(&ctx.config.fed_namespace);
    let config = ctx.caches.configs.get(&key);
    match settings::effective(&ctx.config.overrides, config.as_deref()) {
        Ok(next) => {
            seen.config_problem = None;
            let Ok(mut current) = ctx.settings.write() else {
                return false;
            };
            if *current == next {
                return false;
            }
            tracing::info!(settings = ?next, "controller settings");
            *current = next;
            true
        }
        Err(problem) => {
            if seen.config_problem.as_ref() != Some(&problem) {
                tracing::error!(%problem, "KubeFedConfig not applied; the previous settings stay in force");
                seen.config_problem = Some(problem);
            }
            false
        }
    }
}

/// Starts controllers of newly enabled types (or restarts changed ones), stops disabled ones,
/// and writes each FTC's `propagationController`/`statusController` status on change.
async fn sync_types(ctx: &Arc<Context>, types: &mut BTreeMap<String, TypeController>) {
    let workers = ctx.settings().workers;
    let mut wanted = BTreeSet::new();
    for ftc in ctx.caches.ftcs.state() {
        let running = ftc.propagation_enabled();
        update_ftc_status(ctx, &ftc).await;
        if !running {
            continue;
        }
        let name = ftc.name_any();
        let fingerprint = types::fingerprint(&ftc, workers);
        if types
            .get(&name)
            .is_none_or(|t| t.fingerprint != fingerprint)
        {
            types.insert(name.clone(), TypeController::start(ctx.clone(), &ftc));
        }
        wanted.insert(name);
    }
    types.retain(|name, _| {
        let keep = wanted.contains(name);
        if !keep {
            tracing::info!(ftc = %name, "stopped propagation controller");
        }
        keep
    });
}

/// The status KubeFed's FTC controller writes (pure): `observedGeneration`,
/// `propagationController` Running when propagation is enabled, and `statusController` Running
/// when member status is collected, i.e. the FTC has `statusCollection: Enabled` and the
/// `RawResourceStatusCollection` gate is on (cellfed collects status in the propagation
/// controller, so a type whose propagation is disabled collects none either).
pub fn ftc_status(ftc: &FederatedTypeConfig, raw_status_gate: bool) -> FederatedTypeConfigStatus {
    let running = |on: bool| {
        if on {
            ControllerStatus::Running
        } else {
            ControllerStatus::NotRunning
        }
    };
    FederatedTypeConfigStatus {
        observed_generation: ftc.metadata.generation.unwrap_or_default(),
        propagation_controller: running(ftc.propagation_enabled()),
        status_controller: Some(running(
            ftc.propagation_enabled() && ftc.status_enabled() && raw_status_gate,
        )),
    }
}

/// Writes an FTC's [`ftc_status`] when it differs from the stored one.
async fn update_ftc_status(ctx: &Context, ftc: &FederatedTypeConfig) {
    let gate = ctx
        .settings()
        .gates
        .enabled(FeatureGate::RawResourceStatusCollection);
    let want = ftc_status(ftc, gate);
    if ftc.status.as_ref() == Some(&want) {
        return;
    }
    if !ctx.leadership.may_write() {
        return;
    }
    let api: Api<FederatedTypeConfig> =
        Api::namespaced(ctx.host.clone(), &ctx.config.fed_namespace);
    let status = json!({"status": want});
    // network: status write on change
    let _ = api
        .patch_status(
            &ftc.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await;
}

/// A fingerprint of every namespace's tenant and workspace labels.
fn tenancy_fingerprint(ctx: &Context) -> u64 {
    let mut tenancy: Vec<(String, Option<String>, Option<String>)> = ctx
        .caches
        .namespaces
        .state()
        .iter()
        .map(|n| {
            let label = |k: &str| n.labels().get(k).cloned();
            (n.name_any(), label(TENANT_LABEL), label(WORKSPACE_LABEL))
        })
        .collect();
    tenancy.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tenancy.hash(&mut h);
    h.finish()
}

/// Probes member health every period; a readiness change bumps `readiness` (after KubeFed's
/// available/unavailable delay) and wakes the supervisor.
async fn probe_forever(ctx: Arc<Context>, readiness: Arc<AtomicU64>) {
    loop {
        let settings = ctx.settings();
        let flips = ctx
            .members
            .probe_all(
                &ctx.host,
                &ctx.config.fed_namespace,
                &settings.health,
                &ctx.caches.clusters,
            )
            .await;
        for (cluster, ready) in flips {
            tracing::info!(%cluster, ready, "cluster readiness changed");
            let delay = if ready {
                settings.available_delay
            } else {
                settings.unavailable_delay
            };
            let (readiness, changed) = (readiness.clone(), ctx.caches.changed.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                readiness.fetch_add(1, Ordering::Relaxed);
                changed.notify_one();
            });
        }
        tokio::time::sleep(settings.health.period.max(Duration::from_millis(50))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ftc(status_collection: &str, propagation: &str) -> FederatedTypeConfig {
        let mut ftc: FederatedTypeConfig = serde_json::from_value(json!({
            "apiVersion": "core.kubefed.io/v1beta1", "kind": "FederatedTypeConfig",
            "metadata": {"name": "deployments.apps", "generation": 4},
            "spec": {"targetType": {"group": "apps", "version": "v1", "kind": "Deployment", "scope": "Namespaced"},
                     "federatedType": {"group": "types.kubefed.io", "version": "v1beta1", "kind": "FederatedDeployment", "scope": "Namespaced"},
                     "propagation": propagation, "statusCollection": status_collection}}))
        .unwrap();
        ftc.status = None;
        ftc
    }

    #[test]
    fn status_controller_runs_only_with_collection_and_the_gate() {
        let s = ftc_status(&ftc("Enabled", "Enabled"), true);
        assert_eq!(s.observed_generation, 4);
        assert_eq!(s.propagation_controller, ControllerStatus::Running);
        assert_eq!(s.status_controller, Some(ControllerStatus::Running));
        for (collection, gate) in [("Enabled", false), ("Disabled", true), ("Disabled", false)] {
            assert_eq!(
                ftc_status(&ftc(collection, "Enabled"), gate).status_controller,
                Some(ControllerStatus::NotRunning),
                "{collection} gate={gate}"
            );
        }
        let off = ftc_status(&ftc("Enabled", "Disabled"), true);
        assert_eq!(off.propagation_controller, ControllerStatus::NotRunning);
        assert_eq!(
            serde_json::to_value(&off).unwrap(),
            json!({"observedGeneration": 4, "propagationController": "NotRunning", "statusController": "NotRunning"})
        );
    }
}
