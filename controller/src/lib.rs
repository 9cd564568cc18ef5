//! The cellfed controller: keeps member clusters in line with the federated resources on the host.
//!
//! Event-driven, never polling: kube-runtime watches feed caches of the host objects
//! ([`host`]) and of every member's managed objects per type ([`member_cache`]); a
//! [`supervisor`] keeps settings, Cells ([`cells`]), member clients and health ([`members`]) and
//! one kube-runtime controller per enabled FederatedTypeConfig ([`types`]) in line with them;
//! each reconcile is [`propagation`]: fetch → plan → apply → status. Planning ([`plan`]) is pure;
//! everything else is thin I/O around it. A [`scheduler`] turns KubeFed's
//! ReplicaSchedulingPreferences into placement and replica overrides of their targets (planned by
//! [`plan::schedule`]). The controller only speaks the Kubernetes API (any host:
//! cellfed apiserver or a real cluster) and never depends on the apiserver or webhook crates.

pub mod cells;
pub mod context;
pub mod credentials;
pub mod error_policy;
pub mod events;
pub mod host;
pub mod leader;
pub mod member_cache;
pub mod members;
pub mod metrics;
pub mod plan;
pub mod propagation;
pub mod scheduler;
pub mod settings;
pub mod supervisor;
pub mod tls;
pub mod types;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cellfed_api::well_known::{DEFAULT_SYSTEM_NAMESPACE, KUBEFED_CONFIG_NAME};
use kube::runtime::reflector::ObjectRef;

pub use members::HealthConfig;
pub use metrics::Metrics;
pub use settings::Overrides;

/// Errors of the controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing a federated resource (finalizer, status) failed.
    #[error("updating federated resource {name}: {source}")]
    WriteFederated {
        /// The resource.
        name: String,
        /// The client error.
        source: kube::Error,
    },
    /// A finalizer write kept conflicting with other writers.
    #[error("updating federated resource {name}: it kept changing under us (conflicts)")]
    Conflict {
        /// The resource.
        name: String,
    },
    /// Some member writes of a resource failed (its status says which).
    #[error("propagating {name}: {failures}")]
    MemberWrites {
        /// The resource.
        name: String,
        /// What failed where.
        failures: String,
    },
    /// Writing a cell's derived KubeFedCluster failed.
    #[error("writing derived cluster {name}: {source}")]
    WriteDerivedCluster {
        /// The derived cluster.
        name: String,
        /// The client error.
        source: kube::Error,
    },
    /// The metrics listener could not start.
    #[error("serving metrics: {0}")]
    Metrics(#[source] std::io::Error),
    /// Leader election failed or leadership was lost.
    #[error("leader election: {0}")]
    LeaderElection(String),
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Controller settings from the command line; what it leaves unset comes from the KubeFedConfig.
#[derive(Clone, Debug)]
pub struct Config {
    /// Namespace of KubeFedClusters, FederatedTypeConfigs and the KubeFedConfig.
    pub fed_namespace: String,
    /// How often every federated resource is reconciled regardless of events (0 = never).
    pub resync_period: Duration,
    /// Flags that override the KubeFedConfig.
    pub overrides: Overrides,
    /// Take a coordination Lease before reconciling (several replicas).
    pub leader_elect: bool,
    /// Identity in the Lease.
    pub identity: String,
    /// Serve `/metrics` here.
    pub metrics_addr: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            fed_namespace: DEFAULT_SYSTEM_NAMESPACE.into(),
            resync_period: Duration::from_secs(600),
            overrides: Overrides::default(),
            leader_elect: false,
            identity: format!("cellfed-controller-{}", std::process::id()),
            metrics_addr: None,
        }
    }
}

/// Runs every controller until `shutdown` resolves.
pub async fn run(
    client: kube::Client,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let metrics = Arc::new(Metrics::default());
    let main = run_with_metrics(client, config, metrics);
    tokio::select! {
        r = main => r,
        () = shutdown => Ok(()),
    }
}

/// [`run`] with caller-owned metrics (tests and `cellfed up` read them). Returns an error when
/// leadership is lost: the replica stops reconciling at once.
pub async fn run_with_metrics(
    client: kube::Client,
    config: Config,
    metrics: Arc<Metrics>,
) -> Result<()> {
    if let Some(addr) = config.metrics_addr {
        let listener_metrics = metrics.clone();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(Error::Metrics)?;
        drop(listener); // fail fast on a taken port; serve() binds again
        tokio::spawn(async move {
            if let Err(e) = metrics::serve(addr, listener_metrics).await {
                tracing::error!(error = %e, "metrics listener stopped");
            }
        });
    }
    // network: watches of the host objects
    let caches = host::HostCaches::start(&client, &config.fed_namespace);
    caches.wait_ready(Duration::from_secs(10)).await;
    // Cells decide which derived clusters may be used (until they are listed none is); their
    // CRD may not be served at all, so this wait is short
    let _ = tokio::time::timeout(Duration::from_secs(2), caches.cells.wait_until_ready()).await;
    let key = ObjectRef::new(KUBEFED_CONFIG_NAME).within(&config.fed_namespace);
    let settings = match settings::effective(&config.overrides, caches.configs.get(&key).as_deref())
    {
        Ok(s) => s,
        Err(problem) => {
            tracing::error!(%problem, "KubeFedConfig not applied; starting with KubeFed's defaults and the flags");
            settings::effective(&config.overrides, None).map_err(Error::LeaderElection)?
        }
    };
    let mut _renewal = None;
    let leadership = if config.leader_elect {
        let mut elector = leader::Elector::new(
            client.clone(),
            &config.fed_namespace,
            &config.identity,
            settings.leader,
        );
        let held = Arc::new(elector.acquire().await);
        _renewal = Some(host::AbortOnDrop(tokio::spawn(elector.renew(held.clone()))));
        held
    } else {
        Arc::new(leader::Leadership::unconditional())
    };
    let ctx = Arc::new(context::Context {
        events: Arc::new(events::Recorder::new(client.clone())),
        federated_namespaces: RwLock::new(None),
        host: client,
        config,
        caches,
        members: members::Members::default(),
        settings: RwLock::new(settings),
        metrics,
        leadership: leadership.clone(),
    });
    tokio::select! {
        r = supervisor::run(ctx) => r,
        () = leadership.lost() => {
            tracing::error!("leader lease lost: stopped reconciling");
            Err(Error::LeaderElection("lost the leader lease; stopped reconciling".into()))
        }
    }
}
