//! Serving certificates shared by every cellfed listener (apiserver, webhook, tunnel): PEM files
//! in a directory, loaded when present (a Helm-mounted Secret, an operator's own certificate) or
//! generated once — a self-signed CA and a serving certificate it signs, valid for the given host
//! names and IPs plus localhost, 127.0.0.1 and ::1. Private keys are written 0600. [`listen`]
//! accepts connections for those listeners within limits an unauthenticated client cannot exhaust.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let files = cellfed_pki::Files::in_dir(dir.path(), "tls.crt", "tls.key");
//! let cert = cellfed_pki::ensure(&files, "cellfed-webhook", &["hook.svc".into()]).unwrap();
//! let server = cellfed_pki::server_config(&cert, &[b"http/1.1"]).unwrap();
//! let client = cellfed_pki::client_config(&cert.ca_pem, &[b"http/1.1"]).unwrap();
//! # let _ = (server, client);
//! ```

pub mod health;
pub mod listen;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// Why certificate material or a TLS configuration could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    AccessFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM input does not parse or holds nothing usable.
    #[error("{what}: {message}")]
    ParsePem {
        /// What was parsed.
        what: &'static str,
        /// Why it failed.
        message: String,
    },
    /// rustls refused the configuration (e.g. a key that does not match the certificate).
    #[error("configuring TLS: {0}")]
    Configure(#[from] rustls::Error),
}

/// Where the CA certificate, the serving certificate (chain) and its key live.
#[derive(Clone, Debug)]
pub struct Files {
    /// The CA clients trust.
    pub ca: PathBuf,
    /// The serving certificate chain.
    pub cert: PathBuf,
    /// The serving certificate's private key.
    pub key: PathBuf,
}

impl Files {
    /// `ca.crt`, and the given certificate and key file names, in `dir`.
    pub fn in_dir(dir: &Path, cert: &str, key: &str) -> Self {
        Self {
            ca: dir.join("ca.crt"),
            cert: dir.join(cert),
            key: dir.join(key),
        }
    }
}

/// PEM of the CA, the serving certificate and its key.
#[derive(Clone, Debug)]
pub struct ServingCert {
    /// The CA certificate clients trust; empty when the directory held a certificate and key
    /// but no `ca.crt` (a mounted Secret without one).
    pub ca_pem: String,
    /// The serving certificate chain.
    pub cert_pem: String,
    /// The private key.
    pub key_pem: String,
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::AccessFile {
        path: path.into(),
        source,
    })
}

/// Creates `dir` (and its parents) if missing and makes it 0700: the directory holding keys,
/// tokens and the database is its owner's alone.
pub fn private_dir(dir: &Path) -> Result<(), PkiError> {
    let fail = |source| PkiError::AccessFile {
        path: dir.into(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    Ok(())
}

/// Writes `content` to `path`, creating its directory; `private` files are made 0600 before any
/// secret is written to them.
pub fn write(path: &Path, content: &str, private: bool) -> Result<(), PkiError> {
    let fail = |source| PkiError::AccessFile {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(fail)?;
    #[cfg(unix)]
    if private {
        // an existing file keeps its mode through open(): narrow it too
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(fail)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    std::io::Write::write_all(&mut file, content.as_bytes()).map_err(fail)
}

/// Loads the certificate and key (and the CA when present) from `files`, or generates a CA
/// (`<common_name>-ca`) and a serving certificate named `common_name` for `hosts` plus
/// localhost, 127.0.0.1 and ::1, and writes them there.
pub fn ensure(files: &Files, common_name: &str, hosts: &[String]) -> Result<ServingCert, PkiError> {
    if files.cert.exists() && files.key.exists() {
        return Ok(ServingCert {
            ca_pem: if files.ca.exists() {
                read(&files.ca)?
            } else {
                String::new()
            },
            cert_pem: read(&files.cert)?,
            key_pem: read(&files.key)?,
        });
    }
    let out = generate(common_name, hosts)?;
    write(&files.ca, &out.ca_pem, false)?;
    write(&files.cert, &out.cert_pem, false)?;
    write(&files.key, &out.key_pem, true)?;
    Ok(out)
}

/// A self-signed CA named `<common_name>-ca`.
fn new_ca(common_name: &str) -> Result<(rcgen::Certificate, rcgen::KeyPair), PkiError> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{common_name}-ca"));
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    Ok((ca_cert, ca_key))
}

/// A new CA and a serving certificate it signs (nothing written).
pub fn generate(common_name: &str, hosts: &[String]) -> Result<ServingCert, PkiError> {
    let (ca_cert, ca_key) = new_ca(common_name)?;
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for host in hosts {
        if !names.contains(host) {
            names.push(host.clone());
        }
    }
    let serving_key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&serving_key, &ca_cert, &ca_key)?;
    Ok(ServingCert {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: serving_key.serialize_pem(),
    })
}

/// A client identity: the CA that signed it, the certificate and its key (PEM).
#[derive(Clone, Debug)]
pub struct ClientCert {
    /// The CA a server trusts for clients (its `--client-ca-file`).
    pub ca_pem: String,
    /// The client certificate.
    pub cert_pem: String,
    /// The private key.
    pub key_pem: String,
}

/// A new CA (`<common_name>-ca`) and a client certificate it signs for user `common_name` in
/// `groups` (Organizations, as kube reads x509 identities); nothing written.
pub fn generate_client(common_name: &str, groups: &[&str]) -> Result<ClientCert, PkiError> {
    let (ca_cert, ca_key) = new_ca(common_name)?;
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    for g in groups {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, *g);
    }
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &ca_cert, &ca_key)?;
    Ok(ClientCert {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls server configuration over the certificate, offering `alpn` in order.
pub fn server_config(
    cert: &ServingCert,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, PkiError> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| PkiError::ParsePem {
                what: "serving certificate",
                message: e.to_string(),
            })?;
    if certs.is_empty() {
        return Err(PkiError::ParsePem {
            what: "serving certificate",
            message: "no certificate found".into(),
        });
    }
    let key =
        PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).map_err(|e| PkiError::ParsePem {
            what: "serving key",
            message: e.to_string(),
        })?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// [`server_config`] that also asks clients for a certificate signed by a CA in `client_ca_pem`
/// (a server's `--client-ca-file`): a certificate from any other CA fails the handshake; a client
/// without one is let through, for the handler to refuse where a caller must be authenticated
/// (health endpoints stay public). [`peer_verified`] tells a handler which case it serves.
pub fn server_config_with_client_ca(
    cert: &ServingCert,
    alpn: &[&[u8]],
    client_ca_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, PkiError> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(client_ca_pem)?),
        provider(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| PkiError::ParsePem {
        what: "client CA",
        message: e.to_string(),
    })?;
    let base = server_config(cert, alpn)?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(base.cert_resolver.clone());
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// Whether the client of a server connection presented a certificate (with
/// [`server_config_with_client_ca`], one is only accepted when a trusted CA signed it).
pub fn peer_verified(conn: &rustls::ServerConnection) -> bool {
    conn.peer_certificates().is_some_and(|c| !c.is_empty())
}

/// Certificates and key of a client identity for [`rustls::ConfigBuilder::with_client_auth_cert`].
pub fn client_auth(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| PkiError::ParsePem {
            what: "client certificate",
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(PkiError::ParsePem {
            what: "client certificate",
            message: "no certificate found".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| PkiError::ParsePem {
        what: "client key",
        message: e.to_string(),
    })?;
    Ok((certs, key))
}

/// The CA certificates in `ca_pem` as a root store; an error when it holds none.
pub fn roots(ca_pem: &[u8]) -> Result<rustls::RootCertStore, PkiError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| PkiError::ParsePem {
            what: "CA certificate",
            message: e.to_string(),
        })?;
        roots.add(cert)?;
    }
    if roots.is_empty() {
        return Err(PkiError::ParsePem {
            what: "CA certificate",
            message: "no certificate found".into(),
        });
    }
    Ok(roots)
}

/// A rustls client configuration trusting the CA certificates in `ca_pem` and offering `alpn`.
pub fn client_config(ca_pem: &str, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>, PkiError> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_pem.as_bytes())?)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_loads_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::in_dir(dir.path(), "tls.crt", "tls.key");
        let a = ensure(&files, "cellfed-test", &["example.test".into()]).unwrap();
        let b = ensure(&files, "cellfed-test", &[]).unwrap();
        assert_eq!(a.ca_pem, b.ca_pem);
        assert_eq!(a.cert_pem, b.cert_pem);
        assert_eq!(a.key_pem, b.key_pem);
        assert!(server_config(&a, &[b"h2"]).is_ok());
        assert!(client_config(&a.ca_pem, &[]).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn keys_are_private_and_certificates_readable() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let files = Files::in_dir(dir.path(), "serving.crt", "serving.key");
        ensure(&files, "cellfed-test", &[]).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files.key), 0o600);
        // an existing world-readable file is narrowed when a secret is written to it
        let token = dir.path().join("token");
        std::fs::write(&token, "old").unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&token, "secret", true).unwrap();
        assert_eq!(mode(&token), 0o600);
        assert_eq!(std::fs::read_to_string(&token).unwrap(), "secret");
    }

    #[cfg(unix)]
    #[test]
    fn data_directories_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let fresh = dir.path().join("a/b");
        private_dir(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        // an existing open directory is narrowed
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
    }

    #[test]
    fn a_mounted_certificate_without_ca_is_used_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let mounted = generate("mounted", &[]).unwrap();
        let files = Files::in_dir(dir.path(), "tls.crt", "tls.key");
        write(&files.cert, &mounted.cert_pem, false).unwrap();
        write(&files.key, &mounted.key_pem, true).unwrap();
        let got = ensure(&files, "cellfed-test", &[]).unwrap();
        assert_eq!(got.cert_pem, mounted.cert_pem);
        assert!(got.ca_pem.is_empty());
        assert!(!files.ca.exists(), "nothing generated over a mounted pair");
    }

    #[test]
    fn bad_pem_is_refused_with_what_was_wrong() {
        let good = generate("x", &[]).unwrap();
        let other = generate("y", &[]).unwrap();
        assert!(matches!(
            client_config("", &[]),
            Err(PkiError::ParsePem {
                what: "CA certificate",
                ..
            })
        ));
        let no_cert = ServingCert {
            cert_pem: "garbage".into(),
            ..good.clone()
        };
        assert!(matches!(
            server_config(&no_cert, &[]),
            Err(PkiError::ParsePem { .. })
        ));
        let mismatched = ServingCert {
            key_pem: other.key_pem,
            ..good
        };
        assert!(server_config(&mismatched, &[]).is_err());
    }
}
