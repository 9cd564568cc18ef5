//! Deleting and un-placing as KubeFed does, against in-process apiservers: orphaning leaves
//! member objects without the managed label, leaving a cluster's placement deletes even with the
//! orphan annotation, and `kubefed.io/deleteoption` reaches the member deletes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

fn fed_deployment(name: &str, clusters: &[&str], annotations: Value) -> Value {
    let placement: Vec<Value> = clusters.iter().map(|c| json!({"name": c})).collect();
    json!({
        "apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedDeployment",
        "metadata": {"name": name, "namespace": "demo", "annotations": annotations},
        "spec": {
            "template": {"spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                             "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
            }},
            "placement": {"clusters": placement}
        }
    })
}

fn member_deployments(m: &Apiserver) -> Api<DynamicObject> {
    Api::namespaced_with(m.client.clone(), "demo", &deployment_ar())
}

/// Deletes `name`, again after a 409: cellfed's apiserver answers a DELETE that races with
/// another write (the controller's status) with a conflict where kube-apiserver retries.
async fn delete(feds: &Api<DynamicObject>, name: &str) {
    eventually(30, "delete accepted", || async {
        match feds.delete(name, &DeleteParams::default()).await {
            Ok(_) => Some(()),
            Err(kube::Error::Api(e)) if e.code == 409 => None,
            Err(e) => panic!("deleting {name}: {e}"),
        }
    })
    .await;
}

fn managed(o: &DynamicObject) -> bool {
    o.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("kubefed.io/managed"))
        .is_some_and(|v| v == "true")
}

/// Mirrors KubeFed test/e2e/crud.go "Federated <type> should be created, read, updated and deleted
/// successfully" (its `CheckDelete` with orphanDependents and `CheckPlacementChange`):
/// a resource carrying `kubefed.io/orphan: "true"` still leaves a cluster dropped from its
/// placement, and once deleted leaves its member objects in place without the managed label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaning_unlabels_and_placement_changes_still_delete() {
    let fed = Federation::start(2).await;
    let (controller, _metrics) = fed.controller();
    let feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "demo", &federated_deployments());
    create(
        &feds,
        fed_deployment(
            "kept",
            &["member1", "member2"],
            json!({"kubefed.io/orphan": "true"}),
        ),
    )
    .await;
    for m in &fed.members {
        eventually(60, "propagated", || async {
            member_deployments(m).get_opt("kept").await.ok()?
        })
        .await;
    }
    // dropping member2 from the placement deletes there, orphan annotation or not
    feds.patch(
        "kept",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"placement": {"clusters": [{"name": "member1"}]}}})),
    )
    .await
    .unwrap();
    eventually(60, "deleted from member2", || async {
        member_deployments(&fed.members[1])
            .get_opt("kept")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    // deleting the orphaning resource keeps member1's object, unlabelled
    delete(&feds, "kept").await;
    eventually(60, "federated resource gone", || async {
        feds.get_opt("kept").await.ok()?.is_none().then_some(())
    })
    .await;
    let left = member_deployments(&fed.members[0])
        .get("kept")
        .await
        .expect("the orphaned object stays in member1");
    assert!(
        !managed(&left),
        "the orphaned object must lose kubefed.io/managed: {:?}",
        left.metadata.labels
    );
    controller.stop().await;
}

/// Mirrors KubeFed test/e2e/deleteoptions.go "Deployment should be created and deleted
/// successfully, but ReplicaSet that created by Deployment won't be deleted": with
/// `kubefed.io/deleteoption: {"propagationPolicy":"Orphan"}` the member Deployment is deleted but
/// its dependent stays (KubeFed checks the ReplicaSet; here a ConfigMap owned by the Deployment),
/// while a plain deletion takes the dependent with it (background propagation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_options_reach_the_member_delete() {
    let fed = Federation::start(1).await;
    let (controller, _metrics) = fed.controller();
    let feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "demo", &federated_deployments());
    let member = member_deployments(&fed.members[0]);
    let config_maps: Api<ConfigMap> = Api::namespaced(fed.members[0].client.clone(), "demo");
    for (name, annotations) in [
        (
            "orphaning",
            json!({"kubefed.io/deleteoption": "{\"propagationPolicy\":\"Orphan\"}"}),
        ),
        ("cascading", json!({})),
    ] {
        create(&feds, fed_deployment(name, &["member1"], annotations)).await;
        let d = eventually(60, "propagated", || async {
            member.get_opt(name).await.ok()?
        })
        .await;
        let dependent = format!("{name}-dependent");
        create(
            &config_maps,
            json!({"metadata": {"name": dependent, "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                "uid": d.metadata.uid.clone().unwrap()}]}}),
        )
        .await;
    }
    for name in ["orphaning", "cascading"] {
        delete(&feds, name).await;
    }
    for name in ["orphaning", "cascading"] {
        eventually(60, "member deployment deleted", || async {
            member.get_opt(name).await.ok()?.is_none().then_some(())
        })
        .await;
        eventually(30, "federated resource gone", || async {
            feds.get_opt(name).await.ok()?.is_none().then_some(())
        })
        .await;
    }
    eventually(60, "the background deletion took its dependent", || async {
        config_maps
            .get_opt("cascading-dependent")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let kept = config_maps
        .get("orphaning-dependent")
        .await
        .expect("propagationPolicy Orphan keeps the dependent");
    assert!(
        kept.metadata
            .owner_references
            .unwrap_or_default()
            .is_empty(),
        "an orphaned dependent loses its owner reference"
    );

    // a malformed annotation holds the deletion and says why in the condition
    create(
        &feds,
        fed_deployment(
            "bad",
            &["member1"],
            json!({"kubefed.io/deleteoption": "{\"propagationPolicy\":\"Sometimes\"}"}),
        ),
    )
    .await;
    eventually(60, "propagated", || async {
        member.get_opt("bad").await.ok()?
    })
    .await;
    delete(&feds, "bad").await;
    let o = eventually(30, "DeleteOptionsInvalid", || async {
        let o = feds.get("bad").await.ok()?;
        (o.data["status"]["conditions"][0]["reason"] == "DeleteOptionsInvalid").then_some(o)
    })
    .await;
    assert!(
        o.data["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("kubefed.io/deleteoption"),
        "{}",
        o.data["status"]
    );
    assert!(member.get_opt("bad").await.unwrap().is_some());
    // fixing the annotation lets the deletion finish
    feds.patch(
        "bad",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"kubefed.io/deleteoption": "{}"}}})),
    )
    .await
    .unwrap();
    eventually(60, "deleted once fixed", || async {
        feds.get_opt("bad").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(member.get_opt("bad").await.unwrap().is_none());
    controller.stop().await;
}
