//! x509 client certificates, kube-apiserver's `--client-ca-file`: the TLS layer verifies the
//! chain against the CA bundle (rustls' [`WebPkiClientVerifier`], which also checks validity
//! dates and the clientAuth extended key usage), then the user is read from the verified leaf as
//! kube's `CommonNameUserConversion` does: name = subject CommonName, groups = every subject
//! Organization, extra `authentication.kubernetes.io/credential-id = X509SHA256=<hex sha256 of the
//! certificate>`. A certificate without a CommonName authenticates no one.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::user::{CREDENTIAL_ID_KEY, UserInfo};

/// Why a CA bundle or a client certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The CA bundle is not PEM or holds a certificate that cannot be parsed.
    #[error("client CA bundle: {0}")]
    ReadCaBundle(String),
    /// The CA bundle holds no certificate at all.
    #[error("client CA bundle holds no CERTIFICATE block")]
    EmptyCaBundle,
    /// rustls refused to build a verifier from the bundle.
    #[error("client CA bundle: {0}")]
    BuildVerifier(#[from] rustls::server::VerifierBuilderError),
    /// The leaf certificate is not valid DER.
    #[error("client certificate cannot be parsed: {0}")]
    ParseCertificate(String),
    /// The presented chain does not verify against the CA bundle (another CA, expired, not for
    /// client authentication).
    #[error("verifying certificate: {0}")]
    VerifyCertificate(rustls::Error),
}

/// `Result` of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The certificates of a PEM CA bundle (`--client-ca-file`).
pub fn ca_certificates(ca_pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(ca_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::ReadCaBundle(e.to_string()))?;
    if certs.is_empty() {
        return Err(Error::EmptyCaBundle);
    }
    Ok(certs)
}

/// A rustls client-certificate verifier for a PEM CA bundle. Clients without a certificate are
/// let through the handshake (as kube does), so that other authenticators (bearer tokens) or the
/// anonymous user can take over; a certificate that is presented must chain to the bundle.
pub fn client_cert_verifier(
    ca_pem: &[u8],
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>> {
    let mut roots = RootCertStore::empty();
    for cert in ca_certificates(ca_pem)? {
        roots
            .add(cert)
            .map_err(|e| Error::ReadCaBundle(e.to_string()))?;
    }
    Ok(
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()?,
    )
}

/// kube-apiserver's way with `--client-ca-file`: the TLS layer only *requests* a client
/// certificate (Go's `tls.RequestClientCert`) and checks that the client holds its key, and the
/// x509 authenticator verifies the chain per request, so that a certificate from another CA, an
/// expired one or one not for client authentication is a 401 Unauthorized the client can read,
/// not a broken handshake, and a client without a certificate can still use a bearer token.
#[derive(Debug, Clone)]
pub struct ClientCa {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl ClientCa {
    /// The CA bundle of `--client-ca-file`.
    pub fn from_pem(ca_pem: &[u8], provider: Arc<rustls::crypto::CryptoProvider>) -> Result<Self> {
        Ok(Self {
            verifier: client_cert_verifier(ca_pem, provider)?,
        })
    }

    /// The verifier for the rustls server configuration: asks every client for a certificate
    /// (naming the bundle's CAs), never requires one, checks the handshake signature with the
    /// certificate's key, and leaves the chain to [`ClientCa::authenticate`].
    pub fn handshake_verifier(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::new(RequestClientCert {
            inner: self.verifier.clone(),
        })
    }

    /// The user of the chain a client presented (leaf first): `Ok(None)` without a certificate
    /// or without a CommonName, an error when the chain does not verify against the bundle at
    /// `now`.
    pub fn authenticate(
        &self,
        chain: &[CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> Result<Option<UserInfo>> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Ok(None);
        };
        self.verifier
            .verify_client_cert(leaf, intermediates, now)
            .map_err(Error::VerifyCertificate)?;
        user_from_chain(chain)
    }
}

/// Requests a client certificate and verifies only the handshake signature (see [`ClientCa`]).
#[derive(Debug)]
struct RequestClientCert {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        // Deferred: ClientCa::authenticate verifies the chain before anyone trusts it.
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The user of a verified client certificate chain (leaf first), or `None` when there is no
/// certificate or its subject has no CommonName. Call it only with a chain the TLS layer has
/// verified.
pub fn user_from_chain(chain: &[CertificateDer<'_>]) -> Result<Option<UserInfo>> {
    let Some(leaf) = chain.first() else {
        return Ok(None);
    };
    let (_, cert) = X509Certificate::from_der(leaf.as_ref())
        .map_err(|e| Error::ParseCertificate(e.to_string()))?;
    let subject = cert.subject();
    // Go's pkix.Name keeps the last CommonName and every Organization, in order.
    let name = subject
        .iter_common_name()
        .filter_map(|a| a.as_str().ok())
        .last()
        .unwrap_or_default();
    if name.is_empty() {
        return Ok(None);
    }
    let groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .map(str::to_string)
        .collect();
    let fingerprint = Sha256::digest(leaf.as_ref());
    let hex: String = fingerprint.iter().map(|b| format!("{b:02x}")).collect();
    let mut user = UserInfo::new(name, groups);
    user.extra.insert(
        CREDENTIAL_ID_KEY.to_string(),
        vec![format!("X509SHA256={hex}")],
    );
    Ok(Some(user))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::UnixTime;

    const CA: &[u8] = include_bytes!("../testdata/ca.crt");
    const ALICE: &[u8] = include_bytes!("../testdata/alice.crt");

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn der(pem: &[u8]) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem).unwrap()
    }

    #[test]
    fn common_name_is_the_user_and_organizations_are_groups() {
        let user = user_from_chain(&[der(ALICE)]).unwrap().unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, ["system:masters", "dev"]);
        let id = &user.extra[CREDENTIAL_ID_KEY][0];
        assert!(id.starts_with("X509SHA256=") && id.len() == 11 + 64, "{id}");
    }

    #[test]
    fn no_certificate_or_no_common_name_is_no_user() {
        assert_eq!(user_from_chain(&[]).unwrap(), None);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "dev");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(user_from_chain(&[cert.der().clone()]).unwrap(), None);
        assert!(user_from_chain(&[CertificateDer::from(vec![1, 2, 3])]).is_err());
    }

    #[test]
    fn verifier_accepts_the_bundle_s_clients_only() {
        let verifier = client_cert_verifier(CA, provider()).unwrap();
        assert!(!verifier.client_auth_mandatory());
        verifier
            .verify_client_cert(&der(ALICE), &[], UnixTime::now())
            .unwrap();

        // A certificate with the same subject from another CA is refused.
        let other_ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let other_ca = ca_params.self_signed(&other_ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let forged = params.signed_by(&key, &other_ca, &other_ca_key).unwrap();
        assert!(
            verifier
                .verify_client_cert(forged.der(), &[], UnixTime::now())
                .is_err()
        );
    }

    #[test]
    fn client_ca_requests_certificates_and_verifies_chains_per_request() {
        let ca = ClientCa::from_pem(CA, provider()).unwrap();
        let hs = ca.handshake_verifier();
        assert!(hs.offer_client_auth());
        assert!(!hs.client_auth_mandatory());
        assert!(!hs.root_hint_subjects().is_empty());
        let user = ca
            .authenticate(&[der(ALICE)], UnixTime::now())
            .unwrap()
            .unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(ca.authenticate(&[], UnixTime::now()).unwrap(), None);

        let other_ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let other_ca = ca_params.self_signed(&other_ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let forged = params.signed_by(&key, &other_ca, &other_ca_key).unwrap();
        // The handshake lets it through; authentication refuses it.
        assert!(
            hs.verify_client_cert(forged.der(), &[], UnixTime::now())
                .is_ok()
        );
        let e = ca
            .authenticate(&[forged.der().clone()], UnixTime::now())
            .unwrap_err();
        assert!(matches!(e, Error::VerifyCertificate(_)), "{e}");
    }

    #[test]
    fn bad_bundles_are_refused() {
        assert!(matches!(
            client_cert_verifier(b"", provider()),
            Err(Error::EmptyCaBundle)
        ));
        assert!(
            ca_certificates(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
                .is_err()
        );
    }
}
