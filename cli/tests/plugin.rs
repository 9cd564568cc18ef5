#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `kubectl cellfed` as a kubefedctl user runs it, against a real federation apiserver and two
//! member apiservers (in this process, on loopback, SQLite): every kubefedctl command and flag,
//! asserting on what got stored — or, for `-o yaml` and `--dry-run`, on what was printed and that
//! nothing was stored — and that every error is one line in kubectl's words.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::watch;

/// The in-process conversion webhook, as `cellfed up` runs it.
struct Converter;

impl cellfed_apiserver::Converter for Converter {
    fn handles(&self, crd_name: &str) -> bool {
        crd_name.ends_with(".types.kubefed.io")
    }

    fn convert(&self, objects: Vec<Value>, desired: &str) -> Result<Vec<Value>, String> {
        cellfed_webhook::convert_objects(objects, desired)
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A host (`cellfed` context) and members `member1`, `member2`, plus a context `dead` whose
/// server is not there; servers stop when it drops.
struct Plane {
    // fields drop in this order: servers stop before their directory goes
    stop: watch::Sender<bool>,
    _rt: tokio::runtime::Runtime,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

impl Plane {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (stop, stop_rx) = watch::channel(false);
        let mut kubeconfigs = Vec::new();
        for name in ["cellfed", "member1", "member2"] {
            let data = dir.path().join(name);
            std::fs::create_dir_all(&data).unwrap();
            let mut config = cellfed_apiserver::ServerConfig::new(
                format!("sqlite://{}?mode=rwc", data.join("state.db").display()),
                "127.0.0.1:0".parse().unwrap(),
                &data,
            );
            if name == "cellfed" {
                config.converter = Some(Arc::new(Converter));
            }
            let server = rt
                .block_on(cellfed_apiserver::Server::bind(config))
                .unwrap();
            kubeconfigs.push((name, server.kubeconfig_path().to_path_buf()));
            let mut rx = stop_rx.clone();
            rt.spawn(server.run_until(async move {
                let _ = rx.wait_for(|s| *s).await;
            }));
        }
        let kubeconfig = merge(dir.path(), &kubeconfigs);
        let plane = Self {
            stop,
            _rt: rt,
            kubeconfig,
            dir,
        };
        plane.kubectl_ok(&[
            "apply",
            "--server-side",
            "-f",
            root().join("crds").to_str().unwrap(),
        ]);
        plane.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-federation-system}\n");
        let ftcs = std::fs::read_to_string(
            root().join("charts/cellfed/templates/generated-federation.yaml"),
        )
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("{{"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("{{ .Release.Namespace }}", "kube-federation-system");
        plane.apply(&ftcs);
        plane
    }

    /// Runs `kubectl cellfed ARGS` (the plugin binary); (success, stdout, stderr).
    fn plugin(&self, args: &[&str]) -> (bool, String, String) {
        self.plugin_stdin(args, None)
    }

    fn plugin_stdin(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        run(
            Command::new(env!("CARGO_BIN_EXE_kubectl-cellfed"))
                .env("KUBECONFIG", &self.kubeconfig)
                .env_remove("RUST_LOG")
                .args(args),
            stdin,
        )
    }

    /// The plugin, which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.plugin(args);
        assert!(ok, "kubectl cellfed {args:?} failed:\n{out}\n{err}");
        out
    }

    /// The plugin, which must fail with exactly one line on stderr; that line.
    fn fails(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.plugin(args);
        assert!(!ok, "kubectl cellfed {args:?} should fail:\n{out}\n{err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "one line of error expected: {err:?}");
        assert!(
            !err.contains("Status {") && !err.contains("ApiError") && !err.contains("Some("),
            "Rust debug formatting in {err:?}"
        );
        lines[0].to_string()
    }

    fn kubectl(&self, context: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        run(
            Command::new("kubectl")
                .env("KUBECONFIG", &self.kubeconfig)
                .arg(format!("--context={context}"))
                .arg("--request-timeout=60s")
                .args(args),
            stdin,
        )
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.kubectl("cellfed", args, None);
        assert!(ok, "kubectl {args:?} failed: {err}");
        out
    }

    fn apply(&self, yaml: &str) {
        let (ok, _, err) = self.kubectl("cellfed", &["apply", "-f", "-"], Some(yaml));
        assert!(ok, "kubectl apply failed: {err}\n{yaml}");
    }

    /// `kubectl get ARGS -o json` in `context`, None when absent.
    fn get_in(&self, context: &str, args: &[&str]) -> Option<Value> {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json"]);
        let (ok, out, err) = self.kubectl(context, &a, None);
        if !ok {
            assert!(
                err.contains("NotFound") || err.contains("doesn't have a resource type"),
                "{err}"
            );
            return None;
        }
        Some(serde_json::from_str(&out).unwrap())
    }

    fn get(&self, args: &[&str]) -> Option<Value> {
        self.get_in("cellfed", args)
    }

    /// How many objects `kubectl get RESOURCE -A` lists on the host (0 when the type is not served).
    fn count(&self, resource: &str) -> usize {
        self.get(&[resource, "-A"])
            .map_or(0, |l| l["items"].as_array().unwrap().len())
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn run(cmd: &mut Command, stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One kubeconfig with a context per server (named as given) and `dead` (nothing listening).
fn merge(dir: &Path, kubeconfigs: &[(&str, PathBuf)]) -> PathBuf {
    let mut clusters = Vec::new();
    let mut users = Vec::new();
    let mut contexts = Vec::new();
    for (name, path) in kubeconfigs {
        let kc: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut c = kc["clusters"][0].clone();
        c["name"] = json!(name);
        let mut u = kc["users"][0].clone();
        u["name"] = json!(name);
        if *name == "member1" {
            // the member's address with the port nobody listens on
            let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = dead.local_addr().unwrap().port();
            drop(dead);
            let mut d = c.clone();
            d["name"] = json!("dead");
            d["cluster"]["server"] = json!(format!("https://127.0.0.1:{port}"));
            clusters.push(d);
            contexts.push(json!({"name": "dead", "context": {"cluster": "dead", "user": name}}));
        }
        clusters.push(c);
        users.push(u);
        contexts.push(json!({"name": name, "context": {"cluster": name, "user": name}}));
    }
    let merged = json!({"apiVersion": "v1", "kind": "Config", "current-context": "cellfed",
        "clusters": clusters, "users": users, "contexts": contexts});
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&merged).unwrap()).unwrap();
    path
}

const DEMO: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: demo, labels: {app: shop}}
data: {color: blue}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other, namespace: demo}
data: {a: b}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.25"}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: demo}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
"#;

/// Mirrors KubeFed test/e2e/federate.go "Federate resource <type>, should create an equivalent
/// federated resource in the host cluster" and "input yaml from a file, should emit equivalent
/// federated resources".
#[test]
fn federate_type_name_places_everywhere_prints_yaml_and_dry_runs() {
    let plane = Plane::start();
    plane.apply(DEMO);

    // kubefedctl's form, no --clusters: placed on every cluster
    let out = plane.ok(&["federate", "configmap", "settings", "-n", "demo"]);
    assert_eq!(
        out,
        "federatedconfigmap.types.kubefed.io/settings created\n"
    );
    let fed = plane
        .get(&[
            "federatedconfigmaps.v1beta1.types.kubefed.io",
            "settings",
            "-n",
            "demo",
        ])
        .unwrap();
    assert_eq!(fed["spec"]["placement"], json!({"clusterSelector": {}}));
    assert_eq!(
        fed["spec"]["template"],
        json!({"metadata": {"labels": {"app": "shop"}}, "data": {"color": "blue"}})
    );

    // cellfed's KIND/NAME still works; --clusters names the clusters
    plane.ok(&[
        "federate",
        "deployment/web",
        "-n",
        "demo",
        "--clusters",
        "member1",
    ]);
    let fed = plane
        .get(&[
            "federateddeployments.v1beta1.types.kubefed.io",
            "web",
            "-n",
            "demo",
        ])
        .unwrap();
    assert_eq!(
        fed["spec"]["placement"],
        json!({"clusters": [{"name": "member1"}]})
    );
    assert_eq!(fed["spec"]["template"]["spec"]["replicas"], 2);

    // kubectl's one-line errors, non-zero exit
    assert_eq!(
        plane.fails(&["federate", "deployment", "hello", "-n", "demo"]),
        "Error from server (NotFound): deployments.apps \"hello\" not found"
    );
    assert_eq!(
        plane.fails(&["federate", "configmap", "settings", "-n", "demo"]),
        "Error from server (AlreadyExists): federatedconfigmaps.types.kubefed.io \"settings\" already exists"
    );
    assert_eq!(
        plane.fails(&["federate", "gizmo", "x"]),
        "error: the server doesn't have a resource type \"gizmo\""
    );
    let line = plane.fails(&["federate", "configmap", "settings", "--bogus"]);
    assert!(
        line.starts_with("error: unexpected argument '--bogus'")
            && line.ends_with("see 'kubectl cellfed federate --help'"),
        "{line}"
    );
    let line = plane.fails(&["federate", "deployment", "web", "-n", "demo", "--contents"]);
    assert_eq!(
        line,
        "error: --contents can only be used with type 'namespaces'"
    );

    // a type that is not enabled: refused with the way out, nothing stored
    let line = plane.fails(&["federate", "role", "reader", "-n", "demo"]);
    assert!(
        line.starts_with("Error from server (NotFound): federatedtypeconfigs.core.kubefed.io \"roles.rbac.authorization.k8s.io\" not found;")
            && line.contains("--enable-type"),
        "{line}"
    );

    // -o yaml: printed, nothing created — not even for a type that is not enabled
    let out = plane.ok(&["federate", "role", "reader", "-n", "demo", "-o", "yaml"]);
    let printed: Value = serde_yaml::from_str(out.trim_start_matches("---\n")).unwrap();
    assert_eq!(printed["apiVersion"], "types.kubefed.io/v1beta1");
    assert_eq!(printed["kind"], "FederatedRole");
    assert_eq!(
        printed["metadata"],
        json!({"name": "reader", "namespace": "demo"})
    );
    assert_eq!(printed["spec"]["placement"], json!({"clusterSelector": {}}));
    assert_eq!(
        printed["spec"]["template"]["rules"][0]["verbs"],
        json!(["get"])
    );
    assert!(
        plane
            .get(&["crd", "federatedroles.types.kubefed.io"])
            .is_none()
    );
    let out = plane.ok(&["federate", "configmap", "other", "-n", "demo", "-o", "yaml"]);
    assert!(
        out.starts_with("---\n") && out.contains("kind: FederatedConfigMap"),
        "{out}"
    );
    assert!(
        plane
            .get(&[
                "federatedconfigmaps.v1beta1.types.kubefed.io",
                "other",
                "-n",
                "demo"
            ])
            .is_none()
    );
    let line = plane.fails(&[
        "federate", "role", "reader", "-n", "demo", "-o", "yaml", "-t",
    ]);
    assert_eq!(
        line,
        "error: --enable-type cannot be used with --output yaml"
    );

    // --dry-run: says what it would create, creates nothing
    let out = plane.ok(&["federate", "configmap", "other", "-n", "demo", "--dry-run"]);
    assert_eq!(
        out,
        "federatedconfigmap.types.kubefed.io/other created (dry run)\n"
    );
    assert!(
        plane
            .get(&[
                "federatedconfigmaps.v1beta1.types.kubefed.io",
                "other",
                "-n",
                "demo"
            ])
            .is_none()
    );
    let out = plane.ok(&[
        "federate",
        "role",
        "reader",
        "-n",
        "demo",
        "--enable-type",
        "--dry-run",
    ]);
    assert!(
        out.contains("(dry run)") && out.contains("federatedrole.types.kubefed.io/reader"),
        "{out}"
    );
    assert!(
        plane
            .get(&["crd", "federatedroles.types.kubefed.io"])
            .is_none()
    );
    assert!(
        plane
            .get(&[
                "federatedtypeconfigs",
                "roles.rbac.authorization.k8s.io",
                "-n",
                "kube-federation-system"
            ])
            .is_none()
    );

    // --enable-type: the type is enabled first, then the object federated
    let out = plane.ok(&["federate", "role", "reader", "-n", "demo", "--enable-type"]);
    assert!(
        out.contains(
            "customresourcedefinition.apiextensions.k8s.io/federatedroles.types.kubefed.io created"
        ) && out.ends_with("federatedrole.types.kubefed.io/reader created\n"),
        "{out}"
    );
    let ftc = plane
        .get(&[
            "federatedtypeconfigs",
            "roles.rbac.authorization.k8s.io",
            "-n",
            "kube-federation-system",
        ])
        .unwrap();
    assert_eq!(ftc["spec"]["federatedType"]["kind"], "FederatedRole");
    let role = plane
        .get(&[
            "federatedroles.v1beta1.types.kubefed.io",
            "reader",
            "-n",
            "demo",
        ])
        .unwrap();
    assert_eq!(role["spec"]["placement"], json!({"clusterSelector": {}}));

    // -f FILE (and stdin): the objects of a file, printed, never created, no server needed
    let file = plane.dir.path().join("app.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-file}\ndata: {k: v}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: viewer}\nrules: []\n",
    )
    .unwrap();
    let out = plane.ok(&[
        "federate",
        "-f",
        file.to_str().unwrap(),
        "-n",
        "demo",
        "--clusters",
        "member2",
    ]);
    let docs: Vec<Value> = out
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml::from_str(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 2, "{out}");
    assert_eq!(docs[0]["kind"], "FederatedConfigMap");
    assert_eq!(
        docs[0]["metadata"],
        json!({"name": "from-file", "namespace": "demo"})
    );
    assert_eq!(
        docs[0]["spec"]["placement"],
        json!({"clusters": [{"name": "member2"}]})
    );
    assert_eq!(docs[1]["kind"], "FederatedClusterRole");
    assert!(
        plane
            .get(&[
                "federatedconfigmaps.v1beta1.types.kubefed.io",
                "from-file",
                "-n",
                "demo"
            ])
            .is_none()
    );
    let (ok, out, _) = plane.plugin_stdin(
        &["federate", "-f", "-", "-n", "demo"],
        Some("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: b}\n"),
    );
    assert!(ok && out.contains("kind: FederatedSecret"), "{out}");
    let line = plane.fails(&["federate", "-f", file.to_str().unwrap(), "configmap", "x"]);
    assert!(
        line.starts_with("error: --filename takes no TYPE NAME"),
        "{line}"
    );
}

/// Mirrors KubeFed test/e2e/federate.go "Federate namespace with contents, should create
/// equivalent federated resources for all namespaced resources".
#[test]
fn federate_namespace_contents() {
    let plane = Plane::start();
    plane.apply(
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: a}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {a: b}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: shop}
stringData: {password: x}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: bot, namespace: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: owned, namespace: shop, ownerReferences: [{apiVersion: v1, kind: ConfigMap, name: settings, uid: "1", controller: true}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: shop}
rules: []
"#,
    );

    // -o yaml first: everything printed, nothing stored
    let out = plane.ok(&["federate", "namespace", "shop", "--contents", "-o", "yaml"]);
    for kind in [
        "FederatedNamespace",
        "FederatedConfigMap",
        "FederatedSecret",
        "FederatedServiceAccount",
        "FederatedRole",
    ] {
        assert!(
            out.contains(&format!("kind: {kind}")),
            "{kind} missing:\n{out}"
        );
    }
    assert_eq!(
        plane.count("federatednamespaces.v1beta1.types.kubefed.io"),
        0
    );
    assert_eq!(
        plane.count("federatedconfigmaps.v1beta1.types.kubefed.io"),
        0
    );

    // --contents: the namespace and its objects of enabled types; roles are not enabled
    let (ok, out, err) = plane.plugin(&[
        "federate",
        "namespace",
        "shop",
        "--contents",
        "-s",
        "secrets",
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.starts_with("federatednamespace.types.kubefed.io/shop created\n"),
        "{out}"
    );
    assert!(
        err.contains(
            "Warning: 1 roles not federated: roles.rbac.authorization.k8s.io is not enabled"
        ),
        "{err}"
    );
    let ns = plane
        .get(&[
            "federatednamespaces.v1beta1.types.kubefed.io",
            "shop",
            "-n",
            "shop",
        ])
        .unwrap();
    assert_eq!(ns["spec"]["placement"], json!({"clusterSelector": {}}));
    assert_eq!(ns["spec"]["template"]["metadata"]["labels"]["team"], "a");
    let names = |resource: &str| -> Vec<String> {
        plane
            .get(&[resource, "-n", "shop"])
            .map(|l| {
                l["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    // not kube-root-ca.crt, not the owned one
    assert_eq!(
        names("federatedconfigmaps.v1beta1.types.kubefed.io"),
        ["settings"]
    );
    // not the default ServiceAccount
    assert_eq!(
        names("federatedserviceaccounts.v1beta1.types.kubefed.io"),
        ["bot"]
    );
    // skipped with -s
    assert!(names("federatedsecrets.v1beta1.types.kubefed.io").is_empty());
}

#[test]
fn enable_disable_and_orphaning_deletion() {
    let plane = Plane::start();
    plane.apply(DEMO);
    let ftc =
        |name: &str| plane.get(&["federatedtypeconfigs", name, "-n", "kube-federation-system"]);

    // -o yaml: the FederatedTypeConfig and the CRD, nothing stored
    let out = plane.ok(&["enable", "roles", "-o", "yaml"]);
    let docs: Vec<Value> = out
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml::from_str(d).unwrap())
        .collect();
    assert_eq!(docs[0]["kind"], "FederatedTypeConfig");
    assert_eq!(
        docs[0]["metadata"]["name"],
        "roles.rbac.authorization.k8s.io"
    );
    assert_eq!(docs[1]["kind"], "CustomResourceDefinition");
    assert_eq!(
        docs[1]["metadata"]["name"],
        "federatedroles.types.kubefed.io"
    );
    assert!(ftc("roles.rbac.authorization.k8s.io").is_none());
    assert!(
        plane
            .get(&["crd", "federatedroles.types.kubefed.io"])
            .is_none()
    );

    // --dry-run: kubefedctl's lines, nothing stored
    let out = plane.ok(&["enable", "role", "--dry-run"]);
    assert_eq!(
        out,
        "customresourcedefinition.apiextensions.k8s.io/federatedroles.types.kubefed.io created (dry run)\n\
         federatedtypeconfig.core.kubefed.io/roles.rbac.authorization.k8s.io created in namespace kube-federation-system (dry run)\n"
    );
    assert!(ftc("roles.rbac.authorization.k8s.io").is_none());
    assert!(
        plane
            .get(&["crd", "federatedroles.types.kubefed.io"])
            .is_none()
    );

    // --federated-group / --federated-version: KubeFed's single-version CRD in that group
    plane.ok(&[
        "enable",
        "roles.rbac.authorization.k8s.io",
        "--federated-group",
        "fed.example.com",
        "--federated-version",
        "v1alpha1",
    ]);
    let crd = plane
        .get(&["crd", "federatedroles.fed.example.com"])
        .unwrap();
    assert_eq!(crd["spec"]["group"], "fed.example.com");
    assert_eq!(crd["spec"]["versions"].as_array().unwrap().len(), 1);
    assert_eq!(crd["spec"]["versions"][0]["name"], "v1alpha1");
    let roles = ftc("roles.rbac.authorization.k8s.io").unwrap();
    assert_eq!(roles["spec"]["federatedType"]["group"], "fed.example.com");
    assert_eq!(roles["spec"]["federatedType"]["version"], "v1alpha1");
    assert_eq!(roles["spec"]["propagation"], "Enabled");
    let line = plane.fails(&["enable", "roles"]);
    assert!(
        line.starts_with(
            "error: federation is already enabled for \"roles.rbac.authorization.k8s.io\""
        ) && line.contains("not supported"),
        "{line}"
    );
    // federate uses the type's own federated group
    plane.ok(&["federate", "role", "reader", "-n", "demo"]);
    assert!(
        plane
            .get(&["federatedroles.fed.example.com", "reader", "-n", "demo"])
            .is_some()
    );

    // disable --delete-crd refuses while federated objects exist; --dry-run changes nothing
    let line = plane.fails(&["disable", "roles.rbac.authorization.k8s.io", "--delete-crd"]);
    assert!(
        line.starts_with("error: cannot delete CRD \"federatedroles.fed.example.com\" while FederatedRole objects exist (demo/reader)"),
        "{line}"
    );
    assert_eq!(
        ftc("roles.rbac.authorization.k8s.io").unwrap()["spec"]["propagation"],
        "Enabled"
    );
    plane.kubectl_ok(&[
        "delete",
        "federatedroles.fed.example.com",
        "reader",
        "-n",
        "demo",
    ]);
    let out = plane.ok(&[
        "disable",
        "roles.rbac.authorization.k8s.io",
        "--delete-crd",
        "--dry-run",
    ]);
    assert!(out.contains("deleted (dry run)"), "{out}");
    assert!(
        plane
            .get(&["crd", "federatedroles.fed.example.com"])
            .is_some()
    );
    assert_eq!(
        ftc("roles.rbac.authorization.k8s.io").unwrap()["spec"]["propagation"],
        "Enabled"
    );
    // --delete is the old spelling of --delete-crd
    let out = plane.ok(&["disable", "role", "--delete"]);
    assert_eq!(
        out,
        "Disabled propagation for FederatedTypeConfig \"kube-federation-system/roles.rbac.authorization.k8s.io\"\n\
         customresourcedefinition \"federatedroles.fed.example.com\" deleted\n\
         federatedtypeconfig \"kube-federation-system/roles.rbac.authorization.k8s.io\" deleted\n"
    );
    assert!(
        plane
            .get(&["crd", "federatedroles.fed.example.com"])
            .is_none()
    );
    assert!(ftc("roles.rbac.authorization.k8s.io").is_none());
    // without --delete-crd: propagation Disabled, FTC kept; a type never enabled is reported
    plane.ok(&["disable", "configmaps"]);
    assert_eq!(
        ftc("configmaps").unwrap()["spec"]["propagation"],
        "Disabled"
    );
    let out = plane.ok(&["disable", "roles"]);
    assert_eq!(
        out,
        "FederatedTypeConfig \"kube-federation-system/roles.rbac.authorization.k8s.io\" does not exist\n"
    );

    // orphaning-deletion on the federated resource (named by its federated or its target type)
    plane.ok(&["federate", "deployment", "web", "-n", "demo"]);
    let orphan = || {
        plane
            .get(&[
                "federateddeployments.v1beta1.types.kubefed.io",
                "web",
                "-n",
                "demo",
            ])
            .unwrap()["metadata"]["annotations"]["kubefed.io/orphan"]
            .clone()
    };
    assert_eq!(
        plane.ok(&[
            "orphaning-deletion",
            "status",
            "FederatedDeployment",
            "web",
            "-n",
            "demo"
        ]),
        "Disabled\n"
    );
    plane.ok(&[
        "orphaning-deletion",
        "enable",
        "FederatedDeployment",
        "web",
        "-n",
        "demo",
    ]);
    assert_eq!(orphan(), "true");
    assert_eq!(
        plane.ok(&[
            "orphaning-deletion",
            "status",
            "deployment",
            "web",
            "-n",
            "demo"
        ]),
        "Enabled\n"
    );
    plane.ok(&[
        "orphaning-deletion",
        "disable",
        "federateddeployments",
        "web",
        "-n",
        "demo",
    ]);
    assert_eq!(orphan(), Value::Null);
    assert_eq!(
        plane.ok(&[
            "orphaning-deletion",
            "status",
            "deployment",
            "web",
            "-n",
            "demo"
        ]),
        "Disabled\n"
    );
    assert_eq!(
        plane.fails(&[
            "orphaning-deletion",
            "enable",
            "FederatedDeployment",
            "nope",
            "-n",
            "demo"
        ]),
        "Error from server (NotFound): federateddeployments.types.kubefed.io \"nope\" not found"
    );
}

#[test]
fn join_and_unjoin_with_kubefedctl_flags() {
    let plane = Plane::start();
    let host_has = |args: &[&str]| plane.get(args).is_some();
    let member_sa = |m: &str| {
        plane
            .get_in(
                m,
                &[
                    "serviceaccount",
                    &format!("{m}-cellfed"),
                    "-n",
                    "kube-federation-system",
                ],
            )
            .is_some()
    };

    // --dry-run: what would be written, nothing written (the member context defaults to NAME)
    let out = plane.ok(&[
        "join",
        "member1",
        "--host-cluster-context",
        "cellfed",
        "--dry-run",
    ]);
    assert!(
        out.contains("member1: serviceaccount/member1-cellfed created (dry run)")
            && out.contains("host: kubefedcluster.core.kubefed.io/member1 created (dry run)"),
        "{out}"
    );
    assert!(!host_has(&[
        "kubefedclusters",
        "member1",
        "-n",
        "kube-federation-system"
    ]));
    assert!(!host_has(&[
        "secret",
        "member1-secret",
        "-n",
        "kube-federation-system"
    ]));
    assert!(!member_sa("member1"));

    plane.ok(&["join", "member1"]);
    let cluster = plane
        .get(&["kubefedclusters", "member1", "-n", "kube-federation-system"])
        .unwrap();
    assert_eq!(cluster["spec"]["secretRef"]["name"], "member1-secret");
    assert!(host_has(&[
        "secret",
        "member1-secret",
        "-n",
        "kube-federation-system"
    ]));
    assert!(member_sa("member1"));

    // --error-on-existing (kubefedctl's default true): a second join fails, one line
    let line = plane.fails(&["join", "member1"]);
    assert!(
        line.starts_with("error: cluster \"member1\" looks joined already")
            && line.contains("--error-on-existing=false"),
        "{line}"
    );
    plane.ok(&["join", "member1", "--error-on-existing=false"]);

    // --secret-name
    plane.ok(&[
        "join",
        "member2",
        "--cluster-context",
        "member2",
        "--secret-name",
        "m2-creds",
    ]);
    let cluster = plane
        .get(&["kubefedclusters", "member2", "-n", "kube-federation-system"])
        .unwrap();
    assert_eq!(cluster["spec"]["secretRef"]["name"], "m2-creds");
    let secret = plane
        .get(&["secret", "m2-creds", "-n", "kube-federation-system"])
        .unwrap();
    assert!(secret["data"]["token"].is_string());

    // unjoin --dry-run deletes nothing; unjoin removes the secret the cluster refers to
    let out = plane.ok(&["unjoin", "member2", "--dry-run"]);
    assert!(
        out.contains("host: secret/m2-creds deleted (dry run)"),
        "{out}"
    );
    assert!(host_has(&[
        "kubefedclusters",
        "member2",
        "-n",
        "kube-federation-system"
    ]));
    assert!(member_sa("member2"));
    let out = plane.ok(&["unjoin", "member2"]);
    assert!(out.ends_with("cluster member2 unjoined\n"), "{out}");
    assert!(!host_has(&[
        "kubefedclusters",
        "member2",
        "-n",
        "kube-federation-system"
    ]));
    assert!(!host_has(&[
        "secret",
        "m2-creds",
        "-n",
        "kube-federation-system"
    ]));
    assert!(!member_sa("member2"));
    assert_eq!(
        plane.fails(&["unjoin", "member2"]),
        "Error from server (NotFound): kubefedclusters.core.kubefed.io \"member2\" not found"
    );

    // an unreachable member stops the unjoin, unless --force
    let line = plane.fails(&["unjoin", "member1", "--cluster-context", "dead"]);
    assert!(
        line.starts_with("Unable to connect to the server:") && line.contains("--force"),
        "{line}"
    );
    assert!(host_has(&[
        "kubefedclusters",
        "member1",
        "-n",
        "kube-federation-system"
    ]));
    let line = plane.fails(&["unjoin", "member1", "--cluster-context", "nosuch"]);
    assert!(
        line.starts_with("error: context \"nosuch\" not found in the kubeconfig"),
        "{line}"
    );
    let (ok, out, err) =
        plane.plugin(&["unjoin", "member1", "--cluster-context", "dead", "--force"]);
    assert!(ok, "{out}\n{err}");
    assert!(
        err.starts_with("Warning: member cluster \"member1\" not cleaned up"),
        "{err}"
    );
    assert!(!host_has(&[
        "kubefedclusters",
        "member1",
        "-n",
        "kube-federation-system"
    ]));
    assert!(!host_has(&[
        "secret",
        "member1-secret",
        "-n",
        "kube-federation-system"
    ]));
    assert!(
        member_sa("member1"),
        "the unreachable member keeps its account"
    );
}

#[test]
fn enable_finds_kube_builtins_beyond_the_workload_basics() {
    let plane = Plane::start();
    let ftc =
        |name: &str| plane.get(&["federatedtypeconfigs", name, "-n", "kube-federation-system"]);
    // The name the issue reported as "the host serves no resource named …", and short names.
    plane.ok(&["enable", "horizontalpodautoscalers.autoscaling"]);
    plane.ok(&["enable", "pdb"]);
    plane.ok(&["enable", "netpol"]);
    let hpa = ftc("horizontalpodautoscalers.autoscaling").unwrap();
    assert_eq!(hpa["spec"]["targetType"]["kind"], "HorizontalPodAutoscaler");
    assert_eq!(hpa["spec"]["targetType"]["version"], "v2");
    assert_eq!(hpa["spec"]["targetType"]["scope"], "Namespaced");
    let pdb = ftc("poddisruptionbudgets.policy").unwrap();
    assert_eq!(pdb["spec"]["targetType"]["group"], "policy");
    assert!(ftc("networkpolicies.networking.k8s.io").is_some());
    assert!(
        plane
            .get(&["crd", "federatedhorizontalpodautoscalers.types.kubefed.io"])
            .is_some()
    );
}
