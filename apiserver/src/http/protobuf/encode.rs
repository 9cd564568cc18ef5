//! JSON → protobuf, driven by the descriptor table. Fields are written in tag order, each
//! present JSON field once; JSON fields the message does not have are left out, as Go's decoder
//! would drop them.

use serde_json::Value;

use super::descriptor::{Label, Message, Scalar, Table, Ty};
use super::special;
use super::wire::Writer;

/// Writes the payload of message `idx` for `v`.
pub fn message(t: &Table, idx: usize, v: &Value, w: &mut Writer) -> Result<(), String> {
    let m = &t.messages[idx];
    match m.special {
        Some(s) => special::encode(t, s, m, v, w),
        None => fields(t, m, v, w),
    }
}

/// Writes `v` as a length-delimited message field `tag` of message type `idx`.
pub fn nested(t: &Table, idx: usize, tag: u32, v: &Value, w: &mut Writer) -> Result<(), String> {
    let mut inner = Writer::default();
    message(t, idx, v, &mut inner)?;
    w.bytes(tag, &inner.buf);
    Ok(())
}

/// Writes the fields of a (non-special) message from the JSON object `v`.
pub fn fields(t: &Table, m: &Message, v: &Value, w: &mut Writer) -> Result<(), String> {
    let obj = match v {
        Value::Object(o) => o,
        Value::Null => return Ok(()),
        other => return Err(format!("{other} is not an object")),
    };
    for f in &m.fields {
        if f.label == Label::Inline {
            // the embedded struct's fields are this object's
            value(t, f.ty, f.tag, v, w).map_err(|e| format!("{}: {e}", f.json))?;
            continue;
        }
        let Some(val) = obj.get(&f.json).filter(|v| !v.is_null()) else {
            continue;
        };
        let r = match f.label {
            Label::Optional | Label::Required | Label::Inline => value(t, f.ty, f.tag, val, w),
            Label::Repeated => match val {
                Value::Array(items) => items
                    .iter()
                    .try_for_each(|item| value(t, f.ty, f.tag, item, w)),
                other => Err(format!("{other} is not a list")),
            },
            Label::Map => match val {
                Value::Object(entries) => entries.iter().try_for_each(|(k, item)| {
                    let mut entry = Writer::default();
                    entry.bytes(1, k.as_bytes());
                    value(t, f.ty, 2, item, &mut entry)?;
                    w.bytes(f.tag, &entry.buf);
                    Ok(())
                }),
                other => Err(format!("{other} is not a map")),
            },
        };
        r.map_err(|e| format!("{}: {e}", f.json))?;
    }
    Ok(())
}

/// Writes one value of type `ty` as field `tag`.
fn value(t: &Table, ty: Ty, tag: u32, v: &Value, w: &mut Writer) -> Result<(), String> {
    let wrong = |what: &str| format!("{v} is not {what}");
    match ty {
        Ty::Message(i) => nested(t, i, tag, v, w)?,
        Ty::Scalar(Scalar::String) => {
            w.bytes(tag, v.as_str().ok_or_else(|| wrong("a string"))?.as_bytes())
        }
        Ty::Scalar(Scalar::Bytes) => {
            w.bytes(
                tag,
                &special::unbase64(v.as_str().ok_or_else(|| wrong("base64"))?)?,
            );
        }
        Ty::Scalar(Scalar::Bool) => w.varint(
            tag,
            u64::from(v.as_bool().ok_or_else(|| wrong("a boolean"))?),
        ),
        Ty::Scalar(Scalar::Int32) => {
            let i = integer(v)
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(|| wrong("an int32"))?;
            w.varint(tag, i64::from(i) as u64);
        }
        Ty::Scalar(Scalar::Int64) => {
            w.varint(tag, integer(v).ok_or_else(|| wrong("an int64"))? as u64);
        }
        Ty::Scalar(Scalar::Double) => {
            w.fixed64(tag, v.as_f64().ok_or_else(|| wrong("a number"))?.to_bits());
        }
    }
    Ok(())
}

/// An integer, also from a float without fraction (`3.0`).
fn integer(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
            .map(|f| f as i64)
    })
}
