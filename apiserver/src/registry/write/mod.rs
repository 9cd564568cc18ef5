//! Create, update, delete: the write path with kube-apiserver's admission rules (names,
//! labels, CR schemas, generation, finalizers, optimistic concurrency). Nothing is stored when
//! a request fails.

use cellfed_store::Error as StoreError;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Cause, qualified};
use crate::registry::Resource;
use crate::registry::crd;
use crate::registry::meta::{self, finalizers, metadata_mut, str_at};
use crate::state::AppState;

mod delete;

pub use delete::{delete, delete_crd_objects};

/// `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// Options common to writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    /// `dryRun=All`: run everything but the store write.
    pub dry_run: bool,
    /// `fieldManager`, or derived from the User-Agent.
    pub field_manager: String,
    pub field_validation: FieldValidation,
    /// The object comes from a server-side apply that already recorded its `Apply` ownership
    /// (no `Update` entry is added for the same manager).
    pub applied: bool,
    /// Who writes: admission webhooks see this user, RBAC objects are checked for escalation
    /// against it. None for the server's own writes.
    pub user: Option<cellfed_auth::UserInfo>,
}

/// The result of a write: the object (in the request's version) and warnings.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub object: Value,
    pub warnings: Vec<String>,
}

/// Which part of the object a PUT targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
}

fn name_of(obj: &Value) -> String {
    str_at(obj, "/metadata/name")
        .unwrap_or_default()
        .to_string()
}

/// Checks apiVersion/kind of the body against the URL.
pub fn check_type(res: &Resource, obj: &Value) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!(
            "Object '{}' is missing in 'null'",
            "Kind"
        )));
    }
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str)
        && av != res.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            res.api_version()
        )));
    }
    if let Some(k) = obj.get("kind").and_then(Value::as_str)
        && k != res.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            res.kind
        )));
    }
    Ok(())
}

/// Schema pruning/validation for CRs, CRD checks, label checks. Returns warnings.
fn admit(res: &Resource, obj: &mut Value, opts: &WriteOpts, now: &str) -> ApiResult<Vec<String>> {
    let name = name_of(obj);
    let mut warnings = Vec::new();
    if let Some(crd) = &res.crd
        && let Some(schema) = &crd.schema
    {
        let removed = crate::registry::schema::prune(obj, schema);
        if !removed.is_empty() {
            match opts.field_validation {
                FieldValidation::Strict => {
                    let list: Vec<String> = removed
                        .iter()
                        .map(|f| format!("unknown field \"{f}\""))
                        .collect();
                    return Err(ApiError::bad_request(format!(
                        "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                        list.join(", "),
                        kind = res.kind,
                        v = res.version
                    )));
                }
                FieldValidation::Warn => {
                    warnings.extend(removed.iter().map(|f| format!("unknown field \"{f}\"")));
                }
                FieldValidation::Ignore => {}
            }
        }
        let causes = crate::registry::schema::validate(obj, schema);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&res.group, &res.kind, &name, causes));
        }
    }
    if res.kind == "Secret" && res.group.is_empty() {
        merge_string_data(obj);
    }
    let mut causes = meta::validate_labels(obj);
    if res.kind == "CustomResourceDefinition" && res.group == "apiextensions.k8s.io" {
        causes.extend(crd::validate(obj));
        if causes.is_empty() {
            crd::set_status(obj, now);
        }
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(&res.group, &res.kind, &name, causes));
    }
    Ok(warnings)
}

async fn check_namespace(state: &AppState, res: &Resource, ns: &str, name: &str) -> ApiResult<()> {
    let key = format!("/registry/core/namespaces/{ns}");
    match state.store.get(&key, None).await? {
        None => Err(ApiError::not_found("", "namespaces", ns)),
        Some(kv) => {
            let obj = state.decode(&kv)?;
            if obj.pointer("/metadata/deletionTimestamp").is_some() {
                let mut e = ApiError::forbidden(format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    qualified(&res.group, &res.plural)
                ));
                e.details = Some(
                    json!({"name": name, "group": res.group, "kind": res.plural, "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]}),
                );
                return Err(e);
            }
            Ok(())
        }
    }
}

/// Serializes for storage (no resourceVersion: it is the row's revision).
/// Secrets: `stringData` is write-only and merged into `data` (base64), as kube-apiserver does.
fn merge_string_data(obj: &mut Value) {
    use base64::Engine as _;
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let Some(Value::Object(string_data)) = map.remove("stringData") else {
        return;
    };
    let data = map
        .entry("data")
        .or_insert_with(|| Value::Object(Default::default()));
    if !data.is_object() {
        *data = Value::Object(Default::default());
    }
    if let Some(data) = data.as_object_mut() {
        for (k, v) in string_data {
            let text = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            data.insert(
                k,
                Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
            );
        }
    }
}

/// Decodes a write result and converts it back to the request's version.
async fn respond(
    state: &AppState,
    res: &Resource,
    kv: &cellfed_store::KeyValue,
) -> ApiResult<Value> {
    let obj = state.decode(kv)?;
    let mut v = state.convert(res, vec![obj]).await?;
    v.pop()
        .ok_or_else(|| ApiError::internal("conversion returned nothing"))
}

/// POST: creates the object.
pub async fn create(
    state: &AppState,
    res: &Resource,
    ns: Option<&str>,
    mut obj: Value,
    opts: &WriteOpts,
) -> ApiResult<Outcome> {
    check_type(res, &obj)?;
    obj["apiVersion"] = json!(res.api_version());
    obj["kind"] = json!(res.kind);
    let now = meta::now();
    {
        let m = metadata_mut(&mut obj);
        if res.namespaced {
            let body_ns = m
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let url_ns = ns.unwrap_or_default();
            if !body_ns.is_empty() && body_ns != url_ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            m.insert("namespace".into(), json!(url_ns));
        } else {
            m.remove("namespace");
        }
        let name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty()
            && let Some(g) = m
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|g| !g.is_empty())
        {
            let n = format!("{g}{}", meta::random_suffix());
            m.insert("name".into(), json!(n));
        }
        if let Some(rv) = m.get("resourceVersion").and_then(Value::as_str)
            && !rv.is_empty()
        {
            return Err(ApiError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.insert("uid".into(), json!(meta::new_uid()));
        m.insert("creationTimestamp".into(), json!(now));
        if res.generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
    }
    let name = name_of(&obj);
    if name.is_empty() {
        return Err(ApiError::invalid(
            &res.group,
            &res.kind,
            "",
            vec![Cause::required(
                "metadata.name",
                "name or generateName is required",
            )],
        ));
    }
    let causes = meta::validate_name(&res.kind, &name);
    if !causes.is_empty() {
        return Err(ApiError::invalid(&res.group, &res.kind, &name, causes));
    }
    if res.has_status()
        && res.crd.is_some()
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    if res.kind == "Namespace" && res.group.is_empty() {
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
        obj["status"] = json!({"phase": "Active"});
    }
    let admission = crate::admission::Request {
        res,
        operation: crate::admission::Operation::Create,
        subresource: "",
        opts,
    };
    let mut warnings = crate::admission::mutate(state, admission, &mut obj, None).await?;
    warnings.extend(admit(res, &mut obj, opts, &now)?);
    crate::auth::escalation::check(state, res, ns, &obj, None, opts.user.as_ref())?;
    let hook = state.write_hook.clone();
    let _held = match &hook {
        Some(h) => h.admit(state, res, None, &mut obj).await?,
        None => None,
    };
    warnings.extend(crate::admission::validate(state, admission, &obj, None).await?);
    if res.namespaced {
        check_namespace(state, res, ns.unwrap_or_default(), &name).await?;
    }
    if !opts.applied {
        crate::registry::patch::track_update(None, &mut obj, &opts.field_manager, &now);
    }
    let stored = state.to_storage(res, obj.clone()).await?;
    let encoded = crate::storage::limits::encode_checked(res, &name, &stored)?;
    let key = res.key(ns, &name);
    if opts.dry_run {
        if state.store.get(&key, None).await?.is_some() {
            return Err(ApiError::already_exists(&res.group, &res.plural, &name));
        }
        return Ok(Outcome {
            object: obj,
            warnings,
        });
    }
    let kv = match state.store.create(&key, encoded, 0).await {
        Ok(kv) => kv,
        Err(StoreError::AlreadyExists { .. }) => {
            return Err(ApiError::already_exists(&res.group, &res.plural, &name));
        }
        Err(e) => return Err(e.into()),
    };
    if res.kind == "CustomResourceDefinition" {
        crd::reload(state).await?;
    }
    crate::admission::written(state, res).await;
    Ok(Outcome {
        object: respond(state, res, &kv).await?,
        warnings,
    })
}

/// PUT (and the second half of PATCH): replaces the object or its status.
pub async fn update(
    state: &AppState,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
    mut obj: Value,
    part: Part,
    opts: &WriteOpts,
) -> ApiResult<Outcome> {
    check_type(res, &obj)?;
    obj["apiVersion"] = json!(res.api_version());
    obj["kind"] = json!(res.kind);
    let body_name = str_at(&obj, "/metadata/name")
        .unwrap_or_default()
        .to_string();
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if res.namespaced
        && let Some(body_ns) = str_at(&obj, "/metadata/namespace").filter(|n| !n.is_empty())
        && Some(body_ns) != ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let key = res.key(ns, name);
    let Some(kv) = state.store.get(&key, None).await? else {
        if res.create_on_update && part == Part::Main {
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            return create(state, res, ns, obj, opts).await;
        }
        return Err(ApiError::not_found(&res.group, &res.plural, name));
    };
    let body_rv = str_at(&obj, "/metadata/resourceVersion")
        .unwrap_or_default()
        .to_string();
    if body_rv.is_empty() {
        if !res.unconditional_update {
            return Err(ApiError::invalid(
                &res.group,
                &res.kind,
                name,
                vec![Cause {
                    reason: "FieldValueInvalid".into(),
                    message: "Invalid value: 0x0: must be specified for an update".into(),
                    field: "metadata.resourceVersion".into(),
                }],
            ));
        }
    } else {
        let rv: i64 = body_rv
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version {body_rv:?}")))?;
        if rv != kv.mod_revision {
            return Err(ApiError::modified(&res.group, &res.plural, name));
        }
    }
    let now = meta::now();
    let old = state.decode(&kv)?; // storage version
    let warnings;
    let hook = state.write_hook.clone();
    let mut _held = None;
    let mut new = match part {
        Part::Main => {
            let mut n = obj;
            let admission = crate::admission::Request {
                res,
                operation: crate::admission::Operation::Update,
                subresource: "",
                opts,
            };
            let mut w = crate::admission::mutate(state, admission, &mut n, Some(&old)).await?;
            w.extend(admit(res, &mut n, opts, &now)?);
            crate::auth::escalation::check(state, res, ns, &n, Some(&old), opts.user.as_ref())?;
            if let Some(h) = &hook {
                _held = h.admit(state, res, Some(&old), &mut n).await?;
            }
            w.extend(crate::admission::validate(state, admission, &n, Some(&old)).await?);
            warnings = w;
            let mut n = state.to_storage(res, n).await?;
            if res.has_status() && res.kind != "CustomResourceDefinition" {
                match old.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        if let Some(m) = n.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            n
        }
        Part::Status => {
            let mut n = obj;
            let admission = crate::admission::Request {
                res,
                operation: crate::admission::Operation::Update,
                subresource: "status",
                opts,
            };
            let mut w = crate::admission::mutate(state, admission, &mut n, Some(&old)).await?;
            w.extend(admit(res, &mut n, opts, &now)?);
            w.extend(crate::admission::validate(state, admission, &n, Some(&old)).await?);
            warnings = w;
            let n = state.to_storage(res, n).await?;
            let mut merged = old.clone();
            match n.get("status") {
                Some(s) => merged["status"] = s.clone(),
                None => {
                    if let Some(m) = merged.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            merged
        }
    };
    {
        let old_m = old.get("metadata").cloned().unwrap_or(json!({}));
        let m = metadata_mut(&mut new);
        for k in [
            "uid",
            "creationTimestamp",
            "namespace",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old_m.get(k) {
                Some(v) => {
                    m.insert(k.into(), v.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
        m.insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
    }
    if res.kind == "Namespace" && res.group.is_empty() {
        new["spec"] = old.get("spec").cloned().unwrap_or(json!({}));
        if part == Part::Main {
            new["status"] = old.get("status").cloned().unwrap_or(json!({}));
        }
    }
    if old.pointer("/metadata/deletionTimestamp").is_some() {
        let before = finalizers(&old);
        let added: Vec<String> = finalizers(&new)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        if !added.is_empty() {
            return Err(ApiError::invalid(
                &res.group,
                &res.kind,
                name,
                vec![Cause::forbidden(
                    "metadata.finalizers",
                    &format!(
                        "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                    ),
                )],
            ));
        }
    }
    if res.generation && meta::spec_part(&old) != meta::spec_part(&new) {
        let g = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        metadata_mut(&mut new).insert("generation".into(), json!(g));
    }
    crate::registry::patch::track_update(Some(&old), &mut new, &opts.field_manager, &now);
    // unchanged, and stored with the current encryption key: nothing to write (a value read
    // with an older key is rewritten, which is how keys are rotated)
    if without_volatile(&new) == without_volatile(&old) && !kv.stale {
        let mut v = state.convert(res, vec![old]).await?;
        return Ok(Outcome {
            object: v.pop().unwrap_or(Value::Null),
            warnings,
        });
    }
    let finished =
        new.pointer("/metadata/deletionTimestamp").is_some() && finalizers(&new).is_empty();
    // Limits apply to what stays stored; an object whose last finalizer goes is deleted.
    let encoded = if finished {
        crate::storage::codec::encode(&new)?
    } else {
        crate::storage::limits::encode_checked(res, name, &new)?
    };
    if opts.dry_run {
        let mut v = state.convert(res, vec![new]).await?;
        return Ok(Outcome {
            object: v.pop().unwrap_or(Value::Null),
            warnings,
        });
    }
    let result = if finished {
        state
            .store
            .delete(&key, Some(kv.mod_revision))
            .await
            .map(|mut kv| {
                kv.value.clone_from(&encoded);
                kv
            })
    } else {
        state.store.update(&key, encoded, kv.mod_revision, 0).await
    };
    let kv = match result {
        Ok(kv) => kv,
        Err(StoreError::Conflict { .. }) => {
            return Err(ApiError::modified(&res.group, &res.plural, name));
        }
        Err(StoreError::NotFound { .. }) => {
            return Err(ApiError::not_found(&res.group, &res.plural, name));
        }
        Err(e) => return Err(e.into()),
    };
    if res.kind == "CustomResourceDefinition" {
        crd::reload(state).await?;
    }
    crate::admission::written(state, res).await;
    Ok(Outcome {
        object: respond(state, res, &kv).await?,
        warnings,
    })
}

/// The object without what changes on every write (for no-op detection).
fn without_volatile(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    o
}
