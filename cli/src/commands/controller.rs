//! `cellfed controller`: cluster health, Cells and propagation against a host Kubernetes API.

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
    /// Concurrent reconciles and member writes per federated type.
    #[arg(long, default_value_t = 8)]
    pub worker_concurrency: usize,
    /// How long listing one member's objects may take before that member counts as not synced
    /// for a pass (KubeFed's cache sync timeout), e.g. 5m.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub cache_sync_timeout: Duration,
    /// How often every federated resource is reconciled (member drift is corrected then), e.g. 1s.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub sync_period: Duration,
    /// How often member clusters are probed (/readyz), e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub cluster_health_check_period: Duration,
    /// Timeout of one health probe.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub cluster_health_check_timeout: Duration,
    /// Consecutive failed probes before a cluster is not ready.
    #[arg(long, default_value_t = 3)]
    pub cluster_health_check_failure_threshold: u32,
    /// Consecutive successful probes before a cluster is ready again.
    #[arg(long, default_value_t = 1)]
    pub cluster_health_check_success_threshold: u32,
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
            workers: self.worker_concurrency,
            cache_sync_timeout: self.cache_sync_timeout,
            sync_period: self.sync_period,
            health: cellfed_controller::HealthConfig {
                period: self.cluster_health_check_period,
                timeout: self.cluster_health_check_timeout,
                failure_threshold: self.cluster_health_check_failure_threshold,
                success_threshold: self.cluster_health_check_success_threshold,
            },
            feature_gates,
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
