//! One member cluster's objects of one target type, as the controller manages them: a
//! kube-runtime watcher limited to `kubefed.io/managed=true` feeding a reflector store, plus what
//! this controller wrote and the watch has not delivered yet.
//!
//! The store holds [`CachedObject`]s, not `DynamicObject`s: each watched object is turned into one
//! compact JSON text as it arrives (managed fields and, for types whose status is not collected,
//! `status` dropped), with its name, namespace and resourceVersion beside it for the store's key
//! and the overlay below. A `DynamicObject` keeps every JSON object of the member object as a
//! `BTreeMap` node of its own (≈ 600 bytes even for one entry), and its store key repeats the
//! target type's five names; the text costs about its length. Planning parses the text back on
//! demand, which is what reading the store cost before too (the object was converted to a `Value`
//! on every read).
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

use std::borrow::Cow;

use cellfed_api::FederatedResource;
use cellfed_api::well_known::{MANAGED_LABEL, MANAGED_LABEL_VALUE};
use futures::{StreamExt as _, TryStreamExt as _};
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::reflector::{self, Lookup, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::host::AbortOnDrop;
use crate::members::Member;

/// Server-side timeout of one member watch request (re-opened from the last resourceVersion).
pub const WATCH_TIMEOUT_SECONDS: u32 = 45;
/// Objects per page of a member watch's initial LIST. A page is held as parsed objects until the
/// reflector took every one of them, and every member lists at once when the controller starts:
/// 100 bounds that to a few MiB per member, at one LIST request per 100 managed objects.
pub const LIST_PAGE_SIZE: u32 = 100;
/// How long an own write shadows the cache at most (a broken watch must not hide drift forever).
const OVERLAY_TTL: Duration = Duration::from_secs(60);

/// An own write the watch has not delivered yet.
#[derive(Clone, Debug)]
struct Written {
    /// resourceVersion of the written object (of the deleted one for a delete).
    resource_version: u64,
    /// The object as the member returned it (compacted like the store's); None after a delete.
    object: Option<Box<str>>,
    at: Instant,
}

/// The cache of one (member, type).
pub struct MemberCache {
    /// The member cluster.
    pub cluster: String,
    store: Store<CachedObject>,
    target: ApiResource,
    /// Whether `status` is kept (the type's status is collected into the federated resource).
    keep_status: bool,
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
    /// `keep_status`: whether the objects' `status` is kept (only status collection reads it).
    pub fn start(
        member: &Member,
        client: kube::Client,
        target: &ApiResource,
        keep_status: bool,
        triggers: Triggers,
    ) -> (Arc<Self>, AbortOnDrop) {
        let (reader, writer) = reflector::store::<CachedObject>();
        let cache = Arc::new(Self {
            cluster: member.name.clone(),
            store: reader,
            target: target.clone(),
            keep_status,
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
            .timeout(WATCH_TIMEOUT_SECONDS)
            .page_size(LIST_PAGE_SIZE);
        let stream = reflector::reflector(
            writer,
            watcher::watcher(api, config)
                .default_backoff()
                .map_ok(move |e| compact_event(e, keep_status)),
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
                            fed_namespace
                                .clone()
                                .or_else(|| o.namespace.as_deref().map(str::to_string))
                        } else if triggers.target_is_namespace {
                            Some(o.name.to_string())
                        } else {
                            None
                        };
                        let mut r = ObjectRef::new_with(&o.name, triggers.federated.clone());
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
        let mut key = ObjectRef::<CachedObject>::new(name);
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
                    .and_then(|c| version(c.resource_version.as_deref()))
                    .is_none_or(|rv| rv <= w.resource_version) =>
            {
                w.object.and_then(|o| serde_json::from_str(&o).ok())
            }
            (_, cached) => cached.and_then(|o| o.to_value()),
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
        let object = object.map(|mut o| {
            strip(&mut o, self.keep_status);
            o.to_string().into_boxed_str()
        });
        if let Ok(mut w) = self.written.lock() {
            w.insert(
                (namespace.to_string(), name.to_string()),
                Written {
                    resource_version,
                    object,
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
    fn settle(&self, o: &CachedObject) {
        let Some(rv) = version(o.resource_version.as_deref()) else {
            return;
        };
        let key = (
            o.namespace.as_deref().unwrap_or_default().to_string(),
            o.name.to_string(),
        );
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

/// A member object as the cache keeps it: name, namespace and resourceVersion (the store's key
/// and the overlay's comparison), and the whole object, less what planning never reads, as one
/// JSON text.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedObject {
    name: Box<str>,
    namespace: Option<Box<str>>,
    resource_version: Option<Box<str>>,
    json: Box<str>,
}

impl CachedObject {
    /// Compacts a watched object: drops `metadata.managedFields`, and `status` unless
    /// `keep_status`, and keeps the rest as JSON text.
    pub fn new(mut o: DynamicObject, keep_status: bool) -> Self {
        o.metadata.managed_fields = None;
        if !keep_status && let Some(data) = o.data.as_object_mut() {
            data.remove("status");
        }
        // written straight from the object: no intermediate `Value` tree
        let json = serde_json::to_string(&o).unwrap_or_default();
        Self {
            name: o.metadata.name.unwrap_or_default().into_boxed_str(),
            namespace: o.metadata.namespace.map(String::into_boxed_str),
            resource_version: o.metadata.resource_version.map(String::into_boxed_str),
            json: json.into_boxed_str(),
        }
    }

    /// The object as planning reads it.
    pub fn to_value(&self) -> Option<Value> {
        serde_json::from_str(&self.json).ok()
    }

    /// The kept JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// Drops from a member object what planning never reads: `metadata.managedFields`, and `status`
/// unless the type's status is collected (the desired object never carries one, so comparing
/// and retaining never look at it).
fn strip(o: &mut Value, keep_status: bool) {
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    if !keep_status && let Some(obj) = o.as_object_mut() {
        obj.remove("status");
    }
}

/// The watcher's event with its object compacted.
fn compact_event(e: Event<DynamicObject>, keep_status: bool) -> Event<CachedObject> {
    match e {
        Event::Apply(o) => Event::Apply(CachedObject::new(o, keep_status)),
        Event::Delete(o) => Event::Delete(CachedObject::new(o, keep_status)),
        Event::InitApply(o) => Event::InitApply(CachedObject::new(o, keep_status)),
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
    }
}

/// The store's key is name and namespace only: the type is the cache's (one store per target
/// type), and resourceVersion and uid are not repeated in every key.
impl Lookup for CachedObject {
    type DynamicType = ();

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("MemberObject")
    }

    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("memberobjects")
    }

    fn name(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.name))
    }

    fn namespace(&self) -> Option<Cow<'_, str>> {
        self.namespace.as_deref().map(Cow::Borrowed)
    }

    fn resource_version(&self) -> Option<Cow<'_, str>> {
        self.resource_version.as_deref().map(Cow::Borrowed)
    }

    fn uid(&self) -> Option<Cow<'_, str>> {
        None
    }

    fn to_object_ref(&self, (): ()) -> ObjectRef<Self> {
        let key = ObjectRef::new(&self.name);
        match &self.namespace {
            Some(ns) => key.within(ns),
            None => key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::store::Writer;
    use serde_json::json;

    /// A Deployment as a member returns it: server-set metadata, defaults, managed fields and the
    /// workload's status.
    fn member_deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "d00000", "namespace": "bench", "uid": "1b08068b", "resourceVersion": "3023",
                "generation": 2, "creationTimestamp": "2026-11-30T18:42:52Z",
                "labels": {"kubefed.io/managed": "true"},
                "annotations": {"cellfed.io/template-hash": "792d2c047b4aba91",
                                "cellfed.io/federated-generation": "2"},
                "finalizers": ["example.com/keep"],
                "managedFields": [{"manager": "cellfed", "operation": "Update",
                                   "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
            },
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d0"}},
                     "template": {"metadata": {"labels": {"app": "d0"}},
                                  "spec": {"containers": [{"name": "c", "image": "app:2"}]}}},
            "status": {"replicas": 1, "readyReplicas": 1,
                       "conditions": [{"type": "Available", "status": "True"}]}
        })
    }

    fn cached(keep_status: bool) -> CachedObject {
        let o: DynamicObject = serde_json::from_value(member_deployment()).unwrap();
        CachedObject::new(o, keep_status)
    }

    #[test]
    fn the_cache_keeps_what_planning_reads_and_drops_managed_fields_and_uncollected_status() {
        let kept = cached(false).to_value().unwrap();
        let mut expected = member_deployment();
        expected["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        expected.as_object_mut().unwrap().remove("status");
        // everything else, byte for byte: spec (compared and retained), labels, annotations,
        // finalizers, uid, resourceVersion
        assert_eq!(kept, expected);
        assert!(kept.pointer("/metadata/managedFields").is_none());
        assert!(kept.get("status").is_none());
    }

    #[test]
    fn a_collected_status_is_kept() {
        let kept = cached(true).to_value().unwrap();
        assert_eq!(kept["status"], member_deployment()["status"]);
        assert!(kept.pointer("/metadata/managedFields").is_none());
    }

    #[test]
    fn the_cache_keeps_one_compact_text_per_object() {
        let c = cached(false);
        assert_eq!(c.json().len(), c.to_value().unwrap().to_string().len());
        assert!(!c.json().contains('\n') && !c.json().contains(": "));
        // the store's key is namespace/name alone: no type, resourceVersion or uid copied into it
        let key = c.to_object_ref(());
        assert_eq!(
            (key.name.as_str(), key.namespace.as_deref()),
            ("d00000", Some("bench"))
        );
        assert!(key.extra.resource_version.is_none() && key.extra.uid.is_none());
    }

    #[test]
    fn a_store_of_compact_objects_follows_watch_events() {
        let mut writer: Writer<CachedObject> = Writer::default();
        let store = writer.as_reader();
        let o: DynamicObject = serde_json::from_value(member_deployment()).unwrap();
        for e in [Event::Init, Event::InitApply(o.clone()), Event::InitDone] {
            writer.apply_watcher_event(&compact_event(e, false));
        }
        let key = ObjectRef::<CachedObject>::new("d00000").within("bench");
        let got = store.get(&key).unwrap();
        assert_eq!(got.resource_version.as_deref(), Some("3023"));
        assert_eq!(got.to_value().unwrap()["spec"], member_deployment()["spec"]);
        writer.apply_watcher_event(&compact_event(Event::Delete(o), false));
        assert!(store.get(&key).is_none());
    }
}
