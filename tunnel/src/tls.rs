//! TLS of the agent listener: the server's certificate (given, or a self-signed CA and serving
//! certificate generated once into a directory) and the agent's client configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// Why TLS material could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    AccessFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("generating the tunnel certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM file does not parse.
    #[error("{what}: {message}")]
    ParsePem {
        /// What was parsed.
        what: String,
        /// Why it failed.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("configuring TLS: {0}")]
    Configure(#[from] rustls::Error),
}

/// PEM of the serving certificate (chain), its key, and the CA agents should trust.
#[derive(Clone, Debug)]
pub struct ServingCert {
    /// CA certificate agents trust (`--ca-file` of `cellfed agent`).
    pub ca_pem: String,
    /// Serving certificate chain.
    pub cert_pem: String,
    /// Private key.
    pub key_pem: String,
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::AccessFile {
        path: path.into(),
        source,
    })
}

fn write(path: &Path, content: &str, private: bool) -> Result<(), TlsError> {
    let fail = |source| TlsError::AccessFile {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    std::fs::write(path, content).map_err(fail)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    Ok(())
}

/// Loads `ca.crt`, `tls.crt`, `tls.key` from `dir`, or generates them: a CA and a serving
/// certificate valid for `hosts` plus localhost, 127.0.0.1 and ::1.
pub fn ensure(dir: &Path, hosts: &[String]) -> Result<ServingCert, TlsError> {
    let (ca, crt, key) = (dir.join("ca.crt"), dir.join("tls.crt"), dir.join("tls.key"));
    if ca.exists() && crt.exists() && key.exists() {
        return Ok(ServingCert {
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
        .push(rcgen::DnType::CommonName, "cellfed-tunnel-ca");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let mut names = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    names.extend(hosts.iter().cloned());
    names.sort();
    names.dedup();
    let serving_key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cellfed-tunnel");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&serving_key, &ca_cert, &ca_key)?;
    let out = ServingCert {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: serving_key.serialize_pem(),
    };
    write(&ca, &out.ca_pem, false)?;
    write(&crt, &out.cert_pem, false)?;
    write(&key, &out.key_pem, true)?;
    Ok(out)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The agent listener's rustls configuration (HTTP/1.1 only: the agent's upgrade request).
pub fn server_config(cert: &ServingCert) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::ParsePem {
                what: "serving certificate".into(),
                message: e.to_string(),
            })?;
    let key =
        PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).map_err(|e| TlsError::ParsePem {
            what: "serving key".into(),
            message: e.to_string(),
        })?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The agent's rustls configuration trusting the CA certificates in `ca_pem`.
pub fn client_config(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| TlsError::ParsePem {
            what: "CA certificate".into(),
            message: e.to_string(),
        })?;
        roots.add(cert)?;
    }
    if roots.is_empty() {
        return Err(TlsError::ParsePem {
            what: "CA certificate".into(),
            message: "no certificate found".into(),
        });
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_configures_both_sides() {
        let dir = tempfile::tempdir().unwrap();
        let a = ensure(dir.path(), &["tunnel.example".into()]).unwrap();
        let b = ensure(dir.path(), &[]).unwrap();
        assert_eq!(a.cert_pem, b.cert_pem);
        assert!(server_config(&a).is_ok());
        assert!(client_config(&a.ca_pem).is_ok());
        assert!(client_config("").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("tls.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
