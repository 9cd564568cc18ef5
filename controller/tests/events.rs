//! Kubernetes Events on federated resources with KubeFed's reasons and messages, against
//! in-process apiservers: one per actual member write, none while in sync.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

fn fed_deployment(name: &str, clusters: &[&str], replicas: Value) -> Value {
    let placement: Vec<Value> = clusters.iter().map(|c| json!({"name": c})).collect();
    json!({
        "apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedDeployment",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {
            "template": {"spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                             "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
            }},
            "placement": {"clusters": placement}
        }
    })
}

/// (type, reason, message, count) of the events about FederatedDeployment `name`.
async fn events_of(host: &Apiserver, name: &str) -> Vec<(String, String, String, i32)> {
    let api: Api<Event> = Api::namespaced(host.client.clone(), "demo");
    let mut out: Vec<_> = api
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some("FederatedDeployment")
                && e.involved_object.name.as_deref() == Some(name)
        })
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
                e.count.unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

fn has(events: &[(String, String, String, i32)], reason: &str, message: &str) -> bool {
    events
        .iter()
        .any(|(_, r, m, _)| r == reason && m == message)
}

/// KubeFed's dispatcher events (pkg/controller/sync/dispatch): `CreateInCluster`,
/// `UpdateInCluster`, `DeleteInCluster` with `Creating Deployment "demo/web" in cluster
/// "member1"`, and `CreateInClusterFailed` (Warning) when a member refuses; a resource in sync
/// records nothing more, however often it is reconciled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_writes_are_recorded_as_kubefed_events() {
    let fed = Federation::start(2).await;
    let (controller, metrics) =
        fed.controller_with(|c| c.resync_period = Duration::from_millis(200));
    let feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "demo", &federated_deployments());
    create(
        &feds,
        fed_deployment("web", &["member1", "member2"], json!(1)),
    )
    .await;
    let created = eventually(60, "two CreateInCluster events", || async {
        let e = events_of(&fed.host, "web").await;
        (has(
            &e,
            "CreateInCluster",
            r#"Creating Deployment "demo/web" in cluster "member1""#,
        ) && has(
            &e,
            "CreateInCluster",
            r#"Creating Deployment "demo/web" in cluster "member2""#,
        ))
        .then_some(e)
    })
    .await;
    assert!(
        created.iter().all(|(t, _, _, _)| t == "Normal"),
        "{created:?}"
    );
    let ev: Api<Event> = Api::namespaced(fed.host.client.clone(), "demo");
    let one = ev
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|e| e.reason.as_deref() == Some("CreateInCluster"))
        .unwrap();
    assert_eq!(
        one.source.and_then(|s| s.component).as_deref(),
        Some("federateddeployment-controller")
    );
    assert_eq!(
        one.involved_object.api_version.as_deref(),
        Some("types.kubefed.io/v1beta1")
    );

    // in sync: many more reconciles (resync every 200ms) record nothing
    let before = events_of(&fed.host, "web").await;
    let reconciles = metrics.reconciles.load(Ordering::Relaxed);
    eventually(60, "ten more reconciles", || async {
        (metrics.reconciles.load(Ordering::Relaxed) >= reconciles + 10).then_some(())
    })
    .await;
    assert_eq!(
        events_of(&fed.host, "web").await,
        before,
        "no write, no event"
    );

    // a template change updates both members
    feds.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"template": {"spec": {"replicas": 3}}}})),
    )
    .await
    .unwrap();
    eventually(60, "UpdateInCluster events", || async {
        let e = events_of(&fed.host, "web").await;
        (has(
            &e,
            "UpdateInCluster",
            r#"Updating Deployment "demo/web" in cluster "member1""#,
        ) && has(
            &e,
            "UpdateInCluster",
            r#"Updating Deployment "demo/web" in cluster "member2""#,
        ))
        .then_some(())
    })
    .await;

    // leaving member2 deletes there
    feds.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"placement": {"clusters": [{"name": "member1"}]}}})),
    )
    .await
    .unwrap();
    eventually(60, "DeleteInCluster event", || async {
        has(
            &events_of(&fed.host, "web").await,
            "DeleteInCluster",
            r#"Deleting Deployment "demo/web" in cluster "member2""#,
        )
        .then_some(())
    })
    .await;

    // a member refusing the object: a Warning with KubeFed's reason and the member's words
    let mut broken = fed_deployment("broken", &["member1"], json!(1));
    broken["spec"]["template"]["metadata"] = json!({"labels": {"tier": "not a label value!"}});
    create(&feds, broken).await;
    let failed = eventually(60, "CreateInClusterFailed event", || async {
        events_of(&fed.host, "broken")
            .await
            .into_iter()
            .find(|(_, r, _, _)| r == "CreateInClusterFailed")
    })
    .await;
    assert_eq!(failed.0, "Warning");
    assert!(
        failed
            .2
            .starts_with(r#"Failed to create Deployment "demo/broken" in cluster "member1": "#),
        "{failed:?}"
    );
    // retries of the same failure count on the same Event instead of adding new ones
    eventually(60, "the failure counted again", || async {
        let e = events_of(&fed.host, "broken").await;
        let failures: Vec<_> = e
            .iter()
            .filter(|(_, r, _, _)| r == "CreateInClusterFailed")
            .collect();
        (failures.len() == 1 && failures[0].3 >= 2).then_some(())
    })
    .await;
    controller.stop().await;
}
