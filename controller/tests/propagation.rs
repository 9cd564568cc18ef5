//! The controller against real in-process apiservers: one host, two members.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;

use common::*;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use serde_json::{Value, json};

fn fed_deployment(name: &str, clusters: &[&str]) -> Value {
    let placement: Vec<Value> = clusters.iter().map(|c| json!({"name": c})).collect();
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
            "placement": {"clusters": placement}
        }
    })
}

async fn member_deployment(m: &Apiserver, name: &str) -> Option<DynamicObject> {
    let api: Api<DynamicObject> = Api::namespaced_with(m.client.clone(), "demo", &deployment_ar());
    api.get_opt(name).await.ok().flatten()
}

fn cluster_statuses(fed: &DynamicObject) -> Vec<(String, String)> {
    fed.data["status"]["clusters"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or_default().to_string(),
                        c["status"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Mirrors KubeFed test/e2e/version.go "should load versions from the API on sync" (a restarted
/// controller finds the members in sync and writes nothing; versions live in member annotations)
/// and "should refresh and update after out-of-band update" (drift undone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propagates_reports_deletes_and_restarts_without_writes() {
    let fed = Federation::start(2).await;
    let (controller, metrics) = fed.controller();
    let feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "demo", &federated_deployments());
    create(&feds, fed_deployment("web", &["member1", "member2"])).await;

    // both members get the Deployment, labelled as managed
    for m in &fed.members {
        let d = eventually(60, "deployment in member", || member_deployment(m, "web")).await;
        assert_eq!(
            d.metadata.labels.as_ref().unwrap()["kubefed.io/managed"],
            "true"
        );
        assert_eq!(
            d.data["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.25"
        );
    }
    // status lists both clusters OK, finalizer set
    let obj = eventually(30, "status with both clusters OK", || async {
        let o = feds.get("web").await.ok()?;
        let mut s = cluster_statuses(&o);
        s.sort();
        (s == [
            ("member1".to_string(), "OK".to_string()),
            ("member2".to_string(), "OK".to_string()),
        ])
        .then_some(o)
    })
    .await;
    assert!(
        obj.metadata
            .finalizers
            .as_ref()
            .unwrap()
            .contains(&"kubefed.io/sync-controller".to_string())
    );
    assert_eq!(
        obj.data["status"]["conditions"][0]["type"], "Propagation",
        "{:?}",
        obj.data["status"]
    );
    assert_eq!(obj.data["status"]["conditions"][0]["status"], "True");
    assert_eq!(obj.data["status"]["rollout"]["summary"], "2/2");

    // drift in a member is corrected from its watch event (the resync period is 10 minutes)
    let m1: Api<DynamicObject> =
        Api::namespaced_with(fed.members[0].client.clone(), "demo", &deployment_ar());
    let mut d = m1.get("web").await.unwrap();
    d.data["spec"]["replicas"] = json!(7);
    m1.replace("web", &PostParams::default(), &d).await.unwrap();
    eventually(30, "drift corrected", || async {
        let d = m1.get("web").await.ok()?;
        (d.data["spec"]["replicas"] == json!(1)).then_some(())
    })
    .await;

    // restart: a resource in sync costs zero member writes
    controller.stop().await;
    let before: Vec<u64> = fed
        .members
        .iter()
        .map(|m| m.writes("deployments"))
        .collect();
    // a short resync period: several full reconciles of everything, each costing no write
    let (controller, metrics2) =
        fed.controller_with(|c| c.resync_period = std::time::Duration::from_millis(200));
    eventually(60, "reconciles after restart", || async {
        (metrics2.reconciles.load(Ordering::Relaxed) >= 5).then_some(())
    })
    .await;
    let after: Vec<u64> = fed
        .members
        .iter()
        .map(|m| m.writes("deployments"))
        .collect();
    assert_eq!(before, after, "member writes after a restart in sync");
    assert!(metrics2.member_writes().values().all(|n| *n == 0));
    assert!(metrics.reconciles.load(Ordering::Relaxed) > 0);

    // deletion removes the member objects, then the finalizer
    feds.delete("web", &DeleteParams::default()).await.unwrap();
    for m in &fed.members {
        eventually(60, "deployment removed from member", || async {
            member_deployment(m, "web").await.is_none().then_some(())
        })
        .await;
    }
    eventually(30, "federated resource gone", || async {
        feds.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_member_goes_offline_and_others_converge() {
    let mut fed = Federation::start(2).await;
    let (controller, _metrics) = fed.controller();
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), FED_NS, &kubefed_clusters());
    let condition = |o: &DynamicObject, t: &str| -> Option<Value> {
        o.data["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == t)
            .cloned()
    };
    for name in ["member1", "member2"] {
        eventually(30, "cluster ready", || async {
            let o = clusters.get(name).await.ok()?;
            (condition(&o, "Ready")?["status"] == "True").then_some(())
        })
        .await;
    }

    fed.members[1].stop().await;
    let offline = eventually(60, "member2 offline", || async {
        let o = clusters.get("member2").await.ok()?;
        let ready = condition(&o, "Ready")?;
        (ready["status"] == "False").then_some(o)
    })
    .await;
    let ready = condition(&offline, "Ready").unwrap();
    assert!(ready["reason"].is_string() && ready["message"].is_string());
    let off = condition(&offline, "Offline").expect("Offline condition");
    assert_eq!(off["status"], "True");

    // the other member still converges; the offline one is reported ClusterNotReady
    let feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "demo", &federated_deployments());
    create(&feds, fed_deployment("api", &["member1", "member2"])).await;
    eventually(60, "deployment in member1", || {
        member_deployment(&fed.members[0], "api")
    })
    .await;
    eventually(30, "member2 ClusterNotReady", || async {
        let o = feds.get("api").await.ok()?;
        cluster_statuses(&o)
            .contains(&("member2".to_string(), "ClusterNotReady".to_string()))
            .then_some(())
    })
    .await;
    controller.stop().await;
}
