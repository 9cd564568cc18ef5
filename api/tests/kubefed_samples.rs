#![allow(clippy::unwrap_used, clippy::expect_used)]
//! KubeFed's own manifest shapes (example/sample1, config/, the chart, `kubefedctl join` output)
//! deserialize into the typed structs and serialize back without losing or adding a field.

use cellfed_api::federated::OverrideOp;
use cellfed_api::kubefed::{
    ConditionStatus, FederatedTypeConfig, KubeFedCluster, KubeFedConfig, ResourceAdoption,
    TlsValidation,
};
use cellfed_api::{FederatedResource, TopologyResource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Parses `yaml` as `T`, checks that it serializes back to the same JSON, returns the typed value.
fn round_trip<T: DeserializeOwned + Serialize>(yaml: &str) -> T {
    let original: Value = serde_yaml::from_str(yaml).unwrap();
    let typed: T = serde_json::from_value(original.clone()).unwrap();
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        back,
        original,
        "round trip changed the object:\n{}",
        serde_yaml::to_string(&back).unwrap()
    );
    typed
}

const FEDERATED_DEPLOYMENT: &str = r#"
apiVersion: types.kubefed.io/v1beta1
kind: FederatedDeployment
metadata:
  name: test-deployment
  namespace: test-namespace
spec:
  template:
    metadata:
      labels:
        app: nginx
    spec:
      replicas: 3
      selector:
        matchLabels:
          app: nginx
      template:
        metadata:
          labels:
            app: nginx
        spec:
          containers:
          - image: nginx
            name: nginx
  placement:
    clusters:
    - name: cluster2
    - name: cluster1
    clusterSelector:
      matchLabels:
        foo: bar
      matchExpressions:
      - key: region
        operator: In
        values: [us-east1, us-west1]
      - key: legacy
        operator: DoesNotExist
  overrides:
  - clusterName: cluster2
    clusterOverrides:
    - path: "/spec/replicas"
      value: 5
    - path: "/spec/template/spec/containers/0/image"
      value: "nginx:1.17.0-alpine"
    - path: "/metadata/annotations"
      op: "add"
      value:
        foo: bar
    - path: "/metadata/annotations/foo"
      op: "remove"
  retainReplicas: true
status:
  observedGeneration: 2
  conditions:
  - type: Propagation
    status: "True"
    lastTransitionTime: "2020-01-01T00:00:00Z"
    lastUpdateTime: "2020-01-01T00:00:01Z"
  clusters:
  - name: cluster1
    remoteStatus:
      availableReplicas: 3
      conditions: [{type: Available, status: "True"}]
  - name: cluster2
    status: ApplyOverridesFailed
"#;

#[test]
fn federated_deployment_sample_round_trips() {
    let fd: FederatedResource = round_trip(FEDERATED_DEPLOYMENT);
    assert_eq!(
        fd.spec.placement_clusters().unwrap(),
        ["cluster2", "cluster1"]
    );
    let selector = fd
        .spec
        .placement
        .as_ref()
        .unwrap()
        .cluster_selector
        .as_ref()
        .unwrap();
    assert_eq!(
        selector.match_expressions.as_ref().unwrap()[0].operator,
        "In"
    );
    let ops: Vec<_> = fd
        .spec
        .overrides_for("cluster2")
        .iter()
        .map(|o| o.op())
        .collect();
    assert_eq!(
        ops,
        [
            OverrideOp::Replace,
            OverrideOp::Replace,
            OverrideOp::Add,
            OverrideOp::Remove
        ]
    );
    assert!(fd.spec.overrides_for("cluster1").is_empty());
    assert_eq!(fd.spec.template.as_ref().unwrap()["spec"]["replicas"], 3);
    let status = fd.status.unwrap();
    assert_eq!(
        status.clusters[1].status.as_deref(),
        Some("ApplyOverridesFailed")
    );
    assert_eq!(
        status.clusters[0].remote_status.as_ref().unwrap()["availableReplicas"],
        3
    );
}

#[test]
fn federated_deployment_sample_converts_and_round_trips_in_v1beta2() {
    let v1: Value = serde_yaml::from_str(FEDERATED_DEPLOYMENT).unwrap();
    let v2 = cellfed_api::to_v1beta2(&v1).unwrap();
    let typed: TopologyResource = serde_json::from_value(v2.clone()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), v2);
    let topologies = typed
        .spec
        .placement
        .as_ref()
        .unwrap()
        .topologies
        .as_ref()
        .unwrap();
    assert_eq!(topologies[0].name, "cluster2");
    assert_eq!(typed.spec.overrides[0].topology_name, "cluster2");
    assert_eq!(typed.status.unwrap().topologies.len(), 2);
}

#[test]
fn federated_configmap_with_placement_mask_round_trips() {
    let fc: FederatedResource = round_trip(
        r#"
apiVersion: types.kubefed.io/v1beta1
kind: FederatedConfigMap
metadata: {name: test-configmap, namespace: test-namespace}
spec:
  template:
    data: {A: ala ma kota}
  placement:
    clusterSelector: {}
  placementMask:
    clusters: [{name: cluster1}]
status:
  rollout: {updated: 1, total: 2, summary: 1/2}
"#,
    );
    assert!(fc.spec.placement_clusters().is_none(), "selector placement");
    assert_eq!(fc.spec.mask_clusters().unwrap(), ["cluster1"]);
    assert!(!fc.status.unwrap().rollout.unwrap().complete());
}

#[test]
fn kubefed_cluster_round_trips() {
    let cluster: KubeFedCluster = round_trip(
        r#"
apiVersion: core.kubefed.io/v1beta1
kind: KubeFedCluster
metadata:
  name: cluster1
  namespace: kube-federation-system
spec:
  apiEndpoint: https://172.17.0.2:6443
  caBundle: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
  secretRef:
    name: cluster1-shfgk
  disabledTLSValidations: ["*"]
  proxyURL: http://proxy.example:3128
status:
  conditions:
  - type: Ready
    status: "True"
    lastProbeTime: "2019-05-28T15:51:41Z"
    lastTransitionTime: "2019-05-28T15:38:07Z"
    reason: ClusterReady
    message: /healthz responded with ok
  - type: Offline
    status: "False"
    lastProbeTime: "2019-05-28T15:51:41Z"
  region: us-west1
  zones: [us-west1-a, us-west1-b]
"#,
    );
    assert!(cluster.is_ready());
    assert_eq!(cluster.ready_status(), Some(ConditionStatus::True));
    assert_eq!(cluster.spec.disabled_tls_validations, [TlsValidation::All]);
    assert_eq!(
        cluster.spec.ca_bundle.as_ref().unwrap().0,
        b"-----BEGIN CERTIFICATE-----\n"
    );
    let minimal: KubeFedCluster = round_trip(
        r#"
apiVersion: core.kubefed.io/v1beta1
kind: KubeFedCluster
metadata: {name: cluster2, namespace: kube-federation-system}
spec:
  apiEndpoint: https://cluster2:6443
  secretRef: {name: cluster2-token}
"#,
    );
    assert!(!minimal.is_ready());
}

#[test]
fn federated_type_configs_round_trip() {
    let chart: FederatedTypeConfig = round_trip(
        r#"
apiVersion: core.kubefed.io/v1beta1
kind: FederatedTypeConfig
metadata:
  name: configmaps
spec:
  federatedType:
    group: types.kubefed.io
    kind: FederatedConfigMap
    pluralName: federatedconfigmaps
    scope: Namespaced
    version: v1beta1
  propagation: Enabled
  targetType:
    kind: ConfigMap
    pluralName: configmaps
    scope: Namespaced
    version: v1
"#,
    );
    assert!(chart.propagation_enabled());
    assert_eq!(chart.spec.target_type.api_version(), "v1");
    let full: FederatedTypeConfig = round_trip(
        r#"
apiVersion: core.kubefed.io/v1beta1
kind: FederatedTypeConfig
metadata:
  name: services
  namespace: kube-federation-system
spec:
  federatedType: {group: types.kubefed.io, kind: FederatedService, pluralName: federatedservices, scope: Namespaced, version: v1beta1}
  propagation: Disabled
  statusCollection: Enabled
  statusType: {group: types.kubefed.io, kind: FederatedServiceStatus, pluralName: federatedservicestatuses, scope: Namespaced, version: v1beta1}
  targetType: {kind: Service, pluralName: services, scope: Namespaced, version: v1}
  propagatedAnnotations: ["example.com/*", "team"]
status:
  observedGeneration: 1
  propagationController: NotRunning
  statusController: Running
"#,
    );
    assert!(!full.propagation_enabled());
    assert!(full.status_enabled());
    assert_eq!(full.spec.propagated_annotations, ["example.com/*", "team"]);
}

#[test]
fn kubefed_config_round_trips_and_resolves() {
    let config: KubeFedConfig = round_trip(
        r#"
apiVersion: core.kubefed.io/v1beta1
kind: KubeFedConfig
metadata:
  name: kubefed
  namespace: kube-federation-system
spec:
  scope: Cluster
  controllerDuration:
    availableDelay: 20s
    unavailableDelay: 60s
  leaderElect:
    leaseDuration: 1500ms
    renewDeadline: 1000ms
    resourceLock: configmaps
    retryPeriod: 500ms
  featureGates:
  - name: PushReconciler
    configuration: "Enabled"
  - name: RawResourceStatusCollection
    configuration: "Enabled"
  - name: SchedulerPreferences
    configuration: "Enabled"
  clusterHealthCheck:
    failureThreshold: 3
    period: 10s
    successThreshold: 1
    timeout: 3s
  syncController:
    maxConcurrentReconciles: 1
    adoptResources: Enabled
  statusController:
    maxConcurrentReconciles: 1
"#,
    );
    let s = config.spec.settings().unwrap();
    assert_eq!(
        s.leader_lease_duration,
        std::time::Duration::from_millis(1500)
    );
    assert!(s.adopt_resources);
    assert!(
        s.feature_gates
            .enabled(cellfed_api::features::FeatureGate::RawResourceStatusCollection)
    );
    assert_eq!(
        config
            .spec
            .sync_controller
            .as_ref()
            .unwrap()
            .adopt_resources,
        Some(ResourceAdoption::Enabled)
    );
    // The cellfed default serializes to a KubeFedConfig that parses back identically.
    let shipped = serde_yaml::to_string(&KubeFedConfig::cellfed_default()).unwrap();
    let reparsed: KubeFedConfig = round_trip(&shipped);
    assert!(shipped.contains("adoptResources: Disabled"), "{shipped}");
    assert!(!reparsed.spec.settings().unwrap().adopt_resources);
}

#[test]
fn cell_round_trips() {
    let cell: cellfed_api::Cell = round_trip(
        r#"
apiVersion: cellfed.io/v1alpha1
kind: Cell
metadata: {name: rz00a, namespace: tenant-a}
spec: {clusterName: member1, memberNamespace: tenant-a-rz00a}
status:
  derivedClusterName: rz00a.tenant-a
  conditions: [{type: Ready, status: "True", reason: ClusterReady}]
"#,
    );
    assert_eq!(cell.derived_cluster_name().unwrap(), "rz00a.tenant-a");
    assert_eq!(cell.member_namespace("tenant-a"), "tenant-a-rz00a");
}
