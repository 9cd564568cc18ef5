//! A minimal Kubernetes REST client over hyper: JSON requests, timed, and a watch stream split
//! into lines.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A pooled HTTP/1.1 client bound to one server.
#[derive(Clone)]
pub struct Api {
    http: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Api {
    pub fn new(base: String) -> Api {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Api { http, base }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>> {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("accept", "application/json")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        Ok(self.http.request(request).await?)
    }

    /// One request read to the end; returns the body and the time it took. Fails on a status
    /// other than `expect`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        expect: StatusCode,
    ) -> Result<(Bytes, Duration)> {
        let started = Instant::now();
        let response = self.send(method.clone(), path, body).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let elapsed = started.elapsed();
        if status != expect {
            bail!(
                "{method} {path}: {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok((bytes, elapsed))
    }

    /// Opens a watch; the stream yields one JSON event per line.
    pub async fn watch(&self, path: &str) -> Result<WatchStream> {
        let response = self.send(Method::GET, path, None).await?;
        if response.status() != StatusCode::OK {
            bail!("watch {path}: {}", response.status());
        }
        Ok(WatchStream {
            body: response.into_body(),
            buffer: Vec::new(),
        })
    }
}

/// Newline-delimited watch events.
pub struct WatchStream {
    body: Incoming,
    buffer: Vec<u8>,
}

impl WatchStream {
    /// The next event line, parsed.
    pub async fn next(&mut self) -> Result<serde_json::Value> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return serde_json::from_slice(&line).context("watch event");
            }
            let frame = self.body.frame().await.context("watch ended")??;
            if let Ok(data) = frame.into_data() {
                self.buffer.extend_from_slice(&data);
            }
        }
    }
}
