#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 6: tenant isolation (never touching another tenant's clusters, refused at admission)
//! and annotation propagation rules. One environment, steps in order.

use cellfed_e2e::{Env, eventually, kubectl_raw};
use serde_json::json;

#[test]
fn tenants_stay_apart_and_annotation_rules_apply() {
    if cellfed_e2e::skip("tenants_stay_apart_and_annotation_rules_apply", false) {
        return;
    }
    let mut env = Env::start(0);
    env.add_member("a1", &[("cellfed.io/tenant", "a")]);
    env.add_member("b1", &[("cellfed.io/tenant", "b")]);
    env.start_webhook();
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: team-a, labels: {cellfed.io/tenant: a}}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b, labels: {cellfed.io/tenant: b}}
---
apiVersion: cellfed.io/v1alpha1
kind: Cell
metadata: {name: rzb, namespace: team-b}
spec: {clusterName: b1}
"#,
    );

    // A's resource selects every cluster, yet only reaches A's cluster; B's cluster is never
    // read or written for it
    let b_before = env.member("b1").all_requests("configmaps");
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: types.kubefed.io/v1beta1
kind: FederatedConfigMap
metadata: {name: shared, namespace: team-a}
spec:
  template: {data: {owner: a}}
  placement: {clusterSelector: {}}
"#,
    );
    eventually(30, "A's configmap in a1", || {
        env.member("a1")
            .get(&["configmap", "shared", "-n", "team-a"])
            .map(|_| ())
            .ok_or_else(|| "absent".to_string())
    });
    let status = env
        .host
        .get(&[
            "federatedconfigmaps.v1beta1.types.kubefed.io",
            "shared",
            "-n",
            "team-a",
        ])
        .unwrap();
    let names: Vec<String> = status["status"]["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("b1") || n.starts_with("rzb")),
        "status names another tenant's cluster: {names:?}"
    );
    env.host.kubectl(&[
        "delete",
        "federatedconfigmaps.v1beta1.types.kubefed.io",
        "shared",
        "-n",
        "team-a",
        "--wait=true",
        "--timeout=60s",
    ]);
    eventually(30, "A's configmap removed from a1", || {
        match env
            .member("a1")
            .get(&["configmap", "shared", "-n", "team-a"])
        {
            Some(_) => Err("still there".into()),
            None => Ok(()),
        }
    });
    assert_eq!(
        env.member("b1").all_requests("configmaps"),
        b_before,
        "B's cluster was read or written for A's resource"
    );
    assert!(
        env.member("b1")
            .get(&["configmap", "shared", "-n", "team-a"])
            .is_none(),
        "A's object reached B's cluster"
    );

    // placing A's resource on B's cell (or cluster) is refused at admission, and nothing is stored
    for cluster in ["rzb.team-b", "b1"] {
        let doc = json!({
            "apiVersion": "types.kubefed.io/v1beta1", "kind": "FederatedConfigMap",
            "metadata": {"name": "sneaky", "namespace": "team-a"},
            "spec": {"template": {"data": {"x": "y"}}, "placement": {"clusters": [{"name": cluster}]}}
        });
        let (ok, _, err) = kubectl_raw(
            &env.host.kubeconfig(),
            Some(&doc.to_string()),
            &["apply", "-f", "-"],
        );
        assert!(!ok, "placing on {cluster} must be refused");
        assert!(
            err.contains("denied the request") && err.contains(cluster) && err.contains("tenant"),
            "{err}"
        );
    }
    assert!(
        env.host
            .get(&[
                "federatedconfigmaps.v1beta1.types.kubefed.io",
                "sneaky",
                "-n",
                "team-a"
            ])
            .is_none()
    );

    // --- annotation rules: service.beta.kubernetes.io/* is spec, everything else is status
    env.host.kubectl(&[
        "patch",
        "federatedtypeconfigs",
        "services",
        "-n",
        "kube-federation-system",
        "--type=merge",
        "-p",
        r#"{"spec":{"propagatedAnnotations":["service.beta.kubernetes.io/*"]}}"#,
    ]);
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: types.kubefed.io/v1beta1
kind: FederatedService
metadata: {name: lb, namespace: team-a}
spec:
  template:
    metadata:
      annotations: {service.beta.kubernetes.io/x: "1"}
    spec:
      selector: {app: lb}
      ports: [{name: http, port: 80}]
  placement: {clusters: [{name: a1}]}
"#,
    );
    let a1 = env.member("a1");
    eventually(
        30,
        "rule-matching template annotation reaches the member",
        || {
            let s = a1.get(&["service", "lb", "-n", "team-a"]).ok_or("absent")?;
            if s["metadata"]["annotations"]["service.beta.kubernetes.io/x"] == "1" {
                Ok(())
            } else {
                Err(s["metadata"].to_string())
            }
        },
    );
    a1.kubectl(&[
        "annotate",
        "service",
        "lb",
        "-n",
        "team-a",
        "status.example.com/lb=10.0.0.1",
    ]);
    env.host.kubectl(&[
        "patch",
        "federatedservices.v1beta1.types.kubefed.io",
        "lb",
        "-n",
        "team-a",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/ports/0/port","value":8080}]"#,
    ]);
    eventually(
        30,
        "template update applied, member-side annotation kept",
        || {
            let s = a1.get(&["service", "lb", "-n", "team-a"]).ok_or("absent")?;
            if s["spec"]["ports"][0]["port"] != 8080 {
                return Err("not updated yet".into());
            }
            assert_eq!(
                s["metadata"]["annotations"]["status.example.com/lb"], "10.0.0.1",
                "a status annotation was overwritten"
            );
            Ok(())
        },
    );
    env.host.kubectl(&["patch", "federatedservices.v1beta1.types.kubefed.io", "lb", "-n", "team-a", "--type=json", "-p",
        r#"[{"op":"remove","path":"/spec/template/metadata/annotations/service.beta.kubernetes.io~1x"}]"#]);
    eventually(
        30,
        "dropping the template key removes it from the member",
        || {
            let s = a1.get(&["service", "lb", "-n", "team-a"]).ok_or("absent")?;
            let ann = &s["metadata"]["annotations"];
            if ann.get("service.beta.kubernetes.io/x").is_none() {
                assert_eq!(ann["status.example.com/lb"], "10.0.0.1");
                Ok(())
            } else {
                Err(ann.to_string())
            }
        },
    );
}
