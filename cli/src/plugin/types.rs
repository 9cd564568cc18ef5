//! `kubectl cellfed enable` / `disable` / `federate`: federated CRDs and FederatedTypeConfigs,
//! and turning an existing host object into a federated one.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use cellfed_api::kubefed::{FederatedTypeConfig, Scope, TargetType};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{Discovery, Scope as KubeScope};
use serde_json::{Value, json};

const MANAGER: &str = "kubectl-cellfed";

/// Finds the served type `name` names: `deployments`, `deployments.apps`, `Deployment`,
/// `deployment` (as kubectl resolves resource names).
pub async fn resolve(client: &kube::Client, name: &str) -> anyhow::Result<TargetType> {
    let (res, group) = match name.split_once('.') {
        Some((r, g)) => (r.to_lowercase(), Some(g.to_string())),
        None => (name.to_lowercase(), None),
    };
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .context("discovering the host's API")?;
    for g in discovery.groups() {
        if group.as_ref().is_some_and(|want| want != g.name())
            || g.name() == cellfed_api::well_known::TYPES_GROUP
        {
            continue;
        }
        for (ar, caps) in g.recommended_resources() {
            let matches = ar.plural == res
                || ar.kind.to_lowercase() == res
                || format!("{}s", ar.kind.to_lowercase()) == res;
            if matches && !ar.plural.contains('/') {
                let scope = if caps.scope == KubeScope::Namespaced {
                    Scope::Namespaced
                } else {
                    Scope::Cluster
                };
                return Ok(TargetType::new(
                    &ar.group,
                    &ar.version,
                    &ar.kind,
                    &ar.plural,
                    scope,
                ));
            }
        }
    }
    anyhow::bail!("the host serves no resource named {name:?}; check `kubectl api-resources`")
}

/// Creates or updates the federated CRD of `target` and its FederatedTypeConfig; the CRD's
/// conversion webhook is taken over from an existing federated CRD of the host, so a type enabled
/// later converts like the others. Waits until the CRD is established.
pub async fn enable(
    client: &kube::Client,
    target: &TargetType,
    fed_ns: &str,
) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut crd = cellfed_api::federated_crd(target)?;
    let existing = crds
        .list(&Default::default())
        .await
        .context("listing CRDs")?;
    if let Some(cc) = existing
        .items
        .iter()
        .filter(|c| c.spec.group == cellfed_api::well_known::TYPES_GROUP)
        .find_map(|c| {
            c.spec
                .conversion
                .as_ref()?
                .webhook
                .as_ref()?
                .client_config
                .clone()
        })
    {
        cellfed_api::crdgen::set_conversion_client(&mut crd, cc);
    }
    let name = crd.metadata.name.clone().unwrap_or_default();
    let mut body = serde_json::to_value(&crd)?;
    body["apiVersion"] = json!("apiextensions.k8s.io/v1");
    body["kind"] = json!("CustomResourceDefinition");
    crds.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .with_context(|| format!("writing CRD {name}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = crds.get(&name).await?;
        let established = c
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if established {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "CRD {name} did not become Established within 30s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ftc = FederatedTypeConfig::for_target(target, fed_ns);
    let mut body = serde_json::to_value(&ftc)?;
    body["apiVersion"] = json!("core.kubefed.io/v1beta1");
    body["kind"] = json!("FederatedTypeConfig");
    let ftcs: Api<FederatedTypeConfig> = Api::namespaced(client.clone(), fed_ns);
    ftcs.patch(
        &target.type_config_name(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .context("writing the FederatedTypeConfig")?;
    Ok(())
}

/// Stops propagation of `target` (propagation: Disabled); with `delete`, removes the
/// FederatedTypeConfig and the federated CRD (and with it every federated object of the kind).
pub async fn disable(
    client: &kube::Client,
    target: &TargetType,
    fed_ns: &str,
    delete: bool,
) -> anyhow::Result<()> {
    let ftcs: Api<FederatedTypeConfig> = Api::namespaced(client.clone(), fed_ns);
    let name = target.type_config_name();
    if delete {
        match ftcs.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e).context("deleting the FederatedTypeConfig"),
        }
        let crd = cellfed_api::federated_crd(target)?;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        match crds
            .delete(
                crd.metadata.name.as_deref().unwrap_or_default(),
                &DeleteParams::default(),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e).context("deleting the federated CRD"),
        }
        return Ok(());
    }
    ftcs.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"propagation": "Disabled"}})),
    )
    .await
    .with_context(|| format!("disabling {name} (is it enabled?)"))?;
    Ok(())
}

/// The federated object for an existing host object (pure): its labels and annotations and
/// spec-like fields become the template; server-set fields and status are dropped.
pub fn federated_from(target: &TargetType, obj: &Value, clusters: &[String]) -> Value {
    let mut template = obj.clone();
    if let Some(m) = template.as_object_mut() {
        for k in ["apiVersion", "kind", "status"] {
            m.remove(k);
        }
    }
    let meta = template["metadata"].take();
    let mut tmeta = json!({});
    for k in ["labels", "annotations"] {
        if let Some(v) = meta
            .get(k)
            .filter(|v| v.as_object().is_some_and(|m| !m.is_empty()))
        {
            tmeta[k] = v.clone();
        }
    }
    if let Some(ann) = tmeta.get_mut("annotations").and_then(Value::as_object_mut) {
        ann.remove("kubectl.kubernetes.io/last-applied-configuration");
        if ann.is_empty()
            && let Some(m) = tmeta.as_object_mut()
        {
            m.remove("annotations");
        }
    }
    if tmeta.as_object().is_some_and(|m| !m.is_empty()) {
        template["metadata"] = tmeta;
    } else if let Some(m) = template.as_object_mut() {
        m.remove("metadata");
    }
    let federated = target.federated();
    let mut out = json!({
        "apiVersion": format!("{}/{}", federated.group, federated.version),
        "kind": federated.kind,
        "metadata": {"name": meta["name"]},
        "spec": {"template": template, "placement": {"clusters": clusters.iter().map(|c| json!({"name": c})).collect::<Vec<_>>()}},
    });
    if let Some(ns) = meta.get("namespace") {
        out["metadata"]["namespace"] = ns.clone();
    }
    out
}

/// Creates the federated object for host object `name` of `target`.
pub async fn federate(
    client: &kube::Client,
    target: &TargetType,
    namespace: Option<&str>,
    name: &str,
    clusters: &[String],
) -> anyhow::Result<Value> {
    let ar = target.api_resource();
    let api: Api<DynamicObject> = match namespace.filter(|_| target.is_namespaced()) {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let obj = api
        .get(name)
        .await
        .with_context(|| format!("reading {} {name}", target.kind))?;
    let fed = federated_from(target, &serde_json::to_value(&obj)?, clusters);
    let fed_ar = target.federated().api_resource();
    let fapi: Api<DynamicObject> = match namespace.filter(|_| target.is_namespaced()) {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &fed_ar),
        None => Api::all_with(client.clone(), &fed_ar),
    };
    let created = fapi
        .create(&PostParams::default(), &serde_json::from_value(fed)?)
        .await
        .with_context(|| format!("creating the federated {}", target.kind))?;
    Ok(serde_json::to_value(created)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federated_from_keeps_spec_and_drops_server_fields() {
        let target = TargetType::new("apps", "v1", "Deployment", "deployments", Scope::Namespaced);
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "demo", "uid": "u", "resourceVersion": "9", "labels": {"app": "web"},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"replicas": 2}, "status": {"readyReplicas": 2}
        });
        let fed = federated_from(&target, &obj, &["member1".into()]);
        assert_eq!(fed["apiVersion"], "types.kubefed.io/v1beta1");
        assert_eq!(fed["kind"], "FederatedDeployment");
        assert_eq!(fed["metadata"], json!({"name": "web", "namespace": "demo"}));
        assert_eq!(
            fed["spec"]["template"],
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {"replicas": 2}})
        );
        assert_eq!(
            fed["spec"]["placement"]["clusters"],
            json!([{"name": "member1"}])
        );
    }
}
