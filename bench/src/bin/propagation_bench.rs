//! Propagation benchmark: N FederatedDeployments × M member clusters (real processes: a host
//! apiserver, M `cellfed member`s, the controller): time to converge, member writes, apply→member
//! latency p50/p99, controller CPU and peak RSS; then a controller restart: time to resync and
//! member writes (target 0). See bench/README.md.
//!
//! `cargo build -p cellfed-cli && cargo run --release -p cellfed-bench --bin propagation_bench -- --resources 1000 --members 10`

use std::time::{Duration, Instant};

use anyhow::Result;
use cellfed_e2e::{Env, eventually};
use clap::Parser;

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// Federated deployments.
    #[arg(long, default_value_t = 1000)]
    resources: usize,
    /// Member clusters.
    #[arg(long, default_value_t = 10)]
    members: usize,
    /// Single-resource updates timed for the apply→member latency.
    #[arg(long, default_value_t = 50)]
    samples: usize,
}

/// Writes (create/update/patch/delete of deployments) a member served over HTTP.
fn member_writes(env: &Env) -> u64 {
    env.members
        .iter()
        .map(|m| {
            ["CREATE", "UPDATE", "PATCH", "DELETE"]
                .iter()
                .map(|v| m.requests(v, "deployments"))
                .sum::<u64>()
        })
        .sum()
}

fn deployments_in(env: &Env) -> usize {
    env.members
        .iter()
        .map(|m| {
            m.kubectl(&["get", "deployments", "-n", "bench", "-o", "name"])
                .lines()
                .count()
        })
        .sum()
}

/// (CPU seconds, peak RSS in MiB) of a process, from /proc.
fn cpu_and_rss(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, rss_kb / 1024.0)
}

fn doc(i: usize, members: usize, image: &str) -> String {
    let clusters: Vec<String> = (1..=members)
        .map(|m| format!("{{name: member{m}}}"))
        .collect();
    format!(
        "---\napiVersion: types.kubefed.io/v1beta1\nkind: FederatedDeployment\nmetadata: {{name: d{i:05}, namespace: bench}}\nspec:\n  template:\n    spec:\n      replicas: 1\n      selector: {{matchLabels: {{app: d{i}}}}}\n      template:\n        metadata: {{labels: {{app: d{i}}}}}\n        spec: {{containers: [{{name: c, image: \"{image}\"}}]}}\n  placement: {{clusters: [{}]}}\n",
        clusters.join(", ")
    )
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut env = Env::start(args.members);
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: bench}\n",
    );
    let want = args.resources * args.members;

    // converge
    let writes_before = member_writes(&env);
    let started = Instant::now();
    for chunk in (0..args.resources).collect::<Vec<_>>().chunks(200) {
        let docs: String = chunk
            .iter()
            .map(|i| doc(*i, args.members, "app:1"))
            .collect();
        env.host.kubectl_stdin(&["apply", "-f", "-"], &docs);
    }
    let applied = started.elapsed();
    eventually(1800, "convergence", || {
        let n = deployments_in(&env);
        if n == want {
            Ok(())
        } else {
            Err(format!("{n}/{want}"))
        }
    });
    let converge = started.elapsed();
    let writes = member_writes(&env) - writes_before;

    // apply → member latency, one resource at a time
    let mut lat = Vec::new();
    for s in 0..args.samples {
        let i = s % args.resources;
        let image = format!("app:{}", s + 2);
        let t = Instant::now();
        env.host
            .kubectl_stdin(&["apply", "-f", "-"], &doc(i, args.members, &image));
        let m = &env.members[s % args.members];
        loop {
            let d = m.get(&["deployment", &format!("d{i:05}"), "-n", "bench"]);
            if d.is_some_and(|d| {
                d["spec"]["template"]["spec"]["containers"][0]["image"] == image.as_str()
            }) {
                break;
            }
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(60),
                "sample {s} never arrived"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    let (cpu, rss) = cpu_and_rss(env.controller_pid().unwrap_or(0));
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];

    // restart: time until one full pass, and member writes meanwhile
    let before = member_writes(&env);
    let t = Instant::now();
    env.start_controller();
    eventually(600, "resync after restart", || {
        if env.reconciles() >= args.resources as u64 {
            Ok(())
        } else {
            Err(format!("{} reconciles", env.reconciles()))
        }
    });
    let resync = t.elapsed();
    let restart_writes = member_writes(&env) - before;

    println!("| measure | value |\n|---|---|");
    println!(
        "| federated deployments × members | {} × {} = {want} member objects |",
        args.resources, args.members
    );
    println!(
        "| apply of all resources (kubectl, host) | {:.1} s |",
        applied.as_secs_f64()
    );
    println!(
        "| time to converge (apply start → every member object present) | {:.1} s |",
        converge.as_secs_f64()
    );
    println!(
        "| member writes during convergence | {writes} ({:.2} per member object) |",
        writes as f64 / want as f64
    );
    println!(
        "| apply→member latency ({} single updates) | p50 {:.0} ms, p99 {:.0} ms |",
        lat.len(),
        pct(0.5).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0
    );
    println!("| controller CPU during convergence + samples | {cpu:.1} s |");
    println!("| controller peak RSS | {rss:.0} MiB |");
    println!(
        "| restart: time to reconcile every resource once | {:.1} s |",
        resync.as_secs_f64()
    );
    println!("| restart: member writes | {restart_writes} |");
    Ok(())
}
