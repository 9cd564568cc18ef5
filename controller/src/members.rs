//! Member clusters: a kube client per `KubeFedCluster` (apiEndpoint + caBundle + the Secret's
//! token or kubeconfig, proxyURL, disabledTLSValidations) and their health, probed on an interval
//! with KubeFed's failure/success thresholds and written back as `Ready`/`Offline` conditions.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use cellfed_api::kubefed::{KubeFedCluster, TlsValidation};
use cellfed_api::tenancy::Tenancy;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{
    AuthInfo, Cluster, Context as KubeContext, KubeConfigOptions, Kubeconfig, NamedAuthInfo,
    NamedCluster, NamedContext,
};
use serde_json::json;

use crate::{Error, Result};

/// Annotation on a derived cell cluster naming the member namespace of the cell's objects.
pub const MEMBER_NAMESPACE_ANNOTATION: &str = "cellfed.io/member-namespace";

/// Health probing settings (KubeFed's defaults: 10s period, 3s timeout, thresholds 3 and 1).
#[derive(Clone, Debug)]
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

/// One member cluster as the controller knows it.
#[derive(Clone)]
pub struct Member {
    /// KubeFedCluster name.
    pub name: String,
    /// KubeFedCluster labels.
    pub labels: BTreeMap<String, String>,
    /// Tenant and workspace of the cluster.
    pub tenancy: Tenancy,
    /// For a cell's derived cluster: where the cell's objects live.
    pub member_namespace: Option<String>,
    /// Client for the member's API; None when it could not be built (status says why).
    pub client: Option<kube::Client>,
    /// Why no client could be built.
    pub client_error: Option<String>,
    /// Current readiness (after thresholds).
    pub ready: bool,
    /// Consecutive probe outcomes for the thresholds.
    pub streak: i64,
    /// Fingerprint of the spec + secret the client was built from.
    fingerprint: String,
}

/// All member clusters, by name.
#[derive(Default)]
pub struct Members {
    /// Members by KubeFedCluster name.
    pub by_name: BTreeMap<String, Member>,
}

impl Members {
    /// Re-reads KubeFedClusters and their Secrets in `fed_namespace`; rebuilds clients whose spec
    /// or secret changed; forgets removed clusters.
    pub async fn refresh(&mut self, host: &kube::Client, fed_namespace: &str) -> Result<()> {
        // network: list clusters and secrets on the host
        let clusters: Api<KubeFedCluster> = Api::namespaced(host.clone(), fed_namespace);
        let secrets: Api<Secret> = Api::namespaced(host.clone(), fed_namespace);
        let list = clusters
            .list(&Default::default())
            .await
            .map_err(Error::ListClusters)?;
        let mut seen = BTreeMap::new();
        for cluster in list.items {
            let name = cluster.metadata.name.clone().unwrap_or_default();
            let secret = secrets
                .get_opt(&cluster.spec.secret_ref.name)
                .await
                .map_err(Error::ListClusters)?;
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
            let was_ready = cluster.is_ready();
            let entry = match self.by_name.remove(&name) {
                Some(m) if m.fingerprint == fingerprint => m,
                old => {
                    let (client, client_error) = match build_client(&cluster, secret.as_ref()).await
                    {
                        Ok(c) => (Some(c), None),
                        Err(e) => (None, Some(e)),
                    };
                    Member {
                        name: name.clone(),
                        labels: labels.clone(),
                        tenancy: Tenancy::default(),
                        member_namespace: None,
                        client,
                        client_error,
                        ready: old.as_ref().map_or(was_ready, |m| m.ready),
                        streak: 0,
                        fingerprint,
                    }
                }
            };
            let tenancy = Tenancy::from_labels(Some(&labels));
            seen.insert(
                name,
                Member {
                    labels,
                    tenancy,
                    member_namespace,
                    ..entry
                },
            );
        }
        self.by_name = seen;
        Ok(())
    }

    /// Probes every member once, applies the thresholds and writes changed conditions.
    pub async fn probe_all(
        &mut self,
        host: &kube::Client,
        fed_namespace: &str,
        health: &HealthConfig,
    ) {
        let clusters: Api<KubeFedCluster> = Api::namespaced(host.clone(), fed_namespace);
        for member in self.by_name.values_mut() {
            // network: one probe per member
            let outcome = match &member.client {
                Some(c) => probe(c, health.timeout).await,
                None => Err(member.client_error.clone().unwrap_or_default()),
            };
            let before = member.ready;
            match &outcome {
                Ok(()) => member.streak = member.streak.max(0) + 1,
                Err(_) => member.streak = member.streak.min(0) - 1,
            }
            if !member.ready && member.streak >= i64::from(health.success_threshold) {
                member.ready = true;
            }
            if member.ready && -member.streak >= i64::from(health.failure_threshold) {
                member.ready = false;
            }
            // a fresh cluster with no history becomes ready/not ready on its first probe
            let status = condition_status(member.ready, &outcome);
            let current = clusters.get_status(&member.name).await.ok();
            let unchanged = current.as_ref().is_some_and(|c| {
                c.is_ready() == member.ready
                    && c.status.as_ref().is_some_and(|s| !s.conditions.is_empty())
            });
            if before != member.ready || !unchanged {
                // network: status write only on change
                let _ = clusters
                    .patch_status(
                        &member.name,
                        &PatchParams::default(),
                        &Patch::Merge(&json!({ "status": status })),
                    )
                    .await;
            }
        }
    }

    /// Members visible to a resource of `tenancy` (all when isolation is off).
    pub fn for_tenancy<'a>(
        &'a self,
        tenancy: &'a Tenancy,
        isolation: bool,
    ) -> impl Iterator<Item = &'a Member> + 'a {
        self.by_name
            .values()
            .filter(move |m| !isolation || tenancy.may_use(&m.tenancy))
    }
}

fn condition_status(ready: bool, outcome: &std::result::Result<(), String>) -> serde_json::Value {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let (reason, message) = match (ready, outcome) {
        (true, _) => ("ClusterReady", "/readyz responded with ok".to_string()),
        (false, Err(e)) => (
            "ClusterNotReachable",
            format!("cluster is not reachable: {e}"),
        ),
        (false, Ok(())) => (
            "ClusterNotReady",
            "/readyz responded, waiting for the success threshold".into(),
        ),
    };
    let mut conditions = vec![json!({
        "type": "Ready",
        "status": if ready { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastProbeTime": now,
        "lastTransitionTime": now,
    })];
    if !ready && outcome.is_err() {
        conditions.push(json!({
            "type": "Offline",
            "status": "True",
            "reason": "ClusterNotReachable",
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
/// or a whole `kubeconfig`).
pub async fn build_client(
    cluster: &KubeFedCluster,
    secret: Option<&Secret>,
) -> std::result::Result<kube::Client, String> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let secret = secret.ok_or_else(|| {
        format!(
            "secret {:?} of cluster {name} not found",
            cluster.spec.secret_ref.name
        )
    })?;
    let data = secret.data.clone().unwrap_or_default();
    let text = |key: &str| {
        data.get(key)
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
    };
    let mut kubeconfig = if let Some(kc) = text("kubeconfig") {
        Kubeconfig::from_yaml(&kc)
            .map_err(|e| format!("secret key kubeconfig of cluster {name}: {e}"))?
    } else {
        let token = text("token").ok_or_else(|| {
            format!(
                "secret {:?} has neither token nor kubeconfig",
                cluster.spec.secret_ref.name
            )
        })?;
        let ca = cluster
            .spec
            .ca_bundle
            .as_ref()
            .map(|b| b.0.clone())
            .or_else(|| data.get("ca.crt").map(|b| b.0.clone()));
        Kubeconfig {
            clusters: vec![NamedCluster {
                name: name.clone(),
                cluster: Some(Cluster {
                    server: Some(cluster.spec.api_endpoint.clone()),
                    certificate_authority_data: ca
                        .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem)),
                    ..Default::default()
                }),
                other: Default::default(),
            }],
            auth_infos: vec![NamedAuthInfo {
                name: name.clone(),
                auth_info: Some(AuthInfo {
                    token: Some(token.trim().to_string().into()),
                    ..Default::default()
                }),
                other: Default::default(),
            }],
            contexts: vec![NamedContext {
                name: name.clone(),
                context: Some(KubeContext {
                    cluster: name.clone(),
                    user: Some(name.clone()),
                    ..Default::default()
                }),
                other: Default::default(),
            }],
            current_context: Some(name.clone()),
            ..Default::default()
        }
    };
    for c in kubeconfig
        .clusters
        .iter_mut()
        .filter_map(|c| c.cluster.as_mut())
    {
        if let Some(proxy) = &cluster.spec.proxy_url {
            c.proxy_url = Some(proxy.clone());
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
            .map_err(|e| format!("client config of cluster {name}: {e}"))?;
    config.connect_timeout = Some(Duration::from_secs(3));
    config.read_timeout = Some(Duration::from_secs(30));
    kube::Client::try_from(config).map_err(|e| format!("client of cluster {name}: {e}"))
}
