use super::{
    DEPLOYMENT_REVISION, SimConfig, SimWrites, apply_defaults, next_status, simulate, template_hash,
};
use serde_json::{Value, json};

const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-01-01T00:05:00Z";
const T2: &str = "2026-01-01T00:10:00Z";

fn object(text: &str) -> Value {
    let mut obj: Value = serde_yaml::from_str(text).unwrap();
    let (api_version, kind) = (
        obj["apiVersion"].as_str().unwrap().to_owned(),
        obj["kind"].as_str().unwrap().to_owned(),
    );
    apply_defaults(&api_version, &kind, &mut obj);
    obj
}

/// Runs the simulator the way the member loop does: write the status it returns, then ask
/// again and expect nothing.
fn converge(obj: &mut Value, now: &str, config: &SimConfig) -> Value {
    let (api_version, kind) = (
        obj["apiVersion"].as_str().unwrap().to_owned(),
        obj["kind"].as_str().unwrap().to_owned(),
    );
    let status = next_status(&api_version, &kind, obj, now, config).expect("a status to write");
    obj["status"] = status.clone();
    assert_eq!(
        next_status(&api_version, &kind, obj, T2, config),
        None,
        "a converged {kind} must not be written again"
    );
    status
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default, generation: 1}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: nginx, image: "nginx:1.27"}]}
"#;

#[test]
fn deployment_converges_like_the_deployment_controller() {
    let mut web = object(DEPLOYMENT);
    let status = converge(&mut web, T0, &SimConfig::default());
    let rs = format!("web-{}", template_hash(&web));
    assert_eq!(
        status,
        json!({
            "observedGeneration": 1,
            "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability.",
                 "lastUpdateTime": T0, "lastTransitionTime": T0},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": format!("ReplicaSet \"{rs}\" has successfully progressed."),
                 "lastUpdateTime": T0, "lastTransitionTime": T0},
            ],
        })
    );
}

#[test]
fn deployment_generation_change_is_observed() {
    let mut web = object(DEPLOYMENT);
    converge(&mut web, T0, &SimConfig::default());
    let old_hash = template_hash(&web);

    // Scale: new generation, same template, conditions untouched.
    web["spec"]["replicas"] = json!(5);
    web["metadata"]["generation"] = json!(2);
    let scaled = converge(&mut web, T1, &SimConfig::default());
    assert_eq!(scaled["observedGeneration"], 2);
    assert_eq!(scaled["availableReplicas"], 5);
    assert_eq!(scaled["conditions"][1]["lastUpdateTime"], T0);

    // New image: a new ReplicaSet progressed; the condition stayed True since T0.
    web["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    web["metadata"]["generation"] = json!(3);
    let rolled = converge(&mut web, T1, &SimConfig::default());
    assert_ne!(template_hash(&web), old_hash);
    let progressing = &rolled["conditions"][1];
    assert_eq!(rolled["observedGeneration"], 3);
    assert_eq!(progressing["lastUpdateTime"], T1);
    assert_eq!(progressing["lastTransitionTime"], T0);
    assert!(
        progressing["message"]
            .as_str()
            .unwrap()
            .contains(&template_hash(&web))
    );
}

#[test]
fn deployment_scaled_to_zero_and_paused() {
    let mut web = object(DEPLOYMENT);
    web["spec"]["replicas"] = json!(0);
    let status = converge(&mut web, T0, &SimConfig::default());
    assert!(status.get("replicas").is_none(), "kube omits zero counts");
    assert_eq!(status["conditions"][0]["status"], "True");

    web["spec"]["paused"] = json!(true);
    web["metadata"]["generation"] = json!(2);
    let paused = converge(&mut web, T1, &SimConfig::default());
    let progressing = &paused["conditions"][1];
    assert_eq!(progressing["status"], "Unknown");
    assert_eq!(progressing["reason"], "DeploymentPaused");
    assert_eq!(progressing["lastTransitionTime"], T1);
    assert_eq!(paused["conditions"][0]["lastTransitionTime"], T0);
}

#[test]
fn template_hash_looks_like_kubes() {
    let web = object(DEPLOYMENT);
    let hash = template_hash(&web);
    assert!((1..=10).contains(&hash.len()));
    assert!(hash.chars().all(|c| "4566789bcdf".contains(c)), "{hash}");
    assert_eq!(hash, template_hash(&web.clone()));
}

#[test]
fn stateful_set_converges() {
    let mut db = object(
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, generation: 4}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template: {metadata: {labels: {app: db}}, spec: {containers: [{name: db, image: "postgres:16"}]}}
"#,
    );
    let status = converge(&mut db, T0, &SimConfig::default());
    let revision = format!("db-{}", template_hash(&db));
    assert_eq!(
        status,
        json!({
            "observedGeneration": 4, "replicas": 2, "readyReplicas": 2, "currentReplicas": 2,
            "updatedReplicas": 2, "availableReplicas": 2, "collisionCount": 0,
            "currentRevision": revision, "updateRevision": revision,
        })
    );
    db["spec"]["template"]["spec"]["containers"][0]["image"] = json!("postgres:17");
    db["metadata"]["generation"] = json!(5);
    let updated = converge(&mut db, T1, &SimConfig::default());
    assert_eq!(updated["observedGeneration"], 5);
    assert_ne!(updated["updateRevision"], json!(revision));
    assert_eq!(updated["updateRevision"], updated["currentRevision"]);
}

#[test]
fn daemon_set_runs_on_every_simulated_node() {
    let mut agent = object(
        "{apiVersion: apps/v1, kind: DaemonSet, metadata: {name: agent, generation: 1}, spec: {template: {spec: {containers: [{name: a, image: 'agent:1'}]}}}}",
    );
    let status = converge(&mut agent, T0, &SimConfig { nodes: 3 });
    assert_eq!(
        status,
        json!({
            "observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
            "numberMisscheduled": 0, "numberReady": 3, "updatedNumberScheduled": 3,
            "numberAvailable": 3,
        })
    );
    // More nodes join: the status follows.
    let grown = next_status("apps/v1", "DaemonSet", &agent, T1, &SimConfig { nodes: 4 });
    assert_eq!(grown.unwrap()["numberReady"], 4);
}

#[test]
fn replica_set_converges() {
    let mut rs = object(
        "{apiVersion: apps/v1, kind: ReplicaSet, metadata: {name: rs, generation: 2}, spec: {replicas: 2, template: {spec: {containers: [{name: a, image: 'a:1'}]}}}}",
    );
    let status = converge(&mut rs, T0, &SimConfig::default());
    assert_eq!(
        status,
        json!({"observedGeneration": 2, "replicas": 2, "fullyLabeledReplicas": 2,
               "readyReplicas": 2, "availableReplicas": 2})
    );
    rs["spec"]["replicas"] = json!(0);
    let empty = converge(&mut rs, T1, &SimConfig::default());
    assert_eq!(empty, json!({"observedGeneration": 2, "replicas": 0}));
}

const JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: pi, uid: 3f1c, generation: 1}
spec:
  completions: 3
  template: {spec: {restartPolicy: Never, containers: [{name: pi, image: "perl:5.34.0"}]}}
"#;

#[test]
fn job_completes_with_kube_132_conditions() {
    let mut pi = object(JOB);
    let status = converge(&mut pi, T0, &SimConfig::default());
    let condition = |kind: &str| {
        json!({"type": kind, "status": "True", "reason": "CompletionsReached",
               "message": "Reached expected number of succeeded pods",
               "lastProbeTime": T0, "lastTransitionTime": T0})
    };
    assert_eq!(
        status,
        json!({
            "startTime": T0, "completionTime": T0, "succeeded": 3, "ready": 0, "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [condition("SuccessCriteriaMet"), condition("Complete")],
        })
    );
    // A finished Job never changes again, whatever happens to its spec.
    pi["spec"]["parallelism"] = json!(2);
    assert_eq!(
        next_status("batch/v1", "Job", &pi, T2, &SimConfig::default()),
        None
    );
}

#[test]
fn indexed_job_reports_completed_indexes() {
    let mut job = object(JOB);
    job["spec"]["completionMode"] = json!("Indexed");
    let status = converge(&mut job, T0, &SimConfig::default());
    assert_eq!(status["completedIndexes"], "0-2");
}

#[test]
fn suspended_job_waits_then_resumes() {
    let mut job = object(JOB);
    job["spec"]["suspend"] = json!(true);
    let suspended = converge(&mut job, T0, &SimConfig::default());
    assert!(suspended.get("startTime").is_none());
    assert_eq!(suspended["conditions"][0]["type"], "Suspended");
    assert_eq!(suspended["conditions"][0]["status"], "True");

    job["spec"]["suspend"] = json!(false);
    let resumed = converge(&mut job, T1, &SimConfig::default());
    assert_eq!(resumed["conditions"][0]["reason"], "JobResumed");
    assert_eq!(resumed["conditions"][0]["status"], "False");
    assert_eq!(resumed["conditions"][2]["type"], "Complete");
    assert_eq!(resumed["startTime"], T1);
}

#[test]
fn other_kinds_are_not_simulated() {
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}});
    assert_eq!(
        next_status("v1", "Service", &svc, T0, &SimConfig::default()),
        None
    );
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    assert_eq!(
        next_status("v1", "ConfigMap", &cm, T0, &SimConfig::default()),
        None
    );
}

/// Applies what `simulate` returns, as the member loop does.
fn apply_writes(obj: &mut Value, now: &str) -> SimWrites {
    let writes = simulate("apps/v1", "Deployment", obj, now, &SimConfig::default());
    if let Some(annotations) = &writes.annotations {
        obj["metadata"]["annotations"] = Value::Object(annotations.clone());
    }
    if let Some(status) = &writes.status {
        obj["status"] = status.clone();
    }
    writes
}

#[test]
fn deployment_revision_annotation_counts_templates() {
    let mut web = object(DEPLOYMENT);
    web["metadata"]["annotations"] = json!({"team": "a"});
    apply_writes(&mut web, T0);
    assert_eq!(
        web["metadata"]["annotations"],
        json!({"team": "a", DEPLOYMENT_REVISION: "1"})
    );
    assert_eq!(
        apply_writes(&mut web, T1),
        SimWrites::default(),
        "in sync: no writes"
    );

    // Scaling keeps the revision; a new template is revision 2.
    web["spec"]["replicas"] = json!(4);
    web["metadata"]["generation"] = json!(2);
    let scaled = apply_writes(&mut web, T1);
    assert_eq!(scaled.annotations, None);
    assert!(scaled.status.is_some());
    web["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    web["metadata"]["generation"] = json!(3);
    let rolled = apply_writes(&mut web, T1);
    assert_eq!(rolled.annotations.unwrap()[DEPLOYMENT_REVISION], "2");
    assert_eq!(apply_writes(&mut web, T2), SimWrites::default());
}

#[test]
fn simulate_writes_only_statuses_for_other_workloads() {
    let mut rs = object(
        "{apiVersion: apps/v1, kind: ReplicaSet, metadata: {name: rs, generation: 1}, spec: {replicas: 1, template: {spec: {containers: [{name: a, image: 'a:1'}]}}}}",
    );
    let writes = simulate("apps/v1", "ReplicaSet", &rs, T0, &SimConfig::default());
    assert_eq!(writes.annotations, None);
    rs["status"] = writes.status.unwrap();
    assert_eq!(
        simulate("apps/v1", "ReplicaSet", &rs, T1, &SimConfig::default()),
        SimWrites::default()
    );
}
