//! `kubectl cellfed federate`: turn existing host objects into federated ones, as kubefedctl's
//! `federate` does — one object (`TYPE NAME`), a namespace with its contents (`--contents`), or the
//! objects of a file (`-f`, printed, never created) — placed on every cluster unless `--clusters`
//! names some.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cellfed_api::kubefed::{Scope, TargetType};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use serde::Deserialize as _;
use serde_json::{Value, json};

use super::discovery::{self, ApiType};
use super::errors::hinted;
use super::types::{self, EnableOptions};

/// How to federate.
#[derive(Clone, Debug, Default)]
pub struct FederateOptions {
    /// Namespace of the object (ignored for cluster-scoped types and namespaces).
    pub namespace: String,
    /// Clusters to place on; empty = every cluster (`clusterSelector: {}`), as kubefedctl.
    pub clusters: Vec<String>,
    /// For a namespace: also federate the objects in it.
    pub contents: bool,
    /// Enable a type that has no FederatedTypeConfig yet instead of failing or skipping it.
    pub enable_type: bool,
    /// Types (any name `enable` accepts, or a whole API group) left out of `contents`.
    pub skip_api_resources: Vec<String>,
    /// Build the federated objects but create nothing (`-o yaml`).
    pub output_only: bool,
    /// Report what would be created, create nothing.
    pub dry_run: bool,
    /// Namespace of FederatedTypeConfigs.
    pub fed_ns: String,
}

/// What a federate run produced.
#[derive(Debug, Default)]
pub struct Federated {
    /// The federated objects (printed with `-o yaml`).
    pub objects: Vec<Value>,
    /// One line per object created or enabled type, kubectl style.
    pub lines: Vec<String>,
    /// Objects left out, and why.
    pub warnings: Vec<String>,
}

/// Placement of a federated object: the named clusters, or every cluster when none are named.
pub fn placement(clusters: &[String]) -> Value {
    if clusters.is_empty() {
        json!({"clusterSelector": {}})
    } else {
        json!({"clusters": clusters.iter().map(|c| json!({"name": c})).collect::<Vec<_>>()})
    }
}

/// Annotations the host's own machinery sets, never part of a template.
const SERVER_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
];

/// The federated object (of type `fed`) for host object `obj` of type `target` (pure): its labels,
/// annotations and spec-like fields become the template; server-set fields and status are
/// dropped, and the fields KubeFed leaves to each member (a Service's cluster IPs and node ports,
/// a ServiceAccount's token secrets, a Namespace's finalizers).
pub fn federated_from(
    target: &TargetType,
    fed: &TargetType,
    obj: &Value,
    clusters: &[String],
) -> Value {
    let mut template = obj.clone();
    if let Some(m) = template.as_object_mut() {
        for k in ["apiVersion", "kind", "status"] {
            m.remove(k);
        }
    }
    match (target.group.as_str(), target.kind.as_str()) {
        ("", "Namespace") => {
            remove(&mut template, "/spec", "finalizers");
            if template["spec"].as_object().is_some_and(|m| m.is_empty())
                && let Some(m) = template.as_object_mut()
            {
                m.remove("spec");
            }
        }
        ("", "ServiceAccount") => remove(&mut template, "", "secrets"),
        ("", "Service") => {
            for field in ["clusterIP", "clusterIPs", "healthCheckNodePort"] {
                remove(&mut template, "/spec", field);
            }
            if let Some(ports) = template
                .pointer_mut("/spec/ports")
                .and_then(Value::as_array_mut)
            {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    p.remove("nodePort");
                }
            }
        }
        _ => {}
    }
    let meta = template
        .as_object_mut()
        .and_then(|m| m.remove("metadata"))
        .unwrap_or_default();
    let mut tmeta = serde_json::Map::new();
    for k in ["labels", "annotations"] {
        let mut map = meta
            .get(k)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if k == "annotations" {
            for a in SERVER_ANNOTATIONS {
                map.remove(*a);
            }
        }
        if !map.is_empty() {
            tmeta.insert(k.into(), Value::Object(map));
        }
    }
    if !tmeta.is_empty() {
        template["metadata"] = Value::Object(tmeta);
    }
    let name = meta.get("name").cloned().unwrap_or(Value::Null);
    let mut out = json!({
        "apiVersion": fed.api_version(),
        "kind": fed.kind,
        "metadata": {"name": name},
        "spec": {"template": template, "placement": placement(clusters)},
    });
    if fed.is_namespaced() {
        let ns = if target.group.is_empty() && target.kind == "Namespace" {
            Some(name)
        } else {
            meta.get("namespace").cloned()
        };
        if let Some(ns) = ns {
            out["metadata"]["namespace"] = ns;
        }
    }
    out
}

fn remove(v: &mut Value, pointer: &str, field: &str) {
    let target = if pointer.is_empty() {
        Some(v)
    } else {
        v.pointer_mut(pointer)
    };
    if let Some(m) = target.and_then(Value::as_object_mut) {
        m.remove(field);
    }
}

/// Types never federated with a namespace's contents: the federation's own, the deprecated
/// `extensions` group, and what controllers create (kubefedctl's list plus EndpointSlices and
/// Leases), and whatever `skip` names (a type or a whole group).
pub fn skip_type(t: &ApiType, skip: &[String]) -> bool {
    const CONTROLLER_CREATED: &[&str] = &[
        "endpoints",
        "endpointslices.discovery.k8s.io",
        "events",
        "events.events.k8s.io",
        "leases.coordination.k8s.io",
    ];
    let group = t.target.group.as_str();
    discovery::FEDERATION_GROUPS.contains(&group)
        || group == "extensions"
        || CONTROLLER_CREATED.contains(&t.qualified().as_str())
        || skip
            .iter()
            .any(|s| !s.is_empty() && (s == group || t.answers_to(s)))
}

/// Why object `obj` of a namespace's contents is left out (pure): objects a controller owns
/// (a Deployment's ReplicaSets and Pods…), what every namespace gets by itself (the `default`
/// ServiceAccount, `kube-root-ca.crt`, service-account token Secrets), and names that are not
/// DNS-1123 subdomains (kubefedctl's rule). Only the last is worth a warning.
pub fn skip_object(target: &TargetType, obj: &Value) -> Option<Skip> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let owned = obj
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| refs.iter().any(|r| r["controller"] == true));
    let system = match (target.group.as_str(), target.kind.as_str()) {
        ("", "ServiceAccount") => name == "default",
        ("", "ConfigMap") => name == "kube-root-ca.crt",
        ("", "Secret") => obj["type"] == "kubernetes.io/service-account-token",
        _ => false,
    };
    if owned || system {
        return Some(Skip::Quietly);
    }
    if !is_dns1123_subdomain(name) {
        return Some(Skip::Warn(format!(
            "{} {name:?} is not federated: its name is not a DNS-1123 subdomain",
            target.kind
        )));
    }
    None
}

/// Whether (and how loudly) an object is skipped.
#[derive(Debug, PartialEq)]
pub enum Skip {
    /// Not the user's object: say nothing.
    Quietly,
    /// Tell the user why.
    Warn(String),
}

fn is_dns1123_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Kinds (by group) that live outside namespaces, for objects of a file without a namespace.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("networking.k8s.io", "IngressClass"),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    ("apiregistration.k8s.io", "APIService"),
];

/// The objects of a YAML stream (several documents, `kind: List` expanded).
pub fn parse_documents(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(doc).with_context(|| format!("document {}", i + 1))?;
        match v {
            Value::Null => {}
            Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                out.extend(
                    m.get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            v => out.push(v),
        }
    }
    Ok(out)
}

/// The federated objects for the objects of a file (pure, no server asked, as kubefedctl's
/// `--filename`): the type comes from each object's apiVersion and kind; an object without a
/// namespace is namespaced in `namespace` unless its kind is a well-known cluster-scoped one.
pub fn federate_documents(
    docs: &[Value],
    namespace: &str,
    clusters: &[String],
) -> anyhow::Result<Vec<Value>> {
    docs.iter()
        .enumerate()
        .map(|(i, doc)| {
            let what = |field: &str| format!("object {} of the file has no {field}", i + 1);
            let api_version = doc["apiVersion"].as_str().with_context(|| what("apiVersion"))?;
            let kind = doc["kind"].as_str().with_context(|| what("kind"))?;
            let name = doc.pointer("/metadata/name").and_then(Value::as_str).with_context(|| what("metadata.name"))?;
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            anyhow::ensure!(
                !discovery::FEDERATION_GROUPS.contains(&group),
                "{kind} {name:?} ({api_version}) belongs to the federation itself and cannot be federated"
            );
            let given_ns = doc.pointer("/metadata/namespace").and_then(Value::as_str);
            let scope = if given_ns.is_some() || !CLUSTER_SCOPED.contains(&(group, kind)) {
                Scope::Namespaced
            } else {
                Scope::Cluster
            };
            let target = TargetType::new(group, version, kind, &cellfed_api::kubefed::plural_name(kind), scope);
            let mut obj = doc.clone();
            if target.is_namespaced() && given_ns.is_none() {
                obj["metadata"]["namespace"] = json!(namespace);
            }
            Ok(federated_from(&target, &target.federated(), &obj, clusters))
        })
        .collect()
}

/// `singular.group/name` (`singular/name` in the core group), as kubectl names an object.
pub fn reference(t: &TargetType, name: &str) -> String {
    if t.group.is_empty() {
        format!("{}/{name}", t.kind.to_lowercase())
    } else {
        format!("{}.{}/{name}", t.kind.to_lowercase(), t.group)
    }
}

fn api_for(client: &kube::Client, t: &TargetType, namespace: Option<&str>) -> Api<DynamicObject> {
    let ar = t.api_resource();
    match namespace.filter(|_| t.is_namespaced()) {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// Federates host object `name` of the type `type_name` names (and, with `contents`, the objects
/// in that namespace): creates the federated objects, enabling types first with `enable_type`,
/// or only builds them with `output_only`.
pub async fn federate(
    client: &kube::Client,
    type_name: &str,
    name: &str,
    opts: &FederateOptions,
) -> anyhow::Result<Federated> {
    let served = discovery::served(client).await?;
    let root = discovery::find(&served, type_name, None, false)?.clone();
    let is_namespace = root.target.group.is_empty() && root.target.kind == "Namespace";
    anyhow::ensure!(
        !opts.contents || is_namespace,
        "--contents can only be used with type 'namespaces'"
    );
    let obj = api_for(client, &root.target, Some(&opts.namespace))
        .get(name)
        .await?;
    let mut items = vec![(root.target.clone(), serde_json::to_value(obj)?)];
    let mut out = Federated::default();
    if opts.contents {
        items.extend(contents(client, &served, name, opts, &mut out.warnings).await?);
    }
    // one FederatedTypeConfig lookup per type, in the order the objects came
    let mut by_type: Vec<(TargetType, Vec<Value>)> = Vec::new();
    for (t, obj) in items {
        match by_type.iter_mut().find(|(bt, _)| *bt == t) {
            Some((_, objs)) => objs.push(obj),
            None => by_type.push((t, vec![obj])),
        }
    }
    let mut creates: Vec<(TargetType, Value, bool)> = Vec::new();
    let mut to_enable: Vec<TargetType> = Vec::new();
    for (i, (target, objs)) in by_type.iter().enumerate() {
        let (fed, just_enabled) = match types::enabled_federated_type(client, target, &opts.fed_ns)
            .await?
        {
            Some(fed) => (fed, false),
            None if opts.output_only => (target.federated(), false),
            None if opts.enable_type => {
                to_enable.push(target.clone());
                (target.federated(), true)
            }
            None if i == 0 => return Err(not_enabled(target, &opts.fed_ns)),
            None => {
                out.warnings.push(format!(
                    "{} {} not federated: {} is not enabled (add --enable-type, or kubectl cellfed enable {})",
                    objs.len(),
                    target.plural(),
                    target.type_config_name(),
                    target.type_config_name()
                ));
                continue;
            }
        };
        for obj in objs {
            creates.push((
                fed.clone(),
                federated_from(target, &fed, obj, &opts.clusters),
                just_enabled,
            ));
        }
    }
    if opts.output_only {
        out.objects = creates.into_iter().map(|(_, o, _)| o).collect();
        return Ok(out);
    }
    let enable_opts = EnableOptions {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    for target in &to_enable {
        out.lines
            .extend(types::enable(client, target, &opts.fed_ns, &enable_opts).await?);
    }
    let suffix = if opts.dry_run { " (dry run)" } else { "" };
    for (fed, obj, just_enabled) in creates {
        let fname = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !opts.dry_run {
            let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
            create(&api_for(client, &fed, ns), &obj, just_enabled).await?;
        }
        out.lines
            .push(format!("{} created{suffix}", reference(&fed, &fname)));
        out.objects.push(obj);
    }
    Ok(out)
}

/// The error for a type without FederatedTypeConfig, as the server would say it, with the way out.
fn not_enabled(target: &TargetType, fed_ns: &str) -> anyhow::Error {
    let name = target.type_config_name();
    let status = kube::core::Status::failure(
        &format!("federatedtypeconfigs.core.kubefed.io {name:?} not found"),
        "NotFound",
    )
    .with_code(404);
    hinted(
        kube::Error::Api(status.boxed()),
        format!(
            "the type is not enabled in {fed_ns}: add --enable-type, or run kubectl cellfed enable {name}"
        ),
    )
}

/// Creates `obj`; a type enabled a moment ago may take a little while to be served (kubefedctl
/// retries for 10 seconds too).
async fn create(api: &Api<DynamicObject>, obj: &Value, just_enabled: bool) -> anyhow::Result<()> {
    let body: DynamicObject = serde_json::from_value(obj.clone())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match api.create(&PostParams::default(), &body).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s))
                if s.code == 404 && just_enabled && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The objects in `namespace` worth federating with it, from every listable namespaced type.
async fn contents(
    client: &kube::Client,
    served: &[ApiType],
    namespace: &str,
    opts: &FederateOptions,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<(TargetType, Value)>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for t in served.iter().filter(|t| {
        t.preferred
            && t.target.is_namespaced()
            && t.listable()
            && !skip_type(t, &opts.skip_api_resources)
    }) {
        if !seen.insert(t.qualified()) {
            continue;
        }
        let list = match api_for(client, &t.target, Some(namespace))
            .list(&ListParams::default())
            .await
        {
            Ok(l) => l,
            Err(kube::Error::Api(s)) if matches!(s.code, 404 | 405) => continue,
            Err(e) => return Err(e.into()),
        };
        for item in list.items {
            let mut obj = serde_json::to_value(item)?;
            match skip_object(&t.target, &obj) {
                Some(Skip::Quietly) => continue,
                Some(Skip::Warn(w)) => {
                    warnings.push(w);
                    continue;
                }
                None => {}
            }
            // list items come without apiVersion/kind; the template does not need them
            if let Some(m) = obj.as_object_mut() {
                m.remove("apiVersion");
                m.remove("kind");
            }
            out.push((t.target.clone(), obj));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployments() -> TargetType {
        TargetType::new("apps", "v1", "Deployment", "deployments", Scope::Namespaced)
    }

    #[test]
    fn federated_from_keeps_spec_and_drops_server_fields() {
        let target = deployments();
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "demo", "uid": "u", "resourceVersion": "9", "labels": {"app": "web"},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "deployment.kubernetes.io/revision": "1"}},
            "spec": {"replicas": 2}, "status": {"readyReplicas": 2}
        });
        let fed = federated_from(&target, &target.federated(), &obj, &["member1".into()]);
        assert_eq!(fed["apiVersion"], "types.kubefed.io/v1beta1");
        assert_eq!(fed["kind"], "FederatedDeployment");
        assert_eq!(fed["metadata"], json!({"name": "web", "namespace": "demo"}));
        assert_eq!(
            fed["spec"]["template"],
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {"replicas": 2}})
        );
        assert_eq!(
            fed["spec"]["placement"],
            json!({"clusters": [{"name": "member1"}]})
        );
    }

    #[test]
    fn without_clusters_it_is_placed_everywhere_as_kubefedctl_does() {
        let target = deployments();
        let obj = json!({"metadata": {"name": "web", "namespace": "demo"}, "spec": {}});
        let fed = federated_from(&target, &target.federated(), &obj, &[]);
        assert_eq!(fed["spec"]["placement"], json!({"clusterSelector": {}}));
    }

    #[test]
    fn members_keep_their_own_service_ips_account_tokens_and_namespace_finalizers() {
        let svc = TargetType::new("", "v1", "Service", "services", Scope::Namespaced);
        let obj = json!({"metadata": {"name": "web", "namespace": "demo"}, "spec": {"type": "NodePort", "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"],
            "ports": [{"port": 80, "nodePort": 30080}]}});
        let fed = federated_from(&svc, &svc.federated(), &obj, &[]);
        assert_eq!(
            fed["spec"]["template"]["spec"],
            json!({"type": "NodePort", "ports": [{"port": 80}]})
        );

        let sa = TargetType::new(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            Scope::Namespaced,
        );
        let obj = json!({"metadata": {"name": "bot", "namespace": "demo"}, "secrets": [{"name": "bot-token"}]});
        assert!(
            federated_from(&sa, &sa.federated(), &obj, &[])["spec"]["template"]
                .get("secrets")
                .is_none()
        );

        let ns = TargetType::new("", "v1", "Namespace", "namespaces", Scope::Cluster);
        let obj = json!({"metadata": {"name": "shop", "labels": {"team": "a"}}, "spec": {"finalizers": ["kubernetes"]}});
        let fed = federated_from(&ns, &ns.federated(), &obj, &[]);
        assert_eq!(fed["kind"], "FederatedNamespace");
        assert_eq!(
            fed["metadata"],
            json!({"name": "shop", "namespace": "shop"})
        );
        assert_eq!(
            fed["spec"]["template"],
            json!({"metadata": {"labels": {"team": "a"}}})
        );
    }

    #[test]
    fn contents_leave_out_owned_system_and_badly_named_objects() {
        let pods = TargetType::new("", "v1", "Pod", "pods", Scope::Namespaced);
        let owned = json!({"metadata": {"name": "web-1", "ownerReferences": [{"kind": "ReplicaSet", "name": "web", "controller": true}]}});
        assert_eq!(skip_object(&pods, &owned), Some(Skip::Quietly));
        let sa = TargetType::new(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            Scope::Namespaced,
        );
        assert_eq!(
            skip_object(&sa, &json!({"metadata": {"name": "default"}})),
            Some(Skip::Quietly)
        );
        assert_eq!(
            skip_object(&sa, &json!({"metadata": {"name": "bot"}})),
            None
        );
        let cm = TargetType::new("", "v1", "ConfigMap", "configmaps", Scope::Namespaced);
        assert_eq!(
            skip_object(&cm, &json!({"metadata": {"name": "kube-root-ca.crt"}})),
            Some(Skip::Quietly)
        );
        assert!(matches!(
            skip_object(&cm, &json!({"metadata": {"name": "Bad_Name"}})),
            Some(Skip::Warn(_))
        ));
    }

    #[test]
    fn contents_skip_federation_and_controller_types_and_what_the_user_names() {
        let t = |g: &str, k: &str, p: &str| ApiType {
            target: TargetType::new(g, "v1", k, p, Scope::Namespaced),
            singular: k.to_lowercase(),
            short_names: vec![],
            verbs: vec!["list".into()],
            preferred: true,
        };
        assert!(skip_type(&t("", "Event", "events"), &[]));
        assert!(skip_type(&t("cellfed.io", "Cell", "cells"), &[]));
        assert!(skip_type(
            &t(
                "types.kubefed.io",
                "FederatedDeployment",
                "federateddeployments"
            ),
            &[]
        ));
        assert!(!skip_type(&t("", "ConfigMap", "configmaps"), &[]));
        assert!(skip_type(
            &t("", "ConfigMap", "configmaps"),
            &["configmap".into()]
        ));
        assert!(skip_type(
            &t("apps", "Deployment", "deployments"),
            &["apps".into()]
        ));
    }

    #[test]
    fn file_objects_are_federated_without_asking_a_server() {
        let docs = parse_documents(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\nrules: []\n---\n\
             apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: web, namespace: shop}\n  spec: {replicas: 1}\n",
        )
        .unwrap();
        let fed = federate_documents(&docs, "demo", &[]).unwrap();
        assert_eq!(fed.len(), 3);
        assert_eq!(fed[0]["kind"], "FederatedConfigMap");
        assert_eq!(
            fed[0]["metadata"],
            json!({"name": "settings", "namespace": "demo"})
        );
        assert_eq!(fed[0]["spec"]["template"], json!({"data": {"a": "b"}}));
        assert_eq!(fed[1]["kind"], "FederatedClusterRole");
        assert!(fed[1]["metadata"].get("namespace").is_none());
        assert_eq!(
            fed[2]["metadata"],
            json!({"name": "web", "namespace": "shop"})
        );
        assert_eq!(fed[2]["spec"]["placement"], json!({"clusterSelector": {}}));
        let err = federate_documents(
            &[json!({"apiVersion": "v1", "kind": "ConfigMap"})],
            "demo",
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("no metadata.name"), "{err}");
    }

    #[test]
    fn references_read_as_kubectl_prints_them() {
        let t = deployments();
        assert_eq!(
            reference(&t.federated(), "web"),
            "federateddeployment.types.kubefed.io/web"
        );
        let cm = TargetType::new("", "v1", "ConfigMap", "configmaps", Scope::Namespaced);
        assert_eq!(reference(&cm, "x"), "configmap/x");
    }
}
