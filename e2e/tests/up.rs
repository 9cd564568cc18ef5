#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `cellfed up` as a user runs it: the examples apply as they are and reach the members; Ctrl-C
//! stops everything cleanly; a second `up` on the same directory keeps the data.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use cellfed_e2e::{binary, eventually, kubectl_raw, root};

fn start(dir: &Path) -> Child {
    let mut child = Command::new(binary("cellfed"))
        .args(["up", "--members", "2", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("cellfed up exited before it was up")
            .unwrap();
        if line.starts_with("cellfed is up") {
            break;
        }
    }
    child
}

fn interrupt(mut child: Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap();
    assert!(
        code.success(),
        "cellfed up must exit 0 on Ctrl-C, got {code}"
    );
}

fn kubectl(kc: &Path, args: &[&str]) -> Result<String, String> {
    let (ok, out, err) = kubectl_raw(kc, None, args);
    if ok { Ok(out) } else { Err(err) }
}

#[test]
fn up_runs_the_examples_stops_cleanly_and_keeps_data() {
    if cellfed_e2e::skip("up_runs_the_examples_stops_cleanly_and_keeps_data", true) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fed");
    let kc = dir.join("kubeconfig");
    let up = start(&dir);

    kubectl(&kc, &["--context", "member1", "get", "namespaces"]).unwrap();
    let ftcs = kubectl(
        &kc,
        &[
            "get",
            "federatedtypeconfigs",
            "-n",
            "kube-federation-system",
            "-o",
            "name",
        ],
    )
    .unwrap();
    assert_eq!(ftcs.lines().count(), 12, "{ftcs}");
    kubectl(
        &kc,
        &["apply", "-f", root().join("examples").to_str().unwrap()],
    )
    .unwrap();
    eventually(
        60,
        "the sample deployment in both members, overridden on member2",
        || {
            let d1: serde_json::Value = serde_json::from_str(&kubectl(
                &kc,
                &[
                    "--context",
                    "member1",
                    "get",
                    "deployment",
                    "web",
                    "-n",
                    "demo",
                    "-o",
                    "json",
                ],
            )?)
            .unwrap();
            let d2: serde_json::Value = serde_json::from_str(&kubectl(
                &kc,
                &[
                    "--context",
                    "member2",
                    "get",
                    "deployment",
                    "web",
                    "-n",
                    "demo",
                    "-o",
                    "json",
                ],
            )?)
            .unwrap();
            assert_eq!(d1["spec"]["replicas"], 2);
            assert_eq!(d2["spec"]["replicas"], 3);
            assert_eq!(
                d2["spec"]["template"]["spec"]["containers"][0]["image"],
                "nginx:1.26"
            );
            Ok(())
        },
    );
    eventually(60, "the cell example in its member namespaces", || {
        kubectl(
            &kc,
            &[
                "--context",
                "member1",
                "get",
                "deployment",
                "cart",
                "-n",
                "shop-rz00a",
            ],
        )?;
        kubectl(
            &kc,
            &[
                "--context",
                "member1",
                "get",
                "deployment",
                "cart",
                "-n",
                "shop-rz01a",
            ],
        )?;
        kubectl(
            &kc,
            &[
                "--context",
                "member2",
                "get",
                "deployment",
                "cart",
                "-n",
                "shop",
            ],
        )?;
        Ok(())
    });
    kubectl(
        &kc,
        &[
            "--context",
            "member1",
            "get",
            "service",
            "web",
            "-n",
            "demo",
        ],
    )
    .unwrap();
    interrupt(up);

    // again on the same directory: same ports, same data
    let up = start(&dir);
    let fd = kubectl(
        &kc,
        &["get", "federateddeployments", "-n", "demo", "-o", "name"],
    )
    .unwrap();
    assert!(fd.contains("web"), "{fd}");
    kubectl(
        &kc,
        &[
            "--context",
            "member2",
            "get",
            "deployment",
            "web",
            "-n",
            "demo",
        ],
    )
    .unwrap();
    interrupt(up);
}
