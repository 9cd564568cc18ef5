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
        ("" | "events.k8s.io", "Event") => p(
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

/// kube prints both Event kinds alike; an events.k8s.io one is read under its core names.
fn event(o: &Value, now: &str) -> Vec<Value> {
    let core;
    let o = if o.get("apiVersion").and_then(Value::as_str) == Some("events.k8s.io/v1") {
        core = crate::registry::convert::event_as_core(o.clone());
        &core
    } else {
        o
    };
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
