//! `kubectl cellfed orphaning-deletion enable|disable|status TYPE NAME`: the `kubefed.io/orphan`
//! annotation of a federated resource, which makes deleting it leave its member objects in place.

use cellfed_api::kubefed::TargetType;
use cellfed_api::well_known::{ORPHAN_ANNOTATION, ORPHAN_ANNOTATION_VALUE};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::discovery;
use super::federate::reference;
use super::types;

/// What to do with the annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Set `kubefed.io/orphan: "true"`.
    Enable,
    /// Remove the annotation.
    Disable,
    /// Print `Enabled` or `Disabled`.
    Status,
}

/// Whether orphaning is enabled on a federated object (pure; KubeFed's `IsOrphaningEnabled`).
pub fn orphaning_enabled(obj: &Value) -> bool {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(ORPHAN_ANNOTATION))
        .and_then(Value::as_str)
        == Some(ORPHAN_ANNOTATION_VALUE)
}

/// The federated type `type_name` means: a federated type itself (`FederatedDeployment`,
/// `federateddeployments`), or a target type (`deployment`, `cm`), mapped to its federated type
/// by its FederatedTypeConfig. Returns the federated type and whether the target is Namespace.
async fn federated_type_of(
    client: &kube::Client,
    type_name: &str,
    fed_ns: &str,
) -> anyhow::Result<(TargetType, bool)> {
    let served = discovery::served(client).await?;
    let t = discovery::find(&served, type_name, None, true)?;
    if t.target.group == cellfed_api::well_known::TYPES_GROUP
        || t.target.kind.starts_with("Federated")
    {
        let is_ns = t.target.kind == "FederatedNamespace";
        // the cluster view, whatever version discovery prefers
        let mut fed = t.target.clone();
        if fed.group == cellfed_api::well_known::TYPES_GROUP {
            fed.version = cellfed_api::well_known::TYPES_V1BETA1.into();
        }
        return Ok((fed, is_ns));
    }
    let target = t.target.clone();
    let is_ns = target.group.is_empty() && target.kind == "Namespace";
    let fed = types::enabled_federated_type(client, &target, fed_ns)
        .await?
        .unwrap_or_else(|| target.federated());
    Ok((fed, is_ns))
}

/// Runs `action` on federated object `name` (namespace `namespace`, or for a FederatedNamespace
/// its own name when no namespace was given). Returns the line to print.
pub async fn run(
    client: &kube::Client,
    action: Action,
    type_name: &str,
    name: &str,
    namespace: Option<&str>,
    default_namespace: &str,
    fed_ns: &str,
) -> anyhow::Result<String> {
    let (fed, is_ns) = federated_type_of(client, type_name, fed_ns).await?;
    let ns = match namespace {
        Some(ns) => ns,
        None if is_ns => name,
        None => default_namespace,
    };
    let ar = fed.api_resource();
    let api: Api<DynamicObject> = if fed.is_namespaced() {
        Api::namespaced_with(client.clone(), ns, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    };
    let obj = serde_json::to_value(api.get(name).await?)?;
    let enabled = orphaning_enabled(&obj);
    let what = reference(&fed, name);
    let value = match action {
        Action::Status => {
            return Ok(if enabled { "Enabled" } else { "Disabled" }.into());
        }
        Action::Enable if enabled => {
            return Ok(format!("{what}: orphaning-deletion already enabled"));
        }
        Action::Disable if !enabled => {
            return Ok(format!("{what}: orphaning-deletion already disabled"));
        }
        Action::Enable => json!(ORPHAN_ANNOTATION_VALUE),
        Action::Disable => Value::Null,
    };
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {ORPHAN_ANNOTATION: value}}})),
    )
    .await?;
    Ok(match action {
        Action::Enable => {
            format!("{what}: orphaning-deletion enabled ({ORPHAN_ANNOTATION}: \"true\")")
        }
        _ => format!("{what}: orphaning-deletion disabled"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_value_true_enables_orphaning() {
        assert!(orphaning_enabled(
            &json!({"metadata": {"annotations": {"kubefed.io/orphan": "true"}}})
        ));
        assert!(!orphaning_enabled(
            &json!({"metadata": {"annotations": {"kubefed.io/orphan": "yes"}}})
        ));
        assert!(!orphaning_enabled(&json!({"metadata": {}})));
    }
}
