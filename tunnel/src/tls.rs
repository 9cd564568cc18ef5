//! TLS of the agent listener: the server's certificate (given, or a self-signed CA and serving
//! certificate generated once into a directory) and the agent's client configuration.

use std::path::Path;
use std::sync::Arc;

/// Why TLS material could not be prepared.
pub type TlsError = cellfed_pki::PkiError;

/// PEM of the serving certificate (chain), its key, and the CA agents should trust
/// (`--ca-file` of `cellfed agent`).
pub type ServingCert = cellfed_pki::ServingCert;

/// Loads `ca.crt`, `tls.crt`, `tls.key` from `dir`, or generates them: a CA and a serving
/// certificate valid for `hosts` plus localhost, 127.0.0.1 and ::1.
pub fn ensure(dir: &Path, hosts: &[String]) -> Result<ServingCert, TlsError> {
    cellfed_pki::ensure(
        &cellfed_pki::Files::in_dir(dir, "tls.crt", "tls.key"),
        "cellfed-tunnel",
        hosts,
    )
}

/// The agent listener's rustls configuration (HTTP/1.1 only: the agent's upgrade request).
pub fn server_config(cert: &ServingCert) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    cellfed_pki::server_config(cert, &[b"http/1.1"])
}

/// The agent's rustls configuration trusting the CA certificates in `ca_pem`.
pub fn client_config(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    cellfed_pki::client_config(ca_pem, &[b"http/1.1"])
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
