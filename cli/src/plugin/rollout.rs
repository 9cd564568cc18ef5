//! `kubectl cellfed rollout`: grey release by editing `placementMask`, and waiting for it.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

/// The federated kind `name` names (`federateddeployments`, `FederatedDeployment`,
/// `federateddeployment`) in group types.kubefed.io, version `version`.
pub fn federated_resource(name: &str, version: &str) -> ApiResource {
    let lower = name.to_lowercase();
    let known = cellfed_api::targets::default_targets()
        .into_iter()
        .map(|t| t.federated())
        .find(|f| {
            let plural = f.plural();
            plural == lower || f.kind.to_lowercase() == lower
        });
    let (kind, plural) = match known {
        Some(f) => (f.kind.clone(), f.plural()),
        None if lower.ends_with('s') => (lower.clone(), lower.clone()),
        None => (lower.clone(), format!("{lower}s")),
    };
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(cellfed_api::well_known::TYPES_GROUP, version, &kind),
        &plural,
    )
}

/// Sets the placement mask of a federated object to `targets` (cells or clusters, as its
/// topology type says).
pub async fn set_mask(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
    targets: &[String],
) -> anyhow::Result<()> {
    let v1 = federated_resource(kind, "v1beta1");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &v1);
    let obj = api
        .get(name)
        .await
        .with_context(|| format!("reading {kind} {namespace}/{name}"))?;
    let cell = obj
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(cellfed_api::well_known::TOPOLOGY_TYPE_ANNOTATION))
        .is_some_and(|t| t == "cell");
    let names: Vec<Value> = targets.iter().map(|t| json!({"name": t})).collect();
    let (api, patch) = if cell {
        let v2 = federated_resource(kind, "v1beta2");
        (
            Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &v2),
            json!({"spec": {"placementMask": {"topologies": names}}}),
        )
    } else {
        (api, json!({"spec": {"placementMask": {"clusters": names}}}))
    };
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .context("writing spec.placementMask")?;
    Ok(())
}

/// One line of progress (pure): `2/3 placed clusters run generation 5`, and whether done.
pub fn progress(obj: &Value) -> (String, bool) {
    let generation = obj
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let observed = obj
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let updated = obj
        .pointer("/status/rollout/updated")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let total = obj
        .pointer("/status/rollout/total")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if observed < generation {
        return (
            format!("waiting for the controller to observe generation {generation}"),
            false,
        );
    }
    let behind: Vec<String> = obj
        .pointer("/status/clusters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c["status"] != "OK")
        .map(|c| {
            format!(
                "{} ({})",
                c["name"].as_str().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let mut line = format!(
        "{updated}/{total} placed clusters run the current template (generation {generation})"
    );
    if !behind.is_empty() {
        line.push_str(&format!("; not yet: {}", behind.join(", ")));
    }
    (line, total > 0 && updated == total && behind.is_empty())
}

/// Waits until every placed cluster runs the current template, printing progress; errors on
/// timeout.
pub async fn status(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &federated_resource(kind, "v1beta1"),
    );
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let obj = serde_json::to_value(
            api.get(name)
                .await
                .with_context(|| format!("reading {kind} {namespace}/{name}"))?,
        )?;
        let (line, done) = progress(&obj);
        if line != last {
            println!("{line}");
            last = line;
        }
        if done {
            println!("rollout of {namespace}/{name} complete");
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {last}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_federated_kinds() {
        let ar = federated_resource("federateddeployments", "v1beta2");
        assert_eq!(
            (
                ar.kind.as_str(),
                ar.plural.as_str(),
                ar.api_version.as_str()
            ),
            (
                "FederatedDeployment",
                "federateddeployments",
                "types.kubefed.io/v1beta2"
            )
        );
        assert_eq!(
            federated_resource("FederatedConfigMap", "v1beta1").plural,
            "federatedconfigmaps"
        );
    }

    #[test]
    fn progress_lines() {
        let obj = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 3, "rollout": {"updated": 1, "total": 2},
            "clusters": [{"name": "a", "status": "OK"}, {"name": "b", "status": "MaskedOut"}]}});
        let (line, done) = progress(&obj);
        assert!(!done);
        assert!(
            line.starts_with("1/2") && line.contains("b (MaskedOut)"),
            "{line}"
        );
        let obj = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 3, "rollout": {"updated": 2, "total": 2},
            "clusters": [{"name": "a", "status": "OK"}, {"name": "b", "status": "OK"}]}});
        assert!(progress(&obj).1);
        let stale = json!({"metadata": {"generation": 4}, "status": {"observedGeneration": 3}});
        assert!(progress(&stale).0.contains("generation 4"));
    }
}
