//! Apiserver benchmark: requests/s and p99 for create, get, list (1k and 10k objects) and watch
//! fan-out to many watchers, per storage backend, against a real `cellfed_apiserver::Server` over
//! HTTP (loopback, plain HTTP, no auth) with a real HTTP client. See bench/README.md.
//!
//! `cargo run --release -p cellfed-bench --bin apiserver_bench -- --help`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use futures::StreamExt as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Benchmark cellfed-apiserver over HTTP on SQLite, MySQL, PostgreSQL")]
struct Args {
    /// Backends to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,mysql,postgres")]
    backends: Vec<String>,
    /// MySQL/MariaDB URL.
    #[arg(
        long,
        env = "CELLFED_TEST_MYSQL_URL",
        default_value = "mysql://root@127.0.0.1:3306/test"
    )]
    mysql_url: String,
    /// PostgreSQL URL.
    #[arg(
        long,
        env = "CELLFED_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// Objects created (and read); the list measurements use the first 1k and all of them.
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Concurrent clients for create and get.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Watchers in the fan-out measurement.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Writes observed by every watcher in the fan-out measurement.
    #[arg(long, default_value_t = 200)]
    watch_writes: usize,
}

type Http = Client<HttpConnector, Full<Bytes>>;

struct Timed {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn summarize(mut lat: Vec<Duration>, wall: Duration) -> Timed {
    lat.sort();
    Timed {
        per_sec: lat.len() as f64 / wall.as_secs_f64(),
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
    }
}

async fn request(http: &Http, method: &str, url: &str, body: Option<&Value>) -> Result<Value> {
    let req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))?;
    let resp = http.request(req).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    anyhow::ensure!(
        status.is_success(),
        "{method} {url}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    Ok(serde_json::from_slice(&bytes)?)
}

async fn backend(args: &Args, name: &str) -> Result<()> {
    let dir = std::env::temp_dir().join(format!(
        "cellfed-apiserver-bench-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    let prefix = format!("bench{}", std::process::id());
    let storage = match name {
        "sqlite" => format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()),
        "mysql" => args.mysql_url.clone(),
        "postgres" => args.postgres_url.clone(),
        other => anyhow::bail!("unknown backend {other}"),
    };
    // a fresh table prefix per run keeps the shared databases clean between runs
    let store = cellfed_store::Store::open_with(
        cellfed_store::Config::new(&storage).with_table_prefix(&prefix),
    )
    .await?;
    let mut config = cellfed_apiserver::ServerConfig::new(&storage, "127.0.0.1:0".parse()?, &dir);
    config.store = Some(store);
    config.insecure_http = true;
    config.anonymous = true;
    let server = cellfed_apiserver::Server::bind(config).await?;
    let addr = server.local_addr();
    tokio::spawn(server.run_until(std::future::pending()));
    let base = format!("http://{addr}/api/v1/namespaces/default/configmaps");
    let http: Http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.clients * 2)
        .build_http();
    let http = Arc::new(http);

    // create
    let started = Instant::now();
    let lat: Vec<Duration> = futures::stream::iter(0..args.objects)
        .map(|i| {
            let http = http.clone();
            let base = base.clone();
            async move {
                let t = Instant::now();
                let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i:06}")}, "data": {"v": "x".repeat(256)}});
                request(&http, "POST", &base, Some(&obj)).await.map(|_| t.elapsed())
            }
        })
        .buffer_unordered(args.clients)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let create = summarize(lat, started.elapsed());

    // get
    let started = Instant::now();
    let lat: Vec<Duration> = futures::stream::iter(0..args.objects)
        .map(|i| {
            let http = http.clone();
            let url = format!("{base}/cm-{i:06}");
            async move {
                let t = Instant::now();
                request(&http, "GET", &url, None).await.map(|_| t.elapsed())
            }
        })
        .buffer_unordered(args.clients)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let get = summarize(lat, started.elapsed());

    // list 1k (limit) and everything
    let mut lists = Vec::new();
    for limit in [1000usize, args.objects] {
        let mut lat = Vec::new();
        let started = Instant::now();
        for _ in 0..10 {
            let t = Instant::now();
            let l = request(&http, "GET", &format!("{base}?limit={limit}"), None).await?;
            anyhow::ensure!(
                l["items"].as_array().map_or(0, Vec::len) == limit.min(args.objects),
                "short list"
            );
            lat.push(t.elapsed());
        }
        lists.push((limit, summarize(lat, started.elapsed())));
    }

    // watch fan-out: W watchers, K writes; latency = write acknowledged → event received
    let rv = request(&http, "GET", &format!("{base}?limit=1"), None).await?["metadata"]["resourceVersion"].as_str().unwrap_or("0").to_string();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    for _ in 0..args.watchers {
        let http = http.clone();
        let url = format!("{base}?watch=true&resourceVersion={rv}");
        let tx = tx.clone();
        tokio::spawn(async move {
            let req = hyper::Request::get(&url).body(Full::new(Bytes::new()))?;
            let resp = http.request(req).await?;
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            while let Some(frame) = body.frame().await {
                let Ok(data) = frame?.into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    if let Ok(ev) = serde_json::from_slice::<Value>(&line)
                        && let Some(name) =
                            ev.pointer("/object/metadata/name").and_then(Value::as_str)
                    {
                        let _ = tx.send((name.to_string(), Instant::now()));
                    }
                }
            }
            anyhow::Ok(())
        });
    }
    drop(tx);
    tokio::time::sleep(Duration::from_millis(500)).await; // let every watch connect
    let mut sent = std::collections::HashMap::new();
    let started = Instant::now();
    for i in 0..args.watch_writes {
        let name = format!("w-{i:05}");
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
        request(&http, "POST", &base, Some(&obj)).await?;
        sent.insert(name, Instant::now());
    }
    let expected = args.watchers * args.watch_writes;
    let mut lat = Vec::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(120);
    while lat.len() < expected && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some((name, at))) => {
                if let Some(t) = sent.get(&name) {
                    lat.push(at.saturating_duration_since(*t));
                }
            }
            _ => break,
        }
    }
    let delivered = lat.len();
    let fanout = summarize(lat, started.elapsed());

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| {name} | create | {:.0}/s | p50 {:.2} ms | p99 {:.2} ms |",
        create.per_sec,
        ms(create.p50),
        ms(create.p99)
    );
    println!(
        "| {name} | get | {:.0}/s | p50 {:.2} ms | p99 {:.2} ms |",
        get.per_sec,
        ms(get.p50),
        ms(get.p99)
    );
    for (limit, l) in &lists {
        println!(
            "| {name} | list {limit} | {:.1}/s | p50 {:.1} ms | p99 {:.1} ms |",
            l.per_sec,
            ms(l.p50),
            ms(l.p99)
        );
    }
    println!(
        "| {name} | watch fan-out {}×{} | {delivered}/{expected} events | p50 {:.2} ms | p99 {:.2} ms |",
        args.watchers,
        args.watch_writes,
        ms(fanout.p50),
        ms(fanout.p99)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    println!("| backend | operation | throughput | p50 | p99 |\n|---|---|---|---|---|");
    for b in &args.backends {
        backend(&args, b)
            .await
            .with_context(|| format!("backend {b}"))?;
    }
    Ok(())
}
