//! Soak benchmark (issue 13): does a long-running `cellfed apiserver` level off?
//!
//! Starts the `cellfed` binary as its own process (SQLite by default, with
//! `--etcd-compaction-interval`), drives mixed creates, updates and deletes of ConfigMaps at a
//! fixed rate over a bounded set of names, keeps one watch reading, and every sample interval
//! records the database file size (+ WAL), the history rows in the store's log table and the
//! apiserver's RSS. Prints the curve as a table and the growth over the second half of the run.
//!
//! `cargo run --release -p cellfed-bench --bin soak_bench -- --help`; see bench/README.md.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Command line of the soak benchmark.
#[derive(Debug, Parser)]
#[command(about = "Soak `cellfed apiserver` with mixed writes; sample DB size and RSS")]
struct Args {
    /// The `cellfed` binary; default: target/release/cellfed if built, else target/debug/cellfed.
    #[arg(long)]
    bin: Option<PathBuf>,
    /// How long to drive the load, e.g. 10m, 60s.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    duration: Duration,
    /// Time between samples.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    sample_every: Duration,
    /// Writes per second (creates + updates + deletes), spread over the workers.
    #[arg(long, default_value_t = 50)]
    rate: u32,
    /// Concurrent writers; each owns its share of the names.
    #[arg(long, default_value_t = 4)]
    workers: u32,
    /// Distinct ConfigMap names the writes cycle over (at most this many live objects).
    #[arg(long, default_value_t = 1000)]
    keys: u32,
    /// Bytes of data per ConfigMap.
    #[arg(long, default_value_t = 2048)]
    value_size: usize,
    /// `--etcd-compaction-interval` of the apiserver (0 = off).
    #[arg(long, default_value = "30s")]
    compaction_interval: String,
    /// Storage URL; default: SQLite in a fresh temporary directory (sizes are sampled for
    /// SQLite only).
    #[arg(long)]
    storage: Option<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("bad duration {s:?} (use ms, s, m or h)")),
    }
}

/// The apiserver process; killed on drop.
struct Apiserver {
    child: Child,
    base: String,
    db: Option<PathBuf>,
}

impl Drop for Apiserver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn default_bin() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let release = root.join("target/release/cellfed");
    if release.exists() {
        release
    } else {
        root.join("target/debug/cellfed")
    }
}

type Http = Client<HttpConnector, Full<Bytes>>;

async fn call(
    http: &Http,
    method: Method,
    url: &str,
    body: Option<String>,
) -> Result<(StatusCode, Bytes)> {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
    let response = tokio::time::timeout(Duration::from_secs(30), http.request(request))
        .await
        .context("request timed out")??;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

async fn start(args: &Args, dir: &Path, http: &Http) -> Result<Apiserver> {
    let bin = args.bin.clone().unwrap_or_else(default_bin);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let (storage, db) = match &args.storage {
        Some(url) => (url.clone(), None),
        None => {
            let db = dir.join("store.db");
            (format!("sqlite://{}?mode=rwc", db.display()), Some(db))
        }
    };
    let child = Command::new(&bin)
        .arg("apiserver")
        .arg(format!("--storage={storage}"))
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--data-dir={}", dir.join("data").display()))
        .arg("--insecure-http")
        .arg("--anonymous-auth")
        .arg("--authorization-mode=AlwaysAllow")
        .arg(format!(
            "--etcd-compaction-interval={}",
            args.compaction_interval
        ))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("apiserver.log"))?)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let server = Apiserver {
        child,
        base: format!("http://127.0.0.1:{port}"),
        db,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((StatusCode::OK, _)) =
            call(http, Method::GET, &format!("{}/readyz", server.base), None).await
        {
            return Ok(server);
        }
        if Instant::now() > deadline {
            bail!(
                "{} apiserver not ready within 60 s; see {}",
                bin.display(),
                dir.join("apiserver.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the writers have done so far.
#[derive(Default)]
struct Counters {
    creates: AtomicU64,
    updates: AtomicU64,
    deletes: AtomicU64,
    errors: AtomicU64,
    live: AtomicU64,
}

/// xorshift64: reproducible choices without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// One writer: every `period` one write on one of its names. A name that does not exist is
/// created; an existing one is updated (3 in 4) or deleted (1 in 4), so the live set hovers
/// around half the names and every name sees a stream of updates, deletes and re-creates.
async fn writer(
    http: Http,
    base: String,
    worker: u32,
    args: Arc<Args>,
    counters: Arc<Counters>,
    until: Instant,
) {
    let period = Duration::from_secs_f64(f64::from(args.workers) / f64::from(args.rate.max(1)));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let names: Vec<u32> = (0..args.keys)
        .filter(|k| k % args.workers == worker)
        .collect();
    let mut live = vec![false; names.len()];
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ u64::from(worker + 1);
    let value_base = "x".repeat(args.value_size);
    let url = format!("{base}/api/v1/namespaces/soak/configmaps");
    let mut n = 0_u64;
    while Instant::now() < until {
        ticks.tick().await;
        let i = usize::try_from(next(&mut rng) % names.len().max(1) as u64).unwrap_or(0);
        let Some(&key) = names.get(i) else { return };
        let name = format!("cm-{key:05}");
        n += 1;
        let body = |n: u64| {
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": "soak"},
                "data": {"value": value_base, "n": n.to_string()}})
            .to_string()
        };
        let (method, target, payload, ok, counter, now_live) = if !live[i] {
            (
                Method::POST,
                url.clone(),
                Some(body(n)),
                StatusCode::CREATED,
                &counters.creates,
                true,
            )
        } else if next(&mut rng).is_multiple_of(4) {
            (
                Method::DELETE,
                format!("{url}/{name}"),
                None,
                StatusCode::OK,
                &counters.deletes,
                false,
            )
        } else {
            (
                Method::PUT,
                format!("{url}/{name}"),
                Some(body(n)),
                StatusCode::OK,
                &counters.updates,
                true,
            )
        };
        match call(&http, method, &target, payload).await {
            Ok((status, _)) if status == ok => {
                counter.fetch_add(1, Ordering::Relaxed);
                if live[i] != now_live {
                    if now_live {
                        counters.live.fetch_add(1, Ordering::Relaxed);
                    } else {
                        counters.live.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                live[i] = now_live;
            }
            Ok((status, body)) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("{name}: {status}: {}", String::from_utf8_lossy(&body));
            }
            Err(e) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("{name}: {e:#}");
            }
        }
    }
}

/// A watch of the namespace that reads every event (as a controller's informer would); counts
/// them and re-watches from the last resourceVersion when the server ends the watch.
async fn watcher(
    http: Http,
    base: String,
    events: Arc<AtomicU64>,
    reopened: Arc<AtomicU64>,
    until: Instant,
) {
    let mut rv = String::new();
    let mut first = true;
    while Instant::now() < until {
        if !first {
            reopened.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
        let url = format!(
            "{base}/api/v1/namespaces/soak/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion={rv}"
        );
        let Ok(request) = Request::builder().uri(url).body(Full::new(Bytes::new())) else {
            return;
        };
        let Ok(response) = http.request(request).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let mut body = response.into_body();
        let mut buffer = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buffer.extend_from_slice(&data);
            while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                let Ok(event) = serde_json::from_slice::<serde_json::Value>(&line) else {
                    continue;
                };
                if event["type"] == "ERROR" {
                    // 410 Gone: start again from now
                    rv.clear();
                    continue;
                }
                if let Some(v) = event["object"]["metadata"]["resourceVersion"].as_str() {
                    rv = v.to_string();
                }
                if event["type"] != "BOOKMARK" {
                    events.fetch_add(1, Ordering::Relaxed);
                }
            }
            if Instant::now() >= until {
                return;
            }
        }
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Rows of the store's log table (history + live), read-only; None when not SQLite.
async fn log_rows(db: &Path) -> Option<i64> {
    use sqlx::ConnectOptions as _;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .read_only(true)
        .connect()
        .await
        .ok()?;
    let rows = sqlx::query_scalar("SELECT COUNT(*) FROM cellfed_log")
        .fetch_one(&mut conn)
        .await
        .ok();
    let _ = sqlx::Connection::close(conn).await;
    rows
}

struct Sample {
    at: Duration,
    writes: u64,
    errors: u64,
    live: u64,
    events: u64,
    rows: Option<i64>,
    db: u64,
    wal: u64,
    rss_kib: u64,
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1_048_576.0)
}

fn table(samples: &[Sample]) -> String {
    let mut out = String::from(
        "| t (s) | writes | errors | live objects | watch events | log rows | db MB | wal MB | db+wal MB | RSS MB |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in samples {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.at.as_secs(),
            s.writes,
            s.errors,
            s.live,
            s.events,
            s.rows.map_or("-".into(), |r| r.to_string()),
            mb(s.db),
            mb(s.wal),
            mb(s.db + s.wal),
            mb(s.rss_kib * 1024),
        );
    }
    out
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Arc::new(Args::parse());
    let dir = std::env::temp_dir().join(format!("cellfed-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let http: Http = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector);
    let server = start(&args, &dir, &http).await?;
    let pid = server.child.id();
    let ns =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "soak"}});
    let (status, body) = call(
        &http,
        Method::POST,
        &format!("{}/api/v1/namespaces", server.base),
        Some(ns.to_string()),
    )
    .await?;
    if status != StatusCode::CREATED {
        bail!(
            "creating namespace soak: {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    eprintln!(
        "soak: {} writes/s over {} names of {} B for {:?}, compaction every {}, sampling every {:?}; pid {pid}, dir {}",
        args.rate,
        args.keys,
        args.value_size,
        args.duration,
        args.compaction_interval,
        args.sample_every,
        dir.display()
    );

    let started = Instant::now();
    let until = started + args.duration;
    let counters = Arc::new(Counters::default());
    let events = Arc::new(AtomicU64::new(0));
    let reopened = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..args.workers.max(1) {
        tasks.spawn(writer(
            http.clone(),
            server.base.clone(),
            w,
            args.clone(),
            counters.clone(),
            until,
        ));
    }
    tasks.spawn(watcher(
        http.clone(),
        server.base.clone(),
        events.clone(),
        reopened.clone(),
        until,
    ));

    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(args.sample_every);
    loop {
        ticks.tick().await;
        let (db, wal) = match &server.db {
            Some(db) => (file_size(db), file_size(&db.with_extension("db-wal"))),
            None => (0, 0),
        };
        let rows = match &server.db {
            Some(db) => log_rows(db).await,
            None => None,
        };
        let c = &counters;
        let s = Sample {
            at: started.elapsed(),
            writes: c.creates.load(Ordering::Relaxed)
                + c.updates.load(Ordering::Relaxed)
                + c.deletes.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            live: c.live.load(Ordering::Relaxed),
            events: events.load(Ordering::Relaxed),
            rows,
            db,
            wal,
            rss_kib: rss_kib(pid),
        };
        eprintln!(
            "t={:>4}s writes={} errors={} live={} rows={} db+wal={} MB rss={} MB",
            s.at.as_secs(),
            s.writes,
            s.errors,
            s.live,
            s.rows.map_or("-".into(), |r| r.to_string()),
            mb(s.db + s.wal),
            mb(s.rss_kib * 1024)
        );
        samples.push(s);
        if Instant::now() >= until {
            break;
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}

    let c = &counters;
    println!(
        "soak of `cellfed apiserver` ({}): {} writes/s target, {} names x {} B, compaction {}, {:?}",
        args.storage.as_deref().unwrap_or("SQLite"),
        args.rate,
        args.keys,
        args.value_size,
        args.compaction_interval,
        args.duration
    );
    println!(
        "done: {} creates, {} updates, {} deletes, {} errors, {} watch events, watch reopened {} times\n",
        c.creates.load(Ordering::Relaxed),
        c.updates.load(Ordering::Relaxed),
        c.deletes.load(Ordering::Relaxed),
        c.errors.load(Ordering::Relaxed),
        events.load(Ordering::Relaxed),
        reopened.load(Ordering::Relaxed)
    );
    print!("{}", table(&samples));
    if let (Some(mid), Some(last)) = (samples.get(samples.len() / 2), samples.last()) {
        let growth = |a: u64, b: u64| {
            if a == 0 {
                "-".to_string()
            } else {
                format!("{:+.1}%", (b as f64 / a as f64 - 1.0) * 100.0)
            }
        };
        println!(
            "\nsecond half (t={}s → t={}s): db+wal {} → {} MB ({}), RSS {} → {} MB ({})",
            mid.at.as_secs(),
            last.at.as_secs(),
            mb(mid.db + mid.wal),
            mb(last.db + last.wal),
            growth(mid.db + mid.wal, last.db + last.wal),
            mb(mid.rss_kib * 1024),
            mb(last.rss_kib * 1024),
            growth(mid.rss_kib, last.rss_kib)
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
