//! The tunnel end to end in one process: a real cellfed apiserver as the member (HTTPS, its
//! certificate valid for `member1.cluster.internal`), the tunnel server, an agent, and kube-rs
//! clients going through the CONNECT proxy as the controller's do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cellfed_tunnel::{
    Agent, AgentConfig, AgentError, AgentToken, AgentTokenSource, Authenticator, Backoff, Handle,
    Limits, ServerConfig, TokenEntry, TunnelServer,
};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const PROXY_TOKEN: &str = "proxy-secret";
const MEMBER1_TOKEN: &str = "member1-secret";
const MEMBER2_TOKEN: &str = "member2-secret";

/// Polls `f` until it holds, for at most 30 s.
async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Member {
    _dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    kubeconfig: kube::config::Kubeconfig,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Member {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = cellfed_apiserver::ServerConfig::new(
            format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display()),
            "127.0.0.1:0".parse().unwrap(),
            dir.path(),
        );
        cfg.tls_hosts = vec!["member1.cluster.internal".into()];
        let server = cellfed_apiserver::Server::bind(cfg).await.unwrap();
        let addr = server.local_addr();
        let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run_until(async move {
            let _ = rx.await;
        }));
        Self {
            _dir: dir,
            addr,
            kubeconfig,
            _stop: tx,
        }
    }

    /// A client with `server` and `proxy` in place of the kubeconfig's.
    async fn client(&self, server: &str, proxy: Option<String>) -> kube::Client {
        let mut kc = self.kubeconfig.clone();
        for c in kc.clusters.iter_mut().filter_map(|c| c.cluster.as_mut()) {
            c.server = Some(server.to_string());
            c.proxy_url = proxy.clone();
        }
        let mut config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .unwrap();
        config.connect_timeout = Some(Duration::from_secs(5));
        kube::Client::try_from(config).unwrap()
    }

    async fn direct(&self) -> kube::Client {
        self.client(&format!("https://{}", self.addr), None).await
    }
}

struct Plane {
    handle: Handle,
    agent_url: String,
    proxy_addr: std::net::SocketAddr,
    ca_pem: String,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Plane {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cert = cellfed_tunnel::tls::ensure(dir.path(), &[]).unwrap();
        let entry = |token: &str, cluster: &str| TokenEntry {
            token: token.into(),
            cluster: cluster.into(),
            host: None,
        };
        let server = TunnelServer::bind(ServerConfig {
            agent_listen: "127.0.0.1:0".parse().unwrap(),
            proxy_listen: "127.0.0.1:0".parse().unwrap(),
            cert: cert.clone(),
            auth: Authenticator {
                agent_sources: vec![AgentTokenSource::Static(vec![
                    entry(MEMBER1_TOKEN, "member1"),
                    entry(MEMBER2_TOKEN, "member2"),
                ])],
                proxy_tokens: vec![PROXY_TOKEN.into()],
            },
            limits: Limits {
                keepalive_interval: Duration::from_secs(1),
                keepalive_timeout: Duration::from_secs(2),
                ..Limits::default()
            },
        })
        .await
        .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let plane = Self {
            handle: server.handle(),
            agent_url: format!("https://127.0.0.1:{}", server.agent_addr().port()),
            proxy_addr: server.proxy_addr(),
            ca_pem: cert.ca_pem,
            _dir: dir,
            _stop: tx,
        };
        tokio::spawn(server.run_until(async move {
            let _ = rx.await;
        }));
        plane
    }

    fn agent_config(&self, cluster: &str, token: &str, member: &Member) -> AgentConfig {
        let mut c = AgentConfig::new(
            &self.agent_url,
            cluster,
            AgentToken::Inline(token.into()),
            &format!("https://{}", member.addr),
            &self.ca_pem,
        );
        c.backoff = Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
        };
        c
    }

    /// Starts member1's agent; dropping the returned sender stops it (as a killed agent).
    async fn start_agent(
        &self,
        member: &Member,
    ) -> (
        tokio::sync::oneshot::Sender<()>,
        std::sync::Arc<cellfed_tunnel::metrics::AgentMetrics>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let agent = Agent::new(self.agent_config("member1", MEMBER1_TOKEN, member)).unwrap();
        let metrics = agent.metrics();
        tokio::spawn(agent.run_until(async move {
            let _ = rx.await;
        }));
        let handle = self.handle.clone();
        eventually("member1's agent to connect", async || {
            handle.agents_connected("member1") == 1
        })
        .await;
        eventually("the agent to count itself connected", async || {
            metrics.connected.load(Ordering::Relaxed) == 1
        })
        .await;
        (tx, metrics)
    }

    fn proxy_url(&self) -> String {
        format!("http://cellfed:{PROXY_TOKEN}@{}", self.proxy_addr)
    }

    async fn tunnelled(&self, member: &Member) -> kube::Client {
        member
            .client(
                &format!("https://member1.cluster.internal:{}", member.addr.port()),
                Some(self.proxy_url()),
            )
            .await
    }

    /// Sends a raw CONNECT; returns the status code and the error header.
    async fn raw_connect(&self, target: &str, auth: Option<&str>) -> (u16, Option<String>) {
        let mut tcp = tokio::net::TcpStream::connect(self.proxy_addr)
            .await
            .unwrap();
        let auth = auth
            .map(|a| format!("Proxy-Authorization: {a}\r\n"))
            .unwrap_or_default();
        tcp.write_all(
            format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "proxy closed before answering");
            buf.extend_from_slice(&chunk[..n]);
        }
        let head = String::from_utf8_lossy(&buf).to_string();
        let status = head[9..12].parse().unwrap();
        let reason = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("cellfed-tunnel-error:")
                    .map(|v| v.trim().to_string())
            })
            .map(|r| {
                // header values keep their case
                let start = head.to_ascii_lowercase().find(&r).unwrap();
                head[start..start + r.len()].to_string()
            });
        (status, reason)
    }
}

#[tokio::test]
async fn kube_clients_list_and_watch_through_the_tunnel() {
    let member = Member::start().await;
    let plane = Plane::start().await;
    let (_agent, _) = plane.start_agent(&member).await;
    let client = plane.tunnelled(&member).await;

    // the tunnel host resolves nowhere: only the tunnel can carry this
    assert!(
        tokio::net::lookup_host("member1.cluster.internal:443")
            .await
            .is_err()
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<_> = namespaces
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_string()), "{names:?}");

    // a watch is a long-lived stream through the tunnel
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut events = watcher(cms.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    let direct: Api<ConfigMap> = Api::namespaced(member.direct().await, "default");
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "via-tunnel"}})).unwrap();
    direct.create(&PostParams::default(), &cm).await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(ev) = events.next().await {
            if ev.unwrap().metadata.name.as_deref() == Some("via-tunnel") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(seen);

    let metrics = plane.handle.metrics();
    assert!(metrics.streams_total.load(Ordering::Relaxed) >= 1);
    assert!(metrics.bytes.from_member.load(Ordering::Relaxed) > 0);
    assert!(
        metrics
            .render()
            .contains("cellfed_tunnel_agents_connected{cluster=\"member1\"} 1")
    );
}

#[tokio::test]
async fn agents_need_their_own_clusters_token() {
    let member = Member::start().await;
    let plane = Plane::start().await;
    let refused = async |cluster: &str, token: &str| {
        let agent = Agent::new(plane.agent_config(cluster, token, &member)).unwrap();
        match agent.session().await {
            Err(AgentError::Refused { status, reason, .. }) => (status.as_u16(), reason),
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    // another cluster's name with member1's token
    assert_eq!(
        refused("member2", MEMBER1_TOKEN).await,
        (403, "Forbidden".into())
    );
    // a wrong token
    assert_eq!(refused("member1", "guess").await, (403, "Forbidden".into()));
    // no token
    assert_eq!(refused("member1", "").await, (401, "Unauthorized".into()));
    // not a cluster name
    assert_eq!(
        refused("Member1", MEMBER1_TOKEN).await,
        (400, "BadRequest".into())
    );
    assert_eq!(plane.handle.agents_connected("member1"), 0);
    assert_eq!(plane.handle.agents_connected("member2"), 0);
    assert!(
        plane
            .handle
            .metrics()
            .render()
            .contains("cellfed_tunnel_agent_refused_total{reason=\"Forbidden\"} 2")
    );
}

#[tokio::test]
async fn the_proxy_needs_the_controllers_credentials() {
    let member = Member::start().await;
    let plane = Plane::start().await;
    let (_agent, _) = plane.start_agent(&member).await;
    let target = "member1.cluster.internal:443";
    assert_eq!(
        plane.raw_connect(target, None).await,
        (407, Some("Unauthorized".into()))
    );
    assert_eq!(
        plane.raw_connect(target, Some("Bearer wrong")).await,
        (407, Some("Unauthorized".into()))
    );
    assert_eq!(
        plane
            .raw_connect(target, Some(&format!("Bearer {PROXY_TOKEN}")))
            .await,
        (200, None)
    );
    // a kube client without credentials in its proxy URL fails
    let anonymous = member
        .client(
            &format!("https://member1.cluster.internal:{}", member.addr.port()),
            Some(format!("http://{}", plane.proxy_addr)),
        )
        .await;
    let err = Api::<Namespace>::all(anonymous)
        .list(&Default::default())
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("ProxyAuthRequired") || err.to_string().contains("proxy"),
        "{err:?}"
    );
    // hosts no cluster owns, and clusters whose agent is away
    let auth = format!("Bearer {PROXY_TOKEN}");
    assert_eq!(
        plane.raw_connect("example.com:443", Some(&auth)).await,
        (502, Some("TunnelDisconnected".into()))
    );
    assert_eq!(
        plane
            .raw_connect("member2.cluster.internal:443", Some(&auth))
            .await,
        (502, Some("TunnelDisconnected".into()))
    );
}

#[tokio::test]
async fn a_killed_agent_fails_connects_fast_and_its_reconnect_works() {
    let member = Member::start().await;
    let plane = Plane::start().await;
    let (agent, _) = plane.start_agent(&member).await;
    let client = plane.tunnelled(&member).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.list(&Default::default()).await.unwrap();

    drop(agent);
    let handle = plane.handle.clone();
    eventually("the agent to be gone", async || {
        handle.agents_connected("member1") == 0
    })
    .await;
    let auth = format!("Bearer {PROXY_TOKEN}");
    assert_eq!(
        plane
            .raw_connect("member1.cluster.internal:443", Some(&auth))
            .await,
        (502, Some("TunnelDisconnected".into()))
    );
    // a fresh client (no pooled connection) fails instead of hanging
    let fresh = plane.tunnelled(&member).await;
    let failed = tokio::time::timeout(
        Duration::from_secs(10),
        Api::<Namespace>::all(fresh).list(&Default::default()),
    )
    .await
    .expect("the request fails rather than hangs");
    assert!(failed.is_err());

    let (_agent, _) = plane.start_agent(&member).await;
    eventually("requests through the new agent", async || {
        namespaces.list(&Default::default()).await.is_ok()
    })
    .await;
    assert!(
        plane
            .handle
            .metrics()
            .agent_connects
            .load(Ordering::Relaxed)
            >= 2
    );
}

#[tokio::test]
async fn an_open_watch_resumes_after_the_agent_reconnects() {
    let member = Member::start().await;
    let plane = Plane::start().await;
    let (agent, _) = plane.start_agent(&member).await;
    let cms: Api<ConfigMap> = Api::namespaced(plane.tunnelled(&member).await, "default");
    let direct: Api<ConfigMap> = Api::namespaced(member.direct().await, "default");
    let create = async |name: &str| {
        let cm: ConfigMap =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        direct.create(&PostParams::default(), &cm).await.unwrap();
    };
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let watch = tokio::spawn(async move {
        let mut events = watcher(cms, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(ev) = events.next().await {
            if let Ok(cm) = ev {
                let _ = seen_tx.send(cm.metadata.name.unwrap_or_default());
            }
        }
    });
    let wait_for = async |rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>, name: &str| {
        tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(n) = rx.recv().await {
                if n == name {
                    return;
                }
            }
            panic!("watch ended");
        })
        .await
        .unwrap_or_else(|_| panic!("{name} not seen through the tunnel"));
    };
    create("before").await;
    wait_for(&mut seen_rx, "before").await;

    drop(agent);
    let handle = plane.handle.clone();
    eventually("the agent to be gone", async || {
        handle.agents_connected("member1") == 0
    })
    .await;
    create("during").await;
    let (_agent, _) = plane.start_agent(&member).await;
    wait_for(&mut seen_rx, "during").await;
    create("after").await;
    wait_for(&mut seen_rx, "after").await;
    watch.abort();
}
