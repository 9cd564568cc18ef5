//! `cellfed controller`: cluster health, Cells and propagation against a host Kubernetes API.
//! Flags left unset take the KubeFedConfig's value (KubeFed's defaults when it says nothing).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use cellfed_api::features::FeatureGates;

/// Flags of `cellfed controller` (KubeFed's controller-manager names where they apply).
#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// Kubeconfig of the host (the federation plane); default: in-cluster config or $KUBECONFIG.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig.
    #[arg(long)]
    pub context: Option<String>,
    /// Namespace of KubeFedClusters, FederatedTypeConfigs and the KubeFedConfig.
    #[arg(long, default_value = cellfed_api::well_known::DEFAULT_SYSTEM_NAMESPACE)]
    pub kubefed_namespace: String,
    /// Concurrent reconciles and member writes per federated type (default: the KubeFedConfig's
    /// syncController.maxConcurrentReconciles).
    #[arg(long)]
    pub worker_concurrency: Option<usize>,
    /// How long a member's watch may take to list before the member counts as not ready
    /// (KubeFed's cache sync timeout; default: the KubeFedConfig's, else 5m), e.g. 30s.
    #[arg(long, value_parser = parse_duration)]
    pub cache_sync_timeout: Option<Duration>,
    /// How often every federated resource is reconciled even without events (0 = never). Member
    /// drift is corrected at once from watch events; this is only a safety net.
    #[arg(long, default_value = "10m", value_parser = parse_duration, alias = "sync-period")]
    pub resync_period: Duration,
    /// Delay before reconciling everything after a cluster became ready (KubeFedConfig
    /// controllerDuration.availableDelay, default 20s).
    #[arg(long, value_parser = parse_duration)]
    pub cluster_available_delay: Option<Duration>,
    /// Delay before reconciling everything after a cluster became not ready (KubeFedConfig
    /// controllerDuration.unavailableDelay, default 60s).
    #[arg(long, value_parser = parse_duration)]
    pub cluster_unavailable_delay: Option<Duration>,
    /// How often member clusters are probed (/readyz) (KubeFedConfig default 10s), e.g. 10s.
    #[arg(long, value_parser = parse_duration)]
    pub cluster_health_check_period: Option<Duration>,
    /// Timeout of one health probe (KubeFedConfig default 3s).
    #[arg(long, value_parser = parse_duration)]
    pub cluster_health_check_timeout: Option<Duration>,
    /// Consecutive failed probes before a cluster is not ready (KubeFedConfig default 3).
    #[arg(long)]
    pub cluster_health_check_failure_threshold: Option<u32>,
    /// Consecutive successful probes before a cluster is ready again (KubeFedConfig default 1).
    #[arg(long)]
    pub cluster_health_check_success_threshold: Option<u32>,
    /// How long a standby waits, from its own observation of the last renewal, before taking
    /// the leader lease (KubeFedConfig leaderElect.leaseDuration, default 15s).
    #[arg(long, value_parser = parse_duration)]
    pub leader_elect_lease_duration: Option<Duration>,
    /// How long the leader may fail to renew before it stops reconciling (default 10s).
    #[arg(long, value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Option<Duration>,
    /// How often the leader renews and standbys retry (default 5s).
    #[arg(long, value_parser = parse_duration)]
    pub leader_elect_retry_period: Option<Duration>,
    /// Hold a coordination Lease before reconciling (run several replicas safely).
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Feature gates, e.g. TenantIsolation=false (default: the KubeFedConfig's).
    #[arg(long)]
    pub feature_gates: Option<String>,
    /// Serve Prometheus metrics on /metrics at this address.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
}

/// Parses `500ms`, `10s`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 10s or 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

impl ControllerArgs {
    /// The controller configuration these flags describe.
    pub fn config(&self) -> anyhow::Result<cellfed_controller::Config> {
        let feature_gates = self
            .feature_gates
            .as_deref()
            .map(FeatureGates::parse)
            .transpose()
            .context("--feature-gates")?;
        Ok(cellfed_controller::Config {
            fed_namespace: self.kubefed_namespace.clone(),
            resync_period: self.resync_period,
            overrides: cellfed_controller::Overrides {
                workers: self.worker_concurrency,
                cache_sync_timeout: self.cache_sync_timeout,
                available_delay: self.cluster_available_delay,
                unavailable_delay: self.cluster_unavailable_delay,
                health_period: self.cluster_health_check_period,
                health_timeout: self.cluster_health_check_timeout,
                failure_threshold: self.cluster_health_check_failure_threshold,
                success_threshold: self.cluster_health_check_success_threshold,
                lease_duration: self.leader_elect_lease_duration,
                renew_deadline: self.leader_elect_renew_deadline,
                retry_period: self.leader_elect_retry_period,
                feature_gates,
            },
            leader_elect: self.leader_elect,
            metrics_addr: self.metrics_addr,
            ..Default::default()
        })
    }
}

/// A client for the host from `--kubeconfig`/`--context`, or the environment (in-cluster or
/// `$KUBECONFIG`).
pub async fn host_client(
    kubeconfig: Option<&PathBuf>,
    context: Option<&String>,
) -> anyhow::Result<kube::Client> {
    match kubeconfig {
        Some(path) => crate::plugin::client_for(Some(path), context.map(String::as_str)).await,
        None => Ok(kube::Client::try_from(kube::Config::infer().await?)?),
    }
}

/// Runs the controller until Ctrl-C.
pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    let client = host_client(args.kubeconfig.as_ref(), args.context.as_ref()).await?;
    let config = args.config()?;
    eprintln!(
        "cellfed controller watching {} (namespace {})",
        client.default_namespace(),
        config.fed_namespace
    );
    cellfed_controller::run(client, config, super::ctrl_c()).await?;
    eprintln!("cellfed controller stopped");
    Ok(())
}
