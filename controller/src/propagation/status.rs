//! status: the typed status of a federated resource from its plan and the apply failures,
//! written only when it changed (timestamps aside; an empty list equals a missing one), and the
//! sync finalizer added or removed under a resourceVersion precondition.

use std::collections::BTreeSet;

use cellfed_api::FederatedResource;
use cellfed_api::federated::v1beta1::FederatedStatus;
use cellfed_api::federated::{FederatedCondition, MemberStatus, Rollout};
use cellfed_api::well_known::{PropagationStatus, SYNC_FINALIZER};
use kube::ResourceExt as _;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::apply::Failures;
use crate::plan::Plan;
use crate::{Error, Result};

/// How often a finalizer write is retried after a conflict.
const FINALIZER_ATTEMPTS: usize = 5;

/// The `Propagation` condition, keeping the previous transition time when the status holds.
fn condition(
    fed: &FederatedResource,
    ok: bool,
    reason: &str,
    message: &str,
    now: &str,
) -> FederatedCondition {
    let status = if ok { "True" } else { "False" };
    let previous = fed
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Propagation"));
    let transition = previous
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.to_string());
    FederatedCondition {
        type_: "Propagation".into(),
        status: status.into(),
        reason: (!reason.is_empty()).then(|| reason.to_string()),
        message: (!message.is_empty()).then(|| message.to_string()),
        last_update_time: Some(now.to_string()),
        last_transition_time: Some(transition),
    }
}

/// The status after planning and applying (pure): per-cluster statuses (apply failures win),
/// the Propagation condition, the rollout summary. The member objects' status the plan read
/// (FTC `statusCollection: Enabled`) becomes `remoteStatus` only when `raw_status` says the
/// `RawResourceStatusCollection` gate is on, as in KubeFed.
pub fn of_plan(
    fed: &FederatedResource,
    p: &Plan,
    failures: &Failures,
    raw_status: bool,
    now: &str,
) -> FederatedStatus {
    let mut clusters = Vec::new();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for c in &p.clusters {
        seen.insert(c.cluster.clone());
        let (status, message) = match failures.get(&c.cluster) {
            Some((s, m)) => (Some(*s), Some(format!("cluster {}: {m}", c.cluster))),
            None => (c.status, c.message.clone()),
        };
        if let Some(s) = status.filter(|s| s.is_error()) {
            problems.push(message.unwrap_or_else(|| format!("cluster {}: {s}", c.cluster)));
        }
        clusters.push(MemberStatus {
            name: c.cluster.clone(),
            status: Some(status.map_or("OK", PropagationStatus::as_str).to_string()),
            generation: c.generation,
            remote_status: c.remote_status.clone().filter(|_| raw_status),
        });
    }
    for (cluster, (s, m)) in failures.iter().filter(|(c, _)| !seen.contains(*c)) {
        problems.push(format!("cluster {cluster}: {m}"));
        clusters.push(MemberStatus {
            name: cluster.clone(),
            status: Some(s.as_str().to_string()),
            generation: None,
            remote_status: None,
        });
    }
    let cond = if problems.is_empty() {
        condition(fed, true, "", "", now)
    } else {
        condition(fed, false, "CheckClusters", &problems.join("; "), now)
    };
    FederatedStatus {
        observed_generation: fed.metadata.generation,
        conditions: vec![cond],
        clusters,
        rollout: Some(Rollout::new(p.updated as i64, p.placed as i64)),
    }
}

/// The status of a resource that cannot be planned (pure).
pub fn of_error(
    fed: &FederatedResource,
    reason: &str,
    message: &str,
    now: &str,
) -> FederatedStatus {
    FederatedStatus {
        observed_generation: fed.metadata.generation,
        conditions: vec![condition(fed, false, reason, message, now)],
        clusters: Vec::new(),
        rollout: None,
    }
}

/// Whether `next` says what `current` says, timestamps aside (pure).
pub fn unchanged(current: Option<&FederatedStatus>, next: &FederatedStatus) -> bool {
    let strip = |s: &FederatedStatus| {
        let mut s = s.clone();
        for c in &mut s.conditions {
            c.last_update_time = None;
            c.last_transition_time = None;
        }
        s
    };
    strip(&current.cloned().unwrap_or_default()) == strip(next)
}

/// Writes `next` unless it equals the current status; returns whether it wrote.
pub async fn write(
    api: &Api<FederatedResource>,
    fed: &FederatedResource,
    next: &FederatedStatus,
) -> Result<bool> {
    if unchanged(fed.status.as_ref(), next) {
        return Ok(false);
    }
    let mut body = serde_json::to_value(next).unwrap_or_else(|_| json!({}));
    if let Some(map) = body.as_object_mut() {
        // a merge patch keeps what it does not mention: clear emptied fields explicitly
        for key in ["observedGeneration", "conditions", "clusters", "rollout"] {
            map.entry(key).or_insert(Value::Null);
        }
    }
    // network: status subresource
    match api
        .patch_status(
            &fed.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": body})),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(source) => Err(Error::WriteFederated {
            name: fed.name_any(),
            source,
        }),
    }
}

/// Adds (`add`) or removes the sync finalizer with the object's resourceVersion as precondition,
/// re-reading and retrying on a conflict, so a finalizer written by someone else in between is
/// never lost.
pub async fn set_finalizer(
    api: &Api<FederatedResource>,
    fed: &FederatedResource,
    add: bool,
) -> Result<()> {
    let name = fed.name_any();
    let failed = |source| Error::WriteFederated {
        name: name.clone(),
        source,
    };
    let mut current = fed.clone();
    for _ in 0..FINALIZER_ATTEMPTS {
        let mut finalizers = current.finalizers().to_vec();
        let has = finalizers.iter().any(|f| f == SYNC_FINALIZER);
        if has == add {
            return Ok(());
        }
        if add {
            finalizers.push(SYNC_FINALIZER.into());
        } else {
            finalizers.retain(|f| f != SYNC_FINALIZER);
        }
        let patch = json!({"metadata": {
            "resourceVersion": current.resource_version(),
            "finalizers": finalizers,
        }});
        // network: finalizer write, conditional on the resourceVersion read
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                // network: re-read after a conflict
                current = api.get(&name).await.map_err(failed)?;
            }
            Err(kube::Error::Api(e)) if e.code == 404 && !add => return Ok(()),
            Err(e) => return Err(failed(e)),
        }
    }
    Err(Error::Conflict { name })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ClusterPlanStatus;

    fn fed(status: Value) -> FederatedResource {
        serde_json::from_value(json!({
            "apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedConfigMap",
            "metadata": {"name": "cm", "namespace": "demo", "generation": 2},
            "spec": {"template": {"data": {}}, "placement": {"clusters": []}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn a_resource_placed_nowhere_is_unchanged_after_its_first_write() {
        let plan = Plan {
            actions: Vec::new(),
            clusters: Vec::new(),
            updated: 0,
            placed: 0,
        };
        let f = fed(Value::Null);
        let first = of_plan(&f, &plan, &Failures::new(), true, "2026-01-01T00:00:00Z");
        assert!(!unchanged(f.status.as_ref(), &first));
        // what the server stores (empty lists dropped) read back, a second later
        let stored = fed(serde_json::to_value(&first).unwrap());
        let again = of_plan(
            &stored,
            &plan,
            &Failures::new(),
            true,
            "2026-01-01T00:00:01Z",
        );
        assert!(unchanged(stored.status.as_ref(), &again));
        assert_eq!(
            again.conditions[0].last_transition_time.as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
    }

    #[test]
    fn apply_failures_win_and_name_the_cluster() {
        let plan = Plan {
            actions: Vec::new(),
            clusters: vec![ClusterPlanStatus {
                cluster: "member1".into(),
                status: None,
                generation: Some(2),
                remote_status: None,
                message: None,
            }],
            updated: 1,
            placed: 1,
        };
        let failures = Failures::from([(
            "member1".to_string(),
            (PropagationStatus::UpdateFailed, "boom".to_string()),
        )]);
        let s = of_plan(&fed(Value::Null), &plan, &failures, true, "t");
        assert_eq!(s.clusters[0].status.as_deref(), Some("UpdateFailed"));
        assert_eq!(s.conditions[0].status, "False");
        assert_eq!(
            s.conditions[0].message.as_deref(),
            Some("cluster member1: boom")
        );
        assert_eq!(s.rollout, Some(Rollout::new(1, 1)));
    }

    #[test]
    fn remote_status_needs_the_raw_status_gate() {
        let plan = Plan {
            actions: Vec::new(),
            clusters: vec![ClusterPlanStatus {
                cluster: "member1".into(),
                status: None,
                generation: Some(2),
                remote_status: Some(json!({"readyReplicas": 3})),
                message: None,
            }],
            updated: 1,
            placed: 1,
        };
        let on = of_plan(&fed(Value::Null), &plan, &Failures::new(), true, "t");
        assert_eq!(
            on.clusters[0].remote_status,
            Some(json!({"readyReplicas": 3}))
        );
        let off = of_plan(&fed(Value::Null), &plan, &Failures::new(), false, "t");
        assert_eq!(off.clusters[0].remote_status, None);
    }
}
