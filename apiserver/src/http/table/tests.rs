#![allow(clippy::unwrap_used)]
//! Tables for each kind from small YAML fixtures: column names and cell values.

use super::*;

const NOW: &str = "2026-01-10T12:00:00Z";

fn table(group: &str, kind: &str, yaml: &str) -> Value {
    let item: Value = serde_yaml::from_str(yaml).unwrap();
    to_table(
        &TableSpec::Builtin { group, kind },
        &[item],
        json!({"resourceVersion": "7"}),
        IncludeObject::Metadata,
        NOW,
    )
}

fn names(t: &Value, priority: i64) -> Vec<String> {
    t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["priority"] == priority)
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn cells(t: &Value) -> Vec<Value> {
    t["rows"][0]["cells"].as_array().unwrap().clone()
}

const META: &str =
    "metadata: {name: x, namespace: ns, creationTimestamp: '2026-01-10T11:56:58Z'}\n";

#[test]
fn deployment_ready_uptodate_available_and_wide() {
    let t = table(
        "apps",
        "Deployment",
        &format!(
            "{META}spec:\n  replicas: 3\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    spec:\n      containers: [{{name: nginx, image: 'nginx:1.25'}}, {{name: log, image: busybox}}]\nstatus: {{readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2}}\n"
        ),
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["metadata"]["resourceVersion"], "7");
    assert_eq!(
        names(&t, 0),
        ["Name", "Ready", "Up-to-date", "Available", "Age"]
    );
    assert_eq!(names(&t, 1), ["Containers", "Images", "Selector"]);
    assert_eq!(
        cells(&t),
        vec![
            json!("x"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("3m2s"),
            json!("nginx,log"),
            json!("nginx:1.25,busybox"),
            json!("app=web")
        ]
    );
    let obj = &t["rows"][0]["object"];
    assert_eq!(obj["kind"], "PartialObjectMetadata");
    assert_eq!(obj["metadata"]["name"], "x");
    assert!(obj.get("spec").is_none());
}

#[test]
fn service_columns() {
    let t = table(
        "",
        "Service",
        &format!(
            "{META}spec: {{type: NodePort, clusterIP: 10.0.0.5, selector: {{app: web}}, ports: [{{port: 80, nodePort: 30080}}, {{port: 53, protocol: UDP}}]}}\n"
        ),
    );
    assert_eq!(
        names(&t, 0),
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age"
        ]
    );
    assert_eq!(
        cells(&t)[1..],
        [
            json!("NodePort"),
            json!("10.0.0.5"),
            json!("<none>"),
            json!("80:30080/TCP,53/UDP"),
            json!("3m2s"),
            json!("app=web")
        ]
    );
    let lb = table(
        "",
        "Service",
        &format!("{META}spec: {{type: LoadBalancer, clusterIP: 10.0.0.6}}\n"),
    );
    assert_eq!(cells(&lb)[3], "<pending>");
}

#[test]
fn namespace_configmap_secret_serviceaccount() {
    let t = table(
        "",
        "Namespace",
        &format!("{META}status: {{phase: Active}}\n"),
    );
    assert_eq!(names(&t, 0), ["Name", "Status", "Age"]);
    assert_eq!(cells(&t), [json!("x"), json!("Active"), json!("3m2s")]);
    let t = table(
        "",
        "ConfigMap",
        &format!("{META}data: {{a: '1', b: '2'}}\nbinaryData: {{c: AA==}}\n"),
    );
    assert_eq!(names(&t, 0), ["Name", "Data", "Age"]);
    assert_eq!(cells(&t)[1], 3);
    let t = table(
        "",
        "Secret",
        &format!("{META}type: Opaque\ndata: {{a: YQ==}}\n"),
    );
    assert_eq!(names(&t, 0), ["Name", "Type", "Data", "Age"]);
    assert_eq!(cells(&t)[1..3], [json!("Opaque"), json!(1)]);
    let t = table(
        "",
        "ServiceAccount",
        &format!("{META}secrets: [{{name: s}}]\n"),
    );
    assert_eq!(names(&t, 0), ["Name", "Secrets", "Age"]);
    assert_eq!(cells(&t)[1], 1);
}

#[test]
fn pod_status_ready_restarts() {
    let t = table(
        "",
        "Pod",
        &format!(
            "{META}spec: {{nodeName: n1, containers: [{{name: a}}, {{name: b}}]}}\nstatus:\n  phase: Running\n  podIP: 10.1.0.4\n  containerStatuses:\n  - {{name: a, ready: true, restartCount: 0, state: {{running: {{}}}}}}\n  - {{name: b, ready: false, restartCount: 2, state: {{waiting: {{reason: CrashLoopBackOff}}}}, lastState: {{terminated: {{finishedAt: '2026-01-10T11:59:00Z'}}}}}}\n"
        ),
    );
    assert_eq!(names(&t, 0), ["Name", "Ready", "Status", "Restarts", "Age"]);
    assert_eq!(
        cells(&t),
        [
            json!("x"),
            json!("1/2"),
            json!("CrashLoopBackOff"),
            json!("2 (60s ago)"),
            json!("3m2s"),
            json!("10.1.0.4"),
            json!("n1"),
            json!("<none>"),
            json!("<none>")
        ]
    );
}

#[test]
fn statefulset_daemonset_replicaset() {
    let t = table(
        "apps",
        "StatefulSet",
        &format!("{META}spec: {{replicas: 2}}\nstatus: {{readyReplicas: 1}}\n"),
    );
    assert_eq!(names(&t, 0), ["Name", "Ready", "Age"]);
    assert_eq!(cells(&t)[1], "1/2");
    let t = table(
        "apps",
        "DaemonSet",
        &format!(
            "{META}spec: {{template: {{spec: {{nodeSelector: {{os: linux}}}}}}}}\nstatus: {{desiredNumberScheduled: 3, currentNumberScheduled: 3, numberReady: 2, updatedNumberScheduled: 3, numberAvailable: 2}}\n"
        ),
    );
    assert_eq!(
        names(&t, 0),
        [
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Up-to-date",
            "Available",
            "Node Selector",
            "Age"
        ]
    );
    assert_eq!(
        cells(&t)[1..8],
        [
            json!(3),
            json!(3),
            json!(2),
            json!(3),
            json!(2),
            json!("os=linux"),
            json!("3m2s")
        ]
    );
    let t = table(
        "apps",
        "ReplicaSet",
        &format!("{META}spec: {{replicas: 2}}\nstatus: {{replicas: 2, readyReplicas: 2}}\n"),
    );
    assert_eq!(names(&t, 0), ["Name", "Desired", "Current", "Ready", "Age"]);
    assert_eq!(cells(&t)[1..4], [json!(2), json!(2), json!(2)]);
}

#[test]
fn job_status_completions_duration() {
    let t = table(
        "batch",
        "Job",
        &format!(
            "{META}spec: {{completions: 3}}\nstatus: {{succeeded: 3, startTime: '2026-01-10T11:57:00Z', completionTime: '2026-01-10T11:58:05Z', conditions: [{{type: Complete, status: 'True'}}]}}\n"
        ),
    );
    assert_eq!(
        names(&t, 0),
        ["Name", "Status", "Completions", "Duration", "Age"]
    );
    assert_eq!(
        cells(&t)[1..4],
        [json!("Complete"), json!("3/3"), json!("65s")]
    );
    let running = table(
        "batch",
        "Job",
        &format!("{META}status: {{startTime: '2026-01-10T11:00:00Z'}}\n"),
    );
    assert_eq!(
        cells(&running)[1..4],
        [json!("Running"), json!("0/1"), json!("60m")]
    );
}

#[test]
fn ingress_rbac_lease_webhooks_crd_event() {
    let t = table(
        "networking.k8s.io",
        "Ingress",
        &format!(
            "{META}spec: {{ingressClassName: nginx, rules: [{{host: a.example}}, {{host: b.example}}], tls: [{{hosts: [a.example]}}]}}\nstatus: {{loadBalancer: {{ingress: [{{ip: 1.2.3.4}}]}}}}\n"
        ),
    );
    assert_eq!(
        names(&t, 0),
        ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    );
    assert_eq!(
        cells(&t)[1..5],
        [
            json!("nginx"),
            json!("a.example,b.example"),
            json!("1.2.3.4"),
            json!("80, 443")
        ]
    );

    let t = table("rbac.authorization.k8s.io", "ClusterRole", META);
    assert_eq!(names(&t, 0), ["Name", "Created At"]);
    assert_eq!(t["columnDefinitions"][1]["type"], "date");
    assert_eq!(cells(&t)[1], "2026-01-10T11:56:58Z");

    let t = table(
        "rbac.authorization.k8s.io",
        "RoleBinding",
        &format!(
            "{META}roleRef: {{kind: Role, name: reader}}\nsubjects: [{{kind: User, name: alice}}, {{kind: ServiceAccount, name: bot, namespace: ci}}]\n"
        ),
    );
    assert_eq!(names(&t, 0), ["Name", "Role", "Age"]);
    assert_eq!(names(&t, 1), ["Users", "Groups", "ServiceAccounts"]);
    assert_eq!(
        cells(&t)[1..],
        [
            json!("Role/reader"),
            json!("3m2s"),
            json!("alice"),
            json!(""),
            json!("ci/bot")
        ]
    );

    let t = table(
        "coordination.k8s.io",
        "Lease",
        &format!("{META}spec: {{holderIdentity: ctrl-1}}\n"),
    );
    assert_eq!(names(&t, 0), ["Name", "Holder", "Age"]);
    assert_eq!(cells(&t)[1], "ctrl-1");

    let t = table(
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        &format!("{META}webhooks: [{{name: a}}, {{name: b}}]\n"),
    );
    assert_eq!(names(&t, 0), ["Name", "Webhooks", "Age"]);
    assert_eq!(cells(&t)[1], 2);

    let t = table("apiextensions.k8s.io", "CustomResourceDefinition", META);
    assert_eq!(names(&t, 0), ["Name", "Created At"]);

    let t = table(
        "",
        "Event",
        &format!(
            "{META}type: Warning\nreason: BackOff\nmessage: 'Back-off restarting'\ncount: 4\nfirstTimestamp: '2026-01-10T11:00:00Z'\nlastTimestamp: '2026-01-10T11:59:00Z'\ninvolvedObject: {{kind: Pod, name: web-1}}\n"
        ),
    );
    assert_eq!(
        names(&t, 0),
        ["Last Seen", "Type", "Reason", "Object", "Message"]
    );
    let c = cells(&t);
    assert_eq!(c[0], "60s (x4 over 60m)");
    assert_eq!(c[3], "pod/web-1");
    assert_eq!(c[9], "x");
}

#[test]
fn unknown_builtin_kind_gets_name_and_created_at() {
    let t = table("", "LimitRange", META);
    assert_eq!(names(&t, 0), ["Name", "Created At"]);
}

#[test]
fn hpa_reference_targets_and_replicas() {
    let t = table(
        "autoscaling",
        "HorizontalPodAutoscaler",
        &format!(
            "{META}spec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}\n  maxReplicas: 5\n  metrics:\n  - {{type: Resource, resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 80}}}}}}\n  - {{type: Resource, resource: {{name: memory, target: {{type: AverageValue, averageValue: 1Gi}}}}}}\n  - {{type: Pods, pods: {{metric: {{name: rps}}, target: {{type: AverageValue, averageValue: '10'}}}}}}\nstatus:\n  currentReplicas: 3\n  currentMetrics:\n  - {{type: Resource, resource: {{name: cpu, current: {{averageUtilization: 41, averageValue: 200m}}}}}}\n"
        ),
    );
    assert_eq!(
        names(&t, 0),
        [
            "Name",
            "Reference",
            "Targets",
            "MinPods",
            "MaxPods",
            "Replicas",
            "Age"
        ]
    );
    assert_eq!(
        cells(&t),
        [
            json!("x"),
            json!("Deployment/web"),
            json!("cpu: 41%/80%, memory: <unknown>/1Gi + 1 more..."),
            json!("<unset>"),
            json!(5),
            json!(3),
            json!("3m2s")
        ]
    );
    let t = table("autoscaling", "HorizontalPodAutoscaler", META);
    assert_eq!(cells(&t)[2], "<none>");
}

#[test]
fn pdb_pvc_netpol_priorityclass_storageclass() {
    let t = table(
        "policy",
        "PodDisruptionBudget",
        &format!("{META}spec: {{maxUnavailable: 25%}}\nstatus: {{disruptionsAllowed: 2}}\n"),
    );
    assert_eq!(
        names(&t, 0),
        [
            "Name",
            "Min Available",
            "Max Unavailable",
            "Allowed Disruptions",
            "Age"
        ]
    );
    assert_eq!(cells(&t)[1..4], [json!("N/A"), json!("25%"), json!(2)]);

    let pvc = "spec: {accessModes: [ReadWriteOnce], storageClassName: fast, resources: {requests: {storage: 1Gi}}}\n";
    let t = table("", "PersistentVolumeClaim", &format!("{META}{pvc}"));
    assert_eq!(
        cells(&t)[1..8],
        [
            json!("Pending"),
            json!(""),
            json!(""),
            json!(""),
            json!("fast"),
            json!("<unset>"),
            json!("3m2s")
        ]
    );
    assert_eq!(names(&t, 1), ["VolumeMode"]);
    let bound = "spec: {volumeName: pv-1, storageClassName: fast}\nstatus: {phase: Bound, accessModes: [ReadWriteOnce, ReadOnlyMany], capacity: {storage: 2Gi}}\n";
    let t = table("", "PersistentVolumeClaim", &format!("{META}{bound}"));
    assert_eq!(
        cells(&t)[1..5],
        [
            json!("Bound"),
            json!("pv-1"),
            json!("2Gi"),
            json!("RWO,ROX")
        ]
    );

    let t = table(
        "networking.k8s.io",
        "NetworkPolicy",
        &format!("{META}spec: {{podSelector: {{matchLabels: {{app: web}}}}}}\n"),
    );
    assert_eq!(cells(&t)[1], "app=web");
    let t = table(
        "networking.k8s.io",
        "NetworkPolicy",
        &format!("{META}spec: {{podSelector: {{}}}}\n"),
    );
    assert_eq!(cells(&t)[1], "<none>");

    let t = table(
        "scheduling.k8s.io",
        "PriorityClass",
        &format!("{META}value: 1000\n"),
    );
    assert_eq!(
        names(&t, 0),
        ["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"]
    );
    assert_eq!(
        cells(&t)[1..],
        [
            json!(1000),
            json!(false),
            json!("3m2s"),
            json!("PreemptLowerPriority")
        ]
    );

    let sc = "metadata: {name: std, creationTimestamp: '2026-01-10T11:56:58Z', annotations: {storageclass.kubernetes.io/is-default-class: 'true'}}\nprovisioner: csi.example.com\n";
    let t = table("storage.k8s.io", "StorageClass", sc);
    assert_eq!(
        cells(&t),
        [
            json!("std (default)"),
            json!("csi.example.com"),
            json!("Delete"),
            json!("Immediate"),
            json!(false),
            json!("3m2s")
        ]
    );
}

fn col(name: &str, type_: &str, path: &str, priority: i32) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        json_path: path.into(),
        priority,
        ..Default::default()
    }
}

#[test]
fn custom_resource_printer_columns() {
    let item: Value = serde_yaml::from_str(
        "metadata: {name: fd, creationTimestamp: '2026-01-10T10:00:00Z'}\nspec: {replicas: 3, placement: {clusters: [{name: c1}, {name: c2}]}}\nstatus: {conditions: [{type: Ready, status: 'True', lastTransitionTime: '2026-01-10T11:59:30Z'}]}\n",
    )
    .unwrap();
    let cols = [
        col("Replicas", "integer", ".spec.replicas", 0),
        col(
            "Ready",
            "string",
            ".status.conditions[?(@.type==\"Ready\")].status",
            0,
        ),
        col("First", "string", ".spec.placement.clusters[0].name", 1),
        col(
            "Since",
            "date",
            ".status.conditions[0].lastTransitionTime",
            0,
        ),
        col("Missing", "string", ".spec.nothing", 0),
        col("Age", "date", ".metadata.creationTimestamp", 0),
    ];
    let t = to_table(
        &TableSpec::Custom(&cols),
        std::slice::from_ref(&item),
        json!({}),
        IncludeObject::Object,
        NOW,
    );
    assert_eq!(
        names(&t, 0),
        ["Name", "Replicas", "Ready", "Since", "Missing", "Age"]
    );
    assert_eq!(names(&t, 1), ["First"]);
    assert_eq!(
        cells(&t),
        [
            json!("fd"),
            json!(3),
            json!("True"),
            json!("c1"),
            json!("30s"),
            Value::Null,
            json!("120m")
        ]
    );
    assert_eq!(t["rows"][0]["object"], item);

    // No printer columns: kube serves Age.
    let t = to_table(
        &TableSpec::Custom(&[]),
        &[item],
        json!({}),
        IncludeObject::None,
        NOW,
    );
    assert_eq!(names(&t, 0), ["Name", "Age"]);
    assert_eq!(t["columnDefinitions"][1]["type"], "date");
    assert_eq!(cells(&t), [json!("fd"), json!("120m")]);
    assert_eq!(t["rows"][0]["object"], Value::Null);
}

#[test]
fn printer_columns_from_crd_version() {
    let v = json!({"name": "v1beta1", "additionalPrinterColumns": [
        {"name": "Ready", "type": "string", "jsonPath": ".status.ready", "priority": 1, "description": "d"}
    ]});
    let cols = PrinterColumn::for_crd_version(&v);
    assert_eq!(
        cols,
        vec![PrinterColumn {
            name: "Ready".into(),
            type_: "string".into(),
            format: String::new(),
            description: "d".into(),
            priority: 1,
            json_path: ".status.ready".into()
        }]
    );
}

#[test]
fn csr_controller_revision_csi_driver() {
    let t = table(
        "certificates.k8s.io",
        "CertificateSigningRequest",
        &format!(
            "{META}spec: {{signerName: kubernetes.io/kube-apiserver-client, username: alice, expirationSeconds: 86400}}\nstatus: {{conditions: [{{type: Approved, status: 'True'}}], certificate: Zm9v}}\n"
        ),
    );
    assert_eq!(
        names(&t, 0),
        [
            "Name",
            "Age",
            "SignerName",
            "Requestor",
            "RequestedDuration",
            "Condition"
        ]
    );
    assert_eq!(
        cells(&t)[2..],
        [
            json!("kubernetes.io/kube-apiserver-client"),
            json!("alice"),
            json!("24h"),
            json!("Approved,Issued")
        ]
    );

    let t = table(
        "apps",
        "ControllerRevision",
        "metadata: {name: web-5d4b, creationTimestamp: '2026-01-10T11:56:58Z', ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, name: web, controller: true, uid: u}]}\nrevision: 2\n",
    );
    assert_eq!(cells(&t)[1..3], [json!("statefulset.apps/web"), json!(2)]);

    let t = table(
        "storage.k8s.io",
        "CSIDriver",
        &format!("{META}spec: {{}}\n"),
    );
    assert_eq!(
        cells(&t)[1..7],
        [
            json!(true),
            json!(false),
            json!(false),
            json!("<unset>"),
            json!(false),
            json!("Persistent")
        ]
    );
}

#[test]
fn admission_policies() {
    let t = table(
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        &format!(
            "{META}spec: {{paramKind: {{apiVersion: v1, kind: ConfigMap}}, validations: [{{expression: 'true'}}]}}\n"
        ),
    );
    assert_eq!(names(&t, 0), ["Name", "Validations", "ParamKind", "Age"]);
    assert_eq!(cells(&t)[1..3], [json!(1), json!("v1/ConfigMap")]);
    let t = table(
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        &format!("{META}spec: {{policyName: p, paramRef: {{name: limits}}}}\n"),
    );
    assert_eq!(cells(&t)[1..3], [json!("p"), json!("*/limits")]);
}
