//! What public health endpoints (`/readyz` of the apiserver and the webhook) tell an
//! unauthenticated caller: `ok`, or `readyz check failed` with HTTP 500, never why. With
//! `?verbose`, kube-style, each check is listed by name (`[+]store ok`,
//! `[-]store failed: reason withheld`). The reason itself is for the operator: the caller of
//! [`report`] logs it.

/// One named check and whether it passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check<'a> {
    /// The check's name, e.g. `store`.
    pub name: &'a str,
    /// Whether it passed.
    pub ok: bool,
}

/// The answer: HTTP status code and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// 200 when every check passed, else 500.
    pub code: u16,
    /// `ok`, `readyz check failed`, or the verbose list.
    pub body: String,
}

/// Whether `query` (the raw query string) asks for the verbose list (`verbose`, `verbose=`,
/// `verbose=true`, `verbose=1`).
pub fn verbose(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            k == "verbose" && !matches!(v, "false" | "0")
        })
    })
}

/// The public answer for `endpoint` (e.g. `readyz`) over `checks` (pure): it names checks, never
/// their failure reasons.
pub fn report(endpoint: &str, checks: &[Check<'_>], verbose: bool) -> Report {
    let passed = checks.iter().all(|c| c.ok);
    let verdict = if passed { "passed" } else { "failed" };
    let body = if verbose {
        let mut out = String::new();
        for c in checks {
            if c.ok {
                out.push_str(&format!("[+]{} ok\n", c.name));
            } else {
                out.push_str(&format!("[-]{} failed: reason withheld\n", c.name));
            }
        }
        out.push_str(&format!("{endpoint} check {verdict}\n"));
        out
    } else if passed {
        "ok".to_string()
    } else {
        format!("{endpoint} check failed\n")
    };
    Report {
        code: if passed { 200 } else { 500 },
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_ok_or_failed_and_lists_names_only_when_verbose() {
        let good = [Check {
            name: "store",
            ok: true,
        }];
        let bad = [
            Check {
                name: "ping",
                ok: true,
            },
            Check {
                name: "store",
                ok: false,
            },
        ];
        assert_eq!(
            report("readyz", &good, false),
            Report {
                code: 200,
                body: "ok".into()
            }
        );
        assert_eq!(
            report("readyz", &bad, false),
            Report {
                code: 500,
                body: "readyz check failed\n".into()
            }
        );
        assert_eq!(
            report("readyz", &bad, true).body,
            "[+]ping ok\n[-]store failed: reason withheld\nreadyz check failed\n"
        );
        assert_eq!(
            report("readyz", &good, true).body,
            "[+]store ok\nreadyz check passed\n"
        );
    }

    #[test]
    fn verbose_is_read_like_kube() {
        assert!(verbose(Some("verbose")));
        assert!(verbose(Some("exclude=x&verbose=true")));
        assert!(!verbose(Some("verbose=false")));
        assert!(!verbose(Some("verbosity=1")));
        assert!(!verbose(None));
    }
}
