//! What the apiserver presents to admission webhooks, kube-apiserver's way: the
//! `--admission-control-config-file` (AdmissionConfiguration, `apiserver.config.k8s.io/v1`) gives
//! the plugins `ValidatingAdmissionWebhook` and `MutatingAdmissionWebhook` a
//! WebhookAdmissionConfiguration whose `kubeConfigFile` holds one `users` entry per webhook host:
//! `name.namespace.svc[:port]`, a URL's `host[:port]`, `*.<suffix>` or `*`, with a client
//! certificate and key (`client-certificate[-data]`, `client-key[-data]`) and/or a bearer
//! `token[File]`. The entry is chosen per call exactly as kube does ([`AuthInfos::resolve`]).
//! CRD conversion calls carry no credentials, as in Kubernetes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// Why the admission configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not what it should be.
    #[error("{path}: {message}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// One kubeconfig `users` entry, ready to present.
pub struct Credentials {
    /// `<plugin>/<user name>`: connections are pooled per identity.
    pub id: String,
    /// Client certificate chain and key.
    pub client_cert: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    /// Bearer token.
    pub token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("id", &self.id)
            .field("client_cert", &self.client_cert.is_some())
            .field("token", &self.token.is_some())
            .finish()
    }
}

/// The `users` of one plugin's kubeconfig, by name.
#[derive(Debug, Default)]
pub struct AuthInfos(BTreeMap<String, Arc<Credentials>>);

impl AuthInfos {
    /// The entry for a webhook at `target` (`host:port` of a URL as written, or
    /// `name.namespace.svc:port` of a service reference), in kube's order: exact, `*.`-prefixed
    /// suffixes, then without the default port 443 the same again, then `*`.
    pub fn resolve(&self, target: &str) -> Option<Arc<Credentials>> {
        resolve_name(target, |n| self.0.contains_key(n)).and_then(|n| self.0.get(&n).cloned())
    }
}

/// The user name chosen for `target` among the names `known` accepts (pure; kube's
/// `defaultAuthenticationInfoResolver.clientConfig`).
pub fn resolve_name(target: &str, known: impl Fn(&str) -> bool) -> Option<String> {
    let search = |t: &str| -> Option<String> {
        if known(t) {
            return Some(t.to_string());
        }
        let steps: Vec<&str> = t.split('.').collect();
        (1..steps.len())
            .map(|i| format!("*.{}", steps[i..].join(".")))
            .find(|n| known(n))
    };
    if let Some(n) = search(target) {
        return Some(n);
    }
    if let Some(host) = target.strip_suffix(":443")
        && let Some(n) = search(host)
    {
        return Some(n);
    }
    known("*").then(|| "*".to_string())
}

/// Credentials of both webhook admission plugins.
#[derive(Debug, Default)]
pub struct WebhookCredentials {
    /// `ValidatingAdmissionWebhook`'s kubeconfig users.
    pub validating: AuthInfos,
    /// `MutatingAdmissionWebhook`'s kubeconfig users.
    pub mutating: AuthInfos,
}

impl WebhookCredentials {
    /// What to present to a (mutating or validating) admission webhook at `target`.
    pub fn for_admission(&self, mutating: bool, target: &str) -> Option<Arc<Credentials>> {
        if mutating {
            self.mutating.resolve(target)
        } else {
            self.validating.resolve(target)
        }
    }
}

#[derive(Deserialize)]
struct AdmissionConfiguration {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    plugins: Vec<Plugin>,
}

#[derive(Deserialize)]
struct Plugin {
    name: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    configuration: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct WebhookAdmission {
    #[serde(rename = "kubeConfigFile", default)]
    kube_config_file: String,
}

#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(default)]
    users: Vec<NamedUser>,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: User,
}

#[derive(Deserialize, Default)]
struct User {
    #[serde(rename = "client-certificate")]
    client_certificate: Option<String>,
    #[serde(rename = "client-certificate-data")]
    client_certificate_data: Option<String>,
    #[serde(rename = "client-key")]
    client_key: Option<String>,
    #[serde(rename = "client-key-data")]
    client_key_data: Option<String>,
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::ReadFile {
        path: path.into(),
        source,
    })
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_yaml::from_slice(bytes).map_err(|e| Error::ParseFile {
        path: path.into(),
        message: e.to_string(),
    })
}

/// Loads `--admission-control-config-file`. Plugins other than the two webhook plugins are
/// ignored; a plugin's `path` is relative to the configuration file's directory.
pub fn load(path: &Path) -> Result<WebhookCredentials> {
    let bad = |message: String| Error::ParseFile {
        path: path.into(),
        message,
    };
    let cfg: AdmissionConfiguration = parse(path, &read(path)?)?;
    if cfg.kind != "AdmissionConfiguration"
        || !matches!(
            cfg.api_version.as_str(),
            "apiserver.config.k8s.io/v1" | "apiserver.k8s.io/v1alpha1"
        )
    {
        return Err(bad(format!(
            "expected apiVersion apiserver.config.k8s.io/v1, kind AdmissionConfiguration, got {}/{}",
            cfg.api_version, cfg.kind
        )));
    }
    let mut out = WebhookCredentials::default();
    for plugin in cfg.plugins {
        let mutating = match plugin.name.as_str() {
            "ValidatingAdmissionWebhook" => false,
            "MutatingAdmissionWebhook" => true,
            _ => continue,
        };
        let (source, webhook): (PathBuf, WebhookAdmission) =
            match (&plugin.configuration, &plugin.path) {
                (Some(c), _) => (
                    path.into(),
                    serde_json::from_value(c.clone())
                        .map_err(|e| bad(format!("plugins[{}].configuration: {e}", plugin.name)))?,
                ),
                (None, Some(p)) => {
                    let p = path.parent().unwrap_or(Path::new(".")).join(p);
                    let webhook = parse(&p, &read(&p)?)?;
                    (p, webhook)
                }
                (None, None) => continue,
            };
        let kubeconfig = PathBuf::from(&webhook.kube_config_file);
        if !kubeconfig.is_absolute() {
            return Err(Error::ParseFile {
                path: source,
                message: format!(
                    "kubeConfigFile {:?} of plugin {} must be an absolute path",
                    webhook.kube_config_file, plugin.name
                ),
            });
        }
        let infos = load_kubeconfig(&plugin.name, &kubeconfig)?;
        if mutating {
            out.mutating = infos;
        } else {
            out.validating = infos;
        }
    }
    Ok(out)
}

fn load_kubeconfig(plugin: &str, path: &Path) -> Result<AuthInfos> {
    let kc: Kubeconfig = parse(path, &read(path)?)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let bad = |message: String| Error::ParseFile {
        path: path.into(),
        message,
    };
    let mut users = BTreeMap::new();
    for u in kc.users {
        let data =
            |inline: &Option<String>, file: &Option<String>, field: &str| match (inline, file) {
                (Some(b64), _) => base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map(Some)
                    .map_err(|e| bad(format!("users[{}].user.{field}-data: {e}", u.name))),
                (None, Some(f)) => read(&dir.join(f)).map(Some),
                (None, None) => Ok(None),
            };
        let cert = data(
            &u.user.client_certificate_data,
            &u.user.client_certificate,
            "client-certificate",
        )?;
        let key = data(&u.user.client_key_data, &u.user.client_key, "client-key")?;
        let client_cert = match (cert, key) {
            (Some(c), Some(k)) => {
                let (certs, key) = cellfed_pki::client_auth(&c, &k)
                    .map_err(|e| bad(format!("users[{}]: {e}", u.name)))?;
                Some((certs, Arc::new(key)))
            }
            (None, None) => None,
            _ => {
                return Err(bad(format!(
                    "users[{}]: a client certificate needs both client-certificate and client-key",
                    u.name
                )));
            }
        };
        let token = match (&u.user.token, &u.user.token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(f)) => Some(
                String::from_utf8_lossy(&read(&dir.join(f))?)
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        users.insert(
            u.name.clone(),
            Arc::new(Credentials {
                id: format!("{plugin}/{}", u.name),
                client_cert,
                token,
            }),
        );
    }
    Ok(AuthInfos(users))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_kube() {
        let names = |set: &'static [&'static str]| move |n: &str| set.contains(&n);
        const SVC: &str = "cellfed-webhook.kube-federation-system.svc:443";
        let svc = SVC;
        assert_eq!(
            resolve_name(svc, names(&["*", SVC])),
            Some(svc.to_string()),
            "exact first"
        );
        assert_eq!(
            resolve_name(svc, names(&["*", "*.svc"])),
            Some("*.svc".into()),
            "suffix without the default port"
        );
        assert_eq!(
            resolve_name(
                svc,
                names(&["*", "cellfed-webhook.kube-federation-system.svc"])
            ),
            Some("cellfed-webhook.kube-federation-system.svc".into())
        );
        assert_eq!(
            resolve_name("hook.example.com:8443", names(&["*.example.com:8443", "*"])),
            Some("*.example.com:8443".into())
        );
        assert_eq!(
            resolve_name("hook.example.com:8443", names(&["hook.example.com", "*"])),
            Some("*".into()),
            "a non-default port is not dropped"
        );
        assert_eq!(resolve_name("127.0.0.1:9443", names(&[])), None);
    }

    #[test]
    fn loads_both_plugins_with_inline_and_file_configuration() {
        let dir = std::env::temp_dir().join(format!(
            "cellfed-admission-config-{}",
            crate::tls::random_token()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let id = cellfed_pki::generate_client("cellfed-apiserver", &[]).unwrap();
        std::fs::write(dir.join("client.crt"), &id.cert_pem).unwrap();
        std::fs::write(dir.join("client.key"), &id.key_pem).unwrap();
        let kc = dir.join("webhooks.kubeconfig");
        std::fs::write(
            &kc,
            "apiVersion: v1\nkind: Config\nusers:\n- name: '*.svc'\n  user:\n    client-certificate: client.crt\n    client-key: client.key\n- name: '*'\n  user:\n    token: t0ken\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("mutating.yaml"),
            format!(
                "apiVersion: apiserver.config.k8s.io/v1\nkind: WebhookAdmissionConfiguration\nkubeConfigFile: {}\n",
                kc.display()
            ),
        )
        .unwrap();
        let cfg = dir.join("admission.yaml");
        std::fs::write(
            &cfg,
            format!(
                "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: ValidatingAdmissionWebhook\n  configuration:\n    apiVersion: apiserver.config.k8s.io/v1\n    kind: WebhookAdmissionConfiguration\n    kubeConfigFile: {}\n- name: MutatingAdmissionWebhook\n  path: mutating.yaml\n- name: EventRateLimit\n  path: nowhere.yaml\n",
                kc.display()
            ),
        )
        .unwrap();
        let creds = load(&cfg).unwrap();
        let v = creds
            .for_admission(false, "cellfed-webhook.kube-federation-system.svc:443")
            .unwrap();
        assert_eq!(v.id, "ValidatingAdmissionWebhook/*.svc");
        assert!(v.client_cert.is_some() && v.token.is_none());
        let m = creds.for_admission(true, "127.0.0.1:9443").unwrap();
        assert_eq!(m.id, "MutatingAdmissionWebhook/*");
        assert_eq!(m.token.as_deref(), Some("t0ken"));

        // a relative kubeConfigFile is refused, naming the plugin
        std::fs::write(
            &cfg,
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: ValidatingAdmissionWebhook\n  configuration:\n    kubeConfigFile: webhooks.kubeconfig\n",
        )
        .unwrap();
        let err = load(&cfg).unwrap_err().to_string();
        assert!(
            err.contains("must be an absolute path") && err.contains("ValidatingAdmissionWebhook"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
