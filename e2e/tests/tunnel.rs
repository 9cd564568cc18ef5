#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `cellfed up --members 2 --tunnel`: members the host cannot resolve, reached only through
//! their `cellfed agent` processes. A FederatedDeployment reaches both; killing one agent makes
//! its cluster NotReady (TunnelDisconnected) while the other keeps converging; restarting it
//! converges with one write, and the controller's member watches work again through the new
//! agent connection.

use std::io::{BufRead, BufReader};
use std::net::ToSocketAddrs as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use cellfed_e2e::{binary, eventually, http_get, kubectl_raw};
use serde_json::Value;

const NS: &str = "kube-federation-system";

/// Kills a process when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Interrupts `cellfed up` when dropped (Ctrl-C: it stops its agents too).
struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path) -> Up {
    std::fs::create_dir_all(dir).unwrap();
    let log = std::fs::File::create(dir.with_extension("log")).unwrap();
    let mut child = Command::new(binary("cellfed"))
        .args(["up", "--members", "2", "--tunnel", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("cellfed up exited before it was up")
            .unwrap();
        if line.starts_with("Tunnel:") {
            break;
        }
    }
    Up(child)
}

fn kubectl(kc: &Path, args: &[&str]) -> Result<String, String> {
    let (ok, out, err) = kubectl_raw(kc, None, args);
    if ok { Ok(out) } else { Err(err) }
}

fn json(kc: &Path, args: &[&str]) -> Result<Value, String> {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&kubectl(kc, &a)?).map_err(|e| e.to_string())
}

fn ready(kc: &Path, cluster: &str) -> Result<(String, String), String> {
    let c = json(kc, &["get", "kubefedcluster", cluster, "-n", NS])?;
    let cond = c["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .ok_or("no Ready condition yet")?;
    Ok((
        cond["status"].as_str().unwrap_or_default().to_string(),
        cond["reason"].as_str().unwrap_or_default().to_string(),
    ))
}

fn replicas(kc: &Path, member: &str) -> Result<i64, String> {
    let d = json(
        kc,
        &["--context", member, "get", "deployment", "web", "-n", "tun"],
    )?;
    d["spec"]["replicas"].as_i64().ok_or("no replicas".into())
}

/// Writes (create, update, patch) of deployments the member's apiserver served, subresources
/// (scale, status) aside.
fn deployment_writes(kc: &Path, member: &str) -> u64 {
    let text = kubectl(kc, &["--context", member, "get", "--raw", "/metrics"]).unwrap();
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("apiserver_request_total{")?;
            let (labels, value) = rest.rsplit_once("} ")?;
            let write = ["\"CREATE\"", "\"UPDATE\"", "\"PATCH\"", "\"APPLY\""]
                .iter()
                .any(|v| labels.contains(&format!("verb={v}")));
            let whole = !labels.contains("subresource=\"") || labels.contains("subresource=\"\"");
            (write && whole && labels.contains("resource=\"deployments\""))
                .then(|| value.split(' ').next()?.parse::<f64>().ok())
                .flatten()
        })
        .sum::<f64>() as u64
}

fn kill_pid(pid: &str) {
    let status = Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(status.success());
}

const FEDERATED: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: tun
---
apiVersion: types.kubefed.io/v1beta1
kind: FederatedDeployment
metadata:
  name: web
  namespace: tun
spec:
  template:
    spec:
      replicas: 2
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
          - name: nginx
            image: nginx:1.25
  placement:
    clusters:
    - name: member1
    - name: member2
"#;

#[test]
fn up_with_tunnel_reaches_members_only_through_their_agents() {
    if cellfed_e2e::skip(
        "up_with_tunnel_reaches_members_only_through_their_agents",
        true,
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fed");
    let kc = dir.join("kubeconfig");
    let up = start(&dir);

    // the members are registered under names only their agents can reach
    let mut proxy = String::new();
    for m in ["member1", "member2"] {
        let c = json(&kc, &["get", "kubefedcluster", m, "-n", NS]).unwrap();
        let endpoint = c["spec"]["apiEndpoint"].as_str().unwrap();
        let host = format!("{m}.cluster.internal");
        assert!(
            endpoint.starts_with(&format!("https://{host}:")),
            "{endpoint}"
        );
        assert!(
            (host.as_str(), 443).to_socket_addrs().is_err(),
            "{host} must not resolve on the host"
        );
        proxy = c["spec"]["proxyURL"].as_str().unwrap().to_string();
        assert!(
            !proxy.contains('@'),
            "the proxy token stays in the Secret: {proxy}"
        );
    }
    eventually(60, "both clusters ready through the tunnel", || {
        for m in ["member1", "member2"] {
            let (status, reason) = ready(&kc, m)?;
            if status != "True" {
                return Err(format!("{m}: {status} {reason}"));
            }
        }
        Ok(())
    });

    // a FederatedDeployment reaches both members through the tunnel
    let (ok, _, err) = kubectl_raw(&kc, Some(FEDERATED), &["apply", "-f", "-"]);
    assert!(ok, "{err}");
    eventually(60, "web in both members", || {
        replicas(&kc, "member1")?;
        replicas(&kc, "member2")
    });
    let metrics = http_get(&format!("{proxy}/metrics")).unwrap();
    let streams = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cellfed_tunnel_streams_total "))
        .unwrap();
    assert!(streams.trim().parse::<u64>().unwrap() >= 2, "{metrics}");

    // member1's agent dies: its cluster says why, member2 keeps converging
    let agents = dir.join("agents");
    kill_pid(&std::fs::read_to_string(agents.join("member1.pid")).unwrap());
    eventually(
        60,
        "member1 NotReady with reason TunnelDisconnected",
        || match ready(&kc, "member1")? {
            (s, r) if s == "False" && r == "TunnelDisconnected" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    assert_eq!(ready(&kc, "member2").unwrap().0, "True");
    let before = deployment_writes(&kc, "member1");
    kubectl(
        &kc,
        &[
            "patch",
            "federateddeployment",
            "web",
            "-n",
            "tun",
            "--type=merge",
            "-p",
            r#"{"spec":{"template":{"spec":{"replicas":4}}}}"#,
        ],
    )
    .unwrap();
    eventually(
        60,
        "member2 converged while member1 is away",
        || match replicas(&kc, "member2")? {
            4 => Ok(()),
            n => Err(format!("member2 has {n} replicas")),
        },
    );
    assert_eq!(replicas(&kc, "member1").unwrap(), 2);

    // the agent comes back: member1 converges with exactly one write
    let args: Vec<String> =
        serde_json::from_slice(&std::fs::read(agents.join("member1.args")).unwrap()).unwrap();
    let _agent = Kill(
        Command::new(binary("cellfed"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually(60, "member1 Ready again", || match ready(&kc, "member1")? {
        (s, _) if s == "True" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    eventually(
        60,
        "member1 converged after the reconnect",
        || match replicas(&kc, "member1")? {
            4 => Ok(()),
            n => Err(format!("member1 has {n} replicas")),
        },
    );
    assert_eq!(
        deployment_writes(&kc, "member1") - before,
        1,
        "one update, no duplicate writes"
    );

    // the controller's member watch runs through the new agent connection: drift is undone
    kubectl(
        &kc,
        &[
            "--context",
            "member1",
            "patch",
            "deployment",
            "web",
            "-n",
            "tun",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":9}}"#,
        ],
    )
    .unwrap();
    eventually(
        60,
        "drift on member1 corrected from its watch",
        || match replicas(&kc, "member1")? {
            4 => Ok(()),
            n => Err(format!("member1 has {n} replicas")),
        },
    );
    drop(up);
}
