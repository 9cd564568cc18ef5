//! Who may do what: agents present a per-cluster token and may serve only that cluster; the
//! controller presents a proxy token on every CONNECT.
//!
//! Agent tokens come from any of
//! - a token file, CSV `token,cluster[,host]` (one agent per line, `#` comments), re-read on
//!   every agent handshake so adding a member needs no restart;
//! - host Secrets `<cluster>-tunnel-token` in the federation namespace (keys `token`, optional
//!   `host`), read through the host's Kubernetes API when an agent of that cluster connects —
//!   what `kubectl cellfed join --via-tunnel` writes;
//! - fixed entries (embedding, tests).
//!
//! `host` is the name the controller CONNECTs to for that cluster (the host of its
//! KubeFedCluster's `apiEndpoint`), by default `<cluster>.cluster.internal`.
//! Tokens are compared in constant time.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use subtle::ConstantTimeEq as _;

use crate::protocol;

/// Name of the host Secret holding the agent token of `cluster`.
pub fn agent_secret_name(cluster: &str) -> String {
    format!("{cluster}-tunnel-token")
}

/// Name of the host Secret holding the controller's proxy token (key `token`); mount it into
/// the tunnel server as `--proxy-token-file`.
pub const PROXY_SECRET_NAME: &str = "cellfed-tunnel-proxy";

/// Why an agent or a proxy client was refused, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credentials were presented.
    #[error("no bearer token presented")]
    MissingToken,
    /// The token does not authorize the cluster named (wrong token, or another cluster's).
    #[error("the token does not authorize cluster {cluster:?}")]
    NotAuthorized {
        /// Cluster the agent claimed.
        cluster: String,
    },
    /// The cluster name is not a DNS-1123 subdomain.
    #[error("{name:?} is not a valid cluster name (a DNS-1123 subdomain)")]
    BadClusterName {
        /// The name presented.
        name: String,
    },
    /// A token file could not be read.
    #[error("reading token file {path}: {source}")]
    ReadTokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A token file line is malformed.
    #[error("{path}:{line}: expected token,cluster[,host]")]
    ParseTokenFile {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// The host API could not be asked for the cluster's Secret.
    #[error("reading Secret {namespace}/{name} from the host: {source}")]
    ReadSecret {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Why.
        source: kube::Error,
    },
}

/// One authorized agent token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenEntry {
    /// The bearer token.
    pub token: String,
    /// The only cluster it may serve.
    pub cluster: String,
    /// The host the controller CONNECTs to for that cluster (None = default tunnel host).
    pub host: Option<String>,
}

/// What an authenticated agent may serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentGrant {
    /// Its cluster.
    pub cluster: String,
    /// The CONNECT host routed to it (lower case).
    pub host: String,
}

/// Where agent tokens come from.
#[derive(Clone)]
pub enum AgentTokenSource {
    /// CSV `token,cluster[,host]`, re-read on every handshake.
    File(PathBuf),
    /// Host Secrets `<cluster>-tunnel-token` in `namespace`.
    HostSecrets {
        /// Client of the federation host.
        client: kube::Client,
        /// The federation namespace.
        namespace: String,
    },
    /// Fixed entries.
    Static(Vec<TokenEntry>),
}

impl std::fmt::Debug for AgentTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "File({})", p.display()),
            Self::HostSecrets { namespace, .. } => write!(f, "HostSecrets({namespace})"),
            Self::Static(e) => write!(f, "Static({} entries)", e.len()),
        }
    }
}

/// Parses a token file (pure; `path` only names it in errors).
pub fn parse_token_file(path: &Path, text: &str) -> Result<Vec<TokenEntry>, AuthError> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = || AuthError::ParseTokenFile {
            path: path.to_path_buf(),
            line: i + 1,
        };
        let (token, cluster, host) = match fields.as_slice() {
            [t, c] => (*t, *c, None),
            [t, c, h] => (*t, *c, Some(*h).filter(|h| !h.is_empty())),
            _ => return Err(bad()),
        };
        if token.is_empty() || !protocol::valid_cluster_name(cluster) {
            return Err(bad());
        }
        entries.push(TokenEntry {
            token: token.into(),
            cluster: cluster.into(),
            host: host.map(str::to_ascii_lowercase),
        });
    }
    Ok(entries)
}

/// A random token of 64 hex characters (what `join --via-tunnel` and `cellfed up --tunnel`
/// generate).
pub fn random_token() -> String {
    use rand::Rng as _;
    let bytes: [u8; 32] = rand::thread_rng().r#gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn tokens_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Checks agents and proxy clients.
#[derive(Clone, Debug, Default)]
pub struct Authenticator {
    /// Agent token sources, asked in order; the first that authorizes the agent wins.
    pub agent_sources: Vec<AgentTokenSource>,
    /// Tokens the CONNECT proxy accepts (the controller's).
    pub proxy_tokens: Vec<String>,
}

impl Authenticator {
    /// Whether `cluster`'s agent presenting `token` may connect, and which host it serves.
    pub async fn agent(&self, cluster: &str, token: Option<&str>) -> Result<AgentGrant, AuthError> {
        if !protocol::valid_cluster_name(cluster) {
            return Err(AuthError::BadClusterName {
                name: cluster.into(),
            });
        }
        let token = token.ok_or(AuthError::MissingToken)?;
        let grant = |host: Option<String>| AgentGrant {
            cluster: cluster.into(),
            host: host
                .map(|h| h.to_ascii_lowercase())
                .unwrap_or_else(|| protocol::default_tunnel_host(cluster)),
        };
        let matching = |entries: Vec<TokenEntry>| {
            entries
                .into_iter()
                .find(|e| e.cluster == cluster && tokens_equal(&e.token, token))
        };
        for source in &self.agent_sources {
            let found = match source {
                AgentTokenSource::Static(entries) => matching(entries.clone()),
                AgentTokenSource::File(path) => {
                    let text = std::fs::read_to_string(path).map_err(|source| {
                        AuthError::ReadTokenFile {
                            path: path.clone(),
                            source,
                        }
                    })?;
                    matching(parse_token_file(path, &text)?)
                }
                AgentTokenSource::HostSecrets { client, namespace } => {
                    matching(secret_entries(client, namespace, cluster).await?)
                }
            };
            if let Some(e) = found {
                return Ok(grant(e.host));
            }
        }
        Err(AuthError::NotAuthorized {
            cluster: cluster.into(),
        })
    }

    /// Whether a `Proxy-Authorization` header value carries an accepted proxy token.
    pub fn proxy(&self, header: Option<&str>) -> bool {
        let Some(secret) = header.and_then(protocol::proxy_secret) else {
            return false;
        };
        self.proxy_tokens.iter().any(|t| tokens_equal(t, &secret))
    }
}

/// Reads a proxy token file: one token per line (`#` comments).
pub fn read_proxy_tokens(path: &Path) -> Result<Vec<String>, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::ReadTokenFile {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

async fn secret_entries(
    client: &kube::Client,
    namespace: &str,
    cluster: &str,
) -> Result<Vec<TokenEntry>, AuthError> {
    let name = agent_secret_name(cluster);
    let secrets: kube::Api<Secret> = kube::Api::namespaced(client.clone(), namespace);
    // network: one GET per agent handshake
    let secret = secrets
        .get_opt(&name)
        .await
        .map_err(|source| AuthError::ReadSecret {
            namespace: namespace.into(),
            name: name.clone(),
            source,
        })?;
    let data = secret.and_then(|s| s.data).unwrap_or_default();
    let text = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(&v.0).trim().to_string())
            .filter(|v| !v.is_empty())
    };
    Ok(text("token")
        .map(|token| TokenEntry {
            token,
            cluster: cluster.into(),
            host: text("host"),
        })
        .into_iter()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(token: &str, cluster: &str) -> TokenEntry {
        TokenEntry {
            token: token.into(),
            cluster: cluster.into(),
            host: None,
        }
    }

    #[test]
    fn token_files_parse() {
        let text = "# agents\nt1,member1\n\n t2 , member2 , API.Example.com \nt3,member3,\n";
        let entries = parse_token_file(Path::new("f"), text).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0], entry("t1", "member1"));
        assert_eq!(entries[1].host.as_deref(), Some("api.example.com"));
        assert_eq!(entries[2].host, None);
        for bad in ["t1", "t1,Member1", ",member1", "a,b,c,d"] {
            let err = parse_token_file(Path::new("f"), bad).unwrap_err();
            assert!(err.to_string().contains("f:1"), "{err}");
        }
    }

    #[tokio::test]
    async fn an_agent_serves_only_its_own_cluster() {
        let auth = Authenticator {
            agent_sources: vec![AgentTokenSource::Static(vec![
                entry("t1", "member1"),
                TokenEntry {
                    host: Some("api.one.example".into()),
                    ..entry("t2", "member2")
                },
            ])],
            proxy_tokens: vec![],
        };
        let g = auth.agent("member1", Some("t1")).await.unwrap();
        assert_eq!(g.host, "member1.cluster.internal");
        let g = auth.agent("member2", Some("t2")).await.unwrap();
        assert_eq!(g.host, "api.one.example");
        assert!(matches!(
            auth.agent("member2", Some("t1")).await,
            Err(AuthError::NotAuthorized { .. })
        ));
        assert!(matches!(
            auth.agent("member1", Some("t1x")).await,
            Err(AuthError::NotAuthorized { .. })
        ));
        assert!(matches!(
            auth.agent("member1", None).await,
            Err(AuthError::MissingToken)
        ));
        assert!(matches!(
            auth.agent("Member1", Some("t1")).await,
            Err(AuthError::BadClusterName { .. })
        ));
    }

    #[tokio::test]
    async fn token_files_are_reread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agents.csv");
        std::fs::write(&path, "t1,member1\n").unwrap();
        let auth = Authenticator {
            agent_sources: vec![AgentTokenSource::File(path.clone())],
            proxy_tokens: vec![],
        };
        assert!(auth.agent("member2", Some("t2")).await.is_err());
        std::fs::write(&path, "t1,member1\nt2,member2\n").unwrap();
        assert!(auth.agent("member2", Some("t2")).await.is_ok());
    }

    #[test]
    fn proxy_needs_a_known_token() {
        let auth = Authenticator {
            agent_sources: vec![],
            proxy_tokens: vec!["p1".into()],
        };
        assert!(auth.proxy(Some("Bearer p1")));
        assert!(auth.proxy(Some(&protocol::basic_credentials("cellfed", "p1"))));
        assert!(!auth.proxy(Some("Bearer p2")));
        assert!(!auth.proxy(None));
        assert!(!Authenticator::default().proxy(Some("Bearer ")));
        assert_eq!(random_token().len(), 64);
        assert_ne!(random_token(), random_token());
    }
}
