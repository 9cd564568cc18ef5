//! `cellfed up`: the whole federation in one process for a laptop — the federation apiserver on
//! SQLite with the conversion webhook's logic in-process, the webhook over HTTPS for admission
//! (answering only the apiserver's client certificate),
//! the controller, and N member clusters (`cellfed member` servers), joined and ready, with one
//! kubeconfig holding the contexts `cellfed` and `member1..N`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::{Value, json};
use tokio::sync::watch;

/// Flags of `cellfed up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Number of local member clusters (member1..N).
    #[arg(long, default_value_t = 2)]
    pub members: usize,
    /// Where everything is kept (SQLite databases, certificates, kubeconfig); a second `up` on
    /// the same directory keeps the data and the ports.
    #[arg(long, default_value = ".cellfed")]
    pub data_dir: PathBuf,
    /// Reach the members through the tunnel, as members behind NAT: each is registered as
    /// `https://memberN.cluster.internal:PORT`, a name only its `cellfed agent` resolves.
    #[arg(long)]
    pub tunnel: bool,
}

/// The in-process conversion webhook.
struct InProcessConverter;

impl cellfed_apiserver::Converter for InProcessConverter {
    fn handles(&self, crd_name: &str) -> bool {
        crd_name.ends_with(&format!(".{}", cellfed_api::well_known::TYPES_GROUP))
    }

    fn convert(
        &self,
        objects: Vec<Value>,
        desired_api_version: &str,
    ) -> Result<Vec<Value>, String> {
        cellfed_webhook::convert_objects(objects, desired_api_version)
    }
}

/// Ports chosen on the first run, reused afterwards (`DIR/ports.json`).
fn ports(dir: &Path, members: usize) -> anyhow::Result<BTreeMap<String, u16>> {
    let path = dir.join("ports.json");
    let mut ports: BTreeMap<String, u16> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut names = vec![
        "cellfed".to_string(),
        "webhook".to_string(),
        "metrics".to_string(),
    ];
    names.extend((1..=members).map(|i| format!("member{i}")));
    for name in names {
        if let std::collections::btree_map::Entry::Vacant(slot) = ports.entry(name) {
            slot.insert(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port());
        }
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&ports)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(ports)
}

fn addr(ports: &BTreeMap<String, u16>, name: &str) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], ports.get(name).copied().unwrap_or(0)))
}

/// Runs everything until Ctrl-C.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ports = ports(dir, args.members)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = tokio::task::JoinSet::new();

    // the federation apiserver, converting in-process
    let host_dir = dir.join("host");
    let mut config = cellfed_apiserver::ServerConfig::new(
        format!("sqlite://{}?mode=rwc", host_dir.join("state.db").display()),
        addr(&ports, "cellfed"),
        &host_dir,
    );
    std::fs::create_dir_all(&host_dir)?;
    config.converter = Some(Arc::new(InProcessConverter));
    // the apiserver authenticates to the admission webhook with a client certificate
    let webhook_auth = super::webhook::ensure_client_auth(
        &dir.join("webhook-client"),
        &addr(&ports, "webhook").to_string(),
    )
    .context("writing the webhook's client credentials")?;
    config.admission_control_config_file = Some(webhook_auth.admission_config.clone());
    // member credentials live in Secrets: never in clear in the host's database
    config.encryption_provider_config = Some(
        cellfed_apiserver::storage::encryption::ensure_default_config(&host_dir)
            .context("writing the host's encryption configuration")?,
    );
    let host = cellfed_apiserver::Server::bind(config)
        .await
        .context("starting the federation apiserver")?;
    let host_kubeconfig = host.kubeconfig_path().to_path_buf();
    tasks.spawn(labelled(
        host.run_until(stopped(stop_rx.clone())),
        "federation apiserver",
    ));

    // members
    let mut member_kubeconfigs = Vec::new();
    for i in 1..=args.members {
        let name = format!("member{i}");
        let mdir = dir.join(&name);
        std::fs::create_dir_all(&mdir)?;
        let mut config = cellfed_apiserver::ServerConfig::new(
            format!("sqlite://{}?mode=rwc", mdir.join("state.db").display()),
            addr(&ports, &name),
            &mdir,
        );
        let member = super::member::hook(&mut config, 3);
        config.tls_hosts = vec![cellfed_tunnel::protocol::default_tunnel_host(&name)];
        let server = cellfed_apiserver::Server::bind(config)
            .await
            .with_context(|| format!("starting {name}"))?;
        member_kubeconfigs.push((name.clone(), server.kubeconfig_path().to_path_buf()));
        tasks.spawn(labelled(
            cellfed_member::run_until(server, member, stopped(stop_rx.clone())),
            "member",
        ));
    }

    // one kubeconfig with every context
    let kubeconfig = dir.join("kubeconfig");
    write_merged_kubeconfig(&kubeconfig, &host_kubeconfig, &member_kubeconfigs)?;
    let host_client = crate::plugin::client_for(Some(&kubeconfig), Some("cellfed")).await?;

    // the webhook (admission; conversion also runs in-process), serving before the bootstrap
    // writes: on a restart the stored webhook configurations already send KubeFedConfig and
    // FederatedTypeConfig writes to it (same port and CA, kept in the data directory)
    let webhook = cellfed_webhook::Webhook::bind(cellfed_webhook::WebhookConfig {
        listen: addr(&ports, "webhook"),
        client_ca_file: Some(webhook_auth.client_ca.clone()),
        cert_dir: dir.join("webhook"),
        hosts: Vec::new(),
        state: cellfed_webhook::WebhookState::new(
            Some(host_client.clone()),
            cellfed_api::well_known::DEFAULT_SYSTEM_NAMESPACE,
        ),
    })
    .await
    .context("starting the webhook")?;
    let webhook_url = format!("https://{}", addr(&ports, "webhook"));
    let ca = webhook.ca_pem.clone();
    let webhook_rx = stop_rx.clone();
    tasks.spawn(async move {
        webhook.run_until(stopped(webhook_rx)).await;
        Ok(())
    });
    // federation API: CRDs, namespace, KubeFedConfig, default types
    bootstrap(&host_client).await?;
    super::webhook::register(&host_client, &webhook_url, &ca).await?;

    // join the members
    let mut tunnel = match args.tunnel {
        true => Some(
            super::tunnel::UpTunnel::start(dir, &host_client, stopped(stop_rx.clone()), &mut tasks)
                .await?,
        ),
        false => None,
    };
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig)?;
    for (name, _) in &member_kubeconfigs {
        let access = crate::plugin::join::member_access(&kc, name)?;
        let member = crate::plugin::client_for(Some(&kubeconfig), Some(name)).await?;
        if let Some(t) = tunnel.as_mut() {
            t.join(&host_client, &member, &access, name).await?;
            continue;
        }
        // cellfed members mint no service-account tokens: use the context's token at once
        crate::plugin::join::join(
            &host_client,
            &member,
            &access,
            name,
            cellfed_api::well_known::DEFAULT_SYSTEM_NAMESPACE,
            std::time::Duration::ZERO,
        )
        .await?;
    }

    // the controller
    let controller_config = cellfed_controller::Config {
        overrides: cellfed_controller::Overrides {
            health_period: Some(std::time::Duration::from_secs(2)),
            workers: Some(8),
            available_delay: Some(std::time::Duration::from_secs(1)),
            ..Default::default()
        },
        metrics_addr: Some(addr(&ports, "metrics")),
        ..Default::default()
    };
    // the controller's futures borrow across awaits in ways that are not `Send` for every
    // lifetime, so it runs on its own thread and runtime, as `cellfed controller` would
    let controller_rx = stop_rx.clone();
    let controller_client = host_client.clone();
    let controller = std::thread::spawn(move || -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        rt.block_on(cellfed_controller::run(
            controller_client,
            controller_config,
            stopped(controller_rx),
        ))
        .context("controller")
    });

    // the paragraph users read; a closed stdout must not stop the federation
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stdout(),
        "cellfed is up: the federation apiserver and {} member cluster(s) ({}), joined and ready.\n\n\
         export KUBECONFIG={}\n\
         kubectl get kubefedclusters -n kube-federation-system\n\
         kubectl apply -f examples/federated-deployment.yaml      # then: kubectl --context member1 get deployments -A\n\n\
         Contexts: cellfed (the federation host), member1..member{}. Controller metrics: http://{}/metrics. \
         Press Ctrl-C to stop; `cellfed up --data-dir {}` again keeps everything.",
        args.members,
        member_kubeconfigs
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        kubeconfig.display(),
        args.members,
        addr(&ports, "metrics"),
        dir.display(),
    );

    if let Some(t) = &tunnel {
        let _ = writeln!(std::io::stdout(), "{}", t.summary());
    }
    super::ctrl_c().await;
    eprintln!("stopping …");
    let _ = stop_tx.send(true);
    while let Some(result) = tasks.join_next().await {
        if let Ok(Err(e)) = result {
            eprintln!("{e:#}");
        }
    }
    match tokio::task::spawn_blocking(move || controller.join()).await {
        Ok(Ok(Err(e))) => eprintln!("{e:#}"),
        Ok(Err(_)) => eprintln!("the controller thread panicked"),
        _ => {}
    }
    eprintln!("stopped");
    Ok(())
}

/// Labels a server's result for the shutdown report.
async fn labelled(
    run: impl std::future::Future<Output = Result<(), cellfed_apiserver::ServeError>>,
    what: &'static str,
) -> anyhow::Result<()> {
    run.await.with_context(|| what.to_string())
}

/// Installs the federation API on the host: CRDs, the federation namespace, the shipped
/// KubeFedConfig (adoptResources Disabled) and the default FederatedTypeConfigs. Idempotent.
/// The same as `cellfed bootstrap` without a webhook target (conversion runs in-process here).
pub async fn bootstrap(client: &kube::Client) -> anyhow::Result<()> {
    super::bootstrap::install(
        client,
        cellfed_api::well_known::DEFAULT_SYSTEM_NAMESPACE,
        None,
        false,
        true,
        std::time::Instant::now() + std::time::Duration::from_secs(60),
    )
    .await?;
    Ok(())
}

/// Writes one kubeconfig with contexts `cellfed` and one per member (`current-context: cellfed`).
fn write_merged_kubeconfig(
    path: &Path,
    host: &Path,
    members: &[(String, PathBuf)],
) -> anyhow::Result<()> {
    let mut clusters = Vec::new();
    let mut users = Vec::new();
    let mut contexts = Vec::new();
    let all =
        std::iter::once(("cellfed".to_string(), host.to_path_buf())).chain(members.iter().cloned());
    for (name, file) in all {
        let kc: Value = serde_yaml::from_str(
            &std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?,
        )?;
        let mut c = kc["clusters"][0].clone();
        c["name"] = json!(name);
        let mut u = kc["users"][0].clone();
        u["name"] = json!(name);
        clusters.push(c);
        users.push(u);
        contexts.push(json!({"name": name, "context": {"cluster": name, "user": name}}));
    }
    let merged = json!({"apiVersion": "v1", "kind": "Config", "current-context": "cellfed", "clusters": clusters, "users": users, "contexts": contexts});
    std::fs::write(path, serde_yaml::to_string(&merged)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
