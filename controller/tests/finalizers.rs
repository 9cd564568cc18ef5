//! The sync finalizer is added and removed with a resourceVersion precondition: finalizers other
//! clients write at the same time are never lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::json;

const SYNC: &str = "kubefed.io/sync-controller";

fn fed_deployment(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedDeployment",
        "metadata": {"name": name, "namespace": "demo", "finalizers": ["example.com/seed"]},
        "spec": {
            "template": {"spec": {"selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                             "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}},
            "placement": {"clusters": [{"name": "member1"}]}
        }
    })
}

fn finalizers(o: &DynamicObject) -> Vec<String> {
    o.metadata.finalizers.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_written_by_others_at_the_same_time_survive() {
    let fed = Federation::start(1).await;
    let feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "demo", &federated_deployments());
    let names: Vec<String> = (0..20).map(|i| format!("app-{i}")).collect();
    for n in &names {
        create(&feds, fed_deployment(n)).await;
    }
    let (controller, _metrics) = fed.controller();
    // another client appends its finalizer while the controller adds its own
    for n in &names {
        let add =
            json!([{"op": "add", "path": "/metadata/finalizers/-", "value": "example.com/other"}]);
        feds.patch(
            n,
            &PatchParams::default(),
            &Patch::Json::<()>(serde_json::from_value(add).unwrap()),
        )
        .await
        .unwrap();
    }
    for n in &names {
        let o = eventually(60, "the sync finalizer", || async {
            let o = feds.get(n).await.ok()?;
            finalizers(&o).iter().any(|f| f == SYNC).then_some(o)
        })
        .await;
        let f = finalizers(&o);
        for want in ["example.com/seed", "example.com/other", SYNC] {
            assert!(f.iter().any(|x| x == want), "{n}: {want} lost from {f:?}");
        }
    }
    // deletion: the controller removes only its own finalizer
    let member: Api<DynamicObject> =
        Api::namespaced_with(fed.members[0].client.clone(), "demo", &deployment_ar());
    eventually(60, "app-0 in member1", || async {
        member.get_opt("app-0").await.ok()?
    })
    .await;
    feds.delete("app-0", &DeleteParams::default())
        .await
        .unwrap();
    let o = eventually(60, "sync finalizer released", || async {
        let o = feds.get("app-0").await.ok()?;
        (!finalizers(&o).iter().any(|f| f == SYNC)).then_some(o)
    })
    .await;
    assert_eq!(finalizers(&o), ["example.com/seed", "example.com/other"]);
    assert!(member.get_opt("app-0").await.unwrap().is_none());
    controller.stop().await;
}
