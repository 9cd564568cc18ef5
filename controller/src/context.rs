//! What every part of a running controller shares, and what one federated type's reconciles
//! share on top of it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use cellfed_api::FederatedResource;
use cellfed_api::federated::v1beta1::FederatedSpec;
use cellfed_api::kubefed::FederatedTypeConfig;
use kube::core::ApiResource;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::mpsc::UnboundedSender;

use crate::Config;
use crate::events::Recorder;
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
    /// Records Kubernetes Events on federated resources.
    pub events: Arc<Recorder>,
    /// The FederatedNamespaces (the store of the namespaces type controller, and the federated
    /// type its keys carry) while that type is enabled; set by the supervisor.
    pub federated_namespaces: RwLock<Option<(Store<FederatedResource>, ApiResource)>>,
}

/// Where the FederatedNamespace of a namespace places its resources.
#[derive(Clone, Debug, PartialEq)]
pub enum NamespacePlacement {
    /// No FederatedNamespace (or the namespaces type is not enabled): the resource's own
    /// placement holds.
    Verbatim,
    /// The FederatedNamespaces are still being listed: nothing can be planned yet (their sync
    /// reconciles every namespaced resource).
    Pending,
    /// The FederatedNamespace's spec: placement is the intersection.
    Of(Box<FederatedSpec>),
}

impl Context {
    /// The namespace placement of resources in `namespace`: the FederatedNamespace named like
    /// the namespace, in it (KubeFed's rule).
    pub fn namespace_placement(&self, namespace: &str) -> NamespacePlacement {
        let store = match self.federated_namespaces.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let Some((store, federated)) = store else {
            // the namespaces type is enabled but its controller is not published yet (startup):
            // planning now could place outside the namespace's placement
            let enabled = self.caches.ftcs.state().iter().any(|f| {
                f.propagation_enabled()
                    && f.spec.target_type.group.is_empty()
                    && f.spec.target_type.kind == "Namespace"
            });
            return if enabled {
                NamespacePlacement::Pending
            } else {
                NamespacePlacement::Verbatim
            };
        };
        if futures::FutureExt::now_or_never(store.wait_until_ready()).is_none() {
            return NamespacePlacement::Pending;
        }
        let key = ObjectRef::new_with(namespace, federated).within(namespace);
        match store.get(&key) {
            Some(fed) => NamespacePlacement::Of(Box::new(fed.spec.clone())),
            None => NamespacePlacement::Verbatim,
        }
    }

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
    /// Source component of this type's Events (KubeFed: `<federated kind>-controller`).
    pub component: String,
}

impl TypeContext {
    /// The cache of `cluster`, if its watch runs.
    pub fn cache(&self, cluster: &str) -> Option<Arc<MemberCache>> {
        self.caches.read().ok()?.get(cluster).cloned()
    }
}
