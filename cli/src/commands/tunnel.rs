//! `cellfed tunnel-server` (in the federation plane) and `cellfed agent` (next to a member
//! cluster): flags and process lifetime over the `cellfed-tunnel` library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use cellfed_tunnel::{AgentTokenSource, Authenticator};

/// Flags of `cellfed tunnel-server`.
#[derive(Debug, clap::Args)]
pub struct TunnelServerArgs {
    /// Where agents connect (TLS).
    #[arg(long, default_value = "0.0.0.0:8132")]
    pub agent_listen: SocketAddr,
    /// Where the controller's HTTP CONNECT proxy listens (KubeFedCluster spec.proxyURL
    /// http://HOST:PORT); also serves /metrics and /healthz.
    #[arg(long, default_value = "0.0.0.0:8131")]
    pub proxy_listen: SocketAddr,
    /// Directory with ca.crt, tls.crt and tls.key for the agent listener; generated (a
    /// self-signed CA) when missing. Agents trust ca.crt (`cellfed agent --ca-file`).
    #[arg(long, default_value = ".cellfed/tunnel")]
    pub cert_dir: PathBuf,
    /// Extra DNS names / IPs for a generated certificate (the name agents dial), repeatable.
    #[arg(long = "tls-host")]
    pub tls_hosts: Vec<String>,
    /// Agent tokens, CSV `token,cluster[,host]`, re-read on every agent connection.
    #[arg(long)]
    pub agent_token_file: Option<PathBuf>,
    /// Also accept agent tokens from the host Secrets `<cluster>-tunnel-token` in
    /// --kubefed-namespace (what `kubectl cellfed join --via-tunnel` creates).
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub agent_tokens_from_secrets: bool,
    /// The controller's proxy token(s), one per line (mount the host Secret
    /// `cellfed-tunnel-proxy` here).
    #[arg(long)]
    pub proxy_token_file: PathBuf,
    /// Kubeconfig of the host, for --agent-tokens-from-secrets; default: in-cluster or $KUBECONFIG.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig.
    #[arg(long)]
    pub context: Option<String>,
    /// The federation namespace holding the agent token Secrets.
    #[arg(long, default_value = cellfed_api::well_known::DEFAULT_SYSTEM_NAMESPACE)]
    pub kubefed_namespace: String,
    /// HTTP/2 PING interval towards agents; an agent silent for as long again is dropped.
    #[arg(long, default_value = "10s", value_parser = super::controller::parse_duration)]
    pub keepalive: Duration,
}

/// Runs the tunnel server until Ctrl-C.
pub async fn run_server(args: TunnelServerArgs) -> anyhow::Result<()> {
    let mut agent_sources = Vec::new();
    if let Some(f) = &args.agent_token_file {
        agent_sources.push(AgentTokenSource::File(f.clone()));
    }
    if args.agent_tokens_from_secrets {
        let client =
            super::controller::host_client(args.kubeconfig.as_ref(), args.context.as_ref())
                .await
                .context("building the host client for agent token Secrets")?;
        agent_sources.push(AgentTokenSource::HostSecrets {
            client,
            namespace: args.kubefed_namespace.clone(),
        });
    }
    anyhow::ensure!(
        !agent_sources.is_empty(),
        "no agent can connect: pass --agent-token-file, --agent-tokens-from-secrets, or both"
    );
    let proxy_tokens = cellfed_tunnel::auth::read_proxy_tokens(&args.proxy_token_file)?;
    anyhow::ensure!(
        !proxy_tokens.is_empty(),
        "{} holds no proxy token",
        args.proxy_token_file.display()
    );
    let cert = cellfed_tunnel::tls::ensure(&args.cert_dir, &args.tls_hosts)?;
    let server = cellfed_tunnel::TunnelServer::bind(cellfed_tunnel::ServerConfig {
        agent_listen: args.agent_listen,
        proxy_listen: args.proxy_listen,
        cert,
        auth: Authenticator {
            agent_sources,
            proxy_tokens,
        },
        limits: cellfed_tunnel::Limits {
            keepalive_interval: args.keepalive,
            keepalive_timeout: args.keepalive,
            ..Default::default()
        },
    })
    .await?;
    eprintln!(
        "cellfed tunnel-server: agents connect to {} (CA {}), the controller's CONNECT proxy and /metrics are on http://{}",
        server.agent_addr(),
        args.cert_dir.join("ca.crt").display(),
        server.proxy_addr()
    );
    server.run_until(super::ctrl_c()).await;
    Ok(())
}

/// Flags of `cellfed agent`.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The tunnel server's agent listener, https://HOST:PORT.
    #[arg(long)]
    pub server: String,
    /// The KubeFedCluster name this agent serves (its token must name it).
    #[arg(long)]
    pub cluster_name: String,
    /// File holding this cluster's agent token (re-read before every connection).
    #[arg(long)]
    pub token_file: PathBuf,
    /// The member's kube-apiserver as the agent reaches it, e.g. https://kubernetes.default.svc:443.
    #[arg(long, default_value = "https://kubernetes.default.svc:443")]
    pub apiserver: String,
    /// CA certificate(s) that sign the tunnel server's certificate.
    #[arg(long)]
    pub ca_file: PathBuf,
    /// Serve Prometheus metrics (and /healthz) on this address.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// Longest wait between reconnection attempts.
    #[arg(long, default_value = "30s", value_parser = super::controller::parse_duration)]
    pub max_backoff: Duration,
}

/// Runs the agent until Ctrl-C.
pub async fn run_agent(args: AgentArgs) -> anyhow::Result<()> {
    let ca = std::fs::read_to_string(&args.ca_file)
        .with_context(|| format!("reading {}", args.ca_file.display()))?;
    let mut config = cellfed_tunnel::AgentConfig::new(
        &args.server,
        &args.cluster_name,
        cellfed_tunnel::AgentToken::File(args.token_file.clone()),
        &args.apiserver,
        &ca,
    );
    config.backoff.max = args.max_backoff;
    let agent = cellfed_tunnel::Agent::new(config)?;
    let metrics = agent.metrics();
    if let Some(addr) = args.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        tokio::spawn(cellfed_tunnel::serve_metrics(
            listener,
            move || metrics.render(),
            std::future::pending(),
        ));
    }
    eprintln!(
        "cellfed agent: serving cluster {} through {}, reaching {}",
        args.cluster_name, args.server, args.apiserver
    );
    agent.run_until(super::ctrl_c()).await;
    Ok(())
}

/// The tunnel of `cellfed up --tunnel`: the server embedded in the plane, one `cellfed agent`
/// process per member (as a member would run it; killing one shows `TunnelDisconnected`).
/// Each agent's command line is kept in `DIR/agents/NAME.args` (JSON) and its pid in
/// `DIR/agents/NAME.pid`, so it can be stopped and started again by hand.
pub struct UpTunnel {
    agent_url: String,
    proxy_url: String,
    ca_file: PathBuf,
    ca_pem: String,
    dir: PathBuf,
    agents: Vec<tokio::process::Child>,
}

impl UpTunnel {
    /// Starts the embedded server (ports kept in `DIR/tunnel/ports.json`) with agent tokens
    /// from the host Secrets and the controller's proxy token from the host Secret
    /// `cellfed-tunnel-proxy` (created when missing).
    pub async fn start(
        dir: &std::path::Path,
        host: &kube::Client,
        stopped: impl Future<Output = ()> + Send + 'static,
        tasks: &mut tokio::task::JoinSet<anyhow::Result<()>>,
    ) -> anyhow::Result<Self> {
        use k8s_openapi::api::core::v1::Secret;
        let tdir = dir.join("tunnel");
        std::fs::create_dir_all(&tdir)?;
        let ports_file = tdir.join("ports.json");
        let mut ports: std::collections::BTreeMap<String, u16> = std::fs::read(&ports_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        for name in ["agents", "proxy"] {
            if !ports.contains_key(name) {
                let port = std::net::TcpListener::bind("127.0.0.1:0")?
                    .local_addr()?
                    .port();
                ports.insert(name.into(), port);
            }
        }
        std::fs::write(&ports_file, serde_json::to_vec_pretty(&ports)?)?;
        let port = |n: &str| ports.get(n).copied().unwrap_or(0);
        let ns = cellfed_api::well_known::DEFAULT_SYSTEM_NAMESPACE;
        let secrets: kube::Api<Secret> = kube::Api::namespaced(host.clone(), ns);
        let proxy_secret = cellfed_tunnel::auth::PROXY_SECRET_NAME;
        let existing = secrets
            .get_opt(proxy_secret)
            .await?
            .and_then(|s| s.data)
            .and_then(|d| {
                d.get("token")
                    .map(|t| String::from_utf8_lossy(&t.0).to_string())
            });
        let proxy_token = match existing {
            Some(t) => t,
            None => {
                let t = cellfed_tunnel::auth::random_token();
                let body = serde_json::json!({
                    "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": proxy_secret, "namespace": ns},
                    "stringData": {"token": t},
                });
                secrets
                    .patch(
                        proxy_secret,
                        &kube::api::PatchParams::apply("cellfed-up").force(),
                        &kube::api::Patch::Apply(&body),
                    )
                    .await
                    .context("writing the tunnel's proxy token Secret")?;
                t
            }
        };
        let cert = cellfed_tunnel::tls::ensure(&tdir, &[])?;
        let server = cellfed_tunnel::TunnelServer::bind(cellfed_tunnel::ServerConfig {
            agent_listen: SocketAddr::from(([127, 0, 0, 1], port("agents"))),
            proxy_listen: SocketAddr::from(([127, 0, 0, 1], port("proxy"))),
            cert: cert.clone(),
            auth: Authenticator {
                agent_sources: vec![AgentTokenSource::HostSecrets {
                    client: host.clone(),
                    namespace: ns.into(),
                }],
                proxy_tokens: vec![proxy_token],
            },
            limits: cellfed_tunnel::Limits {
                keepalive_interval: Duration::from_secs(5),
                keepalive_timeout: Duration::from_secs(5),
                ..Default::default()
            },
        })
        .await
        .context("starting the tunnel server")?;
        let out = Self {
            agent_url: format!("https://127.0.0.1:{}", server.agent_addr().port()),
            proxy_url: format!("http://{}", server.proxy_addr()),
            ca_file: tdir.join("ca.crt"),
            ca_pem: cert.ca_pem,
            dir: dir.join("agents"),
            agents: Vec::new(),
        };
        tasks.spawn(async move {
            server.run_until(stopped).await;
            Ok(())
        });
        Ok(out)
    }

    /// Joins member `name` through the tunnel (apiEndpoint `https://NAME.cluster.internal:PORT`,
    /// which only its agent can reach) and starts its agent process.
    pub async fn join(
        &mut self,
        host: &kube::Client,
        member: &kube::Client,
        access: &crate::plugin::join::MemberAccess,
        name: &str,
    ) -> anyhow::Result<()> {
        let tunnel = crate::plugin::tunnel::Tunnel {
            server_url: self.agent_url.clone(),
            proxy_url: self.proxy_url.clone(),
            host: cellfed_tunnel::protocol::default_tunnel_host(name),
            ca_pem: Some(self.ca_pem.clone()),
            agent_apiserver: access.endpoint.clone(),
            image: String::new(),
        };
        let opts = crate::plugin::join::JoinOptions {
            error_on_existing: false,
            token_wait: Duration::ZERO,
            ..crate::plugin::join::JoinOptions::new(
                name,
                cellfed_api::well_known::DEFAULT_SYSTEM_NAMESPACE,
            )
        };
        let token = crate::plugin::tunnel::ensure_tokens(
            host,
            &opts.fed_ns,
            name,
            &opts.secret_name(),
            &tunnel,
        )
        .await?;
        crate::plugin::join::join_with(
            host,
            member,
            &crate::plugin::tunnel::tunnelled_access(access, &tunnel),
            &opts,
        )
        .await?;
        std::fs::create_dir_all(&self.dir)?;
        let token_file = self.dir.join(format!("{name}.token"));
        write_private(&token_file, &token)?;
        let args = vec![
            "agent".to_string(),
            format!("--server={}", self.agent_url),
            format!("--cluster-name={name}"),
            format!("--token-file={}", token_file.display()),
            format!("--ca-file={}", self.ca_file.display()),
            format!("--apiserver={}", access.endpoint),
            "--max-backoff=2s".to_string(),
        ];
        std::fs::write(
            self.dir.join(format!("{name}.args")),
            serde_json::to_vec(&args)?,
        )?;
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the agent of {name}"))?;
        if let Some(pid) = child.id() {
            std::fs::write(self.dir.join(format!("{name}.pid")), pid.to_string())?;
        }
        self.agents.push(child);
        Ok(())
    }

    /// One line for the user.
    pub fn summary(&self) -> String {
        format!(
            "Tunnel: agents dial {} (one `cellfed agent` process per member, see {}); the controller's CONNECT proxy and tunnel metrics: {}/metrics.",
            self.agent_url,
            self.dir.display(),
            self.proxy_url
        )
    }
}

fn write_private(path: &std::path::Path, content: &str) -> anyhow::Result<()> {
    std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
