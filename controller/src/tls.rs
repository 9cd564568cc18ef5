//! Member clients that skip only the TLS checks a KubeFedCluster's `disabledTLSValidations`
//! names, as KubeFed's `CustomizeCertificateValidation` does: `SubjectName` accepts a certificate
//! whose names do not match the endpoint's host, `ValidityPeriod` one that is expired or not yet
//! valid (it is checked as of one second after its `notBefore`, like KubeFed); the chain to the
//! cluster's CA and the handshake signatures are always verified. (`*` skips everything and
//! needs none of this: kube's `insecure-skip-tls-verify`.)
//!
//! kube builds its TLS config internally with no hook for a verifier, so for these clusters the
//! client's service stack is built here the way kube's own `ClientBuilder` builds it (rustls
//! config from kube, hyper-util client with connect/read/write timeouts, kube's base-URI and auth
//! layers) with rustls's building blocks for the verifier (`verify_server_cert_signed_by_trust_anchor`,
//! `verify_server_name`).

use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tower::{BoxError, ServiceBuilder};

/// Which checks to skip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skip {
    /// `SubjectName`: the certificate's names against the endpoint's host.
    pub subject_name: bool,
    /// `ValidityPeriod`: the certificates' notBefore/notAfter against the clock.
    pub validity_period: bool,
}

/// A kube client for `config` whose TLS verification skips `skip` (at least one of them).
pub fn client(config: kube::Config, skip: Skip) -> Result<kube::Client, String> {
    if config.proxy_url.is_some() {
        return Err(
            "disabledTLSValidations SubjectName/ValidityPeriod cannot be combined with proxyURL; use [\"*\"] or a certificate that passes"
                .into(),
        );
    }
    let roots = config.root_cert.clone().unwrap_or_default();
    if roots.is_empty() {
        return Err(
            "disabledTLSValidations SubjectName/ValidityPeriod still verify the certificate chain: set spec.caBundle (or ca.crt in the Secret)"
                .into(),
        );
    }
    let mut store = RootCertStore::empty();
    for der in roots {
        store
            .add(CertificateDer::from(der))
            .map_err(|e| format!("caBundle: {e}"))?;
    }
    let mut tls = config
        .rustls_client_config()
        .map_err(|e| format!("TLS configuration: {e}"))?;
    let verifier = Verifier {
        roots: Arc::new(store),
        skip,
        provider: tls.crypto_provider().clone(),
    };
    tls.dangerous().set_certificate_verifier(Arc::new(verifier));

    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    let http_client: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
    let auth = config
        .auth_layer()
        .map_err(|e| format!("credentials: {e}"))?;
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(auth)
        .map_err(BoxError::from)
        .service(http_client);
    Ok(kube::Client::new(service, config.default_namespace))
}

/// Verifies the chain and signatures, and whatever of name and validity `skip` keeps.
#[derive(Debug)]
struct Verifier {
    roots: Arc<RootCertStore>,
    skip: Skip,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        let at = if self.skip.validity_period {
            just_after_not_before(end_entity)?
        } else {
            now
        };
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            at,
            self.provider.signature_verification_algorithms.all,
        )?;
        if !self.skip.subject_name {
            verify_server_name(&cert, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// One second after the certificate's notBefore (KubeFed's time for a skipped validity check).
fn just_after_not_before(der: &CertificateDer<'_>) -> Result<UnixTime, rustls::Error> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| rustls::Error::General(format!("server certificate: {e}")))?;
    let seconds =
        u64::try_from(cert.validity().not_before.timestamp().saturating_add(1)).unwrap_or_default();
    Ok(UnixTime::since_unix_epoch(Duration::from_secs(seconds)))
}
