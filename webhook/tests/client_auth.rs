#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 9: the webhook answers `/validate` only to the apiserver. With `--client-ca-file`, a
//! caller without a client certificate gets 401 and one with another CA's certificate is refused
//! at the TLS handshake, while a cellfed apiserver configured with kube's
//! `--admission-control-config-file` (AdmissionConfiguration → kubeconfig keyed by the webhook's
//! `host:port`) presents its certificate: its writes are admitted and denials still reach the
//! client.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cellfed_api::kubefed::KubeFedCluster;
use cellfed_apiserver::{Server, ServerConfig};
use cellfed_webhook::{Webhook, WebhookConfig, WebhookState};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const FED_NS: &str = "kube-federation-system";

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(tag: &str) -> TempDir {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("cellfed-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// One raw HTTP/1.1 `POST /validate` over TLS trusting `server_ca`, presenting `client` (cert,
/// key) if given. Returns the response head, or the error that ended the exchange.
async fn raw_validate(
    addr: std::net::SocketAddr,
    server_ca: &str,
    client: Option<(&str, &str)>,
) -> Result<String, String> {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(cellfed_pki::roots(server_ca.as_bytes()).unwrap());
    let config = match client {
        Some((cert, key)) => {
            let (chain, key) = cellfed_pki::client_auth(cert.as_bytes(), key.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let exchange = async {
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let body = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"ConfigMap"},"object":{}}}"#;
        let req = format!(
            "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut out = Vec::new();
        tls.read_to_end(&mut out)
            .await
            .map_err(|e| format!("read: {e}"))?;
        Ok::<_, String>(String::from_utf8_lossy(&out).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .map_err(|_| "no answer within 20s".to_string())?
}

fn write(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap();
}

#[tokio::test]
async fn validate_answers_only_the_apiservers_client_certificate() {
    let dir = temp_dir("webhook-client-auth");
    let d = &dir.0;
    // the apiserver's client identity, and a stranger's from another CA
    let apiserver_id = cellfed_pki::generate_client("cellfed-apiserver", &[]).unwrap();
    let stranger = cellfed_pki::generate_client("cellfed-apiserver", &[]).unwrap();
    write(&d.join("client-ca.crt"), &apiserver_id.ca_pem);

    // the webhook, requiring client certificates of that CA (no host facts: the denial used
    // below is KubeFedCluster validation, decided on the object alone)
    let webhook = Webhook::bind(WebhookConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        client_ca_file: Some(d.join("client-ca.crt")),
        cert_dir: d.join("webhook"),
        hosts: Vec::new(),
        state: WebhookState::new(None, FED_NS),
    })
    .await
    .unwrap();
    let hook_addr = webhook.local_addr().unwrap();
    let hook_ca = webhook.ca_pem.clone();
    let (stop_hook, hook_stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(webhook.run_until(async move {
        let _ = hook_stopped.await;
    }));

    // no certificate: 401; another CA's certificate: refused at the handshake
    let none = raw_validate(hook_addr, &hook_ca, None).await.unwrap();
    assert!(none.starts_with("HTTP/1.1 401"), "{none}");
    assert!(none.contains("\"reason\":\"Unauthorized\""), "{none}");
    let other = raw_validate(
        hook_addr,
        &hook_ca,
        Some((&stranger.cert_pem, &stranger.key_pem)),
    )
    .await;
    assert!(
        !other.as_deref().is_ok_and(|r| r.starts_with("HTTP/")),
        "a certificate of another CA got an HTTP answer: {other:?}"
    );
    // the apiserver's certificate: answered
    let good = raw_validate(
        hook_addr,
        &hook_ca,
        Some((&apiserver_id.cert_pem, &apiserver_id.key_pem)),
    )
    .await
    .unwrap();
    assert!(good.starts_with("HTTP/1.1 200"), "{good}");

    // the apiserver, configured kube's way: AdmissionConfiguration → kubeconfig keyed by the
    // webhook's host:port, with the client certificate as files next to the kubeconfig
    write(&d.join("client.crt"), &apiserver_id.cert_pem);
    write(&d.join("client.key"), &apiserver_id.key_pem);
    let kubeconfig = d.join("webhook-client.kubeconfig");
    write(
        &kubeconfig,
        &format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: '{hook_addr}'\n  user:\n    client-certificate: client.crt\n    client-key: client.key\n"
        ),
    );
    let admission = d.join("admission.yaml");
    write(
        &admission,
        &format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: ValidatingAdmissionWebhook\n  configuration:\n    apiVersion: apiserver.config.k8s.io/v1\n    kind: WebhookAdmissionConfiguration\n    kubeConfigFile: {}\n",
            kubeconfig.display()
        ),
    );
    let mut cfg = ServerConfig::new(
        format!("sqlite://{}/store.db", d.display()),
        "127.0.0.1:0".parse().unwrap(),
        d.join("apiserver"),
    );
    cfg.insecure_http = true;
    cfg.anonymous = true;
    cfg.admission_control_config_file = Some(admission);
    let server = Server::bind(cfg).await.unwrap();
    let url = format!("http://{}", server.local_addr());
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_until(async move {
        let _ = api_stopped.await;
    }));
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in cellfed_api::all_crds().unwrap() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": FED_NS}})).unwrap(),
        )
        .await
        .unwrap();
    let clusters: Api<KubeFedCluster> = Api::namespaced(client.clone(), FED_NS);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while clusters.list(&ListParams::default()).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "KubeFedClusters not served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    use base64::Engine as _;
    let vwc: k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration =
        serde_json::from_value(json!({
            "metadata": {"name": "cellfed-webhook"},
            "webhooks": [{
                "name": "validate.cellfed.io", "admissionReviewVersions": ["v1"],
                "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 10,
                "clientConfig": {"url": format!("https://{hook_addr}/validate"),
                    "caBundle": base64::engine::general_purpose::STANDARD.encode(&hook_ca)},
                "rules": [{"apiGroups": ["core.kubefed.io"], "apiVersions": ["*"],
                    "resources": ["kubefedclusters"], "operations": ["CREATE", "UPDATE"]}]
            }]
        }))
        .unwrap();
    Api::all(client.clone())
        .create(&PostParams::default(), &vwc)
        .await
        .unwrap();
    let cluster = |name: &str, endpoint: &str| -> KubeFedCluster {
        serde_json::from_value(json!({
            "apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
            "metadata": {"name": name, "namespace": FED_NS},
            "spec": {"apiEndpoint": endpoint, "secretRef": {"name": format!("{name}-secret")}}
        }))
        .unwrap()
    };
    // the webhook configuration reaches the admission cache through a watch: poll until a bad
    // cluster is denied, which proves the webhook was called (and answered the apiserver)
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut attempt = 0;
    let denial = loop {
        attempt += 1;
        let name = format!("bad{attempt}");
        match clusters
            .create(&PostParams::default(), &cluster(&name, "example.com/path"))
            .await
        {
            Err(kube::Error::Api(s)) => break s,
            Err(e) => panic!("{e}"),
            Ok(_) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the webhook never denied"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(denial.code, 422, "{denial:?}");
    assert!(
        denial.message.contains("validate.cellfed.io")
            && denial.message.contains("spec.apiEndpoint"),
        "{denial:?}"
    );
    // and a good write is admitted by the same webhook
    clusters
        .create(
            &PostParams::default(),
            &cluster("member1", "https://127.0.0.1:6443"),
        )
        .await
        .unwrap();
    let _ = (stop_api.send(()), stop_hook.send(()));
}
