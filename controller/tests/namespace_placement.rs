//! KubeFed's namespace placement and late-joining clusters against in-process apiservers: a
//! FederatedNamespace (KubeFed's template-less sample) limits where the resources of its
//! namespace go, and a placement may name a cluster that joins later.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cellfed_api::kubefed::{FederatedTypeConfig, Scope, TargetType};
use common::*;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn namespaces() -> TargetType {
    TargetType::new("", "v1", "Namespace", "namespaces", Scope::Cluster)
}

fn fed_deployment(name: &str, clusters: &[&str]) -> Value {
    let placement: Vec<Value> = clusters.iter().map(|c| json!({"name": c})).collect();
    json!({
        "apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedDeployment",
        "metadata": {"name": name, "namespace": "demo"},
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

async fn member_deployment(m: &Apiserver, name: &str) -> Option<DynamicObject> {
    let api: Api<DynamicObject> = Api::namespaced_with(m.client.clone(), "demo", &deployment_ar());
    api.get_opt(name).await.ok().flatten()
}

fn status_of(o: &DynamicObject, cluster: &str) -> Option<String> {
    o.data["status"]["clusters"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == cluster)
        .and_then(|c| c["status"].as_str().map(str::to_string))
}

/// Mirrors KubeFed test/e2e/placement.go "Placement should be computed from namespace and resource
/// placement for a namespaced control plane"
/// (with a FederatedNamespace placed on one cluster instead of none) and sample1's
/// federatednamespace.yaml (no template).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federated_namespace_limits_where_its_resources_go() {
    let fed = Federation::start(2).await;
    let ftcs: Api<FederatedTypeConfig> = Api::namespaced(fed.host.client.clone(), FED_NS);
    ftcs.create(
        &PostParams::default(),
        &FederatedTypeConfig::for_target(&namespaces(), FED_NS),
    )
    .await
    .unwrap();
    let (controller, _metrics) = fed.controller();
    let feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "demo", &federated_deployments());
    create(&feds, fed_deployment("web", &["member1", "member2"])).await;
    for m in &fed.members {
        eventually(60, "deployment in both members", || {
            member_deployment(m, "web")
        })
        .await;
    }
    // the namespace made for the objects is labelled as managed, so a FederatedNamespace can
    // take it over without AlreadyExists
    let member_ns: Api<k8s_openapi::api::core::v1::Namespace> =
        Api::all(fed.members[0].client.clone());
    let ns = member_ns.get("demo").await.unwrap();
    assert_eq!(ns.metadata.labels.unwrap()["kubefed.io/managed"], "true");

    // KubeFed's example/sample1/federatednamespace.yaml, on member1 only
    let fed_namespaces: Api<DynamicObject> = Api::namespaced_with(
        fed.host.client.clone(),
        "demo",
        &namespaces().federated().api_resource(),
    );
    let sample: Value = serde_yaml::from_str(
        "apiVersion: types.kubefed.io/v1beta1\nkind: FederatedNamespace\nmetadata:\n  name: demo\n  namespace: demo\nspec:\n  placement:\n    clusters:\n    - name: member1\n",
    )
    .unwrap();
    create(&fed_namespaces, sample).await;
    eventually(60, "deployment gone from member2", || async {
        member_deployment(&fed.members[1], "web")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    let o = eventually(30, "member2 NamespaceNotFederated", || async {
        let o = feds.get("web").await.ok()?;
        (status_of(&o, "member2")? == "NamespaceNotFederated").then_some(o)
    })
    .await;
    assert_eq!(status_of(&o, "member1").as_deref(), Some("OK"));
    assert_eq!(o.data["status"]["rollout"]["summary"], "1/1");
    assert!(member_deployment(&fed.members[0], "web").await.is_some());
    // the FederatedNamespace itself propagates without a template, and took member1's
    // namespace over (no AlreadyExists)
    let fns = eventually(30, "FederatedNamespace OK on member1", || async {
        let o = fed_namespaces.get("demo").await.ok()?;
        (status_of(&o, "member1")? == "OK").then_some(o)
    })
    .await;
    assert_eq!(
        fns.data["status"]["conditions"][0]["status"], "True",
        "{}",
        fns.data["status"]
    );

    // widening the namespace's placement brings the resource back: a FederatedNamespace change
    // reconciles the resources of its namespace
    fed_namespaces
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"placement": {"clusters": [{"name": "member1"}, {"name": "member2"}]}}})),
        )
        .await
        .unwrap();
    eventually(90, "deployment back in member2", || {
        member_deployment(&fed.members[1], "web")
    })
    .await;
    eventually(30, "member2 OK again", || async {
        let o = feds.get("web").await.ok()?;
        (status_of(&o, "member2")? == "OK").then_some(())
    })
    .await;
    controller.stop().await;
}

/// A placement naming a cluster that has not joined is reported `ClusterNotFound` and
/// propagated as soon as the cluster joins (GitOps manifests written for every cluster).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_named_before_it_joins_gets_the_resource_when_it_joins() {
    let mut fed = Federation::start(1).await;
    let (controller, _metrics) = fed.controller();
    let feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "demo", &federated_deployments());
    create(&feds, fed_deployment("web", &["member1", "member2"])).await;
    let o = eventually(60, "member2 ClusterNotFound", || async {
        let o = feds.get("web").await.ok()?;
        (status_of(&o, "member2")? == "ClusterNotFound").then_some(o)
    })
    .await;
    assert_eq!(status_of(&o, "member1").as_deref(), Some("OK"));
    assert_eq!(
        o.data["status"]["conditions"][0]["status"], "True",
        "a cluster not joined yet is no propagation failure: {}",
        o.data["status"]
    );
    let m2 = Apiserver::start("member2").await;
    fed.join("member2", &m2.url, json!({})).await;
    fed.members.push(m2);
    eventually(60, "deployment in member2 once joined", || {
        member_deployment(&fed.members[1], "web")
    })
    .await;
    eventually(30, "member2 OK", || async {
        let o = feds.get("web").await.ok()?;
        (status_of(&o, "member2")? == "OK").then_some(())
    })
    .await;
    controller.stop().await;
}
