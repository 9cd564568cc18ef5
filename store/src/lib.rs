//! A revisioned key-value log on SQL (SQLite, MySQL/MariaDB, PostgreSQL) with dense revisions,
//! kine-style. It knows nothing of Kubernetes objects and must never depend on another cellfed crate.
//!
//!
//! Every change (create, update, delete) appends one row to a log table; its revision is taken
//! from a counter row incremented in the same transaction, so revisions are dense and in commit
//! order (never AUTO_INCREMENT). Watches are served by one poller per `Store` that reads the log
//! in revision order and fans events out; local writes wake it at once, writes of other
//! processes on the same database are seen at the next poll. See docs/store.md.

mod compact;
mod dialect;
mod literal;
mod read;
mod retry;
mod row;
mod schema;
mod sql;
mod transform;
mod url;
mod watch;
mod write;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use dialect::Backend;
pub use retry::RetryPolicy;
pub use transform::ValueTransformer;
pub use url::Synchronous;
pub use write::BatchLimit;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key exists already (create-if-absent lost).
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    /// The key does not exist (or is deleted).
    #[error("key {key} not found")]
    NotFound { key: String },
    /// Compare-and-swap lost: the key's mod revision is not the expected one.
    #[error("key {key} was modified: expected revision {expected}, current {current:?}")]
    Conflict {
        key: String,
        expected: i64,
        current: Option<Box<KeyValue>>,
    },
    /// The requested revision was compacted; the apiserver answers 410 Expired.
    #[error("revision {requested} has been compacted (oldest kept {compacted})")]
    Compacted { requested: i64, compacted: i64 },
    /// The requested revision is newer than the store's current revision.
    #[error("revision {requested} is in the future (current {current})")]
    FutureRevision { requested: i64, current: i64 },
    /// A watcher fell behind and was cut off; it must re-list.
    #[error("watcher fell behind and was cut off")]
    WatcherLagged,
    /// The database kept rolling the write back for concurrency reasons (deadlocks, lock wait
    /// timeouts, serialization or certification failures: other writers on the same rows) past
    /// `Config::retry`; nothing was written. The apiserver answers 429 with `Retry-After`.
    #[error(
        "the database is busy with conflicting writers; nothing was written, retry after {retry_after:?}"
    )]
    Busy { retry_after: Duration },
    /// The database failed or is unreachable.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The configuration (URL, table prefix) cannot be used.
    #[error("invalid store configuration: {reason}")]
    InvalidConfig { reason: String },
    /// The handle's [`ValueTransformer`] refused a value (a stored value no configured key
    /// decrypts, for instance); nothing was written.
    #[error("value of {key} could not be transformed: {reason}")]
    Transform { key: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One version of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision at which this key was created (its current life).
    pub create_revision: i64,
    /// Revision of this version (the Kubernetes resourceVersion).
    pub mod_revision: i64,
    /// Lease/TTL in seconds, 0 for none.
    pub lease: i64,
    /// Read through a [`ValueTransformer`] that would store it differently now (an older
    /// encryption key): rewriting it is due even if the value is unchanged.
    pub stale: bool,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Updated,
    Deleted,
}

/// A change delivered to a watcher, in revision order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The key after the change; for `Deleted`, the last value with `mod_revision` = the deletion revision.
    pub kv: KeyValue,
    /// The version before the change (None for `Created`).
    pub prev: Option<KeyValue>,
}

/// Options of `Store::open_with`.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://path.db`, `sqlite::memory:`, `mysql://…`, `postgres://…`.
    pub url: String,
    /// How often watchers poll for writes made by other processes (default 100 ms).
    pub poll_interval: Duration,
    /// Max connections in the pool.
    pub max_connections: u32,
    /// Buffered events per watcher before it is cut off with `WatcherLagged`.
    pub watch_buffer: usize,
    /// Buffered bytes (keys and values) per watcher before it is cut off with `WatcherLagged`
    /// (default 64 MiB); one event always fits into an empty buffer.
    pub watch_buffer_bytes: usize,
    /// Tables are named `{table_prefix}_log`, `{table_prefix}_meta`, `{table_prefix}_migrations`
    /// (default `cellfed`); ASCII letters, digits and `_` only. Several stores (and tests) can
    /// share one database with different prefixes.
    pub table_prefix: String,
    /// How writes rolled back by the database for concurrency reasons are retried before
    /// `Error::Busy` (default: up to 10 attempts within 5 s, jittered exponential backoff).
    pub retry: RetryPolicy,
    /// How long a statement waits for a row lock (the counter row: another writer's
    /// transaction) before the database gives up on it, which the writer then retries like
    /// any conflict: `innodb_lock_wait_timeout` (whole seconds) on MySQL, `lock_timeout` on
    /// PostgreSQL, `busy_timeout` on SQLite. None (default) keeps the database's own setting.
    pub lock_wait_timeout: Option<Duration>,
    /// Group commit: how many writes queued behind the writer, and how many bytes of their
    /// keys and values, one transaction (one commit, one fsync) may carry (default 128 writes,
    /// 4 MiB). `max_writes: 1` commits every write on its own.
    pub write_batch: BatchLimit,
}

impl Config {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            poll_interval: Duration::from_millis(100),
            max_connections: 10,
            watch_buffer: 10_000,
            watch_buffer_bytes: 64 * 1024 * 1024,
            table_prefix: "cellfed".to_owned(),
            retry: RetryPolicy::default(),
            lock_wait_timeout: None,
            write_batch: BatchLimit::default(),
        }
    }

    /// The same configuration with another table prefix.
    #[must_use]
    pub fn with_table_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.table_prefix = prefix.into();
        self
    }
}

/// Counters of a `Store`'s writer since it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Batches applied again after the database rolled them back for concurrency reasons.
    pub retries: u64,
    /// Batches given up on with `Error::Busy`.
    pub busy: u64,
    /// Transactions committed (batches that wrote at least one row).
    pub commits: u64,
    /// Writes acknowledged by those commits; `committed_writes / commits` is the mean batch.
    pub committed_writes: u64,
    /// Time the writer spent applying batches, failed attempts and commits (fsync) included:
    /// next to wall-clock time, how busy the single writer was.
    pub writing: Duration,
}

/// Options of `Store::list`.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Read at this revision (None = current). Older than the compacted revision: `Compacted`.
    pub revision: Option<i64>,
    /// At most this many keys (None = all).
    pub limit: Option<usize>,
    /// Start strictly after this key (continuation).
    pub start_after: Option<String>,
}

/// Result of `Store::list`.
#[derive(Debug, Clone)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// The revision the list was read at.
    pub revision: i64,
    /// Keys left after the last one returned (0 = complete).
    pub remaining: u64,
}

/// A handle on the store; cheap to clone. The watch poller stops when the last clone is dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    /// How this handle turns values into stored bytes and back (none by default).
    transform: transform::Transform,
}

/// What all clones of a `Store` share.
pub(crate) struct Inner {
    pool: AnyPool,
    sql: Arc<sql::Sql>,
    hub: Arc<watch::Hub>,
    writer: write::Writer,
    config: Config,
    /// LIST calls by prefix, for diagnostics and tests.
    lists: ListCalls,
}

/// How many LISTs were served per prefix (at most [`ListCalls::MAX_PREFIXES`] prefixes are told
/// apart; LISTs of further prefixes are counted under `""`).
#[derive(Default)]
struct ListCalls(std::sync::Mutex<std::collections::HashMap<String, u64>>);

impl ListCalls {
    const MAX_PREFIXES: usize = 4096;

    fn add(&self, prefix: &str) {
        let Ok(mut m) = self.0.lock() else {
            return;
        };
        if let Some(n) = m.get_mut(prefix) {
            *n += 1;
        } else if m.len() < Self::MAX_PREFIXES {
            m.insert(prefix.to_owned(), 1);
        } else {
            *m.entry(String::new()).or_default() += 1;
        }
    }

    fn under(&self, prefix: &str) -> u64 {
        self.0
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|(p, _)| p.starts_with(prefix))
                    .map(|(_, n)| n)
                    .sum()
            })
            .unwrap_or(0)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.hub.close();
    }
}

impl Store {
    /// Opens (and migrates) the database at `url` with default options.
    pub async fn open(url: &str) -> Result<Store> {
        Self::open_with(Config::new(url)).await
    }

    /// Opens (and migrates) the database with these options.
    pub async fn open_with(config: Config) -> Result<Store> {
        let prefix = &config.table_prefix;
        if prefix.is_empty()
            || prefix.len() > 40
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(Error::InvalidConfig {
                reason: format!(
                    "table prefix {prefix:?} must be 1-40 ASCII letters, digits or underscores"
                ),
            });
        }
        let backend = Backend::from_url(&config.url)?;
        sqlx::any::install_default_drivers();
        let target = url::parse(backend, &config.url)?;
        let in_memory = target.in_memory;
        let options = AnyConnectOptions::from_str(&target.url)?.disable_statement_logging();
        let setup = Arc::new(backend.session_setup(target.synchronous, config.lock_wait_timeout));
        let mut pool = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                let setup = setup.clone();
                Box::pin(async move {
                    for statement in setup.iter() {
                        conn.execute(statement.as_str()).await?;
                    }
                    backend.causal_reads_on_galera(conn).await
                })
            });
        pool = if in_memory {
            // Every connection to `sqlite::memory:` is its own database: keep exactly one.
            pool.max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            pool.max_connections(config.max_connections.max(2))
        };
        let pool = pool.connect_with(options).await?;
        if backend == Backend::Sqlite && !in_memory {
            schema::enable_wal(&pool).await?;
        }
        schema::migrate(&pool, backend, prefix).await?;
        let sql = Arc::new(sql::Sql::new(backend, prefix));
        let meta = read::meta(&pool, &sql).await?;
        let hub = watch::Hub::start(
            meta.revision,
            pool.clone(),
            sql.clone(),
            config.poll_interval,
        );
        let writer = write::Writer::start(
            pool.clone(),
            sql.clone(),
            hub.clone(),
            config.retry,
            config.write_batch,
        );
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                sql,
                hub,
                writer,
                config,
                lists: ListCalls::default(),
            }),
            transform: transform::Transform::default(),
        })
    }

    /// A handle on the same store that writes every value through `transformer` and reads
    /// every value back through it (get, list, watch, the results of writes). Handles without
    /// it see the stored bytes.
    #[must_use]
    pub fn with_value_transformer(&self, transformer: Arc<dyn ValueTransformer>) -> Store {
        Store {
            inner: self.inner.clone(),
            transform: transform::Transform::new(transformer),
        }
    }

    /// The backend this store talks to.
    pub fn backend(&self) -> Backend {
        self.inner.sql.backend
    }

    /// The name of the log table (`{table_prefix}_log`), for diagnostics and tests.
    pub fn log_table(&self) -> &str {
        &self.inner.sql.log
    }

    /// The connection pool, for diagnostics and tests that inspect the tables.
    pub fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// The newest revision.
    pub async fn current_revision(&self) -> Result<i64> {
        Ok(read::meta(&self.inner.pool, &self.inner.sql)
            .await?
            .revision)
    }

    /// The oldest revision still readable.
    pub async fn compacted_revision(&self) -> Result<i64> {
        Ok(read::meta(&self.inner.pool, &self.inner.sql)
            .await?
            .compacted)
    }

    /// The key's value now (None) or at `revision`; None if absent or deleted then.
    pub async fn get(&self, key: &str, revision: Option<i64>) -> Result<Option<KeyValue>> {
        read::get(&self.inner, key, revision)
            .await?
            .map(|kv| self.transform.decode(kv))
            .transpose()
    }

    /// Keys under `prefix` in key order. `limit: Some(0)` is treated as no limit.
    pub async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        self.inner.lists.add(prefix);
        let mut result = read::list(&self.inner, prefix, options).await?;
        if self.transform.is_set() {
            result.items = result
                .items
                .into_iter()
                .map(|kv| self.transform.decode(kv))
                .collect::<Result<_>>()?;
        }
        Ok(result)
    }

    /// How many LISTs this handle (and its clones) served of prefixes starting with `prefix`:
    /// lets tests and diagnostics show that a path reads from a cache instead of the database.
    pub fn list_calls(&self, prefix: &str) -> u64 {
        self.inner.lists.under(prefix)
    }

    /// Number of live keys under `prefix`, and the revision counted at.
    pub async fn count(&self, prefix: &str) -> Result<(u64, i64)> {
        read::count(&self.inner, prefix).await
    }

    /// Creates the key if absent; returns the new version.
    pub async fn create(&self, key: &str, value: Vec<u8>, lease: i64) -> Result<KeyValue> {
        let plain = self.transform.is_set().then(|| value.clone());
        let stored = self.transform.encode(key, value)?;
        let result = write::create(&self.inner, key, stored, lease).await;
        self.transform.written(result, plain)
    }

    /// Replaces the key if its mod revision is `expected`; returns the new version.
    pub async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: i64,
        lease: i64,
    ) -> Result<KeyValue> {
        let plain = self.transform.is_set().then(|| value.clone());
        let stored = self.transform.encode(key, value)?;
        let result = write::update(&self.inner, key, stored, expected, lease).await;
        self.transform.written(result, plain)
    }

    /// Deletes the key (if `expected` is Some, only at that mod revision); returns the deleted
    /// version with `mod_revision` set to the deletion revision.
    pub async fn delete(&self, key: &str, expected: Option<i64>) -> Result<KeyValue> {
        let result = write::delete(&self.inner, key, expected).await;
        self.transform.decode(self.transform.decode_error(result)?)
    }

    /// Events for keys under `prefix` with revision > `after`, in order, without gap or duplicate.
    /// Fails at once with `Compacted` if `after` is older than the compacted revision; the stream
    /// ends with `Err(WatcherLagged)` if the consumer falls behind (more than
    /// `Config::watch_buffer` events or `Config::watch_buffer_bytes` bytes unread), or
    /// `Err(Compacted)` if history it still needed was compacted meanwhile. `after` may be ahead
    /// of the current revision.
    pub async fn watch(
        &self,
        prefix: &str,
        after: i64,
    ) -> Result<BoxStream<'static, Result<Event>>> {
        let stream = watch::watch(&self.inner, prefix, after).await?;
        if !self.transform.is_set() {
            return Ok(stream);
        }
        let transform = self.transform.clone();
        // A value no key decodes ends the stream with the error, as a failed read would.
        Ok(stream
            .map(move |item| item.and_then(|event| transform.decode_event(event)))
            .scan(false, |failed, item| {
                let out = (!*failed).then(|| {
                    *failed = item.is_err();
                    item
                });
                futures::future::ready(out)
            })
            .boxed())
    }

    /// Bytes of events waiting in watchers' buffers (delivered by the poller, not yet taken), over
    /// all watchers of this `Store`; each watcher's share is at most `Config::watch_buffer_bytes`
    /// (or one event).
    pub fn watch_buffered_bytes(&self) -> usize {
        self.inner.hub.buffered_bytes()
    }

    /// What the writer has committed and retried so far, for metrics and tests.
    pub fn write_stats(&self) -> WriteStats {
        self.inner.writer.stats()
    }

    /// Removes history older than `revision` (the newest version of live keys is kept).
    /// Reads and watches below `revision` then fail with `Compacted`. Compacting to a revision
    /// at or below the compacted one does nothing; beyond the current one is `FutureRevision`.
    pub async fn compact(&self, revision: i64) -> Result<()> {
        compact::compact(&self.inner, revision).await
    }

    /// Compacts so that only the newest `keep` revisions stay readable.
    pub async fn compact_keep(&self, keep: i64) -> Result<()> {
        let meta = read::meta(&self.inner.pool, &self.inner.sql).await?;
        let target = meta.revision - keep.max(0);
        if target <= meta.compacted {
            return Ok(());
        }
        compact::compact(&self.inner, target).await
    }
}
