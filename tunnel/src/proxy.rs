//! The controller-facing HTTP CONNECT proxy: `CONNECT host:port` with the controller's
//! credentials becomes one HTTP/2 stream over the agent connection of the cluster owning
//! `host`. Refusals are distinguishable: 407 without valid credentials, 502 with
//! `Cellfed-Tunnel-Error: TunnelDisconnected` when no agent of the cluster is connected, 502
//! with `MemberUnreachable` when the agent cannot dial its apiserver. `GET /metrics` and
//! `GET /healthz` are served without credentials.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::protocol::{self, Reason};
use crate::registry::{AgentSender, Route};
use crate::server::Shared;
use crate::splice::H2Io;

/// Serves one proxy client connection (HTTP/1.1, CONNECT upgrades).
pub(crate) async fn connection(shared: Arc<Shared>, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let timeout = shared.limits.handshake_timeout;
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(request(shared, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!("proxy connection: {e}");
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn refused(
    shared: &Shared,
    status: StatusCode,
    reason: Reason,
    message: String,
) -> Response<Full<Bytes>> {
    shared.metrics.refused_connect(reason.as_str());
    let mut resp = text(status, format!("{reason}: {message}\n"));
    resp.headers_mut().insert(
        protocol::ERROR_HEADER,
        HeaderValue::from_static(reason.as_str()),
    );
    resp
}

async fn request(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() == Method::GET {
        return match req.uri().path() {
            "/metrics" => text(StatusCode::OK, shared.metrics.render()),
            "/healthz" | "/readyz" => text(StatusCode::OK, "ok".into()),
            _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
        };
    }
    if req.method() != Method::CONNECT {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "this is a CONNECT proxy\n".into(),
        );
    }
    let credentials = req
        .headers()
        .get(header::PROXY_AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !shared.auth.proxy(credentials) {
        let mut resp = refused(
            &shared,
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            Reason::Unauthorized,
            "the tunnel proxy needs the controller's proxy token (Proxy-Authorization: Bearer, or Basic with the token as password)".into(),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{}\"", protocol::PROXY_REALM))
        {
            resp.headers_mut().insert(header::PROXY_AUTHENTICATE, v);
        }
        return resp;
    }
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or_default();
    let Some(target) = protocol::parse_target(&authority) else {
        return refused(
            &shared,
            StatusCode::BAD_REQUEST,
            Reason::BadRequest,
            format!("{authority:?} is not a host:port CONNECT target"),
        );
    };
    let (cluster, sender) = match shared.registry.route(&target.host) {
        Route::Agent { cluster, sender } => (cluster, sender),
        Route::Disconnected { cluster } => {
            return refused(
                &shared,
                StatusCode::BAD_GATEWAY,
                Reason::TunnelDisconnected,
                format!("the agent of cluster {cluster} is not connected to the tunnel server"),
            );
        }
        Route::Unknown => {
            return refused(
                &shared,
                StatusCode::BAD_GATEWAY,
                Reason::TunnelDisconnected,
                format!("no agent serves host {}", target.host),
            );
        }
    };
    let member = match open_stream(&shared, sender, &authority).await {
        Ok(up) => up,
        Err((reason, message)) => {
            return refused(
                &shared,
                StatusCode::BAD_GATEWAY,
                reason,
                format!("cluster {cluster}: {message}"),
            );
        }
    };
    let client = hyper::upgrade::on(req);
    let task_shared = shared.clone();
    tokio::spawn(async move {
        let Ok(client) = client.await else { return };
        let metrics = task_shared.metrics.clone();
        metrics.streams_open.fetch_add(1, Ordering::Relaxed);
        metrics.streams_total.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            _ = crate::splice::splice(TokioIo::new(client), member, metrics.bytes.clone()) => {}
            () = task_shared.stopped() => {}
        }
        metrics.streams_open.fetch_sub(1, Ordering::Relaxed);
    });
    Response::new(Full::new(Bytes::new()))
}

/// Opens a CONNECT stream to the agent; the agent answers once it reached its apiserver.
async fn open_stream(
    shared: &Shared,
    sender: AgentSender,
    authority: &str,
) -> Result<H2Io, (Reason, String)> {
    let disconnected = |e: String| (Reason::TunnelDisconnected, e);
    let req = Request::builder()
        .method(Method::CONNECT)
        .uri(authority)
        .body(())
        .map_err(|e| (Reason::BadRequest, e.to_string()))?;
    let open = async {
        let mut sender = sender
            .ready()
            .await
            .map_err(|e| disconnected(format!("agent connection closed: {e}")))?;
        let (response, send) = sender
            .send_request(req, false)
            .map_err(|e| disconnected(format!("agent connection failed: {e}")))?;
        let response = response
            .await
            .map_err(|e| disconnected(format!("agent connection failed: {e}")))?;
        Ok((response, send))
    };
    let (resp, send) = tokio::time::timeout(shared.limits.open_timeout, open)
        .await
        .map_err(|_| {
            (
                Reason::MemberUnreachable,
                format!(
                    "the agent did not answer within {:?}",
                    shared.limits.open_timeout
                ),
            )
        })??;
    let (head, mut body) = resp.into_parts();
    if head.status != StatusCode::OK {
        let reason = head
            .headers
            .get(protocol::ERROR_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(Reason::parse)
            .unwrap_or(Reason::MemberUnreachable);
        let mut message = Vec::new();
        while message.len() < 4096
            && let Some(Ok(chunk)) = body.data().await
        {
            let _ = body.flow_control().release_capacity(chunk.len());
            message.extend_from_slice(&chunk);
        }
        message.truncate(4096);
        return Err((reason, String::from_utf8_lossy(&message).trim().to_string()));
    }
    Ok(H2Io::new(send, body))
}
