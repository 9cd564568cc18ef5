//! Everything the module writes must be valid for kube's typed API: each defaulted object and
//! each simulated status round-trips through k8s-openapi's structs without losing a field (an
//! unknown or misspelt field would be dropped, a wrongly typed one would fail to decode).

use super::{Allocator, SimConfig, apply_defaults, next_status};
use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

fn round_trips<T: Serialize + DeserializeOwned>(obj: &Value) {
    let typed: T = serde_json::from_value(obj.clone()).unwrap_or_else(|e| panic!("{e}: {obj:#}"));
    assert_eq!(&serde_json::to_value(typed).unwrap(), obj);
}

fn defaulted_and_converged(text: &str) -> Value {
    let mut obj: Value = serde_yaml::from_str(text).unwrap();
    let api_version = obj["apiVersion"].as_str().unwrap().to_owned();
    let kind = obj["kind"].as_str().unwrap().to_owned();
    apply_defaults(&api_version, &kind, &mut obj);
    let config = SimConfig { nodes: 2 };
    if let Some(status) = next_status(&api_version, &kind, &obj, "2026-01-01T00:00:00Z", &config) {
        obj["status"] = status;
    }
    obj
}

const POD_SPEC: &str = r#"{initContainers: [{name: i, image: busybox}], containers: [{name: app, image: "app:v1", ports: [{containerPort: 80}], readinessProbe: {httpGet: {port: 80}}, env: [{name: N, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}]}], volumes: [{name: s}, {name: c, configMap: {name: c}}]}"#;

#[test]
fn workloads_round_trip_through_typed_structs() {
    let deployment = format!(
        "{{apiVersion: apps/v1, kind: Deployment, metadata: {{name: web, generation: 1}}, spec: {{selector: {{matchLabels: {{a: b}}}}, template: {{metadata: {{labels: {{a: b}}}}, spec: {POD_SPEC}}}}}}}"
    );
    round_trips::<apps::Deployment>(&defaulted_and_converged(&deployment));
    for kind in ["StatefulSet", "DaemonSet", "ReplicaSet"] {
        let text = deployment.replace("Deployment", kind);
        let obj = defaulted_and_converged(&text);
        match kind {
            "StatefulSet" => round_trips::<apps::StatefulSet>(&obj),
            "DaemonSet" => round_trips::<apps::DaemonSet>(&obj),
            _ => round_trips::<apps::ReplicaSet>(&obj),
        }
    }
    let claims = defaulted_and_converged(
        "{apiVersion: apps/v1, kind: StatefulSet, metadata: {name: db}, spec: {selector: {matchLabels: {a: b}}, serviceName: db, template: {spec: {containers: [{name: db, image: pg}]}}, volumeClaimTemplates: [{metadata: {name: d}, spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}]}}",
    );
    round_trips::<apps::StatefulSet>(&claims);
    let job = format!(
        "{{apiVersion: batch/v1, kind: Job, metadata: {{name: pi, uid: u1}}, spec: {{completionMode: Indexed, completions: 2, template: {{spec: {POD_SPEC}}}}}}}"
    );
    round_trips::<batch::Job>(&defaulted_and_converged(&job));
}

#[test]
fn core_kinds_round_trip_through_typed_structs() {
    let mut alloc = Allocator::default();
    for text in [
        "{apiVersion: v1, kind: Service, metadata: {name: a}, spec: {selector: {a: b}, ports: [{port: 80}]}}",
        "{apiVersion: v1, kind: Service, metadata: {name: b}, spec: {type: LoadBalancer, externalTrafficPolicy: Local, sessionAffinity: ClientIP, ports: [{name: h, port: 80}, {name: u, port: 80, protocol: UDP}]}}",
        "{apiVersion: v1, kind: Service, metadata: {name: c}, spec: {clusterIP: None, ports: [{port: 80}]}}",
    ] {
        let mut svc = defaulted_and_converged(text);
        alloc.admit_service(None, &mut svc).unwrap();
        round_trips::<core::Service>(&svc);
    }
    round_trips::<core::Secret>(&defaulted_and_converged(
        "{apiVersion: v1, kind: Secret, metadata: {name: s}}",
    ));
    round_trips::<core::Namespace>(&defaulted_and_converged(
        "{apiVersion: v1, kind: Namespace, metadata: {name: n}}",
    ));
    assert_eq!(
        defaulted_and_converged("{apiVersion: v1, kind: Namespace, metadata: {name: n}}")["status"],
        json!({"phase": "Active"})
    );
}
