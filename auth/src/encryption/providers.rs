//! The encryption providers and kube's storage format: a value written by a key is
//! `k8s:enc:<provider>:v1:<key name>:` followed by
//!
//! - `aesgcm`: 12-byte random nonce, then AES-GCM ciphertext and tag, the storage key (for example
//!   `/registry/secrets/ns/name`) as additional authenticated data, so a value copied under
//!   another key does not decrypt;
//! - `aescbc`: 16-byte random IV, then AES-CBC ciphertext with PKCS#7 padding;
//! - `secretbox`: 24-byte random nonce, then the NaCl secretbox (XSalsa20-Poly1305, tag first);
//!
//! and `identity` stores the plaintext without prefix. The same bytes as kube-apiserver writes
//! to etcd, so data can move between the two.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use aes_gcm::AesGcm;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use crypto_secretbox::XSalsa20Poly1305;
use rand::RngCore;
use zeroize::Zeroizing;

/// The prefix every encrypted value starts with.
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

/// Why a value could not be encrypted or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The value starts with no prefix of a configured key, and `identity` is not configured.
    #[error("no matching prefix found")]
    MatchPrefix,
    /// `identity` was asked to read a value that is encrypted (with a key no longer configured).
    #[error("identity transformer tried to read encrypted data")]
    ReadEncryptedAsIdentity,
    /// The ciphertext does not decrypt (wrong key, tampered, or stored under another key).
    #[error("{provider} decryption with key {key:?} failed: {reason}")]
    Decrypt {
        /// `aesgcm`, `aescbc` or `secretbox`.
        provider: &'static str,
        /// The key's name.
        key: String,
        /// What failed.
        reason: &'static str,
    },
    /// Several keys matched and none decrypted.
    #[error("[{}]", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    DecryptAll(Vec<Error>),
    /// Encryption failed (the cipher refused the input).
    #[error("{provider} encryption with key {key:?} failed")]
    Encrypt {
        /// The provider.
        provider: &'static str,
        /// The key's name.
        key: String,
    },
}

/// One configured key of one provider; key material is wiped when dropped.
#[derive(Clone)]
pub(crate) enum Cipher {
    /// No encryption.
    Identity,
    /// AES-GCM with a 16, 24 or 32-byte key.
    AesGcm(Zeroizing<Vec<u8>>),
    /// AES-CBC with a 16, 24 or 32-byte key.
    AesCbc(Zeroizing<Vec<u8>>),
    /// XSalsa20-Poly1305 with a 32-byte key.
    SecretBox(Zeroizing<Vec<u8>>),
}

impl Cipher {
    fn provider(&self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::AesGcm(_) => "aesgcm",
            Self::AesCbc(_) => "aescbc",
            Self::SecretBox(_) => "secretbox",
        }
    }
}

/// A key with the prefix it writes and recognises.
#[derive(Clone)]
pub(crate) struct PrefixedKey {
    pub(crate) name: String,
    pub(crate) prefix: Vec<u8>,
    pub(crate) cipher: Cipher,
}

impl PrefixedKey {
    pub(crate) fn new(name: &str, cipher: Cipher) -> Self {
        let prefix = match cipher {
            Cipher::Identity => Vec::new(),
            ref c => format!("k8s:enc:{}:v1:{name}:", c.provider()).into_bytes(),
        };
        Self {
            name: name.to_string(),
            prefix,
            cipher,
        }
    }

    fn encrypt(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, Error> {
        let fail = || Error::Encrypt {
            provider: self.cipher.provider(),
            key: self.name.clone(),
        };
        let mut out = self.prefix.clone();
        match &self.cipher {
            Cipher::Identity => out.extend_from_slice(plaintext),
            Cipher::AesGcm(key) => {
                let mut nonce = [0u8; 12];
                rand::rngs::OsRng.fill_bytes(&mut nonce);
                let payload = Payload {
                    msg: plaintext,
                    aad: context,
                };
                let sealed = gcm_seal(key, &nonce, payload).ok_or_else(fail)?;
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
            }
            Cipher::AesCbc(key) => {
                let mut iv = [0u8; 16];
                rand::rngs::OsRng.fill_bytes(&mut iv);
                let sealed = cbc_encrypt(key, &iv, plaintext).ok_or_else(fail)?;
                out.extend_from_slice(&iv);
                out.extend_from_slice(&sealed);
            }
            Cipher::SecretBox(key) => {
                let mut nonce = [0u8; 24];
                rand::rngs::OsRng.fill_bytes(&mut nonce);
                let cipher = XSalsa20Poly1305::new_from_slice(key).map_err(|_| fail())?;
                let sealed = cipher
                    .encrypt(&nonce.into(), plaintext)
                    .map_err(|_| fail())?;
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
            }
        }
        Ok(out)
    }

    /// Decrypts `data` (prefix already removed).
    fn decrypt(&self, data: &[u8], context: &[u8]) -> Result<Vec<u8>, Error> {
        let fail = |reason| Error::Decrypt {
            provider: self.cipher.provider(),
            key: self.name.clone(),
            reason,
        };
        match &self.cipher {
            Cipher::Identity => {
                if data.starts_with(ENCRYPTED_PREFIX) {
                    return Err(Error::ReadEncryptedAsIdentity);
                }
                Ok(data.to_vec())
            }
            Cipher::AesGcm(key) => {
                if data.len() < 12 {
                    return Err(fail("the stored data was shorter than the required size"));
                }
                let (nonce, sealed) = data.split_at(12);
                let payload = Payload {
                    msg: sealed,
                    aad: context,
                };
                gcm_open(key, nonce, payload).ok_or_else(|| fail("message authentication failed"))
            }
            Cipher::AesCbc(key) => {
                if data.len() < 16 {
                    return Err(fail("the stored data was shorter than the required size"));
                }
                let (iv, sealed) = data.split_at(16);
                if sealed.len() % 16 != 0 {
                    return Err(fail("the stored data is not a multiple of the block size"));
                }
                cbc_decrypt(key, iv, sealed)
                    .ok_or_else(|| fail("invalid PKCS7 data (empty or not padded)"))
            }
            Cipher::SecretBox(key) => {
                if data.len() < 24 {
                    return Err(fail("the stored data was shorter than the required size"));
                }
                let (nonce, sealed) = data.split_at(24);
                let cipher = XSalsa20Poly1305::new_from_slice(key).map_err(|_| fail("bad key"))?;
                let nonce = crypto_secretbox::Nonce::from_slice(nonce);
                cipher
                    .decrypt(nonce, sealed)
                    .map_err(|_| fail("message authentication failed"))
            }
        }
    }
}

type Aes192Gcm = AesGcm<aes::Aes192, U12>;

fn gcm_seal(key: &[u8], nonce: &[u8; 12], payload: Payload<'_, '_>) -> Option<Vec<u8>> {
    let nonce = aes_gcm::Nonce::from_slice(nonce);
    match key.len() {
        16 => aes_gcm::Aes128Gcm::new_from_slice(key)
            .ok()?
            .encrypt(nonce, payload)
            .ok(),
        24 => Aes192Gcm::new_from_slice(key)
            .ok()?
            .encrypt(nonce, payload)
            .ok(),
        32 => aes_gcm::Aes256Gcm::new_from_slice(key)
            .ok()?
            .encrypt(nonce, payload)
            .ok(),
        _ => None,
    }
}

fn gcm_open(key: &[u8], nonce: &[u8], payload: Payload<'_, '_>) -> Option<Vec<u8>> {
    let nonce = aes_gcm::Nonce::from_slice(nonce);
    match key.len() {
        16 => aes_gcm::Aes128Gcm::new_from_slice(key)
            .ok()?
            .decrypt(nonce, payload)
            .ok(),
        24 => Aes192Gcm::new_from_slice(key)
            .ok()?
            .decrypt(nonce, payload)
            .ok(),
        32 => aes_gcm::Aes256Gcm::new_from_slice(key)
            .ok()?
            .decrypt(nonce, payload)
            .ok(),
        _ => None,
    }
}

fn cbc_encrypt(key: &[u8], iv: &[u8; 16], data: &[u8]) -> Option<Vec<u8>> {
    Some(match key.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()?
            .encrypt_padded_vec_mut::<Pkcs7>(data),
        24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
            .ok()?
            .encrypt_padded_vec_mut::<Pkcs7>(data),
        32 => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()?
            .encrypt_padded_vec_mut::<Pkcs7>(data),
        _ => return None,
    })
}

fn cbc_decrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .ok(),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .ok(),
        32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .ok(),
        _ => None,
    }
}

/// A plaintext read back, and whether it should be re-written because a key other than the
/// write key (the first) produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The plaintext.
    pub data: Vec<u8>,
    /// Not written with the current write key.
    pub stale: bool,
}

/// The keys of one resource rule, in configuration order: the first writes, all read.
#[derive(Clone)]
pub struct Transformer {
    pub(crate) keys: Vec<PrefixedKey>,
}

impl std::fmt::Debug for Transformer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("{}:{}", k.cipher.provider(), k.name))
            .collect();
        f.debug_struct("Transformer").field("keys", &keys).finish()
    }
}

impl Transformer {
    /// Stores values as they are (no encryption configured for the resource).
    pub fn identity() -> Self {
        Self {
            keys: vec![PrefixedKey::new("identity", Cipher::Identity)],
        }
    }

    /// Whether values are written without encryption.
    pub fn writes_plaintext(&self) -> bool {
        matches!(
            self.keys.first().map(|k| &k.cipher),
            Some(Cipher::Identity) | None
        )
    }

    /// Encrypts a value for storage under `context` (its storage key) with the write key.
    pub fn encrypt(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, Error> {
        match self.keys.first() {
            Some(key) => key.encrypt(plaintext, context),
            None => Ok(plaintext.to_vec()),
        }
    }

    /// Decrypts a stored value with whichever configured key its prefix names.
    pub fn decrypt(&self, stored: &[u8], context: &[u8]) -> Result<Decrypted, Error> {
        let mut errors = Vec::new();
        for (i, key) in self.keys.iter().enumerate() {
            let Some(rest) = stored.strip_prefix(key.prefix.as_slice()) else {
                continue;
            };
            match key.decrypt(rest, context) {
                Ok(data) => {
                    return Ok(Decrypted {
                        data,
                        stale: i != 0,
                    });
                }
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            0 => Err(Error::MatchPrefix),
            1 => Err(errors.remove(0)),
            _ => Err(Error::DecryptAll(errors)),
        }
    }
}
