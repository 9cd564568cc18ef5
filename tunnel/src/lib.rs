//! The tunnel to member clusters that cannot be dialled: each member runs an agent that dials
//! *out* to the federation plane's tunnel server over TLS and keeps one connection open; the
//! server offers the controller an HTTP CONNECT proxy (KubeFed's `spec.proxyURL`) and carries
//! each CONNECT as one HTTP/2 stream over the cluster's agent connection. The member's TLS runs
//! end to end through it: the tunnel never sees member credentials or plaintext API traffic.
//!
//! Modules: [`protocol`] (handshake, headers, parsing), [`auth`] (agent and proxy tokens),
//! [`server`] (agent listener, lifecycle), `proxy` (the CONNECT side), `registry` (agents by
//! cluster), [`agent`] (dial, backoff, streams), [`metrics`], [`tls`].
//!
//! This crate must never interpret the proxied bytes, never let an agent serve a cluster its
//! token does not name, and never accept a CONNECT without the controller's credentials.

pub mod agent;
pub mod auth;
pub mod metrics;
pub mod protocol;
mod proxy;
mod registry;
pub mod server;
mod splice;
pub mod tls;

pub use agent::{Agent, AgentConfig, AgentError, AgentToken, Backoff};
pub use auth::{AgentTokenSource, Authenticator, TokenEntry};
pub use server::{Handle, Limits, ServerConfig, ServerError, TunnelServer};

/// Serves `GET /metrics` (and `/healthz`) of `render` on `addr` until `shutdown` resolves; for
/// the agent, whose only other socket is the one it dials.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    render: impl Fn() -> String + Clone + Send + Sync + 'static,
    shutdown: impl Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
        };
        let render = render.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: http::Request<_>| {
                let body = match req.uri().path() {
                    "/metrics" => Some(render()),
                    "/healthz" | "/readyz" => Some("ok".to_string()),
                    _ => None,
                };
                async move {
                    let mut resp = http::Response::new(http_body_util::Full::new(
                        hyper::body::Bytes::from(body.clone().unwrap_or_default()),
                    ));
                    if body.is_none() {
                        *resp.status_mut() = http::StatusCode::NOT_FOUND;
                    }
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(60),
                hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(10))
                    .serve_connection(TokioIo::new(tcp), service),
            )
            .await;
        });
    }
}
