//! Conversion of whole federated objects between `types.kubefed.io/v1beta1` (clusters) and
//! `v1beta2` (topologies), as JSON, for any federated kind. Stateless and lossless: converting
//! there and back returns the identical object, unknown fields and metadata included.
//!
//! - placement `clusters` ⇄ `topologies`, mask `clusters` ⇄ `topologies`, override `clusterName` ⇄
//!   `topologyName`, status `clusters` ⇄ `topologies`;
//! - `topologyType: cluster` (or none): names are copied; `topologyType: cell`: topology `rz00a`
//!   of an object in namespace `ns` ⇄ cluster `rz00a.ns`;
//! - `spec.topologyType` of v1beta2 is kept in the annotation `cellfed.io/topology-type` of v1beta1.
//!
//! The annotation is reserved: on a v1beta2 object without `spec.topologyType` it is read as the
//! topology type, and converting to v1beta2 moves it into the spec (an annotation map left empty by
//! this is removed).

use serde_json::{Map, Value};

use super::v1beta2::TopologyType;
use crate::naming;
use crate::well_known::{TOPOLOGY_TYPE_ANNOTATION, TYPES_GROUP, TYPES_V1BETA1, TYPES_V1BETA2};

/// Errors of converting a federated object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object is not a JSON object with a string `apiVersion`.
    #[error("cannot convert: the object has no string apiVersion")]
    ReadApiVersion,
    /// The object or the desired version is not of group `types.kubefed.io`, or has an unknown version.
    #[error(
        "cannot convert {api_version:?}: only types.kubefed.io/v1beta1 and types.kubefed.io/v1beta2 are served"
    )]
    CheckApiVersion {
        /// The offending apiVersion.
        api_version: String,
    },
    /// The topology type is neither `cluster` nor `cell`.
    #[error("{field} is {value:?}; it must be \"cluster\" or \"cell\"")]
    ParseTopologyType {
        /// Where it was read (`spec.topologyType` or the annotation).
        field: String,
        /// The value found.
        value: String,
    },
    /// A cluster-scoped object asked for cell topology, which needs a namespace.
    #[error(
        "{kind} {name:?} is cluster-scoped and cannot use topologyType cell: cells belong to a namespace; use topologyType cluster"
    )]
    CheckCellScope {
        /// Kind of the object.
        kind: String,
        /// Name of the object.
        name: String,
    },
    /// A cluster named by a cell-topology object is not a cell of the object's namespace.
    #[error(
        "cluster {cluster:?} in {field} is not a cell of namespace {namespace:?} (expected <cell>.{namespace}), but the object has topology type cell (annotation {TOPOLOGY_TYPE_ANNOTATION})"
    )]
    MapClusterToCell {
        /// The cluster name.
        cluster: String,
        /// JSON path of the field naming it.
        field: String,
        /// Namespace of the object.
        namespace: String,
    },
    /// A topology name of a cell-topology object does not make a valid cluster name.
    #[error("topology {topology:?} in {field} is not a valid cell name: {source}")]
    MapCellToCluster {
        /// The topology name.
        topology: String,
        /// JSON path of the field naming it.
        field: String,
        /// Why.
        source: naming::Error,
    },
    /// A field does not have the shape of the API (e.g. a list that is not an array).
    #[error("{field} must be {expected}")]
    ReadField {
        /// JSON path of the field.
        field: String,
        /// What it must be.
        expected: &'static str,
    },
    /// Both the source and the target field of a rename are present.
    #[error("{field} and {other} cannot both be set")]
    CheckConflict {
        /// The field being renamed.
        field: String,
        /// The field it would be renamed to.
        other: String,
    },
}

/// Result of a conversion.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Converts `obj` to `desired_api_version` (`types.kubefed.io/v1beta1` or `/v1beta2`). An object
/// already at that version is returned unchanged.
pub fn convert(obj: &Value, desired_api_version: &str) -> Result<Value> {
    let desired = version_of(desired_api_version)?;
    let current = version_of(api_version(obj)?)?;
    if current == desired {
        return Ok(obj.clone());
    }
    if desired == TYPES_V1BETA1 {
        to_v1beta1(obj)
    } else {
        to_v1beta2(obj)
    }
}

/// Converts a v1beta1 object to v1beta2 (a v1beta2 object is returned unchanged).
pub fn to_v1beta2(obj: &Value) -> Result<Value> {
    if version_of(api_version(obj)?)? == TYPES_V1BETA2 {
        return Ok(obj.clone());
    }
    let mut out = obj.clone();
    let root = as_object(&mut out, "object")?;
    let annotation = take_topology_annotation(root)?;
    let topology = annotation.unwrap_or_default();
    let namespace = namespace_for(root, topology)?;
    let map_name = |cluster: &str, field: &str| -> Result<String> {
        match (topology, &namespace) {
            (TopologyType::Cell, Some(ns)) => naming::cell_of_cluster(cluster, ns)
                .map(str::to_owned)
                .map_err(|_| Error::MapClusterToCell {
                    cluster: cluster.into(),
                    field: field.into(),
                    namespace: ns.clone(),
                }),
            _ => Ok(cluster.to_owned()),
        }
    };
    if let Some(spec) = root.get_mut("spec") {
        let spec = as_object(spec, "spec")?;
        rename_lists(spec, "spec", Names::CLUSTERS, Names::TOPOLOGIES, &map_name)?;
        if let Some(tt) = annotation {
            spec.insert("topologyType".into(), Value::from(tt.as_str()));
        }
    } else if let Some(tt) = annotation {
        let mut spec = Map::new();
        spec.insert("topologyType".into(), Value::from(tt.as_str()));
        root.insert("spec".into(), Value::Object(spec));
    }
    rename_status(root, Names::CLUSTERS, Names::TOPOLOGIES, &map_name)?;
    root.insert(
        "apiVersion".into(),
        format!("{TYPES_GROUP}/{TYPES_V1BETA2}").into(),
    );
    Ok(out)
}

/// Converts a v1beta2 object to v1beta1 (a v1beta1 object is returned unchanged).
pub fn to_v1beta1(obj: &Value) -> Result<Value> {
    if version_of(api_version(obj)?)? == TYPES_V1BETA1 {
        return Ok(obj.clone());
    }
    let mut out = obj.clone();
    let root = as_object(&mut out, "object")?;
    let field = match root.get_mut("spec") {
        Some(spec) => as_object(spec, "spec")?.remove("topologyType"),
        None => None,
    };
    let topology = match &field {
        Some(v) => Some(parse_topology(v, "spec.topologyType")?),
        None => read_topology_annotation(root)?,
    };
    if let Some(tt) = field.as_ref().and(topology) {
        let meta = root
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        let annotations = as_object(meta, "metadata")?
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        as_object(annotations, "metadata.annotations")?
            .insert(TOPOLOGY_TYPE_ANNOTATION.into(), tt.as_str().into());
    }
    let topology = topology.unwrap_or_default();
    let namespace = namespace_for(root, topology)?;
    let map_name = |name: &str, field: &str| -> Result<String> {
        match (topology, &namespace) {
            (TopologyType::Cell, Some(ns)) => {
                naming::cell_cluster_name(name, ns).map_err(|source| Error::MapCellToCluster {
                    topology: name.into(),
                    field: field.into(),
                    source,
                })
            }
            _ => Ok(name.to_owned()),
        }
    };
    if let Some(spec) = root.get_mut("spec") {
        let spec = as_object(spec, "spec")?;
        rename_lists(spec, "spec", Names::TOPOLOGIES, Names::CLUSTERS, &map_name)?;
    }
    rename_status(root, Names::TOPOLOGIES, Names::CLUSTERS, &map_name)?;
    root.insert(
        "apiVersion".into(),
        format!("{TYPES_GROUP}/{TYPES_V1BETA1}").into(),
    );
    Ok(out)
}

/// The field names of one view.
struct Names {
    /// List of names in placement, mask and status.
    list: &'static str,
    /// Name key of an override entry.
    override_key: &'static str,
}

impl Names {
    const CLUSTERS: Names = Names {
        list: "clusters",
        override_key: "clusterName",
    };
    const TOPOLOGIES: Names = Names {
        list: "topologies",
        override_key: "topologyName",
    };
}

fn api_version(obj: &Value) -> Result<&str> {
    obj.get("apiVersion")
        .and_then(Value::as_str)
        .ok_or(Error::ReadApiVersion)
}

/// The version of a `types.kubefed.io` apiVersion we serve.
fn version_of(api_version: &str) -> Result<&'static str> {
    match api_version.split_once('/') {
        Some((TYPES_GROUP, TYPES_V1BETA1)) => Ok(TYPES_V1BETA1),
        Some((TYPES_GROUP, TYPES_V1BETA2)) => Ok(TYPES_V1BETA2),
        _ => Err(Error::CheckApiVersion {
            api_version: api_version.into(),
        }),
    }
}

fn as_object<'a>(v: &'a mut Value, field: &str) -> Result<&'a mut Map<String, Value>> {
    v.as_object_mut().ok_or_else(|| Error::ReadField {
        field: field.into(),
        expected: "an object",
    })
}

fn parse_topology(v: &Value, field: &str) -> Result<TopologyType> {
    let s = v.as_str().unwrap_or_default();
    TopologyType::parse(s).ok_or_else(|| Error::ParseTopologyType {
        field: field.into(),
        value: match v.as_str() {
            Some(s) => s.into(),
            None => v.to_string(),
        },
    })
}

fn annotation_field() -> String {
    format!("metadata.annotations[{TOPOLOGY_TYPE_ANNOTATION}]")
}

fn read_topology_annotation(root: &Map<String, Value>) -> Result<Option<TopologyType>> {
    root.get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(TOPOLOGY_TYPE_ANNOTATION))
        .map(|v| parse_topology(v, &annotation_field()))
        .transpose()
}

/// Removes the topology annotation (and an annotation map it leaves empty), returning its value.
fn take_topology_annotation(root: &mut Map<String, Value>) -> Result<Option<TopologyType>> {
    let topology = read_topology_annotation(root)?;
    if topology.is_some()
        && let Some(meta) = root.get_mut("metadata").and_then(Value::as_object_mut)
        && let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut)
    {
        annotations.remove(TOPOLOGY_TYPE_ANNOTATION);
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }
    Ok(topology)
}

/// The object's namespace; an error when cell topology is asked of a cluster-scoped object.
fn namespace_for(root: &Map<String, Value>, topology: TopologyType) -> Result<Option<String>> {
    let meta = root.get("metadata");
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty())
        .map(str::to_owned);
    if topology == TopologyType::Cell && namespace.is_none() {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        return Err(Error::CheckCellScope {
            kind: text(root.get("kind")),
            name: text(meta.and_then(|m| m.get("name"))),
        });
    }
    Ok(namespace)
}

type MapName<'a> = dyn Fn(&str, &str) -> Result<String> + 'a;

/// Renames placement, mask and override lists of a spec from one view to the other.
fn rename_lists(
    spec: &mut Map<String, Value>,
    path: &str,
    from: Names,
    to: Names,
    map_name: &MapName<'_>,
) -> Result<()> {
    for section in ["placement", "placementMask"] {
        if let Some(v) = spec.get_mut(section) {
            let field = format!("{path}.{section}");
            let obj = as_object(v, &field)?;
            rename_list(obj, &field, from.list, to.list, "name", "name", map_name)?;
        }
    }
    if let Some(overrides) = spec.get_mut("overrides") {
        let field = format!("{path}.overrides");
        map_entries(
            overrides,
            &field,
            from.override_key,
            to.override_key,
            map_name,
        )?;
    }
    Ok(())
}

/// Renames the status list of members from one view to the other.
fn rename_status(
    root: &mut Map<String, Value>,
    from: Names,
    to: Names,
    map_name: &MapName<'_>,
) -> Result<()> {
    match root.get_mut("status") {
        Some(status @ Value::Object(_)) => {
            let obj = as_object(status, "status")?;
            rename_list(obj, "status", from.list, to.list, "name", "name", map_name)
        }
        _ => Ok(()),
    }
}

/// Moves `obj[from]` to `obj[to]`, mapping the `key_from` name of each entry to `key_to`.
fn rename_list(
    obj: &mut Map<String, Value>,
    path: &str,
    from: &str,
    to: &str,
    key_from: &str,
    key_to: &str,
    map_name: &MapName<'_>,
) -> Result<()> {
    let Some(mut list) = obj.remove(from) else {
        return Ok(());
    };
    if obj.contains_key(to) {
        return Err(Error::CheckConflict {
            field: format!("{path}.{from}"),
            other: format!("{path}.{to}"),
        });
    }
    map_entries(
        &mut list,
        &format!("{path}.{from}"),
        key_from,
        key_to,
        map_name,
    )?;
    obj.insert(to.into(), list);
    Ok(())
}

/// In each entry of the array `list`, moves the name at `key_from` to `key_to`, mapped.
fn map_entries(
    list: &mut Value,
    path: &str,
    key_from: &str,
    key_to: &str,
    map_name: &MapName<'_>,
) -> Result<()> {
    let entries = match list {
        Value::Null => return Ok(()),
        Value::Array(entries) => entries,
        _ => {
            return Err(Error::ReadField {
                field: path.into(),
                expected: "a list",
            });
        }
    };
    for (i, entry) in entries.iter_mut().enumerate() {
        let field = format!("{path}[{i}]");
        let entry = as_object(entry, &field)?;
        let Some(name) = entry.remove(key_from) else {
            continue;
        };
        if key_from != key_to && entry.contains_key(key_to) {
            return Err(Error::CheckConflict {
                field: format!("{field}.{key_from}"),
                other: format!("{field}.{key_to}"),
            });
        }
        let field = format!("{field}.{key_from}");
        let name = name.as_str().ok_or_else(|| Error::ReadField {
            field: field.clone(),
            expected: "a string",
        })?;
        entry.insert(key_to.into(), map_name(name, &field)?.into());
    }
    Ok(())
}
