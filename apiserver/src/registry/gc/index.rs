//! The garbage collector's view of the store, without I/O: for every object the few metadata
//! fields deletion depends on, the owner graph (uid → key, owner uid → dependents) and each
//! namespace's content. Applying a change returns the keys whose decision it may change, and
//! [`Index::plan`] turns one key into the writes due for it — so a change costs work for the
//! objects it touches, not for the whole store.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;

/// Where namespaces are stored.
pub const NS_PREFIX: &str = "/registry/core/namespaces/";
const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

/// What the collector keeps of one object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    /// The version this describes: writes are made only against it.
    pub rev: i64,
    pub uid: String,
    /// Uids of `metadata.ownerReferences`.
    pub owners: Vec<String>,
    pub namespace: Option<String>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    pub finalizers: Vec<String>,
    /// For namespaces: `spec.finalizers` still lists something.
    pub spec_finalizers: bool,
}

#[derive(Deserialize)]
struct Partial {
    #[serde(default)]
    metadata: PartialMeta,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PartialMeta {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    deletion_timestamp: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    finalizers: Vec<String>,
    #[serde(default)]
    owner_references: Vec<OwnerRef>,
}

#[derive(Deserialize)]
struct OwnerRef {
    #[serde(default)]
    uid: String,
}

#[derive(Deserialize)]
struct NamespaceSpec {
    #[serde(default)]
    spec: Option<NamespaceFinalizers>,
}

#[derive(Deserialize)]
struct NamespaceFinalizers {
    #[serde(default)]
    finalizers: Vec<serde::de::IgnoredAny>,
}

impl Meta {
    /// Reads the stored object at `key`; None for a value that is not an object (skipped, as
    /// LIST skips it).
    pub fn parse(key: &str, value: &[u8], rev: i64) -> Option<Meta> {
        let p: Partial = serde_json::from_slice(value).ok()?;
        let spec_finalizers = key.starts_with(NS_PREFIX)
            && serde_json::from_slice::<NamespaceSpec>(value)
                .ok()
                .and_then(|n| n.spec)
                .is_some_and(|s| !s.finalizers.is_empty());
        let m = p.metadata;
        Some(Meta {
            rev,
            uid: m.uid,
            owners: m
                .owner_references
                .into_iter()
                .map(|o| o.uid)
                .filter(|u| !u.is_empty())
                .collect(),
            namespace: m.namespace.filter(|n| !n.is_empty()),
            deleting: m.deletion_timestamp.is_some(),
            finalizers: m.finalizers,
            spec_finalizers,
        })
    }

    fn has(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }

    /// Deleting it would change something: it is not already waiting for its finalizers.
    fn deletable(&self) -> bool {
        !self.deleting || self.finalizers.is_empty()
    }
}

/// A write the collector makes, always against the version `rev` it decided on (a newer
/// version means a newer event, which is decided again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Delete as the API does: an object with finalizers gets a deletionTimestamp and stays.
    Delete {
        key: String,
        rev: i64,
        finalizers: bool,
    },
    /// Drop the owner reference to `owner` (the owner is being deleted with `orphan`).
    RemoveOwnerRef {
        key: String,
        rev: i64,
        owner: String,
    },
    /// Drop `finalizer`; the object goes if it is being deleted and none are left.
    RemoveFinalizer {
        key: String,
        rev: i64,
        finalizer: &'static str,
    },
    /// An emptied namespace being deleted: clear `spec.finalizers` and remove it.
    FinishNamespace { key: String, rev: i64 },
}

/// Objects by key with the owner graph and namespace content.
#[derive(Debug, Default)]
pub struct Index {
    objects: HashMap<String, Meta>,
    by_uid: HashMap<String, String>,
    dependents: HashMap<String, BTreeSet<String>>,
    content: HashMap<String, BTreeSet<String>>,
}

impl Index {
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.objects.keys()
    }

    /// Records `key` at `meta` (None: absent); returns the keys whose plan may have changed.
    pub fn set(&mut self, key: &str, meta: Option<Meta>) -> BTreeSet<String> {
        let old = self.unlink(key);
        if let Some(m) = &meta {
            self.link(key, m);
        }
        let mut affected = BTreeSet::new();
        for m in old.iter().chain(meta.iter()) {
            for owner in &m.owners {
                affected.extend(self.by_uid.get(owner).cloned());
            }
            if let Some(ns) = &m.namespace {
                let ns_key = format!("{NS_PREFIX}{ns}");
                if self.objects.contains_key(&ns_key) {
                    affected.insert(ns_key);
                }
            }
        }
        if let Some(o) = &old
            && !self.by_uid.contains_key(&o.uid)
        {
            affected.extend(self.dependents.get(&o.uid).into_iter().flatten().cloned());
        }
        if let Some(m) = meta {
            self.objects.insert(key.to_string(), m);
            affected.insert(key.to_string());
        }
        affected
    }

    fn link(&mut self, key: &str, m: &Meta) {
        if !m.uid.is_empty() {
            self.by_uid.insert(m.uid.clone(), key.to_string());
        }
        for owner in &m.owners {
            self.dependents
                .entry(owner.clone())
                .or_default()
                .insert(key.to_string());
        }
        if let Some(ns) = content_of(key, m) {
            self.content
                .entry(ns.to_string())
                .or_default()
                .insert(key.to_string());
        }
    }

    fn unlink(&mut self, key: &str) -> Option<Meta> {
        let old = self.objects.remove(key)?;
        if self.by_uid.get(&old.uid).is_some_and(|k| k == key) {
            self.by_uid.remove(&old.uid);
        }
        for owner in &old.owners {
            remove_from(&mut self.dependents, owner, key);
        }
        if let Some(ns) = content_of(key, &old) {
            remove_from(&mut self.content, ns, key);
        }
        Some(old)
    }

    fn delete(&self, key: &str) -> Option<Action> {
        let m = self.objects.get(key)?;
        m.deletable().then(|| Action::Delete {
            key: key.to_string(),
            rev: m.rev,
            finalizers: !m.finalizers.is_empty(),
        })
    }

    /// The writes due for `key` now, in order (kube's garbage collector and namespace
    /// controller): an owner being deleted with `orphan` releases its dependents, then drops
    /// the finalizer; with `foregroundDeletion` it deletes its dependents and drops the finalizer
    /// once none is left; an object all of whose owners are gone is deleted; a namespace being
    /// deleted deletes its content and, once empty, goes itself.
    pub fn plan(&self, key: &str) -> Vec<Action> {
        let Some(m) = self.objects.get(key) else {
            return Vec::new();
        };
        let deps = self.dependents.get(&m.uid).filter(|_| !m.uid.is_empty());
        let finalizer = |finalizer| Action::RemoveFinalizer {
            key: key.to_string(),
            rev: m.rev,
            finalizer,
        };
        if m.deleting && m.has(ORPHAN) {
            let mut out: Vec<Action> = deps
                .into_iter()
                .flatten()
                .filter_map(|d| {
                    Some(Action::RemoveOwnerRef {
                        key: d.clone(),
                        rev: self.objects.get(d)?.rev,
                        owner: m.uid.clone(),
                    })
                })
                .collect();
            out.push(finalizer(ORPHAN));
            return out;
        }
        if m.deleting && m.has(FOREGROUND) {
            return match deps.filter(|d| !d.is_empty()) {
                None => vec![finalizer(FOREGROUND)],
                Some(deps) => deps.iter().filter_map(|d| self.delete(d)).collect(),
            };
        }
        let mut out = Vec::new();
        if !m.owners.is_empty() && m.owners.iter().all(|u| !self.by_uid.contains_key(u)) {
            out.extend(self.delete(key));
        }
        if let Some(name) = key.strip_prefix(NS_PREFIX)
            && m.deleting
        {
            match self.content.get(name).filter(|c| !c.is_empty()) {
                Some(content) => out.extend(content.iter().filter_map(|c| self.delete(c))),
                None if m.spec_finalizers || m.finalizers.is_empty() => {
                    out.push(Action::FinishNamespace {
                        key: key.to_string(),
                        rev: m.rev,
                    })
                }
                None => {}
            }
        }
        out
    }
}

/// The namespace whose content `key` is (namespaces themselves are nobody's content).
fn content_of<'a>(key: &str, m: &'a Meta) -> Option<&'a str> {
    (!key.starts_with(NS_PREFIX))
        .then_some(m.namespace.as_deref())
        .flatten()
}

fn remove_from(map: &mut HashMap<String, BTreeSet<String>>, at: &str, key: &str) {
    if let Some(set) = map.get_mut(at) {
        set.remove(key);
        if set.is_empty() {
            map.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn meta(key: &str, obj: serde_json::Value, rev: i64) -> Option<Meta> {
        Meta::parse(key, obj.to_string().as_bytes(), rev)
    }

    fn cm(name: &str, uid: &str, owners: &[&str]) -> serde_json::Value {
        let refs: Vec<_> = owners.iter().map(|u| json!({"uid": u})).collect();
        json!({"metadata": {"name": name, "namespace": "ns", "uid": uid, "ownerReferences": refs}})
    }

    const A: &str = "/registry/core/configmaps/ns/a";
    const B: &str = "/registry/core/configmaps/ns/b";
    const C: &str = "/registry/core/configmaps/ns/c";

    fn owner_and_dependent() -> Index {
        let mut ix = Index::default();
        ix.set(A, meta(A, cm("a", "ua", &[]), 1));
        ix.set(B, meta(B, cm("b", "ub", &["ua"]), 2));
        ix
    }

    #[test]
    fn a_deleted_owner_affects_and_deletes_its_dependents_only() {
        let mut ix = owner_and_dependent();
        ix.set(C, meta(C, cm("c", "uc", &[]), 3));
        assert!(ix.plan(B).is_empty());
        let affected = ix.set(A, None);
        assert_eq!(affected, BTreeSet::from([B.to_string()]));
        assert_eq!(
            ix.plan(B),
            vec![Action::Delete {
                key: B.into(),
                rev: 2,
                finalizers: false
            }]
        );
        assert!(ix.plan(C).is_empty());
    }

    #[test]
    fn a_dependent_with_one_owner_left_stays() {
        let mut ix = owner_and_dependent();
        ix.set(C, meta(C, cm("c", "uc", &[]), 3));
        ix.set(B, meta(B, cm("b", "ub", &["ua", "uc"]), 4));
        ix.set(A, None);
        assert!(ix.plan(B).is_empty());
    }

    #[test]
    fn a_dependent_created_for_a_missing_owner_is_deleted() {
        let mut ix = Index::default();
        let affected = ix.set(B, meta(B, cm("b", "ub", &["gone"]), 2));
        assert_eq!(affected, BTreeSet::from([B.to_string()]));
        assert!(matches!(ix.plan(B)[..], [Action::Delete { .. }]));
    }

    #[test]
    fn orphan_releases_dependents_then_drops_the_finalizer() {
        let mut ix = owner_and_dependent();
        let mut a = cm("a", "ua", &[]);
        a["metadata"]["deletionTimestamp"] = json!("now");
        a["metadata"]["finalizers"] = json!(["orphan"]);
        ix.set(A, meta(A, a, 5));
        assert_eq!(
            ix.plan(A),
            vec![
                Action::RemoveOwnerRef {
                    key: B.into(),
                    rev: 2,
                    owner: "ua".into()
                },
                Action::RemoveFinalizer {
                    key: A.into(),
                    rev: 5,
                    finalizer: "orphan"
                }
            ]
        );
    }

    #[test]
    fn foreground_waits_for_dependents_and_their_deletion_wakes_the_owner() {
        let mut ix = owner_and_dependent();
        let mut a = cm("a", "ua", &[]);
        a["metadata"]["deletionTimestamp"] = json!("now");
        a["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
        ix.set(A, meta(A, a, 5));
        assert!(matches!(&ix.plan(A)[..], [Action::Delete { key, .. }] if key == B));
        let affected = ix.set(B, None);
        assert!(affected.contains(A));
        assert!(matches!(
            ix.plan(A)[..],
            [Action::RemoveFinalizer {
                finalizer: "foregroundDeletion",
                ..
            }]
        ));
    }

    #[test]
    fn a_terminating_namespace_deletes_content_then_finishes() {
        let ns = format!("{NS_PREFIX}ns");
        let mut ix = owner_and_dependent();
        let terminating = json!({"metadata": {"name": "ns", "uid": "un", "deletionTimestamp": "now"},
            "spec": {"finalizers": ["kubernetes"]}});
        ix.set(&ns, meta(&ns, terminating, 6));
        assert_eq!(ix.plan(&ns).len(), 2);
        ix.set(A, None);
        let affected = ix.set(B, None);
        assert!(affected.contains(&ns));
        assert_eq!(
            ix.plan(&ns),
            vec![Action::FinishNamespace { key: ns, rev: 6 }]
        );
    }

    #[test]
    fn objects_waiting_for_finalizers_are_not_deleted_again() {
        let mut ix = Index::default();
        let mut b = cm("b", "ub", &["gone"]);
        b["metadata"]["finalizers"] = json!(["example.com/keep"]);
        ix.set(B, meta(B, b.clone(), 2));
        assert!(matches!(
            ix.plan(B)[..],
            [Action::Delete {
                finalizers: true,
                ..
            }]
        ));
        b["metadata"]["deletionTimestamp"] = json!("now");
        ix.set(B, meta(B, b, 3));
        assert!(ix.plan(B).is_empty());
    }

    #[test]
    fn a_value_that_is_not_an_object_is_not_indexed() {
        assert!(Meta::parse(A, b"\x00garbage", 1).is_none());
    }
}
