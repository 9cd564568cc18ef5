//! The system cellfed replaces, as a column of the same table: etcd (Debian's `etcd-server`),
//! started by the benchmark on loopback with a data dir of its own and its defaults (every
//! commit fsyncs its WAL), driven through the `etcd-client` crate the way kube-apiserver's etcd3
//! storage drives it:
//!
//! - create: one txn `if create_revision(key) == 0 then put` (put-if-absent);
//! - update: one txn `if mod_revision(key) == expected then put else get` (compare-and-swap);
//! - list: one range over the prefix, and paged like the apiserver (limit 500, each next page
//!   from the last key at the first page's revision);
//! - watch: a prefix watch from the current revision, on the writing client's connection
//!   ("local") and on a second connection ("cross-instance", another apiserver replica).
//!
//! Same keys, value size, concurrency (one connection per concurrent client, as the SQL
//! backends use one pooled connection per client) and rounds as the other backends. There are
//! no raw inserts: that column stays empty.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
    WatchStream,
};

use crate::Args;
use crate::report::{Latency, Report};

/// Largest response the benchmark accepts (a list of 10k × 1 KiB values is ~10 MiB; the client's
/// default is 4 MiB). kube-apiserver sets no limit either.
const MAX_RESPONSE: usize = 256 * 1024 * 1024;

/// Runs the etcd column; `None` (after a SKIPPED line) where no `etcd` binary is installed.
pub async fn backend(args: &Args) -> Result<Option<Report>> {
    let dir = args
        .sqlite_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("cellfed-bench-etcd-{}", std::process::id()));
    let Some(server) = Server::start(dir)? else {
        println!("etcd: SKIPPED (etcd not found: install etcd-server)");
        return Ok(None);
    };
    eprintln!("  etcd {} on {}", server.version, server.endpoint);
    let result = measure(args, &server).await;
    if result.is_err() {
        eprintln!("{}", server.log_tail());
    }
    result.map(Some)
}

/// A single-member etcd on free loopback ports; killed, and its data dir removed, on drop
/// (so on every return path of the benchmark, errors included).
struct Server {
    child: Child,
    dir: PathBuf,
    endpoint: String,
    version: String,
}

impl Server {
    fn start(dir: PathBuf) -> Result<Option<Server>> {
        let version = match Command::new("etcd").arg("--version").output() {
            Ok(out) => String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("etcd Version: ")
                .to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context("running etcd --version"),
        };
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(dir.join("etcd.log"))?;
        let client = format!("http://{}", free_port()?);
        let peer = format!("http://{}", free_port()?);
        let child = Command::new("etcd")
            .arg("--name=bench")
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=bench={peer}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting etcd")?;
        Ok(Some(Server {
            child,
            dir,
            endpoint: client,
            version,
        }))
    }

    /// A new connection (its own HTTP/2 channel), once the server answers.
    async fn connect(&self) -> Result<Client> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let attempt = async {
                let mut client = Client::connect([&self.endpoint], None).await?;
                client.status().await?;
                anyhow::Ok(client)
            };
            match tokio::time::timeout(Duration::from_secs(5), attempt).await {
                Ok(Ok(client)) => return Ok(client),
                Ok(Err(e)) if Instant::now() > deadline => {
                    return Err(e).context("etcd did not come up in 30 s");
                }
                Err(_) if Instant::now() > deadline => bail!("etcd did not come up in 30 s"),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        format!(
            "etcd log (last 20 lines):\n{}",
            lines[lines.len().saturating_sub(20)..].join("\n")
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free on 127.0.0.1 now (etcd binds it a moment later).
fn free_port() -> Result<std::net::SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

async fn measure(args: &Args, server: &Server) -> Result<Report> {
    let value = vec![b'v'; args.value_size];
    let clients = args.clients.max(1);
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(server.connect().await?);
    }
    let mut report = Report::new("etcd", args.writes, clients, args.value_size);

    // The same rounds, chunks and keys as the SQL backends (without raw inserts between them).
    let rounds = args.rounds.clamp(1, args.writes.max(1));
    let chunk = (args.writes / rounds / clients).max(1) * clients;
    let total = chunk * rounds;
    eprintln!("  creates, {rounds} rounds of {chunk} each");
    let mut created = [Duration::ZERO; 2];
    for round in 0..rounds {
        for (i, (n, keys)) in [(1, "/bench/c1/"), (clients, "/bench/cn/")]
            .into_iter()
            .enumerate()
        {
            created[i] += writes(&conns[..n], keys, round * chunk, chunk, &value, false).await?;
        }
    }
    report.creates = [rate(total, created[0]), rate(total, created[1])];
    report.writes = total;
    report.rounds = rounds;

    eprintln!("  updates");
    let updates1 = writes(&conns[..1], "/bench/c1/", 0, total, &value, true).await?;
    let updatesn = writes(&conns, "/bench/cn/", 0, total, &value, true).await?;
    report.updates = [rate(total, updates1), rate(total, updatesn)];

    eprintln!("  list of {} keys", args.list_keys);
    writes(&conns, "/bench/list/", 0, args.list_keys, &value, false).await?;
    let mut kv = conns[0].kv_client().max_decoding_message_size(MAX_RESPONSE);
    let mut full = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let listed = kv
            .get("/bench/list/", Some(GetOptions::new().with_prefix()))
            .await?;
        full.push(started.elapsed());
        if listed.kvs().len() != args.list_keys {
            bail!(
                "listed {} keys, expected {}",
                listed.kvs().len(),
                args.list_keys
            );
        }
    }
    full.sort();
    report.list_full = full[full.len() / 2];
    report.list_keys = args.list_keys;
    // Paged as kube-apiserver pages a LIST with `limit`: the next page starts just after the
    // last key, at the revision of the first page.
    let end = prefix_end(b"/bench/list/");
    let started = Instant::now();
    let (mut pages, mut listed, mut from, mut revision) = (0, 0, b"/bench/list/".to_vec(), 0);
    loop {
        let mut options = GetOptions::new().with_range(end.clone()).with_limit(500);
        if revision > 0 {
            options = options.with_revision(revision);
        }
        let page = kv.get(from.clone(), Some(options)).await?;
        pages += 1;
        listed += page.kvs().len();
        if revision == 0 {
            revision = page.header().context("range without header")?.revision();
        }
        match page.kvs().last() {
            Some(last) if page.more() => {
                from = last.key().to_vec();
                from.push(0);
            }
            _ => break,
        }
    }
    if listed != args.list_keys {
        bail!("paged list saw {listed} keys, expected {}", args.list_keys);
    }
    report.list_paged = (started.elapsed(), pages);

    eprintln!("  local watch latency");
    let mut writer = conns[0].clone();
    let mut watch = watch_prefix(&mut writer, "/bench/wl/").await?;
    report.watch_local = latency(
        &mut writer,
        &mut watch,
        "/bench/wl/",
        args.local_samples,
        &value,
    )
    .await?;
    drop(watch);

    eprintln!("  cross-instance watch latency (a second connection)");
    let mut other = server.connect().await?;
    let mut watch = watch_prefix(&mut other, "/bench/wx/").await?;
    report.watch_cross = latency(
        &mut writer,
        &mut watch,
        "/bench/wx/",
        args.cross_samples,
        &value,
    )
    .await?;
    Ok(report)
}

fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

/// The first key after every key starting with `prefix` (etcd's `WithPrefix` range end).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Put-if-absent, as kube-apiserver creates: returns the new revision.
async fn create(client: &mut Client, key: &str, value: &[u8]) -> Result<i64> {
    let txn = Txn::new()
        .when([Compare::create_revision(key, CompareOp::Equal, 0)])
        .and_then([TxnOp::put(key, value, None)]);
    let response = client.txn(txn).await?;
    if !response.succeeded() {
        bail!("create of {key}: it exists");
    }
    Ok(response.header().context("txn without header")?.revision())
}

/// Compare-and-swap on the mod revision, as kube-apiserver's GuaranteedUpdate writes (reading
/// the current object back in the same txn when the comparison fails).
async fn update(client: &mut Client, key: &str, value: &[u8], expected: i64) -> Result<()> {
    let txn = Txn::new()
        .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
        .and_then([TxnOp::put(key, value, None)])
        .or_else([TxnOp::get(key, None)]);
    let response = client.txn(txn).await?;
    if !response.succeeded() {
        let current = response.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.mod_revision()),
            _ => None,
        });
        bail!("update of {key}: revision {current:?}, expected {expected}");
    }
    Ok(())
}

/// `n` creates (or updates of the keys created before) of keys `first..first + n` under
/// `prefix`, spread over the connections in `conns` as the SQL backends spread them over
/// clients.
async fn writes(
    conns: &[Client],
    prefix: &str,
    first: usize,
    n: usize,
    value: &[u8],
    update: bool,
) -> Result<Duration> {
    let clients = conns.len();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (c, client) in conns.iter().enumerate() {
        let mut client = client.clone();
        let prefix = prefix.to_owned();
        let value = value.to_vec();
        tasks.push(tokio::spawn(async move {
            // client c writes keys [c·n/clients, (c+1)·n/clients): every key, whatever n
            let keys = first + c * n / clients..first + (c + 1) * n / clients;
            let mut revisions = Vec::with_capacity(keys.len());
            if update {
                for i in keys.clone() {
                    let key = format!("{prefix}{i:08}");
                    let got = client.get(key.as_str(), None).await?;
                    let kv = got.kvs().first().context("key to update missing")?;
                    revisions.push(kv.mod_revision());
                }
            }
            let started = Instant::now();
            for (j, i) in keys.enumerate() {
                let key = format!("{prefix}{i:08}");
                if let Some(&expected) = revisions.get(j) {
                    self::update(&mut client, &key, &value, expected).await?;
                } else {
                    create(&mut client, &key, &value).await?;
                }
            }
            anyhow::Ok(started.elapsed())
        }));
    }
    let mut slowest = Duration::ZERO;
    for task in tasks {
        slowest = slowest.max(task.await??);
    }
    // Updates first read their revisions (not timed): report the writing phase only.
    Ok(if update { slowest } else { started.elapsed() })
}

/// A prefix watch from the next revision, once etcd confirmed it is in place.
async fn watch_prefix(client: &mut Client, prefix: &str) -> Result<WatchStream> {
    let revision = client
        .get(prefix, Some(GetOptions::new().with_count_only()))
        .await?
        .header()
        .context("range without header")?
        .revision();
    let mut stream = client
        .watch(
            prefix,
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(revision + 1),
            ),
        )
        .await?;
    let created = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .context("watch not created within 10 s")??
        .context("watch ended")?;
    if !created.created() {
        bail!("first watch response is not its creation: {created:?}");
    }
    Ok(stream)
}

/// Write-to-event latency: each sample creates one key through `client` and waits for `watch`
/// to deliver it.
async fn latency(
    client: &mut Client,
    watch: &mut WatchStream,
    prefix: &str,
    samples: usize,
    value: &[u8],
) -> Result<Latency> {
    let mut pending = VecDeque::new();
    let mut delivery = Vec::with_capacity(samples);
    let mut write = Vec::with_capacity(samples);
    for i in 0..samples {
        let key = format!("{prefix}{i:08}");
        let started = Instant::now();
        let revision = create(client, &key, value).await?;
        write.push(started.elapsed());
        let event = loop {
            if let Some(event) = pending.pop_front() {
                break event;
            }
            let response = tokio::time::timeout(Duration::from_secs(10), watch.message())
                .await
                .context("no event within 10 s")??
                .context("watch ended")?;
            if response.canceled() {
                bail!("watch canceled: {}", response.cancel_reason());
            }
            pending.extend(response.events().iter().cloned());
        };
        delivery.push(started.elapsed());
        let kv = event.kv().context("event without key")?;
        if event.event_type() != EventType::Put
            || kv.mod_revision() != revision
            || kv.key() != key.as_bytes()
        {
            bail!("unexpected event {event:?} for {key} at revision {revision}");
        }
    }
    Ok(Latency::from_samples(delivery, write))
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_first_key_after_the_prefix() {
        assert_eq!(prefix_end(b"/bench/list/"), b"/bench/list0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }
}
