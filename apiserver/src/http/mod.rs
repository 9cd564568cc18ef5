//! The HTTP layer: the router and its middleware (authentication and authorization from
//! [`crate::auth`], the request deadline, request metrics), resource paths and content
//! negotiation ([`rest`]: JSON, YAML, [`protobuf`], [`table`]s), discovery, OpenAPI and the watch
//! stream. It turns requests into calls of the registry ([`crate::registry`]) and answers with
//! what the registry returns. Kinds' rules live in the registry (routing names one kind: the
//! Namespace `finalize` subresource).

pub mod deadline;
pub mod discovery;
pub mod metrics;
pub mod openapi;
pub mod protobuf;
pub mod rest;
pub mod table;
pub mod watch;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, header};
use serde_json::Value;

use crate::state::AppState;
use crate::{auth, error, registry};

/// The HTTP API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/version", get(|| async { json(discovery::version()) }))
        .route("/healthz", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics::serve))
        .route("/api", get(api))
        .route("/apis", get(apis))
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(openapi_v3_index))
        .route("/openapi/v3/{*path}", get(openapi_v3_doc))
        .fallback(rest::dispatch)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            deadline::bounded,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .with_state(state)
}

fn json(v: impl std::fmt::Display) -> Response {
    let mut r = v.to_string().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn health() -> &'static str {
    "ok"
}

/// `GET /readyz` (public): `ok`, or `readyz check failed` with 500; `?verbose` lists the checks by
/// name. Why a check failed goes to the log only: the store's error text can name hosts, users
/// and tables.
async fn ready(
    State(state): State<AppState>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let store = state.store.current_revision().await;
    if let Err(e) = &store {
        tracing::warn!(check = "store", error = %e, "readyz check failed");
    }
    let checks = [cellfed_pki::health::Check {
        name: "store",
        ok: store.is_ok(),
    }];
    let report = cellfed_pki::health::report(
        "readyz",
        &checks,
        cellfed_pki::health::verbose(query.as_deref()),
    );
    let code =
        http::StatusCode::from_u16(report.code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    (code, report.body).into_response()
}

async fn api(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match discovery::aggregated_version(&headers) {
        Some(v) => discovery::aggregated(&state.registry, true, v),
        None => discovery::api_versions(),
    }
}

async fn apis(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match discovery::aggregated_version(&headers) {
        Some(v) => discovery::aggregated(&state.registry, false, v),
        None => discovery::api_group_list(&state.registry),
    }
}

/// The served resources as the openapi module sees them.
fn schemas<'a>(
    all: impl IntoIterator<Item = &'a std::sync::Arc<registry::Resource>>,
) -> Vec<openapi::ResourceSchema> {
    all.into_iter()
        .map(|r| openapi::ResourceSchema {
            group: r.group.clone(),
            version: r.version.clone(),
            kind: r.kind.clone(),
            list_kind: r.list_kind(),
            plural: r.plural.clone(),
            namespaced: r.namespaced,
            verbs: r.verbs.iter().map(|s| s.to_string()).collect(),
            subresources: r.subresources.clone(),
            schema: r.crd.as_ref().and_then(|c| c.schema.clone()),
        })
        .collect()
}

fn hash_of(v: &Value) -> String {
    // FNV-1a over the document: stable, cheap, good enough for an ETag.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in v.to_string().as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

// The OpenAPI documents are built once per set of served resources (`Registry::memo`).

async fn openapi_v2(State(state): State<AppState>) -> Response {
    json(
        state
            .registry
            .memo("openapi/v2", |all| openapi::v2_document(&schemas(all))),
    )
}

fn v3_for(state: &AppState, group: &str, version: &str) -> std::sync::Arc<Value> {
    state
        .registry
        .memo(&format!("openapi/v3/{group}/{version}"), |all| {
            let served = all
                .iter()
                .filter(|r| r.group == group && r.version == version);
            openapi::v3_document(group, version, &schemas(served))
        })
}

async fn openapi_v3_index(State(state): State<AppState>) -> Response {
    let mut gvs = Vec::new();
    for (g, vs) in state.registry.groups() {
        for v in vs {
            gvs.push((g.clone(), v));
        }
    }
    let hash = |g: &str, v: &str| {
        let h = state
            .registry
            .memo(&format!("openapi/v3-hash/{g}/{v}"), |_| {
                Value::String(hash_of(&v3_for(&state, g, v)))
            });
        h.as_str().unwrap_or_default().to_string()
    };
    json(openapi::v3_index(&gvs, &hash))
}

async fn openapi_v3_doc(
    State(state): State<AppState>,
    axum::extract::Path(path): axum::extract::Path<String>,
) -> Response {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (g, v) = match segs.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return error::ApiError::path_not_found().into_response(),
    };
    if !state.registry.serves_group_version(g, v) {
        return error::ApiError::path_not_found().into_response();
    }
    let doc = v3_for(&state, g, v);
    let mut r = json(doc);
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    r
}
