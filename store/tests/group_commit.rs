//! Group commit on a SQLite file with `synchronous=FULL` (the store's default): concurrent
//! writes share one transaction and one fsync, yet each keeps its own check, its own revision
//! and its own answer, revisions stay dense and in commit order, watchers see every write in
//! order, the batch stays within `Config::write_batch`, and a process killed mid-batch loses
//! nothing it acknowledged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::time::Duration;

use cellfed_store::{BatchLimit, Config, Error, KeyValue, Store, WriteStats};
use common::{Db, Fixture, revisions, take_events};
use futures::{Future, FutureExt};
use sqlx::pool::PoolConnection;
use sqlx::{Any, Executor};

const DEADLINE: Duration = Duration::from_secs(60);

async fn open(fx: &Fixture, batch: BatchLimit) -> Store {
    let mut config = fx.config();
    config.write_batch = batch;
    let store = Store::open_with(config).await.unwrap();
    let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(level, 2, "the store's default: FULL, every commit synced");
    store
}

/// Takes SQLite's write lock on a connection of its own, so the store's writer blocks in
/// `BEGIN IMMEDIATE` and every write submitted meanwhile queues behind it.
async fn hold_write_lock(store: &Store) -> PoolConnection<Any> {
    let mut conn = store.pool().acquire().await.unwrap();
    conn.execute("BEGIN IMMEDIATE").await.unwrap();
    conn
}

async fn release_write_lock(mut conn: PoolConnection<Any>) {
    conn.execute("COMMIT").await.unwrap();
}

type Pending<'a> = Pin<Box<dyn Future<Output = cellfed_store::Result<KeyValue>> + Send + 'a>>;

/// Submits every write to the writer's queue (one poll each: the request is queued, the
/// answer not yet there) before the caller lets the writer go on.
fn queue_all(writes: &mut [Pending<'_>]) {
    for write in writes.iter_mut() {
        assert!(
            write.as_mut().now_or_never().is_none(),
            "answered while the database write lock is held"
        );
    }
}

fn delta(after: WriteStats, before: WriteStats) -> (u64, u64) {
    (
        after.commits - before.commits,
        after.committed_writes - before.committed_writes,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_commits_with_dense_ordered_revisions_and_every_event() {
    let fx = Fixture::new(Db::Sqlite, "group_many");
    let store = open(&fx, BatchLimit::default()).await;
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch("/g/", start).await.unwrap();
    let before = store.write_stats();

    const WRITERS: usize = 32;
    const KEYS: usize = 10;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Each writer creates its keys and updates each once: 2 × KEYS writes in order.
            let mut acked = Vec::new();
            for k in 0..KEYS {
                let key = format!("/g/{w}/{k}");
                let created = store.create(&key, b"v1".to_vec(), 0).await.unwrap();
                let updated = store
                    .update(&key, b"v2".to_vec(), created.mod_revision, 0)
                    .await
                    .unwrap();
                assert_eq!(updated.create_revision, created.mod_revision);
                acked.push(created);
                acked.push(updated);
            }
            acked
        }));
    }
    let mut acked: HashMap<i64, KeyValue> = HashMap::new();
    for task in tasks {
        let writes = task.await.unwrap();
        // One caller's writes commit in the order it made them.
        assert!(
            writes
                .windows(2)
                .all(|w| w[0].mod_revision < w[1].mod_revision)
        );
        for kv in writes {
            assert!(
                acked.insert(kv.mod_revision, kv).is_none(),
                "revision reused"
            );
        }
    }
    let n = WRITERS * KEYS * 2;
    let expected: Vec<i64> = (start + 1..=start + n as i64).collect();
    let mut got: Vec<i64> = acked.keys().copied().collect();
    got.sort_unstable();
    assert_eq!(got, expected, "acknowledged revisions are dense");
    assert_eq!(
        revisions(&store).await,
        expected,
        "the log holds exactly those"
    );

    let events = take_events(&mut watch, n, DEADLINE).await;
    for (event, revision) in events.iter().zip(&expected) {
        assert_eq!(event.kv.mod_revision, *revision, "events in revision order");
        assert_eq!(
            &event.kv, &acked[revision],
            "the event is the acknowledged write"
        );
    }

    let (commits, written) = delta(store.write_stats(), before);
    assert_eq!(written, n as u64);
    assert!(
        commits < written,
        "{WRITERS} concurrent writers never shared a commit ({commits} commits for {written} writes)"
    );
    fx.cleanup(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_failing_its_check_in_a_batch_fails_alone_and_the_others_commit() {
    let fx = Fixture::new(Db::Sqlite, "group_fail");
    let store = open(&fx, BatchLimit::default()).await;
    store.create("/b/taken", b"x".to_vec(), 0).await.unwrap();
    let cas = store.create("/b/cas", b"1".to_vec(), 0).await.unwrap();
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch("/b/", start).await.unwrap();
    let before = store.write_stats();

    let lock = hold_write_lock(&store).await;
    // Good and failing writes alternate, first and last good: however the queue is cut
    // (the writer may take a first batch before the rest is queued), every batch mixes both.
    let mut writes: Vec<Pending<'_>> = vec![
        Box::pin(store.create("/b/a1", b"a1".to_vec(), 0)),
        Box::pin(store.create("/b/taken", b"again".to_vec(), 0)),
        Box::pin(store.create("/b/a2", b"a2".to_vec(), 0)),
        Box::pin(store.update("/b/cas", b"stale".to_vec(), cas.mod_revision - 1, 0)),
        Box::pin(store.update("/b/cas", b"2".to_vec(), cas.mod_revision, 0)),
        Box::pin(store.delete("/b/absent", None)),
        Box::pin(store.update("/b/cas", b"lost".to_vec(), cas.mod_revision, 0)),
        Box::pin(store.create("/b/a3", b"a3".to_vec(), 0)),
    ];
    queue_all(&mut writes);
    release_write_lock(lock).await;
    let outcomes = tokio::time::timeout(DEADLINE, futures::future::join_all(writes))
        .await
        .expect("writes answered");

    assert!(matches!(&outcomes[1], Err(Error::AlreadyExists { key }) if key == "/b/taken"));
    assert!(matches!(
        &outcomes[3],
        Err(Error::Conflict { current: Some(kv), .. }) if kv.mod_revision == cas.mod_revision
    ));
    assert!(matches!(&outcomes[5], Err(Error::NotFound { .. })));
    // The update that came after the successful one in the same queue sees its effect.
    assert!(matches!(
        &outcomes[6],
        Err(Error::Conflict { current: Some(kv), .. }) if kv.value == b"2"
    ));
    let good: Vec<&KeyValue> = [0, 2, 4, 7]
        .iter()
        .map(|&i| outcomes[i].as_ref().unwrap())
        .collect();
    let revs: Vec<i64> = good.iter().map(|kv| kv.mod_revision).collect();
    assert_eq!(
        revs,
        (start + 1..=start + 4).collect::<Vec<_>>(),
        "dense, in arrival order"
    );
    assert_eq!(good[2].value, b"2");
    assert_eq!(
        store.get("/b/taken", None).await.unwrap().unwrap().value,
        b"x"
    );
    assert_eq!(
        store.get("/b/cas", None).await.unwrap().unwrap().value,
        b"2"
    );

    let (commits, written) = delta(store.write_stats(), before);
    assert_eq!(written, 4);
    assert!(
        commits <= 2,
        "the queued writes went in at most two commits, not {commits}"
    );
    let events = take_events(&mut watch, 4, DEADLINE).await;
    let seen: Vec<i64> = events.iter().map(|e| e.kv.mod_revision).collect();
    assert_eq!(seen, revs);
    assert_eq!(store.current_revision().await.unwrap(), start + 4);
    fx.cleanup(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stays_within_its_count_and_bytes() {
    for (limit, writes, least_commits) in [
        // 4 KiB values, 10 KiB per batch: at most two per commit.
        (
            BatchLimit {
                max_writes: 128,
                max_bytes: 10 * 1024,
            },
            20,
            10,
        ),
        // At most three per commit.
        (
            BatchLimit {
                max_writes: 3,
                max_bytes: usize::MAX,
            },
            20,
            7,
        ),
        // Group commit off: one commit per write.
        (
            BatchLimit {
                max_writes: 1,
                max_bytes: usize::MAX,
            },
            20,
            20,
        ),
    ] {
        let fx = Fixture::new(Db::Sqlite, "group_bound");
        let store = open(&fx, limit).await;
        let start = store.current_revision().await.unwrap();
        let before = store.write_stats();
        let keys: Vec<String> = (0..writes).map(|i| format!("/c/{i:02}")).collect();
        let lock = hold_write_lock(&store).await;
        let mut pending: Vec<Pending<'_>> = keys
            .iter()
            .map(|key| -> Pending<'_> { Box::pin(store.create(key, vec![b'v'; 4096], 0)) })
            .collect();
        queue_all(&mut pending);
        release_write_lock(lock).await;
        let outcomes = tokio::time::timeout(DEADLINE, futures::future::join_all(pending))
            .await
            .expect("writes answered");
        let revs: Vec<i64> = outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap().mod_revision)
            .collect();
        assert_eq!(revs, (start + 1..=start + writes).collect::<Vec<_>>());
        let (commits, written) = delta(store.write_stats(), before);
        assert_eq!(written, writes as u64);
        assert!(
            commits >= least_commits,
            "{limit:?}: {writes} writes in {commits} commits"
        );
        fx.cleanup(&store).await;
    }
}

/// Env var that turns `crash_writer` into the child of `a_killed_writer_loses_nothing_it_acknowledged`.
const CHILD_URL: &str = "CELLFED_GROUP_COMMIT_CHILD_URL";
const CHILD_PREFIX: &str = "CELLFED_GROUP_COMMIT_CHILD_PREFIX";

/// The child process: 16 concurrent writers creating keys until killed, printing
/// `ack <key> <revision>` for every write the store acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of a_killed_writer_loses_nothing_it_acknowledged, run by it"]
async fn crash_writer() {
    let url =
        std::env::var(CHILD_URL).expect("run by a_killed_writer_loses_nothing_it_acknowledged");
    let prefix = std::env::var(CHILD_PREFIX).unwrap();
    let store = Store::open_with(Config::new(url).with_table_prefix(prefix))
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, i64)>();
    for w in 0..16 {
        let (store, tx) = (store.clone(), tx.clone());
        tokio::spawn(async move {
            for i in 0.. {
                let key = format!("/k/{w}/{i}");
                let kv = store
                    .create(&key, key.as_bytes().to_vec(), 0)
                    .await
                    .unwrap();
                if tx.send((key, kv.mod_revision)).is_err() {
                    return;
                }
            }
        });
    }
    let mut out = std::io::stdout().lock();
    while let Some((key, revision)) = rx.recv().await {
        writeln!(out, "ack {key} {revision}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_writer_loses_nothing_it_acknowledged() {
    let fx = Fixture::new(Db::Sqlite, "group_crash");
    let store = open(&fx, BatchLimit::default()).await;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_writer", "--ignored", "--nocapture"])
        .env(CHILD_URL, &fx.url)
        .env(CHILD_PREFIX, &fx.prefix)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let acked = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut acked = Vec::new();
        // Kill it in full flight, after 2,000 acknowledged writes…
        while acked.len() < 2000 {
            let line = lines
                .next()
                .expect("the child ended before 2,000 writes")
                .unwrap();
            if let Some(ack) = parse_ack(&line) {
                acked.push(ack);
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // …and keep what it had acknowledged up to its death.
        acked.extend(lines.map_while(Result::ok).filter_map(|l| parse_ack(&l)));
        acked
    });
    let acked = tokio::time::timeout(DEADLINE, acked)
        .await
        .expect("the child acknowledged 2,000 writes")
        .unwrap();

    let reopened = open(&fx, BatchLimit::default()).await;
    for (key, revision) in &acked {
        let kv = reopened.get(key, None).await.unwrap();
        let kv = kv.unwrap_or_else(|| panic!("acknowledged {key} at {revision} is lost"));
        assert_eq!(
            (kv.mod_revision, kv.value.as_slice()),
            (*revision, key.as_bytes())
        );
    }
    let current = reopened.current_revision().await.unwrap();
    assert_eq!(
        revisions(&reopened).await,
        (1..=current).collect::<Vec<_>>(),
        "no hole"
    );
    assert!(current >= acked.len() as i64);
    drop(store);
    fx.cleanup(&reopened).await;
}

fn parse_ack(line: &str) -> Option<(String, i64)> {
    let mut parts = line.strip_prefix("ack ")?.split(' ');
    let key = parts.next()?.to_owned();
    let revision = parts.next()?.parse().ok()?;
    Some((key, revision))
}
