//! `components.schemas`: built-in kinds from k8s-openapi's schemars impls (OpenAPI 3 form, refs
//! as `#/components/schemas/io.k8s.api.apps.v1.Deployment`), CRD kinds from their
//! `openAPIV3Schema`, list kinds, and the extensions kubectl reads
//! (`x-kubernetes-group-version-kind`, `x-kubernetes-patch-merge-key`/`-strategy`,
//! `x-kubernetes-list-type`/`-list-map-keys`).

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use super::ResourceSchema;

/// Where schemas live in an OpenAPI 3 document.
pub const REF_PREFIX: &str = "#/components/schemas/";

/// What [`Schemas::add`] added.
pub struct Added {
    /// The kind's schema name.
    pub name: String,
    /// The list kind's schema name.
    pub list_name: String,
    /// A built-in kind (strategic merge patch accepted).
    pub builtin: bool,
}

/// Collects the schemas of one document.
pub struct Schemas {
    generator: SchemaGenerator,
    extra: Map<String, Value>,
    gvks: Vec<(String, (String, String, String))>,
}

impl Default for Schemas {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! builtin_kinds {
    ($($t:ty),* ; $($extra:ty),* $(,)?) => {
        /// The schema name of a built-in kind, adding its schema (and everything it refers to)
        /// to `generator`; None for kinds this server does not know.
        fn add_builtin(
            generator: &mut SchemaGenerator,
            group: &str,
            version: &str,
            kind: &str,
        ) -> Option<String> {
            $(
                if <$t as k8s_openapi::Resource>::GROUP == group
                    && <$t as k8s_openapi::Resource>::VERSION == version
                    && <$t as k8s_openapi::Resource>::KIND == kind
                {
                    generator.subschema_for::<$t>();
                    return Some(<$t as JsonSchema>::schema_name().into_owned());
                }
            )*
            $(
                if <$extra as k8s_openapi::Resource>::GROUP == group
                    && <$extra as k8s_openapi::Resource>::VERSION == version
                    && <$extra as k8s_openapi::Resource>::KIND == kind
                {
                    generator.subschema_for::<$extra>();
                    return Some(<$extra as JsonSchema>::schema_name().into_owned());
                }
            )*
            None
        }
    };
}
crate::registry::with_builtin_types!(builtin_kinds);

/// The definition name kube gives a kind: `io.k8s.api.apps.v1.Deployment` for built-ins,
/// the reversed group for others (`types.kubefed.io` → `io.kubefed.types.v1beta1.Kind`).
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let mut g = SchemaGenerator::new(SchemaSettings::openapi3());
    if let Some(name) = add_builtin(&mut g, group, version, kind) {
        return name;
    }
    let reversed: Vec<&str> = group.split('.').rev().collect();
    if group.is_empty() {
        format!("{version}.{kind}")
    } else {
        format!("{}.{version}.{kind}", reversed.join("."))
    }
}

fn gvk_ext(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "kind": kind, "version": version}])
}

fn reference(name: &str, description: Option<&str>) -> Value {
    let mut v = json!({"allOf": [{"$ref": format!("{REF_PREFIX}{name}")}]});
    if let Some(d) = description {
        v["description"] = json!(d);
    }
    v
}

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

impl Schemas {
    pub fn new() -> Self {
        let mut generator = SchemaGenerator::new(SchemaSettings::openapi3());
        generator.subschema_for::<meta::ObjectMeta>();
        generator.subschema_for::<meta::ListMeta>();
        generator.subschema_for::<meta::Status>();
        generator.subschema_for::<meta::DeleteOptions>();
        generator.subschema_for::<meta::Patch>();
        generator.subschema_for::<meta::WatchEvent<core::Pod>>();
        Self {
            generator,
            extra: Map::new(),
            gvks: vec![(
                "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions".into(),
                (String::new(), "v1".into(), "DeleteOptions".into()),
            )],
        }
    }

    /// Adds the schema of a resource's kind and of its list kind. Built-in kinds come from
    /// k8s-openapi (`resource.schema` is ignored for them).
    pub fn add(&mut self, r: &ResourceSchema) -> Added {
        let gvk = (r.group.clone(), r.version.clone(), r.kind.clone());
        let builtin = add_builtin(&mut self.generator, &r.group, &r.version, &r.kind);
        let is_builtin = builtin.is_some();
        let name = match builtin {
            Some(name) => name,
            None => {
                let name = definition_name(&r.group, &r.version, &r.kind);
                self.extra
                    .insert(name.clone(), crd_schema(r.schema.as_ref()));
                name
            }
        };
        self.gvks.push((name.clone(), gvk));
        let list_kind = if r.list_kind.is_empty() {
            format!("{}List", r.kind)
        } else {
            r.list_kind.clone()
        };
        {
            let list_name = match name.strip_suffix(r.kind.as_str()) {
                Some(prefix) => format!("{prefix}{list_kind}"),
                None => format!("{name}List"),
            };
            self.extra
                .insert(list_name.clone(), list_schema(&name, &r.kind));
            self.gvks.push((
                list_name.clone(),
                (r.group.clone(), r.version.clone(), list_kind),
            ));
            Added {
                name,
                list_name,
                builtin: is_builtin,
            }
        }
    }

    /// The name of a schema added before (for a built-in kind of another group, e.g. Scale).
    pub fn add_kind(&mut self, group: &str, version: &str, kind: &str) -> Option<String> {
        let name = add_builtin(&mut self.generator, group, version, kind)?;
        self.gvks
            .push((name.clone(), (group.into(), version.into(), kind.into())));
        Some(name)
    }

    /// Every schema, with GVK and patch extensions.
    pub fn finish(mut self) -> Map<String, Value> {
        let mut defs = self.generator.take_definitions(true);
        defs.extend(self.extra);
        for (name, (g, v, k)) in &self.gvks {
            if let Some(Value::Object(s)) = defs.get_mut(name) {
                let entry = s
                    .entry("x-kubernetes-group-version-kind")
                    .or_insert_with(|| json!([]));
                if let Value::Array(list) = entry {
                    let item = json!({"group": g, "kind": k, "version": v});
                    if !list.contains(&item) {
                        list.push(item);
                    }
                }
            }
        }
        for (schema, field, strategy, key) in PATCH_META {
            let Some(prop) = defs
                .get_mut(*schema)
                .and_then(|s| s.pointer_mut(&format!("/properties/{field}")))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            prop.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
            if let Some(k) = key {
                prop.insert("x-kubernetes-patch-merge-key".into(), json!(k));
                prop.insert("x-kubernetes-list-type".into(), json!("map"));
                prop.insert("x-kubernetes-list-map-keys".into(), json!([k]));
            } else if prop.get("type") == Some(&json!("array")) {
                prop.insert("x-kubernetes-list-type".into(), json!("set"));
            }
        }
        defs
    }
}

/// Strategic merge metadata of built-in schemas, the same lists `patch::strategy` merges by key.
pub const PATCH_META: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        "merge",
        None,
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        "merge",
        Some("uid"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        "merge,retainKeys",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "hostAliases",
        "merge",
        Some("ip"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        "merge",
        Some("topologyKey"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        "merge,retainKeys",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "schedulingGates",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        "merge",
        Some("containerPort"),
    ),
    ("io.k8s.api.core.v1.Container", "env", "merge", Some("name")),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        "merge",
        Some("devicePath"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        "merge",
        Some("devicePath"),
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        "merge",
        Some("port"),
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        "retainKeys",
        None,
    ),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
];

/// A CRD version's `openAPIV3Schema` as kube publishes it: metadata refers to ObjectMeta,
/// apiVersion and kind are described.
fn crd_schema(schema: Option<&Value>) -> Value {
    let mut s = schema
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    if !s.is_object() {
        s = json!({"type": "object"});
    }
    if s.get("type").is_none() {
        s["type"] = json!("object");
    }
    let props = s
        .as_object_mut()
        .map(|o| o.entry("properties").or_insert_with(|| json!({})));
    if let Some(Value::Object(props)) = props {
        props.insert(
            "apiVersion".into(),
            json!({"description": API_VERSION_DOC, "type": "string"}),
        );
        props.insert(
            "kind".into(),
            json!({"description": KIND_DOC, "type": "string"}),
        );
        props.insert(
            "metadata".into(),
            reference(
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                Some("Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
            ),
        );
    }
    s
}

fn list_schema(item: &str, kind: &str) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind}"),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
            "items": {
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", kind.to_lowercase()),
                "type": "array",
                "items": reference(item, None),
            },
            "kind": {"description": KIND_DOC, "type": "string"},
            "metadata": reference(
                "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
                Some("Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"),
            ),
        },
    })
}

/// `x-kubernetes-group-version-kind` of an operation (a single object, unlike schemas).
pub fn gvk_single(group: &str, version: &str, kind: &str) -> Value {
    gvk_ext(group, version, kind)[0].clone()
}
