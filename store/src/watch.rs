//! Watch: one poller per `Store` reads the log in revision order and fans events out.
//!
//! The poller keeps `head`, the last revision it delivered, and reads `revision > head` in
//! order. Revisions are dense (see `write`), so the next row must be `head + 1`; a hole means
//! either compaction removed it (the counter row says so: subscribers are cut off with
//! `Compacted`) or, defensively, a row not yet visible (the poller waits for it). Local writes
//! wake the poller at once; writes of other processes are found at the next poll.
//!
//! A new watcher registers with the hub under its lock and learns `head` = P at that instant:
//! every event after P reaches its channel from the poller, and it reads `(after, P]` from the
//! table itself first (catch-up). Nothing is missed or seen twice. A watcher whose channel is
//! full — `Config::watch_buffer` events or `Config::watch_buffer_bytes` bytes unread — is cut
//! off (`WatcherLagged`) instead of slowing the others down or holding unbounded memory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::AnyPool;
use tokio::sync::{Notify, mpsc};

use crate::read::meta;
use crate::row::LogRow;
use crate::sql::Sql;
use crate::{Error, Event, Inner, Result};

/// Rows the poller reads per query.
const POLL_BATCH: i64 = 1000;
/// Rows a watcher's catch-up reads per query.
const CATCH_UP_BATCH: i64 = 500;
/// How long a hole in the revisions may stay before the poller gives up on it.
const GAP_TIMEOUT: Duration = Duration::from_secs(10);
/// How soon the poller looks again at a hole.
const GAP_RETRY: Duration = Duration::from_millis(5);

/// Why a watcher was cut off.
#[derive(Debug, Clone, Copy)]
enum Cut {
    Lagged,
    Compacted { requested: i64, compacted: i64 },
}

impl From<Cut> for Error {
    fn from(cut: Cut) -> Error {
        match cut {
            Cut::Lagged => Error::WatcherLagged,
            Cut::Compacted {
                requested,
                compacted,
            } => Error::Compacted {
                requested,
                compacted,
            },
        }
    }
}

/// The reason slot shared by the poller (writer) and one watcher's stream (reader).
type CutSlot = Arc<Mutex<Option<Cut>>>;

struct Subscriber {
    prefix: String,
    tx: mpsc::Sender<Event>,
    cut: CutSlot,
    /// Bytes of the events in `tx` not yet taken by the watcher.
    queued: Arc<AtomicUsize>,
    /// Most bytes `queued` may hold (one event always fits into an empty queue).
    max_bytes: usize,
}

/// What an event costs in a watcher's buffer: its key and values.
pub(crate) fn event_bytes(event: &Event) -> usize {
    event.kv.key.len() + event.kv.value.len() + event.prev.as_ref().map_or(0, |p| p.value.len())
}

struct HubState {
    /// Last revision fanned out (or known to need no fan-out).
    head: i64,
    subscribers: Vec<Subscriber>,
}

/// The fan-out point of one `Store`.
pub(crate) struct Hub {
    state: Mutex<HubState>,
    wake: Notify,
    closed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Hub {
    /// Creates the hub at `head` and spawns its poller.
    pub(crate) fn start(head: i64, pool: AnyPool, sql: Arc<Sql>, interval: Duration) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            state: Mutex::new(HubState {
                head,
                subscribers: Vec::new(),
            }),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
        });
        tokio::spawn(run(hub.clone(), pool, sql, interval));
        hub
    }

    /// A local write committed: poll now.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// The store is gone: the poller stops and every watch stream ends.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn subscribe(&self, prefix: &str, buffer: usize, max_bytes: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let cut = CutSlot::default();
        let queued = Arc::new(AtomicUsize::new(0));
        let mut state = lock(&self.state);
        state.subscribers.push(Subscriber {
            prefix: prefix.to_owned(),
            tx,
            cut: cut.clone(),
            queued: queued.clone(),
            max_bytes,
        });
        Subscription {
            head: state.head,
            rx,
            cut,
            queued,
        }
    }

    /// Bytes of events delivered to watchers' buffers and not yet taken, over all watchers.
    pub(crate) fn buffered_bytes(&self) -> usize {
        lock(&self.state)
            .subscribers
            .iter()
            .filter(|s| !s.tx.is_closed())
            .map(|s| s.queued.load(Ordering::Relaxed))
            .sum()
    }

    /// Delivers `events` (revisions `from + 1 ..`, dense) and advances `head`.
    fn publish(&self, events: &[Event]) {
        let mut state = lock(&self.state);
        let Some(last) = events.last() else { return };
        state.subscribers.retain(|sub| {
            for event in events {
                if !event.kv.key.starts_with(&sub.prefix) {
                    continue;
                }
                let bytes = event_bytes(event);
                let queued = sub.queued.load(Ordering::Acquire);
                if queued > 0 && queued.saturating_add(bytes) > sub.max_bytes {
                    *lock(&sub.cut) = Some(Cut::Lagged);
                    return false;
                }
                sub.queued.fetch_add(bytes, Ordering::AcqRel);
                match sub.tx.try_send(event.clone()) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        *lock(&sub.cut) = Some(Cut::Lagged);
                        return false;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            !sub.tx.is_closed()
        });
        state.head = last.kv.mod_revision;
    }

    /// Cuts every subscriber off with `cut` and moves `head` to `head`.
    fn cut_all(&self, cut: Cut, head: i64) {
        let mut state = lock(&self.state);
        for sub in state.subscribers.drain(..) {
            *lock(&sub.cut) = Some(cut);
        }
        state.head = head;
    }

    fn head(&self) -> i64 {
        lock(&self.state).head
    }

    /// With nobody listening there is nothing to read: jump `head` to `revision`.
    /// Returns false if someone subscribed meanwhile.
    fn skip_idle(&self, revision: i64) -> bool {
        let mut state = lock(&self.state);
        if !state.subscribers.is_empty() {
            return false;
        }
        state.head = state.head.max(revision);
        true
    }
}

/// What the poller does next.
enum Next {
    /// Caught up: wait for a wake-up or the interval.
    Idle,
    /// A full batch was read: read again at once.
    More,
    /// A hole that is not compaction: look again shortly.
    Hole,
}

async fn run(hub: Arc<Hub>, pool: AnyPool, sql: Arc<Sql>, interval: Duration) {
    let mut hole_since = None;
    while !hub.closed.load(Ordering::SeqCst) {
        let next = match poll_once(&hub, &pool, &sql, &mut hole_since).await {
            Ok(next) => next,
            Err(e) => {
                // The database is unreachable or restarting: keep `head`, try again later.
                tracing::warn!(error = %e, table = %sql.log, "watch poll failed");
                Next::Idle
            }
        };
        match next {
            Next::More => {}
            Next::Hole => tokio::time::sleep(GAP_RETRY).await,
            Next::Idle => {
                tokio::select! {
                    () = hub.wake.notified() => {}
                    () = tokio::time::sleep(interval) => {}
                }
            }
        }
    }
    lock(&hub.state).subscribers.clear();
}

async fn poll_once(
    hub: &Hub,
    pool: &AnyPool,
    sql: &Sql,
    hole_since: &mut Option<Instant>,
) -> Result<Next> {
    let head = hub.head();
    if lock(&hub.state).subscribers.is_empty() {
        let m = meta(pool, sql).await?;
        if hub.skip_idle(m.revision) {
            return Ok(Next::Idle);
        }
    }
    let rows = sqlx::query(&sql.poll)
        .bind(head)
        .bind(POLL_BATCH)
        .fetch_all(pool)
        .await?;
    let full = rows.len() == usize::try_from(POLL_BATCH).unwrap_or(usize::MAX);
    let mut events = Vec::with_capacity(rows.len());
    let mut expect = head + 1;
    let mut hole = None;
    for row in &rows {
        let row = LogRow::from_any(row)?;
        if row.revision != expect {
            hole = Some(row.revision);
            break;
        }
        expect += 1;
        events.push(row.into_event());
    }
    hub.publish(&events);
    let Some(found) = hole else {
        *hole_since = None;
        return Ok(if full { Next::More } else { Next::Idle });
    };
    // Revisions expect..found are missing.
    let m = meta(pool, sql).await?;
    if m.compacted >= found - 1 {
        hub.cut_all(
            Cut::Compacted {
                requested: expect - 1,
                compacted: m.compacted,
            },
            found - 1,
        );
        *hole_since = None;
        return Ok(Next::More);
    }
    let since = *hole_since.get_or_insert_with(Instant::now);
    if since.elapsed() > GAP_TIMEOUT {
        tracing::error!(
            missing = expect,
            next = found,
            table = %sql.log,
            "revisions missing from the log for too long; cutting watchers off"
        );
        hub.cut_all(
            Cut::Compacted {
                requested: expect - 1,
                compacted: found - 1,
            },
            found - 1,
        );
        *hole_since = None;
        return Ok(Next::More);
    }
    Ok(Next::Hole)
}

/// What `Hub::subscribe` hands a new watcher.
struct Subscription {
    /// The hub's head when the watcher registered: the catch-up ends here.
    head: i64,
    rx: mpsc::Receiver<Event>,
    cut: CutSlot,
    queued: Arc<AtomicUsize>,
}

/// One watcher: catch-up from the table, then the hub's channel.
struct Watcher {
    pool: AnyPool,
    sql: Arc<Sql>,
    catch_up_sql: String,
    range_binds: Vec<String>,
    /// Events must be newer than this.
    after: i64,
    /// Last revision the catch-up has covered.
    cursor: i64,
    /// Where the catch-up ends and the channel takes over.
    upto: i64,
    pending: VecDeque<Event>,
    rx: mpsc::Receiver<Event>,
    cut: CutSlot,
    /// Shared with the hub: bytes in `rx` not yet taken.
    queued: Arc<AtomicUsize>,
    done: bool,
}

pub(crate) async fn watch(
    inner: &Inner,
    prefix: &str,
    after: i64,
) -> Result<BoxStream<'static, Result<Event>>> {
    let m = meta(&inner.pool, &inner.sql).await?;
    if after < m.compacted {
        return Err(Error::Compacted {
            requested: after,
            compacted: m.compacted,
        });
    }
    let Subscription {
        head: upto,
        rx,
        cut,
        queued,
    } = inner.hub.subscribe(
        prefix,
        inner.config.watch_buffer,
        inner.config.watch_buffer_bytes,
    );
    let (range, range_binds) = Sql::key_range(prefix, None, "name");
    let watcher = Watcher {
        pool: inner.pool.clone(),
        sql: inner.sql.clone(),
        catch_up_sql: inner.sql.range_rows(&range),
        range_binds,
        after,
        cursor: after,
        upto,
        pending: VecDeque::new(),
        rx,
        cut,
        queued,
        done: false,
    };
    Ok(futures::stream::unfold(watcher, |mut w| async move {
        let item = w.next_item().await?;
        Some((item, w))
    })
    .boxed())
}

impl Watcher {
    async fn next_item(&mut self) -> Option<Result<Event>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.cursor < self.upto {
                if let Err(e) = self.catch_up().await {
                    self.done = true;
                    return Some(Err(e));
                }
                continue;
            }
            let received = self.rx.recv().await;
            if let Some(event) = &received {
                self.queued.fetch_sub(event_bytes(event), Ordering::AcqRel);
            }
            match received {
                Some(event) if event.kv.mod_revision > self.after => return Some(Ok(event)),
                Some(_) => {}
                None => {
                    self.done = true;
                    let cut = lock(&self.cut).take();
                    return cut.map(|c| Err(c.into()));
                }
            }
        }
    }

    /// Reads the next page of `(cursor, upto]`, retrying while the database is unreachable.
    async fn catch_up(&mut self) -> Result<()> {
        let mut attempt = 0_u32;
        loop {
            match self.catch_up_page().await {
                Err(Error::Database(e)) if attempt < 10 => {
                    tracing::warn!(error = %e, "watch catch-up failed, retrying");
                    attempt += 1;
                    let backoff = Duration::from_millis(100 * 2_u64.pow(attempt.min(4)));
                    tokio::time::sleep(backoff).await;
                }
                other => return other,
            }
        }
    }

    async fn catch_up_page(&mut self) -> Result<()> {
        let mut query = sqlx::query(&self.catch_up_sql);
        for bind in &self.range_binds {
            query = query.bind(bind.as_str());
        }
        let rows = query
            .bind(self.cursor)
            .bind(self.upto)
            .bind(CATCH_UP_BATCH)
            .fetch_all(&self.pool)
            .await?;
        // Compaction records its revision before deleting: if it is still <= cursor now, no row
        // we just needed was gone when we read.
        let m = meta(&self.pool, &self.sql).await?;
        if m.compacted > self.cursor {
            return Err(Error::Compacted {
                requested: self.cursor,
                compacted: m.compacted,
            });
        }
        let full = rows.len() == usize::try_from(CATCH_UP_BATCH).unwrap_or(usize::MAX);
        for row in &rows {
            self.pending.push_back(LogRow::from_any(row)?.into_event());
        }
        self.cursor = match self.pending.back() {
            Some(last) if full => last.kv.mod_revision,
            _ => self.upto,
        };
        Ok(())
    }
}
