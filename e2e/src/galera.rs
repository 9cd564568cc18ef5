//! A MariaDB Galera cluster and an HAProxy on loopback, owned by one test or benchmark.
//!
//! [`Cluster::start`] initialises one data directory per node under a directory the caller
//! owns, writes each node's option file, bootstraps the first node with
//! `--wsrep-new-cluster` and joins the others one at a time (state transfer by `rsync`), each
//! on its own free ports for SQL, group communication, IST and SST. It returns once every node
//! reports `wsrep_cluster_size` = N and `Synced`. Dropping the cluster SIGKILLs every node
//! still running; dropping an [`Haproxy`] kills it.
//!
//! Needs Debian's `galera-4`, `mariadb-server` and `rsync` (installed by
//! `scripts/ensure-services.sh`); [`unavailable`] says what is missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// Where Debian (and most distributions) put the Galera 4 provider.
const PROVIDERS: [&str; 3] = [
    "/usr/lib/galera/libgalera_smm.so",
    "/usr/lib/libgalera_smm.so",
    "/usr/lib64/galera-4/libgalera_smm.so",
];

/// The Galera provider library: `$WSREP_PROVIDER`, else the first of the usual paths present.
pub fn provider_library() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WSREP_PROVIDER") {
        return Some(PathBuf::from(p));
    }
    PROVIDERS.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Why a cluster cannot be started on this machine, or None when it can.
pub fn unavailable() -> Option<String> {
    if provider_library().is_none() {
        return Some(format!(
            "the Galera provider (package galera-4) is not installed: none of {PROVIDERS:?}"
        ));
    }
    for (tool, package) in [
        ("mariadbd", "mariadb-server"),
        ("mariadb-install-db", "mariadb-server"),
        ("mariadb", "mariadb-client"),
        ("rsync", "rsync"),
    ] {
        if Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            return Some(format!("{tool} (package {package}) is not installed"));
        }
    }
    None
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Polls `f` every 200 ms until it returns Ok, or returns an error naming `what` and the last
/// failure after `limit`.
fn wait<T>(
    limit: Duration,
    what: &str,
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "timed out after {limit:?} waiting for {what}; last: {e}"
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// One `mariadbd` of the cluster.
pub struct Node {
    /// 1-based name, `node1`…
    pub name: String,
    /// SQL port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// `mysql://root@127.0.0.1:PORT/test`.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/test", self.port)
    }

    /// Runs `sql` with the `mariadb` client as root; returns its output (tab-separated, no
    /// column names) or the client's error.
    pub fn query(&self, sql: &str) -> Result<String, String> {
        let out = Command::new("mariadb")
            .args(["-h127.0.0.1", &format!("-P{}", self.port), "-uroot"])
            .args(["--connect-timeout=5", "-N", "-B", "-e", sql])
            .output()
            .map_err(|e| format!("mariadb: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// The value of status variable `name` (e.g. `wsrep_cluster_size`).
    pub fn status(&self, name: &str) -> Result<String, String> {
        let out = self.query(&format!("SHOW GLOBAL STATUS LIKE '{name}'"))?;
        Ok(out.split('\t').nth(1).unwrap_or_default().to_string())
    }

    /// SIGKILL: the node leaves the cluster without a word, as on a machine failure.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether its process is still running (not killed, not exited).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().is_ok_and(|s| s.is_none()))
    }

    /// The last `n` lines of its error log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("mariadbd.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(n).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

/// A Galera cluster of `mariadbd` processes on loopback.
pub struct Cluster {
    /// The nodes, in the order they joined (node 1 bootstrapped the cluster).
    pub nodes: Vec<Node>,
}

/// Ports of one node.
struct Ports {
    sql: u16,
    group: u16,
    ist: u16,
    sst: u16,
}

impl Cluster {
    /// Starts an `n`-node cluster in `dir` (which must outlive the cluster) and creates the
    /// database `test`. Bounded: each step gives up after a few minutes with the node's log.
    pub fn start(dir: &Path, n: usize) -> Result<Cluster, String> {
        Self::start_with(dir, n, true)
    }

    /// One plain `mariadbd` (no wsrep) with the cluster nodes' settings, in `dir`: the single
    /// server to compare a cluster with on the same machine and disk.
    pub fn start_single(dir: &Path) -> Result<Cluster, String> {
        Self::start_with(dir, 1, false)
    }

    fn start_with(dir: &Path, n: usize, wsrep: bool) -> Result<Cluster, String> {
        use std::os::unix::fs::PermissionsExt;
        if let Some(why) = unavailable() {
            return Err(why);
        }
        let provider = provider_library().unwrap_or_default();
        // mariadbd and the SST scripts run as `mysql`, who must reach the directories
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let ports: Vec<Ports> = (0..n)
            .map(|_| Ports {
                sql: free_port(),
                group: free_port(),
                ist: free_port(),
                sst: free_port(),
            })
            .collect();
        let members: Vec<String> = ports
            .iter()
            .map(|p| format!("127.0.0.1:{}", p.group))
            .collect();
        let address = format!("gcomm://{}", members.join(","));
        let cluster_name = format!("cellfed-{}", std::process::id());
        let mut cluster = Cluster { nodes: Vec::new() };
        for (i, p) in ports.iter().enumerate() {
            let name = format!("node{}", i + 1);
            let node_dir = dir.join(&name);
            std::fs::create_dir_all(&node_dir).map_err(|e| e.to_string())?;
            std::fs::set_permissions(&node_dir, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
            let cnf = node_dir.join("my.cnf");
            let mut options = option_file(&node_dir, p, &provider, &cluster_name, &address, &name);
            if !wsrep {
                options = options
                    .lines()
                    .filter(|l| !l.starts_with("wsrep_"))
                    .map(|l| format!("{l}\n"))
                    .collect();
            }
            std::fs::write(&cnf, options).map_err(|e| e.to_string())?;
            std::fs::set_permissions(&cnf, std::fs::Permissions::from_mode(0o644))
                .map_err(|e| e.to_string())?;
            install_db(&cnf)?;
            let log =
                std::fs::File::create(node_dir.join("mariadbd.log")).map_err(|e| e.to_string())?;
            let mut cmd = Command::new("mariadbd");
            cmd.arg(format!("--defaults-file={}", cnf.display()));
            if i == 0 && wsrep {
                cmd.arg("--wsrep-new-cluster");
            }
            let child = cmd
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("mariadbd: {e}"))?;
            let mut node = Node {
                name,
                port: p.sql,
                dir: node_dir,
                child: Some(child),
            };
            // a joiner receives a full state transfer first: its own wait is generous
            let joined = wait(
                Duration::from_secs(180),
                &format!("{} synced", node.name),
                || {
                    if !node.running() {
                        return Err("mariadbd exited".into());
                    }
                    if !wsrep {
                        return node.query("SELECT 1").map(|_| ());
                    }
                    let state = node.status("wsrep_local_state_comment")?;
                    let size: usize = node.status("wsrep_cluster_size")?.parse().unwrap_or(0);
                    if state == "Synced" && size == i + 1 {
                        Ok(())
                    } else {
                        Err(format!("state {state:?}, cluster size {size}"))
                    }
                },
            );
            if let Err(e) = joined {
                let tail = node.log_tail(30);
                cluster.nodes.push(node);
                return Err(format!("{e}\nmariadbd.log:\n{tail}"));
            }
            cluster.nodes.push(node);
        }
        cluster.nodes[0].query("CREATE DATABASE IF NOT EXISTS test")?;
        if wsrep {
            cluster.wait_size(n, Duration::from_secs(60))?;
        }
        Ok(cluster)
    }

    /// Waits until every running node reports `wsrep_cluster_size` = `n`, Synced, and sees the
    /// database `test`.
    pub fn wait_size(&mut self, n: usize, limit: Duration) -> Result<(), String> {
        let nodes = &mut self.nodes;
        wait(
            limit,
            &format!("wsrep_cluster_size = {n} on every node"),
            || {
                for node in nodes.iter_mut().filter(|n| n.child.is_some()) {
                    let size = node.status("wsrep_cluster_size")?;
                    let state = node.status("wsrep_local_state_comment")?;
                    if size != n.to_string() || state != "Synced" {
                        return Err(format!("{}: size {size}, {state}", node.name));
                    }
                    node.query("USE test")?;
                }
                Ok(())
            },
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}

/// The option file of one node: its own data directory and ports, the cluster's members.
fn option_file(
    dir: &Path,
    p: &Ports,
    provider: &Path,
    cluster: &str,
    address: &str,
    name: &str,
) -> String {
    let user = if running_as_root() {
        "user=mysql\n"
    } else {
        ""
    };
    let data = dir.join("data");
    format!(
        "[mysqld]
{user}datadir={data}
socket={data}/mariadbd.sock
pid-file={data}/mariadbd.pid
port={sql}
bind-address=127.0.0.1
innodb_buffer_pool_size=32M
innodb_autoinc_lock_mode=2
binlog_format=ROW
default_storage_engine=InnoDB
wsrep_on=ON
wsrep_provider={provider}
wsrep_cluster_name={cluster}
wsrep_cluster_address={address}
wsrep_node_name={name}
wsrep_node_address=127.0.0.1:{group}
wsrep_node_incoming_address=127.0.0.1:{sql}
wsrep_sst_method=rsync
wsrep_sst_receive_address=127.0.0.1:{sst}
wsrep_provider_options=\"gmcast.listen_addr=tcp://127.0.0.1:{group};ist.recv_addr=127.0.0.1:{ist};gcache.size=64M;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S\"
",
        data = data.display(),
        sql = p.sql,
        group = p.group,
        ist = p.ist,
        sst = p.sst,
        provider = provider.display(),
    )
}

fn install_db(cnf: &Path) -> Result<(), String> {
    let out = Command::new("mariadb-install-db")
        .arg(format!("--defaults-file={}", cnf.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        // a plain server for the system tables: no cluster to join yet
        .arg("--wsrep-on=OFF")
        .output()
        .map_err(|e| format!("mariadb-install-db: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "mariadb-install-db: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// An HAProxy in TCP mode in front of HTTPS backends, each checked with `GET /readyz` over
/// TLS every 500 ms (down after 3 failures, up after 2 successes); killed when dropped.
pub struct Haproxy {
    /// Its listening port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
}

impl Haproxy {
    /// Whether `haproxy` is installed.
    pub fn available() -> bool {
        Command::new("haproxy")
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts HAProxy balancing round-robin over `backends` (ports on 127.0.0.1); its
    /// configuration and log go to `dir`. Returns once it accepts connections.
    pub fn start(dir: &Path, backends: &[u16]) -> Result<Haproxy, String> {
        let port = free_port();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, p)| format!("  server apiserver{} 127.0.0.1:{p} check\n", i + 1))
            .collect();
        let cfg = format!(
            "global
  maxconn 2000
defaults
  mode tcp
  timeout connect 2s
  timeout client 10m
  timeout server 10m
  timeout check 3s
listen apiservers
  bind 127.0.0.1:{port}
  balance roundrobin
  option httpchk GET /readyz
  default-server inter 500ms fall 3 rise 2 check-ssl verify none on-marked-down shutdown-sessions
{servers}"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("haproxy.log")).map_err(|e| e.to_string())?;
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("haproxy: {e}"))?;
        let mut proxy = Haproxy {
            port,
            child: Some(child),
        };
        wait(Duration::from_secs(30), "haproxy listening", || {
            if let Some(c) = proxy.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                return Err(format!(
                    "haproxy exited ({status}): {}",
                    std::fs::read_to_string(dir.join("haproxy.log")).unwrap_or_default()
                ));
            }
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map(|_| ())
                .map_err(|e| e.to_string())
        })?;
        Ok(proxy)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
