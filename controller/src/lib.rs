//! The cellfed controller: keeps member clusters in line with the federated resources on the host.
//!
//! One loop, every `sync_period`: read the KubeFedConfig, keep derived clusters of Cells
//! ([`cells`]), refresh member clients and probe their health ([`members`]), then for every enabled
//! FederatedTypeConfig run one propagation pass ([`propagation`]: fetch → plan → apply → status).
//! Planning ([`plan`]) is pure; everything else is thin I/O around it. The controller only speaks
//! the Kubernetes API (any host: cellfed apiserver or a real cluster) and never depends on the
//! apiserver or webhook crates.

pub mod cells;
pub mod error_policy;
pub mod leader;
pub mod members;
pub mod metrics;
pub mod plan;
pub mod propagation;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cellfed_api::features::{FeatureGate, FeatureGates};
use cellfed_api::kubefed::{FederatedTypeConfig, KubeFedConfig};
use cellfed_api::well_known::{DEFAULT_SYSTEM_NAMESPACE, KUBEFED_CONFIG_NAME};
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

pub use members::HealthConfig;
pub use metrics::Metrics;

/// Errors of the controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Listing KubeFedClusters, Secrets, Cells or Namespaces on the host failed.
    #[error("listing federation objects on the host: {0}")]
    ListClusters(#[source] kube::Error),
    /// Listing federated resources failed.
    #[error("listing {kind}: {source}")]
    ListFederated {
        /// The federated kind.
        kind: String,
        /// The client error.
        source: kube::Error,
    },
    /// Writing a federated resource (finalizer, status) failed.
    #[error("updating federated resource {name}: {source}")]
    WriteFederated {
        /// The resource.
        name: String,
        /// The client error.
        source: kube::Error,
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
    /// Leader election failed permanently.
    #[error("leader election: {0}")]
    LeaderElection(String),
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Controller settings (KubeFed's flags where KubeFed has them).
#[derive(Clone, Debug)]
pub struct Config {
    /// Namespace of KubeFedClusters, FederatedTypeConfigs and the KubeFedConfig.
    pub fed_namespace: String,
    /// Concurrent reconciles and member writes per type (KubeFed: maxConcurrentReconciles).
    pub workers: usize,
    /// How long one member's listing may take before the member counts as not synced for a pass.
    pub cache_sync_timeout: Duration,
    /// How often every federated resource is reconciled (drift in members is corrected then).
    pub sync_period: Duration,
    /// Member health probing.
    pub health: HealthConfig,
    /// Feature gates given on the command line (override the KubeFedConfig's).
    pub feature_gates: Option<FeatureGates>,
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
            workers: 8,
            cache_sync_timeout: Duration::from_secs(300),
            sync_period: Duration::from_secs(1),
            health: HealthConfig::default(),
            feature_gates: None,
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

/// [`run`] with caller-owned metrics (tests and `cellfed up` read them).
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
    if config.leader_elect {
        leader::acquire(&client, &config.fed_namespace, &config.identity).await?;
        let (c, ns, id) = (
            client.clone(),
            config.fed_namespace.clone(),
            config.identity.clone(),
        );
        tokio::spawn(async move { leader::renew_forever(c, ns, id).await });
    }
    let mut members = members::Members::default();
    let mut last_probe: Option<Instant> = None;
    let backoff = error_policy::Backoff::default();
    loop {
        let started = Instant::now();
        let state = (&mut members, &mut last_probe, &backoff);
        if let Err(e) = tick(&client, &config, &metrics, state).await {
            tracing::warn!(error = %e, "controller pass failed");
        }
        tokio::time::sleep(config.sync_period.saturating_sub(started.elapsed())).await;
    }
}

/// One pass of every controller.
async fn tick(
    client: &kube::Client,
    config: &Config,
    metrics: &Arc<Metrics>,
    (members, last_probe, backoff): (
        &mut members::Members,
        &mut Option<Instant>,
        &error_policy::Backoff,
    ),
) -> Result<()> {
    let ns = &config.fed_namespace;
    // network: KubeFedConfig (adoption, feature gates)
    let settings = Api::<KubeFedConfig>::namespaced(client.clone(), ns)
        .get_opt(KUBEFED_CONFIG_NAME)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(KubeFedConfig::cellfed_default)
        .spec
        .settings()
        .ok();
    let gates = config
        .feature_gates
        .clone()
        .or_else(|| settings.as_ref().map(|s| s.feature_gates.clone()))
        .unwrap_or_default();
    let adopt = settings.as_ref().is_some_and(|s| s.adopt_resources);

    cells::sync(client, ns).await?;
    members.refresh(client, ns).await?;
    if last_probe.is_none_or(|t| t.elapsed() >= config.health.period) {
        members.probe_all(client, ns, &config.health).await;
        *last_probe = Some(Instant::now());
    }
    // network: namespaces (tenancy) and type configs
    let mut namespace_labels = BTreeMap::new();
    for n in Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(Error::ListClusters)?
        .items
    {
        namespace_labels.insert(n.name_any(), n.metadata.labels.unwrap_or_default());
    }
    let ftcs = Api::<FederatedTypeConfig>::namespaced(client.clone(), ns);
    for ftc in ftcs
        .list(&ListParams::default())
        .await
        .map_err(Error::ListClusters)?
        .items
    {
        let running = ftc.propagation_enabled();
        update_ftc_status(&ftcs, &ftc, running).await;
        if !running {
            continue;
        }
        let ctx = propagation::TypeContext {
            host: client,
            ftc: &ftc,
            members,
            namespace_labels: &namespace_labels,
            tenant_isolation: gates.enabled(FeatureGate::TenantIsolation),
            adopt_resources: adopt,
            workers: config.workers,
            cache_sync_timeout: config.cache_sync_timeout,
            metrics,
            backoff,
            retry_base: config.sync_period,
        };
        if let Err(e) = propagation::pass(&ctx).await {
            tracing::warn!(ftc = %ftc.name_any(), error = %e, "propagation pass failed");
        }
    }
    Ok(())
}

/// FederatedTypeConfig status: whether its propagation controller runs (written on change only).
async fn update_ftc_status(
    api: &Api<FederatedTypeConfig>,
    ftc: &FederatedTypeConfig,
    running: bool,
) {
    let want = if running { "Running" } else { "NotRunning" };
    let current = ftc
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s.propagation_controller).ok());
    let generation = ftc.metadata.generation.unwrap_or_default();
    let observed = ftc.status.as_ref().map(|s| s.observed_generation);
    if current.as_ref().and_then(|v| v.as_str()) == Some(want) && observed == Some(generation) {
        return;
    }
    // network: status write on change
    let status =
        json!({"status": {"observedGeneration": generation, "propagationController": want}});
    let _ = api
        .patch_status(
            &ftc.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await;
}
