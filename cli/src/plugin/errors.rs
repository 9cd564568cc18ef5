//! What a `kubectl cellfed` user sees when something fails: one line, in kubectl's words.
//!
//! A Kubernetes `Status` from a server prints as kubectl prints it
//! (`Error from server (NotFound): deployments.apps "hello" not found`), a failed connection as
//! `Unable to connect to the server: …`, a usage mistake or our own check as `error: …`. Never a
//! Rust debug dump, never more than one line.

use std::fmt;

/// Where the failing request went, or what to do about it: appended to a server or connection
/// error after `; ` (the rest of the context chain is dropped there, as kubectl shows only the
/// server's message).
#[derive(Debug)]
pub struct Hint(pub String);

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A kube error with `hint` appended to its message (for Status errors) or attached (otherwise).
pub fn hinted(err: kube::Error, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(err).context(Hint(hint.into()))
}

/// The single line `err` prints as.
pub fn render(err: &anyhow::Error) -> String {
    let hint = err.downcast_ref::<Hint>().map(|h| h.0.clone());
    let with_hint = |line: String| match &hint {
        Some(h) => format!("{line}; {h}"),
        None => line,
    };
    for cause in err.chain() {
        if let Some(kube_err) = cause.downcast_ref::<kube::Error>() {
            return one_line(&with_hint(render_kube(kube_err)));
        }
    }
    let parts: Vec<String> = err
        .chain()
        .map(ToString::to_string)
        .filter(|c| hint.as_ref() != Some(c))
        .collect();
    let mut text = parts.join(": ");
    if let Some(h) = hint {
        text = format!("{text}; {h}");
    }
    one_line(&format!("error: {text}"))
}

/// kubectl's rendering of a client error (`StandardErrorMessage`).
fn render_kube(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => server_line(&status.reason, &status.message, status.code),
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            format!("Unable to connect to the server: {}", innermost(err))
        }
        other => format!("error: {}", source_chain(other)),
    }
}

/// `Error from server (Reason): message`, as kubectl prints a Status.
pub fn server_line(reason: &str, message: &str, code: u16) -> String {
    let message = if message.is_empty() {
        format!("the server responded with status {code}")
    } else {
        message.to_string()
    };
    match reason {
        "Unauthorized" => format!("error: You must be logged in to the server ({message})"),
        "" => format!("Error from server: {message}"),
        reason => format!("Error from server ({reason}): {message}"),
    }
}

/// The deepest cause of `err` (the OS or TLS error behind a failed connection).
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        last = e.to_string();
        cur = e.source();
    }
    last
}

/// `err` and its sources joined with `: `, skipping a source already quoted by its parent.
fn source_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out = format!("{out}: {s}");
        }
        cur = e.source();
    }
    out
}

/// Collapses line breaks and runs of spaces, so every message is one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A usage error from clap as one line: `error: <what>; see 'kubectl cellfed <cmd> --help'`.
pub fn usage_line(rendered: &str) -> String {
    let mut parts = Vec::new();
    let mut command = String::from("kubectl cellfed");
    for line in rendered.lines() {
        let line = line.trim();
        if let Some(usage) = line.strip_prefix("Usage:") {
            let words: Vec<&str> = usage
                .split_whitespace()
                .take_while(|w| {
                    w.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_')
                })
                .collect();
            if words.len() >= 2 {
                command = words.join(" ");
            }
            break;
        }
        if line.is_empty() || line.starts_with("For more information") {
            continue;
        }
        parts.push(
            line.strip_prefix("error:")
                .unwrap_or(line)
                .trim()
                .to_string(),
        );
    }
    one_line(&format!(
        "error: {}; see '{command} --help'",
        parts.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    fn status(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            status: Some(kube::core::response::StatusSummary::Failure),
            code,
            message: message.into(),
            reason: reason.into(),
            metadata: None,
            details: None,
        }))
    }

    #[test]
    fn server_errors_print_as_kubectl_does_without_our_context() {
        let err = anyhow::Error::new(status(
            404,
            "NotFound",
            "deployments.apps \"hello\" not found",
        ))
        .context("reading Deployment hello");
        assert_eq!(
            render(&err),
            "Error from server (NotFound): deployments.apps \"hello\" not found"
        );
        let err = anyhow::Error::new(status(500, "", "boom\nbang")).context("x");
        assert_eq!(render(&err), "Error from server: boom bang");
        let err = anyhow::Error::new(status(401, "Unauthorized", "Unauthorized"));
        assert_eq!(
            render(&err),
            "error: You must be logged in to the server (Unauthorized)"
        );
    }

    #[test]
    fn hints_are_appended_after_the_server_line() {
        let err = hinted(
            status(403, "Forbidden", "secrets is forbidden"),
            "in member cluster \"member1\"",
        )
        .context("cleaning up");
        assert_eq!(
            render(&err),
            "Error from server (Forbidden): secrets is forbidden; in member cluster \"member1\""
        );
    }

    #[test]
    fn own_errors_are_one_error_line_with_their_context() {
        let err = Err::<(), _>(anyhow::anyhow!("no such file"))
            .context("reading app.yaml")
            .unwrap_err();
        assert_eq!(render(&err), "error: reading app.yaml: no such file");
        assert!(!render(&err).contains('\n'));
    }

    #[test]
    fn clap_usage_errors_become_one_line() {
        let rendered = "error: unexpected argument '--bogus' found\n\n  tip: to pass '--bogus' as a value, use '-- --bogus'\n\nUsage: kubectl cellfed federate [OPTIONS] [TYPE NAME]...\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_line(rendered),
            "error: unexpected argument '--bogus' found tip: to pass '--bogus' as a value, use '-- --bogus'; see 'kubectl cellfed federate --help'"
        );
    }
}
