//! The defaulting kube-apiserver applies to built-in workload and core kinds, as JSON.
//!
//! Written from the behaviour of kubernetes `pkg/apis/{apps,batch,core}/v1/defaults.go` at 1.32
//! (feature gates at their 1.32 defaults). Only the kinds a federation propagates are covered;
//! any other kind is left untouched. Every function is idempotent: defaulting a defaulted object
//! changes nothing.
//!
//! Go's "unset" is JSON's absent or `null`, and for strings also `""`: all three get the default.
//! Fields of the wrong JSON type are left alone for validation to report.

use serde_json::{Map, Value, json};

/// Applies kube-apiserver's defaults for `api_version`/`kind` to `obj` in place.
///
/// Kinds: apps/v1 Deployment, StatefulSet, DaemonSet, ReplicaSet; batch/v1 Job; v1 Service,
/// Secret, Namespace, ServiceAccount, ConfigMap (the last two have no defaults). Other kinds are
/// untouched.
pub fn apply_defaults(api_version: &str, kind: &str, obj: &mut Value) {
    match (api_version, kind) {
        ("apps/v1", "Deployment") => deployment(obj),
        ("apps/v1", "StatefulSet") => stateful_set(obj),
        ("apps/v1", "DaemonSet") => daemon_set(obj),
        ("apps/v1", "ReplicaSet") => replica_set(obj),
        ("batch/v1", "Job") => job(obj),
        ("v1", "Service") => service(obj),
        ("v1", "Secret") => set_str(obj, "type", "Opaque"),
        ("v1", "Namespace") => namespace(obj),
        _ => {}
    }
}

/// True when `v` is what Go decodes to a zero value of a pointer or string field.
fn unset(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null)) || v.and_then(Value::as_str) == Some("")
}

/// Sets `obj[key] = value` when `obj` is an object and the field is unset.
fn set(obj: &mut Value, key: &str, value: Value) {
    if let Some(map) = obj.as_object_mut()
        && unset(map.get(key))
    {
        map.insert(key.to_owned(), value);
    }
}

fn set_str(obj: &mut Value, key: &str, value: &str) {
    set(obj, key, Value::String(value.to_owned()));
}

/// Like [`set`], for Go non-pointer numbers whose zero means "use the default".
fn set_nonzero(obj: &mut Value, key: &str, value: i64) {
    let zero = match obj.get(key) {
        None | Some(Value::Null) => true,
        Some(v) => v.as_i64() == Some(0),
    };
    if zero {
        set_forced(obj, key, json!(value));
    }
}

fn set_forced(obj: &mut Value, key: &str, value: Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}

/// The object at `obj[key]`, created empty when unset; None when `obj` or the field is not an
/// object.
fn object<'a>(obj: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    set(obj, key, Value::Object(Map::new()));
    obj.get_mut(key).filter(|v| v.is_object())
}

/// The array at `obj[key]` when there is one.
fn array<'a>(obj: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    obj.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

fn deployment(obj: &mut Value) {
    let Some(spec) = object(obj, "spec") else {
        return;
    };
    set(spec, "replicas", json!(1));
    if let Some(strategy) = object(spec, "strategy") {
        set_str(strategy, "type", "RollingUpdate");
        if strategy["type"] == "RollingUpdate"
            && let Some(rolling) = object(strategy, "rollingUpdate")
        {
            set_str(rolling, "maxUnavailable", "25%");
            set_str(rolling, "maxSurge", "25%");
        }
    }
    set(spec, "revisionHistoryLimit", json!(10));
    set(spec, "progressDeadlineSeconds", json!(600));
    pod_template(spec);
}

fn stateful_set(obj: &mut Value) {
    let Some(spec) = object(obj, "spec") else {
        return;
    };
    set_str(spec, "podManagementPolicy", "OrderedReady");
    if let Some(strategy) = object(spec, "updateStrategy") {
        if unset(strategy.get("type")) {
            set_str(strategy, "type", "RollingUpdate");
            set(strategy, "rollingUpdate", json!({}));
        }
        // MaxUnavailableStatefulSet is alpha (off) in 1.32: no maxUnavailable default.
        if strategy["type"] == "RollingUpdate"
            && let Some(rolling) = strategy.get_mut("rollingUpdate").filter(|r| r.is_object())
        {
            set(rolling, "partition", json!(0));
        }
    }
    // StatefulSetAutoDeletePVC is beta (on) in 1.32.
    if let Some(policy) = object(spec, "persistentVolumeClaimRetentionPolicy") {
        set_str(policy, "whenDeleted", "Retain");
        set_str(policy, "whenScaled", "Retain");
    }
    set(spec, "replicas", json!(1));
    set(spec, "revisionHistoryLimit", json!(10));
    for claim in array(spec, "volumeClaimTemplates") {
        // The embedded PersistentVolumeClaims are defaulted as objects of their own.
        set_str(claim, "apiVersion", "v1");
        set_str(claim, "kind", "PersistentVolumeClaim");
        if let Some(claim_spec) = object(claim, "spec") {
            set_str(claim_spec, "volumeMode", "Filesystem");
        }
        if let Some(status) = object(claim, "status") {
            set_str(status, "phase", "Pending");
        }
    }
    pod_template(spec);
}

fn daemon_set(obj: &mut Value) {
    let Some(spec) = object(obj, "spec") else {
        return;
    };
    if let Some(strategy) = object(spec, "updateStrategy") {
        set_str(strategy, "type", "RollingUpdate");
        if strategy["type"] == "RollingUpdate"
            && let Some(rolling) = object(strategy, "rollingUpdate")
        {
            set(rolling, "maxUnavailable", json!(1));
            set(rolling, "maxSurge", json!(0));
        }
    }
    set(spec, "revisionHistoryLimit", json!(10));
    pod_template(spec);
}

fn replica_set(obj: &mut Value) {
    let Some(spec) = object(obj, "spec") else {
        return;
    };
    set(spec, "replicas", json!(1));
    pod_template(spec);
}

fn job(obj: &mut Value) {
    let Some(spec) = object(obj, "spec") else {
        return;
    };
    if unset(spec.get("completions")) && unset(spec.get("parallelism")) {
        set(spec, "completions", json!(1));
    }
    set(spec, "parallelism", json!(1));
    let backoff = if unset(spec.get("backoffLimitPerIndex")) {
        6
    } else {
        i64::from(i32::MAX)
    };
    set(spec, "backoffLimit", json!(backoff));
    set_str(spec, "completionMode", "NonIndexed");
    set(spec, "suspend", json!(false));
    // JobPodReplacementPolicy is beta (on) in 1.32.
    let replacement = if unset(spec.get("podFailurePolicy")) {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    set_str(spec, "podReplacementPolicy", replacement);
    if let Some(rules) = spec
        .pointer_mut("/podFailurePolicy/rules")
        .and_then(Value::as_array_mut)
    {
        for rule in rules {
            for pattern in array(rule, "onPodConditions") {
                set_str(pattern, "status", "True");
            }
        }
    }
    pod_template(spec);
    job_labels(obj);
}

fn labels_at(obj: &Value, pointer: &str) -> Map<String, Value> {
    obj.pointer(pointer)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The Job's labels and selector. kube copies the template's labels to an unlabelled Job (the
/// two share one map) and, unless `spec.manualSelector` is true, generates the selector and the
/// `controller-uid`/`job-name` labels from the uid: that part waits until the apiserver has
/// assigned `metadata.uid`.
fn job_labels(obj: &mut Value) {
    let template = labels_at(obj, "/spec/template/metadata/labels");
    let own = labels_at(obj, "/metadata/labels");
    let shared = own.is_empty() || own == template;
    let mut labels = template.clone();
    let uid = obj.pointer("/metadata/uid").and_then(Value::as_str);
    let manual = obj.pointer("/spec/manualSelector") == Some(&Value::Bool(true));
    if let (Some(uid), false) = (uid.filter(|u| !u.is_empty()), manual) {
        let uid = uid.to_owned();
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        for (key, value) in [
            ("batch.kubernetes.io/controller-uid", &uid),
            ("batch.kubernetes.io/job-name", &name),
            ("controller-uid", &uid),
            ("job-name", &name),
        ] {
            labels
                .entry(key)
                .or_insert_with(|| Value::String(value.clone()));
        }
        if let Some(spec) = object(obj, "spec") {
            set(
                spec,
                "selector",
                json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
            );
        }
    }
    if labels != template
        && let Some(metadata) = obj
            .pointer_mut("/spec/template")
            .and_then(|t| object(t, "metadata"))
    {
        set_forced(metadata, "labels", Value::Object(labels.clone()));
    }
    if shared
        && !labels.is_empty()
        && let Some(metadata) = object(obj, "metadata")
    {
        set_forced(metadata, "labels", Value::Object(labels));
    }
}

/// Defaults of `spec.template.spec`, the PodSpec of a workload.
fn pod_template(spec: &mut Value) {
    if let Some(template) = object(spec, "template")
        && let Some(pod) = object(template, "spec")
    {
        pod_spec(pod);
    }
}

fn pod_spec(pod: &mut Value) {
    set_str(pod, "dnsPolicy", "ClusterFirst");
    set_str(pod, "restartPolicy", "Always");
    set(pod, "securityContext", json!({}));
    set(pod, "terminationGracePeriodSeconds", json!(30));
    set_str(pod, "schedulerName", "default-scheduler");
    let host_network = pod.get("hostNetwork") == Some(&Value::Bool(true));
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for container in array(pod, list) {
            self::container(container, host_network);
        }
    }
    for volume in array(pod, "volumes") {
        self::volume(volume);
    }
}

fn container(c: &mut Value, host_network: bool) {
    let policy = c
        .get("image")
        .and_then(Value::as_str)
        .map_or("IfNotPresent", image_pull_policy);
    set_str(c, "imagePullPolicy", policy);
    set_str(c, "terminationMessagePath", "/dev/termination-log");
    set_str(c, "terminationMessagePolicy", "File");
    set(c, "resources", json!({}));
    for port in array(c, "ports") {
        set_str(port, "protocol", "TCP");
        if host_network && let Some(container_port) = port.get("containerPort").cloned() {
            set_nonzero(
                port,
                "hostPort",
                container_port.as_i64().unwrap_or_default(),
            );
        }
    }
    for env in array(c, "env") {
        if let Some(field_ref) = env.pointer_mut("/valueFrom/fieldRef") {
            set_str(field_ref, "apiVersion", "v1");
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) {
            self::probe(p);
        }
    }
    for hook in ["postStart", "preStop"] {
        if let Some(get) = c
            .pointer_mut(&format!("/lifecycle/{hook}/httpGet"))
            .filter(|g| g.is_object())
        {
            http_get(get);
        }
    }
}

/// `Always` for an image without tag or with tag `latest` (and no digest), else
/// `IfNotPresent`.
pub fn image_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last_segment = image.rsplit('/').next().unwrap_or(image);
    match last_segment.split_once(':') {
        None | Some((_, "latest")) => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn probe(p: &mut Value) {
    set_nonzero(p, "timeoutSeconds", 1);
    set_nonzero(p, "periodSeconds", 10);
    set_nonzero(p, "successThreshold", 1);
    set_nonzero(p, "failureThreshold", 3);
    if let Some(get) = p.get_mut("httpGet").filter(|g| g.is_object()) {
        http_get(get);
    }
}

fn http_get(get: &mut Value) {
    set_str(get, "path", "/");
    set_str(get, "scheme", "HTTP");
}

fn volume(v: &mut Value) {
    const SOURCES: [&str; 4] = ["secret", "configMap", "projected", "downwardAPI"];
    let Some(map) = v.as_object() else {
        return;
    };
    if map.keys().all(|k| k == "name") {
        set(v, "emptyDir", json!({}));
    }
    for source in SOURCES {
        if let Some(s) = v.get_mut(source).filter(|s| s.is_object()) {
            set(s, "defaultMode", json!(420));
        }
    }
}

/// The name label (always overwritten, as kube does), the `kubernetes` finalizer the namespace
/// strategy adds, and phase Active.
fn namespace(obj: &mut Value) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    if let Some(name) = name
        && let Some(labels) = object(obj, "metadata").and_then(|m| object(m, "labels"))
    {
        set_forced(labels, "kubernetes.io/metadata.name", json!(name));
    }
    if let Some(spec) = object(obj, "spec") {
        set(spec, "finalizers", json!(["kubernetes"]));
    }
    if let Some(status) = object(obj, "status") {
        set_str(status, "phase", "Active");
    }
}

fn service(obj: &mut Value) {
    if let Some(spec) = object(obj, "spec") {
        service_spec(spec);
    }
    if let Some(status) = object(obj, "status") {
        set(status, "loadBalancer", json!({}));
    }
}

fn service_spec(spec: &mut Value) {
    set_str(spec, "sessionAffinity", "None");
    match spec["sessionAffinity"].as_str() {
        Some("None") => {
            if let Some(map) = spec.as_object_mut() {
                map.remove("sessionAffinityConfig");
            }
        }
        Some("ClientIP") => {
            if let Some(client_ip) =
                object(spec, "sessionAffinityConfig").and_then(|c| object(c, "clientIP"))
            {
                set(client_ip, "timeoutSeconds", json!(10800));
            }
        }
        _ => {}
    }
    set_str(spec, "type", "ClusterIP");
    for port in array(spec, "ports") {
        set_str(port, "protocol", "TCP");
        let target = port.get("targetPort");
        if unset(target) || target.and_then(Value::as_i64) == Some(0) {
            let number = port.get("port").cloned().unwrap_or(Value::Null);
            set_forced(port, "targetPort", number);
        }
    }
    let service_type = spec["type"].as_str().unwrap_or_default().to_owned();
    let has_external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|ips| !ips.is_empty());
    let externally_accessible = matches!(service_type.as_str(), "NodePort" | "LoadBalancer")
        || service_type == "ClusterIP" && has_external_ips;
    if externally_accessible {
        set_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(
        service_type.as_str(),
        "ClusterIP" | "NodePort" | "LoadBalancer"
    ) {
        set_str(spec, "internalTrafficPolicy", "Cluster");
    }
    if service_type == "LoadBalancer" {
        set(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
}
