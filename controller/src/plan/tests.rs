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

fn run(
    f: &FederatedResource,
    cs: &[ClusterView],
    members: &BTreeMap<String, Value>,
    target: &TargetType,
) -> Plan {
    plan(&PlanInput {
        federated: f,
        target,
        clusters: cs,
        members,
        adopt_resources: false,
    })
    .unwrap()
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

#[test]
fn removal_from_placement_deletes_only_managed_objects_and_orphan_keeps() {
    let mut f = fed(FD);
    let cs = clusters(&["member1", "member2"]);
    let mut members = BTreeMap::new();
    store(&run(&f, &cs, &members, &deployment()), &mut members);
    f.spec.placement =
        Some(serde_json::from_value(json!({"clusters": [{"name": "member1"}]})).unwrap());
    let p = run(&f, &cs, &members, &deployment());
    assert_eq!(
        p.actions,
        vec![MemberAction::Delete {
            cluster: "member2".into(),
            namespace: Some("demo".into()),
            name: "web".into()
        }]
    );

    let d = plan_deletion(&PlanInput {
        federated: &f,
        target: &deployment(),
        clusters: &cs,
        members: &members,
        adopt_resources: false,
    });
    assert_eq!(d.actions.len(), 2);
    f.metadata.annotations = Some([("kubefed.io/orphan".to_string(), "true".to_string())].into());
    let d = plan_deletion(&PlanInput {
        federated: &f,
        target: &deployment(),
        clusters: &cs,
        members: &members,
        adopt_resources: false,
    });
    assert!(d.actions.is_empty());
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
    let p = plan(&PlanInput {
        federated: &f,
        target: &deployment(),
        clusters: &cs,
        members: &members,
        adopt_resources: true,
    })
    .unwrap();
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
