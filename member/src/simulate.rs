//! The status a real cluster's controllers would converge a workload to: `cellfed member` runs
//! no containers, it writes these statuses instead, so propagation and status feedback meet
//! realistic objects.
//!
//! Convergence takes one step: `next_status` returns the final, all-ready status for the current
//! spec (no "progressing" intermediate state). A caller that wants "not yet ready, then ready"
//! delays the write. Conditions, reasons and messages are those of kube 1.32's deployment,
//! statefulset, daemonset, replicaset and job controllers. Conditions keep their
//! `lastTransitionTime` while their status stays, and an object whose status already matches
//! gets `None`, so the simulator never causes a write loop.

use serde_json::{Map, Value, json};

/// Simulated cluster shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimConfig {
    /// Schedulable nodes: every DaemonSet runs one pod on each (node selectors are ignored).
    pub nodes: u32,
}

impl Default for SimConfig {
    /// One node, like a default kind cluster.
    fn default() -> Self {
        Self { nodes: 1 }
    }
}

/// What the simulated controllers write for one object, computed from one snapshot of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimWrites {
    /// The object's whole `metadata.annotations` after the controller's metadata update, None when
    /// unchanged. Write it as a main-resource update of metadata only (no generation bump).
    pub annotations: Option<Map<String, Value>>,
    /// The converged status, None when unchanged. Write it through the status subresource.
    pub status: Option<Value>,
}

/// The annotation kube's deployment controller keeps on a Deployment: the revision of its
/// newest ReplicaSet, "1" at first, one more for each new pod template.
pub const DEPLOYMENT_REVISION: &str = "deployment.kubernetes.io/revision";

/// Both writes a real control plane makes after a change of `obj`: the Deployment revision
/// annotation and the converged status. Compute them together, before writing either (the
/// revision is derived from the status the object had before).
pub fn simulate(
    api_version: &str,
    kind: &str,
    obj: &Value,
    now: &str,
    config: &SimConfig,
) -> SimWrites {
    let annotations = match (api_version, kind) {
        ("apps/v1", "Deployment") => deployment_revision(obj),
        _ => None,
    };
    SimWrites {
        annotations,
        status: next_status(api_version, kind, obj, now, config),
    }
}

/// The Deployment's annotations with the revision it should have, None when it has it. The
/// ReplicaSet that last progressed is read from the Progressing condition's message.
fn deployment_revision(obj: &Value) -> Option<Map<String, Value>> {
    let mut annotations = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let current = annotations
        .get(DEPLOYMENT_REVISION)
        .and_then(Value::as_str)
        .and_then(|r| r.parse::<u64>().ok());
    let status = obj.get("status").cloned().unwrap_or(Value::Null);
    let progressed = conditions(&status)
        .find(|c| c["type"] == "Progressing")
        .and_then(|c| c["message"].as_str())
        .and_then(|m| m.strip_prefix("ReplicaSet \""))
        .and_then(|m| m.split('"').next())
        .map(str::to_owned);
    let replica_set = format!("{}-{}", name(obj), template_hash(obj));
    let revision = match (current, progressed) {
        (None, _) => 1,
        (Some(r), Some(previous)) if previous != replica_set => r + 1,
        (Some(r), _) => r,
    };
    if current == Some(revision) {
        return None;
    }
    annotations.insert(DEPLOYMENT_REVISION.into(), json!(revision.to_string()));
    Some(annotations)
}

/// The status `obj` converges to, or None when its status already is that (or the kind has no
/// simulated controller). `now` is an RFC 3339 time (`2026-01-02T03:04:05Z`) used for new
/// timestamps. Kinds: apps/v1 Deployment, StatefulSet, DaemonSet, ReplicaSet; batch/v1 Job.
pub fn next_status(
    api_version: &str,
    kind: &str,
    obj: &Value,
    now: &str,
    config: &SimConfig,
) -> Option<Value> {
    let current = obj.get("status").cloned().unwrap_or(Value::Null);
    let desired = match (api_version, kind) {
        ("apps/v1", "Deployment") => deployment(obj, &current, now),
        ("apps/v1", "StatefulSet") => stateful_set(obj),
        ("apps/v1", "DaemonSet") => daemon_set(obj, config),
        ("apps/v1", "ReplicaSet") => replica_set(obj),
        ("batch/v1", "Job") => job(obj, &current, now)?,
        _ => return None,
    };
    (desired != current).then_some(desired)
}

fn int_at(obj: &Value, pointer: &str) -> Option<i64> {
    obj.pointer(pointer).and_then(Value::as_i64)
}

fn generation(obj: &Value) -> i64 {
    int_at(obj, "/metadata/generation").unwrap_or(1)
}

fn name(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Inserts `key: value` unless value is 0 (Go's `omitempty` on an int).
fn put_nonzero(status: &mut Map<String, Value>, key: &str, value: i64) {
    if value != 0 {
        status.insert(key.to_owned(), json!(value));
    }
}

fn deployment(obj: &Value, current: &Value, now: &str) -> Value {
    let replicas = int_at(obj, "/spec/replicas").unwrap_or(1);
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(generation(obj)));
    for key in [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
    ] {
        put_nonzero(&mut status, key, replicas);
    }
    let replica_set = format!("{}-{}", name(obj), template_hash(obj));
    let progressing = if obj.pointer("/spec/paused") == Some(&Value::Bool(true)) {
        Condition::new(
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused".into(),
        )
    } else {
        Condition::new(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{replica_set}\" has successfully progressed."),
        )
    };
    let available = Condition::new(
        "Available",
        "True",
        "MinimumReplicasAvailable",
        "Deployment has minimum availability.".into(),
    );
    let conditions = [available, progressing]
        .into_iter()
        .map(|c| c.merge(current, now, TimeField::LastUpdate))
        .collect();
    status.insert("conditions".into(), Value::Array(conditions));
    Value::Object(status)
}

fn stateful_set(obj: &Value) -> Value {
    let replicas = int_at(obj, "/spec/replicas").unwrap_or(1);
    let revision = format!("{}-{}", name(obj), template_hash(obj));
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(generation(obj)));
    status.insert("replicas".into(), json!(replicas));
    for key in ["readyReplicas", "currentReplicas", "updatedReplicas"] {
        put_nonzero(&mut status, key, replicas);
    }
    status.insert("availableReplicas".into(), json!(replicas));
    status.insert("currentRevision".into(), json!(revision));
    status.insert("updateRevision".into(), json!(revision));
    status.insert("collisionCount".into(), json!(0));
    Value::Object(status)
}

fn daemon_set(obj: &Value, config: &SimConfig) -> Value {
    let nodes = i64::from(config.nodes);
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(generation(obj)));
    status.insert("desiredNumberScheduled".into(), json!(nodes));
    status.insert("currentNumberScheduled".into(), json!(nodes));
    status.insert("numberMisscheduled".into(), json!(0));
    status.insert("numberReady".into(), json!(nodes));
    put_nonzero(&mut status, "updatedNumberScheduled", nodes);
    put_nonzero(&mut status, "numberAvailable", nodes);
    Value::Object(status)
}

fn replica_set(obj: &Value) -> Value {
    let replicas = int_at(obj, "/spec/replicas").unwrap_or(1);
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(generation(obj)));
    status.insert("replicas".into(), json!(replicas));
    for key in ["fullyLabeledReplicas", "readyReplicas", "availableReplicas"] {
        put_nonzero(&mut status, key, replicas);
    }
    Value::Object(status)
}

/// None once the Job finished: a finished Job's status never changes.
fn job(obj: &Value, current: &Value, now: &str) -> Option<Value> {
    let finished = conditions(current).any(|c| {
        matches!(c["type"].as_str(), Some("Complete" | "Failed")) && c["status"] == "True"
    });
    if finished {
        return None;
    }
    let suspended = obj.pointer("/spec/suspend") == Some(&Value::Bool(true));
    let was_suspended = conditions(current).any(|c| c["type"] == "Suspended");
    let mut wanted = Vec::new();
    if suspended {
        wanted.push(Condition::new(
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended".into(),
        ));
    } else if was_suspended {
        wanted.push(Condition::new(
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed".into(),
        ));
    }
    let mut status = Map::new();
    if !suspended {
        let succeeded = int_at(obj, "/spec/completions")
            .or_else(|| int_at(obj, "/spec/parallelism"))
            .unwrap_or(1);
        let start = current.get("startTime").cloned().unwrap_or(json!(now));
        status.insert("startTime".into(), start);
        status.insert("completionTime".into(), json!(now));
        put_nonzero(&mut status, "succeeded", succeeded);
        if obj.pointer("/spec/completionMode") == Some(&json!("Indexed")) && succeeded > 0 {
            status.insert("completedIndexes".into(), json!(index_ranges(succeeded)));
        }
        status.insert("uncountedTerminatedPods".into(), json!({}));
        let message = "Reached expected number of succeeded pods";
        for kind in ["SuccessCriteriaMet", "Complete"] {
            wanted.push(Condition::new(
                kind,
                "True",
                "CompletionsReached",
                message.into(),
            ));
        }
    }
    status.insert("ready".into(), json!(0));
    status.insert("terminating".into(), json!(0));
    let merged = wanted
        .into_iter()
        .map(|c| c.merge(current, now, TimeField::LastProbe))
        .collect();
    status.insert("conditions".into(), Value::Array(merged));
    Some(Value::Object(status))
}

/// kube's completedIndexes for 0..n: `0`, `0,1`, `0-4`.
fn index_ranges(n: i64) -> String {
    match n {
        1 => "0".into(),
        2 => "0,1".into(),
        n => format!("0-{}", n - 1),
    }
}

fn conditions(status: &Value) -> impl Iterator<Item = &Value> {
    status
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Which second timestamp a kind's conditions carry.
#[derive(Clone, Copy)]
enum TimeField {
    /// Deployment: `lastUpdateTime`.
    LastUpdate,
    /// Job: `lastProbeTime`.
    LastProbe,
}

struct Condition {
    kind: &'static str,
    status: &'static str,
    reason: &'static str,
    message: String,
}

impl Condition {
    fn new(
        kind: &'static str,
        status: &'static str,
        reason: &'static str,
        message: String,
    ) -> Self {
        Self {
            kind,
            status,
            reason,
            message,
        }
    }

    /// This condition as it should be written, given the current status: unchanged when it
    /// already says the same, its `lastTransitionTime` kept while its status stays.
    fn merge(self, current: &Value, now: &str, time: TimeField) -> Value {
        let existing = conditions(current).find(|c| c["type"] == self.kind);
        if let Some(c) = existing
            && c["status"] == self.status
            && c["reason"] == self.reason
            && c["message"] == self.message.as_str()
        {
            return c.clone();
        }
        let transition = existing
            .filter(|c| c["status"] == self.status)
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or(json!(now));
        let time_key = match time {
            TimeField::LastUpdate => "lastUpdateTime",
            TimeField::LastProbe => "lastProbeTime",
        };
        json!({
            "type": self.kind,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": transition,
            time_key: now,
        })
    }
}

/// A pod-template hash shaped like kube's (`7c79c4bf97`): 32-bit FNV-1a of the canonical JSON
/// of `spec.template`, its decimal digits mapped through kube's `SafeEncodeString` alphabet. The
/// value differs from kube's (which hashes Go's struct dump) but changes exactly when the
/// template does.
pub fn template_hash(obj: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut canonical = String::new();
    write_canonical(
        obj.pointer("/spec/template").unwrap_or(&Value::Null),
        &mut canonical,
    );
    let hash = canonical.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash.to_string()
        .bytes()
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

/// JSON with object keys sorted, whatever map order serde_json was built with.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}
