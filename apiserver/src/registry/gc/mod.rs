//! Background deletion work kube's controllers do: namespace termination, the `orphan` and
//! `foregroundDeletion` finalizers, and garbage collection of dependents whose owners are gone.
//!
//! Driven by the store's watch, as kube's garbage collector is driven by informers: one LIST at
//! start fills an [`Index`] of owners, dependents and namespace content; each event then updates
//! it and only the objects the change can concern are decided again ([`Index::plan`]) and written.
//! A broken or compacted watch (410) is followed by a fresh LIST. Writes are made against the
//! version decided on; one that lost a race is decided again when its event arrives.

mod index;

use std::collections::BTreeSet;
use std::time::Duration;

use cellfed_store::{Error as StoreError, EventKind, Store};
use futures::{FutureExt as _, StreamExt as _};
use serde_json::{Value, json};

pub use index::{Action, Index, Meta};

use crate::registry::meta::finalizers;
use crate::state::AppState;

/// Everything the collector looks after.
const PREFIX: &str = "/registry/";

/// Errors of the garbage collector.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Listing or watching the store failed; the collector lists again.
    #[error("reading the store: {0}")]
    Read(#[source] StoreError),
    /// A write the collector decided on failed (other than by losing a race).
    #[error("collecting {key}: {source}")]
    Write {
        key: String,
        #[source]
        source: StoreError,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Lists the store into a fresh index; returns it with the revision it reflects.
async fn load(store: &Store) -> Result<(Index, i64)> {
    let list = store
        .list(PREFIX, Default::default())
        .await
        .map_err(Error::Read)?;
    let mut index = Index::default();
    for kv in list.items {
        index.set(&kv.key, Meta::parse(&kv.key, &kv.value, kv.mod_revision));
    }
    Ok((index, list.revision))
}

/// One full pass: lists the store and makes every write due. Returns whether it wrote anything.
/// [`run`] does the same incrementally; this is for tests and tools.
pub async fn pass(state: &AppState) -> Result<bool> {
    let (index, _) = load(&state.store).await?;
    let mut due: BTreeSet<String> = index.keys().cloned().collect();
    collect(&state.store, &index, &mut due).await
}

/// Follows the store until the task is dropped; after a failure it waits `retry` and lists again.
pub async fn run(state: AppState, retry: Duration) {
    loop {
        if let Err(e) = follow(&state.store).await {
            tracing::warn!(error = %e, "garbage collector restarts from a fresh list");
        }
        tokio::time::sleep(retry).await;
    }
}

/// One LIST, the writes it calls for, then the watch from its revision until the watch breaks.
async fn follow(store: &Store) -> Result<()> {
    let (mut index, revision) = load(store).await?;
    tracing::debug!(
        objects = index.len(),
        revision,
        "garbage collector listed the store"
    );
    let mut due: BTreeSet<String> = index.keys().cloned().collect();
    collect(store, &index, &mut due).await?;
    let mut events = store.watch(PREFIX, revision).await.map_err(Error::Read)?;
    while let Some(first) = events.next().await {
        // everything already delivered, then decide once
        let batch = std::iter::once(first).chain(std::iter::from_fn(|| {
            events.next().now_or_never().flatten()
        }));
        for event in batch {
            let e = event.map_err(Error::Read)?;
            let meta = match e.kind {
                EventKind::Deleted => None,
                _ => Meta::parse(&e.kv.key, &e.kv.value, e.kv.mod_revision),
            };
            due.append(&mut index.set(&e.kv.key, meta));
        }
        collect(store, &index, &mut due).await?;
    }
    Ok(())
}

/// Makes the writes `index` plans for the keys in `due`, emptying it. Returns whether it wrote.
/// A key's plan stops at a write that lost a race (an `orphan` owner keeps its finalizer while a
/// dependent still names it): the object that changed has an event coming, which plans again.
async fn collect(store: &Store, index: &Index, due: &mut BTreeSet<String>) -> Result<bool> {
    let mut wrote = false;
    for key in std::mem::take(due) {
        for action in index.plan(&key) {
            match apply(store, &action).await {
                Ok(true) => wrote = true,
                Ok(false) => break,
                // the database is failing: list again once it is back
                Err(Error::Write {
                    source: source @ (StoreError::Database(_) | StoreError::Busy { .. }),
                    key,
                }) => return Err(Error::Write { key, source }),
                // this object cannot be written (a value no key encrypts…): the other keys can
                Err(e) => {
                    tracing::warn!(error = %e, "garbage collector skips an object");
                    break;
                }
            }
        }
    }
    Ok(wrote)
}

/// Makes one write; false when it lost a race (the object changed or went meanwhile).
async fn apply(store: &Store, action: &Action) -> Result<bool> {
    let (key, rev) = match action {
        Action::Delete {
            key,
            rev,
            finalizers: false,
        } => {
            let r = store.delete(key, Some(*rev)).await.map(|_| ());
            return settle(key, r);
        }
        Action::Delete { key, rev, .. }
        | Action::RemoveOwnerRef { key, rev, .. }
        | Action::RemoveFinalizer { key, rev, .. }
        | Action::FinishNamespace { key, rev } => (key, *rev),
    };
    // The others rewrite the object: read the version decided on.
    let current = store.get(key, None).await.map_err(|source| Error::Write {
        key: key.clone(),
        source,
    })?;
    let Some(mut obj) = current
        .filter(|kv| kv.mod_revision == rev)
        .and_then(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
    else {
        return Ok(false);
    };
    match action {
        Action::Delete { .. } => {
            let m = crate::registry::meta::metadata_mut(&mut obj);
            m.insert(
                "deletionTimestamp".into(),
                json!(crate::registry::meta::now()),
            );
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
        }
        Action::RemoveOwnerRef { owner, .. } => {
            let m = crate::registry::meta::metadata_mut(&mut obj);
            if let Some(refs) = m.get_mut("ownerReferences").and_then(Value::as_array_mut) {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner.as_str()));
                if refs.is_empty() {
                    m.remove("ownerReferences");
                }
            }
        }
        Action::RemoveFinalizer { finalizer, .. } => {
            let rest: Vec<String> = finalizers(&obj)
                .into_iter()
                .filter(|f| f != finalizer)
                .collect();
            let m = crate::registry::meta::metadata_mut(&mut obj);
            if rest.is_empty() {
                m.remove("finalizers");
            } else {
                m.insert("finalizers".into(), json!(rest));
            }
        }
        Action::FinishNamespace { .. } => obj["spec"]["finalizers"] = json!([]),
    }
    // Being deleted with no finalizer left: it goes.
    let r = if obj.pointer("/metadata/deletionTimestamp").is_some() && finalizers(&obj).is_empty() {
        store.delete(key, Some(rev)).await.map(|_| ())
    } else {
        store
            .update(
                key,
                crate::storage::codec::encode(&obj).unwrap_or_default(),
                rev,
                0,
            )
            .await
            .map(|_| ())
    };
    settle(key, r)
}

/// A lost race is decided again on its event.
fn settle(key: &str, r: Result<(), StoreError>) -> Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => Ok(false),
        Err(source) => Err(Error::Write {
            key: key.to_string(),
            source,
        }),
    }
}
