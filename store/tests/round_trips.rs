//! A write costs at most two round trips to MySQL/MariaDB or PostgreSQL, counted on the wire: the
//! store talks to the database through a TCP proxy that counts, per connection, how often the
//! client starts sending after the server has answered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cellfed_store::{Config, Store};
use common::{Db, Fixture};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One proxied connection's round trips.
#[derive(Default)]
struct Turns {
    count: AtomicU64,
    client_spoke_last: AtomicBool,
    /// Client chunks carrying an `INSERT INTO` (the writer appending to the log).
    inserts: AtomicU64,
}

/// A counting TCP proxy on 127.0.0.1 in front of `upstream`.
struct Proxy {
    addr: SocketAddr,
    connections: Arc<Mutex<Vec<Arc<Turns>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections: Arc<Mutex<Vec<Arc<Turns>>>> = Arc::default();
        let registry = connections.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let turns = Arc::new(Turns::default());
                registry.lock().unwrap().push(turns.clone());
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                let up = turns.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0; 64 * 1024];
                    while let Ok(n @ 1..) = client_rx.read(&mut buf).await {
                        if !up.client_spoke_last.swap(true, Ordering::SeqCst) {
                            up.count.fetch_add(1, Ordering::SeqCst);
                        }
                        if buf[..n].windows(11).any(|w| w == b"INSERT INTO") {
                            up.inserts.fetch_add(1, Ordering::SeqCst);
                        }
                        if server_tx.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let mut buf = vec![0; 64 * 1024];
                    while let Ok(n @ 1..) = server_rx.read(&mut buf).await {
                        // Before forwarding: the client's next request comes after this.
                        turns.client_spoke_last.store(false, Ordering::SeqCst);
                        if client_tx.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Proxy { addr, connections }
    }

    /// Round trips and INSERT-carrying chunks so far, per connection.
    fn counts(&self) -> Vec<(u64, u64)> {
        self.connections
            .lock()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t.count.load(Ordering::SeqCst),
                    t.inserts.load(Ordering::SeqCst),
                )
            })
            .collect()
    }
}

/// `url` with its `host:port` replaced by `addr`, and the `host:port` it had.
fn through(url: &str, addr: SocketAddr) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, rest) = rest.split_once('@').unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    (
        format!("{scheme}://{userinfo}@{addr}/{path}"),
        authority.to_owned(),
    )
}

async fn writes_take_at_most_two_round_trips(fx: Fixture) {
    const OPS: u64 = 40;
    sqlx::any::install_default_drivers();
    let (_, upstream) = through(&fx.url, "127.0.0.1:1".parse().unwrap());
    let proxy = Proxy::start(upstream).await;
    let (url, _) = through(&fx.url, proxy.addr);
    let mut config = Config::new(url).with_table_prefix(&fx.prefix);
    // No periodic polls: the watch poller only reads after each local write.
    config.poll_interval = Duration::from_secs(3600);
    let store = Store::open_with(config).await.unwrap();
    let warm = store.create("/warm-up", vec![], 0).await.unwrap();
    // The pool may hand the poller the connection the writer used a moment before, mixing
    // their counts: measured again then. Writes costing more than two round trips fail every
    // attempt.
    let mut start = warm.mod_revision;
    let mut seen = Vec::new();
    for attempt in 0..3 {
        let before = proxy.counts();
        let mut revisions = Vec::new();
        for i in 0..OPS / 4 {
            let key = format!("/k/{attempt}/{i}");
            let kv = store.create(&key, b"a".to_vec(), 0).await.unwrap();
            store
                .update(&key, b"b".to_vec(), kv.mod_revision, 0)
                .await
                .unwrap();
            assert!(store.update(&key, b"c".to_vec(), 1, 0).await.is_err());
            revisions.push(store.delete(&key, None).await.unwrap().mod_revision);
        }
        let after = proxy.counts();
        let deltas: Vec<(u64, u64)> = after
            .iter()
            .enumerate()
            .map(|(i, (n, w))| {
                let (n0, w0) = before.get(i).copied().unwrap_or((0, 0));
                (n - n0, w - w0)
            })
            .collect();
        assert_eq!(*revisions.last().unwrap(), start + 3 * (OPS / 4) as i64);
        start = *revisions.last().unwrap();
        // The writer's connections are those that sent INSERTs (it keeps one for all its
        // batches); the poller, woken by each write, reads on others and may well make more
        // round trips than the writer.
        let writer: u64 = deltas
            .iter()
            .filter(|(_, inserts)| *inserts > 0)
            .map(|(turns, _)| turns)
            .sum();
        assert!(writer >= OPS / 2, "no writer connection seen: {deltas:?}");
        eprintln!(
            "{:?}: {OPS} writes (creates, updates, conflicting updates, deletes) took {writer} round trips on the writer's connection; all connections: {deltas:?}",
            fx.db
        );
        if writer <= 2 * OPS {
            fx.cleanup(&store).await;
            return;
        }
        seen.push(deltas);
    }
    panic!("more than two round trips per write in every attempt ({OPS} writes each): {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_writes_take_at_most_two_round_trips() {
    writes_take_at_most_two_round_trips(Fixture::new(Db::MySql, "roundtrips")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writes_take_at_most_two_round_trips() {
    writes_take_at_most_two_round_trips(Fixture::new(Db::Postgres, "roundtrips")).await;
}
