//! Encryption at rest, configured as kube-apiserver's `--encryption-provider-config`
//! (`EncryptionConfiguration`, `apiserver.config.k8s.io/v1`):
//!
//! ```yaml
//! apiVersion: apiserver.config.k8s.io/v1
//! kind: EncryptionConfiguration
//! resources:
//!   - resources: [secrets]          # also `deployments.apps`, `*.apps`, `*.` (core), `*.*`
//!     providers:
//!       - aesgcm: {keys: [{name: key2, secret: <base64 of 16, 24 or 32 bytes>}]}
//!       - aescbc: {keys: [{name: key1, secret: <base64 of 16, 24 or 32 bytes>}]}
//!       - secretbox: {keys: [{name: key0, secret: <base64 of 32 bytes>}]}
//!       - identity: {}
//! ```
//!
//! The first rule that names a resource (exactly, by `*.<group>` or by `*.*`) decides its
//! providers. The first key of the first provider encrypts every write; every key of every
//! provider can read, so rotating is: put the new key first, keep the old one second, re-write
//! every object (reads report [`Decrypted::stale`]), then drop the old key. `identity` last
//! lets values written before encryption was turned on still be read. KMS providers are refused
//! (not supported yet).

mod providers;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use zeroize::Zeroizing;

use providers::{Cipher, PrefixedKey};
pub use providers::{Decrypted, ENCRYPTED_PREFIX, Error as TransformError, Transformer};

/// `apiVersion` of the configuration file.
pub const API_VERSION: &str = "apiserver.config.k8s.io/v1";
/// `kind` of the configuration file.
pub const KIND: &str = "EncryptionConfiguration";

/// Why an encryption configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("encryption provider config {path}: {source}")]
    ReadFile {
        /// The file.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The text is not an EncryptionConfiguration (YAML error, unknown field, wrong kind).
    #[error("encryption provider config: {0}")]
    ParseConfig(String),
    /// The configuration is well-formed but invalid; one line per field, kube's style.
    #[error("encryption provider config is invalid:\n{}", .0.join("\n"))]
    ValidateConfig(Vec<String>),
}

/// `Result` of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfigFile {
    api_version: String,
    kind: String,
    #[serde(default)]
    resources: Vec<ResourceConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceConfig {
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    providers: Vec<ProviderConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderConfig {
    aesgcm: Option<KeysConfig>,
    aescbc: Option<KeysConfig>,
    secretbox: Option<KeysConfig>,
    identity: Option<serde_yaml::Value>,
    kms: Option<serde_yaml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysConfig {
    #[serde(default)]
    keys: Vec<KeyConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyConfig {
    #[serde(default)]
    name: String,
    #[serde(default)]
    secret: String,
}

/// Which resources a rule names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    /// `resource` or `resource.group`.
    Exact { group: String, resource: String },
    /// `*.group` (`*.` is the core group).
    Group(String),
    /// `*.*`.
    All,
}

impl Selector {
    fn parse(s: &str) -> Self {
        if s == "*.*" {
            Self::All
        } else if let Some(group) = s.strip_prefix("*.") {
            Self::Group(group.to_string())
        } else {
            let (resource, group) = s.split_once('.').unwrap_or((s, ""));
            Self::Exact {
                group: group.to_string(),
                resource: resource.to_string(),
            }
        }
    }

    fn matches(&self, group: &str, resource: &str) -> bool {
        match self {
            Self::All => true,
            Self::Group(g) => g == group,
            Self::Exact {
                group: g,
                resource: r,
            } => g == group && r == resource,
        }
    }

    /// Whether every resource `other` names is already named by `self`.
    fn masks(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::All, _) => true,
            (Self::Group(g), Self::Group(h)) => g == h,
            (Self::Group(g), Self::Exact { group, .. }) => g == group,
            (a, b) => a == b,
        }
    }
}

/// A parsed, validated EncryptionConfiguration.
#[derive(Debug, Clone)]
pub struct EncryptionConfig {
    rules: Vec<(Vec<(String, Selector)>, Transformer)>,
    /// What resources no rule names get (kept here so lookups borrow instead of allocating).
    identity: Transformer,
}

impl Default for EncryptionConfig {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            identity: Transformer::identity(),
        }
    }
}

impl EncryptionConfig {
    /// Reads and parses the file at `path`.
    pub fn from_path(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    /// Parses and validates the YAML (or JSON) text of an EncryptionConfiguration.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let file: ConfigFile =
            serde_yaml::from_str(text).map_err(|e| Error::ParseConfig(e.to_string()))?;
        if file.api_version != API_VERSION || file.kind != KIND {
            return Err(Error::ParseConfig(format!(
                "expected apiVersion {API_VERSION} and kind {KIND}, got {} {}",
                file.api_version, file.kind
            )));
        }
        let mut errors = Vec::new();
        if file.resources.is_empty() {
            errors.push(
                "resources: Required value: EncryptionConfiguration.Resources must contain at least one resource"
                    .to_string(),
            );
        }
        let mut rules = Vec::new();
        let mut seen: Vec<(String, Selector)> = Vec::new();
        for (i, rc) in file.resources.iter().enumerate() {
            let at = format!("resources[{i}]");
            let selectors = validate_resources(&at, &rc.resources, &mut seen, &mut errors);
            if rc.providers.is_empty() {
                errors.push(format!(
                    "{at}.providers: Required value: at least one provider is required"
                ));
            }
            let mut keys = Vec::new();
            for (j, p) in rc.providers.iter().enumerate() {
                keys.extend(provider_keys(
                    &format!("{at}.providers[{j}]"),
                    p,
                    &mut errors,
                ));
            }
            rules.push((selectors, Transformer { keys }));
        }
        if errors.is_empty() {
            Ok(Self {
                rules,
                identity: Transformer::identity(),
            })
        } else {
            Err(Error::ValidateConfig(errors))
        }
    }

    /// The transformer for a resource of `group` (empty for core): the first rule naming it,
    /// or identity when none does. Borrowed: it is looked up for every value read or written.
    pub fn transformer_for(&self, group: &str, resource: &str) -> &Transformer {
        self.rules
            .iter()
            .find(|(sel, _)| sel.iter().any(|(_, s)| s.matches(group, resource)))
            .map_or(&self.identity, |(_, t)| t)
    }

    /// Whether some rule encrypts `group`/`resource` on write.
    pub fn encrypts(&self, group: &str, resource: &str) -> bool {
        !self.transformer_for(group, resource).writes_plaintext()
    }
}

fn validate_resources(
    at: &str,
    resources: &[String],
    seen: &mut Vec<(String, Selector)>,
    errors: &mut Vec<String>,
) -> Vec<(String, Selector)> {
    if resources.is_empty() {
        errors.push(format!(
            "{at}.resources: Required value: at least one resource is required"
        ));
    }
    let mut out = Vec::new();
    for (k, r) in resources.iter().enumerate() {
        let field = format!("{at}.resources[{k}]");
        if r.is_empty() || r != &r.to_lowercase() || r == "*" || r.contains(char::is_whitespace) {
            errors.push(format!(
                "{field}: Invalid value: {r:?}: resource name must be lowercase `resource`, `resource.group`, `*.group`, `*.` or `*.*`"
            ));
            continue;
        }
        let sel = Selector::parse(r);
        if let Some((earlier, _)) = seen.iter().find(|(_, s)| s.masks(&sel)) {
            errors.push(format!(
                "{field}: Invalid value: {r:?}: resource {r:?} is masked by earlier rule {earlier:?}"
            ));
            continue;
        }
        seen.push((r.clone(), sel.clone()));
        out.push((r.clone(), sel));
    }
    out
}

fn provider_keys(at: &str, p: &ProviderConfig, errors: &mut Vec<String>) -> Vec<PrefixedKey> {
    let set = [
        p.aesgcm.is_some(),
        p.aescbc.is_some(),
        p.secretbox.is_some(),
        p.identity.is_some(),
        p.kms.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if set != 1 {
        errors.push(format!(
            "{at}: Invalid value: {set}: exactly one provider must be given per list element (aesgcm, aescbc, secretbox, identity or kms)"
        ));
        return Vec::new();
    }
    if p.identity.is_some() {
        return vec![PrefixedKey::new("identity", Cipher::Identity)];
    }
    if p.kms.is_some() {
        errors.push(format!(
            "{at}.kms: Unsupported value: kms providers are not supported by cellfed yet"
        ));
        return Vec::new();
    }
    type MakeCipher = fn(Zeroizing<Vec<u8>>) -> Cipher;
    let (name, keys, sizes, make): (&str, &KeysConfig, &[usize], MakeCipher) =
        if let Some(k) = &p.aesgcm {
            ("aesgcm", k, &[16, 24, 32], Cipher::AesGcm)
        } else if let Some(k) = &p.aescbc {
            ("aescbc", k, &[16, 24, 32], Cipher::AesCbc)
        } else if let Some(k) = &p.secretbox {
            ("secretbox", k, &[32], Cipher::SecretBox)
        } else {
            return Vec::new();
        };
    let at = format!("{at}.{name}.keys");
    if keys.keys.is_empty() {
        errors.push(format!(
            "{at}: Required value: at least one key must be specified"
        ));
    }
    let mut out: Vec<PrefixedKey> = Vec::new();
    for (i, key) in keys.keys.iter().enumerate() {
        let field = format!("{at}[{i}]");
        if key.name.is_empty() {
            errors.push(format!(
                "{field}.name: Required value: key name is required"
            ));
            continue;
        }
        if key.name.contains(':') {
            errors.push(format!(
                "{field}.name: Invalid value: {:?}: must not contain ':'",
                key.name
            ));
            continue;
        }
        if out.iter().any(|k| k.name == key.name) {
            errors.push(format!("{field}.name: Duplicate value: {:?}", key.name));
            continue;
        }
        // Never echo a secret back, even an invalid one (kube says REDACTED too).
        let secret = match STANDARD.decode(key.secret.trim()) {
            Ok(s) if !key.secret.is_empty() => s,
            Ok(_) => {
                errors.push(format!(
                    "{field}.secret: Required value: secret is required"
                ));
                continue;
            }
            Err(_) => {
                errors.push(format!(
                    "{field}.secret: Invalid value: \"REDACTED\": secrets must be base64 encoded"
                ));
                continue;
            }
        };
        if !sizes.contains(&secret.len()) {
            errors.push(format!(
                "{field}.secret: Invalid value: \"REDACTED\": secret is not of the expected length, got {}, expected one of {sizes:?}",
                secret.len()
            ));
            continue;
        }
        out.push(PrefixedKey::new(&key.name, make(Zeroizing::new(secret))));
    }
    out
}

#[cfg(test)]
mod tests;
