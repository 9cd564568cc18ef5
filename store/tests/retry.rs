//! Writes the database rolls back for concurrency reasons are retried inside the store, and
//! answered with `Error::Busy` past the retry bound — never with a database error, never with
//! a hole in the revisions. Each case forces a real conflict between the store's transaction
//! and one the test holds open: an InnoDB deadlock (1213) on MariaDB, a serialization failure
//! (40001) on PostgreSQL `SERIALIZABLE`, and a counter lock held past the lock wait timeout
//! (1205 / 55P03) on both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use cellfed_store::{Config, Error, KeyValue, RetryPolicy, Store};
use common::{Db, Fixture, revisions, take_events};
use sqlx::{AnyConnection, Connection};

const DEADLINE: Duration = Duration::from_secs(60);

/// A URL whose connections the test can pick out of the server's session list: its own MySQL
/// database, its own PostgreSQL `application_name`; `pg_options` go into PostgreSQL's
/// `options` (`-c name=value`).
async fn isolated_url(fx: &Fixture, pg_options: &str) -> String {
    let p = &fx.prefix;
    match fx.db {
        Db::MySql => {
            let mut admin = AnyConnection::connect(&fx.url).await.unwrap();
            sqlx::raw_sql(&format!("CREATE DATABASE IF NOT EXISTS {p}"))
                .execute(&mut admin)
                .await
                .unwrap();
            let base = fx.url.rsplit_once('/').unwrap().0;
            format!("{base}/{p}")
        }
        _ => {
            let sep = if fx.url.contains('?') { '&' } else { '?' };
            let mut url = format!("{}{sep}application_name={p}", fx.url);
            if !pg_options.is_empty() {
                url.push_str("&options=");
                url.push_str(&pg_options.replace(' ', "%20").replace('=', "%3D"));
            }
            url
        }
    }
}

/// Waits (bounded) until one of the store's PostgreSQL sessions is waiting for a row lock.
async fn until_store_waits_for_a_lock(
    fx: &Fixture,
    admin: &mut AnyConnection,
    write: &mut tokio::task::JoinHandle<cellfed_store::Result<KeyValue>>,
) {
    let p = &fx.prefix;
    let query = format!(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = '{p}' \
         AND wait_event_type = 'Lock'"
    );
    let poll = async {
        loop {
            let waiting: i64 = sqlx::query_scalar(&query)
                .fetch_one(&mut *admin)
                .await
                .unwrap();
            if waiting > 0 {
                return;
            }
            if write.is_finished() {
                panic!(
                    "the store's write finished without waiting for the test's lock: {:?}",
                    write.await
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(DEADLINE, poll)
        .await
        .expect("the store's write never waited for the test's lock");
}

/// Waits (bounded) until the store's write holds the MySQL counter row: a probe that may not
/// wait for it (`FOR UPDATE NOWAIT`, in a transaction of its own) fails.
async fn until_store_holds_the_counter_row(
    fx: &Fixture,
    admin: &mut AnyConnection,
    write: &mut tokio::task::JoinHandle<cellfed_store::Result<KeyValue>>,
) {
    let probe = format!(
        "SELECT id FROM {} WHERE id = 1 FOR UPDATE NOWAIT",
        table(fx, "meta")
    );
    let poll = async {
        loop {
            sqlx::raw_sql("START TRANSACTION")
                .execute(&mut *admin)
                .await
                .unwrap();
            let held = match sqlx::raw_sql(&probe).execute(&mut *admin).await {
                Ok(_) => false,
                // MariaDB reports NOWAIT as a lock wait timeout, MySQL 8 as ER_LOCK_NOWAIT.
                Err(sqlx::Error::Database(e)) => {
                    let number = e
                        .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                        .map(|e| e.number());
                    assert!(matches!(number, Some(1205 | 3572)), "probe failed: {e}");
                    true
                }
                Err(e) => panic!("probe failed: {e}"),
            };
            sqlx::raw_sql("ROLLBACK")
                .execute(&mut *admin)
                .await
                .unwrap();
            if held {
                return;
            }
            if write.is_finished() {
                panic!(
                    "the store's write finished without locking the counter row: {:?}",
                    write.await
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(DEADLINE, poll)
        .await
        .expect("the store's write never took the counter row");
}

async fn drop_isolated(fx: &Fixture, store: Store) {
    let p = &fx.prefix;
    for table in ["log", "meta", "migrations", "weight"] {
        sqlx::raw_sql(&format!("DROP TABLE IF EXISTS {p}_{table}"))
            .execute(store.pool())
            .await
            .unwrap();
    }
    drop(store);
    if fx.db == Db::MySql {
        let mut admin = AnyConnection::connect(&fx.url).await.unwrap();
        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {p}"))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

/// The test's own connection to the store's tables, outside the store (on MySQL in another
/// default database, so its session does not count as the store's).
async fn blocker(fx: &Fixture) -> AnyConnection {
    AnyConnection::connect(&fx.url).await.unwrap()
}

/// The store's tables as the blocker addresses them.
fn table(fx: &Fixture, name: &str) -> String {
    match fx.db {
        Db::MySql => format!("{0}.{0}_{name}", fx.prefix),
        _ => format!("{}_{name}", fx.prefix),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_deadlock_victim_write_is_retried() {
    let fx = Fixture::new(Db::MySql, "deadlock");
    sqlx::any::install_default_drivers();
    let url = isolated_url(&fx, "").await;
    let store = Store::open_with(Config::new(&url).with_table_prefix(&fx.prefix))
        .await
        .unwrap();
    store.create("/before", b"1".to_vec(), 0).await.unwrap();
    let mut watch = store.watch("/", 0).await.unwrap();
    let (log, meta, weight) = (table(&fx, "log"), table(&fx, "meta"), table(&fx, "weight"));
    let mut t = blocker(&fx).await;
    sqlx::raw_sql(&format!(
        "CREATE TABLE {weight} (id INT PRIMARY KEY) ENGINE=InnoDB"
    ))
    .execute(&mut t)
    .await
    .unwrap();
    // The test's transaction T: heavy (1000 rows written), so InnoDB picks the store's
    // transaction as the deadlock victim; it holds revision 2 of the log…
    sqlx::raw_sql("START TRANSACTION")
        .execute(&mut t)
        .await
        .unwrap();
    let rows: Vec<String> = (1..=1000).map(|i| format!("({i})")).collect();
    sqlx::raw_sql(&format!(
        "INSERT INTO {weight} (id) VALUES {}",
        rows.join(", ")
    ))
    .execute(&mut t)
    .await
    .unwrap();
    sqlx::raw_sql(&format!(
        "INSERT INTO {log} (revision, name, created, deleted, create_revision, prev_revision, lease) \
         VALUES (2, '/blocker', 1, 0, 2, 0, 0)"
    ))
    .execute(&mut t)
    .await
    .unwrap();
    // …so the store's write locks the counter row, then waits for T on revision 2…
    let writer = store.clone();
    let mut write = tokio::spawn(async move { writer.create("/k", b"v".to_vec(), 0).await });
    let mut admin = blocker(&fx).await;
    until_store_holds_the_counter_row(&fx, &mut admin, &mut write).await;
    // …and T asks for the counter row: a cycle (now, or as soon as the store reaches revision
    // 2). InnoDB rolls the lighter store transaction back (1213); T goes on.
    let touch_counter = format!("UPDATE {meta} SET revision = revision WHERE id = 1");
    let cycle = sqlx::raw_sql(&touch_counter).execute(&mut t);
    tokio::time::timeout(DEADLINE, cycle)
        .await
        .expect("InnoDB did not resolve the deadlock")
        .expect("InnoDB should pick the lighter store transaction as the victim");
    // The store retries: it waits for the counter row again until T is gone.
    sqlx::raw_sql("ROLLBACK").execute(&mut t).await.unwrap();
    let kv = tokio::time::timeout(DEADLINE, write)
        .await
        .expect("the retried write did not finish")
        .unwrap()
        .expect("a deadlock must be retried inside the store, not returned");
    assert_eq!(kv.mod_revision, 2);
    assert!(
        store.write_stats().retries >= 1,
        "{:?}",
        store.write_stats()
    );
    assert_eq!(store.write_stats().busy, 0);
    assert_eq!(revisions(&store).await, [1, 2]);
    let events = take_events(&mut watch, 2, DEADLINE).await;
    assert_eq!(events[1].kv.key, "/k");
    drop((watch, t, admin));
    drop_isolated(&fx, store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_serialization_failure_is_retried() {
    let fx = Fixture::new(Db::Postgres, "serializable");
    sqlx::any::install_default_drivers();
    let url = isolated_url(&fx, "-c default_transaction_isolation=serializable").await;
    let store = Store::open_with(Config::new(&url).with_table_prefix(&fx.prefix))
        .await
        .unwrap();
    store.create("/before", b"1".to_vec(), 0).await.unwrap();
    let meta = table(&fx, "meta");
    // T updates the counter row (without changing it) and stays open…
    let mut t = blocker(&fx).await;
    sqlx::raw_sql("BEGIN").execute(&mut t).await.unwrap();
    sqlx::raw_sql(&format!(
        "UPDATE {meta} SET revision = revision WHERE id = 1"
    ))
    .execute(&mut t)
    .await
    .unwrap();
    // …the store's serializable transaction starts and waits for the row…
    let writer = store.clone();
    let mut write = tokio::spawn(async move { writer.create("/k", b"v".to_vec(), 0).await });
    let mut admin = blocker(&fx).await;
    until_store_waits_for_a_lock(&fx, &mut admin, &mut write).await;
    // …T commits: the row changed after the store's snapshot, so PostgreSQL fails the store's
    // update with 40001 "could not serialize access due to concurrent update".
    sqlx::raw_sql("COMMIT").execute(&mut t).await.unwrap();
    let kv = tokio::time::timeout(DEADLINE, write)
        .await
        .expect("the retried write did not finish")
        .unwrap()
        .expect("a serialization failure must be retried inside the store, not returned");
    assert_eq!(kv.mod_revision, 2);
    assert!(
        store.write_stats().retries >= 1,
        "{:?}",
        store.write_stats()
    );
    assert_eq!(revisions(&store).await, [1, 2]);
    drop((t, admin));
    drop_isolated(&fx, store).await;
}

/// The counter row stays locked longer than the store's whole retry budget: the write answers
/// `Busy` and writes nothing; once the lock is gone, writes go on with the next revision.
async fn lock_held_past_the_retry_bound_answers_busy(fx: Fixture) {
    sqlx::any::install_default_drivers();
    let url = isolated_url(&fx, "").await;
    let mut config = Config::new(&url).with_table_prefix(&fx.prefix);
    config.lock_wait_timeout = Some(Duration::from_millis(50));
    config.retry = RetryPolicy {
        max_attempts: 3,
        max_elapsed: Duration::from_secs(30),
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        retry_after: Duration::from_secs(2),
    };
    let store = Store::open_with(config).await.unwrap();
    store.create("/before", b"1".to_vec(), 0).await.unwrap();
    let mut watch = store.watch("/", 0).await.unwrap();
    let meta = table(&fx, "meta");
    let mut t = blocker(&fx).await;
    let begin = if fx.db == Db::MySql {
        "START TRANSACTION"
    } else {
        "BEGIN"
    };
    sqlx::raw_sql(begin).execute(&mut t).await.unwrap();
    sqlx::raw_sql(&format!(
        "UPDATE {meta} SET revision = revision WHERE id = 1"
    ))
    .execute(&mut t)
    .await
    .unwrap();
    let blocked = tokio::time::timeout(DEADLINE, store.create("/blocked", b"v".to_vec(), 0))
        .await
        .expect("the write must give up within its retry bound");
    match blocked {
        Err(Error::Busy { retry_after }) => assert_eq!(retry_after, Duration::from_secs(2)),
        other => panic!("expected Busy, got {other:?}"),
    }
    let stats = store.write_stats();
    assert_eq!(
        (stats.retries, stats.busy),
        (2, 1),
        "3 attempts = 2 retries, then busy"
    );
    sqlx::raw_sql("ROLLBACK").execute(&mut t).await.unwrap();
    let kv = store.create("/after", b"v".to_vec(), 0).await.unwrap();
    assert_eq!(kv.mod_revision, 2, "the refused write took no revision");
    assert_eq!(store.get("/blocked", None).await.unwrap(), None);
    assert_eq!(revisions(&store).await, [1, 2]);
    let events = take_events(&mut watch, 2, DEADLINE).await;
    let keys: Vec<&str> = events.iter().map(|e| e.kv.key.as_str()).collect();
    assert_eq!(keys, ["/before", "/after"]);
    drop((watch, t));
    drop_isolated(&fx, store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_lock_held_past_the_retry_bound_answers_busy() {
    lock_held_past_the_retry_bound_answers_busy(Fixture::new(Db::MySql, "busy")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lock_held_past_the_retry_bound_answers_busy() {
    lock_held_past_the_retry_bound_answers_busy(Fixture::new(Db::Postgres, "busy")).await;
}
