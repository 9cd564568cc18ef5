//! `KubeFedConfig`: settings of the federation controller, with KubeFed's defaults.

use std::time::Duration;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Error, GoDuration, Scope};
use crate::features::{FeatureGate, FeatureGates};
use crate::well_known::{DEFAULT_SYSTEM_NAMESPACE, KUBEFED_CONFIG_NAME};

/// KubeFed's default delay before reconciling on a healthy cluster.
pub const DEFAULT_CLUSTER_AVAILABLE_DELAY: Duration = Duration::from_secs(20);
/// KubeFed's default delay before giving up on an unhealthy cluster.
pub const DEFAULT_CLUSTER_UNAVAILABLE_DELAY: Duration = Duration::from_secs(60);
/// KubeFed's default leader election lease duration.
pub const DEFAULT_LEADER_ELECT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// KubeFed's default leader election renew deadline.
pub const DEFAULT_LEADER_ELECT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// KubeFed's default leader election retry period.
pub const DEFAULT_LEADER_ELECT_RETRY_PERIOD: Duration = Duration::from_secs(5);
/// KubeFed's default cluster health check period.
pub const DEFAULT_HEALTH_CHECK_PERIOD: Duration = Duration::from_secs(10);
/// KubeFed's default cluster health check timeout.
pub const DEFAULT_HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// KubeFed's default number of consecutive failed probes before a cluster is not ready.
pub const DEFAULT_HEALTH_CHECK_FAILURE_THRESHOLD: i64 = 3;
/// KubeFed's default number of consecutive successful probes before a cluster is ready again.
pub const DEFAULT_HEALTH_CHECK_SUCCESS_THRESHOLD: i64 = 1;
/// KubeFed's default concurrency of the sync and status controllers.
pub const DEFAULT_MAX_CONCURRENT_RECONCILES: i64 = 1;

/// Settings of the federation controller; unset fields take KubeFed's defaults.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "core.kubefed.io",
    version = "v1beta1",
    kind = "KubeFedConfig",
    doc = "KubeFedConfig holds the settings of the federation controller. The controller reads the one named kubefed in the federation system namespace; unset fields take KubeFed's defaults.",
    plural = "kubefedconfigs",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct KubeFedConfigSpec {
    /// Scope of the control plane: `Cluster` (all namespaces) or `Namespaced` (only its own).
    pub scope: Scope,
    /// Delays of the cluster controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_duration: Option<DurationConfig>,
    /// Leader election of controller replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_elect: Option<LeaderElectConfig>,
    /// Feature gates, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feature_gates: Vec<FeatureGatesConfig>,
    /// Cluster health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_health_check: Option<ClusterHealthCheckConfig>,
    /// Sync (propagation) controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_controller: Option<SyncControllerConfig>,
    /// Status controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_controller: Option<StatusControllerConfig>,
}

/// Delays of the cluster controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DurationConfig {
    /// Time to wait before reconciling on a healthy cluster (default 20s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_delay: Option<GoDuration>,
    /// Time to wait before giving up on an unhealthy cluster (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_delay: Option<GoDuration>,
    /// How long to wait for a member's caches to sync before treating the member as not ready
    /// (KubeFed's `cacheSyncTimeout`; default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_sync_timeout: Option<GoDuration>,
}

/// Leader election settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaderElectConfig {
    /// How long a non-leader waits after a renewal before taking over (default 15s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_duration: Option<GoDuration>,
    /// How long the leader keeps trying to renew before it stops leading (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_deadline: Option<GoDuration>,
    /// Time between acquisition and renewal attempts (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_period: Option<GoDuration>,
    /// Kind of object used as lock (default `configmaps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_lock: Option<ResourceLockType>,
}

/// Kind of object used as leader election lock.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResourceLockType {
    /// A ConfigMap (KubeFed's default).
    Configmaps,
    /// An Endpoints object.
    Endpoints,
    /// A coordination.k8s.io Lease.
    Leases,
}

/// A feature gate setting.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct FeatureGatesConfig {
    /// Name of the gate, e.g. `PushReconciler` or `TenantIsolation`.
    pub name: String,
    /// `Enabled` or `Disabled`.
    pub configuration: ConfigurationMode,
}

/// On or off.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConfigurationMode {
    /// On.
    Enabled,
    /// Off.
    Disabled,
}

/// Cluster health check settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterHealthCheckConfig {
    /// How often clusters are probed (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<GoDuration>,
    /// Consecutive failures before a ready cluster is considered failed (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i64>,
    /// Consecutive successes before a failed cluster is considered ready (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i64>,
    /// Timeout of one probe (default 3s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
}

/// Sync (propagation) controller settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncControllerConfig {
    /// Maximum number of concurrent reconciles (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_reconciles: Option<i64>,
    /// Whether pre-existing member objects are adopted. KubeFed's default is `Enabled`; the
    /// configuration cellfed ships sets `Disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt_resources: Option<ResourceAdoption>,
}

/// Whether pre-existing member objects are adopted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ResourceAdoption {
    /// Pre-existing objects are taken over.
    Enabled,
    /// Pre-existing objects are left alone and reported as `AlreadyExists`.
    Disabled,
}

/// Status controller settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusControllerConfig {
    /// Maximum number of concurrent reconciles (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_reconciles: Option<i64>,
}

/// A `KubeFedConfig` with every default applied, in types the controller uses directly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Scope of the control plane.
    pub scope: Scope,
    /// Delay before reconciling on a healthy cluster.
    pub cluster_available_delay: Duration,
    /// Delay before giving up on an unhealthy cluster.
    pub cluster_unavailable_delay: Duration,
    /// How long a member's caches may take to sync (None: the controller's default).
    pub cache_sync_timeout: Option<Duration>,
    /// Leader election lease duration.
    pub leader_lease_duration: Duration,
    /// Leader election renew deadline.
    pub leader_renew_deadline: Duration,
    /// Leader election retry period.
    pub leader_retry_period: Duration,
    /// Leader election lock kind.
    pub leader_resource_lock: ResourceLockType,
    /// Feature gates.
    pub feature_gates: FeatureGates,
    /// Health check period.
    pub health_check_period: Duration,
    /// Health check timeout.
    pub health_check_timeout: Duration,
    /// Failures before not ready.
    pub health_check_failure_threshold: i64,
    /// Successes before ready.
    pub health_check_success_threshold: i64,
    /// Sync controller concurrency.
    pub sync_max_concurrent_reconciles: i64,
    /// Whether pre-existing member objects are adopted.
    pub adopt_resources: bool,
    /// Status controller concurrency.
    pub status_max_concurrent_reconciles: i64,
}

fn duration_or(d: Option<&GoDuration>, default: Duration) -> Result<Duration, Error> {
    d.map_or(Ok(default), GoDuration::to_std)
}

impl KubeFedConfigSpec {
    /// This spec with every unset field set to KubeFed's default (as KubeFed's
    /// `SetDefaultKubeFedConfig`): missing feature gates are added with their defaults, sorted by name.
    pub fn with_defaults(&self) -> Self {
        let mut spec = self.clone();
        let d = spec
            .controller_duration
            .get_or_insert_with(Default::default);
        d.available_delay
            .get_or_insert(DEFAULT_CLUSTER_AVAILABLE_DELAY.into());
        d.unavailable_delay
            .get_or_insert(DEFAULT_CLUSTER_UNAVAILABLE_DELAY.into());
        let l = spec.leader_elect.get_or_insert_with(Default::default);
        l.lease_duration
            .get_or_insert(DEFAULT_LEADER_ELECT_LEASE_DURATION.into());
        l.renew_deadline
            .get_or_insert(DEFAULT_LEADER_ELECT_RENEW_DEADLINE.into());
        l.retry_period
            .get_or_insert(DEFAULT_LEADER_ELECT_RETRY_PERIOD.into());
        l.resource_lock.get_or_insert(ResourceLockType::Configmaps);
        for gate in FeatureGate::ALL {
            if !spec.feature_gates.iter().any(|g| g.name == gate.name()) {
                spec.feature_gates.push(FeatureGatesConfig {
                    name: gate.name().into(),
                    configuration: if gate.default_enabled() {
                        ConfigurationMode::Enabled
                    } else {
                        ConfigurationMode::Disabled
                    },
                });
            }
        }
        spec.feature_gates.sort_by(|a, b| a.name.cmp(&b.name));
        let h = spec
            .cluster_health_check
            .get_or_insert_with(Default::default);
        h.period.get_or_insert(DEFAULT_HEALTH_CHECK_PERIOD.into());
        h.timeout.get_or_insert(DEFAULT_HEALTH_CHECK_TIMEOUT.into());
        h.failure_threshold
            .get_or_insert(DEFAULT_HEALTH_CHECK_FAILURE_THRESHOLD);
        h.success_threshold
            .get_or_insert(DEFAULT_HEALTH_CHECK_SUCCESS_THRESHOLD);
        let s = spec.sync_controller.get_or_insert_with(Default::default);
        s.max_concurrent_reconciles
            .get_or_insert(DEFAULT_MAX_CONCURRENT_RECONCILES);
        s.adopt_resources.get_or_insert(ResourceAdoption::Enabled);
        spec.status_controller
            .get_or_insert_with(Default::default)
            .max_concurrent_reconciles
            .get_or_insert(DEFAULT_MAX_CONCURRENT_RECONCILES);
        spec
    }

    /// The effective settings: KubeFed's defaults for everything unset. Fails on a malformed
    /// duration or an unknown feature gate.
    pub fn settings(&self) -> Result<Settings, Error> {
        let d = self.controller_duration.clone().unwrap_or_default();
        let l = self.leader_elect.clone().unwrap_or_default();
        let h = self.cluster_health_check.clone().unwrap_or_default();
        let s = self.sync_controller.clone().unwrap_or_default();
        let st = self.status_controller.clone().unwrap_or_default();
        Ok(Settings {
            scope: self.scope,
            cluster_available_delay: duration_or(
                d.available_delay.as_ref(),
                DEFAULT_CLUSTER_AVAILABLE_DELAY,
            )?,
            cluster_unavailable_delay: duration_or(
                d.unavailable_delay.as_ref(),
                DEFAULT_CLUSTER_UNAVAILABLE_DELAY,
            )?,
            cache_sync_timeout: d
                .cache_sync_timeout
                .as_ref()
                .map(GoDuration::to_std)
                .transpose()?,
            leader_lease_duration: duration_or(
                l.lease_duration.as_ref(),
                DEFAULT_LEADER_ELECT_LEASE_DURATION,
            )?,
            leader_renew_deadline: duration_or(
                l.renew_deadline.as_ref(),
                DEFAULT_LEADER_ELECT_RENEW_DEADLINE,
            )?,
            leader_retry_period: duration_or(
                l.retry_period.as_ref(),
                DEFAULT_LEADER_ELECT_RETRY_PERIOD,
            )?,
            leader_resource_lock: l.resource_lock.unwrap_or(ResourceLockType::Configmaps),
            feature_gates: FeatureGates::from_config(&self.feature_gates)?,
            health_check_period: duration_or(h.period.as_ref(), DEFAULT_HEALTH_CHECK_PERIOD)?,
            health_check_timeout: duration_or(h.timeout.as_ref(), DEFAULT_HEALTH_CHECK_TIMEOUT)?,
            health_check_failure_threshold: h
                .failure_threshold
                .unwrap_or(DEFAULT_HEALTH_CHECK_FAILURE_THRESHOLD),
            health_check_success_threshold: h
                .success_threshold
                .unwrap_or(DEFAULT_HEALTH_CHECK_SUCCESS_THRESHOLD),
            sync_max_concurrent_reconciles: s
                .max_concurrent_reconciles
                .unwrap_or(DEFAULT_MAX_CONCURRENT_RECONCILES),
            adopt_resources: s.adopt_resources != Some(ResourceAdoption::Disabled),
            status_max_concurrent_reconciles: st
                .max_concurrent_reconciles
                .unwrap_or(DEFAULT_MAX_CONCURRENT_RECONCILES),
        })
    }
}

impl KubeFedConfig {
    /// The `KubeFedConfig` cellfed ships (`cellfed up`, the Helm chart): `kubefed` in
    /// `kube-federation-system`, cluster scope, every KubeFed default written out, except that
    /// adoption of pre-existing member objects is `Disabled`.
    pub fn cellfed_default() -> Self {
        let mut spec = KubeFedConfigSpec {
            scope: Scope::Cluster,
            controller_duration: None,
            leader_elect: None,
            feature_gates: Vec::new(),
            cluster_health_check: None,
            sync_controller: Some(SyncControllerConfig {
                max_concurrent_reconciles: None,
                adopt_resources: Some(ResourceAdoption::Disabled),
            }),
            status_controller: None,
        }
        .with_defaults();
        spec.scope = Scope::Cluster;
        let mut config = KubeFedConfig::new(KUBEFED_CONFIG_NAME, spec);
        config.metadata.namespace = Some(DEFAULT_SYSTEM_NAMESPACE.into());
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_spec() -> KubeFedConfigSpec {
        KubeFedConfigSpec {
            scope: Scope::Namespaced,
            controller_duration: None,
            leader_elect: None,
            feature_gates: Vec::new(),
            cluster_health_check: None,
            sync_controller: None,
            status_controller: None,
        }
    }

    #[test]
    fn empty_config_gets_kubefed_defaults() {
        let s = empty_spec().settings().unwrap();
        assert_eq!(s.health_check_period, Duration::from_secs(10));
        assert_eq!(s.health_check_timeout, Duration::from_secs(3));
        assert_eq!(s.health_check_failure_threshold, 3);
        assert_eq!(s.health_check_success_threshold, 1);
        assert_eq!(s.cluster_available_delay, Duration::from_secs(20));
        assert_eq!(s.leader_retry_period, Duration::from_secs(5));
        assert!(s.adopt_resources, "KubeFed adopts by default");
        assert!(s.feature_gates.enabled(FeatureGate::TenantIsolation));
        assert_eq!(s.sync_max_concurrent_reconciles, 1);
        assert_eq!(empty_spec().with_defaults().settings().unwrap(), s);
    }

    #[test]
    fn cellfed_default_disables_adoption_and_writes_all_defaults() {
        let c = KubeFedConfig::cellfed_default();
        assert_eq!(c.metadata.name.as_deref(), Some("kubefed"));
        assert_eq!(
            c.metadata.namespace.as_deref(),
            Some("kube-federation-system")
        );
        let s = c.spec.settings().unwrap();
        assert!(!s.adopt_resources);
        assert_eq!(s.scope, Scope::Cluster);
        let h = c.spec.cluster_health_check.unwrap();
        assert_eq!(h.period, Some(GoDuration("10s".into())));
        assert_eq!(h.timeout, Some(GoDuration("3s".into())));
        let names: Vec<_> = c
            .spec
            .feature_gates
            .iter()
            .map(|g| g.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "PushReconciler",
                "RawResourceStatusCollection",
                "SchedulerPreferences",
                "TenantIsolation"
            ]
        );
    }

    #[test]
    fn malformed_values_are_reported() {
        let mut spec = empty_spec();
        spec.cluster_health_check = Some(ClusterHealthCheckConfig {
            period: Some(GoDuration("often".into())),
            ..Default::default()
        });
        assert!(spec.settings().unwrap_err().to_string().contains("often"));
        let mut spec = empty_spec();
        spec.feature_gates.push(FeatureGatesConfig {
            name: "Nope".into(),
            configuration: ConfigurationMode::Enabled,
        });
        assert!(spec.settings().unwrap_err().to_string().contains("Nope"));
    }
}
