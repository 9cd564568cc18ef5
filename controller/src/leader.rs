//! Leader election on a `coordination.k8s.io/v1` Lease named `cellfed-controller` in the federation
//! namespace, as client-go does it: a candidate judges expiry by the time *it* observed the lease
//! record last change (never by comparing its clock with the holder's `renewTime`); the holder
//! renews every retry period and gives up leadership as soon as it has not renewed for the renew
//! deadline ([`Leadership::may_write`] turns false at once, so a paused and resumed old leader
//! writes nothing). Optimistic concurrency (the Lease's resourceVersion) decides races.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::{Error, Result};

/// Name of the Lease.
pub const LEASE_NAME: &str = "cellfed-controller";

/// Leader election timings (KubeFedConfig `leaderElect`, KubeFed's defaults 15s/10s/5s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderTimings {
    /// How long a candidate waits, from its own observation of the last change, before taking
    /// a lease it does not hold.
    pub lease_duration: Duration,
    /// How long the holder may go without a successful renewal before it stops acting.
    pub renew_deadline: Duration,
    /// How often the holder renews and candidates retry.
    pub retry_period: Duration,
}

impl Default for LeaderTimings {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(5),
        }
    }
}

/// What a candidate saw of the lease and when (its own monotonic clock).
#[derive(Clone, Debug, Default)]
pub struct Observation {
    record: Option<String>,
    at: Option<Instant>,
}

/// What to do with the lease now (pure decision of [`decide`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No lease: create it.
    Create,
    /// Ours, unheld, or expired by our own observation: write it with its resourceVersion.
    Take,
    /// Someone else holds it and it has not expired as far as we saw.
    Wait,
}

/// Whether `identity` may take `lease` at `now` (pure, apart from updating `seen`).
pub fn decide(
    lease: Option<&Lease>,
    identity: &str,
    seen: &mut Observation,
    now: Instant,
    lease_duration: Duration,
) -> Decision {
    let Some(lease) = lease else {
        return Decision::Create;
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder.is_empty() || holder == identity {
        return Decision::Take;
    }
    let record = format!(
        "{holder}/{:?}/{}",
        spec.renew_time.as_ref().map(|t| t.0.to_string()),
        lease.metadata.resource_version.clone().unwrap_or_default()
    );
    if seen.record.as_deref() != Some(record.as_str()) {
        seen.record = Some(record);
        seen.at = Some(now);
        return Decision::Wait;
    }
    let duration = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(lease_duration, Duration::from_secs);
    match seen.at {
        Some(at) if now.saturating_duration_since(at) > duration => Decision::Take,
        _ => Decision::Wait,
    }
}

fn lease_body(
    identity: &str,
    previous: Option<&Lease>,
    timings: &LeaderTimings,
    now: jiff::Timestamp,
) -> Result<Lease> {
    let transitions = previous
        .and_then(|l| l.spec.as_ref())
        .map(|s| {
            let changed = s.holder_identity.as_deref() != Some(identity);
            s.lease_transitions.unwrap_or(0) + i32::from(changed)
        })
        .unwrap_or(0);
    let acquire = previous
        .and_then(|l| l.spec.as_ref())
        .filter(|s| s.holder_identity.as_deref() == Some(identity))
        .and_then(|s| s.acquire_time.clone())
        .unwrap_or(MicroTime(now));
    let mut lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": LEASE_NAME},
    }))
    .map_err(|e| Error::LeaderElection(e.to_string()))?;
    if let Some(p) = previous {
        lease.metadata.resource_version = p.metadata.resource_version.clone();
    }
    let seconds = i32::try_from(timings.lease_duration.as_secs_f64().ceil() as u64).unwrap_or(15);
    lease.spec = Some(k8s_openapi::api::coordination::v1::LeaseSpec {
        holder_identity: Some(identity.into()),
        lease_duration_seconds: Some(seconds.max(1)),
        acquire_time: Some(acquire),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..Default::default()
    });
    Ok(lease)
}

/// One candidate or holder of the lease.
pub struct Elector {
    api: Api<Lease>,
    identity: String,
    timings: LeaderTimings,
    seen: Observation,
}

impl Elector {
    /// An elector for `identity` in `namespace`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        identity: &str,
        timings: LeaderTimings,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            identity: identity.into(),
            timings,
            seen: Observation::default(),
        }
    }

    /// One attempt to take or renew the lease; Ok(true) when we hold it afterwards.
    pub async fn try_acquire(&mut self) -> Result<bool> {
        // network: read, then create or replace with the read resourceVersion
        let current = self
            .api
            .get_opt(LEASE_NAME)
            .await
            .map_err(|e| Error::LeaderElection(e.to_string()))?;
        let decision = decide(
            current.as_ref(),
            &self.identity,
            &mut self.seen,
            Instant::now(),
            self.timings.lease_duration,
        );
        let now = jiff::Timestamp::now();
        let outcome = match decision {
            Decision::Wait => return Ok(false),
            Decision::Create => {
                let body = lease_body(&self.identity, None, &self.timings, now)?;
                self.api.create(&PostParams::default(), &body).await
            }
            Decision::Take => {
                let body = lease_body(&self.identity, current.as_ref(), &self.timings, now)?;
                self.api
                    .replace(LEASE_NAME, &PostParams::default(), &body)
                    .await
            }
        };
        match outcome {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(Error::LeaderElection(e.to_string())),
        }
    }

    /// Waits until we hold the lease.
    pub async fn acquire(&mut self) -> Leadership {
        loop {
            let attempt = tokio::time::timeout(self.timings.retry_period, self.try_acquire());
            match attempt.await {
                Ok(Ok(true)) => {
                    tracing::info!(identity = %self.identity, "acquired leader lease {LEASE_NAME}");
                    return Leadership::new(self.timings.renew_deadline);
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "leader election"),
                Err(_) => tracing::warn!("leader election: the host did not answer in time"),
            }
            tokio::time::sleep(self.timings.retry_period).await;
        }
    }

    /// Renews every retry period until a renewal fails past the renew deadline or another
    /// replica holds the lease; then marks `leadership` lost and returns.
    pub async fn renew(mut self, leadership: std::sync::Arc<Leadership>) {
        loop {
            tokio::time::sleep(self.timings.retry_period).await;
            if !leadership.may_write() {
                break;
            }
            let attempt = tokio::time::timeout(self.timings.retry_period, self.try_acquire());
            match attempt.await {
                Ok(Ok(true)) => leadership.renewed(),
                Ok(Ok(false)) => {
                    tracing::error!("leader lease taken by another replica");
                    leadership.lose();
                    break;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "renewing the leader lease"),
                Err(_) => tracing::warn!("renewing the leader lease: no answer in time"),
            }
        }
    }
}

/// Held leadership: valid while the last renewal is younger than the renew deadline.
#[derive(Debug)]
pub struct Leadership {
    renewed: Mutex<Option<Instant>>,
    renew_deadline: Duration,
}

impl Leadership {
    /// Leadership renewed just now.
    pub fn new(renew_deadline: Duration) -> Self {
        Self {
            renewed: Mutex::new(Some(Instant::now())),
            renew_deadline,
        }
    }

    /// Leadership without election (a single replica): always valid.
    pub fn unconditional() -> Self {
        Self {
            renewed: Mutex::new(None),
            renew_deadline: Duration::MAX,
        }
    }

    fn renewed(&self) {
        if let Ok(mut r) = self.renewed.lock() {
            *r = Some(Instant::now());
        }
    }

    fn lose(&self) {
        if let Ok(mut r) = self.renewed.lock() {
            *r = Some(Instant::now() - self.renew_deadline - Duration::from_secs(1));
        }
    }

    /// Whether this replica may write now (checked before every member and host write).
    pub fn may_write(&self) -> bool {
        if self.renew_deadline == Duration::MAX {
            return true;
        }
        self.renewed
            .lock()
            .ok()
            .and_then(|r| *r)
            .is_some_and(|at| at.elapsed() < self.renew_deadline)
    }

    /// Resolves once leadership is lost.
    pub async fn lost(&self) {
        while self.may_write() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, rv: &str, renew_second: i64) -> Lease {
        let mut l = lease_body(
            holder,
            None,
            &LeaderTimings::default(),
            jiff::Timestamp::from_second(renew_second).unwrap(),
        )
        .unwrap();
        l.metadata.resource_version = Some(rv.into());
        l
    }

    #[test]
    fn expiry_is_judged_by_local_observation_not_the_holders_clock() {
        let t0 = Instant::now();
        let d = Duration::from_secs(15);
        let mut seen = Observation::default();
        // a renewTime far in the past says nothing: we have not watched it long enough
        let lease = held_by("a", "1", 0);
        assert_eq!(decide(Some(&lease), "b", &mut seen, t0, d), Decision::Wait);
        assert_eq!(
            decide(
                Some(&lease),
                "b",
                &mut seen,
                t0 + Duration::from_secs(10),
                d
            ),
            Decision::Wait
        );
        // the holder renews (the record changes): the wait starts again
        let renewed = held_by("a", "2", 1);
        let t1 = t0 + Duration::from_secs(14);
        assert_eq!(
            decide(Some(&renewed), "b", &mut seen, t1, d),
            Decision::Wait
        );
        assert_eq!(
            decide(
                Some(&renewed),
                "b",
                &mut seen,
                t1 + Duration::from_secs(14),
                d
            ),
            Decision::Wait
        );
        assert_eq!(
            decide(
                Some(&renewed),
                "b",
                &mut seen,
                t1 + Duration::from_secs(16),
                d
            ),
            Decision::Take
        );
        assert_eq!(
            decide(Some(&renewed), "a", &mut seen, t1, d),
            Decision::Take
        );
        assert_eq!(decide(None, "b", &mut seen, t1, d), Decision::Create);
    }

    #[test]
    fn leadership_ends_at_the_renew_deadline() {
        let l = Leadership::new(Duration::from_secs(10));
        assert!(l.may_write());
        l.lose();
        assert!(!l.may_write());
        assert!(Leadership::unconditional().may_write());
        let taken = lease_body(
            "b",
            Some(&held_by("a", "1", 0)),
            &LeaderTimings::default(),
            jiff::Timestamp::from_second(5).unwrap(),
        )
        .unwrap();
        assert_eq!(taken.spec.unwrap().lease_transitions, Some(1));
    }
}
