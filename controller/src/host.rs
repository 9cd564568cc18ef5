//! Watch-fed caches of the host objects the controller reads (kube-runtime watchers feeding
//! reflector stores): FederatedTypeConfigs, KubeFedClusters and Secrets in the federation
//! namespace, the KubeFedConfig, Cells and Namespaces. Every change wakes the supervisor through
//! [`HostCaches::changed`]; nothing here lists the host after the watches' initial sync.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use cellfed_api::Cell;
use cellfed_api::kubefed::{FederatedTypeConfig, KubeFedCluster, KubeFedConfig};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt as _};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

/// A spawned task aborted when dropped (watch tasks end with their owner).
#[derive(Debug)]
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The host caches.
pub struct HostCaches {
    /// FederatedTypeConfigs in the federation namespace.
    pub ftcs: Store<FederatedTypeConfig>,
    /// KubeFedClusters in the federation namespace.
    pub clusters: Store<KubeFedCluster>,
    /// Secrets in the federation namespace (member credentials).
    pub secrets: Store<Secret>,
    /// KubeFedConfigs in the federation namespace.
    pub configs: Store<KubeFedConfig>,
    /// Cells in every namespace (may never sync when the Cell CRD is not installed).
    pub cells: Store<Cell>,
    /// Namespaces (tenancy labels).
    pub namespaces: Store<Namespace>,
    /// Notified on every change of any cache.
    pub changed: Arc<Notify>,
    _tasks: Vec<AbortOnDrop>,
}

impl HostCaches {
    /// Starts the watches.
    pub fn start(client: &kube::Client, fed_namespace: &str) -> Self {
        let changed = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        let mut spawn = |task| tasks.push(task);
        let (ftcs, t) = reflect(Api::namespaced(client.clone(), fed_namespace), &changed);
        spawn(t);
        let (clusters, t) = reflect(Api::namespaced(client.clone(), fed_namespace), &changed);
        spawn(t);
        let (secrets, t) = reflect(Api::namespaced(client.clone(), fed_namespace), &changed);
        spawn(t);
        let (configs, t) = reflect(Api::namespaced(client.clone(), fed_namespace), &changed);
        spawn(t);
        let (cells, t) = reflect(Api::all(client.clone()), &changed);
        spawn(t);
        let (namespaces, t) = reflect(Api::all(client.clone()), &changed);
        spawn(t);
        Self {
            ftcs,
            clusters,
            secrets,
            configs,
            cells,
            namespaces,
            changed,
            _tasks: tasks,
        }
    }

    /// Waits until the caches every decision needs have synced once (Cells are optional: their
    /// CRD may not be installed); logs what it still waits for every `every`.
    pub async fn wait_ready(&self, every: Duration) {
        loop {
            let ready = async {
                let _ = self.ftcs.wait_until_ready().await;
                let _ = self.clusters.wait_until_ready().await;
                let _ = self.secrets.wait_until_ready().await;
                let _ = self.configs.wait_until_ready().await;
                let _ = self.namespaces.wait_until_ready().await;
            };
            if tokio::time::timeout(every, ready).await.is_ok() {
                return;
            }
            tracing::warn!("waiting for the host caches to sync (is the host reachable?)");
        }
    }

    /// Whether the Cell cache has synced (false while the Cell CRD is not served).
    pub fn cells_synced(&self) -> bool {
        futures::FutureExt::now_or_never(self.cells.wait_until_ready()).is_some()
    }
}

/// A reflector over `api` (managedFields dropped), its task notifying `changed`.
fn reflect<K>(api: Api<K>, changed: &Arc<Notify>) -> (Store<K>, AbortOnDrop)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(|o: &mut K| o.managed_fields_mut().clear()),
    );
    let changed = changed.clone();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init | Event::InitApply(_)) => {}
                Ok(_) => changed.notify_one(),
                Err(e) => tracing::debug!(kind = %K::kind(&()), error = %e, "host watch"),
            }
        }
    });
    (reader, AbortOnDrop(task))
}
