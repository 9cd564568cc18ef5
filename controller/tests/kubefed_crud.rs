//! KubeFed's e2e crud and version-tracking scenarios for every default federated type (namespaced
//! ones, the cluster-scoped ClusterRole and ClusterRoleBinding, and Namespace) against in-process
//! apiservers: one host, two members, one FederatedTypeConfig per default type.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cellfed_api::federated_crd;
use cellfed_api::kubefed::{FederatedTypeConfig, Scope, TargetType};
use cellfed_api::targets::default_targets;
use common::*;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// Name of the test object of `target` (a Namespace is named after itself).
fn name_of(target: &TargetType) -> String {
    if target.kind == "Namespace" {
        "crud-ns".into()
    } else {
        format!("crud-{}", target.kind.to_lowercase())
    }
}

/// Namespace of the federated object (`None`: cluster-scoped).
fn fed_namespace(target: &TargetType) -> Option<String> {
    match (target.kind.as_str(), target.is_namespaced()) {
        ("Namespace", _) => Some("crud-ns".into()),
        (_, true) => Some("demo".into()),
        (_, false) => None,
    }
}

/// A valid template body of `kind` (without metadata).
fn template_body(kind: &str) -> Value {
    let pod = json!({"metadata": {"labels": {"app": "crud"}},
                     "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}});
    let workload = json!({"selector": {"matchLabels": {"app": "crud"}}, "template": pod});
    match kind {
        "Deployment" | "DaemonSet" => json!({"spec": workload}),
        "StatefulSet" => {
            let mut spec = workload;
            spec["serviceName"] = json!("crud");
            json!({"spec": spec})
        }
        "Job" => {
            let mut pod = pod;
            pod["spec"]["restartPolicy"] = json!("Never");
            json!({"spec": {"template": pod}})
        }
        "Service" => json!({"spec": {"ports": [{"port": 80}]}}),
        "ConfigMap" => json!({"data": {"key": "value"}}),
        "Secret" => json!({"data": {"key": "dmFsdWU="}}),
        "Ingress" => {
            json!({"spec": {"defaultBackend": {"service": {"name": "crud", "port": {"number": 80}}}}})
        }
        "ClusterRole" => {
            json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
        }
        "ClusterRoleBinding" => json!({
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "crud-clusterrole"},
            "subjects": [{"kind": "ServiceAccount", "name": "crud", "namespace": "demo"}]
        }),
        "Widget" | "ClusterWidget" => json!({"spec": {"size": 1}}),
        _ => json!({}),
    }
}

fn federated_object(target: &TargetType, version: &str, clusters: &[&str]) -> Value {
    let fed = target.federated();
    let mut template = template_body(&target.kind);
    template["metadata"] = json!({"labels": {"crud": version}});
    let mut metadata = json!({"name": name_of(target)});
    if let Some(ns) = fed_namespace(target) {
        metadata["namespace"] = json!(ns);
    }
    let placement: Vec<Value> = clusters.iter().map(|c| json!({"name": c})).collect();
    json!({
        "apiVersion": fed.api_version(), "kind": fed.kind, "metadata": metadata,
        "spec": {"template": template, "placement": {"clusters": placement}}
    })
}

fn federated_api(fed: &Federation, target: &TargetType) -> Api<DynamicObject> {
    let ar = target.federated().api_resource();
    match fed_namespace(target) {
        Some(ns) => Api::namespaced_with(fed.host.client.clone(), &ns, &ar),
        None => Api::all_with(fed.host.client.clone(), &ar),
    }
}

fn member_api(m: &Apiserver, target: &TargetType) -> Api<DynamicObject> {
    let ar = target.api_resource();
    if target.is_namespaced() {
        Api::namespaced_with(m.client.clone(), "demo", &ar)
    } else {
        Api::all_with(m.client.clone(), &ar)
    }
}

/// The `crud` label of `target`'s object in `m`; None when it does not exist.
async fn member_version(m: &Apiserver, target: &TargetType) -> Option<String> {
    let o = member_api(m, target)
        .get_opt(&name_of(target))
        .await
        .ok()
        .flatten()?;
    let labels = o.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("kubefed.io/managed").map(String::as_str),
        Some("true"),
        "{} in a member without the managed label",
        target.kind
    );
    Some(labels.get("crud").cloned().unwrap_or_default())
}

/// Waits until every type's object reads `want` (a version, None: absent) in each member.
async fn wait_all(fed: &Federation, targets: &[TargetType], want: [Option<&str>; 2], what: &str) {
    for target in targets {
        for (m, want) in fed.members.iter().zip(want) {
            let what = format!("{what}: {} in {}", target.kind, m.url);
            eventually(60, &what, || async {
                let got = member_version(m, target).await;
                (got.as_deref() == want).then_some(())
            })
            .await;
        }
    }
}

/// Mirrors KubeFed test/e2e/crud.go "Federated <type> should be created, read, updated and
/// deleted successfully" (its `CheckLifecycle`: create, update, placement change, delete) for
/// every default type, and test/e2e/version.go "should recreate after out-of-band deletion"
/// (plus "should refresh and update after out-of-band update").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_default_type_is_created_updated_replaced_and_deleted() {
    let fed = Federation::start(2).await;
    let targets = default_targets();
    assert_eq!(targets.len(), 12);
    let ftcs: Api<FederatedTypeConfig> = Api::namespaced(fed.host.client.clone(), FED_NS);
    for target in targets.iter().filter(|t| t.kind != "Deployment") {
        ftcs.create(
            &PostParams::default(),
            &FederatedTypeConfig::for_target(target, FED_NS),
        )
        .await
        .unwrap();
    }
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(fed.host.client.clone());
    create(&ns, json!({"metadata": {"name": "crud-ns"}})).await;
    lifecycle(&fed, &targets).await;
}

/// KubeFed's `CheckLifecycle` for `targets` (their FederatedTypeConfigs exist): create, update,
/// out-of-band delete and change, placement change, delete.
async fn lifecycle(fed: &Federation, targets: &[TargetType]) {
    for target in targets {
        let api = federated_api(fed, target);
        eventually(30, &format!("{} served", target.kind), || async {
            api.list(&Default::default()).await.ok()
        })
        .await;
    }
    let (controller, _metrics) = fed.controller();

    // create: every member gets every type, managed
    for target in targets {
        create(
            &federated_api(fed, target),
            federated_object(target, "v1", &["member1", "member2"]),
        )
        .await;
    }
    wait_all(fed, targets, [Some("v1"), Some("v1")], "created").await;

    // update the template: every member follows
    for target in targets {
        let patch = json!({"spec": {"template": {"metadata": {"labels": {"crud": "v2"}}}}});
        federated_api(fed, target)
            .patch(
                &name_of(target),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap();
    }
    wait_all(fed, targets, [Some("v2"), Some("v2")], "updated").await;

    // out of band: deleted in member1, changed in member2; both are put back
    for target in targets {
        member_api(&fed.members[0], target)
            .delete(&name_of(target), &DeleteParams::default())
            .await
            .unwrap();
        let patch = json!({"metadata": {"labels": {"crud": "changed"}}});
        member_api(&fed.members[1], target)
            .patch(
                &name_of(target),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap();
    }
    wait_all(
        fed,
        targets,
        [Some("v2"), Some("v2")],
        "recreated and reverted",
    )
    .await;

    // placement change: member2 leaves, its copy is deleted
    for target in targets {
        let patch = json!({"spec": {"placement": {"clusters": [{"name": "member1"}]}}});
        federated_api(fed, target)
            .patch(
                &name_of(target),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap();
    }
    wait_all(fed, targets, [Some("v2"), None], "placement member1 only").await;

    // delete: the member copies go, then the federated object
    for target in targets {
        federated_api(fed, target)
            .delete(&name_of(target), &DeleteParams::default())
            .await
            .unwrap();
    }
    wait_all(fed, targets, [None, None], "deleted").await;
    for target in targets {
        let api = federated_api(fed, target);
        eventually(30, &format!("federated {} gone", target.kind), || async {
            api.get_opt(&name_of(target))
                .await
                .ok()?
                .is_none()
                .then_some(())
        })
        .await;
    }
    controller.stop().await;
}

/// A CRD `<plural>.example.com` of `kind` with any content.
fn widget_crd(kind: &str, plural: &str, scope: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.example.com")},
        "spec": {
            "group": "example.com", "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    })
}

/// Mirrors KubeFed test/e2e/crd.go "Federated CRD resources with namespaced=true|false should be
/// created, read, updated and deleted successfully": a namespaced and a cluster-scoped custom
/// type, their CRDs in the host and the members, federated CRDs and FederatedTypeConfigs as
/// `kubectl cellfed enable` writes them, then the same lifecycle as the default types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_custom_resources_namespaced_and_cluster_scoped() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let fed = Federation::start(2).await;
    let targets = [
        TargetType::new("example.com", "v1", "Widget", "widgets", Scope::Namespaced),
        TargetType::new(
            "example.com",
            "v1",
            "ClusterWidget",
            "clusterwidgets",
            Scope::Cluster,
        ),
    ];
    for client in std::iter::once(&fed.host)
        .chain(&fed.members)
        .map(|a| a.client.clone())
    {
        let crds: Api<CustomResourceDefinition> = Api::all(client);
        create(&crds, widget_crd("Widget", "widgets", "Namespaced")).await;
        create(
            &crds,
            widget_crd("ClusterWidget", "clusterwidgets", "Cluster"),
        )
        .await;
    }
    let crds: Api<CustomResourceDefinition> = Api::all(fed.host.client.clone());
    let ftcs: Api<FederatedTypeConfig> = Api::namespaced(fed.host.client.clone(), FED_NS);
    for target in &targets {
        crds.create(&PostParams::default(), &federated_crd(target).unwrap())
            .await
            .unwrap();
        ftcs.create(
            &PostParams::default(),
            &FederatedTypeConfig::for_target(target, FED_NS),
        )
        .await
        .unwrap();
    }
    for m in &fed.members {
        for target in &targets {
            let api = member_api(m, target);
            eventually(
                30,
                &format!("{} served in a member", target.kind),
                || async { api.list(&Default::default()).await.ok() },
            )
            .await;
        }
    }
    lifecycle(&fed, &targets).await;
}

/// `status.clusters[].name` of a federated object and whether it has a Propagation condition.
fn reconciled_clusters(o: &DynamicObject) -> Option<Vec<(String, String)>> {
    let status = &o.data["status"];
    let propagation = status["conditions"]
        .as_array()?
        .iter()
        .any(|c| c["type"] == "Propagation");
    propagation.then(|| {
        status["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or_default().to_string(),
                    c["status"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    })
}

/// Mirrors KubeFed test/e2e/crud.go "Federated <type> should not be deleted if unlabeled": a
/// member object the federation did not create survives a federated resource of its name whose
/// placement excludes its cluster, includes it (cellfed's default `adoptResources: Disabled`:
/// `AlreadyExists`, untouched), excludes it again, and is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlabelled_member_object_is_never_deleted() {
    let fed = Federation::start(1).await;
    let deployments = default_targets().remove(0);
    assert_eq!(deployments.kind, "Deployment");
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(fed.members[0].client.clone());
    create(&ns, json!({"metadata": {"name": "demo"}})).await;
    let member = member_api(&fed.members[0], &deployments);
    let mut unlabelled = template_body("Deployment");
    unlabelled["metadata"] = json!({"name": "crud-deployment"});
    unlabelled["apiVersion"] = json!("apps/v1");
    unlabelled["kind"] = json!("Deployment");
    create(&member, unlabelled).await;
    let (controller, _metrics) = fed.controller();
    let feds = federated_api(&fed, &deployments);
    let feds_ref = &feds;
    let placed = |clusters: Value| async move {
        let patch = json!({"spec": {"placement": {"clusters": clusters}}});
        feds_ref
            .patch(
                "crud-deployment",
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap();
    };
    let still_there = || async {
        let o = member.get("crud-deployment").await.unwrap();
        let labels = o.metadata.labels.unwrap_or_default();
        assert!(!labels.contains_key("kubefed.io/managed"), "{labels:?}");
        assert!(!labels.contains_key("crud"), "adopted: {labels:?}");
    };

    create(&feds, federated_object(&deployments, "v1", &[])).await;
    eventually(30, "reconciled with no cluster", || async {
        let o = feds.get("crud-deployment").await.ok()?;
        reconciled_clusters(&o)?.is_empty().then_some(())
    })
    .await;
    still_there().await;

    placed(json!([{"name": "member1"}])).await;
    eventually(30, "AlreadyExists in member1", || async {
        let o = feds.get("crud-deployment").await.ok()?;
        (reconciled_clusters(&o)? == [("member1".to_string(), "AlreadyExists".to_string())])
            .then_some(())
    })
    .await;
    still_there().await;

    placed(json!([])).await;
    eventually(30, "member1 out of the status", || async {
        let o = feds.get("crud-deployment").await.ok()?;
        reconciled_clusters(&o)?.is_empty().then_some(())
    })
    .await;
    still_there().await;

    feds.delete("crud-deployment", &DeleteParams::default())
        .await
        .unwrap();
    eventually(30, "federated deployment gone", || async {
        feds.get_opt("crud-deployment")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    still_there().await;
    controller.stop().await;
}

/// Mirrors KubeFed test/e2e/ftccontroller.go "FTC controller should be refreshed if the target
/// CRD version changed for a federated CRD": the target CRD moves from v1 to v2 (v1 no longer
/// served) in the host and the members and its FederatedTypeConfig is re-enabled at v2; the
/// type's propagation follows: a template change reaches the members, read at v2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_crd_moving_to_a_new_version_keeps_propagating() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let fed = Federation::start(2).await;
    let v1 = TargetType::new("example.com", "v1", "Widget", "widgets", Scope::Namespaced);
    let mut v2 = v1.clone();
    v2.version = "v2".into();
    let all = || std::iter::once(&fed.host).chain(&fed.members);
    for server in all() {
        let crds: Api<CustomResourceDefinition> = Api::all(server.client.clone());
        create(&crds, widget_crd("Widget", "widgets", "Namespaced")).await;
    }
    let crds: Api<CustomResourceDefinition> = Api::all(fed.host.client.clone());
    crds.create(&PostParams::default(), &federated_crd(&v1).unwrap())
        .await
        .unwrap();
    let ftcs: Api<FederatedTypeConfig> = Api::namespaced(fed.host.client.clone(), FED_NS);
    ftcs.create(
        &PostParams::default(),
        &FederatedTypeConfig::for_target(&v1, FED_NS),
    )
    .await
    .unwrap();
    for m in &fed.members {
        let api = member_api(m, &v1);
        eventually(30, "widgets served in a member", || async {
            api.list(&Default::default()).await.ok()
        })
        .await;
    }
    let feds = federated_api(&fed, &v1);
    eventually(30, "federated widgets served", || async {
        feds.list(&Default::default()).await.ok()
    })
    .await;
    let (controller, _metrics) = fed.controller();
    create(&feds, federated_object(&v1, "v1", &["member1", "member2"])).await;
    wait_all(
        &fed,
        std::slice::from_ref(&v1),
        [Some("v1"), Some("v1")],
        "created at v1",
    )
    .await;

    // the CRD moves to v2 everywhere; v1 is no longer served
    let schema = json!({"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}});
    let versions = json!({"spec": {"versions": [
        {"name": "v2", "served": true, "storage": true, "schema": schema},
        {"name": "v1", "served": false, "storage": false, "schema": schema}
    ]}});
    for server in all() {
        let crds: Api<CustomResourceDefinition> = Api::all(server.client.clone());
        crds.patch(
            "widgets.example.com",
            &PatchParams::default(),
            &Patch::Merge(&versions),
        )
        .await
        .unwrap();
        let (at_v1, at_v2) = (member_api(server, &v1), member_api(server, &v2));
        eventually(30, "widgets served at v2 only", || async {
            let v1_gone = at_v1.list(&Default::default()).await.is_err();
            (v1_gone && at_v2.list(&Default::default()).await.is_ok()).then_some(())
        })
        .await;
    }
    let patch = json!({"spec": {"targetType": {"version": "v2"}}});
    ftcs.patch(
        &v1.type_config_name(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .unwrap();

    let patch = json!({"spec": {"template": {"metadata": {"labels": {"crud": "v2"}}}}});
    feds.patch(
        &name_of(&v1),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .unwrap();
    wait_all(
        &fed,
        std::slice::from_ref(&v2),
        [Some("v2"), Some("v2")],
        "updated at v2",
    )
    .await;
    controller.stop().await;
}
