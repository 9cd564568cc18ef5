//! Writes: create-if-absent, compare-and-swap update and delete, with group commit.
//!
//! All writes of a `Store` go through one writer task. It takes every request waiting in its
//! queue (up to [`MAX_BATCH`]) and applies them in one transaction: lock the counter row (which
//! serialises every writer on the database, in this process or another), read the newest row
//! of each key involved, decide each request in arrival order against that state (a request
//! sees the effect of the ones before it), append one row per successful request at the next
//! revisions, store the new counter value, commit. Requests that fail their check take no
//! revision, so revisions stay dense; a batch that fails before commit is retried one request
//! at a time, so one bad request cannot fail its neighbours. Because the next writer can only
//! take the counter lock after this one committed, rows become visible in revision order.
//!
//! Alone, a write costs the same single commit as before; under concurrency, many writes share
//! one commit (one fsync) instead of queueing on the counter lock one commit at a time.

use std::collections::HashMap;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use crate::row::LogRow;
use crate::sql::Sql;
use crate::watch::Hub;
use crate::{Error, Inner, KeyValue, Result};

/// Most requests applied in one transaction.
const MAX_BATCH: usize = 128;
/// Requests queued before callers wait for room.
const QUEUE: usize = 4096;

/// What a request wants done to its key.
#[derive(Debug)]
enum Op {
    Create {
        value: Vec<u8>,
        lease: i64,
    },
    Update {
        value: Vec<u8>,
        expected: i64,
        lease: i64,
    },
    Delete {
        expected: Option<i64>,
    },
}

struct Request {
    key: String,
    op: Op,
    reply: oneshot::Sender<Result<KeyValue>>,
}

/// The handle on a `Store`'s writer task.
pub(crate) struct Writer {
    queue: mpsc::Sender<Request>,
}

impl Writer {
    /// Spawns the writer task; it ends when the `Writer` is dropped.
    pub(crate) fn start(
        pool: AnyPool,
        sql: std::sync::Arc<Sql>,
        hub: std::sync::Arc<Hub>,
    ) -> Writer {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(rx, pool, sql, hub));
        Writer { queue }
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
        let mut outcome = apply(&mut conn, sql, batch).await;
        if reused && matches!(outcome, Err(Failed::BeforeCommit(_))) {
            // The kept connection may have died with the server (restart, failover, kill):
            // nothing was written, so try once more on a fresh, pinged one.
            drop(conn);
            conn = self.pool.acquire().await?;
            outcome = apply(&mut conn, sql, batch).await;
        }
        // A private in-memory SQLite database has a single connection: never keep it.
        if outcome.is_ok() && self.pool.options().get_max_connections() > 1 {
            self.held = Some((conn, Instant::now()));
        }
        outcome
    }
}

async fn run(mut rx: mpsc::Receiver<Request>, pool: AnyPool, sql: Arc<Sql>, hub: Arc<Hub>) {
    let mut conn = WriterConn { pool, held: None };
    while let Some(first) = rx.recv().await {
        // Let the callers woken by the previous batch's replies queue their next write before
        // the batch is cut, so concurrent writers share a commit instead of alternating between
        // a batch of one and a batch of the rest.
        tokio::task::yield_now().await;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        match conn.apply(&sql, &batch).await {
            Ok(outcomes) => {
                hub.wake();
                reply(batch, outcomes);
            }
            Err(Failed::BeforeCommit(e)) if batch.len() > 1 => {
                tracing::debug!(error = %e, size = batch.len(), "write batch failed; retrying one by one");
                for request in batch {
                    let outcome = match conn.apply(&sql, std::slice::from_ref(&request)).await {
                        Ok(mut outcomes) => {
                            hub.wake();
                            outcomes
                                .pop()
                                .unwrap_or(Err(Error::Database(sqlx::Error::RowNotFound)))
                        }
                        Err(Failed::BeforeCommit(e) | Failed::Commit(e)) => Err(e),
                    };
                    let _ = request.reply.send(outcome);
                }
            }
            Err(Failed::BeforeCommit(e) | Failed::Commit(e)) if batch.len() == 1 => {
                reply(batch, vec![Err(e)]);
            }
            Err(Failed::BeforeCommit(e) | Failed::Commit(e)) => {
                // A failed commit may or may not have been applied: the callers must find out.
                let message = e.to_string();
                for request in batch {
                    let error = Error::Database(sqlx::Error::Protocol(message.clone()));
                    let _ = request.reply.send(Err(error));
                }
            }
        }
    }
}

fn reply(batch: Vec<Request>, outcomes: Vec<Result<KeyValue>>) {
    for (request, outcome) in batch.into_iter().zip(outcomes) {
        let _ = request.reply.send(outcome);
    }
}

/// Where a batch failed.
enum Failed {
    /// Nothing was written; each request may be retried.
    BeforeCommit(Error),
    /// The commit itself failed: the outcome is unknown.
    Commit(Error),
}

impl<E: Into<Error>> From<E> for Failed {
    fn from(e: E) -> Failed {
        Failed::BeforeCommit(e.into())
    }
}

/// A row to append.
struct NewRow {
    kv: KeyValue,
    created: bool,
    deleted: bool,
    prev_revision: i64,
    old_value: Option<Vec<u8>>,
}

/// Applies `batch` in one transaction on `conn`; one outcome per request, in order.
async fn apply(
    conn: &mut AnyConnection,
    sql: &Sql,
    batch: &[Request],
) -> Result<Vec<Result<KeyValue>>, Failed> {
    let mut tx = match sql.backend.begin_write_sql() {
        Some(begin) => AnyConnection::begin_with(conn, begin).await?,
        None => conn.begin().await?,
    };
    // Reserve a revision per request (locking the counter row); give back the unused ones
    // before commit if some requests fail their checks.
    let reserved = i64::try_from(batch.len()).unwrap_or(i64::MAX);
    let top = sql.backend.bump(&mut tx, &sql.bump, reserved).await?;
    let mut latest = latest_rows(&mut tx, sql, batch).await?;
    let mut next = top - reserved;
    let mut rows = Vec::with_capacity(batch.len());
    let mut outcomes = Vec::with_capacity(batch.len());
    for request in batch {
        let current = latest.get(&request.key);
        match decide(&request.key, &request.op, current, next + 1) {
            Ok(row) => {
                next += 1;
                outcomes.push(Ok(row.kv.clone()));
                latest.insert(request.key.clone(), row.as_log_row());
                rows.push(row);
            }
            Err(e) => outcomes.push(Err(e)),
        }
    }
    if rows.is_empty() {
        tx.rollback().await?;
        return Ok(outcomes);
    }
    let statement = sql.insert_rows(rows.len());
    let mut insert = sqlx::query(&statement);
    for row in &rows {
        insert = insert
            .bind(row.kv.mod_revision)
            .bind(row.kv.key.as_str())
            .bind(i64::from(row.created))
            .bind(i64::from(row.deleted))
            .bind(row.kv.create_revision)
            .bind(row.prev_revision)
            .bind(row.kv.lease)
            .bind(row.kv.value.as_slice())
            .bind(row.old_value.as_deref());
    }
    insert.execute(&mut *tx).await?;
    if next != top {
        sqlx::query(&sql.set_revision)
            .bind(next)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await.map_err(|e| Failed::Commit(e.into()))?;
    Ok(outcomes)
}

/// The newest row of every key in `batch`.
async fn latest_rows(
    tx: &mut sqlx::AnyConnection,
    sql: &Sql,
    batch: &[Request],
) -> Result<HashMap<String, LogRow>> {
    let mut keys: Vec<&str> = batch.iter().map(|r| r.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut latest = HashMap::with_capacity(keys.len());
    if keys.len() == 1 {
        let row = sqlx::query(&sql.latest)
            .bind(keys[0])
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = row {
            let row = LogRow::from_any(&row)?;
            latest.insert(row.name.clone(), row);
        }
        return Ok(latest);
    }
    let statement = sql.latest_of(keys.len());
    let mut query = sqlx::query(&statement);
    for key in &keys {
        query = query.bind(*key);
    }
    for row in query.fetch_all(&mut *tx).await? {
        let row = LogRow::from_any(&row)?;
        latest.insert(row.name.clone(), row);
    }
    Ok(latest)
}

/// The row `op` appends at `revision` given the key's newest row, or why it must not.
fn decide(key: &str, op: &Op, current: Option<&LogRow>, revision: i64) -> Result<NewRow> {
    let live = current.filter(|row| !row.deleted);
    let check = |expected: Option<i64>| -> Result<&LogRow> {
        let Some(live) = live else {
            return Err(Error::NotFound {
                key: key.to_owned(),
            });
        };
        match expected {
            Some(expected) if expected != live.revision => Err(Error::Conflict {
                key: key.to_owned(),
                expected,
                current: Some(Box::new(live.kv())),
            }),
            _ => Ok(live),
        }
    };
    match op {
        Op::Create { value, lease } => {
            if live.is_some() {
                return Err(Error::AlreadyExists {
                    key: key.to_owned(),
                });
            }
            Ok(NewRow {
                kv: KeyValue {
                    key: key.to_owned(),
                    value: value.clone(),
                    create_revision: revision,
                    mod_revision: revision,
                    lease: *lease,
                },
                created: true,
                deleted: false,
                prev_revision: current.map_or(0, |row| row.revision),
                old_value: None,
            })
        }
        Op::Update {
            value,
            expected,
            lease,
        } => {
            let live = check(Some(*expected))?;
            Ok(NewRow {
                kv: KeyValue {
                    key: key.to_owned(),
                    value: value.clone(),
                    create_revision: live.create_revision,
                    mod_revision: revision,
                    lease: *lease,
                },
                created: false,
                deleted: false,
                prev_revision: live.revision,
                old_value: Some(live.value.clone()),
            })
        }
        Op::Delete { expected } => {
            let live = check(*expected)?;
            // A tombstone keeps the last value (the Deleted event carries it), no old_value.
            Ok(NewRow {
                kv: KeyValue {
                    key: key.to_owned(),
                    value: live.value.clone(),
                    create_revision: live.create_revision,
                    mod_revision: revision,
                    lease: live.lease,
                },
                created: false,
                deleted: true,
                prev_revision: live.revision,
                old_value: None,
            })
        }
    }
}

impl NewRow {
    /// The row as the next request of the batch will read it.
    fn as_log_row(&self) -> LogRow {
        LogRow {
            revision: self.kv.mod_revision,
            name: self.kv.key.clone(),
            created: self.created,
            deleted: self.deleted,
            create_revision: self.kv.create_revision,
            prev_revision: self.prev_revision,
            lease: self.kv.lease,
            value: self.kv.value.clone(),
            old_value: self.old_value.clone(),
        }
    }
}
