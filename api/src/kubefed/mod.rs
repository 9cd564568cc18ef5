//! KubeFed's control-plane types, `core.kubefed.io/v1beta1`, with KubeFed's field names and JSON
//! shapes so that KubeFed manifests deserialize unchanged.

mod cluster;
mod config;
mod scheduling;
mod type_config;

pub use cluster::*;
pub use config::*;
pub use scheduling::*;
pub use type_config::*;

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Errors of reading KubeFed values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A duration is not in Go's `time.ParseDuration` format.
    #[error("duration {value:?} is not a Go duration such as 10s or 1500ms: {reason}")]
    ParseDuration {
        /// The text given.
        value: String,
        /// Why it did not parse.
        reason: String,
    },
    /// The feature gates of a `KubeFedConfig` do not parse.
    #[error(transparent)]
    ParseFeatureGates(#[from] crate::features::Error),
}

/// A duration in Go's notation (`10s`, `1500ms`, `1m30s`), as `metav1.Duration` serializes. The
/// text is kept as written so that manifests round-trip unchanged; [`GoDuration::to_std`] parses it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(transparent)]
pub struct GoDuration(pub String);

impl GoDuration {
    /// The duration as a [`std::time::Duration`]. Negative durations are refused.
    pub fn to_std(&self) -> Result<Duration, Error> {
        let parse_error = |reason: String| Error::ParseDuration {
            value: self.0.clone(),
            reason,
        };
        let d: kube::core::Duration = self.0.parse().map_err(|e| parse_error(format!("{e}")))?;
        if d.is_negative() {
            return Err(parse_error("must not be negative".into()));
        }
        Ok(d.into())
    }

    /// Go notation of `d` with the largest unit that represents it exactly (`10s`, `1500ms`).
    pub fn from_std(d: Duration) -> Self {
        let ms = d.as_millis();
        let text = if !d.subsec_nanos().is_multiple_of(1_000_000) {
            format!("{}ns", d.as_nanos())
        } else if !ms.is_multiple_of(1000) {
            format!("{ms}ms")
        } else {
            format!("{}s", d.as_secs())
        };
        Self(text)
    }
}

impl From<Duration> for GoDuration {
    fn from(d: Duration) -> Self {
        Self::from_std(d)
    }
}

/// Scope of a Kubernetes resource (`apiextensions.k8s.io/v1` `ResourceScope`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Scope {
    /// The resource lives in a namespace.
    Namespaced,
    /// The resource is cluster-wide.
    Cluster,
}

impl Scope {
    /// `"Namespaced"` or `"Cluster"`, as in a CRD's `spec.scope`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Namespaced => "Namespaced",
            Self::Cluster => "Cluster",
        }
    }
}

/// Status of a condition (`True`, `False`, `Unknown`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// It is not known whether the condition holds.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_and_print() {
        assert_eq!(
            GoDuration("1500ms".into()).to_std().unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            GoDuration("1m30s".into()).to_std().unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(GoDuration::from_std(Duration::from_secs(10)).0, "10s");
        assert_eq!(
            GoDuration::from_std(Duration::from_millis(1500)).0,
            "1500ms"
        );
        let err = GoDuration("10 parsecs".into()).to_std().unwrap_err();
        assert!(err.to_string().contains("10 parsecs"), "{err}");
        assert!(GoDuration("-1s".into()).to_std().is_err());
    }
}
