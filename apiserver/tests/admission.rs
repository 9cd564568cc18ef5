//! Mutating and validating admission webhooks with the real kubectl against real servers (TLS,
//! SQLite) and a real HTTPS webhook: patches applied before validation and storage, failure
//! policies, dry run and side effects, namespace and object selectors, reinvocation, patches
//! that may not apply, configurations read from a watch-fed cache, and a second replica on the
//! same database calling a webhook and serving a CRD created through the first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use base64::Engine as _;
use common::{Running, TempDir, eventually, start_with};
use serde_json::{Value, json};

/// What the test webhook received: (path, AdmissionRequest).
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// A real HTTPS admission webhook on `localhost`, whose behaviour is chosen by the path:
/// - `/label`: adds the label `mutated-by=webhook`, with a warning;
/// - `/record`: allows without a patch (a validating webhook);
/// - `/fail`: answers HTTP 500;
/// - `/rename`: patches `metadata.name`;
/// - `/first`: sets the label `first-saw` to the value of the label `second` (or `none`);
/// - `/second`: sets the label `second=done`;
/// - `/bad-patch`: answers a patch that does not apply;
/// - `/deny`: denies with 403 `kept by the test`.
struct Webhook {
    /// base64 PEM of the CA that signed the webhook's certificate.
    ca_bundle: String,
    /// `https://localhost:<port>`.
    base: String,
    seen: Seen,
    _dir: TempDir,
}

impl Webhook {
    async fn start() -> Self {
        let dir = TempDir::new("admission-hook");
        let seen: Seen = Arc::default();
        let app = axum::Router::new()
            .route("/{behaviour}", axum::routing::post(review))
            .with_state(seen.clone());
        let (ca_bundle, addr) = common::serve_https(&dir.0, &["localhost"], app).await;
        Self {
            ca_bundle,
            base: format!("https://localhost:{}", addr.port()),
            seen,
            _dir: dir,
        }
    }

    /// The requests `behaviour` received for objects named `name`.
    fn requests(&self, behaviour: &str, name: &str) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(b, r)| b == behaviour && r["name"] == name)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// A webhook entry calling `behaviour`, for ConfigMap writes, merged with `extra`.
    fn hook(&self, behaviour: &str, extra: Value) -> Value {
        let mut h = json!({"name": format!("{behaviour}.example.com"),
            "clientConfig": {"url": format!("{}/{behaviour}", self.base), "caBundle": self.ca_bundle},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"], "operations": ["CREATE", "UPDATE"]}],
            "failurePolicy": "Fail", "sideEffects": "None", "timeoutSeconds": 5, "admissionReviewVersions": ["v1"]});
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        h
    }
}

fn config(kind: &str, name: &str, hooks: Vec<Value>) -> String {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
        "metadata": {"name": name}, "webhooks": hooks})
    .to_string()
}

fn mutating(name: &str, hooks: Vec<Value>) -> String {
    config("MutatingWebhookConfiguration", name, hooks)
}

fn validating(name: &str, hooks: Vec<Value>) -> String {
    config("ValidatingWebhookConfiguration", name, hooks)
}

fn label_patch(obj: &Value, key: &str, value: &str) -> Value {
    if obj
        .pointer("/metadata/labels")
        .is_some_and(Value::is_object)
    {
        json!([{"op": "add", "path": format!("/metadata/labels/{}", key.replace('~', "~0").replace('/', "~1")), "value": value}])
    } else {
        json!([{"op": "add", "path": "/metadata/labels", "value": {key: value}}])
    }
}

async fn review(
    State(seen): State<Seen>,
    Path(behaviour): Path<String>,
    Json(review): Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let request = review["request"].clone();
    seen.lock()
        .unwrap()
        .push((behaviour.clone(), request.clone()));
    let obj = &request["object"];
    let label = |k, v| (label_patch(obj, k, v), vec![]);
    let (patch, warnings): (Value, Vec<&str>) = match behaviour.as_str() {
        "fail" => {
            return (http::StatusCode::INTERNAL_SERVER_ERROR, "the webhook broke").into_response();
        }
        "label" => (
            label_patch(obj, "mutated-by", "webhook"),
            vec!["labelled by the test webhook"],
        ),
        "rename" => (
            json!([{"op": "replace", "path": "/metadata/name", "value": "renamed"}]),
            vec![],
        ),
        "first" => label(
            "first-saw",
            obj.pointer("/metadata/labels/second")
                .and_then(Value::as_str)
                .unwrap_or("none"),
        ),
        "second" => label("second", "done"),
        "bad-patch" => (
            json!([{"op": "remove", "path": "/metadata/labels/missing"}]),
            vec![],
        ),
        _ => (Value::Null, vec![]),
    };
    if behaviour == "deny" {
        return Json(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": request["uid"], "allowed": false, "status": {"code": 403, "message": "kept by the test"}}}))
        .into_response();
    }
    let mut response = json!({"uid": request["uid"], "allowed": true, "warnings": warnings});
    if !patch.is_null() {
        response["patchType"] = json!("JSONPatch");
        response["patch"] =
            json!(base64::engine::general_purpose::STANDARD.encode(patch.to_string()));
    }
    Json(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}))
        .into_response()
}

async fn server(tag: &str) -> Running {
    start_with(tag, |_| {}).await
}

async fn label_of(s: &Running, ns: &str, name: &str, label: &str) -> String {
    s.kubectl_ok(
        &[
            "get",
            "configmap",
            name,
            "-n",
            ns,
            "-o",
            &format!(
                "jsonpath={{.metadata.labels.{}}}",
                label.replace('.', "\\.")
            ),
        ],
        None,
    )
    .await
}

async fn fails(s: &Running, args: &[&str]) -> String {
    let (ok, out, err) = s.kubectl(args, None).await;
    assert!(!ok, "kubectl {args:?} succeeded: {out}");
    err
}

async fn absent(s: &Running, ns: &str, name: &str) {
    let err = fails(s, &["get", "configmap", name, "-n", ns]).await;
    assert!(err.contains("NotFound"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutating_webhook_labels_what_is_validated_and_stored() {
    let s = server("admission-label").await;
    let hook = Webhook::start().await;
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&mutating("labeller", vec![hook.hook("label", json!({}))])),
    )
    .await;
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&validating(
            "recorder",
            vec![hook.hook("record", json!({}))],
        )),
    )
    .await;

    // CREATE: stored with the label, the validating webhook saw it, the warning reached kubectl
    let (ok, _, err) = s
        .kubectl(&["create", "configmap", "c", "-n", "default"], None)
        .await;
    assert!(ok, "{err}");
    assert!(
        err.contains("Warning: labelled by the test webhook"),
        "{err}"
    );
    assert_eq!(label_of(&s, "default", "c", "mutated-by").await, "webhook");
    let create = &hook.requests("label", "c")[0];
    assert_eq!(create["operation"], "CREATE");
    assert_eq!(create["dryRun"], false);
    assert_eq!(create["namespace"], "default");
    assert_eq!(create["options"]["kind"], "CreateOptions");
    assert_eq!(create["userInfo"]["username"], "admin");
    assert!(create["oldObject"].is_null());
    let validated = &hook.requests("record", "c")[0];
    assert_eq!(
        validated["object"]["metadata"]["labels"]["mutated-by"],
        "webhook"
    );

    // UPDATE: the webhook sees the stored object as oldObject
    s.kubectl_ok(&["label", "configmap", "c", "-n", "default", "x=y"], None)
        .await;
    let update = hook.requests("label", "c").pop().unwrap();
    assert_eq!(update["operation"], "UPDATE");
    assert_eq!(
        update["oldObject"]["metadata"]["labels"]["mutated-by"],
        "webhook"
    );
    assert_eq!(update["object"]["metadata"]["labels"]["x"], "y");

    // Dry run: sideEffects None webhooks are called with dryRun true; nothing is stored
    let out = s
        .kubectl_ok(
            &[
                "create",
                "configmap",
                "d",
                "-n",
                "default",
                "--dry-run=server",
                "-o",
                "jsonpath={.metadata.labels.mutated-by}",
            ],
            None,
        )
        .await;
    assert_eq!(out, "webhook");
    let dry = &hook.requests("label", "d")[0];
    assert_eq!(dry["dryRun"], true);
    assert_eq!(dry["options"]["dryRun"], json!(["All"]));
    absent(&s, "default", "d").await;

    // a webhook with side effects refuses dry runs with kube's 400, before being called
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&mutating(
            "effects",
            vec![hook.hook(
                "record",
                json!({"name": "effects.example.com", "sideEffects": "Some"}),
            )],
        )),
    )
    .await;
    let err = fails(
        &s,
        &[
            "create",
            "configmap",
            "e",
            "-n",
            "default",
            "--dry-run=server",
            "-v=6",
        ],
    )
    .await;
    assert!(
        err.contains("admission webhook \"effects.example.com\" does not support dry run")
            && err.contains("400 Bad Request"),
        "{err}"
    );
    assert!(hook.requests("record", "e").is_empty());
    absent(&s, "default", "e").await;

    // writes read the configurations from the cache: no store LIST of them
    let prefix = "/registry/admissionregistration.k8s.io/";
    let lists = s.state.store.list_calls(prefix);
    for i in 0..5 {
        s.kubectl_ok(
            &["create", "configmap", &format!("n{i}"), "-n", "default"],
            None,
        )
        .await;
    }
    assert_eq!(label_of(&s, "default", "n4", "mutated-by").await, "webhook");
    assert_eq!(s.state.store.list_calls(prefix), lists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_webhooks_follow_their_failure_policy() {
    let s = server("admission-fail").await;
    let hook = Webhook::start().await;

    // HTTP 500 under Fail: refused with kube's message, nothing stored
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&mutating("broken", vec![hook.hook("fail", json!({}))])),
    )
    .await;
    let err = fails(&s, &["create", "configmap", "a", "-n", "default"]).await;
    assert!(
        err.contains("Internal error occurred: failed calling webhook \"fail.example.com\""),
        "{err}"
    );
    absent(&s, "default", "a").await;

    // unreachable under Ignore: stored unmutated
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://localhost:{}/label",
        closed.local_addr().unwrap().port()
    );
    drop(closed);
    let unreachable = hook.hook(
        "label",
        json!({"clientConfig": {"url": url, "caBundle": hook.ca_bundle}, "failurePolicy": "Ignore"}),
    );
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&mutating("broken", vec![unreachable])),
    )
    .await;
    s.kubectl_ok(&["create", "configmap", "b", "-n", "default"], None)
        .await;
    assert_eq!(label_of(&s, "default", "b", "mutated-by").await, "");

    // a patch that renames the object is a failed call: refused under Fail
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&mutating("broken", vec![hook.hook("rename", json!({}))])),
    )
    .await;
    let err = fails(&s, &["create", "configmap", "c", "-n", "default"]).await;
    assert!(
        err.contains("failed calling webhook \"rename.example.com\"")
            && err.contains("metadata.name from \"c\" to \"renamed\""),
        "{err}"
    );
    absent(&s, "default", "c").await;
    absent(&s, "default", "renamed").await;

    // a patch that does not apply: refused under Fail, the object stored unmutated under Ignore
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&mutating("broken", vec![hook.hook("bad-patch", json!({}))])),
    )
    .await;
    let err = fails(&s, &["create", "configmap", "d", "-n", "default"]).await;
    assert!(
        err.contains(
            "failed calling webhook \"bad-patch.example.com\": the JSON patch does not apply"
        ),
        "{err}"
    );
    absent(&s, "default", "d").await;
    let ignored = hook.hook("bad-patch", json!({"failurePolicy": "Ignore"}));
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&mutating("broken", vec![ignored])),
    )
    .await;
    s.kubectl_ok(&["create", "configmap", "d", "-n", "default"], None)
        .await;
    assert_eq!(hook.requests("bad-patch", "d").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validating_webhook_that_is_down_follows_its_failure_policy() {
    let s = server("admission-down").await;
    let hook = Webhook::start().await;
    // nothing listens on the webhook's port
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://localhost:{}/record",
        closed.local_addr().unwrap().port()
    );
    drop(closed);
    let down = |policy: &str| {
        hook.hook(
            "down",
            json!({"clientConfig": {"url": url, "caBundle": hook.ca_bundle}, "failurePolicy": policy}),
        )
    };

    // Fail: refused, saying which webhook could not be called; nothing stored
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&validating("guard", vec![down("Fail")])),
    )
    .await;
    let err = fails(&s, &["create", "configmap", "a", "-n", "default"]).await;
    assert!(
        err.contains("Internal error occurred: failed calling webhook \"down.example.com\""),
        "{err}"
    );
    absent(&s, "default", "a").await;

    // Ignore: the write passes
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&validating("guard", vec![down("Ignore")])),
    )
    .await;
    s.kubectl_ok(&["create", "configmap", "a", "-n", "default"], None)
        .await;
}

/// kube-apiserver's `--request-timeout`: a write stuck behind a webhook that accepts the
/// connection and never answers (its own timeoutSeconds longer than the server's limit) is
/// answered 504 Timeout at the limit, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_stuck_past_the_request_timeout_answers_504() {
    let s = start_with("admission-deadline", |c| {
        c.request_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    let hook = Webhook::start().await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}/record",
        silent.local_addr().unwrap().port()
    );
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn);
        }
    });
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&validating(
            "silent",
            vec![hook.hook(
                "silent",
                json!({"clientConfig": {"url": url, "caBundle": hook.ca_bundle}, "timeoutSeconds": 20}),
            )],
        )),
    )
    .await;
    let err = fails(&s, &["create", "configmap", "a", "-n", "default"]).await;
    assert!(
        err.contains("Timeout: request did not complete within requested timeout"),
        "{err}"
    );
    held.abort();
    absent(&s, "default", "a").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_choose_what_webhooks_see_and_reinvocation_reruns_them() {
    let s = server("admission-select").await;
    let hook = Webhook::start().await;
    let selected = json!({"namespaceSelector": {"matchLabels": {"webhooks": "on"}},
        "objectSelector": {"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]}});
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&mutating(
            "labeller",
            vec![hook.hook("label", selected.clone())],
        )),
    )
    .await;
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&validating("recorder", vec![hook.hook("record", selected)])),
    )
    .await;
    s.kubectl_ok(&["create", "namespace", "sel-on"], None).await;
    s.kubectl_ok(&["label", "namespace", "sel-on", "webhooks=on"], None)
        .await;
    s.kubectl_ok(&["create", "namespace", "sel-off"], None)
        .await;

    s.kubectl_ok(&["create", "configmap", "in-on", "-n", "sel-on"], None)
        .await;
    s.kubectl_ok(&["create", "configmap", "in-off", "-n", "sel-off"], None)
        .await;
    let skipped = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: skipped, namespace: sel-on, labels: {skip: \"yes\"}}\n";
    s.kubectl_ok(&["apply", "-f", "-"], Some(skipped)).await;
    assert_eq!(
        label_of(&s, "sel-on", "in-on", "mutated-by").await,
        "webhook"
    );
    assert_eq!(hook.requests("label", "in-on").len(), 1);
    assert_eq!(hook.requests("record", "in-on").len(), 1);
    for name in ["in-off", "skipped"] {
        assert!(hook.requests("label", name).is_empty(), "{name}");
        assert!(hook.requests("record", name).is_empty(), "{name}");
    }
    assert_eq!(label_of(&s, "sel-off", "in-off", "mutated-by").await, "");

    // reinvocation: "a" runs first and, with IfNeeded, again after "b" changed the object
    let only = |name: &str, reinvocation: &str| {
        hook.hook(
            name,
            json!({"reinvocationPolicy": reinvocation,
                "objectSelector": {"matchLabels": {"order": "test"}}}),
        )
    };
    let order = |name: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: sel-off, labels: {{order: test}}}}\n"
        )
    };
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&mutating("a", vec![only("first", "Never")])),
    )
    .await;
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&mutating("b", vec![only("second", "Never")])),
    )
    .await;
    s.kubectl_ok(&["apply", "-f", "-"], Some(&order("never")))
        .await;
    assert_eq!(label_of(&s, "sel-off", "never", "first-saw").await, "none");
    assert_eq!(hook.requests("first", "never").len(), 1);
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&mutating("a", vec![only("first", "IfNeeded")])),
    )
    .await;
    s.kubectl_ok(&["apply", "-f", "-"], Some(&order("if-needed")))
        .await;
    assert_eq!(
        label_of(&s, "sel-off", "if-needed", "first-saw").await,
        "done"
    );
    assert_eq!(label_of(&s, "sel-off", "if-needed", "second").await, "done");
    assert_eq!(hook.requests("first", "if-needed").len(), 2);
    assert_eq!(hook.requests("second", "if-needed").len(), 1);
}

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
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
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_serves_new_crds_and_calls_new_webhooks() {
    let a = server("admission-replica-a").await;
    let db = format!("sqlite://{}/store.db", a.dir.0.display());
    let b = start_with("admission-replica-b", |cfg| cfg.storage_url = db).await;
    let hook = Webhook::start().await;

    // a CRD created through A is served by B
    a.kubectl_ok(&["apply", "-f", "-"], Some(CRD)).await;
    let gizmo = "apiVersion: example.com/v1\nkind: Gizmo\nmetadata: {name: g, namespace: default}\nspec: {size: 1}\n";
    eventually(10, "B to serve the CRD created through A", || async {
        b.kubectl(&["apply", "-f", "-"], Some(gizmo))
            .await
            .0
            .then_some(())
    })
    .await;
    let out = b
        .kubectl_ok(&["get", "gizmos", "-n", "default", "-o", "name"], None)
        .await;
    assert_eq!(out.trim(), "gizmo.example.com/g");

    // a webhook configuration created through A is called by B
    let gizmos = hook.hook(
        "label",
        json!({"rules": [{"apiGroups": ["example.com"], "apiVersions": ["v1"], "resources": ["gizmos"], "operations": ["CREATE"]}]}),
    );
    a.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&mutating("gizmo-labeller", vec![gizmos])),
    )
    .await;
    let mut n = 0;
    let name = eventually(10, "B to call the webhook configured through A", || {
        n += 1;
        let name = format!("g{n}");
        let b = &b;
        async move {
            let obj = format!(
                "apiVersion: example.com/v1\nkind: Gizmo\nmetadata: {{name: {name}, namespace: default}}\n"
            );
            b.kubectl_ok(&["create", "-f", "-"], Some(&obj)).await;
            let label = b
                .kubectl_ok(
                    &[
                        "get",
                        "gizmo",
                        &name,
                        "-n",
                        "default",
                        "-o",
                        "jsonpath={.metadata.labels.mutated-by}",
                    ],
                    None,
                )
                .await;
            (label == "webhook").then_some(name)
        }
    })
    .await;
    assert_eq!(hook.requests("label", &name).len(), 1);

    // and its deletion through A takes effect on B
    a.kubectl_ok(
        &["delete", "mutatingwebhookconfiguration", "gizmo-labeller"],
        None,
    )
    .await;
    a.kubectl_ok(&["delete", "crd", "gizmos.example.com"], None)
        .await;
    eventually(10, "B to stop serving the deleted CRD", || async {
        let (ok, _, err) = b.kubectl(&["get", "gizmos", "-n", "default"], None).await;
        (!ok && (err.contains("the server doesn't have a resource type")
            || err.contains("NotFound")))
        .then_some(())
    })
    .await;
}

const DOODADS: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: doodads.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: doodads, singular: doodad, kind: Doodad}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
  - name: v2
    served: true
    storage: false
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivalent_match_policy_sends_the_version_a_rule_names() {
    let s = server("admission-equivalent").await;
    let hook = Webhook::start().await;
    s.kubectl_ok(&["apply", "-f", "-"], Some(DOODADS)).await;
    let v1_only = |behaviour: &str, policy: &str| {
        hook.hook(
            behaviour,
            json!({"matchPolicy": policy,
                "rules": [{"apiGroups": ["example.com"], "apiVersions": ["v1"], "resources": ["doodads"], "operations": ["CREATE"]}]}),
        )
    };
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&mutating("labeller", vec![v1_only("label", "Equivalent")])),
    )
    .await;
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&validating("exact", vec![v1_only("record", "Exact")])),
    )
    .await;
    let doodad =
        "apiVersion: example.com/v2\nkind: Doodad\nmetadata: {name: d, namespace: default}\n";
    s.kubectl_ok(&["create", "-f", "-"], Some(doodad)).await;

    // Equivalent: a v2 request reaches the v1 rule, the webhook sees the object in v1
    let seen = &hook.requests("label", "d")[0];
    assert_eq!(seen["kind"]["version"], "v1");
    assert_eq!(seen["requestKind"]["version"], "v2");
    assert_eq!(seen["object"]["apiVersion"], "example.com/v1");
    let label = s
        .kubectl_ok(
            &[
                "get",
                "doodads.v2.example.com",
                "d",
                "-n",
                "default",
                "-o",
                "jsonpath={.apiVersion} {.metadata.labels.mutated-by}",
            ],
            None,
        )
        .await;
    assert_eq!(label, "example.com/v2 webhook");
    // Exact: the v2 request does not match a v1 rule
    assert!(hook.requests("record", "d").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_are_admitted_on_the_old_object() {
    let s = server("admission-delete").await;
    let hook = Webhook::start().await;
    let guarded = |behaviour: &str| {
        hook.hook(
            behaviour,
            json!({"rules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"], "operations": ["DELETE"]}],
                "objectSelector": {"matchLabels": {"guarded": "yes"}}}),
        )
    };
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&validating("guard", vec![guarded("deny")])),
    )
    .await;
    let kept = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept, namespace: default, labels: {guarded: \"yes\"}}\n";
    s.kubectl_ok(&["apply", "-f", "-"], Some(kept)).await;
    s.kubectl_ok(&["create", "configmap", "free", "-n", "default"], None)
        .await;

    // a validating webhook denies the delete of what its selector picks, on the old object
    let err = fails(&s, &["delete", "configmap", "kept", "-n", "default"]).await;
    assert!(
        err.contains("admission webhook \"deny.example.com\" denied the request: kept by the test"),
        "{err}"
    );
    s.kubectl_ok(&["get", "configmap", "kept", "-n", "default"], None)
        .await;
    let seen = &hook.requests("deny", "kept")[0];
    assert_eq!(seen["operation"], "DELETE");
    assert!(seen["object"].is_null());
    assert_eq!(seen["oldObject"]["metadata"]["labels"]["guarded"], "yes");
    assert_eq!(seen["options"]["kind"], "DeleteOptions");
    assert_eq!(seen["userInfo"]["username"], "admin");
    s.kubectl_ok(&["delete", "configmap", "free", "-n", "default"], None)
        .await;
    assert!(hook.requests("deny", "free").is_empty());

    // a mutating webhook may not patch a delete
    s.kubectl_ok(&["delete", "validatingwebhookconfiguration", "guard"], None)
        .await;
    s.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&mutating("labeller", vec![guarded("label")])),
    )
    .await;
    let err = fails(&s, &["delete", "configmap", "kept", "-n", "default"]).await;
    assert!(
        err.contains("admission webhook \"label.example.com\" attempted to modify the object"),
        "{err}"
    );
    s.kubectl_ok(&["get", "configmap", "kept", "-n", "default"], None)
        .await;
}
