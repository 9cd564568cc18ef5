//! `kubectl wait` against a member server (workload statuses simulated): a condition that
//! becomes true, a JSONPath value, a condition that never comes (the timeout kubectl reports),
//! and deletion and creation of an object — each a watch with a field selector on one name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::common;

const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "nginx:1"}
"#;

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: default}\ndata: {level: info}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_for_conditions_values_deletion_and_creation() {
    let s = support::start_member("kubectl-wait").await;
    s.kubectl_ok(&["apply", "-f", "-"], Some(DEPLOY)).await;

    // a condition the simulated controller sets
    let out = s
        .kubectl_ok(
            &[
                "wait",
                "--for=condition=Available",
                "deployment/web",
                "--timeout=50s",
            ],
            None,
        )
        .await;
    assert_eq!(out.trim(), "deployment.apps/web condition met");

    // a status value, by JSONPath
    let out = s
        .kubectl_ok(
            &[
                "wait",
                "--for=jsonpath={.status.readyReplicas}=2",
                "deployment/web",
                "--timeout=50s",
            ],
            None,
        )
        .await;
    assert_eq!(out.trim(), "deployment.apps/web condition met");

    // a condition that never comes: kubectl's own timeout message, exit code 1
    let (ok, _, err) = s
        .kubectl(
            &[
                "wait",
                "--for=condition=Frozen",
                "deployment/web",
                "--timeout=2s",
            ],
            None,
        )
        .await;
    assert!(!ok, "waiting for a condition that never comes succeeded");
    assert!(
        err.contains("timed out waiting for the condition on deployments/web"),
        "{err}"
    );

    // creation then deletion, each observed by a wait started before the change
    let kubeconfig = s.kubeconfig.clone();
    let home = s.dir.0.clone();
    let wait = |for_: &'static str| {
        let kubeconfig = kubeconfig.clone();
        let home = home.clone();
        tokio::spawn(async move {
            tokio::process::Command::new("kubectl")
                .env("KUBECONFIG", &kubeconfig)
                .env("HOME", &home)
                .args(["wait", for_, "configmap/app", "--timeout=50s"])
                .output()
                .await
                .unwrap()
        })
    };
    let watching = configmap_reads(&s).await;
    let created = wait("--for=create");
    waiter_asking(&s, watching).await;
    s.kubectl_ok(&["apply", "-f", "-"], Some(CM)).await;
    let out = common::within(55, "kubectl wait --for=create", created)
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "configmap/app condition met"
    );

    let watching = configmap_reads(&s).await;
    let deleted = wait("--for=delete");
    waiter_asking(&s, watching).await;
    s.kubectl_ok(&["delete", "configmap", "app"], None).await;
    let out = common::within(55, "kubectl wait --for=delete", deleted)
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "configmap/app condition met"
    );
}

/// Reads of ConfigMaps (GET, LIST, WATCH) the server has answered (`apiserver_request_total`).
async fn configmap_reads(s: &common::Running) -> u64 {
    let metrics = s.kubectl_ok(&["get", "--raw", "/metrics"], None).await;
    metrics
        .lines()
        .filter(|l| {
            ["GET", "LIST", "WATCH"].iter().any(|verb| {
                l.starts_with(&format!(
                    "apiserver_request_total{{verb=\"{verb}\",resource=\"configmaps\","
                ))
            })
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Waits until ConfigMaps were read after `before` reads were counted: the waiter has asked
/// (a --for=create waiter polls with GET, a --for=delete waiter lists, then watches from that
/// list), so the change that follows is one it must observe.
async fn waiter_asking(s: &common::Running, before: u64) {
    common::eventually(30, "kubectl wait asking", || async {
        (configmap_reads(s).await > before).then_some(())
    })
    .await;
}
