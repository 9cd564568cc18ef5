//! What to do after a failed reconcile: permanent errors (the apiserver refused what we wrote as
//! invalid or forbidden) wait until the federated resource changes; transient ones (network,
//! conflicts, throttling, server errors) are retried with a bounded exponential backoff.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
        Error::WriteFederated { source, .. }
        | Error::WriteDerivedCluster { name: _, source }
        | Error::ListFederated { source, .. } => source,
        Error::ListClusters(source) => source,
        Error::Metrics(_) | Error::LeaderElection(_) => return false,
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

#[derive(Clone, Debug)]
struct Entry {
    failures: u32,
    resource_version: String,
    retry: Retry,
    at: Instant,
}

/// Per-resource failure memory shared by the passes.
#[derive(Debug, Default)]
pub struct Backoff(Mutex<HashMap<String, Entry>>);

impl Backoff {
    /// Whether the resource `key` at `resource_version` should be reconciled now.
    pub fn due(&self, key: &str, resource_version: &str, now: Instant) -> bool {
        let Ok(map) = self.0.lock() else { return true };
        match map.get(key) {
            None => true,
            Some(e) if e.resource_version != resource_version => true,
            Some(e) => match e.retry {
                Retry::OnChange => false,
                Retry::After(d) => now >= e.at + d,
            },
        }
    }

    /// Records a failure; returns the decision.
    pub fn failed(
        &self,
        key: &str,
        resource_version: &str,
        error: &Error,
        base: Duration,
        now: Instant,
    ) -> Retry {
        let Ok(mut map) = self.0.lock() else {
            return Retry::After(base);
        };
        let failures = map
            .get(key)
            .filter(|e| e.resource_version == resource_version)
            .map_or(1, |e| e.failures.saturating_add(1));
        let retry = error_policy(error, failures, base);
        map.insert(
            key.to_string(),
            Entry {
                failures,
                resource_version: resource_version.to_string(),
                retry,
                at: now,
            },
        );
        retry
    }

    /// Forgets the failures of `key` after a success.
    pub fn succeeded(&self, key: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(key);
        }
    }
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

    #[test]
    fn permanent_waits_for_a_change_transient_for_the_delay() {
        let b = Backoff::default();
        let t0 = Instant::now();
        let base = Duration::from_secs(1);
        b.failed("a", "1", &api_error(422), base, t0);
        assert!(!b.due("a", "1", t0 + Duration::from_secs(3600)));
        assert!(b.due("a", "2", t0));
        b.failed("t", "1", &api_error(503), base, t0);
        b.failed("t", "1", &api_error(503), base, t0);
        assert!(!b.due("t", "1", t0 + Duration::from_millis(1500)));
        assert!(b.due("t", "1", t0 + Duration::from_secs(2)));
        b.succeeded("t");
        assert!(b.due("t", "1", t0));
    }
}
