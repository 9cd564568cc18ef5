//! Round trips JSON → protobuf → JSON over many kinds, and cross-checks against the prost
//! messages of k8s-pb (an independent encoder and decoder of the same wire format).

use http::{HeaderMap, HeaderValue, header};
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message as _;
use serde_json::{Value, json};

use super::descriptor::TABLE;
use super::special::{go_duration, parse_go_duration};
use super::*;

fn round_trip(obj: Value) {
    let bytes = encode(&obj).unwrap_or_else(|| panic!("{} encodes", obj["kind"]));
    assert!(bytes.starts_with(MAGIC));
    let back = decode(&bytes).unwrap_or_else(|e| panic!("{} decodes: {}", obj["kind"], e.message));
    assert_eq!(back, obj, "{} round trip", obj["kind"]);
}

/// The raw object bytes inside an envelope we wrote.
fn raw_of(bytes: &[u8]) -> Vec<u8> {
    Unknown::decode(&bytes[4..]).unwrap().raw.unwrap()
}

fn envelope_of(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let u = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        ..Default::default()
    };
    let mut out = MAGIC.to_vec();
    out.extend(u.encode_to_vec());
    out
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
            "creationTimestamp": "2024-05-01T10:20:30Z", "generation": 2, "uid": "u-1",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-2", "controller": true}],
            "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1",
                "time": "2024-05-01T10:20:30Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "progressDeadlineSeconds": 600,
            "paused": false,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "hostIPC": true,
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{
                        "name": "web", "image": "nginx:1.27",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "env": [{"name": "A", "value": "1"}, {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "initialDelaySeconds": 3, "periodSeconds": 10},
                        "readinessProbe": {"tcpSocket": {"port": "http"}},
                        "securityContext": {"allowPrivilegeEscalation": false, "runAsUser": 0, "capabilities": {"drop": ["ALL"]}}
                    }]
                }
            }
        },
        "status": {"replicas": 1, "conditions": [{"type": "Available", "status": "True", "lastUpdateTime": "2024-05-01T10:20:31Z", "reason": "MinimumReplicasAvailable"}]}
    })
}

#[test]
fn round_trips_over_many_kinds() {
    round_trip(deployment());
    round_trip(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "type": "Opaque", "data": {"k": "AAEC/w==", "empty": ""}, "immutable": true}),
    );
    round_trip(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"a": "1"}, "binaryData": {"b": "aGk="}}),
    );
    round_trip(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
        "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1", "fd00::1"],
            "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack", "externalIPs": ["1.2.3.4"],
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                      {"name": "named", "port": 443, "targetPort": "https"}]},
        "status": {"loadBalancer": {}}}),
    );
    round_trip(
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "h", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300, "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]}}}}),
    );
    round_trip(
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
        "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 0, "suspend": false,
            "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "date"]}]}}}}},
        "status": {"lastScheduleTime": "2024-01-02T03:04:05Z"}}),
    );
    round_trip(
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"},
        "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}}),
    );
    round_trip(
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"},
        "spec": {"maxUnavailable": 1}}),
    );
    round_trip(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
                  {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]}),
    );
    round_trip(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb"},
        "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}}),
    );
    round_trip(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"hostIPC": true, "hostPID": true, "hostNetwork": false, "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]},
            "containers": [{"name": "c", "image": "i",
                "env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user", "optional": false}}}],
                "envFrom": [{"configMapRef": {"name": "cfg"}}],
                "volumeMounts": [{"name": "v", "mountPath": "/etc/v", "readOnly": true}]}],
            "volumes": [{"name": "v", "configMap": {"name": "cfg", "defaultMode": 420, "items": [{"key": "a", "path": "a.txt"}]}},
                        {"name": "p", "projected": {"sources": [{"secret": {"name": "s"}}]}},
                        {"name": "e", "emptyDir": {"sizeLimit": "1Gi"}}],
            "overhead": {"cpu": "10m"}},
        "status": {"podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}], "hostIPs": [{"ip": "192.0.2.1"}],
            "startTime": "2024-01-01T00:00:00Z"}}),
    );
    round_trip(
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"},
        "eventTime": "2024-01-01T00:00:00.123456Z", "reportingController": "x", "reportingInstance": "y",
        "action": "Create", "reason": "Created", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "p"}, "series": {"count": 2, "lastObservedTime": "2024-01-01T00:00:01.000001Z"}}),
    );
    round_trip(
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
        "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15, "renewTime": "2024-01-01T00:00:00.500000Z"}}),
    );
    round_trip(
        json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "cr"},
        "revision": 3, "data": {"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}}}),
    );
    // list items carry no apiVersion and kind, as in kube's lists
    let mut item = deployment();
    item.as_object_mut()
        .map(|o| (o.remove("apiVersion"), o.remove("kind")));
    round_trip(json!({"apiVersion": "apps/v1", "kind": "DeploymentList",
        "metadata": {"resourceVersion": "12", "continue": "abc"}, "items": [item]}));
    round_trip(
        json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
        "message": "nope", "reason": "NotFound", "code": 404,
        "details": {"name": "x", "kind": "pods", "causes": [{"reason": "FieldValueInvalid", "field": "spec"}]}}),
    );
    round_trip(
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"},
        "spec": {"replicas": 5}, "status": {"replicas": 3, "selector": "app=web"}}),
    );
    round_trip(
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": "t"}, "status": {"authenticated": true,
            "user": {"username": "u", "groups": ["g"], "extra": {"scopes": ["a", "b"]}}}}),
    );
    round_trip(
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "required": ["spec"],
                    "properties": {
                        "spec": {"type": "object", "properties": {
                            "size": {"x-kubernetes-int-or-string": true, "default": 3},
                            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "free": {"type": "object", "additionalProperties": false},
                            "ratio": {"type": "number", "maximum": 1.5}}}}}}}]}}),
    );
}

#[test]
fn json_names_are_the_go_names() {
    let names = |message: &str| -> Vec<String> {
        let i = TABLE.named(message).unwrap_or_else(|| panic!("{message}"));
        TABLE.messages[i]
            .fields
            .iter()
            .map(|f| f.json.clone())
            .collect()
    };
    let pod_spec = names("api.core.v1.PodSpec");
    for n in [
        "hostIPC",
        "hostPID",
        "hostNetwork",
        "dnsConfig",
        "setHostnameAsFQDN",
    ] {
        assert!(pod_spec.iter().any(|x| x == n), "{n} in {pod_spec:?}");
    }
    let status = names("api.core.v1.PodStatus");
    assert!(status.iter().any(|x| x == "podIPs"), "{status:?}");
    let svc = names("api.core.v1.ServiceSpec");
    for n in [
        "clusterIPs",
        "ipFamilies",
        "externalIPs",
        "clusterIP",
        "loadBalancerIP",
    ] {
        assert!(svc.iter().any(|x| x == n), "{n} in {svc:?}");
    }
    let schema = names("apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaProps");
    for n in [
        "$ref",
        "$schema",
        "x-kubernetes-int-or-string",
        "x-kubernetes-list-map-keys",
    ] {
        assert!(schema.iter().any(|x| x == n), "{n} in {schema:?}");
    }
}

/// Our encoding read by prost, and prost's encoding (as Go writes it: every non-pointer field,
/// empty strings included) read by us.
#[test]
fn agrees_with_k8s_pb_prost_messages() {
    let ours = encode(&deployment()).unwrap();
    let d = apps::Deployment::decode(raw_of(&ours).as_slice()).unwrap();
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(0));
    let ru = spec.strategy.unwrap().rolling_update.unwrap();
    assert_eq!(ru.max_surge.unwrap().str_val.as_deref(), Some("25%"));
    assert_eq!(ru.max_unavailable.unwrap().int_val, Some(1));
    let pod = spec.template.unwrap().spec.unwrap();
    assert_eq!(pod.host_ipc, Some(true));
    let c = &pod.containers[0];
    let limits = &c.resources.as_ref().unwrap().limits;
    assert_eq!(limits["cpu"].string.as_deref(), Some("500m"));
    let probe = c.liveness_probe.as_ref().unwrap();
    let port = probe
        .handler
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap()
        .port
        .as_ref()
        .unwrap();
    assert_eq!(port.int_val, Some(8080));
    let meta = d.metadata.unwrap();
    assert_eq!(meta.creation_timestamp.unwrap().seconds, Some(1714558830));

    // the other way: what kubectl's Go client writes for `create deployment`
    let theirs = apps::Deployment {
        metadata: Some(meta::ObjectMeta {
            name: Some("web".into()),
            generate_name: Some(String::new()),
            namespace: Some(String::new()),
            labels: [("app".to_string(), "web".to_string())].into(),
            creation_timestamp: Some(meta::Time::default()),
            ..Default::default()
        }),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(1),
            selector: Some(meta::LabelSelector {
                match_labels: [("app".to_string(), "web".to_string())].into(),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta::default()),
                spec: Some(core::PodSpec {
                    containers: vec![core::Container {
                        name: Some("nginx".into()),
                        image: Some("nginx".into()),
                        image_pull_policy: Some(String::new()),
                        resources: Some(core::ResourceRequirements::default()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy::default()),
            min_ready_seconds: Some(0),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus::default()),
    };
    let obj = decode(&envelope_of(
        "apps/v1",
        "Deployment",
        theirs.encode_to_vec(),
    ))
    .unwrap();
    assert_eq!(
        obj,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 1, "minReadySeconds": 0, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {}, "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}},
                "strategy": {}},
            "status": {}})
    );

    let secret = core::Secret {
        metadata: Some(meta::ObjectMeta {
            name: Some("s".into()),
            ..Default::default()
        }),
        data: [("k".to_string(), vec![0u8, 1, 2, 255])].into(),
        r#type: Some("Opaque".into()),
        ..Default::default()
    };
    let obj = decode(&envelope_of("v1", "Secret", secret.encode_to_vec())).unwrap();
    assert_eq!(obj["data"]["k"], "AAEC/w==");
    let back = core::Secret::decode(raw_of(&encode(&obj).unwrap()).as_slice()).unwrap();
    assert_eq!(back, secret);

    let pdb = k8s_pb::api::policy::v1::PodDisruptionBudgetSpec {
        min_available: Some(IntOrString {
            r#type: Some(1),
            int_val: Some(0),
            str_val: Some("50%".into()),
        }),
        ..Default::default()
    };
    let wrapped = k8s_pb::api::policy::v1::PodDisruptionBudget {
        spec: Some(pdb),
        ..Default::default()
    };
    let obj = decode(&envelope_of(
        "policy/v1",
        "PodDisruptionBudget",
        wrapped.encode_to_vec(),
    ))
    .unwrap();
    assert_eq!(obj["spec"]["minAvailable"], "50%");
}

#[test]
fn malformed_bodies_are_400_not_panics() {
    assert_eq!(decode(b"{}").unwrap_err().code, 400);
    assert_eq!(decode(b"k8s\0\x0a\xff").unwrap_err().code, 400);
    // a Deployment whose replicas field is length-delimited
    let e = decode(&envelope_of(
        "apps/v1",
        "Deployment",
        vec![0x12, 0x03, 0x0a, 0x01, 0x01],
    ))
    .unwrap_err();
    assert_eq!(e.code, 400);
    assert!(e.message.contains("spec: replicas"), "{}", e.message);
    let full = encode(&deployment()).unwrap();
    for cut in 1..full.len() {
        let _ = decode(&full[..cut]);
    }
    let mut raw = raw_of(&full);
    raw.truncate(raw.len() - 3);
    assert_eq!(
        decode(&envelope_of("apps/v1", "Deployment", raw))
            .unwrap_err()
            .code,
        400
    );
    // custom resources have no protobuf form
    let e = decode(&envelope_of("example.com/v1", "Widget", Vec::new())).unwrap_err();
    assert_eq!(e.code, 415);
    assert!(e.message.contains("Widget"), "{}", e.message);
}

#[test]
fn kinds_without_protobuf_form_stay_json() {
    assert!(
        encode(&json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {}})).is_none()
    );
    // a stored object that does not fit its message falls back to JSON
    assert!(encode(&json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": 1}})).is_none());
}

#[test]
fn durations_are_go_durations() {
    for (s, n) in [
        ("0s", 0),
        ("1h0m0s", 3_600_000_000_000),
        ("1m30s", 90_000_000_000),
        ("1.5s", 1_500_000_000),
        ("1.5ms", 1_500_000),
        ("2µs", 2_000),
        ("7ns", 7),
        ("-2s", -2_000_000_000),
    ] {
        assert_eq!(go_duration(n), s);
        assert_eq!(parse_go_duration(s), Some(n));
    }
    assert_eq!(parse_go_duration("90m"), Some(5_400_000_000_000));
    assert_eq!(parse_go_duration("1x"), None);
}

#[test]
fn accept_negotiation() {
    let prefers = |accept: &str| {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        preferred(&h)
    };
    assert!(prefers("application/vnd.kubernetes.protobuf, */*"));
    assert!(prefers(
        "application/vnd.kubernetes.protobuf,application/json"
    ));
    assert!(!prefers(
        "application/json, application/vnd.kubernetes.protobuf"
    ));
    assert!(!prefers(
        "application/json;q=0.9, application/vnd.kubernetes.protobuf;q=0.5"
    ));
    assert!(prefers(
        "application/json;q=0.5, application/vnd.kubernetes.protobuf"
    ));
    assert!(!prefers(
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    ));
    assert!(!prefers(
        "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io"
    ));
    assert!(!preferred(&HeaderMap::new()));
}

#[test]
fn the_table_parses() {
    let t = super::descriptor::Table::parse(include_str!("descriptors.txt")).unwrap();
    assert!(t.messages.len() > 1000);
    assert!(t.kind("apps/v1", "Deployment").is_some());
    assert!(t.kind("v1", "Status").is_some());
}

/// Every built-in resource the server serves has a protobuf form, and so does its list kind
/// (the access reviews are create-only and have none).
#[test]
fn every_served_builtin_kind_has_a_message() {
    for r in crate::registry::builtins() {
        let lists = (!r.is_review()).then(|| r.list_kind());
        for kind in std::iter::once(r.kind.clone()).chain(lists) {
            assert!(
                TABLE.kind(&r.api_version(), &kind).is_some(),
                "{} {kind}",
                r.api_version()
            );
        }
    }
}
