#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use cellfed_apiserver::{AppState, Server, ServerConfig};
use cellfed_store::Store;
use http::Request;
use serde_json::Value;
use tokio::time::Instant;
use tower::ServiceExt;

/// A unique temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n: u64 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let p = std::env::temp_dir().join(format!(
            "cellfed-apiserver-{tag}-{}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn store(dir: &TempDir) -> Store {
    Store::open(&format!("sqlite://{}/store.db", dir.0.display()))
        .await
        .unwrap()
}

/// Router state over a fresh SQLite store, with the built-in namespaces.
pub async fn state(dir: &TempDir) -> AppState {
    let state = AppState::new(store(dir).await);
    cellfed_apiserver::server::bootstrap(&state).await.unwrap();
    state
}

/// One request through the router without a socket.
pub async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    content_type: &str,
    body: impl Into<Body>,
) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(body.into())
        .unwrap();
    let resp = cellfed_apiserver::router(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (code, v)
}

pub async fn json(state: &AppState, method: &str, uri: &str, body: &Value) -> (u16, Value) {
    call(state, method, uri, "application/json", body.to_string()).await
}

/// A real server on 127.0.0.1:0 over TLS with tokens; stops when dropped.
pub struct Running {
    pub dir: TempDir,
    pub addr: std::net::SocketAddr,
    pub kubeconfig: PathBuf,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub async fn start(tag: &str) -> Running {
    start_with(tag, |_| {}).await
}

/// A real server like `start`, with `configure` applied to its configuration first.
pub async fn start_with(tag: &str, configure: impl FnOnce(&mut ServerConfig)) -> Running {
    let dir = TempDir::new(tag);
    let mut cfg = ServerConfig::new(
        format!("sqlite://{}/store.db", dir.0.display()),
        "127.0.0.1:0".parse().unwrap(),
        dir.0.clone(),
    );
    cfg.gc_interval = Duration::from_millis(100);
    configure(&mut cfg);
    let server = within(30, "the server to bind", Server::bind(cfg))
        .await
        .unwrap();
    let addr = server.local_addr();
    let kubeconfig = server.kubeconfig_path().to_path_buf();
    let state = server.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(server.run_until(async move {
        let _ = rx.await;
    }));
    Running {
        dir,
        addr,
        kubeconfig,
        state,
        stop: Some(tx),
    }
}

impl Running {
    /// Runs kubectl against this server; returns (success, stdout, stderr).
    pub async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        self.kubectl_with(&self.kubeconfig, args, stdin).await
    }

    pub async fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.kubectl(args, stdin).await;
        assert!(ok, "kubectl {args:?} failed:\nstdout: {out}\nstderr: {err}");
        out
    }

    /// A kubeconfig for this server (its URL and CA) whose user is `user` (a kubeconfig `user`
    /// map: `{"token": …}`, `{"client-certificate-data": …, "client-key-data": …}`).
    pub fn kubeconfig_for(&self, name: &str, user: serde_json::Value) -> PathBuf {
        let text = std::fs::read_to_string(&self.kubeconfig).unwrap();
        let mut kc: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        kc["users"][0]["user"] = user;
        let path = self.dir.0.join(format!("kubeconfig-{name}"));
        std::fs::write(&path, serde_yaml::to_string(&kc).unwrap()).unwrap();
        path
    }

    /// kubectl with another kubeconfig; returns (success, stdout, stderr).
    pub async fn kubectl_with(
        &self,
        kubeconfig: &std::path::Path,
        args: &[&str],
        stdin: Option<&str>,
    ) -> (bool, String, String) {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new("kubectl")
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", &self.dir.0)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("kubectl finished in time")
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }
}

/// Polls `f` until it returns Some, or panics after `secs` saying what it waited for. Each attempt
/// runs under the time that is left, so an attempt that never returns (a request without a
/// timeout, a lock) fails the test at the deadline instead of hanging it.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, f()).await {
            Ok(Some(v)) => return v,
            Ok(None) => {}
            Err(_) => panic!(
                "timed out after {secs}s waiting for {what} (the last attempt did not return)"
            ),
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Awaits `fut` for at most `secs`, or panics saying what did not finish.
pub async fn within<T>(secs: u64, what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs}s waiting for {what}"))
}

/// Serves `app` over HTTPS on a free loopback port with a certificate for `hosts` (CA and key
/// written under `dir`), as a webhook would be served; returns the base64 CA bundle and the
/// address. Serves until the test's runtime ends.
#[allow(dead_code)] // used by some test binaries only
pub async fn serve_https(
    dir: &std::path::Path,
    hosts: &[&str],
    app: axum::Router,
) -> (String, std::net::SocketAddr) {
    use base64::Engine as _;
    let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    let certs = cellfed_apiserver::tls::ensure(dir, &hosts).unwrap();
    let tls = cellfed_apiserver::tls::server_config(&certs).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let svc = hyper_util::service::TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
            });
        }
    });
    (
        base64::engine::general_purpose::STANDARD.encode(&certs.ca_pem),
        addr,
    )
}
