//! DELETE: finalizers, graceful deletion, preconditions and propagation policy as kube-apiserver
//! applies them, the removal of a value that cannot be decoded, and a CRD's objects going with it.

use cellfed_store::Error as StoreError;
use serde_json::{Value, json};

use super::{WriteOpts, respond};
use crate::error::{ApiError, ApiResult, Cause};
use crate::registry::Resource;
use crate::registry::crd;
use crate::registry::meta::{self, finalizers, metadata_mut, str_at};
use crate::state::AppState;

/// DELETE of one object. `options` is the DeleteOptions body (or `{}`); admission webhooks see
/// `opts.user`, and nothing is deleted with `opts.dry_run`.
pub async fn delete(
    state: &AppState,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
    options: &Value,
    policy_param: Option<&str>,
    opts: &WriteOpts,
) -> ApiResult<Value> {
    // as kube-apiserver's GuaranteedUpdate: a write that raced the delete makes it read again,
    // unless the caller asked for a resourceVersion precondition
    let precondition = options.pointer("/preconditions/resourceVersion").is_some();
    let mut attempts = 0;
    loop {
        match delete_attempt(state, res, ns, name, options, policy_param, opts).await {
            Err(e) if !precondition && attempts < DELETE_ATTEMPTS && e.is_modified() => {
                attempts += 1;
            }
            other => return other,
        }
    }
}

/// How often a delete re-reads the object after losing a race with another write.
const DELETE_ATTEMPTS: usize = 10;

async fn delete_attempt(
    state: &AppState,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
    options: &Value,
    policy_param: Option<&str>,
    opts: &WriteOpts,
) -> ApiResult<Value> {
    let dry_run = opts.dry_run;
    let key = res.key(ns, name);
    let Some(kv) = state.store.get(&key, None).await? else {
        return Err(ApiError::not_found(&res.group, &res.plural, name));
    };
    let mut obj = match state.decode(&kv) {
        Ok(obj) => obj,
        Err(_) => return delete_undecodable(state, res, name, &kv, options, dry_run).await,
    };
    check_preconditions(res, name, options, Some(&obj), kv.mod_revision)?;
    let is_ns = res.kind == "Namespace" && res.group.is_empty();
    if is_ns && matches!(name, "default" | "kube-system" | "kube-public") {
        return Err(ApiError::forbidden(format!(
            "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
        )));
    }
    let admission = crate::admission::Request {
        res,
        operation: crate::admission::Operation::Delete,
        subresource: "",
        opts,
    };
    crate::admission::admit_delete(state, admission, &obj).await?;
    let policy = policy_param
        .or_else(|| options.get("propagationPolicy").and_then(Value::as_str))
        .or_else(|| {
            options
                .get("orphanDependents")
                .and_then(Value::as_bool)
                .and_then(|o| o.then_some("Orphan"))
        })
        .unwrap_or("Background");
    let mut fins = finalizers(&obj);
    match policy {
        "Orphan" if !fins.iter().any(|f| f == "orphan") => fins.push("orphan".into()),
        "Foreground" if !fins.iter().any(|f| f == "foregroundDeletion") => {
            fins.push("foregroundDeletion".into())
        }
        "Orphan" | "Foreground" | "Background" => {}
        other => {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                vec![Cause::not_supported(
                    "propagationPolicy",
                    &json!(other),
                    &[json!("Foreground"), json!("Background"), json!("Orphan")],
                )],
            ));
        }
    }
    let graceful = is_ns || !fins.is_empty();
    let mut out = state
        .convert(res, vec![obj.clone()])
        .await?
        .pop()
        .unwrap_or(Value::Null);
    if dry_run {
        return Ok(out);
    }
    if graceful {
        if obj.pointer("/metadata/deletionTimestamp").is_some() && fins == finalizers(&obj) {
            return Ok(out);
        }
        let now = meta::now();
        {
            let m = metadata_mut(&mut obj);
            if !m.contains_key("deletionTimestamp") {
                m.insert("deletionTimestamp".into(), json!(now));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            if !fins.is_empty() {
                m.insert("finalizers".into(), json!(fins));
            }
        }
        if is_ns {
            obj["status"]["phase"] = json!("Terminating");
        }
        let kv = match state
            .store
            .update(
                &key,
                crate::storage::codec::encode(&obj)?,
                kv.mod_revision,
                0,
            )
            .await
        {
            Ok(kv) => kv,
            Err(StoreError::Conflict { .. }) => {
                return Err(ApiError::modified(&res.group, &res.plural, name));
            }
            Err(e) => return Err(e.into()),
        };
        if res.kind == "CustomResourceDefinition" {
            crd::reload(state).await?;
        }
        crate::admission::written(state, res).await;
        out = respond(state, res, &kv).await?;
        return Ok(out);
    }
    if res.kind == "CustomResourceDefinition" && res.group == "apiextensions.k8s.io" {
        delete_crd_objects(state, &obj).await?;
    }
    match state.store.delete(&key, Some(kv.mod_revision)).await {
        Ok(_) => {}
        Err(StoreError::Conflict { .. }) => {
            return Err(ApiError::modified(&res.group, &res.plural, name));
        }
        Err(StoreError::NotFound { .. }) => {
            return Err(ApiError::not_found(&res.group, &res.plural, name));
        }
        Err(e) => return Err(e.into()),
    }
    if res.kind == "CustomResourceDefinition" {
        crd::reload(state).await?;
    }
    crate::admission::written(state, res).await;
    Ok(out)
}

/// A DELETE's `preconditions` (uid, resourceVersion) against the stored object, as
/// kube-apiserver answers them: 409 Conflict naming both values. `obj` is None when the stored
/// value cannot be decoded, so a uid precondition cannot be met.
fn check_preconditions(
    res: &Resource,
    name: &str,
    options: &Value,
    obj: Option<&Value>,
    revision: i64,
) -> ApiResult<()> {
    let conflict = |message: String| ApiError::conflict(&res.group, &res.plural, name, &message);
    if let Some(uid) = options
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
    {
        let Some(obj) = obj else {
            return Err(conflict(
                "Precondition failed: the stored object cannot be decoded, so its UID cannot be checked".into(),
            ));
        };
        let have = str_at(obj, "/metadata/uid").unwrap_or_default();
        if uid != have {
            return Err(conflict(format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
            )));
        }
    }
    if let Some(rv) = options
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        && rv != revision.to_string()
    {
        return Err(conflict(format!(
            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {revision}"
        )));
    }
    Ok(())
}

/// Deletes a stored value that cannot be decoded, by its key: no finalizers or owners can be
/// read from it, so it goes at once. Answers a `Status` (there is no object to return).
async fn delete_undecodable(
    state: &AppState,
    res: &Resource,
    name: &str,
    kv: &cellfed_store::KeyValue,
    options: &Value,
    dry_run: bool,
) -> ApiResult<Value> {
    check_preconditions(res, name, options, None, kv.mod_revision)?;
    if !dry_run {
        match state.store.delete(&kv.key, Some(kv.mod_revision)).await {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => {
                return Err(ApiError::modified(&res.group, &res.plural, name));
            }
            Err(StoreError::NotFound { .. }) => {
                return Err(ApiError::not_found(&res.group, &res.plural, name));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::warn!(key = %kv.key, "deleted a stored object that could not be decoded");
    }
    Ok(json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": res.group, "kind": res.plural},
    }))
}

/// Removes every object of a CRD (all versions share one key prefix).
pub async fn delete_crd_objects(state: &AppState, crd_obj: &Value) -> ApiResult<()> {
    let group = str_at(crd_obj, "/spec/group").unwrap_or_default();
    let plural = str_at(crd_obj, "/spec/names/plural").unwrap_or_default();
    if group.is_empty() || plural.is_empty() {
        return Ok(());
    }
    // A CRD stored before shadowing CRDs were refused shares the built-in's keys: keep them.
    if let Some(builtin) = crd::shadowed_builtin(group, plural) {
        tracing::warn!(
            builtin,
            "deleting a CustomResourceDefinition that shadowed a built-in resource; its objects stay"
        );
        return Ok(());
    }
    let prefix = format!("/registry/{group}/{plural}/");
    let list = state.store.list(&prefix, Default::default()).await?;
    for kv in list.items {
        match state.store.delete(&kv.key, None).await {
            Ok(_) | Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
