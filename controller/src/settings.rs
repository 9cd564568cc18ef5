//! The controller's effective settings: command-line flags over the `KubeFedConfig`, over
//! KubeFed's defaults. Pure: the caller reads the KubeFedConfig from its cache and decides what to
//! do with an unparseable one (report it and keep the last good settings, never fall back to
//! defaults silently).

use std::time::Duration;

use cellfed_api::features::FeatureGates;
use cellfed_api::kubefed::KubeFedConfig;

use crate::leader::LeaderTimings;
use crate::members::HealthConfig;

/// What the command line set; `None` leaves the KubeFedConfig (or KubeFed's default) in force.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--worker-concurrency` (KubeFedConfig `syncController.maxConcurrentReconciles`).
    pub workers: Option<usize>,
    /// `--cache-sync-timeout` (KubeFedConfig `controllerDuration.cacheSyncTimeout`).
    pub cache_sync_timeout: Option<Duration>,
    /// `--cluster-available-delay`.
    pub available_delay: Option<Duration>,
    /// `--cluster-unavailable-delay`.
    pub unavailable_delay: Option<Duration>,
    /// `--cluster-health-check-period`.
    pub health_period: Option<Duration>,
    /// `--cluster-health-check-timeout`.
    pub health_timeout: Option<Duration>,
    /// `--cluster-health-check-failure-threshold`.
    pub failure_threshold: Option<u32>,
    /// `--cluster-health-check-success-threshold`.
    pub success_threshold: Option<u32>,
    /// `--leader-elect-lease-duration`.
    pub lease_duration: Option<Duration>,
    /// `--leader-elect-renew-deadline`.
    pub renew_deadline: Option<Duration>,
    /// `--leader-elect-retry-period`.
    pub retry_period: Option<Duration>,
    /// `--feature-gates` (replaces the KubeFedConfig's gates).
    pub feature_gates: Option<FeatureGates>,
}

/// The settings every part of the controller reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    /// Concurrent reconciles per federated type.
    pub workers: usize,
    /// How long a member's watch may take to list before the member counts as not ready.
    pub cache_sync_timeout: Duration,
    /// Delay before reconciling everything after a cluster became ready.
    pub available_delay: Duration,
    /// Delay before reconciling everything after a cluster became not ready.
    pub unavailable_delay: Duration,
    /// Member health probing.
    pub health: HealthConfig,
    /// Leader election timings.
    pub leader: LeaderTimings,
    /// Feature gates.
    pub gates: FeatureGates,
    /// `syncController.adoptResources: Enabled`.
    pub adopt_resources: bool,
}

/// KubeFed's default cache sync timeout.
pub const DEFAULT_CACHE_SYNC_TIMEOUT: Duration = Duration::from_secs(300);

/// The effective settings (pure). `config` is the KubeFedConfig as read from the host; when there
/// is none, the one cellfed ships applies (adoption disabled). Fails with a sentence naming the
/// problem when the KubeFedConfig cannot be understood.
pub fn effective(flags: &Overrides, config: Option<&KubeFedConfig>) -> Result<Effective, String> {
    let shipped = KubeFedConfig::cellfed_default();
    let config = config.unwrap_or(&shipped);
    let s = config.spec.settings().map_err(|e| {
        format!(
            "KubeFedConfig {}: {e}",
            config.metadata.name.as_deref().unwrap_or_default()
        )
    })?;
    let positive = |d: Duration, what: &str| {
        if d.is_zero() {
            Err(format!("KubeFedConfig {what} must be greater than 0"))
        } else {
            Ok(d)
        }
    };
    let threshold = |v: i64, what: &str| {
        u32::try_from(v)
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| format!("KubeFedConfig {what} must be a positive integer, not {v}"))
    };
    let leader = LeaderTimings {
        lease_duration: flags.lease_duration.unwrap_or(positive(
            s.leader_lease_duration,
            "leaderElect.leaseDuration",
        )?),
        renew_deadline: flags.renew_deadline.unwrap_or(positive(
            s.leader_renew_deadline,
            "leaderElect.renewDeadline",
        )?),
        retry_period: flags
            .retry_period
            .unwrap_or(positive(s.leader_retry_period, "leaderElect.retryPeriod")?),
    };
    if leader.lease_duration <= leader.renew_deadline {
        return Err(format!(
            "leader election lease duration ({:?}) must be greater than the renew deadline ({:?})",
            leader.lease_duration, leader.renew_deadline
        ));
    }
    Ok(Effective {
        workers: match flags.workers {
            Some(w) => w.max(1),
            None => usize::try_from(s.sync_max_concurrent_reconciles)
                .ok()
                .filter(|w| *w > 0)
                .ok_or_else(|| {
                    format!(
                        "KubeFedConfig syncController.maxConcurrentReconciles must be positive, not {}",
                        s.sync_max_concurrent_reconciles
                    )
                })?,
        },
        cache_sync_timeout: flags
            .cache_sync_timeout
            .unwrap_or(s.cache_sync_timeout.unwrap_or(DEFAULT_CACHE_SYNC_TIMEOUT)),
        available_delay: flags.available_delay.unwrap_or(s.cluster_available_delay),
        unavailable_delay: flags
            .unavailable_delay
            .unwrap_or(s.cluster_unavailable_delay),
        health: HealthConfig {
            period: flags.health_period.unwrap_or(positive(
                s.health_check_period,
                "clusterHealthCheck.period",
            )?),
            timeout: flags.health_timeout.unwrap_or(positive(
                s.health_check_timeout,
                "clusterHealthCheck.timeout",
            )?),
            failure_threshold: match flags.failure_threshold {
                Some(v) => v,
                None => threshold(
                    s.health_check_failure_threshold,
                    "clusterHealthCheck.failureThreshold",
                )?,
            },
            success_threshold: match flags.success_threshold {
                Some(v) => v,
                None => threshold(
                    s.health_check_success_threshold,
                    "clusterHealthCheck.successThreshold",
                )?,
            },
        },
        leader,
        gates: flags.feature_gates.clone().unwrap_or(s.feature_gates),
        adopt_resources: s.adopt_resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellfed_api::features::FeatureGate;
    use serde_json::json;

    fn config(spec: serde_json::Value) -> KubeFedConfig {
        serde_json::from_value(json!({
            "apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedConfig",
            "metadata": {"name": "kubefed", "namespace": "kube-federation-system"},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn kubefed_config_applies_and_flags_win() {
        let c = config(json!({
            "scope": "Cluster",
            "controllerDuration": {"availableDelay": "5s", "unavailableDelay": "7s", "cacheSyncTimeout": "30s"},
            "leaderElect": {"leaseDuration": "4s", "renewDeadline": "3s", "retryPeriod": "1s"},
            "clusterHealthCheck": {"period": "2s", "timeout": "1s", "failureThreshold": 2, "successThreshold": 4},
            "syncController": {"maxConcurrentReconciles": 3, "adoptResources": "Enabled"},
        }));
        let e = effective(&Overrides::default(), Some(&c)).unwrap();
        assert_eq!(e.workers, 3);
        assert!(e.adopt_resources);
        assert_eq!(e.available_delay, Duration::from_secs(5));
        assert_eq!(e.unavailable_delay, Duration::from_secs(7));
        assert_eq!(e.cache_sync_timeout, Duration::from_secs(30));
        assert_eq!(e.leader.lease_duration, Duration::from_secs(4));
        assert_eq!(e.health.period, Duration::from_secs(2));
        assert_eq!(e.health.success_threshold, 4);

        let flags = Overrides {
            workers: Some(9),
            health_period: Some(Duration::from_millis(200)),
            feature_gates: Some(FeatureGates::parse("TenantIsolation=false").unwrap()),
            ..Overrides::default()
        };
        let e = effective(&flags, Some(&c)).unwrap();
        assert_eq!(e.workers, 9);
        assert_eq!(e.health.period, Duration::from_millis(200));
        assert_eq!(e.health.failure_threshold, 2);
        assert!(!e.gates.enabled(FeatureGate::TenantIsolation));
    }

    #[test]
    fn without_a_kubefed_config_cellfed_ships_adoption_disabled() {
        let e = effective(&Overrides::default(), None).unwrap();
        assert!(!e.adopt_resources);
        assert_eq!(e.health.period, Duration::from_secs(10));
        assert_eq!(e.cache_sync_timeout, DEFAULT_CACHE_SYNC_TIMEOUT);
    }

    #[test]
    fn an_unparseable_config_is_reported_not_replaced() {
        let bad = config(json!({"scope": "Cluster", "clusterHealthCheck": {"period": "soon"}}));
        let err = effective(&Overrides::default(), Some(&bad)).unwrap_err();
        assert!(err.contains("KubeFedConfig kubefed"), "{err}");
        let zero =
            config(json!({"scope": "Cluster", "clusterHealthCheck": {"failureThreshold": 0}}));
        let err = effective(&Overrides::default(), Some(&zero)).unwrap_err();
        assert!(err.contains("failureThreshold"), "{err}");
        let lease = config(json!({"scope": "Cluster",
            "leaderElect": {"leaseDuration": "5s", "renewDeadline": "10s"}}));
        let err = effective(&Overrides::default(), Some(&lease)).unwrap_err();
        assert!(err.contains("renew deadline"), "{err}");
    }
}
