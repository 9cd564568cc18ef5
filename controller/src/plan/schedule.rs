//! Replica scheduling of a `ReplicaSchedulingPreference` (pure): how many replicas of the target
//! run in each cluster, and what that makes of the target's placement and overrides.
//!
//! Same answers as KubeFed's planner (`pkg/controller/util/planner`): every cluster first gets its
//! `minReplicas`, in order of decreasing weight then of a hash of the cluster name and the
//! target's key (so single replicas do not always land on the alphabetically first cluster); with
//! `rebalance: false` the replicas a cluster already runs stay there (up to its max and capacity)
//! as far as the total allows; what is left is handed out by weight, fractions rounded up, in
//! rounds until nothing is left or no cluster can take more (its `maxReplicas` or estimated
//! capacity reached). A cluster neither named in `clusters` nor covered by `*` gets nothing.

use std::collections::{BTreeMap, BTreeSet};

use cellfed_api::federated::v1beta1::{ClusterOverrides, FederatedSpec, Placement};
use cellfed_api::federated::{ClusterOverride, NameRef};
use cellfed_api::kubefed::{ANY_CLUSTER, ClusterPreferences, ReplicaSchedulingPreferenceSpec};
use serde_json::Value;

/// The override path the scheduler owns.
pub const REPLICAS_PATH: &str = "/spec/replicas";

/// What the target looks like in the clusters right now, as far as it is known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Replicas running (ready) per cluster; clusters without the object are absent.
    pub current: BTreeMap<String, i64>,
    /// Replicas a cluster can run at most, where that is known to be limited.
    pub capacity: BTreeMap<String, i64>,
}

/// The planner's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Replicas each candidate cluster can run.
    pub replicas: BTreeMap<String, i64>,
    /// Replicas that did not fit a cluster's capacity but would bring it closer to the
    /// preferences, should they get scheduled after all.
    pub overflow: BTreeMap<String, i64>,
}

/// One cluster taking part in the distribution.
struct Candidate<'a> {
    name: &'a str,
    hash: u32,
    pref: &'a ClusterPreferences,
}

/// 32-bit FNV-1 of the concatenated `parts` (the hash KubeFed orders equal weights by).
fn fnv1_32(parts: &[&str]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in parts.iter().flat_map(|p| p.bytes()) {
        hash = hash.wrapping_mul(0x0100_0193);
        hash ^= u32::from(byte);
    }
    hash
}

/// Distributes `spec.totalReplicas` over `clusters` (the ready ones), given what runs now.
/// `key` (`namespace/name` of the target) varies the order of clusters of equal weight.
pub fn plan(
    spec: &ReplicaSchedulingPreferenceSpec,
    clusters: &[String],
    observed: &Observed,
    key: &str,
) -> Plan {
    let default_prefs;
    let prefs = if spec.clusters.is_empty() {
        // KubeFed: no preferences at all spread evenly
        default_prefs = BTreeMap::from([(
            ANY_CLUSTER.to_string(),
            ClusterPreferences {
                weight: 1,
                ..ClusterPreferences::default()
            },
        )]);
        &default_prefs
    } else {
        &spec.clusters
    };
    let mut out = Plan::default();
    let mut candidates = Vec::new();
    for name in clusters {
        match prefs.get(name).or_else(|| prefs.get(ANY_CLUSTER)) {
            Some(pref) => candidates.push(Candidate {
                name,
                hash: fnv1_32(&[name, key]),
                pref,
            }),
            None => {
                out.replicas.insert(name.clone(), 0);
            }
        }
    }
    candidates.sort_by(|a, b| {
        b.pref
            .weight
            .cmp(&a.pref.weight)
            .then(a.hash.cmp(&b.hash))
            .then(a.name.cmp(b.name))
    });
    let capacity = |name: &str| observed.capacity.get(name).copied();
    let mut remaining = i64::from(spec.total_replicas.max(0));

    // minimums first, by weight
    for c in &candidates {
        let mut n = c.pref.min_replicas.max(0).min(remaining);
        if let Some(cap) = capacity(c.name) {
            n = n.min(cap);
        }
        remaining -= n;
        out.replicas.insert(c.name.to_string(), n);
    }

    // without rebalancing, what runs stays where it runs (as far as the total allows); these
    // replicas count against what the cluster's weight later gives it
    let mut preallocated: BTreeMap<&str, i64> = BTreeMap::new();
    if !spec.rebalance {
        for c in &candidates {
            let planned = out.replicas.get(c.name).copied().unwrap_or(0);
            let Some(&running) = observed.current.get(c.name) else {
                continue;
            };
            if running <= planned {
                continue;
            }
            let mut target = running;
            if let Some(max) = c.pref.max_replicas {
                target = target.min(max);
            }
            if let Some(cap) = capacity(c.name) {
                target = target.min(cap);
            }
            let extra = (target - planned).min(remaining).max(0);
            remaining -= extra;
            preallocated.insert(c.name, extra);
            out.replicas.insert(c.name.to_string(), planned + extra);
        }
    }

    // the rest by weight, in rounds: each round either places everything or fills at least one
    // cluster (or uses up preallocated replicas)
    let mut active: Vec<&Candidate> = candidates.iter().collect();
    let mut modified = true;
    while modified && remaining > 0 {
        modified = false;
        let weight_sum: i64 = active.iter().map(|c| c.pref.weight.max(0)).sum();
        if weight_sum <= 0 {
            break;
        }
        let to_distribute = remaining;
        let mut still_open = Vec::with_capacity(active.len());
        for c in active {
            let start = out.replicas.get(c.name).copied().unwrap_or(0);
            let share = to_distribute.saturating_mul(c.pref.weight.max(0));
            let mut extra = (share.saturating_add(weight_sum - 1) / weight_sum).min(remaining);
            let pre = preallocated.get(c.name).copied().unwrap_or(0);
            let used = extra.min(pre);
            if used > 0 {
                preallocated.insert(c.name, pre - used);
                extra -= used;
                modified = true;
            }
            let mut total = start + extra;
            let mut full = false;
            if let Some(max) = c.pref.max_replicas
                && total > max
            {
                total = max;
                full = true;
            }
            if let Some(cap) = capacity(c.name)
                && total > cap
            {
                out.overflow.insert(c.name.to_string(), total - cap);
                total = cap;
                full = true;
            }
            if !full {
                still_open.push(c);
            }
            remaining -= total - start;
            out.replicas.insert(c.name.to_string(), total);
            if total > start {
                modified = true;
            }
        }
        active = still_open;
    }

    if !spec.rebalance {
        // only what could not be placed anywhere overflows
        out.overflow = out
            .overflow
            .into_iter()
            .map(|(name, n)| (name, n.min(remaining)))
            .filter(|(_, n)| *n > 0)
            .collect();
    }
    out
}

/// Replicas per cluster to write: the plan plus its overflow, and 0 for a cluster that runs
/// the target now but was not planned (KubeFed's `schedule`).
pub fn schedule(
    spec: &ReplicaSchedulingPreferenceSpec,
    clusters: &[String],
    observed: &Observed,
    key: &str,
) -> BTreeMap<String, i64> {
    let plan = plan(spec, clusters, observed, key);
    let mut result: BTreeMap<String, i64> =
        observed.current.keys().map(|c| (c.clone(), 0)).collect();
    result.extend(plan.replicas);
    for (name, n) in plan.overflow {
        *result.entry(name).or_insert(0) += n;
    }
    result
}

/// What scheduling makes of the target's spec: placement on the clusters with replicas, a
/// `/spec/replicas` override on each of them, and every other override as the user wrote it.
#[derive(Clone, Debug, PartialEq)]
pub struct Scheduled {
    /// `spec.placement.clusters`, sorted by name.
    pub clusters: Vec<NameRef>,
    /// `spec.overrides`.
    pub overrides: Vec<ClusterOverrides>,
}

/// The target's placement and overrides for `replicas`, or `None` when the target already has
/// them (no write needed). The placement's `clusterSelector` is left as it is.
pub fn scheduled_spec(spec: &FederatedSpec, replicas: &BTreeMap<String, i64>) -> Option<Scheduled> {
    let placed: BTreeMap<&str, i64> = replicas
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| (c.as_str(), *n))
        .collect();
    let clusters: Vec<NameRef> = placed
        .keys()
        .map(|c| NameRef {
            name: (*c).to_string(),
        })
        .collect();
    let mut overrides: Vec<ClusterOverrides> = Vec::new();
    for entry in &spec.overrides {
        let mut kept: Vec<ClusterOverride> = entry
            .cluster_overrides
            .iter()
            .filter(|o| o.path != REPLICAS_PATH)
            .cloned()
            .collect();
        if let Some(n) = placed.get(entry.cluster_name.as_str()) {
            kept.push(replicas_override(*n));
        }
        if !kept.is_empty() {
            overrides.push(ClusterOverrides {
                cluster_name: entry.cluster_name.clone(),
                cluster_overrides: kept,
            });
        }
    }
    let had: BTreeSet<&str> = spec
        .overrides
        .iter()
        .map(|o| o.cluster_name.as_str())
        .collect();
    for (cluster, n) in &placed {
        if !had.contains(cluster) {
            overrides.push(ClusterOverrides {
                cluster_name: (*cluster).to_string(),
                cluster_overrides: vec![replicas_override(*n)],
            });
        }
    }
    let current: BTreeSet<&str> = spec
        .placement_clusters()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let same_placement = spec.placement_clusters().is_some()
        && current == placed.keys().copied().collect::<BTreeSet<_>>();
    (!same_placement || overrides != spec.overrides).then_some(Scheduled {
        clusters,
        overrides,
    })
}

fn replicas_override(n: i64) -> ClusterOverride {
    ClusterOverride {
        op: None,
        path: REPLICAS_PATH.into(),
        value: Some(Value::from(n)),
    }
}

/// The target's placement with `clusters` and its selector kept.
pub fn placement_with(spec: &FederatedSpec, clusters: Vec<NameRef>) -> Placement {
    Placement {
        clusters: Some(clusters),
        cluster_selector: spec
            .placement
            .as_ref()
            .and_then(|p| p.cluster_selector.clone()),
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
