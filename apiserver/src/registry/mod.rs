//! The registry layer: every served resource and its rules, between admission above and storage
//! encoding below. Reads ([`list`]) and writes ([`write`], [`patch`]) follow kube-apiserver's
//! rules for names, metadata ([`meta`]), selectors, `/scale`, CRD schemas ([`crd`], [`schema`]),
//! versions ([`convert`], CRD [`conversion`] webhooks) and owners ([`gc`]).
//!
//! The served resources: built-in kinds (stored generically as JSON) and the resources of
//! established CRDs. Store keys are `/registry/<group>/<plural>/[<namespace>/]<name>` with the
//! core group spelled `core`; all versions of one resource share these keys and are stored in
//! one version ([`convert`]).
//!
//! [`builtin`] derives the built-in resources from k8s-openapi's types.

mod builtin;
pub mod conversion;
pub mod convert;
pub mod crd;
pub mod gc;
pub mod list;
pub mod meta;
pub mod patch;
pub mod scale;
pub mod schema;
pub mod selector;
pub mod write;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;

use crate::http::table::PrinterColumn;

pub use builtin::builtins;
pub(crate) use builtin::with_builtin_types;

/// The standard verbs of a fully served resource.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The verbs of a resource that only takes POSTs and stores nothing (access reviews).
pub const CREATE_ONLY: &[&str] = &["create"];

/// Where `/scale` finds replicas and the selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    /// JSON pointer, e.g. `/spec/replicas`.
    pub spec_replicas: String,
    pub status_replicas: String,
    /// Pointer to a selector; for built-ins a LabelSelector object, for CRs a string.
    pub label_selector: Option<String>,
}

/// How objects of a CRD are converted between versions.
#[derive(Debug, Clone, PartialEq)]
pub enum ConversionStrategy {
    /// Only `apiVersion` changes.
    None,
    /// The CRD's `spec.conversion.webhook.clientConfig` and review versions.
    Webhook { client_config: Value },
}

/// What a CRD-backed resource carries beyond a built-in one.
#[derive(Debug, Clone, PartialEq)]
pub struct CrdInfo {
    /// `<plural>.<group>`.
    pub crd_name: String,
    /// The version objects are stored in.
    pub storage_version: String,
    /// This version's `openAPIV3Schema`.
    pub schema: Option<Value>,
    pub printer_columns: Vec<PrinterColumn>,
    pub conversion: ConversionStrategy,
}

/// One served group/version/resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// "" for core.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    /// `status`, `scale`.
    pub subresources: Vec<String>,
    /// Scale subresource paths.
    pub scale: Option<ScalePaths>,
    /// `metadata.generation` is maintained (bumped on spec changes).
    pub generation: bool,
    /// PUT without `metadata.resourceVersion` is allowed.
    pub unconditional_update: bool,
    /// PUT on a missing object creates it.
    pub create_on_update: bool,
    /// Set for custom resources.
    pub crd: Option<CrdInfo>,
    /// The verbs served: [`VERBS`], or [`CREATE_ONLY`] for the reviews, which are answered
    /// without touching the store.
    pub verbs: &'static [&'static str],
}

impl Resource {
    /// Whether the resource is a review answered on POST and never stored.
    pub fn is_review(&self) -> bool {
        self.verbs == CREATE_ONLY
    }
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
    pub fn has_status(&self) -> bool {
        self.subresources.iter().any(|s| s == "status")
    }
    /// `/registry/<group>/<plural>/`, the group being the one the resource is stored in
    /// ([`convert::storage_group`]).
    pub fn prefix(&self) -> String {
        let g = convert::storage_group(&self.group, &self.plural);
        format!("/registry/{g}/{}/", self.plural)
    }
    /// The prefix of one namespace (or of all when None / cluster-scoped).
    pub fn collection_prefix(&self, namespace: Option<&str>) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{ns}/", self.prefix()),
            _ => self.prefix(),
        }
    }
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}{name}", self.collection_prefix(namespace))
    }
    /// Whether both are forms of the same stored objects (versions, or groups sharing storage).
    pub fn same_resource(&self, other: &Resource) -> bool {
        self.prefix() == other.prefix()
    }
}

/// The served resources at one moment, indexed for the lookups every request makes.
struct Snapshot {
    all: Vec<Arc<Resource>>,
    /// `group/version/plural` → index in `all`.
    index: HashMap<String, usize>,
    /// Groups in order of first appearance, each with its versions (preferred first).
    groups: Vec<(String, Vec<String>)>,
    /// Documents derived from this set of resources (OpenAPI), built once per snapshot.
    memo: Mutex<HashMap<String, Arc<Value>>>,
}

fn index_key(group: &str, version: &str, plural: &str) -> String {
    format!("{group}/{version}/{plural}")
}

impl Snapshot {
    fn new(all: Vec<Arc<Resource>>) -> Self {
        let mut index = HashMap::with_capacity(all.len());
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for (i, r) in all.iter().enumerate() {
            index
                .entry(index_key(&r.group, &r.version, &r.plural))
                .or_insert(i);
            match groups.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, vs)) => {
                    if !vs.contains(&r.version) {
                        vs.push(r.version.clone());
                    }
                }
                None => groups.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        for (_, vs) in &mut groups {
            vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        Self {
            all,
            index,
            groups,
            memo: Mutex::default(),
        }
    }
}

/// The live set of served resources; cheap to clone, shared by handlers and background tasks.
/// Lookups hand out `Arc`s of one immutable snapshot, replaced whole when CRDs change.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<RwLock<Arc<Snapshot>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// Built-ins only.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(RwLock::new(Arc::new(Snapshot::new(builtins().to_vec())))),
        }
    }
    fn snapshot(&self) -> Arc<Snapshot> {
        match self.inner.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
    /// All served resources.
    pub fn all(&self) -> Vec<Arc<Resource>> {
        self.snapshot().all.clone()
    }
    /// Replaces the CRD-backed resources.
    pub fn set_custom(&self, custom: Vec<Resource>) {
        let mut all = builtins().to_vec();
        all.extend(custom.into_iter().map(Arc::new));
        let snapshot = Arc::new(Snapshot::new(all));
        match self.inner.write() {
            Ok(mut g) => *g = snapshot,
            Err(p) => *p.into_inner() = snapshot,
        }
    }
    /// The resource served at `group/version/plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<Resource>> {
        let s = self.snapshot();
        let i = *s.index.get(&index_key(group, version, plural))?;
        s.all.get(i).cloned()
    }
    /// Whether `group/version` is served at all.
    pub fn serves_group_version(&self, group: &str, version: &str) -> bool {
        self.snapshot()
            .groups
            .iter()
            .any(|(g, vs)| g == group && vs.iter().any(|v| v == version))
    }
    /// Served groups in order of first appearance, each with its versions (preferred first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        self.snapshot().groups.clone()
    }
    /// The document `key` derived from the served resources by `build`, built once for each
    /// set of served resources (it is rebuilt after CRDs change).
    pub fn memo(&self, key: &str, build: impl FnOnce(&[Arc<Resource>]) -> Value) -> Arc<Value> {
        let s = self.snapshot();
        let cached = match s.memo.lock() {
            Ok(m) => m.get(key).cloned(),
            Err(p) => p.into_inner().get(key).cloned(),
        };
        if let Some(v) = cached {
            return v;
        }
        let v = Arc::new(build(&s.all));
        match s.memo.lock() {
            Ok(mut m) => m.insert(key.to_string(), v.clone()),
            Err(p) => p.into_inner().insert(key.to_string(), v.clone()),
        };
        v
    }
}

/// Kubernetes version ordering: GA > beta > alpha > other, higher numbers first.
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (class, num) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    match num.parse::<u32>() {
        Ok(n) => (class, major, n),
        Err(_) => (0, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout() {
        let reg = Registry::new();
        let cm = reg.find("", "v1", "configmaps").unwrap();
        assert_eq!(cm.key(Some("ns1"), "a"), "/registry/core/configmaps/ns1/a");
        let ns = reg.find("", "v1", "namespaces").unwrap();
        assert_eq!(ns.key(None, "ns1"), "/registry/core/namespaces/ns1");
        let d = reg.find("apps", "v1", "deployments").unwrap();
        assert_eq!(d.short_names, vec!["deploy"]);
        assert!(d.categories.contains(&"all".to_string()));
        assert!(d.subresources.contains(&"scale".to_string()));
    }

    #[test]
    fn memo_builds_once_per_set_of_resources() {
        let reg = Registry::new();
        let builds = std::cell::Cell::new(0);
        let count = |all: &[Arc<Resource>]| {
            builds.set(builds.get() + 1);
            Value::from(all.len())
        };
        let n = reg.memo("n", count);
        assert_eq!(reg.memo("n", count), n);
        assert_eq!(builds.get(), 1);
        let mut custom = (*reg.find("", "v1", "configmaps").unwrap()).clone();
        custom.group = "example.com".into();
        reg.set_custom(vec![custom]);
        assert_eq!(*reg.memo("n", count), Value::from(n.as_u64().unwrap() + 1));
        assert_eq!(builds.get(), 2);
        assert!(reg.find("example.com", "v1", "configmaps").is_some());
    }

    #[test]
    fn versions_sort_like_kube() {
        let mut v = vec!["v1alpha1", "v1beta2", "v2", "v1", "v1beta1", "foo"];
        v.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(v, vec!["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]);
    }
}
