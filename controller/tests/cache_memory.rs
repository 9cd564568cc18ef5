//! Heap bytes the member cache keeps per member object (issue 14's memory target), counted by
//! dhat's allocator: 1,000 Deployments as a member serves them (the bench's objects: defaults,
//! the controller's annotations, the workload's status) go through a kube-runtime reflector store
//! once as `DynamicObject`s with managed fields dropped (what the cache held before) and once as
//! the cache's [`CachedObject`]s. Prints both figures; `cargo test -p cellfed-controller --test
//! cache_memory -- --nocapture` shows them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cellfed_controller::member_cache::CachedObject;
use kube::ResourceExt as _;
use kube::api::DynamicObject;
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const OBJECTS: usize = 1_000;

/// Deployment `i` as a cellfed member returns it in the propagation bench.
fn member_deployment(i: usize) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "annotations": {
                "cellfed.io/federated-generation": "2",
                "cellfed.io/federated-resource": format!("types.kubefed.io/FederatedDeployment/bench/d{i:05}"),
                "cellfed.io/federated-resource-uid": format!("81d7d7cb-7128-4020-a1c5-{i:012}"),
                "cellfed.io/template-hash": "792d2c047b4aba91",
                "deployment.kubernetes.io/revision": "2"
            },
            "creationTimestamp": "2026-11-30T18:42:52Z",
            "generation": 2,
            "labels": {"kubefed.io/managed": "true"},
            "name": format!("d{i:05}"), "namespace": "bench",
            "resourceVersion": format!("{}", 3000 + i),
            "uid": format!("1b08068b-6ae9-4fe0-8ed8-{i:012}")
        },
        "spec": {
            "progressDeadlineSeconds": 600, "replicas": 1, "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": format!("d{i}")}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                         "type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": {"app": format!("d{i}")}},
                "spec": {
                    "containers": [{"image": "app:2", "imagePullPolicy": "IfNotPresent", "name": "c",
                                    "resources": {}, "terminationMessagePath": "/dev/termination-log",
                                    "terminationMessagePolicy": "File"}],
                    "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                    "schedulerName": "default-scheduler", "securityContext": {},
                    "terminationGracePeriodSeconds": 30
                }
            }
        },
        "status": {
            "availableReplicas": 1,
            "conditions": [
                {"lastTransitionTime": "2026-11-30T18:42:52Z", "lastUpdateTime": "2026-11-30T18:42:52Z",
                 "message": "Deployment has minimum availability.", "reason": "MinimumReplicasAvailable",
                 "status": "True", "type": "Available"},
                {"lastTransitionTime": "2026-11-30T18:42:52Z", "lastUpdateTime": "2026-11-30T18:52:15Z",
                 "message": format!("ReplicaSet \"d{i:05}-6c586478fd\" has successfully progressed."),
                 "reason": "NewReplicaSetAvailable", "status": "True", "type": "Progressing"}
            ],
            "observedGeneration": 2, "readyReplicas": 1, "replicas": 1, "updatedReplicas": 1
        }
    })
}

/// Heap bytes per object that `fill` leaves allocated (its result is kept alive meanwhile;
/// what it parsed on the way is freed).
fn kept_per_object<T>(fill: impl FnOnce() -> T) -> usize {
    let before = dhat::HeapStats::get().curr_bytes;
    let kept = fill();
    let after = dhat::HeapStats::get().curr_bytes;
    drop(kept);
    (after - before) / OBJECTS
}

/// The objects as the watcher parses them, one after the other.
fn objects() -> impl Iterator<Item = DynamicObject> {
    (0..OBJECTS).map(|i| serde_json::from_value(member_deployment(i)).unwrap())
}

#[test]
fn the_member_cache_keeps_a_fraction_of_a_dynamic_object_per_member_object() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let deployments = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"));

    let dynamic = kept_per_object(|| {
        // what the cache held before: the watcher's objects, managed fields cleared
        let mut writer = Writer::<DynamicObject>::new(deployments.clone());
        for mut o in objects() {
            o.managed_fields_mut().clear();
            writer.apply_watcher_event(&Event::Apply(o));
        }
        writer
    });

    let compact_with_status = kept_per_object(|| {
        let mut writer = Writer::<CachedObject>::default();
        for o in objects() {
            writer.apply_watcher_event(&Event::Apply(CachedObject::new(o, true)));
        }
        writer
    });

    let compact = kept_per_object(|| {
        let mut writer = Writer::<CachedObject>::default();
        for o in objects() {
            writer.apply_watcher_event(&Event::Apply(CachedObject::new(o, false)));
        }
        writer
    });

    let text = serde_json::to_string(&member_deployment(0)).unwrap().len();
    println!(
        "bytes kept per member object: DynamicObject {dynamic}; compact text with status \
         {compact_with_status}, without status {compact} (the object as compact JSON: {text})"
    );
    // the compact form costs about its text, a DynamicObject an order of magnitude more
    assert!(
        compact_with_status < text * 2,
        "{compact_with_status} bytes kept for a {text}-byte object"
    );
    assert!(compact < compact_with_status);
    assert!(
        compact_with_status * 4 < dynamic,
        "compact {compact_with_status} vs DynamicObject {dynamic}"
    );
}
