//! Request counters in Prometheus text format on `/metrics`, as kube-apiserver's
//! `apiserver_request_total{verb,resource,code}`: tests and operators count reads and writes
//! per resource (e.g. that a controller in sync writes nothing to a member).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;

use crate::state::AppState;

/// `(verb, resource, code)` → count.
#[derive(Default, Debug)]
pub struct RequestCounts(Mutex<BTreeMap<(String, String, u16), u64>>);

impl RequestCounts {
    fn add(&self, verb: String, resource: String, code: u16) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry((verb, resource, code)).or_default() += 1;
        }
    }

    /// The Prometheus exposition.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP apiserver_request_total Requests by verb, resource and HTTP code.\n# TYPE apiserver_request_total counter\n",
        );
        if let Ok(m) = self.0.lock() {
            for ((verb, resource, code), n) in m.iter() {
                out.push_str(&format!("apiserver_request_total{{verb=\"{verb}\",resource=\"{resource}\",code=\"{code}\"}} {n}\n"));
            }
        }
        out
    }
}

/// A counter with one label, in Prometheus text format.
#[derive(Debug)]
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    label: &'static str,
    values: Mutex<BTreeMap<String, u64>>,
}

impl CounterVec {
    /// An empty counter `name{label}`.
    pub fn new(name: &'static str, help: &'static str, label: &'static str) -> Self {
        Self {
            name,
            help,
            label,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds one for `value` of the label.
    pub fn inc(&self, value: &str) {
        if let Ok(mut m) = self.values.lock() {
            *m.entry(value.to_string()).or_default() += 1;
        }
    }

    /// The count for `value` of the label.
    pub fn get(&self, value: &str) -> u64 {
        self.values
            .lock()
            .map(|m| m.get(value).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// The Prometheus exposition.
    pub fn render(&self) -> String {
        let (name, label) = (self.name, self.label);
        let mut out = format!("# HELP {name} {}\n# TYPE {name} counter\n", self.help);
        if let Ok(m) = self.values.lock() {
            for (value, n) in m.iter() {
                out.push_str(&format!("{name}{{{label}=\"{value}\"}} {n}\n"));
            }
        }
        out
    }
}

/// `apiserver_storage_decode_errors_total{resource}`, as kube-apiserver names it.
pub fn decode_errors() -> Arc<CounterVec> {
    Arc::new(CounterVec::new(
        "apiserver_storage_decode_errors_total",
        "Stored objects that could not be decoded, by resource.",
        "resource",
    ))
}

/// `configmaps` or `deployments.apps` for a store key `/registry/<group>/<plural>/…`.
pub fn resource_of_key(key: &str) -> String {
    let mut parts = key.trim_start_matches("/registry/").split('/');
    match (parts.next(), parts.next()) {
        (Some("core"), Some(plural)) => plural.to_string(),
        (Some(group), Some(plural)) => format!("{plural}.{group}"),
        _ => key.to_string(),
    }
}

/// The `resource` label of requests for anything the server does not serve: a random path must
/// not create a new series (the label values stay bounded by the served resources).
pub const OTHER: &str = "other";

/// Subresources served by every resource that has them, besides a resource's own
/// `status`/`scale` (kube's names; the set is fixed, so labels stay bounded).
const KNOWN_SUBRESOURCES: &[&str] = &[
    "approval",
    "attach",
    "binding",
    "eviction",
    "exec",
    "finalize",
    "log",
    "portforward",
    "proxy",
    "token",
];

/// Kubernetes verb and resource of a request path (pure): `/api/v1/namespaces/x/configmaps/y`
/// with GET is (`GET`, `configmaps`); collections GET are `LIST`, `?watch` is `WATCH`.
/// `served(group, version, plural, subresource)` says whether the server serves it; what it does
/// not serve is counted as [`OTHER`].
pub fn classify(
    method: &Method,
    path: &str,
    query: Option<&str>,
    served: impl Fn(&str, &str, &str, Option<&str>) -> bool,
) -> Option<(String, String)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let rest = match rest {
        ["watch", tail @ ..] => tail,
        other => other,
    };
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let (plural, sub, named) = match rest {
        [r] => (*r, None, false),
        [r, _name] => (*r, None, true),
        [r, _name, sub] => (*r, Some(*sub), true),
        _ => return None,
    };
    let verb = match *method {
        Method::GET if crate::http::deadline::is_watch(path, query) => "WATCH",
        Method::GET if named => "GET",
        Method::GET => "LIST",
        Method::POST => "CREATE",
        Method::PUT => "UPDATE",
        Method::PATCH => "PATCH",
        Method::DELETE if named => "DELETE",
        Method::DELETE => "DELETECOLLECTION",
        _ => return None,
    };
    let resource = if !served(group, version, plural, sub) {
        OTHER.to_string()
    } else {
        match sub {
            None => plural.to_string(),
            Some(sub) => format!("{plural}/{sub}"),
        }
    };
    Some((verb.to_string(), resource))
}

/// Whether the registry serves `group/version/plural` and, if given, the subresource (its own
/// `status`/`scale` or one of [`KNOWN_SUBRESOURCES`]).
fn served_by(
    registry: &crate::registry::Registry,
) -> impl Fn(&str, &str, &str, Option<&str>) -> bool + '_ {
    move |group, version, plural, sub| {
        registry.find(group, version, plural).is_some_and(|r| {
            sub.is_none_or(|s| {
                r.subresources.iter().any(|x| x == s) || KNOWN_SUBRESOURCES.contains(&s)
            })
        })
    }
}

/// Middleware counting every resource request.
pub async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let class = classify(
        req.method(),
        req.uri().path(),
        req.uri().query(),
        served_by(&state.registry),
    );
    let resp = next.run(req).await;
    if let Some((verb, resource)) = class {
        state.requests.add(verb, resource, resp.status().as_u16());
    }
    resp
}

/// `GET /metrics`.
pub async fn serve(State(state): State<AppState>) -> String {
    let mut out = state.requests.render();
    out.push_str(&state.decode_errors.render());
    out.push_str(&state.watches.render());
    out.push_str(&format!(
        "# HELP apiserver_storage_watch_buffered_bytes Bytes of store events waiting in watches' store buffers.\n\
         # TYPE apiserver_storage_watch_buffered_bytes gauge\n\
         apiserver_storage_watch_buffered_bytes {}\n",
        state.store.watch_buffered_bytes()
    ));
    let writes = state.store.write_stats();
    out.push_str(&format!(
        "# HELP apiserver_storage_commits_total Store transactions committed (a group commit carries several writes).\n\
         # TYPE apiserver_storage_commits_total counter\n\
         apiserver_storage_commits_total {}\n\
         # HELP apiserver_storage_committed_writes_total Store writes acknowledged by those commits.\n\
         # TYPE apiserver_storage_committed_writes_total counter\n\
         apiserver_storage_committed_writes_total {}\n\
         # HELP apiserver_storage_writer_busy_seconds_total Time the store's single writer spent in transactions, commits included.\n\
         # TYPE apiserver_storage_writer_busy_seconds_total counter\n\
         apiserver_storage_writer_busy_seconds_total {:.6}\n",
        writes.commits,
        writes.committed_writes,
        writes.writing.as_secs_f64()
    ));
    out
}

/// Shared counters (cloned into the state).
pub fn new_counts() -> Arc<RequestCounts> {
    Arc::new(RequestCounts::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_kube() {
        let served = |g: &str, _v: &str, p: &str, sub: Option<&str>| {
            matches!(
                (g, p),
                ("", "configmaps" | "namespaces") | ("apps", "deployments")
            ) && sub.is_none_or(|s| s == "status")
        };
        let c = |m: Method, p: &str, q: Option<&str>| classify(&m, p, q, served);
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces/a/configmaps", None),
            Some(("LIST".into(), "configmaps".into()))
        );
        assert_eq!(
            c(
                Method::GET,
                "/apis/apps/v1/namespaces/a/deployments/web",
                None
            ),
            Some(("GET".into(), "deployments".into()))
        );
        assert_eq!(
            c(
                Method::GET,
                "/apis/apps/v1/watch/namespaces/a/deployments",
                None
            ),
            Some(("WATCH".into(), "deployments".into()))
        );
        assert_eq!(
            c(Method::GET, "/api/v1/watch/configmaps", None),
            Some(("WATCH".into(), "configmaps".into()))
        );
        assert_eq!(
            c(Method::GET, "/apis/apps/v1/deployments", Some("watch=true")),
            Some(("WATCH".into(), "deployments".into()))
        );
        assert_eq!(
            c(
                Method::PUT,
                "/apis/apps/v1/namespaces/a/deployments/web/status",
                None
            ),
            Some(("UPDATE".into(), "deployments/status".into()))
        );
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces", None),
            Some(("LIST".into(), "namespaces".into()))
        );
        assert_eq!(
            c(Method::DELETE, "/api/v1/namespaces/a", None),
            Some(("DELETE".into(), "namespaces".into()))
        );
        assert_eq!(c(Method::GET, "/readyz", None), None);
        // what is not served is "other", whatever the path says
        assert_eq!(
            c(Method::GET, "/apis/x/v1/a8f3e9", None),
            Some(("LIST".into(), OTHER.into()))
        );
        assert_eq!(
            c(
                Method::GET,
                "/api/v1/namespaces/a/configmaps/web/q1w2e3",
                None
            ),
            Some(("GET".into(), OTHER.into()))
        );
    }

    #[test]
    fn resource_label_of_store_keys() {
        assert_eq!(
            resource_of_key("/registry/core/configmaps/default/x"),
            "configmaps"
        );
        assert_eq!(
            resource_of_key("/registry/apps/deployments/shop/web"),
            "deployments.apps"
        );
        let c = CounterVec::new("x_total", "X.", "resource");
        c.inc("configmaps");
        c.inc("configmaps");
        assert_eq!(c.get("configmaps"), 2);
        assert!(c.render().contains("x_total{resource=\"configmaps\"} 2\n"));
    }
}
