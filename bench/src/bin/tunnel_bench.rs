//! Member requests direct vs through the tunnel, in one run: a member apiserver (HTTPS, its
//! certificate valid for `member1.cluster.internal`), the tunnel server and an agent in this
//! process, and two kube clients — one dialling the member, one through the CONNECT proxy.
//!
//! Prints, for each path: sequential GET latency (p50, p99), concurrent GET throughput, and
//! bulk LIST throughput (MB/s of a ~1 MB list), then the tunnel's overhead. The two paths are
//! measured in alternation for `--rounds` rounds (which one goes first alternates too), because
//! on a shared machine a single pair of runs mostly measures the neighbours' load; the summary
//! is the median of each figure and of the per-round tunnel/direct ratios.
//!
//! `cargo run --release -p cellfed-bench --bin tunnel_bench -- --rounds 5`

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
    /// Rounds, each measuring both paths one after the other.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Measure only this path (`direct` or `tunnel`), e.g. to count the instructions one path
    /// spends per request with `perf stat`, which the machine's load does not change.
    #[arg(long)]
    only: Option<String>,
}

#[derive(Clone, Copy)]
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
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
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
    // log as the `cellfed` binaries do (info, RUST_LOG overrides): without a subscriber every
    // disabled trace span of h2 and hyper is still handed to the `log` crate, a cost per frame
    // the deployed tunnel server and agent do not pay
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
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

    let (mut d, mut t) = (Vec::new(), Vec::new());
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{} rounds of: {} sequential GETs, {} concurrent GETs ({} in flight), {} LISTs of 250 ConfigMaps (~1 MB)",
        args.rounds, args.requests, args.concurrent_requests, args.concurrency, args.lists
    );
    println!("| round | path | GET p50 | GET p99 | GET/s | LIST MB/s |");
    println!("|---|---|---|---|---|---|");
    let row = |round: &str, name: &str, f: &Figures| {
        println!(
            "| {round} | {name} | {:.3} ms | {:.3} ms | {:.0} | {:.1} |",
            ms(f.p50),
            ms(f.p99),
            f.rps,
            f.mbps
        );
    };
    if let Some(only) = &args.only {
        let client = match only.as_str() {
            "direct" => &direct,
            "tunnel" => &tunnelled,
            other => anyhow::bail!("--only {other}: expected direct or tunnel"),
        };
        for round in 1..=args.rounds {
            row(&round.to_string(), only, &measure(client, &args).await?);
        }
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
    for round in 1..=args.rounds {
        let (fd, ft) = if round % 2 == 1 {
            let fd = measure(&direct, &args).await?;
            (fd, measure(&tunnelled, &args).await?)
        } else {
            let ft = measure(&tunnelled, &args).await?;
            (measure(&direct, &args).await?, ft)
        };
        row(&round.to_string(), "direct", &fd);
        row(&round.to_string(), "tunnel", &ft);
        d.push(fd);
        t.push(ft);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let summary = |v: &[Figures]| Figures {
        p50: Duration::from_secs_f64(median(v.iter().map(|f| f.p50.as_secs_f64()).collect())),
        p99: Duration::from_secs_f64(median(v.iter().map(|f| f.p99.as_secs_f64()).collect())),
        rps: median(v.iter().map(|f| f.rps).collect()),
        mbps: median(v.iter().map(|f| f.mbps).collect()),
    };
    row("median", "direct", &summary(&d));
    row("median", "tunnel", &summary(&t));
    let ratio = |f: fn(&Figures) -> f64| {
        100.0 * median(d.iter().zip(&t).map(|(d, t)| f(t) / f(d)).collect())
    };
    println!(
        "tunnel overhead (median of the rounds): p50 +{:.3} ms, GET throughput {:.0}% of direct, LIST throughput {:.0}% of direct",
        median(
            d.iter()
                .zip(&t)
                .map(|(d, t)| ms(t.p50) - ms(d.p50))
                .collect()
        ),
        ratio(|f| f.rps),
        ratio(|f| f.mbps)
    );
    let requests = args.rounds * (100 + args.requests + args.concurrent_requests + args.lists);
    println!(
        "tunnel streams opened: {} for {requests} requests through the proxy",
        handle
            .metrics()
            .streams_total
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
