//! The real kubectl against a real server (TLS, bearer token, SQLite store).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{eventually, start};

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  color: blue
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_get_label_annotate_delete() {
    let s = start("kubectl-basic").await;
    let out = s.kubectl_ok(&["apply", "-f", "-"], Some(MANIFESTS)).await;
    assert!(out.contains("namespace/shop created"), "{out}");
    assert!(out.contains("configmap/settings created"), "{out}");
    assert!(out.contains("deployment.apps/web created"), "{out}");

    let out = s.kubectl_ok(&["get", "deploy", "-n", "shop"], None).await;
    assert!(
        out.contains("NAME")
            && out.contains("READY")
            && out.contains("UP-TO-DATE")
            && out.contains("web"),
        "{out}"
    );

    let out = s
        .kubectl_ok(&["get", "cm", "settings", "-n", "shop", "-o", "yaml"], None)
        .await;
    assert!(
        out.contains("color: blue") && out.contains("resourceVersion:") && out.contains("uid:"),
        "{out}"
    );

    // Apply again with a change: kubectl computes a patch against last-applied.
    let changed = MANIFESTS.replace("color: blue", "color: green");
    let out = s.kubectl_ok(&["apply", "-f", "-"], Some(&changed)).await;
    assert!(out.contains("configmap/settings configured"), "{out}");
    assert!(out.contains("namespace/shop unchanged"), "{out}");
    let out = s
        .kubectl_ok(
            &[
                "get",
                "cm",
                "settings",
                "-n",
                "shop",
                "-o",
                "jsonpath={.data.color}",
            ],
            None,
        )
        .await;
    assert_eq!(out, "green");

    s.kubectl_ok(
        &["label", "cm", "settings", "-n", "shop", "tier=gold"],
        None,
    )
    .await;
    s.kubectl_ok(
        &["annotate", "cm", "settings", "-n", "shop", "note=hi"],
        None,
    )
    .await;
    let out = s
        .kubectl_ok(
            &[
                "get",
                "cm",
                "-n",
                "shop",
                "-l",
                "tier=gold",
                "-o",
                "jsonpath={.items[*].metadata.annotations.note}",
            ],
            None,
        )
        .await;
    assert_eq!(out, "hi");

    let out = s
        .kubectl_ok(
            &["apply", "--dry-run=server", "-f", "-"],
            Some(&MANIFESTS.replace("color: blue", "color: red")),
        )
        .await;
    assert!(out.contains("(server dry run)"), "{out}");
    let out = s
        .kubectl_ok(
            &[
                "get",
                "cm",
                "settings",
                "-n",
                "shop",
                "-o",
                "jsonpath={.data.color}",
            ],
            None,
        )
        .await;
    assert_eq!(out, "green", "a server dry run must not store anything");

    s.kubectl_ok(
        &[
            "delete",
            "cm",
            "settings",
            "-n",
            "shop",
            "--wait",
            "--timeout=30s",
        ],
        None,
    )
    .await;
    let (ok, _, err) = s
        .kubectl(&["get", "cm", "settings", "-n", "shop"], None)
        .await;
    assert!(!ok && err.contains("NotFound"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_api_resources_lists_builtins() {
    let s = start("kubectl-discovery").await;
    let out = s.kubectl_ok(&["api-resources"], None).await;
    for needle in [
        "deployments",
        "deploy",
        "apps/v1",
        "configmaps",
        "cm",
        "customresourcedefinitions",
        "crd,crds",
        "leases",
        "coordination.k8s.io/v1",
    ] {
        assert!(out.contains(needle), "api-resources lacks {needle}:\n{out}");
    }
    let out = s.kubectl_ok(&["version", "-o", "json"], None).await;
    assert!(out.contains("serverVersion"), "{out}");
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - name: Size
      type: integer
      jsonPath: .spec.size
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size:
                type: integer
                maximum: 10
          status:
            type: object
            properties:
              ready:
                type: boolean
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_crd_then_custom_resource() {
    let s = start("kubectl-crd").await;
    let out = s.kubectl_ok(&["apply", "-f", "-"], Some(CRD)).await;
    assert!(
        out.contains("customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"),
        "{out}"
    );
    let cond = s
        .kubectl_ok(
            &[
                "get",
                "crd",
                "widgets.example.com",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
            ],
            None,
        )
        .await;
    assert_eq!(cond, "True");
    let cr = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: default\nspec:\n  size: 3\n";
    let out = s.kubectl_ok(&["apply", "-f", "-"], Some(cr)).await;
    assert!(out.contains("widget.example.com/w1 created"), "{out}");
    let out = s.kubectl_ok(&["get", "widgets"], None).await;
    assert!(
        out.contains("SIZE") && out.contains("w1") && out.contains('3'),
        "{out}"
    );
    let out = s
        .kubectl_ok(&["get", "wd", "w1", "-o", "jsonpath={.spec.size}"], None)
        .await;
    assert_eq!(out, "3");
    let bad = cr.replace("size: 3", "size: 30");
    let (ok, _, err) = s.kubectl(&["apply", "-f", "-"], Some(&bad)).await;
    assert!(
        !ok && err.contains("spec.size") && err.contains("less than or equal to 10"),
        "{err}"
    );
    s.kubectl_ok(&["delete", "crd", "widgets.example.com"], None)
        .await;
    let (ok, _, err) = s.kubectl(&["get", "widgets"], None).await;
    assert!(!ok, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_prints_later_change() {
    let s = start("kubectl-watch").await;
    s.kubectl_ok(&["apply", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\n  namespace: default\ndata:\n  a: \"1\"\n")).await;
    let mut child = tokio::process::Command::new("kubectl")
        .env("KUBECONFIG", &s.kubeconfig)
        .env("HOME", &s.dir.0)
        .args([
            "get",
            "cm",
            "-w",
            "-o",
            "custom-columns=NAME:.metadata.name,A:.data.a",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = lines.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut r = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(l)) = r.next_line().await {
            let mut g = sink.lock().unwrap();
            g.push_str(&l);
            g.push('\n');
        }
    });
    eventually(20, "initial line", || {
        let lines = lines.clone();
        async move { lines.lock().unwrap().contains("watched").then_some(()) }
    })
    .await;
    s.kubectl_ok(
        &[
            "patch",
            "configmap",
            "watched",
            "--type=merge",
            "-p",
            r#"{"data":{"a":"2"}}"#,
        ],
        None,
    )
    .await;
    let seen = eventually(20, "the change", || {
        let lines = lines.clone();
        async move {
            let g = lines.lock().unwrap();
            g.lines()
                .any(|l| l.starts_with("watched") && l.trim_end().ends_with('2'))
                .then(|| g.clone())
        }
    })
    .await;
    assert!(seen.contains('1'), "{seen}");
    child.kill().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scale_rollout_server_side_apply_explain_and_namespace_delete() {
    let s = start("kubectl-more").await;
    s.kubectl_ok(&["apply", "-f", "-"], Some(MANIFESTS)).await;
    let out = s
        .kubectl_ok(
            &["scale", "deploy", "web", "-n", "shop", "--replicas=4"],
            None,
        )
        .await;
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    let out = s.kubectl_ok(&["get", "all", "-n", "shop"], None).await;
    assert!(
        out.contains("deployment.apps/web") && out.contains("0/4"),
        "{out}"
    );
    let out = s
        .kubectl_ok(&["rollout", "restart", "deploy/web", "-n", "shop"], None)
        .await;
    assert!(out.contains("restarted"), "{out}");
    let generation = s
        .kubectl_ok(
            &[
                "get",
                "deploy",
                "web",
                "-n",
                "shop",
                "-o",
                "jsonpath={.metadata.generation}",
            ],
            None,
        )
        .await;
    assert_eq!(generation, "3", "scale and restart each changed the spec");
    let out = s
        .kubectl_ok(&["explain", "deployment.spec.replicas"], None)
        .await;
    assert!(out.contains("replicas <integer>"), "{out}");
    let pink = MANIFESTS.replace("color: blue", "color: pink");
    let (ok, _, err) = s
        .kubectl(&["apply", "--server-side", "-f", "-"], Some(&pink))
        .await;
    assert!(
        !ok && err.contains("conflict with \"kubectl-client-side-apply\": .data.color"),
        "{err}"
    );
    let out = s
        .kubectl_ok(
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            Some(&pink),
        )
        .await;
    assert!(
        out.contains("configmap/settings serverside-applied"),
        "{out}"
    );
    let out = s
        .kubectl_ok(
            &[
                "get",
                "cm",
                "settings",
                "-n",
                "shop",
                "-o",
                "jsonpath={.data.color}",
            ],
            None,
        )
        .await;
    assert_eq!(out, "pink");
    s.kubectl_ok(&["delete", "ns", "shop", "--wait", "--timeout=30s"], None)
        .await;
    let (ok, _, err) = s.kubectl(&["get", "ns", "shop"], None).await;
    assert!(!ok && err.contains("NotFound"), "{err}");
    let (ok, _, err) = s
        .kubectl(&["get", "cm", "settings", "-n", "shop"], None)
        .await;
    assert!(!ok && err.contains("NotFound"), "{err}");
}
