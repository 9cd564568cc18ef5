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

fn parse(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// kubectl's typed commands send protobuf bodies (and ask for protobuf answers); each stores
/// what kubectl meant, as the same object sent as JSON would be stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_kubectl_commands_send_and_read_protobuf() {
    let s = common::start("kubectl-typed").await;
    let get = |kind: &'static str, name: &'static str| {
        let s = &s;
        async move { parse(&s.kubectl_ok(&["get", kind, name, "-o", "json"], None).await) }
    };

    // the answer kubectl prints with -o json is the server's, read from protobuf
    let created = parse(
        &s.kubectl_ok(
            &[
                "create",
                "deployment",
                "web",
                "--image=nginx:1.27",
                "--replicas=2",
                "--port=80",
                "-o",
                "json",
            ],
            None,
        )
        .await,
    );
    assert!(
        created["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty()),
        "{created}"
    );
    assert!(
        created["metadata"]["creationTimestamp"].is_string(),
        "{created}"
    );
    let d = get("deployment", "web").await;
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["name"], "nginx");
    assert_eq!(c["image"], "nginx:1.27");
    assert_eq!(c["ports"][0]["containerPort"], 80);
    // Go's empty strings are not stored as values
    assert!(c.get("imagePullPolicy").is_none(), "{c}");
    assert_eq!(d["metadata"]["namespace"], "default");

    s.kubectl_ok(&["scale", "deployment", "web", "--replicas=3"], None)
        .await;
    assert_eq!(get("deployment", "web").await["spec"]["replicas"], 3);
    s.kubectl_ok(
        &["set", "image", "deployment/web", "nginx=nginx:1.28"],
        None,
    )
    .await;
    let d = get("deployment", "web").await;
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.28"
    );
    s.kubectl_ok(&["rollout", "restart", "deployment", "web"], None)
        .await;
    let d = get("deployment", "web").await;
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{d}"
    );

    s.kubectl_ok(
        &[
            "create",
            "job",
            "once",
            "--image=busybox",
            "--",
            "echo",
            "hi",
        ],
        None,
    )
    .await;
    let j = get("job", "once").await;
    let pod = &j["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["command"],
        serde_json::json!(["echo", "hi"])
    );
    assert_eq!(pod["restartPolicy"], "Never");

    // the kinds beyond the workload basics, through their typed generators
    s.kubectl_ok(
        &[
            "create",
            "cronjob",
            "nightly",
            "--image=busybox",
            "--schedule=0 3 * * *",
            "--",
            "date",
        ],
        None,
    )
    .await;
    let cj = get("cronjob", "nightly").await;
    assert_eq!(cj["spec"]["schedule"], "0 3 * * *");
    assert_eq!(
        cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["date"])
    );
    s.kubectl_ok(
        &[
            "create",
            "poddisruptionbudget",
            "web",
            "--selector=app=web",
            "--min-available=1",
        ],
        None,
    )
    .await;
    let pdb = get("poddisruptionbudget", "web").await;
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(pdb["spec"]["selector"]["matchLabels"]["app"], "web");
    s.kubectl_ok(
        &[
            "autoscale",
            "deployment",
            "web",
            "--min=2",
            "--max=5",
            "--cpu-percent=70",
        ],
        None,
    )
    .await;
    let hpa = get("hpa", "web").await;
    assert_eq!(hpa["spec"]["maxReplicas"], 5);
    assert_eq!(hpa["spec"]["minReplicas"], 2);
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "web");

    s.kubectl_ok(
        &[
            "create",
            "role",
            "reader",
            "--verb=get,list",
            "--resource=pods",
        ],
        None,
    )
    .await;
    let r = get("role", "reader").await;
    assert_eq!(r["rules"][0]["verbs"], serde_json::json!(["get", "list"]));
    assert_eq!(r["rules"][0]["resources"], serde_json::json!(["pods"]));
    s.kubectl_ok(
        &[
            "create",
            "rolebinding",
            "rb",
            "--role=reader",
            "--user=alice",
        ],
        None,
    )
    .await;
    let rb = get("rolebinding", "rb").await;
    assert_eq!(rb["roleRef"]["name"], "reader");
    assert_eq!(rb["subjects"][0]["name"], "alice");

    s.kubectl_ok(
        &[
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=user=admin",
        ],
        None,
    )
    .await;
    assert_eq!(get("secret", "creds").await["data"]["user"], "YWRtaW4=");

    s.kubectl_ok(
        &["create", "service", "clusterip", "web", "--tcp=80:8080"],
        None,
    )
    .await;
    let svc = get("service", "web").await;
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(svc["spec"]["selector"]["app"], "web");

    s.kubectl_ok(&["create", "namespace", "team-a"], None).await;
    s.kubectl_ok(
        &[
            "create",
            "configmap",
            "cfg",
            "-n",
            "team-a",
            "--from-literal=a=1",
        ],
        None,
    )
    .await;
    let out = s
        .kubectl_ok(
            &[
                "get",
                "configmap",
                "cfg",
                "-n",
                "team-a",
                "-o",
                "jsonpath={.data.a}",
            ],
            None,
        )
        .await;
    assert_eq!(out, "1");

    // a typed delete sends DeleteOptions as protobuf
    s.kubectl_ok(&["delete", "role", "reader"], None).await;
    let (ok, _, err) = s.kubectl(&["get", "role", "reader"], None).await;
    assert!(!ok && err.contains("NotFound"), "{err}");
}

/// A protobuf body that does not decode is a 400 naming the reason, and nothing is stored;
/// errors are Status objects in protobuf for clients that prefer it.
#[tokio::test]
async fn malformed_protobuf_bodies_are_rejected() {
    use tower::ServiceExt;
    let dir = common::TempDir::new("pb-bad");
    let state = common::state(&dir).await;
    let send = |method: &str, uri: &str, body: Vec<u8>| {
        let req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(
                "content-type",
                cellfed_apiserver::http::protobuf::MEDIA_TYPE,
            )
            .header("accept", "application/vnd.kubernetes.protobuf, */*")
            .body(axum::body::Body::from(body))
            .unwrap();
        let state = state.clone();
        async move {
            let resp = cellfed_apiserver::router(state).oneshot(req).await.unwrap();
            let code = resp.status().as_u16();
            let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (code, ct, bytes.to_vec())
        }
    };
    let uri = "/apis/apps/v1/namespaces/default/deployments";
    // k8s\0, TypeMeta {apps/v1, Deployment}, raw = spec (2) holding replicas (1) as bytes
    let mut body = b"k8s\0\x0a\x15\x0a\x07apps/v1\x12\x0aDeployment".to_vec();
    body.extend_from_slice(b"\x12\x07\x12\x05\x0a\x03\x0a\x01\x01");
    let (code, ct, bytes) = send("POST", uri, body).await;
    assert_eq!(code, 400);
    assert_eq!(ct, cellfed_apiserver::http::protobuf::MEDIA_TYPE);
    let status = cellfed_apiserver::http::protobuf::decode(&bytes).unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "BadRequest");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("spec: replicas"),
        "{status}"
    );
    let (code, _, _) = send("POST", uri, b"k8s\0\x0a\xff".to_vec()).await;
    assert_eq!(code, 400);
    let (code, _, bytes) = send("GET", uri, Vec::new()).await;
    assert_eq!(code, 200);
    let list = cellfed_apiserver::http::protobuf::decode(&bytes).unwrap();
    assert_eq!(list["kind"], "DeploymentList");
    assert!(list["items"].as_array().is_none_or(Vec::is_empty), "{list}");
}

/// A watch of a built-in kind asked for in protobuf (client-go's typed informers ask so)
/// streams length-prefixed `WatchEvent` frames whose objects are enveloped protobuf.
#[tokio::test]
async fn watches_stream_protobuf_frames_to_clients_that_prefer_it() {
    use http_body_util::BodyExt;
    use prost::Message;
    use tower::ServiceExt;
    let dir = common::TempDir::new("pb-watch");
    let state = common::state(&dir).await;
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "w"}, "data": {"a": "1"}});
    let (code, _) =
        common::json(&state, "POST", "/api/v1/namespaces/default/configmaps", &cm).await;
    assert_eq!(code, 201);
    let req = http::Request::builder()
        .uri("/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=10")
        .header("accept", "application/vnd.kubernetes.protobuf, */*")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = cellfed_apiserver::router(state).oneshot(req).await.unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let frame_len =
        |b: &[u8]| (b.len() >= 4).then(|| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    common::within(30, "the first watch frame", async {
        while frame_len(&buf).is_none_or(|n| buf.len() < 4 + n) {
            let frame = body.frame().await.expect("a frame").expect("no body error");
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
            }
        }
    })
    .await;
    let n = frame_len(&buf).unwrap();
    let event =
        k8s_pb::apimachinery::pkg::apis::meta::v1::WatchEvent::decode(&buf[4..4 + n]).unwrap();
    assert_eq!(event.r#type.as_deref(), Some("ADDED"));
    let raw = event.object.and_then(|o| o.raw).unwrap();
    let obj = cellfed_apiserver::http::protobuf::decode(&raw).unwrap();
    assert_eq!(obj["kind"], "ConfigMap");
    assert_eq!(obj["metadata"]["name"], "w");
    assert_eq!(obj["data"]["a"], "1");
}
