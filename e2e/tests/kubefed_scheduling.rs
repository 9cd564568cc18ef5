#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 11, replica scheduling through the real plane (apiserver, controller and two members as
//! separate processes): KubeFed's `example/sample1` deployment with its
//! `example/scheduling/federateddeployment-rsp.yaml`, and the user guide's weighted and min/max
//! preferences, applied from e2e/fixtures/kubefed (cluster names changed, nothing else) and placed
//! as KubeFed places them; a member going NotReady hands its replicas to the other
//! (`rebalance: true`) and gets them back once it is Ready again. The planner's own cases are unit
//! tests (controller/tests/replica_scheduling.rs runs the same in process).

use cellfed_e2e::{Env, eventually, root};
use serde_json::Value;

fn fixture(path: &str) -> String {
    root()
        .join("e2e/fixtures/kubefed")
        .join(path)
        .to_str()
        .unwrap()
        .to_string()
}

fn apply(env: &Env, path: &str) {
    env.host.kubectl(&["apply", "-f", &fixture(path)]);
}

/// `test-deployment` in `test-namespace` of member `name`.
fn deployment(env: &Env, name: &str) -> Option<Value> {
    env.member(name)
        .get(&["deployment", "test-deployment", "-n", "test-namespace"])
}

/// Waits until member1 and member2 run `want` replicas of `test-deployment`.
fn wait_replicas(env: &Env, want: [i64; 2], what: &str) {
    eventually(60, what, || {
        let got: Vec<Option<i64>> = ["member1", "member2"]
            .iter()
            .map(|m| deployment(env, m).and_then(|d| d["spec"]["replicas"].as_i64()))
            .collect();
        if got == [Some(want[0]), Some(want[1])] {
            Ok(())
        } else {
            Err(format!("replicas {got:?}"))
        }
    });
}

/// The member2 image override of sample1 survives the scheduler's `/spec/replicas` overrides.
fn member2_image(env: &Env) -> Option<String> {
    deployment(env, "member2").and_then(|d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .map(str::to_string)
    })
}

/// Mirrors KubeFed's example/scheduling (RSP totalReplicas 10, weights 2:3, rebalance) on
/// example/sample1's FederatedDeployment, the user guide's "Distribute total replicas in weighted
/// proportions" and "… also enforcing replica limits per cluster", and test/e2e/scheduling.go's
/// placement over ready clusters only.
#[test]
fn kubefed_scheduling_examples_place_and_rebalance() {
    if cellfed_e2e::skip("kubefed_scheduling_examples_place_and_rebalance", false) {
        return;
    }
    let mut env = Env::start(2);
    for f in [
        "sample1/namespace.yaml",
        "sample1/federatednamespace.yaml",
        "sample1/federateddeployment.yaml",
    ] {
        apply(&env, f);
    }
    // sample1 alone: 3 replicas in member1, the override's 5 in member2
    wait_replicas(&env, [3, 5], "sample1's replicas (3, and 5 by override)");

    // example/scheduling: 10 replicas weighted 2:3
    apply(&env, "scheduling/federateddeployment-rsp.yaml");
    wait_replicas(&env, [4, 6], "the RSP's 10 replicas split 2:3");
    assert_eq!(member2_image(&env).as_deref(), Some("nginx:1.17.0-alpine"));

    // the user guide: 9 replicas weighted 1:2, then the same capped by member1's minReplicas 4
    apply(&env, "scheduling/userguide-weighted.yaml");
    wait_replicas(&env, [3, 6], "9 replicas split 1:2");
    apply(&env, "scheduling/userguide-min-max.yaml");
    wait_replicas(&env, [4, 5], "9 replicas with member1's minReplicas 4");

    // back to example/scheduling (rebalance: true); member2 goes NotReady: member1 gets all 10
    apply(&env, "scheduling/federateddeployment-rsp.yaml");
    wait_replicas(&env, [4, 6], "the RSP's 10 replicas split 2:3 again");
    env.member_mut("member2").stop();
    eventually(
        60,
        "all 10 replicas on member1, placement member1 only",
        || {
            let fd = env
                .host
                .get(&[
                    "federateddeployments.v1beta1.types.kubefed.io",
                    "test-deployment",
                    "-n",
                    "test-namespace",
                ])
                .ok_or("no federated deployment")?;
            let placement = &fd["spec"]["placement"]["clusters"];
            let replicas = deployment(&env, "member1").and_then(|d| d["spec"]["replicas"].as_i64());
            if *placement == serde_json::json!([{"name": "member1"}]) && replicas == Some(10) {
                Ok(())
            } else {
                Err(format!(
                    "placement {placement}, member1 replicas {replicas:?}"
                ))
            }
        },
    );

    // member2 Ready again: the weights apply again
    env.member_mut("member2").restart();
    wait_replicas(&env, [4, 6], "4 and 6 once member2 is back");
}
