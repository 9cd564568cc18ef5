//! The JSONPath subset CRD additionalPrinterColumns use: `.spec.x`, `.a[0]`, `.a[*].b`,
//! `.metadata.labels.app\.kubernetes\.io/name`, `['key']`, and filters
//! `.status.conditions[?(@.type=="Ready")].status` (`==`, `!=`, or a bare existence test).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    Filter {
        path: Vec<Step>,
        op: Option<(bool, Value)>,
    },
}

/// Why a path did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonPathError {
    /// The expression is outside the supported subset or malformed.
    #[error("unsupported JSONPath expression {0:?}")]
    ParsePath(String),
}

/// A parsed JSONPath expression.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath(Vec<Step>);

impl JsonPath {
    /// Parses `.a.b[0]`, also in kubectl's `{.a.b}` form.
    pub fn parse(expr: &str) -> Result<Self, JsonPathError> {
        let e = expr.trim();
        let e = e
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or(e);
        let e = e.strip_prefix('$').unwrap_or(e);
        let mut p = Parser {
            s: e.as_bytes(),
            i: 0,
            expr,
        };
        let steps = p.steps(false)?;
        if p.i != p.s.len() {
            return Err(JsonPathError::ParsePath(expr.to_string()));
        }
        Ok(Self(steps))
    }

    /// Every value the path selects, in document order.
    pub fn find<'a>(&self, v: &'a Value) -> Vec<&'a Value> {
        eval(&self.0, v)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    expr: &'a str,
}

impl Parser<'_> {
    fn err(&self) -> JsonPathError {
        JsonPathError::ParsePath(self.expr.to_string())
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn steps(&mut self, in_filter: bool) -> Result<Vec<Step>, JsonPathError> {
        let mut steps = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                b'.' => {
                    self.i += 1;
                    let name = self.name();
                    if name.is_empty() {
                        return Err(self.err());
                    }
                    steps.push(if name == "*" {
                        Step::All
                    } else {
                        Step::Field(name)
                    });
                }
                b'[' => {
                    self.i += 1;
                    steps.push(self.bracket()?);
                }
                _ if in_filter => break,
                _ => return Err(self.err()),
            }
        }
        Ok(steps)
    }

    fn name(&mut self) -> String {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                b'\\' if self.s.get(self.i + 1) == Some(&b'.') => {
                    out.push(b'.');
                    self.i += 2;
                }
                b'.' | b'[' | b' ' | b'=' | b'!' | b')' => break,
                _ => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn until(&mut self, end: u8) -> Result<String, JsonPathError> {
        let start = self.i;
        while self.peek().is_some_and(|c| c != end) {
            self.i += 1;
        }
        if self.peek() != Some(end) {
            return Err(self.err());
        }
        let out = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.i += 1;
        Ok(out)
    }

    fn bracket(&mut self) -> Result<Step, JsonPathError> {
        match self.peek() {
            Some(b'\'' | b'"') => {
                let q = self.s[self.i];
                self.i += 1;
                let key = self.until(q)?;
                self.expect(b']')?;
                Ok(Step::Field(key))
            }
            Some(b'*') => {
                self.i += 1;
                self.expect(b']')?;
                Ok(Step::All)
            }
            Some(b'?') => {
                self.i += 1;
                self.expect(b'(')?;
                self.expect(b'@')?;
                let path = self.steps(true)?;
                self.skip_ws();
                let op = match self.peek() {
                    Some(b'=' | b'!') => {
                        let eq = self.s[self.i] == b'=';
                        self.i += 1;
                        self.expect(b'=')?;
                        self.skip_ws();
                        Some((eq, self.literal()?))
                    }
                    _ => None,
                };
                self.skip_ws();
                self.expect(b')')?;
                self.expect(b']')?;
                Ok(Step::Filter { path, op })
            }
            _ => {
                let n = self.until(b']')?;
                n.trim().parse().map(Step::Index).map_err(|_| self.err())
            }
        }
    }

    fn literal(&mut self) -> Result<Value, JsonPathError> {
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                Ok(Value::String(self.until(q)?))
            }
            _ => {
                let start = self.i;
                while self.peek().is_some_and(|c| c != b')' && c != b' ') {
                    self.i += 1;
                }
                let raw = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                serde_json::from_str(&raw).map_err(|_| self.err())
            }
        }
    }

    fn skip_ws(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), JsonPathError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err())
        }
    }
}

fn eval<'a>(steps: &[Step], v: &'a Value) -> Vec<&'a Value> {
    let Some((step, rest)) = steps.split_first() else {
        return vec![v];
    };
    let next: Vec<&Value> = match (step, v) {
        (Step::Field(f), Value::Object(m)) => m.get(f).into_iter().collect(),
        (Step::Index(i), Value::Array(a)) => {
            let idx = if *i < 0 { a.len() as i64 + i } else { *i };
            usize::try_from(idx)
                .ok()
                .and_then(|i| a.get(i))
                .into_iter()
                .collect()
        }
        (Step::All, Value::Array(a)) => a.iter().collect(),
        (Step::All, Value::Object(m)) => m.values().collect(),
        (Step::Filter { path, op }, Value::Array(a)) => a
            .iter()
            .filter(|item| {
                let found = eval(path, item);
                match op {
                    None => !found.is_empty(),
                    Some((eq, lit)) => found.iter().any(|f| loose_eq(f, lit)) == *eq,
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    next.into_iter().flat_map(|n| eval(rest, n)).collect()
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn obj() -> Value {
        json!({
            "metadata": {"labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 3, "clusters": [{"name": "a"}, {"name": "b"}]},
            "status": {"conditions": [
                {"type": "Propagation", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "Waiting"}
            ]}
        })
    }

    fn first(expr: &str) -> Option<Value> {
        JsonPath::parse(expr)
            .unwrap()
            .find(&obj())
            .first()
            .map(|v| (*v).clone())
    }

    #[test]
    fn fields_indexes_and_wildcards() {
        assert_eq!(first(".spec.replicas"), Some(json!(3)));
        assert_eq!(first("{.spec.replicas}"), Some(json!(3)));
        assert_eq!(first(".spec.clusters[1].name"), Some(json!("b")));
        assert_eq!(first(".spec.clusters[-1].name"), Some(json!("b")));
        assert_eq!(first(".spec.clusters[*].name"), Some(json!("a")));
        assert_eq!(
            first(".metadata.labels.app\\.kubernetes\\.io/name"),
            Some(json!("web"))
        );
        assert_eq!(
            first(".metadata.labels['app.kubernetes.io/name']"),
            Some(json!("web"))
        );
        assert_eq!(first(".spec.missing"), None);
    }

    #[test]
    fn filters() {
        assert_eq!(
            first(".status.conditions[?(@.type==\"Ready\")].status"),
            Some(json!("False"))
        );
        assert_eq!(
            first(".status.conditions[?(@.type == 'Ready')].reason"),
            Some(json!("Waiting"))
        );
        assert_eq!(
            first(".status.conditions[?(@.type!=\"Ready\")].type"),
            Some(json!("Propagation"))
        );
        assert_eq!(
            first(".status.conditions[?(@.reason)].type"),
            Some(json!("Ready"))
        );
    }

    #[test]
    fn bad_expressions_fail_to_parse() {
        assert!(JsonPath::parse(".a[").is_err());
        assert!(JsonPath::parse("spec").is_err());
        assert!(JsonPath::parse(".a[?(@.x==)]").is_err());
    }
}
