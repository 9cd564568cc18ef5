//! Background deletion work kube's controllers do: namespace termination, the `orphan` and
//! `foregroundDeletion` finalizers, and garbage collection of dependents whose owners are gone.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use cellfed_store::{Error as StoreError, KeyValue};
use serde_json::{Value, json};

use crate::error::ApiResult;
use crate::meta::{finalizers, str_at};
use crate::state::AppState;

const NS_PREFIX: &str = "/registry/core/namespaces/";

struct Obj {
    kv: KeyValue,
    obj: Value,
}

impl Obj {
    fn uid(&self) -> &str {
        str_at(&self.obj, "/metadata/uid").unwrap_or_default()
    }
    fn deleting(&self) -> bool {
        self.obj.pointer("/metadata/deletionTimestamp").is_some()
    }
    fn owner_uids(&self) -> Vec<String> {
        self.obj
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|o| o.get("uid").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn encode(obj: &Value) -> Vec<u8> {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    serde_json::to_vec(&o).unwrap_or_default()
}

/// Deletes like the API does: objects with finalizers get a deletionTimestamp and stay.
async fn delete_object(state: &AppState, o: &Obj) -> ApiResult<()> {
    if finalizers(&o.obj).is_empty() {
        ignore_races(
            state
                .store
                .delete(&o.kv.key, Some(o.kv.mod_revision))
                .await
                .map(|_| ()),
        )
    } else if !o.deleting() {
        let mut obj = o.obj.clone();
        let m = crate::meta::metadata_mut(&mut obj);
        m.insert("deletionTimestamp".into(), json!(crate::meta::now()));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
        ignore_races(
            state
                .store
                .update(&o.kv.key, encode(&obj), o.kv.mod_revision, 0)
                .await
                .map(|_| ()),
        )
    } else {
        Ok(())
    }
}

/// Writes `obj` back, or deletes it when it is being deleted and has no finalizers left.
async fn write_back(state: &AppState, o: &Obj, obj: Value) -> ApiResult<()> {
    if obj.pointer("/metadata/deletionTimestamp").is_some() && finalizers(&obj).is_empty() {
        ignore_races(
            state
                .store
                .delete(&o.kv.key, Some(o.kv.mod_revision))
                .await
                .map(|_| ()),
        )
    } else {
        ignore_races(
            state
                .store
                .update(&o.kv.key, encode(&obj), o.kv.mod_revision, 0)
                .await
                .map(|_| ()),
        )
    }
}

/// Lost races are retried on the next pass.
fn ignore_races(r: Result<(), StoreError>) -> ApiResult<()> {
    match r {
        Ok(()) | Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn without_finalizer(obj: &Value, f: &str) -> Value {
    let mut o = obj.clone();
    let rest: Vec<String> = finalizers(obj).into_iter().filter(|x| x != f).collect();
    let m = crate::meta::metadata_mut(&mut o);
    if rest.is_empty() {
        m.remove("finalizers");
    } else {
        m.insert("finalizers".into(), json!(rest));
    }
    o
}

/// One pass over all objects; returns whether it wrote anything.
pub async fn pass(state: &AppState) -> ApiResult<bool> {
    let list = state.store.list("/registry/", Default::default()).await?;
    let objs: Vec<Obj> = list
        .items
        .into_iter()
        .filter_map(|kv| {
            serde_json::from_slice(&kv.value)
                .ok()
                .map(|obj| Obj { kv, obj })
        })
        .collect();
    let live: HashSet<&str> = objs
        .iter()
        .map(Obj::uid)
        .filter(|u| !u.is_empty())
        .collect();
    let mut dependents: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, o) in objs.iter().enumerate() {
        for u in o.owner_uids() {
            dependents.entry(u).or_default().push(i);
        }
    }
    let rev_before = list.revision;
    for o in &objs {
        let uid = o.uid().to_string();
        let deps = dependents.get(&uid).cloned().unwrap_or_default();
        let fins = finalizers(&o.obj);
        if o.deleting() && fins.iter().any(|f| f == "orphan") {
            for &d in &deps {
                let dep = &objs[d];
                let mut obj = dep.obj.clone();
                if let Some(refs) = obj
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()));
                    if refs.is_empty()
                        && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut)
                    {
                        m.remove("ownerReferences");
                    }
                }
                write_back(state, dep, obj).await?;
            }
            write_back(state, o, without_finalizer(&o.obj, "orphan")).await?;
            continue;
        }
        if o.deleting() && fins.iter().any(|f| f == "foregroundDeletion") {
            if deps.is_empty() {
                write_back(state, o, without_finalizer(&o.obj, "foregroundDeletion")).await?;
            } else {
                for &d in &deps {
                    delete_object(state, &objs[d]).await?;
                }
            }
            continue;
        }
        let owners = o.owner_uids();
        if !owners.is_empty() && owners.iter().all(|u| !live.contains(u.as_str())) {
            delete_object(state, o).await?;
        }
    }
    // Namespaces being terminated: delete their content, then the namespace.
    for ns in objs
        .iter()
        .filter(|o| o.kv.key.starts_with(NS_PREFIX) && o.deleting())
    {
        let name = str_at(&ns.obj, "/metadata/name").unwrap_or_default();
        let content: Vec<&Obj> = objs
            .iter()
            .filter(|o| {
                !o.kv.key.starts_with(NS_PREFIX)
                    && str_at(&o.obj, "/metadata/namespace") == Some(name)
            })
            .collect();
        if content.is_empty() {
            let mut obj = ns.obj.clone();
            obj["spec"]["finalizers"] = json!([]);
            write_back(state, ns, obj).await?;
        } else {
            for o in content {
                delete_object(state, o).await?;
            }
        }
    }
    Ok(state.store.current_revision().await? != rev_before)
}

/// Runs passes whenever the store changed, until the task is dropped.
pub async fn run(state: AppState, interval: Duration) {
    let mut seen = -1;
    loop {
        match state.store.current_revision().await {
            Ok(rev) if rev != seen => match pass(&state).await {
                Ok(_) => seen = rev,
                Err(e) => tracing::warn!(error = %e, "garbage collection pass failed"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "garbage collector cannot read the store"),
        }
        tokio::time::sleep(interval).await;
    }
}
