#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Admission against a real cellfed apiserver in-process: the facts come from watch-fed caches, so
//! a federated write costs no LIST (counted with the apiserver's `apiserver_request_total`), and
//! objects created or relabelled after the webhook started reach its decisions.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use cellfed_api::Cell;
use cellfed_api::kubefed::KubeFedCluster;
use cellfed_apiserver::{AppState, Server, ServerConfig};
use cellfed_webhook::{WebhookState, router};
use http::Request;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tower::ServiceExt;

const FED_NS: &str = "kube-federation-system";
/// Bound of every wait in these tests.
const WAIT: Duration = Duration::from_secs(30);

/// A temp dir removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One in-process apiserver (plain HTTP, anonymous) with the cellfed CRDs; stops when dropped.
struct Host {
    state: AppState,
    client: kube::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: TempDir,
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Host {
    async fn start(tag: &str, with_cell_crd: bool) -> Self {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("cellfed-webhook-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cfg = ServerConfig::new(
            format!("sqlite://{}/store.db", dir.display()),
            "127.0.0.1:0".parse().unwrap(),
            dir.clone(),
        );
        cfg.insecure_http = true;
        cfg.anonymous = true;
        let server = Server::bind(cfg).await.unwrap();
        let url = format!("http://{}", server.local_addr());
        let state = server.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run_until(async move {
            let _ = rx.await;
        }));
        let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in cellfed_api::all_crds().unwrap() {
            if with_cell_crd || crd.metadata.name.as_deref() != Some("cells.cellfed.io") {
                crds.create(&PostParams::default(), &crd).await.unwrap();
            }
        }
        let host = Self {
            state,
            client,
            stop: Some(tx),
            _dir: TempDir(dir),
        };
        host.namespace(FED_NS, None).await;
        let clusters: Api<KubeFedCluster> = Api::namespaced(host.client.clone(), FED_NS);
        eventually("KubeFedClusters served", || async {
            clusters.list(&ListParams::default()).await.is_ok()
        })
        .await;
        if with_cell_crd {
            let cells: Api<Cell> = Api::all(host.client.clone());
            eventually("Cells served", || async {
                cells.list(&ListParams::default()).await.is_ok()
            })
            .await;
        }
        host
    }

    async fn namespace(&self, name: &str, tenant: Option<&str>) {
        let labels = tenant.map_or(json!({}), |t| json!({"cellfed.io/tenant": t}));
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }

    async fn cluster(&self, name: &str, tenant: &str) {
        let c: KubeFedCluster = serde_json::from_value(json!({
            "apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
            "metadata": {"name": name, "namespace": FED_NS, "labels": {"cellfed.io/tenant": tenant}},
            "spec": {"apiEndpoint": "https://127.0.0.1:1", "secretRef": {"name": format!("{name}-secret")}}
        }))
        .unwrap();
        Api::<KubeFedCluster>::namespaced(self.client.clone(), FED_NS)
            .create(&PostParams::default(), &c)
            .await
            .unwrap();
    }

    async fn cell(&self, ns: &str, name: &str, cluster: &str, member_ns: &str) {
        let c: Cell = serde_json::from_value(cell(ns, name, cluster, member_ns)).unwrap();
        Api::<Cell>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &c)
            .await
            .unwrap();
    }

    /// Tenants a and b: namespaces team-a/team-b, clusters a1/b1, cells team-a/rz00a (on a1)
    /// and team-b/rzb (on b1).
    async fn two_tenants(&self) {
        self.namespace("team-a", Some("a")).await;
        self.namespace("team-b", Some("b")).await;
        self.cluster("a1", "a").await;
        self.cluster("b1", "b").await;
        self.cell("team-a", "rz00a", "a1", "a-rz00a").await;
        self.cell("team-b", "rzb", "b1", "b-rzb").await;
    }

    /// Requests so far with `verb` on one of `resources` (all resources when empty).
    fn requests(&self, verb: &str, resources: &[&str]) -> u64 {
        self.state
            .requests
            .render()
            .lines()
            .filter(|l| l.starts_with("apiserver_request_total{"))
            .filter(|l| l.contains(&format!("verb=\"{verb}\"")))
            .filter(|l| {
                resources.is_empty()
                    || resources
                        .iter()
                        .any(|r| l.contains(&format!("resource=\"{r}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Every LIST, plus GETs of the kinds admission reads.
    fn reads(&self) -> (u64, u64) {
        (
            self.requests("LIST", &[]),
            self.requests("GET", &["kubefedclusters", "namespaces", "cells"]),
        )
    }
}

/// Polls `check` until it holds, for at most [`WAIT`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    tokio::time::timeout(WAIT, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

/// A webhook state over `host` whose caches have synced.
async fn synced_state(host: &Host) -> WebhookState {
    let state = WebhookState::new(Some(host.client.clone()), FED_NS);
    tokio::time::timeout(WAIT, state.ready())
        .await
        .expect("admission caches sync");
    assert!(state.synced());
    state
}

fn cell(ns: &str, name: &str, cluster: &str, member_ns: &str) -> Value {
    json!({"apiVersion": "cellfed.io/v1alpha1", "kind": "Cell",
           "metadata": {"name": name, "namespace": ns},
           "spec": {"clusterName": cluster, "memberNamespace": member_ns}})
}

/// A FederatedDeployment in `ns` placed on `cluster` (v1beta1).
fn on_cluster(ns: &str, cluster: &str) -> Value {
    json!({"apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedDeployment",
           "metadata": {"name": "web", "namespace": ns},
           "spec": {"template": {}, "placement": {"clusters": [{"name": cluster}]}}})
}

/// A FederatedDeployment in `ns` placed on cell `topology` (v1beta2).
fn on_cell(ns: &str, topology: &str) -> Value {
    json!({"apiVersion": "types.kubefed.io/v1beta2", "kind": "FederatedDeployment",
           "metadata": {"name": "web", "namespace": ns},
           "spec": {"topologyType": "cell", "template": {},
                    "placement": {"topologies": [{"name": topology}]}}})
}

/// Sends `obj` through `POST /validate` as a CREATE; the AdmissionReview response.
async fn admit(state: &WebhookState, obj: &Value) -> Value {
    let (group, version) = obj["apiVersion"].as_str().unwrap().split_once('/').unwrap();
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-1", "operation": "CREATE",
                    "kind": {"group": group, "version": version, "kind": obj["kind"]},
                    "namespace": obj["metadata"]["namespace"], "object": obj}
    });
    let resp = router(state.clone())
        .oneshot(
            Request::post("/validate")
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&review).unwrap()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let out: Value = serde_json::from_slice(&bytes).unwrap();
    out["response"].clone()
}

/// The refusal code, or None when allowed.
fn refused(resp: &Value) -> Option<u64> {
    (resp["allowed"] != true).then(|| resp["status"]["code"].as_u64().unwrap_or_default())
}

/// One round of decisions that need every kind of fact: own cluster and cell allowed, another
/// tenant's cluster refused, a Cell allowed and one on a taken member namespace refused.
async fn round(state: &WebhookState) {
    assert_eq!(
        refused(&admit(state, &on_cluster("team-a", "a1")).await),
        None
    );
    assert_eq!(
        refused(&admit(state, &on_cell("team-a", "rz00a")).await),
        None
    );
    let r = admit(state, &on_cluster("team-a", "b1")).await;
    assert_eq!(refused(&r), Some(403), "{r}");
    assert_eq!(
        refused(&admit(state, &cell("team-a", "rz01a", "a1", "a-rz01a")).await),
        None
    );
    let r = admit(state, &cell("team-a", "rz01a", "a1", "a-rz00a")).await;
    assert_eq!(refused(&r), Some(422), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federated_write_costs_no_list() {
    let host = Host::start("no-list", true).await;
    host.two_tenants().await;
    let state = synced_state(&host).await;
    let (lists, gets) = host.reads();
    assert!(lists >= 3, "the caches listed once each: {lists}");
    round(&state).await;
    assert_eq!(host.reads(), (lists, gets), "one round read the host");
    for _ in 0..40 {
        round(&state).await;
    }
    assert_eq!(
        host.reads(),
        (lists, gets),
        "200 more decisions read the host: LIST and GET counts must not grow with the writes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_created_or_relabelled_after_start_reach_admission() {
    let host = Host::start("late", true).await;
    host.two_tenants().await;
    let state = synced_state(&host).await;
    // relabel a1 to tenant b: a1 stays known to the cache, so only its watch can tell
    assert_eq!(
        refused(&admit(&state, &on_cluster("team-a", "a1")).await),
        None
    );
    Api::<KubeFedCluster>::namespaced(host.client.clone(), FED_NS)
        .patch(
            "a1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"cellfed.io/tenant": "b"}}})),
        )
        .await
        .unwrap();
    eventually("the relabelled cluster refused to tenant a", || async {
        refused(&admit(&state, &on_cluster("team-a", "a1")).await) == Some(403)
    })
    .await;
    // a new other-tenant cluster, a new own cluster and a cell on it
    host.cluster("b2", "b").await;
    host.cluster("a2", "a").await;
    host.cell("team-a", "rz02a", "a2", "a-rz02a").await;
    // decided from the caches alone once their watches delivered the new objects
    let from_cache = |obj: Value, expected: Option<u64>| {
        let (host, state) = (&host, &state);
        async move {
            let before = host.reads();
            let decision = refused(&admit(state, &obj).await);
            decision == expected && host.reads() == before
        }
    };
    eventually(
        "placement on the new tenant-b cluster refused from the cache",
        || from_cache(on_cluster("team-a", "b2"), Some(403)),
    )
    .await;
    eventually(
        "placement on the new own cluster allowed from the cache",
        || from_cache(on_cluster("team-a", "a2"), None),
    )
    .await;
    eventually("placement on the new cell allowed from the cache", || {
        from_cache(on_cell("team-a", "rz02a"), None)
    })
    .await;
    eventually(
        "a second cell on the new cell's member namespace refused",
        || from_cache(cell("team-a", "rz03a", "a2", "a-rz02a"), Some(422)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_created_a_moment_ago_is_not_refused() {
    let host = Host::start("fresh", true).await;
    host.two_tenants().await;
    let state = synced_state(&host).await;
    // no wait between the writes and the decisions: a watch event still in flight is read by GET
    host.namespace("team-c", Some("c")).await;
    host.cluster("c1", "c").await;
    host.cell("team-c", "rzc", "c1", "c-rzc").await;
    let r = admit(&state, &on_cluster("team-c", "c1")).await;
    assert_eq!(refused(&r), None, "{r}");
    let r = admit(&state, &on_cell("team-c", "rzc")).await;
    assert_eq!(refused(&r), None, "{r}");
    let r = admit(&state, &on_cluster("team-c", "a1")).await;
    assert_eq!(refused(&r), Some(403), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_cell_crd_admission_still_decides() {
    let host = Host::start("no-cells", false).await;
    host.namespace("team-a", Some("a")).await;
    host.namespace("team-b", Some("b")).await;
    host.cluster("a1", "a").await;
    host.cluster("b1", "b").await;
    let state = WebhookState::new(Some(host.client.clone()), FED_NS);
    // the Cell cache never syncs: Cells are listed per decision and read as none
    let r = admit(&state, &on_cluster("team-a", "a1")).await;
    assert_eq!(refused(&r), None, "{r}");
    let r = admit(&state, &on_cluster("team-a", "b1")).await;
    assert_eq!(refused(&r), Some(403), "{r}");
    let r = admit(&state, &on_cell("team-a", "rz00a")).await;
    assert_eq!(refused(&r), Some(422), "{r}");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("create the Cell"),
        "{r}"
    );
    assert!(!state.synced());
}
