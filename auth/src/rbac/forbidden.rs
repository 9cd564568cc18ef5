//! kube-apiserver's 403: `<resource>[.<group>] ["<name>"] is forbidden: User "<user>" cannot
//! <verb> resource "<resource>[/<subresource>]" in API group "<group>" in the namespace "<ns>"`
//! (or `at the cluster scope`), `forbidden: User "<user>" cannot <verb> path "<path>"` for
//! non-resource requests, with `: <reason>` appended when the authorizer gave one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusDetails};

use super::Attributes;

/// The `User "…" cannot …` sentence (kube's `forbiddenMessage`, HTML-sanitised as kube does).
pub fn forbidden_message(attrs: &Attributes) -> String {
    let user = go_quote(&attrs.user.name);
    let msg = if !attrs.resource_request {
        format!(
            "User {user} cannot {} path {}",
            attrs.verb,
            go_quote(&attrs.path)
        )
    } else {
        let mut resource = attrs.resource.clone();
        if !attrs.subresource.is_empty() {
            resource = format!("{resource}/{}", attrs.subresource);
        }
        let scope = if attrs.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {}", go_quote(&attrs.namespace))
        };
        format!(
            "User {user} cannot {} resource {} in API group {} {scope}",
            attrs.verb,
            go_quote(&resource),
            go_quote(&attrs.api_group)
        )
    };
    msg.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The full Status kube answers a refused request with (kube's `NewForbidden` over the
/// requested group/resource and name).
pub fn forbidden_status(attrs: &Attributes, reason: &str) -> Status {
    let mut err = forbidden_message(attrs);
    if !reason.is_empty() {
        err = format!("{err}: {reason}");
    }
    let (group, resource) = if attrs.resource_request {
        (attrs.api_group.as_str(), attrs.resource.as_str())
    } else {
        ("", "")
    };
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let message = if group.is_empty() && resource.is_empty() {
        format!("forbidden: {err}")
    } else if attrs.name.is_empty() {
        format!("{qualified} is forbidden: {err}")
    } else {
        format!("{qualified} {} is forbidden: {err}", go_quote(&attrs.name))
    };
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Status {
        status: Some("Failure".into()),
        code: Some(403),
        reason: Some("Forbidden".into()),
        message: Some(message),
        details: Some(StatusDetails {
            group: some(group),
            kind: some(resource),
            name: some(&attrs.name),
            ..StatusDetails::default()
        }),
        ..Status::default()
    }
}

/// Go's `%q` of a string: double quotes, with `"` and `\` escaped and control characters
/// written as escapes.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}
