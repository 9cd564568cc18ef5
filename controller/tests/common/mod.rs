//! In-process federation for controller tests: one host and N member `cellfed_apiserver`s on
//! loopback (plain HTTP, anonymous), CRDs from `cellfed_api::all_crds()`, KubeFedClusters and
//! Secrets pointing at the members, an FTC for deployments.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cellfed_api::kubefed::{FederatedTypeConfig, Scope, TargetType};
use cellfed_apiserver::{AppState, Server, ServerConfig};
use cellfed_controller::{Config, Metrics, Overrides};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::ApiResource;
use serde_json::{Value, json};

/// The federation system namespace used by the tests.
pub const FED_NS: &str = "kube-federation-system";

/// A unique temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "cellfed-controller-{tag}-{}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One in-process apiserver; stops when dropped or [`Apiserver::stop`]ped.
pub struct Apiserver {
    pub dir: TempDir,
    pub url: String,
    pub state: AppState,
    pub client: kube::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Apiserver {
    pub async fn start(tag: &str) -> Self {
        let dir = TempDir::new(tag);
        let mut cfg = ServerConfig::new(
            format!("sqlite://{}/store.db", dir.0.display()),
            "127.0.0.1:0".parse().unwrap(),
            dir.0.clone(),
        );
        cfg.insecure_http = true;
        cfg.anonymous = true;
        cfg.gc_interval = Duration::from_millis(100);
        let server = Server::bind(cfg).await.unwrap();
        let url = format!("http://{}", server.local_addr());
        let state = server.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let _ = server
                .run_until(async move {
                    let _ = rx.await;
                })
                .await;
        });
        let config = kube::Config::new(url.parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        Self {
            dir,
            url,
            state,
            client,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops serving (the port closes; clients get connection errors).
    pub async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }

    /// Count of write requests (create, update, patch, delete) on `resource` so far.
    pub fn writes(&self, resource: &str) -> u64 {
        self.state
            .requests
            .render()
            .lines()
            .filter(|l| l.starts_with("apiserver_request_total{"))
            .filter(|l| l.contains(&format!("resource=\"{resource}\"")))
            .filter(|l| {
                ["CREATE", "UPDATE", "PATCH", "DELETE"]
                    .iter()
                    .any(|v| l.contains(&format!("verb=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for Apiserver {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Host + members, federation objects created.
pub struct Federation {
    pub host: Apiserver,
    pub members: Vec<Apiserver>,
}

/// The deployments target type.
pub fn deployments() -> TargetType {
    TargetType::new("apps", "v1", "Deployment", "deployments", Scope::Namespaced)
}

pub fn federated_deployments() -> ApiResource {
    deployments().federated().api_resource()
}

pub fn deployment_ar() -> ApiResource {
    deployments().api_resource()
}

pub async fn create<K>(api: &Api<K>, obj: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(obj).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
}

impl Federation {
    /// A host with CRDs, the fed namespace, `members` member servers joined as member1..N,
    /// and an FTC for deployments.
    pub async fn start(members: usize) -> Self {
        let host = Apiserver::start("host").await;
        let crds: Api<CustomResourceDefinition> = Api::all(host.client.clone());
        for crd in cellfed_api::all_crds().unwrap() {
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
        let ns: Api<Namespace> = Api::all(host.client.clone());
        create(&ns, json!({"metadata": {"name": FED_NS}})).await;
        create(&ns, json!({"metadata": {"name": "demo"}})).await;
        // CRDs are served once established
        let ftcs: Api<FederatedTypeConfig> = Api::namespaced(host.client.clone(), FED_NS);
        eventually(30, "FTC CRD served", || async {
            ftcs.list(&ListParams::default()).await.ok()
        })
        .await;
        let feds: Api<DynamicObject> =
            Api::namespaced_with(host.client.clone(), "demo", &federated_deployments());
        eventually(30, "federated CRD served", || async {
            feds.list(&ListParams::default()).await.ok()
        })
        .await;
        ftcs.create(
            &PostParams::default(),
            &FederatedTypeConfig::for_target(&deployments(), FED_NS),
        )
        .await
        .unwrap();
        let mut fed = Self {
            host,
            members: Vec::new(),
        };
        for i in 1..=members {
            let m = Apiserver::start(&format!("member{i}")).await;
            fed.join(&format!("member{i}"), &m.url, json!({})).await;
            fed.members.push(m);
        }
        fed
    }

    /// Secret + KubeFedCluster `name` pointing at `url`.
    pub async fn join(&self, name: &str, url: &str, labels: Value) {
        let secrets: Api<Secret> = Api::namespaced(self.host.client.clone(), FED_NS);
        create(
            &secrets,
            json!({"metadata": {"name": format!("{name}-secret")},
                   "stringData": {"token": "anonymous-is-fine"}}),
        )
        .await;
        let clusters: Api<DynamicObject> =
            Api::namespaced_with(self.host.client.clone(), FED_NS, &kubefed_clusters());
        create(
            &clusters,
            json!({"apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
                   "metadata": {"name": name, "labels": labels},
                   "spec": {"apiEndpoint": url, "secretRef": {"name": format!("{name}-secret")}}}),
        )
        .await;
    }

    /// A controller with test timings over the host, on its own thread and runtime (the
    /// controller future is driven like `cellfed up` drives it); stops when dropped.
    pub fn controller(&self) -> (Controller, Arc<Metrics>) {
        self.controller_with(|_| {})
    }

    /// [`Federation::controller`] with `tweak` applied to the test config.
    pub fn controller_with(&self, tweak: impl FnOnce(&mut Config)) -> (Controller, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let mut config = Config {
            fed_namespace: FED_NS.into(),
            overrides: Overrides {
                workers: Some(4),
                health_period: Some(Duration::from_millis(200)),
                failure_threshold: Some(1),
                success_threshold: Some(1),
                health_timeout: Some(Duration::from_secs(1)),
                available_delay: Some(Duration::ZERO),
                unavailable_delay: Some(Duration::ZERO),
                ..Overrides::default()
            },
            ..Config::default()
        };
        tweak(&mut config);
        let url = self.host.url.clone();
        let m = metrics.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let client =
                    kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
                tokio::select! {
                    _ = cellfed_controller::run_with_metrics(client, config, m) => {}
                    _ = rx => {}
                }
            });
        });
        (
            Controller {
                stop: Some(tx),
                thread: Some(thread),
            },
            metrics,
        )
    }
}

/// A running controller; [`Controller::stop`] or drop ends it.
pub struct Controller {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Controller {
    /// Stops the controller and waits for its thread.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub fn kubefed_clusters() -> ApiResource {
    ApiResource {
        group: "core.kubefed.io".into(),
        version: "v1beta1".into(),
        api_version: "core.kubefed.io/v1beta1".into(),
        kind: "KubeFedCluster".into(),
        plural: "kubefedclusters".into(),
    }
}

/// Polls `f` until it returns Some, or panics after `secs` saying what it waited for. Each attempt
/// runs under the time that is left, so an attempt that never returns (a request without a
/// timeout, a lock) fails the test at the deadline instead of hanging it.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, f()).await {
            Ok(Some(v)) => return v,
            Ok(None) => {}
            Err(_) => panic!(
                "timed out after {secs}s waiting for {what} (the last attempt did not return)"
            ),
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
