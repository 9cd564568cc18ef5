//! One running propagation controller per enabled FederatedTypeConfig: a kube-runtime
//! [`Controller`] over the federated type (its watch, reflector store, deduplicating scheduler,
//! bounded concurrency, requeues), fed additionally by every member's watch of the target type
//! (an event enqueues the federated resource of the same name) and by "reconcile everything"
//! triggers (a member's cache (re)synced, clusters, namespaces or settings changed, the resync
//! period). Started and stopped at runtime by the supervisor; dropping it stops everything.
//! The controller of the namespaces type also wakes the supervisor on every FederatedNamespace
//! event, so the resources of a namespace whose placement changed are reconciled.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cellfed_api::FederatedResource;
use cellfed_api::features::FeatureGate;
use cellfed_api::kubefed::FederatedTypeConfig;
use cellfed_api::tenancy::Tenancy;
use futures::StreamExt as _;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector;
use kube::runtime::watcher;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::Error;
use crate::context::{Context, TypeContext};
use crate::error_policy::{self, Retry};
use crate::host::AbortOnDrop;
use crate::member_cache::{MemberCache, Triggers};
use crate::members::Member;
use crate::plan::TargetType;
use crate::propagation::{self, fetch};

/// First retry delay of a transient failure (doubles per failure, at most a minute).
pub const RETRY_BASE: Duration = Duration::from_millis(500);

/// A running type controller.
pub struct TypeController {
    /// What it was started from (FTC generation and worker count); a change restarts it.
    pub fingerprint: String,
    ctx: Arc<TypeContext>,
    triggers: Triggers,
    store: reflector::Store<FederatedResource>,
    watches: BTreeMap<String, (String, AbortOnDrop)>,
    /// Events seen on the federated type's watch, so the tenancies below are recomputed only
    /// when a resource or a namespace's tenancy changed.
    changes: Arc<AtomicU64>,
    /// The tenancies of the type's resources, and the (changes, namespace tenancy fingerprint)
    /// they were computed at.
    tenancies: Option<(TenanciesAt, Arc<HashSet<Tenancy>>)>,
    _run: AbortOnDrop,
}

/// (federated watch events, namespace tenancy fingerprint) when tenancies were computed.
type TenanciesAt = (u64, u64);

/// The fingerprint a type controller for `ftc` with `workers` runs under.
pub fn fingerprint(ftc: &FederatedTypeConfig, workers: usize) -> String {
    format!("{}/{workers}", ftc.metadata.generation.unwrap_or_default())
}

impl TypeController {
    /// Starts the controller of `ftc`.
    pub fn start(shared: Arc<Context>, ftc: &FederatedTypeConfig) -> Self {
        let workers = shared.settings().workers;
        let federated = ftc.spec.federated_type.api_resource();
        let target_resource = ftc.spec.target_type.api_resource();
        let target = TargetType {
            api_version: target_resource.api_version.clone(),
            kind: target_resource.kind.clone(),
            namespaced: ftc.spec.target_type.is_namespaced(),
            propagated_annotations: ftc.spec.propagated_annotations.clone(),
            collect_status: ftc.status_enabled(),
        };
        let (resource_tx, resource_rx) = mpsc::unbounded_channel();
        let (all_tx, all_rx) = mpsc::unbounded_channel();
        let triggers = Triggers {
            resource: resource_tx.clone(),
            all: all_tx,
            federated: federated.clone(),
            namespaced: target.namespaced,
            target_is_namespace: target.is_namespace(),
        };
        let component = format!("{}-controller", federated.kind.to_lowercase());
        let ctx = Arc::new(TypeContext {
            shared: shared.clone(),
            ftc: ftc.clone(),
            federated: federated.clone(),
            target_resource,
            target,
            caches: RwLock::new(BTreeMap::new()),
            failures: Mutex::new(Default::default()),
            requeue: resource_tx,
            component,
        });
        // network: one watch of the federated type on the host
        let api: Api<FederatedResource> = Api::all_with(shared.host.clone(), &federated);
        let writer = reflector::store::Writer::new(federated.clone());
        let reader = writer.as_reader();
        // FederatedNamespaces wake the supervisor: namespace placement of other types changed
        let wake = ctx
            .target
            .is_namespace()
            .then(|| shared.caches.changed.clone());
        let changes = Arc::new(AtomicU64::new(0));
        let counted = changes.clone();
        let objects = reflector::reflector(
            writer,
            watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .modify(|o: &mut FederatedResource| o.managed_fields_mut().clear()),
        )
        .inspect(move |event| {
            if matches!(
                event,
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone)
            ) {
                counted.fetch_add(1, Ordering::Relaxed);
            }
            if let (
                Some(wake),
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone),
            ) = (&wake, event)
            {
                wake.notify_one();
            }
        })
        .applied_objects();
        let config =
            controller::Config::default().concurrency(u16::try_from(workers).unwrap_or(u16::MAX));
        let store = reader.clone();
        let running = Controller::for_stream_with(objects, reader, federated.clone())
            .with_config(config)
            .reconcile_all_on(UnboundedReceiverStream::new(all_rx))
            .reconcile_on(UnboundedReceiverStream::new(resource_rx))
            .run(propagation::reconcile, on_error, ctx.clone());
        let kind = federated.kind.clone();
        let task = tokio::spawn(async move {
            let mut running = std::pin::pin!(running);
            while let Some(outcome) = running.next().await {
                if let Err(e) = outcome {
                    tracing::debug!(%kind, error = %e, "type controller");
                }
            }
        });
        tracing::info!(kind = %federated.kind, workers, "started propagation controller");
        Self {
            fingerprint: fingerprint(ftc, workers),
            ctx,
            triggers,
            store,
            watches: BTreeMap::new(),
            changes,
            tenancies: None,
            _run: AbortOnDrop(task),
        }
    }

    /// Reconciles every federated resource of the type.
    pub fn reconcile_all(&self) {
        let _ = self.triggers.all.send(());
    }

    /// Reconciles the federated resources of the type in `namespace`.
    pub fn reconcile_namespace(&self, namespace: &str) {
        for fed in self.store.state() {
            if fed.namespace().as_deref() == Some(namespace) {
                let r = reflector::ObjectRef::new_with(&fed.name_any(), self.ctx.federated.clone())
                    .within(namespace);
                let _ = self.triggers.resource.send(r);
            }
        }
    }

    /// Whether this type's target is namespaced (its placement meets namespace placement).
    pub fn namespaced(&self) -> bool {
        self.ctx.target.namespaced
    }

    /// For the namespaces type: its FederatedNamespaces and the federated type keying them.
    pub fn federated_namespaces(
        &self,
    ) -> Option<(reflector::Store<FederatedResource>, kube::core::ApiResource)> {
        self.ctx
            .target
            .is_namespace()
            .then(|| (self.store.clone(), self.ctx.federated.clone()))
    }

    /// The tenancies of the type's resources; walks the store only when a resource changed or
    /// `namespaces` (the namespace tenancy fingerprint) differs from the last walk.
    fn tenancies(&mut self, namespaces: u64) -> Arc<HashSet<Tenancy>> {
        let at = (self.changes.load(Ordering::Relaxed), namespaces);
        if let Some((seen, tenancies)) = &self.tenancies
            && *seen == at
        {
            return tenancies.clone();
        }
        let tenancies: Arc<HashSet<Tenancy>> = Arc::new(
            self.store
                .state()
                .iter()
                .map(|fed| fetch::tenancy_of(&self.ctx, fed))
                .collect(),
        );
        self.tenancies = Some((at, tenancies.clone()));
        tenancies
    }

    /// Starts watches of the members some resource of this type may use (its tenant's clusters;
    /// a member no resource may use is never read) and of members whose access changed; stops
    /// the others. Reconciles everything when the set changed. `namespaces` fingerprints the
    /// namespaces' tenancy labels.
    pub fn sync_members(
        &mut self,
        members: &[Arc<Member>],
        cache_sync_timeout: Duration,
        namespaces: u64,
    ) {
        let mut changed = false;
        let isolation = self
            .ctx
            .shared
            .settings()
            .gates
            .enabled(FeatureGate::TenantIsolation);
        let tenancies = self.tenancies(namespaces);
        let wanted: BTreeMap<&str, &Arc<Member>> = members
            .iter()
            .filter(|m| m.client.is_some())
            .filter(|m| !isolation || tenancies.iter().any(|t| t.may_use(&m.tenancy)))
            .filter(|_| !tenancies.is_empty())
            .map(|m| (m.name.as_str(), m))
            .collect();
        let gone: Vec<String> = self
            .watches
            .keys()
            .filter(|k| !wanted.contains_key(k.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.watches.remove(&name);
            if let Ok(mut c) = self.ctx.caches.write() {
                c.remove(&name);
            }
            changed = true;
        }
        for (name, member) in wanted {
            let key = format!("{}/{:?}", member.fingerprint, member.member_namespace);
            if self.watches.get(name).is_some_and(|(k, _)| *k == key) {
                continue;
            }
            let Some(client) = member.client.clone() else {
                continue;
            };
            // network: one watch of the target type's managed objects in this member
            let (cache, guard) = MemberCache::start(
                member,
                client,
                &self.ctx.target_resource,
                self.ctx.target.collect_status,
                self.triggers.clone(),
            );
            if let Ok(mut c) = self.ctx.caches.write() {
                c.insert(name.to_string(), cache.clone());
            }
            self.watches.insert(name.to_string(), (key, guard));
            // a member that never syncs counts as not ready after the cache sync timeout
            let all = self.triggers.all.clone();
            tokio::spawn(async move {
                tokio::time::sleep(cache_sync_timeout).await;
                if !cache.synced() {
                    let _ = all.send(());
                }
            });
            changed = true;
        }
        if changed {
            self.reconcile_all();
        }
    }
}

/// Per-key backoff: transient failures are retried after a doubling delay, permanent ones
/// (the host refused what we wrote) wait for a change of the resource.
fn on_error(fed: Arc<FederatedResource>, error: &Error, ctx: Arc<TypeContext>) -> Action {
    let key = format!("{}/{}", fed.namespace().unwrap_or_default(), fed.name_any());
    let failures = ctx
        .failures
        .lock()
        .map(|mut f| {
            let n = f.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        })
        .unwrap_or(1);
    ctx.shared
        .metrics
        .errors
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let retry = error_policy::error_policy(error, failures, RETRY_BASE);
    tracing::warn!(kind = %ctx.federated.kind, resource = %key, error = %error, ?retry, "reconcile failed");
    match retry {
        Retry::OnChange => Action::await_change(),
        Retry::After(d) => Action::requeue(d),
    }
}
