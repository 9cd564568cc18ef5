//! Member requests direct vs through the tunnel, in one run: a member apiserver (HTTPS, its
//! certificate valid for `member1.cluster.internal`), the tunnel server and an agent in this
//! process, and two kube clients — one dialling the member, one through the CONNECT proxy.
//!
//! Prints, for each path: sequential GET latency (p50, p99), concurrent GET throughput, and
//! bulk LIST throughput (MB/s of a ~1 MB list), then the tunnel's overhead.
//!
//! `cargo run --release -p cellfed-bench --bin tunnel_bench -- --requests 2000`

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt as _;

#[derive(Parser)]
struct Args {
    /// Sequential GETs per path (latency).
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Concurrent GETs per path (throughput).
    #[arg(long, default_value_t = 4000)]
    concurrent_requests: usize,
    /// Requests in flight for the throughput run.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// LISTs of the ~1 MB ConfigMap list per path.
    #[arg(long, default_value_t = 50)]
    lists: usize,
}

struct Figures {
    p50: Duration,
    p99: Duration,
    rps: f64,
    mbps: f64,
}

async fn get(client: &kube::Client, path: &str) -> anyhow::Result<usize> {
    let req = http::Request::get(path).body(Vec::new())?;
    Ok(client.request_text(req).await?.len())
}

async fn measure(client: &kube::Client, args: &Args) -> anyhow::Result<Figures> {
    let path = "/api/v1/namespaces/default";
    for _ in 0..100 {
        get(client, path).await?;
    }
    let mut lat = Vec::with_capacity(args.requests);
    for _ in 0..args.requests {
        let t = Instant::now();
        get(client, path).await?;
        lat.push(t.elapsed());
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let t = Instant::now();
    let results: Vec<anyhow::Result<usize>> = futures::stream::iter(0..args.concurrent_requests)
        .map(|_| get(client, path))
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let rps = args.concurrent_requests as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..args.lists {
        bytes += get(client, "/api/v1/namespaces/default/configmaps").await?;
    }
    let mbps = bytes as f64 / 1e6 / t.elapsed().as_secs_f64();
    Ok(Figures {
        p50: pct(0.50),
        p99: pct(0.99),
        rps,
        mbps,
    })
}

async fn client(
    kubeconfig: &kube::config::Kubeconfig,
    server: &str,
    proxy: Option<String>,
) -> anyhow::Result<kube::Client> {
    let mut kc = kubeconfig.clone();
    for c in kc.clusters.iter_mut().filter_map(|c| c.cluster.as_mut()) {
        c.server = Some(server.into());
        c.proxy_url = proxy.clone();
    }
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(kube::Client::try_from(config)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("cellfed-tunnel-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // the member
    let mut cfg = cellfed_apiserver::ServerConfig::new(
        format!("sqlite://{}?mode=rwc", dir.join("member.db").display()),
        "127.0.0.1:0".parse()?,
        dir.join("member"),
    );
    cfg.tls_hosts = vec!["member1.cluster.internal".into()];
    let member = cellfed_apiserver::Server::bind(cfg).await?;
    let member_addr = member.local_addr();
    let kubeconfig = kube::config::Kubeconfig::read_from(member.kubeconfig_path())?;
    tokio::spawn(member.run_until(std::future::pending()));

    // the tunnel
    let cert = cellfed_tunnel::tls::ensure(&dir.join("tunnel"), &[])?;
    let server = cellfed_tunnel::TunnelServer::bind(cellfed_tunnel::ServerConfig {
        agent_listen: "127.0.0.1:0".parse()?,
        proxy_listen: "127.0.0.1:0".parse()?,
        cert: cert.clone(),
        auth: cellfed_tunnel::Authenticator {
            agent_sources: vec![cellfed_tunnel::AgentTokenSource::Static(vec![
                cellfed_tunnel::TokenEntry {
                    token: "agent".into(),
                    cluster: "member1".into(),
                    host: None,
                },
            ])],
            proxy_tokens: vec!["proxy".into()],
        },
        limits: cellfed_tunnel::Limits::default(),
    })
    .await?;
    let (agent_addr, proxy_addr, handle) =
        (server.agent_addr(), server.proxy_addr(), server.handle());
    tokio::spawn(server.run_until(std::future::pending()));
    let agent = cellfed_tunnel::Agent::new(cellfed_tunnel::AgentConfig::new(
        &format!("https://127.0.0.1:{}", agent_addr.port()),
        "member1",
        cellfed_tunnel::AgentToken::Inline("agent".into()),
        &format!("https://{member_addr}"),
        &cert.ca_pem,
    ))?;
    tokio::spawn(agent.run_until(std::future::pending()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.agents_connected("member1") == 0 {
        anyhow::ensure!(Instant::now() < deadline, "the agent did not connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let direct = client(&kubeconfig, &format!("https://{member_addr}"), None).await?;
    let tunnelled = client(
        &kubeconfig,
        &format!("https://member1.cluster.internal:{}", member_addr.port()),
        Some(format!("http://cellfed:proxy@{proxy_addr}")),
    )
    .await?;

    // ~1 MB of ConfigMaps for the bulk LIST
    let cms: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        direct.clone(),
        "default",
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk("", "v1", "ConfigMap")),
    );
    let blob = "x".repeat(4000);
    for i in 0..250 {
        let obj: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("bulk-{i}")},
            "data": {"blob": blob},
        }))?;
        cms.create(&Default::default(), &obj)
            .await
            .context("creating the bulk ConfigMaps")?;
    }

    let d = measure(&direct, &args).await?;
    let t = measure(&tunnelled, &args).await?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{} sequential GETs, {} concurrent GETs ({} in flight), {} LISTs of 250 ConfigMaps (~1 MB)",
        args.requests, args.concurrent_requests, args.concurrency, args.lists
    );
    println!("| path | GET p50 | GET p99 | GET/s | LIST MB/s |");
    println!("|---|---|---|---|---|");
    for (name, f) in [("direct", &d), ("tunnel", &t)] {
        println!(
            "| {name} | {:.3} ms | {:.3} ms | {:.0} | {:.1} |",
            ms(f.p50),
            ms(f.p99),
            f.rps,
            f.mbps
        );
    }
    println!(
        "tunnel overhead: p50 +{:.3} ms, GET throughput {:.0}% of direct, LIST throughput {:.0}% of direct",
        ms(t.p50) - ms(d.p50),
        100.0 * t.rps / d.rps,
        100.0 * t.mbps / d.mbps
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
