//! List (selectors, limit/continue, resourceVersion semantics, tables) and watch (chunked
//! `{type, object}` events, bookmarks, timeouts, 410 Expired in-stream).

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use cellfed_store::{EventKind, ListOptions};
use futures::StreamExt;
use http::{HeaderValue, header};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::registry::Resource;
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::AppState;
use crate::table::{IncludeObject, TableSpec};

/// The list/watch query parameters.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub watch: bool,
    pub allow_bookmarks: bool,
    pub timeout: Option<Duration>,
    pub send_initial_events: bool,
}

impl ListQuery {
    /// Parses the query of a list/watch request against the resource's field set.
    pub fn parse(res: &Resource, q: &HashMap<String, String>) -> ApiResult<Self> {
        let labels = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let extra = Vec::new();
        let fields = FieldSelector::parse(
            q.get("fieldSelector").map_or("", String::as_str),
            &res.kind,
            &extra,
        )
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let truthy = |k: &str| q.get(k).is_some_and(|v| v == "true" || v == "1");
        let limit = match q.get("limit").filter(|s| !s.is_empty()) {
            Some(l) => match l.parse::<i64>() {
                Ok(n) if n > 0 => Some(n as usize),
                Ok(_) => None,
                Err(_) => return Err(ApiError::bad_request(format!("invalid limit {l:?}"))),
            },
            None => None,
        };
        let timeout = match q.get("timeoutSeconds").filter(|s| !s.is_empty()) {
            Some(t) => Some(Duration::from_secs(t.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("invalid timeoutSeconds {t:?}"))
            })?)),
            None => None,
        };
        Ok(Self {
            labels,
            fields,
            limit,
            continue_token: q.get("continue").filter(|s| !s.is_empty()).cloned(),
            resource_version: q.get("resourceVersion").filter(|s| !s.is_empty()).cloned(),
            resource_version_match: q
                .get("resourceVersionMatch")
                .filter(|s| !s.is_empty())
                .cloned(),
            watch: truthy("watch"),
            allow_bookmarks: truthy("allowWatchBookmarks"),
            timeout,
            send_initial_events: truthy("sendInitialEvents"),
        })
    }

    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

fn encode_continue(rev: i64, key: &str) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rev, "start": key}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(token: &str, prefix: &str) -> ApiResult<(i64, String)> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rev = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if !start.starts_with(prefix) {
        return Err(bad());
    }
    Ok((rev, start.to_string()))
}

/// A list result: items in the request's version and the list metadata.
pub struct Listed {
    pub items: Vec<Value>,
    pub revision: i64,
    pub continue_token: Option<String>,
}

/// Reads a page of the collection.
pub async fn list(
    state: &AppState,
    res: &Resource,
    ns: Option<&str>,
    q: &ListQuery,
) -> ApiResult<Listed> {
    let prefix = res.collection_prefix(ns);
    let mut revision = None;
    let mut start_after = None;
    if let Some(token) = &q.continue_token {
        if q.resource_version.as_deref().is_some_and(|rv| rv != "0") {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let (rev, key) = decode_continue(token, &prefix)?;
        revision = Some(rev);
        start_after = Some(key);
    } else if let Some(rv) = q.resource_version.as_deref().filter(|rv| *rv != "0") {
        let n: i64 = rv
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))?;
        let exact = match q.resource_version_match.as_deref() {
            Some("Exact") => true,
            Some("NotOlderThan") => false,
            None => q.limit.is_some(),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "resourceVersionMatch: Unsupported value: {other:?}"
                )));
            }
        };
        let current = state.store.current_revision().await?;
        if n > current {
            return Err(cellfed_store::Error::FutureRevision {
                requested: n,
                current,
            }
            .into());
        }
        if exact {
            revision = Some(n);
        }
    }
    let mut items = Vec::new();
    let mut read_at = None;
    let mut more = false;
    let mut last_key = None;
    'pages: loop {
        let page = state
            .store
            .list(&prefix, ListOptions { revision: revision.or(read_at), limit: q.limit.map(|l| l.max(50)), start_after: start_after.clone() })
            .await
            .map_err(|e| match e {
                cellfed_store::Error::Compacted { .. } if q.continue_token.is_some() => ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."),
                other => other.into(),
            })?;
        read_at = Some(page.revision);
        let n = page.items.len();
        for (i, kv) in page.items.into_iter().enumerate() {
            // A namespaced resource listed across namespaces must not pick up a deeper key.
            start_after = Some(kv.key.clone());
            last_key = Some(kv.key.clone());
            let obj = state.decode(&kv)?;
            if q.matches(&obj) {
                items.push(obj);
                if q.limit.is_some_and(|l| items.len() >= l) {
                    more = i + 1 < n || page.remaining > 0;
                    break 'pages;
                }
            }
        }
        if page.remaining == 0 || n == 0 {
            break;
        }
    }
    let revision = read_at.unwrap_or(0);
    let items = state.convert(res, items).await?;
    Ok(Listed {
        items,
        revision,
        continue_token: if more {
            last_key.map(|k| encode_continue(revision, &k))
        } else {
            None
        },
    })
}

/// The table columns for this resource.
pub fn table_spec(res: &Resource) -> TableSpec<'_> {
    match &res.crd {
        Some(c) => TableSpec::Custom(&c.printer_columns),
        None => TableSpec::Builtin {
            group: &res.group,
            kind: &res.kind,
        },
    }
}

pub fn list_object(res: &Resource, l: Listed) -> Value {
    let mut meta = json!({"resourceVersion": l.revision.to_string()});
    if let Some(c) = l.continue_token {
        meta["continue"] = json!(c);
    }
    json!({"kind": res.list_kind(), "apiVersion": res.api_version(), "metadata": meta, "items": l.items})
}

pub fn table_object(res: &Resource, l: Listed, include: IncludeObject) -> Value {
    let mut meta = json!({"resourceVersion": l.revision.to_string()});
    if let Some(c) = l.continue_token {
        meta["continue"] = json!(c);
    }
    crate::table::to_table(
        &table_spec(res),
        &l.items,
        meta,
        include,
        &crate::meta::now(),
    )
}

/// How a watch renders objects.
#[derive(Debug, Clone, Copy)]
pub enum Render {
    Object,
    Table(IncludeObject),
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

/// Streams a watch.
pub async fn watch(
    state: AppState,
    res: Resource,
    ns: Option<String>,
    q: ListQuery,
    render: Render,
) -> ApiResult<Response> {
    if q.send_initial_events {
        if q.resource_version_match.as_deref() != Some("NotOlderThan") {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                vec![crate::error::Cause::forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )],
            ));
        }
        if !q.allow_bookmarks {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                vec![crate::error::Cause::forbidden(
                    "allowWatchBookmarks",
                    "sendInitialEvents requires setting allowWatchBookmarks to true",
                )],
            ));
        }
    }
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
    let (tx, rx) = mpsc::channel::<Result<String, std::io::Error>>(64);
    let render_obj = {
        let res = res.clone();
        move |obj: Value| -> Value {
            match render {
                Render::Object => obj,
                Render::Table(include) => {
                    let rv = obj
                        .pointer("/metadata/resourceVersion")
                        .cloned()
                        .unwrap_or(Value::Null);
                    crate::table::to_table(
                        &table_spec(&res),
                        &[obj],
                        json!({"resourceVersion": rv}),
                        include,
                        &crate::meta::now(),
                    )
                }
            }
        }
    };
    let stream = state.store.watch(&prefix, start).await;
    tokio::spawn(async move {
        let send = |line: String| {
            let tx = tx.clone();
            async move { tx.send(Ok(line)).await.is_ok() }
        };
        for obj in initial_items {
            if !send(event_line("ADDED", render_obj(obj))).await {
                return;
            }
        }
        if q.send_initial_events && !send(event_line("BOOKMARK", bookmark(&res, start, true))).await
        {
            return;
        }
        let mut events = match stream {
            Ok(s) => s,
            Err(e) => {
                let err: ApiError = e.into();
                let _ = send(event_line("ERROR", err.status())).await;
                return;
            }
        };
        let deadline = tokio::time::sleep(q.timeout.unwrap_or(Duration::from_secs(1800)));
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        ticker.tick().await;
        let mut last = start;
        let mut last_sent_bookmark = start;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = ticker.tick() => {
                    if q.allow_bookmarks && last != last_sent_bookmark {
                        last_sent_bookmark = last;
                        if !send(event_line("BOOKMARK", bookmark(&res, last, false))).await { return; }
                    }
                }
                ev = events.next() => {
                    let Some(ev) = ev else { return };
                    let ev = match ev {
                        Ok(ev) => ev,
                        Err(e) => {
                            let err = match e {
                                cellfed_store::Error::WatcherLagged => ApiError::expired("watch fell behind; please re-list"),
                                other => other.into(),
                            };
                            let _ = send(event_line("ERROR", err.status())).await;
                            return;
                        }
                    };
                    last = ev.kv.mod_revision;
                    let Some(line) = translate(&state, &res, &q, &ev, &render_obj).await else { continue };
                    if !send(line).await { return; }
                }
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

/// One store event as a watch line, after selector filtering and conversion; None to skip.
async fn translate(
    state: &AppState,
    res: &Resource,
    q: &ListQuery,
    ev: &cellfed_store::Event,
    render: &impl Fn(Value) -> Value,
) -> Option<String> {
    // Keys under a namespaced collection prefix that belong to a longer path are skipped.
    let obj = state.decode(&ev.kv).ok()?;
    let prev = match &ev.prev {
        Some(p) => state.decode(p).ok(),
        None => None,
    };
    let now_matches = q.matches(&obj);
    let prev_matches = prev.as_ref().is_some_and(|p| q.matches(p));
    let kind = match ev.kind {
        EventKind::Created => now_matches.then_some("ADDED")?,
        EventKind::Deleted => (now_matches || prev_matches).then_some("DELETED")?,
        EventKind::Updated => match (prev_matches, now_matches) {
            (true, true) => "MODIFIED",
            (false, true) => "ADDED",
            (true, false) => "DELETED",
            (false, false) => return None,
        },
    };
    let obj = state.convert(res, vec![obj]).await.ok()?.pop()?;
    Some(event_line(kind, render(obj)))
}
