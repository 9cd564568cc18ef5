//! Serving certificate of the webhook: `tls.crt`/`tls.key` (and `ca.crt`) from the cert dir when
//! present (the Helm chart mounts its Secret there), otherwise a self-signed CA and certificate
//! generated into it, so callers can read `ca.crt` as their caBundle.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// Why the certificate could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    AccessFile {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Generating a certificate failed.
    #[error("generating the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The PEM files do not form a usable key pair.
    #[error("TLS configuration: {0}")]
    Configure(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::AccessFile {
        path: path.display().to_string(),
        source,
    }
}

/// Loads or creates the certificate in `dir` for `hosts` (plus localhost and loopback).
pub fn ensure(dir: &Path, hosts: &[String]) -> Result<(String, String), Error> {
    let (crt, key, ca) = (dir.join("tls.crt"), dir.join("tls.key"), dir.join("ca.crt"));
    if crt.exists() && key.exists() {
        return Ok((
            std::fs::read_to_string(&crt).map_err(io(&crt))?,
            std::fs::read_to_string(&key).map_err(io(&key))?,
        ));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cellfed-webhook-ca");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    names.extend(hosts.iter().cloned());
    let serving_key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cellfed-webhook");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&serving_key, &ca_cert, &ca_key)?;
    let (cert_pem, key_pem) = (cert.pem(), serving_key.serialize_pem());
    std::fs::write(&ca, ca_cert.pem()).map_err(io(&ca))?;
    std::fs::write(&crt, &cert_pem).map_err(io(&crt))?;
    std::fs::write(&key, &key_pem).map_err(io(&key))?;
    Ok((cert_pem, key_pem))
}

/// rustls server configuration for the PEM pair.
pub fn server_config(cert_pem: &str, key_pem: &str) -> Result<Arc<rustls::ServerConfig>, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Configure(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| Error::Configure(e.to_string()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Configure(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| Error::Configure(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
