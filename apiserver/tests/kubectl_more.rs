//! kubectl against the real server: `edit` through a scripted KUBE_EDITOR, `patch` in all three
//! flavours, `apply --dry-run=server`, `apply --server-side` twice with a changed field, and an
//! update of a custom resource without resourceVersion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: default}\ndata: {level: info}\n";

const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "nginx:1", env: [{name: A, value: "1"}]}
      - {name: sidecar, image: "envoy:1"}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_patch_dry_run_and_server_side_apply() {
    let s = common::start("kubectl-more").await;
    s.kubectl_ok(&["apply", "-f", "-"], Some(CM)).await;

    // kubectl edit with a scripted editor (sed rewrites the file kubectl hands it)
    let editor = s.dir.0.join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/level: info/level: debug/' \"$1\"\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&editor)
        .status()
        .unwrap();
    let out = tokio::process::Command::new("kubectl")
        .env("KUBECONFIG", &s.kubeconfig)
        .env("KUBE_EDITOR", &editor)
        .args(["edit", "configmap", "app"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let level = s
        .kubectl_ok(
            &["get", "configmap", "app", "-o", "jsonpath={.data.level}"],
            None,
        )
        .await;
    assert_eq!(level, "debug");

    // patch: json (with test), merge, strategic (containers merged by name)
    s.kubectl_ok(&["patch", "configmap", "app", "--type=json", "-p", r#"[{"op":"test","path":"/data/level","value":"debug"},{"op":"add","path":"/data/extra","value":"1"}]"#], None).await;
    let (ok, _, err) = s
        .kubectl(
            &[
                "patch",
                "configmap",
                "app",
                "--type=json",
                "-p",
                r#"[{"op":"test","path":"/data/level","value":"nope"}]"#,
            ],
            None,
        )
        .await;
    assert!(!ok && err.contains("test"), "{err}");
    s.kubectl_ok(
        &[
            "patch",
            "configmap",
            "app",
            "--type=merge",
            "-p",
            r#"{"data":{"extra":null,"merged":"yes"}}"#,
        ],
        None,
    )
    .await;
    let data = s
        .kubectl_ok(&["get", "configmap", "app", "-o", "jsonpath={.data}"], None)
        .await;
    assert!(data.contains("merged") && !data.contains("extra"), "{data}");
    s.kubectl_ok(&["apply", "-f", "-"], Some(DEPLOY)).await;
    s.kubectl_ok(
        &[
            "patch",
            "deployment",
            "web",
            "--type=strategic",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:2"}]}}}}"#,
        ],
        None,
    )
    .await;
    let images = s
        .kubectl_ok(
            &[
                "get",
                "deployment",
                "web",
                "-o",
                "jsonpath={.spec.template.spec.containers[*].image}",
            ],
            None,
        )
        .await;
    assert_eq!(
        images, "nginx:2 envoy:1",
        "strategic merge keeps the sidecar"
    );
    let env = s
        .kubectl_ok(
            &[
                "get",
                "deployment",
                "web",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].env[0].value}",
            ],
            None,
        )
        .await;
    assert_eq!(
        env, "1",
        "strategic merge keeps fields the patch does not mention"
    );

    // apply --dry-run=server stores nothing
    let out = s
        .kubectl_ok(
            &["apply", "--dry-run=server", "-f", "-"],
            Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ghost, namespace: default}\n"),
        )
        .await;
    assert!(out.contains("(server dry run)"), "{out}");
    let (found, _, _) = s.kubectl(&["get", "configmap", "ghost"], None).await;
    assert!(!found);

    // server-side apply twice: the second changes a field, managedFields name the manager
    s.kubectl_ok(&["apply", "--server-side", "--field-manager=team", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa, namespace: default}\ndata: {a: '1', b: '2'}\n")).await;
    s.kubectl_ok(&["apply", "--server-side", "--field-manager=team", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa, namespace: default}\ndata: {a: '9'}\n")).await;
    let data = s
        .kubectl_ok(&["get", "configmap", "ssa", "-o", "jsonpath={.data}"], None)
        .await;
    assert!(
        data.contains("\"a\":\"9\"") && !data.contains("\"b\""),
        "fields dropped from the applied config are removed: {data}"
    );
    let managers = s
        .kubectl_ok(
            &[
                "get",
                "configmap",
                "ssa",
                "--show-managed-fields",
                "-o",
                "jsonpath={.metadata.managedFields[*].manager}",
            ],
            None,
        )
        .await;
    assert!(managers.contains("team"), "{managers}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_of_a_custom_resource_without_resource_version_is_invalid() {
    let s = common::start("cr-put").await;
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(
            r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#,
        ),
    )
    .await;
    common::eventually(30, "CRD served", || async {
        s.kubectl(&["get", "widgets"], None).await.0.then_some(())
    })
    .await;
    s.kubectl_ok(&["apply", "-f", "-"], Some("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: default}\nspec: {size: 1}\n")).await;
    let body = r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"default"},"spec":{"size":2}}"#;
    let file = s.dir.0.join("w.json");
    std::fs::write(&file, body).unwrap();
    let (ok, _, err) = s
        .kubectl(
            &[
                "replace",
                "--raw",
                "/apis/example.com/v1/namespaces/default/widgets/w",
                "-f",
                file.to_str().unwrap(),
            ],
            None,
        )
        .await;
    assert!(!ok);
    assert!(
        err.contains("metadata.resourceVersion") && err.contains("must be specified for an update"),
        "{err}"
    );
    let size = s
        .kubectl_ok(&["get", "widget", "w", "-o", "jsonpath={.spec.size}"], None)
        .await;
    assert_eq!(size, "1", "nothing stored");
}
