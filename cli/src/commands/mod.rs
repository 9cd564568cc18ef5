//! `cellfed` subcommands.

mod apiserver;
mod bootstrap;
pub mod controller;
mod member;
mod tunnel;
mod up;
pub mod webhook;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// cellfed: a multi-cluster federation control plane for Kubernetes.
///
/// Run `cellfed up` for an embedded federation plane with local member clusters, or the server
/// parts one by one (`apiserver`, `controller`, `webhook`).
#[derive(Debug, Parser)]
#[command(name = "cellfed", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Kubernetes-compatible API server on SQL storage (SQLite, MySQL/MariaDB, PostgreSQL).
    ///
    /// Example: cellfed apiserver --storage sqlite://fed.db --listen 127.0.0.1:6443 --data-dir .cellfed/apiserver
    ///          KUBECONFIG=.cellfed/apiserver/kubeconfig kubectl get ns
    Apiserver(apiserver::ApiserverArgs),
    /// Run the controller (cluster health, Cells, propagation) against a host Kubernetes API.
    ///
    /// Example: cellfed controller --kubeconfig .cellfed/apiserver/kubeconfig --metrics-addr 127.0.0.1:9090
    Controller(controller::ControllerArgs),
    /// Run a member cluster for tests and demos: the apiserver plus defaulting, ClusterIP/NodePort
    /// allocation and simulated workload status (no containers run).
    ///
    /// Example: cellfed member --listen 127.0.0.1:7001 --data-dir .cellfed/member1 --nodes 3
    Member(member::MemberArgs),
    /// Run the conversion (v1beta1 ⇄ v1beta2) and admission webhook over HTTPS.
    ///
    /// Example: cellfed webhook --listen 127.0.0.1:8443 --cert-dir .cellfed/webhook --kubeconfig .cellfed/apiserver/kubeconfig --advertise-url https://127.0.0.1:8443
    Webhook(webhook::WebhookArgs),
    /// Install the federation API into a federation apiserver: the CRDs, the federation
    /// namespace, the KubeFedConfig and default FederatedTypeConfigs (what `cellfed up`
    /// installs) and, given the webhook's Service and CA, the CRDs' conversion and the admission
    /// webhook configurations. Waits for /readyz first; idempotent. The Helm chart's seed layout
    /// runs it as a hook Job.
    ///
    /// Example: cellfed bootstrap --kubeconfig cellfed.kubeconfig --webhook-service cellfed-webhook --webhook-ca-file ca.crt
    Bootstrap(bootstrap::BootstrapArgs),
    /// Write the generated CRD YAML (the files checked in under crds/).
    ///
    /// Example: cellfed crds --out crds
    Crds(CrdsArgs),
    /// Write the generated parts of the Helm chart (CRDs, webhook configuration, default
    /// FederatedTypeConfigs) into the chart directory.
    ///
    /// Example: cellfed chart --out charts/cellfed
    Chart(ChartArgs),
    /// Run the embedded federation plane (apiserver on SQLite + webhook + controller) and N local
    /// member clusters, joined, with one kubeconfig (contexts cellfed, member1..N).
    ///
    /// Example: cellfed up --members 2 --data-dir .cellfed && export KUBECONFIG=.cellfed/kubeconfig
    Up(up::UpArgs),
    /// Run the tunnel server of the federation plane: agents of members behind NAT dial in, the
    /// controller reaches those members through its CONNECT proxy (KubeFedCluster spec.proxyURL).
    ///
    /// Example: cellfed tunnel-server --agent-token-file agents.csv --proxy-token-file proxy-token
    TunnelServer(tunnel::TunnelServerArgs),
    /// Run a tunnel agent next to a member cluster: dials out to the tunnel server and carries the
    /// controller's connections to the member's apiserver.
    ///
    /// Example: cellfed agent --server https://tunnel.example.com:8132 --cluster-name member1 --token-file token --ca-file ca.crt --apiserver https://10.0.0.1:6443
    Agent(tunnel::AgentArgs),
}

#[derive(Debug, clap::Args)]
struct CrdsArgs {
    /// Directory to write one YAML file per CRD into; `-` prints them all to stdout.
    #[arg(long, default_value = "crds")]
    out: String,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Apiserver(args) => runtime()?.block_on(apiserver::run(args)),
        Command::Controller(args) => runtime()?.block_on(controller::run(args)),
        Command::Member(args) => runtime()?.block_on(member::run(args)),
        Command::Webhook(args) => runtime()?.block_on(webhook::run(args)),
        Command::Bootstrap(args) => runtime()?.block_on(bootstrap::run(args)),
        Command::Crds(args) => crds(&args),
        Command::Chart(args) => chart(&args),
        Command::Up(args) => runtime()?.block_on(up::run(args)),
        Command::TunnelServer(args) => runtime()?.block_on(tunnel::run_server(args)),
        Command::Agent(args) => runtime()?.block_on(tunnel::run_agent(args)),
    }
}

fn crds(args: &CrdsArgs) -> anyhow::Result<()> {
    let files = cellfed_api::crd_files()?;
    if args.out == "-" {
        for (_, yaml) in &files {
            println!("---\n{}", yaml.trim_end());
        }
        return Ok(());
    }
    let dir = std::path::Path::new(&args.out);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, yaml) in &files {
        let path = dir.join(name);
        std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!("wrote {} CRDs to {}", files.len(), dir.display());
    Ok(())
}

#[derive(Debug, clap::Args)]
struct ChartArgs {
    /// The chart directory (holding Chart.yaml).
    #[arg(long, default_value = "charts/cellfed")]
    out: std::path::PathBuf,
}

fn chart(args: &ChartArgs) -> anyhow::Result<()> {
    let files = crate::chart::files()?;
    for (rel, content) in &files {
        let path = args.out.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!(
        "wrote {} generated chart files to {}",
        files.len(),
        args.out.display()
    );
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Resolves on Ctrl-C or SIGTERM.
async fn ctrl_c() {
    let term = async {
        #[cfg(unix)]
        if let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            sig.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
