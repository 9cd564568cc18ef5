#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The event-driven controller against real processes: an idle federation costs its members no
//! LIST and no write (watches and health probes only), drift in a member is undone from the
//! member's watch event, a member restarted converges while the others stay fast, a member whose
//! traffic stalls delays no other, a paused leader is replaced and writes nothing once resumed,
//! and FederatedTypeConfigs switch propagation on and off at runtime.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cellfed_e2e::{Apiserver, Env, eventually, free_port, http_get};

const WRITES: &[&str] = &["CREATE", "UPDATE", "PATCH", "DELETE"];

fn fed_configmap(name: &str, ns: &str, clusters: &[&str], value: &str) -> String {
    let clusters: Vec<String> = clusters.iter().map(|c| format!("{{name: {c}}}")).collect();
    format!(
        "---\napiVersion: types.kubefed.io/v1beta1\nkind: FederatedConfigMap\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  template: {{data: {{value: \"{value}\"}}}}\n  placement: {{clusters: [{}]}}\n",
        clusters.join(", ")
    )
}

fn namespace(env: &Env, ns: &str) {
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"),
    );
}

/// The `value` of configmap `ns/name` in `m`, if present.
fn value_in(m: &Apiserver, ns: &str, name: &str) -> Option<String> {
    m.get(&["configmap", name, "-n", ns])
        .and_then(|v| v["data"]["value"].as_str().map(str::to_string))
}

fn set_value(env: &Env, ns: &str, name: &str, value: &str) {
    env.host.kubectl(&[
        "patch",
        "federatedconfigmaps.v1beta1.types.kubefed.io",
        name,
        "-n",
        ns,
        "--type=merge",
        "-p",
        &format!("{{\"spec\":{{\"template\":{{\"data\":{{\"value\":\"{value}\"}}}}}}}}"),
    ]);
}

fn metric(port: u16, name: &str) -> u64 {
    http_get(&format!("http://127.0.0.1:{port}/metrics"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} "))?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn idle_members_see_no_list_and_no_write_drift_is_undone_and_a_restarted_member_converges() {
    if cellfed_e2e::skip("idle_members_see_no_list_and_no_write", false) {
        return;
    }
    let mut env = Env::start(3);
    namespace(&env, "bulk");
    let all = ["member1", "member2", "member3"];
    let mut docs = String::new();
    for i in 0..200 {
        docs.push_str(&fed_configmap(
            &format!("cm-{i}"),
            "bulk",
            &all,
            &i.to_string(),
        ));
    }
    // placed on no cluster at all: its status is written once, then never again
    docs.push_str(&fed_configmap("nowhere", "bulk", &[], "x"));
    env.host.kubectl_stdin(&["apply", "-f", "-"], &docs);
    eventually(
        180,
        "200 configmaps in each member, statuses written",
        || {
            for m in &env.members {
                let list = m
                    .get(&["configmaps", "-n", "bulk", "-l", "kubefed.io/managed=true"])
                    .ok_or("list failed")?;
                let n = list["items"].as_array().map_or(0, Vec::len);
                if n != 200 {
                    return Err(format!("{}: {n}/200", m.name));
                }
            }
            let nowhere = env
                .host
                .get(&[
                    "federatedconfigmaps.v1beta1.types.kubefed.io",
                    "nowhere",
                    "-n",
                    "bulk",
                ])
                .ok_or("no nowhere")?;
            let last = env
                .host
                .get(&[
                    "federatedconfigmaps.v1beta1.types.kubefed.io",
                    "cm-199",
                    "-n",
                    "bulk",
                ])
                .ok_or("no cm-199")?;
            if nowhere["status"]["conditions"].is_array()
                && last["status"]["rollout"]["summary"] == "3/3"
            {
                Ok(())
            } else {
                Err("statuses not written yet".into())
            }
        },
    );

    // the measured idle window: 20 s in which nothing changes
    let counts = |env: &Env| -> Vec<(u64, u64)> {
        env.members
            .iter()
            .map(|m| (m.requests_of(&["LIST"]), m.requests_of(WRITES)))
            .collect()
    };
    let before = counts(&env);
    let status_before = metric(env.metrics_port, "cellfed_status_writes_total");
    let host_before = env.host.requests_of(WRITES);
    std::thread::sleep(Duration::from_secs(20));
    let after = counts(&env);
    let status_after = metric(env.metrics_port, "cellfed_status_writes_total");
    let host_after = env.host.requests_of(WRITES);
    println!("idle 20 s: member (LIST, writes) before {before:?} after {after:?}");
    println!(
        "idle 20 s: status writes {status_before} -> {status_after}, host writes {host_before} -> {host_after}"
    );
    assert_eq!(
        before, after,
        "members saw LIST or write requests while idle"
    );
    assert_eq!(status_before, status_after, "status written while idle");
    assert_eq!(host_before, host_after, "host written while idle");

    // a direct edit of a managed object is undone from the member's watch event (the resync
    // period is 10 minutes)
    env.member("member1").kubectl(&[
        "patch",
        "configmap",
        "cm-7",
        "-n",
        "bulk",
        "--type=merge",
        "-p",
        "{\"data\":{\"value\":\"tampered\"}}",
    ]);
    eventually(30, "drift undone in member1", || {
        match value_in(env.member("member1"), "bulk", "cm-7").as_deref() {
            Some("7") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });

    // a member down: the others still get a change at once; back, it converges
    env.member_mut("member2").stop();
    let started = Instant::now();
    set_value(&env, "bulk", "cm-1", "changed");
    eventually(30, "the change in member1 and member3", || {
        for m in ["member1", "member3"] {
            let v = value_in(env.member(m), "bulk", "cm-1");
            if v.as_deref() != Some("changed") {
                return Err(format!("{m}: {v:?}"));
            }
        }
        Ok(())
    });
    println!(
        "member2 down: template edit reached member1 and member3 in {:?}",
        started.elapsed()
    );
    env.member_mut("member2").restart();
    eventually(
        60,
        "member2 converges after its restart",
        || match value_in(env.member("member2"), "bulk", "cm-1").as_deref() {
            Some("changed") => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}

/// A TCP proxy on loopback that can stall: while stalled it keeps every connection open and
/// accepts new ones, but forwards nothing (a member whose LIST, WATCH and probes hang).
struct StallingProxy {
    port: u16,
    stalled: Arc<AtomicBool>,
}

impl StallingProxy {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stalled = Arc::new(AtomicBool::new(false));
        let flag = stalled.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let flag = flag.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            while flag.load(Ordering::Relaxed) {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Self { port, stalled }
    }

    fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::Relaxed);
    }
}

#[test]
fn a_member_whose_traffic_stalls_delays_no_other() {
    if cellfed_e2e::skip("a_member_whose_traffic_stalls_delays_no_other", false) {
        return;
    }
    let env = Env::start(2);
    let slow = Apiserver::start_member("member3", env.dir.path().join("member3"), 0);
    let proxy = StallingProxy::start(slow.port);
    env.join_at(
        &slow,
        Some(&format!("https://127.0.0.1:{}", proxy.port)),
        &[],
    );
    namespace(&env, "app");
    let all = ["member1", "member2", "member3"];
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        &fed_configmap("cfg", "app", &all, "1"),
    );
    eventually(60, "cfg in all three members", || {
        for m in env.members.iter().chain([&slow]) {
            if value_in(m, "app", "cfg").as_deref() != Some("1") {
                return Err(m.name.clone());
            }
        }
        Ok(())
    });

    // member3's watches, probes and writes now hang
    proxy.stall(true);
    for round in 2..=3 {
        let value = round.to_string();
        let started = Instant::now();
        set_value(&env, "app", "cfg", &value);
        eventually(30, "the edit in member1 and member2", || {
            for m in &env.members {
                let v = value_in(m, "app", "cfg");
                if v.as_deref() != Some(value.as_str()) {
                    return Err(format!("{}: {v:?}", m.name));
                }
            }
            Ok(())
        });
        println!(
            "member3 stalled: edit {round} reached member1 and member2 in {:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        value_in(&slow, "app", "cfg").as_deref(),
        Some("1"),
        "nothing passes a stalled proxy"
    );
    // the stall ends: member3 converges
    proxy.stall(false);
    eventually(
        120,
        "member3 converges once its traffic flows",
        || match value_in(&slow, "app", "cfg").as_deref() {
            Some("3") => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}

fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

#[test]
fn a_paused_leader_is_replaced_and_writes_nothing_when_it_resumes() {
    if cellfed_e2e::skip("a_paused_leader_is_replaced", false) {
        return;
    }
    let mut env = Env::start(2);
    env.stop_controller();
    namespace(&env, "app");
    let election = [
        "--leader-elect",
        "--leader-elect-lease-duration=4s",
        "--leader-elect-renew-deadline=3s",
        "--leader-elect-retry-period=500ms",
    ];
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = env.spawn_controller(port_a, "controller-a.log", &election);
    let a_id = format!("cellfed-controller-{}", a.id());
    eventually(60, "a holds the lease", || match env.lease_holder() {
        Some(h) if h == a_id => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let mut b = env.spawn_controller(port_b, "controller-b.log", &election);
    let b_id = format!("cellfed-controller-{}", b.id());
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        &fed_configmap("cfg", "app", &["member1", "member2"], "1"),
    );
    eventually(60, "a propagates", || {
        for m in &env.members {
            if value_in(m, "app", "cfg").as_deref() != Some("1") {
                return Err(m.name.clone());
            }
        }
        Ok(())
    });
    assert_eq!(
        metric(port_b, "cellfed_reconciles_total"),
        0,
        "the standby reconciled"
    );

    // the leader freezes past its lease; a change made meanwhile is converged by the standby
    signal(&a, "-STOP");
    set_value(&env, "app", "cfg", "2");
    eventually(60, "b takes over and converges the change", || {
        let holder = env.lease_holder();
        if holder.as_deref() != Some(b_id.as_str()) {
            return Err(format!("holder {holder:?}"));
        }
        for m in &env.members {
            if value_in(m, "app", "cfg").as_deref() != Some("2") {
                return Err(m.name.clone());
            }
        }
        Ok(())
    });
    let writes =
        |env: &Env| -> Vec<u64> { env.members.iter().map(|m| m.requests_of(WRITES)).collect() };
    let before = writes(&env);
    // the old leader resumes: it finds its lease past the renew deadline, writes nothing, exits
    signal(&a, "-CONT");
    eventually(30, "the old leader exits", || match a.try_wait() {
        Ok(Some(status)) => Ok(status),
        _ => Err("still running".into()),
    });
    assert_eq!(
        before,
        writes(&env),
        "member writes after the old leader resumed"
    );
    let log = std::fs::read_to_string(env.dir.path().join("controller-a.log")).unwrap_or_default();
    assert!(log.contains("leader lease lost"), "{log}");
    let _ = b.kill();
    let _ = b.wait();
}

#[test]
fn federated_type_configs_switch_propagation_at_runtime() {
    if cellfed_e2e::skip(
        "federated_type_configs_switch_propagation_at_runtime",
        false,
    ) {
        return;
    }
    let env = Env::start(1);
    namespace(&env, "app");
    let ftc_state = |want: &str| {
        eventually(60, &format!("configmaps FTC {want}"), || {
            let ftc = env
                .host
                .get(&[
                    "federatedtypeconfig",
                    "configmaps",
                    "-n",
                    "kube-federation-system",
                ])
                .ok_or("no FTC")?;
            let state = ftc["status"]["propagationController"]
                .as_str()
                .unwrap_or_default();
            if state == want {
                Ok(())
            } else {
                Err(state.to_string())
            }
        });
    };
    let propagation = |mode: &str| {
        env.host.kubectl(&[
            "patch",
            "federatedtypeconfig",
            "configmaps",
            "-n",
            "kube-federation-system",
            "--type=merge",
            "-p",
            &format!("{{\"spec\":{{\"propagation\":\"{mode}\"}}}}"),
        ]);
    };
    propagation("Disabled");
    ftc_state("NotRunning");
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        &fed_configmap("cfg", "app", &["member1"], "1"),
    );
    // enabled at runtime: the waiting resource propagates, no restart
    propagation("Enabled");
    ftc_state("Running");
    eventually(
        60,
        "cfg propagated once the type is enabled",
        || match value_in(&env.members[0], "app", "cfg").as_deref() {
            Some("1") => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    // disabled again: an edit is not propagated
    propagation("Disabled");
    ftc_state("NotRunning");
    set_value(&env, "app", "cfg", "2");
    let writes = env.members[0].requests_of(WRITES);
    std::thread::sleep(Duration::from_secs(5)); // the window in which nothing may happen
    assert_eq!(
        value_in(&env.members[0], "app", "cfg").as_deref(),
        Some("1")
    );
    assert_eq!(env.members[0].requests_of(WRITES), writes);
    // and enabled once more, it catches up
    propagation("Enabled");
    eventually(60, "cfg caught up", || {
        match value_in(&env.members[0], "app", "cfg").as_deref() {
            Some("2") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}
