//! List: selectors, limit/continue, resourceVersion semantics. Tables of a list are printed by
//! `http::table`; watch is in `http::watch`.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use cellfed_store::ListOptions;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::registry::Resource;
use crate::registry::selector::{FieldSelector, LabelSelector};
use crate::state::AppState;

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

    /// Whether the object passes the label and field selectors.
    pub fn matches(&self, obj: &Value) -> bool {
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
    /// Stored values that could not be decoded and were left out, one sentence each (sent to
    /// the client as `Warning` headers).
    pub skipped: Vec<String>,
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
    let mut skipped = Vec::new();
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
            // A value that cannot be decoded must not break the list: leave it out, say so.
            let obj = match state.decode(&kv) {
                Ok(obj) => obj,
                Err(e) => {
                    skipped.push(e.message);
                    continue;
                }
            };
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
        skipped,
    })
}

pub fn list_object(res: &Resource, l: Listed) -> Value {
    let mut meta = json!({"resourceVersion": l.revision.to_string()});
    if let Some(c) = l.continue_token {
        meta["continue"] = json!(c);
    }
    json!({"kind": res.list_kind(), "apiVersion": res.api_version(), "metadata": meta, "items": l.items})
}
