//! Leader election on a `coordination.k8s.io/v1` Lease named `cellfed-controller` in the federation
//! namespace, with KubeFed's default timings (15s lease, renewed every 2s). Optimistic concurrency
//! (the Lease's resourceVersion) decides between replicas racing for an expired lease.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::{Error, Result};

/// Name of the Lease.
pub const LEASE_NAME: &str = "cellfed-controller";
/// How long a lease is valid without renewal.
const LEASE_SECONDS: i32 = 15;
/// How often the holder renews and candidates retry.
const RETRY: Duration = Duration::from_secs(2);

/// Whether `lease` may be taken by `identity` at `now` (pure).
pub fn may_take(lease: &Lease, identity: &str, now: jiff::Timestamp) -> bool {
    let Some(spec) = &lease.spec else { return true };
    if spec
        .holder_identity
        .as_deref()
        .is_none_or(|h| h == identity || h.is_empty())
    {
        return true;
    }
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS));
    let renewed = spec
        .renew_time
        .as_ref()
        .map(|t| t.0.as_second())
        .unwrap_or(0);
    now.as_second() > renewed + duration
}

fn lease_body(identity: &str, previous: Option<&Lease>, now: jiff::Timestamp) -> Result<Lease> {
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
    lease.spec = Some(k8s_openapi::api::coordination::v1::LeaseSpec {
        holder_identity: Some(identity.into()),
        lease_duration_seconds: Some(LEASE_SECONDS),
        acquire_time: Some(acquire),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..Default::default()
    });
    Ok(lease)
}

/// One attempt to take or renew the lease; Ok(true) when `identity` holds it afterwards.
pub async fn try_acquire(client: &kube::Client, namespace: &str, identity: &str) -> Result<bool> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let now = jiff::Timestamp::now();
    // network: read, then create or replace with the read resourceVersion
    let current = api
        .get_opt(LEASE_NAME)
        .await
        .map_err(|e| Error::LeaderElection(e.to_string()))?;
    let outcome = match &current {
        None => {
            api.create(&PostParams::default(), &lease_body(identity, None, now)?)
                .await
        }
        Some(l) if may_take(l, identity, now) => {
            api.replace(
                LEASE_NAME,
                &PostParams::default(),
                &lease_body(identity, Some(l), now)?,
            )
            .await
        }
        Some(_) => return Ok(false),
    };
    match outcome {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(Error::LeaderElection(e.to_string())),
    }
}

/// Waits until `identity` holds the lease.
pub async fn acquire(client: &kube::Client, namespace: &str, identity: &str) -> Result<()> {
    loop {
        match try_acquire(client, namespace, identity).await {
            Ok(true) => {
                tracing::info!(identity, "acquired leader lease {namespace}/{LEASE_NAME}");
                return Ok(());
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "leader election"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Renews the lease every retry period; exits the process when leadership is lost, as
/// client-go's leader election does, so a new leader never races an old one.
pub async fn renew_forever(client: kube::Client, namespace: String, identity: String) {
    let mut failures_since = None::<std::time::Instant>;
    loop {
        tokio::time::sleep(RETRY).await;
        match try_acquire(&client, &namespace, &identity).await {
            Ok(true) => failures_since = None,
            Ok(false) => {
                tracing::error!("leader lease lost to another replica; exiting");
                std::process::exit(1);
            }
            Err(e) => {
                let since = *failures_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() > Duration::from_secs(u64::from(LEASE_SECONDS.unsigned_abs())) {
                    tracing::error!(error = %e, "cannot renew the leader lease; exiting");
                    std::process::exit(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_or_own_leases_may_be_taken() {
        let now = jiff::Timestamp::from_second(1_000).unwrap();
        let held = lease_body("a", None, jiff::Timestamp::from_second(990).unwrap()).unwrap();
        assert!(may_take(&held, "a", now));
        assert!(!may_take(&held, "b", now));
        let later = jiff::Timestamp::from_second(1_010).unwrap();
        assert!(may_take(&held, "b", later));
        let taken = lease_body("b", Some(&held), later).unwrap();
        assert_eq!(taken.spec.unwrap().lease_transitions, Some(1));
    }
}
