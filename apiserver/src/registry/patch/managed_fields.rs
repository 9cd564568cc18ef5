//! `metadata.managedFields`: field sets in the FieldsV1 format (`f:spec: {f:replicas: {}}`,
//! `k:{"name":"nginx"}` for items of keyed lists, `v:"a"` for set items, `.: {}` when a node with
//! children is owned itself), the entries of each manager, and the walks that turn an object or
//! the difference of two objects into a field set.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::strategy::{ListKind, Ty, field};

/// One path element in FieldsV1 spelling: `f:name`, `k:{"name":"x"}`, `v:"x"`, `i:0`.
pub type Path = Vec<String>;

/// A set of owned field paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(pub BTreeSet<Path>);

#[derive(Default)]
struct Node {
    own: bool,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn to_json(&self) -> Value {
        let mut m: Map<String, Value> = self
            .children
            .iter()
            .map(|(k, n)| (k.clone(), n.to_json()))
            .collect();
        if self.own && !m.is_empty() {
            m.insert(".".into(), json!({}));
        }
        Value::Object(m)
    }
}

impl FieldSet {
    /// Reads a `fieldsV1` value.
    pub fn from_fields_v1(v: &Value) -> Self {
        fn walk(v: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
            let Value::Object(m) = v else { return };
            if !path.is_empty() && (m.is_empty() || m.contains_key(".")) {
                out.insert(path.clone());
            }
            for (k, child) in m {
                if k != "." {
                    path.push(k.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(v, &mut Vec::new(), &mut out);
        Self(out)
    }

    /// Writes the `fieldsV1` value.
    pub fn to_fields_v1(&self) -> Value {
        let mut root = Node::default();
        for path in &self.0 {
            let mut node = &mut root;
            for pe in path {
                node = node.children.entry(pe.clone()).or_default();
            }
            node.own = true;
        }
        root.to_json()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, path: &[String]) -> bool {
        self.0.contains(path)
    }

    /// True when the set holds `path` or anything below it.
    pub fn touches(&self, path: &[String]) -> bool {
        self.0.iter().any(|p| p.starts_with(path))
    }

    /// True when `path` has owned paths below it (it is not a leaf of this set).
    pub fn has_children(&self, path: &[String]) -> bool {
        self.0
            .iter()
            .any(|p| p.len() > path.len() && p.starts_with(path))
    }

    pub fn union(&self, other: &Self) -> Self {
        Self(self.0.union(&other.0).cloned().collect())
    }

    pub fn difference(&self, other: &Self) -> Self {
        Self(self.0.difference(&other.0).cloned().collect())
    }

    /// Removes `path` and everything below it.
    pub fn remove_tree(&mut self, path: &[String]) {
        self.0.retain(|p| !p.starts_with(path));
    }
}

/// Paths never tracked: identity and server-set metadata (kube strips the same ones).
fn ignored(path: &[String]) -> bool {
    match path {
        [a] => a == "f:apiVersion" || a == "f:kind",
        [m, f] if m == "f:metadata" => matches!(
            f.as_str(),
            "f:name"
                | "f:namespace"
                | "f:uid"
                | "f:resourceVersion"
                | "f:generation"
                | "f:creationTimestamp"
                | "f:deletionTimestamp"
                | "f:deletionGracePeriodSeconds"
                | "f:managedFields"
                | "f:selfLink"
        ),
        _ => false,
    }
}

/// Maps treated as one value (kube's `+mapType=atomic` / `+structType=atomic`).
fn atomic_map(ty: Ty, name: &str) -> bool {
    matches!(
        (ty, name),
        (Ty::WorkloadSpec | Ty::JobSpec | Ty::ServiceSpec, "selector")
    )
}

/// The path element of a keyed list item.
pub fn key_pe(key: &str, id: &Value) -> String {
    let mut m = Map::new();
    m.insert(key.to_string(), id.clone());
    format!("k:{}", Value::Object(m))
}

/// The set of fields a (partial) object sets: what an applier owns.
pub fn object_set(obj: &Value, root: Ty) -> FieldSet {
    let mut out = BTreeSet::new();
    if let Value::Object(m) = obj {
        walk_set(m, root, &mut Vec::new(), &mut out);
    }
    out.retain(|p| !ignored(p) && !p.iter().enumerate().any(|(i, _)| ignored(&p[..=i])));
    FieldSet(out)
}

fn walk_set(m: &Map<String, Value>, ty: Ty, path: &mut Path, out: &mut BTreeSet<Path>) {
    for (k, v) in m {
        let info = field(ty, k);
        path.push(format!("f:{k}"));
        match v {
            Value::Object(child) if !child.is_empty() && !atomic_map(ty, k) => {
                walk_set(child, info.ty, path, out);
            }
            Value::Array(items) => match info.list {
                ListKind::Atomic => {
                    out.insert(path.clone());
                }
                ListKind::Set => {
                    for item in items {
                        path.push(format!("v:{item}"));
                        out.insert(path.clone());
                        path.pop();
                    }
                }
                ListKind::Map(key) => {
                    for item in items {
                        let (Some(id), Value::Object(im)) = (item.get(key), item) else {
                            continue;
                        };
                        path.push(key_pe(key, id));
                        out.insert(path.clone());
                        walk_set(im, info.ty, path, out);
                        path.pop();
                    }
                }
            },
            _ => {
                out.insert(path.clone());
            }
        }
        path.pop();
    }
}

/// Non-pointer structs of the API: always present in kube's typed objects, so never "added".
fn always_present(name: &str) -> bool {
    matches!(
        name,
        "f:spec" | "f:status" | "f:metadata" | "f:template" | "f:jobTemplate" | "f:strategy"
    )
}

/// What changed from `old` to `new`: (modified or added paths, removed paths).
pub fn diff_sets(old: Option<&Value>, new: &Value, root: Ty) -> (FieldSet, FieldSet) {
    let mut changed = BTreeSet::new();
    let mut removed = BTreeSet::new();
    diff(
        old,
        new,
        root,
        &mut Vec::new(),
        &mut changed,
        &mut removed,
        None,
    );
    changed.retain(|p: &Path| !(0..p.len()).any(|i| ignored(&p[..=i])));
    removed.retain(|p: &Path| !(0..p.len()).any(|i| ignored(&p[..=i])));
    (FieldSet(changed), FieldSet(removed))
}

fn diff(
    old: Option<&Value>,
    new: &Value,
    ty: Ty,
    path: &mut Path,
    changed: &mut BTreeSet<Path>,
    removed: &mut BTreeSet<Path>,
    parent: Option<(Ty, &str)>,
) {
    let atomic = parent.is_some_and(|(t, n)| atomic_map(t, n));
    match new {
        Value::Object(nm) if !nm.is_empty() && !atomic => {
            let om = old.and_then(Value::as_object);
            if om.is_none() && !path.is_empty() && !path.last().is_some_and(|l| always_present(l)) {
                changed.insert(path.clone());
            }
            for (k, v) in nm {
                path.push(format!("f:{k}"));
                let info = field(ty, k);
                let ov = om.and_then(|m| m.get(k));
                match (v, info.list) {
                    (Value::Array(items), ListKind::Map(key)) => {
                        diff_keyed(ov, items, key, info.ty, path, changed, removed);
                    }
                    (Value::Array(items), ListKind::Set) => {
                        let olds = ov.and_then(Value::as_array);
                        for item in items {
                            if !olds.is_some_and(|o| o.contains(item)) {
                                path.push(format!("v:{item}"));
                                changed.insert(path.clone());
                                path.pop();
                            }
                        }
                        for item in olds.into_iter().flatten() {
                            if !items.contains(item) {
                                path.push(format!("v:{item}"));
                                removed.insert(path.clone());
                                path.pop();
                            }
                        }
                    }
                    _ => diff(ov, v, info.ty, path, changed, removed, Some((ty, k))),
                }
                path.pop();
            }
            for k in om.into_iter().flat_map(|m| m.keys()) {
                if !nm.contains_key(k) {
                    path.push(format!("f:{k}"));
                    removed.insert(path.clone());
                    path.pop();
                }
            }
        }
        _ => {
            if old != Some(new) && !path.is_empty() {
                changed.insert(path.clone());
            }
        }
    }
}

fn diff_keyed(
    old: Option<&Value>,
    items: &[Value],
    key: &str,
    ty: Ty,
    path: &mut Path,
    changed: &mut BTreeSet<Path>,
    removed: &mut BTreeSet<Path>,
) {
    let olds: &[Value] = old.and_then(Value::as_array).map_or(&[], Vec::as_slice);
    for item in items {
        let Some(id) = item.get(key) else { continue };
        let prev = olds.iter().find(|o| o.get(key) == Some(id));
        path.push(key_pe(key, id));
        if prev.is_none() {
            changed.insert(path.clone());
        }
        if let Value::Object(_) = item {
            diff(prev, item, ty, path, changed, removed, None);
            // `diff` marks an added map itself; the item path is already marked above.
        }
        path.pop();
    }
    for o in olds {
        let Some(id) = o.get(key) else { continue };
        if !items.iter().any(|i| i.get(key) == Some(id)) {
            path.push(key_pe(key, id));
            removed.insert(path.clone());
            path.pop();
        }
    }
}

/// The value at a FieldsV1 path.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for pe in path {
        cur = step(cur, pe)?;
    }
    Some(cur)
}

fn matches_pe(item: &Value, pe: &str) -> bool {
    if let Some(k) = pe.strip_prefix("k:") {
        let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(k) else {
            return false;
        };
        keys.iter().all(|(k, v)| item.get(k) == Some(v))
    } else if let Some(v) = pe.strip_prefix("v:") {
        serde_json::from_str::<Value>(v).is_ok_and(|v| &v == item)
    } else {
        false
    }
}

fn step<'a>(cur: &'a Value, pe: &str) -> Option<&'a Value> {
    if let Some(f) = pe.strip_prefix("f:") {
        return cur.get(f);
    }
    if let Some(i) = pe.strip_prefix("i:") {
        return cur.get(i.parse::<usize>().ok()?);
    }
    cur.as_array()?.iter().find(|item| matches_pe(item, pe))
}

/// Removes the value at a FieldsV1 path; returns whether something was removed.
pub fn remove_at(obj: &mut Value, path: &[String]) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    let mut cur = obj;
    for pe in parent {
        let next = if let Some(f) = pe.strip_prefix("f:") {
            cur.get_mut(f)
        } else if let Some(i) = pe.strip_prefix("i:") {
            i.parse::<usize>().ok().and_then(|i| cur.get_mut(i))
        } else {
            cur.as_array_mut()
                .and_then(|a| a.iter_mut().find(|item| matches_pe(item, pe)))
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        return cur.as_object_mut().is_some_and(|m| m.remove(f).is_some());
    }
    let Some(list) = cur.as_array_mut() else {
        return false;
    };
    let before = list.len();
    list.retain(|item| !matches_pe(item, last));
    before != list.len()
}

/// A path as kube prints it in conflicts: `.spec.template.spec.containers[name="nginx"].image`.
pub fn path_string(path: &[String]) -> String {
    let mut s = String::new();
    for pe in path {
        if let Some(f) = pe.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = pe.strip_prefix("k:") {
            let inner = match serde_json::from_str::<Value>(k) {
                Ok(Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
                _ => k.to_string(),
            };
            s.push_str(&format!("[{inner}]"));
        } else if let Some(v) = pe.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        } else if let Some(i) = pe.strip_prefix("i:") {
            s.push_str(&format!("[{i}]"));
        }
    }
    s
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedEntry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl ManagedEntry {
    /// Managers are told apart by name, operation and subresource, as in kube.
    pub fn same_manager(&self, manager: &str, operation: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.is_none()
    }

    /// How kube names this manager in conflict messages.
    pub fn description(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), json!(s));
        }
        Value::Object(m)
    }

    pub fn from_json(v: &Value) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Self {
            manager: s("manager").unwrap_or_default(),
            operation: s("operation")?,
            api_version: s("apiVersion").unwrap_or_default(),
            time: s("time"),
            subresource: s("subresource"),
            fields: v
                .get("fieldsV1")
                .map(FieldSet::from_fields_v1)
                .unwrap_or_default(),
        })
    }
}

/// The managedFields entries of an object.
pub fn entries(obj: &Value) -> Vec<ManagedEntry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(ManagedEntry::from_json).collect())
        .unwrap_or_default()
}

/// Writes entries (those with an empty set dropped) into `obj.metadata.managedFields`.
pub fn set_entries(obj: &mut Value, entries: &[ManagedEntry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(ManagedEntry::to_json)
        .collect();
    if !obj.is_object() {
        return;
    }
    let meta = obj
        .as_object_mut()
        .map(|o| o.entry("metadata").or_insert_with(|| json!({})));
    if let Some(Value::Object(meta)) = meta {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::strategy::root;
    use super::*;

    #[test]
    fn fields_v1_round_trip_with_dot_and_keys() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}
            }}}}
        });
        let set = FieldSet::from_fields_v1(&v);
        assert!(set.contains(&["f:spec".into(), "f:replicas".into()]));
        assert!(set.contains(&["f:metadata".into(), "f:labels".into()]));
        assert!(!set.contains(&["f:spec".into()]));
        assert_eq!(set.to_fields_v1(), v);
    }

    #[test]
    fn object_set_uses_keys_sets_and_atomic_selector() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["x"]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
              "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}});
        let set = object_set(&obj, root("apps", "Deployment"));
        assert_eq!(
            set.to_fields_v1(),
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}, "f:finalizers": {"v:\"x\"": {}}},
                "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}
                }}}}
            })
        );
    }

    #[test]
    fn path_strings_and_lookup() {
        let obj = json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
        let p: Path = vec![
            "f:spec".into(),
            "f:containers".into(),
            key_pe("name", &json!("a")),
            "f:image".into(),
        ];
        assert_eq!(path_string(&p), ".spec.containers[name=\"a\"].image");
        assert_eq!(value_at(&obj, &p), Some(&json!("x")));
        let mut obj2 = obj.clone();
        assert!(remove_at(&mut obj2, &p[..3]));
        assert_eq!(obj2, json!({"spec": {"containers": []}}));
    }
}
