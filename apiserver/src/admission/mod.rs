//! Admission webhooks, as kube-apiserver calls them: `admissionregistration.k8s.io/v1`
//! MutatingWebhookConfigurations, then ValidatingWebhookConfigurations, each called with an
//! `AdmissionReview` (admission.k8s.io/v1) over HTTPS with the webhook's caBundle (or a service
//! reference resolved like the conversion webhooks).
//!
//! - Order: configurations by name, then each one's webhooks in order. Mutating webhooks run
//!   before schema validation; their `JSONPatch` answers are applied in turn, and what the last
//!   one left is validated, shown to the validating webhooks and stored. A patch that does not
//!   apply, or that changes the object's apiVersion, kind, name or namespace, is a failed call.
//!   `reinvocationPolicy: IfNeeded` webhooks are called once more when a later webhook changed
//!   the object.
//! - Matching: `rules` (operations, groups, versions, `resource[/subresource]`, scope),
//!   `matchPolicy` (Equivalent, the default, also matches a rule naming another served version
//!   of the same custom resource; the webhook then sees the object in that version),
//!   `namespaceSelector`, `objectSelector`.
//! - Failures: no answer within `timeoutSeconds` (default 10, at most 30), a response over
//!   [`MAX_RESPONSE_BYTES`], anything not a usable AdmissionReview refuse the request under
//!   `failurePolicy: Fail` (the default, 500 `failed calling webhook "<name>": …`) and skip the
//!   webhook under `Ignore`. A denial answers with the webhook's status code (400 when none or
//!   below), reason and `details` (causes) and `admission webhook "<name>" denied the request:
//!   <message>`; its `warnings` become `Warning` headers.
//! - Dry run: a matching webhook whose `sideEffects` is not `None`/`NoneOnDryRun` makes the
//!   request fail with 400; the others are called with `dryRun: true`.
//! - The review's `userInfo` is the requesting user, `system:apiserver` for the server's own
//!   writes. Dispatched for CREATE and UPDATE (the object and its `status` subresource) and
//!   DELETE (`oldObject` only; a mutating webhook's patch is an error); not for CONNECT.
//!
//! - Credentials: what the apiserver presents to each webhook (a client certificate, a token)
//!   comes from `--admission-control-config-file`, per plugin and webhook host ([`credentials`]).
//!
//! Configurations are read from a watch-fed cache ([`WebhookCache`]), never listed per write.

mod cache;
pub mod credentials;
mod matching;
mod review;

use std::collections::BTreeSet;

use serde_json::{Value, json};

pub use cache::{Hook, Rule, WebhookCache, Webhooks};
pub use matching::{Coordinates, object_matches, rule_matches, selector_matches};

use crate::error::{ApiError, ApiResult};
use crate::registry::Resource;
use crate::registry::write::WriteOpts;
use crate::state::AppState;
use review::{Answer, CallFailed};

/// The largest AdmissionReview response accepted (a mutating webhook's patch is rarely more
/// than a few kilobytes; this leaves room for large objects).
pub const MAX_RESPONSE_BYTES: usize = 3 * 1024 * 1024;

/// The operation being admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// POST.
    Create,
    /// PUT/PATCH.
    Update,
    /// DELETE (also of each object of a collection).
    Delete,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
        }
    }
}

/// The write being admitted.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub res: &'a Resource,
    pub operation: Operation,
    /// "" for the object itself, `status` for its status.
    pub subresource: &'a str,
    pub opts: &'a WriteOpts,
}

/// Calls the matching mutating webhooks in kube's order and applies their patches to `obj`
/// (in the request's version); `old` is the stored object (UPDATE). Returns their warnings.
pub async fn mutate(
    state: &AppState,
    req: Request<'_>,
    obj: &mut Value,
    old: Option<&Value>,
) -> ApiResult<Vec<String>> {
    let hooks = state.webhooks.snapshot();
    if exempt(req.res) || hooks.mutating.is_empty() {
        return Ok(Vec::new());
    }
    let mut a = Admission::new(state, req, old);
    // IfNeeded webhooks called since the object last changed, and those to call again.
    let mut invoked = Vec::new();
    let mut again = BTreeSet::new();
    for (i, hook) in hooks.mutating.iter().enumerate() {
        let Some(target) = a.matches(hook, obj).await? else {
            continue;
        };
        if a.mutate_once(hook, target, obj).await? {
            again.extend(invoked.drain(..));
        }
        if hook.reinvoke {
            invoked.push(i);
        }
    }
    for i in again {
        let hook = &hooks.mutating[i];
        if let Some(target) = a.matches(hook, obj).await? {
            a.mutate_once(hook, target, obj).await?;
        }
    }
    Ok(a.warnings)
}

/// Calls every matching validating webhook; Err when one denies (or fails under Fail).
/// Returns their warnings.
pub async fn validate(
    state: &AppState,
    req: Request<'_>,
    obj: &Value,
    old: Option<&Value>,
) -> ApiResult<Vec<String>> {
    let hooks = state.webhooks.snapshot();
    if exempt(req.res) || hooks.validating.is_empty() {
        return Ok(Vec::new());
    }
    let mut a = Admission::new(state, req, old);
    for hook in &hooks.validating {
        if let Some(target) = a.matches(hook, obj).await? {
            a.send(hook, &target, obj, false).await?;
        }
    }
    Ok(a.warnings)
}

/// DELETE of `old` (the stored object): the matching mutating webhooks are called (a patch is
/// an error: there is no object to change), then the validating ones, as kube-apiserver does.
pub async fn admit_delete(state: &AppState, req: Request<'_>, old: &Value) -> ApiResult<()> {
    let hooks = state.webhooks.snapshot();
    if exempt(req.res) {
        return Ok(());
    }
    let mut a = Admission::new(state, req, Some(old));
    for hook in &hooks.mutating {
        if let Some(target) = a.matches(hook, old).await?
            && let Some((_, Some(patch))) = a.send(hook, &target, old, true).await?
            && !patch.as_array().is_some_and(Vec::is_empty)
        {
            return Err(ApiError::internal(format!(
                "Internal error occurred: admission webhook \"{}\" attempted to modify the object, which is not supported for this operation",
                hook.name
            )));
        }
    }
    for hook in &hooks.validating {
        if let Some(target) = a.matches(hook, old).await? {
            a.send(hook, &target, old, false).await?;
        }
    }
    Ok(())
}

/// After a successful write of `res` through this server: a webhook configuration is in effect
/// for the next request (other replicas learn of it through their watch).
pub async fn written(state: &AppState, res: &Resource) {
    if res.group == "admissionregistration.k8s.io"
        && let Err(e) = state.webhooks.refresh(&state.store).await
    {
        tracing::warn!(error = %e, "webhook configurations: refreshing after a write failed; the watch catches up");
    }
}

/// kube never sends webhook configurations (or admission policies) to webhooks: a broken
/// webhook could otherwise never be removed.
fn exempt(res: &Resource) -> bool {
    res.group == "admissionregistration.k8s.io"
}

fn is_namespace(res: &Resource) -> bool {
    res.group.is_empty() && res.plural == "namespaces"
}

/// Where a matching webhook is called.
enum Target {
    /// In the request's version.
    Request,
    /// In another served version of the same custom resource (matchPolicy Equivalent).
    Equivalent(Box<Resource>),
}

/// One request's way through the webhooks.
struct Admission<'a> {
    state: &'a AppState,
    req: Request<'a>,
    /// The stored object (storage version), for UPDATE.
    old: Option<&'a Value>,
    /// The labels of the object's namespace, once read (`Some(None)`: it has none).
    namespace_labels: Option<Option<Value>>,
    warnings: Vec<String>,
}

impl<'a> Admission<'a> {
    fn new(state: &'a AppState, req: Request<'a>, old: Option<&'a Value>) -> Self {
        Self {
            state,
            req,
            old,
            namespace_labels: None,
            warnings: Vec::new(),
        }
    }

    /// Whether (and in which version) `hook` is called for `obj` as it is now.
    async fn matches(&mut self, hook: &Hook, obj: &Value) -> ApiResult<Option<Target>> {
        let res = self.req.res;
        let coordinates = Coordinates {
            group: &res.group,
            version: &res.version,
            resource: &res.plural,
            subresource: self.req.subresource,
            operation: self.req.operation.as_str(),
            namespaced: res.namespaced,
        };
        let target = if hook.rules.iter().any(|r| rule_matches(r, &coordinates)) {
            Target::Request
        } else {
            match self.equivalent(hook, &coordinates) {
                Some(other) => Target::Equivalent(Box::new(other)),
                None => return Ok(None),
            }
        };
        if let Some(selector) = &hook.namespace_selector
            && (res.namespaced || is_namespace(res))
        {
            // a Namespace is matched on its own labels; other cluster-scoped objects never
            // are exempted
            let labels = if is_namespace(res) {
                obj.pointer("/metadata/labels").cloned()
            } else {
                self.namespace_labels(obj).await?
            };
            if !selector_matches(selector, labels.as_ref()) {
                return Ok(None);
            }
        }
        if !object_matches(hook.object_selector.as_ref(), Some(obj), self.old) {
            return Ok(None);
        }
        Ok(Some(target))
    }

    /// matchPolicy Equivalent: another served version of the same custom resource that a rule
    /// names.
    fn equivalent(&self, hook: &Hook, coordinates: &Coordinates<'_>) -> Option<Resource> {
        let res = self.req.res;
        if hook.exact || res.crd.is_none() {
            return None;
        }
        hook.rules.iter().find_map(|rule| {
            rule.api_versions
                .iter()
                .filter(|v| *v != "*" && **v != res.version)
                .find_map(|v| {
                    let c = Coordinates {
                        version: v,
                        ..*coordinates
                    };
                    if !rule_matches(rule, &c) {
                        return None;
                    }
                    self.state
                        .registry
                        .find(&res.group, v, &res.plural)
                        .filter(|other| other.crd.is_some())
                        .map(|other| Resource::clone(&other))
                })
        })
    }

    async fn namespace_labels(&mut self, obj: &Value) -> ApiResult<Option<Value>> {
        if let Some(labels) = &self.namespace_labels {
            return Ok(labels.clone());
        }
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let key = format!("/registry/core/namespaces/{ns}");
        let Some(kv) = self.state.store.get(&key, None).await? else {
            return Err(ApiError::not_found("", "namespaces", ns));
        };
        let labels = self.state.decode(&kv)?.pointer("/metadata/labels").cloned();
        self.namespace_labels = Some(labels.clone());
        Ok(labels)
    }

    /// Calls `hook` with `obj` (in the target's version). Ok(None): skipped under
    /// `failurePolicy: Ignore`; Ok(Some((sent, patch))) otherwise.
    async fn send(
        &mut self,
        hook: &Hook,
        target: &Target,
        obj: &Value,
        mutating: bool,
    ) -> ApiResult<Option<(Value, Option<Value>)>> {
        let opts = self.req.opts;
        if opts.dry_run && !hook.dry_run_safe() {
            return Err(ApiError::bad_request(format!(
                "admission webhook \"{}\" does not support dry run",
                hook.name
            )));
        }
        let res = match target {
            Target::Request => self.req.res,
            Target::Equivalent(other) => other,
        };
        let sent = self.in_version(res, obj.clone()).await?;
        let old = match self.old {
            Some(old) => Some(self.in_version(res, old.clone()).await?),
            None => None,
        };
        let request = self.review_request(res, &sent, old.as_ref());
        match review::call(self.state, hook, request, mutating).await {
            Err(CallFailed(why)) => self.failed(hook, why).map(|()| None),
            Ok(Answer::Denied(e)) => Err(e),
            Ok(Answer::Allowed { patch, warnings }) => {
                self.warnings.extend(warnings);
                Ok(Some((sent, patch)))
            }
        }
    }

    /// Calls one mutating webhook and applies its patch to `obj`; true when it changed it.
    async fn mutate_once(
        &mut self,
        hook: &Hook,
        target: Target,
        obj: &mut Value,
    ) -> ApiResult<bool> {
        let Some((sent, Some(patch))) = self.send(hook, &target, obj, true).await? else {
            return Ok(false);
        };
        if patch.as_array().is_some_and(Vec::is_empty) {
            return Ok(false);
        }
        let patched = match crate::registry::patch::json::apply_json_patch(&sent, &patch) {
            Ok(p) => p,
            Err(e) => {
                let why = format!("the JSON patch does not apply: {e}");
                return self.failed(hook, why).map(|()| false);
            }
        };
        if let Some(change) = identity_change(&sent, &patched) {
            let why = format!("the patch changes {change}; a mutating webhook may not");
            return self.failed(hook, why).map(|()| false);
        }
        let patched = self.in_version(self.req.res, patched).await?;
        let changed = patched != *obj;
        *obj = patched;
        Ok(changed)
    }

    async fn in_version(&self, res: &Resource, obj: Value) -> ApiResult<Value> {
        if obj.get("apiVersion").and_then(Value::as_str) == Some(res.api_version().as_str()) {
            return Ok(obj);
        }
        self.state
            .convert(res, vec![obj])
            .await?
            .pop()
            .ok_or_else(|| ApiError::internal("conversion returned nothing"))
    }

    /// A failed call: refuses the request under Fail, is logged and skipped under Ignore.
    fn failed(&self, hook: &Hook, why: String) -> ApiResult<()> {
        if hook.fail_open {
            tracing::warn!(webhook = %hook.name, error = %why, "failed calling webhook, failing open (failurePolicy: Ignore)");
            return Ok(());
        }
        Err(ApiError::internal(format!(
            "Internal error occurred: failed calling webhook \"{}\": {why}",
            hook.name
        )))
    }

    /// The AdmissionRequest (without its uid) for `obj` as `res` serves it.
    fn review_request(&self, res: &Resource, obj: &Value, old: Option<&Value>) -> Value {
        let (req, opts) = (&self.req, self.req.opts);
        let user: k8s_openapi::api::authentication::v1::UserInfo = opts
            .user
            .clone()
            .unwrap_or_else(crate::auth::apiserver_user)
            .into();
        let gvk = |r: &Resource| json!({"group": r.group, "version": r.version, "kind": r.kind});
        let gvr =
            |r: &Resource| json!({"group": r.group, "version": r.version, "resource": r.plural});
        let kind = match req.operation {
            Operation::Create => "CreateOptions",
            Operation::Update => "UpdateOptions",
            Operation::Delete => "DeleteOptions",
        };
        let mut options = json!({"apiVersion": "meta.k8s.io/v1", "kind": kind});
        if !opts.field_manager.is_empty() {
            options["fieldManager"] = json!(opts.field_manager);
        }
        if opts.dry_run {
            options["dryRun"] = json!(["All"]);
        }
        let mut request = json!({
            "kind": gvk(res), "resource": gvr(res),
            "requestKind": gvk(req.res), "requestResource": gvr(req.res),
            "name": obj.pointer("/metadata/name"),
            "operation": req.operation.as_str(),
            "userInfo": user,
            "object": if req.operation == Operation::Delete { &Value::Null } else { obj },
            "oldObject": old,
            "dryRun": opts.dry_run,
            "options": options,
        });
        if let Some(ns) = obj.pointer("/metadata/namespace").filter(|n| n.is_string()) {
            request["namespace"] = ns.clone();
        }
        if !req.subresource.is_empty() {
            request["subResource"] = json!(req.subresource);
            request["requestSubResource"] = json!(req.subresource);
        }
        request
    }
}

/// What a patch changed of the object's identity, if anything (kube keys the object by it).
fn identity_change(before: &Value, after: &Value) -> Option<String> {
    [
        "/apiVersion",
        "/kind",
        "/metadata/name",
        "/metadata/namespace",
    ]
    .into_iter()
    .find(|p| before.pointer(p) != after.pointer(p))
    .map(|p| {
        let show = |v: &Value| v.pointer(p).map_or("nothing".into(), Value::to_string);
        format!(
            "{} from {} to {}",
            p.trim_start_matches('/').replace('/', "."),
            show(before),
            show(after)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_changes_are_named() {
        let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "n", "labels": {}}});
        let mut b = a.clone();
        b["metadata"]["labels"]["x"] = json!("y");
        assert_eq!(identity_change(&a, &b), None);
        b["metadata"]["name"] = json!("b");
        assert_eq!(
            identity_change(&a, &b).as_deref(),
            Some("metadata.name from \"a\" to \"b\"")
        );
        let mut c = a.clone();
        c["metadata"].as_object_mut().unwrap().remove("namespace");
        assert_eq!(
            identity_change(&a, &c).as_deref(),
            Some("metadata.namespace from \"n\" to nothing")
        );
    }
}
