//! `meta.k8s.io/v1` Table output: the columns kubectl shows for built-in kinds and a CRD's
//! additionalPrinterColumns.
//!
//! [`kinds`] holds kubectl's columns for built-in kinds as data, [`cells`] the formatters of
//! the cells that need one, [`columns`] the printers of Pod and Event, [`jsonpath`] the JSONPath subset of
//! CRD printer columns, [`duration`] the ages kubectl prints.

pub mod cells;
pub mod columns;
pub mod duration;
mod hpa;
pub mod jsonpath;
pub mod kinds;

use serde_json::{Value, json};

use columns::{AGE_DOC, NAME_DOC};
use jsonpath::JsonPath;

use crate::registry::Resource;
use crate::registry::list::Listed;

/// A CRD additionalPrinterColumn.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrinterColumn {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean`, `date`.
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i32,
    /// JSONPath relative to the object, e.g. `.spec.replicas`.
    pub json_path: String,
}

/// Which columns to print.
#[derive(Debug, Clone, Copy)]
pub enum TableSpec<'a> {
    /// A built-in kind: kubectl's usual columns (Deployment READY/UP-TO-DATE/AVAILABLE/AGE, …).
    Builtin { group: &'a str, kind: &'a str },
    /// A custom resource: NAME and the CRD's printer columns; a CRD version without printer
    /// columns gets AGE (`.metadata.creationTimestamp`, type date), as kube serves it.
    Custom(&'a [PrinterColumn]),
}

/// The `includeObject` parameter of a Table request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

impl PrinterColumn {
    /// Reads one entry of a CRD version's `additionalPrinterColumns`.
    pub fn from_crd(v: &Value) -> Self {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Self {
            name: s("name"),
            type_: s("type"),
            format: s("format"),
            description: s("description"),
            priority: v
                .get("priority")
                .and_then(Value::as_i64)
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or(0),
            json_path: s("jsonPath"),
        }
    }

    /// The printer columns of a CRD version object (`spec.versions[i]`).
    pub fn for_crd_version(version: &Value) -> Vec<Self> {
        version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(Self::from_crd)
            .collect()
    }
}

fn age_column() -> PrinterColumn {
    PrinterColumn {
        name: "Age".into(),
        type_: "date".into(),
        format: String::new(),
        description: AGE_DOC.into(),
        priority: 0,
        json_path: ".metadata.creationTimestamp".into(),
    }
}

/// One cell of a CRD printer column, typed as kube's apiextensions table convertor does.
fn custom_cell(col: &PrinterColumn, path: Option<&JsonPath>, obj: &Value, now: &str) -> Value {
    let Some(v) = path.and_then(|p| p.find(obj).into_iter().next()) else {
        return Value::Null;
    };
    match col.type_.as_str() {
        "integer" => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map_or(Value::Null, |i| json!(i)),
        "number" => v.as_f64().map_or(Value::Null, |f| json!(f)),
        "boolean" => v.as_bool().map_or(Value::Null, |b| json!(b)),
        "date" => v
            .as_str()
            .filter(|t| duration::parse_rfc3339(t).is_some())
            .map_or(Value::Null, |t| json!(duration::age(Some(t), now))),
        _ => match v {
            Value::String(s) => json!(s),
            other => json!(other.to_string()),
        },
    }
}

/// Builds a `meta.k8s.io/v1` Table of `items`, with `list_meta` (resourceVersion, continue…)
/// as its metadata; `now` is the RFC 3339 time ages are computed from.
pub fn to_table(
    spec: &TableSpec<'_>,
    items: &[Value],
    list_meta: Value,
    include: IncludeObject,
    now: &str,
) -> Value {
    let name_col = json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DOC, "priority": 0});
    let (definitions, cells): (Vec<Value>, Vec<Vec<Value>>) = match spec {
        TableSpec::Builtin { group, kind } => {
            let printer = columns::printer(group, kind);
            let defs = printer
                .columns
                .iter()
                .map(columns::Column::to_json)
                .collect();
            let rows = items.iter().map(|item| printer.row(item, now)).collect();
            (defs, rows)
        }
        TableSpec::Custom(cols) => {
            let default = [age_column()];
            let cols: &[PrinterColumn] = if cols.is_empty() { &default } else { cols };
            let paths: Vec<Option<JsonPath>> = cols
                .iter()
                .map(|c| JsonPath::parse(&c.json_path).ok())
                .collect();
            let mut defs = vec![name_col];
            defs.extend(cols.iter().map(|c| {
                json!({"name": c.name, "type": c.type_, "format": c.format,
                       "description": c.description, "priority": c.priority})
            }));
            let rows = items
                .iter()
                .map(|item| {
                    let mut row =
                        vec![item.pointer("/metadata/name").cloned().unwrap_or(json!(""))];
                    row.extend(
                        cols.iter()
                            .zip(&paths)
                            .map(|(c, p)| custom_cell(c, p.as_ref(), item, now)),
                    );
                    row
                })
                .collect();
            (defs, rows)
        }
    };
    let rows: Vec<Value> = items
        .iter()
        .zip(cells)
        .map(|(item, cells)| {
            let object = match include {
                IncludeObject::None => Value::Null,
                IncludeObject::Metadata => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": item.get("metadata").cloned().unwrap_or(json!({})),
                }),
                IncludeObject::Object => item.clone(),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

/// The table columns for this resource.
pub fn table_spec(res: &Resource) -> TableSpec<'_> {
    match &res.crd {
        Some(c) => TableSpec::Custom(&c.printer_columns),
        None => TableSpec::Builtin {
            group: &res.group,
            kind: &res.kind,
        },
    }
}

/// A list as a Table (`as=Table`), columns as [`table_spec`] gives them.
pub fn table_object(res: &Resource, l: Listed, include: IncludeObject) -> Value {
    let mut meta = json!({"resourceVersion": l.revision.to_string()});
    if let Some(c) = l.continue_token {
        meta["continue"] = json!(c);
    }
    to_table(
        &table_spec(res),
        &l.items,
        meta,
        include,
        &crate::registry::meta::now(),
    )
}

#[cfg(test)]
mod tests;
