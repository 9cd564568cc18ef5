#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `kubectl cellfed join --via-tunnel` end to end in one process: a host and a member apiserver,
//! the join writes the tunnel's endpoint, proxy and tokens, an agent started from the printed
//! manifest's token connects to a tunnel server reading the host Secrets, and the controller's
//! client, built from the KubeFedCluster and its Secret, reaches the member through it.

use std::time::{Duration, Instant};

use base64::Engine as _;
use cellfed_cli::plugin::{join, tunnel};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

const NS: &str = "kube-federation-system";

async fn apiserver(
    dir: &std::path::Path,
    hosts: Vec<String>,
) -> (
    kube::config::Kubeconfig,
    String,
    tokio::sync::oneshot::Sender<()>,
) {
    let mut cfg = cellfed_apiserver::ServerConfig::new(
        format!("sqlite://{}?mode=rwc", dir.join("state.db").display()),
        "127.0.0.1:0".parse().unwrap(),
        dir,
    );
    cfg.tls_hosts = hosts;
    let server = cellfed_apiserver::Server::bind(cfg).await.unwrap();
    let kc = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
    let url = format!("https://{}", server.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_until(async move {
        let _ = rx.await;
    }));
    (kc, url, tx)
}

async fn client(kc: &kube::config::Kubeconfig) -> kube::Client {
    let config = kube::Config::from_custom_kubeconfig(
        kc.clone(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn join_via_tunnel_reaches_the_member_through_its_agent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("host")).unwrap();
    std::fs::create_dir_all(dir.path().join("member")).unwrap();
    let (host_kc, _, _host_stop) = apiserver(&dir.path().join("host"), vec![]).await;
    let (member_kc, member_url, _member_stop) = apiserver(
        &dir.path().join("member"),
        vec!["member1.cluster.internal".into()],
    )
    .await;
    let host = client(&host_kc).await;
    let member = client(&member_kc).await;

    // the federation API in the host, and the controller's proxy token
    let ssa = PatchParams::apply("test").force();
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(host.clone());
    for crd in cellfed_api::all_crds().unwrap() {
        let mut body = serde_json::to_value(&crd).unwrap();
        body["apiVersion"] = json!("apiextensions.k8s.io/v1");
        body["kind"] = json!("CustomResourceDefinition");
        crds.patch(
            crd.metadata.name.as_deref().unwrap(),
            &ssa,
            &Patch::Apply(&body),
        )
        .await
        .unwrap();
    }
    Api::<k8s_openapi::api::core::v1::Namespace>::all(host.clone())
        .patch(
            NS,
            &ssa,
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
            ),
        )
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(host.clone(), NS);
    secrets
        .patch(
            cellfed_tunnel::auth::PROXY_SECRET_NAME,
            &ssa,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": cellfed_tunnel::auth::PROXY_SECRET_NAME, "namespace": NS}, "stringData": {"token": "p1"}})),
        )
        .await
        .unwrap();
    let clusters: Api<cellfed_api::kubefed::KubeFedCluster> = Api::namespaced(host.clone(), NS);
    let deadline = Instant::now() + Duration::from_secs(30);
    while clusters.list(&Default::default()).await.is_err() {
        assert!(Instant::now() < deadline, "KubeFedClusters never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // the tunnel server, agent tokens from the host Secrets
    let cert = cellfed_tunnel::tls::ensure(&dir.path().join("tunnel"), &[]).unwrap();
    let server = cellfed_tunnel::TunnelServer::bind(cellfed_tunnel::ServerConfig {
        agent_listen: "127.0.0.1:0".parse().unwrap(),
        proxy_listen: "127.0.0.1:0".parse().unwrap(),
        cert: cert.clone(),
        auth: cellfed_tunnel::Authenticator {
            agent_sources: vec![cellfed_tunnel::AgentTokenSource::HostSecrets {
                client: host.clone(),
                namespace: NS.into(),
            }],
            proxy_tokens: vec!["p1".into()],
        },
        limits: cellfed_tunnel::Limits::default(),
    })
    .await
    .unwrap();
    let agent_url = format!("https://127.0.0.1:{}", server.agent_addr().port());
    let proxy_url = format!("http://{}", server.proxy_addr());
    let handle = server.handle();
    tokio::spawn(server.run_until(std::future::pending()));

    // join through the tunnel
    let access =
        join::member_access(&member_kc, member_kc.current_context.as_deref().unwrap()).unwrap();
    let t = tunnel::Tunnel {
        server_url: agent_url.clone(),
        proxy_url: proxy_url.clone(),
        host: "member1.cluster.internal".into(),
        ca_pem: Some(cert.ca_pem.clone()),
        agent_apiserver: member_url.clone(),
        image: "cellfed:test".into(),
    };
    let opts = join::JoinOptions {
        token_wait: Duration::ZERO,
        ..join::JoinOptions::new("member1", NS)
    };
    let (lines, manifests) = tunnel::join(&host, &member, &access, &opts, &t)
        .await
        .unwrap();
    assert!(
        lines.iter().any(|l| l.contains("member1-tunnel-token")),
        "{lines:?}"
    );
    let cluster = clusters.get("member1").await.unwrap();
    let port = member_url.rsplit_once(':').unwrap().1;
    assert_eq!(
        cluster.spec.api_endpoint,
        format!("https://member1.cluster.internal:{port}")
    );
    assert_eq!(cluster.spec.proxy_url.as_deref(), Some(proxy_url.as_str()));
    let secret = secrets.get("member1-secret").await.unwrap();
    let data = secret.data.clone().unwrap();
    assert_eq!(data["proxyToken"].0, b"p1");
    assert!(data.contains_key("token"), "join's own keys stay");

    // the agent, with the token of the manifest the member would apply
    assert_eq!(manifests[0]["kind"], "Secret");
    let token = base64::engine::general_purpose::STANDARD
        .decode(manifests[0]["data"]["token"].as_str().unwrap())
        .unwrap();
    let agent = cellfed_tunnel::Agent::new(cellfed_tunnel::AgentConfig::new(
        &agent_url,
        "member1",
        cellfed_tunnel::AgentToken::Inline(String::from_utf8(token).unwrap()),
        &member_url,
        &cert.ca_pem,
    ))
    .unwrap();
    tokio::spawn(agent.run_until(std::future::pending()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.agents_connected("member1") == 0 {
        assert!(Instant::now() < deadline, "the agent never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // the controller's client for the cluster goes through the tunnel
    let member_client = cellfed_controller::members::build_client(&cluster, Some(&secret))
        .await
        .unwrap();
    let ready = member_client
        .request_text(http::Request::get("/readyz").body(Vec::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(ready.trim(), "ok");
    assert!(
        handle
            .metrics()
            .streams_total
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
}
