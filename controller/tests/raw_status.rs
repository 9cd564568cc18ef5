//! KubeFed's `RawResourceStatusCollection`: the member object's status is copied into the
//! federated resource's `status.clusters[].remoteStatus` only when the gate is on AND the FTC has
//! `statusCollection: Enabled`; the FTC's `status.statusController` says whether it is.
//! Mirrors KubeFed's e2e "raw resource status collection" scenario.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cellfed_api::kubefed::{FederatedTypeConfig, KubeFedConfig};
use common::*;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn fed_deployment() -> Value {
    json!({
        "apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedDeployment",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {
            "template": {"spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}},
            "placement": {"clusters": [{"name": "member1"}]}
        }
    })
}

/// Sets `RawResourceStatusCollection` in the KubeFedConfig the controller reads.
async fn set_gate(configs: &Api<KubeFedConfig>, enabled: bool) {
    let configuration = if enabled { "Enabled" } else { "Disabled" };
    let mut config = configs.get("kubefed").await.unwrap();
    for g in &mut config.spec.feature_gates {
        if g.name == "RawResourceStatusCollection" {
            g.configuration = serde_json::from_value(json!(configuration)).unwrap();
        }
    }
    configs
        .replace("kubefed", &PostParams::default(), &config)
        .await
        .unwrap();
}

/// Waits until the deployments FTC says `statusController: want` for its current generation.
async fn status_controller(ftcs: &Api<FederatedTypeConfig>, want: &str) {
    eventually(30, &format!("FTC statusController {want}"), || async {
        let ftc = ftcs.get("deployments.apps").await.ok()?;
        let s = serde_json::to_value(ftc.status.as_ref()?).ok()?;
        (s["statusController"] == want
            && s["observedGeneration"] == json!(ftc.metadata.generation?))
        .then_some(())
    })
    .await;
}

async fn remote_status(feds: &Api<DynamicObject>) -> Option<Value> {
    let o = feds.get("web").await.ok()?;
    let c = o.data["status"]["clusters"].as_array()?.first()?.clone();
    (c["name"] == "member1").then(|| c["remoteStatus"].clone())
}

/// Mirrors KubeFed test/e2e/crud.go "Federated <type> should be created, read its remote status and
/// deleted successfully" (`RawResourceStatusCollection` on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_status_appears_only_with_the_gate_and_status_collection() {
    let fed = Federation::start(1).await;
    let configs: Api<KubeFedConfig> = Api::namespaced(fed.host.client.clone(), FED_NS);
    // KubeFed's defaults: the gate is off
    configs
        .create(&PostParams::default(), &KubeFedConfig::cellfed_default())
        .await
        .unwrap();
    let ftcs: Api<FederatedTypeConfig> = Api::namespaced(fed.host.client.clone(), FED_NS);
    ftcs.patch(
        "deployments.apps",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"statusCollection": "Enabled"}})),
    )
    .await
    .unwrap();
    let (_controller, _metrics) = fed.controller();
    let feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "demo", &federated_deployments());
    create(&feds, fed_deployment()).await;

    // the member's own controllers would report this; the test writes it
    let member: Api<DynamicObject> =
        Api::namespaced_with(fed.members[0].client.clone(), "demo", &deployment_ar());
    eventually(60, "deployment in member1", || async {
        member.get_opt("web").await.ok().flatten()
    })
    .await;
    member
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 2, "readyReplicas": 2}})),
        )
        .await
        .unwrap();

    // statusCollection Enabled, gate off: no remoteStatus, statusController NotRunning
    status_controller(&ftcs, "NotRunning").await;
    eventually(30, "member1 in sync", || async {
        let o = feds.get("web").await.ok()?;
        (o.data["status"]["clusters"][0]["name"] == "member1").then_some(())
    })
    .await;
    assert_eq!(remote_status(&feds).await, Some(Value::Null), "gate off");

    // gate on: the member's status appears, statusController Running
    set_gate(&configs, true).await;
    status_controller(&ftcs, "Running").await;
    let remote = eventually(30, "remoteStatus with the gate on", || async {
        remote_status(&feds).await.filter(|r| !r.is_null())
    })
    .await;
    assert_eq!(remote["readyReplicas"], 2);

    // gate off again: it goes away
    set_gate(&configs, false).await;
    status_controller(&ftcs, "NotRunning").await;
    eventually(30, "remoteStatus gone with the gate off", || async {
        remote_status(&feds).await.filter(Value::is_null)
    })
    .await;

    // gate on but statusCollection Disabled: none either
    set_gate(&configs, true).await;
    ftcs.patch(
        "deployments.apps",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"statusCollection": "Disabled"}})),
    )
    .await
    .unwrap();
    status_controller(&ftcs, "NotRunning").await;
    // the FTC change restarts the type controller, which reconciles everything
    eventually(30, "no remoteStatus without statusCollection", || async {
        let o = feds.get("web").await.ok()?;
        let c = &o.data["status"]["clusters"][0];
        (c["name"] == "member1" && c["remoteStatus"].is_null()).then_some(())
    })
    .await;
}
