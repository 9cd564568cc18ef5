//! The cases of KubeFed's planner tests (same inputs, same answers; "hash dependent" ones
//! depend on the FNV-1 order of equal weights with an empty key), plus the spec the scheduler
//! writes.

use super::*;

/// `("A", min, max, weight)` rows → preferences.
fn prefs(rows: &[(&str, i64, Option<i64>, i64)]) -> BTreeMap<String, ClusterPreferences> {
    rows.iter()
        .map(|(name, min, max, weight)| {
            (
                (*name).to_string(),
                ClusterPreferences {
                    min_replicas: *min,
                    max_replicas: *max,
                    weight: *weight,
                },
            )
        })
        .collect()
}

fn spec(
    rows: &[(&str, i64, Option<i64>, i64)],
    total: i32,
    rebalance: bool,
) -> ReplicaSchedulingPreferenceSpec {
    ReplicaSchedulingPreferenceSpec {
        target_kind: "FederatedDeployment".into(),
        total_replicas: total,
        rebalance,
        intersect_with_cluster_selector: false,
        clusters: prefs(rows),
    }
}

fn names(clusters: &[&str]) -> Vec<String> {
    clusters.iter().map(|c| (*c).to_string()).collect()
}

fn counts(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(c, n)| ((*c).to_string(), *n)).collect()
}

/// `(cluster, replicas)` pairs of a test case.
type Pairs = &'static [(&'static str, i64)];

const EVEN: &[(&str, i64, Option<i64>, i64)] = &[("*", 0, None, 1)];

/// No current replicas, no capacity limits, rebalance off (KubeFed's `doCheck`).
fn check(
    rows: &[(&str, i64, Option<i64>, i64)],
    total: i32,
    clusters: &[&str],
    want: &[(&str, i64)],
) {
    let got = plan(
        &spec(rows, total, false),
        &names(clusters),
        &Observed::default(),
        "",
    );
    assert_eq!(got.replicas, counts(want), "{rows:?} total {total}");
    assert!(got.overflow.is_empty());
}

/// With current replicas (KubeFed's `doCheckWithExisting`).
fn check_existing(
    rows: &[(&str, i64, Option<i64>, i64)],
    total: i32,
    clusters: &[&str],
    existing: &[(&str, i64)],
    want: &[(&str, i64)],
) {
    let observed = Observed {
        current: counts(existing),
        capacity: BTreeMap::new(),
    };
    let got = plan(&spec(rows, total, false), &names(clusters), &observed, "");
    assert_eq!(got.replicas, counts(want), "existing {existing:?}");
    assert!(got.overflow.is_empty());
}

/// With capacity limits (KubeFed's `doCheckWithExistingAndCapacity`).
fn check_capacity(
    rebalance: bool,
    rows: &[(&str, i64, Option<i64>, i64)],
    total: i32,
    clusters: &[&str],
    capacity: &[(&str, i64)],
    want: &[(&str, i64)],
    want_overflow: &[(&str, i64)],
) {
    let observed = Observed {
        current: BTreeMap::new(),
        capacity: counts(capacity),
    };
    let got = plan(
        &spec(rows, total, rebalance),
        &names(clusters),
        &observed,
        "",
    );
    assert_eq!(got.replicas, counts(want), "{rows:?} capacity {capacity:?}");
    assert_eq!(got.overflow, counts(want_overflow), "overflow");
}

#[test]
fn equal_weights_split_evenly_and_remainders_follow_the_name_hash() {
    check(
        EVEN,
        50,
        &["A", "B", "C"],
        &[("A", 16), ("B", 17), ("C", 17)],
    );
    check(EVEN, 50, &["A", "B"], &[("A", 25), ("B", 25)]);
    check(EVEN, 1, &["A", "B"], &[("A", 0), ("B", 1)]);
    check(
        EVEN,
        1,
        &["A", "B", "C", "D"],
        &[("A", 0), ("B", 0), ("C", 0), ("D", 1)],
    );
    check(EVEN, 1, &["A"], &[("A", 1)]);
    check(EVEN, 1, &[], &[]);
}

#[test]
fn without_rebalance_running_replicas_stay_where_they_run() {
    let cases: &[(i32, &[&str], Pairs, Pairs)] = &[
        (
            50,
            &["A", "B", "C"],
            &[("C", 30)],
            &[("A", 10), ("B", 10), ("C", 30)],
        ),
        (50, &["A", "B"], &[("A", 30)], &[("A", 30), ("B", 20)]),
        (
            15,
            &["A", "B"],
            &[("A", 0), ("B", 8)],
            &[("A", 7), ("B", 8)],
        ),
        (
            15,
            &["A", "B"],
            &[("A", 1), ("B", 8)],
            &[("A", 7), ("B", 8)],
        ),
        (
            15,
            &["A", "B"],
            &[("A", 4), ("B", 8)],
            &[("A", 7), ("B", 8)],
        ),
        (
            15,
            &["A", "B"],
            &[("A", 5), ("B", 8)],
            &[("A", 7), ("B", 8)],
        ),
        (
            15,
            &["A", "B"],
            &[("A", 6), ("B", 8)],
            &[("A", 7), ("B", 8)],
        ),
        (
            15,
            &["A", "B"],
            &[("A", 7), ("B", 8)],
            &[("A", 7), ("B", 8)],
        ),
        (
            500_000,
            &["A", "B"],
            &[("A", 300_000)],
            &[("A", 300_000), ("B", 200_000)],
        ),
        (50, &["A", "B"], &[("A", 10)], &[("A", 25), ("B", 25)]),
        // hash dependent (KubeFed notes 10:40 would be better)
        (
            50,
            &["A", "B"],
            &[("A", 10), ("B", 70)],
            &[("A", 0), ("B", 50)],
        ),
        (1, &["A", "B"], &[("A", 30)], &[("A", 1), ("B", 0)]),
        (
            50,
            &["A", "B"],
            &[("A", 10), ("B", 20)],
            &[("A", 25), ("B", 25)],
        ),
    ];
    for (total, clusters, existing, want) in cases {
        check_existing(EVEN, *total, clusters, existing, want);
    }
}

#[test]
fn rebalance_moves_running_replicas() {
    let observed = Observed {
        current: counts(&[("A", 30)]),
        capacity: BTreeMap::new(),
    };
    let got = plan(&spec(EVEN, 50, true), &names(&["A", "B"]), &observed, "");
    assert_eq!(got.replicas, counts(&[("A", 25), ("B", 25)]));
    let kept = plan(&spec(EVEN, 50, false), &names(&["A", "B"]), &observed, "");
    assert_eq!(kept.replicas, counts(&[("A", 30), ("B", 20)]));
}

#[test]
fn capacity_limits_overflow() {
    let ab = &[("A", 0, None, 1), ("B", 0, None, 2)];
    let heavy_a = &[("A", 0, None, 10_000), ("B", 0, None, 1)];
    let capped = &[
        ("A", 0, Some(10), 10_000),
        ("B", 0, None, 1),
        ("C", 0, Some(21), 1),
        ("D", 0, Some(10), 1),
    ];
    check_capacity(
        true,
        EVEN,
        50,
        &["A", "B", "C"],
        &[("C", 10)],
        &[("A", 20), ("B", 20), ("C", 10)],
        &[("C", 7)],
    );
    check_capacity(
        true,
        heavy_a,
        50,
        &["B", "C"],
        &[("B", 10)],
        &[("B", 10), ("C", 0)],
        &[("B", 40)],
    );
    check_capacity(
        true,
        ab,
        60,
        &["A", "B", "C"],
        &[("B", 10)],
        &[("A", 50), ("B", 10), ("C", 0)],
        &[("B", 30)],
    );
    check_capacity(
        true,
        capped,
        71,
        &["A", "B", "C", "D"],
        &[("C", 10)],
        &[("A", 10), ("B", 41), ("C", 10), ("D", 10)],
        &[("C", 11)],
    );
    check_capacity(
        false,
        &[("A", 0, None, 1), ("B", 0, None, 1)],
        60,
        &["A", "B", "C"],
        &[("A", 10), ("B", 10)],
        &[("A", 10), ("B", 10), ("C", 0)],
        &[("A", 20), ("B", 20)],
    );
    check_capacity(
        false,
        &[("A", 0, None, 1), ("B", 0, None, 5)],
        60,
        &["A", "B", "C"],
        &[("B", 10)],
        &[("A", 50), ("B", 10), ("C", 0)],
        &[],
    );
    check_capacity(
        false,
        &[("*", 20, None, 0)],
        50,
        &["A", "B", "C"],
        &[("B", 10)],
        &[("A", 20), ("B", 10), ("C", 20)],
        &[],
    );
    check_capacity(
        true,
        &[("*", 20, None, 1)],
        60,
        &["A", "B"],
        &[("B", 10)],
        &[("A", 50), ("B", 10)],
        &[("B", 15)],
    );
}

#[test]
fn minimums_come_first_by_weight() {
    check(
        &[("*", 2, None, 0)],
        50,
        &["A", "B", "C"],
        &[("A", 2), ("B", 2), ("C", 2)],
    );
    // hash dependent
    check(
        &[("*", 20, None, 0)],
        50,
        &["A", "B", "C"],
        &[("A", 10), ("B", 20), ("C", 20)],
    );
    check(
        &[("*", 20, None, 0), ("A", 100, None, 1)],
        50,
        &["A", "B", "C"],
        &[("A", 50), ("B", 0), ("C", 0)],
    );
    check(
        &[("*", 10, Some(12), 1)],
        50,
        &["A", "B", "C"],
        &[("A", 12), ("B", 12), ("C", 12)],
    );
}

#[test]
fn maximums_cap_and_zero_weight_gets_nothing() {
    check(
        &[("*", 0, Some(2), 1)],
        50,
        &["A", "B", "C"],
        &[("A", 2), ("B", 2), ("C", 2)],
    );
    check(
        &[("*", 0, Some(2), 0)],
        50,
        &["A", "B", "C"],
        &[("A", 0), ("B", 0), ("C", 0)],
    );
}

#[test]
fn weights_share_and_clusters_outside_the_map_get_nothing() {
    check(
        &[("A", 0, None, 1), ("B", 0, None, 2)],
        60,
        &["A", "B", "C"],
        &[("A", 20), ("B", 40), ("C", 0)],
    );
    let heavy_a = &[("A", 0, None, 10_000), ("B", 0, None, 1)];
    check(
        heavy_a,
        50,
        &["A", "B", "C"],
        &[("A", 50), ("B", 0), ("C", 0)],
    );
    check(heavy_a, 50, &["B", "C"], &[("B", 50), ("C", 0)]);
    check(
        &[
            ("A", 0, Some(10), 10_000),
            ("B", 0, None, 1),
            ("C", 0, None, 1),
        ],
        50,
        &["A", "B", "C"],
        &[("A", 10), ("B", 20), ("C", 20)],
    );
    check(
        &[
            ("A", 0, Some(10), 10_000),
            ("B", 0, None, 1),
            ("C", 0, Some(10), 1),
        ],
        50,
        &["A", "B", "C"],
        &[("A", 10), ("B", 30), ("C", 10)],
    );
    let four = &[
        ("A", 0, Some(10), 10_000),
        ("B", 0, None, 1),
        ("C", 0, Some(21), 1),
        ("D", 0, Some(10), 1),
    ];
    check(
        four,
        71,
        &["A", "B", "C", "D"],
        &[("A", 10), ("B", 30), ("C", 21), ("D", 10)],
    );
    let mut five = four.to_vec();
    five.push(("E", 0, None, 1));
    check(
        &five,
        91,
        &["A", "B", "C", "D", "E"],
        &[("A", 10), ("B", 25), ("C", 21), ("D", 10), ("E", 25)],
    );
}

#[test]
fn no_preferences_mean_even_spread_and_star_is_the_default() {
    let none = spec(&[], 9, false);
    let got = plan(
        &none,
        &names(&["m1", "m2", "m3"]),
        &Observed::default(),
        "demo/web",
    );
    assert_eq!(got.replicas.values().sum::<i64>(), 9);
    assert!(got.replicas.values().all(|n| *n == 3));
    let star = spec(&[("*", 0, None, 1), ("m1", 0, None, 2)], 8, false);
    let got = plan(
        &star,
        &names(&["m1", "m2", "m3"]),
        &Observed::default(),
        "demo/web",
    );
    assert_eq!(got.replicas, counts(&[("m1", 4), ("m2", 2), ("m3", 2)]));
}

#[test]
fn schedule_zeroes_clusters_that_run_the_target_but_are_not_planned_and_adds_overflow() {
    let rsp = spec(&[("A", 0, None, 1)], 10, true);
    let observed = Observed {
        current: counts(&[("B", 4)]),
        capacity: counts(&[("A", 6)]),
    };
    let got = schedule(&rsp, &names(&["A", "B"]), &observed, "demo/web");
    assert_eq!(got, counts(&[("A", 10), ("B", 0)]));
}

fn federated(yaml: &str) -> FederatedSpec {
    serde_yaml::from_str(yaml).unwrap()
}

#[test]
fn scheduled_spec_places_clusters_with_replicas_and_keeps_other_overrides() {
    let fed = federated(
        r#"
template: {spec: {replicas: 1}}
placement:
  clusterSelector: {matchLabels: {region: eu}}
  clusters: [{name: old}]
overrides:
  - clusterName: m1
    clusterOverrides:
      - {path: /spec/template/spec/containers/0/image, value: "nginx:1.27"}
      - {path: /spec/replicas, value: 1}
  - clusterName: old
    clusterOverrides: [{path: /spec/replicas, value: 5}]
"#,
    );
    let replicas = counts(&[("m1", 3), ("m2", 6), ("old", 0)]);
    let s = scheduled_spec(&fed, &replicas).unwrap();
    assert_eq!(s.clusters, vec![NameRef::from("m1"), NameRef::from("m2")]);
    let written = serde_json::to_value(&s.overrides).unwrap();
    assert_eq!(
        written,
        serde_json::json!([
            {"clusterName": "m1", "clusterOverrides": [
                {"path": "/spec/template/spec/containers/0/image", "value": "nginx:1.27"},
                {"path": "/spec/replicas", "value": 3}]},
            {"clusterName": "m2", "clusterOverrides": [{"path": "/spec/replicas", "value": 6}]},
        ])
    );
    let placement = placement_with(&fed, s.clusters.clone());
    assert!(placement.cluster_selector.is_some());

    // once written, the same schedule needs no write
    let mut after = fed.clone();
    after.placement = Some(placement);
    after.overrides = s.overrides;
    assert_eq!(scheduled_spec(&after, &replicas), None);
    // a new weight does
    assert!(scheduled_spec(&after, &counts(&[("m1", 6), ("m2", 3)])).is_some());
}
