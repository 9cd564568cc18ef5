//! Member clusters: a kube client per `KubeFedCluster` (apiEndpoint + caBundle + the Secret's
//! token, client certificate or data-only kubeconfig ([`crate::credentials`]), proxyURL,
//! disabledTLSValidations) and their health, probed on an interval with KubeFed's
//! failure/success thresholds and written back as `Ready`/`Offline` conditions. A member whose
//! credentials are refused, or a cell's derived cluster refused for tenancy
//! ([`crate::cells::refusals`]), gets no client at all and reads `Ready=False` with reason
//! `ClusterCredentialsRefused` / `TenantMismatch`. Everything is read from the host caches
//! ([`crate::host`]); probes run concurrently.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine as _;
use cellfed_api::kubefed::{KubeFedCluster, TlsValidation};
use cellfed_api::tenancy::Tenancy;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::config::KubeConfigOptions;
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;

/// Annotation on a derived cell cluster naming the member namespace of the cell's objects.
pub const MEMBER_NAMESPACE_ANNOTATION: &str = "cellfed.io/member-namespace";

/// Health probing settings (KubeFed's defaults: 10s period, 3s timeout, thresholds 3 and 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthConfig {
    /// How often members are probed.
    pub period: Duration,
    /// Timeout of one probe.
    pub timeout: Duration,
    /// Consecutive failures before a ready cluster becomes not ready.
    pub failure_threshold: u32,
    /// Consecutive successes before a not-ready cluster becomes ready.
    pub success_threshold: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            period: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
            failure_threshold: 3,
            success_threshold: 1,
        }
    }
}

/// One member cluster as the controller knows it (rebuilt when its KubeFedCluster or Secret
/// changes; only its health changes in place).
pub struct Member {
    /// KubeFedCluster name.
    pub name: String,
    /// KubeFedCluster labels.
    pub labels: BTreeMap<String, String>,
    /// Tenant and workspace of the cluster.
    pub tenancy: Tenancy,
    /// For a cell's derived cluster: where the cell's objects live in the member.
    pub member_namespace: Option<String>,
    /// For a cell's derived cluster: the namespace of the Cell (and of its federated resources).
    pub cell_namespace: Option<String>,
    /// `spec.apiEndpoint`: a cell's derived cluster shares its base cluster's.
    pub endpoint: String,
    /// Client for the member's API; None when it could not be built or was refused (status
    /// says why).
    pub client: Option<kube::Client>,
    /// Why there is no client (condition reason and message).
    pub no_client: Option<NoClient>,
    /// For a cell's derived cluster whose Cell fails the tenancy rules: why. Such a member gets
    /// no client and is used by no federated resource (they read `TenantMismatch`).
    pub tenancy_refusal: Option<String>,
    /// Fingerprint of the spec + secret the client was built from (watches restart on change).
    pub fingerprint: String,
    /// Reached through a tunnel proxy: the proxy URL (with credentials) and the CONNECT
    /// target, to ask the proxy why a probe failed.
    tunnel: Option<(String, String)>,
    health: Mutex<Health>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Health {
    ready: bool,
    streak: i64,
}

impl Member {
    /// Current readiness (after thresholds).
    pub fn ready(&self) -> bool {
        self.health.lock().map(|h| h.ready).unwrap_or(false)
    }

    /// Applies one probe outcome to the thresholds; returns whether readiness changed.
    fn observe(&self, ok: bool, health: &HealthConfig) -> bool {
        let Ok(mut h) = self.health.lock() else {
            return false;
        };
        let before = h.ready;
        h.streak = if ok {
            h.streak.max(0) + 1
        } else {
            h.streak.min(0) - 1
        };
        if !h.ready && h.streak >= i64::from(health.success_threshold) {
            h.ready = true;
        }
        if h.ready && -h.streak >= i64::from(health.failure_threshold) {
            h.ready = false;
        }
        before != h.ready
    }
}

/// All member clusters, by name; read by every reconcile, rebuilt by the supervisor.
#[derive(Default)]
pub struct Members {
    by_name: RwLock<BTreeMap<String, Arc<Member>>>,
}

impl Members {
    /// Every member.
    pub fn snapshot(&self) -> Vec<Arc<Member>> {
        self.by_name
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Members visible to a resource of `tenancy` (all when isolation is off); a derived
    /// cluster refused for tenancy is visible to no resource.
    pub fn for_tenancy(&self, tenancy: &Tenancy, isolation: bool) -> Vec<Arc<Member>> {
        self.snapshot()
            .into_iter()
            .filter(|m| m.tenancy_refusal.is_none())
            .filter(|m| !isolation || tenancy.may_use(&m.tenancy))
            .collect()
    }

    /// Brings the members in line with the cached KubeFedClusters and Secrets: clients are
    /// rebuilt when the cluster's spec or Secret changed, removed clusters forgotten; the
    /// derived clusters named in `tenancy_refusals` ([`crate::cells::refusals`]) get no client.
    /// Returns whether any member appeared, went, or changed labels, access or refusal.
    pub async fn refresh(
        &self,
        clusters: &Store<KubeFedCluster>,
        secrets: &Store<Secret>,
        tenancy_refusals: &BTreeMap<String, String>,
    ) -> bool {
        let current: BTreeMap<String, Arc<Member>> =
            self.by_name.read().map(|m| m.clone()).unwrap_or_default();
        let mut next = BTreeMap::new();
        let mut changed = false;
        for cluster in clusters.state() {
            let name = cluster.metadata.name.clone().unwrap_or_default();
            let secret_key = ObjectRef::<Secret>::new(&cluster.spec.secret_ref.name)
                .within(cluster.metadata.namespace.as_deref().unwrap_or_default());
            let secret = secrets.get(&secret_key);
            let fingerprint = format!(
                "{}/{}",
                cluster.metadata.generation.unwrap_or_default(),
                secret
                    .as_ref()
                    .and_then(|s| s.metadata.resource_version.clone())
                    .unwrap_or_default()
            );
            let labels = cluster.metadata.labels.clone().unwrap_or_default();
            let member_namespace = cluster
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(MEMBER_NAMESPACE_ANNOTATION))
                .cloned();
            let tenancy_refusal = tenancy_refusals.get(&name).cloned();
            let old = current.get(&name);
            if let Some(m) = old.filter(|m| {
                m.fingerprint == fingerprint
                    && m.labels == labels
                    && m.member_namespace == member_namespace
                    && m.tenancy_refusal == tenancy_refusal
            }) {
                next.insert(name, m.clone());
                continue;
            }
            changed = true;
            let cell_namespace = member_namespace.as_ref().and_then(|_| {
                cellfed_api::naming::split_cell_cluster(&name)
                    .ok()
                    .map(|(_, ns)| ns.to_string())
            });
            let reusable =
                old.filter(|m| m.fingerprint == fingerprint && m.tenancy_refusal.is_none());
            let (client, no_client) = match (&tenancy_refusal, reusable) {
                (Some(why), _) => (
                    None,
                    Some(NoClient {
                        reason: cellfed_api::well_known::PropagationStatus::TenantMismatch.as_str(),
                        message: why.clone(),
                    }),
                ),
                (None, Some(m)) => (m.client.clone(), m.no_client.clone()),
                (None, None) => match member_client(&cluster, secret.as_deref()).await {
                    Ok(c) => (Some(c), None),
                    Err(e) => {
                        tracing::warn!(cluster = %name, reason = e.reason, error = %e.message, "no client for member");
                        (None, Some(e))
                    }
                },
            };
            // a member without a client is not ready, whatever it was before
            let health = old
                .and_then(|m| m.health.lock().ok().map(|h| *h))
                .unwrap_or(Health {
                    ready: cluster.is_ready(),
                    streak: 0,
                });
            let health = if client.is_none() {
                Health::default()
            } else {
                health
            };
            next.insert(
                name.clone(),
                Arc::new(Member {
                    tenancy: Tenancy::from_labels(Some(&labels)),
                    name,
                    labels,
                    member_namespace,
                    cell_namespace,
                    endpoint: cluster.spec.api_endpoint.clone(),
                    client,
                    no_client,
                    tenancy_refusal,
                    fingerprint,
                    tunnel: tunnel_of(&cluster, secret.as_deref()),
                    health: Mutex::new(health),
                }),
            );
        }
        changed |= next.len() != current.len();
        if let Ok(mut m) = self.by_name.write() {
            *m = next;
        }
        changed
    }

    /// Probes every member at once (one slow member delays no other), applies the thresholds
    /// and writes changed `Ready`/`Offline` conditions; returns the members whose readiness
    /// changed.
    pub async fn probe_all(
        &self,
        host: &kube::Client,
        fed_namespace: &str,
        health: &HealthConfig,
        cached: &Store<KubeFedCluster>,
    ) -> Vec<(String, bool)> {
        let clusters: Api<KubeFedCluster> = Api::namespaced(host.clone(), fed_namespace);
        let members = self.snapshot();
        let probes = members.iter().map(|member| async {
            // network: one probe per member
            let outcome = match (&member.client, &member.no_client) {
                (Some(c), _) => probe(c, health.timeout).await,
                (None, why) => Err(why.as_ref().map(|n| n.message.clone()).unwrap_or_default()),
            };
            // network: a probe that failed through a tunnel asks the tunnel proxy why
            let outcome = match (&outcome, &member.tunnel) {
                (Err(_), Some((proxy, target))) => {
                    tunnel_refusal(proxy, target).await.map_or(outcome, Err)
                }
                _ => outcome,
            };
            let flipped = member.observe(outcome.is_ok(), health);
            let ready = member.ready();
            let refused = member
                .client
                .is_none()
                .then(|| member.no_client.as_ref().map(|n| n.reason))
                .flatten();
            let reason = condition_reason(ready, &outcome, refused);
            let key = ObjectRef::<KubeFedCluster>::new(&member.name).within(fed_namespace);
            let unchanged = cached.get(&key).is_some_and(|c| {
                c.is_ready() == ready && ready_reason(&c).as_deref() == Some(reason)
            });
            if flipped || !unchanged {
                // network: status write only on change
                let status = condition_status(ready, reason, &outcome);
                let _ = clusters
                    .patch_status(
                        &member.name,
                        &PatchParams::default(),
                        &Patch::Merge(&json!({ "status": status })),
                    )
                    .await;
            }
            flipped.then(|| (member.name.clone(), ready))
        });
        futures::future::join_all(probes)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Reason of the `Ready` condition (pure): `ClusterReady`; the reason of a refused client
/// (`ClusterCredentialsRefused`, `TenantMismatch`); `TunnelDisconnected` or `ClusterNotReachable`
/// when the probe failed; `ClusterNotReady` while the success threshold is not met.
fn condition_reason(
    ready: bool,
    outcome: &std::result::Result<(), String>,
    refused: Option<&'static str>,
) -> &'static str {
    match (ready, outcome, refused) {
        (true, _, _) => "ClusterReady",
        (false, Err(_), Some(reason)) => reason,
        (false, Err(e), None) if e.starts_with(TUNNEL_DISCONNECTED) => TUNNEL_DISCONNECTED,
        (false, Err(_), None) => "ClusterNotReachable",
        (false, Ok(()), _) => "ClusterNotReady",
    }
}

/// Reason of the cached `Ready` condition of a KubeFedCluster.
fn ready_reason(cluster: &KubeFedCluster) -> Option<String> {
    cluster
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == cellfed_api::kubefed::ClusterConditionType::Ready)?
        .reason
        .clone()
}

fn condition_status(
    ready: bool,
    reason: &'static str,
    outcome: &std::result::Result<(), String>,
) -> serde_json::Value {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    // a refused client was never tried: Ready says why, and the cluster is not "Offline"
    let unreachable = reason == "ClusterNotReachable" || reason == TUNNEL_DISCONNECTED;
    let message = match (ready, outcome) {
        (true, _) => "/readyz responded with ok".to_string(),
        (false, Err(e)) if unreachable => format!("cluster is not reachable: {e}"),
        (false, Err(e)) => e.clone(),
        (false, Ok(())) => "/readyz responded, waiting for the success threshold".into(),
    };
    let mut conditions = vec![json!({
        "type": "Ready",
        "status": if ready { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastProbeTime": now,
        "lastTransitionTime": now,
    })];
    if !ready && outcome.is_err() && unreachable {
        conditions.push(json!({
            "type": "Offline",
            "status": "True",
            "reason": reason,
            "message": message,
            "lastProbeTime": now,
            "lastTransitionTime": now,
        }));
    }
    json!({ "conditions": conditions })
}

async fn probe(client: &kube::Client, timeout: Duration) -> std::result::Result<(), String> {
    let get = |path: &str| http::Request::get(path).body(Vec::new());
    for path in ["/readyz", "/healthz"] {
        let Ok(req) = get(path) else { continue };
        match tokio::time::timeout(timeout, client.request_text(req)).await {
            Ok(Ok(body)) if body.trim() == "ok" => return Ok(()),
            Ok(Ok(body)) => return Err(format!("{path} answered {body:?}")),
            Ok(Err(kube::Error::Api(e))) if e.code == 404 => continue,
            Ok(Err(e)) => return Err(format!("{path}: {e}")),
            Err(_) => return Err(format!("{path} timed out after {timeout:?}")),
        }
    }
    Err("neither /readyz nor /healthz is served".into())
}

/// Builds a member client the way KubeFed does from a KubeFedCluster and its Secret (key `token`,
/// or a whole `kubeconfig`), refusing credentials that are not plain data
/// ([`crate::credentials`]); the error is a sentence.
pub async fn build_client(
    cluster: &KubeFedCluster,
    secret: Option<&Secret>,
) -> std::result::Result<kube::Client, String> {
    member_client(cluster, secret).await.map_err(|e| e.message)
}

/// Why a member has no client: the `Ready` condition's reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoClient {
    /// `ClusterCredentialsRefused`, `TenantMismatch`, or `ClusterNotReachable` for anything
    /// else (a missing Secret, a bad endpoint).
    pub reason: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl NoClient {
    fn unreachable(message: String) -> Self {
        Self {
            reason: "ClusterNotReachable",
            message,
        }
    }
}

/// [`build_client`] with the reason: an `apiEndpoint` without a scheme means `https://`;
/// `disabledTLSValidations` `*` skips TLS verification, `SubjectName` and `ValidityPeriod` skip
/// only that check ([`crate::tls`]). Refused credentials never reach kube-rs.
pub async fn member_client(
    cluster: &KubeFedCluster,
    secret: Option<&Secret>,
) -> std::result::Result<kube::Client, NoClient> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let mut kubeconfig = crate::credentials::kubeconfig(cluster, secret).map_err(|e| NoClient {
        reason: if e.refused() {
            crate::credentials::CREDENTIALS_REFUSED
        } else {
            "ClusterNotReachable"
        },
        message: e.to_string(),
    })?;
    let data = secret.and_then(|s| s.data.clone()).unwrap_or_default();
    let text = |key: &str| {
        data.get(key)
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
    };
    for c in kubeconfig
        .clusters
        .iter_mut()
        .filter_map(|c| c.cluster.as_mut())
    {
        if let Some(proxy) = &cluster.spec.proxy_url {
            c.proxy_url = Some(with_proxy_token(proxy, text(PROXY_TOKEN_KEY).as_deref()));
        }
        if cluster
            .spec
            .disabled_tls_validations
            .contains(&TlsValidation::All)
        {
            c.insecure_skip_tls_verify = Some(true);
            c.certificate_authority_data = None;
        }
    }
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| NoClient::unreachable(format!("client config of cluster {name}: {e}")))?;
    config.connect_timeout = Some(Duration::from_secs(3));
    // watches are re-opened every WATCH_TIMEOUT_SECONDS; single requests carry their own timeouts
    config.read_timeout = Some(Duration::from_secs(60));
    let validations = &cluster.spec.disabled_tls_validations;
    let skip = crate::tls::Skip {
        subject_name: validations.contains(&TlsValidation::SubjectName),
        validity_period: validations.contains(&TlsValidation::ValidityPeriod),
    };
    if !validations.contains(&TlsValidation::All) && skip != crate::tls::Skip::default() {
        return crate::tls::client(config, skip)
            .map_err(|e| NoClient::unreachable(format!("client of cluster {name}: {e}")));
    }
    kube::Client::try_from(config)
        .map_err(|e| NoClient::unreachable(format!("client of cluster {name}: {e}")))
}

/// Reason of a cluster whose tunnel agent is not connected (the cellfed tunnel proxy refused
/// the CONNECT with `Cellfed-Tunnel-Error: TunnelDisconnected`).
pub const TUNNEL_DISCONNECTED: &str = "TunnelDisconnected";

/// Key of the cluster Secret holding the token the tunnel proxy expects (`kubectl cellfed
/// join --via-tunnel` writes it); sent as the proxy URL's basic-auth password, so the token
/// never appears in the KubeFedCluster itself.
pub const PROXY_TOKEN_KEY: &str = "proxyToken";

/// `proxy` with `cellfed:TOKEN@` as user info, unless it has user info already (pure).
fn with_proxy_token(proxy: &str, token: Option<&str>) -> String {
    match (token, proxy.split_once("://")) {
        (Some(t), Some((scheme, rest))) if !rest.split('/').next().unwrap_or("").contains('@') => {
            format!("{scheme}://cellfed:{t}@{rest}")
        }
        _ => proxy.to_string(),
    }
}

/// The effective proxy URL and the CONNECT target (`host:port` of `apiEndpoint`) of a cluster
/// with a `proxyURL`.
fn tunnel_of(cluster: &KubeFedCluster, secret: Option<&Secret>) -> Option<(String, String)> {
    let proxy = cluster.spec.proxy_url.as_ref()?;
    let token = secret
        .and_then(|s| s.data.as_ref())
        .and_then(|d| d.get(PROXY_TOKEN_KEY))
        .map(|b| String::from_utf8_lossy(&b.0).trim().to_string());
    let endpoint: http::Uri = cluster.spec.api_endpoint.parse().ok()?;
    let target = format!(
        "{}:{}",
        endpoint.host()?,
        endpoint.port_u16().unwrap_or(443)
    );
    Some((with_proxy_token(proxy, token.as_deref()), target))
}

/// Asks an `http://` tunnel proxy for `target` the way the client did and returns a
/// `TunnelDisconnected: …` message when the proxy says the cluster's agent is away; None when
/// the proxy says anything else or cannot be asked within 2 s.
async fn tunnel_refusal(proxy: &str, target: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let uri: http::Uri = proxy.parse().ok()?;
    if uri.scheme_str() != Some("http") {
        return None;
    }
    let authority = uri.authority()?.as_str();
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let addr = match uri.port_u16() {
        Some(_) => host.to_string(),
        None => format!("{host}:80"),
    };
    let auth = userinfo
        .map(|u| {
            format!(
                "Proxy-Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(u)
            )
        })
        .unwrap_or_default();
    let ask = async {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.ok()?;
        let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n");
        tcp.write_all(request.as_bytes()).await.ok()?;
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
            let n = tcp.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        Some(String::from_utf8_lossy(&head).into_owned())
    };
    let head = tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .ok()??;
    let disconnected = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("cellfed-tunnel-error") && v.trim() == TUNNEL_DISCONNECTED
        })
    });
    disconnected.then(|| {
        format!(
            "{TUNNEL_DISCONNECTED}: the tunnel proxy {host} has no agent connected for {target}"
        )
    })
}

#[cfg(test)]
mod tunnel_tests {
    use super::*;

    #[test]
    fn proxy_tokens_become_user_info() {
        assert_eq!(
            with_proxy_token("http://tunnel:8132", Some("t")),
            "http://cellfed:t@tunnel:8132"
        );
        assert_eq!(
            with_proxy_token("http://u:p@tunnel:8132", Some("t")),
            "http://u:p@tunnel:8132"
        );
        assert_eq!(
            with_proxy_token("http://tunnel:8132", None),
            "http://tunnel:8132"
        );
    }

    #[tokio::test]
    async fn a_tunnel_proxy_names_a_disconnected_agent() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = tcp.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            tcp.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncellfed-tunnel-error: TunnelDisconnected\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            req
        });
        let why = tunnel_refusal(
            &format!("http://cellfed:t@127.0.0.1:{port}"),
            "member1.cluster.internal:443",
        )
        .await
        .unwrap();
        assert!(why.starts_with(TUNNEL_DISCONNECTED), "{why}");
        let req = server.await.unwrap();
        assert!(req.starts_with("CONNECT member1.cluster.internal:443 HTTP/1.1"));
        assert!(
            req.contains("Proxy-Authorization: Basic Y2VsbGZlZDp0"),
            "{req}"
        );
        assert_eq!(
            tunnel_refusal("https://127.0.0.1:1", "member1.cluster.internal:443").await,
            None
        );
    }
}

#[cfg(test)]
mod condition_tests {
    use super::*;

    #[test]
    fn a_refused_client_says_why_and_is_not_offline() {
        let refused = Err("secret \"s\": key kubeconfig: users[0].user.exec …".to_string());
        let reason = condition_reason(
            false,
            &refused,
            Some(crate::credentials::CREDENTIALS_REFUSED),
        );
        assert_eq!(reason, "ClusterCredentialsRefused");
        let status = condition_status(false, reason, &refused);
        let conditions = status["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 1, "no Offline condition: {conditions:?}");
        assert_eq!(conditions[0]["reason"], "ClusterCredentialsRefused");
        assert_eq!(conditions[0]["message"], refused.clone().unwrap_err());
        // a probe that failed is unreachable (and Offline), as before
        let down = Err("/readyz: connection refused".to_string());
        let reason = condition_reason(false, &down, None);
        assert_eq!(reason, "ClusterNotReachable");
        let status = condition_status(false, reason, &down);
        assert_eq!(status["conditions"][1]["type"], "Offline");
        assert_eq!(condition_reason(true, &Ok(()), None), "ClusterReady");
        assert_eq!(condition_reason(false, &Ok(()), None), "ClusterNotReady");
    }
}
