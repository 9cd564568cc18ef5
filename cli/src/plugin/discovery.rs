//! Finding the API type a user names, as kubectl and kubefedctl do: plural (`deployments`),
//! singular (`deployment`), kind (`Deployment`), short name (`deploy`, `cm`) or group-qualified
//! (`deployments.apps`), from the server's discovery documents.

use cellfed_api::kubefed::{Scope, TargetType};

/// A served API type with the names it answers to.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiType {
    /// Group, version, kind, plural and scope.
    pub target: TargetType,
    /// Lower-case singular name.
    pub singular: String,
    /// Short names (`cm`, `deploy`).
    pub short_names: Vec<String>,
    /// Verbs the server allows (`list`, `create`…).
    pub verbs: Vec<String>,
    /// Whether this is the group's preferred version.
    pub preferred: bool,
}

impl ApiType {
    /// Whether `name` names this type (kubefedctl's `NameMatchesResource`, plus kubectl's
    /// `singular.group` and `plural.version.group`).
    pub fn answers_to(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        let t = &self.target;
        let plural = t.plural();
        let mut names = vec![plural.clone(), self.singular.clone(), t.kind.to_lowercase()];
        names.extend(self.short_names.iter().map(|s| s.to_lowercase()));
        if !t.group.is_empty() {
            names.push(format!("{plural}.{}", t.group));
            names.push(format!("{}.{}", self.singular, t.group));
            names.push(format!("{plural}.{}.{}", t.version, t.group));
        } else {
            names.push(format!("{plural}.{}", t.version));
        }
        names.contains(&name)
    }

    /// `plural.group` (`plural` for the core group): how kubefedctl names a type in messages.
    pub fn qualified(&self) -> String {
        self.target.type_config_name()
    }

    /// Whether objects of this type can be listed.
    pub fn listable(&self) -> bool {
        self.verbs.iter().any(|v| v == "list")
    }
}

/// Every type the server serves, in every version (core first, then groups in discovery order);
/// subresources left out.
pub async fn served(client: &kube::Client) -> anyhow::Result<Vec<ApiType>> {
    let mut out = Vec::new();
    let core = client.list_core_api_versions().await?;
    for (i, version) in core.versions.iter().enumerate() {
        let list = client.list_core_api_resources(version).await?;
        push_resources(&mut out, "", version, i == 0, list.resources);
    }
    let groups = client.list_api_groups().await?;
    for group in groups.groups {
        let preferred = group
            .preferred_version
            .as_ref()
            .map(|p| p.version.clone())
            .or_else(|| group.versions.first().map(|v| v.version.clone()))
            .unwrap_or_default();
        for v in &group.versions {
            let list = client.list_api_group_resources(&v.group_version).await?;
            push_resources(
                &mut out,
                &group.name,
                &v.version,
                v.version == preferred,
                list.resources,
            );
        }
    }
    Ok(out)
}

fn push_resources(
    out: &mut Vec<ApiType>,
    group: &str,
    version: &str,
    preferred: bool,
    resources: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource>,
) {
    for r in resources {
        if r.name.contains('/') {
            continue;
        }
        let scope = if r.namespaced {
            Scope::Namespaced
        } else {
            Scope::Cluster
        };
        let singular = if r.singular_name.is_empty() {
            r.kind.to_lowercase()
        } else {
            r.singular_name.clone()
        };
        out.push(ApiType {
            target: TargetType::new(group, version, &r.kind, &r.name, scope),
            singular,
            short_names: r.short_names.unwrap_or_default(),
            verbs: r.verbs,
            preferred,
        });
    }
}

/// Groups whose types are the federation's own: never targets of `enable` or `federate`.
pub const FEDERATION_GROUPS: &[&str] = &[
    cellfed_api::well_known::TYPES_GROUP,
    cellfed_api::well_known::CORE_GROUP,
    cellfed_api::well_known::CELLFED_GROUP,
    "scheduling.kubefed.io",
];

/// The type `name` names among `types` (pure). `version` picks a version other than the
/// preferred one; `federation` says whether the federation's own groups count. A core type wins
/// over same-named types of other groups; several other matches are ambiguous, as in kubefedctl.
pub fn find<'a>(
    types: &'a [ApiType],
    name: &str,
    version: Option<&str>,
    federation: bool,
) -> anyhow::Result<&'a ApiType> {
    let matches: Vec<&ApiType> = types
        .iter()
        .filter(|t| match version {
            Some(v) => t.target.version == v,
            None => t.preferred,
        })
        .filter(|t| federation || !FEDERATION_GROUPS.contains(&t.target.group.as_str()))
        .filter(|t| t.answers_to(name))
        .collect();
    if let Some(core) = matches.iter().find(|t| t.target.group.is_empty()) {
        return Ok(core);
    }
    match matches.as_slice() {
        [] => match version {
            Some(v) => {
                anyhow::bail!("the server doesn't have a resource type {name:?} in version {v:?}")
            }
            None => anyhow::bail!("the server doesn't have a resource type {name:?}"),
        },
        [one] => Ok(one),
        many => {
            let names: Vec<String> = many.iter().map(|t| t.qualified()).collect();
            anyhow::bail!(
                "multiple resource types are matched by {name:?}: {}; give a group-qualified plural name",
                names.join(", ")
            )
        }
    }
}

/// Resolves `name` against the server (see [`find`]): the target type of `enable`/`federate`.
pub async fn resolve(
    client: &kube::Client,
    name: &str,
    version: Option<&str>,
) -> anyhow::Result<TargetType> {
    let types = served(client).await?;
    Ok(find(&types, name, version, false)?.target.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(group: &str, version: &str, kind: &str, plural: &str, short: &[&str]) -> ApiType {
        ApiType {
            target: TargetType::new(group, version, kind, plural, Scope::Namespaced),
            singular: kind.to_lowercase(),
            short_names: short.iter().map(|s| s.to_string()).collect(),
            verbs: vec!["list".into()],
            preferred: true,
        }
    }

    fn served() -> Vec<ApiType> {
        vec![
            t("", "v1", "ConfigMap", "configmaps", &["cm"]),
            t("", "v1", "Event", "events", &["ev"]),
            t("apps", "v1", "Deployment", "deployments", &["deploy"]),
            t("events.k8s.io", "v1", "Event", "events", &["ev"]),
            t("a.example.com", "v1", "Widget", "widgets", &[]),
            t("b.example.com", "v1", "Widget", "widgets", &[]),
            t(
                "types.kubefed.io",
                "v1beta1",
                "FederatedDeployment",
                "federateddeployments",
                &[],
            ),
        ]
    }

    #[test]
    fn resolves_every_name_kubectl_and_kubefedctl_accept() {
        let types = served();
        for name in [
            "deployments",
            "deployment",
            "Deployment",
            "deploy",
            "deployments.apps",
            "deployment.apps",
            "deployments.v1.apps",
        ] {
            assert_eq!(
                find(&types, name, None, false).unwrap().target.kind,
                "Deployment",
                "{name}"
            );
        }
        assert_eq!(
            find(&types, "cm", None, false).unwrap().target.kind,
            "ConfigMap"
        );
    }

    #[test]
    fn core_wins_and_other_duplicates_are_ambiguous() {
        let types = served();
        assert_eq!(
            find(&types, "events", None, false).unwrap().target.group,
            ""
        );
        let err = find(&types, "widgets", None, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("widgets.a.example.com, widgets.b.example.com"),
            "{err}"
        );
        assert_eq!(
            find(&types, "widgets.b.example.com", None, false)
                .unwrap()
                .target
                .group,
            "b.example.com"
        );
    }

    #[test]
    fn federated_types_only_when_asked_and_unknown_names_say_so_as_kubectl() {
        let types = served();
        assert!(find(&types, "federateddeployments", None, false).is_err());
        assert!(find(&types, "FederatedDeployment", None, true).is_ok());
        assert_eq!(
            find(&types, "gizmos", None, false).unwrap_err().to_string(),
            "the server doesn't have a resource type \"gizmos\""
        );
        assert!(find(&types, "deployments", Some("v1beta1"), false).is_err());
    }
}
