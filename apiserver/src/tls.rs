//! Listening material in the data dir: a self-signed CA and serving certificate, the static
//! token file and an admin kubeconfig.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::Rng;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// Why TLS material or the kubeconfig could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a file in the data dir failed.
    #[error("{path}: {source}")]
    AccessFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("generate certificate: {0}")]
    GenerateCertificate(#[from] rcgen::Error),
    /// A PEM file does not parse.
    #[error("parse {path}: {message}")]
    ParsePem { path: PathBuf, message: String },
    /// rustls rejected the certificate/key pair.
    #[error("configure TLS: {0}")]
    ConfigureTls(#[from] rustls::Error),
}

/// PEM files of the CA and the serving certificate.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::AccessFile {
        path: path.into(),
        source,
    })
}

pub(crate) fn write(path: &Path, content: &str) -> Result<(), TlsError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::AccessFile {
            path: dir.into(),
            source,
        })?;
    }
    std::fs::write(path, content).map_err(|source| TlsError::AccessFile {
        path: path.into(),
        source,
    })
}

/// Loads `ca.crt`, `serving.crt`, `serving.key` from the data dir, or generates them (CA valid
/// for the given host names/IPs plus localhost, 127.0.0.1 and ::1).
pub fn ensure(data_dir: &Path, hosts: &[String]) -> Result<TlsMaterial, TlsError> {
    let (ca, crt, key) = (
        data_dir.join("ca.crt"),
        data_dir.join("serving.crt"),
        data_dir.join("serving.key"),
    );
    if ca.exists() && crt.exists() && key.exists() {
        return Ok(TlsMaterial {
            ca_pem: read(&ca)?,
            cert_pem: read(&crt)?,
            key_pem: read(&key)?,
        });
    }
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cellfed-ca");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default.svc".to_string(),
    ];
    names.extend(hosts.iter().cloned());
    names.dedup();
    let serving_key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cellfed-apiserver");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&serving_key, &ca_cert, &ca_key)?;
    let m = TlsMaterial {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: serving_key.serialize_pem(),
    };
    write(&ca, &m.ca_pem)?;
    write(&crt, &m.cert_pem)?;
    write(&key, &m.key_pem)?;
    Ok(m)
}

/// A rustls server config offering h2 and http/1.1.
pub fn server_config(m: &TlsMaterial) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(m.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::ParsePem {
            path: "serving.crt".into(),
            message: e.to_string(),
        })?;
    let key =
        PrivateKeyDer::from_pem_slice(m.key_pem.as_bytes()).map_err(|e| TlsError::ParsePem {
            path: "serving.key".into(),
            message: e.to_string(),
        })?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
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
        std::fs::remove_dir_all(dir).unwrap();
    }
}
