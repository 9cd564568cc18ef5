//! One backend's measurements, in the order they are printed.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cellfed_store::{Config, EventKind, ListOptions, Store};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::Args;
use crate::galera::Galera;
use crate::report::{Latency, Report};
use crate::{delay, raw};

type Watch = BoxStream<'static, cellfed_store::Result<cellfed_store::Event>>;

pub async fn backend(args: &Args, name: &str) -> Result<Report> {
    let prefix = format!("bench_{}_{}", name.replace('-', "_"), std::process::id());
    let mut sqlite_dir = None;
    // the Galera cluster lives until the end of this backend's run
    let mut galera = None;
    let url = match name {
        "sqlite" | "sqlite-normal" => {
            let dir = args
                .sqlite_dir
                .clone()
                .unwrap_or_else(std::env::temp_dir)
                .join(format!("cellfed-{prefix}"));
            std::fs::create_dir_all(&dir)?;
            let mut url = format!("sqlite://{}/bench.db", dir.display());
            if name == "sqlite-normal" {
                url.push_str("?synchronous=normal");
            }
            sqlite_dir = Some(dir);
            url
        }
        "mysql" | "postgres" => {
            let url = if name == "mysql" {
                &args.mysql_url
            } else {
                &args.postgres_url
            };
            if args.rtt_ms > 0.0 {
                delay::url_through(url, Duration::from_secs_f64(args.rtt_ms / 1000.0))?
            } else {
                url.clone()
            }
        }
        "galera" | "mariadb-local" => {
            let nodes = if name == "galera" {
                Galera::nodes(&args.galera_urls)?
            } else {
                Galera::single()?
            };
            let urls = nodes
                .urls
                .iter()
                .map(|u| {
                    if args.rtt_ms > 0.0 {
                        delay::url_through(u, Duration::from_secs_f64(args.rtt_ms / 1000.0))
                    } else {
                        Ok(u.clone())
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            galera = Some((nodes, urls.clone()));
            urls[0].clone()
        }
        other => {
            bail!(
                "unknown backend {other:?} (sqlite, sqlite-normal, mysql, postgres, galera, mariadb-local)"
            )
        }
    };
    // Galera: the other nodes (cross-instance watch on the second, spread creates on all)
    let node_urls: Vec<String> = galera.as_ref().map(|(_, u)| u.clone()).unwrap_or_default();
    let value = vec![b'v'; args.value_size];
    let clients = args.clients.max(1);
    let mut report = Report::new(name, args.writes, clients, args.value_size);
    if name != "sqlite" && name != "sqlite-normal" {
        report.rtt_ms = args.rtt_ms;
    }

    let mut config = Config::new(&url).with_table_prefix(&prefix);
    config.max_connections = u32::try_from(clients)?.max(4);
    config.write_batch.max_writes = args.write_batch.max(1);
    let store = Store::open_with(config.clone()).await?;

    // Raw inserts and store creates take turns in rounds, so a change in the machine's fsync
    // cost during the run (other work on the shared disk) weighs on both alike.
    let rounds = args.rounds.clamp(1, args.writes.max(1));
    let chunk = (args.writes / rounds / clients).max(1) * clients;
    let total = chunk * rounds;
    eprintln!("  raw inserts and store creates, {rounds} rounds of {chunk} each");
    let mut raw = [Duration::ZERO; 2];
    let mut created = [Duration::ZERO; 2];
    let mut commits = [0u64; 2];
    for round in 0..rounds {
        for (i, (n, keys)) in [(1, "/bench/c1/"), (clients, "/bench/cn/")]
            .into_iter()
            .enumerate()
        {
            let table = format!("{prefix}_raw{i}");
            raw[i] += raw::inserts(&url, &table, chunk, n, &value).await?;
            let before = store.write_stats();
            created[i] += writes(&store, keys, round * chunk, chunk, n, &value, false).await?;
            let after = store.write_stats();
            commits[i] += after.commits - before.commits;
        }
    }
    for (i, n) in [1, clients].into_iter().enumerate() {
        eprintln!(
            "  store creates, {n} client(s): {total} writes in {} commits ({:.1} per commit)",
            commits[i],
            total as f64 / commits[i].max(1) as f64
        );
    }
    if node_urls.len() > 1 {
        eprintln!(
            "  store creates, {clients} clients spread over {} nodes",
            node_urls.len()
        );
        report.creates_spread =
            Some(spread_creates(&config, &node_urls, total, clients, &value).await?);
    }
    report.raw_inserts = [rate(total, raw[0]), rate(total, raw[1])];
    report.creates = [rate(total, created[0]), rate(total, created[1])];
    report.writes = total;
    report.rounds = rounds;

    eprintln!("  store updates");
    let updates1 = writes(&store, "/bench/c1/", 0, total, 1, &value, true).await?;
    let updatesn = writes(&store, "/bench/cn/", 0, total, clients, &value, true).await?;
    report.updates = [rate(total, updates1), rate(total, updatesn)];

    eprintln!("  list of {} keys", args.list_keys);
    writes(
        &store,
        "/bench/list/",
        0,
        args.list_keys,
        clients,
        &value,
        false,
    )
    .await?;
    let mut full = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let listed = store.list("/bench/list/", ListOptions::default()).await?;
        full.push(started.elapsed());
        if listed.items.len() != args.list_keys {
            bail!(
                "listed {} keys, expected {}",
                listed.items.len(),
                args.list_keys
            );
        }
    }
    full.sort();
    report.list_full = full[full.len() / 2];
    report.list_keys = args.list_keys;
    let started = Instant::now();
    let mut pages = 0;
    let mut options = ListOptions {
        limit: Some(500),
        ..Default::default()
    };
    loop {
        let page = store.list("/bench/list/", options.clone()).await?;
        pages += 1;
        if page.remaining == 0 {
            break;
        }
        options.revision = Some(page.revision);
        options.start_after = page.items.last().map(|kv| kv.key.clone());
    }
    report.list_paged = (started.elapsed(), pages);

    eprintln!("  local watch latency");
    let mut watch = store
        .watch("/bench/wl/", store.current_revision().await?)
        .await?;
    report.watch_local = latency(
        &store,
        &mut watch,
        "/bench/wl/",
        args.local_samples,
        &value,
        None,
    )
    .await?;

    eprintln!("  cross-instance watch latency (poll {} ms)", args.poll_ms);
    let mut other = config.clone();
    if let Some(second) = node_urls.get(1) {
        // on Galera the watching instance reads another node
        other.url.clone_from(second);
    }
    other.poll_interval = Duration::from_millis(args.poll_ms);
    let watcher = Store::open_with(other).await?;
    let mut watch = watcher
        .watch("/bench/wx/", store.current_revision().await?)
        .await?;
    let jitter = Some(Duration::from_millis(args.poll_ms));
    report.watch_cross = latency(
        &store,
        &mut watch,
        "/bench/wx/",
        args.cross_samples,
        &value,
        jitter,
    )
    .await?;
    drop(watch);
    drop(watcher);

    for table in ["log", "meta", "migrations"] {
        sqlx::query(&format!("DROP TABLE IF EXISTS {prefix}_{table}"))
            .execute(store.pool())
            .await?;
    }
    if let Some(dir) = sqlite_dir {
        std::fs::remove_dir_all(dir)?;
    }
    drop(store);
    drop(galera);
    Ok(report)
}

/// Creates/s of `writes` keys from `clients` clients, client `c` writing through a `Store` on
/// node `c % nodes` (one `Store` per node, as one apiserver replica per node would): the
/// writers certify against each other on the counter row and the stores retry.
async fn spread_creates(
    config: &Config,
    urls: &[String],
    writes: usize,
    clients: usize,
    value: &[u8],
) -> Result<f64> {
    let mut stores = Vec::new();
    for url in urls {
        let mut c = config.clone();
        c.url.clone_from(url);
        stores.push(Store::open_with(c).await?);
    }
    let per_client = writes / clients;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let store = stores[c % stores.len()].clone();
        let value = value.to_vec();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_client {
                let key = format!("/bench/spread/{c:03}-{i:08}");
                store.create(&key, value.clone(), 0).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let rate = rate(per_client * clients, started.elapsed());
    let retries: u64 = stores.iter().map(|s| s.write_stats().retries).sum();
    eprintln!("    {retries} conflicting batches retried");
    // every acknowledged create is stored, on every node
    for (url, store) in urls.iter().zip(&stores) {
        let listed = store.list("/bench/spread/", ListOptions::default()).await?;
        if listed.items.len() != per_client * clients {
            bail!(
                "{url}: {} of {} acknowledged creates stored at revision {}",
                listed.items.len(),
                per_client * clients,
                listed.revision
            );
        }
    }
    Ok(rate)
}

fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

/// `n` creates (or updates of the keys created before) of keys `first..first + n` under
/// `prefix` from `clients` clients.
async fn writes(
    store: &Store,
    prefix: &str,
    first: usize,
    n: usize,
    clients: usize,
    value: &[u8],
    update: bool,
) -> Result<Duration> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let store = store.clone();
        let prefix = prefix.to_owned();
        let value = value.to_vec();
        tasks.push(tokio::spawn(async move {
            // Keys are spread over clients the same way for creates and updates.
            // client c writes keys [c·n/clients, (c+1)·n/clients): every key, whatever n
            let keys = first + c * n / clients..first + (c + 1) * n / clients;
            let mut revisions = Vec::with_capacity(keys.len());
            if update {
                for i in keys.clone() {
                    let key = format!("{prefix}{i:08}");
                    let kv = store
                        .get(&key, None)
                        .await?
                        .context("key to update missing")?;
                    revisions.push(kv.mod_revision);
                }
            }
            let started = Instant::now();
            for (j, i) in keys.enumerate() {
                let key = format!("{prefix}{i:08}");
                if let Some(&expected) = revisions.get(j) {
                    store.update(&key, value.clone(), expected, 0).await?;
                } else {
                    store.create(&key, value.clone(), 0).await?;
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

/// Write-to-event latency: each sample writes one key through `store` and waits for `watch`
/// to deliver it. With `jitter`, samples are spread over the poll interval (otherwise every
/// write would land right after a poll and measure the worst case).
async fn latency(
    store: &Store,
    watch: &mut Watch,
    prefix: &str,
    samples: usize,
    value: &[u8],
    jitter: Option<Duration>,
) -> Result<Latency> {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut delivery = Vec::with_capacity(samples);
    let mut write = Vec::with_capacity(samples);
    for i in 0..samples {
        if let Some(jitter) = jitter {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let micros = u64::try_from(jitter.as_micros())?.max(1);
            tokio::time::sleep(Duration::from_micros(seed % micros)).await;
        }
        let key = format!("{prefix}{i:08}");
        let started = Instant::now();
        let kv = store.create(&key, value.to_vec(), 0).await?;
        write.push(started.elapsed());
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .context("no event within 10 s")?
            .context("watch ended")??;
        delivery.push(started.elapsed());
        if event.kind != EventKind::Created || event.kv.mod_revision != kv.mod_revision {
            bail!("unexpected event {event:?}");
        }
    }
    Ok(Latency::from_samples(delivery, write))
}
