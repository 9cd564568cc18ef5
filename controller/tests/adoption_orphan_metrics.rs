//! FTC status, adoption per KubeFedConfig, orphaning and `/metrics` against in-process apiservers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cellfed_api::kubefed::{FederatedTypeConfig, KubeFedConfig, ResourceAdoption};
use common::*;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use serde_json::{Value, json};

fn fed_deployment(name: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedDeployment",
        "metadata": {"name": name, "namespace": "demo", "annotations": annotations},
        "spec": {
            "template": {"spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                             "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
            }},
            "placement": {"clusters": [{"name": "member1"}]}
        }
    })
}

fn status_of(o: &DynamicObject, cluster: &str) -> Option<String> {
    o.data["status"]["clusters"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == cluster)
        .and_then(|c| c["status"].as_str().map(str::to_string))
}

/// Mirrors KubeFed test/e2e/version.go "should refresh and update after out-of-band creation",
/// with cellfed's default `adoptResources: Disabled` first (`AlreadyExists`) and adoption once
/// the KubeFedConfig enables it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftc_status_adoption_orphan_and_metrics() {
    let fed = Federation::start(1).await;
    let member: Api<DynamicObject> =
        Api::namespaced_with(fed.members[0].client.clone(), "demo", &deployment_ar());
    // an unmanaged Deployment already in the member
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(fed.members[0].client.clone());
    create(&ns, json!({"metadata": {"name": "demo"}})).await;
    create(
        &member,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "legacy"},
               "spec": {"selector": {"matchLabels": {"app": "legacy"}},
                        "template": {"metadata": {"labels": {"app": "legacy"}},
                                     "spec": {"containers": [{"name": "c", "image": "old:1"}]}}}}),
    )
    .await;

    let metrics_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (controller, _m) = fed.controller_with(|c| c.metrics_addr = Some(metrics_addr));

    // the FTC says its propagation controller runs
    let ftcs: Api<FederatedTypeConfig> = Api::namespaced(fed.host.client.clone(), FED_NS);
    eventually(30, "FTC status Running", || async {
        let f = ftcs.get("deployments.apps").await.ok()?;
        let s = serde_json::to_value(f.status?).ok()?;
        (s["propagationController"] == "Running").then_some(())
    })
    .await;

    // cellfed's default: no adoption; status AlreadyExists, member untouched
    let feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "demo", &federated_deployments());
    create(&feds, fed_deployment("legacy", json!({}))).await;
    eventually(30, "AlreadyExists", || async {
        let o = feds.get("legacy").await.ok()?;
        (status_of(&o, "member1")? == "AlreadyExists").then_some(())
    })
    .await;
    let d = member.get("legacy").await.unwrap();
    assert_eq!(
        d.data["spec"]["template"]["spec"]["containers"][0]["image"],
        "old:1"
    );
    assert_eq!(
        fed.members[0].writes("deployments"),
        1,
        "only our own create"
    );

    // opting in through the KubeFedConfig adopts it
    let mut config = KubeFedConfig::cellfed_default();
    config.metadata.namespace = Some(FED_NS.into());
    if let Some(s) = config.spec.sync_controller.as_mut() {
        s.adopt_resources = Some(ResourceAdoption::Enabled);
    }
    Api::<KubeFedConfig>::namespaced(fed.host.client.clone(), FED_NS)
        .create(&PostParams::default(), &config)
        .await
        .unwrap();
    eventually(30, "adopted", || async {
        let d = member.get("legacy").await.ok()?;
        let managed = d.metadata.labels.as_ref()?.get("kubefed.io/managed")? == "true";
        let image = d.data["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2";
        (managed && image).then_some(())
    })
    .await;

    // orphan: deleting the federated resource keeps the member object
    create(
        &feds,
        fed_deployment("kept", json!({"kubefed.io/orphan": "true"})),
    )
    .await;
    eventually(30, "kept propagated", || async {
        member.get_opt("kept").await.ok()?
    })
    .await;
    feds.delete("kept", &DeleteParams::default()).await.unwrap();
    eventually(30, "federated resource gone", || async {
        feds.get_opt("kept").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(member.get_opt("kept").await.unwrap().is_some());

    // /metrics in Prometheus text format
    let text = eventually(30, "metrics served", || async {
        let mut s = tokio::net::TcpStream::connect(metrics_addr).await.ok()?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        out.contains("cellfed_member_writes_total").then_some(out)
    })
    .await;
    for name in [
        "cellfed_reconciles_total",
        "cellfed_reconcile_errors_total",
        "cellfed_status_writes_total",
        "cellfed_member_writes_total{cluster=\"member1\"}",
        "cellfed_propagation_duration_seconds_bucket",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    controller.stop().await;
}
