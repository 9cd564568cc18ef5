//! Serving certificate of the webhook: `tls.crt`/`tls.key` (and `ca.crt`) from the cert dir when
//! present (the Helm chart mounts its Secret there), otherwise a self-signed CA and certificate
//! generated into it, so callers can read `ca.crt` as their caBundle.

use std::path::Path;
use std::sync::Arc;

/// Why the certificate could not be prepared.
pub type Error = cellfed_pki::PkiError;

/// Loads or creates the certificate in `dir` for `hosts` (plus localhost and loopback).
pub fn ensure(dir: &Path, hosts: &[String]) -> Result<cellfed_pki::ServingCert, Error> {
    cellfed_pki::ensure(
        &cellfed_pki::Files::in_dir(dir, "tls.crt", "tls.key"),
        "cellfed-webhook",
        hosts,
    )
}

/// rustls server configuration offering h2 and http/1.1.
pub fn server_config(cert: &cellfed_pki::ServingCert) -> Result<Arc<rustls::ServerConfig>, Error> {
    cellfed_pki::server_config(cert, &[b"h2", b"http/1.1"])
}

/// [`server_config`] also verifying client certificates against `client_ca_pem` (optional at the
/// handshake; `/validate` refuses callers without one).
pub fn server_config_with_client_ca(
    cert: &cellfed_pki::ServingCert,
    client_ca_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, Error> {
    cellfed_pki::server_config_with_client_ca(cert, &[b"h2", b"http/1.1"], client_ca_pem)
}
