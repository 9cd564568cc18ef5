#![allow(clippy::unwrap_used, clippy::expect_used)]
//! v1beta1 ⇄ v1beta2 conversion of whole federated objects, as the webhook does it.

use cellfed_api::federated::convert::{Error, convert, to_v1beta1, to_v1beta2};
use cellfed_api::{FederatedResource, TopologyResource};
use serde_json::{Value, json};

fn yaml(s: &str) -> Value {
    serde_yaml::from_str(s).unwrap()
}

/// A v1beta2 cell-topology object with every convertible field, unknown fields and metadata.
fn cell_v1beta2() -> Value {
    yaml(
        r#"
apiVersion: types.kubefed.io/v1beta2
kind: FederatedDeployment
metadata:
  name: web
  namespace: ns
  uid: 0a1b
  resourceVersion: "42"
  generation: 3
  labels: {app: web}
  annotations: {team: blue}
  finalizers: [kubefed.io/sync-controller]
spec:
  topologyType: cell
  futureField: {keep: me}
  template:
    metadata: {labels: {app: web}}
    spec:
      replicas: 3
      template: {spec: {containers: [{name: web, image: "nginx:1"}]}}
  placement:
    topologies: [{name: rz00a}, {name: rz00b, weight: 2}]
    clusterSelector: {matchLabels: {zone: a}}
  placementMask:
    topologies: [{name: rz00a}]
  overrides:
  - topologyName: rz00b
    clusterOverrides:
    - {op: replace, path: /spec/replicas, value: 5}
    - {op: add, path: /metadata/annotations, value: {foo: bar}}
    - {op: remove, path: /metadata/annotations/foo}
status:
  observedGeneration: 3
  conditions:
  - {type: Propagation, status: "True", lastUpdateTime: "2026-01-01T00:00:00Z"}
  topologies:
  - {name: rz00a, generation: 3, remoteStatus: {readyReplicas: 3, weird: [1, {a: b}]}}
  - {name: rz00b, status: CreationFailed}
  rollout: {updated: 1, total: 2, summary: 1/2}
"#,
    )
}

#[test]
fn cell_topology_maps_topologies_to_cell_clusters() {
    let v1 = to_v1beta1(&cell_v1beta2()).unwrap();
    assert_eq!(v1["apiVersion"], "types.kubefed.io/v1beta1");
    assert_eq!(
        v1["metadata"]["annotations"],
        json!({"team": "blue", "cellfed.io/topology-type": "cell"})
    );
    assert!(v1["spec"].get("topologyType").is_none());
    assert_eq!(
        v1["spec"]["placement"]["clusters"],
        json!([{"name": "rz00a.ns"}, {"name": "rz00b.ns", "weight": 2}])
    );
    assert!(v1["spec"]["placement"].get("topologies").is_none());
    assert_eq!(
        v1["spec"]["placement"]["clusterSelector"],
        json!({"matchLabels": {"zone": "a"}})
    );
    assert_eq!(
        v1["spec"]["placementMask"],
        json!({"clusters": [{"name": "rz00a.ns"}]})
    );
    assert_eq!(v1["spec"]["overrides"][0]["clusterName"], "rz00b.ns");
    assert!(v1["spec"]["overrides"][0].get("topologyName").is_none());
    assert_eq!(
        v1["status"]["clusters"][1],
        json!({"name": "rz00b.ns", "status": "CreationFailed"})
    );
    assert_eq!(v1["spec"]["futureField"], json!({"keep": "me"}));

    // The stored form is what the controller reads.
    let typed: FederatedResource = serde_json::from_value(v1.clone()).unwrap();
    assert_eq!(
        typed.spec.placement_clusters().unwrap(),
        ["rz00a.ns", "rz00b.ns"]
    );
    assert_eq!(typed.spec.mask_clusters().unwrap(), ["rz00a.ns"]);
    assert_eq!(typed.spec.overrides_for("rz00b.ns").len(), 3);
    assert_eq!(
        typed.topology_type(),
        Some(cellfed_api::federated::v1beta2::TopologyType::Cell)
    );
}

#[test]
fn round_trips_are_identical() {
    let v2 = cell_v1beta2();
    let v1 = to_v1beta1(&v2).unwrap();
    assert_eq!(to_v1beta2(&v1).unwrap(), v2, "v1beta2 → v1beta1 → v1beta2");
    assert_eq!(
        to_v1beta1(&to_v1beta2(&v1).unwrap()).unwrap(),
        v1,
        "v1beta1 → v1beta2 → v1beta1"
    );

    // Cluster topology, explicit and implicit, with and without annotations.
    let mut explicit = v2.clone();
    explicit["spec"]["topologyType"] = json!("cluster");
    let mut implicit = v2.clone();
    implicit["spec"]
        .as_object_mut()
        .unwrap()
        .remove("topologyType");
    implicit["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    for obj in [explicit, implicit] {
        let v1 = to_v1beta1(&obj).unwrap();
        assert_eq!(
            v1["spec"]["placement"]["clusters"][0]["name"], "rz00a",
            "names copied"
        );
        assert_eq!(to_v1beta2(&v1).unwrap(), obj);
    }
}

#[test]
fn kubefed_object_without_annotation_is_cluster_topology() {
    let v1 = yaml(
        r#"
apiVersion: types.kubefed.io/v1beta1
kind: FederatedConfigMap
metadata: {name: cm, namespace: ns}
spec:
  template: {data: {a: b}}
  placement: {clusters: [{name: cluster1}, {name: cluster2}]}
  overrides: [{clusterName: cluster2, clusterOverrides: [{path: /data/a, value: c}]}]
status:
  clusters: [{name: cluster1}]
"#,
    );
    let v2 = convert(&v1, "types.kubefed.io/v1beta2").unwrap();
    assert!(
        v2["spec"].get("topologyType").is_none(),
        "absent stays absent"
    );
    assert_eq!(v2["spec"]["placement"]["topologies"][1]["name"], "cluster2");
    assert_eq!(v2["spec"]["overrides"][0]["topologyName"], "cluster2");
    assert_eq!(v2["status"]["topologies"], json!([{"name": "cluster1"}]));
    let typed: TopologyResource = serde_json::from_value(v2.clone()).unwrap();
    assert_eq!(
        typed.spec.topology_type(),
        cellfed_api::federated::v1beta2::TopologyType::Cluster
    );
    assert_eq!(convert(&v2, "types.kubefed.io/v1beta1").unwrap(), v1);
    assert_eq!(
        convert(&v1, "types.kubefed.io/v1beta1").unwrap(),
        v1,
        "same version: unchanged"
    );
}

#[test]
fn cell_object_naming_a_foreign_cluster_is_refused_with_cluster_and_field() {
    let v1 = yaml(
        r#"
apiVersion: types.kubefed.io/v1beta1
kind: FederatedDeployment
metadata: {name: web, namespace: ns, annotations: {cellfed.io/topology-type: cell}}
spec:
  placement: {clusters: [{name: rz00a.ns}, {name: cluster1}]}
"#,
    );
    let err = to_v1beta2(&v1).unwrap_err();
    assert!(matches!(err, Error::MapClusterToCell { .. }));
    let msg = err.to_string();
    assert!(msg.contains("\"cluster1\""), "{msg}");
    assert!(msg.contains("spec.placement.clusters[1].name"), "{msg}");
    assert!(msg.contains("<cell>.ns"), "{msg}");

    let mut other_ns = v1.clone();
    other_ns["spec"]["placement"]["clusters"] = json!([]);
    other_ns["status"] = json!({"clusters": [{"name": "rz00a.other"}]});
    let msg = to_v1beta2(&other_ns).unwrap_err().to_string();
    assert!(msg.contains("status.clusters[0].name"), "{msg}");

    let mut in_override = v1.clone();
    in_override["spec"]["placement"]["clusters"] = json!([]);
    in_override["spec"]["overrides"] = json!([{"clusterName": "x"}]);
    let msg = to_v1beta2(&in_override).unwrap_err().to_string();
    assert!(msg.contains("spec.overrides[0].clusterName"), "{msg}");
}

#[test]
fn invalid_cell_names_are_refused() {
    let mut v2 = cell_v1beta2();
    v2["spec"]["placementMask"]["topologies"][0]["name"] = json!("Bad_Cell");
    let msg = to_v1beta1(&v2).unwrap_err().to_string();
    assert!(msg.contains("\"Bad_Cell\""), "{msg}");
    assert!(
        msg.contains("spec.placementMask.topologies[0].name"),
        "{msg}"
    );
}

#[test]
fn cluster_scoped_object_cannot_use_cell_topology() {
    let v2 = yaml(
        r#"
apiVersion: types.kubefed.io/v1beta2
kind: FederatedClusterRole
metadata: {name: reader}
spec:
  topologyType: cell
  placement: {topologies: [{name: rz00a}]}
"#,
    );
    let msg = to_v1beta1(&v2).unwrap_err().to_string();
    assert!(
        msg.contains("FederatedClusterRole \"reader\" is cluster-scoped"),
        "{msg}"
    );
    let v1 = yaml(
        r#"
apiVersion: types.kubefed.io/v1beta1
kind: FederatedClusterRole
metadata: {name: reader, annotations: {cellfed.io/topology-type: cell}}
spec: {}
"#,
    );
    assert!(matches!(
        to_v1beta2(&v1).unwrap_err(),
        Error::CheckCellScope { .. }
    ));
}

#[test]
fn bad_inputs_are_reported() {
    let mut v2 = cell_v1beta2();
    v2["spec"]["topologyType"] = json!("region");
    let msg = to_v1beta1(&v2).unwrap_err().to_string();
    assert!(msg.contains("spec.topologyType is \"region\""), "{msg}");

    let msg = convert(&cell_v1beta2(), "apps/v1").unwrap_err().to_string();
    assert!(msg.contains("\"apps/v1\""), "{msg}");
    let msg = to_v1beta1(&json!({"kind": "X"})).unwrap_err().to_string();
    assert!(msg.contains("apiVersion"), "{msg}");

    let mut both = cell_v1beta2();
    both["spec"]["placement"]["clusters"] = json!([]);
    let msg = to_v1beta1(&both).unwrap_err().to_string();
    assert!(
        msg.contains("spec.placement.topologies and spec.placement.clusters"),
        "{msg}"
    );

    let mut not_list = cell_v1beta2();
    not_list["spec"]["placement"]["topologies"] = json!("rz00a");
    let msg = to_v1beta1(&not_list).unwrap_err().to_string();
    assert!(msg.contains("must be a list"), "{msg}");
}

#[test]
fn topology_annotation_alone_on_v1beta2_is_read_as_topology_type() {
    let mut v2 = cell_v1beta2();
    v2["spec"].as_object_mut().unwrap().remove("topologyType");
    v2["metadata"]["annotations"]["cellfed.io/topology-type"] = json!("cell");
    let v1 = to_v1beta1(&v2).unwrap();
    assert_eq!(v1["spec"]["placement"]["clusters"][0]["name"], "rz00a.ns");
    let back = to_v1beta2(&v1).unwrap();
    assert_eq!(back["spec"]["topologyType"], "cell");
    assert!(
        back["metadata"]["annotations"]
            .get("cellfed.io/topology-type")
            .is_none()
    );
}

/// Every combination of the parts conversion touches round-trips to the identical object.
#[test]
fn round_trip_holds_for_every_combination_of_fields() {
    let topology_types = [None, Some("cluster"), Some("cell")];
    let annotations = [None, Some(json!({"team": "blue"}))];
    let placements = [
        None,
        Some(json!({"topologies": []})),
        Some(json!({"topologies": [{"name": "rz00a"}], "clusterSelector": {}})),
        Some(json!({"clusterSelector": {"matchLabels": {"a": "b"}}})),
    ];
    let masks = [
        None,
        Some(json!({"topologies": [{"name": "rz00b"}]})),
        Some(json!({})),
    ];
    let overrides = [
        None,
        Some(
            json!([{"topologyName": "rz00a"}, {"topologyName": "rz00b", "clusterOverrides": [{"path": "/x"}]}]),
        ),
    ];
    let statuses = [
        None,
        Some(json!({"topologies": [{"name": "rz00a", "extra": 1}], "observedGeneration": 1})),
        Some(json!({"conditions": []})),
    ];
    let mut count = 0;
    for tt in &topology_types {
        for ann in &annotations {
            for placement in &placements {
                for mask in &masks {
                    for ov in &overrides {
                        for status in &statuses {
                            let mut obj = json!({
                                "apiVersion": "types.kubefed.io/v1beta2",
                                "kind": "FederatedSecret",
                                "metadata": {"name": "s", "namespace": "ns"},
                                "spec": {"template": {"data": {}}},
                            });
                            if let Some(a) = ann {
                                obj["metadata"]["annotations"] = a.clone();
                            }
                            if let Some(t) = tt {
                                obj["spec"]["topologyType"] = json!(t);
                            }
                            for (key, part) in [
                                ("placement", placement),
                                ("placementMask", mask),
                                ("overrides", ov),
                            ] {
                                if let Some(p) = part {
                                    obj["spec"][key] = p.clone();
                                }
                            }
                            if let Some(s) = status {
                                obj["status"] = s.clone();
                            }
                            let v1 = to_v1beta1(&obj).unwrap();
                            assert_eq!(to_v1beta2(&v1).unwrap(), obj, "v2→v1→v2 of {obj}");
                            assert_eq!(
                                to_v1beta1(&to_v1beta2(&v1).unwrap()).unwrap(),
                                v1,
                                "v1→v2→v1 of {v1}"
                            );
                            if *tt == Some("cell")
                                && placement.as_ref().is_some_and(|p| {
                                    p.get("topologies").is_some_and(|t| {
                                        t.as_array().is_some_and(|a| !a.is_empty())
                                    })
                                })
                            {
                                assert_eq!(
                                    v1["spec"]["placement"]["clusters"][0]["name"],
                                    "rz00a.ns"
                                );
                            }
                            count += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(count, 3 * 2 * 4 * 3 * 2 * 3);
}

#[test]
fn empty_annotation_map_is_normalised_like_the_apiserver_does() {
    // Kubernetes never stores `annotations: {}` (ObjectMeta omits empty maps); conversion removes a
    // map it emptied, so this one v1beta2 shape comes back without the empty map.
    let v2 = json!({
        "apiVersion": "types.kubefed.io/v1beta2", "kind": "FederatedSecret",
        "metadata": {"name": "s", "namespace": "ns", "annotations": {}},
        "spec": {"topologyType": "cell"},
    });
    let back = to_v1beta2(&to_v1beta1(&v2).unwrap()).unwrap();
    assert!(back["metadata"].get("annotations").is_none());
    assert_eq!(back["spec"], v2["spec"]);
}
