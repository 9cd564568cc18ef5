//! Watch: a chunked stream of `{type, object}` lines over the store's watch — initial ADDED
//! events, bookmarks, timeouts, selectors, conversion, and in-stream `ERROR` events.
//!
//! Memory is bounded by bytes. Every line waiting for a client is counted, per watch and over
//! all watches ([`Buffers`]); a line leaves the count when the connection takes it. Initial
//! events wait for room (their objects are already in memory as the list they came from).
//! A later event that does not fit — the client stopped reading — ends the watch the way
//! kube-apiserver ends an unresponsive watcher, plus a 410 `Expired` `ERROR` event so clients
//! re-list at once instead of resuming from a revision they are known to be behind on.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use cellfed_store::EventKind;
use futures::StreamExt;
use http::{HeaderValue, header};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use crate::error::{ApiError, ApiResult, qualified};
use crate::http::table::IncludeObject;
use crate::http::table::table_spec;
use crate::registry::Resource;
use crate::registry::list::{ListQuery, list};
use crate::state::AppState;

/// Default bytes one watch may have waiting for its client (`ServerConfig::watch_buffer_bytes`).
pub const DEFAULT_BUFFER_BYTES: usize = 16 * 1024 * 1024;
/// Default bytes all watches together may have waiting (`ServerConfig::watch_buffer_total_bytes`).
pub const DEFAULT_TOTAL_BYTES: usize = 256 * 1024 * 1024;

/// Byte accounting of what watches have waiting for their clients, shared by all watches.
#[derive(Debug)]
pub struct Buffers {
    per_watch: usize,
    total: usize,
    /// Every byte waiting, initial events included.
    used: AtomicUsize,
    /// Bytes of events after the initial ones: what `total` caps (initial events only wait for
    /// room in their own watch, so one watch's initial burst never ends another watch).
    live: AtomicUsize,
    peak: AtomicUsize,
    /// `resource` → watches ended because their client fell behind.
    terminated: Mutex<BTreeMap<String, u64>>,
}

impl Default for Buffers {
    fn default() -> Self {
        Self::new(DEFAULT_BUFFER_BYTES, DEFAULT_TOTAL_BYTES)
    }
}

impl Buffers {
    /// At most `per_watch` bytes waiting per watch and `total` over all of them; one line always
    /// fits into an empty buffer, so no object is too large to watch.
    pub fn new(per_watch: usize, total: usize) -> Self {
        Self {
            per_watch,
            total,
            used: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            terminated: Mutex::new(BTreeMap::new()),
        }
    }

    /// The per-watch limit.
    pub fn per_watch(&self) -> usize {
        self.per_watch
    }

    /// Bytes waiting for clients now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The most bytes ever waiting at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    /// Watches of `resource` (`configmaps`, `deployments.apps`) ended for falling behind.
    pub fn terminated(&self, resource: &str) -> u64 {
        self.terminated
            .lock()
            .map(|m| m.get(resource).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn count_terminated(&self, resource: &str) {
        if let Ok(mut m) = self.terminated.lock() {
            *m.entry(resource.to_string()).or_default() += 1;
        }
    }

    /// Counts `bytes` of a line; a live line only if the live bytes of all watches leave room.
    fn take(&self, bytes: usize, live: bool) -> bool {
        if live {
            let fits = self
                .live
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                    let fits = l == 0 || l.saturating_add(bytes) <= self.total;
                    fits.then_some(l.saturating_add(bytes))
                })
                .is_ok();
            if !fits {
                return false;
            }
        }
        let before = self.used.fetch_add(bytes, Ordering::AcqRel);
        self.peak
            .fetch_max(before.saturating_add(bytes), Ordering::AcqRel);
        true
    }

    /// The Prometheus exposition of these gauges and counters.
    pub fn render(&self) -> String {
        let mut out = format!(
            "# HELP apiserver_watch_buffered_bytes Bytes of watch events waiting for clients.\n\
             # TYPE apiserver_watch_buffered_bytes gauge\n\
             apiserver_watch_buffered_bytes {}\n\
             # HELP apiserver_watch_buffered_bytes_peak Most bytes of watch events ever waiting for clients at once.\n\
             # TYPE apiserver_watch_buffered_bytes_peak gauge\n\
             apiserver_watch_buffered_bytes_peak {}\n\
             # HELP apiserver_terminated_watchers_total Watches ended because their client fell behind, by resource.\n\
             # TYPE apiserver_terminated_watchers_total counter\n",
            self.used(),
            self.peak()
        );
        if let Ok(m) = self.terminated.lock() {
            for (resource, n) in m.iter() {
                out.push_str(&format!(
                    "apiserver_terminated_watchers_total{{resource=\"{resource}\"}} {n}\n"
                ));
            }
        }
        out
    }
}

/// What one queued line holds of the budgets; given back when the connection takes the line.
struct Charge {
    bytes: usize,
    /// Counted in `Buffers::live` too.
    live: bool,
    watch: Arc<AtomicUsize>,
    buffers: Arc<Buffers>,
    drained: Arc<Notify>,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.watch.fetch_sub(self.bytes, Ordering::AcqRel);
        self.buffers.used.fetch_sub(self.bytes, Ordering::AcqRel);
        if self.live {
            self.buffers.live.fetch_sub(self.bytes, Ordering::AcqRel);
        }
        self.drained.notify_one();
    }
}

/// A line with its charge.
struct Queued {
    line: Bytes,
    _charge: Charge,
}

/// Why a line was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// The client is gone.
    Closed,
    /// The client fell behind: the line does not fit.
    Full,
}

/// One watch's side of the queue to its connection.
struct Outbox {
    tx: mpsc::UnboundedSender<Queued>,
    /// Bytes of this watch waiting for the connection.
    queued: Arc<AtomicUsize>,
    drained: Arc<Notify>,
    buffers: Arc<Buffers>,
}

impl Outbox {
    fn new(buffers: Arc<Buffers>) -> (Self, mpsc::UnboundedReceiver<Queued>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let outbox = Self {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            drained: Arc::new(Notify::new()),
            buffers,
        };
        (outbox, rx)
    }

    /// Reserves `bytes` of this watch's share (`capped`: only if there is room).
    fn reserve(&self, bytes: usize, capped: bool) -> bool {
        let per_watch = self.buffers.per_watch;
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                let fits = !capped || q == 0 || q.saturating_add(bytes) <= per_watch;
                fits.then_some(q.saturating_add(bytes))
            })
            .is_ok()
    }

    fn send(&self, line: impl Into<Bytes>, live: bool) -> Result<(), Refused> {
        let line: Bytes = line.into();
        let charge = Charge {
            bytes: line.len(),
            live,
            watch: self.queued.clone(),
            buffers: self.buffers.clone(),
            drained: self.drained.clone(),
        };
        self.tx
            .send(Queued {
                line,
                _charge: charge,
            })
            .map_err(|_| Refused::Closed)
    }

    /// Queues `line` if it fits this watch's share and the total.
    fn try_push(&self, line: impl Into<Bytes>) -> Result<(), Refused> {
        let line: Bytes = line.into();
        let bytes = line.len();
        if !self.reserve(bytes, true) {
            return Err(Refused::Full);
        }
        if !self.buffers.take(bytes, true) {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        self.send(line, true)
    }

    /// Queues `line` once this watch's share has room (not capped by the total).
    async fn push_when_room(&self, line: impl Into<Bytes>) -> Result<(), Refused> {
        let line: Bytes = line.into();
        let bytes = line.len();
        loop {
            // A drain after a failed reserve leaves a permit in `drained`: no wake-up is lost.
            if self.reserve(bytes, true) {
                self.buffers.take(bytes, false);
                return self.send(line, false);
            }
            tokio::select! {
                () = self.drained.notified() => {}
                () = self.tx.closed() => return Err(Refused::Closed),
            }
        }
    }

    /// Queues a last, small line whatever the budgets say (the ERROR that ends a watch).
    fn push_last(&self, line: impl Into<Bytes>) {
        let line: Bytes = line.into();
        let bytes = line.len();
        self.reserve(bytes, false);
        self.buffers.take(bytes, false);
        let _ = self.send(line, false);
    }
}

/// How a watch renders objects.
#[derive(Debug, Clone, Copy)]
pub enum Render {
    Object,
    Table(IncludeObject),
    /// Objects in Kubernetes protobuf, each event a length-prefixed `WatchEvent` frame.
    Protobuf,
}

fn event_line(kind: &str, object: Value) -> String {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    s
}

fn bookmark(res: &Resource, rev: i64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": rev.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": meta})
}

fn check_initial_events(q: &ListQuery) -> ApiResult<()> {
    if !q.send_initial_events {
        return Ok(());
    }
    let forbidden = |field: &str, message: &str| {
        Err(ApiError::invalid(
            "meta.k8s.io",
            "ListOptions",
            "",
            vec![crate::error::Cause::forbidden(field, message)],
        ))
    };
    if q.resource_version_match.as_deref() != Some("NotOlderThan") {
        return forbidden(
            "resourceVersionMatch",
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        );
    }
    if !q.allow_bookmarks {
        return forbidden(
            "allowWatchBookmarks",
            "sendInitialEvents requires setting allowWatchBookmarks to true",
        );
    }
    Ok(())
}

/// Streams a watch.
pub async fn watch(
    state: AppState,
    res: Resource,
    ns: Option<String>,
    q: ListQuery,
    render: Render,
) -> ApiResult<Response> {
    check_initial_events(&q)?;
    let prefix = res.collection_prefix(ns.as_deref());
    let initial = q.send_initial_events || q.resource_version.as_deref().is_none_or(|rv| rv == "0");
    let mut initial_items = Vec::new();
    let start = if initial {
        let mut lq = q.clone();
        lq.limit = None;
        lq.continue_token = None;
        lq.resource_version = None;
        let l = list(&state, &res, ns.as_deref(), &lq).await?;
        initial_items = l.items;
        l.revision
    } else {
        let rv = q.resource_version.clone().unwrap_or_default();
        rv.parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))?
    };
    let (outbox, rx) = Outbox::new(state.watches.clone());
    let stream = state.store.watch(&prefix, start).await;
    tokio::spawn(async move {
        let render = Renderer { res: &res, render };
        for obj in initial_items {
            if outbox
                .push_when_room(render.line("ADDED", render.object(obj)))
                .await
                .is_err()
            {
                return;
            }
        }
        if q.send_initial_events
            && outbox
                .push_when_room(render.line("BOOKMARK", bookmark(&res, start, true)))
                .await
                .is_err()
        {
            return;
        }
        let events = match stream {
            Ok(s) => s,
            Err(e) => {
                outbox.push_last(render.error(&e.into()));
                return;
            }
        };
        follow(&state, &res, &q, &render, &outbox, events, start).await;
    });
    let content_type = match render {
        Render::Protobuf => "application/vnd.kubernetes.protobuf;stream=watch",
        _ => "application/json",
    };
    let body = Body::from_stream(
        tokio_stream::wrappers::UnboundedReceiverStream::new(rx)
            .map(|queued| Ok::<_, std::convert::Infallible>(queued.line)),
    );
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

/// Renders objects as the request asked (object or one-row Table).
struct Renderer<'a> {
    res: &'a Resource,
    render: Render,
}

impl Renderer<'_> {
    fn object(&self, obj: Value) -> Value {
        match self.render {
            Render::Object | Render::Protobuf => obj,
            Render::Table(include) => {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null);
                crate::http::table::to_table(
                    &table_spec(self.res),
                    &[obj],
                    json!({"resourceVersion": rv}),
                    include,
                    &crate::registry::meta::now(),
                )
            }
        }
    }

    /// One event as the stream carries it: a JSON line, or a protobuf frame.
    fn line(&self, kind: &str, object: Value) -> Bytes {
        match self.render {
            Render::Protobuf => crate::http::protobuf::watch_frame(kind, &object).into(),
            _ => event_line(kind, object).into(),
        }
    }

    /// The ERROR event that ends a watch.
    fn error(&self, err: &ApiError) -> Bytes {
        self.line("ERROR", err.status())
    }
}

/// Forwards store events after `start` until the client leaves, the timeout passes, or the
/// watch must end with an ERROR (history compacted, client behind, an event that cannot be
/// delivered).
async fn follow(
    state: &AppState,
    res: &Resource,
    q: &ListQuery,
    render: &Renderer<'_>,
    outbox: &Outbox,
    mut events: futures::stream::BoxStream<'static, cellfed_store::Result<cellfed_store::Event>>,
    start: i64,
) {
    let deadline = tokio::time::sleep(q.timeout.unwrap_or(Duration::from_secs(1800)));
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    ticker.tick().await;
    let mut last = start;
    let mut last_sent_bookmark = start;
    let behind = |outbox: &Outbox| {
        let resource = qualified(&res.group, &res.plural);
        state.watches.count_terminated(&resource);
        tracing::info!(
            resource,
            queued = outbox.queued.load(Ordering::Acquire),
            limit = state.watches.per_watch,
            "ending a watch whose client fell behind"
        );
        outbox.push_last(render.error(&ApiError::expired(format!(
            "too old resource version: the client fell behind the watch of {} (more than {} bytes waiting); re-list",
            qualified(&res.group, &res.plural),
            state.watches.per_watch
        ))));
    };
    loop {
        let line = tokio::select! {
            _ = &mut deadline => return,
            () = outbox.tx.closed() => return,
            _ = ticker.tick() => {
                if !q.allow_bookmarks || last == last_sent_bookmark {
                    continue;
                }
                last_sent_bookmark = last;
                render.line("BOOKMARK", bookmark(res, last, false))
            }
            ev = events.next() => {
                let Some(ev) = ev else { return };
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(cellfed_store::Error::WatcherLagged) => {
                        behind(outbox);
                        return;
                    }
                    Err(e) => {
                        outbox.push_last(render.error(&e.into()));
                        return;
                    }
                };
                last = ev.kv.mod_revision;
                match translate(state, res, q, &ev, render).await {
                    Ok(Some(line)) => line,
                    Ok(None) => continue,
                    // Skipping it would leave the client's cache wrong for good: end the
                    // watch so the client re-lists (the list leaves undecodable values out).
                    Err(e) => {
                        tracing::warn!(key = %ev.kv.key, revision = ev.kv.mod_revision, error = %e, "ending a watch at an event that cannot be delivered");
                        outbox.push_last(render.error(&e));
                        return;
                    }
                }
            }
        };
        match outbox.try_push(line) {
            Ok(()) => {}
            Err(Refused::Closed) => return,
            Err(Refused::Full) => {
                behind(outbox);
                return;
            }
        }
    }
}

/// One store event as a watch line, after selector filtering and conversion; None when the
/// client is not interested; an error when the event exists for the client but cannot be
/// delivered (a value that cannot be decoded, a conversion that fails).
async fn translate(
    state: &AppState,
    res: &Resource,
    q: &ListQuery,
    ev: &cellfed_store::Event,
    render: &Renderer<'_>,
) -> ApiResult<Option<Bytes>> {
    let obj = state.decode(&ev.kv)?;
    let prev = match &ev.prev {
        Some(p) => Some(state.decode(p)?),
        None => None,
    };
    let now_matches = q.matches(&obj);
    let prev_matches = prev.as_ref().is_some_and(|p| q.matches(p));
    let kind = match ev.kind {
        EventKind::Created if now_matches => "ADDED",
        EventKind::Deleted if now_matches || prev_matches => "DELETED",
        EventKind::Updated => match (prev_matches, now_matches) {
            (true, true) => "MODIFIED",
            (false, true) => "ADDED",
            (true, false) => "DELETED",
            (false, false) => return Ok(None),
        },
        EventKind::Created | EventKind::Deleted => return Ok(None),
    };
    let obj = state
        .convert(res, vec![obj])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("conversion returned no object"))?;
    Ok(Some(render.line(kind, render.object(obj))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn watches_hold_at_most_their_share_and_get_it_back_when_lines_are_taken() {
        let buffers = Arc::new(Buffers::new(100, 150));
        let (a, mut rx_a) = Outbox::new(buffers.clone());
        let (b, _rx_b) = Outbox::new(buffers.clone());
        let (c, _rx_c) = Outbox::new(buffers.clone());
        let line = |n: usize| "x".repeat(n);
        assert_eq!(a.try_push(line(60)), Ok(()));
        assert_eq!(a.try_push(line(60)), Err(Refused::Full), "a's share");
        assert_eq!(b.try_push(line(60)), Ok(()));
        assert_eq!(b.try_push(line(40)), Err(Refused::Full), "the total");
        // Initial events wait for their own watch only; the total does not refuse them.
        c.push_when_room(line(90)).await.unwrap();
        assert_eq!(buffers.used(), 210);
        // The connection takes a's line: a's share and the total are given back.
        drop(rx_a.recv().await);
        assert_eq!(buffers.used(), 150);
        assert_eq!(b.try_push(line(40)), Ok(()));
        assert_eq!(buffers.peak(), 210);
        // A full watch's initial event waits until its connection takes a line.
        a.push_when_room(line(100)).await.unwrap();
        let waiting = tokio::spawn(async move {
            a.push_when_room(line(10)).await.unwrap();
            a
        });
        drop(rx_a.recv().await);
        let a = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.queued.load(Ordering::Acquire), 10);
        // One line larger than a whole share still fits into an empty buffer.
        let (d, _rx_d) = Outbox::new(Arc::new(Buffers::new(100, 150)));
        assert_eq!(d.try_push(line(500)), Ok(()));
    }
}
