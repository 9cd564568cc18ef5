//! Member clients as KubeFed builds them from a KubeFedCluster: an `apiEndpoint` without a
//! scheme means https, and `disabledTLSValidations: [SubjectName]` / `[ValidityPeriod]` skip
//! exactly that check (the chain to `caBundle` is still verified). Against a TLS listener with
//! certificates made for the purpose.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use cellfed_api::kubefed::KubeFedCluster;
use cellfed_controller::members::build_client;
use k8s_openapi::api::core::v1::Secret;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, date_time_ymd};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A CA, and a listener answering `ok` to everything over TLS with a certificate the CA signed
/// for `names`, valid in `years`.
struct Server {
    ca_pem: String,
    port: u16,
    _task: tokio::task::JoinHandle<()>,
}

async fn serve(names: &[&str], years: Option<(i32, i32)>) -> Server {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(ToString::to_string).collect::<Vec<_>>()).unwrap();
    if let Some((from, to)) = years {
        params.not_before = date_time_ymd(from, 1, 1);
        params.not_after = date_time_ymd(to, 1, 1);
    }
    let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Server {
        ca_pem: ca_cert.pem(),
        port,
        _task: task,
    }
}

fn cluster(endpoint: &str, ca_pem: &str, skip: &[&str]) -> KubeFedCluster {
    use base64::Engine as _;
    serde_json::from_value(json!({
        "apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
        "metadata": {"name": "m1", "namespace": "kube-federation-system"},
        "spec": {
            "apiEndpoint": endpoint,
            "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem),
            "secretRef": {"name": "m1-secret"},
            "disabledTLSValidations": skip,
        }
    }))
    .unwrap()
}

fn secret() -> Secret {
    serde_json::from_value(
        json!({"metadata": {"name": "m1-secret"}, "data": {"token": "dG9rZW4="}}),
    )
    .unwrap()
}

/// Whether a client built for `endpoint` with `skip` gets `ok` from `/readyz`.
async fn reaches(endpoint: &str, ca_pem: &str, skip: &[&str]) -> Result<(), String> {
    let client = build_client(&cluster(endpoint, ca_pem, skip), Some(&secret())).await?;
    let req = http::Request::get("/readyz").body(Vec::new()).unwrap();
    match tokio::time::timeout(std::time::Duration::from_secs(10), client.request_text(req)).await {
        Ok(Ok(body)) if body == "ok" => Ok(()),
        Ok(Ok(body)) => Err(format!("answered {body:?}")),
        Ok(Err(e)) => {
            // the whole chain: kube's error says little, rustls's says which check failed
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why = format!("{why}: {s}");
                source = s.source();
            }
            Err(why)
        }
        Err(_) => Err("timed out".into()),
    }
}

/// KubeFed's `TestValidateAPIEndpoint` accepts `host:port`; KubeFed's client then speaks https
/// to it when a caBundle is given.
#[tokio::test]
async fn an_endpoint_without_a_scheme_is_https() {
    let s = serve(&["127.0.0.1"], None).await;
    reaches(&format!("127.0.0.1:{}", s.port), &s.ca_pem, &[])
        .await
        .unwrap();
    reaches(&format!("https://127.0.0.1:{}", s.port), &s.ca_pem, &[])
        .await
        .unwrap();
}

/// KubeFed's `CustomizeCertificateValidation`: `SubjectName` skips the name check only.
#[tokio::test]
async fn subject_name_skips_only_the_name() {
    let s = serve(&["somewhere.else.example"], None).await;
    let endpoint = format!("127.0.0.1:{}", s.port);
    let refused = reaches(&endpoint, &s.ca_pem, &[]).await.unwrap_err();
    assert!(refused.contains("not valid for name"), "{refused}");
    reaches(&endpoint, &s.ca_pem, &["SubjectName"])
        .await
        .unwrap();
    let refused = reaches(&endpoint, &s.ca_pem, &["ValidityPeriod"])
        .await
        .expect_err("ValidityPeriod does not skip the name check");
    assert!(refused.contains("not valid for name"), "{refused}");
    reaches(&endpoint, &s.ca_pem, &["*"]).await.unwrap();
    // the chain is still checked: another CA's certificate is refused
    let other = serve(&["127.0.0.1"], None).await;
    let refused = reaches(&endpoint, &other.ca_pem, &["SubjectName"])
        .await
        .expect_err("a certificate from another CA");
    assert!(refused.contains("invalid peer certificate"), "{refused}");
}

/// KubeFed's `CustomizeCertificateValidation`: `ValidityPeriod` accepts an expired certificate,
/// and only that.
#[tokio::test]
async fn validity_period_skips_only_the_dates() {
    let expired = serve(&["127.0.0.1"], Some((2000, 2001))).await;
    let endpoint = format!("127.0.0.1:{}", expired.port);
    let refused = reaches(&endpoint, &expired.ca_pem, &[])
        .await
        .expect_err("an expired certificate");
    assert!(refused.contains("certificate expired"), "{refused}");
    reaches(&endpoint, &expired.ca_pem, &["ValidityPeriod"])
        .await
        .unwrap();
    let refused = reaches(&endpoint, &expired.ca_pem, &["SubjectName"])
        .await
        .expect_err("SubjectName does not skip the dates");
    assert!(refused.contains("certificate expired"), "{refused}");
    let both = serve(&["somewhere.else.example"], Some((2000, 2001))).await;
    reaches(
        &format!("127.0.0.1:{}", both.port),
        &both.ca_pem,
        &["SubjectName", "ValidityPeriod"],
    )
    .await
    .unwrap();
}
