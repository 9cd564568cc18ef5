//! `kubectl cellfed`: kubefedctl's commands with kubefedctl's names and flags (join, unjoin,
//! enable, disable, federate, orphaning-deletion) plus cellfed's rollout. Each subcommand is a
//! library function (`join`, `types`, `federate`, `orphaning`, `rollout`) that `cellfed up` and
//! the tests reuse; this module only parses flags, builds clients and prints. Errors print as one
//! line in kubectl's words ([`errors`]).

pub mod discovery;
pub mod errors;
pub mod federate;
pub mod join;
pub mod orphaning;
pub mod rollout;
pub mod tunnel;
pub mod types;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{ArgAction, Parser, Subcommand};

/// kubectl cellfed: join clusters, enable federated types, federate objects, roll out changes.
///
/// Talks to the federation host of the current kubeconfig context (or --host-cluster-context),
/// like kubectl and kubefedctl.
#[derive(Debug, Parser)]
#[command(name = "kubectl-cellfed", bin_name = "kubectl cellfed", version)]
pub struct Plugin {
    /// Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Context of the federation host (default: the current context).
    #[arg(
        long = "host-cluster-context",
        visible_alias = "host-context",
        alias = "context",
        global = true
    )]
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
    /// Example: kubectl cellfed join member1 --cluster-context member1 --host-cluster-context cellfed
    Join(JoinArgs),
    /// Remove a member cluster from the federation (member side first, then the host side).
    ///
    /// Example: kubectl cellfed unjoin member1 --cluster-context member1
    Unjoin(UnjoinArgs),
    /// Enable propagation of a type: create its federated CRD and FederatedTypeConfig.
    ///
    /// Example: kubectl cellfed enable deployments.apps
    Enable(EnableArgs),
    /// Disable propagation of a type (propagation: Disabled); --delete-crd also removes the
    /// FederatedTypeConfig and the federated CRD (refused while federated objects of the type exist).
    ///
    /// Example: kubectl cellfed disable configmaps --delete-crd
    Disable(DisableArgs),
    /// Turn existing host objects into federated ones (their spec becomes the template),
    /// placed on every cluster unless --clusters names some.
    ///
    /// Example: kubectl cellfed federate deployment web -n shop --clusters member1,member2
    ///          kubectl cellfed federate namespace shop --contents
    ///          kubectl cellfed federate -f app.yaml | kubectl apply -f -
    #[command(verbatim_doc_comment)]
    Federate(FederateArgs),
    /// Whether deleting a federated resource leaves its member objects in place (the
    /// kubefed.io/orphan annotation).
    ///
    /// Example: kubectl cellfed orphaning-deletion enable federateddeployment web -n shop
    #[command(name = "orphaning-deletion", alias = "orphaning")]
    OrphaningDeletion {
        #[command(subcommand)]
        action: OrphaningCommand,
    },
    /// Grey release: set the placement mask, or wait for a rollout.
    ///
    /// Example: kubectl cellfed rollout federateddeployment/web -n shop --to rz00a
    ///          kubectl cellfed rollout status federateddeployment/web -n shop --timeout 5m
    #[command(verbatim_doc_comment)]
    Rollout(RolloutArgs),
}

/// `--dry-run`, `--dry-run=true|false|client|none` (kubefedctl's boolean, kubectl's values).
fn parse_dry_run(s: &str) -> Result<bool, String> {
    match s {
        "true" | "client" => Ok(true),
        "false" | "none" => Ok(false),
        "server" => Err("server-side dry run is not supported; use --dry-run".into()),
        other => Err(format!("{other:?}: use --dry-run or --dry-run=false")),
    }
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("{other:?}: use true or false")),
    }
}

#[derive(Debug, clap::Args)]
struct DryRun {
    /// Print what would be written, write nothing.
    #[arg(long = "dry-run", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_value = "false",
          default_missing_value = "true", action = ArgAction::Set, value_parser = parse_dry_run)]
    on: bool,
}

#[derive(Debug, clap::Args)]
struct JoinArgs {
    /// Name of the KubeFedCluster (a DNS-1123 subdomain).
    name: String,
    /// Context of the member cluster in the kubeconfig (default: the cluster name).
    #[arg(long)]
    cluster_context: Option<String>,
    /// Name of the host Secret holding the member's credentials (default: NAME-secret).
    #[arg(long)]
    secret_name: Option<String>,
    /// Fail, writing nothing, when objects join would write exist already;
    /// --error-on-existing=false updates them instead.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_value = "true",
          default_missing_value = "true", action = ArgAction::Set, value_parser = parse_bool)]
    error_on_existing: bool,
    /// How long to wait for the member's token controller to fill the legacy service-account
    /// token Secret before asking the member for a token with TokenRequest (members without a
    /// token controller, like `cellfed member` and recent Kubernetes, answer TokenRequest).
    #[arg(long, default_value = "3s", value_parser = crate::commands::controller::parse_duration)]
    token_wait: Duration,
    /// ClusterRole bound to the member's service account. KubeFed's default is cluster-admin;
    /// a narrower role (for instance one allowing only the federated types and namespaces)
    /// limits what a leaked host credential can do in this member.
    #[arg(long, default_value = join::DEFAULT_MEMBER_ROLE)]
    member_role: String,
    /// When the member mints no service-account token at all, copy the member context's own
    /// token into the host instead of failing. The host then holds YOUR credentials for this
    /// member: use only for throwaway clusters.
    #[arg(long)]
    allow_copy_token: bool,
    #[command(flatten)]
    dry_run: DryRun,
    #[command(flatten)]
    tunnel: tunnel::TunnelJoinArgs,
}

#[derive(Debug, clap::Args)]
struct UnjoinArgs {
    /// Name of the KubeFedCluster.
    name: String,
    /// Context of the member in the kubeconfig, to clean up its service account too
    /// (default: the cluster name).
    #[arg(long)]
    cluster_context: Option<String>,
    /// Remove the cluster from the host even when the member cannot be cleaned up.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    dry_run: DryRun,
}

#[derive(Debug, clap::Args)]
struct EnableArgs {
    /// The type: deployments, deployments.apps, deployment, Deployment or deploy.
    name: String,
    /// API group of the federated type.
    #[arg(long, default_value = cellfed_api::well_known::TYPES_GROUP)]
    federated_group: String,
    /// API version of the federated type.
    #[arg(long, default_value = cellfed_api::well_known::TYPES_V1BETA1)]
    federated_version: String,
    /// Version of the target type (default: the version the host prefers).
    #[arg(long)]
    version: Option<String>,
    /// Print the FederatedTypeConfig and the CRD instead of creating them.
    #[arg(short, long, value_parser = ["yaml"])]
    output: Option<String>,
    #[command(flatten)]
    dry_run: DryRun,
}

#[derive(Debug, clap::Args)]
struct DisableArgs {
    /// The type: its FederatedTypeConfig name (configmaps, deployments.apps) or any name enable
    /// accepts.
    name: String,
    /// Also delete the FederatedTypeConfig and the federated CRD.
    #[arg(long, alias = "delete")]
    delete_crd: bool,
    /// Federated group of a type whose FederatedTypeConfig is gone (with --delete-crd).
    #[arg(long)]
    federated_group: Option<String>,
    #[command(flatten)]
    dry_run: DryRun,
}

#[derive(Debug, clap::Args)]
struct FederateArgs {
    /// TYPE NAME (e.g. `configmap settings`, `cm settings`, `deployments.apps web`) or TYPE/NAME.
    #[arg(num_args = 0..=2, value_names = ["TYPE", "NAME"])]
    args: Vec<String>,
    /// Namespace of the object (default: the context's namespace).
    #[arg(short, long)]
    namespace: Option<String>,
    /// Clusters to place it on (comma-separated); none = every cluster (clusterSelector: {}).
    #[arg(long, value_delimiter = ',')]
    clusters: Vec<String>,
    /// For a namespace: also federate the objects in it (of enabled types; with --enable-type, of
    /// every type).
    #[arg(short = 'c', long)]
    contents: bool,
    /// Enable the type of an object first when it is not enabled yet.
    #[arg(short = 't', long)]
    enable_type: bool,
    /// Types (or API groups) to leave out with --contents, comma-separated.
    #[arg(short = 's', long, value_delimiter = ',')]
    skip_api_resources: Vec<String>,
    /// Print the federated objects instead of creating them.
    #[arg(short, long, value_parser = ["yaml"])]
    output: Option<String>,
    /// Federate the objects of this YAML file (`-` = stdin): prints them, creates nothing, asks
    /// no server (kubefedctl's --filename).
    #[arg(short, long)]
    filename: Option<PathBuf>,
    #[command(flatten)]
    dry_run: DryRun,
}

#[derive(Debug, Subcommand)]
enum OrphaningCommand {
    /// Keep the member objects when the federated resource is deleted (kubefed.io/orphan: "true").
    ///
    /// Example: kubectl cellfed orphaning-deletion enable federateddeployment web -n shop
    Enable(OrphanArgs),
    /// Delete the member objects with the federated resource again (removes the annotation).
    ///
    /// Example: kubectl cellfed orphaning-deletion disable federateddeployment web -n shop
    Disable(OrphanArgs),
    /// Print Enabled or Disabled.
    ///
    /// Example: kubectl cellfed orphaning-deletion status federateddeployment web -n shop
    Status(OrphanArgs),
}

#[derive(Debug, clap::Args)]
struct OrphanArgs {
    /// The federated type (FederatedDeployment, federateddeployments) or its target type
    /// (deployment).
    type_name: String,
    /// Name of the federated resource.
    name: String,
    /// Namespace of the federated resource (default: the context's namespace).
    #[arg(short, long)]
    namespace: Option<String>,
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct RolloutArgs {
    #[command(subcommand)]
    status: Option<RolloutCommand>,
    /// FEDKIND/NAME whose mask to set.
    target: Option<String>,
    /// Namespace of the federated object (default: the context's namespace).
    #[arg(short, long)]
    namespace: Option<String>,
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
        /// Namespace of the federated object (default: the context's namespace).
        #[arg(short, long)]
        namespace: Option<String>,
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

/// The namespace of `context` (None = current) in the kubeconfig, `default` when it sets none
/// (kubectl's rule).
fn context_namespace(kc: Option<&kube::config::Kubeconfig>, context: Option<&str>) -> String {
    kc.and_then(|kc| {
        let name = context.or(kc.current_context.as_deref())?;
        kc.contexts
            .iter()
            .find(|c| c.name == name)?
            .context
            .as_ref()?
            .namespace
            .clone()
    })
    .unwrap_or_else(|| "default".into())
}

fn split_target(target: &str) -> anyhow::Result<(&str, &str)> {
    target
        .split_once('/')
        .with_context(|| format!("{target:?}: expected KIND/NAME, e.g. federateddeployment/web"))
}

/// Runs the plugin with the process arguments: usage errors and failures print one line on
/// stderr and exit 1, as kubectl.
pub fn main() -> ExitCode {
    let plugin = match Plugin::try_parse() {
        Ok(p) => p,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            eprintln!("{}", errors::usage_line(&e.render().to_string()));
            return ExitCode::FAILURE;
        }
    };
    // quiet unless asked (RUST_LOG): what goes wrong is reported as one line below
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    match run(plugin) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", errors::render(&err));
            ExitCode::FAILURE
        }
    }
}

/// Runs the plugin.
pub fn run(plugin: Plugin) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(plugin))
}

fn print_lines(lines: &[String]) {
    for l in lines {
        println!("{l}");
    }
}

fn print_warnings(warnings: &[String]) {
    for w in warnings {
        eprintln!("Warning: {w}");
    }
}

fn print_yaml(objects: &[serde_json::Value]) -> anyhow::Result<()> {
    for o in objects {
        print!("---\n{}", serde_yaml::to_string(o)?);
    }
    Ok(())
}

async fn run_async(p: Plugin) -> anyhow::Result<()> {
    let kc = p.kubeconfig.as_ref();
    let host_ctx = p.host_context.as_deref();
    let host = || client_for(kc, host_ctx);
    let default_ns = || context_namespace(read_kubeconfig(kc).ok().as_ref(), host_ctx);
    let fed_ns = &p.kubefed_namespace;
    match &p.command {
        Command::Join(a) => {
            let context = a.cluster_context.as_deref().unwrap_or(&a.name);
            let access = join::member_access(&read_kubeconfig(kc)?, context)?;
            let member = client_for(kc, Some(context)).await?;
            let opts = join::JoinOptions {
                secret_name: a.secret_name.clone(),
                error_on_existing: a.error_on_existing,
                dry_run: a.dry_run.on,
                token_wait: a.token_wait,
                member_role: a.member_role.clone(),
                allow_copy_token: a.allow_copy_token,
                ..join::JoinOptions::new(&a.name, fed_ns)
            };
            if a.tunnel.via_tunnel {
                let t = tunnel::Tunnel::from_args(&a.tunnel, &a.name)?;
                let (lines, manifests) =
                    tunnel::join(&host().await?, &member, &access, &opts, &t).await?;
                return tunnel::print(&a.name, &a.tunnel, &lines, &manifests);
            }
            print_lines(&join::join_with(&host().await?, &member, &access, &opts).await?);
        }
        Command::Unjoin(a) => {
            let context = a.cluster_context.as_deref().unwrap_or(&a.name);
            let known = read_kubeconfig(kc)?
                .contexts
                .iter()
                .any(|c| c.name == context);
            let member = match (known, a.force) {
                (true, _) => Some(client_for(kc, Some(context)).await?),
                (false, true) => {
                    print_warnings(&[format!(
                        "context {context:?} is not in the kubeconfig: the member's service account is left in place (--force)"
                    )]);
                    None
                }
                (false, false) => anyhow::bail!(
                    "context {context:?} not found in the kubeconfig: pass --cluster-context, or --force to remove the cluster from the host only"
                ),
            };
            let opts = join::UnjoinOptions {
                name: a.name.clone(),
                fed_ns: fed_ns.clone(),
                force: a.force,
                dry_run: a.dry_run.on,
            };
            let out = join::unjoin_with(&host().await?, member.as_ref(), &opts).await?;
            print_warnings(&out.warnings);
            print_lines(&out.lines);
        }
        Command::Enable(a) => {
            let client = host().await?;
            let target = discovery::resolve(&client, &a.name, a.version.as_deref()).await?;
            let opts = types::EnableOptions {
                federated_group: a.federated_group.clone(),
                federated_version: a.federated_version.clone(),
                dry_run: a.dry_run.on,
            };
            if a.output.is_some() {
                let (ftc, crd) = types::resources_for_host(&client, &target, fed_ns, &opts).await?;
                print_yaml(&[ftc, crd])?;
            } else {
                print_lines(&types::enable(&client, &target, fed_ns, &opts).await?);
            }
        }
        Command::Disable(a) => {
            let opts = types::DisableOptions {
                delete_crd: a.delete_crd,
                federated_group: a.federated_group.clone(),
                dry_run: a.dry_run.on,
            };
            print_lines(&types::disable(&host().await?, &a.name, fed_ns, &opts).await?);
        }
        Command::Federate(a) => federate_command(a, &host, &default_ns, fed_ns).await?,
        Command::OrphaningDeletion { action } => {
            let (action, a) = match action {
                OrphaningCommand::Enable(a) => (orphaning::Action::Enable, a),
                OrphaningCommand::Disable(a) => (orphaning::Action::Disable, a),
                OrphaningCommand::Status(a) => (orphaning::Action::Status, a),
            };
            let line = orphaning::run(
                &host().await?,
                action,
                &a.type_name,
                &a.name,
                a.namespace.as_deref(),
                &default_ns(),
                fed_ns,
            )
            .await?;
            println!("{line}");
        }
        Command::Rollout(args) => match &args.status {
            Some(RolloutCommand::Status {
                target,
                namespace,
                timeout,
            }) => {
                let (kind, name) = split_target(target)?;
                let ns = namespace.clone().unwrap_or_else(default_ns);
                rollout::status(&host().await?, kind, &ns, name, *timeout).await?;
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
                let ns = args.namespace.clone().unwrap_or_else(default_ns);
                rollout::set_mask(&host().await?, kind, &ns, name, &args.to).await?;
                println!("{target}: placementMask set to {}", args.to.join(","));
            }
        },
    }
    Ok(())
}

async fn federate_command<F, Fut>(
    a: &FederateArgs,
    host: &F,
    default_ns: &dyn Fn() -> String,
    fed_ns: &str,
) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<kube::Client>>,
{
    let namespace = a.namespace.clone().unwrap_or_else(default_ns);
    if let Some(file) = &a.filename {
        anyhow::ensure!(
            a.args.is_empty(),
            "--filename takes no TYPE NAME (got {})",
            a.args.join(" ")
        );
        let text = if file.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).context("reading stdin")?
        } else {
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
        };
        let docs = federate::parse_documents(&text)
            .with_context(|| format!("parsing {}", file.display()))?;
        return print_yaml(&federate::federate_documents(
            &docs,
            &namespace,
            &a.clusters,
        )?);
    }
    let (type_name, name) = match a.args.as_slice() {
        [type_name, name] => (type_name.as_str(), name.as_str()),
        [target] if target.contains('/') => split_target(target)?,
        [_] => anyhow::bail!("federate needs a NAME: kubectl cellfed federate TYPE NAME"),
        _ => anyhow::bail!("federate needs TYPE NAME (or -f FILE)"),
    };
    anyhow::ensure!(
        !(a.enable_type && a.output.is_some()),
        "--enable-type cannot be used with --output yaml"
    );
    let opts = federate::FederateOptions {
        namespace,
        clusters: a.clusters.clone(),
        contents: a.contents,
        enable_type: a.enable_type,
        skip_api_resources: a.skip_api_resources.clone(),
        output_only: a.output.is_some(),
        dry_run: a.dry_run.on,
        fed_ns: fed_ns.to_string(),
    };
    let out = federate::federate(&host().await?, type_name, name, &opts).await?;
    print_warnings(&out.warnings);
    if opts.output_only {
        print_yaml(&out.objects)
    } else {
        print_lines(&out.lines);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn flags_are_consistent() {
        Plugin::command().debug_assert();
    }

    #[test]
    fn kubefedctl_and_cellfed_spellings_parse() {
        let p = Plugin::try_parse_from([
            "kubectl-cellfed",
            "join",
            "m1",
            "--host-cluster-context=cellfed",
            "--secret-name=s",
            "--error-on-existing=false",
            "--dry-run",
        ])
        .unwrap();
        assert_eq!(p.host_context.as_deref(), Some("cellfed"));
        let Command::Join(j) = p.command else {
            panic!()
        };
        assert!(!j.error_on_existing && j.dry_run.on);
        assert_eq!(j.secret_name.as_deref(), Some("s"));
        let p = Plugin::try_parse_from(["kubectl-cellfed", "join", "m1", "--host-context", "h"])
            .unwrap();
        let Command::Join(j) = p.command else {
            panic!()
        };
        assert!(j.error_on_existing && !j.dry_run.on);
        let p = Plugin::try_parse_from(["kubectl-cellfed", "disable", "configmaps", "--delete"])
            .unwrap();
        assert!(matches!(
            p.command,
            Command::Disable(DisableArgs {
                delete_crd: true,
                ..
            })
        ));
        let p = Plugin::try_parse_from([
            "kubectl-cellfed",
            "federate",
            "cm",
            "settings",
            "-c",
            "-t",
            "-s",
            "secrets,apps",
        ])
        .unwrap();
        let Command::Federate(f) = p.command else {
            panic!()
        };
        assert_eq!(f.args, ["cm", "settings"]);
        assert_eq!(f.skip_api_resources, ["secrets", "apps"]);
        assert!(
            Plugin::try_parse_from(["kubectl-cellfed", "federate", "cm", "x", "-o", "json"])
                .is_err()
        );
        assert!(
            Plugin::try_parse_from(["kubectl-cellfed", "orphaning", "status", "cm", "x"]).is_ok()
        );
    }

    #[test]
    fn namespace_comes_from_the_context_as_in_kubectl() {
        let kc: kube::config::Kubeconfig = serde_yaml::from_str(
            "apiVersion: v1\nkind: Config\ncurrent-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u, namespace: shop}\n- name: b\n  context: {cluster: c, user: u}\n",
        )
        .unwrap();
        assert_eq!(context_namespace(Some(&kc), None), "shop");
        assert_eq!(context_namespace(Some(&kc), Some("b")), "default");
        assert_eq!(context_namespace(None, None), "default");
    }
}
