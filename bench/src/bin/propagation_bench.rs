//! Propagation benchmark: N FederatedDeployments × M member clusters (real processes: a host
//! apiserver with the admission webhook, M `cellfed member`s, the controller):
//! - convergence: time to converge, lag from the last object accepted by the host to the last
//!   member object present, member writes (target: exactly one per member object);
//! - apply→member latency p50/p99 over single template edits made while every member object
//!   exists (kube-rs client: patch on the host, then GET the member object every 2 ms);
//! - member LIST requests after the initial sync (target 0), controller CPU and peak RSS;
//! - `kubectl apply` of N FederatedDeployments vs N ConfigMaps to the same host, client-side
//!   and server-side;
//! - a controller restart: member writes (target 0) and time until every resource was
//!   reconciled with synced member caches.
//!
//! `cargo build --release -p cellfed-cli -p cellfed-bench && CELLFED_BIN_DIR=target/release
//! target/release/propagation_bench --resources 1000 --members 10 --samples 100`

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use cellfed_e2e::{Apiserver, Env, eventually, http_get, request_lines};
use clap::Parser;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;

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
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// Skip the kubectl apply comparison (FederatedDeployments vs ConfigMaps).
    #[arg(long)]
    no_apply_comparison: bool,
    /// Before the comparison with everything running, compare the applies on the host alone
    /// (no admission webhook, no controller) and with the webhook only: where a federated
    /// write's extra cost comes from.
    #[arg(long, conflicts_with = "no_apply_comparison")]
    apply_breakdown: bool,
    /// Serve every member from one `cellfed member --count N` process (100 member processes are
    /// too heavy for a small machine).
    #[arg(long)]
    one_member_process: bool,
    /// Reach every member through a `cellfed tunnel-server` and one `cellfed agent` per member
    /// (KubeFedCluster proxyURL), as members behind NAT are.
    #[arg(long, conflicts_with = "one_member_process")]
    tunnel: bool,
    /// The host apiserver's `--sqlite-synchronous` (`full`, its default, or `normal`): what the
    /// durability of every commit costs the applies (the host is restarted with it first).
    #[arg(long)]
    host_sqlite_synchronous: Option<String>,
}

const WRITES: &[&str] = &["CREATE", "UPDATE", "PATCH", "DELETE"];

/// The members' request counters, read over one kube client per member (a kubectl process per
/// member and poll would load the machine more than what is measured when there are 100).
struct MemberCounters {
    clients: Vec<kube::Client>,
}

impl MemberCounters {
    async fn connect(env: &Env) -> Result<Self> {
        let mut clients = Vec::new();
        for m in &env.members {
            clients.push(client(m).await?);
        }
        Ok(Self { clients })
    }

    /// Sum over every member of the `apiserver_request_total` samples `keep` selects.
    async fn sum(&self, keep: impl Fn(&[&str]) -> bool) -> u64 {
        let texts = futures::future::join_all(self.clients.iter().map(|c| {
            let req = http::Request::get("/metrics").body(Vec::new());
            async move {
                match req {
                    Ok(req) => c.request_text(req).await.unwrap_or_default(),
                    Err(_) => String::new(),
                }
            }
        }))
        .await;
        texts
            .iter()
            .flat_map(|t| request_lines(t))
            .filter(|(labels, _)| keep(labels))
            .map(|(_, n)| n)
            .sum()
    }

    /// Writes of deployments the members served.
    async fn writes(&self) -> u64 {
        self.sum(|l| {
            l.contains(&"resource=\"deployments\"")
                && WRITES
                    .iter()
                    .any(|v| l.contains(&format!("verb=\"{v}\"").as_str()))
        })
        .await
    }

    /// LIST requests the members served, every resource.
    async fn lists(&self) -> u64 {
        self.sum(|l| l.contains(&"verb=\"LIST\"")).await
    }

    /// Deployments created in the members so far.
    async fn creates(&self) -> u64 {
        self.sum(|l| l.contains(&"verb=\"CREATE\"") && l.contains(&"resource=\"deployments\""))
            .await
    }
}

/// (CPU seconds, peak RSS in MiB, current RSS in MiB) of a process, from /proc.
fn cpu_and_rss(pid: u32) -> (f64, f64, f64) {
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
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (cpu, kb("VmHWM:"), kb("VmRSS:"))
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

/// A federated deployment placed nowhere and a ConfigMap of similar size, for the apply
/// comparison, in namespaces `apply-fed{suffix}` and `apply-cm{suffix}`.
fn apply_docs(n: usize, suffix: &str) -> (String, String) {
    let mut feds = String::new();
    let mut cms = String::new();
    for i in 0..n {
        feds.push_str(&format!(
            "---\napiVersion: types.kubefed.io/v1beta1\nkind: FederatedDeployment\nmetadata: {{name: a{i:05}, namespace: apply-fed{suffix}}}\nspec:\n  template:\n    spec:\n      replicas: 1\n      selector: {{matchLabels: {{app: a{i}}}}}\n      template:\n        metadata: {{labels: {{app: a{i}}}}}\n        spec: {{containers: [{{name: c, image: \"app:1\"}}]}}\n  placement: {{clusters: []}}\n"
        ));
        cms.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a{i:05}, namespace: apply-cm{suffix}}}\ndata: {{replicas: \"1\", selector: a{i}, image: \"app:1\", container: c}}\n"
        ));
    }
    (feds, cms)
}

/// `kubectl apply` of `n` FederatedDeployments vs `n` ConfigMaps, client-side then server-side
/// (a re-apply), in fresh namespaces named with `suffix`, then client-side once more into
/// further fresh namespaces with `--validate=false`: report rows labelled `stage`. The last pair
/// is the server's cost alone: kubectl before 1.34 re-parses the whole OpenAPI document of an
/// object's group-version for every object it validates (kubernetes/kubernetes#127095), and
/// core/v1's document is by far the largest, so with validation ConfigMaps pay more in kubectl
/// than FederatedDeployments do.
fn compare_applies(env: &Env, n: usize, suffix: &str, stage: &str) -> Vec<String> {
    let unvalidated = format!("{suffix}-nv");
    for s in [suffix, unvalidated.as_str()] {
        for ns in [format!("apply-fed{s}"), format!("apply-cm{s}")] {
            env.host.kubectl_stdin(
                &["apply", "-f", "-"],
                &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"),
            );
        }
    }
    let apply = |docs: &str, extra: &[&str]| {
        let mut a = vec!["apply", "-f", "-"];
        a.extend_from_slice(extra);
        timed(|| {
            env.host.kubectl_stdin(&a, docs);
        })
    };
    let (feds, cms) = apply_docs(n, suffix);
    let cm_client = apply(&cms, &[]);
    let fed_client = apply(&feds, &[]);
    let cm_server = apply(&cms, &["--server-side", "--force-conflicts"]);
    let fed_server = apply(&feds, &["--server-side", "--force-conflicts"]);
    let (feds, cms) = apply_docs(n, &unvalidated);
    // the other order this time: neither kind always goes first
    let store_at_start = host_store_stats(env);
    let fed_bare = apply(&feds, &["--validate=false"]);
    let store_after_feds = host_store_stats(env);
    let cm_bare = apply(&cms, &["--validate=false"]);
    let store_after_cms = host_store_stats(env);
    vec![
        format!(
            "| kubectl apply of {n} objects, client-side (create), {stage} | FederatedDeployments {fed_client:.1} s vs ConfigMaps {cm_client:.1} s ({:.2}×) |",
            fed_client / cm_client
        ),
        format!(
            "| kubectl apply of the same {n}, server-side, {stage} | FederatedDeployments {fed_server:.1} s vs ConfigMaps {cm_server:.1} s ({:.2}×) |",
            fed_server / cm_server
        ),
        format!(
            "| kubectl apply --validate=false of {n} more, client-side (create), {stage} | FederatedDeployments {fed_bare:.1} s vs ConfigMaps {cm_bare:.1} s ({:.2}×) |",
            fed_bare / cm_bare
        ),
        format!(
            "| host store during the --validate=false applies, {stage} | FederatedDeployments {}; ConfigMaps {} |",
            store_after_feds.since(&store_at_start, fed_bare),
            store_after_cms.since(&store_after_feds, cm_bare),
        ),
    ]
}

/// The host store's writer counters (`apiserver_storage_*` on the host's /metrics).
#[derive(Debug, Default)]
struct StoreStats {
    commits: f64,
    writes: f64,
    busy_seconds: f64,
}

impl StoreStats {
    /// What happened between `before` and `self`, over `elapsed` seconds of wall clock.
    fn since(&self, before: &StoreStats, elapsed: f64) -> String {
        let (commits, writes) = (self.commits - before.commits, self.writes - before.writes);
        let busy = self.busy_seconds - before.busy_seconds;
        format!(
            "{writes:.0} writes in {commits:.0} commits ({:.2} per commit), writer busy {busy:.2} s of {elapsed:.1} s ({:.2} ms per write)",
            writes / commits.max(1.0),
            busy * 1000.0 / writes.max(1.0)
        )
    }
}

fn host_store_stats(env: &Env) -> StoreStats {
    let text = env.host.kubectl(&["get", "--raw", "/metrics"]);
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    };
    StoreStats {
        commits: value("apiserver_storage_commits_total"),
        writes: value("apiserver_storage_committed_writes_total"),
        busy_seconds: value("apiserver_storage_writer_busy_seconds_total"),
    }
}

fn timed(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

async fn client(server: &Apiserver) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(server.kubeconfig())?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await?;
    Ok(kube::Client::try_from(cfg)?)
}

/// Waits until `member` holds `name` with `image` (at most a minute).
async fn sample_arrived(member: &Api<DynamicObject>, name: &str, image: &str) -> Result<()> {
    let t = Instant::now();
    loop {
        let d = member.get_opt(name).await?;
        if d.is_some_and(|d| d.data["spec"]["template"]["spec"]["containers"][0]["image"] == image)
        {
            return Ok(());
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(60),
            "{name} never arrived"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Patches the image of one resource on the host and waits for it in one member; returns the
/// latency.
async fn sample(
    host: &Api<DynamicObject>,
    member: &Api<DynamicObject>,
    name: &str,
    image: &str,
) -> Result<Duration> {
    let patch = serde_json::json!({"spec": {"template": {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": image}]}}}}}});
    let t = Instant::now();
    host.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    sample_arrived(member, name, image).await?;
    Ok(t.elapsed())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Runtime::new()?;
    let mut env = if args.one_member_process {
        let mut env = Env::start(0);
        env.add_members_in_one_process(u16::try_from(args.members)?);
        env
    } else if args.tunnel {
        let mut env = Env::start(0);
        env.start_tunnel();
        for i in 1..=args.members {
            env.add_member_via_tunnel(&format!("member{i}"));
        }
        env
    } else {
        Env::start(args.members)
    };
    if let Some(level) = &args.host_sqlite_synchronous {
        env.host
            .restart_with_args(&[format!("--sqlite-synchronous={level}")]);
        println!("host apiserver: --sqlite-synchronous={level}");
    }
    for ns in ["bench", "apply-fed", "apply-cm"] {
        env.host.kubectl_stdin(
            &["apply", "-f", "-"],
            &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"),
        );
    }
    let want = (args.resources * args.members) as u64;
    // production health checks (KubeFed's defaults), not the tests' sub-second ones
    env.stop_controller();
    env.kubefed_health_checks();

    // kubectl apply: federated deployments vs configmaps, with the admission webhook and the
    // controller running (and, for --apply-breakdown, first without them)
    let mut apply_rows = Vec::new();
    if args.apply_breakdown {
        apply_rows.extend(compare_applies(&env, args.resources, "-bare", "host alone"));
        env.start_webhook();
        apply_rows.extend(compare_applies(
            &env,
            args.resources,
            "-webhook",
            "+ webhook",
        ));
    } else {
        env.start_webhook();
    }
    env.start_controller();
    if !args.no_apply_comparison {
        apply_rows.extend(compare_applies(
            &env,
            args.resources,
            "",
            "everything running",
        ));
    }

    // converge
    let counters = rt.block_on(MemberCounters::connect(&env))?;
    let member_writes = || rt.block_on(counters.writes());
    let member_creates = || rt.block_on(counters.creates());
    let member_lists = || rt.block_on(counters.lists());
    let writes_before = member_writes();
    let creates_before = member_creates();
    let started = Instant::now();
    for chunk in (0..args.resources).collect::<Vec<_>>().chunks(200) {
        let docs: String = chunk
            .iter()
            .map(|i| doc(*i, args.members, "app:1"))
            .collect();
        env.host.kubectl_stdin(&["apply", "-f", "-"], &docs);
    }
    let applied = started.elapsed();
    eventually(3600, "convergence", || {
        let n = member_creates() - creates_before;
        if n >= want {
            Ok(())
        } else {
            Err(format!("{n}/{want}"))
        }
    });
    let converge = started.elapsed();
    let writes = member_writes() - writes_before;
    let lists_after_sync = member_lists();

    // apply → member latency, one resource at a time, every member object present
    let lat = rt.block_on(async {
        let host = client(&env.host).await?;
        let ar = ApiResource {
            group: "types.kubefed.io".into(),
            version: "v1beta1".into(),
            api_version: "types.kubefed.io/v1beta1".into(),
            kind: "FederatedDeployment".into(),
            plural: "federateddeployments".into(),
        };
        let deployments = ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
        };
        let feds: Api<DynamicObject> = Api::namespaced_with(host, "bench", &ar);
        let mut members = Vec::new();
        for m in &env.members {
            members.push(Api::<DynamicObject>::namespaced_with(
                client(m).await?,
                "bench",
                &deployments,
            ));
        }
        let mut lat = Vec::new();
        for s in 0..args.samples {
            let i = (s * 7919) % args.resources;
            let member = &members[s % members.len()];
            let d = sample(
                &feds,
                member,
                &format!("d{i:05}"),
                &format!("app:{}", s + 2),
            )
            .await
            .with_context(|| format!("sample {s}"))?;
            lat.push(d);
        }
        // a sample waits for one member; let the last one reach every member before the
        // restart below counts writes, or its late writes would be counted as the restart's
        if let Some(s) = args.samples.checked_sub(1) {
            let name = format!("d{:05}", (s * 7919) % args.resources);
            let image = format!("app:{}", s + 2);
            for member in &members {
                sample_arrived(member, &name, &image).await?;
            }
        }
        anyhow::Ok(lat)
    })?;
    let mut lat = lat;
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    // every sample updated its resource in every member (one write each)
    let lists_after_samples = member_lists();
    let (cpu, rss, rss_now) = cpu_and_rss(env.controller_pid().unwrap_or(0));

    // restart: member writes and time until every resource was reconciled with synced caches
    let before = member_writes();
    let t = Instant::now();
    env.start_controller();
    let metrics = format!("http://127.0.0.1:{}/metrics", env.metrics_port);
    eventually(1200, "resync after restart", || {
        let n: u64 = http_get(&metrics)?
            .lines()
            .find_map(|l| l.strip_prefix("cellfed_synced_reconciles_total "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if n >= args.resources as u64 {
            Ok(())
        } else {
            Err(format!("{n} synced reconciles"))
        }
    });
    let resync = t.elapsed();
    let restart_writes = member_writes() - before;
    let (_, rss_restart, _) = cpu_and_rss(env.controller_pid().unwrap_or(0));

    println!("| measure | value |\n|---|---|");
    println!(
        "| federated deployments × members | {} × {} = {want} member objects |",
        args.resources, args.members
    );
    println!(
        "| members reached | {} |",
        if args.tunnel {
            "through the tunnel (one agent per member)"
        } else {
            "directly"
        }
    );
    for row in &apply_rows {
        println!("{row}");
    }
    println!(
        "| apply of all resources (kubectl, host) | {:.1} s |",
        applied.as_secs_f64()
    );
    println!(
        "| time to converge (apply start → every member object present) | {:.1} s |",
        converge.as_secs_f64()
    );
    println!(
        "| lag: last object accepted by the host → last member object present | {:.1} s |",
        (converge - applied).as_secs_f64()
    );
    println!(
        "| member writes during convergence | {writes} ({:.2} per member object) |",
        writes as f64 / want as f64
    );
    println!(
        "| apply→member latency ({} single edits, all member objects present) | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms |",
        lat.len(),
        pct(0.5).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
    println!(
        "| member LIST requests after the initial sync (during the samples) | {} |",
        lists_after_samples - lists_after_sync
    );
    println!("| controller CPU (convergence + samples) | {cpu:.1} s |");
    println!(
        "| controller RSS: peak / now | {rss:.0} MiB / {rss_now:.0} MiB ({:.1} KiB per member object) |",
        rss_now * 1024.0 / want as f64
    );
    println!(
        "| restart: time until every resource reconciled with synced caches | {:.1} s |",
        resync.as_secs_f64()
    );
    println!("| restart: member writes | {restart_writes} |");
    println!("| restart: controller peak RSS | {rss_restart:.0} MiB |");
    if let Some(pid) = env.shared_members_pid() {
        let (cpu, rss, _) = cpu_and_rss(pid);
        println!("| the one member process: CPU / peak RSS | {cpu:.1} s / {rss:.0} MiB |");
    }
    Ok(())
}
