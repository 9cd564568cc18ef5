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

/// `[{"op":"add","path":"/metadata/labels","value":{"mutated-by":"webhook"}}]`, base64 (as an
/// AdmissionReview response carries a patch).
const LABEL_PATCH: &str = "W3sib3AiOiJhZGQiLCJwYXRoIjoiL21ldGFkYXRhL2xhYmVscyIsInZhbHVlIjp7Im11dGF0ZWQtYnkiOiJ3ZWJob29rIn19XQ==";

/// A plain-HTTP mutating webhook that labels every object it is asked about; returns its port
/// and the number of reviews it answered.
fn labelling_webhook() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = answered.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let count = count.clone();
            std::thread::spawn(move || {
                // one request after another on a kept-alive connection
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                loop {
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let review: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let answer = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                        "response": {"uid": review["request"]["uid"], "allowed": true,
                            "patchType": "JSONPatch", "patch": LABEL_PATCH}})
                    .to_string();
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        answer.len()
                    );
                    if conn.write_all(head.as_bytes()).is_err()
                        || conn.write_all(answer.as_bytes()).is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (port, answered)
}

const GIZMO_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gizmos.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gizmos, singular: gizmo, kind: Gizmo}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

#[test]
fn a_crd_and_a_webhook_created_through_one_replica_are_in_effect_on_the_other() {
    if cellfed_e2e::skip(
        "a_crd_and_a_webhook_created_through_one_replica_are_in_effect_on_the_other",
        true,
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let prefix = format!("e2e_replica_hooks_{}", std::process::id());
    let (_a, kc_a) = start(&tmp.path().join("a"), &prefix);
    let (_b, kc_b) = start(&tmp.path().join("b"), &prefix);
    let gizmo = |name: &str| {
        format!(
            "apiVersion: example.com/v1\nkind: Gizmo\nmetadata: {{name: {name}, namespace: default}}\n"
        )
    };

    // the CRD, created through A, is served by B
    let (ok, _, err) = kubectl_raw(&kc_a, Some(GIZMO_CRD), &["apply", "-f", "-"]);
    assert!(ok, "{err}");
    eventually(10, "B to serve the CRD created through A", || {
        let (ok, _, err) = kubectl_raw(&kc_b, Some(&gizmo("first")), &["apply", "-f", "-"]);
        if ok { Ok(()) } else { Err(err) }
    });

    // the webhook configuration, created through A, is called by B
    let (port, answered) = labelling_webhook();
    let config = format!(
        "apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {{name: gizmo-labeller}}
webhooks:
- name: label.example.com
  clientConfig: {{url: \"http://127.0.0.1:{port}/mutate\"}}
  rules: [{{apiGroups: [example.com], apiVersions: [v1], resources: [gizmos], operations: [CREATE]}}]
  failurePolicy: Fail
  sideEffects: None
  admissionReviewVersions: [v1]
"
    );
    let (ok, _, err) = kubectl_raw(&kc_a, Some(&config), &["apply", "-f", "-"]);
    assert!(ok, "{err}");
    let mut n = 0;
    eventually(10, "B to call the webhook configured through A", || {
        n += 1;
        let name = format!("g{n}");
        let (ok, _, err) = kubectl_raw(&kc_b, Some(&gizmo(&name)), &["create", "-f", "-"]);
        assert!(ok, "{err}");
        let (_, label, _) = kubectl_raw(
            &kc_b,
            None,
            &[
                "get",
                "gizmo",
                &name,
                "-n",
                "default",
                "-o",
                "jsonpath={.metadata.labels.mutated-by}",
            ],
        );
        if label == "webhook" {
            Ok(())
        } else {
            Err(format!("{name} has label {label:?}"))
        }
    });
    assert!(answered.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}
