//! RBAC escalation prevention on the write path, as kube's role and binding storage does it: a
//! Role or ClusterRole may only grant what its writer holds (unless they may `escalate` it), a
//! RoleBinding or ClusterRoleBinding may only bind a role whose rules its writer holds (unless
//! they may `bind` it). Updates that change only what the garbage collector needs (owner
//! references, finalizers) are not checked, as in kube. The checks run only when RBAC is the
//! sole authorization mode, since kube's own check asks the authorizer, which AlwaysAllow passes.

use cellfed_auth::UserInfo;
use cellfed_auth::rbac::escalation::{
    Error, check_binding_write, check_cluster_role_write, check_role_write,
};
use cellfed_auth::rbac::{GROUP, RbacSource};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, qualified};
use crate::registry::Resource;
use crate::state::AppState;

/// Checks a create (`old` None) or update of `obj` in `namespace` (the URL's) by `user`.
pub fn check(
    state: &AppState,
    res: &Resource,
    namespace: Option<&str>,
    obj: &Value,
    old: Option<&Value>,
    user: Option<&UserInfo>,
) -> ApiResult<()> {
    if res.group != GROUP {
        return Ok(());
    }
    let (Some(security), Some(user)) = (&state.security, user) else {
        return Ok(());
    };
    if !security.rbac_only() || old.is_some_and(|old| only_gc_fields_change(old, obj)) {
        return Ok(());
    }
    let mut obj = obj.clone();
    if res.namespaced {
        crate::registry::meta::metadata_mut(&mut obj)
            .insert("namespace".into(), json!(namespace.unwrap_or_default()));
    }
    check_with(&*security.rbac.snapshot(), res, &obj, user)
}

/// [`check`] against a given RBAC source.
pub fn check_with(
    source: &impl RbacSource,
    res: &Resource,
    obj: &Value,
    user: &UserInfo,
) -> ApiResult<()> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let namespace = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let result = match res.kind.as_str() {
        "Role" => check_role_write(source, user, &typed::<Role>(res, name, obj)?),
        "ClusterRole" => {
            check_cluster_role_write(source, user, &typed::<ClusterRole>(res, name, obj)?)
        }
        "RoleBinding" => {
            let b = typed::<RoleBinding>(res, name, obj)?;
            check_binding_write(source, user, namespace, &b.role_ref)
        }
        "ClusterRoleBinding" => {
            let b = typed::<ClusterRoleBinding>(res, name, obj)?;
            check_binding_write(source, user, "", &b.role_ref)
        }
        _ => Ok(()),
    };
    match result {
        Ok(()) => Ok(()),
        Err(Error::ResolveRoleRef(e)) => Err(ApiError::bad_request(e.to_string())),
        Err(e) => {
            let mut err = ApiError::forbidden(format!(
                "{} \"{name}\" is forbidden: {e}",
                qualified(&res.group, &res.plural)
            ));
            err.details = Some(json!({"name": name, "group": res.group, "kind": res.plural}));
            Err(err)
        }
    }
}

fn typed<T: DeserializeOwned>(res: &Resource, name: &str, obj: &Value) -> ApiResult<T> {
    serde_json::from_value(obj.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "{} \"{name}\" cannot be read as a {}: {e}",
            qualified(&res.group, &res.plural),
            res.kind
        ))
    })
}

/// kube's `IsOnlyMutatingGCFields`: the objects differ at most in owner references and
/// finalizers (and in what the server maintains itself).
fn only_gc_fields_change(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "ownerReferences",
                "finalizers",
                "resourceVersion",
                "managedFields",
                "generation",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                m.remove(k);
            }
        }
        v
    };
    strip(old) == strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellfed_auth::rbac::Snapshot;

    fn res(kind: &str) -> std::sync::Arc<Resource> {
        let plural = format!("{}s", kind.to_lowercase());
        crate::registry::Registry::new()
            .find(GROUP, "v1", &plural)
            .unwrap()
    }

    fn snapshot() -> Snapshot {
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "bob-edit", "namespace": "acme"},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "User", "name": "bob"}]}))
        .unwrap();
        Snapshot::with_bootstrap([], [], [binding], [])
    }

    #[test]
    fn bindings_of_stronger_roles_are_forbidden_like_kube() {
        let bob = UserInfo::new("bob", ["system:authenticated"]);
        let bind = |role: &str, ns: &str| {
            json!({"metadata": {"name": "b", "namespace": ns},
                   "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
                   "subjects": [{"kind": "User", "name": "carol"}]})
        };
        let rb = res("RoleBinding");
        check_with(&snapshot(), &rb, &bind("view", "acme"), &bob).unwrap();
        let e = check_with(&snapshot(), &rb, &bind("cluster-admin", "acme"), &bob).unwrap_err();
        assert_eq!(e.code, 403);
        assert!(
            e.message.starts_with("rolebindings.rbac.authorization.k8s.io \"b\" is forbidden: user \"bob\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:"),
            "{}",
            e.message
        );
        let e = check_with(&snapshot(), &rb, &bind("view", "globex"), &bob).unwrap_err();
        assert_eq!(e.code, 403);
        let e = check_with(&snapshot(), &rb, &bind("missing", "acme"), &bob).unwrap_err();
        assert_eq!(e.code, 400, "{}", e.message);
    }

    #[test]
    fn gc_only_updates_are_not_checked() {
        let old = json!({"metadata": {"name": "r", "resourceVersion": "1"}, "rules": []});
        let mut new = old.clone();
        new["metadata"]["finalizers"] = json!(["x"]);
        assert!(only_gc_fields_change(&old, &new));
        new["rules"] = json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]);
        assert!(!only_gc_fields_change(&old, &new));
    }
}
