#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 11 (controller and admission): KubeFed's sample1 namespace and config map, with the
//! cluster names changed to the test's, through the real plane (apiserver, webhook and controller
//! as separate processes): a member joined with a scheme-less `apiEndpoint`, a placement naming a
//! cluster that has not joined, namespace placement, KubeFed's Events, and orphaning that leaves
//! unlabelled member objects. One environment, steps in order.

use cellfed_e2e::{Apiserver, Env, eventually};
use serde_json::Value;

/// `status.clusters[name].status` of `obj`.
fn cluster_status(obj: &Value, cluster: &str) -> Option<String> {
    obj["status"]["clusters"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == cluster)
        .and_then(|c| c["status"].as_str().map(str::to_string))
}

/// Mirrors KubeFed's example/sample1 (namespace.yaml, federatednamespace.yaml without a template,
/// federatedconfigmap.yaml with its override) and e2e crud "CheckDelete" with orphanDependents.
#[test]
fn kubefed_sample1_through_the_real_plane() {
    if cellfed_e2e::skip("kubefed_sample1_through_the_real_plane", false) {
        return;
    }
    let mut env = Env::start(0);
    env.start_webhook();
    env.add_member("member1", &[]);
    // member2 joined the way KubeFed accepts it: host:port without a scheme (meaning https)
    let member2 = Apiserver::start_member("member2", env.dir.path().join("member2"), 0);
    let kc: Value =
        serde_yaml::from_str(&std::fs::read_to_string(member2.kubeconfig()).unwrap()).unwrap();
    let server = kc["clusters"][0]["cluster"]["server"].as_str().unwrap();
    let bare = server.trim_start_matches("https://").to_string();
    assert_ne!(bare, server, "the member serves https");
    env.join_at(&member2, Some(&bare), &[]);
    env.members.push(member2);
    for m in ["member1", "member2"] {
        eventually(60, &format!("{m} Ready"), || {
            let c = env
                .host
                .get(&["kubefedcluster", m, "-n", "kube-federation-system"])
                .ok_or("no cluster")?;
            let ready = c["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            if ready {
                Ok(())
            } else {
                Err(format!("{}", c["status"]))
            }
        });
    }

    // sample1, clusters renamed; member3 never joins: admission lets it through, as KubeFed does
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Namespace
metadata:
  name: test-namespace
---
apiVersion: types.kubefed.io/v1beta1
kind: FederatedNamespace
metadata:
  name: test-namespace
  namespace: test-namespace
spec:
  placement:
    clusters:
    - name: member1
---
apiVersion: types.kubefed.io/v1beta1
kind: FederatedConfigMap
metadata:
  name: test-configmap
  namespace: test-namespace
spec:
  template:
    data:
      A: ala ma kota
  placement:
    clusters:
    - name: member2
    - name: member1
    - name: member3
  overrides:
  - clusterName: member2
    clusterOverrides:
    - path: /data
      value:
        foo: bar
"#,
    );
    let (m1, m2) = (env.member("member1"), env.member("member2"));
    let cm = eventually(60, "config map in member1", || {
        m1.get(&["configmap", "test-configmap", "-n", "test-namespace"])
            .ok_or_else(|| "not yet".to_string())
    });
    assert_eq!(cm["data"]["A"], "ala ma kota");
    assert_eq!(cm["metadata"]["labels"]["kubefed.io/managed"], "true");
    let ns = m1.get(&["namespace", "test-namespace"]).unwrap();
    assert_eq!(ns["metadata"]["labels"]["kubefed.io/managed"], "true");
    let fed = eventually(60, "statuses of member2 and member3", || {
        let o = env
            .host
            .get(&[
                "federatedconfigmaps.v1beta1.types.kubefed.io",
                "test-configmap",
                "-n",
                "test-namespace",
            ])
            .ok_or("no resource")?;
        let ok = cluster_status(&o, "member1").as_deref() == Some("OK")
            && cluster_status(&o, "member2").as_deref() == Some("NamespaceNotFederated")
            && cluster_status(&o, "member3").as_deref() == Some("ClusterNotFound");
        if ok {
            Ok(o)
        } else {
            Err(format!("{}", o["status"]))
        }
    });
    assert_eq!(fed["status"]["conditions"][0]["status"], "True");
    assert!(
        m2.get(&["configmap", "test-configmap", "-n", "test-namespace"])
            .is_none(),
        "the namespace is not placed on member2"
    );

    // KubeFed's events on the federated resource
    eventually(30, "CreateInCluster event", || {
        let out = env.host.kubectl(&[
            "get",
            "events",
            "-n",
            "test-namespace",
            "--field-selector",
            "involvedObject.name=test-configmap",
            "-o",
            "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
        ]);
        if out.contains(
            r#"CreateInCluster: Creating ConfigMap "test-namespace/test-configmap" in cluster "member1""#,
        ) {
            Ok(())
        } else {
            Err(out)
        }
    });

    // the namespace placed on member2 too: the config map follows, with member2's override
    env.host.kubectl(&[
        "patch",
        "federatednamespaces.v1beta1.types.kubefed.io",
        "test-namespace",
        "-n",
        "test-namespace",
        "--type=merge",
        "-p",
        r#"{"spec":{"placement":{"clusters":[{"name":"member1"},{"name":"member2"}]}}}"#,
    ]);
    let cm2 = eventually(60, "config map in member2", || {
        m2.get(&["configmap", "test-configmap", "-n", "test-namespace"])
            .ok_or_else(|| "not yet".to_string())
    });
    assert_eq!(cm2["data"]["foo"], "bar");

    // orphaning deletion: member objects stay, without the managed label
    env.host.kubectl(&[
        "annotate",
        "federatedconfigmaps.v1beta1.types.kubefed.io",
        "test-configmap",
        "-n",
        "test-namespace",
        "kubefed.io/orphan=true",
    ]);
    env.host.kubectl(&[
        "delete",
        "federatedconfigmaps.v1beta1.types.kubefed.io",
        "test-configmap",
        "-n",
        "test-namespace",
        "--timeout=60s",
    ]);
    for m in [m1, m2] {
        eventually(30, "unlabelled config map left in place", || {
            let cm = m
                .get(&["configmap", "test-configmap", "-n", "test-namespace"])
                .ok_or("deleted")?;
            if cm["metadata"]["labels"]["kubefed.io/managed"].is_null() {
                Ok(())
            } else {
                Err(format!("{}", cm["metadata"]))
            }
        });
    }
}

/// Mirrors KubeFed test/e2e/validation.go "Core API Validation for <resource> should fail when an
/// invalid <resource> is created or updated" and defaulting.go "KubeFedConfig is created by
/// mutating admissing webhook and preserves values set by user": with the webhook registered as
/// `cellfed webhook --advertise-url` does, kubectl sees a minimal KubeFedConfig stored with
/// KubeFed's defaults and invalid KubeFedConfig, FederatedTypeConfig and KubeFedCluster writes
/// refused naming the field.
#[test]
fn kubefed_validation_and_defaulting_through_kubectl() {
    if cellfed_e2e::skip("kubefed_validation_and_defaulting_through_kubectl", false) {
        return;
    }
    let mut env = Env::start(0);
    env.start_webhook();
    let kc = env.host.kubeconfig();
    let ns = "kube-federation-system";
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: core.kubefed.io/v1beta1\nkind: KubeFedConfig\nmetadata: {name: minimal, namespace: kube-federation-system}\nspec: {scope: Cluster}\n",
    );
    let stored = env
        .host
        .get(&["kubefedconfig", "minimal", "-n", ns])
        .unwrap();
    assert_eq!(
        stored["spec"]["leaderElect"],
        serde_json::json!({"leaseDuration": "15s", "renewDeadline": "10s", "retryPeriod": "5s", "resourceLock": "configmaps"})
    );
    assert_eq!(
        stored["spec"]["syncController"]["adoptResources"],
        "Enabled"
    );

    let refused = |args: &[&str], says: &str| {
        let (ok, _, err) = cellfed_e2e::kubectl_raw(&kc, None, args);
        assert!(!ok, "{args:?} was accepted");
        assert!(err.contains(says), "{args:?}: {err}");
        // the CRD schema (enums) or the webhook (everything else) refuses it as invalid
        assert!(err.contains("is invalid"), "{args:?}: {err}");
    };
    refused(
        &[
            "patch",
            "kubefedconfig",
            "minimal",
            "-n",
            ns,
            "--type=merge",
            "-p",
            r#"{"spec":{"leaderElect":{"renewDeadline":"20s"}}}"#,
        ],
        r#"spec.leaderElect.leaseDuration: Invalid value: "15s": leaseDuration must be greater than renewDeadline"#,
    );
    refused(
        &[
            "patch",
            "kubefedconfig",
            "minimal",
            "-n",
            ns,
            "--type=merge",
            "-p",
            r#"{"spec":{"scope":"Namespaced"}}"#,
        ],
        r#"spec.scope: Invalid value: "Namespaced": field is immutable"#,
    );
    refused(
        &[
            "patch",
            "kubefedconfig",
            "minimal",
            "-n",
            ns,
            "--type=merge",
            "-p",
            r#"{"spec":{"featureGates":[{"name":"PushReconciler","configuration":"Enabled"},{"name":"PushReconciler","configuration":"Disabled"}]}}"#,
        ],
        r#"spec.featureGates[1].name: Duplicate value: "PushReconciler""#,
    );
    refused(
        &[
            "patch",
            "federatedtypeconfig",
            "deployments.apps",
            "-n",
            ns,
            "--type=merge",
            "-p",
            r#"{"spec":{"targetType":{"scope":"Cluster"}}}"#,
        ],
        r#"spec.targetType.scope: Invalid value: "Cluster": field is immutable"#,
    );
    refused(
        &[
            "patch",
            "federatedtypeconfig",
            "deployments.apps",
            "-n",
            ns,
            "--type=merge",
            "-p",
            r#"{"spec":{"propagation":"On"}}"#,
        ],
        r#"spec.propagation: Unsupported value: "On""#,
    );
    let (ok, _, err) = cellfed_e2e::kubectl_raw(
        &kc,
        Some(
            "apiVersion: core.kubefed.io/v1beta1\nkind: KubeFedCluster\nmetadata: {name: bad, namespace: kube-federation-system}\nspec: {apiEndpoint: \"ftp://member\", secretRef: {name: Bad_Secret}}\n",
        ),
        &["apply", "-f", "-"],
    );
    assert!(!ok);
    assert!(
        err.contains("spec.apiEndpoint") && err.contains("spec.secretRef.name"),
        "{err}"
    );
}

/// Mirrors KubeFed test/e2e/defaulting.go "KubeFedConfig does not cause controller-manager to
/// fail": a KubeFedConfig `kubefed` holding only `scope`, completed by the mutating webhook, is
/// what a newly started controller runs with. Its KubeFed default `adoptResources: Enabled`
/// (cellfed ships `Disabled`) shows it applied: an unlabelled ConfigMap already in the member is
/// adopted and updated from the template.
#[test]
fn a_webhook_defaulted_kubefedconfig_runs_the_controller() {
    if cellfed_e2e::skip(
        "a_webhook_defaulted_kubefedconfig_runs_the_controller",
        false,
    ) {
        return;
    }
    let mut env = Env::start(0);
    env.start_webhook();
    env.stop_controller();
    let ns = "kube-federation-system";
    env.host
        .kubectl(&["delete", "kubefedconfig", "kubefed", "-n", ns]);
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: core.kubefed.io/v1beta1\nkind: KubeFedConfig\nmetadata: {name: kubefed, namespace: kube-federation-system}\nspec: {scope: Cluster}\n",
    );
    let stored = env
        .host
        .get(&["kubefedconfig", "kubefed", "-n", ns])
        .unwrap();
    assert_eq!(
        stored["spec"]["syncController"]["adoptResources"],
        "Enabled"
    );

    env.add_member("member1", &[]);
    env.member("member1").kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: legacy, namespace: demo}\ndata: {a: member}\n",
    );
    env.start_controller();
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: types.kubefed.io/v1beta1
kind: FederatedConfigMap
metadata:
  name: legacy
  namespace: demo
spec:
  template:
    data:
      a: federated
  placement:
    clusters:
    - name: member1
"#,
    );
    eventually(60, "the member's ConfigMap adopted and updated", || {
        let cm = env
            .member("member1")
            .get(&["configmap", "legacy", "-n", "demo"])
            .ok_or("no configmap")?;
        let managed = cm["metadata"]["labels"]["kubefed.io/managed"] == "true";
        if managed && cm["data"]["a"] == "federated" {
            Ok(())
        } else {
            Err(format!("{}", cm["metadata"]))
        }
    });
    let log = env.controller_log();
    assert!(!log.contains("KubeFedConfig not applied"), "{log}");
}
