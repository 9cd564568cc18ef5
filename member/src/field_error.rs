//! A field-level validation error shaped like kube's `field.Error`, so the apiserver can render
//! the `422 Invalid` Status a real cluster returns.

use serde_json::{Value, json};
use std::fmt;

/// kube's `field.ErrorType`, rendered as the Status cause `reason` (`FieldValueInvalid`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorReason {
    /// `FieldValueInvalid`: the value is malformed or not acceptable now.
    Invalid,
    /// `FieldValueForbidden`: the field may not be set in this context.
    Forbidden,
    /// `FieldValueNotSupported`: the value is not one of the supported ones.
    NotSupported,
}

impl FieldErrorReason {
    /// The Status cause `reason` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "FieldValueInvalid",
            Self::Forbidden => "FieldValueForbidden",
            Self::NotSupported => "FieldValueNotSupported",
        }
    }
}

/// One rejected field: `spec.clusterIPs: Invalid value: []string{"10.96.0.10"}: failed to …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, `spec.ports[0].nodePort`.
    pub field: String,
    /// The offending value as kube 1.32 prints it (Go syntax: `"x"`, `30080`,
    /// `[]string{"10.96.0.10"}`); empty for reasons that print no value.
    pub value: String,
    /// What is wrong, kube's wording (`provided port is already allocated`).
    pub detail: String,
    /// The kind of error.
    pub reason: FieldErrorReason,
}

impl FieldError {
    /// An `Invalid value` error.
    pub fn invalid(field: impl Into<String>, value: String, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            value,
            detail: detail.into(),
            reason: FieldErrorReason::Invalid,
        }
    }

    /// A `Forbidden` error.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            value: String::new(),
            detail: detail.into(),
            reason: FieldErrorReason::Forbidden,
        }
    }

    /// The cause message without the field, as in a Status cause:
    /// `Invalid value: 30080: provided port is already allocated`.
    pub fn message(&self) -> String {
        match self.reason {
            FieldErrorReason::Invalid => format!("Invalid value: {}: {}", self.value, self.detail),
            FieldErrorReason::Forbidden => format!("Forbidden: {}", self.detail),
            FieldErrorReason::NotSupported => {
                format!("Unsupported value: {}: {}", self.value, self.detail)
            }
        }
    }

    /// The Status cause: `{"reason": "FieldValueInvalid", "message": …, "field": …}`.
    pub fn to_cause(&self) -> Value {
        json!({"reason": self.reason.as_str(), "message": self.message(), "field": self.field})
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

/// The message of kube's Invalid Status for these errors:
/// `Service "web" is invalid: spec.clusterIPs: Invalid value: …` (several errors in brackets,
/// joined by `, `).
pub fn invalid_message(kind: &str, name: &str, errors: &[FieldError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let body = match parts.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    format!("{kind} \"{name}\" is invalid: {body}")
}

/// kube's `422 Invalid` Status body for these errors (`errors.NewInvalid`): `group` is empty for
/// core kinds; the message names the kind qualified by its group (`Deployment.apps "web" is …`).
pub fn invalid_status(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Value {
    let qualified = if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    };
    let mut details = json!({
        "name": name,
        "kind": kind,
        "causes": errors.iter().map(FieldError::to_cause).collect::<Vec<_>>(),
    });
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": invalid_message(&qualified, name, errors),
        "reason": "Invalid",
        "details": details,
        "code": 422,
    })
}

/// Go's `%#v` of a string slice: `[]string{"a", "b"}`, `[]string(nil)` when empty.
pub(crate) fn go_strings(values: &[String]) -> String {
    if values.is_empty() {
        return "[]string(nil)".to_owned();
    }
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_kube() {
        let e = FieldError::invalid(
            "spec.ports[0].nodePort",
            "30080".into(),
            "provided port is already allocated",
        );
        assert_eq!(
            e.to_string(),
            "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
        );
        assert_eq!(e.to_cause()["reason"], "FieldValueInvalid");
        assert_eq!(e.to_cause()["field"], "spec.ports[0].nodePort");
        assert_eq!(
            invalid_message("Service", "web", std::slice::from_ref(&e)),
            "Service \"web\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
        );
        let two = invalid_message("Service", "web", &[e.clone(), e]);
        assert!(two.starts_with("Service \"web\" is invalid: [spec.ports[0]"));
        assert_eq!(
            go_strings(&["10.96.0.10".into()]),
            r#"[]string{"10.96.0.10"}"#
        );
        assert_eq!(go_strings(&[]), "[]string(nil)");
    }
}
