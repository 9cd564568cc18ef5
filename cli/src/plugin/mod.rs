//! `kubectl cellfed`: join member clusters, enable federated types, federate objects and roll
//! changes out cell by cell. Each subcommand is a library function (`join`, `types`, `rollout`)
//! that `cellfed up` and the tests reuse; this module only parses flags and builds clients.

pub mod join;
pub mod rollout;
pub mod types;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// kubectl cellfed: join clusters, enable federated types, federate objects, roll out changes.
///
/// Talks to the federation host of the current kubeconfig context (or --context), like kubectl.
#[derive(Debug, Parser)]
#[command(name = "kubectl-cellfed", bin_name = "kubectl cellfed", version)]
pub struct Plugin {
    /// Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Context of the federation host (default: the current context).
    #[arg(long = "host-context", alias = "context", global = true)]
    host_context: Option<String>,
    /// Namespace of KubeFedClusters and FederatedTypeConfigs.
    #[arg(long, global = true, default_value = cellfed_api::well_known::DEFAULT_SYSTEM_NAMESPACE)]
    kubefed_namespace: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Join a member cluster: credentials in the member, a Secret and a KubeFedCluster in the host.
    ///
    /// Example: kubectl cellfed join member1 --cluster-context member1 --host-context cellfed
    Join {
        /// Name of the KubeFedCluster.
        name: String,
        /// Context of the member cluster in the kubeconfig.
        #[arg(long)]
        cluster_context: String,
        /// How long to wait for the member to mint the service-account token before using the
        /// member context's own token (members without a token controller, like `cellfed member`).
        #[arg(long, default_value = "3s", value_parser = crate::commands::controller::parse_duration)]
        token_wait: Duration,
    },
    /// Remove a member cluster from the federation (host and, if reachable, member side).
    ///
    /// Example: kubectl cellfed unjoin member1 --cluster-context member1
    Unjoin {
        /// Name of the KubeFedCluster.
        name: String,
        /// Context of the member, to clean up its service account too.
        #[arg(long)]
        cluster_context: Option<String>,
    },
    /// Enable propagation of a type: create its federated CRD and FederatedTypeConfig.
    ///
    /// Example: kubectl cellfed enable deployments.apps
    Enable {
        /// The type: deployments, deployments.apps or Deployment.
        kind: String,
    },
    /// Disable propagation of a type (propagation: Disabled); --delete removes the FederatedTypeConfig
    /// and the federated CRD with every federated object of that kind.
    ///
    /// Example: kubectl cellfed disable configmaps --delete
    Disable {
        /// The type: configmaps, deployments.apps, …
        kind: String,
        /// Also delete the FederatedTypeConfig and the federated CRD.
        #[arg(long)]
        delete: bool,
    },
    /// Turn an existing host object into a federated one (its spec becomes the template).
    ///
    /// Example: kubectl cellfed federate deployment/web -n shop --clusters member1,member2
    Federate {
        /// KIND/NAME of the host object.
        target: String,
        /// Namespace of the object.
        #[arg(short, long, default_value = "default")]
        namespace: String,
        /// Clusters to place it on (comma-separated); none = placed nowhere yet.
        #[arg(long, value_delimiter = ',')]
        clusters: Vec<String>,
    },
    /// Grey release: set the placement mask, or wait for a rollout.
    ///
    /// Example: kubectl cellfed rollout federateddeployment/web -n shop --to rz00a
    ///          kubectl cellfed rollout status federateddeployment/web -n shop --timeout 5m
    Rollout(RolloutArgs),
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct RolloutArgs {
    #[command(subcommand)]
    status: Option<RolloutCommand>,
    /// FEDKIND/NAME whose mask to set.
    target: Option<String>,
    /// Namespace of the federated object.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// Cells (or clusters) the change may reach, comma-separated: the new placementMask.
    #[arg(long, value_delimiter = ',')]
    to: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum RolloutCommand {
    /// Wait until every placed cell/cluster runs the current template; non-zero exit on timeout.
    Status {
        /// FEDKIND/NAME.
        target: String,
        /// Namespace of the federated object.
        #[arg(short, long, default_value = "default")]
        namespace: String,
        /// How long to wait, e.g. 90s or 5m.
        #[arg(long, default_value = "5m", value_parser = crate::commands::controller::parse_duration)]
        timeout: Duration,
    },
}

/// A client for `context` (None = current) of the kubeconfig.
pub async fn client_for(
    kubeconfig: Option<&PathBuf>,
    context: Option<&str>,
) -> anyhow::Result<kube::Client> {
    let kc = read_kubeconfig(kubeconfig)?;
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .context("building a client from the kubeconfig")?;
    Ok(kube::Client::try_from(config)?)
}

fn read_kubeconfig(path: Option<&PathBuf>) -> anyhow::Result<kube::config::Kubeconfig> {
    match path {
        Some(p) => kube::config::Kubeconfig::read_from(p)
            .with_context(|| format!("reading {}", p.display())),
        None => kube::config::Kubeconfig::read().context("reading the default kubeconfig"),
    }
}

fn split_target(target: &str) -> anyhow::Result<(&str, &str)> {
    target
        .split_once('/')
        .with_context(|| format!("{target:?}: expected KIND/NAME, e.g. federateddeployment/web"))
}

/// Runs the plugin.
pub fn run(plugin: Plugin) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(plugin))
}

async fn run_async(p: Plugin) -> anyhow::Result<()> {
    let kc = p.kubeconfig.as_ref();
    let host = || client_for(kc, p.host_context.as_deref());
    let ns = &p.kubefed_namespace;
    match &p.command {
        Command::Join {
            name,
            cluster_context,
            token_wait,
        } => {
            let access = join::member_access(&read_kubeconfig(kc)?, cluster_context)?;
            let member = client_for(kc, Some(cluster_context)).await?;
            join::join(&host().await?, &member, &access, name, ns, *token_wait).await?;
            println!("cluster {name} joined (KubeFedCluster {ns}/{name})");
        }
        Command::Unjoin {
            name,
            cluster_context,
        } => {
            let member = match cluster_context {
                Some(c) => Some(client_for(kc, Some(c)).await?),
                None => None,
            };
            join::unjoin(&host().await?, member.as_ref(), name, ns).await?;
            println!("cluster {name} unjoined");
        }
        Command::Enable { kind } => {
            let client = host().await?;
            let target = types::resolve(&client, kind).await?;
            types::enable(&client, &target, ns).await?;
            println!(
                "enabled {} (FederatedTypeConfig {ns}/{})",
                target.federated().kind,
                target.type_config_name()
            );
        }
        Command::Disable { kind, delete } => {
            let client = host().await?;
            let target = types::resolve(&client, kind).await?;
            types::disable(&client, &target, ns, *delete).await?;
            println!(
                "disabled {}{}",
                target.federated().kind,
                if *delete { " and deleted its CRD" } else { "" }
            );
        }
        Command::Federate {
            target,
            namespace,
            clusters,
        } => {
            let (kind, name) = split_target(target)?;
            let client = host().await?;
            let t = types::resolve(&client, kind).await?;
            types::federate(&client, &t, Some(namespace), name, clusters).await?;
            println!("created {}/{name} in {namespace}", t.federated().kind);
        }
        Command::Rollout(args) => match &args.status {
            Some(RolloutCommand::Status {
                target,
                namespace,
                timeout,
            }) => {
                let (kind, name) = split_target(target)?;
                rollout::status(&host().await?, kind, namespace, name, *timeout).await?;
            }
            None => {
                let target = args
                    .target
                    .as_deref()
                    .context("rollout needs FEDKIND/NAME (or `rollout status FEDKIND/NAME`)")?;
                anyhow::ensure!(
                    !args.to.is_empty(),
                    "rollout needs --to CELL[,CELL…]: the cells or clusters the change may reach"
                );
                let (kind, name) = split_target(target)?;
                rollout::set_mask(&host().await?, kind, &args.namespace, name, &args.to).await?;
                println!("{target}: placementMask set to {}", args.to.join(","));
            }
        },
    }
    Ok(())
}
