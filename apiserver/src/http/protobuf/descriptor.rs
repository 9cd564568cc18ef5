//! The descriptor table: every message of every Kubernetes API package, its fields (tag, JSON
//! name, cardinality, type) and the apiVersion each package serves, read once from
//! `descriptors.txt` (generated from k8s-pb and k8s-openapi by `generate.rs`).

use std::collections::HashMap;
use std::sync::LazyLock;

/// A scalar field's protobuf type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    String,
    Bool,
    Int32,
    Int64,
    Double,
    Bytes,
}

/// A field's value type: a scalar or another message (index into [`Table::messages`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Scalar(Scalar),
    Message(usize),
}

/// How many values a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// Optional in JSON (`omitempty`): an empty string on the wire is no value.
    Optional,
    /// Required in JSON: a zero value on the wire is a value.
    Required,
    Repeated,
    /// `map<string, T>`, entries of key 1 and value 2.
    Map,
    /// A Go struct embedded inline (`Probe.handler`, `Volume.volumeSource`): its fields are the
    /// parent's in JSON.
    Inline,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub tag: u32,
    pub json: String,
    pub label: Label,
    pub ty: Ty,
}

/// Messages whose JSON form is not an object of their fields; handled once in `special.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// `meta.v1.Time`: RFC 3339 to the second.
    Time,
    /// `meta.v1.MicroTime`: RFC 3339 to the microsecond.
    MicroTime,
    /// `meta.v1.Duration`: Go's duration string (`1h0m0s`).
    Duration,
    /// `resource.Quantity`: its string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `runtime.RawExtension`, `meta.v1.FieldsV1`, apiextensions `JSON`: embedded JSON bytes.
    RawJson,
    /// `JSONSchemaPropsOrArray`: a schema or an array of schemas.
    SchemaOrArray,
    /// `JSONSchemaPropsOrBool`: a schema or a boolean.
    SchemaOrBool,
    /// `JSONSchemaPropsOrStringArray`: a schema or an array of strings.
    SchemaOrStringArray,
    /// A Go named slice (`ExtraValue`, `Verbs`): a message of one repeated `items` field,
    /// a JSON array.
    Array,
}

#[derive(Debug, Clone)]
pub struct Message {
    /// `api.apps.v1.Deployment` (k8s-pb's module path and name).
    pub name: String,
    pub special: Option<Special>,
    /// In tag order, the order Go writes them.
    pub fields: Vec<Field>,
    by_tag: HashMap<u32, usize>,
}

impl Message {
    pub fn field(&self, tag: u32) -> Option<&Field> {
        self.by_tag.get(&tag).map(|&i| &self.fields[i])
    }
}

pub struct Table {
    pub messages: Vec<Message>,
    /// (apiVersion, lower-case kind) → message.
    kinds: HashMap<(String, String), usize>,
    /// lower-case name of a `meta.v1` message → message: kinds every group version serves
    /// (`Status`, `DeleteOptions`, `WatchEvent`).
    meta: HashMap<String, usize>,
}

const META: &str = "apimachinery.pkg.apis.meta.v1";

impl Table {
    /// The message of objects of this apiVersion and kind.
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<usize> {
        let kind = kind.to_ascii_lowercase();
        self.kinds
            .get(&(api_version.to_string(), kind.clone()))
            .or_else(|| self.meta.get(&kind))
            .copied()
    }

    /// A message by full name (`apimachinery.pkg.apis.meta.v1.Status`).
    pub fn named(&self, name: &str) -> Option<usize> {
        self.messages.iter().position(|m| m.name == name)
    }

    /// Parses `descriptors.txt`.
    pub fn parse(text: &str) -> Result<Table, String> {
        struct Raw {
            name: String,
            fields: Vec<(u32, String, Label, String)>,
        }
        let mut raws: Vec<Raw> = Vec::new();
        let mut package = String::new();
        let mut kinds_raw: Vec<(String, String, usize)> = Vec::new();
        let mut api_version = String::new();
        for (n, line) in text.lines().enumerate() {
            let err = || format!("descriptors.txt line {}: {line:?}", n + 1);
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                [] | [""] => {}
                [first, ..] if first.starts_with('#') => {}
                ["package", module, av] => {
                    package = module.to_string();
                    api_version = av.to_string();
                }
                ["message", name] => {
                    if api_version != "-" {
                        kinds_raw.push((
                            api_version.clone(),
                            name.to_ascii_lowercase(),
                            raws.len(),
                        ));
                    }
                    raws.push(Raw {
                        name: format!("{package}.{name}"),
                        fields: Vec::new(),
                    });
                }
                [tag, json, label, ty] => {
                    let label = match *label {
                        "opt" => Label::Optional,
                        "req" => Label::Required,
                        "rep" => Label::Repeated,
                        "map" => Label::Map,
                        "inl" => Label::Inline,
                        _ => return Err(err()),
                    };
                    let tag = tag.parse().map_err(|_| err())?;
                    raws.last_mut().ok_or_else(err)?.fields.push((
                        tag,
                        json.to_string(),
                        label,
                        ty.to_string(),
                    ));
                }
                _ => return Err(err()),
            }
        }
        let index: HashMap<&str, usize> = raws
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.as_str(), i))
            .collect();
        let mut messages = Vec::with_capacity(raws.len());
        for raw in &raws {
            let mut fields = Vec::new();
            for (tag, json, label, ty) in &raw.fields {
                let ty = match ty.as_str() {
                    "string" => Ty::Scalar(Scalar::String),
                    "bool" => Ty::Scalar(Scalar::Bool),
                    "int32" => Ty::Scalar(Scalar::Int32),
                    "int64" => Ty::Scalar(Scalar::Int64),
                    "double" => Ty::Scalar(Scalar::Double),
                    "bytes" => Ty::Scalar(Scalar::Bytes),
                    name => Ty::Message(
                        *index
                            .get(name)
                            .ok_or_else(|| format!("{}: unknown message {name}", raw.name))?,
                    ),
                };
                fields.push(Field {
                    tag: *tag,
                    json: json.clone(),
                    label: *label,
                    ty,
                });
            }
            fields.sort_by_key(|f| f.tag);
            let by_tag = fields.iter().enumerate().map(|(i, f)| (f.tag, i)).collect();
            let mut m = Message {
                name: raw.name.clone(),
                special: None,
                fields,
                by_tag,
            };
            m.special = special(&m);
            messages.push(m);
        }
        let kinds = kinds_raw
            .into_iter()
            .map(|(av, kind, i)| ((av, kind), i))
            .collect();
        let meta = messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let short = m.name.strip_prefix(META)?.strip_prefix('.')?;
                Some((short.to_ascii_lowercase(), i))
            })
            .collect();
        Ok(Table {
            messages,
            kinds,
            meta,
        })
    }
}

/// Which of the few special encodings a message has, by its name (and, for named slices, its
/// shape).
fn special(m: &Message) -> Option<Special> {
    let (module, name) = m.name.rsplit_once('.')?;
    let s = match (module, name) {
        (META, "Time") => Special::Time,
        (META, "MicroTime") => Special::MicroTime,
        (META, "Duration") => Special::Duration,
        (META, "FieldsV1") => Special::RawJson,
        ("apimachinery.pkg.api.resource", "Quantity") => Special::Quantity,
        ("apimachinery.pkg.util.intstr", "IntOrString") => Special::IntOrString,
        ("apimachinery.pkg.runtime", "RawExtension") => Special::RawJson,
        (m, "Json") if m.starts_with("apiextensions_apiserver.") => Special::RawJson,
        (_, "JsonSchemaPropsOrArray") => Special::SchemaOrArray,
        (_, "JsonSchemaPropsOrBool") => Special::SchemaOrBool,
        (_, "JsonSchemaPropsOrStringArray") => Special::SchemaOrStringArray,
        _ => match m.fields.as_slice() {
            [f] if f.json == "items"
                && f.label == Label::Repeated
                && matches!(f.ty, Ty::Scalar(_))
                && !name.ends_with("List") =>
            {
                Special::Array
            }
            _ => return None,
        },
    };
    Some(s)
}

/// The table of the k8s-pb version this server is built with.
pub static TABLE: LazyLock<Table> = LazyLock::new(|| {
    Table::parse(include_str!("descriptors.txt")).unwrap_or_else(|e| {
        tracing::error!("protobuf descriptor table: {e}");
        Table {
            messages: Vec::new(),
            kinds: HashMap::new(),
            meta: HashMap::new(),
        }
    })
});
