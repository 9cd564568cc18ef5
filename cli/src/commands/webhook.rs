//! `cellfed webhook`: the conversion and admission webhook over HTTPS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    /// kube's `--client-ca-file`: answer admission reviews (/validate) only to callers presenting
    /// a client certificate signed by a CA in this PEM file (the apiserver's, see its
    /// --admission-control-config-file). Unset, anyone who reaches the port may call: set it in
    /// production. /convert and the health endpoints stay open (kube-apiserver presents no
    /// credentials to conversion webhooks).
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
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
    let mut webhooks = vec![validate_hook(client_config("/validate"))];
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

/// cellfed's validating webhook `validate.cellfed.io`: federated resources and Cells on create
/// and update, reached through `client_config` (its `/validate`).
pub fn validate_hook(client_config: serde_json::Value) -> serde_json::Value {
    let rule = |groups: &[&str], resources: &[&str]| {
        json!({
            "apiGroups": groups,
            "apiVersions": ["*"],
            "resources": resources,
            "operations": ["CREATE", "UPDATE"],
            "scope": "*",
        })
    };
    json!({
        "name": "validate.cellfed.io",
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "timeoutSeconds": 10,
        "clientConfig": client_config,
        "rules": [
            rule(&[cellfed_api::well_known::TYPES_GROUP], &["*"]),
            rule(&[cellfed_api::well_known::CELLFED_GROUP], &["cells"]),
        ],
    })
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

/// Files that make the apiserver authenticate to the webhook (see [`ensure_client_auth`]).
#[derive(Debug, Clone)]
pub struct ClientAuthFiles {
    /// The client CA: the webhook's `--client-ca-file`.
    pub client_ca: PathBuf,
    /// The AdmissionConfiguration: the apiserver's `--admission-control-config-file`.
    pub admission_config: PathBuf,
}

/// Writes into `dir` (once; later calls keep what is there) a client CA, a client certificate
/// `cellfed-apiserver` it signs, a kubeconfig presenting it to the webhook at `webhook_target`
/// (`host:port`, the users entry kube matches) and the AdmissionConfiguration naming that
/// kubeconfig for both webhook admission plugins. Keys and the kubeconfig are 0600.
pub fn ensure_client_auth(dir: &Path, webhook_target: &str) -> anyhow::Result<ClientAuthFiles> {
    let dir = std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
    cellfed_pki::private_dir(&dir)?;
    let (ca, cert, key) = (
        dir.join("ca.crt"),
        dir.join("client.crt"),
        dir.join("client.key"),
    );
    if !(ca.exists() && cert.exists() && key.exists()) {
        let id = cellfed_pki::generate_client("cellfed-apiserver", &[])?;
        cellfed_pki::write(&key, &id.key_pem, true)?;
        cellfed_pki::write(&cert, &id.cert_pem, false)?;
        cellfed_pki::write(&ca, &id.ca_pem, false)?;
    }
    let kubeconfig = dir.join("webhook-client.kubeconfig");
    let kc = json!({
        "apiVersion": "v1", "kind": "Config",
        "users": [{"name": webhook_target, "user": {
            "client-certificate": cert.display().to_string(),
            "client-key": key.display().to_string()}}]
    });
    cellfed_pki::write(&kubeconfig, &serde_yaml::to_string(&kc)?, true)?;
    let plugin = |name: &str| {
        json!({"name": name, "configuration": {
            "apiVersion": "apiserver.config.k8s.io/v1", "kind": "WebhookAdmissionConfiguration",
            "kubeConfigFile": kubeconfig.display().to_string()}})
    };
    let admission = json!({
        "apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
        "plugins": [plugin("ValidatingAdmissionWebhook"), plugin("MutatingAdmissionWebhook")]
    });
    let admission_config = dir.join("admission.yaml");
    cellfed_pki::write(
        &admission_config,
        &serde_yaml::to_string(&admission)?,
        false,
    )?;
    Ok(ClientAuthFiles {
        client_ca: ca,
        admission_config,
    })
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
        client_ca_file: args.client_ca_file.clone(),
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
