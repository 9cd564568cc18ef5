//! ReplicaSchedulingPreference against real in-process apiservers: one host, two members.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cellfed_api::kubefed::ReplicaSchedulingPreference;
use common::*;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

/// The RSP `demo/web`: 9 replicas of the FederatedDeployment `web`, rebalanced, over `clusters`.
fn rsp_of_nine(clusters: Value) -> Value {
    json!({
        "apiVersion": "scheduling.kubefed.io/v1alpha1", "kind": "ReplicaSchedulingPreference",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {
            "targetKind": "FederatedDeployment",
            "totalReplicas": 9,
            "rebalance": true,
            "clusters": clusters
        }
    })
}

fn fed_deployment(name: &str) -> Value {
    json!({
        "apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedDeployment",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}
                    }
                }
            },
            "placement": {"clusters": [{"name": "member1"}]},
            "overrides": [{"clusterName": "member1", "clusterOverrides": [
                {"path": "/spec/template/spec/containers/0/image", "value": "nginx:1.27"}
            ]}]
        }
    })
}

async fn member_replicas(m: &Apiserver, name: &str) -> Option<i64> {
    let api: Api<DynamicObject> = Api::namespaced_with(m.client.clone(), "demo", &deployment_ar());
    let d = api.get_opt(name).await.ok().flatten()?;
    d.data["spec"]["replicas"].as_i64()
}

async fn member_image(m: &Apiserver, name: &str) -> Option<String> {
    let api: Api<DynamicObject> = Api::namespaced_with(m.client.clone(), "demo", &deployment_ar());
    let d = api.get_opt(name).await.ok().flatten()?;
    d.data["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .map(str::to_string)
}

/// Both members end with `want` replicas (in member order).
async fn wait_member_replicas(fed: &Federation, want: [i64; 2]) {
    eventually(60, &format!("member replicas {want:?}"), || async {
        let mut got = Vec::new();
        for m in &fed.members {
            got.push(member_replicas(m, "web").await?);
        }
        (got == want).then_some(())
    })
    .await;
}

/// Mirrors KubeFed test/e2e/scheduling.go "ReplicaSchedulingPreferences scheduling for federated
/// deployments should result in replicas spread in proportion of weights when explicit preferences
/// with weights specified" (and the intersection with the resource's placement).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_place_and_override_replicas_and_a_new_weight_replans() {
    let fed = Federation::start(2).await;
    let rsps: Api<ReplicaSchedulingPreference> = Api::namespaced(fed.host.client.clone(), "demo");
    eventually(30, "RSP CRD served", || async {
        rsps.list(&ListParams::default()).await.ok()
    })
    .await;
    let (controller, _metrics) = fed.controller();
    let feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "demo", &federated_deployments());
    create(&feds, fed_deployment("web")).await;
    create(
        &rsps,
        rsp_of_nine(json!({"member1": {"weight": 1}, "member2": {"weight": 2}})),
    )
    .await;

    // the FederatedDeployment is placed on both, 3 and 6 replicas, the user's override kept
    let spec = eventually(60, "placement on both members", || async {
        let o = feds.get("web").await.ok()?;
        let clusters = o.data["spec"]["placement"]["clusters"].clone();
        (clusters == json!([{"name": "member1"}, {"name": "member2"}]))
            .then_some(o.data["spec"].clone())
    })
    .await;
    assert_eq!(
        spec["overrides"],
        json!([
            {"clusterName": "member1", "clusterOverrides": [
                {"path": "/spec/template/spec/containers/0/image", "value": "nginx:1.27"},
                {"path": "/spec/replicas", "value": 3}]},
            {"clusterName": "member2", "clusterOverrides": [{"path": "/spec/replicas", "value": 6}]},
        ])
    );
    wait_member_replicas(&fed, [3, 6]).await;
    assert_eq!(
        member_image(&fed.members[0], "web").await.as_deref(),
        Some("nginx:1.27")
    );
    assert_eq!(
        member_image(&fed.members[1], "web").await.as_deref(),
        Some("nginx:1.25")
    );

    // new weights: the scheduler re-plans, the members follow
    rsps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"clusters": {"member1": {"weight": 2}, "member2": {"weight": 1}}}}),
        ),
    )
    .await
    .unwrap();
    wait_member_replicas(&fed, [6, 3]).await;

    // a member dropped from the preferences loses its placement and replica override
    rsps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"clusters": {"member2": null}}})),
    )
    .await
    .unwrap();
    let spec = eventually(60, "placement on member1 only", || async {
        let o = feds.get("web").await.ok()?;
        let clusters = o.data["spec"]["placement"]["clusters"].clone();
        (clusters == json!([{"name": "member1"}])).then_some(o.data["spec"].clone())
    })
    .await;
    assert_eq!(
        spec["overrides"],
        json!([{"clusterName": "member1", "clusterOverrides": [
            {"path": "/spec/template/spec/containers/0/image", "value": "nginx:1.27"},
            {"path": "/spec/replicas", "value": 9}]}])
    );
    eventually(60, "deployment gone from member2, 9 in member1", || async {
        let gone = member_replicas(&fed.members[1], "web").await.is_none();
        let nine = member_replicas(&fed.members[0], "web").await == Some(9);
        (gone && nine).then_some(())
    })
    .await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_going_not_ready_hands_its_replicas_to_the_others() {
    let mut fed = Federation::start(2).await;
    let rsps: Api<ReplicaSchedulingPreference> = Api::namespaced(fed.host.client.clone(), "demo");
    eventually(30, "RSP CRD served", || async {
        rsps.list(&ListParams::default()).await.ok()
    })
    .await;
    let (controller, _metrics) = fed.controller();
    let feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "demo", &federated_deployments());
    create(&feds, fed_deployment("web")).await;
    create(
        &rsps,
        rsp_of_nine(json!({"*": {"weight": 1}, "member1": {"weight": 2}})),
    )
    .await;
    wait_member_replicas(&fed, [6, 3]).await;

    // member2 stops answering: once it is not ready, member1 gets all nine
    fed.members[1].stop().await;
    eventually(60, "all replicas on member1", || async {
        let o = feds.get("web").await.ok()?;
        let placed = o.data["spec"]["placement"]["clusters"] == json!([{"name": "member1"}]);
        (placed && member_replicas(&fed.members[0], "web").await == Some(9)).then_some(())
    })
    .await;
    controller.stop().await;
}
