//! Multi-cluster end-to-end harness: starts the real binaries (`cellfed apiserver` for the host and
//! each member, `cellfed controller`) as separate processes on loopback, joins the members, and
//! drives everything with kubectl as a user would. Processes are killed when the [`Env`] drops.
//!
//! Build the binaries first (`cargo build -p cellfed-cli`); `scripts/test.sh` does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod galera;
pub mod provider;
pub use provider::{Provider, provider, skip};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A built binary of the workspace (`cellfed`, `kubectl-cellfed`).
pub fn binary(name: &str) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    // the benches point CELLFED_BIN_DIR at the release build
    let dir =
        std::env::var_os("CELLFED_BIN_DIR").map_or_else(|| target.join("debug"), PathBuf::from);
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p cellfed-cli` first",
        path.display()
    );
    path
}

/// Polls `f` until it returns Some, or panics after `secs` with `what` and the last value seen.
pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let last = match f() {
            Ok(v) => return v,
            Err(e) => e,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}; last: {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One `cellfed apiserver` process (the host or a member).
pub struct Apiserver {
    /// Short name (`host`, `member1`…).
    pub name: String,
    /// Its data directory (kubeconfig, state.db).
    pub data_dir: PathBuf,
    /// Its port (kept across restarts).
    pub port: u16,
    child: Option<Child>,
    command: String,
}

impl Apiserver {
    /// Starts `cellfed apiserver` in `data_dir` on `port` (0 = pick one), waits until ready.
    pub fn start(name: &str, data_dir: PathBuf, port: u16) -> Self {
        Self::start_as("apiserver", name, data_dir, port)
    }

    /// Starts `cellfed member` (a simulated member cluster) the same way.
    /// With `E2E_PROVIDER=kind` the member is the kind cluster `cellfed-e2e-<name>` instead.
    pub fn start_member(name: &str, data_dir: PathBuf, port: u16) -> Self {
        if provider() == Provider::Kind {
            return Self::kind(name, data_dir);
        }
        Self::start_as("member", name, data_dir, port)
    }

    /// A member served by a process someone else owns (`cellfed member --count N`): waits until
    /// its kubeconfig exists and it is ready. It cannot be stopped or restarted on its own.
    pub fn attach(name: &str, data_dir: PathBuf) -> Self {
        let mut server = Self {
            name: name.into(),
            data_dir,
            port: 0,
            child: None,
            command: "shared".into(),
        };
        let kubeconfig = server.kubeconfig();
        eventually(120, &format!("{name} apiserver ready"), || {
            if !kubeconfig.exists() {
                return Err("no kubeconfig yet".into());
            }
            let out = kubectl_raw(&kubeconfig, None, &["get", "--raw", "/readyz"]);
            if out.0 { Ok(()) } else { Err(out.2) }
        });
        server.port = server_port(&kubeconfig);
        server
    }

    /// A kind cluster as member `name` (created unless it exists), its kubeconfig in `data_dir`.
    pub fn kind(name: &str, data_dir: PathBuf) -> Self {
        let cluster = provider::kind_cluster(name);
        let kubeconfig = data_dir.join("kubeconfig");
        provider::kind_up(&cluster, &kubeconfig).unwrap();
        let mut server = Self {
            name: name.into(),
            data_dir,
            port: 0,
            child: None,
            command: format!("kind:{cluster}"),
        };
        server.wait_ready();
        server.port = server_port(&kubeconfig);
        server
    }

    fn wait_ready(&self) {
        let kubeconfig = self.kubeconfig();
        eventually(180, &format!("{} apiserver ready", self.name), || {
            let out = kubectl_raw(&kubeconfig, None, &["get", "--raw", "/readyz"]);
            if out.0 { Ok(()) } else { Err(out.2) }
        });
    }

    fn start_as(command: &str, name: &str, data_dir: PathBuf, port: u16) -> Self {
        Self::start_with_args(command, name, data_dir, port, &[])
    }

    /// Starts `cellfed COMMAND` with `extra` flags, waits until ready.
    pub fn start_with_args(
        command: &str,
        name: &str,
        data_dir: PathBuf,
        port: u16,
        extra: &[String],
    ) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("log"))
            .unwrap();
        let child = Command::new(binary("cellfed"))
            .arg(command)
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--data-dir={}", data_dir.display()))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = Self {
            name: name.into(),
            data_dir,
            port,
            child: Some(child),
            command: command.into(),
        };
        let kubeconfig = server.kubeconfig();
        eventually(60, &format!("{name} apiserver ready"), || {
            if !kubeconfig.exists() {
                return Err("no kubeconfig yet".into());
            }
            let out = kubectl_raw(&kubeconfig, None, &["get", "--raw", "/readyz"]);
            if out.0 { Ok(()) } else { Err(out.2) }
        });
        server.port = server_port(&kubeconfig);
        server
    }

    /// Path of the kubeconfig it wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("kubeconfig")
    }

    /// Stops the process (a member going down).
    pub fn stop(&mut self) {
        if let Some(cluster) = self.command.strip_prefix("kind:") {
            provider::kind_power(cluster, false).unwrap();
            return;
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        self.restart_with_args(&[]);
    }

    /// Starts it again on the same port with the same data and `extra` flags (a kind cluster
    /// is only powered on again).
    pub fn restart_with_args(&mut self, extra: &[String]) {
        assert_ne!(
            self.command, "shared",
            "{} is served by a shared process",
            self.name
        );
        if let Some(cluster) = self.command.strip_prefix("kind:") {
            provider::kind_power(cluster, true).unwrap();
            self.wait_ready();
            return;
        }
        self.stop();
        let again = Self::start_with_args(
            &self.command.clone(),
            &self.name,
            self.data_dir.clone(),
            self.port,
            extra,
        );
        *self = again;
    }

    /// kubectl against this server; panics on failure.
    pub fn kubectl(&self, args: &[&str]) -> String {
        kubectl_ok(&self.kubeconfig(), None, args)
    }

    /// kubectl with stdin; panics on failure.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = kubectl_raw(&self.kubeconfig(), Some(stdin), args);
        assert!(out.0, "kubectl {args:?} on {} failed: {}", self.name, out.2);
        out.1
    }

    /// `kubectl get -o json` as a value, or None when absent.
    pub fn get(&self, args: &[&str]) -> Option<Value> {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json"]);
        let out = kubectl_raw(&self.kubeconfig(), None, &a);
        out.0.then(|| serde_json::from_str(&out.1).unwrap())
    }

    /// `apiserver_request_total` summed over codes for `verb` (e.g. LIST) and `resource`.
    pub fn requests(&self, verb: &str, resource: &str) -> u64 {
        let text = self.kubectl(&["get", "--raw", "/metrics"]);
        let verb = format!("verb=\"{verb}\"");
        let resource = format!("resource=\"{resource}\"");
        request_lines(&text)
            .filter(|(labels, _)| {
                labels.contains(&verb.as_str()) && labels.contains(&resource.as_str())
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// `apiserver_request_total` summed over every resource and code for each verb in `verbs`.
    pub fn requests_of(&self, verbs: &[&str]) -> u64 {
        let text = self.kubectl(&["get", "--raw", "/metrics"]);
        let verbs: Vec<String> = verbs.iter().map(|v| format!("verb=\"{v}\"")).collect();
        request_lines(&text)
            .filter(|(labels, _)| verbs.iter().any(|v| labels.contains(&v.as_str())))
            .map(|(_, n)| n)
            .sum()
    }

    /// Process id of the running server (None for kind members).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Every request this server counted for `resource`, all verbs.
    pub fn all_requests(&self, resource: &str) -> u64 {
        let text = self.kubectl(&["get", "--raw", "/metrics"]);
        let resource = format!("resource=\"{resource}\"");
        request_lines(&text)
            .filter(|(labels, _)| labels.contains(&resource.as_str()))
            .map(|(_, n)| n)
            .sum()
    }

    /// The resourceVersion of the whole store (changes with every write to this server).
    pub fn revision(&self) -> u64 {
        let v: Value =
            serde_json::from_str(&self.kubectl(&["get", "--raw", "/api/v1/namespaces?limit=1"]))
                .unwrap();
        v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

impl Drop for Apiserver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `apiserver_request_total` samples as (labels, value), whatever the label order (cellfed's
/// member and kube-apiserver order them differently).
/// The `apiserver_request_total` samples of a `/metrics` text: (labels, count).
pub fn request_lines(text: &str) -> impl Iterator<Item = (Vec<&str>, u64)> {
    text.lines().filter_map(|l| {
        let rest = l.strip_prefix("apiserver_request_total{")?;
        let (labels, value) = rest.rsplit_once("} ")?;
        let value = value.split(' ').next()?.parse::<f64>().ok()?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some((labels.split(',').collect(), value as u64))
    })
}

/// A bearer token for `member`: the one in its kubeconfig (`cellfed member`), or one minted for a
/// cluster-admin ServiceAccount `kube-system/cellfed-e2e` (kind, whose kubeconfig uses client
/// certificates).
fn member_token(member: &Apiserver, kc: &Value) -> String {
    if let Some(t) = kc["users"][0]["user"]["token"].as_str() {
        return t.to_string();
    }
    let kubeconfig = member.kubeconfig();
    let _ = kubectl_raw(
        &kubeconfig,
        None,
        &[
            "create",
            "serviceaccount",
            "cellfed-e2e",
            "-n",
            "kube-system",
        ],
    );
    let _ = kubectl_raw(
        &kubeconfig,
        None,
        &[
            "create",
            "clusterrolebinding",
            "cellfed-e2e",
            "--clusterrole=cluster-admin",
            "--serviceaccount=kube-system:cellfed-e2e",
        ],
    );
    member
        .kubectl(&[
            "create",
            "token",
            "cellfed-e2e",
            "-n",
            "kube-system",
            "--duration=24h",
        ])
        .trim()
        .to_string()
}

fn server_port(kubeconfig: &Path) -> u16 {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server:"))
        .unwrap()
        .trim()
        .to_string();
    server
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// Runs kubectl; returns (success, stdout, stderr). Each request it makes gives up after a minute
/// unless `args` say otherwise, so a server that stops answering fails the step instead of hanging
/// the test.
pub fn kubectl_raw(
    kubeconfig: &Path,
    stdin: Option<&str>,
    args: &[&str],
) -> (bool, String, String) {
    use std::io::Write;
    let mut cmd = Command::new("kubectl");
    cmd.env("KUBECONFIG", kubeconfig);
    if !args.iter().any(|a| a.starts_with("--request-timeout")) {
        cmd.arg("--request-timeout=60s");
    }
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("kubectl on PATH");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn kubectl_ok(kubeconfig: &Path, stdin: Option<&str>, args: &[&str]) -> String {
    let out = kubectl_raw(kubeconfig, stdin, args);
    assert!(out.0, "kubectl {args:?} failed: {}", out.2);
    out.1
}

/// The members' store revisions once they stopped changing for a second (the simulated workload
/// controllers settle first), so a later comparison sees only writes made by others.
pub fn quiet_revisions(members: &[Apiserver]) -> Vec<u64> {
    let mut last: Vec<u64> = members.iter().map(Apiserver::revision).collect();
    let mut stable_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    while stable_since.elapsed() < Duration::from_secs(1) {
        assert!(Instant::now() < deadline, "members never settled");
        std::thread::sleep(Duration::from_millis(200));
        let now: Vec<u64> = members.iter().map(Apiserver::revision).collect();
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
    }
    last
}

/// A federation: host, members, controller.
pub struct Env {
    /// Keeps the data directories.
    pub dir: tempfile::TempDir,
    /// The federation host.
    pub host: Apiserver,
    /// Member clusters `member1..N`.
    pub members: Vec<Apiserver>,
    controller: Option<Child>,
    webhook: Option<Child>,
    shared_members: Option<Child>,
    tunnel: Option<Tunnel>,
    /// Where the controller serves metrics.
    pub metrics_port: u16,
    /// The controller's cluster health flags: fast by default (tests notice an outage within a
    /// second); [`Env::kubefed_health_checks`] sets KubeFed's defaults.
    health: Vec<String>,
}

/// A `cellfed tunnel-server` and the `cellfed agent` of every member joined through it.
struct Tunnel {
    server: Child,
    agents: Vec<Child>,
    dir: PathBuf,
    agent_url: String,
    proxy_url: String,
    proxy_token: String,
}

/// A port free on loopback at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Env {
    /// Host + `n` members, CRDs installed, members joined, the default types enabled, controller
    /// running with short periods.
    pub fn start(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let host = Apiserver::start("host", dir.path().join("host"), 0);
        host.kubectl(&[
            "apply",
            "--server-side",
            "-f",
            root().join("crds").to_str().unwrap(),
        ]);
        host.kubectl_stdin(
            &["apply", "-f", "-"],
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-federation-system}\n",
        );
        let mut env = Self {
            dir,
            host,
            members: Vec::new(),
            controller: None,
            webhook: None,
            shared_members: None,
            tunnel: None,
            metrics_port: 0,
            health: [
                "--cluster-available-delay=0s",
                "--cluster-unavailable-delay=0s",
                "--cluster-health-check-period=500ms",
                "--cluster-health-check-timeout=1s",
                "--cluster-health-check-failure-threshold=2",
            ]
            .map(String::from)
            .to_vec(),
        };
        env.enable_default_types();
        for i in 1..=n {
            // (n = 0: the caller adds and joins members itself)
            env.add_member(&format!("member{i}"), &[]);
        }
        env.start_controller();
        env
    }

    /// FederatedTypeConfigs of the default kinds + the shipped KubeFedConfig.
    fn enable_default_types(&self) {
        let yaml = std::fs::read_to_string(
            root().join("charts/cellfed/templates/generated-federation.yaml"),
        )
        .unwrap();
        let yaml: String = yaml
            .lines()
            .filter(|l| !l.trim_start().starts_with("{{"))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("{{ .Release.Namespace }}", "kube-federation-system");
        self.host.kubectl_stdin(&["apply", "-f", "-"], &yaml);
    }

    /// Starts `n` members `member1..n` served by one `cellfed member --count n` process (scale
    /// benches: one process instead of n) and joins them; the process ends with the environment.
    /// Their SQLite stores run with `synchronous=off`: they stand in for member clusters, whose
    /// durability is not what a scale run measures, and 100 stores syncing every write would
    /// make the simulator, not the controller, the bottleneck.
    pub fn add_members_in_one_process(&mut self, n: u16) {
        let dir = self.dir.path().join("members");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("members.log"))
            .unwrap();
        let child = Command::new(binary("cellfed"))
            .args(["member", "--listen=127.0.0.1:0", "--sqlite-synchronous=off"])
            .arg(format!("--count={n}"))
            .arg(format!("--data-dir={}", dir.display()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.shared_members = Some(child);
        for i in 1..=n {
            let m = Apiserver::attach(&format!("member{i}"), dir.join(format!("member{i}")));
            self.join(&m, &[]);
            self.members.push(m);
        }
    }

    /// Process id of the process serving [`Env::add_members_in_one_process`]'s members.
    pub fn shared_members_pid(&self) -> Option<u32> {
        self.shared_members.as_ref().map(Child::id)
    }

    /// Starts another member (`cellfed member`) and joins it with `labels`.
    pub fn add_member(&mut self, name: &str, labels: &[(&str, &str)]) {
        let m = Apiserver::start_member(name, self.dir.path().join(name), 0);
        self.join(&m, labels);
        self.members.push(m);
    }

    /// Member by name, mutable (stop/restart).
    pub fn member_mut(&mut self, name: &str) -> &mut Apiserver {
        self.members.iter_mut().find(|m| m.name == name).unwrap()
    }

    /// Joins `member` as a KubeFedCluster with `labels`: a Secret with its token and the CA of
    /// its kubeconfig.
    pub fn join(&self, member: &Apiserver, labels: &[(&str, &str)]) {
        self.join_at(member, None, labels);
    }

    /// [`Env::join`] with the KubeFedCluster's `apiEndpoint` set to `endpoint` (a proxy in front
    /// of the member, say) instead of the member's own address.
    pub fn join_at(&self, member: &Apiserver, endpoint: Option<&str>, labels: &[(&str, &str)]) {
        let kc: Value =
            serde_yaml::from_str(&std::fs::read_to_string(member.kubeconfig()).unwrap()).unwrap();
        let server =
            endpoint.unwrap_or_else(|| kc["clusters"][0]["cluster"]["server"].as_str().unwrap());
        let ca = kc["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap();
        let token = member_token(member, &kc);
        let labels: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("{}-secret", member.name), "namespace": "kube-federation-system"}, "stringData": {"token": token}});
        let cluster = serde_json::json!({"apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
                 "metadata": {"name": member.name, "namespace": "kube-federation-system", "labels": labels},
                 "spec": {"apiEndpoint": server, "caBundle": ca, "secretRef": {"name": format!("{}-secret", member.name)}}});
        self.host.kubectl_stdin(
            &["apply", "-f", "-"],
            &format!(
                "{}---\n{}",
                serde_yaml::to_string(&secret).unwrap(),
                serde_yaml::to_string(&cluster).unwrap()
            ),
        );
    }

    /// Controllers started from now on check cluster health with KubeFed's defaults (every 10 s,
    /// 3 s timeout, NotReady after 3 failures) instead of the tests' sub-second checks: a scale
    /// run of 100 members on one loaded machine misses 1 s deadlines and flaps readiness.
    pub fn kubefed_health_checks(&mut self) {
        self.health.clear();
    }

    /// Starts a `cellfed tunnel-server` for [`Env::add_member_via_tunnel`]: agents authenticate
    /// with per-cluster tokens from a token file, the controller with a proxy token.
    pub fn start_tunnel(&mut self) {
        let dir = self.dir.path().join("tunnel");
        std::fs::create_dir_all(&dir).unwrap();
        let proxy_token = format!("proxy-{}", std::process::id());
        std::fs::write(dir.join("proxy.token"), &proxy_token).unwrap();
        std::fs::write(dir.join("agents.csv"), "").unwrap();
        let (agents, proxy) = (free_port(), free_port());
        let log = std::fs::File::create(self.dir.path().join("tunnel.log")).unwrap();
        let server = Command::new(binary("cellfed"))
            .arg("tunnel-server")
            .arg(format!("--agent-listen=127.0.0.1:{agents}"))
            .arg(format!("--proxy-listen=127.0.0.1:{proxy}"))
            .arg(format!("--cert-dir={}", dir.join("certs").display()))
            .arg(format!(
                "--agent-token-file={}",
                dir.join("agents.csv").display()
            ))
            .arg(format!(
                "--proxy-token-file={}",
                dir.join("proxy.token").display()
            ))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let proxy_url = format!("http://127.0.0.1:{proxy}");
        eventually(60, "the tunnel server", || {
            http_get(&format!("{proxy_url}/healthz")).map(|_| ())
        });
        self.tunnel = Some(Tunnel {
            server,
            agents: Vec::new(),
            dir,
            agent_url: format!("https://127.0.0.1:{agents}"),
            proxy_url,
            proxy_token,
        });
    }

    /// Starts member `name` and joins it through the tunnel of [`Env::start_tunnel`]: its
    /// KubeFedCluster's apiEndpoint is `https://NAME.cluster.internal:PORT`, a name only its
    /// agent can reach, and `proxyURL` is the tunnel's proxy, so every request of the controller
    /// to this member crosses the tunnel (the member's serving certificate carries that name,
    /// as `cellfed up --tunnel` makes it).
    pub fn add_member_via_tunnel(&mut self, name: &str) {
        let m = Apiserver::start_with_args(
            "member",
            name,
            self.dir.path().join(name),
            0,
            &[format!("--tls-host={name}.cluster.internal")],
        );
        let tunnel = self.tunnel.as_mut().expect("start_tunnel first");
        let token = format!("agent-{name}-{}", std::process::id());
        let token_file = tunnel.dir.join(format!("{name}.token"));
        std::fs::write(&token_file, &token).unwrap();
        let csv = tunnel.dir.join("agents.csv");
        let mut entries = std::fs::read_to_string(&csv).unwrap();
        entries.push_str(&format!("{token},{name}\n"));
        std::fs::write(&csv, entries).unwrap();
        let kc: Value =
            serde_yaml::from_str(&std::fs::read_to_string(m.kubeconfig()).unwrap()).unwrap();
        let real = kc["clusters"][0]["cluster"]["server"]
            .as_str()
            .unwrap()
            .to_string();
        let log = std::fs::File::create(self.dir.path().join(format!("agent-{name}.log"))).unwrap();
        let agent = Command::new(binary("cellfed"))
            .arg("agent")
            .arg(format!("--server={}", tunnel.agent_url))
            .arg(format!("--cluster-name={name}"))
            .arg(format!("--token-file={}", token_file.display()))
            .arg(format!(
                "--ca-file={}",
                tunnel.dir.join("certs/ca.crt").display()
            ))
            .arg(format!("--apiserver={real}"))
            .arg("--max-backoff=2s")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        tunnel.agents.push(agent);
        let ca = kc["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap();
        let member_token = member_token(&m, &kc);
        let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("{name}-secret"), "namespace": "kube-federation-system"},
            "stringData": {"token": member_token, "proxyToken": tunnel.proxy_token}});
        let cluster = serde_json::json!({"apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
            "metadata": {"name": name, "namespace": "kube-federation-system"},
            "spec": {"apiEndpoint": format!("https://{name}.cluster.internal:{}", m.port), "caBundle": ca,
                "proxyURL": tunnel.proxy_url,
                "secretRef": {"name": format!("{name}-secret")}}});
        self.host.kubectl_stdin(
            &["apply", "-f", "-"],
            &format!(
                "{}---\n{}",
                serde_yaml::to_string(&secret).unwrap(),
                serde_yaml::to_string(&cluster).unwrap()
            ),
        );
        self.members.push(m);
    }

    /// One kubeconfig with contexts `cellfed` (host) and one per member, written into the
    /// environment's directory (as `cellfed up` writes it).
    pub fn merged_kubeconfig(&self) -> PathBuf {
        let mut clusters = Vec::new();
        let mut users = Vec::new();
        let mut contexts = Vec::new();
        let servers = std::iter::once(("cellfed", &self.host))
            .chain(self.members.iter().map(|m| (m.name.as_str(), m)));
        for (name, server) in servers {
            let kc: Value =
                serde_yaml::from_str(&std::fs::read_to_string(server.kubeconfig()).unwrap())
                    .unwrap();
            let mut c = kc["clusters"][0].clone();
            c["name"] = Value::String(name.into());
            let mut u = kc["users"][0].clone();
            u["name"] = Value::String(name.into());
            clusters.push(c);
            users.push(u);
            contexts.push(
                serde_json::json!({"name": name, "context": {"cluster": name, "user": name}}),
            );
        }
        let merged = serde_json::json!({"apiVersion": "v1", "kind": "Config", "current-context": "cellfed", "clusters": clusters, "users": users, "contexts": contexts});
        let path = self.dir.path().join("kubeconfig");
        std::fs::write(&path, serde_yaml::to_string(&merged).unwrap()).unwrap();
        path
    }

    /// Starts (or restarts) the controller process.
    pub fn start_controller(&mut self) {
        self.stop_controller();
        if self.metrics_port == 0 {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            self.metrics_port = l.local_addr().unwrap().port();
        }
        let child = self.spawn_controller(self.metrics_port, "controller.log", &[]);
        self.controller = Some(child);
    }

    /// Spawns one more controller process with the test timings plus `extra` flags, serving
    /// metrics on `metrics_port` and logging to `log` in the environment's directory; the caller
    /// owns (and must kill) it.
    pub fn spawn_controller(&self, metrics_port: u16, log: &str, extra: &[&str]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(log))
            .unwrap();
        Command::new(binary("cellfed"))
            .arg("controller")
            .arg(format!("--kubeconfig={}", self.host.kubeconfig().display()))
            .arg("--worker-concurrency=8")
            .args(&self.health)
            .args(extra)
            .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// Starts `cellfed webhook` on a free port and registers it with the host (conversion of the
    /// federated CRDs, ValidatingWebhookConfiguration), waiting until conversion works.
    pub fn start_webhook(&mut self) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("webhook.log"))
            .unwrap();
        let child = Command::new(binary("cellfed"))
            .arg("webhook")
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!(
                "--cert-dir={}",
                self.dir.path().join("webhook").display()
            ))
            .arg(format!("--kubeconfig={}", self.host.kubeconfig().display()))
            .arg(format!("--advertise-url=https://127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.webhook = Some(child);
        eventually(60, "webhook registered", || {
            let vwc = self
                .host
                .get(&["validatingwebhookconfigurations", "cellfed-webhook"]);
            let crd = self
                .host
                .get(&["crd", "federateddeployments.types.kubefed.io"]);
            let url = crd.as_ref().and_then(|c| {
                c.pointer("/spec/conversion/webhook/clientConfig/url")
                    .cloned()
            });
            if vwc.is_some()
                && url.is_some_and(|u| u.as_str().is_some_and(|u| u.contains(&port.to_string())))
            {
                Ok(())
            } else {
                Err("not yet".into())
            }
        });
    }

    /// The controller's `cellfed_reconciles_total`.
    pub fn reconciles(&self) -> u64 {
        http_get(&format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    l.strip_prefix("cellfed_reconciles_total ")
                        .and_then(|v| v.parse().ok())
                })
            })
            .unwrap_or(0)
    }

    /// Waits until the controller made `n` more reconciles (several full passes), for checks
    /// that something does NOT happen.
    pub fn wait_for_reconciles(&self, n: u64) {
        let start = self.reconciles();
        eventually(60, &format!("{n} more reconciles"), || {
            let now = self.reconciles();
            if now >= start + n {
                Ok(())
            } else {
                Err(format!("{} so far", now - start))
            }
        });
    }

    /// Process id of the running controller.
    pub fn controller_pid(&self) -> Option<u32> {
        self.controller.as_ref().map(Child::id)
    }

    /// The holder of the controllers' leader-election Lease, if any.
    pub fn lease_holder(&self) -> Option<String> {
        self.host.get(&[
            "lease",
            "cellfed-controller",
            "-n",
            "kube-federation-system",
        ])?["spec"]["holderIdentity"]
            .as_str()
            .map(str::to_string)
    }

    /// Stops the controller process.
    pub fn stop_controller(&mut self) {
        if let Some(mut c) = self.controller.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Member by name.
    pub fn member(&self, name: &str) -> &Apiserver {
        self.members.iter().find(|m| m.name == name).unwrap()
    }

    /// The controller's log so far (for failure messages).
    pub fn controller_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("controller.log")).unwrap_or_default()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.controller_log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- controller log (last 40 lines) ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        self.stop_controller();
        if let Some(mut w) = self.webhook.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Some(mut m) = self.shared_members.take() {
            let _ = m.kill();
            let _ = m.wait();
        }
        if let Some(mut t) = self.tunnel.take() {
            for c in t.agents.iter_mut().chain(std::iter::once(&mut t.server)) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// A minimal HTTP GET over a TCP socket (metrics endpoint, plain HTTP, `http://<ip>:<port>/…`);
/// connecting, writing and reading each give up after 30 seconds.
pub fn http_get(url: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    const TIMEOUT: Duration = Duration::from_secs(30);
    let rest = url.strip_prefix("http://").ok_or("not http")?;
    let (addr, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let sock: std::net::SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, TIMEOUT).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(TIMEOUT))
        .and_then(|()| s.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body).map_err(|e| e.to_string())?;
    Ok(body
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

/// ADDED events of a namespace's ConfigMaps whose name starts with a prefix, as (name,
/// resourceVersion), from a `kubectl get --raw ...?watch=1` that resumes at the last
/// resourceVersion seen when its stream ends (as a reflector does); stopped when dropped.
pub struct AddedWatch {
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, u64)>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    child: std::sync::Arc<std::sync::Mutex<Option<Child>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AddedWatch {
    /// Watches ConfigMaps of `namespace` named `prefix…` from revision `rv`.
    pub fn start(kubeconfig: &Path, namespace: &str, prefix: &str, rv: u64) -> Self {
        use std::io::{BufRead, BufReader};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let child: Arc<Mutex<Option<Child>>> = Arc::new(Mutex::new(None));
        let (kc, ns, prefix) = (
            kubeconfig.to_path_buf(),
            namespace.to_string(),
            prefix.to_string(),
        );
        let (found, stopped, current) = (seen.clone(), stop.clone(), child.clone());
        let thread = std::thread::spawn(move || {
            let mut rv = rv;
            while !stopped.load(Ordering::SeqCst) {
                let path =
                    format!("/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion={rv}");
                let mut c = Command::new("kubectl")
                    .env("KUBECONFIG", &kc)
                    .args(["get", "--raw", &path, "--request-timeout=0"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let out = BufReader::new(c.stdout.take().unwrap());
                *current.lock().unwrap() = Some(c);
                for line in out.lines() {
                    let Ok(line) = line else { break };
                    let Ok(ev) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    let meta = &ev["object"]["metadata"];
                    let Some(r) = meta["resourceVersion"]
                        .as_str()
                        .and_then(|r| r.parse().ok())
                    else {
                        continue;
                    };
                    rv = r;
                    let name = meta["name"].as_str().unwrap_or_default();
                    if ev["type"] == "ADDED" && name.starts_with(&prefix) {
                        found.lock().unwrap().push((name.to_string(), rv));
                    }
                }
                if let Some(mut c) = current.lock().unwrap().take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                if !stopped.load(Ordering::SeqCst) {
                    // the server went away: do not spin on reconnects
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        });
        Self {
            seen,
            stop,
            child,
            thread: Some(thread),
        }
    }

    /// The events so far.
    pub fn seen(&self) -> Vec<(String, u64)> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (at most `secs`) until `n` ADDED events arrived; returns them.
    pub fn wait_for(&self, n: usize, secs: u64, what: &str) -> Vec<(String, u64)> {
        eventually(secs, &format!("{n} ADDED events on {what}"), || {
            let seen = self.seen();
            if seen.len() >= n {
                Ok(seen)
            } else {
                Err(format!("{} so far", seen.len()))
            }
        })
    }
}

impl Drop for AddedWatch {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
