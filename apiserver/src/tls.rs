//! Listening material in the data dir: a self-signed CA and serving certificate, the static
//! token file and an admin kubeconfig.

use std::path::Path;
use std::sync::Arc;

use rand::Rng;

/// Why TLS material or the kubeconfig could not be prepared.
pub type TlsError = cellfed_pki::PkiError;

/// PEM files of the CA and the serving certificate.
pub type TlsMaterial = cellfed_pki::ServingCert;

/// Writes a file of the data dir readable by its owner only: every file written here (tokens,
/// kubeconfig, keys) holds a credential.
pub(crate) fn write(path: &Path, content: &str) -> Result<(), TlsError> {
    cellfed_pki::write(path, content, true)
}

/// Loads `ca.crt`, `serving.crt`, `serving.key` from the data dir, or generates them (valid
/// for the given host names/IPs plus localhost, loopback and the in-cluster service names).
pub fn ensure(data_dir: &Path, hosts: &[String]) -> Result<TlsMaterial, TlsError> {
    let mut names = vec![
        "kubernetes".to_string(),
        "kubernetes.default.svc".to_string(),
    ];
    names.extend(hosts.iter().cloned());
    cellfed_pki::ensure(
        &cellfed_pki::Files::in_dir(data_dir, "serving.crt", "serving.key"),
        "cellfed-apiserver",
        &names,
    )
}

/// A rustls server config offering h2 and http/1.1.
pub fn server_config(m: &TlsMaterial) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    cellfed_pki::server_config(m, &[b"h2", b"http/1.1"])
}

/// [`server_config`], and with a client CA (`--client-ca-file`) one that asks every client for
/// a certificate without requiring one; the chain is verified per request by the x509
/// authenticator, as kube-apiserver does (`tls.RequestClientCert`).
pub fn server_config_with_client_ca(
    m: &TlsMaterial,
    client_ca: Option<&cellfed_auth::x509::ClientCa>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let Some(client_ca) = client_ca else {
        return server_config(m);
    };
    let pem_error = |what: &'static str, e: &dyn std::fmt::Display| TlsError::ParsePem {
        what,
        message: e.to_string(),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(m.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error("serving certificate", &e))?;
    let key = PrivateKeyDer::from_pem_slice(m.key_pem.as_bytes())
        .map_err(|e| pem_error("serving key", &e))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_client_cert_verifier(client_ca.handshake_verifier())
    .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A random token of 32 hex characters.
pub fn random_token() -> String {
    let b: [u8; 16] = rand::thread_rng().r#gen();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The kubeconfig of an admin user for this server.
pub fn kubeconfig(server_url: &str, ca_pem: Option<&str>, token: Option<&str>) -> String {
    use base64::Engine;
    let mut cluster = format!("    server: {server_url}\n");
    if let Some(ca) = ca_pem {
        let b64 = base64::engine::general_purpose::STANDARD.encode(ca);
        cluster.push_str(&format!("    certificate-authority-data: {b64}\n"));
    }
    let user = match token {
        Some(t) => format!("    token: {t}\n"),
        None => "    {}\n".to_string(),
    };
    let user = if token.is_some() {
        format!("  user:\n{user}")
    } else {
        "  user: {}\n".to_string()
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: cellfed\n  cluster:\n{cluster}users:\n- name: cellfed-admin\n{user}contexts:\n- name: cellfed\n  context:\n    cluster: cellfed\n    user: cellfed-admin\ncurrent-context: cellfed\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reuses() {
        let dir = std::env::temp_dir().join(format!("cellfed-tls-{}", random_token()));
        let a = ensure(&dir, &["example.test".into()]).unwrap();
        let b = ensure(&dir, &[]).unwrap();
        assert_eq!(a.ca_pem, b.ca_pem);
        assert!(server_config(&a).is_ok());
        let kc = kubeconfig("https://127.0.0.1:1", Some(&a.ca_pem), Some("tok"));
        assert!(kc.contains("token: tok"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            write(&dir.join("kubeconfig"), &kc).unwrap();
            for f in ["serving.key", "kubeconfig"] {
                let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{f}");
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
