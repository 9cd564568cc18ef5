//! kubectl's columns for built-in kinds (kube's `pkg/printers/internalversion`): column
//! definitions and the cells of one object. Most kinds are data in [`super::kinds`]; the kinds
//! here have rows that need a function of their own.

use serde_json::{Value, json};

use super::duration::{age, human_duration, parse_rfc3339};
use super::kinds::Col;

/// A column definition as `meta.k8s.io/v1` Table carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

impl Column {
    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "type": self.type_, "format": self.format,
               "description": self.description, "priority": self.priority})
    }
}

pub const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
pub const AGE_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

const fn c(
    name: &'static str,
    type_: &'static str,
    priority: i32,
    description: &'static str,
) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority,
    }
}

const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: NAME_DOC,
    priority: 0,
};
const AGE: Column = c("Age", "string", 0, AGE_DOC);
const CREATED_AT: Column = Column {
    name: "Created At",
    type_: "date",
    format: "",
    description: AGE_DOC,
    priority: 0,
};
const CONTAINERS: Column = c(
    "Containers",
    "string",
    1,
    "Names of each container in the template.",
);
const IMAGES: Column = c(
    "Images",
    "string",
    1,
    "Images referenced by each container in the template.",
);

/// How a printer fills a row.
pub enum Cells {
    /// A function giving every cell after `Name` (when `Name` comes first).
    Fn(fn(&Value, &str) -> Vec<Value>),
    /// One cell per column.
    Data(&'static [Col]),
}

/// The printer of one kind: its columns and how to fill a row.
pub struct Printer {
    pub columns: Vec<Column>,
    pub cells: Cells,
}

impl Printer {
    /// The cells of `item`; `now` is the RFC 3339 time ages are computed from.
    pub fn row(&self, item: &Value, now: &str) -> Vec<Value> {
        match &self.cells {
            Cells::Data(cols) => cols.iter().map(|c| c.cell.read(item, now)).collect(),
            Cells::Fn(f) => {
                let mut row = Vec::new();
                if self.columns.first().is_some_and(|c| c.name == "Name") {
                    row.push(item.pointer("/metadata/name").cloned().unwrap_or(json!("")));
                }
                row.extend(f(item, now));
                row
            }
        }
    }
}

/// kubectl's printer for a built-in kind; `Name` + `Created At` (kube's default table) for
/// kinds without one.
pub fn printer(group: &str, kind: &str) -> Printer {
    if let Some(cols) = super::kinds::find(group, kind) {
        let columns = cols
            .iter()
            .map(|c| Column {
                name: c.name,
                type_: c.type_,
                format: c.format,
                description: c.description,
                priority: c.priority,
            })
            .collect();
        return Printer {
            columns,
            cells: Cells::Data(cols),
        };
    }
    let p = |columns: Vec<Column>, cells: fn(&Value, &str) -> Vec<Value>| Printer {
        columns,
        cells: Cells::Fn(cells),
    };
    match (group, kind) {
        ("", "Pod") => p(
            vec![
                NAME,
                c(
                    "Ready",
                    "string",
                    0,
                    "The aggregate readiness state of this pod for accepting traffic.",
                ),
                c(
                    "Status",
                    "string",
                    0,
                    "The aggregate status of the containers in this pod.",
                ),
                c(
                    "Restarts",
                    "string",
                    0,
                    "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                ),
                AGE,
                c(
                    "IP",
                    "string",
                    1,
                    "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
                ),
                c(
                    "Node",
                    "string",
                    1,
                    "NodeName indicates in which node this pod is scheduled.",
                ),
                c(
                    "Nominated Node",
                    "string",
                    1,
                    "nominatedNodeName is set when this pod preempts other pods on the node.",
                ),
                c(
                    "Readiness Gates",
                    "string",
                    1,
                    "If specified, all readiness gates will be evaluated for pod readiness.",
                ),
            ],
            pod,
        ),
        ("", "Service") => p(
            vec![
                NAME,
                c(
                    "Type",
                    "string",
                    0,
                    "type determines how the Service is exposed.",
                ),
                c(
                    "Cluster-IP",
                    "string",
                    0,
                    "clusterIP is the IP address of the service.",
                ),
                c(
                    "External-IP",
                    "string",
                    0,
                    "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
                ),
                c(
                    "Port(s)",
                    "string",
                    0,
                    "The list of ports that are exposed by this service.",
                ),
                AGE,
                c(
                    "Selector",
                    "string",
                    1,
                    "Route service traffic to pods with label keys and values matching this selector.",
                ),
            ],
            service,
        ),
        ("", "Endpoints") => p(
            vec![
                NAME,
                c(
                    "Endpoints",
                    "string",
                    0,
                    "The set of all endpoints is the union of all subsets.",
                ),
                AGE,
            ],
            endpoints,
        ),
        ("", "Node") => p(
            vec![
                NAME,
                c("Status", "string", 0, "The status of the node"),
                c("Roles", "string", 0, "The roles of the node"),
                AGE,
                c(
                    "Version",
                    "string",
                    0,
                    "Kubelet Version reported by the node.",
                ),
            ],
            node,
        ),
        ("", "Event") => p(
            vec![
                c(
                    "Last Seen",
                    "string",
                    0,
                    "The time at which the most recent occurrence of this event was recorded.",
                ),
                c(
                    "Type",
                    "string",
                    0,
                    "Type of this event (Normal, Warning), new types could be added in the future",
                ),
                c(
                    "Reason",
                    "string",
                    0,
                    "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
                ),
                c(
                    "Object",
                    "string",
                    0,
                    "The object that this event is about.",
                ),
                c(
                    "Subobject",
                    "string",
                    1,
                    "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.",
                ),
                c(
                    "Source",
                    "string",
                    1,
                    "The component reporting this event. Should be a short machine understandable string.",
                ),
                c(
                    "Message",
                    "string",
                    0,
                    "A human-readable description of the status of this operation.",
                ),
                c(
                    "First Seen",
                    "string",
                    1,
                    "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
                ),
                c(
                    "Count",
                    "string",
                    1,
                    "The number of times this event has occurred.",
                ),
                Column {
                    priority: 1,
                    ..NAME
                },
            ],
            event,
        ),
        ("batch", "Job") => p(
            vec![
                NAME,
                c("Status", "string", 0, "Status of the job."),
                c(
                    "Completions",
                    "string",
                    0,
                    "The completion status of the job.",
                ),
                c(
                    "Duration",
                    "string",
                    0,
                    "Time required to complete the job.",
                ),
                AGE,
                CONTAINERS,
                IMAGES,
                c(
                    "Selector",
                    "string",
                    1,
                    "A label query over pods that should match the pod count.",
                ),
            ],
            job,
        ),
        ("networking.k8s.io", "Ingress") => p(
            vec![
                NAME,
                c(
                    "Class",
                    "string",
                    0,
                    "The name of the IngressClass resource that should be used for this Ingress.",
                ),
                c(
                    "Hosts",
                    "string",
                    0,
                    "Hosts that incoming requests are matched against before the ingress rule",
                ),
                c(
                    "Address",
                    "string",
                    0,
                    "Address is a list containing ingress points for the load-balancer",
                ),
                c(
                    "Ports",
                    "string",
                    0,
                    "Ports of TLS configurations that open",
                ),
                AGE,
            ],
            ingress,
        ),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => p(
            vec![
                NAME,
                c(
                    "Role",
                    "string",
                    0,
                    "RoleRef references the role this binding grants.",
                ),
                AGE,
                c("Users", "string", 1, "Users in the binding"),
                c("Groups", "string", 1, "Groups in the binding"),
                c(
                    "ServiceAccounts",
                    "string",
                    1,
                    "ServiceAccounts in the binding",
                ),
            ],
            binding,
        ),
        _ => p(vec![NAME, CREATED_AT], |o, _| {
            vec![s(o, "/metadata/creationTimestamp")]
        }),
    }
}

fn s(o: &Value, ptr: &str) -> Value {
    json!(o.pointer(ptr).and_then(Value::as_str).unwrap_or(""))
}

pub(super) fn int(o: &Value, ptr: &str) -> i64 {
    int_or(o, ptr, 0)
}

fn int_or(o: &Value, ptr: &str, default: i64) -> i64 {
    o.pointer(ptr).and_then(Value::as_i64).unwrap_or(default)
}

pub(super) fn len(o: &Value, ptr: &str) -> usize {
    match o.pointer(ptr) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

pub(super) fn age_of(o: &Value, now: &str) -> Value {
    json!(age(
        o.pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str),
        now
    ))
}

pub(super) fn none_if_empty(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

/// `k=v,k2=v2` of a string map, `<none>` when empty.
pub(super) fn map_string(m: Option<&Value>) -> String {
    let pairs: Vec<String> = m
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    none_if_empty(pairs.join(","))
}

/// A LabelSelector as kubectl prints it: `app=web,tier in (a,b),!legacy`.
pub fn selector_string(sel: Option<&Value>) -> String {
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(m)) = sel.and_then(|s| s.get("matchLabels")) {
        for (k, v) in m {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or_default())));
        }
    }
    for e in sel
        .and_then(|s| s.get("matchExpressions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let mut values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let text = match e
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort();
    none_if_empty(
        reqs.into_iter()
            .map(|(_, t)| t)
            .collect::<Vec<_>>()
            .join(","),
    )
}

pub(super) fn container_field(pod_spec: Option<&Value>, f: &str) -> String {
    pod_spec
        .and_then(|p| p.get("containers"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get(f).and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(",")
}

fn workload_wide(o: &Value, with_selector: bool) -> Vec<Value> {
    let pod = o.pointer("/spec/template/spec");
    let mut v = vec![
        json!(container_field(pod, "name")),
        json!(container_field(pod, "image")),
    ];
    if with_selector {
        v.push(json!(selector_string(o.pointer("/spec/selector"))));
    }
    v
}

fn pod(o: &Value, now: &str) -> Vec<Value> {
    let statuses = o
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total = len(o, "/spec/containers");
    let ready = statuses
        .iter()
        .filter(|s| s.get("ready").and_then(Value::as_bool) == Some(true))
        .count();
    let mut reason = o
        .pointer("/status/reason")
        .or_else(|| o.pointer("/status/phase"))
        .and_then(Value::as_str)
        .unwrap_or("Pending")
        .to_string();
    let inits = o
        .pointer("/status/initContainerStatuses")
        .and_then(Value::as_array);
    let init_total = len(o, "/spec/initContainers");
    let mut initializing = false;
    for (i, st) in inits.into_iter().flatten().enumerate() {
        let term = st.pointer("/state/terminated");
        if term.and_then(|t| t.get("exitCode")).and_then(Value::as_i64) == Some(0) {
            continue;
        }
        initializing = true;
        reason = match (
            term,
            st.pointer("/state/waiting/reason").and_then(Value::as_str),
        ) {
            (Some(t), _) => format!(
                "Init:{}",
                t.get("reason").and_then(Value::as_str).unwrap_or("Error")
            ),
            (None, Some(w)) if w != "PodInitializing" => format!("Init:{w}"),
            _ => format!("Init:{i}/{init_total}"),
        };
        break;
    }
    if !initializing {
        for st in statuses.iter().rev() {
            if let Some(w) = st.pointer("/state/waiting/reason").and_then(Value::as_str) {
                reason = w.to_string();
            } else if let Some(t) = st.pointer("/state/terminated") {
                reason = match t.get("reason").and_then(Value::as_str) {
                    Some(r) => r.to_string(),
                    None => match t.get("signal").and_then(Value::as_i64) {
                        Some(sig) if sig != 0 => format!("Signal:{sig}"),
                        _ => format!(
                            "ExitCode:{}",
                            t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                        ),
                    },
                };
            }
        }
    }
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        reason = if reason == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    let restarts: i64 = statuses
        .iter()
        .filter_map(|s| s.get("restartCount").and_then(Value::as_i64))
        .sum();
    let last_restart = statuses
        .iter()
        .filter_map(|s| {
            s.pointer("/lastState/terminated/finishedAt")
                .and_then(Value::as_str)
        })
        .filter_map(|t| parse_rfc3339(t).map(|secs| (secs, t)))
        .max();
    let restarts = match (last_restart, parse_rfc3339(now)) {
        (Some((t, _)), Some(n)) if restarts > 0 => {
            format!("{restarts} ({} ago)", human_duration(n - t))
        }
        _ => restarts.to_string(),
    };
    let gates = len(o, "/spec/readinessGates");
    let gates = if gates == 0 {
        "<none>".to_string()
    } else {
        let conds = o.pointer("/status/conditions").and_then(Value::as_array);
        let true_gates = o
            .pointer("/spec/readinessGates")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|g| {
                conds.into_iter().flatten().any(|c| {
                    c.get("type") == g.get("conditionType")
                        && c.get("status") == Some(&json!("True"))
                })
            })
            .count();
        format!("{true_gates}/{gates}")
    };
    let or_none = |p: &str| json!(o.pointer(p).and_then(Value::as_str).unwrap_or("<none>"));
    vec![
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        age_of(o, now),
        or_none("/status/podIP"),
        or_none("/spec/nodeName"),
        or_none("/status/nominatedNodeName"),
        json!(gates),
    ]
}

fn service(o: &Value, now: &str) -> Vec<Value> {
    let ty = o
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    let strs = |p: &str| -> Vec<String> {
        o.pointer(p)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let external_ips = strs("/spec/externalIPs");
    let external = match ty {
        "ClusterIP" | "NodePort" => none_if_empty(external_ips.join(",")),
        "LoadBalancer" => {
            let mut ips: Vec<String> = o
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    i.get("ip")
                        .or_else(|| i.get("hostname"))
                        .and_then(Value::as_str)
                })
                .map(str::to_string)
                .collect();
            ips.extend(external_ips);
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        "ExternalName" => o
            .pointer("/spec/externalName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        _ => "<unknown>".into(),
    };
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
    let cluster_ip = o
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("");
    vec![
        json!(ty),
        json!(none_if_empty(cluster_ip.to_string())),
        json!(external),
        json!(none_if_empty(ports.join(","))),
        age_of(o, now),
        json!(map_string(o.pointer("/spec/selector"))),
    ]
}

fn endpoints(o: &Value, now: &str) -> Vec<Value> {
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
    let more = eps.len().saturating_sub(3);
    let mut text = eps.into_iter().take(3).collect::<Vec<_>>().join(",");
    if more > 0 {
        text.push_str(&format!(" + {more} more..."));
    }
    vec![json!(none_if_empty(text)), age_of(o, now)]
}

fn node(o: &Value, now: &str) -> Vec<Value> {
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
    vec![
        json!(status),
        json!(none_if_empty(roles.join(","))),
        age_of(o, now),
        s(o, "/status/nodeInfo/kubeletVersion"),
    ]
}

fn event(o: &Value, now: &str) -> Vec<Value> {
    let ts = |p: &str| o.pointer(p).and_then(Value::as_str);
    let first_ts = ts("/firstTimestamp")
        .or_else(|| ts("/eventTime"))
        .or_else(|| ts("/metadata/creationTimestamp"));
    let last_ts = ts("/lastTimestamp")
        .or_else(|| ts("/series/lastObservedTime"))
        .or(first_ts);
    let first = age(first_ts, now);
    let mut last = age(last_ts, now);
    let count = o.pointer("/count").and_then(Value::as_i64).unwrap_or(1);
    if count > 1 {
        last = format!("{last} (x{count} over {first})");
    }
    let kind = o
        .pointer("/involvedObject/kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = o
        .pointer("/involvedObject/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let source = o
        .pointer("/source/component")
        .and_then(Value::as_str)
        .map(
            |c| match o.pointer("/source/host").and_then(Value::as_str) {
                Some(h) if !h.is_empty() => format!("{c}, {h}"),
                _ => c.to_string(),
            },
        )
        .or_else(|| {
            o.pointer("/reportingComponent")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    vec![
        json!(last),
        s(o, "/type"),
        s(o, "/reason"),
        json!(format!("{}/{name}", kind.to_lowercase())),
        s(o, "/involvedObject/fieldPath"),
        json!(source),
        json!(
            o.pointer("/message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
        ),
        json!(first),
        json!(count.to_string()),
        s(o, "/metadata/name"),
    ]
}

fn job(o: &Value, now: &str) -> Vec<Value> {
    let conds: Vec<&Value> = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("status") == Some(&json!("True")))
        .collect();
    let has = |t: &str| conds.iter().any(|c| c.get("type") == Some(&json!(t)));
    let status = if has("Failed") {
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
    };
    let succeeded = int(o, "/status/succeeded");
    let completions = match o.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(n) => format!("{succeeded}/{n}"),
        None => match o.pointer("/spec/parallelism").and_then(Value::as_i64) {
            Some(p) if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = o
        .pointer("/status/startTime")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339);
    let end = o
        .pointer("/status/completionTime")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
        .or_else(|| parse_rfc3339(now));
    let duration = match (start, end) {
        (Some(s), Some(e)) => human_duration(e - s),
        _ => String::new(),
    };
    let mut v = vec![
        json!(status),
        json!(completions),
        json!(duration),
        age_of(o, now),
    ];
    v.extend(workload_wide(o, true));
    v
}

fn ingress(o: &Value, now: &str) -> Vec<Value> {
    let class = o
        .pointer("/spec/ingressClassName")
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let hosts: Vec<&str> = o
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| r.get("host").and_then(Value::as_str).unwrap_or("*"))
        .collect();
    let hosts = if hosts.is_empty() {
        "*".to_string()
    } else if hosts.len() > 3 {
        format!("{} + {} more...", hosts[..3].join(","), hosts.len() - 3)
    } else {
        hosts.join(",")
    };
    let address: Vec<&str> = o
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| {
            i.get("ip")
                .or_else(|| i.get("hostname"))
                .and_then(Value::as_str)
        })
        .collect();
    let ports = if len(o, "/spec/tls") > 0 {
        "80, 443"
    } else {
        "80"
    };
    vec![
        json!(class),
        json!(hosts),
        json!(address.join(",")),
        json!(ports),
        age_of(o, now),
    ]
}

fn binding(o: &Value, now: &str) -> Vec<Value> {
    let subjects: Vec<&Value> = o
        .pointer("/subjects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let of = |kind: &str| -> String {
        subjects
            .iter()
            .filter(|s| s.get("kind") == Some(&json!(kind)))
            .map(|s| {
                let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
                match (kind, s.get("namespace").and_then(Value::as_str)) {
                    ("ServiceAccount", Some(ns)) => format!("{ns}/{name}"),
                    _ => name.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let role = format!(
        "{}/{}",
        o.pointer("/roleRef/kind")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        o.pointer("/roleRef/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    );
    vec![
        json!(role),
        age_of(o, now),
        json!(of("User")),
        json!(of("Group")),
        json!(of("ServiceAccount")),
    ]
}
