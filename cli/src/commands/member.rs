//! `cellfed member`: the apiserver with a member cluster's control-plane behaviour (defaulting,
//! ClusterIP/NodePort allocation, simulated workload status), for tests and demos. No containers
//! run: workload statuses are written as if they did.

use anyhow::Context as _;

use super::apiserver::ApiserverArgs;

/// Flags of `cellfed member`.
#[derive(Debug, clap::Args)]
pub struct MemberArgs {
    #[command(flatten)]
    pub server: ApiserverArgs,
    /// Simulated schedulable nodes (a DaemonSet runs one pod per node).
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,
}

/// Runs the member until Ctrl-C.
pub async fn run(args: MemberArgs) -> anyhow::Result<()> {
    let mut config = args.server.server_config()?;
    config.member = Some(cellfed_apiserver::member::SimConfig { nodes: args.nodes });
    let server = cellfed_apiserver::Server::bind(config)
        .await
        .context("starting the member apiserver")?;
    eprintln!(
        "cellfed member listening on {} ({} simulated node(s)); kubeconfig: {}",
        server.local_addr(),
        args.nodes,
        server.kubeconfig_path().display()
    );
    server.run_until(super::ctrl_c()).await.context("serving")?;
    Ok(())
}
