//! Service spec rules kube applies around allocation: which types need which allocated values,
//! what an update may omit (`patchAllocatedValues`), what a type change drops
//! (`dropTypeDependentFields`), how `clusterIP` and `clusterIPs` are kept in step
//! (`NormalizeClusterIPs`), and the single-stack IP family and immutability checks.

use super::field_error::{FieldError, go_strings};
use serde_json::{Value, json};

pub(super) fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(super) fn service_type(svc: &Value) -> &str {
    match str_at(svc, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    }
}

pub(super) fn is_kubernetes_service(svc: &Value) -> bool {
    str_at(svc, "/metadata/namespace") == "default" && str_at(svc, "/metadata/name") == "kubernetes"
}

pub(super) fn needs_cluster_ip(svc: &Value) -> bool {
    service_type(svc) != "ExternalName"
}

pub(super) fn needs_node_port(svc: &Value) -> bool {
    match service_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => {
            svc.pointer("/spec/allocateLoadBalancerNodePorts") != Some(&Value::Bool(false))
        }
        _ => false,
    }
}

pub(super) fn needs_health_check_port(svc: &Value) -> bool {
    service_type(svc) == "LoadBalancer" && str_at(svc, "/spec/externalTrafficPolicy") == "Local"
}

/// `spec.clusterIPs` as written.
pub(super) fn cluster_ips_field(svc: &Value) -> Vec<String> {
    svc.pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .map(|ips| {
            ips.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The addresses a Service holds (not `None`).
pub(super) fn cluster_ips(svc: &Value) -> Vec<String> {
    let mut ips = cluster_ips_field(svc);
    let single = str_at(svc, "/spec/clusterIP");
    if ips.is_empty() && !single.is_empty() {
        ips.push(single.to_owned());
    }
    ips.retain(|ip| ip != "None" && !ip.is_empty());
    ips
}

/// The node ports a Service holds, health check port included.
pub(super) fn node_ports(svc: &Value) -> Vec<u16> {
    let mut ports: Vec<u16> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
        .chain(
            svc.pointer("/spec/healthCheckNodePort")
                .and_then(Value::as_u64),
        )
        .filter_map(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// kube's `patchAllocatedValues`: what the client omitted on update keeps its allocated value.
pub(super) fn patch_allocated_values(new: &mut Value, live: &Value) {
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let old = &live["spec"];
    let new_view = json!({"spec": {"type": spec.get("type"),
        "allocateLoadBalancerNodePorts": spec.get("allocateLoadBalancerNodePorts"),
        "externalTrafficPolicy": spec.get("externalTrafficPolicy")}});
    if needs_cluster_ip(live) && needs_cluster_ip(&new_view) {
        if spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
            && let Some(ip) = old.get("clusterIP").filter(|v| !v.is_null())
        {
            spec.insert("clusterIP".into(), ip.clone());
        }
        let empty = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if empty
            && let Some(ips) = old
                .get("clusterIPs")
                .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        {
            spec.insert("clusterIPs".into(), ips.clone());
        }
    }
    if needs_node_port(live) && needs_node_port(&new_view) {
        let old_ports = old.get("ports").and_then(Value::as_array);
        let by_name = |name: &str| {
            old_ports
                .into_iter()
                .flatten()
                .find(|p| p.get("name").and_then(Value::as_str).unwrap_or("") == name)
                .and_then(|p| p.get("nodePort").and_then(Value::as_i64))
                .filter(|p| *p != 0)
        };
        let used: Vec<i64> = spec
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
            .filter(|p| *p != 0)
            .collect();
        for port in spec
            .get_mut("ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if port.get("nodePort").and_then(Value::as_i64).unwrap_or(0) == 0
                && let Some(old_port) =
                    by_name(port.get("name").and_then(Value::as_str).unwrap_or(""))
                && !used.contains(&old_port)
            {
                port["nodePort"] = json!(old_port);
            }
        }
    }
    if needs_health_check_port(live) && needs_health_check_port(&new_view) {
        let unset = spec
            .get("healthCheckNodePort")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            == 0;
        if unset && let Some(port) = old.get("healthCheckNodePort") {
            spec.insert("healthCheckNodePort".into(), port.clone());
        }
    }
}

/// kube's `dropTypeDependentFields`: a type change clears the fields the new type does not use,
/// when the client left them as they were.
pub(super) fn drop_type_dependent_fields(new: &mut Value, live: &Value) {
    let same = |pointer: &str, new: &Value| new.pointer(pointer) == live.pointer(pointer);
    if needs_cluster_ip(live)
        && !needs_cluster_ip(new)
        && same("/spec/clusterIPs", new)
        && let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut)
    {
        for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            spec.remove(field);
        }
    }
    if needs_node_port(live) && !needs_node_port(new) && node_ports_unchanged(new, live) {
        for port in new
            .pointer_mut("/spec/ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(p) = port.as_object_mut() {
                p.remove("nodePort");
            }
        }
    }
    if needs_health_check_port(live)
        && !needs_health_check_port(new)
        && same("/spec/healthCheckNodePort", new)
        && let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.remove("healthCheckNodePort");
    }
}

pub(super) fn node_ports_unchanged(new: &Value, live: &Value) -> bool {
    let list = |svc: &Value| -> Vec<i64> {
        svc.pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0))
            .collect()
    };
    list(new) == list(live)
}

/// kube's `NormalizeClusterIPs` on update: a client that changed or cleared only `clusterIP`
/// (kubectl apply's patch) gets `clusterIPs` made to follow, so immutability sees the change.
pub(super) fn normalize_against_live(new: &mut Value, live: &Value) {
    let (old_ip, new_ip) = (
        str_at(live, "/spec/clusterIP"),
        str_at(new, "/spec/clusterIP"),
    );
    if old_ip == new_ip {
        return;
    }
    let new_ip = new_ip.to_owned();
    let ips_untouched = new.pointer("/spec/clusterIPs") == live.pointer("/spec/clusterIPs")
        || new.pointer("/spec/clusterIPs").is_none_or(Value::is_null);
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if !ips_untouched {
        return;
    }
    if new_ip.is_empty() {
        spec.remove("clusterIPs");
    } else {
        spec.insert("clusterIPs".into(), json!([new_ip]));
    }
}

/// kube's `NormalizeClusterIPs`: `clusterIP` and `clusterIPs[0]` describe the same address.
pub(super) fn normalize_cluster_ips(svc: &mut Value) {
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let single = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let first = spec
        .get("clusterIPs")
        .and_then(|ips| ips.get(0))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match (single.is_empty(), first) {
        (false, None) => {
            spec.insert("clusterIPs".into(), json!([single]));
        }
        (true, Some(first)) => {
            spec.insert("clusterIP".into(), json!(first));
        }
        _ => {}
    }
}

/// kube's update validation of `spec.clusterIPs` (single-stack: only the primary).
pub(super) fn immutable_cluster_ips(new: &Value, live: &Value) -> Vec<FieldError> {
    if !needs_cluster_ip(new) || !needs_cluster_ip(live) {
        return Vec::new();
    }
    let headless = |svc: &Value| str_at(svc, "/spec/clusterIP") == "None";
    if headless(new) && headless(live) {
        return Vec::new();
    }
    let (old, now) = (cluster_ips_field(live), cluster_ips_field(new));
    let detail = match (old.first(), now.first()) {
        (Some(_), None) => "primary clusterIP can not be unset",
        (Some(o), Some(n)) if o != n => "may not change once set",
        _ => return Vec::new(),
    };
    vec![FieldError::invalid(
        "spec.clusterIPs[0]",
        go_strings(&now),
        detail,
    )]
}

/// Single-stack IPv4: default the families and refuse anything else.
pub(super) fn ip_families(svc: &mut Value, errors: &mut Vec<FieldError>) {
    let headless_without_selector = str_at(svc, "/spec/clusterIP") == "None"
        && svc
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .is_none_or(|s| s.is_empty());
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let policy = if headless_without_selector {
        "RequireDualStack"
    } else {
        "SingleStack"
    };
    if spec
        .get("ipFamilyPolicy")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        spec.insert("ipFamilyPolicy".into(), json!(policy));
    } else if spec["ipFamilyPolicy"] == "RequireDualStack" && !headless_without_selector {
        errors.push(FieldError::invalid(
            "spec.ipFamilyPolicy",
            "\"RequireDualStack\"".into(),
            "this cluster is not configured for dual-stack services",
        ));
    }
    let families = spec.get("ipFamilies").and_then(Value::as_array);
    if families.is_none_or(Vec::is_empty) {
        spec.insert("ipFamilies".into(), json!(["IPv4"]));
    } else if let Some(families) = families {
        for (i, family) in families.iter().enumerate() {
            if family != "IPv4" {
                errors.push(FieldError::invalid(
                    format!("spec.ipFamilies[{i}]"),
                    format!("{:?}", family.as_str().unwrap_or_default()),
                    "not configured on this cluster",
                ));
            }
        }
    }
}

/// Node ports on a Service type that has none.
pub(super) fn forbid_node_ports(svc: &Value, errors: &mut Vec<FieldError>) {
    let service_type = service_type(svc).to_owned();
    for (i, port) in svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if port.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
            errors.push(FieldError::forbidden(
                format!("spec.ports[{i}].nodePort"),
                format!("may not be used when `type` is '{service_type}'"),
            ));
        }
    }
}
