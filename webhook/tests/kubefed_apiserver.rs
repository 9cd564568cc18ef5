#![allow(clippy::unwrap_used, clippy::expect_used)]
//! KubeFed's webhooks behind a real cellfed apiserver (in-process) over HTTPS, registered as
//! `cellfed up` registers them: a KubeFedConfig with only `scope` is stored with KubeFed's
//! defaults, bad writes come back as 422 Invalid naming the field, the scope cannot change.
//! Mirrors KubeFed's e2e "validation" and "defaulting" scenarios (`test/e2e/validation.go`).

use std::path::PathBuf;
use std::time::Duration;

use cellfed_api::kubefed::{FederatedTypeConfig, KubeFedConfig};
use cellfed_apiserver::{Server, ServerConfig};
use cellfed_webhook::{Webhook, WebhookConfig, WebhookState};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

const FED_NS: &str = "kube-federation-system";

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn hook(base: &str, ca: &Value, resource: &str, path: &str) -> Value {
    json!({"name": format!("{resource}.core.kubefed.io"), "admissionReviewVersions": ["v1"],
           "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 10,
           "clientConfig": {"url": format!("{base}{path}"), "caBundle": ca},
           "rules": [{"apiGroups": ["core.kubefed.io"], "apiVersions": ["v1beta1"],
                      "resources": [resource], "operations": ["CREATE", "UPDATE"]}]})
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubefed_types_are_defaulted_and_validated_by_a_real_apiserver() {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("cellfed-kfvalid-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _dir = TempDir(dir.clone());
    let mut cfg = ServerConfig::new(
        format!("sqlite://{}/store.db", dir.display()),
        "127.0.0.1:0".parse().unwrap(),
        dir.join("apiserver"),
    );
    cfg.insecure_http = true;
    cfg.anonymous = true;
    let server = Server::bind(cfg).await.unwrap();
    let url = format!("http://{}", server.local_addr());
    let (stop_api, stopped_api) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_until(async move {
        let _ = stopped_api.await;
    }));
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in cellfed_api::all_crds().unwrap() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": FED_NS}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let configs: Api<KubeFedConfig> = Api::namespaced(client.clone(), FED_NS);
    eventually("KubeFedConfigs served", || async {
        configs.list(&ListParams::default()).await.ok()
    })
    .await;

    // the webhook over HTTPS with its generated CA, registered for KubeFed's types
    let webhook = Webhook::bind(WebhookConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        cert_dir: dir.join("webhook"),
        hosts: Vec::new(),
        client_ca_file: None,
        state: WebhookState::new(None, FED_NS),
    })
    .await
    .unwrap();
    let base = format!("https://127.0.0.1:{}", webhook.local_addr().unwrap().port());
    let ca =
        serde_json::to_value(k8s_openapi::ByteString(webhook.ca_pem.clone().into_bytes())).unwrap();
    let (stop_hook, stopped_hook) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(webhook.run_until(async move {
        let _ = stopped_hook.await;
    }));
    let config = |kind: &str, hooks: Vec<Value>| -> DynamicObject {
        serde_json::from_value(
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": {"name": "cellfed-webhook"}, "webhooks": hooks}),
        )
        .unwrap()
    };
    let admission = |kind: &str, plural: &str| {
        Api::<DynamicObject>::all_with(
            client.clone(),
            &ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind),
                plural,
            ),
        )
    };
    admission(
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
    )
    .create(
        &PostParams::default(),
        &config(
            "ValidatingWebhookConfiguration",
            vec![
                hook(
                    &base,
                    &ca,
                    "federatedtypeconfigs",
                    "/validate-federatedtypeconfigs",
                ),
                hook(&base, &ca, "kubefedclusters", "/validate-kubefedcluster"),
                hook(&base, &ca, "kubefedconfigs", "/validate-kubefedconfig"),
            ],
        ),
    )
    .await
    .unwrap();
    admission(
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
    )
    .create(
        &PostParams::default(),
        &config(
            "MutatingWebhookConfiguration",
            vec![hook(&base, &ca, "kubefedconfigs", "/default-kubefedconfig")],
        ),
    )
    .await
    .unwrap();

    // KubeFed's minimal config comes back with KubeFed's defaults (once the configurations are
    // in the apiserver's admission cache, a config with a zero duration is refused)
    let zero: KubeFedConfig = serde_json::from_value(json!({
        "apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedConfig",
        "metadata": {"name": "probe", "namespace": FED_NS},
        "spec": {"scope": "Cluster", "clusterHealthCheck": {"period": "0s"}}}))
    .unwrap();
    let refused = eventually("the webhooks in force", || async {
        match configs.create(&PostParams::default(), &zero).await {
            Err(kube::Error::Api(s)) => Some(*s),
            _ => None,
        }
    })
    .await;
    assert_eq!(
        (refused.code, refused.reason.as_str()),
        (422, "Invalid"),
        "{refused:?}"
    );
    assert!(
        refused.message.contains(
            "KubeFedConfig.core.kubefed.io \"probe\" is invalid: spec.clusterHealthCheck.period: Invalid value: \"0s\": should be greater than 0"
        ),
        "{}",
        refused.message
    );
    // the webhook's causes reach the client too, each with its field path
    let causes = &refused.details.as_ref().expect("details").causes;
    assert_eq!(
        causes[0].field, "spec.clusterHealthCheck.period",
        "{causes:?}"
    );
    let minimal: KubeFedConfig = serde_json::from_value(json!({
        "apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedConfig",
        "metadata": {"name": "kubefed", "namespace": FED_NS}, "spec": {"scope": "Cluster"}}))
    .unwrap();
    let stored = configs
        .create(&PostParams::default(), &minimal)
        .await
        .unwrap();
    let spec = serde_json::to_value(&stored.spec).unwrap();
    assert_eq!(
        spec["controllerDuration"],
        json!({"availableDelay": "20s", "unavailableDelay": "60s"})
    );
    assert_eq!(
        spec["leaderElect"],
        json!({"leaseDuration": "15s", "renewDeadline": "10s", "retryPeriod": "5s", "resourceLock": "configmaps"})
    );
    assert_eq!(
        spec["clusterHealthCheck"],
        json!({"period": "10s", "failureThreshold": 3, "successThreshold": 1, "timeout": "3s"})
    );
    assert_eq!(
        spec["syncController"],
        json!({"maxConcurrentReconciles": 1, "adoptResources": "Enabled"})
    );
    assert_eq!(
        spec["statusController"],
        json!({"maxConcurrentReconciles": 1})
    );
    assert_eq!(spec["featureGates"].as_array().unwrap().len(), 4);

    // scope is immutable
    let e = api_error(
        configs
            .patch(
                "kubefed",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"scope": "Namespaced"}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message
            .contains("spec.scope: Invalid value: \"Namespaced\": field is immutable"),
        "{}",
        e.message
    );

    // a FederatedTypeConfig named after something else
    let ftcs: Api<FederatedTypeConfig> = Api::namespaced(client.clone(), FED_NS);
    let mut ftc = FederatedTypeConfig::for_target(
        &cellfed_api::kubefed::TargetType::new(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            cellfed_api::kubefed::Scope::Namespaced,
        ),
        FED_NS,
    );
    ftc.metadata.name = Some("deployments".into());
    let e = api_error(ftcs.create(&PostParams::default(), &ftc).await.unwrap_err());
    assert_eq!(e.code, 422);
    assert!(
        e.message
            .contains("metadata.name: Invalid value: \"deployments\""),
        "{}",
        e.message
    );
    ftc.metadata.name = Some("deployments.apps".into());
    ftcs.create(&PostParams::default(), &ftc).await.unwrap();

    // a KubeFedCluster whose caBundle is not PEM
    let clusters = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        FED_NS,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("core.kubefed.io", "v1beta1", "KubeFedCluster"),
            "kubefedclusters",
        ),
    );
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
        "metadata": {"name": "member1"},
        "spec": {"apiEndpoint": "10.0.0.1:6443", "secretRef": {"name": "member1-secret"},
                 "caBundle": serde_json::to_value(k8s_openapi::ByteString(b"not a certificate".to_vec())).unwrap()}}))
    .unwrap();
    let e = api_error(
        clusters
            .create(&PostParams::default(), &bad)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(e.message.contains("spec.caBundle"), "{}", e.message);

    let _ = stop_hook.send(());
    let _ = stop_api.send(());
}
