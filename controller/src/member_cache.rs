//! One member cluster's objects of one target type, as the controller manages them: a
//! kube-runtime watcher limited to `kubefed.io/managed=true` feeding a reflector store (managed
//! fields dropped), plus what this controller wrote and the watch has not delivered yet.
//!
//! The overlay of own writes exists because a reconcile can run again before the watch event of
//! its previous write arrives (its own status write triggers it): without it the plan would see
//! the old object and write again with a stale resourceVersion. An overlay entry is dropped as
//! soon as the watch delivers that object at the same or a newer resourceVersion (compared as
//! numbers, as etcd and cellfed's store issue them; an opaque version disables the overlay).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cellfed_api::FederatedResource;
use cellfed_api::well_known::{MANAGED_LABEL, MANAGED_LABEL_VALUE};
use futures::StreamExt as _;
use kube::ResourceExt as _;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::host::AbortOnDrop;
use crate::members::Member;

/// Server-side timeout of one member watch request (re-opened from the last resourceVersion).
pub const WATCH_TIMEOUT_SECONDS: u32 = 45;
/// How long an own write shadows the cache at most (a broken watch must not hide drift forever).
const OVERLAY_TTL: Duration = Duration::from_secs(60);

/// An own write the watch has not delivered yet.
#[derive(Clone, Debug)]
struct Written {
    /// resourceVersion of the written object (of the deleted one for a delete).
    resource_version: u64,
    /// The object as the member returned it; None after a delete.
    object: Option<Arc<Value>>,
    at: Instant,
}

/// The cache of one (member, type).
pub struct MemberCache {
    /// The member cluster.
    pub cluster: String,
    store: Store<DynamicObject>,
    target: ApiResource,
    started: Instant,
    synced: AtomicBool,
    written: Mutex<HashMap<(String, String), Written>>,
    in_flight: Mutex<HashSet<(String, String)>>,
}

/// Where the watch's events go.
#[derive(Clone)]
pub struct Triggers {
    /// The federated resource a member object belongs to.
    pub resource: UnboundedSender<ObjectRef<FederatedResource>>,
    /// Reconcile every resource of the type (after a (re-)list).
    pub all: UnboundedSender<()>,
    /// The federated type.
    pub federated: ApiResource,
    /// Whether the target type is namespaced.
    pub namespaced: bool,
    /// The target is `Namespace`: the federated resource of member namespace X is the
    /// FederatedNamespace X in namespace X.
    pub target_is_namespace: bool,
}

impl MemberCache {
    /// Starts watching `member`'s managed objects of `target`; the watch ends when the returned
    /// task guard is dropped. A cell's derived cluster watches only its member namespace.
    pub fn start(
        member: &Member,
        client: kube::Client,
        target: &ApiResource,
        triggers: Triggers,
    ) -> (Arc<Self>, AbortOnDrop) {
        let writer = reflector::store::Writer::new(target.clone());
        let reader = writer.as_reader();
        let cache = Arc::new(Self {
            cluster: member.name.clone(),
            store: reader,
            target: target.clone(),
            started: Instant::now(),
            synced: AtomicBool::new(false),
            written: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashSet::new()),
        });
        let api: Api<DynamicObject> = match member.member_namespace.as_deref() {
            Some(ns) if triggers.namespaced => Api::namespaced_with(client, ns, target),
            _ => Api::all_with(client, target),
        };
        let config = watcher::Config::default()
            .labels(&format!("{MANAGED_LABEL}={MANAGED_LABEL_VALUE}"))
            .timeout(WATCH_TIMEOUT_SECONDS);
        let stream = reflector::reflector(
            writer,
            watcher::watcher(api, config)
                .default_backoff()
                .modify(|o: &mut DynamicObject| o.managed_fields_mut().clear()),
        );
        let fed_namespace = member.cell_namespace.clone();
        let me = cache.clone();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(Event::Apply(o) | Event::Delete(o)) => {
                        me.settle(&o);
                        let ns = if triggers.namespaced {
                            fed_namespace.clone().or_else(|| o.namespace())
                        } else if triggers.target_is_namespace {
                            Some(o.name_any())
                        } else {
                            None
                        };
                        let mut r = ObjectRef::new_with(&o.name_any(), triggers.federated.clone());
                        if let Some(ns) = ns {
                            r = r.within(&ns);
                        }
                        let _ = triggers.resource.send(r);
                    }
                    Ok(Event::InitApply(o)) => me.settle(&o),
                    Ok(Event::Init) => {}
                    Ok(Event::InitDone) => {
                        me.synced.store(true, Ordering::Relaxed);
                        let _ = triggers.all.send(());
                    }
                    Err(e) => {
                        tracing::debug!(cluster = %me.cluster, kind = %me.target.kind, error = %e, "member watch")
                    }
                }
            }
        });
        (cache, AbortOnDrop(task))
    }

    /// Whether the watch has listed once.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    /// When the watch started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The managed object `namespace/name` as last seen or written (empty namespace for
    /// cluster-scoped kinds).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Value> {
        let mut key = ObjectRef::new_with(name, self.target.clone());
        if !namespace.is_empty() {
            key = key.within(namespace);
        }
        let cached = self.store.get(&key);
        let written = self
            .written
            .lock()
            .ok()
            .and_then(|w| w.get(&(namespace.to_string(), name.to_string())).cloned())
            .filter(|w| w.at.elapsed() < OVERLAY_TTL);
        match (written, cached) {
            (Some(w), cached)
                if cached
                    .as_ref()
                    .and_then(|c| version(c.metadata.resource_version.as_deref()))
                    .is_none_or(|rv| rv <= w.resource_version) =>
            {
                w.object.map(|o| (*o).clone())
            }
            (_, cached) => cached.and_then(|o| serde_json::to_value(&*o).ok()),
        }
    }

    /// Records an own write: the object the member returned, or None after a delete of the
    /// object at `deleted_version`.
    pub fn wrote(
        &self,
        namespace: &str,
        name: &str,
        object: Option<Value>,
        deleted_version: Option<&str>,
    ) {
        let rv = match &object {
            Some(o) => version(
                o.pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str),
            ),
            None => version(deleted_version),
        };
        let Some(resource_version) = rv else { return };
        if let Ok(mut w) = self.written.lock() {
            w.insert(
                (namespace.to_string(), name.to_string()),
                Written {
                    resource_version,
                    object: object.map(Arc::new),
                    at: Instant::now(),
                },
            );
        }
    }

    /// Marks a write of `namespace/name` as under way; false when one already is.
    pub fn begin_write(&self, namespace: &str, name: &str) -> bool {
        self.in_flight
            .lock()
            .map(|mut f| f.insert((namespace.to_string(), name.to_string())))
            .unwrap_or(true)
    }

    /// The write of `namespace/name` ended (applied, failed or timed out).
    pub fn end_write(&self, namespace: &str, name: &str) {
        if let Ok(mut f) = self.in_flight.lock() {
            f.remove(&(namespace.to_string(), name.to_string()));
        }
    }

    /// Whether a write of `namespace/name` is still under way (a slow member): nothing more is
    /// planned for it until that write ends.
    pub fn writing(&self, namespace: &str, name: &str) -> bool {
        self.in_flight
            .lock()
            .map(|f| f.contains(&(namespace.to_string(), name.to_string())))
            .unwrap_or(false)
    }

    /// Drops the overlay entry of `o` once the watch delivered it at least as new.
    fn settle(&self, o: &DynamicObject) {
        let Some(rv) = version(o.metadata.resource_version.as_deref()) else {
            return;
        };
        let key = (o.namespace().unwrap_or_default(), o.name_any());
        if let Ok(mut w) = self.written.lock() {
            let stale = w.get(&key).is_some_and(|e| {
                // a delete event carries a newer version than the object we deleted
                if e.object.is_none() {
                    rv > e.resource_version
                } else {
                    rv >= e.resource_version
                }
            });
            if stale {
                w.remove(&key);
            }
        }
    }
}

fn version(rv: Option<&str>) -> Option<u64> {
    rv?.parse().ok()
}
