//! Cells (derived KubeFedClusters, member namespaces) and tenant isolation against in-process
//! apiservers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;

use common::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject};
use kube::core::ApiResource;
use serde_json::{Value, json};

fn cells() -> ApiResource {
    ApiResource {
        group: "cellfed.io".into(),
        version: "v1alpha1".into(),
        api_version: "cellfed.io/v1alpha1".into(),
        kind: "Cell".into(),
        plural: "cells".into(),
    }
}

fn fed_deployment(name: &str, namespace: &str, clusters: &[&str]) -> Value {
    let placement: Vec<Value> = clusters.iter().map(|c| json!({"name": c})).collect();
    json!({
        "apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedDeployment",
        "metadata": {"name": name, "namespace": namespace},
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

async fn deployment(m: &Apiserver, ns: &str, name: &str) -> Option<DynamicObject> {
    let api: Api<DynamicObject> = Api::namespaced_with(m.client.clone(), ns, &deployment_ar());
    api.get_opt(name).await.ok().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cells_get_derived_clusters_and_member_namespaces() {
    let fed = Federation::start(1).await;
    let ns: Api<Namespace> = Api::all(fed.host.client.clone());
    create(
        &ns,
        json!({"metadata": {"name": "shop", "labels": {"cellfed.io/tenant": "acme", "cellfed.io/workspace": "web"}}}),
    )
    .await;
    let cell_api: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "shop", &cells());
    for (cell, member_ns) in [("rz00a", "shop-rz00a"), ("rz01a", "shop-rz01a")] {
        create(
            &cell_api,
            json!({"apiVersion": "cellfed.io/v1alpha1", "kind": "Cell",
                   "metadata": {"name": cell},
                   "spec": {"clusterName": "member1", "memberNamespace": member_ns}}),
        )
        .await;
    }
    let (controller, _m) = fed.controller();
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), FED_NS, &kubefed_clusters());
    let derived = eventually(30, "derived cluster ready", || async {
        let o = clusters.get_opt("rz00a.shop").await.ok()??;
        let ready = o.data["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        ready.then_some(o)
    })
    .await;
    let labels = derived.metadata.labels.clone().unwrap();
    assert_eq!(labels["cellfed.io/cell"], "rz00a");
    assert_eq!(labels["cellfed.io/tenant"], "acme");
    assert_eq!(labels["cellfed.io/workspace"], "web");
    assert_eq!(
        derived.metadata.annotations.as_ref().unwrap()["cellfed.io/member-namespace"],
        "shop-rz00a"
    );
    assert_eq!(derived.data["spec"]["apiEndpoint"], fed.members[0].url);

    // the Cell's status names its derived cluster and says it is ready
    let cell = eventually(30, "cell Ready", || async {
        let c = cell_api.get("rz00a").await.ok()?;
        let ready = c.data["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        ready.then_some(c)
    })
    .await;
    assert_eq!(cell.data["status"]["derivedClusterName"], "rz00a.shop");
    assert_eq!(
        cell.data["status"]["conditions"][0]["reason"],
        "ClusterReady"
    );
    let settled = cell.metadata.resource_version.clone();
    // a Cell on a cluster that has not joined says so
    create(
        &cell_api,
        json!({"apiVersion": "cellfed.io/v1alpha1", "kind": "Cell",
               "metadata": {"name": "rz09a"},
               "spec": {"clusterName": "member9", "memberNamespace": "shop-rz09a"}}),
    )
    .await;
    let waiting = eventually(30, "cell not ready: ClusterNotFound", || async {
        let c = cell_api.get("rz09a").await.ok()?;
        (c.data["status"]["conditions"][0]["reason"] == "ClusterNotFound").then_some(c)
    })
    .await;
    assert_eq!(waiting.data["status"]["conditions"][0]["status"], "False");
    assert!(
        waiting.data["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("member9")
    );
    // the passes that wrote rz09a's status left the settled rz00a alone (written on change only)
    assert_eq!(
        cell_api
            .get("rz00a")
            .await
            .unwrap()
            .metadata
            .resource_version,
        settled,
        "a Cell whose status holds is not written again"
    );
    cell_api
        .delete("rz09a", &DeleteParams::default())
        .await
        .unwrap();

    // a resource placed on both cells lands in each cell's member namespace of member1
    let feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "shop", &federated_deployments());
    create(
        &feds,
        fed_deployment("cart", "shop", &["rz00a.shop", "rz01a.shop"]),
    )
    .await;
    for member_ns in ["shop-rz00a", "shop-rz01a"] {
        eventually(60, "deployment in the cell's member namespace", || {
            deployment(&fed.members[0], member_ns, "cart")
        })
        .await;
    }
    assert!(deployment(&fed.members[0], "shop", "cart").await.is_none());

    // the derived cluster goes with its Cell
    cell_api
        .delete("rz01a", &DeleteParams::default())
        .await
        .unwrap();
    eventually(30, "derived cluster removed", || async {
        clusters
            .get_opt("rz01a.shop")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_cluster_is_never_read_or_written() {
    let fed = Federation::start(0).await;
    let a = Apiserver::start("tenant-a").await;
    let b = Apiserver::start("tenant-b").await;
    fed.join("cluster-a", &a.url, json!({"cellfed.io/tenant": "a"}))
        .await;
    fed.join("cluster-b", &b.url, json!({"cellfed.io/tenant": "b"}))
        .await;
    let ns: Api<Namespace> = Api::all(fed.host.client.clone());
    create(
        &ns,
        json!({"metadata": {"name": "team-a", "labels": {"cellfed.io/tenant": "a"}}}),
    )
    .await;
    let (controller, metrics) = fed.controller();
    let feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "team-a", &federated_deployments());
    // placed on both, as if admission had let it through: only tenant a's cluster is used
    create(
        &feds,
        fed_deployment("app", "team-a", &["cluster-a", "cluster-b"]),
    )
    .await;
    eventually(60, "deployment in tenant a's cluster", || {
        deployment(&a, "team-a", "app")
    })
    .await;
    eventually(
        60,
        "status: tenant a's cluster OK, tenant b's refused",
        || async {
            let o = feds.get("app").await.ok()?;
            let clusters = o.data["status"]["clusters"].as_array()?.clone();
            (clusters.len() == 2
                && clusters[0]["name"] == "cluster-a"
                && clusters[0]["status"] == "OK"
                && clusters[1]["name"] == "cluster-b"
                && clusters[1]["status"] == "TenantMismatch")
                .then_some(())
        },
    )
    .await;
    assert!(metrics.reconciles.load(Ordering::Relaxed) > 0);
    feds.delete("app", &DeleteParams::default()).await.unwrap();
    eventually(60, "deleted from tenant a's cluster", || async {
        deployment(&a, "team-a", "app")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    eventually(30, "federated resource gone", || async {
        feds.get_opt("app").await.ok()?.is_none().then_some(())
    })
    .await;
    let touched: u64 = b
        .state
        .requests
        .render()
        .lines()
        .filter(|l| l.contains("resource=\"deployments\"") || l.contains("resource=\"namespaces\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(
        touched, 0,
        "tenant b's cluster was read or written for tenant a"
    );
    controller.stop().await;
}
