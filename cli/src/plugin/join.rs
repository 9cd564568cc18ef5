//! `kubectl cellfed join` / `unjoin`: register a member cluster with the federation host, as
//! `kubefedctl join` does: credentials for the controller in the member, a Secret and a
//! KubeFedCluster in the host.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

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
    })
}

/// Joins a member as `name`: service account with cluster-admin rights and its token in the
/// member (falling back to the context's own token when the member mints none, as `cellfed
/// member` does not), then Secret `<name>-secret` and KubeFedCluster `name` in the host.
pub async fn join(
    host: &kube::Client,
    member: &kube::Client,
    access: &MemberAccess,
    name: &str,
    fed_ns: &str,
    token_wait: Duration,
) -> anyhow::Result<()> {
    let sa = format!("{name}-cellfed");
    let ssa = PatchParams::apply(MANAGER).force();
    // member side
    let ns_api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(member.clone());
    ns_api
        .patch(
            fed_ns,
            &ssa,
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": fed_ns}}),
            ),
        )
        .await
        .context("creating the namespace in the member")?;
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(member.clone(), fed_ns);
    sas.patch(&sa, &ssa, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": fed_ns}}))).await.context("creating the service account in the member")?;
    let crbs: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(member.clone());
    crbs.patch(&sa, &ssa, &Patch::Apply(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": sa},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": fed_ns}]
    }))).await.context("binding the service account in the member")?;
    let member_secrets: Api<Secret> = Api::namespaced(member.clone(), fed_ns);
    let token_secret = format!("{sa}-token");
    member_secrets.patch(&token_secret, &ssa, &Patch::Apply(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": token_secret, "namespace": fed_ns, "annotations": {"kubernetes.io/service-account.name": sa}}
    }))).await.context("requesting a service-account token in the member")?;
    let token = wait_for_token(&member_secrets, &token_secret, token_wait).await;
    let token = match token {
        Some(t) => t,
        None => access.token.clone().context(
            "the member minted no service-account token and the member context has no bearer token to use instead",
        )?,
    };
    // host side
    let host_secrets: Api<Secret> = Api::namespaced(host.clone(), fed_ns);
    let secret_name = format!("{name}-secret");
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
        .await
        .context("writing the member's secret in the host")?;
    let mut spec = json!({"apiEndpoint": access.endpoint, "secretRef": {"name": secret_name}});
    if let Some(ca) = &access.ca_pem {
        spec["caBundle"] = json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    let clusters: Api<cellfed_api::kubefed::KubeFedCluster> = Api::namespaced(host.clone(), fed_ns);
    clusters
        .patch(
            name,
            &ssa,
            &Patch::Apply(json!({
                "apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
                "metadata": {"name": name, "namespace": fed_ns}, "spec": spec
            })),
        )
        .await
        .context("writing the KubeFedCluster in the host")?;
    Ok(())
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

/// Removes `name` from the federation: KubeFedCluster and Secret in the host, and (when
/// `member` is given and reachable) the service account, binding and token in the member.
pub async fn unjoin(
    host: &kube::Client,
    member: Option<&kube::Client>,
    name: &str,
    fed_ns: &str,
) -> anyhow::Result<()> {
    let gone = |r: Result<_, kube::Error>| match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    };
    let clusters: Api<cellfed_api::kubefed::KubeFedCluster> = Api::namespaced(host.clone(), fed_ns);
    gone(
        clusters
            .delete(name, &DeleteParams::default())
            .await
            .map(drop),
    )
    .context("deleting the KubeFedCluster")?;
    let secrets: Api<Secret> = Api::namespaced(host.clone(), fed_ns);
    gone(
        secrets
            .delete(&format!("{name}-secret"), &DeleteParams::default())
            .await
            .map(drop),
    )
    .context("deleting the host secret")?;
    if let Some(m) = member {
        let sa = format!("{name}-cellfed");
        let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(m.clone(), fed_ns);
        let crbs: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(m.clone());
        let tokens: Api<Secret> = Api::namespaced(m.clone(), fed_ns);
        gone(
            tokens
                .delete(&format!("{sa}-token"), &DeleteParams::default())
                .await
                .map(drop),
        )
        .context("deleting the member token")?;
        gone(crbs.delete(&sa, &DeleteParams::default()).await.map(drop))
            .context("deleting the member binding")?;
        gone(sas.delete(&sa, &DeleteParams::default()).await.map(drop))
            .context("deleting the member service account")?;
    }
    Ok(())
}
