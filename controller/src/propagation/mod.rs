//! Propagation of one federated resource, the reconcile a type controller runs per work-queue key:
//! [`fetch`] (caches) → [`crate::plan`] (pure) → [`apply`] (member writes) → [`status`] (host
//! write on change). A resource in sync costs no network call at all.

pub mod apply;
pub mod fetch;
pub mod status;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use cellfed_api::FederatedResource;
use cellfed_api::features::FeatureGate;
use cellfed_api::well_known::SYNC_FINALIZER;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::controller::Action;

use crate::context::TypeContext;
use crate::plan::{self, PlanInput};
use crate::{Error, Result};

/// Reconciles one federated resource (the kube-runtime reconciler of a type controller).
pub async fn reconcile(fed: Arc<FederatedResource>, ctx: Arc<TypeContext>) -> Result<Action> {
    let started = Instant::now();
    ctx.shared
        .metrics
        .reconciles
        .fetch_add(1, Ordering::Relaxed);
    let outcome = run(&fed, &ctx).await;
    ctx.shared.metrics.observe_latency(started.elapsed());
    if outcome.is_ok() {
        let key = format!("{}/{}", fed.namespace().unwrap_or_default(), fed.name_any());
        if let Ok(mut f) = ctx.failures.lock() {
            f.remove(&key);
        }
    }
    outcome
}

async fn run(fed: &FederatedResource, ctx: &Arc<TypeContext>) -> Result<Action> {
    if !ctx.shared.leadership.may_write() {
        return Ok(Action::await_change());
    }
    let name = fed.name_any();
    let api: Api<FederatedResource> = match fed.namespace() {
        Some(ns) => Api::namespaced_with(ctx.shared.host.clone(), &ns, &ctx.federated),
        None => Api::all_with(ctx.shared.host.clone(), &ctx.federated),
    };
    let settings = ctx.shared.settings();
    // fetch: caches (a GET only where a placed member lacks the object)
    let f = fetch::fetch(ctx, fed, &settings).await;
    let owner = plan::owner_of(&ctx.federated.group, &ctx.federated.kind, fed);
    let input = PlanInput {
        federated: fed,
        target: &ctx.target,
        clusters: &f.clusters,
        members: &f.members,
        adopt_resources: settings.adopt_resources,
        namespace_placement: f.namespace_placement.as_ref(),
        host_uid: f.host_uid.as_deref(),
        other_tenants_clusters: &f.other_tenants_clusters,
        owner: &owner,
    };
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();

    if fed.metadata.deletion_timestamp.is_some() {
        if !fed.finalizers().iter().any(|f| f == SYNC_FINALIZER) {
            return Ok(Action::await_change());
        }
        let p = match plan::plan_deletion(&input) {
            Ok(p) => p,
            Err(e) => {
                // a bad deleteoption annotation: say so and wait for it to be fixed
                let next = status::of_error(fed, e.reason(), &format!("{name}: {e}"), &now);
                // network: status, only when it changed
                status::write(&api, fed, &next).await?;
                return Ok(Action::await_change());
            }
        };
        // network: member deletes (or label removals when orphaning)
        let applied = apply::apply(ctx, fed, &f.visible, &p.actions).await;
        let done = applied.failures.is_empty() && applied.in_flight.is_empty();
        if p.clusters.is_empty() && done && f.pending.is_empty() {
            // network: release the finalizer
            status::set_finalizer(&api, fed, false).await?;
        } else if done
            && p.actions
                .iter()
                .any(|a| matches!(a, plan::MemberAction::RemoveManagedLabel { .. }))
        {
            // an unlabelled object leaves the managed watch: look again from what was written
            let _ = ctx.requeue.send(apply::resource_ref(ctx, fed));
        } else if !applied.failures.is_empty() {
            return Err(Error::MemberWrites {
                name,
                failures: describe(&applied.failures),
            });
        }
        // member watch events and readiness changes bring it back
        return Ok(Action::await_change());
    }
    if f.namespace_pending {
        // the FederatedNamespaces are still listing; their sync reconciles everything again
        return Ok(Action::await_change());
    }
    // network: the finalizer goes on before anything is written to a member
    status::set_finalizer(&api, fed, true).await?;
    let (next, applied) = match plan::plan(&input) {
        Ok(p) => {
            // network: member writes
            let applied = apply::apply(ctx, fed, &f.visible, &p.actions).await;
            {
                let raw_status = settings
                    .gates
                    .enabled(FeatureGate::RawResourceStatusCollection);
                let next = status::of_plan(fed, &p, &applied.failures, raw_status, &now);
                (next, applied)
            }
        }
        Err(e) => (
            status::of_error(fed, e.reason(), &format!("{name}: {e}"), &now),
            apply::Applied::default(),
        ),
    };
    let failures = applied.failures;
    // a member still syncing or still writing: its status would be a guess; its end comes back
    if f.pending.is_empty() && applied.in_flight.is_empty() {
        ctx.shared
            .metrics
            .synced_reconciles
            .fetch_add(1, Ordering::Relaxed);
        // network: status, only when it changed
        if status::write(&api, fed, &next).await? {
            ctx.shared
                .metrics
                .status_writes
                .fetch_add(1, Ordering::Relaxed);
        }
    }
    if !failures.is_empty() {
        return Err(Error::MemberWrites {
            name,
            failures: describe(&failures),
        });
    }
    Ok(Action::await_change())
}

fn describe(failures: &apply::Failures) -> String {
    failures
        .iter()
        .map(|(c, (s, m))| format!("{c}: {s}: {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}
