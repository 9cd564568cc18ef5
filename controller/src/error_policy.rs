//! What to do after a failed reconcile: permanent errors (the apiserver refused what we wrote as
//! invalid or forbidden) wait until the federated resource changes; transient ones (network,
//! conflicts, throttling, server errors) are retried with a bounded exponential backoff.

use std::time::Duration;

use crate::Error;

/// Longest wait between retries of a transient failure.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The decision for one failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Do not retry until the resource's resourceVersion changes.
    OnChange,
    /// Retry after this long.
    After(Duration),
}

/// Classifies an error (pure): 400/403/404/422 answers are permanent, everything else transient.
pub fn is_permanent(error: &Error) -> bool {
    let source = match error {
        Error::WriteFederated { source, .. } | Error::WriteDerivedCluster { name: _, source } => {
            source
        }
        Error::Metrics(_)
        | Error::LeaderElection(_)
        | Error::MemberWrites { .. }
        | Error::Conflict { .. } => return false,
    };
    matches!(source, kube::Error::Api(s) if matches!(s.code, 400 | 403 | 404 | 422))
}

/// The decision after `failures` consecutive failures (pure): `base * 2^(failures-1)`, capped.
pub fn error_policy(error: &Error, failures: u32, base: Duration) -> Retry {
    if is_permanent(error) {
        return Retry::OnChange;
    }
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    Retry::After(base.saturating_mul(factor).min(MAX_BACKOFF))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> Error {
        Error::WriteFederated {
            name: "web".into(),
            source: kube::Error::Api(
                kube::core::Status::failure("nope", "Invalid")
                    .with_code(code)
                    .boxed(),
            ),
        }
    }

    #[test]
    fn invalid_is_permanent_conflict_and_server_errors_are_not() {
        assert!(is_permanent(&api_error(422)));
        assert!(is_permanent(&api_error(403)));
        assert!(!is_permanent(&api_error(409)));
        assert!(!is_permanent(&api_error(500)));
        assert!(!is_permanent(&Error::LeaderElection("x".into())));
    }

    #[test]
    fn transient_backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(1);
        let e = api_error(500);
        assert_eq!(error_policy(&e, 1, base), Retry::After(base));
        assert_eq!(error_policy(&e, 3, base), Retry::After(base * 4));
        assert_eq!(error_policy(&e, 40, base), Retry::After(MAX_BACKOFF));
        assert_eq!(error_policy(&api_error(422), 1, base), Retry::OnChange);
    }
}
