//! Field errors as kube-apiserver reports them (`k8s.io/apimachinery/pkg/util/validation/field`):
//! a path such as `spec.leaderElect.leaseDuration`, a type, the offending value and a detail,
//! turned into a `422 Invalid` `Status` whose `details.causes` name every field.

use std::fmt;

use serde_json::{Value, json};

/// What is wrong with a field (kube's `field.ErrorType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    /// A required field is missing (`FieldValueRequired`).
    Required,
    /// The value is malformed or out of range (`FieldValueInvalid`).
    Invalid,
    /// The value is not one of the accepted ones (`FieldValueNotSupported`).
    NotSupported,
    /// The value appears twice where it must be unique (`FieldValueDuplicate`).
    Duplicate,
}

impl ErrorType {
    /// The `reason` of a `Status` cause.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Duplicate => "FieldValueDuplicate",
        }
    }
}

/// One field error.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// The kind of error.
    pub type_: ErrorType,
    /// The field's path, e.g. `spec.featureGates[1].name`.
    pub field: String,
    /// The value given (None for a missing field).
    pub value: Option<Value>,
    /// What is expected.
    pub detail: String,
}

/// Every error of one object, in field order of the checks.
pub type ErrorList = Vec<FieldError>;

/// `spec.x is required`.
pub fn required(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
    FieldError {
        type_: ErrorType::Required,
        field: field.into(),
        value: None,
        detail: detail.into(),
    }
}

/// `spec.x has an invalid value`.
pub fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> FieldError {
    FieldError {
        type_: ErrorType::Invalid,
        field: field.into(),
        value: Some(value),
        detail: detail.into(),
    }
}

/// `spec.x` is none of `supported`.
pub fn not_supported(field: impl Into<String>, value: Value, supported: &[&str]) -> FieldError {
    let list = supported
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    FieldError {
        type_: ErrorType::NotSupported,
        field: field.into(),
        value: Some(value),
        detail: format!("supported values: {list}"),
    }
}

/// `spec.x` repeats a value that must be unique.
pub fn duplicate(field: impl Into<String>, value: Value) -> FieldError {
    FieldError {
        type_: ErrorType::Duplicate,
        field: field.into(),
        value: Some(value),
        detail: String::new(),
    }
}

/// A value as kube prints it in messages: strings quoted, everything else as JSON.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

impl FieldError {
    /// The message without the field, as in a `Status` cause: `Invalid value: "0s": should be
    /// greater than 0`.
    pub fn body(&self) -> String {
        let head = match (self.type_, &self.value) {
            (ErrorType::Required, _) | (_, None) => "Required value".to_string(),
            (ErrorType::Invalid, Some(v)) => format!("Invalid value: {}", shown(v)),
            (ErrorType::NotSupported, Some(v)) => format!("Unsupported value: {}", shown(v)),
            (ErrorType::Duplicate, Some(v)) => format!("Duplicate value: {}", shown(v)),
        };
        if self.detail.is_empty() {
            head
        } else {
            format!("{head}: {}", self.detail)
        }
    }

    /// The `Status` cause naming this field.
    pub fn cause(&self) -> Value {
        json!({"reason": self.type_.reason(), "message": self.body(), "field": self.field})
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// What the refused object is, for the `Status` message and details.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// API group, e.g. `core.kubefed.io`.
    pub group: &'a str,
    /// Kind, e.g. `KubeFedConfig`.
    pub kind: &'a str,
    /// The object's name (may be empty when generated).
    pub name: &'a str,
}

/// kube's `NewInvalid`: `422 Invalid`, the message `Kind.group "name" is invalid: <errors>` (one
/// error as is, several in brackets) and one cause per error.
pub fn invalid_status(subject: Subject<'_>, errors: &[FieldError]) -> Value {
    let list = errors.iter().map(ToString::to_string).collect::<Vec<_>>();
    let aggregate = match list.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure",
        "message": format!("{}.{} {:?} is invalid: {aggregate}", subject.kind, subject.group, subject.name),
        "reason": "Invalid",
        "details": {
            "name": subject.name, "group": subject.group, "kind": subject.kind,
            "causes": errors.iter().map(FieldError::cause).collect::<Vec<_>>(),
        },
        "code": 422,
    })
}

/// Whether `s` is a DNS-1123 subdomain (lower-case alphanumerics, `-` and `.`, each label starting
/// and ending alphanumeric, at most 253 characters); the detail kube gives when not.
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if s.len() > 253 {
        return Err("must be no more than 253 characters".into());
    }
    if s.split('.').all(label_ok) {
        Ok(())
    } else {
        Err("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')".into())
    }
}

/// Whether `s` is a DNS-1035 label (lower-case alphanumerics and `-`, starting with a letter,
/// ending alphanumeric, at most 63 characters); the detail kube gives when not.
pub fn dns1035_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123')".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_like_kube_apiservers() {
        assert_eq!(
            invalid("spec.x", json!("0s"), "should be greater than 0").to_string(),
            "spec.x: Invalid value: \"0s\": should be greater than 0"
        );
        assert_eq!(required("spec.y", "").to_string(), "spec.y: Required value");
        assert_eq!(
            not_supported("spec.p", json!("On"), &["Enabled", "Disabled"]).to_string(),
            "spec.p: Unsupported value: \"On\": supported values: \"Enabled\", \"Disabled\""
        );
        assert_eq!(
            duplicate("spec.g[1].name", json!("A")).to_string(),
            "spec.g[1].name: Duplicate value: \"A\""
        );
    }

    #[test]
    fn the_status_is_422_invalid_with_one_cause_per_field() {
        let s = invalid_status(
            Subject {
                group: "core.kubefed.io",
                kind: "KubeFedConfig",
                name: "kubefed",
            },
            &[
                required("spec.a", ""),
                invalid("spec.b", json!(0), "should be greater than 0"),
            ],
        );
        assert_eq!(s["code"], 422);
        assert_eq!(s["reason"], "Invalid");
        assert_eq!(
            s["message"],
            "KubeFedConfig.core.kubefed.io \"kubefed\" is invalid: [spec.a: Required value, spec.b: Invalid value: 0: should be greater than 0]"
        );
        assert_eq!(s["details"]["causes"][1]["field"], "spec.b");
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueRequired");
    }

    #[test]
    fn dns_names() {
        assert!(dns1123_subdomain("apps.example.com").is_ok());
        assert!(dns1123_subdomain("Apps").is_err());
        assert!(dns1123_subdomain("a..b").is_err());
        assert!(dns1035_label("v1beta1").is_ok());
        assert!(dns1035_label("1v").is_err());
        assert!(dns1035_label("v1.2").is_err());
    }
}
