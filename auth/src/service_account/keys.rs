//! ServiceAccount token keys from PEM files, read as kube-apiserver reads
//! `--service-account-signing-key-file` (one RSA or ECDSA private key: `RSA PRIVATE KEY`,
//! `EC PRIVATE KEY` or PKCS#8 `PRIVATE KEY`) and `--service-account-key-file` (any number of
//! `PUBLIC KEY`, `RSA PUBLIC KEY`, `CERTIFICATE` or private-key blocks; a private key stands for
//! its public half). Each key's id (`kid`) is kube's: base64url(sha256(PKIX DER of the public key)).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not PEM (an unterminated block or a body that is not base64).
    #[error("PEM: {0}")]
    ParsePem(String),
    /// A block holds no key of a supported kind (RSA, ECDSA P-256 or P-384).
    #[error("PEM block {label:?} #{index}: not an RSA or ECDSA P-256/P-384 key: {reason}")]
    ParseKey {
        /// The block's label (`PUBLIC KEY`, …).
        label: String,
        /// The 1-based position of the block in the file.
        index: usize,
        /// What the parser said.
        reason: String,
    },
    /// The signing key file holds no private key.
    #[error(
        "the signing key file holds no private key (RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY)"
    )]
    NoPrivateKey,
    /// The verification key file holds no key.
    #[error("the key file holds no public key, certificate or private key")]
    NoPublicKey,
}

/// `Result` of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A private key that signs ServiceAccount tokens.
#[derive(Clone)]
pub struct SigningKey {
    pub(crate) algorithm: Algorithm,
    pub(crate) key: EncodingKey,
    pub(crate) key_id: String,
    public: VerifyingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads the first private key of a PEM file (`--service-account-signing-key-file`).
    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        for (index, (label, der)) in pem_blocks(pem)?.into_iter().enumerate() {
            if let Some(key) = private_key(&label, &der, index + 1)? {
                return Ok(key);
            }
        }
        Err(Error::NoPrivateKey)
    }

    /// A new ECDSA P-256 private key as a PKCS#8 PEM (`PRIVATE KEY`), for servers that generate
    /// their signing key when none is configured. The caller writes it owner-readable only.
    pub fn generate_pem() -> Result<zeroize::Zeroizing<String>> {
        p256::SecretKey::random(&mut rand::rngs::OsRng)
            .to_pkcs8_pem(Default::default())
            .map_err(|e| key_error("PRIVATE KEY", 1, e))
    }

    /// The JWS algorithm: RS256 for RSA, ES256/ES384 for ECDSA P-256/P-384.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// kube's key id of this key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public half, for the authenticator.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.public.clone()
    }
}

/// A public key that verifies ServiceAccount tokens.
#[derive(Clone)]
pub struct VerifyingKey {
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
    pub(crate) key_id: String,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Every key of a PEM file (`--service-account-key-file`, which may be repeated: call it
    /// per file and concatenate).
    pub fn all_from_pem(pem: &[u8]) -> Result<Vec<Self>> {
        let mut keys = Vec::new();
        for (index, (label, der)) in pem_blocks(pem)?.into_iter().enumerate() {
            let index = index + 1;
            if let Some(key) = private_key(&label, &der, index)? {
                keys.push(key.public);
                continue;
            }
            let spki = match label.as_str() {
                "PUBLIC KEY" => der,
                "RSA PUBLIC KEY" => {
                    let key = rsa::RsaPublicKey::from_pkcs1_der(&der)
                        .map_err(|e| key_error(&label, index, e))?;
                    keys.push(rsa_public(&key, &label, index)?);
                    continue;
                }
                "CERTIFICATE" => {
                    use x509_parser::prelude::{FromDer, X509Certificate};
                    let (_, cert) =
                        X509Certificate::from_der(&der).map_err(|e| key_error(&label, index, e))?;
                    cert.public_key().raw.to_vec()
                }
                _ => continue,
            };
            keys.push(public_from_spki(&spki, &label, index)?);
        }
        if keys.is_empty() {
            return Err(Error::NoPublicKey);
        }
        Ok(keys)
    }

    /// The JWS algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// kube's key id of this key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

fn key_error(label: &str, index: usize, e: impl std::fmt::Display) -> Error {
    Error::ParseKey {
        label: label.to_string(),
        index,
        reason: e.to_string(),
    }
}

/// kube's `keyIDFromPublicKey`: base64url(sha256(PKIX DER)), unpadded.
fn key_id(spki_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(spki_der))
}

/// The private key of a block, `None` when the block is not a private key.
fn private_key(label: &str, der: &[u8], index: usize) -> Result<Option<SigningKey>> {
    let err = |e: &dyn std::fmt::Display| key_error(label, index, e);
    let key = match label {
        "RSA PRIVATE KEY" => rsa_signing(
            rsa::RsaPrivateKey::from_pkcs1_der(der).map_err(|e| err(&e))?,
            label,
            index,
        )?,
        "EC PRIVATE KEY" => match p256::SecretKey::from_sec1_der(der) {
            Ok(k) => p256_signing(&k, label, index)?,
            Err(_) => p384_signing(
                &p384::SecretKey::from_sec1_der(der).map_err(|e| err(&e))?,
                label,
                index,
            )?,
        },
        "PRIVATE KEY" => {
            if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_der(der) {
                rsa_signing(k, label, index)?
            } else if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
                p256_signing(&k, label, index)?
            } else {
                let k = p384::SecretKey::from_pkcs8_der(der).map_err(|e| err(&e))?;
                p384_signing(&k, label, index)?
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(key))
}

fn rsa_signing(key: rsa::RsaPrivateKey, label: &str, index: usize) -> Result<SigningKey> {
    let der = key.to_pkcs1_der().map_err(|e| key_error(label, index, e))?;
    let public = rsa_public(&key.to_public_key(), label, index)?;
    Ok(SigningKey {
        algorithm: Algorithm::RS256,
        key: EncodingKey::from_rsa_der(der.as_bytes()),
        key_id: public.key_id.clone(),
        public,
    })
}

fn rsa_public(key: &rsa::RsaPublicKey, label: &str, index: usize) -> Result<VerifyingKey> {
    let spki = key
        .to_public_key_der()
        .map_err(|e| key_error(label, index, e))?;
    Ok(VerifyingKey {
        algorithm: Algorithm::RS256,
        key: DecodingKey::from_rsa_raw_components(&key.n().to_bytes_be(), &key.e().to_bytes_be()),
        key_id: key_id(spki.as_bytes()),
    })
}

macro_rules! ec_key_fns {
    ($signing:ident, $public:ident, $curve:ident, $alg:expr) => {
        fn $signing(key: &$curve::SecretKey, label: &str, index: usize) -> Result<SigningKey> {
            let der = key.to_pkcs8_der().map_err(|e| key_error(label, index, e))?;
            let public = $public(&key.public_key(), label, index)?;
            Ok(SigningKey {
                algorithm: $alg,
                key: EncodingKey::from_ec_der(der.as_bytes()),
                key_id: public.key_id.clone(),
                public,
            })
        }

        fn $public(key: &$curve::PublicKey, label: &str, index: usize) -> Result<VerifyingKey> {
            let spki = key
                .to_public_key_der()
                .map_err(|e| key_error(label, index, e))?;
            Ok(VerifyingKey {
                algorithm: $alg,
                key: DecodingKey::from_ec_der(key.to_encoded_point(false).as_bytes()),
                key_id: key_id(spki.as_bytes()),
            })
        }
    };
}

ec_key_fns!(p256_signing, p256_public, p256, Algorithm::ES256);
ec_key_fns!(p384_signing, p384_public, p384, Algorithm::ES384);

fn public_from_spki(spki: &[u8], label: &str, index: usize) -> Result<VerifyingKey> {
    if let Ok(k) = rsa::RsaPublicKey::from_public_key_der(spki) {
        rsa_public(&k, label, index)
    } else if let Ok(k) = p256::PublicKey::from_public_key_der(spki) {
        p256_public(&k, label, index)
    } else {
        let k =
            p384::PublicKey::from_public_key_der(spki).map_err(|e| key_error(label, index, e))?;
        p384_public(&k, label, index)
    }
}

/// The `(label, DER)` of every PEM block, in order; text between blocks is ignored.
fn pem_blocks(pem: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let text = std::str::from_utf8(pem).map_err(|e| Error::ParsePem(e.to_string()))?;
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for line in lines.by_ref() {
            if line == end {
                closed = true;
                break;
            }
            // Encapsulated headers (`Proc-Type: …`) mean an encrypted key, which kube refuses too.
            body.push_str(line);
        }
        if !closed {
            return Err(Error::ParsePem(format!("block {label:?} has no END line")));
        }
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|e| Error::ParsePem(format!("block {label:?}: {e}")))?;
        blocks.push((label.to_string(), der));
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const RSA_KEY: &[u8] = include_bytes!("../../testdata/sa-rsa.key");
    const RSA_PKCS8: &[u8] = include_bytes!("../../testdata/sa-rsa-pkcs8.key");
    const RSA_PUB: &[u8] = include_bytes!("../../testdata/sa-rsa.pub");
    const EC_KEY: &[u8] = include_bytes!("../../testdata/sa-ec.key");
    const EC_PUB: &[u8] = include_bytes!("../../testdata/sa-ec.pub");
    const CERT: &[u8] = include_bytes!("../../testdata/alice.crt");

    // Computed with openssl (see testdata/README.md).
    const RSA_KID: &str = "d3-V1h1HLbH3gl9mgOI_8Hg9Hhlmqj4-ONFG3DPSPMs";
    const EC_KID: &str = "uDuOg8IRh-nLh78jMZrpKZ8D9Jf3MqxH7Fpe5F8kAnY";

    #[test]
    fn signing_keys_of_every_kube_format_with_kube_key_ids() {
        let rsa = SigningKey::from_pem(RSA_KEY).unwrap();
        assert_eq!(rsa.algorithm(), Algorithm::RS256);
        assert_eq!(rsa.key_id(), RSA_KID);
        assert_eq!(SigningKey::from_pem(RSA_PKCS8).unwrap().key_id(), RSA_KID);
        let ec = SigningKey::from_pem(EC_KEY).unwrap();
        assert_eq!(ec.algorithm(), Algorithm::ES256);
        assert_eq!(ec.key_id(), EC_KID);
        let p384 = p384::SecretKey::random(&mut rand::rngs::OsRng);
        let pem = p384.to_pkcs8_pem(Default::default()).unwrap();
        assert_eq!(
            SigningKey::from_pem(pem.as_bytes()).unwrap().algorithm(),
            Algorithm::ES384
        );
    }

    #[test]
    fn verification_keys_from_public_keys_private_keys_and_certificates() {
        let mut file = Vec::new();
        for part in [RSA_PUB, EC_PUB, RSA_KEY, CERT] {
            file.extend_from_slice(part);
        }
        let keys = VerifyingKey::all_from_pem(&file).unwrap();
        let ids: Vec<_> = keys.iter().map(|k| k.key_id()).collect();
        assert_eq!(ids[..3], [RSA_KID, EC_KID, RSA_KID]);
        assert_eq!(keys[3].algorithm(), Algorithm::ES256);
        let rsa =
            rsa::RsaPrivateKey::from_pkcs1_pem(std::str::from_utf8(RSA_KEY).unwrap()).unwrap();
        let pkcs1_pub =
            rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_pem(&rsa.to_public_key(), Default::default())
                .unwrap();
        let keys = VerifyingKey::all_from_pem(pkcs1_pub.as_bytes()).unwrap();
        assert_eq!(keys[0].key_id(), RSA_KID);
    }

    #[test]
    fn generated_keys_sign_as_es256_and_differ() {
        let a = SigningKey::generate_pem().unwrap();
        let b = SigningKey::generate_pem().unwrap();
        assert_ne!(*a, *b);
        assert!(a.starts_with("-----BEGIN PRIVATE KEY-----"));
        let key = SigningKey::from_pem(a.as_bytes()).unwrap();
        assert_eq!(key.algorithm(), Algorithm::ES256);
        assert_eq!(
            VerifyingKey::all_from_pem(a.as_bytes()).unwrap()[0].key_id(),
            key.key_id()
        );
    }

    #[test]
    fn files_without_keys_are_refused_with_a_reason() {
        assert!(matches!(
            SigningKey::from_pem(RSA_PUB),
            Err(Error::NoPrivateKey)
        ));
        assert!(matches!(
            VerifyingKey::all_from_pem(b"nothing"),
            Err(Error::NoPublicKey)
        ));
        let e = VerifyingKey::all_from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n").unwrap_err();
        assert!(e.to_string().contains("no END line"), "{e}");
        let e = VerifyingKey::all_from_pem(
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        )
        .unwrap_err();
        assert!(matches!(e, Error::ParseKey { index: 1, .. }), "{e}");
    }
}
