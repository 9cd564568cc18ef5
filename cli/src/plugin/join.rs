//! `kubectl cellfed join` / `unjoin`: register a member cluster with the federation host, as
//! `kubefedctl join` does: credentials for the controller in the member, a Secret and a
//! KubeFedCluster in the host; and remove it again.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use super::errors::hinted;

/// Field manager of everything join writes.
const MANAGER: &str = "kubectl-cellfed";

/// What join needs to know about the member, read from its kubeconfig context.
#[derive(Clone, Debug)]
pub struct MemberAccess {
    /// API endpoint (`server`).
    pub endpoint: String,
    /// CA PEM, if the context has one.
    pub ca_pem: Option<Vec<u8>>,
    /// The context's bearer token, used when the member mints no service-account tokens.
    pub token: Option<String>,
    /// The kubeconfig skips TLS verification (`insecure-skip-tls-verify`).
    pub insecure: bool,
    /// The kubeconfig's `proxy-url`.
    pub proxy_url: Option<String>,
}

/// Reads server, CA and token of `context` in `kubeconfig`.
pub fn member_access(
    kubeconfig: &kube::config::Kubeconfig,
    context: &str,
) -> anyhow::Result<MemberAccess> {
    let ctx = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.clone())
        .with_context(|| format!("context {context:?} not found in the kubeconfig"))?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.clone())
        .with_context(|| format!("cluster {:?} of context {context:?} not found", ctx.cluster))?;
    let endpoint = cluster
        .server
        .clone()
        .with_context(|| format!("cluster {:?} has no server", ctx.cluster))?;
    let ca_pem = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(b64), _) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .context("certificate-authority-data is not base64")?,
        ),
        (None, Some(path)) => Some(std::fs::read(path).with_context(|| format!("reading {path}"))?),
        _ => None,
    };
    let token = ctx.user.as_ref().and_then(|u| {
        kubeconfig
            .auth_infos
            .iter()
            .find(|a| &a.name == u)
            .and_then(|a| a.auth_info.as_ref())
            .and_then(|a| a.token.as_ref())
            .map(|t| secrecy::ExposeSecret::expose_secret(t).to_string())
    });
    Ok(MemberAccess {
        endpoint,
        ca_pem,
        token,
        insecure: cluster.insecure_skip_tls_verify.unwrap_or(false),
        proxy_url: cluster.proxy_url.clone(),
    })
}

/// How `join` goes about it (kubefedctl's flags).
#[derive(Clone, Debug)]
pub struct JoinOptions {
    /// Name of the KubeFedCluster.
    pub name: String,
    /// The federation's system namespace (host and member).
    pub fed_ns: String,
    /// Name of the host Secret holding the credentials (default `<name>-secret`).
    pub secret_name: Option<String>,
    /// Fail, before writing anything, when any of the objects join writes already exists.
    pub error_on_existing: bool,
    /// Report what would be written, write nothing.
    pub dry_run: bool,
    /// How long to wait for the member's token controller to fill the legacy
    /// service-account token Secret before asking for a token with TokenRequest.
    pub token_wait: Duration,
    /// The ClusterRole bound to the member's service account (KubeFed's default: cluster-admin).
    pub member_role: String,
    /// When the member mints no token at all, copy the member context's own token into the host
    /// (the host then holds the caller's credentials: off by default).
    pub allow_copy_token: bool,
}

impl JoinOptions {
    /// Options for `name` in `fed_ns` with kubefedctl's defaults (errors on existing objects).
    pub fn new(name: &str, fed_ns: &str) -> Self {
        Self {
            name: name.into(),
            fed_ns: fed_ns.into(),
            secret_name: None,
            error_on_existing: true,
            dry_run: false,
            token_wait: Duration::from_secs(3),
            member_role: DEFAULT_MEMBER_ROLE.into(),
            allow_copy_token: false,
        }
    }

    /// The host Secret's name.
    pub fn secret_name(&self) -> String {
        self.secret_name
            .clone()
            .unwrap_or_else(|| format!("{}-secret", self.name))
    }
}

/// The ClusterRole the member's service account is bound to unless `--member-role` says otherwise.
pub const DEFAULT_MEMBER_ROLE: &str = "cluster-admin";

/// How long a token requested with TokenRequest is asked to last (a year; the member may cap
/// it, and `join --error-on-existing=false` renews it).
pub const REQUESTED_TOKEN_SECONDS: i64 = 365 * 24 * 3600;

/// Where the member credential written to the host came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The legacy service-account token Secret, filled by the member's token controller.
    LegacySecret,
    /// TokenRequest on the service account; expires at the timestamp given.
    TokenRequest { expires: Option<String> },
    /// The member context's own token (`--allow-copy-token`).
    CopiedContextToken,
}

/// Picks the member credential (pure): the legacy Secret's token, else a TokenRequest token,
/// else — only with `allow_copy` — the context's own token; otherwise an error that says why
/// and what to do.
pub fn choose_token(
    legacy: Option<String>,
    requested: Result<(String, Option<String>), String>,
    context_token: Option<&str>,
    allow_copy: bool,
) -> anyhow::Result<(String, TokenSource)> {
    if let Some(t) = legacy {
        return Ok((t, TokenSource::LegacySecret));
    }
    let why = match requested {
        Ok((t, expires)) => return Ok((t, TokenSource::TokenRequest { expires })),
        Err(why) => why,
    };
    match (allow_copy, context_token) {
        (true, Some(t)) => Ok((t.to_owned(), TokenSource::CopiedContextToken)),
        (true, None) => anyhow::bail!(
            "the member minted no service-account token (TokenRequest: {why}) and the member context has no bearer token to copy"
        ),
        (false, _) => anyhow::bail!(
            "the member minted no service-account token (TokenRequest: {why}); join does not copy your own credentials into the host unless you pass --allow-copy-token"
        ),
    }
}

/// The member's service account (and its ClusterRoleBinding) for cluster `name`.
pub fn service_account_name(name: &str) -> String {
    format!("{name}-cellfed")
}

/// Joins a member as `name`, updating whatever exists already (what `cellfed up` needs on every
/// start): see [`join_with`].
pub async fn join(
    host: &kube::Client,
    member: &kube::Client,
    access: &MemberAccess,
    name: &str,
    fed_ns: &str,
    token_wait: Duration,
) -> anyhow::Result<()> {
    let opts = JoinOptions {
        error_on_existing: false,
        token_wait,
        ..JoinOptions::new(name, fed_ns)
    };
    join_with(host, member, access, &opts).await.map(drop)
}

/// Joins a member: namespace, service account with cluster-admin rights and its token in the
/// member (falling back to the context's own token when the member mints none, as `cellfed
/// member` does not), then the Secret and the KubeFedCluster in the host — the KubeFedCluster
/// with `disabledTLSValidations: ["*"]` and `proxyURL` when the member's kubeconfig says so, as
/// kubefedctl. Returns one line per object, kubectl style.
pub async fn join_with(
    host: &kube::Client,
    member: &kube::Client,
    access: &MemberAccess,
    opts: &JoinOptions,
) -> anyhow::Result<Vec<String>> {
    let (name, fed_ns) = (opts.name.as_str(), opts.fed_ns.as_str());
    let in_member = format!("in member cluster {name:?}");
    let sa = service_account_name(name);
    let secret_name = opts.secret_name();
    let ns_api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(member.clone());
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(member.clone(), fed_ns);
    let crbs: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(member.clone());
    let member_secrets: Api<Secret> = Api::namespaced(member.clone(), fed_ns);
    let host_secrets: Api<Secret> = Api::namespaced(host.clone(), fed_ns);
    let clusters: Api<cellfed_api::kubefed::KubeFedCluster> = Api::namespaced(host.clone(), fed_ns);

    // what exists already (read only)
    let exists_in_member = |r: Result<Option<_>, kube::Error>| {
        r.map(|o: Option<()>| o.is_some())
            .map_err(|e| hinted(e, in_member.clone()))
    };
    let ns_exists = exists_in_member(ns_api.get_opt(fed_ns).await.map(|o| o.map(drop)))?;
    let sa_exists = exists_in_member(sas.get_opt(&sa).await.map(|o| o.map(drop)))?;
    let crb_exists = exists_in_member(crbs.get_opt(&sa).await.map(|o| o.map(drop)))?;
    let secret_exists = host_secrets.get_opt(&secret_name).await?.is_some();
    let cluster_exists = clusters.get_opt(name).await?.is_some();
    if opts.error_on_existing {
        let mut existing = Vec::new();
        if sa_exists {
            existing.push(format!("ServiceAccount {fed_ns}/{sa} in {name}"));
        }
        if crb_exists {
            existing.push(format!("ClusterRoleBinding {sa} in {name}"));
        }
        if secret_exists {
            existing.push(format!("Secret {fed_ns}/{secret_name} in the host"));
        }
        if cluster_exists {
            existing.push(format!("KubeFedCluster {fed_ns}/{name} in the host"));
        }
        anyhow::ensure!(
            existing.is_empty(),
            "cluster {name:?} looks joined already ({} exist); unjoin it first, or pass --error-on-existing=false to update them",
            existing.join(", ")
        );
    }
    let suffix = if opts.dry_run { " (dry run)" } else { "" };
    let verb = |exists: bool| if exists { "configured" } else { "created" };
    let mut lines = Vec::new();
    if !ns_exists {
        lines.push(format!("{name}: namespace/{fed_ns} created{suffix}"));
    }
    lines.push(format!(
        "{name}: serviceaccount/{sa} {}{suffix}",
        verb(sa_exists)
    ));
    lines.push(format!(
        "{name}: clusterrolebinding.rbac.authorization.k8s.io/{sa} {}{suffix}",
        verb(crb_exists)
    ));
    lines.push(format!(
        "host: secret/{secret_name} {}{suffix}",
        verb(secret_exists)
    ));
    lines.push(format!(
        "host: kubefedcluster.core.kubefed.io/{name} {}{suffix}",
        verb(cluster_exists)
    ));
    if opts.dry_run {
        return Ok(lines);
    }

    let ssa = PatchParams::apply(MANAGER).force();
    // member side
    let member_step = |r: Result<(), kube::Error>| r.map_err(|e| hinted(e, in_member.clone()));
    if !ns_exists {
        member_step(
            ns_api
                .patch(
                    fed_ns,
                    &ssa,
                    &Patch::Apply(
                        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": fed_ns}}),
                    ),
                )
                .await
                .map(drop),
        )?;
    }
    member_step(sas.patch(&sa, &ssa, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": fed_ns}}))).await.map(drop))?;
    member_step(crbs.patch(&sa, &ssa, &Patch::Apply(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": sa},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": opts.member_role},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": fed_ns}]
    }))).await.map(drop))?;
    let token_secret = format!("{sa}-token");
    member_step(member_secrets.patch(&token_secret, &ssa, &Patch::Apply(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": token_secret, "namespace": fed_ns, "annotations": {"kubernetes.io/service-account.name": sa}}
    }))).await.map(drop))?;
    let legacy = wait_for_token(&member_secrets, &token_secret, opts.token_wait).await;
    let requested = match legacy {
        Some(_) => Err("not asked".to_owned()),
        None => request_token(&sas, &sa).await,
    };
    let (token, source) = choose_token(
        legacy,
        requested,
        access.token.as_deref(),
        opts.allow_copy_token,
    )
    .map_err(|e| anyhow::anyhow!("{in_member}: {e}"))?;
    // host side
    let mut data = json!({"token": base64::engine::general_purpose::STANDARD.encode(&token)});
    if let Some(ca) = &access.ca_pem {
        data["ca.crt"] = json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    host_secrets
        .patch(
            &secret_name,
            &ssa,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": secret_name, "namespace": fed_ns}, "data": data
            })),
        )
        .await?;
    clusters
        .patch(
            name,
            &ssa,
            &Patch::Apply(json!({
                "apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
                "metadata": {"name": name, "namespace": fed_ns},
                "spec": cluster_spec(access, &secret_name),
            })),
        )
        .await?;
    lines.push(match source {
        TokenSource::LegacySecret => format!(
            "{name}: credential: token of serviceaccount/{sa} (ClusterRole {})",
            opts.member_role
        ),
        TokenSource::TokenRequest { expires } => format!(
            "{name}: credential: token requested for serviceaccount/{sa} (ClusterRole {}), expires {}; renew with join --error-on-existing=false",
            opts.member_role,
            expires.as_deref().unwrap_or("at the member's maximum")
        ),
        TokenSource::CopiedContextToken => format!(
            "{name}: credential: WARNING: your own token from the member context was copied into the host (--allow-copy-token)"
        ),
    });
    lines.push(format!(
        "cluster {name} joined (KubeFedCluster {fed_ns}/{name})"
    ));
    Ok(lines)
}

/// The KubeFedCluster spec for a member reached through `access` with credentials in Secret
/// `secret_name` (pure).
pub fn cluster_spec(access: &MemberAccess, secret_name: &str) -> serde_json::Value {
    let mut spec = json!({"apiEndpoint": access.endpoint, "secretRef": {"name": secret_name}});
    if let Some(ca) = &access.ca_pem {
        spec["caBundle"] = json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    if access.insecure {
        spec["disabledTLSValidations"] = json!(["*"]);
    }
    if let Some(proxy) = &access.proxy_url {
        spec["proxyURL"] = json!(proxy);
    }
    spec
}

/// A token for the service account through TokenRequest: (token, expiration timestamp), or why
/// the member refused.
async fn request_token(
    sas: &Api<k8s_openapi::api::core::v1::ServiceAccount>,
    sa: &str,
) -> Result<(String, Option<String>), String> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(REQUESTED_TOKEN_SECONDS),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = sas
        .create_token_request(sa, &kube::api::PostParams::default(), &request)
        .await
        .map_err(|e| e.to_string())?;
    let status = answer
        .status
        .ok_or_else(|| "the answer carried no status".to_owned())?;
    if status.token.is_empty() {
        return Err("the answer carried an empty token".into());
    }
    Ok((
        status.token,
        Some(status.expiration_timestamp.0.to_string()),
    ))
}

async fn wait_for_token(secrets: &Api<Secret>, name: &str, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(s) = secrets.get(name).await
            && let Some(t) = s.data.as_ref().and_then(|d| d.get("token"))
        {
            return Some(String::from_utf8_lossy(&t.0).into_owned());
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How `unjoin` goes about it.
#[derive(Clone, Debug)]
pub struct UnjoinOptions {
    /// Name of the KubeFedCluster.
    pub name: String,
    /// The federation's system namespace.
    pub fed_ns: String,
    /// Remove the cluster from the host even when the member cannot be cleaned up.
    pub force: bool,
    /// Report what would be deleted, delete nothing.
    pub dry_run: bool,
}

/// What unjoin did: lines to print, and warnings about what it could not do (with `force`).
#[derive(Debug, Default)]
pub struct Unjoined {
    /// One line per deleted object, kubectl style.
    pub lines: Vec<String>,
    /// What was left behind, and why.
    pub warnings: Vec<String>,
}

/// Removes cluster `name` from the federation, kubefedctl's way: first the service account, its
/// binding and token in the member (when `member` is given), then the Secret the KubeFedCluster
/// refers to and the KubeFedCluster in the host. A member that cannot be cleaned up stops the
/// unjoin unless `force`, which removes the host side anyway.
pub async fn unjoin_with(
    host: &kube::Client,
    member: Option<&kube::Client>,
    opts: &UnjoinOptions,
) -> anyhow::Result<Unjoined> {
    let (name, fed_ns) = (opts.name.as_str(), opts.fed_ns.as_str());
    let clusters: Api<cellfed_api::kubefed::KubeFedCluster> = Api::namespaced(host.clone(), fed_ns);
    let cluster = clusters.get(name).await?;
    let secret_name = cluster.spec.secret_ref.name.clone();
    let suffix = if opts.dry_run { " (dry run)" } else { "" };
    let mut out = Unjoined::default();
    if let Some(m) = member {
        let sa = service_account_name(name);
        match clean_member(m, &sa, fed_ns, opts.dry_run).await {
            Ok(deleted) => out
                .lines
                .extend(deleted.into_iter().map(|d| format!("{name}: {d} deleted{suffix}"))),
            Err(e) if opts.force => out.warnings.push(format!(
                "member cluster {name:?} not cleaned up ({}); removing it from the host anyway (--force)",
                super::errors::render(&e)
            )),
            Err(e) => {
                return Err(e.context(super::errors::Hint(format!(
                    "cleaning up member cluster {name:?}; nothing was removed: fix access to the member, or pass --force to remove it from the host anyway"
                ))));
            }
        }
    }
    let secrets: Api<Secret> = Api::namespaced(host.clone(), fed_ns);
    if secrets.get_opt(&secret_name).await?.is_some() {
        if !opts.dry_run {
            gone(secrets.delete(&secret_name, &DeleteParams::default()).await)?;
        }
        out.lines
            .push(format!("host: secret/{secret_name} deleted{suffix}"));
    }
    if !opts.dry_run {
        gone(clusters.delete(name, &DeleteParams::default()).await)?;
    }
    out.lines.push(format!(
        "host: kubefedcluster.core.kubefed.io/{name} deleted{suffix}"
    ));
    if !opts.dry_run {
        out.lines.push(format!("cluster {name} unjoined"));
    }
    Ok(out)
}

fn gone<T>(r: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes (or with `dry_run` only looks up) join's objects in the member; returns the
/// references of those that existed.
async fn clean_member(
    m: &kube::Client,
    sa: &str,
    fed_ns: &str,
    dry_run: bool,
) -> anyhow::Result<Vec<String>> {
    let mut deleted = Vec::new();
    let tokens: Api<Secret> = Api::namespaced(m.clone(), fed_ns);
    let token = format!("{sa}-token");
    if tokens.get_opt(&token).await?.is_some() {
        if !dry_run {
            gone(tokens.delete(&token, &DeleteParams::default()).await)?;
        }
        deleted.push(format!("secret/{token}"));
    }
    let crbs: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(m.clone());
    if crbs.get_opt(sa).await?.is_some() {
        if !dry_run {
            gone(crbs.delete(sa, &DeleteParams::default()).await)?;
        }
        deleted.push(format!("clusterrolebinding.rbac.authorization.k8s.io/{sa}"));
    }
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(m.clone(), fed_ns);
    if sas.get_opt(sa).await?.is_some() {
        if !dry_run {
            gone(sas.delete(sa, &DeleteParams::default()).await)?;
        }
        deleted.push(format!("serviceaccount/{sa}"));
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_credential_is_minted_never_copied_unless_asked() {
        let refused = || Err::<(String, Option<String>), _>("403 Forbidden".to_owned());
        // a token controller's legacy token wins
        assert_eq!(
            choose_token(Some("legacy".into()), refused(), Some("mine"), false).unwrap(),
            ("legacy".into(), TokenSource::LegacySecret)
        );
        // else TokenRequest
        let minted = Ok(("jwt".into(), Some("2027-11-30T00:00:00Z".into())));
        assert_eq!(
            choose_token(None, minted, Some("mine"), false).unwrap(),
            (
                "jwt".into(),
                TokenSource::TokenRequest {
                    expires: Some("2027-11-30T00:00:00Z".into())
                }
            )
        );
        // neither: the caller's own token is copied only when spelled out
        let err = choose_token(None, refused(), Some("mine"), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("403 Forbidden") && err.contains("--allow-copy-token"),
            "{err}"
        );
        assert_eq!(
            choose_token(None, refused(), Some("mine"), true).unwrap(),
            ("mine".into(), TokenSource::CopiedContextToken)
        );
        assert!(choose_token(None, refused(), None, true).is_err());
    }
}
