//! Roles, ClusterRoles and their bindings as the store holds them, kept in memory by a store
//! watch (as kube-apiserver's RBAC authorizer reads informer caches): one LIST at start and after
//! a broken watch, never one per request. Every change rebuilds an immutable
//! [`Snapshot`] (bootstrap roles underneath, ClusterRole aggregation applied) that requests read
//! without locking each other out.
//!
//! A write of an RBAC object through this server also refreshes the cache before it is answered
//! ([`RbacCache::refresh`]), so a client that just created a RoleBinding is authorized by it on
//! its next request; writes through other replicas arrive within the store's poll interval.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cellfed_auth::rbac::aggregate::aggregate;
use cellfed_auth::rbac::{Snapshot, bootstrap};
use cellfed_store::{EventKind, Store};
use futures::{FutureExt as _, StreamExt as _};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde_json::Value;

/// The store prefix of every RBAC object.
pub const PREFIX: &str = "/registry/rbac.authorization.k8s.io/";

/// What the cache holds: the raw objects by store key, as of a revision.
#[derive(Default)]
struct Objects {
    by_key: BTreeMap<String, Vec<u8>>,
    revision: i64,
}

/// The watch-fed RBAC cache.
pub struct RbacCache {
    objects: Mutex<Objects>,
    snapshot: RwLock<Arc<Snapshot>>,
}

impl std::fmt::Debug for RbacCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RbacCache")
            .field("revision", &self.revision())
            .finish_non_exhaustive()
    }
}

impl RbacCache {
    /// A cache filled from one LIST of the store.
    pub async fn load(store: &Store) -> Result<Arc<Self>, cellfed_store::Error> {
        let cache = Arc::new(Self {
            objects: Mutex::new(Objects::default()),
            snapshot: RwLock::new(Arc::new(build(&BTreeMap::new()))),
        });
        cache.refresh(store).await?;
        Ok(cache)
    }

    /// A cache holding only the bootstrap policy (tests, and servers without a store watch).
    pub fn bootstrap_only() -> Arc<Self> {
        Arc::new(Self {
            objects: Mutex::new(Objects::default()),
            snapshot: RwLock::new(Arc::new(build(&BTreeMap::new()))),
        })
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The revision the snapshot reflects.
    pub fn revision(&self) -> i64 {
        self.lock().revision
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Objects> {
        match self.objects.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Re-reads every RBAC object (one LIST of the RBAC prefix) unless the cache is already
    /// newer than that read.
    pub async fn refresh(&self, store: &Store) -> Result<(), cellfed_store::Error> {
        let list = store.list(PREFIX, Default::default()).await?;
        let mut objects = self.lock();
        if list.revision < objects.revision {
            return Ok(());
        }
        objects.by_key = list
            .items
            .into_iter()
            .map(|kv| (kv.key, kv.value))
            .collect();
        objects.revision = list.revision;
        self.publish(&objects);
        Ok(())
    }

    fn publish(&self, objects: &Objects) {
        let snapshot = Arc::new(build(&objects.by_key));
        match self.snapshot.write() {
            Ok(mut s) => *s = snapshot,
            Err(p) => *p.into_inner() = snapshot,
        }
    }

    /// Follows the store until the task is aborted: watch from the cache's revision, apply
    /// events in batches, and after a broken watch (compaction, a lagging consumer, a store
    /// error) LIST again and watch from there.
    pub async fn follow(self: Arc<Self>, store: Store) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let from = self.revision();
            match store.watch(PREFIX, from).await {
                Ok(mut events) => {
                    backoff = Duration::from_millis(100);
                    while let Some(first) = events.next().await {
                        let mut batch = vec![first];
                        while let Some(Some(more)) = events.next().now_or_never() {
                            batch.push(more);
                        }
                        if !self.apply(batch) {
                            break;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "RBAC cache: watch failed"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            if let Err(e) = self.refresh(&store).await {
                tracing::warn!(error = %e, "RBAC cache: re-reading roles and bindings failed");
            }
        }
    }

    /// Applies watch events; false when the watch broke (the caller re-lists).
    fn apply(&self, batch: Vec<cellfed_store::Result<cellfed_store::Event>>) -> bool {
        let mut objects = self.lock();
        let mut healthy = true;
        let mut changed = false;
        for event in batch {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    tracing::info!(error = %e, "RBAC cache: watch ended, re-reading");
                    healthy = false;
                    break;
                }
            };
            if event.kv.mod_revision <= objects.revision {
                continue; // already in a newer LIST
            }
            match event.kind {
                EventKind::Deleted => {
                    objects.by_key.remove(&event.kv.key);
                }
                EventKind::Created | EventKind::Updated => {
                    objects.by_key.insert(event.kv.key, event.kv.value);
                }
            }
            objects.revision = event.kv.mod_revision;
            changed = true;
        }
        if changed {
            self.publish(&objects);
        }
        healthy
    }
}

/// The snapshot of the stored objects over the bootstrap policy, aggregated ClusterRoles filled.
fn build(by_key: &BTreeMap<String, Vec<u8>>) -> Snapshot {
    let mut roles = Vec::new();
    let mut cluster_roles: BTreeMap<String, ClusterRole> = bootstrap::cluster_roles()
        .into_iter()
        .map(|r| (r.metadata.name.clone().unwrap_or_default(), r))
        .collect();
    let mut role_bindings = Vec::new();
    let mut cluster_role_bindings = Vec::new();
    for (key, value) in by_key {
        let Some(plural) = key
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('/').next())
        else {
            continue;
        };
        let parsed = match plural {
            "roles" => decode::<Role>(key, value).map(|r| roles.push(r)),
            "clusterroles" => decode::<ClusterRole>(key, value).map(|r| {
                cluster_roles.insert(r.metadata.name.clone().unwrap_or_default(), r);
            }),
            "rolebindings" => decode::<RoleBinding>(key, value).map(|b| role_bindings.push(b)),
            "clusterrolebindings" => {
                decode::<ClusterRoleBinding>(key, value).map(|b| cluster_role_bindings.push(b))
            }
            _ => Some(()),
        };
        let _ = parsed;
    }
    let mut cluster_roles: Vec<ClusterRole> = cluster_roles.into_values().collect();
    aggregate(&mut cluster_roles);
    Snapshot::with_bootstrap(roles, cluster_roles, role_bindings, cluster_role_bindings)
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, value: &[u8]) -> Option<T> {
    let parsed = serde_json::from_slice::<Value>(value).and_then(serde_json::from_value::<T>);
    match parsed {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(key, error = %e, "RBAC cache: stored object cannot be decoded; it grants nothing");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellfed_auth::UserInfo;
    use cellfed_auth::rbac::{Attributes, authorize};
    use serde_json::json;

    fn objects(items: &[(&str, Value)]) -> BTreeMap<String, Vec<u8>> {
        items
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), serde_json::to_vec(v).unwrap()))
            .collect()
    }

    #[test]
    fn stored_objects_grant_over_the_bootstrap_policy_and_aggregate() {
        let snap = build(&objects(&[
            (
                "clusterroles/fed-view",
                json!({"metadata": {"name": "fed-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
                       "rules": [{"apiGroups": ["types.kubefed.io"], "resources": ["federateddeployments"], "verbs": ["get", "list"]}]}),
            ),
            (
                "rolebindings/acme/viewers",
                json!({"metadata": {"name": "viewers", "namespace": "acme"},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                       "subjects": [{"kind": "User", "name": "alice"}]}),
            ),
            ("roles/acme/broken", json!({"metadata": 7})),
        ]));
        let alice = UserInfo::new("alice", ["system:authenticated"]);
        let fed = Attributes::resource(
            alice.clone(),
            "list",
            "types.kubefed.io",
            "federateddeployments",
        );
        assert!(authorize(&fed.clone().namespace("acme"), &snap).is_allowed());
        assert!(!authorize(&fed.namespace("globex"), &snap).is_allowed());
        let cm = Attributes::resource(alice.clone(), "get", "", "configmaps").namespace("acme");
        assert!(authorize(&cm, &snap).is_allowed());
        let discovery = Attributes::non_resource(alice, "get", "/apis/apps/v1");
        assert!(authorize(&discovery, &snap).is_allowed());
    }

    #[test]
    fn events_older_than_the_list_are_ignored_and_deletes_revoke() {
        let cache = RbacCache::bootstrap_only();
        let kv = |rev: i64, value: Value| cellfed_store::KeyValue {
            key: format!("{PREFIX}clusterrolebindings/bob"),
            value: serde_json::to_vec(&value).unwrap(),
            create_revision: rev,
            mod_revision: rev,
            lease: 0,
            stale: false,
        };
        let binding = json!({"metadata": {"name": "bob"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "User", "name": "bob"}]});
        let bob = Attributes::resource(
            UserInfo::new("bob", Vec::<String>::new()),
            "delete",
            "",
            "secrets",
        );
        let event = |kind, rev| {
            Ok(cellfed_store::Event {
                kind,
                kv: kv(rev, binding.clone()),
                prev: None,
            })
        };
        assert!(cache.apply(vec![event(EventKind::Created, 5)]));
        assert!(authorize(&bob, &*cache.snapshot()).is_allowed());
        assert!(cache.apply(vec![event(EventKind::Deleted, 4)]));
        assert!(
            authorize(&bob, &*cache.snapshot()).is_allowed(),
            "older event ignored"
        );
        assert!(cache.apply(vec![event(EventKind::Deleted, 6)]));
        assert!(!authorize(&bob, &*cache.snapshot()).is_allowed());
        assert_eq!(cache.revision(), 6);
        assert!(!cache.apply(vec![Err(cellfed_store::Error::WatcherLagged)]));
    }
}
