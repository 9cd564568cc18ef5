//! CRD conversion webhooks: a `ConversionReview` (apiextensions.k8s.io/v1) POSTed as
//! kube-apiserver does, over TLS with the CRD's caBundle as the only trust root. The HTTP client
//! here serves the admission webhooks too: every call is bounded in time (connect, handshake,
//! request and response together) and in response size, and its connection ends with the call.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Why a webhook call failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The clientConfig has neither a usable url nor a service.
    #[error("invalid clientConfig: {0}")]
    ResolveTarget(String),
    /// Connecting or the TLS handshake failed.
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    /// The caBundle is not PEM certificates.
    #[error("caBundle: {0}")]
    ParseCaBundle(String),
    /// The HTTP exchange failed.
    #[error("request: {0}")]
    SendRequest(String),
    /// The response is not a successful ConversionReview.
    #[error("response: {0}")]
    ReadResponse(String),
    /// No complete response within the call's time limit.
    #[error("Post \"{url}\": no response within {}s", after.as_secs_f64())]
    Timeout { url: String, after: Duration },
    /// The response body is larger than the call accepts.
    #[error("Post \"{url}\": the response is larger than {limit} bytes")]
    ResponseTooLarge { url: String, limit: usize },
}

/// Default time a conversion webhook call may take (`ServerConfig::conversion_webhook_timeout`).
pub const DEFAULT_CONVERSION_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest response a conversion webhook may send for a request of `request_bytes`: the
/// converted objects are about the size of the originals, so twice the request plus the
/// request-body limit, however many objects a list converts at once.
pub fn conversion_response_limit(request_bytes: usize) -> usize {
    request_bytes
        .saturating_mul(2)
        .saturating_add(crate::MAX_BODY_BYTES)
}

pub(crate) struct Target {
    https: bool,
    /// Host name for SNI and the Host header.
    host: String,
    /// Where to connect.
    addr: String,
    path: String,
}

impl Target {
    /// The URL called, for messages.
    pub(crate) fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.addr, self.path)
    }
}

pub(crate) fn target(state: &AppState, cc: &Value) -> Result<Target, WebhookError> {
    if let Some(url) = cc.get("url").and_then(Value::as_str) {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(WebhookError::ResolveTarget(format!(
                "unsupported url {url}"
            )));
        };
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let host = hostport
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(hostport)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let addr = if hostport.contains(':') && !hostport.ends_with(']') {
            hostport.to_string()
        } else {
            format!("{hostport}:{}", if https { 443 } else { 80 })
        };
        return Ok(Target {
            https,
            host,
            addr,
            path: path.to_string(),
        });
    }
    let svc = cc
        .get("service")
        .ok_or_else(|| WebhookError::ResolveTarget("neither url nor service".into()))?;
    let name = svc.get("name").and_then(Value::as_str).unwrap_or_default();
    let ns = svc
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let port = svc.get("port").and_then(Value::as_i64).unwrap_or(443);
    let path = svc.get("path").and_then(Value::as_str).unwrap_or("/");
    let host = format!("{name}.{ns}.svc");
    let key = format!("{host}:{port}");
    let addr = state
        .service_addresses
        .get(&key)
        .cloned()
        .unwrap_or_else(|| key.clone());
    Ok(Target {
        https: true,
        host,
        addr,
        path: path.to_string(),
    })
}

/// POSTs `body` to the webhook: the whole exchange within `timeout`, a response body of at most
/// `max_response` bytes.
pub(crate) async fn post(
    cc: &Value,
    t: &Target,
    body: Vec<u8>,
    timeout: Duration,
    max_response: usize,
) -> Result<Vec<u8>, WebhookError> {
    match tokio::time::timeout(timeout, exchange(cc, t, body, max_response)).await {
        Ok(result) => result,
        Err(_) => Err(WebhookError::Timeout {
            url: t.url(),
            after: timeout,
        }),
    }
}

async fn exchange(
    cc: &Value,
    t: &Target,
    body: Vec<u8>,
    max_response: usize,
) -> Result<Vec<u8>, WebhookError> {
    let tcp = TcpStream::connect(&t.addr)
        .await
        .map_err(|source| WebhookError::Connect {
            addr: t.addr.clone(),
            source,
        })?;
    let req = http::Request::post(&t.path)
        .header(http::header::HOST, &t.host)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| WebhookError::SendRequest(e.to_string()))?;
    let resp = if t.https {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(b64) = cc.get("caBundle").and_then(Value::as_str) {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| WebhookError::ParseCaBundle(e.to_string()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| WebhookError::ParseCaBundle(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| WebhookError::ParseCaBundle(e.to_string()))?;
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::SendRequest(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = ServerName::try_from(t.host.clone())
            .map_err(|e| WebhookError::ResolveTarget(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|source| WebhookError::Connect {
                addr: t.addr.clone(),
                source,
            })?;
        send(hyper_util::rt::TokioIo::new(tls), req, t, max_response).await?
    } else {
        send(hyper_util::rt::TokioIo::new(tcp), req, t, max_response).await?
    };
    Ok(resp)
}

/// Ends the connection task when the call is over (or abandoned at its time limit).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn send<I>(
    io: I,
    req: http::Request<Full<Bytes>>,
    t: &Target,
    max_response: usize,
) -> Result<Vec<u8>, WebhookError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| WebhookError::SendRequest(e.to_string()))?;
    let _conn = AbortOnDrop(tokio::spawn(conn).abort_handle());
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| WebhookError::SendRequest(e.to_string()))?;
    let status = resp.status();
    let too_large = || WebhookError::ResponseTooLarge {
        url: t.url(),
        limit: max_response,
    };
    let announced = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > max_response) {
        return Err(too_large());
    }
    let body = http_body_util::Limited::new(resp.into_body(), max_response)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                WebhookError::ReadResponse(e.to_string())
            }
        })?
        .to_bytes();
    if !status.is_success() {
        return Err(WebhookError::ReadResponse(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    Ok(body.to_vec())
}

/// Converts `objects` through the CRD's webhook.
pub async fn webhook_convert(
    state: &AppState,
    crd_name: &str,
    client_config: &Value,
    objects: Vec<Value>,
    desired: &str,
) -> ApiResult<Vec<Value>> {
    let fail = |e: WebhookError| {
        ApiError::internal(format!("conversion webhook for {crd_name} failed: {e}"))
    };
    let uid = crate::meta::new_uid();
    let review = json!({
        "kind": "ConversionReview",
        "apiVersion": "apiextensions.k8s.io/v1",
        "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects},
    });
    let t = target(state, client_config).map_err(fail)?;
    let body = serde_json::to_vec(&review).map_err(|e| ApiError::internal(e.to_string()))?;
    let limit = conversion_response_limit(body.len());
    let raw = post(client_config, &t, body, state.conversion_timeout, limit)
        .await
        .map_err(fail)?;
    let resp: Value = serde_json::from_slice(&raw)
        .map_err(|e| fail(WebhookError::ReadResponse(e.to_string())))?;
    let r = resp
        .get("response")
        .ok_or_else(|| fail(WebhookError::ReadResponse("no response".into())))?;
    if r.get("uid").and_then(Value::as_str) != Some(uid.as_str()) {
        return Err(fail(WebhookError::ReadResponse("uid mismatch".into())));
    }
    if r.pointer("/result/status").and_then(Value::as_str) != Some("Success") {
        let msg = r
            .pointer("/result/message")
            .and_then(Value::as_str)
            .unwrap_or("conversion failed");
        return Err(fail(WebhookError::ReadResponse(msg.to_string())));
    }
    let converted = r
        .get("convertedObjects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if converted.len() != objects_len(&review) {
        return Err(fail(WebhookError::ReadResponse(
            "returned a different number of objects".into(),
        )));
    }
    Ok(converted)
}

fn objects_len(review: &Value) -> usize {
    review
        .pointer("/request/objects")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}
