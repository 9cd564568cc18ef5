//! Feature gates: KubeFed's (`PushReconciler`, `SchedulerPreferences`,
//! `RawResourceStatusCollection`) plus cellfed's `TenantIsolation`, with their defaults, read from
//! a `KubeFedConfig` or parsed from a `Name=true,Other=false` flag.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::kubefed::{ConfigurationMode, FeatureGatesConfig};

/// Errors of parsing feature gates.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A gate name is not known.
    #[error("unknown feature gate {name:?}; known gates: {known}")]
    ParseName {
        /// The name given.
        name: String,
        /// The known names, comma separated.
        known: String,
    },
    /// An entry of a `Name=bool` list is malformed.
    #[error("feature gate entry {entry:?} is not of the form Name=true or Name=false")]
    ParseEntry {
        /// The entry given.
        entry: String,
    },
}

/// A feature gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeatureGate {
    /// KubeFed: propagate federated resources to member clusters (default on).
    PushReconciler,
    /// KubeFed: scheduling preferences for replica distribution (default on).
    SchedulerPreferences,
    /// KubeFed: collect the member objects' status into `status.clusters[].remoteStatus` (default off).
    RawResourceStatusCollection,
    /// cellfed: limit every controller action to clusters of the resource's tenant and workspace
    /// (default on).
    TenantIsolation,
}

impl FeatureGate {
    /// All gates, in name order.
    pub const ALL: [FeatureGate; 4] = [
        FeatureGate::PushReconciler,
        FeatureGate::RawResourceStatusCollection,
        FeatureGate::SchedulerPreferences,
        FeatureGate::TenantIsolation,
    ];

    /// The gate's name as written in `KubeFedConfig` and flags.
    pub fn name(self) -> &'static str {
        match self {
            Self::PushReconciler => "PushReconciler",
            Self::SchedulerPreferences => "SchedulerPreferences",
            Self::RawResourceStatusCollection => "RawResourceStatusCollection",
            Self::TenantIsolation => "TenantIsolation",
        }
    }

    /// Whether the gate is on when nothing says otherwise.
    pub fn default_enabled(self) -> bool {
        !matches!(self, Self::RawResourceStatusCollection)
    }
}

impl fmt::Display for FeatureGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FeatureGate {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|g| g.name() == s)
            .ok_or_else(|| Error::ParseName {
                name: s.to_owned(),
                known: Self::ALL.map(FeatureGate::name).join(", "),
            })
    }
}

/// The state of every feature gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureGates(BTreeMap<FeatureGate, bool>);

impl Default for FeatureGates {
    fn default() -> Self {
        Self(
            FeatureGate::ALL
                .into_iter()
                .map(|g| (g, g.default_enabled()))
                .collect(),
        )
    }
}

impl FeatureGates {
    /// Whether `gate` is on.
    pub fn enabled(&self, gate: FeatureGate) -> bool {
        self.0.get(&gate).copied().unwrap_or(gate.default_enabled())
    }

    /// Turns `gate` on or off.
    pub fn set(&mut self, gate: FeatureGate, enabled: bool) {
        self.0.insert(gate, enabled);
    }

    /// Defaults overridden by `list`, a comma-separated `Name=true,Other=false` (spaces allowed,
    /// empty entries ignored).
    pub fn parse(list: &str) -> Result<Self, Error> {
        let mut gates = Self::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, value) = entry.split_once('=').ok_or_else(|| Error::ParseEntry {
                entry: entry.to_owned(),
            })?;
            let enabled = match value.trim() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(Error::ParseEntry {
                        entry: entry.to_owned(),
                    });
                }
            };
            gates.set(name.trim().parse()?, enabled);
        }
        Ok(gates)
    }

    /// Defaults overridden by a `KubeFedConfig`'s `spec.featureGates`.
    pub fn from_config(config: &[FeatureGatesConfig]) -> Result<Self, Error> {
        let mut gates = Self::default();
        for entry in config {
            gates.set(
                entry.name.parse()?,
                entry.configuration == ConfigurationMode::Enabled,
            );
        }
        Ok(gates)
    }

    /// The gates as `KubeFedConfig` entries, in name order.
    pub fn to_config(&self) -> Vec<FeatureGatesConfig> {
        FeatureGate::ALL
            .into_iter()
            .map(|g| FeatureGatesConfig {
                name: g.name().to_owned(),
                configuration: if self.enabled(g) {
                    ConfigurationMode::Enabled
                } else {
                    ConfigurationMode::Disabled
                },
            })
            .collect()
    }
}

impl fmt::Display for FeatureGates {
    /// `Name=true,Other=false`, in name order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = FeatureGate::ALL
            .into_iter()
            .map(|g| format!("{}={}", g.name(), self.enabled(g)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_kubefed_and_cellfed() {
        let g = FeatureGates::default();
        assert!(g.enabled(FeatureGate::PushReconciler));
        assert!(g.enabled(FeatureGate::SchedulerPreferences));
        assert!(!g.enabled(FeatureGate::RawResourceStatusCollection));
        assert!(g.enabled(FeatureGate::TenantIsolation));
    }

    #[test]
    fn parse_overrides_defaults_and_round_trips() {
        let g = FeatureGates::parse("TenantIsolation=false, RawResourceStatusCollection=true,")
            .unwrap();
        assert!(!g.enabled(FeatureGate::TenantIsolation));
        assert!(g.enabled(FeatureGate::RawResourceStatusCollection));
        assert!(g.enabled(FeatureGate::PushReconciler));
        assert_eq!(FeatureGates::parse(&g.to_string()).unwrap(), g);
        assert_eq!(FeatureGates::parse("").unwrap(), FeatureGates::default());
    }

    #[test]
    fn parse_errors_name_the_bad_entry() {
        let err = FeatureGates::parse("Bogus=true").unwrap_err();
        assert!(err.to_string().contains("\"Bogus\""), "{err}");
        assert!(err.to_string().contains("TenantIsolation"), "{err}");
        let err = FeatureGates::parse("TenantIsolation").unwrap_err();
        assert!(err.to_string().contains("\"TenantIsolation\""), "{err}");
        let err = FeatureGates::parse("TenantIsolation=yes").unwrap_err();
        assert!(err.to_string().contains("TenantIsolation=yes"), "{err}");
    }

    #[test]
    fn config_entries_round_trip() {
        let mut g = FeatureGates::default();
        g.set(FeatureGate::SchedulerPreferences, false);
        assert_eq!(FeatureGates::from_config(&g.to_config()).unwrap(), g);
    }
}
