use super::{apply_defaults, image_pull_policy};
use serde_json::{Value, json};

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

fn defaulted(text: &str) -> Value {
    let mut obj = yaml(text);
    let api_version = obj["apiVersion"].as_str().unwrap().to_owned();
    let kind = obj["kind"].as_str().unwrap().to_owned();
    apply_defaults(&api_version, &kind, &mut obj);
    let once = obj.clone();
    apply_defaults(&api_version, &kind, &mut obj);
    assert_eq!(obj, once, "defaulting twice changed the object");
    obj
}

/// What `kubectl create -f` of the minimal Deployment reads back from a 1.32 cluster (status,
/// server-set metadata and the template's `creationTimestamp: null` left out).
#[test]
fn minimal_deployment_matches_kube() {
    let obj = defaulted(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports: [{containerPort: 80}]
"#,
    );
    let kube = yaml(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  progressDeadlineSeconds: 600
  replicas: 1
  revisionHistoryLimit: 10
  selector: {matchLabels: {app: web}}
  strategy:
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}
    type: RollingUpdate
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - image: nginx:1.27
        imagePullPolicy: IfNotPresent
        name: nginx
        ports: [{containerPort: 80, protocol: TCP}]
        resources: {}
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
"#,
    );
    assert_eq!(obj, kube);
}

#[test]
fn deployment_keeps_what_the_user_set() {
    let obj = defaulted(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 0
  strategy: {type: Recreate}
  revisionHistoryLimit: 2
  template:
    spec:
      restartPolicy: Always
      terminationGracePeriodSeconds: 0
      containers: [{name: c, image: app:v1, imagePullPolicy: Never}]
"#,
    );
    assert_eq!(obj["spec"]["replicas"], 0);
    assert_eq!(obj["spec"]["strategy"], json!({"type": "Recreate"}));
    assert_eq!(obj["spec"]["revisionHistoryLimit"], 2);
    let pod = &obj["spec"]["template"]["spec"];
    assert_eq!(pod["terminationGracePeriodSeconds"], 0);
    assert_eq!(pod["containers"][0]["imagePullPolicy"], "Never");
}

#[test]
fn image_pull_policy_follows_the_tag() {
    assert_eq!(image_pull_policy("nginx"), "Always");
    assert_eq!(image_pull_policy("nginx:latest"), "Always");
    assert_eq!(image_pull_policy("registry:5000/team/app"), "Always");
    assert_eq!(image_pull_policy("registry:5000/team/app:latest"), "Always");
    assert_eq!(
        image_pull_policy("registry:5000/team/app:1.2"),
        "IfNotPresent"
    );
    assert_eq!(image_pull_policy("nginx:1.27"), "IfNotPresent");
    assert_eq!(
        image_pull_policy("nginx@sha256:0123456789abcdef"),
        "IfNotPresent"
    );
}

#[test]
fn pod_spec_details_are_defaulted() {
    let obj = defaulted(
        r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs}
spec:
  template:
    spec:
      hostNetwork: true
      initContainers: [{name: init, image: busybox}]
      containers:
      - name: app
        image: app:v1
        ports: [{containerPort: 8080}]
        env: [{name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}]
        readinessProbe: {httpGet: {port: 8080}}
        livenessProbe: {tcpSocket: {port: 8080}, periodSeconds: 5}
      volumes:
      - {name: scratch}
      - {name: conf, configMap: {name: conf}}
      - {name: creds, secret: {secretName: creds, defaultMode: 256}}
"#,
    );
    assert_eq!(obj["spec"]["replicas"], 1);
    let pod = &obj["spec"]["template"]["spec"];
    assert_eq!(pod["initContainers"][0]["imagePullPolicy"], "Always");
    let app = &pod["containers"][0];
    assert_eq!(
        app["ports"][0],
        json!({"containerPort": 8080, "hostPort": 8080, "protocol": "TCP"})
    );
    assert_eq!(
        app["env"][0]["valueFrom"]["fieldRef"]["apiVersion"],
        json!("v1")
    );
    assert_eq!(
        app["readinessProbe"],
        json!({"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
               "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
               "failureThreshold": 3})
    );
    assert_eq!(app["livenessProbe"]["periodSeconds"], 5);
    assert_eq!(pod["volumes"][0]["emptyDir"], json!({}));
    assert_eq!(pod["volumes"][1]["configMap"]["defaultMode"], 420);
    assert_eq!(pod["volumes"][2]["secret"]["defaultMode"], 256);
}

#[test]
fn stateful_set_defaults() {
    let obj = defaulted(
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  template: {spec: {containers: [{name: db, image: postgres:16}]}}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"#,
    );
    let spec = &obj["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        spec["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    let claim = &spec["volumeClaimTemplates"][0];
    assert_eq!(claim["apiVersion"], "v1");
    assert_eq!(claim["kind"], "PersistentVolumeClaim");
    assert_eq!(claim["spec"]["volumeMode"], "Filesystem");
    assert_eq!(claim["status"], json!({"phase": "Pending"}));

    let on_delete = defaulted(
        "{apiVersion: apps/v1, kind: StatefulSet, metadata: {name: x}, spec: {updateStrategy: {type: OnDelete}}}",
    );
    assert_eq!(
        on_delete["spec"]["updateStrategy"],
        json!({"type": "OnDelete"})
    );
}

#[test]
fn daemon_set_defaults() {
    let obj = defaulted(
        "{apiVersion: apps/v1, kind: DaemonSet, metadata: {name: agent}, spec: {template: {spec: {containers: [{name: a, image: agent:1}]}}}}",
    );
    assert_eq!(
        obj["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(obj["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(obj["spec"]["template"]["spec"]["restartPolicy"], "Always");
}

#[test]
fn job_defaults_and_generated_selector() {
    let job = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: pi, namespace: default}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: pi, image: perl:5.34.0, command: [perl]}]
"#;
    let before_uid = defaulted(job);
    let spec = &before_uid["spec"];
    assert_eq!(spec["completions"], 1);
    assert_eq!(spec["parallelism"], 1);
    assert_eq!(spec["backoffLimit"], 6);
    assert_eq!(spec["completionMode"], "NonIndexed");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
    assert!(spec.get("selector").is_none(), "no uid, no selector yet");

    let mut with_uid = yaml(job);
    with_uid["metadata"]["uid"] = json!("c9948307-e56d-4b5d-8302-ae2d7b7da67c");
    let text = serde_yaml::to_string(&with_uid).unwrap();
    let obj = defaulted(&text);
    let uid = "c9948307-e56d-4b5d-8302-ae2d7b7da67c";
    assert_eq!(
        obj["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    let labels = json!({
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": uid,
        "job-name": "pi",
    });
    assert_eq!(obj["spec"]["template"]["metadata"]["labels"], labels);
    assert_eq!(obj["metadata"]["labels"], labels);
}

#[test]
fn job_with_parallelism_only_and_failure_policy() {
    let obj = defaulted(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: work, labels: {team: a}}
spec:
  parallelism: 3
  manualSelector: true
  selector: {matchLabels: {run: work}}
  podFailurePolicy:
    rules: [{action: Ignore, onPodConditions: [{type: DisruptionTarget}]}]
  template:
    metadata: {labels: {run: work}}
    spec: {restartPolicy: Never, containers: [{name: w, image: w:1}]}
"#,
    );
    assert!(obj["spec"].get("completions").is_none());
    assert_eq!(obj["spec"]["parallelism"], 3);
    assert_eq!(obj["spec"]["podReplacementPolicy"], "Failed");
    assert_eq!(
        obj["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"],
        "True"
    );
    assert_eq!(obj["metadata"]["labels"], json!({"team": "a"}));
    assert_eq!(
        obj["spec"]["template"]["metadata"]["labels"],
        json!({"run": "work"})
    );
}

#[test]
fn service_defaults_and_target_port() {
    let obj = defaulted(
        r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80}
  - {name: https, port: 443, targetPort: https}
  - {name: dns, port: 53, protocol: UDP, targetPort: 0}
"#,
    );
    let kube = yaml(
        r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  internalTrafficPolicy: Cluster
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: 80}
  - {name: https, port: 443, protocol: TCP, targetPort: https}
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  selector: {app: web}
  sessionAffinity: None
  type: ClusterIP
status: {loadBalancer: {}}
"#,
    );
    assert_eq!(obj, kube);
}

#[test]
fn service_types_get_their_policies() {
    let lb = defaulted(
        "{apiVersion: v1, kind: Service, metadata: {name: lb}, spec: {type: LoadBalancer, sessionAffinity: ClientIP, ports: [{port: 80}]}}",
    );
    assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(lb["spec"]["internalTrafficPolicy"], "Cluster");
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    assert_eq!(
        lb["spec"]["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 10800}})
    );

    let node_port = defaulted(
        "{apiVersion: v1, kind: Service, metadata: {name: np}, spec: {type: NodePort, ports: [{port: 80}]}}",
    );
    assert_eq!(node_port["spec"]["externalTrafficPolicy"], "Cluster");
    assert!(
        node_port["spec"]
            .get("allocateLoadBalancerNodePorts")
            .is_none()
    );

    let cluster_ip = defaulted(
        "{apiVersion: v1, kind: Service, metadata: {name: c}, spec: {ports: [{port: 80}]}}",
    );
    assert!(cluster_ip["spec"].get("externalTrafficPolicy").is_none());

    let external = defaulted(
        "{apiVersion: v1, kind: Service, metadata: {name: e}, spec: {type: ExternalName, externalName: example.com}}",
    );
    assert!(external["spec"].get("internalTrafficPolicy").is_none());
    assert_eq!(external["spec"]["sessionAffinity"], "None");
}

#[test]
fn secret_type_and_untouched_kinds() {
    let secret = defaulted("{apiVersion: v1, kind: Secret, metadata: {name: s}, data: {}}");
    assert_eq!(secret["type"], "Opaque");
    let tls =
        defaulted("{apiVersion: v1, kind: Secret, metadata: {name: s}, type: kubernetes.io/tls}");
    assert_eq!(tls["type"], "kubernetes.io/tls");
    for text in [
        "{apiVersion: v1, kind: ConfigMap, metadata: {name: c}, data: {a: b}}",
        "{apiVersion: v1, kind: ServiceAccount, metadata: {name: sa}}",
        "{apiVersion: types.kubefed.io/v1beta1, kind: FederatedDeployment, metadata: {name: f}, spec: {}}",
    ] {
        assert_eq!(defaulted(text), yaml(text));
    }
}

#[test]
fn namespace_gets_its_name_label_and_finalizer() {
    let ns = defaulted(
        "{apiVersion: v1, kind: Namespace, metadata: {name: team-a, labels: {kubernetes.io/metadata.name: other, cellfed.io/tenant: t1}}}",
    );
    assert_eq!(
        ns["metadata"]["labels"],
        json!({"kubernetes.io/metadata.name": "team-a", "cellfed.io/tenant": "t1"})
    );
    assert_eq!(ns["spec"], json!({"finalizers": ["kubernetes"]}));
    assert_eq!(ns["status"], json!({"phase": "Active"}));
}
