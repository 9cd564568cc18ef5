#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Two `cellfed apiserver` processes on one MariaDB database: a write through one is seen by a
//! `kubectl get -w` on the other, and by a plain read.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use cellfed_e2e::{binary, eventually, kubectl_raw};

fn mysql_url() -> String {
    std::env::var("CELLFED_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

struct Proc(std::process::Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path, prefix: &str) -> (Proc, std::path::PathBuf) {
    let child = Command::new(binary("cellfed"))
        .args([
            "apiserver",
            "--listen",
            "127.0.0.1:0",
            "--storage",
            &mysql_url(),
            "--table-prefix",
            prefix,
        ])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let kc = dir.join("kubeconfig");
    eventually(60, "apiserver ready", || {
        if kc.exists() && kubectl_raw(&kc, None, &["get", "--raw", "/readyz"]).0 {
            Ok(())
        } else {
            Err("not yet".into())
        }
    });
    (Proc(child), kc)
}

#[test]
fn write_on_one_replica_is_seen_by_a_watch_on_the_other() {
    if cellfed_e2e::skip("write_on_one_replica_is_seen_by_a_watch_on_the_other", true) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let prefix = format!("e2e_replicas_{}", std::process::id());
    let (_a, kc_a) = start(&tmp.path().join("a"), &prefix);
    let (_b, kc_b) = start(&tmp.path().join("b"), &prefix);

    // a first object, so the watch has something to print once its initial list is done
    let (ok, _, err) = kubectl_raw(
        &kc_b,
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: marker, namespace: default}\n"),
        &["apply", "-f", "-"],
    );
    assert!(ok, "{err}");
    // kubectl get -w on B
    let mut watch = Command::new("kubectl")
        .env("KUBECONFIG", &kc_b)
        .args([
            "get",
            "configmaps",
            "-n",
            "default",
            "-w",
            "--output-watch-events",
            "-o",
            "custom-columns=EVENT:.type,NAME:.object.metadata.name",
            "--request-timeout=0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // the marker is printed once the initial list is done and the watch is open
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("kubectl get -w started");
        if line.contains("marker") {
            break;
        }
    }

    // write through A
    let (ok, _, err) = kubectl_raw(
        &kc_a,
        Some(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-a, namespace: default}\ndata: {k: v}\n",
        ),
        &["apply", "-f", "-"],
    );
    assert!(ok, "{err}");
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
            if lines
                .iter()
                .any(|l| l.contains("ADDED") && l.contains("from-a"))
            {
                break;
            }
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ADDED") && l.contains("from-a")),
        "watch on B printed: {lines:?}"
    );
    // and a read on B returns it
    let (ok, out, _) = kubectl_raw(
        &kc_b,
        None,
        &[
            "get",
            "configmap",
            "from-a",
            "-n",
            "default",
            "-o",
            "jsonpath={.data.k}",
        ],
    );
    assert!(ok && out == "v", "{out}");
}
