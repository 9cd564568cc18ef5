//! `cellfed webhook`: the conversion and admission webhook over HTTPS.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use base64::Engine as _;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

/// Flags of `cellfed webhook`.
#[derive(Debug, clap::Args)]
pub struct WebhookArgs {
    /// Address to listen on (HTTPS).
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Directory with tls.crt/tls.key (and ca.crt); a self-signed pair is generated when missing.
    #[arg(long, default_value = ".cellfed/webhook")]
    pub cert_dir: PathBuf,
    /// Extra DNS names or IPs for a generated certificate (repeatable).
    #[arg(long = "tls-host")]
    pub tls_hosts: Vec<String>,
    /// Kubeconfig of the host (for admission lookups); default: in-cluster or $KUBECONFIG.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig.
    #[arg(long)]
    pub context: Option<String>,
    /// Namespace of the KubeFedClusters.
    #[arg(long, default_value = cellfed_api::well_known::DEFAULT_SYSTEM_NAMESPACE)]
    pub kubefed_namespace: String,
    /// Register this webhook with the host at start: point every types.kubefed.io CRD's
    /// conversion and the Validating/MutatingWebhookConfigurations `cellfed-webhook` at this
    /// base URL, with the webhook's CA as caBundle (standalone planes; the Helm chart configures
    /// this itself).
    #[arg(long)]
    pub advertise_url: Option<String>,
}

/// Points the host's federated CRDs (conversion) and the Validating/MutatingWebhookConfigurations
/// `cellfed-webhook` (cellfed's `/validate`, KubeFed's [`kubefed_webhooks`]) at `base_url`,
/// trusting `ca_pem`.
pub async fn register(client: &kube::Client, base_url: &str, ca_pem: &str) -> anyhow::Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let base = base_url.trim_end_matches('/');
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds
        .list(&ListParams::default())
        .await
        .context("listing CRDs")?
        .items
    {
        if crd.spec.group != cellfed_api::well_known::TYPES_GROUP {
            continue;
        }
        let name = crd.metadata.name.clone().unwrap_or_default();
        let patch = json!({"spec": {"conversion": {"strategy": "Webhook", "webhook": {
            "conversionReviewVersions": ["v1"],
            "clientConfig": {"url": format!("{base}/convert"), "caBundle": ca, "service": null}}}}});
        crds.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("pointing {name} at the webhook"))?;
    }
    let client_config = |path: &str| json!({"url": format!("{base}{path}"), "caBundle": ca});
    let (kubefed_validating, kubefed_mutating) = kubefed_webhooks(&client_config);
    let mut webhooks = vec![json!({
        "name": "validate.cellfed.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
        "failurePolicy": "Fail", "timeoutSeconds": 10,
        "clientConfig": client_config("/validate"),
        "rules": [
            {"apiGroups": ["types.kubefed.io"], "apiVersions": ["*"], "resources": ["*"], "operations": ["CREATE", "UPDATE"], "scope": "*"},
            {"apiGroups": ["cellfed.io"], "apiVersions": ["*"], "resources": ["cells"], "operations": ["CREATE", "UPDATE"], "scope": "*"}
        ]
    })];
    webhooks.extend(kubefed_validating);
    let vwc = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "cellfed-webhook"},
        "webhooks": webhooks,
    });
    let mwc = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "cellfed-webhook"},
        "webhooks": kubefed_mutating,
    });
    let mutating: Api<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration> =
        Api::all(client.clone());
    mutating
        .patch(
            "cellfed-webhook",
            &PatchParams::apply("cellfed-webhook").force(),
            &Patch::Apply(&mwc),
        )
        .await
        .context("writing MutatingWebhookConfiguration cellfed-webhook")?;
    let api: Api<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration> =
        Api::all(client.clone());
    api.patch(
        "cellfed-webhook",
        &PatchParams::apply("cellfed-webhook").force(),
        &Patch::Apply(&vwc),
    )
    .await
    .context("writing ValidatingWebhookConfiguration cellfed-webhook")?;
    Ok(())
}

/// KubeFed's webhooks for its own types, with KubeFed's names and paths: the validating ones
/// (KubeFedCluster, FederatedTypeConfig, KubeFedConfig) and the mutating KubeFedConfig
/// defaulter, each reached through `client_config(path)`. Status subresources are not sent (only
/// the controller writes them). Unlike KubeFed, defaults also apply on UPDATE, as
/// kube-apiserver's defaulting does: a field removed from the KubeFedConfig gets its default back
/// instead of a refusal.
pub fn kubefed_webhooks(
    client_config: &dyn Fn(&str) -> serde_json::Value,
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let hook = |resource: &str, path: &str| {
        json!({
            "name": format!("{resource}.core.kubefed.io"),
            "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Fail", "timeoutSeconds": 10,
            "clientConfig": client_config(path),
            "rules": [{"apiGroups": ["core.kubefed.io"], "apiVersions": ["v1beta1"],
                       "resources": [resource], "operations": ["CREATE", "UPDATE"],
                       "scope": "Namespaced"}],
        })
    };
    (
        vec![
            hook("federatedtypeconfigs", "/validate-federatedtypeconfigs"),
            hook("kubefedclusters", "/validate-kubefedcluster"),
            hook("kubefedconfigs", "/validate-kubefedconfig"),
        ],
        vec![hook("kubefedconfigs", "/default-kubefedconfig")],
    )
}

/// Runs the webhook until Ctrl-C.
pub async fn run(args: WebhookArgs) -> anyhow::Result<()> {
    let client = match super::controller::host_client(
        args.kubeconfig.as_ref(),
        args.context.as_ref(),
    )
    .await
    {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!(
                "cellfed webhook: no host client ({e:#}); admission checks that need the host are skipped"
            );
            None
        }
    };
    let webhook = cellfed_webhook::Webhook::bind(cellfed_webhook::WebhookConfig {
        listen: args.listen,
        cert_dir: args.cert_dir.clone(),
        hosts: args.tls_hosts.clone(),
        state: cellfed_webhook::WebhookState::new(client.clone(), args.kubefed_namespace.clone()),
    })
    .await
    .context("starting the webhook")?;
    if let (Some(url), Some(c)) = (&args.advertise_url, &client) {
        register(c, url, &webhook.ca_pem).await?;
        eprintln!("registered conversion and admission at {url}");
    }
    eprintln!(
        "cellfed webhook listening on https://{}; CA: {}",
        webhook
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        args.cert_dir.join("ca.crt").display()
    );
    webhook.run_until(super::ctrl_c()).await;
    Ok(())
}
