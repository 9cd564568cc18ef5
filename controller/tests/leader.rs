//! Leader election: of two replicas on one host only the Lease holder reconciles; the other
//! takes over when the holder stops renewing and converges what changed meanwhile.
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

/// Mirrors KubeFed test/e2e/leaderelection.go "Leader Elector should chose secondary instance,
/// primary goes down".
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
    let timings = |c: &mut cellfed_controller::Config, id: &str| {
        c.leader_elect = true;
        c.identity = id.into();
        c.overrides.lease_duration = Some(std::time::Duration::from_secs(3));
        c.overrides.renew_deadline = Some(std::time::Duration::from_secs(2));
        c.overrides.retry_period = Some(std::time::Duration::from_millis(300));
    };
    let (a, metrics_a) = fed.controller_with(|c| timings(c, "replica-a"));
    eventually(30, "replica-a holds the lease", || async {
        (holder(&fed).await? == "replica-a").then_some(())
    })
    .await;
    let (b, metrics_b) = fed.controller_with(|c| timings(c, "replica-b"));
    let member: Api<DynamicObject> =
        Api::namespaced_with(fed.members[0].client.clone(), "demo", &deployment_ar());
    let image = |d: &DynamicObject| {
        d.data["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .map(str::to_string)
    };
    eventually(30, "replica-a propagates", || async {
        member.get_opt("web").await.ok()?.map(|_| ())
    })
    .await;
    // a change while both run: only the holder acts on it
    set_image(&feds, "nginx:2").await;
    eventually(30, "replica-a propagates the change", || async {
        (image(&member.get_opt("web").await.ok()??)? == "nginx:2").then_some(())
    })
    .await;
    assert!(metrics_a.reconciles.load(Ordering::Relaxed) > 0);
    assert_eq!(metrics_b.reconciles.load(Ordering::Relaxed), 0);
    assert_eq!(holder(&fed).await.as_deref(), Some("replica-a"));

    // the holder stops: the standby takes over once the lease expires by its own observation,
    // and converges a change made meanwhile
    a.stop().await;
    set_image(&feds, "nginx:3").await;
    eventually(60, "replica-b takes over and converges", || async {
        let converged = image(&member.get_opt("web").await.ok()??)? == "nginx:3";
        (holder(&fed).await? == "replica-b" && converged).then_some(())
    })
    .await;
    assert!(metrics_b.reconciles.load(Ordering::Relaxed) > 0);
    b.stop().await;
}

async fn set_image(feds: &Api<DynamicObject>, image: &str) {
    let patch = json!({"spec": {"template": {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": image}]}}}}}});
    feds.patch(
        "web",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap();
}
