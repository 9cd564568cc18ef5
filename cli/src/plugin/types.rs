//! `kubectl cellfed enable` / `disable`: federated CRDs and FederatedTypeConfigs, with
//! kubefedctl's flags (`--federated-group`, `--federated-version`, `-o yaml`, `--dry-run`,
//! `--delete-crd`) and messages.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use cellfed_api::kubefed::{FederatedTypeConfig, PropagationMode, TargetType};
use cellfed_api::well_known::{TYPES_GROUP, TYPES_V1BETA1};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::discovery;

const MANAGER: &str = "kubectl-cellfed";

/// How `enable` names the federated type and whether it writes.
#[derive(Clone, Debug)]
pub struct EnableOptions {
    /// API group of the federated type (kubefedctl's `--federated-group`).
    pub federated_group: String,
    /// API version of the federated type (kubefedctl's `--federated-version`).
    pub federated_version: String,
    /// Report what would be written, write nothing.
    pub dry_run: bool,
}

impl Default for EnableOptions {
    fn default() -> Self {
        Self {
            federated_group: TYPES_GROUP.into(),
            federated_version: TYPES_V1BETA1.into(),
            dry_run: false,
        }
    }
}

/// The federated type of `target` in `group`/`version` (pure).
pub fn federated_type(target: &TargetType, group: &str, version: &str) -> TargetType {
    let mut fed = target.federated();
    fed.group = group.into();
    fed.version = version.into();
    fed
}

/// The FederatedTypeConfig and the federated CRD that enable `target` (pure), as `enable -o yaml`
/// prints them. In `types.kubefed.io` the CRD serves v1beta1 (KubeFed's cluster view, storage)
/// and v1beta2 (cellfed's topology view) converted by the webhook; in any other group it is
/// KubeFed's single-version CRD with the cluster view's schema, without conversion.
pub fn type_resources(
    target: &TargetType,
    fed_ns: &str,
    opts: &EnableOptions,
) -> anyhow::Result<(Value, Value)> {
    let (group, version) = (&opts.federated_group, &opts.federated_version);
    anyhow::ensure!(
        group != TYPES_GROUP || version == TYPES_V1BETA1,
        "--federated-version {version}: federated types in {TYPES_GROUP} are v1beta1 (KubeFed's cluster view, which FederatedTypeConfigs name) and are also served as v1beta2 (cellfed's topology view); another version needs another --federated-group"
    );
    let fed = federated_type(target, group, version);
    let mut ftc = FederatedTypeConfig::for_target(target, fed_ns);
    ftc.spec.federated_type = fed.clone();
    let mut ftc = serde_json::to_value(&ftc)?;
    ftc["apiVersion"] = json!("core.kubefed.io/v1beta1");
    ftc["kind"] = json!("FederatedTypeConfig");
    let mut crd = serde_json::to_value(cellfed_api::federated_crd(target)?)?;
    crd["apiVersion"] = json!("apiextensions.k8s.io/v1");
    crd["kind"] = json!("CustomResourceDefinition");
    if group != TYPES_GROUP {
        crd["metadata"]["name"] = json!(crd_name(&fed));
        crd["spec"]["group"] = json!(group);
        let mut cluster_view = crd["spec"]["versions"][0].clone();
        cluster_view["name"] = json!(version);
        cluster_view["storage"] = json!(true);
        crd["spec"]["versions"] = json!([cluster_view]);
        if let Some(spec) = crd["spec"].as_object_mut() {
            spec.remove("conversion");
        }
    }
    Ok((ftc, crd))
}

/// `federated<plural>.<group>`: the CRD name of federated type `fed`.
pub fn crd_name(fed: &TargetType) -> String {
    format!("{}.{}", fed.plural(), fed.group)
}

/// Enables `target`: creates or updates its federated CRD (taking the conversion webhook over
/// from the host's other federated CRDs, so a type enabled later converts like the others) and
/// its FederatedTypeConfig, then waits until the CRD is established. Returns kubefedctl's
/// progress lines. Refuses to change the federated type of an already enabled type.
pub async fn enable(
    client: &kube::Client,
    target: &TargetType,
    fed_ns: &str,
    opts: &EnableOptions,
) -> anyhow::Result<Vec<String>> {
    let (ftc, crd) = resources_for_host(client, target, fed_ns, opts).await?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let ftcs: Api<FederatedTypeConfig> = Api::namespaced(client.clone(), fed_ns);
    let ftc_name = target.type_config_name();
    let name = crd["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let existing_ftc = ftcs.get_opt(&ftc_name).await?;
    let fed = federated_type(target, &opts.federated_group, &opts.federated_version);
    if let Some(existing) = &existing_ftc {
        let old = &existing.spec.federated_type;
        if old.group != fed.group || old.version != fed.version || old.plural() != fed.plural() {
            anyhow::bail!(
                "federation is already enabled for {ftc_name:?} with federated type \"{}/{}\"; changing it to \"{}/{}\" is not supported (run `kubectl cellfed disable {ftc_name} --delete-crd` first)",
                crd_name(old),
                old.version,
                crd_name(&fed),
                fed.version
            );
        }
    }
    let existing_crd = crds.get_opt(&name).await?;
    let verb = |exists: bool| if exists { "updated" } else { "created" };
    let suffix = if opts.dry_run { " (dry run)" } else { "" };
    let lines = vec![
        format!(
            "customresourcedefinition.apiextensions.k8s.io/{name} {}{suffix}",
            verb(existing_crd.is_some())
        ),
        format!(
            "federatedtypeconfig.core.kubefed.io/{ftc_name} {} in namespace {fed_ns}{suffix}",
            verb(existing_ftc.is_some())
        ),
    ];
    if opts.dry_run {
        return Ok(lines);
    }
    let ssa = PatchParams::apply(MANAGER).force();
    crds.patch(&name, &ssa, &Patch::Apply(&crd)).await?;
    wait_established(&crds, &name).await?;
    ftcs.patch(&ftc_name, &ssa, &Patch::Apply(&ftc)).await?;
    Ok(lines)
}

/// [`type_resources`] with the conversion webhook of the host's federated CRDs filled in.
pub async fn resources_for_host(
    client: &kube::Client,
    target: &TargetType,
    fed_ns: &str,
    opts: &EnableOptions,
) -> anyhow::Result<(Value, Value)> {
    let (ftc, mut crd) = type_resources(target, fed_ns, opts)?;
    if crd["spec"].get("conversion").is_some() {
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let existing = crds.list(&ListParams::default()).await?;
        if let Some(cc) = existing
            .items
            .iter()
            .filter(|c| c.spec.group == TYPES_GROUP)
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
            crd["spec"]["conversion"]["webhook"]["clientConfig"] = serde_json::to_value(cc)?;
        }
    }
    Ok((ftc, crd))
}

async fn wait_established(crds: &Api<CustomResourceDefinition>, name: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = crds.get(name).await?;
        let established = c
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if established {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "CRD {name} did not become Established within 30s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How `disable` goes about it.
#[derive(Clone, Debug, Default)]
pub struct DisableOptions {
    /// Also delete the federated CRD and the FederatedTypeConfig (refused while federated
    /// objects of the type exist, as kubefedctl's `--delete-crd`).
    pub delete_crd: bool,
    /// Federated group to assume when no FederatedTypeConfig names it (`--federated-group`).
    pub federated_group: Option<String>,
    /// Report what would change, change nothing.
    pub dry_run: bool,
}

/// Disables propagation of the type `name` names (a FederatedTypeConfig name such as
/// `deployments.apps`, or any name `enable` accepts): `propagation: Disabled`; with
/// `delete_crd`, also deletes the federated CRD and the FederatedTypeConfig. Returns kubefedctl's
/// progress lines; a type that was never enabled is reported, not an error.
pub async fn disable(
    client: &kube::Client,
    name: &str,
    fed_ns: &str,
    opts: &DisableOptions,
) -> anyhow::Result<Vec<String>> {
    let ftcs: Api<FederatedTypeConfig> = Api::namespaced(client.clone(), fed_ns);
    let (ftc_name, ftc, target) = match ftcs.get_opt(name).await? {
        Some(ftc) => (name.to_string(), Some(ftc), None),
        None => {
            let target = discovery::resolve(client, name, None).await?;
            let ftc_name = target.type_config_name();
            (
                ftc_name.clone(),
                ftcs.get_opt(&ftc_name).await?,
                Some(target),
            )
        }
    };
    let qualified = format!("{fed_ns}/{ftc_name}");
    let suffix = if opts.dry_run { " (dry run)" } else { "" };
    let mut lines = Vec::new();
    let fed = match (&ftc, &target) {
        (Some(ftc), _) => Some(ftc.spec.federated_type.clone()),
        (None, Some(target)) => {
            lines.push(format!("FederatedTypeConfig {qualified:?} does not exist"));
            let group = opts.federated_group.as_deref().unwrap_or(TYPES_GROUP);
            Some(federated_type(target, group, TYPES_V1BETA1))
        }
        (None, None) => None,
    };
    if opts.delete_crd
        && let Some(fed) = &fed
    {
        refuse_if_objects_exist(client, fed).await?;
    }
    if let Some(ftc) = &ftc {
        if ftc.spec.propagation == PropagationMode::Enabled {
            if !opts.dry_run {
                ftcs.patch(
                    &ftc_name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"propagation": "Disabled"}})),
                )
                .await?;
            }
            lines.push(format!(
                "Disabled propagation for FederatedTypeConfig {qualified:?}{suffix}"
            ));
        } else {
            lines.push(format!(
                "Propagation already disabled for FederatedTypeConfig {qualified:?}"
            ));
        }
    }
    if !opts.delete_crd {
        return Ok(lines);
    }
    if let Some(fed) = &fed {
        let crd = crd_name(fed);
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        if crds.get_opt(&crd).await?.is_none() {
            lines.push(format!("customresourcedefinition {crd:?} does not exist"));
        } else {
            if !opts.dry_run {
                delete_if_present(crds.delete(&crd, &DeleteParams::default()).await)?;
            }
            lines.push(format!("customresourcedefinition {crd:?} deleted{suffix}"));
        }
    }
    if ftc.is_some() {
        if !opts.dry_run {
            delete_if_present(ftcs.delete(&ftc_name, &DeleteParams::default()).await)?;
        }
        lines.push(format!("federatedtypeconfig {qualified:?} deleted{suffix}"));
    }
    Ok(lines)
}

fn delete_if_present<T>(r: Result<T, kube::Error>) -> anyhow::Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// kubefedctl's guard for `--delete-crd`: deleting the CRD would delete every federated object of
/// the type (and, through the sync finalizer, their member objects), so refuse while any exists.
async fn refuse_if_objects_exist(client: &kube::Client, fed: &TargetType) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &fed.api_resource());
    let list = match api.list(&ListParams::default().limit(5)).await {
        Ok(l) => l,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if list.items.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = list
        .items
        .iter()
        .map(|o| match &o.metadata.namespace {
            Some(ns) => format!("{ns}/{}", o.metadata.name.as_deref().unwrap_or_default()),
            None => o.metadata.name.clone().unwrap_or_default(),
        })
        .collect();
    anyhow::bail!(
        "cannot delete CRD {:?} while {} objects exist ({}{}); delete them first, or run disable without --delete-crd",
        crd_name(fed),
        fed.kind,
        names.join(", "),
        if list
            .metadata
            .continue_
            .as_deref()
            .is_some_and(|c| !c.is_empty())
        {
            ", …"
        } else {
            ""
        }
    )
}

/// The federated type of `target` the host uses: its FederatedTypeConfig's, or None when the
/// type is not enabled.
pub async fn enabled_federated_type(
    client: &kube::Client,
    target: &TargetType,
    fed_ns: &str,
) -> anyhow::Result<Option<TargetType>> {
    let ftcs: Api<FederatedTypeConfig> = Api::namespaced(client.clone(), fed_ns);
    Ok(ftcs
        .get_opt(&target.type_config_name())
        .await
        .context("reading FederatedTypeConfigs")?
        .map(|ftc| ftc.spec.federated_type))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellfed_api::kubefed::Scope;

    fn roles() -> TargetType {
        TargetType::new(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            Scope::Namespaced,
        )
    }

    #[test]
    fn default_group_serves_both_views_with_conversion() {
        let (ftc, crd) = type_resources(
            &roles(),
            "kube-federation-system",
            &EnableOptions::default(),
        )
        .unwrap();
        assert_eq!(ftc["metadata"]["name"], "roles.rbac.authorization.k8s.io");
        assert_eq!(ftc["metadata"]["namespace"], "kube-federation-system");
        assert_eq!(
            ftc["spec"]["federatedType"],
            json!({"group": "types.kubefed.io", "version": "v1beta1", "kind": "FederatedRole", "pluralName": "federatedroles", "scope": "Namespaced"})
        );
        assert_eq!(crd["metadata"]["name"], "federatedroles.types.kubefed.io");
        let versions: Vec<&str> = crd["spec"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(versions, ["v1beta1", "v1beta2"]);
        assert_eq!(crd["spec"]["conversion"]["strategy"], "Webhook");
    }

    #[test]
    fn another_group_gets_kubefeds_single_version_crd() {
        let opts = EnableOptions {
            federated_group: "fed.example.com".into(),
            federated_version: "v1alpha1".into(),
            dry_run: false,
        };
        let (ftc, crd) = type_resources(&roles(), "kube-federation-system", &opts).unwrap();
        assert_eq!(ftc["spec"]["federatedType"]["group"], "fed.example.com");
        assert_eq!(ftc["spec"]["federatedType"]["version"], "v1alpha1");
        assert_eq!(crd["metadata"]["name"], "federatedroles.fed.example.com");
        assert_eq!(crd["spec"]["group"], "fed.example.com");
        let versions = crd["spec"]["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0]["name"], "v1alpha1");
        assert_eq!(versions[0]["storage"], true);
        assert!(crd["spec"].get("conversion").is_none());
    }

    #[test]
    fn other_versions_of_the_default_group_are_refused_with_the_reason() {
        let opts = EnableOptions {
            federated_version: "v1alpha1".into(),
            ..Default::default()
        };
        let err = type_resources(&roles(), "kube-federation-system", &opts)
            .unwrap_err()
            .to_string();
        assert!(err.contains("another --federated-group"), "{err}");
    }
}
