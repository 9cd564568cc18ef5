#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The database restarting under load: a `cellfed apiserver` on MariaDB while a client creates
//! 300 ConfigMaps through it, retrying failed requests as kube clients do. MariaDB is killed
//! (SIGKILL) after the first 50 acknowledged writes, stays down 10 s and is started again.
//! Every acknowledged write is stored exactly once, none is lost, and a watch started before
//! the writes sees every create once, in the order the client made them.
//!
//! The MariaDB is the test's own (`mariadb-install-db` + `mariadbd` on a free loopback port in
//! a temporary directory), so killing it cannot disturb other tests using the machine's shared
//! server. Without `mariadbd` on PATH the test prints `SKIPPED` and returns.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cellfed_e2e::{AddedWatch, binary, eventually, free_port, kubectl_raw};
use serde_json::Value;

const WRITES: usize = 300;
const NS: &str = "default";

/// A private MariaDB server; killed when dropped.
struct Mariadb {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl Mariadb {
    /// Initialises a data directory under `dir` and starts the server on a free port.
    fn start(dir: &Path) -> Mariadb {
        use std::os::unix::fs::PermissionsExt;
        // mariadbd refuses to run as root; it runs as `mysql`, who must reach the directory
        let user: &[&str] = if running_as_root() {
            &["--user=mysql"]
        } else {
            &[]
        };
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.join("data");
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .args(user)
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut db = Mariadb {
            dir: dir.to_path_buf(),
            port: free_port(),
            child: None,
        };
        db.launch();
        let out = db.client("CREATE DATABASE test");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        db
    }

    /// Starts `mariadbd` on the same data and port; returns once it accepts connections.
    fn launch(&mut self) {
        let user: &[&str] = if running_as_root() {
            &["--user=mysql"]
        } else {
            &[]
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mariadbd.log"))
            .unwrap();
        let d = &self.dir;
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .args(user)
            .arg(format!("--datadir={}", d.join("data").display()))
            // in the data directory, which belongs to the server's user
            .arg(format!(
                "--socket={}",
                d.join("data/mariadbd.sock").display()
            ))
            .arg(format!(
                "--pid-file={}",
                d.join("data/mariadbd.pid").display()
            ))
            .arg(format!("--port={}", self.port))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let log = self.dir.join("mariadbd.log");
        eventually(60, "mariadbd answers a query", || {
            let out = self.client("SELECT 1");
            if out.status.success() {
                return Ok(());
            }
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            Err(format!(
                "{}\nmariadbd.log:\n{}",
                String::from_utf8_lossy(&out.stderr),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ))
        });
    }

    /// Runs `sql` with the `mariadb` client as root.
    fn client(&self, sql: &str) -> std::process::Output {
        Command::new("mariadb")
            .args(["-h127.0.0.1", &format!("-P{}", self.port), "-uroot"])
            .args(["--connect-timeout=5", "-e", sql])
            .output()
            .unwrap()
    }

    /// SIGKILL: the server goes away without a clean shutdown.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/test", self.port)
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn configmap(i: usize) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: w-{i}, namespace: {NS}}}\ndata: {{index: \"{i}\"}}\n"
    )
}

/// Creates `w-i` until the server acknowledges it; AlreadyExists after a failed attempt means
/// that attempt was stored though its answer was lost, which is also an acknowledgement.
fn create_with_retries(kc: &Path, i: usize, failed: &AtomicUsize) {
    let mut attempts = 0;
    loop {
        attempts += 1;
        if attempts > 1 {
            failed.fetch_add(1, Ordering::SeqCst);
        }
        let (ok, _, err) = kubectl_raw(
            kc,
            Some(&configmap(i)),
            &["create", "-f", "-", "--request-timeout=3s"],
        );
        if ok || (attempts > 1 && err.contains("AlreadyExists")) {
            return;
        }
        assert!(
            attempts < 600,
            "w-{i} not acknowledged after {attempts} attempts: {err}"
        );
        eprintln!("w-{i} attempt {attempts}: {}", err.trim());
        // the client's pause between attempts
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn mariadb_killed_and_restarted_under_writes_loses_nothing() {
    if cellfed_e2e::skip("mariadb_killed_and_restarted_under_writes", true) {
        return;
    }
    if Command::new("mariadbd").arg("--version").output().is_err() {
        eprintln!("SKIPPED mariadb_killed_and_restarted_under_writes: mariadbd is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Mariadb::start(tmp.path());
    let data_dir = tmp.path().join("apiserver");
    let log = std::fs::File::create(tmp.path().join("apiserver.log")).unwrap();
    let _apiserver = Proc(
        Command::new(binary("cellfed"))
            .args([
                "apiserver",
                "--listen",
                "127.0.0.1:0",
                "--storage",
                &db.url(),
            ])
            .arg("--data-dir")
            .arg(&data_dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let kc = data_dir.join("kubeconfig");
    eventually(60, "apiserver ready", || {
        if kc.exists() && kubectl_raw(&kc, None, &["get", "--raw", "/readyz"]).0 {
            Ok(())
        } else {
            Err("not yet".into())
        }
    });

    // the watch starts before the first write
    let (ok, list, err) = kubectl_raw(
        &kc,
        None,
        &[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{NS}/configmaps"),
        ],
    );
    assert!(ok, "{err}");
    let rv = serde_json::from_str::<Value>(&list).unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let watcher = AddedWatch::start(&kc, NS, "w-", rv);

    let acked = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let writer = {
        let (kc, acked, failed) = (kc.clone(), acked.clone(), failed.clone());
        std::thread::spawn(move || {
            for i in 0..WRITES {
                create_with_retries(&kc, i, &failed);
                acked.store(i + 1, Ordering::SeqCst);
            }
        })
    };
    eventually(120, "50 acknowledged writes", || {
        let n = acked.load(Ordering::SeqCst);
        if n >= 50 { Ok(()) } else { Err(format!("{n}")) }
    });
    db.kill();
    let at_kill = acked.load(Ordering::SeqCst);
    // the outage itself, not a wait for something: the database stays down 10 s
    std::thread::sleep(Duration::from_secs(10));
    let during = acked.load(Ordering::SeqCst);
    db.launch();
    writer
        .join()
        .expect("the writer got every write acknowledged");
    eprintln!(
        "{WRITES} writes acknowledged in {:?}; MariaDB killed after {at_kill}, {} attempts retried",
        started.elapsed(),
        failed.load(Ordering::SeqCst)
    );
    assert!(
        during <= at_kill + 1,
        "writes were acknowledged while the database was down: {at_kill} → {during}"
    );
    assert!(at_kill < WRITES, "the outage came after the last write");

    // stored once each, none lost
    let (ok, list, err) = kubectl_raw(
        &kc,
        None,
        &[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{NS}/configmaps"),
        ],
    );
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&list).unwrap();
    let mut stored: Vec<(String, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| {
            let name = o["metadata"]["name"].as_str()?;
            name.starts_with("w-").then(|| {
                (
                    name.to_string(),
                    o["data"]["index"].as_str().unwrap_or("").into(),
                )
            })
        })
        .collect();
    stored.sort();
    let mut expected: Vec<(String, String)> = (0..WRITES)
        .map(|i| (format!("w-{i}"), i.to_string()))
        .collect();
    expected.sort();
    let missing: Vec<_> = expected.iter().filter(|e| !stored.contains(e)).collect();
    let extra: Vec<_> = stored.iter().filter(|s| !expected.contains(s)).collect();
    assert!(
        stored.len() == expected.len() && missing.is_empty() && extra.is_empty(),
        "{} stored for {} acknowledged writes; missing {missing:?}, unexpected {extra:?}",
        stored.len(),
        expected.len()
    );

    // the watch saw every create once, in the client's order, at increasing revisions
    let want: Vec<String> = (0..WRITES).map(|i| format!("w-{i}")).collect();
    let seen = watcher.wait_for(WRITES, 60, "the watch (every create)");
    let names: Vec<String> = seen.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names, want, "watch events out of order or duplicated");
    assert!(
        seen.windows(2).all(|w| w[0].1 < w[1].1),
        "resourceVersions not increasing"
    );
}
