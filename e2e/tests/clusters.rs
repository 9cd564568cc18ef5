#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 5's cluster-facing stories, one environment of three members, steps in order:
//! clusterSelector placement, Service allocation survival, pre-existing objects, bad overrides,
//! status collection, a member going down and coming back.

use cellfed_e2e::{Env, eventually};
use serde_json::Value;

fn get(env: &Env, member: &str, kind: &str, name: &str) -> Option<Value> {
    env.member(member).get(&[kind, name, "-n", "demo"])
}

fn fed_status(env: &Env, kind: &str, name: &str) -> Value {
    env.host
        .get(&[
            &format!("{kind}.v1beta1.types.kubefed.io"),
            name,
            "-n",
            "demo",
        ])
        .map(|f| f["status"].clone())
        .unwrap_or(Value::Null)
}

fn cluster_status(status: &Value, cluster: &str) -> String {
    status["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == cluster)
        .map(|c| c["status"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

#[test]
fn placement_services_adoption_overrides_status_and_member_outage() {
    if cellfed_e2e::skip(
        "placement_services_adoption_overrides_status_and_member_outage",
        false,
    ) {
        return;
    }
    let mut env = Env::start(3);
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n",
    );

    // --- clusterSelector follows KubeFedCluster labels
    env.host.kubectl(&[
        "label",
        "kubefedclusters",
        "member1",
        "-n",
        "kube-federation-system",
        "env=prod",
    ]);
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: types.kubefed.io/v1beta1
kind: FederatedConfigMap
metadata: {name: settings, namespace: demo}
spec:
  template: {data: {level: info}}
  placement:
    clusterSelector: {matchLabels: {env: prod}}
"#,
    );
    eventually(30, "configmap only in member1", || {
        match (
            get(&env, "member1", "configmap", "settings"),
            get(&env, "member2", "configmap", "settings"),
        ) {
            (Some(_), None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    env.host.kubectl(&[
        "label",
        "kubefedclusters",
        "member1",
        "-n",
        "kube-federation-system",
        "env=dev",
        "--overwrite",
    ]);
    env.host.kubectl(&[
        "label",
        "kubefedclusters",
        "member2",
        "-n",
        "kube-federation-system",
        "env=prod",
    ]);
    eventually(30, "configmap moved to member2", || {
        match (
            get(&env, "member1", "configmap", "settings"),
            get(&env, "member2", "configmap", "settings"),
        ) {
            (None, Some(_)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });

    // --- FederatedService: the member's clusterIP and nodePort survive template updates
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: types.kubefed.io/v1beta1
kind: FederatedService
metadata: {name: web, namespace: demo}
spec:
  template:
    spec:
      type: NodePort
      selector: {app: web}
      ports: [{name: http, port: 80, targetPort: 8080}]
  placement: {clusters: [{name: member1}, {name: member2}]}
"#,
    );
    let svc = eventually(
        30,
        "service in member1 with a clusterIP and nodePort",
        || {
            let s = get(&env, "member1", "service", "web").ok_or("absent")?;
            if s["spec"]["clusterIP"].is_string() && s["spec"]["ports"][0]["nodePort"].is_number() {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        },
    );
    env.host.kubectl(&[
        "patch",
        "federatedservices.v1beta1.types.kubefed.io",
        "web",
        "-n",
        "demo",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/ports/0/targetPort","value":9090}]"#,
    ]);
    eventually(30, "service updated in place", || {
        let s = get(&env, "member1", "service", "web").ok_or("absent")?;
        if s["spec"]["ports"][0]["targetPort"] != 9090 {
            return Err(s["spec"].to_string());
        }
        assert_eq!(
            s["spec"]["clusterIP"], svc["spec"]["clusterIP"],
            "clusterIP must survive"
        );
        assert_eq!(
            s["spec"]["ports"][0]["nodePort"], svc["spec"]["ports"][0]["nodePort"],
            "nodePort must survive"
        );
        Ok(())
    });
    let st = fed_status(&env, "federatedservices", "web");
    assert_eq!(cluster_status(&st, "member1"), "OK", "{st}");

    // --- a pre-existing unmanaged object is not overwritten; status says AlreadyExists
    env.member("member3").kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n",
    );
    env.member("member3").kubectl_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine, namespace: demo}\ndata: {owner: team}\n");
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: types.kubefed.io/v1beta1
kind: FederatedConfigMap
metadata: {name: mine, namespace: demo}
spec:
  template: {data: {owner: federation}}
  placement: {clusters: [{name: member3}]}
"#,
    );
    eventually(30, "AlreadyExists in status", || {
        let st = fed_status(&env, "federatedconfigmaps", "mine");
        if cluster_status(&st, "member3") == "AlreadyExists" {
            Ok(())
        } else {
            Err(st.to_string())
        }
    });
    let cm = get(&env, "member3", "configmap", "mine").unwrap();
    assert_eq!(
        cm["data"]["owner"], "team",
        "the unmanaged object must be left alone"
    );

    // --- an invalid override: a clear condition, other clusters unaffected
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: types.kubefed.io/v1beta1
kind: FederatedConfigMap
metadata: {name: tuned, namespace: demo}
spec:
  template: {data: {level: info}}
  placement: {clusters: [{name: member1}, {name: member2}]}
  overrides:
  - clusterName: member2
    clusterOverrides:
    - {op: replace, path: /data/missing/deeper, value: x}
"#,
    );
    eventually(30, "override failure reported", || {
        let st = fed_status(&env, "federatedconfigmaps", "tuned");
        let cond = st["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Propagation")
            .cloned()
            .unwrap_or_default();
        let msg = cond["message"].as_str().unwrap_or_default();
        if cluster_status(&st, "member2") == "ApplyOverridesFailed"
            && cond["status"] == "False"
            && msg.contains("/data/missing/deeper")
            && msg.contains("member2")
        {
            Ok(())
        } else {
            Err(st.to_string())
        }
    });
    assert!(
        get(&env, "member1", "configmap", "tuned").is_some(),
        "member1 is unaffected"
    );
    assert!(get(&env, "member2", "configmap", "tuned").is_none());

    // --- status collection: remoteStatus from the member's simulated controllers, which
    // KubeFed collects when the FTC enables it and the RawResourceStatusCollection gate is on
    env.host.kubectl(&[
        "patch",
        "kubefedconfigs",
        "kubefed",
        "-n",
        "kube-federation-system",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/spec/featureGates/1/name","value":"RawResourceStatusCollection"},
            {"op":"replace","path":"/spec/featureGates/1/configuration","value":"Enabled"}]"#,
    ]);
    env.host.kubectl(&[
        "patch",
        "federatedtypeconfigs",
        "deployments.apps",
        "-n",
        "kube-federation-system",
        "--type=merge",
        "-p",
        r#"{"spec":{"statusCollection":"Enabled"}}"#,
    ]);
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: types.kubefed.io/v1beta1
kind: FederatedDeployment
metadata: {name: api, namespace: demo}
spec:
  template:
    spec:
      replicas: 3
      selector: {matchLabels: {app: api}}
      template:
        metadata: {labels: {app: api}}
        spec: {containers: [{name: api, image: "registry.example/api:1"}]}
  placement: {clusters: [{name: member1}, {name: member2}, {name: member3}]}
"#,
    );
    eventually(
        60,
        "remoteStatus with readyReplicas from all members",
        || {
            let st = fed_status(&env, "federateddeployments", "api");
            let all = st["clusters"]
                .as_array()
                .map(|cs| {
                    cs.len() == 3 && cs.iter().all(|c| c["remoteStatus"]["readyReplicas"] == 3)
                })
                .unwrap_or(false);
            if all { Ok(()) } else { Err(st.to_string()) }
        },
    );

    // --- a member goes down: the others converge, status says ClusterNotReady; it comes back
    env.member_mut("member3").stop();
    env.host.kubectl(&["patch", "federateddeployments.v1beta1.types.kubefed.io", "api", "-n", "demo", "--type=json", "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/template/spec/containers/0/image","value":"registry.example/api:2"}]"#]);
    eventually(60, "members 1 and 2 converge while member3 is down", || {
        for m in ["member1", "member2"] {
            let d = get(&env, m, "deployment", "api").ok_or("absent")?;
            if d["spec"]["template"]["spec"]["containers"][0]["image"] != "registry.example/api:2" {
                return Err(format!("{m} not updated"));
            }
        }
        Ok(())
    });
    eventually(60, "ClusterNotReady for member3", || {
        let st = fed_status(&env, "federateddeployments", "api");
        if cluster_status(&st, "member3") == "ClusterNotReady" {
            Ok(())
        } else {
            Err(st.to_string())
        }
    });
    eventually(
        30,
        "KubeFedCluster member3 Ready=False, Offline=True",
        || {
            let c = env
                .host
                .get(&["kubefedclusters", "member3", "-n", "kube-federation-system"])
                .unwrap();
            let conds = c["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let is = |t: &str, s: &str| conds.iter().any(|x| x["type"] == t && x["status"] == s);
            if is("Ready", "False") && is("Offline", "True") {
                Ok(())
            } else {
                Err(c["status"].to_string())
            }
        },
    );
    env.member_mut("member3").restart();
    eventually(60, "member3 converges after coming back", || {
        let d = get(&env, "member3", "deployment", "api").ok_or("absent")?;
        if d["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/api:2" {
            Ok(())
        } else {
            Err("old image".into())
        }
    });
}
