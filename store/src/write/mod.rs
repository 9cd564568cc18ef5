//! Writes: create-if-absent, compare-and-swap update and delete, with group commit.
//!
//! All writes of a `Store` go through one writer task. It takes every request waiting in its
//! queue, up to `Config::write_batch` (`batch`: 128 writes or 4 MiB of keys and values by
//! default), and applies them in one transaction: lock the counter row (which
//! serialises every writer on the database, in this process or another), read the newest row
//! of each key involved, decide each request in arrival order against that state (a request
//! sees the effect of the ones before it), append one row per successful request at the next
//! revisions, store the new counter value, commit. Requests that fail their check take no
//! revision, so revisions stay dense. Because the next writer can only take the counter lock
//! after this one committed, rows become visible in revision order. Callers get their answers,
//! and watchers their events, only after the commit returned (on SQLite `synchronous=FULL`:
//! after the WAL's fsync).
//!
//! On MySQL/MariaDB and PostgreSQL that transaction costs two round trips (`packed`), on
//! SQLite one call per statement (`stepwise`). Alone, a write costs one commit; under
//! concurrency, many writes share one commit (one fsync) instead of queueing on the counter
//! lock one commit at a time.
//!
//! Failures: a batch the database rolled back for concurrency reasons (deadlock, lock wait
//! timeout, serialization or certification failure: `retry`) is applied again after a jittered
//! backoff, within `Config::retry`; past that bound its requests get `Error::Busy`. A batch
//! that fails otherwise before commit is retried one request at a time, so one bad request
//! cannot fail its neighbours. A failed commit of any other kind may or may not have been
//! applied: its callers get the error and must find out.

mod batch;
mod decide;
mod packed;
mod stepwise;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};

pub use batch::BatchLimit;
pub(crate) use decide::Op;

use crate::dialect::Backend;
use crate::retry::{Backoff, RetryPolicy, is_transient};
use crate::sql::Sql;
use crate::watch::Hub;
use crate::{Error, Inner, KeyValue, Result, WriteStats};

/// Requests queued before callers wait for room.
const QUEUE: usize = 4096;

pub(crate) struct Request {
    key: String,
    op: Op,
    reply: oneshot::Sender<Result<KeyValue>>,
}

impl Request {
    /// Bytes of key and value, what `BatchLimit::max_bytes` counts.
    fn size(&self) -> usize {
        let value = match &self.op {
            Op::Create { value, .. } | Op::Update { value, .. } => value.len(),
            Op::Delete { .. } => 0,
        };
        self.key.len() + value
    }
}

/// The handle on a `Store`'s writer task.
pub(crate) struct Writer {
    queue: mpsc::Sender<Request>,
    counters: Arc<Counters>,
}

/// What the writer counts, for `Store::write_stats`.
#[derive(Debug, Default)]
struct Counters {
    retries: AtomicU64,
    busy: AtomicU64,
    commits: AtomicU64,
    committed_writes: AtomicU64,
    writing_nanos: AtomicU64,
}

impl Writer {
    /// Spawns the writer task; it ends when the `Writer` is dropped.
    pub(crate) fn start(
        pool: AnyPool,
        sql: Arc<Sql>,
        hub: Arc<Hub>,
        retry: RetryPolicy,
        limit: BatchLimit,
    ) -> Writer {
        let (queue, rx) = mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let task = Task {
            conn: WriterConn { pool, held: None },
            sql,
            hub,
            retry,
            limit,
            counters: counters.clone(),
        };
        tokio::spawn(task.run(rx));
        Writer { queue, counters }
    }

    pub(crate) fn stats(&self) -> WriteStats {
        WriteStats {
            retries: self.counters.retries.load(Ordering::Relaxed),
            busy: self.counters.busy.load(Ordering::Relaxed),
            commits: self.counters.commits.load(Ordering::Relaxed),
            committed_writes: self.counters.committed_writes.load(Ordering::Relaxed),
            writing: Duration::from_nanos(self.counters.writing_nanos.load(Ordering::Relaxed)),
        }
    }

    async fn submit(&self, key: &str, op: Op) -> Result<KeyValue> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            key: key.to_owned(),
            op,
            reply,
        };
        self.queue
            .send(request)
            .await
            .map_err(|_| Error::Database(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| Error::Database(sqlx::Error::PoolClosed))?
    }
}

pub(crate) async fn create(
    inner: &Inner,
    key: &str,
    value: Vec<u8>,
    lease: i64,
) -> Result<KeyValue> {
    inner.writer.submit(key, Op::Create { value, lease }).await
}

pub(crate) async fn update(
    inner: &Inner,
    key: &str,
    value: Vec<u8>,
    expected: i64,
    lease: i64,
) -> Result<KeyValue> {
    let op = Op::Update {
        value,
        expected,
        lease,
    };
    inner.writer.submit(key, op).await
}

pub(crate) async fn delete(inner: &Inner, key: &str, expected: Option<i64>) -> Result<KeyValue> {
    inner.writer.submit(key, Op::Delete { expected }).await
}

/// Where a batch failed.
pub(crate) enum Failed {
    /// Nothing was written; each request may be retried.
    BeforeCommit(Error),
    /// The commit itself failed: the outcome is unknown, unless the error is transient (the
    /// database reports those only for transactions it rolled back).
    Commit(Error),
    /// The database acknowledged the commit, but the batch's rows are not in the log (a Galera
    /// node whose transaction a replicated write aborted); nothing was written, the batch may
    /// be applied again.
    NotApplied,
}

impl Failed {
    /// Whether the batch was rolled back for concurrency reasons and can be applied again.
    fn is_transient(&self) -> bool {
        match self {
            Failed::BeforeCommit(e) | Failed::Commit(e) => is_transient(e),
            Failed::NotApplied => true,
        }
    }

    fn into_error(self) -> Error {
        match self {
            Failed::BeforeCommit(e) | Failed::Commit(e) => e,
            Failed::NotApplied => Error::Database(sqlx::Error::Protocol(
                "the database acknowledged the commit but did not apply it".into(),
            )),
        }
    }
}

impl<E: Into<Error>> From<E> for Failed {
    fn from(e: E) -> Failed {
        Failed::BeforeCommit(e.into())
    }
}

/// What applying a batch did.
pub(crate) struct Applied {
    /// One outcome per request, or why the batch failed.
    result: Result<Vec<Result<KeyValue>>, Failed>,
    /// The connection may still be inside a transaction: close it, never reuse it.
    dirty: bool,
}

/// The writer's connection: kept between batches (saving the pool's liveness ping on every
/// write) unless it failed or sat idle long enough for the server to have dropped it.
struct WriterConn {
    pool: AnyPool,
    held: Option<(PoolConnection<Any>, Instant)>,
}

/// A connection idle longer than this is handed back and a fresh (pinged) one taken.
const MAX_HELD_IDLE: Duration = Duration::from_secs(10);

impl WriterConn {
    async fn apply(
        &mut self,
        sql: &Sql,
        batch: &[Request],
    ) -> Result<Vec<Result<KeyValue>>, Failed> {
        let (mut conn, reused) = match self.held.take() {
            Some((conn, used)) if used.elapsed() < MAX_HELD_IDLE => (conn, true),
            _ => (self.pool.acquire().await?, false),
        };
        let mut applied = apply_on(&mut conn, sql, batch).await;
        if reused && matches!(&applied.result, Err(Failed::BeforeCommit(e)) if !is_transient(e)) {
            // The kept connection may have died with the server (restart, failover, kill):
            // nothing was written, so try once more on a fresh, pinged one.
            release(conn, applied.dirty).await;
            conn = self.pool.acquire().await?;
            applied = apply_on(&mut conn, sql, batch).await;
        }
        // A private in-memory SQLite database has a single connection: never keep it.
        if applied.result.is_ok() && !applied.dirty && self.pool.options().get_max_connections() > 1
        {
            self.held = Some((conn, Instant::now()));
        } else {
            release(conn, applied.dirty).await;
        }
        applied.result
    }
}

/// Hands a connection back to the pool, or closes it if it may be inside a transaction.
async fn release(conn: PoolConnection<Any>, dirty: bool) {
    if dirty {
        let _ = conn.close().await;
    }
}

/// Applies `batch` on `conn` the backend's way.
async fn apply_on(conn: &mut AnyConnection, sql: &Sql, batch: &[Request]) -> Applied {
    match sql.backend {
        Backend::Sqlite => Applied {
            result: stepwise::apply(conn, sql, batch).await,
            dirty: false,
        },
        Backend::MySql | Backend::Postgres => packed::apply(conn, sql, batch).await,
    }
}

/// The writer task's state.
struct Task {
    conn: WriterConn,
    sql: Arc<Sql>,
    hub: Arc<Hub>,
    retry: RetryPolicy,
    limit: BatchLimit,
    counters: Arc<Counters>,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        // The request that did not fit into the previous batch starts the next one.
        let mut carried: Option<Request> = None;
        loop {
            let first = match carried.take() {
                Some(request) => request,
                None => match rx.recv().await {
                    Some(request) => request,
                    None => return,
                },
            };
            // Let the callers woken by the previous batch's replies queue their next write
            // before the batch is cut, so concurrent writers share a commit instead of
            // alternating between a batch of one and a batch of the rest.
            tokio::task::yield_now().await;
            let mut bytes = first.size();
            let mut batch = vec![first];
            while let Ok(request) = rx.try_recv() {
                if !self.limit.admits(batch.len(), bytes, request.size()) {
                    carried = Some(request);
                    break;
                }
                bytes += request.size();
                batch.push(request);
            }
            self.write(batch).await;
        }
    }

    /// Applies `batch` (retrying transient failures) and answers its callers.
    async fn write(&mut self, batch: Vec<Request>) {
        match self.apply_retrying(&batch).await {
            Ok(outcomes) => {
                self.committed(&outcomes);
                self.hub.wake();
                reply(batch, outcomes);
            }
            Err(Failed::BeforeCommit(Error::Busy { retry_after })) => {
                for request in batch {
                    let _ = request.reply.send(Err(Error::Busy { retry_after }));
                }
            }
            Err(Failed::BeforeCommit(e) | Failed::Commit(e)) if batch.len() == 1 => {
                reply(batch, vec![Err(e)]);
            }
            Err(Failed::BeforeCommit(e)) => {
                tracing::debug!(error = %e, size = batch.len(), "write batch failed; retrying one by one");
                for request in batch {
                    let outcome = match self.apply_retrying(std::slice::from_ref(&request)).await {
                        Ok(mut outcomes) => {
                            self.committed(&outcomes);
                            self.hub.wake();
                            outcomes
                                .pop()
                                .unwrap_or(Err(Error::Database(sqlx::Error::RowNotFound)))
                        }
                        Err(failed) => Err(failed.into_error()),
                    };
                    let _ = request.reply.send(outcome);
                }
            }
            // only transient, hence turned into Busy once the retries are spent
            Err(failed @ Failed::NotApplied) => {
                let message = failed.into_error().to_string();
                for request in batch {
                    let error = Error::Database(sqlx::Error::Protocol(message.clone()));
                    let _ = request.reply.send(Err(error));
                }
            }
            Err(Failed::Commit(e)) => {
                // A failed commit may or may not have been applied: the callers must find out.
                let message = e.to_string();
                for request in batch {
                    let error = Error::Database(sqlx::Error::Protocol(message.clone()));
                    let _ = request.reply.send(Err(error));
                }
            }
        }
    }

    /// Counts a batch whose commit succeeded (a batch that wrote nothing was rolled back).
    fn committed(&self, outcomes: &[Result<KeyValue>]) {
        let written = outcomes.iter().filter(|outcome| outcome.is_ok()).count() as u64;
        if written > 0 {
            self.counters.commits.fetch_add(1, Ordering::Relaxed);
            self.counters
                .committed_writes
                .fetch_add(written, Ordering::Relaxed);
        }
    }

    /// Applies `batch`, again after a backoff as long as it fails transiently and the retry
    /// policy allows; then `Busy`.
    async fn apply_retrying(&mut self, batch: &[Request]) -> Result<Vec<Result<KeyValue>>, Failed> {
        let mut backoff = Backoff::new(self.retry);
        loop {
            let started = Instant::now();
            let applied = self.conn.apply(&self.sql, batch).await;
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.counters
                .writing_nanos
                .fetch_add(nanos, Ordering::Relaxed);
            let failed = match applied {
                Err(failed) if failed.is_transient() => failed,
                other => return other,
            };
            let Some(delay) = backoff.next_delay() else {
                self.counters.busy.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %failed.into_error(), size = batch.len(), "write batch still conflicting after retries; answering busy");
                return Err(Failed::BeforeCommit(Error::Busy {
                    retry_after: self.retry.retry_after,
                }));
            };
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(error = %failed.into_error(), ?delay, "write batch rolled back by the database; retrying");
            tokio::time::sleep(delay).await;
        }
    }
}

fn reply(batch: Vec<Request>, outcomes: Vec<Result<KeyValue>>) {
    for (request, outcome) in batch.into_iter().zip(outcomes) {
        let _ = request.reply.send(outcome);
    }
}
