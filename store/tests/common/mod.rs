//! Shared test fixtures: one store per test with its own table prefix (and SQLite file), on
//! each of the three backends. MySQL and PostgreSQL come from CELLFED_TEST_MYSQL_URL and
//! CELLFED_TEST_POSTGRES_URL (`. scripts/ensure-services.sh` starts them).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use cellfed_store::{Config, Event, Store};
use futures::StreamExt;
use futures::stream::BoxStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    MySql,
    Postgres,
}

/// A database location and table prefix private to one test.
pub struct Fixture {
    pub db: Db,
    pub url: String,
    pub prefix: String,
    dir: Option<PathBuf>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Fixture {
    pub fn new(db: Db, name: &str) -> Fixture {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let short: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(12)
            .collect();
        let prefix = format!("t{}_{n}_{}_{short}", std::process::id(), nanos % 100_000);
        let (url, dir) = match db {
            Db::Sqlite => {
                let dir = std::env::temp_dir().join(format!("cellfed-store-{prefix}"));
                std::fs::create_dir_all(&dir).unwrap();
                (format!("sqlite://{}/store.db", dir.display()), Some(dir))
            }
            Db::MySql => (
                std::env::var("CELLFED_TEST_MYSQL_URL")
                    .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned()),
                None,
            ),
            Db::Postgres => (
                std::env::var("CELLFED_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
                None,
            ),
        };
        Fixture {
            db,
            url,
            prefix,
            dir,
        }
    }

    pub fn config(&self) -> Config {
        let mut config = Config::new(&self.url).with_table_prefix(&self.prefix);
        config.poll_interval = Duration::from_millis(20);
        config
    }

    pub async fn open(&self) -> Store {
        Store::open_with(self.config()).await.unwrap()
    }

    /// Drops the test's tables (and SQLite file).
    pub async fn cleanup(self, store: &Store) {
        for table in ["log", "meta", "migrations"] {
            let _ = sqlx::query(&format!("DROP TABLE IF EXISTS {}_{table}", self.prefix))
                .execute(store.pool())
                .await;
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs `body` for one backend with a fresh fixture.
#[macro_export]
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Fixture::new($crate::common::Db::Sqlite, stringify!($name))).await;
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Fixture::new($crate::common::Db::MySql, stringify!($name))).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Fixture::new($crate::common::Db::Postgres, stringify!($name))).await;
                }
            )*
        }
    };
}

/// Takes `n` events from a watch, failing after a deadline (no sleeps).
pub async fn take_events(
    stream: &mut BoxStream<'static, cellfed_store::Result<Event>>,
    n: usize,
    deadline: Duration,
) -> Vec<Event> {
    let until = Instant::now() + deadline;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Ok(Some(Ok(event))) => out.push(event),
            Ok(Some(Err(e))) => panic!("watch failed after {} events: {e}", out.len()),
            Ok(None) => panic!("watch ended after {} events", out.len()),
            Err(_) => panic!("only {} of {n} events before the deadline", out.len()),
        }
    }
    out
}

/// Asserts that no event arrives within `window` (for "nothing more" checks after the expected
/// events were all received).
pub async fn assert_quiet(
    stream: &mut BoxStream<'static, cellfed_store::Result<Event>>,
    window: Duration,
) {
    if let Ok(item) = tokio::time::timeout(window, stream.next()).await {
        panic!("unexpected watch item: {item:?}");
    }
}

/// All revisions in the log table, ascending.
pub async fn revisions(store: &Store) -> Vec<i64> {
    sqlx::query_scalar::<_, i64>(&format!(
        "SELECT revision FROM {} ORDER BY revision",
        store.log_table()
    ))
    .fetch_all(store.pool())
    .await
    .unwrap()
}

/// Rows in the log table.
pub async fn row_count(store: &Store) -> i64 {
    sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {}", store.log_table()))
        .fetch_one(store.pool())
        .await
        .unwrap()
}
