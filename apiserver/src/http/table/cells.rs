//! The cells of built-in kinds that need more than a field read: one function per cell,
//! referenced from the column data in [`super::kinds`]. Each follows the matching printer of
//! kube's `pkg/printers/internalversion`.

use serde_json::{Value, json};

use super::columns::{int, len, none_if_empty};
use super::duration::{human_duration, parse_rfc3339};

pub(super) fn str_at<'a>(o: &'a Value, p: &str) -> &'a str {
    o.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

fn strs<'a>(o: &'a Value, p: &str) -> impl Iterator<Item = &'a str> {
    o.pointer(p)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// The first `n` entries and how many more, as kubectl abbreviates lists.
fn first(n: usize, items: Vec<String>, sep: &str) -> String {
    let more = items.len().saturating_sub(n);
    let mut text = items.into_iter().take(n).collect::<Vec<_>>().join(sep);
    if more > 0 {
        text.push_str(&format!(" + {more} more..."));
    }
    text
}

/// `READY` of workloads: ready/desired replicas.
pub fn ready(o: &Value, _: &str) -> Value {
    let spec = o
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    json!(format!("{}/{spec}", int(o, "/status/readyReplicas")))
}

// --- Service

fn service_type(o: &Value) -> &str {
    match str_at(o, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    }
}

pub fn service_type_cell(o: &Value, _: &str) -> Value {
    json!(service_type(o))
}

pub fn cluster_ip(o: &Value, _: &str) -> Value {
    json!(none_if_empty(str_at(o, "/spec/clusterIP").to_string()))
}

pub fn external_ip(o: &Value, _: &str) -> Value {
    let external_ips: Vec<String> = strs(o, "/spec/externalIPs").map(str::to_string).collect();
    json!(match service_type(o) {
        "ClusterIP" | "NodePort" => none_if_empty(external_ips.join(",")),
        "LoadBalancer" => {
            let mut ips: Vec<String> = o
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|i| i.get("ip").or_else(|| i.get("hostname")))
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            ips.extend(external_ips);
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        "ExternalName" => str_at(o, "/spec/externalName").to_string(),
        _ => "<unknown>".into(),
    })
}

pub fn service_ports(o: &Value, _: &str) -> Value {
    let ports: Vec<String> = o
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            match p.get("nodePort").and_then(Value::as_i64) {
                Some(np) if np != 0 => format!("{port}:{np}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect();
    json!(none_if_empty(ports.join(",")))
}

// --- Endpoints, EndpointSlice

pub fn endpoints(o: &Value, _: &str) -> Value {
    let mut eps = Vec::new();
    for subset in o
        .pointer("/subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ports: Vec<i64> = subset
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("port").and_then(Value::as_i64))
            .collect();
        for a in subset
            .get("addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ip = a.get("ip").and_then(Value::as_str).unwrap_or_default();
            if ports.is_empty() {
                eps.push(ip.to_string());
            }
            eps.extend(ports.iter().map(|p| format!("{ip}:{p}")));
        }
    }
    json!(none_if_empty(first(3, eps, ",")))
}

pub fn slice_ports(o: &Value, _: &str) -> Value {
    let ports: Vec<String> = o
        .pointer("/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| match p.get("port").and_then(Value::as_i64) {
            Some(n) => n.to_string(),
            None => "<unset>".to_string(),
        })
        .collect();
    if ports.is_empty() {
        return json!("<unset>");
    }
    json!(first(3, ports, ","))
}

pub fn slice_endpoints(o: &Value, _: &str) -> Value {
    let addresses: Vec<String> = o
        .pointer("/endpoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|e| {
            strs(e, "/addresses")
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    if addresses.is_empty() {
        return json!("<unset>");
    }
    json!(first(3, addresses, ","))
}

// --- Node

pub fn node_status(o: &Value, _: &str) -> Value {
    let ready = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c.get("type") == Some(&json!("Ready")))
        .and_then(|c| c.get("status").and_then(Value::as_str));
    let mut status = match ready {
        Some("True") => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if o.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    json!(status)
}

pub fn node_roles(o: &Value, _: &str) -> Value {
    let mut roles: Vec<String> = o
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            k.strip_prefix("node-role.kubernetes.io/")
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .or_else(|| {
                    (k == "kubernetes.io/role").then(|| v.as_str().unwrap_or_default().to_string())
                })
        })
        .collect();
    roles.sort();
    json!(none_if_empty(roles.join(",")))
}

// --- Job

pub fn job_status(o: &Value, _: &str) -> Value {
    let conds: Vec<&Value> = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("status") == Some(&json!("True")))
        .collect();
    let has = |t: &str| conds.iter().any(|c| c.get("type") == Some(&json!(t)));
    json!(if has("Failed") {
        "Failed"
    } else if has("Complete") {
        "Complete"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else if o.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else {
        "Running"
    })
}

pub fn job_completions(o: &Value, _: &str) -> Value {
    let succeeded = int(o, "/status/succeeded");
    json!(
        match o.pointer("/spec/completions").and_then(Value::as_i64) {
            Some(n) => format!("{succeeded}/{n}"),
            None => match o.pointer("/spec/parallelism").and_then(Value::as_i64) {
                Some(p) if p > 1 => format!("{succeeded}/1 of {p}"),
                _ => format!("{succeeded}/1"),
            },
        }
    )
}

pub fn job_duration(o: &Value, now: &str) -> Value {
    let time = |p: &str| o.pointer(p).and_then(Value::as_str).and_then(parse_rfc3339);
    let end = time("/status/completionTime").or_else(|| parse_rfc3339(now));
    json!(match (time("/status/startTime"), end) {
        (Some(s), Some(e)) => human_duration(e - s),
        _ => String::new(),
    })
}

// --- Ingress, IngressClass

pub fn ingress_hosts(o: &Value, _: &str) -> Value {
    let hosts: Vec<String> = o
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            r.get("host")
                .and_then(Value::as_str)
                .unwrap_or("*")
                .to_string()
        })
        .collect();
    json!(if hosts.is_empty() {
        "*".to_string()
    } else {
        first(3, hosts, ",")
    })
}

pub fn ingress_address(o: &Value, _: &str) -> Value {
    let address: Vec<&str> = o
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("ip").or_else(|| i.get("hostname")))
        .filter_map(Value::as_str)
        .collect();
    json!(address.join(","))
}

pub fn ingress_ports(o: &Value, _: &str) -> Value {
    json!(if len(o, "/spec/tls") > 0 {
        "80, 443"
    } else {
        "80"
    })
}

pub fn ingress_class_parameters(o: &Value, _: &str) -> Value {
    let Some(p) = o.pointer("/spec/parameters") else {
        return json!("<none>");
    };
    let mut kind = str_at(p, "/kind").to_string();
    if let Some(g) = p.get("apiGroup").and_then(Value::as_str) {
        kind = format!("{kind}.{g}");
    }
    json!(format!("{kind}/{}", str_at(p, "/name")))
}

// --- RoleBinding, ClusterRoleBinding

pub fn role_ref(o: &Value, _: &str) -> Value {
    json!(format!(
        "{}/{}",
        str_at(o, "/roleRef/kind"),
        str_at(o, "/roleRef/name")
    ))
}

fn subjects(o: &Value, kind: &str) -> Value {
    let names: Vec<String> = o
        .pointer("/subjects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|s| s.get("kind") == Some(&json!(kind)))
        .map(|s| {
            let name = str_at(s, "/name");
            match (kind, s.get("namespace").and_then(Value::as_str)) {
                ("ServiceAccount", Some(ns)) => format!("{ns}/{name}"),
                _ => name.to_string(),
            }
        })
        .collect();
    json!(names.join(", "))
}

pub fn users(o: &Value, _: &str) -> Value {
    subjects(o, "User")
}

pub fn groups(o: &Value, _: &str) -> Value {
    subjects(o, "Group")
}

pub fn service_accounts(o: &Value, _: &str) -> Value {
    subjects(o, "ServiceAccount")
}

// --- Storage, HPA, quota, revisions

pub fn pvc_phase(o: &Value, _: &str) -> Value {
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        return json!("Terminating");
    }
    json!(match str_at(o, "/status/phase") {
        "" => "Pending",
        p => p,
    })
}

/// Capacity and access modes are shown once the claim is bound to a volume.
pub fn pvc_capacity(o: &Value, _: &str) -> Value {
    if str_at(o, "/spec/volumeName").is_empty() {
        return json!("");
    }
    json!(str_at(o, "/status/capacity/storage"))
}

pub fn pvc_access_modes(o: &Value, _: &str) -> Value {
    if str_at(o, "/spec/volumeName").is_empty() {
        return json!("");
    }
    json!(access_modes(o.pointer("/status/accessModes")))
}

pub fn pv_access_modes(o: &Value, _: &str) -> Value {
    json!(access_modes(o.pointer("/spec/accessModes")))
}

/// kubectl's short access modes: `RWO,ROX`.
fn access_modes(modes: Option<&Value>) -> String {
    let modes: Vec<&str> = modes
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut out = Vec::new();
    for (long, short) in [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ] {
        if modes.contains(&long) {
            out.push(short);
        }
    }
    out.join(",")
}

/// The beta annotation wins over `spec.storageClassName`, as in kube's helper.
pub fn storage_class_of(o: &Value, _: &str) -> Value {
    let beta = str_at(
        o,
        "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
    );
    json!(if beta.is_empty() {
        str_at(o, "/spec/storageClassName")
    } else {
        beta
    })
}

pub fn pv_claim(o: &Value, _: &str) -> Value {
    match o.pointer("/spec/claimRef") {
        Some(r) => json!(format!(
            "{}/{}",
            str_at(r, "/namespace"),
            str_at(r, "/name")
        )),
        None => json!(""),
    }
}

pub fn quota(o: &Value, limits: bool) -> String {
    let hard = o.pointer("/status/hard").and_then(Value::as_object);
    let mut parts = Vec::new();
    for (name, h) in hard.into_iter().flatten() {
        if name.starts_with("limits.") != limits {
            continue;
        }
        let used = o
            .pointer("/status/used")
            .and_then(|u| u.get(name))
            .and_then(Value::as_str)
            .unwrap_or("0");
        parts.push(format!("{name}: {used}/{}", h.as_str().unwrap_or_default()));
    }
    parts.join(", ")
}

pub fn controller(o: &Value, _: &str) -> Value {
    let owner = o
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true));
    json!(match owner {
        Some(r) => {
            let group = str_at(r, "/apiVersion")
                .rsplit_once('/')
                .map(|(g, _)| g)
                .unwrap_or_default();
            let kind = str_at(r, "/kind");
            let kind = if group.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}.{group}")
            };
            format!("{}/{}", kind.to_lowercase(), str_at(r, "/name"))
        }
        None => "<none>".to_string(),
    })
}

// --- Certificates, CSI, service CIDRs

/// `Approved,Issued`, `Denied`, `Pending`…, in kube's order of precedence.
pub fn csr_condition(o: &Value, _: &str) -> Value {
    let types: Vec<&str> = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("type").and_then(Value::as_str))
        .collect();
    let mut status = if types.contains(&"Denied") {
        "Denied"
    } else if types.contains(&"Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if types.contains(&"Failed") {
        status.push_str(",Failed");
    }
    if !str_at(o, "/status/certificate").is_empty() {
        status.push_str(",Issued");
    }
    json!(status)
}

pub fn csr_duration(o: &Value, _: &str) -> Value {
    json!(
        match o.pointer("/spec/expirationSeconds").and_then(Value::as_i64) {
            Some(secs) => human_duration(secs),
            None => "<none>".to_string(),
        }
    )
}

pub fn token_requests(o: &Value, _: &str) -> Value {
    let audiences: Vec<String> = o
        .pointer("/spec/tokenRequests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| str_at(t, "/audience").to_string())
        .collect();
    json!(if audiences.is_empty() {
        "<unset>".to_string()
    } else {
        audiences.join(",")
    })
}

pub fn lifecycle_modes(o: &Value, _: &str) -> Value {
    let modes: Vec<&str> = strs(o, "/spec/volumeLifecycleModes").collect();
    json!(if modes.is_empty() {
        "Persistent".to_string()
    } else {
        modes.join(",")
    })
}

pub fn cidrs(o: &Value, _: &str) -> Value {
    json!(strs(o, "/spec/cidrs").collect::<Vec<_>>().join(","))
}

// --- Admission policies

pub fn param_kind(o: &Value, _: &str) -> Value {
    json!(match o.pointer("/spec/paramKind") {
        Some(k) => format!("{}/{}", str_at(k, "/apiVersion"), str_at(k, "/kind")),
        None => "<unset>".to_string(),
    })
}

/// `namespace/name`, `*/name` when the namespace is not given, or the selector.
pub fn param_ref(o: &Value, _: &str) -> Value {
    let Some(r) = o.pointer("/spec/paramRef") else {
        return json!("<unset>");
    };
    let name = str_at(r, "/name");
    json!(match (name, str_at(r, "/namespace")) {
        ("", _) => match r.get("selector") {
            Some(sel) => super::columns::selector_string(Some(sel)),
            None => "<unset>".to_string(),
        },
        (name, "") => format!("*/{name}"),
        (name, ns) => format!("{ns}/{name}"),
    })
}
