#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `kubectl cellfed` as users run it (kubectl finds the plugin on PATH): join, enable, federate,
//! rollout, rollout status, disable, unjoin.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;

use cellfed_e2e::{Apiserver, Env, binary, eventually};

fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let bin_dir = binary("kubectl-cellfed").parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .env("PATH", path)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(kubeconfig: &Path, args: &[&str]) -> String {
    let (ok, out, err) = kubectl(kubeconfig, args);
    assert!(ok, "kubectl {args:?} failed:\n{out}\n{err}");
    out
}

#[test]
fn join_enable_federate_rollout_disable_unjoin() {
    if cellfed_e2e::skip("join_enable_federate_rollout_disable_unjoin", false) {
        return;
    }
    let mut env = Env::start(0);
    // two members started but NOT joined: the plugin joins them
    for name in ["member1", "member2"] {
        let m = Apiserver::start_member(name, env.dir.path().join(name), 0);
        env.members.push(m);
    }
    let kc = env.merged_kubeconfig();
    // member2's service account gets a ClusterRole of the operator's choosing
    ok(
        &kc,
        &[
            "--context",
            "member2",
            "create",
            "clusterrole",
            "cellfed-member",
            "--verb=*",
            "--resource=*.*",
        ],
    );
    for (m, role) in [("member1", None), ("member2", Some("cellfed-member"))] {
        let mut args = vec![
            "cellfed",
            "join",
            m,
            "--cluster-context",
            m,
            "--host-context",
            "cellfed",
        ];
        if let Some(role) = role {
            args.extend(["--member-role", role]);
        }
        let out = ok(&kc, &args);
        assert!(out.contains("joined"), "{out}");
        assert!(out.contains("token requested for serviceaccount/"), "{out}");
        let bound = ok(
            &kc,
            &[
                "--context",
                m,
                "get",
                "clusterrolebinding",
                &format!("{m}-cellfed"),
                "-o",
                "jsonpath={.roleRef.name}",
            ],
        );
        assert_eq!(bound, role.unwrap_or("cluster-admin"));
        // the host holds the member's service account token, not the caller's own
        let stored = ok(
            &kc,
            &[
                "--context",
                "cellfed",
                "get",
                "secret",
                &format!("{m}-secret"),
                "-n",
                "kube-federation-system",
                "-o",
                "jsonpath={.data.token}",
            ],
        );
        let token = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(stored.trim())
                .unwrap(),
        )
        .unwrap();
        let own = std::fs::read_to_string(env.member(m).kubeconfig()).unwrap();
        assert!(!own.contains(&token), "join copied the caller's token");
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            claims["sub"],
            format!("system:serviceaccount:kube-federation-system:{m}-cellfed")
        );
    }
    eventually(30, "joined clusters ready", || {
        let list = env
            .host
            .get(&["kubefedclusters", "-n", "kube-federation-system"])
            .unwrap();
        let ready = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                c["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|x| x["type"] == "Ready" && x["status"] == "True")
            })
            .count();
        if ready == 2 {
            Ok(())
        } else {
            Err(format!("{ready}/2 ready"))
        }
    });

    // enable a type that is not enabled by default: the CRD is served and an FTC exists
    ok(
        &kc,
        &["cellfed", "enable", "roles.rbac.authorization.k8s.io"],
    );
    ok(&kc, &["get", "crd", "federatedroles.types.kubefed.io"]);
    let ftc = env
        .host
        .get(&[
            "federatedtypeconfigs",
            "roles.rbac.authorization.k8s.io",
            "-n",
            "kube-federation-system",
        ])
        .unwrap();
    assert_eq!(ftc["spec"]["federatedType"]["kind"], "FederatedRole");

    // federate an existing host Deployment onto both members
    ok(&kc, &["create", "namespace", "shop"]);
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "shop/web:1"}]}
"#,
    );
    ok(
        &kc,
        &[
            "cellfed",
            "federate",
            "deployment/web",
            "-n",
            "shop",
            "--clusters",
            "member1,member2",
        ],
    );
    eventually(60, "federated deployment reaches both members", || {
        for m in &env.members {
            m.get(&["deployment", "web", "-n", "shop"])
                .ok_or(format!("absent in {}", m.name))?;
        }
        Ok(())
    });

    // an application's other kinds: an HPA and a CronJob, created with kubectl's typed
    // generators, enabled for federation and federated onto both members
    ok(
        &kc,
        &["cellfed", "enable", "horizontalpodautoscalers.autoscaling"],
    );
    ok(&kc, &["cellfed", "enable", "cronjobs.batch"]);
    ok(
        &kc,
        &[
            "autoscale",
            "deployment",
            "web",
            "-n",
            "shop",
            "--min=2",
            "--max=6",
        ],
    );
    ok(
        &kc,
        &[
            "create",
            "cronjob",
            "nightly",
            "-n",
            "shop",
            "--image=shop/report:1",
            "--schedule=0 3 * * *",
        ],
    );
    for what in ["horizontalpodautoscaler/web", "cronjob/nightly"] {
        ok(
            &kc,
            &[
                "cellfed",
                "federate",
                what,
                "-n",
                "shop",
                "--clusters",
                "member1,member2",
            ],
        );
    }
    eventually(60, "federated HPA and CronJob reach both members", || {
        for m in &env.members {
            let hpa = m
                .get(&["hpa", "web", "-n", "shop"])
                .ok_or(format!("hpa absent in {}", m.name))?;
            if hpa["spec"]["maxReplicas"] != 6 {
                return Err(format!("{}: {hpa}", m.name));
            }
            let cj = m
                .get(&["cronjob", "nightly", "-n", "shop"])
                .ok_or(format!("cronjob absent in {}", m.name))?;
            if cj["spec"]["schedule"] != "0 3 * * *" {
                return Err(format!("{}: {cj}", m.name));
            }
        }
        Ok(())
    });

    // rollout: mask member1, change the image, rollout status times out (member2 behind) …
    ok(
        &kc,
        &[
            "cellfed",
            "rollout",
            "federateddeployment/web",
            "-n",
            "shop",
            "--to",
            "member1",
        ],
    );
    ok(
        &kc,
        &[
            "patch",
            "federateddeployments.v1beta1.types.kubefed.io",
            "web",
            "-n",
            "shop",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/template/spec/template/spec/containers/0/image","value":"shop/web:2"}]"#,
        ],
    );
    let (done, out, err) = kubectl(
        &kc,
        &[
            "cellfed",
            "rollout",
            "status",
            "federateddeployment/web",
            "-n",
            "shop",
            "--timeout",
            "4s",
        ],
    );
    assert!(
        !done,
        "rollout status must fail while member2 is masked out:\n{out}"
    );
    assert!(
        out.contains("1/2") && err.contains("timed out"),
        "{out}\n{err}"
    );
    // … and completes once the mask covers both
    ok(
        &kc,
        &[
            "cellfed",
            "rollout",
            "federateddeployment/web",
            "-n",
            "shop",
            "--to",
            "member1,member2",
        ],
    );
    let out = ok(
        &kc,
        &[
            "cellfed",
            "rollout",
            "status",
            "federateddeployment/web",
            "-n",
            "shop",
            "--timeout",
            "60s",
        ],
    );
    assert!(out.contains("2/2") && out.contains("complete"), "{out}");
    for m in &env.members {
        let d = m.get(&["deployment", "web", "-n", "shop"]).unwrap();
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            "shop/web:2"
        );
    }

    // disable stops propagation (status NotRunning); unjoin removes the cluster
    ok(
        &kc,
        &["cellfed", "disable", "roles.rbac.authorization.k8s.io"],
    );
    eventually(30, "FTC reports NotRunning", || {
        let ftc = env
            .host
            .get(&[
                "federatedtypeconfigs",
                "roles.rbac.authorization.k8s.io",
                "-n",
                "kube-federation-system",
            ])
            .unwrap();
        if ftc["status"]["propagationController"] == "NotRunning" {
            Ok(())
        } else {
            Err(ftc["status"].to_string())
        }
    });
    ok(
        &kc,
        &[
            "cellfed",
            "disable",
            "roles.rbac.authorization.k8s.io",
            "--delete",
        ],
    );
    assert!(!kubectl(&kc, &["get", "crd", "federatedroles.types.kubefed.io"]).0);
    ok(
        &kc,
        &[
            "cellfed",
            "unjoin",
            "member2",
            "--cluster-context",
            "member2",
        ],
    );
    assert!(
        env.host
            .get(&["kubefedclusters", "member2", "-n", "kube-federation-system"])
            .is_none()
    );
    assert!(
        env.host
            .get(&["secret", "member2-secret", "-n", "kube-federation-system"])
            .is_none()
    );

    // --help explains each subcommand with an example
    let help = ok(&kc, &["cellfed", "rollout", "--help"]);
    assert!(
        help.contains("Example: kubectl cellfed rollout federateddeployment/web"),
        "{help}"
    );
}

/// kubefedctl's `federate` as issue 11 asks for it, with the controller running: a namespace with
/// `--contents` and a ConfigMap federated without `--clusters` reach every member, and an
/// orphaned resource leaves its member objects behind when deleted.
#[test]
fn federate_everywhere_contents_and_orphaning_deletion() {
    if cellfed_e2e::skip("federate_everywhere_contents_and_orphaning_deletion", false) {
        return;
    }
    let env = Env::start(2);
    let kc = env.merged_kubeconfig();
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: kf, labels: {team: kf}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: kf}
data: {color: blue}
"#,
    );
    let out = ok(
        &kc,
        &["cellfed", "federate", "namespace", "kf", "--contents"],
    );
    assert!(
        out.contains("federatednamespace.types.kubefed.io/kf created")
            && out.contains("federatedconfigmap.types.kubefed.io/settings created"),
        "{out}"
    );
    eventually(60, "namespace contents reach both members", || {
        for m in &env.members {
            let cm = m
                .get(&["configmap", "settings", "-n", "kf"])
                .ok_or(format!("settings absent in {}", m.name))?;
            if cm["data"]["color"] != "blue" {
                return Err(format!("{}: {cm}", m.name));
            }
        }
        Ok(())
    });

    // no --clusters: everywhere (clusterSelector: {}), as kubefedctl
    env.host.kubectl(&[
        "create",
        "configmap",
        "extra",
        "-n",
        "kf",
        "--from-literal=k=v",
    ]);
    ok(
        &kc,
        &["cellfed", "federate", "configmap", "extra", "-n", "kf"],
    );
    eventually(60, "extra reaches both members", || {
        for m in &env.members {
            m.get(&["configmap", "extra", "-n", "kf"])
                .ok_or(format!("extra absent in {}", m.name))?;
        }
        Ok(())
    });

    // orphaning-deletion: deleting the federated resource keeps the member objects
    ok(
        &kc,
        &[
            "cellfed",
            "orphaning-deletion",
            "enable",
            "configmap",
            "extra",
            "-n",
            "kf",
        ],
    );
    assert_eq!(
        ok(
            &kc,
            &[
                "cellfed",
                "orphaning-deletion",
                "status",
                "FederatedConfigMap",
                "extra",
                "-n",
                "kf"
            ]
        ),
        "Enabled\n"
    );
    ok(
        &kc,
        &[
            "delete",
            "federatedconfigmaps.v1beta1.types.kubefed.io",
            "extra",
            "-n",
            "kf",
            "--wait=false",
        ],
    );
    eventually(
        60,
        "the orphaned federated resource is gone",
        || match env.host.get(&[
            "federatedconfigmaps.v1beta1.types.kubefed.io",
            "extra",
            "-n",
            "kf",
        ]) {
            None => Ok(()),
            Some(o) => Err(o["metadata"].to_string()),
        },
    );
    for m in &env.members {
        assert!(
            m.get(&["configmap", "extra", "-n", "kf"]).is_some(),
            "orphaned ConfigMap removed from {}",
            m.name
        );
    }

    // a missing object: kubectl's one line, exit 1
    let (done, _, err) = kubectl(
        &kc,
        &["cellfed", "federate", "deployment", "hello", "-n", "kf"],
    );
    assert!(!done);
    assert_eq!(
        err,
        "Error from server (NotFound): deployments.apps \"hello\" not found\n"
    );
}
