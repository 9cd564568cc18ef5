//! `cellfed member`'s simulated workload controllers through the real kubectl: rollouts, scales,
//! image changes and Jobs complete as a member cluster's controllers would complete them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {color: blue}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "nginx:1.27"}
"#;

/// `cellfed member`'s simulated workload controllers follow each write as it happens: a
/// rollout completes, a scale and an image change complete again (each a new generation),
/// a Job completes — while other objects of the member are left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_workloads_roll_out_as_they_are_written() {
    let srv = support::start_member("member-sim").await;
    srv.kubectl_ok(&["apply", "-f", "-"], Some(MANIFESTS)).await;
    let status = [
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "shop",
        "--timeout=60s",
    ];
    let out = srv.kubectl_ok(&status, None).await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let cm_version = [
        "get",
        "cm/settings",
        "-n",
        "shop",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ];
    let cm_before = srv.kubectl_ok(&cm_version, None).await;

    srv.kubectl_ok(&["scale", "deploy/web", "-n", "shop", "--replicas=4"], None)
        .await;
    srv.kubectl_ok(&status, None).await;
    srv.kubectl_ok(
        &["set", "image", "deploy/web", "-n", "shop", "web=nginx:1.28"],
        None,
    )
    .await;
    srv.kubectl_ok(&status, None).await;
    let ready = srv
        .kubectl_ok(
            &[
                "get",
                "deploy/web",
                "-n",
                "shop",
                "-o",
                "jsonpath={.status.readyReplicas}/{.status.observedGeneration}/{.metadata.generation}",
            ],
            None,
        )
        .await;
    let parts: Vec<&str> = ready.split('/').collect();
    assert_eq!(parts[0], "4", "{ready}");
    assert_eq!(
        parts[1], parts[2],
        "status observed the last generation: {ready}"
    );

    let job = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: once, namespace: shop}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox}]\n";
    srv.kubectl_ok(&["apply", "-f", "-"], Some(job)).await;
    srv.kubectl_ok(
        &[
            "wait",
            "--for=condition=complete",
            "job/once",
            "-n",
            "shop",
            "--timeout=60s",
        ],
        None,
    )
    .await;
    let cm_after = srv.kubectl_ok(&cm_version, None).await;
    assert_eq!(
        cm_before, cm_after,
        "the simulator never wrote the ConfigMap"
    );
}
