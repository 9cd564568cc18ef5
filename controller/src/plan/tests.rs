use super::*;
use serde_json::json;

fn fed(yaml: &str) -> FederatedResource {
    serde_yaml::from_str(yaml).unwrap()
}

fn deployment() -> TargetType {
    TargetType {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespaced: true,
        ..Default::default()
    }
}

fn clusters(names: &[&str]) -> Vec<ClusterView> {
    names
        .iter()
        .map(|n| ClusterView {
            name: n.to_string(),
            ready: true,
            ..Default::default()
        })
        .collect()
}

const FD: &str = r#"
apiVersion: types.kubefed.io/v1beta1
kind: FederatedDeployment
metadata: {name: web, namespace: demo, generation: 1}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:
      replicas: 2
      template: {spec: {containers: [{name: web, image: "nginx:1"}]}}
  placement:
    clusters: [{name: member1}, {name: member2}]
  overrides:
  - clusterName: member2
    clusterOverrides:
    - {path: /spec/replicas, value: 5}
"#;

static NONE: std::sync::LazyLock<BTreeMap<String, String>> =
    std::sync::LazyLock::new(Default::default);

/// The owner annotation of FD's member objects.
const OWNER: &str = "types.kubefed.io/FederatedDeployment/demo/web";

fn input<'a>(
    f: &'a FederatedResource,
    cs: &'a [ClusterView],
    members: &'a BTreeMap<String, Value>,
    target: &'a TargetType,
) -> PlanInput<'a> {
    PlanInput {
        federated: f,
        target,
        clusters: cs,
        members,
        adopt_resources: false,
        namespace_placement: None,
        host_uid: None,
        other_tenants_clusters: &NONE,
        owner: OWNER,
    }
}

fn run(
    f: &FederatedResource,
    cs: &[ClusterView],
    members: &BTreeMap<String, Value>,
    target: &TargetType,
) -> Plan {
    plan(&input(f, cs, members, target)).unwrap()
}

/// Pretends the member server stored the created objects (with some defaulting of its own).
fn store(plan: &Plan, members: &mut BTreeMap<String, Value>) {
    for a in &plan.actions {
        match a {
            MemberAction::Create { cluster, object } | MemberAction::Update { cluster, object } => {
                let mut o = object.clone();
                o["metadata"]["resourceVersion"] = json!("42");
                o["spec"]["strategy"] = json!({"type": "RollingUpdate"});
                o["status"] = json!({"readyReplicas": 2});
                members.insert(cluster.clone(), o);
            }
            MemberAction::Delete { cluster, .. } => drop(members.remove(cluster)),
            MemberAction::RemoveManagedLabel { cluster, .. } => {
                // as apply's merge patch: the label and the owner annotations go
                let m = members.get_mut(cluster).unwrap();
                m["metadata"]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("kubefed.io/managed");
                if let Some(a) = m["metadata"]["annotations"].as_object_mut() {
                    a.remove("cellfed.io/federated-resource");
                    a.remove("cellfed.io/federated-resource-uid");
                }
            }
        }
    }
}

#[test]
fn creates_on_placed_clusters_with_overrides_and_managed_label() {
    let f = fed(FD);
    let p = run(
        &f,
        &clusters(&["member1", "member2", "member3"]),
        &BTreeMap::new(),
        &deployment(),
    );
    assert_eq!(p.actions.len(), 2);
    let MemberAction::Create { cluster, object } = &p.actions[1] else {
        panic!("{:?}", p.actions)
    };
    assert_eq!(cluster, "member2");
    assert_eq!(object["spec"]["replicas"], 5);
    assert_eq!(object["metadata"]["namespace"], "demo");
    assert_eq!(object["metadata"]["labels"]["kubefed.io/managed"], "true");
    assert_eq!(object["metadata"]["labels"]["app"], "web");
    assert_eq!(object["kind"], "Deployment");
    assert_eq!((p.updated, p.placed), (2, 2));
}

#[test]
fn in_sync_plans_nothing_even_from_scratch_and_drift_is_corrected() {
    let f = fed(FD);
    let cs = clusters(&["member1", "member2"]);
    let mut members = BTreeMap::new();
    let first = run(&f, &cs, &members, &deployment());
    store(&first, &mut members);
    let again = run(&f, &cs, &members, &deployment());
    assert!(again.actions.is_empty(), "{:?}", again.actions);
    assert_eq!(again.updated, 2);

    members.get_mut("member1").unwrap()["spec"]["replicas"] = json!(9);
    let fix = run(&f, &cs, &members, &deployment());
    assert_eq!(fix.actions.len(), 1);
    let MemberAction::Update { object, .. } = &fix.actions[0] else {
        panic!()
    };
    assert_eq!(object["spec"]["replicas"], 2);
    assert_eq!(object["metadata"]["resourceVersion"], "42");
}

#[test]
fn grey_release_touches_only_the_mask() {
    let mut f = fed(FD);
    let cs = clusters(&["member1", "member2"]);
    let mut members = BTreeMap::new();
    store(&run(&f, &cs, &members, &deployment()), &mut members);

    // change the image with the mask on member1 only
    f.metadata.generation = Some(2);
    f.spec.template.as_mut().unwrap()["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("nginx:2");
    f.spec.placement_mask =
        Some(serde_json::from_value(json!({"clusters": [{"name": "member1"}]})).unwrap());
    let p = run(&f, &cs, &members, &deployment());
    assert_eq!(p.actions.len(), 1);
    assert_eq!(p.actions[0].cluster(), "member1");
    assert_eq!((p.updated, p.placed), (1, 2));
    let behind = p.clusters.iter().find(|c| c.cluster == "member2").unwrap();
    assert_eq!(behind.status, Some(PropagationStatus::MaskedOut));
    assert_eq!(behind.generation, Some(1));
    store(&p, &mut members);

    // widening the mask finishes the rollout
    f.spec.placement_mask = None;
    let p = run(&f, &cs, &members, &deployment());
    assert_eq!(p.actions.len(), 1);
    assert_eq!(p.actions[0].cluster(), "member2");
    assert_eq!(p.updated, 2);
}

#[test]
fn mask_edit_alone_writes_nothing() {
    let mut f = fed(FD);
    let cs = clusters(&["member1", "member2"]);
    let mut members = BTreeMap::new();
    store(&run(&f, &cs, &members, &deployment()), &mut members);
    f.metadata.generation = Some(2);
    f.spec.placement_mask =
        Some(serde_json::from_value(json!({"clusters": [{"name": "member1"}]})).unwrap());
    assert!(run(&f, &cs, &members, &deployment()).actions.is_empty());
}

/// KubeFed's e2e crud "CheckPlacementChange": a cluster removed from placement loses the object,
/// also when the resource carries the orphan annotation (orphaning is about deleting the
/// federated resource), and only objects we manage are touched.
#[test]
fn removal_from_placement_deletes_even_when_orphaning() {
    let mut f = fed(FD);
    let cs = clusters(&["member1", "member2"]);
    let mut members = BTreeMap::new();
    store(&run(&f, &cs, &members, &deployment()), &mut members);
    f.spec.placement =
        Some(serde_json::from_value(json!({"clusters": [{"name": "member1"}]})).unwrap());
    f.metadata.annotations = Some([("kubefed.io/orphan".to_string(), "true".to_string())].into());
    let p = run(&f, &cs, &members, &deployment());
    assert_eq!(
        p.actions,
        vec![MemberAction::Delete {
            cluster: "member2".into(),
            namespace: Some("demo".into()),
            name: "web".into(),
            options: None,
        }]
    );
    // an object we do not manage is never deleted
    members.get_mut("member2").unwrap()["metadata"]["labels"] = json!({});
    assert!(run(&f, &cs, &members, &deployment()).actions.is_empty());
    // one being deleted in the member is waited for, not deleted again
    let mut deleting = members["member1"].clone();
    deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    members.insert("member2".into(), deleting);
    let p = run(&f, &cs, &members, &deployment());
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    let waiting = p.clusters.iter().find(|c| c.cluster == "member2").unwrap();
    assert_eq!(waiting.status, Some(PropagationStatus::WaitingForRemoval));
}

/// KubeFed's e2e crud "CheckDelete" with `orphanDependents`: deleting an orphaning resource
/// removes the managed label from member objects and leaves them in place; ready clusters only.
#[test]
fn orphaning_deletion_removes_the_managed_label() {
    let mut f = fed(FD);
    let mut cs = clusters(&["member1", "member2"]);
    let mut members = BTreeMap::new();
    store(&run(&f, &cs, &members, &deployment()), &mut members);
    f.metadata.annotations = Some([("kubefed.io/orphan".to_string(), "true".to_string())].into());
    cs[1].ready = false;
    let d = plan_deletion(&input(&f, &cs, &members, &deployment())).unwrap();
    assert_eq!(
        d.actions,
        vec![MemberAction::RemoveManagedLabel {
            cluster: "member1".into(),
            namespace: Some("demo".into()),
            name: "web".into(),
        }]
    );
    // the not-ready member2 does not hold the finalizer: once member1 is unlabelled, done
    store(&d, &mut members);
    let d = plan_deletion(&input(&f, &cs, &members, &deployment())).unwrap();
    assert!(d.actions.is_empty() && d.clusters.is_empty(), "{d:?}");
    assert!(
        members["member1"]["metadata"]["labels"]
            .get("kubefed.io/managed")
            .is_none()
    );
}

/// KubeFed's e2e "DeleteOptions": `kubefed.io/deleteoption` reaches the member deletes of a
/// deleted resource (not the deletes of a placement change, as in KubeFed); a malformed one is
/// a bad spec that names the annotation.
#[test]
fn delete_options_come_from_the_annotation() {
    let mut f = fed(FD);
    let cs = clusters(&["member1", "member2"]);
    let mut members = BTreeMap::new();
    store(&run(&f, &cs, &members, &deployment()), &mut members);
    let d = plan_deletion(&input(&f, &cs, &members, &deployment())).unwrap();
    assert_eq!(d.actions.len(), 2);
    assert!(
        d.actions
            .iter()
            .all(|a| matches!(a, MemberAction::Delete { options: None, .. }))
    );
    f.metadata.annotations = Some(
        [(
            "kubefed.io/deleteoption".to_string(),
            r#"{"propagationPolicy":"Orphan","gracePeriodSeconds":5}"#.to_string(),
        )]
        .into(),
    );
    let d = plan_deletion(&input(&f, &cs, &members, &deployment())).unwrap();
    let MemberAction::Delete {
        options: Some(o), ..
    } = &d.actions[0]
    else {
        panic!("{:?}", d.actions)
    };
    assert_eq!(o.propagation_policy.as_deref(), Some("Orphan"));
    assert_eq!(o.grace_period_seconds, Some(5));
    for bad in [r#"{"propagationPolicy":"Sometimes"}"#, "not json"] {
        f.metadata.annotations =
            Some([("kubefed.io/deleteoption".to_string(), bad.to_string())].into());
        let e = plan_deletion(&input(&f, &cs, &members, &deployment())).unwrap_err();
        assert!(e.to_string().contains("kubefed.io/deleteoption"), "{e}");
        assert_eq!(e.reason(), "DeleteOptionsInvalid");
    }
}

/// A resource in a namespace with a FederatedNamespace goes only where the namespace goes; the
/// other placed clusters say `NamespaceNotFederated` and lose what they had. Mirrors KubeFed's
/// e2e "Placement should be computed from namespace and resource placement".
#[test]
fn namespace_placement_limits_the_resource() {
    let f = fed(FD);
    let cs = clusters(&["member1", "member2"]);
    let mut members = BTreeMap::new();
    store(&run(&f, &cs, &members, &deployment()), &mut members);
    let ns: cellfed_api::federated::v1beta1::FederatedSpec =
        serde_json::from_value(json!({"placement": {"clusters": [{"name": "member1"}]}})).unwrap();
    let target = deployment();
    let mut i = input(&f, &cs, &members, &target);
    i.namespace_placement = Some(&ns);
    let p = plan(&i).unwrap();
    assert_eq!(
        p.actions,
        vec![MemberAction::Delete {
            cluster: "member2".into(),
            namespace: Some("demo".into()),
            name: "web".into(),
            options: None,
        }]
    );
    let status = |p: &Plan, c: &str| p.clusters.iter().find(|s| s.cluster == c).unwrap().status;
    assert_eq!(
        status(&p, "member2"),
        Some(PropagationStatus::NamespaceNotFederated)
    );
    assert_eq!(status(&p, "member1"), None);
    assert_eq!((p.updated, p.placed), (1, 1));
    // after the delete, member2 still says why it has nothing
    store(&p, &mut members);
    let target = deployment();
    let mut i = input(&f, &cs, &members, &target);
    i.namespace_placement = Some(&ns);
    let p = plan(&i).unwrap();
    assert!(p.actions.is_empty());
    assert_eq!(
        status(&p, "member2"),
        Some(PropagationStatus::NamespaceNotFederated)
    );
}

/// KubeFed's example/sample1/federatednamespace.yaml: a FederatedNamespace without a template
/// creates the namespace, labelled as managed, where it is placed.
#[test]
fn a_federated_namespace_needs_no_template() {
    let f = fed(r#"
apiVersion: types.kubefed.io/v1beta1
kind: FederatedNamespace
metadata: {name: test-namespace, namespace: test-namespace, generation: 1}
spec:
  placement:
    clusters: [{name: cluster2}, {name: cluster1}]
"#);
    let target = TargetType {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        namespaced: false,
        ..Default::default()
    };
    let p = run(
        &f,
        &clusters(&["cluster1", "cluster2"]),
        &BTreeMap::new(),
        &target,
    );
    assert_eq!(p.actions.len(), 2);
    let MemberAction::Create { object, .. } = &p.actions[0] else {
        panic!("{:?}", p.actions)
    };
    assert_eq!(object["kind"], "Namespace");
    assert_eq!(object["metadata"]["name"], "test-namespace");
    assert!(object["metadata"].get("namespace").is_none());
    assert_eq!(object["metadata"]["labels"]["kubefed.io/managed"], "true");
    // KubeFed's InvalidName: one not named like its namespace is not propagated
    let mut other = f.clone();
    other.metadata.name = Some("elsewhere".into());
    let e = plan(&input(
        &other,
        &clusters(&["cluster1"]),
        &BTreeMap::new(),
        &target,
    ))
    .unwrap_err();
    assert_eq!(e.reason(), "InvalidName");
    assert!(e.to_string().contains("\"test-namespace\""), "{e}");
}

/// KubeFed's `IsNamespaceInHostCluster` (crud "CheckPlacementChange" for namespaces removes the
/// primary cluster): the host's own namespace, when the host is a member, is taken over without
/// an AlreadyExists, and leaving it (placement or deletion) only removes the managed label.
#[test]
fn the_hosts_own_namespace_is_never_deleted() {
    let mut f = fed(r#"
apiVersion: types.kubefed.io/v1beta1
kind: FederatedNamespace
metadata: {name: demo, namespace: demo, generation: 1}
spec:
  placement:
    clusters: [{name: host}]
"#);
    let target = TargetType {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        namespaced: false,
        ..Default::default()
    };
    let cs = clusters(&["host"]);
    let own = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "demo", "uid": "u-1", "resourceVersion": "3"}});
    let mut members = BTreeMap::from([("host".to_string(), own)]);
    let mut i = input(&f, &cs, &members, &target);
    i.host_uid = Some("u-1");
    let p = plan(&i).unwrap();
    let MemberAction::Update { object, .. } = &p.actions[0] else {
        panic!("{:?}", p.actions)
    };
    assert!(
        object["metadata"]["annotations"]
            .get("kubefed.io/adopted")
            .is_none()
    );
    store(&p, &mut members);
    members.get_mut("host").unwrap()["metadata"]["uid"] = json!("u-1");
    f.spec.placement = Some(serde_json::from_value(json!({"clusters": []})).unwrap());
    let mut i = input(&f, &cs, &members, &target);
    i.host_uid = Some("u-1");
    assert_eq!(
        plan(&i).unwrap().actions,
        vec![MemberAction::RemoveManagedLabel {
            cluster: "host".into(),
            namespace: None,
            name: "demo".into(),
        }]
    );
    assert!(matches!(
        plan_deletion(&i).unwrap().actions[..],
        [MemberAction::RemoveManagedLabel { .. }]
    ));
}

/// A placement may name clusters that have not joined (GitOps manifests for every cluster):
/// they are reported `ClusterNotFound` and propagated once they join.
#[test]
fn clusters_not_joined_yet_are_reported() {
    let mut f = fed(FD);
    f.spec.placement = Some(
        serde_json::from_value(json!({"clusters": [{"name": "member1"}, {"name": "member3"}]}))
            .unwrap(),
    );
    let p = run(
        &f,
        &clusters(&["member1", "member2"]),
        &BTreeMap::new(),
        &deployment(),
    );
    assert_eq!(p.actions.len(), 1);
    let late = p.clusters.iter().find(|c| c.cluster == "member3").unwrap();
    assert_eq!(late.status, Some(PropagationStatus::ClusterNotFound));
    assert_eq!((p.updated, p.placed), (1, 1));
    // one that exists but belongs to another tenant says so (admission refuses it; this is the
    // controller's second line of defence)
    let foreign = BTreeMap::from([(
        "member3".to_string(),
        "belongs to another tenant or workspace".to_string(),
    )]);
    let (cs, members, target) = (clusters(&["member1"]), BTreeMap::new(), deployment());
    let mut i = input(&f, &cs, &members, &target);
    i.other_tenants_clusters = &foreign;
    let p = plan(&i).unwrap();
    let other = p.clusters.iter().find(|c| c.cluster == "member3").unwrap();
    assert_eq!(other.status, Some(PropagationStatus::TenantMismatch));
    assert_eq!(
        other.message.as_deref(),
        Some("cluster member3 belongs to another tenant or workspace")
    );
    let p = run(
        &f,
        &clusters(&["member1", "member2", "member3"]),
        &BTreeMap::new(),
        &deployment(),
    );
    assert_eq!(p.actions.len(), 2);
}

#[test]
fn unmanaged_objects_are_not_overwritten_unless_adopted() {
    let f = fed(FD);
    let cs = clusters(&["member1"]);
    let members = BTreeMap::from([(
        "member1".to_string(),
        json!({"metadata": {"name": "web", "namespace": "demo"}, "spec": {"replicas": 1}}),
    )]);
    let p = run(&f, &cs, &members, &deployment());
    assert!(p.actions.is_empty());
    assert_eq!(p.clusters[0].status, Some(PropagationStatus::AlreadyExists));
    assert!(
        p.clusters[0]
            .message
            .as_deref()
            .unwrap()
            .contains("adoptResources")
    );
    let target = deployment();
    let mut i = input(&f, &cs, &members, &target);
    i.adopt_resources = true;
    let p = plan(&i).unwrap();
    let MemberAction::Update { object, .. } = &p.actions[0] else {
        panic!()
    };
    assert_eq!(
        object["metadata"]["annotations"]["kubefed.io/adopted"],
        "true"
    );
}

#[test]
fn bad_override_fails_only_that_cluster() {
    let mut f = fed(FD);
    f.spec.overrides[0].cluster_overrides[0].path = "/spec/nope/deeper".into();
    let p = run(
        &f,
        &clusters(&["member1", "member2"]),
        &BTreeMap::new(),
        &deployment(),
    );
    assert_eq!(p.actions.len(), 1);
    assert_eq!(p.actions[0].cluster(), "member1");
    let failed = p.clusters.iter().find(|c| c.cluster == "member2").unwrap();
    assert_eq!(failed.status, Some(PropagationStatus::ApplyOverridesFailed));
    assert!(
        failed
            .message
            .as_deref()
            .unwrap()
            .contains("/spec/nope/deeper")
    );
}

#[test]
fn not_ready_cluster_is_skipped_with_status() {
    let f = fed(FD);
    let mut cs = clusters(&["member1", "member2"]);
    cs[1].ready = false;
    let p = run(&f, &cs, &BTreeMap::new(), &deployment());
    assert_eq!(p.actions.len(), 1);
    assert_eq!(
        p.clusters
            .iter()
            .find(|c| c.cluster == "member2")
            .unwrap()
            .status,
        Some(PropagationStatus::ClusterNotReady)
    );
}

#[test]
fn cell_clusters_write_into_their_member_namespace() {
    let f = fed(FD);
    let mut cs = clusters(&["member1"]);
    cs[0].member_namespace = Some("cell-a".into());
    let mut f2 = f.clone();
    f2.spec.placement =
        Some(serde_json::from_value(json!({"clusters": [{"name": "member1"}]})).unwrap());
    let p = run(&f2, &cs, &BTreeMap::new(), &deployment());
    let MemberAction::Create { object, .. } = &p.actions[0] else {
        panic!()
    };
    assert_eq!(object["metadata"]["namespace"], "cell-a");
}

#[test]
fn service_update_keeps_allocated_fields() {
    let f = fed(r#"
metadata: {name: svc, namespace: demo, generation: 1}
spec:
  template: {spec: {type: NodePort, ports: [{name: http, port: 80}]}}
  placement: {clusters: [{name: member1}]}
"#);
    let target = TargetType {
        api_version: "v1".into(),
        kind: "Service".into(),
        namespaced: true,
        ..Default::default()
    };
    let cs = clusters(&["member1"]);
    let p = run(&f, &cs, &BTreeMap::new(), &target);
    let MemberAction::Create { object, .. } = &p.actions[0] else {
        panic!()
    };
    let mut member = object.clone();
    member["metadata"]["resourceVersion"] = json!("5");
    member["spec"]["clusterIP"] = json!("10.96.0.10");
    member["spec"]["ports"][0]["nodePort"] = json!(30001);
    let members = BTreeMap::from([("member1".to_string(), member)]);
    assert!(run(&f, &cs, &members, &target).actions.is_empty());
    let mut f2 = f.clone();
    f2.spec.template.as_mut().unwrap()["spec"]["ports"][0]["port"] = json!(8080);
    f2.spec.template.as_mut().unwrap()["spec"]["ports"][0]["name"] = json!("http");
    let p = run(&f2, &cs, &members, &target);
    let MemberAction::Update { object, .. } = &p.actions[0] else {
        panic!()
    };
    assert_eq!(object["spec"]["clusterIP"], "10.96.0.10");
    assert_eq!(object["spec"]["ports"][0]["nodePort"], 30001);
}

#[test]
fn annotation_rules_set_keep_and_remove() {
    let target = TargetType {
        api_version: "v1".into(),
        kind: "Service".into(),
        namespaced: true,
        propagated_annotations: vec!["service.beta.kubernetes.io/*".into()],
        ..Default::default()
    };
    let mut f = fed(r#"
metadata: {name: svc, namespace: demo, generation: 1}
spec:
  template:
    metadata: {annotations: {"service.beta.kubernetes.io/x": "1"}}
    spec: {ports: [{port: 80}]}
  placement: {clusters: [{name: member1}]}
"#);
    let cs = clusters(&["member1"]);
    let p = run(&f, &cs, &BTreeMap::new(), &target);
    let MemberAction::Create { object, .. } = &p.actions[0] else {
        panic!()
    };
    assert_eq!(
        object["metadata"]["annotations"]["service.beta.kubernetes.io/x"],
        "1"
    );
    let mut member = object.clone();
    member["metadata"]["annotations"]["status.example.com/lb"] = json!("1.2.3.4");
    let members = BTreeMap::from([("member1".to_string(), member.clone())]);
    assert!(
        run(&f, &cs, &members, &target).actions.is_empty(),
        "a member-side status annotation is left alone"
    );

    // template update keeps the member's status annotation
    f.spec.template.as_mut().unwrap()["spec"]["ports"][0]["port"] = json!(81);
    let p = run(&f, &cs, &members, &target);
    let MemberAction::Update { object, .. } = &p.actions[0] else {
        panic!()
    };
    assert_eq!(
        object["metadata"]["annotations"]["status.example.com/lb"],
        "1.2.3.4"
    );
    assert_eq!(
        object["metadata"]["annotations"]["service.beta.kubernetes.io/x"],
        "1"
    );

    // dropping the key from the template removes it from the member
    f.spec.template.as_mut().unwrap()["metadata"]["annotations"] = json!({});
    let p = run(&f, &cs, &members, &target);
    let MemberAction::Update { object, .. } = &p.actions[0] else {
        panic!()
    };
    assert!(
        object["metadata"]["annotations"]
            .get("service.beta.kubernetes.io/x")
            .is_none(),
        "{object}"
    );
    assert_eq!(
        object["metadata"]["annotations"]["status.example.com/lb"],
        "1.2.3.4"
    );
}

/// Issue 9: member objects record their owner; another resource's object is never written,
/// deleted or unlabelled, and the conflict shows in this resource's status.
#[test]
fn another_resources_object_is_never_written_or_deleted() {
    let mut f = fed(FD);
    f.metadata.uid = Some("uid-web".into());
    let cs = clusters(&["member1", "member2"]);
    let mut members = BTreeMap::new();
    let first = run(&f, &cs, &members, &deployment());
    let MemberAction::Create { object, .. } = &first.actions[0] else {
        panic!()
    };
    assert_eq!(
        object["metadata"]["annotations"]["cellfed.io/federated-resource"],
        OWNER
    );
    assert_eq!(
        object["metadata"]["annotations"]["cellfed.io/federated-resource-uid"],
        "uid-web"
    );
    store(&first, &mut members);
    // member1's object is (now) another resource's, e.g. a cell of another namespace wrote it
    let theirs = "types.kubefed.io/FederatedDeployment/shop/web";
    let m1 = members.get_mut("member1").unwrap();
    m1["metadata"]["annotations"]["cellfed.io/federated-resource"] = json!(theirs);
    m1["spec"]["replicas"] = json!(7);
    let p = run(&f, &cs, &members, &deployment());
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    let c = p.clusters.iter().find(|c| c.cluster == "member1").unwrap();
    assert_eq!(c.status, Some(PropagationStatus::ManagedByAnotherResource));
    assert!(PropagationStatus::ManagedByAnotherResource.is_error());
    let msg = c.message.as_deref().unwrap();
    assert!(
        msg.starts_with(
            "cluster member1: the Deployment demo/web there belongs to another federated resource"
        ),
        "{msg}"
    );
    assert!(!msg.contains("shop"), "names the other owner: {msg}");
    assert_eq!((c.generation, &c.remote_status), (None, &None));
    assert_eq!(p.updated, 1, "only member2 carries our content");
    // adoption does not take it either
    let target = deployment();
    let mut i = input(&f, &cs, &members, &target);
    i.adopt_resources = true;
    assert!(plan(&i).unwrap().actions.is_empty());
    // leaving member1 does not delete it, nor does deleting the resource (with or without
    // orphaning): only member2's own object is touched
    f.spec.placement =
        Some(serde_json::from_value(json!({"clusters": [{"name": "member2"}]})).unwrap());
    assert!(run(&f, &cs, &members, &deployment()).actions.is_empty());
    let d = plan_deletion(&input(&f, &cs, &members, &deployment())).unwrap();
    assert_eq!(d.actions.len(), 1);
    assert_eq!(d.actions[0].cluster(), "member2");
    assert!(d.clusters.iter().all(|c| c.cluster == "member2"), "{d:?}");
    f.metadata.annotations = Some([("kubefed.io/orphan".to_string(), "true".to_string())].into());
    let d = plan_deletion(&input(&f, &cs, &members, &deployment())).unwrap();
    assert!(
        matches!(&d.actions[..], [MemberAction::RemoveManagedLabel { cluster, .. }] if cluster == "member2"),
        "{:?}",
        d.actions
    );
}

/// Objects written before owners were recorded (managed label, no owner annotation) stay ours:
/// the next plan stamps them once and deletion still cleans them up; nothing else changes.
#[test]
fn objects_without_an_owner_are_ours_and_stamped_once() {
    let f = fed(FD);
    let cs = clusters(&["member1"]);
    let mut members = BTreeMap::new();
    store(&run(&f, &cs, &members, &deployment()), &mut members);
    let legacy = members.get_mut("member1").unwrap();
    legacy["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("cellfed.io/federated-resource");
    let p = run(&f, &cs, &members, &deployment());
    let [MemberAction::Update { object, .. }] = &p.actions[..] else {
        panic!("{:?}", p.actions)
    };
    assert_eq!(
        object["metadata"]["annotations"]["cellfed.io/federated-resource"],
        OWNER
    );
    assert_eq!(p.clusters[0].status, None);
    let d = plan_deletion(&input(&f, &cs, &members, &deployment())).unwrap();
    assert!(matches!(&d.actions[..], [MemberAction::Delete { .. }]));
    store(&p, &mut members);
    assert!(run(&f, &cs, &members, &deployment()).actions.is_empty());
}

/// Neither the template nor an override can make a member object name another owner.
#[test]
fn the_template_cannot_claim_another_owner() {
    let mut f = fed(FD);
    let tpl = f.spec.template.as_mut().unwrap();
    tpl["metadata"]["annotations"] =
        json!({"cellfed.io/federated-resource": "types.kubefed.io/FederatedDeployment/x/y"});
    let p = run(&f, &clusters(&["member2"]), &BTreeMap::new(), &deployment());
    let MemberAction::Create { object, .. } = &p.actions[0] else {
        panic!()
    };
    assert_eq!(
        object["metadata"]["annotations"]["cellfed.io/federated-resource"],
        OWNER
    );
}

/// Adoption (`adoptResources: Enabled`) stamps the owner on the adopted object; an orphaned
/// object loses the owner with the managed label, so another resource may adopt it later.
#[test]
fn adoption_and_orphaning_move_the_owner() {
    let f = fed(FD);
    let cs = clusters(&["member1"]);
    let members = BTreeMap::from([(
        "member1".to_string(),
        json!({"metadata": {"name": "web", "namespace": "demo"}, "spec": {"replicas": 1}}),
    )]);
    let target = deployment();
    let mut i = input(&f, &cs, &members, &target);
    i.adopt_resources = true;
    let p = plan(&i).unwrap();
    let MemberAction::Update { object, .. } = &p.actions[0] else {
        panic!()
    };
    assert_eq!(
        object["metadata"]["annotations"]["cellfed.io/federated-resource"],
        OWNER
    );
    let mut members = BTreeMap::new();
    store(&p, &mut members);
    let mut orphaning = f.clone();
    orphaning.metadata.annotations =
        Some([("kubefed.io/orphan".to_string(), "true".to_string())].into());
    let d = plan_deletion(&input(&orphaning, &cs, &members, &target)).unwrap();
    store(&d, &mut members);
    let released = &members["member1"]["metadata"];
    assert!(
        released["annotations"]
            .get("cellfed.io/federated-resource")
            .is_none()
    );
    // another resource with adoption enabled takes it over: shop/web through a cell whose
    // member namespace is demo
    let mut other = fed(FD);
    other.metadata.namespace = Some("shop".into());
    let mut cell = clusters(&["member1"]);
    cell[0].member_namespace = Some("demo".into());
    let mut i = input(&other, &cell, &members, &target);
    i.adopt_resources = true;
    i.owner = "types.kubefed.io/FederatedDeployment/shop/web";
    let p = plan(&i).unwrap();
    let [MemberAction::Update { object, .. }] = &p.actions[..] else {
        panic!("{:?}", p.actions)
    };
    assert_eq!(
        object["metadata"]["annotations"]["cellfed.io/federated-resource"],
        "types.kubefed.io/FederatedDeployment/shop/web"
    );
}

/// A cell whose member namespace is the resource's own namespace sees, on its base cluster, the
/// very object the resource writes there directly: leaving the cell never deletes what the base
/// cluster's placement still wants.
#[test]
fn an_object_still_placed_through_another_cluster_is_not_cleaned_up() {
    let mut f = fed(FD);
    f.spec.placement =
        Some(serde_json::from_value(json!({"clusters": [{"name": "member1"}]})).unwrap());
    let mut cs = clusters(&["member1", "rz.demo"]);
    cs[0].endpoint = Some("https://m1".into());
    cs[1].endpoint = Some("https://m1".into());
    cs[1].member_namespace = Some("demo".into());
    let mut members = BTreeMap::new();
    let first = run(&f, &cs, &members, &deployment());
    store(&first, &mut members);
    let written = members["member1"].clone();
    members.insert("rz.demo".into(), written);
    let p = run(&f, &cs, &members, &deployment());
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    // placed nowhere any more: cleaned up (through both views of it)
    f.spec.placement = Some(serde_json::from_value(json!({"clusters": []})).unwrap());
    let p = run(&f, &cs, &members, &deployment());
    assert_eq!(p.actions.len(), 2, "{:?}", p.actions);
    assert!(
        p.actions
            .iter()
            .all(|a| matches!(a, MemberAction::Delete { .. }))
    );
}
