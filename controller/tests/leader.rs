//! Leader election: of two replicas on one host only the Lease holder reconciles; the other
//! takes over when the holder stops renewing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;

use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DynamicObject};
use serde_json::json;

async fn holder(fed: &Federation) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(fed.host.client.clone(), FED_NS);
    leases
        .get_opt("cellfed-controller")
        .await
        .ok()??
        .spec?
        .holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_reconciles_and_a_standby_takes_over() {
    let fed = Federation::start(1).await;
    let feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "demo", &federated_deployments());
    create(
        &feds,
        json!({"apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedDeployment",
               "metadata": {"name": "web", "namespace": "demo"},
               "spec": {"template": {"spec": {"selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}},
                        "placement": {"clusters": [{"name": "member1"}]}}}),
    )
    .await;
    let (a, metrics_a) = fed.controller_with(|c| {
        c.leader_elect = true;
        c.identity = "replica-a".into();
    });
    eventually(30, "replica-a holds the lease", || async {
        (holder(&fed).await? == "replica-a").then_some(())
    })
    .await;
    let (b, metrics_b) = fed.controller_with(|c| {
        c.leader_elect = true;
        c.identity = "replica-b".into();
    });
    let seen = metrics_a.reconciles.load(Ordering::Relaxed);
    eventually(30, "replica-a keeps reconciling", || async {
        (metrics_a.reconciles.load(Ordering::Relaxed) >= seen + 5).then_some(())
    })
    .await;
    assert_eq!(metrics_b.reconciles.load(Ordering::Relaxed), 0);
    assert_eq!(holder(&fed).await.as_deref(), Some("replica-a"));

    // the holder stops renewing: the standby takes over once the lease expires (15s)
    a.stop().await;
    eventually(60, "replica-b takes over and reconciles", || async {
        (holder(&fed).await? == "replica-b" && metrics_b.reconciles.load(Ordering::Relaxed) > 0)
            .then_some(())
    })
    .await;
    b.stop().await;
}
