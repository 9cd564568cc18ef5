//! kube-apiserver's request deadline: a request that is not long-running ends after
//! `--request-timeout` (default one minute) or the shorter `?timeout=` it asks for, answering
//! 504 `Timeout` as kube does ("the request may still complete"; clients such as kubectl and
//! client-go retry or report it). Without it a request waiting on a database that went away
//! hangs until the client gives up, and holds its connection and task meanwhile.
//!
//! Watches are long-running: their `timeoutSeconds` ends them instead.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// kube-apiserver's default `--request-timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether a request is a watch (pure): a `watch=true|1` parameter or the legacy
/// `/api/v1/watch/…`, `/apis/<group>/<version>/watch/…` paths.
pub fn is_watch(path: &str, query: Option<&str>) -> bool {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let watch_path = matches!(
        segments.as_slice(),
        ["api", _, "watch", ..] | ["apis", _, _, "watch", ..]
    );
    watch_path
        || query.is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
}

/// The deadline of a request (pure): None for a watch, else the server's limit or the request's
/// own shorter, valid `timeout` (a Go duration, as client-go sends `?timeout=32s`).
pub fn deadline(path: &str, query: Option<&str>, limit: Duration) -> Option<Duration> {
    if is_watch(path, query) {
        return None;
    }
    let asked = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "timeout")
        .and_then(|(_, v)| {
            cellfed_api::kubefed::GoDuration(v.to_string())
                .to_std()
                .ok()
        })
        .filter(|d| !d.is_zero());
    Some(asked.map_or(limit, |d| d.min(limit)))
}

/// Middleware ending a request at its deadline with kube's 504 Timeout Status.
pub async fn bounded(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(limit) = deadline(req.uri().path(), req.uri().query(), state.request_timeout) else {
        return next.run(req).await;
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            let mut e = ApiError::new(
                504,
                "Timeout",
                "Timeout: request did not complete within requested timeout - context deadline exceeded",
            );
            e.details = Some(serde_json::json!({"retryAfterSeconds": 0}));
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn requests_get_the_shorter_of_the_limit_and_their_own_timeout() {
        let d = |p: &str, q: Option<&str>| deadline(p, q, MINUTE);
        assert_eq!(d("/api/v1/namespaces/a/configmaps", None), Some(MINUTE));
        assert_eq!(
            d("/api/v1/namespaces/a/configmaps", Some("timeout=3s")),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            d("/apis/apps/v1/deployments", Some("limit=5&timeout=1m30s")),
            Some(MINUTE)
        );
        // garbage or zero: the server's limit
        assert_eq!(d("/api/v1/pods", Some("timeout=soon")), Some(MINUTE));
        assert_eq!(d("/api/v1/pods", Some("timeout=0s")), Some(MINUTE));
    }

    #[test]
    fn watches_are_long_running() {
        let d = |p: &str, q: Option<&str>| deadline(p, q, MINUTE);
        assert_eq!(d("/api/v1/pods", Some("watch=true&timeout=3s")), None);
        assert_eq!(d("/api/v1/pods", Some("watch=1")), None);
        assert_eq!(d("/api/v1/watch/namespaces/a/pods", None), None);
        assert_eq!(d("/apis/apps/v1/watch/deployments", None), None);
        assert_eq!(d("/api/v1/pods", Some("watch=false")), Some(MINUTE));
    }
}
