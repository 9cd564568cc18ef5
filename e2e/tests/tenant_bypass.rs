#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 9: the two tenant bypasses, through the real processes. One environment, steps in order.
//!
//! 1. Tenant acme's Cell `evil` with `spec.memberNamespace: demo` (tenant demo's namespace on the
//!    shared member1) is refused by the webhook. The webhook is then unregistered (its
//!    ValidatingWebhookConfiguration deleted, as an administrator or a broken install would
//!    leave it; the harness cannot stop the process) and the same Cell is stored: the controller
//!    refuses it (`TenantMismatch`), and acme's FederatedDeployment `web` placed on `evil.acme`
//!    neither writes nor deletes demo's `demo/web`. That Deployment was created directly in
//!    member1 with `kubefed.io/managed: "true"` and no owner annotation (as a pre-ownership
//!    cellfed or KubeFed left it), so ownership alone would hand it to a resource named `web`:
//!    only the tenancy check keeps acme out.
//! 2. Relabelling member2 (the base cluster of acme's Cell `rz`) from tenant acme to globex
//!    stops acme's propagation there: `TenantMismatch` in the resource's status, and a template
//!    edit makes no write request to member2 (counted on its `/metrics`).

use cellfed_e2e::{Apiserver, Env, eventually, kubectl_raw, quiet_revisions};
use serde_json::{Value, json};

const WRITES: &[&str] = &["CREATE", "UPDATE", "PATCH", "DELETE", "DELETECOLLECTION"];
const FED_DEPLOYMENTS: &str = "federateddeployments.v1beta1.types.kubefed.io";

fn fed_deployment(name: &str, cluster: &str, image: &str) -> String {
    json!({
        "apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedDeployment",
        "metadata": {"name": name, "namespace": "acme"},
        "spec": {
            "template": {"spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                             "spec": {"containers": [{"name": "c", "image": image}]}}
            }},
            "placement": {"clusters": [{"name": cluster}]}
        }
    })
    .to_string()
}

fn evil_cell() -> String {
    json!({"apiVersion": "cellfed.io/v1alpha1", "kind": "Cell",
           "metadata": {"name": "evil", "namespace": "acme"},
           "spec": {"clusterName": "member1", "memberNamespace": "demo"}})
    .to_string()
}

/// The Ready condition of Cell `acme/name` once its reason is `reason`.
fn cell_ready(env: &Env, name: &str, reason: &str) -> Value {
    eventually(60, &format!("cell acme/{name}: {reason}"), || {
        let c = env
            .host
            .get(&["cells.cellfed.io", name, "-n", "acme"])
            .ok_or("absent")?;
        c["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready" && c["reason"] == reason)
            .cloned()
            .ok_or_else(|| c["status"].to_string())
    })
}

/// FederatedDeployment `acme/name` once its status, at its current generation, reads `status`
/// for `cluster`.
fn cluster_status(env: &Env, name: &str, cluster: &str, status: &str) -> Value {
    eventually(60, &format!("acme/{name}: {cluster} {status}"), || {
        let o = env
            .host
            .get(&[FED_DEPLOYMENTS, name, "-n", "acme"])
            .ok_or("absent")?;
        let current = o["status"]["observedGeneration"] == o["metadata"]["generation"];
        let found = o["status"]["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["name"] == cluster && c["status"] == status);
        if current && found {
            Ok(o)
        } else {
            Err(o["status"].to_string())
        }
    })
}

/// (resourceVersion, labels, annotations, spec) of a member Deployment.
fn fingerprint(member: &Apiserver, ns: &str, name: &str) -> (Value, Value, Value, Value) {
    let d = member
        .get(&["deployment", name, "-n", ns])
        .unwrap_or_else(|| panic!("{ns}/{name} is gone from {}", member.name));
    (
        d["metadata"]["resourceVersion"].clone(),
        d["metadata"]["labels"].clone(),
        d["metadata"]["annotations"].clone(),
        d["spec"].clone(),
    )
}

#[test]
fn tenant_bypasses_are_refused_and_change_nothing_of_another_tenant() {
    if cellfed_e2e::skip(
        "tenant_bypasses_are_refused_and_change_nothing_of_another_tenant",
        false,
    ) {
        return;
    }
    let mut env = Env::start(0);
    env.add_member("member1", &[]);
    env.add_member("member2", &[("cellfed.io/tenant", "acme")]);
    env.start_webhook();
    // acme's own cell on its own cluster is admitted
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: acme, labels: {cellfed.io/tenant: acme}}
---
apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {cellfed.io/tenant: demo}}
---
apiVersion: cellfed.io/v1alpha1
kind: Cell
metadata: {name: rz, namespace: acme}
spec: {clusterName: member2}
"#,
    );
    // demo's Deployment in the shared member1, made there directly
    let member1 = env.member("member1");
    member1.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
  labels: {kubefed.io/managed: "true", owner: demo}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "demo:1"}]}
"#,
    );

    // --- bypass 1: a Cell aimed at another tenant's namespace
    let (ok, _, err) = kubectl_raw(
        &env.host.kubeconfig(),
        Some(&evil_cell()),
        &["apply", "-f", "-"],
    );
    assert!(
        !ok,
        "the webhook must refuse acme's Cell on demo's namespace"
    );
    assert!(
        err.contains("denied the request")
            && err.contains(
                "spec.memberNamespace: namespace \"demo\" is not a namespace of this Cell's tenant"
            ),
        "{err}"
    );
    assert!(
        env.host
            .get(&["cells.cellfed.io", "evil", "-n", "acme"])
            .is_none(),
        "a refused Cell was stored"
    );
    // without the webhook the same Cell is stored; the controller must refuse it itself
    env.host.kubectl(&[
        "delete",
        "validatingwebhookconfiguration",
        "cellfed-webhook",
    ]);
    eventually(30, "the Cell stored without admission", || {
        let (ok, _, err) = kubectl_raw(
            &env.host.kubeconfig(),
            Some(&evil_cell()),
            &["apply", "-f", "-"],
        );
        if ok { Ok(()) } else { Err(err) }
    });
    let why = cell_ready(&env, "evil", "TenantMismatch");
    assert_eq!(why["status"], "False", "{why}");
    let message = why["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "spec.memberNamespace: namespace \"demo\" is not a namespace of this Cell's tenant"
        ),
        "{message}"
    );

    let member1 = env.member("member1");
    quiet_revisions(std::slice::from_ref(member1));
    let before = fingerprint(member1, "demo", "web");
    let writes = member1.requests_of(WRITES);
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        &fed_deployment("web", "evil.acme", "evil:1"),
    );
    let status = cluster_status(&env, "web", "evil.acme", "TenantMismatch");
    let condition = status["status"]["conditions"].to_string();
    assert!(
        condition.contains("cluster evil.acme is refused: Cell acme/evil"),
        "{condition}"
    );
    // an edit of acme's template reaches nothing either
    env.host.kubectl(&[
        "patch",
        FED_DEPLOYMENTS,
        "web",
        "-n",
        "acme",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/template/spec/containers/0/image","value":"evil:2"}]"#,
    ]);
    cluster_status(&env, "web", "evil.acme", "TenantMismatch");
    env.host.kubectl(&[
        "delete",
        FED_DEPLOYMENTS,
        "web",
        "-n",
        "acme",
        "--wait=true",
        "--timeout=60s",
    ]);
    let member1 = env.member("member1");
    assert_eq!(
        fingerprint(member1, "demo", "web"),
        before,
        "demo/web changed"
    );
    let names: Vec<String> = member1.get(&["deployments", "-n", "demo"]).unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(names, ["web"], "demo's namespace in member1");
    assert_eq!(
        member1.requests_of(WRITES),
        writes,
        "member1 got write requests for acme's resource"
    );
    eventually(
        60,
        "derived cluster evil.acme: Ready TenantMismatch",
        || {
            let c = env
                .host
                .get(&[
                    "kubefedclusters",
                    "evil.acme",
                    "-n",
                    "kube-federation-system",
                ])
                .ok_or("absent")?;
            let refused = c["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["reason"] == "TenantMismatch");
            if refused {
                Ok(())
            } else {
                Err(c["status"].to_string())
            }
        },
    );

    // --- bypass 2: the base cluster changes tenant after admission
    cell_ready(&env, "rz", "ClusterReady");
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        &fed_deployment("app", "rz.acme", "nginx:1"),
    );
    cluster_status(&env, "app", "rz.acme", "OK");
    eventually(30, "acme/app in member2", || {
        env.member("member2")
            .get(&["deployment", "app", "-n", "acme"])
            .map(|_| ())
            .ok_or_else(|| "absent".to_string())
    });
    env.host.kubectl(&[
        "label",
        "kubefedcluster",
        "member2",
        "-n",
        "kube-federation-system",
        "cellfed.io/tenant=globex",
        "--overwrite",
    ]);
    let why = cell_ready(&env, "rz", "TenantMismatch");
    let message = why["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("spec.clusterName: cluster \"member2\" belongs to another tenant"),
        "{message}"
    );
    assert!(
        !message.contains("globex"),
        "names the other tenant: {message}"
    );
    cluster_status(&env, "app", "rz.acme", "TenantMismatch");
    let member2 = env.member("member2");
    quiet_revisions(std::slice::from_ref(member2));
    let placed = fingerprint(member2, "acme", "app");
    let writes = member2.requests_of(WRITES);
    env.host.kubectl(&[
        "patch",
        FED_DEPLOYMENTS,
        "app",
        "-n",
        "acme",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/template/spec/containers/0/image","value":"nginx:2"}]"#,
    ]);
    // the new generation is planned (and its status written) without member2
    cluster_status(&env, "app", "rz.acme", "TenantMismatch");
    let member2 = env.member("member2");
    assert_eq!(
        member2.requests_of(WRITES),
        writes,
        "member2 got write requests after it left acme"
    );
    assert_eq!(
        fingerprint(member2, "acme", "app"),
        placed,
        "acme/app in member2 changed"
    );
}
