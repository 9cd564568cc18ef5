#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The controller leader killed (SIGKILL) in the middle of a 500-resource change across three
//! members: the standby takes the lease and finishes the change; every member object ends at the
//! new template and no member holds a stray or duplicate object.

use std::collections::BTreeMap;
use std::time::Instant;

use cellfed_e2e::{Apiserver, Env, eventually, free_port, kubectl_raw};

const RESOURCES: usize = 500;
const WRITES: &[&str] = &["CREATE", "UPDATE", "PATCH", "DELETE"];

/// `RESOURCES` FederatedConfigMaps `cfg-i` in `app`, placed on member1..3, at `value`.
fn fed_configmaps(value: &str) -> String {
    (0..RESOURCES)
        .map(|i| {
            format!(
                "---\napiVersion: types.kubefed.io/v1beta1\nkind: FederatedConfigMap\nmetadata: {{name: cfg-{i}, namespace: app}}\nspec:\n  template: {{data: {{value: \"{value}\"}}}}\n  placement: {{clusters: [{{name: member1}}, {{name: member2}}, {{name: member3}}]}}\n"
            )
        })
        .collect()
}

/// Every ConfigMap `cfg-*` the member holds, in any namespace: `namespace/name` → its values
/// (more than one value for a key would be a duplicate).
fn member_configmaps(m: &Apiserver) -> BTreeMap<String, Vec<String>> {
    let list = m
        .get(&["configmaps", "-A"])
        .expect("configmaps listed in the member");
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for o in list["items"].as_array().into_iter().flatten() {
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        if name.starts_with("cfg-") {
            let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
            let value = o["data"]["value"].as_str().unwrap_or_default();
            out.entry(format!("{ns}/{name}"))
                .or_default()
                .push(value.to_string());
        }
    }
    out
}

/// Whether every member holds exactly `app/cfg-0..RESOURCES`, each once at `value`.
fn converged(env: &Env, value: &str) -> Result<(), String> {
    let want: BTreeMap<String, Vec<String>> = (0..RESOURCES)
        .map(|i| (format!("app/cfg-{i}"), vec![value.to_string()]))
        .collect();
    for m in &env.members {
        let got = member_configmaps(m);
        if got != want {
            let wrong = got.iter().filter(|(k, v)| want.get(*k) != Some(v)).count();
            let missing = want.keys().filter(|k| !got.contains_key(*k)).count();
            return Err(format!(
                "{}: {} objects, {wrong} stray or not at {value:?}, {missing} missing",
                m.name,
                got.len()
            ));
        }
    }
    Ok(())
}

fn member_writes(env: &Env) -> u64 {
    env.members.iter().map(|m| m.requests_of(WRITES)).sum()
}

#[test]
fn a_leader_killed_mid_change_is_finished_by_the_standby() {
    if cellfed_e2e::skip("a_leader_killed_mid_change", false) {
        return;
    }
    let mut env = Env::start(3);
    env.stop_controller();
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: app}\n",
    );
    let election = [
        "--leader-elect",
        // long enough that a loaded machine does not make the leader lose it on its own
        "--leader-elect-lease-duration=10s",
        "--leader-elect-renew-deadline=8s",
        "--leader-elect-retry-period=1s",
    ];
    let mut a = env.spawn_controller(free_port(), "controller-a.log", &election);
    let a_id = format!("cellfed-controller-{}", a.id());
    eventually(60, "a holds the lease", || match env.lease_holder() {
        Some(h) if h == a_id => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let mut b = env.spawn_controller(free_port(), "controller-b.log", &election);
    let b_id = format!("cellfed-controller-{}", b.id());

    let start = Instant::now();
    env.host
        .kubectl_stdin(&["apply", "-f", "-"], &fed_configmaps("1"));
    eventually(300, "a propagates 500 resources to 3 members", || {
        converged(&env, "1")
    });
    eprintln!("initial propagation: {:?}", start.elapsed());

    // the change, applied in the background while the leader works on it
    let before = member_writes(&env);
    let kubeconfig = env.host.kubeconfig();
    let change = std::thread::spawn(move || {
        kubectl_raw(
            &kubeconfig,
            Some(&fed_configmaps("2")),
            &["apply", "-f", "-"],
        )
    });
    // a third of the way through
    eventually(300, "the leader a third through the change", || {
        let n = member_writes(&env) - before;
        if n >= RESOURCES as u64 {
            Ok(())
        } else {
            Err(format!(
                "{n} member writes, kubectl apply finished: {}",
                change.is_finished()
            ))
        }
    });
    assert!(
        a.try_wait().unwrap().is_none(),
        "the leader exited on its own before it was killed"
    );
    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap();
    let killed = Instant::now();
    let by_leader = member_writes(&env) - before;
    assert!(
        by_leader < (3 * RESOURCES) as u64,
        "the leader finished before it was killed ({by_leader} member writes)"
    );
    let (ok, _, err) = change.join().unwrap();
    assert!(ok, "kubectl apply of the change: {err}");

    eventually(300, "b takes over and finishes the change", || {
        let holder = env.lease_holder();
        if holder.as_deref() != Some(b_id.as_str()) {
            return Err(format!("holder {holder:?}"));
        }
        converged(&env, "2")
    });
    eprintln!(
        "leader killed after {by_leader} of {} member updates; the standby finished {:?} after the kill",
        3 * RESOURCES,
        killed.elapsed()
    );
    let _ = b.kill();
    let _ = b.wait();
}
