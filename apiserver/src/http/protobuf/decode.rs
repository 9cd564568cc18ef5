//! Protobuf → JSON, driven by the descriptor table.
//!
//! Go's protobuf encoder writes every non-pointer field, zero or not, and the wire does not say
//! which fields were pointers. So an empty string in an optional string field is taken as
//! unset (what Go's `omitempty` does in JSON), while `0` and `false` are kept: for pointer fields
//! (`replicas`, `automountServiceAccountToken`, `allowPrivilegeEscalation`) they are values,
//! and for the others Go reads them back as unset anyway.

use serde_json::{Map, Number, Value};

use super::descriptor::{Field, Label, Message, Scalar, Table, Ty};
use super::special;
use super::wire::{Fields, Wire};

/// The JSON of message `idx` in `buf`; None for a special message that holds no value.
pub fn message(t: &Table, idx: usize, buf: &[u8]) -> Result<Option<Value>, String> {
    let m = &t.messages[idx];
    match m.special {
        Some(s) => special::decode(t, s, m, buf),
        None => fields(t, m, buf).map(Some),
    }
}

/// The JSON object of a (non-special) message's fields.
pub fn fields(t: &Table, m: &Message, buf: &[u8]) -> Result<Value, String> {
    let mut obj = Map::new();
    for item in Fields::new(buf) {
        let (tag, wire) = item?;
        let Some(f) = m.field(tag) else {
            continue; // a field this version does not know, as Go skips it
        };
        field(t, f, wire, &mut obj).map_err(|e| format!("{}: {e}", f.json))?;
    }
    Ok(Value::Object(obj))
}

fn field(t: &Table, f: &Field, wire: Wire<'_>, obj: &mut Map<String, Value>) -> Result<(), String> {
    match f.label {
        Label::Optional | Label::Required => match value(t, f.ty, wire)? {
            Some(Value::String(s)) if s.is_empty() && f.label == Label::Optional => {}
            Some(v) => drop(obj.insert(f.json.clone(), v)),
            None => {}
        },
        Label::Inline => {
            if let Some(Value::Object(inner)) = value(t, f.ty, wire)? {
                obj.extend(inner);
            }
        }
        Label::Repeated => {
            let list = obj
                .entry(f.json.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(list) = list else {
                return Err("not a list".into());
            };
            match (f.ty, wire) {
                // packed varints
                (
                    Ty::Scalar(s @ (Scalar::Int32 | Scalar::Int64 | Scalar::Bool)),
                    Wire::Bytes(b),
                ) => {
                    let mut r = PackedVarints(b);
                    while let Some(v) = r.next_varint()? {
                        list.extend(value(t, Ty::Scalar(s), Wire::Varint(v))?);
                    }
                }
                (ty, wire) => list.extend(value(t, ty, wire)?),
            }
        }
        Label::Map => {
            let Wire::Bytes(entry) = wire else {
                return Err("map entry is not length-delimited".into());
            };
            let mut key = String::new();
            let mut val = None;
            for item in Fields::new(entry) {
                match item? {
                    (1, Wire::Bytes(k)) => {
                        key = String::from_utf8(k.to_vec()).map_err(|_| "map key is not UTF-8")?;
                    }
                    (2, w) => val = value(t, f.ty, w)?,
                    _ => {}
                }
            }
            let val = val.unwrap_or_else(|| match f.ty {
                Ty::Scalar(Scalar::String | Scalar::Bytes) => Value::String(String::new()),
                _ => Value::Object(Map::new()),
            });
            let map = obj
                .entry(f.json.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(map) = map {
                map.insert(key, val);
            }
        }
    }
    Ok(())
}

/// One value of type `ty`.
fn value(t: &Table, ty: Ty, wire: Wire<'_>) -> Result<Option<Value>, String> {
    let v = match (ty, wire) {
        (Ty::Message(i), Wire::Bytes(b)) => return message(t, i, b),
        (Ty::Scalar(Scalar::String), Wire::Bytes(b)) => {
            Value::String(String::from_utf8(b.to_vec()).map_err(|_| "string is not UTF-8")?)
        }
        (Ty::Scalar(Scalar::Bytes), Wire::Bytes(b)) => Value::String(special::base64(b)),
        (Ty::Scalar(Scalar::Bool), Wire::Varint(v)) => Value::Bool(v != 0),
        (Ty::Scalar(Scalar::Int32), Wire::Varint(v)) => Value::from(v as i64 as i32),
        (Ty::Scalar(Scalar::Int64), Wire::Varint(v)) => Value::from(v as i64),
        (Ty::Scalar(Scalar::Double), Wire::Fixed64(v)) => Value::Number(
            Number::from_f64(f64::from_bits(v)).ok_or("a double that is not a number")?,
        ),
        (ty, wire) => return Err(format!("wire type {wire:?} does not carry {ty:?}")),
    };
    Ok(Some(v))
}

struct PackedVarints<'a>(&'a [u8]);

impl PackedVarints<'_> {
    fn next_varint(&mut self) -> Result<Option<u64>, String> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first().ok_or("truncated packed varint")?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(Some(value));
            }
        }
        Err("varint too long".into())
    }
}
