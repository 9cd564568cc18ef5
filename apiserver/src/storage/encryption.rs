//! Encryption at rest: kube-apiserver's `--encryption-provider-config` applied to the store.
//! Values under `/registry/<group>/<plural>/…` go through the transformer the configuration
//! names for that resource (the core group is stored as `core`), with the storage key as
//! authenticated data, so a ciphertext copied to another key does not decrypt. Every other key
//! is stored as it is.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rand::RngCore;

use cellfed_auth::encryption::{EncryptionConfig, Transformer};
use cellfed_store::ValueTransformer;

/// The store transformer of one EncryptionConfiguration.
pub struct AtRest {
    config: EncryptionConfig,
    /// The transformer of keys outside `/registry/<group>/<resource>/`.
    identity: Transformer,
}

impl AtRest {
    /// Reads kube's EncryptionConfiguration file.
    pub fn from_path(path: &Path) -> Result<Arc<Self>, cellfed_auth::encryption::Error> {
        Ok(Arc::new(Self {
            config: EncryptionConfig::from_path(path)?,
            identity: Transformer::identity(),
        }))
    }

    /// The transformer of the resource a storage key belongs to (identity outside `/registry/`).
    fn transformer(&self, key: &str) -> &Transformer {
        match resource_of(key) {
            Some((group, resource)) => self.config.transformer_for(group, resource),
            None => &self.identity,
        }
    }
}

/// Writes `<dir>/encryption.yaml` (mode 0600) unless it exists: Secrets encrypted with a new
/// random 32-byte secretbox key, `identity` last so Secrets written before stay readable.
/// `cellfed up` runs its federation apiserver with it, so member credentials are never stored
/// in clear.
pub fn ensure_default_config(dir: &Path) -> Result<PathBuf, cellfed_pki::PkiError> {
    let path = dir.join("encryption.yaml");
    if path.exists() {
        return Ok(path);
    }
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    rand::thread_rng().fill_bytes(key.as_mut());
    let secret = zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key));
    let text = zeroize::Zeroizing::new(format!(
        "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - secretbox:
          keys:
            - name: key1
              secret: {}
      - identity: {{}}
",
        secret.as_str()
    ));
    cellfed_pki::write(&path, &text, true)?;
    Ok(path)
}

/// `(group, resource)` of `/registry/<group>/<plural>/…`, the core group as "".
fn resource_of(key: &str) -> Option<(&str, &str)> {
    let mut parts = key.strip_prefix("/registry/")?.splitn(3, '/');
    let group = parts.next()?;
    let resource = parts.next()?;
    parts.next()?;
    Some((if group == "core" { "" } else { group }, resource))
}

impl ValueTransformer for AtRest {
    fn encode(&self, key: &str, value: Vec<u8>) -> Result<Vec<u8>, String> {
        let t = self.transformer(key);
        if t.writes_plaintext() {
            return Ok(value);
        }
        t.encrypt(&value, key.as_bytes()).map_err(|e| e.to_string())
    }

    fn decode(&self, key: &str, stored: Vec<u8>) -> Result<(Vec<u8>, bool), String> {
        let d = self
            .transformer(key)
            .decrypt(&stored, key.as_bytes())
            .map_err(|e| e.to_string())?;
        Ok((d.data, d.stale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_rest(yaml: &str) -> AtRest {
        AtRest {
            config: EncryptionConfig::from_yaml(yaml).unwrap(),
            identity: Transformer::identity(),
        }
    }

    const SECRETS_AESGCM: &str = "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aesgcm: {keys: [{name: k1, secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}]}
      - identity: {}
";

    #[test]
    fn the_default_config_encrypts_secrets_with_a_fresh_key() {
        let dir = std::env::temp_dir().join(format!("cellfed-enc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = ensure_default_config(&dir).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let t = AtRest::from_path(&path).unwrap();
        let stored = t
            .encode("/registry/core/secrets/ns/a", b"x".to_vec())
            .unwrap();
        assert!(stored.starts_with(b"k8s:enc:secretbox:v1:key1:"));
        // kept as it is on the next start, private to its owner
        ensure_default_config(&dir).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // another directory gets another key
        let other = dir.join("other");
        std::fs::create_dir_all(&other).unwrap();
        let other_text = std::fs::read_to_string(ensure_default_config(&other).unwrap()).unwrap();
        assert_ne!(other_text, text);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keys_name_their_resource() {
        assert_eq!(
            resource_of("/registry/core/secrets/ns/a"),
            Some(("", "secrets"))
        );
        assert_eq!(
            resource_of("/registry/apps/deployments/ns/a"),
            Some(("apps", "deployments"))
        );
        assert_eq!(resource_of("/registry/core/secrets"), None);
        assert_eq!(resource_of("/compact_rev_key"), None);
    }

    #[test]
    fn secrets_are_sealed_to_their_key_and_other_resources_stay_plain() {
        let t = at_rest(SECRETS_AESGCM);
        let key = "/registry/core/secrets/ns/a";
        let stored = t.encode(key, b"{\"data\":1}".to_vec()).unwrap();
        assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:k1:"));
        assert!(!stored.windows(8).any(|w| w == b"\"data\":1"));
        assert_eq!(
            t.decode(key, stored.clone()).unwrap(),
            (b"{\"data\":1}".to_vec(), false)
        );
        // authenticated with the key: the same bytes under another name do not decrypt
        assert!(t.decode("/registry/core/secrets/ns/b", stored).is_err());
        // plaintext written before encryption was turned on stays readable (identity last)
        assert_eq!(
            t.decode(key, b"{}".to_vec()).unwrap(),
            (b"{}".to_vec(), true)
        );
        let cm = "/registry/core/configmaps/ns/a";
        assert_eq!(t.encode(cm, b"{}".to_vec()).unwrap(), b"{}".to_vec());
    }
}
