//! The messages whose JSON form is not an object of their fields, both ways, once for all
//! kinds: times, durations, quantities, int-or-string, embedded JSON, the JSON-schema unions,
//! and Go named slices.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::descriptor::{Message, Special, Table, Ty};
use super::wire::{Fields, Wire, Writer};
use super::{decode as to_json, encode as to_proto};

/// The JSON of a special message's payload; None when it holds no value (a zero Time).
pub fn decode(t: &Table, s: Special, m: &Message, buf: &[u8]) -> Result<Option<Value>, String> {
    let mut ints = [0i64; 4];
    let mut strings: [Option<&[u8]>; 4] = [None; 4];
    let mut messages: Vec<(u32, &[u8])> = Vec::new();
    for f in Fields::new(buf) {
        match f? {
            (tag @ 1..=3, Wire::Varint(v)) => ints[tag as usize] = v as i64,
            (tag @ 1..=3, Wire::Bytes(b)) => {
                strings[tag as usize] = Some(b);
                messages.push((tag, b));
            }
            _ => {}
        }
    }
    let text = |tag: usize| -> Result<String, String> {
        String::from_utf8(strings[tag].unwrap_or_default().to_vec())
            .map_err(|_| "string is not UTF-8".to_string())
    };
    let v = match s {
        Special::Time | Special::MicroTime => {
            if buf.is_empty() {
                return Ok(None);
            }
            let nanos = if s == Special::Time {
                0
            } else {
                ints[2] as i32
            };
            let ts = jiff::Timestamp::new(ints[1], nanos / 1000 * 1000)
                .map_err(|e| format!("timestamp out of range: {e}"))?;
            let format = if s == Special::Time {
                "%Y-%m-%dT%H:%M:%SZ"
            } else {
                "%Y-%m-%dT%H:%M:%S%.6fZ"
            };
            Value::String(ts.strftime(format).to_string())
        }
        Special::Duration => Value::String(go_duration(ints[1])),
        Special::Quantity => Value::String(text(1)?),
        Special::IntOrString if ints[1] == 1 => Value::String(text(3)?),
        Special::IntOrString => Value::from(ints[2] as i32),
        Special::RawJson => match strings[1] {
            None | Some([]) => return Ok(None),
            Some(raw) if raw.starts_with(super::MAGIC) => {
                super::decode_envelope(raw).map_err(|e| e.message)?
            }
            Some(raw) => serde_json::from_slice(raw)
                .map_err(|e| format!("embedded object is not JSON: {e}"))?,
        },
        Special::SchemaOrArray | Special::SchemaOrBool | Special::SchemaOrStringArray => {
            let schema_tag = if s == Special::SchemaOrBool { 2 } else { 1 };
            let schema = field_type(m, schema_tag)?;
            let mut array = Vec::new();
            let mut one = None;
            for (tag, b) in messages {
                match (s, tag) {
                    (_, t2) if t2 == schema_tag => one = to_json::message(t, schema, b)?,
                    (Special::SchemaOrArray, 2) => {
                        array.extend(to_json::message(t, schema, b)?);
                    }
                    (Special::SchemaOrStringArray, 2) => {
                        array.push(Value::String(
                            String::from_utf8(b.to_vec()).map_err(|_| "string is not UTF-8")?,
                        ));
                    }
                    _ => {}
                }
            }
            match (s, one) {
                (_, Some(schema)) => schema,
                (Special::SchemaOrBool, None) => Value::Bool(ints[1] != 0),
                _ => Value::Array(array),
            }
        }
        Special::Array => match to_json::fields(t, m, buf)?["items"].take() {
            Value::Null => Value::Array(Vec::new()),
            items => items,
        },
    };
    Ok(Some(v))
}

/// Writes the payload of a special message for `v`.
pub fn encode(t: &Table, s: Special, m: &Message, v: &Value, w: &mut Writer) -> Result<(), String> {
    let wrong = || format!("{v} is not a valid {}", m.name);
    match s {
        Special::Time | Special::MicroTime => {
            let ts: jiff::Timestamp = v.as_str().ok_or_else(wrong)?.parse().map_err(|_| wrong())?;
            w.varint(1, ts.as_second() as u64);
            if s == Special::MicroTime && ts.subsec_nanosecond() != 0 {
                w.varint(2, ts.subsec_nanosecond() as i64 as u64);
            }
        }
        Special::Duration => {
            let nanos = parse_go_duration(v.as_str().ok_or_else(wrong)?).ok_or_else(wrong)?;
            w.varint(1, nanos as u64);
        }
        Special::Quantity => match v {
            Value::String(q) => w.bytes(1, q.as_bytes()),
            Value::Number(n) => w.bytes(1, n.to_string().as_bytes()),
            _ => return Err(wrong()),
        },
        Special::IntOrString => match v {
            Value::String(q) => {
                w.varint(1, 1);
                w.varint(2, 0);
                w.bytes(3, q.as_bytes());
            }
            Value::Number(n) => {
                let i = n
                    .as_i64()
                    .and_then(|i| i32::try_from(i).ok())
                    .ok_or_else(wrong)?;
                w.varint(1, 0);
                w.varint(2, i64::from(i) as u64);
                w.bytes(3, b"");
            }
            _ => return Err(wrong()),
        },
        Special::RawJson => {
            let raw = serde_json::to_vec(v).map_err(|e| e.to_string())?;
            w.bytes(1, &raw);
        }
        Special::SchemaOrArray | Special::SchemaOrBool | Special::SchemaOrStringArray => {
            let schema_tag = if s == Special::SchemaOrBool { 2 } else { 1 };
            let schema = field_type(m, schema_tag)?;
            match (s, v) {
                (Special::SchemaOrBool, Value::Bool(b)) => w.varint(1, u64::from(*b)),
                (_, Value::Object(_)) => {
                    if s == Special::SchemaOrBool {
                        w.varint(1, 1);
                    }
                    to_proto::nested(t, schema, schema_tag, v, w)?;
                }
                (Special::SchemaOrArray, Value::Array(items)) => {
                    for item in items {
                        to_proto::nested(t, schema, 2, item, w)?;
                    }
                }
                (Special::SchemaOrStringArray, Value::Array(items)) => {
                    for item in items {
                        w.bytes(2, item.as_str().ok_or_else(wrong)?.as_bytes());
                    }
                }
                _ => return Err(wrong()),
            }
        }
        Special::Array => {
            let mut obj = Map::new();
            obj.insert("items".into(), v.clone());
            to_proto::fields(t, m, &Value::Object(obj), w)?;
        }
    }
    Ok(())
}

fn field_type(m: &Message, tag: u32) -> Result<usize, String> {
    match m.field(tag).map(|f| f.ty) {
        Some(Ty::Message(i)) => Ok(i),
        _ => Err(format!("{} has no message field {tag}", m.name)),
    }
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub fn go_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let u = d.unsigned_abs();
    let frac = |v: u64, prec: u32| -> (String, u64) {
        let p = 10u64.pow(prec);
        let f = v % p;
        if f == 0 {
            return (String::new(), v / p);
        }
        let digits = format!("{f:0width$}", width = prec as usize);
        (format!(".{}", digits.trim_end_matches('0')), v / p)
    };
    let out = if u < 1_000_000_000 {
        let (unit, prec) = match u {
            0..1_000 => ("ns", 0),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        let (f, int) = frac(u, prec);
        format!("{int}{f}{unit}")
    } else {
        let (f, secs) = frac(u, 9);
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        match (h, m) {
            (0, 0) => format!("{s}{f}s"),
            (0, _) => format!("{m}m{s}{f}s"),
            _ => format!("{h}h{m}m{s}{f}s"),
        }
    };
    if d < 0 { format!("-{out}") } else { out }
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * scale;
    }
    let total = total.round() as i64;
    Some(if neg { -total } else { total })
}

/// Base64 as JSON carries `[]byte`.
pub fn base64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub fn unbase64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("invalid base64: {e}"))
}
