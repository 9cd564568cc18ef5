//! kube-rs runtime helpers against the real server: a watcher over a custom resource survives a
//! compaction (in-stream 410 → re-list) and a server restart; the finalizer helper; a coordination
//! Lease acquired and renewed with optimistic concurrency.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use cellfed_apiserver::{AppState, ServeError, Server, ServerConfig};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::WatchStreamExt;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, Event};
use serde_json::json;

/// A client whose every request is bounded: a server that stops answering fails the request
/// instead of hanging the test.
async fn client_from(kubeconfig: &Path) -> kube::Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    cfg.connect_timeout = Some(Duration::from_secs(10));
    cfg.read_timeout = Some(Duration::from_secs(30));
    cfg.write_timeout = Some(Duration::from_secs(30));
    kube::Client::try_from(cfg).unwrap()
}

/// A server on a fixed address over `db`, serving in a task.
struct Serving {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
    state: AppState,
    kubeconfig: PathBuf,
}

impl Serving {
    async fn start(dir: &Path, db: &str, addr: SocketAddr) -> Self {
        let server = common::within(
            30,
            "the server to bind",
            Server::bind(ServerConfig::new(db, addr, dir)),
        )
        .await
        .unwrap();
        let state = server.state().clone();
        let kubeconfig = server.kubeconfig_path().to_path_buf();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async move {
            let _ = rx.await;
        }));
        Self {
            stop,
            task,
            state,
            kubeconfig,
        }
    }

    /// Stops the server and waits until its socket and connections are closed.
    async fn stop(self) {
        let _ = self.stop.send(());
        common::within(30, "the server to stop", self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

/// The test watcher's pacing between retries. kube-runtime's watcher retries at once after an
/// error: while no server listens it loops on refused connections, and once the client's request
/// worker (a task, dropped early while the runtime shuts down) is gone every retry fails without
/// ever yielding, so the watcher's task never returns from its poll and dropping the runtime
/// waits forever for that worker thread.
struct RetryBackoff(Duration);

impl RetryBackoff {
    const FIRST: Duration = Duration::from_millis(20);
    const MAX: Duration = Duration::from_secs(1);
}

impl Iterator for RetryBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.0;
        self.0 = (self.0 * 2).min(Self::MAX);
        Some(delay)
    }
}

impl Backoff for RetryBackoff {
    fn reset(&mut self) {
        self.0 = Self::FIRST;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_survives_compaction_and_restart() {
    let dir = common::TempDir::new("watch-compact");
    let db = format!("sqlite://{}/store.db?mode=rwc", dir.0.display());
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let a = Serving::start(&dir.0, &db, addr).await;
    let client = client_from(&a.kubeconfig).await;
    // a CRD served by A
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget", "listKind": "GadgetList"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(crd).unwrap(),
    )
    .await
    .unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Gadget"),
        "gadgets",
    );
    let gadgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let gadget = |name: &str| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": name}, "spec": {}})).unwrap()
    };
    common::eventually(30, "CR served", || async {
        gadgets.list(&Default::default()).await.ok()
    })
    .await;
    gadgets
        .create(&PostParams::default(), &gadget("a"))
        .await
        .unwrap();

    // the watcher, counting (re-)lists; the server ends each watch before the client's read
    // timeout would
    let seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let inits = Arc::new(AtomicUsize::new(0));
    let watching = {
        let (seen, inits) = (seen.clone(), inits.clone());
        let stream = watcher::watcher(gadgets.clone(), watcher::Config::default().timeout(20))
            .backoff(RetryBackoff(RetryBackoff::FIRST));
        tokio::spawn(async move {
            // a reflector's bookkeeping: a (re-)list replaces the whole set at InitDone
            let mut listing = std::collections::BTreeSet::new();
            let mut stream = std::pin::pin!(stream);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(Event::Init) => {
                        inits.fetch_add(1, Ordering::SeqCst);
                        listing.clear();
                    }
                    Ok(Event::InitApply(o)) => {
                        let _ = listing.insert(o.metadata.name.unwrap_or_default());
                    }
                    Ok(Event::InitDone) => *seen.lock().unwrap() = std::mem::take(&mut listing),
                    Ok(Event::Apply(o)) => drop(
                        seen.lock()
                            .unwrap()
                            .insert(o.metadata.name.unwrap_or_default()),
                    ),
                    Ok(Event::Delete(o)) => drop(
                        seen.lock()
                            .unwrap()
                            .remove(&o.metadata.name.unwrap_or_default()),
                    ),
                    // expected while no server listens; shown if the test fails
                    Err(e) => eprintln!("watcher error, retried after a backoff: {e}"),
                }
            }
        })
    };
    common::eventually(30, "watcher saw a", || async {
        seen.lock().unwrap().contains("a").then_some(())
    })
    .await;

    // A goes away; B (same database, another port) takes writes and compacts past the
    // watcher's last revision
    a.stop().await;
    let dir_b = common::TempDir::new("watch-compact-b");
    let b = Serving::start(
        &dir_b.0,
        &db,
        format!("127.0.0.1:{}", free_port()).parse().unwrap(),
    )
    .await;
    let gadgets_b: Api<DynamicObject> =
        Api::namespaced_with(client_from(&b.kubeconfig).await, "default", &ar);
    common::eventually(30, "B serves the CR", || async {
        gadgets_b.list(&Default::default()).await.ok()
    })
    .await;
    gadgets_b
        .create(&PostParams::default(), &gadget("b"))
        .await
        .unwrap();
    gadgets_b
        .delete("a", &DeleteParams::default())
        .await
        .unwrap();
    let store = &b.state.store;
    let rev = common::within(10, "the current revision", store.current_revision())
        .await
        .unwrap();
    common::within(10, "the compaction", store.compact(rev))
        .await
        .unwrap();
    b.stop().await;

    // A comes back on the same address: the watcher's resume is Expired (410), it re-lists
    let a2 = Serving::start(&dir.0, &db, addr).await;
    common::eventually(60, "watcher re-listed after 410 and restart", || async {
        let s = seen.lock().unwrap().clone();
        (s.contains("b") && !s.contains("a") && inits.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    // the watcher ends before the server it watches
    watching.abort();
    let _ = watching.await;
    a2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizer_helper_adds_runs_cleanup_and_removes() {
    let s = common::start("finalizer").await;
    let client = client_from(&s.kubeconfig).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "f"}})).unwrap(),
    )
    .await
    .unwrap();
    let cleaned = Arc::new(AtomicBool::new(false));
    let run = |obj: Arc<ConfigMap>| {
        let api = api.clone();
        let cleaned = cleaned.clone();
        async move {
            finalizer(&api, "cellfed.io/test", obj, |ev| async move {
                match ev {
                    FinalizerEvent::Apply(_) => Ok::<_, std::convert::Infallible>(
                        kube::runtime::controller::Action::await_change(),
                    ),
                    FinalizerEvent::Cleanup(_) => {
                        cleaned.store(true, Ordering::SeqCst);
                        Ok(kube::runtime::controller::Action::await_change())
                    }
                }
            })
            .await
            .map_err(|e| e.to_string())
        }
    };
    run(Arc::new(api.get("f").await.unwrap())).await.unwrap();
    assert_eq!(
        api.get("f").await.unwrap().metadata.finalizers,
        Some(vec!["cellfed.io/test".to_string()])
    );
    api.delete("f", &DeleteParams::default()).await.unwrap();
    let terminating = api.get("f").await.unwrap();
    assert!(
        terminating.metadata.deletion_timestamp.is_some(),
        "the finalizer holds the deletion"
    );
    run(Arc::new(terminating)).await.unwrap();
    assert!(cleaned.load(Ordering::SeqCst));
    common::eventually(10, "object gone once the finalizer is removed", || async {
        api.get_opt("f").await.unwrap().is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_is_acquired_renewed_and_guarded_by_resource_version() {
    let s = common::start("lease").await;
    let client = client_from(&s.kubeconfig).await;
    let api: Api<Lease> = Api::namespaced(client, "kube-system");
    let now = || k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(jiff::Timestamp::now());
    let mut lease: Lease = serde_json::from_value(json!({"metadata": {"name": "leader"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}})).unwrap();
    lease.spec.as_mut().unwrap().acquire_time = Some(now());
    lease.spec.as_mut().unwrap().renew_time = Some(now());
    let held = api.create(&PostParams::default(), &lease).await.unwrap();
    // renew with the current resourceVersion
    let mut renew = held.clone();
    renew.spec.as_mut().unwrap().renew_time = Some(now());
    let renewed = api
        .replace("leader", &PostParams::default(), &renew)
        .await
        .unwrap();
    assert_ne!(
        renewed.metadata.resource_version,
        held.metadata.resource_version
    );
    // a competitor writing from the stale read loses with 409 Conflict
    let mut steal = held.clone();
    steal.spec.as_mut().unwrap().holder_identity = Some("b".into());
    match api.replace("leader", &PostParams::default(), &steal).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 409),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        api.get("leader")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("a")
    );
}
