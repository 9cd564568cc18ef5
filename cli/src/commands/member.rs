//! `cellfed member`: the apiserver with a member cluster's control-plane behaviour (defaulting,
//! ClusterIP/NodePort allocation, simulated workload status), for tests and demos. No containers
//! run: workload statuses are written as if they did.

use std::sync::Arc;

use anyhow::Context as _;
use cellfed_member::Member;

use super::apiserver::ApiserverArgs;

/// Flags of `cellfed member`.
#[derive(Debug, clap::Args)]
pub struct MemberArgs {
    #[command(flatten)]
    pub server: ApiserverArgs,
    /// Simulated schedulable nodes (a DaemonSet runs one pod per node).
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,
    /// Serve this many member clusters from one process (scale tests): member I gets its own
    /// port (--listen's port + I - 1, or a free one for port 0), store and kubeconfig in
    /// DATA_DIR/memberI.
    #[arg(long, default_value_t = 1)]
    pub count: u16,
}

/// Runs the member (or `--count` members) until Ctrl-C.
pub async fn run(args: MemberArgs) -> anyhow::Result<()> {
    if args.count > 1 {
        return run_many(args).await;
    }
    let mut config = args.server.server_config()?;
    let member = hook(&mut config, args.nodes);
    let server = cellfed_apiserver::Server::bind(config)
        .await
        .context("starting the member apiserver")?;
    eprintln!(
        "cellfed member listening on {} ({} simulated node(s)); kubeconfig: {}",
        server.local_addr(),
        args.nodes,
        server.kubeconfig_path().display()
    );
    cellfed_member::run_until(server, member, super::ctrl_c())
        .await
        .context("serving")?;
    Ok(())
}

/// Plugs a member of `nodes` simulated nodes into `config`; the returned member's simulator runs
/// next to the server (`cellfed_member::run_until`).
pub(super) fn hook(config: &mut cellfed_apiserver::ServerConfig, nodes: u32) -> Arc<Member> {
    let member = Arc::new(Member::new(cellfed_member::SimConfig { nodes }));
    config.write_hook = Some(member.clone());
    member
}

/// `--count N`: N members in this process, each with its own port, store and data directory.
async fn run_many(args: MemberArgs) -> anyhow::Result<()> {
    let base = args.server.server_config()?;
    let root = args.server.data_dir.clone();
    let default_store = root.join("state.db").display().to_string();
    let mut servers = Vec::new();
    for i in 1..=args.count {
        let mut config = base.clone();
        config.data_dir = root.join(format!("member{i}"));
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        if args.server.storage.is_none() {
            let own = config.data_dir.join("state.db").display().to_string();
            config.storage_url = config.storage_url.replace(&default_store, &own);
        } else {
            config.table_prefix = format!("{}_m{i}", config.table_prefix);
        }
        if config.listen.port() != 0 {
            let port = config
                .listen
                .port()
                .checked_add(i - 1)
                .context("--listen port + --count overflows")?;
            config.listen.set_port(port);
        }
        let member = hook(&mut config, args.nodes);
        let server = cellfed_apiserver::Server::bind(config)
            .await
            .with_context(|| format!("starting member {i}"))?;
        eprintln!(
            "cellfed member {i} listening on {}; kubeconfig: {}",
            server.local_addr(),
            server.kubeconfig_path().display()
        );
        servers.push((server, member));
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut running = tokio::task::JoinSet::new();
    for (server, member) in servers {
        let mut stopped = stopped.clone();
        running.spawn(cellfed_member::run_until(server, member, async move {
            let _ = stopped.wait_for(|s| *s).await;
        }));
    }
    tokio::select! {
        Some(first) = running.join_next() => {
            first.context("member task")?.context("serving")?;
        }
        () = super::ctrl_c() => {}
    }
    let _ = stop.send(true);
    while let Some(r) = running.join_next().await {
        r.context("member task")?.context("serving")?;
    }
    Ok(())
}
