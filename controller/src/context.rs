//! What every part of a running controller shares, and what one federated type's reconciles
//! share on top of it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use cellfed_api::FederatedResource;
use cellfed_api::kubefed::FederatedTypeConfig;
use kube::core::ApiResource;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc::UnboundedSender;

use crate::Config;
use crate::host::HostCaches;
use crate::leader::Leadership;
use crate::member_cache::MemberCache;
use crate::members::Members;
use crate::metrics::Metrics;
use crate::plan::TargetType;
use crate::settings::Effective;

/// Shared by the supervisor, the prober and every type's reconciles.
pub struct Context {
    /// Client of the host (the federation plane).
    pub host: kube::Client,
    /// Command-line configuration.
    pub config: Config,
    /// Watch-fed caches of the host objects.
    pub caches: HostCaches,
    /// Member clusters with their clients and health.
    pub members: Members,
    /// Flags over the KubeFedConfig; replaced when the KubeFedConfig changes.
    pub settings: RwLock<Effective>,
    /// Counters served on `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Whether this replica may write (leader election).
    pub leadership: Arc<Leadership>,
}

impl Context {
    /// The current effective settings.
    pub fn settings(&self) -> Effective {
        match self.settings.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Shared by the reconciles of one federated type.
pub struct TypeContext {
    /// The controller's shared state.
    pub shared: Arc<Context>,
    /// The FederatedTypeConfig this type runs for.
    pub ftc: FederatedTypeConfig,
    /// The federated type on the host (`types.kubefed.io/v1beta1`).
    pub federated: ApiResource,
    /// The target type in the members.
    pub target_resource: ApiResource,
    /// The target type as planning sees it.
    pub target: TargetType,
    /// This type's member caches, by cluster name.
    pub caches: RwLock<BTreeMap<String, Arc<MemberCache>>>,
    /// Consecutive failures per resource key (per-key backoff).
    pub failures: Mutex<HashMap<String, u32>>,
    /// Enqueues a resource again (when a slow member write it left running ends).
    pub requeue: UnboundedSender<ObjectRef<FederatedResource>>,
}

impl TypeContext {
    /// The cache of `cluster`, if its watch runs.
    pub fn cache(&self, cluster: &str) -> Option<Arc<MemberCache>> {
        self.caches.read().ok()?.get(cluster).cloned()
    }
}
