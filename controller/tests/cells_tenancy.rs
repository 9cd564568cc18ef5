//! Cells (derived KubeFedClusters, member namespaces) and tenant isolation against in-process
//! apiservers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;

use common::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
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
    // `kubectl get cells` shows it: the Table's READY column reads the Ready condition's status
    let table = fed
        .host
        .client
        .request::<Value>(
            http::Request::get("/apis/cellfed.io/v1alpha1/namespaces/shop/cells/rz00a")
                .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let ready = columns.iter().position(|c| *c == "READY").unwrap();
    assert_eq!(table["rows"][0]["cells"][ready], "True", "{table}");
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

/// A Cell `ns/name` on `cluster`, with `member_ns` as `spec.memberNamespace` when given.
async fn cell(fed: &Federation, ns: &str, name: &str, cluster: &str, member_ns: Option<&str>) {
    let api: Api<DynamicObject> = Api::namespaced_with(fed.host.client.clone(), ns, &cells());
    let mut spec = json!({"clusterName": cluster});
    if let Some(m) = member_ns {
        spec["memberNamespace"] = json!(m);
    }
    create(
        &api,
        json!({"apiVersion": "cellfed.io/v1alpha1", "kind": "Cell",
               "metadata": {"name": name}, "spec": spec}),
    )
    .await;
}

/// Sets `labels` on the host namespace `name`, creating it when missing.
async fn tenant_namespace(fed: &Federation, name: &str, tenant: &str) {
    let ns: Api<Namespace> = Api::all(fed.host.client.clone());
    let labels = json!({"cellfed.io/tenant": tenant});
    if ns.get_opt(name).await.unwrap().is_some() {
        ns.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": labels}})),
        )
        .await
        .unwrap();
    } else {
        create(&ns, json!({"metadata": {"name": name, "labels": labels}})).await;
    }
}

/// Merges `labels` into KubeFedCluster `name`'s.
async fn label_cluster(fed: &Federation, name: &str, labels: Value) {
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), FED_NS, &kubefed_clusters());
    clusters
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": labels}})),
        )
        .await
        .unwrap();
}

/// The `Ready` condition of Cell `ns/name` once its reason is `reason`.
async fn cell_ready(fed: &Federation, ns: &str, name: &str, reason: &str) -> Value {
    let api: Api<DynamicObject> = Api::namespaced_with(fed.host.client.clone(), ns, &cells());
    eventually(60, &format!("cell {ns}/{name}: {reason}"), || async {
        let c = api.get_opt(name).await.ok()??;
        c.data["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready" && c["reason"] == reason)
            .cloned()
    })
    .await
}

/// `fed`'s status once `cluster` reads `status` there, at the resource's current generation.
async fn cluster_status(
    feds: &Api<DynamicObject>,
    name: &str,
    cluster: &str,
    status: &str,
) -> DynamicObject {
    eventually(60, &format!("{name}: {cluster} {status}"), || async {
        let o = feds.get_opt(name).await.ok()??;
        let current = o.data["status"]["observedGeneration"].as_i64() == o.metadata.generation;
        let found = o.data["status"]["clusters"]
            .as_array()?
            .iter()
            .any(|c| c["name"] == cluster && c["status"] == status);
        (current && found).then_some(o)
    })
    .await
}

/// (resourceVersion, image, owner annotation) of a member Deployment.
fn fingerprint(d: &DynamicObject) -> (Option<String>, Value, Option<String>) {
    (
        d.metadata.resource_version.clone(),
        d.data["spec"]["template"]["spec"]["containers"][0]["image"].clone(),
        d.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("cellfed.io/federated-resource").cloned()),
    )
}

fn with_image(mut obj: Value, image: &str) -> Value {
    obj["spec"]["template"]["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
    obj
}

/// Issue 9, bypass 1: a Cell of tenant acme pointed at namespace `demo` of tenant demo. The
/// controller re-checks what admission should have refused: the Cell reads TenantMismatch,
/// acme's resource is not written there, and deleting it deletes nothing of demo's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cell_aimed_at_another_tenants_namespace_changes_nothing_there() {
    let fed = Federation::start(1).await;
    tenant_namespace(&fed, "demo", "demo").await;
    tenant_namespace(&fed, "acme", "acme").await;
    // demo's own cell on the shared member1 writes demo/web there
    cell(&fed, "demo", "rz", "member1", None).await;
    cell(&fed, "acme", "evil", "member1", Some("demo")).await;
    let (controller, _m) = fed.controller();
    let demo_feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "demo", &federated_deployments());
    create(&demo_feds, fed_deployment("web", "demo", &["rz.demo"])).await;
    let theirs = eventually(60, "demo/web in member1", || {
        deployment(&fed.members[0], "demo", "web")
    })
    .await;
    cluster_status(&demo_feds, "web", "rz.demo", "OK").await;
    let before = fingerprint(&theirs);
    assert_eq!(
        before.2.as_deref(),
        Some("types.kubefed.io/FederatedDeployment/demo/web")
    );

    // acme's cell is refused, and says why without naming demo's tenant
    let why = cell_ready(&fed, "acme", "evil", "TenantMismatch").await;
    assert_eq!(why["status"], "False");
    let message = why["message"].as_str().unwrap();
    assert!(
        message.contains(
            "spec.memberNamespace: namespace \"demo\" is not a namespace of this Cell's tenant"
        ),
        "{message}"
    );
    let acme_feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "acme", &federated_deployments());
    create(
        &acme_feds,
        with_image(fed_deployment("web", "acme", &["evil.acme"]), "evil:1"),
    )
    .await;
    let status = cluster_status(&acme_feds, "web", "evil.acme", "TenantMismatch").await;
    let condition = status.data["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        condition.contains("cluster evil.acme is refused: Cell acme/evil"),
        "{condition}"
    );
    // a change of acme's resource reaches nothing either
    acme_feds
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(with_image(json!({"spec": {"template": {"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}}}), "evil:2")),
        )
        .await
        .unwrap();
    cluster_status(&acme_feds, "web", "evil.acme", "TenantMismatch").await;
    acme_feds
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually(60, "acme/web deleted", || async {
        acme_feds.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    // demo's Deployment: same object, same content; nothing else was written in member1's demo
    let after = deployment(&fed.members[0], "demo", "web").await.unwrap();
    assert_eq!(fingerprint(&after), before, "demo/web changed");
    let list: Api<DynamicObject> =
        Api::namespaced_with(fed.members[0].client.clone(), "demo", &deployment_ar());
    let names: Vec<String> = list
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|d| d.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["web"]);
    // and the derived cluster of the refused cell says so too
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), FED_NS, &kubefed_clusters());
    eventually(60, "evil.acme: Ready False TenantMismatch", || async {
        let c = clusters.get_opt("evil.acme").await.ok()??;
        c.data["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["reason"] == "TenantMismatch")
            .then_some(())
    })
    .await;
    controller.stop().await;
}

/// Issue 9: ownership of member objects. Two resources of one tenant land on the same member
/// object (shop-rz/web on member1 directly, and shop/web through a cell whose member namespace
/// is shop-rz): the second one never overwrites or deletes the first one's object and reads
/// ManagedByAnotherResource there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_object_of_another_resource_is_never_written_or_deleted() {
    let fed = Federation::start(1).await;
    label_cluster(&fed, "member1", json!({"cellfed.io/tenant": "acme"})).await;
    tenant_namespace(&fed, "shop", "acme").await;
    tenant_namespace(&fed, "shop-rz", "acme").await;
    cell(&fed, "shop", "rz", "member1", Some("shop-rz")).await;
    let (controller, _m) = fed.controller();
    let direct: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "shop-rz", &federated_deployments());
    create(&direct, fed_deployment("web", "shop-rz", &["member1"])).await;
    cluster_status(&direct, "web", "member1", "OK").await;
    let first = deployment(&fed.members[0], "shop-rz", "web").await.unwrap();
    let before = fingerprint(&first);
    assert_eq!(
        before.2.as_deref(),
        Some("types.kubefed.io/FederatedDeployment/shop-rz/web")
    );

    cell_ready(&fed, "shop", "rz", "ClusterReady").await;
    let via_cell: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "shop", &federated_deployments());
    create(
        &via_cell,
        with_image(fed_deployment("web", "shop", &["rz.shop"]), "other:1"),
    )
    .await;
    let status = cluster_status(&via_cell, "web", "rz.shop", "ManagedByAnotherResource").await;
    let message = status.data["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("cluster rz.shop: the Deployment shop-rz/web there belongs to another federated resource"),
        "{message}"
    );
    via_cell
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually(60, "shop/web deleted", || async {
        via_cell.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    let after = deployment(&fed.members[0], "shop-rz", "web").await.unwrap();
    assert_eq!(fingerprint(&after), before, "shop-rz/web was changed");
    // its owner still manages it
    direct
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(with_image(json!({"spec": {"template": {"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}}}), "nginx:2")),
        )
        .await
        .unwrap();
    eventually(60, "the owner's change in member1", || async {
        let d = deployment(&fed.members[0], "shop-rz", "web").await?;
        (fingerprint(&d).1 == "nginx:2").then_some(())
    })
    .await;
    controller.stop().await;
}

/// Issue 9, bypass 2: tenancy of a cell's base cluster is re-checked when the base cluster
/// changes. After member2 is relabelled to tenant globex, acme's cell on it reads TenantMismatch
/// and acme's resource is no longer propagated there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabelling_the_base_cluster_stops_propagation_through_the_cell() {
    let fed = Federation::start(2).await;
    tenant_namespace(&fed, "acme", "acme").await;
    cell(&fed, "acme", "rz", "member2", None).await;
    let (controller, _m) = fed.controller();
    let feds: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), "acme", &federated_deployments());
    create(&feds, fed_deployment("web", "acme", &["rz.acme"])).await;
    cluster_status(&feds, "web", "rz.acme", "OK").await;
    let placed = deployment(&fed.members[1], "acme", "web").await.unwrap();

    label_cluster(&fed, "member2", json!({"cellfed.io/tenant": "globex"})).await;
    let why = cell_ready(&fed, "acme", "rz", "TenantMismatch").await;
    let message = why["message"].as_str().unwrap();
    assert!(
        message.contains("spec.clusterName: cluster \"member2\" belongs to another tenant"),
        "{message}"
    );
    assert!(!message.contains("globex"), "{message}");
    cluster_status(&feds, "web", "rz.acme", "TenantMismatch").await;
    let writes = fed.members[1].writes("deployments");
    // a new generation is planned without member2
    feds.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(with_image(json!({"spec": {"template": {"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}}}), "nginx:2")),
    )
    .await
    .unwrap();
    cluster_status(&feds, "web", "rz.acme", "TenantMismatch").await;
    let after = deployment(&fed.members[1], "acme", "web").await.unwrap();
    assert_eq!(
        fingerprint(&after),
        fingerprint(&placed),
        "member2 was written"
    );
    assert_eq!(fed.members[1].writes("deployments"), writes);
    controller.stop().await;
}
