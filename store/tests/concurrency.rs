//! The hard properties, on all three backends: concurrent compare-and-swap through two store
//! instances, a cross-instance watch over 10,000 writes, failed and rolled-back writes that
//! must not leave holes (the OceanBase/MariaDB auto-increment failure mode), and connections
//! killed under a running watch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use cellfed_store::{Error, EventKind, KeyValue, Store};
use common::{Db, Fixture, assert_quiet, revisions, take_events};

const DEADLINE: Duration = Duration::from_secs(60);

for_each_backend!(
    compare_and_swap_from_two_instances_loses_no_increment,
    watcher_on_one_instance_sees_every_write_of_another,
    failed_and_rolled_back_writes_leave_no_hole,
);

async fn compare_and_swap_from_two_instances_loses_no_increment(fx: Fixture) {
    let a = fx.open().await;
    let b = fx.open().await;
    a.create("/counter", b"0".to_vec(), 0).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = if t % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut revs = Vec::with_capacity(200);
            let mut conflicts = 0_u32;
            for _ in 0..200 {
                loop {
                    let kv = store.get("/counter", None).await.unwrap().unwrap();
                    let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                    match store
                        .update(
                            "/counter",
                            (n + 1).to_string().into_bytes(),
                            kv.mod_revision,
                            0,
                        )
                        .await
                    {
                        Ok(new) => {
                            revs.push(new.mod_revision);
                            break;
                        }
                        Err(Error::Conflict { .. }) => conflicts += 1,
                        Err(e) => panic!("update failed: {e}"),
                    }
                }
            }
            (revs, conflicts)
        }));
    }
    let mut all_revs = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        let (revs, c) = task.await.unwrap();
        all_revs.extend(revs);
        conflicts += c;
    }
    let kv = b.get("/counter", None).await.unwrap().unwrap();
    assert_eq!(kv.value, b"1600");
    assert_eq!(kv.mod_revision, 1601);
    // Every successful write got its own revision, 2..=1601, none reused or skipped…
    all_revs.sort_unstable();
    assert_eq!(all_revs, (2..=1601).collect::<Vec<_>>());
    // …and the table holds exactly those rows, though `conflicts` writes were rolled back.
    assert_eq!(revisions(&a).await, (1..=1601).collect::<Vec<_>>());
    assert_eq!(a.current_revision().await.unwrap(), 1601);
    eprintln!(
        "{:?}: 1600 increments, {conflicts} conflicts retried",
        fx.db
    );
    fx.cleanup(&a).await;
}

async fn watcher_on_one_instance_sees_every_write_of_another(fx: Fixture) {
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 2_500;
    let a = fx.open().await;
    let b = fx.open().await;
    let mut watch = a.watch("/x/", 0).await.unwrap();
    let consumer = tokio::spawn(async move {
        let events = take_events(&mut watch, WRITERS * PER_WRITER, DEADLINE * 3).await;
        assert_quiet(&mut watch, Duration::from_millis(300)).await;
        events
    });
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let b = b.clone();
        writers.push(tokio::spawn(async move {
            // Each writer cycles its own keys through create, update, delete.
            let mut written: Vec<(EventKind, KeyValue)> = Vec::with_capacity(PER_WRITER);
            let mut live: BTreeMap<String, i64> = BTreeMap::new();
            for i in 0..PER_WRITER {
                let key = format!("/x/{w}/{}", i % 50);
                let value = format!("{w}-{i}").into_bytes();
                let (kind, kv) = match live.get(&key).copied() {
                    None => (EventKind::Created, b.create(&key, value, 0).await.unwrap()),
                    Some(rev) if i % 7 == 0 => {
                        (EventKind::Deleted, b.delete(&key, Some(rev)).await.unwrap())
                    }
                    Some(rev) => (
                        EventKind::Updated,
                        b.update(&key, value, rev, 0).await.unwrap(),
                    ),
                };
                if kind == EventKind::Deleted {
                    live.remove(&key);
                } else {
                    live.insert(key, kv.mod_revision);
                }
                written.push((kind, kv));
            }
            written
        }));
    }
    let mut expected: BTreeMap<i64, (EventKind, KeyValue)> = BTreeMap::new();
    for writer in writers {
        for (kind, kv) in writer.await.unwrap() {
            assert!(expected.insert(kv.mod_revision, (kind, kv)).is_none());
        }
    }
    let events = consumer.await.unwrap();
    assert_eq!(events.len(), WRITERS * PER_WRITER);
    let revs: Vec<i64> = events.iter().map(|e| e.kv.mod_revision).collect();
    assert_eq!(
        revs,
        (1..=10_000).collect::<Vec<_>>(),
        "in order, no gap, no duplicate"
    );
    for event in &events {
        let (kind, kv) = &expected[&event.kv.mod_revision];
        assert_eq!(event.kind, *kind);
        assert_eq!(&event.kv, kv);
    }
    fx.cleanup(&a).await;
}

/// Installs a trigger that makes inserting the key `/poison` fail inside the store's write
/// transaction, after the counter row was bumped.
async fn install_poison(fx: &Fixture, store: &Store) {
    let log = store.log_table();
    let p = &fx.prefix;
    let statements = match fx.db {
        Db::Sqlite => vec![format!(
            "CREATE TRIGGER {p}_poison BEFORE INSERT ON {log} WHEN NEW.name = '/poison' \
             BEGIN SELECT RAISE(ABORT, 'poison'); END"
        )],
        Db::MySql => vec![format!(
            "CREATE TRIGGER {p}_poison BEFORE INSERT ON {log} FOR EACH ROW \
             IF NEW.name = '/poison' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'poison'; END IF"
        )],
        Db::Postgres => vec![
            format!(
                "CREATE FUNCTION {p}_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.name = '/poison' THEN RAISE EXCEPTION 'poison'; END IF; RETURN NEW; END $$"
            ),
            format!(
                "CREATE TRIGGER {p}_poison BEFORE INSERT ON {log} FOR EACH ROW EXECUTE FUNCTION {p}_poison()"
            ),
        ],
    };
    for s in statements {
        sqlx::raw_sql(&s).execute(store.pool()).await.unwrap();
    }
}

/// The log table has no AUTO_INCREMENT / SERIAL / IDENTITY column for a jump to affect.
async fn assert_no_auto_increment(fx: &Fixture, store: &Store) {
    let log = store.log_table();
    let query = match fx.db {
        Db::Sqlite => format!(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = '{log}' AND upper(sql) LIKE '%AUTOINCREMENT%'"
        ),
        Db::MySql => format!(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() \
             AND table_name = '{log}' AND extra LIKE '%auto_increment%'"
        ),
        Db::Postgres => format!(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = '{log}' \
             AND (column_default LIKE 'nextval%' OR is_identity = 'YES')"
        ),
    };
    let found: i64 = sqlx::query_scalar(&query)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(found, 0);
}

/// Pushes the database's auto-increment forward to `next`, as OceanBase does on a leader
/// switch. MySQL/MariaDB: `ALTER TABLE … AUTO_INCREMENT` on the log table itself (accepted
/// without an AUTO_INCREMENT column). SQLite and PostgreSQL keep auto-increment state per
/// table/sequence and the store has none, so a neighbour table with one (`{prefix}_jump`, made
/// on first use) is jumped through `sqlite_sequence` / `setval`, and the test proves the store
/// is unaffected.
async fn jump_auto_increment(fx: &Fixture, store: &Store, next: i64) {
    let p = &fx.prefix;
    let statements = match fx.db {
        Db::MySql => vec![format!(
            "ALTER TABLE {} AUTO_INCREMENT = {next}",
            store.log_table()
        )],
        Db::Sqlite => vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {p}_jump (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)"
            ),
            format!("INSERT INTO {p}_jump (v) VALUES ('x')"),
            format!("UPDATE sqlite_sequence SET seq = {next} WHERE name = '{p}_jump'"),
            format!("INSERT INTO {p}_jump (v) VALUES ('y')"),
        ],
        Db::Postgres => vec![
            format!("CREATE TABLE IF NOT EXISTS {p}_jump (id BIGSERIAL PRIMARY KEY, v TEXT)"),
            format!("SELECT setval('{p}_jump_id_seq', {next})"),
            format!("INSERT INTO {p}_jump (v) VALUES ('y')"),
        ],
    };
    for s in statements {
        sqlx::raw_sql(&s).execute(store.pool()).await.unwrap();
    }
    if fx.db != Db::MySql {
        let id: i64 = sqlx::query_scalar(&format!("SELECT MAX(id) FROM {p}_jump"))
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(id, next + 1, "the neighbour's auto-increment jumped");
    }
}

async fn failed_and_rolled_back_writes_leave_no_hole(fx: Fixture) {
    let a = fx.open().await;
    let b = fx.open().await;
    assert_no_auto_increment(&fx, &a).await;
    install_poison(&fx, &a).await;
    let mut watch = a.watch("/", 0).await.unwrap();
    let mut expected = Vec::new();
    for round in 0..5 {
        let kv = a
            .create(&format!("/ok/a{round}"), b"a".to_vec(), 0)
            .await
            .unwrap();
        expected.push(kv.mod_revision);
        // 1. The insert fails after the counter was bumped (MariaDB would have burnt an
        //    auto-increment value here).
        let failed = b.create("/poison", b"p".to_vec(), 0).await;
        assert!(matches!(failed, Err(Error::Database(_))), "{failed:?}");
        // 2. Another client bumps the counter and appends a row, then rolls back.
        let mut tx = b.pool().begin().await.unwrap();
        let meta = format!("{}_meta", fx.prefix);
        sqlx::query(&format!(
            "UPDATE {meta} SET revision = revision + 1 WHERE id = 1"
        ))
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        // 3. The auto-increment counter jumps by a million, as OceanBase's does on a leader
        //    switch.
        jump_auto_increment(&fx, &a, 1_000_000 * (round + 2)).await;
        let kv = b
            .create(&format!("/ok/b{round}"), b"b".to_vec(), 0)
            .await
            .unwrap();
        expected.push(kv.mod_revision);
    }
    assert_eq!(expected, (1..=10).collect::<Vec<_>>());
    assert_eq!(revisions(&a).await, expected);
    let events = take_events(&mut watch, 10, DEADLINE).await;
    let got: Vec<i64> = events.iter().map(|e| e.kv.mod_revision).collect();
    assert_eq!(got, expected, "the watch neither stalled nor skipped");
    assert_quiet(&mut watch, Duration::from_millis(200)).await;
    sqlx::raw_sql(&format!("DROP TABLE IF EXISTS {}_jump", fx.prefix))
        .execute(a.pool())
        .await
        .unwrap();
    if fx.db == Db::Postgres {
        sqlx::raw_sql(&format!(
            "DROP FUNCTION IF EXISTS {}_poison CASCADE",
            fx.prefix
        ))
        .execute(a.pool())
        .await
        .unwrap();
    }
    fx.cleanup(&a).await;
}

/// A URL on which every connection of this test can be told apart from other users of the
/// server: its own MySQL database, its own PostgreSQL application_name.
async fn isolated_url(fx: &Fixture, admin: &Store) -> String {
    let p = &fx.prefix;
    match fx.db {
        Db::MySql => {
            sqlx::raw_sql(&format!("CREATE DATABASE IF NOT EXISTS {p}"))
                .execute(admin.pool())
                .await
                .unwrap();
            let base = fx.url.rsplit_once('/').unwrap().0;
            format!("{base}/{p}")
        }
        _ => {
            let sep = if fx.url.contains('?') { '&' } else { '?' };
            format!("{}{sep}application_name={p}", fx.url)
        }
    }
}

/// Kills every server connection of the test (both instances, the writers' kept ones too),
/// as a database restart would.
async fn kill_all(fx: &Fixture, admin: &Store) -> usize {
    let p = &fx.prefix;
    let query = match fx.db {
        Db::MySql => format!(
            "SELECT CAST(id AS SIGNED) FROM information_schema.processlist WHERE db = '{p}'"
        ),
        _ => format!(
            "SELECT CAST(pid AS BIGINT) FROM pg_stat_activity WHERE application_name = '{p}'"
        ),
    };
    let ids: Vec<i64> = sqlx::query_scalar(&query)
        .fetch_all(admin.pool())
        .await
        .unwrap();
    for id in &ids {
        let kill = match fx.db {
            Db::MySql => format!("KILL CONNECTION {id}"),
            _ => format!("SELECT pg_terminate_backend({id})"),
        };
        // A connection may have gone on its own meanwhile.
        let _ = sqlx::raw_sql(&kill).execute(admin.pool()).await;
    }
    ids.len()
}

async fn watch_survives_killed_connections(fx: Fixture) {
    let admin = fx.open().await;
    let url = isolated_url(&fx, &admin).await;
    let config = cellfed_store::Config::new(&url).with_table_prefix(&fx.prefix);
    let a = Store::open_with(config.clone()).await.unwrap();
    let b = Store::open_with(config).await.unwrap();
    let mut watch = a.watch("/", 0).await.unwrap();
    a.create("/before/a", vec![], 0).await.unwrap();
    for i in 0..2 {
        b.create(&format!("/before/{i}"), vec![], 0).await.unwrap();
    }
    assert_eq!(take_events(&mut watch, 3, DEADLINE).await.len(), 3);

    let killed = kill_all(&fx, &admin).await;
    assert!(killed >= 3, "only {killed} connections found to kill");
    // Writes through both instances recover (errors are allowed while reconnecting, never a
    // panic), although the writers' kept connections were killed too.
    let mut errors = 0;
    let mut written = Vec::new();
    let deadline = std::time::Instant::now() + DEADLINE;
    for (store, key) in [(&b, "/after/b1"), (&a, "/after/a"), (&b, "/after/b2")] {
        loop {
            match store.create(key, vec![], 0).await {
                Ok(kv) => {
                    written.push(kv.mod_revision);
                    break;
                }
                Err(Error::Database(e)) if std::time::Instant::now() < deadline => {
                    errors += 1;
                    eprintln!("while reconnecting: {e}");
                }
                Err(e) => panic!("store did not recover: {e}"),
            }
        }
    }
    assert_eq!(written, vec![4, 5, 6]);
    // The watcher resumes from its last revision: the next events are 4, 5, 6.
    let events = take_events(&mut watch, 3, DEADLINE).await;
    let revs: Vec<i64> = events.iter().map(|e| e.kv.mod_revision).collect();
    assert_eq!(revs, vec![4, 5, 6]);
    assert_quiet(&mut watch, Duration::from_millis(200)).await;
    eprintln!(
        "{:?}: killed {killed} connections, {errors} errors while reconnecting",
        fx.db
    );
    for table in ["log", "meta", "migrations"] {
        sqlx::raw_sql(&format!("DROP TABLE IF EXISTS {}_{table}", fx.prefix))
            .execute(a.pool())
            .await
            .unwrap();
    }
    drop((a, b, watch));
    if fx.db == Db::MySql {
        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {}", fx.prefix))
            .execute(admin.pool())
            .await
            .unwrap();
    }
    fx.cleanup(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_watch_survives_killed_connections() {
    watch_survives_killed_connections(Fixture::new(Db::MySql, "killed")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_watch_survives_killed_connections() {
    watch_survives_killed_connections(Fixture::new(Db::Postgres, "killed")).await;
}
