//! `cellfed bootstrap`: installs the federation API into a federation apiserver — what `cellfed
//! up` installs (the CRDs, the federation namespace, the shipped KubeFedConfig, the default
//! FederatedTypeConfigs) plus, given the webhook's Service and CA, the federated CRDs' conversion
//! and the admission webhook configurations. The Helm chart's seed layout runs it as a hook Job
//! against the in-chart `cellfed apiserver`.
//!
//! Idempotent: an object whose stored form already holds every field we would write is left
//! alone (no write, no admission call, resourceVersion unchanged); any other is server-side
//! applied with the field manager [`MANAGER`], forced.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, ServiceReference, WebhookClientConfig,
};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

/// The field manager of every write.
pub const MANAGER: &str = "cellfed-bootstrap";

/// Flags of `cellfed bootstrap`.
#[derive(Debug, clap::Args)]
pub struct BootstrapArgs {
    /// Kubeconfig of the federation apiserver; default: in-cluster config or $KUBECONFIG.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig.
    #[arg(long)]
    pub context: Option<String>,
    /// The federation namespace: KubeFedConfig, FederatedTypeConfigs, the webhook's Service.
    #[arg(long, default_value = cellfed_api::well_known::DEFAULT_SYSTEM_NAMESPACE)]
    pub kubefed_namespace: String,
    /// Name of the webhook's Service in the federation namespace: the federated CRDs convert
    /// through it and the admission webhook configurations `<name>` and `<name>-kubefed` call
    /// it. Unset: no webhook configuration is written and the CRDs keep no conversion client
    /// (an apiserver converting in-process, as `cellfed up`).
    #[arg(long, requires = "webhook_ca_file")]
    pub webhook_service: Option<String>,
    /// Port of the webhook's Service.
    #[arg(long, default_value_t = 443)]
    pub webhook_port: i32,
    /// PEM CA of the webhook's serving certificate (the configurations' caBundle).
    #[arg(long, requires = "webhook_service")]
    pub webhook_ca_file: Option<PathBuf>,
    /// Also write KubeFed's admission webhooks for its own types (`<service>-kubefed`);
    /// false deletes them if present.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub kubefed_admission: bool,
    /// Write the FederatedTypeConfigs of the default kinds; false deletes them if present.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub default_types: bool,
    /// How long to wait for the apiserver's /readyz, and then for each step, before failing.
    #[arg(long, default_value = "5m", value_parser = super::controller::parse_duration)]
    pub timeout: Duration,
}

/// One request's bound, inside the overall timeout.
const ATTEMPT: Duration = Duration::from_secs(10);

/// Where the admission webhooks and the conversion are called.
pub(crate) struct WebhookTarget {
    service: String,
    namespace: String,
    port: i32,
    ca_pem: String,
}

impl WebhookTarget {
    fn client_config(&self, path: &str) -> Value {
        json!({
            "caBundle": base64::engine::general_purpose::STANDARD.encode(&self.ca_pem),
            "service": {"name": self.service, "namespace": self.namespace, "path": path, "port": self.port},
        })
    }
}

/// Runs the bootstrap once; Ok when everything is in place.
pub async fn run(args: BootstrapArgs) -> anyhow::Result<()> {
    let where_ = args.kubeconfig.as_ref().map_or_else(
        || "the in-cluster apiserver".to_string(),
        |p| format!("the apiserver of {}", p.display()),
    );
    let client = super::controller::host_client(args.kubeconfig.as_ref(), args.context.as_ref())
        .await
        .with_context(|| format!("building a client for {where_}"))?;
    let webhook = match (&args.webhook_service, &args.webhook_ca_file) {
        (Some(service), Some(ca)) => {
            let ca_pem = std::fs::read_to_string(ca)
                .with_context(|| format!("reading the webhook CA {}", ca.display()))?;
            if !ca_pem.contains("-----BEGIN CERTIFICATE-----") {
                bail!("{} holds no PEM certificate", ca.display());
            }
            Some(WebhookTarget {
                service: service.clone(),
                namespace: args.kubefed_namespace.clone(),
                port: args.webhook_port,
                ca_pem,
            })
        }
        _ => None,
    };
    let deadline = Instant::now() + args.timeout;
    wait_ready(&client, deadline, args.timeout)
        .await
        .with_context(|| format!("waiting for {where_}"))?;
    let written = install(
        &client,
        &args.kubefed_namespace,
        webhook.as_ref(),
        args.kubefed_admission,
        args.default_types,
        deadline,
    )
    .await?;
    eprintln!("cellfed bootstrap: done, {written} object(s) written or deleted");
    Ok(())
}

/// Polls `/readyz` until it answers `ok`, each attempt bounded, the whole by `deadline`.
async fn wait_ready(
    client: &kube::Client,
    deadline: Instant,
    timeout: Duration,
) -> anyhow::Result<()> {
    loop {
        let request = http::Request::get("/readyz").body(Vec::new())?;
        let last = match tokio::time::timeout(ATTEMPT, client.request_text(request)).await {
            Ok(Ok(body)) if body.trim() == "ok" => return Ok(()),
            Ok(Ok(body)) => format!("/readyz answered {:?}", body.trim()),
            Ok(Err(e)) => format!("{e}"),
            Err(_) => format!("no answer within {}s", ATTEMPT.as_secs()),
        };
        if Instant::now() >= deadline {
            bail!(
                "/readyz not ok within {}s (last: {last})",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The CRDs of `cellfed up`, the federated ones converting through `webhook` when given.
fn crds(webhook: Option<&WebhookTarget>) -> anyhow::Result<Vec<CustomResourceDefinition>> {
    let mut crds = cellfed_api::all_crds()?;
    if let Some(w) = webhook {
        for crd in &mut crds {
            cellfed_api::crdgen::set_conversion_client(
                crd,
                WebhookClientConfig {
                    ca_bundle: Some(ByteString(w.ca_pem.clone().into_bytes())),
                    service: Some(ServiceReference {
                        name: w.service.clone(),
                        namespace: w.namespace.clone(),
                        path: Some(cellfed_api::well_known::WEBHOOK_CONVERT_PATH.into()),
                        port: Some(w.port),
                    }),
                    url: None,
                },
            );
        }
    }
    Ok(crds)
}

/// The admission webhook configurations the classic chart renders for the host, as
/// `(kind, body)`: `<service>` (cellfed's `/validate`) and, with `kubefed`, KubeFed's
/// `<service>-kubefed` validating and mutating ones.
fn webhook_configurations(w: &WebhookTarget, kubefed: bool) -> Vec<(&'static str, Value)> {
    let config = |kind: &str, name: String, webhooks: Vec<Value>| {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": name},
            "webhooks": webhooks,
        })
    };
    let cc = |path: &str| w.client_config(path);
    let mut out = vec![(
        "ValidatingWebhookConfiguration",
        config(
            "ValidatingWebhookConfiguration",
            w.service.clone(),
            vec![super::webhook::validate_hook(cc("/validate"))],
        ),
    )];
    if kubefed {
        let (validating, mutating) = super::webhook::kubefed_webhooks(&cc);
        let name = format!("{}-kubefed", w.service);
        out.push((
            "ValidatingWebhookConfiguration",
            config("ValidatingWebhookConfiguration", name.clone(), validating),
        ));
        out.push((
            "MutatingWebhookConfiguration",
            config("MutatingWebhookConfiguration", name, mutating),
        ));
    }
    out
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() {
            version.into()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// Installs everything, in an order that never needs the webhook before it is configured:
/// CRDs (then waits until they are Established), the namespace, the KubeFedConfig, the
/// FederatedTypeConfigs, and the webhook configurations last. Returns how many objects were
/// written or deleted. Used by `cellfed up` (without a webhook target) too.
pub(crate) async fn install(
    client: &kube::Client,
    ns: &str,
    webhook: Option<&WebhookTarget>,
    kubefed_admission: bool,
    default_types: bool,
    deadline: Instant,
) -> anyhow::Result<usize> {
    let mut written = 0;
    let crd_res = resource(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    );
    let crd_api: Api<DynamicObject> = Api::all_with(client.clone(), &crd_res);
    let crds = crds(webhook)?;
    for crd in &crds {
        let mut body = serde_json::to_value(crd)?;
        body["apiVersion"] = json!("apiextensions.k8s.io/v1");
        body["kind"] = json!("CustomResourceDefinition");
        written += usize::from(ensure(&crd_api, &body, deadline).await?);
    }
    for crd in &crds {
        wait_established(
            &crd_api,
            crd.metadata.name.as_deref().unwrap_or_default(),
            deadline,
        )
        .await?;
    }

    let ns_api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &resource("", "v1", "Namespace", "namespaces"),
    );
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    written += usize::from(ensure(&ns_api, &body, deadline).await?);

    let group = cellfed_api::well_known::CORE_GROUP;
    let config_api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &resource(group, "v1beta1", "KubeFedConfig", "kubefedconfigs"),
    );
    let mut config = serde_json::to_value(cellfed_api::kubefed::KubeFedConfig::cellfed_default())?;
    config["apiVersion"] = json!(format!("{group}/v1beta1"));
    config["kind"] = json!("KubeFedConfig");
    config["metadata"]["namespace"] = json!(ns);
    written += usize::from(ensure(&config_api, &config, deadline).await?);

    let ftc_api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &resource(
            group,
            "v1beta1",
            "FederatedTypeConfig",
            "federatedtypeconfigs",
        ),
    );
    for target in cellfed_api::targets::default_targets() {
        let name = target.type_config_name();
        if !default_types {
            written += usize::from(remove(&ftc_api, &name, deadline).await?);
            continue;
        }
        let ftc = cellfed_api::kubefed::FederatedTypeConfig::for_target(&target, ns);
        let mut body = serde_json::to_value(&ftc)?;
        body["apiVersion"] = json!(format!("{group}/v1beta1"));
        body["kind"] = json!("FederatedTypeConfig");
        written += usize::from(ensure(&ftc_api, &body, deadline).await?);
    }

    if let Some(w) = webhook {
        let api = |kind: &str, plural: &str| -> Api<DynamicObject> {
            Api::all_with(
                client.clone(),
                &resource("admissionregistration.k8s.io", "v1", kind, plural),
            )
        };
        let validating = api(
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
        );
        let mutating = api(
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
        );
        for (kind, body) in webhook_configurations(w, kubefed_admission) {
            let api = if kind == "MutatingWebhookConfiguration" {
                &mutating
            } else {
                &validating
            };
            written += usize::from(ensure(api, &body, deadline).await?);
        }
        if !kubefed_admission {
            let name = format!("{}-kubefed", w.service);
            written += usize::from(remove(&validating, &name, deadline).await?);
            written += usize::from(remove(&mutating, &name, deadline).await?);
        }
    }
    Ok(written)
}

/// True when `live` holds every field of `want` with the same value (lists element by element,
/// same length); fields only `live` has (defaults, status, metadata) do not matter.
fn contains(live: &Value, want: &Value) -> bool {
    match (live, want) {
        (Value::Object(l), Value::Object(w)) => w.iter().all(|(k, v)| match l.get(k) {
            Some(lv) => contains(lv, v),
            None => v.is_null(),
        }),
        (Value::Array(l), Value::Array(w)) => {
            l.len() == w.len() && l.iter().zip(w).all(|(a, b)| contains(a, b))
        }
        _ => live == want,
    }
}

/// Retries `attempt` (each bounded by [`ATTEMPT`]) until it succeeds or `deadline` passes;
/// the error names `what` and the last failure.
async fn retry<T, F, Fut>(what: &str, deadline: Instant, mut attempt: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    loop {
        let last = match tokio::time::timeout(ATTEMPT, attempt()).await {
            Ok(Ok(v)) => return Ok(v),
            // a refusal that another try cannot change (a bad object, no permission)
            Ok(Err(kube::Error::Api(e))) if matches!(e.code, 400 | 401 | 403 | 422) => {
                bail!("{what}: {} ({})", e.message, e.reason)
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {}s", ATTEMPT.as_secs()),
        };
        if Instant::now() >= deadline {
            bail!("{what}: still failing at the deadline: {last}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn name_of(body: &Value) -> String {
    body["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Writes `body` unless the stored object already holds it; true when it wrote.
async fn ensure(api: &Api<DynamicObject>, body: &Value, deadline: Instant) -> anyhow::Result<bool> {
    let name = name_of(body);
    let what = format!("{} {name}", body["kind"].as_str().unwrap_or("object"));
    let live = retry(&format!("reading {what}"), deadline, || api.get_opt(&name)).await?;
    if let Some(live) = live
        && contains(&serde_json::to_value(&live)?, body)
    {
        return Ok(false);
    }
    let params = PatchParams::apply(MANAGER).force();
    let patch = Patch::Apply(body);
    retry(&format!("applying {what}"), deadline, || {
        api.patch(&name, &params, &patch)
    })
    .await?;
    Ok(true)
}

/// Deletes `name` if present; true when it deleted.
async fn remove(api: &Api<DynamicObject>, name: &str, deadline: Instant) -> anyhow::Result<bool> {
    let live = retry(&format!("reading {name}"), deadline, || api.get_opt(name)).await?;
    if live.is_none() {
        return Ok(false);
    }
    retry(&format!("deleting {name}"), deadline, || async {
        match api.delete(name, &Default::default()).await {
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            other => other.map(|_| ()),
        }
    })
    .await?;
    Ok(true)
}

/// Waits until the CRD `name` has the condition Established=True.
async fn wait_established(
    api: &Api<DynamicObject>,
    name: &str,
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        let crd = retry(&format!("reading CRD {name}"), deadline, || api.get(name)).await?;
        let established = crd.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        if established {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("CRD {name} is not Established at the deadline");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_ignores_what_only_the_server_adds() {
        let want = json!({"spec": {"a": 1, "list": [{"x": 1}]}, "metadata": {"name": "n"}});
        let live = json!({"spec": {"a": 1, "b": 2, "list": [{"x": 1, "y": 0}]},
            "metadata": {"name": "n", "resourceVersion": "7"}, "status": {}});
        assert!(contains(&live, &want));
        assert!(!contains(
            &json!({"spec": {"a": 2, "list": [{"x": 1}]}, "metadata": {"name": "n"}}),
            &want
        ));
        assert!(!contains(
            &json!({"spec": {"a": 1, "list": []}, "metadata": {"name": "n"}}),
            &want
        ));
        assert!(!contains(&json!({"metadata": {"name": "n"}}), &want));
    }
}
