//! Watch-fed caches of the admission facts: reflector stores of the KubeFedClusters of the
//! federation namespace, every Namespace and every Cell, started once with the webhook and kept
//! by kube-runtime watchers (default backoff on errors). A decision reads the stores, so a write
//! costs no LIST on the host.
//!
//! - Until a store has completed its first sync, its kind is LISTed for each decision, as before
//!   the caches existed: admission never waits for a cold cache and is never wrong because of one.
//!   A host without the Cell CRD keeps the Cell store unsynced (the watcher retries) and reads no
//!   Cells, as before.
//! - A name the object refers to ([`References`]) that a synced store lacks is read with one GET,
//!   so an object created a moment ago, whose watch event is still in flight, is not refused.
//! - Cached objects keep what a decision reads (name, namespace, labels, Cell spec): managed
//!   fields, annotations and status are dropped on the way in.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use cellfed_api::Cell;
use cellfed_api::kubefed::KubeFedCluster;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::admission::{Facts, References};

/// Errors of reading the facts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Listing a kind whose cache has not completed its first sync.
    #[error("list {kind} (cache not synced yet): {source}")]
    List {
        /// The kind.
        kind: &'static str,
        /// The client error.
        source: kube::Error,
    },
    /// Reading one referenced object the cache does not have.
    #[error("get {kind} {name:?}: {source}")]
    Get {
        /// The kind.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// The client error.
        source: kube::Error,
    },
}

/// Which kinds of a snapshot came from a synced store.
#[derive(Clone, Copy)]
struct Cached {
    clusters: bool,
    namespaces: bool,
    cells: bool,
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Aborts the watch tasks when the last clone of the cache goes.
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The admission caches; cloning shares them.
#[derive(Clone)]
pub struct FactCache {
    /// Host client, for LISTs before the first sync and GETs of names the caches miss.
    client: Client,
    /// Namespace of the KubeFedClusters.
    fed_namespace: String,
    /// KubeFedClusters of `fed_namespace`.
    clusters: Store<KubeFedCluster>,
    /// Every Namespace.
    namespaces: Store<Namespace>,
    /// Every Cell.
    cells: Store<Cell>,
    /// The three watch tasks.
    _tasks: Arc<Tasks>,
}

impl FactCache {
    /// Starts the three watches on the current Tokio runtime; they stop when the last clone is
    /// dropped.
    pub fn start(client: Client, fed_namespace: impl Into<String>) -> Self {
        let fed_namespace = fed_namespace.into();
        let (clusters, t1) = reflect(
            Api::<KubeFedCluster>::namespaced(client.clone(), &fed_namespace),
            |c: &mut KubeFedCluster| {
                strip_meta(c);
                c.status = None;
            },
        );
        let (namespaces, t2) = reflect(
            Api::<Namespace>::all(client.clone()),
            |n: &mut Namespace| {
                strip_meta(n);
                n.spec = None;
                n.status = None;
            },
        );
        let (cells, t3) = reflect(Api::<Cell>::all(client.clone()), |c: &mut Cell| {
            strip_meta(c);
            c.status = None;
        });
        Self {
            client,
            fed_namespace,
            clusters,
            namespaces,
            cells,
            _tasks: Arc::new(Tasks(vec![t1, t2, t3])),
        }
    }

    /// Whether every store has completed its first sync.
    pub fn synced(&self) -> bool {
        synced(&self.clusters) && synced(&self.namespaces) && synced(&self.cells)
    }

    /// Resolves once every store has completed its first sync (callers bound it with a timeout:
    /// a host without the Cell CRD never syncs Cells).
    pub async fn ready(&self) {
        let _ = futures::join!(
            self.clusters.wait_until_ready(),
            self.namespaces.wait_until_ready(),
            self.cells.wait_until_ready()
        );
    }

    /// The facts for a decision that looks up `refs`: the stores, a LIST of each kind not synced
    /// yet, and a GET of each referenced name a synced store lacks.
    pub async fn facts(&self, refs: &References) -> Result<Facts> {
        let (mut facts, cached) = self.snapshot().await?;
        self.add_missing(refs, cached, &mut facts).await?;
        Ok(facts)
    }

    /// Every fact from the stores, a LIST of each kind not synced yet; which kinds came from a
    /// store.
    async fn snapshot(&self) -> Result<(Facts, Cached)> {
        let mut facts = Facts {
            tenant_isolation: true,
            ..Facts::default()
        };
        let clusters_cached = synced(&self.clusters);
        facts.clusters = if clusters_cached {
            labels_by_name(self.clusters.state().iter().map(AsRef::as_ref))
        } else {
            // network: LIST until the first sync
            labels_by_name(&self.list(self.cluster_api(), "KubeFedClusters").await?)
        };
        let namespaces_cached = synced(&self.namespaces);
        facts.namespaces = if namespaces_cached {
            labels_by_name(self.namespaces.state().iter().map(AsRef::as_ref))
        } else {
            // network: LIST until the first sync
            labels_by_name(&self.list(self.namespace_api(), "Namespaces").await?)
        };
        let cells_cached = synced(&self.cells);
        facts.cells = if cells_cached {
            self.cells
                .state()
                .iter()
                .map(|c| c.as_ref().clone())
                .collect()
        } else {
            // network: LIST until the first sync; no Cell CRD reads as no Cells
            match Api::<Cell>::all(self.client.clone())
                .list(&ListParams::default())
                .await
            {
                Ok(list) => list.items,
                Err(kube::Error::Api(e)) if e.code == 404 => Vec::new(),
                Err(source) => {
                    return Err(Error::List {
                        kind: "Cells",
                        source,
                    });
                }
            }
        };
        let cached = Cached {
            clusters: clusters_cached,
            namespaces: namespaces_cached,
            cells: cells_cached,
        };
        Ok((facts, cached))
    }

    /// Adds each name of `refs` a store lacks but the host has (network: one GET per miss, none
    /// in steady state). Kinds that were LISTed are complete already.
    async fn add_missing(
        &self,
        refs: &References,
        cached: Cached,
        facts: &mut Facts,
    ) -> Result<()> {
        let Cached {
            clusters: clusters_cached,
            namespaces: namespaces_cached,
            cells: cells_cached,
        } = cached;
        if namespaces_cached {
            for ns in &refs.namespaces {
                self.get_namespace(ns, facts).await?;
            }
        }
        if cells_cached {
            for (ns, name) in &refs.cells {
                self.get_cell(ns, name, facts).await?;
            }
        }
        for cluster in &refs.clusters {
            if facts.clusters.contains_key(cluster) {
                continue;
            }
            // `<cell>.<ns>` of a known Cell: the decision reads the Cell and its namespace, whether
            // the controller has derived that cluster yet or not
            let cell_cluster = cellfed_api::naming::split_cell_cluster(cluster).ok();
            if let Some((cell, ns)) = cell_cluster
                && facts
                    .cells
                    .iter()
                    .any(|c| c.name_any() == cell && c.namespace().as_deref() == Some(ns))
            {
                if namespaces_cached {
                    self.get_namespace(ns, facts).await?;
                }
                continue;
            }
            if clusters_cached
                && let Some(c) = get(self.cluster_api(), "KubeFedCluster", cluster).await?
            {
                facts.clusters.insert(c.name_any(), c.labels().clone());
                continue;
            }
            // `<cell>.<ns>` not derived yet: the decision falls back to the Cell and its namespace
            if let Some((cell, ns)) = cell_cluster {
                if cells_cached {
                    self.get_cell(ns, cell, facts).await?;
                }
                if namespaces_cached {
                    self.get_namespace(ns, facts).await?;
                }
            }
        }
        Ok(())
    }

    fn cluster_api(&self) -> Api<KubeFedCluster> {
        Api::namespaced(self.client.clone(), &self.fed_namespace)
    }

    fn namespace_api(&self) -> Api<Namespace> {
        Api::all(self.client.clone())
    }

    async fn list<K>(&self, api: Api<K>, kind: &'static str) -> Result<Vec<K>>
    where
        K: Resource + Clone + DeserializeOwned + Debug,
    {
        api.list(&ListParams::default())
            .await
            .map(|l| l.items)
            .map_err(|source| Error::List { kind, source })
    }

    /// Adds namespace `ns` when the facts lack it and the host has it.
    async fn get_namespace(&self, ns: &str, facts: &mut Facts) -> Result<()> {
        if facts.namespaces.contains_key(ns) {
            return Ok(());
        }
        if let Some(n) = get(self.namespace_api(), "Namespace", ns).await? {
            facts.namespaces.insert(n.name_any(), n.labels().clone());
        }
        Ok(())
    }

    /// Adds Cell `ns/name` when the facts lack it and the host has it.
    async fn get_cell(&self, ns: &str, name: &str, facts: &mut Facts) -> Result<()> {
        let known = facts
            .cells
            .iter()
            .any(|c| c.name_any() == name && c.namespace().as_deref() == Some(ns));
        if known {
            return Ok(());
        }
        let api = Api::<Cell>::namespaced(self.client.clone(), ns);
        if let Some(c) = get(api, "Cell", name).await? {
            facts.cells.push(c);
        }
        Ok(())
    }
}

/// One GET; a missing object (or kind) is None.
async fn get<K>(api: Api<K>, kind: &'static str, name: &str) -> Result<Option<K>>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    match api.get_opt(name).await {
        Ok(o) => Ok(o),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
        Err(source) => Err(Error::Get {
            kind,
            name: name.to_string(),
            source,
        }),
    }
}

/// A reflector store over `api`, its objects passed through `strip`, and the task driving it.
fn reflect<K>(api: Api<K>, strip: fn(&mut K)) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let kind = K::kind(&K::DynamicType::default()).to_string();
    // network: one LIST, then a WATCH (re-listed only when the watch falls out of the window)
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(strip),
    );
    let task = tokio::spawn(stream.for_each(move |event| {
        if let Err(e) = event {
            tracing::warn!(kind = %kind, error = %e, "admission cache: watch failed, retrying with backoff");
        }
        futures::future::ready(())
    }));
    (reader, task)
}

/// Drops what no decision reads from an object's metadata.
fn strip_meta<K: ResourceExt>(o: &mut K) {
    o.managed_fields_mut().clear();
    o.annotations_mut().clear();
}

/// Whether `store` has completed its first sync (without waiting).
fn synced<K>(store: &Store<K>) -> bool
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    matches!(store.wait_until_ready().now_or_never(), Some(Ok(())))
}

/// name → labels.
fn labels_by_name<'a, K: ResourceExt + 'a>(
    objects: impl IntoIterator<Item = &'a K>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    objects
        .into_iter()
        .map(|o| (o.name_any(), o.labels().clone()))
        .collect()
}
