//! One backend's measurements and their rendering.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cellfed_apiserver::{Server, ServerConfig};
use cellfed_store::{Config, Store};
use hyper::{Method, StatusCode};

use crate::Args;
use crate::client::Api;

/// Throughput and latency of one kind of request.
#[derive(Debug, Default, Clone)]
pub struct Figure {
    pub requests: usize,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

impl Figure {
    fn new(mut samples: Vec<Duration>, wall: Duration) -> Figure {
        samples.sort();
        let at = |p: usize| {
            samples
                .get((samples.len() * p / 100).min(samples.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Figure {
            requests: samples.len(),
            per_second: samples.len() as f64 / wall.as_secs_f64(),
            p50: at(50),
            p99: at(99),
        }
    }
}

/// Everything measured on one backend.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub backend: String,
    pub create: Figure,
    pub get: Figure,
    /// (objects, figure) per list size.
    pub lists: Vec<(usize, Figure)>,
    /// Event deliveries (watchers × events) and write-to-delivery latency.
    pub watch: Figure,
    pub watchers: usize,
}

struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    addr: SocketAddr,
    store: Store,
    dir: std::path::PathBuf,
}

async fn start(args: &Args, name: &str, prefix: &str) -> Result<Running> {
    let dir = std::env::temp_dir().join(format!("cellfed-{prefix}"));
    std::fs::create_dir_all(&dir)?;
    let url = match name {
        "sqlite" => format!("sqlite://{}/store.db", dir.display()),
        "mysql" => args.mysql_url.clone(),
        "postgres" => args.postgres_url.clone(),
        other => bail!("unknown backend {other:?} (sqlite, mysql, postgres)"),
    };
    let mut store_config = Config::new(&url).with_table_prefix(prefix);
    store_config.max_connections = 16;
    let store = Store::open_with(store_config).await?;
    let mut config = ServerConfig::new(url, "127.0.0.1:0".parse()?, dir.clone());
    config.store = Some(store.clone());
    config.insecure_http = true;
    config.anonymous = true;
    let server = Server::bind(config).await?;
    let addr = server.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_until(async move {
        let _ = rx.await;
    }));
    Ok(Running {
        stop: Some(tx),
        addr,
        store,
        dir,
    })
}

fn config_map(ns: &str, name: &str, value: &str) -> Vec<u8> {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "bench"}},
        "data": {"value": value},
    })
    .to_string()
    .into_bytes()
}

async fn namespace(api: &Api, ns: &str) -> Result<()> {
    let body =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    api.call(
        Method::POST,
        "/api/v1/namespaces",
        Some(body.to_string().into_bytes()),
        StatusCode::CREATED,
    )
    .await?;
    Ok(())
}

/// `n` ConfigMaps `cm-00000…` in `ns` from `clients` concurrent clients; per-request latencies.
async fn create_many(
    api: &Api,
    ns: &str,
    n: usize,
    clients: usize,
    value: &str,
) -> Result<Vec<Duration>> {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let api = api.clone();
        let ns = ns.to_owned();
        let value = value.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            for i in (c..n).step_by(clients) {
                let body = config_map(&ns, &format!("cm-{i:05}"), &value);
                let path = format!("/api/v1/namespaces/{ns}/configmaps");
                samples.push(
                    api.call(Method::POST, &path, Some(body), StatusCode::CREATED)
                        .await?
                        .1,
                );
            }
            anyhow::Ok(samples)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

pub async fn backend(args: &Args, name: &str) -> Result<Report> {
    let prefix = format!("apibench_{name}_{}", std::process::id());
    let mut server = start(args, name, &prefix).await?;
    let api = Api::new(format!("http://{}", server.addr));
    let clients = args.clients.max(1);
    let value = "v".repeat(args.value_size);
    let mut report = Report {
        backend: name.to_owned(),
        watchers: args.watchers,
        ..Default::default()
    };

    // create: filling the list namespaces is the create measurement.
    eprintln!("  create");
    let mut samples = Vec::new();
    let mut wall = Duration::ZERO;
    for &size in &args.list_sizes {
        let ns = format!("bench-list-{size}");
        namespace(&api, &ns).await?;
        let started = Instant::now();
        samples.extend(create_many(&api, &ns, size, clients, &value).await?);
        wall += started.elapsed();
    }
    report.create = Figure::new(samples, wall);

    eprintln!("  get");
    let objects = args.list_sizes.first().copied().unwrap_or(1).max(1);
    let ns = format!("bench-list-{objects}");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let api = api.clone();
        let ns = ns.clone();
        let gets = args.gets;
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            for i in (c..gets).step_by(clients) {
                let path = format!("/api/v1/namespaces/{ns}/configmaps/cm-{:05}", i % objects);
                samples.push(api.call(Method::GET, &path, None, StatusCode::OK).await?.1);
            }
            anyhow::Ok(samples)
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await??);
    }
    report.get = Figure::new(samples, started.elapsed());

    for &size in &args.list_sizes {
        eprintln!("  list {size}");
        let path = format!("/api/v1/namespaces/bench-list-{size}/configmaps");
        let started = Instant::now();
        let mut samples = Vec::new();
        for _ in 0..args.lists {
            let (body, took) = api.call(Method::GET, &path, None, StatusCode::OK).await?;
            let list: serde_json::Value = serde_json::from_slice(&body)?;
            let items = list["items"].as_array().map_or(0, Vec::len);
            if items != size {
                bail!("listed {items} objects, expected {size}");
            }
            samples.push(took);
        }
        report
            .lists
            .push((size, Figure::new(samples, started.elapsed())));
    }

    eprintln!("  watch fan-out to {} watchers", args.watchers);
    report.watch = fan_out(&api, args, &value).await?;

    if let Some(stop) = server.stop.take() {
        let _ = stop.send(());
    }
    for table in ["log", "meta", "migrations"] {
        sqlx::query(&format!("DROP TABLE IF EXISTS {prefix}_{table}"))
            .execute(server.store.pool())
            .await?;
    }
    let _ = std::fs::remove_dir_all(&server.dir);
    Ok(report)
}

/// `watchers` watches on one namespace, then `watch_events` creates: every watcher must see
/// every create; latency is from the start of the create request to the event's arrival.
async fn fan_out(api: &Api, args: &Args, value: &str) -> Result<Figure> {
    let ns = "bench-watch";
    namespace(api, ns).await?;
    let (body, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            None,
            StatusCode::OK,
        )
        .await?;
    let list: serde_json::Value = serde_json::from_slice(&body)?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("list without resourceVersion")?
        .to_owned();
    let events = args.watch_events;
    let mut watchers = Vec::new();
    for _ in 0..args.watchers {
        let path = format!("/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={rv}");
        let mut stream = api.watch(&path).await?;
        watchers.push(tokio::spawn(async move {
            let mut seen = Vec::with_capacity(events);
            while seen.len() < events {
                let event = tokio::time::timeout(Duration::from_secs(60), stream.next())
                    .await
                    .context("no watch event within 60 s")??;
                if event["type"] != "ADDED" {
                    bail!("unexpected watch event {event}");
                }
                let name = event["object"]["metadata"]["name"]
                    .as_str()
                    .context("event without name")?
                    .to_owned();
                seen.push((name, Instant::now()));
            }
            anyhow::Ok(seen)
        }));
    }
    let written = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let started = Instant::now();
    for i in 0..events {
        let name = format!("w-{i:05}");
        let at = Instant::now();
        if let Ok(mut map) = written.lock() {
            map.insert(name.clone(), at);
        }
        let path = format!("/api/v1/namespaces/{ns}/configmaps");
        api.call(
            Method::POST,
            &path,
            Some(config_map(ns, &name, value)),
            StatusCode::CREATED,
        )
        .await?;
    }
    let mut samples = Vec::with_capacity(events * args.watchers);
    let mut last = started;
    for watcher in watchers {
        let seen = watcher.await??;
        let map = written.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        for (i, (name, at)) in seen.into_iter().enumerate() {
            if name != format!("w-{i:05}") {
                bail!("watcher saw {name} at position {i}");
            }
            let sent = map.get(&name).context("event for an unknown object")?;
            samples.push(at.duration_since(*sent));
            last = last.max(at);
        }
    }
    Ok(Figure::new(samples, last.duration_since(started)))
}

fn rate(per_second: f64) -> String {
    if per_second < 100.0 {
        format!("{per_second:.1}")
    } else {
        format!("{per_second:.0}")
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// One backend's figures, human-readable.
pub fn render(r: &Report) -> String {
    let mut out = format!("backend {}\n", r.backend);
    let mut line = |what: &str, f: &Figure| {
        let _ = writeln!(
            out,
            "  {what:<24} {:>9} req/s  p50 {:>10}  p99 {:>10}  ({} requests)",
            rate(f.per_second),
            ms(f.p50),
            ms(f.p99),
            f.requests
        );
    };
    line("create", &r.create);
    line("get", &r.get);
    for (size, f) in &r.lists {
        line(&format!("list {size}"), f);
    }
    line(&format!("watch x{} (deliveries)", r.watchers), &r.watch);
    out
}

/// The Markdown table pasted into bench/README.md.
pub fn summary(args: &Args, reports: &[Report]) -> String {
    let mut out = format!(
        "\n{} clients for create/get, {} B ConfigMaps, {} watchers x {} events; req/s (p99)\n\n",
        args.clients, args.value_size, args.watchers, args.watch_events
    );
    let mut header = "| backend | create | get |".to_owned();
    for size in &args.list_sizes {
        let _ = write!(header, " list {size} |");
    }
    header.push_str(" watch fan-out deliveries/s (p50 / p99) |");
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "|{}", "---|".repeat(4 + args.list_sizes.len()));
    for r in reports {
        let cell = |f: &Figure| format!("{}/s ({})", rate(f.per_second), ms(f.p99));
        let mut row = format!("| {} | {} | {} |", r.backend, cell(&r.create), cell(&r.get));
        for (_, f) in &r.lists {
            let _ = write!(row, " {} |", cell(f));
        }
        let _ = write!(
            row,
            " {}/s ({} / {}) |",
            rate(r.watch.per_second),
            ms(r.watch.p50),
            ms(r.watch.p99)
        );
        let _ = writeln!(out, "{row}");
    }
    out
}
