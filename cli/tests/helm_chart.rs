#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Helm chart `charts/cellfed`: its generated files match the code, it lints and renders,
//! and `helm install` / `upgrade` / `uninstall` work against a real `cellfed apiserver`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chart_dir() -> PathBuf {
    root().join("charts/cellfed")
}

/// helm as installed by scripts/ensure-services.sh (or from PATH, or $HELM).
fn helm() -> PathBuf {
    if let Some(h) = std::env::var_os("HELM") {
        return h.into();
    }
    let local = root().join(".tools/bin/helm");
    if local.exists() {
        return local;
    }
    "helm".into()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| {
        panic!("running {cmd:?}: {e} (run scripts/ensure-services.sh to install helm)")
    })
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn generated_chart_files_match_the_code() {
    let files = cellfed_cli::chart::files().unwrap();
    let mut stale = Vec::new();
    for (rel, content) in &files {
        match std::fs::read_to_string(chart_dir().join(rel)) {
            Ok(on_disk) if on_disk == *content => {}
            _ => stale.push(rel.clone()),
        }
    }
    assert!(
        stale.is_empty(),
        "charts/cellfed files differ from the code: {stale:?}\nRegenerate: cargo run -p cellfed-cli --bin cellfed -- chart --out charts/cellfed"
    );
    // The plain CRDs of the chart are exactly the ones under crds/.
    for (rel, _) in files.iter().filter(|(r, _)| r.starts_with("crds/")) {
        let chart = std::fs::read_to_string(chart_dir().join(rel)).unwrap();
        let top = std::fs::read_to_string(root().join(rel)).unwrap();
        let body = |s: &str| {
            s.lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            body(&chart),
            body(&top),
            "{rel} differs between crds/ and the chart"
        );
    }
}

#[test]
fn chart_lints_and_renders_one_ca_for_webhook_and_crds() {
    ok(Command::new(helm()).arg("lint").arg(chart_dir()));
    let rendered = ok(Command::new(helm())
        .args(["template", "fed", "-n", "kube-federation-system"])
        .arg(chart_dir()));
    let docs: Vec<serde_json::Value> = rendered
        .split("\n---")
        .filter_map(|d| serde_yaml::from_str::<serde_json::Value>(d).ok())
        .filter(|d| d.is_object())
        .collect();
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in [
        "Deployment",
        "Service",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "Secret",
        "KubeFedConfig",
        "FederatedTypeConfig",
        "CustomResourceDefinition",
    ] {
        assert!(
            kinds.contains(&kind),
            "rendered chart has no {kind}: {kinds:?}"
        );
    }
    let secret = docs.iter().find(|d| d["kind"] == "Secret").unwrap();
    let ca = secret["data"]["ca.crt"].as_str().unwrap();
    let crds: Vec<_> = docs
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .collect();
    assert_eq!(crds.len(), cellfed_api::targets::default_targets().len());
    for crd in crds {
        let cc = &crd["spec"]["conversion"]["webhook"]["clientConfig"];
        assert_eq!(
            cc["caBundle"], ca,
            "{} trusts another CA",
            crd["metadata"]["name"]
        );
        assert_eq!(cc["service"]["name"], "fed-cellfed-webhook");
        assert_eq!(cc["service"]["namespace"], "kube-federation-system");
    }
    let vwc = docs
        .iter()
        .find(|d| d["kind"] == "ValidatingWebhookConfiguration")
        .unwrap();
    assert_eq!(vwc["webhooks"][0]["clientConfig"]["caBundle"], ca);
    // KubeFed's own webhooks, on KubeFed's names and paths, in their own configurations
    let kubefed = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == "fed-cellfed-webhook-kubefed")
            .unwrap_or_else(|| panic!("no {kind} fed-cellfed-webhook-kubefed"))
    };
    let paths = |config: &serde_json::Value| -> Vec<(String, String)> {
        config["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                assert_eq!(w["clientConfig"]["caBundle"], ca);
                assert_eq!(w["failurePolicy"], "Fail");
                (
                    w["name"].as_str().unwrap().to_string(),
                    w["clientConfig"]["service"]["path"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect()
    };
    let pair = |n: &str, p: &str| (n.to_string(), p.to_string());
    assert_eq!(
        paths(kubefed("ValidatingWebhookConfiguration")),
        [
            pair(
                "federatedtypeconfigs.core.kubefed.io",
                "/validate-federatedtypeconfigs"
            ),
            pair(
                "kubefedclusters.core.kubefed.io",
                "/validate-kubefedcluster"
            ),
            pair("kubefedconfigs.core.kubefed.io", "/validate-kubefedconfig"),
        ]
    );
    assert_eq!(
        paths(kubefed("MutatingWebhookConfiguration")),
        [pair(
            "kubefedconfigs.core.kubefed.io",
            "/default-kubefedconfig"
        )]
    );
    let ftcs = docs
        .iter()
        .filter(|d| d["kind"] == "FederatedTypeConfig")
        .count();
    assert_eq!(ftcs, cellfed_api::targets::default_targets().len());
    let config = docs.iter().find(|d| d["kind"] == "KubeFedConfig").unwrap();
    assert_eq!(
        config["spec"]["syncController"]["adoptResources"],
        "Disabled"
    );
}

/// The chart rendered with `extra` flags, as JSON documents.
fn render(extra: &[&str]) -> Vec<serde_json::Value> {
    let rendered = ok(Command::new(helm())
        .args(["template", "fed", "-n", "kube-federation-system"])
        .args(extra)
        .arg(chart_dir()));
    rendered
        .split("\n---")
        .filter_map(|d| serde_yaml::from_str::<serde_json::Value>(d).ok())
        .filter(|d| d.is_object())
        .collect()
}

fn find<'a>(docs: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The rules a ServiceAccount of the release gets, as (binding kind, namespace, rule).
fn rules_of(docs: &[serde_json::Value], account: &str) -> Vec<(String, String, serde_json::Value)> {
    let mut out = Vec::new();
    for b in docs
        .iter()
        .filter(|d| d["kind"] == "RoleBinding" || d["kind"] == "ClusterRoleBinding")
    {
        let bound = b["subjects"].as_array().unwrap().iter().any(|s| {
            s["kind"] == "ServiceAccount"
                && s["name"] == account
                && s["namespace"] == "kube-federation-system"
        });
        if !bound {
            continue;
        }
        let role = find(
            docs,
            b["roleRef"]["kind"].as_str().unwrap(),
            b["roleRef"]["name"].as_str().unwrap(),
        );
        let ns = role["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for r in role["rules"].as_array().unwrap() {
            out.push((
                b["kind"].as_str().unwrap().to_string(),
                ns.clone(),
                r.clone(),
            ));
        }
    }
    out
}

fn grants(rule: &serde_json::Value, group: &str, resource: &str) -> bool {
    let has = |field: &str, v: &str| {
        rule[field]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == v || x == "*"))
    };
    has("apiGroups", group) && has("resources", resource)
}

/// Issue 9: controller and webhook run under separate ServiceAccounts; Secrets are readable by
/// the controller in the federation namespace only and by the webhook not at all; controller
/// metrics stay on localhost unless a value exposes them; the webhook's client CA is a value.
#[test]
fn chart_scopes_accounts_secrets_and_metrics() {
    let docs = render(&[]);
    let controller = find(&docs, "Deployment", "fed-cellfed-controller");
    let webhook = find(&docs, "Deployment", "fed-cellfed-webhook");
    let sa = |d: &serde_json::Value| {
        d["spec"]["template"]["spec"]["serviceAccountName"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (csa, wsa) = (sa(controller), sa(webhook));
    assert_ne!(csa, wsa, "controller and webhook share a ServiceAccount");
    for name in [&csa, &wsa] {
        find(&docs, "ServiceAccount", name);
    }

    let controller_rules = rules_of(&docs, &csa);
    let secrets: Vec<_> = controller_rules
        .iter()
        .filter(|(_, _, r)| grants(r, "", "secrets"))
        .collect();
    assert!(
        !secrets.is_empty(),
        "the controller cannot read member credentials"
    );
    for (kind, ns, rule) in &secrets {
        assert_eq!(
            (kind.as_str(), ns.as_str()),
            ("RoleBinding", "kube-federation-system"),
            "Secrets granted beyond the federation namespace: {rule}"
        );
        let verbs: Vec<&str> = rule["verbs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(verbs, ["get", "list", "watch"], "{rule}");
    }
    let webhook_rules = rules_of(&docs, &wsa);
    assert!(
        webhook_rules
            .iter()
            .any(|(_, _, r)| grants(r, "cellfed.io", "cells")),
        "{webhook_rules:?}"
    );
    for (_, _, rule) in &webhook_rules {
        assert!(
            !grants(rule, "", "secrets"),
            "the webhook may read Secrets: {rule}"
        );
        for verb in rule["verbs"].as_array().unwrap() {
            assert!(
                ["get", "list", "watch"].contains(&verb.as_str().unwrap()),
                "the webhook may {verb}: {rule}"
            );
        }
    }

    // metrics: loopback and no Service by default
    let args =
        |d: &serde_json::Value| d["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(
        args(controller).contains("--metrics-addr=127.0.0.1:"),
        "{}",
        args(controller)
    );
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "Service"
                && d["metadata"]["name"] == "fed-cellfed-controller-metrics"),
        "unauthenticated metrics exposed through a Service"
    );
    // the webhook's readiness is its /readyz; no client CA unless given
    assert_eq!(
        webhook["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/readyz"
    );
    assert!(
        !args(webhook).contains("--client-ca-file"),
        "{}",
        args(webhook)
    );

    let ca = cellfed_pki::generate_client("cellfed-apiserver", &[])
        .unwrap()
        .ca_pem;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("client-ca.crt");
    std::fs::write(&ca_file, &ca).unwrap();
    let docs = render(&[
        "--set",
        "controller.metrics.bindAddress=0.0.0.0",
        "--set-file",
        &format!("webhook.clientCA={}", ca_file.display()),
    ]);
    let controller = find(&docs, "Deployment", "fed-cellfed-controller");
    assert!(
        args(controller).contains("--metrics-addr=0.0.0.0:"),
        "{}",
        args(controller)
    );
    find(&docs, "Service", "fed-cellfed-controller-metrics");
    let webhook = find(&docs, "Deployment", "fed-cellfed-webhook");
    assert!(
        args(webhook).contains("--client-ca-file=/client-ca/ca.crt"),
        "{}",
        args(webhook)
    );
    let cm = find(&docs, "ConfigMap", "fed-cellfed-webhook-client-ca");
    assert_eq!(cm["data"]["ca.crt"].as_str().unwrap().trim(), ca.trim());
    let mounts = webhook["spec"]["template"]["spec"]["containers"][0]["volumeMounts"].to_string();
    assert!(mounts.contains("/client-ca"), "{mounts}");
}

struct Apiserver {
    child: Child,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Apiserver {
    /// helm against this server, with its own cache/config/data homes.
    fn helm(&self) -> Command {
        let mut cmd = Command::new(helm());
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", self._dir.path().join("helm-cache"))
            .env("HELM_CONFIG_HOME", self._dir.path().join("helm-config"))
            .env("HELM_DATA_HOME", self._dir.path().join("helm-data"));
        cmd
    }

    /// kubectl against this server.
    fn kubectl(&self) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd
    }
}

impl Drop for Apiserver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_apiserver() -> Apiserver {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let child = Command::new(env!("CARGO_BIN_EXE_cellfed"))
        .arg("apiserver")
        .arg(format!(
            "--storage=sqlite://{}/fed.db",
            dir.path().display()
        ))
        .arg("--listen=127.0.0.1:0")
        .arg(format!("--data-dir={}", data.display()))
        .spawn()
        .unwrap();
    let kubeconfig = data.join("kubeconfig");
    let deadline = Instant::now() + Duration::from_secs(60);
    let server = Apiserver {
        child,
        kubeconfig,
        _dir: dir,
    };
    loop {
        if server.kubeconfig.exists()
            && run(Command::new("kubectl")
                .env("KUBECONFIG", &server.kubeconfig)
                .args(["get", "--raw", "/readyz"]))
            .status
            .success()
        {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "cellfed apiserver did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn helm_install_upgrade_uninstall_against_cellfed_apiserver() {
    let server = start_apiserver();
    let helm_cmd = || server.helm();
    let helm = |args: &[&str]| ok(helm_cmd().args(args).arg(chart_dir()));
    let kubectl = |args: &[&str]| ok(server.kubectl().args(args));
    // no webhook pod runs against this apiserver, so KubeFed's admission webhooks (failurePolicy
    // Fail) would refuse every write of the chart's FederatedTypeConfigs and KubeFedConfig
    let no_hooks = "webhook.kubefedAdmission=false";
    helm(&[
        "install",
        "fed",
        "-n",
        "kube-federation-system",
        "--create-namespace",
        "--wait=false",
        "--set",
        no_hooks,
    ]);
    let ftcs = kubectl(&[
        "get",
        "federatedtypeconfigs",
        "-n",
        "kube-federation-system",
        "-o",
        "name",
    ]);
    assert_eq!(
        ftcs.lines().count(),
        cellfed_api::targets::default_targets().len(),
        "{ftcs}"
    );
    let deploys = kubectl(&[
        "get",
        "deployments",
        "-n",
        "kube-federation-system",
        "-o",
        "name",
    ]);
    assert!(
        deploys.contains("fed-cellfed-controller") && deploys.contains("fed-cellfed-webhook"),
        "{deploys}"
    );
    let crd = kubectl(&[
        "get",
        "crd",
        "federateddeployments.types.kubefed.io",
        "-o",
        "jsonpath={.spec.conversion.webhook.clientConfig.service.name}",
    ]);
    assert_eq!(crd, "fed-cellfed-webhook");

    // upgrade changes a value; the Deployment follows.
    helm(&[
        "upgrade",
        "fed",
        "-n",
        "kube-federation-system",
        "--set",
        "controller.workerConcurrency=3",
        "--set",
        "federation.defaultTypes=false",
        "--set",
        no_hooks,
    ]);
    let args = kubectl(&[
        "get",
        "deployment",
        "fed-cellfed-controller",
        "-n",
        "kube-federation-system",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].args}",
    ]);
    assert!(args.contains("--worker-concurrency=3"), "{args}");
    let ftcs = kubectl(&[
        "get",
        "federatedtypeconfigs",
        "-n",
        "kube-federation-system",
        "-o",
        "name",
    ]);
    assert_eq!(ftcs.trim(), "", "defaultTypes=false removes the FTCs");

    // rollback to revision 1 brings the defaults back.
    ok(helm_cmd().args(["rollback", "fed", "1", "-n", "kube-federation-system"]));
    let args = kubectl(&[
        "get",
        "deployment",
        "fed-cellfed-controller",
        "-n",
        "kube-federation-system",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].args}",
    ]);
    assert!(args.contains("--worker-concurrency=8"), "{args}");
    let ftcs = kubectl(&[
        "get",
        "federatedtypeconfigs",
        "-n",
        "kube-federation-system",
        "-o",
        "name",
    ]);
    assert_eq!(
        ftcs.lines().count(),
        cellfed_api::targets::default_targets().len(),
        "{ftcs}"
    );

    // uninstall removes the workloads but keeps the CRDs (users' federated resources survive).
    ok(helm_cmd().args(["uninstall", "fed", "-n", "kube-federation-system", "--wait"]));
    let deploys = kubectl(&[
        "get",
        "deployments",
        "-n",
        "kube-federation-system",
        "-o",
        "name",
    ]);
    assert_eq!(deploys.trim(), "", "{deploys}");
    kubectl(&["get", "crd", "federateddeployments.types.kubefed.io"]);
    kubectl(&["get", "crd", "kubefedclusters.core.kubefed.io"]);
}

/// The small chart of the test tree (a CRD, a namespace, a deployment, a service, a configmap and
/// a custom resource): install, upgrade, rollback and uninstall, checking the objects each time.
#[test]
fn helm_demo_chart_lifecycle_against_cellfed_apiserver() {
    let server = start_apiserver();
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo-chart");
    let helm = |args: &[&str]| ok(server.helm().args(args));
    let kubectl = |args: &[&str]| ok(server.kubectl().args(args));
    let chart_path = chart.to_str().unwrap();
    helm(&["install", "demo", chart_path, "-n", "default"]);
    assert_eq!(
        kubectl(&[
            "get",
            "configmap",
            "demo-config",
            "-n",
            "demo-app",
            "-o",
            "jsonpath={.data.message}"
        ]),
        "hello"
    );
    assert_eq!(
        kubectl(&[
            "get",
            "deployment",
            "demo-web",
            "-n",
            "demo-app",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "1"
    );
    kubectl(&["get", "service", "demo-web", "-n", "demo-app"]);
    assert_eq!(
        kubectl(&[
            "get",
            "widget",
            "demo-widget",
            "-n",
            "demo-app",
            "-o",
            "jsonpath={.spec.size}"
        ]),
        "1"
    );

    helm(&[
        "upgrade",
        "demo",
        chart_path,
        "-n",
        "default",
        "--set",
        "replicas=3",
        "--set",
        "message=upgraded",
    ]);
    assert_eq!(
        kubectl(&[
            "get",
            "deployment",
            "demo-web",
            "-n",
            "demo-app",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "3"
    );
    assert_eq!(
        kubectl(&[
            "get",
            "configmap",
            "demo-config",
            "-n",
            "demo-app",
            "-o",
            "jsonpath={.data.message}"
        ]),
        "upgraded"
    );
    assert_eq!(
        kubectl(&[
            "get",
            "widget",
            "demo-widget",
            "-n",
            "demo-app",
            "-o",
            "jsonpath={.spec.size}"
        ]),
        "3"
    );

    helm(&["rollback", "demo", "1", "-n", "default"]);
    assert_eq!(
        kubectl(&[
            "get",
            "deployment",
            "demo-web",
            "-n",
            "demo-app",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "1"
    );
    assert_eq!(
        kubectl(&[
            "get",
            "configmap",
            "demo-config",
            "-n",
            "demo-app",
            "-o",
            "jsonpath={.data.message}"
        ]),
        "hello"
    );
    let history = helm(&["history", "demo", "-n", "default"]);
    assert_eq!(
        history.lines().count(),
        4,
        "header + 3 revisions:\n{history}"
    );

    helm(&["uninstall", "demo", "-n", "default", "--wait"]);
    assert_eq!(
        kubectl(&[
            "get",
            "deployments,services,configmaps",
            "-n",
            "demo-app",
            "-o",
            "name",
            "--ignore-not-found"
        ])
        .trim(),
        ""
    );
    kubectl(&["get", "crd", "widgets.demo.example.com"]); // CRDs of crds/ stay, as with kube-apiserver
}

fn args_of(deployment: &serde_json::Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn default_layout_renders_no_apiserver() {
    let docs = render(&[]);
    assert!(
        !docs.iter().any(|d| d["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.contains("apiserver"))),
        "the classic layout renders apiserver objects"
    );
    assert!(!docs.iter().any(|d| d["kind"] == "PodDisruptionBudget"));
    assert!(
        !docs.iter().any(|d| d["kind"] == "Job"),
        "the classic layout renders a bootstrap Job"
    );
    for name in ["fed-cellfed-controller", "fed-cellfed-webhook"] {
        let d = find(&docs, "Deployment", name);
        assert!(
            !args_of(d).iter().any(|a| a.starts_with("--kubeconfig")),
            "{name} does not use the in-cluster host apiserver"
        );
    }
}

#[test]
fn ha_layout_renders_the_seed_apiserver_on_external_storage() {
    let docs = render(&[
        "--set",
        "apiserver.enabled=true",
        "--set",
        "apiserver.storage.existingSecret=cellfed-db",
    ]);
    let dep = find(&docs, "Deployment", "fed-cellfed-apiserver");
    assert_eq!(dep["spec"]["replicas"], 3);
    let pod = &dep["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(args_of(dep)[0], "apiserver");
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/livez")] {
        assert_eq!(c[probe]["httpGet"]["path"], path);
        assert_eq!(c[probe]["httpGet"]["scheme"], "HTTPS");
    }
    let env = c["env"].as_array().unwrap();
    let storage = env
        .iter()
        .find(|e| e["name"] == "CELLFED_STORAGE")
        .expect("storage env var");
    assert_eq!(storage["valueFrom"]["secretKeyRef"]["name"], "cellfed-db");
    assert_eq!(storage["valueFrom"]["secretKeyRef"]["key"], "url");
    assert!(storage.get("value").is_none(), "storage URL inlined");
    assert!(!args_of(dep).iter().any(|a| a.starts_with("--storage")));
    let anti =
        &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(
        anti["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert_eq!(
        anti["podAffinityTerm"]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "apiserver"
    );

    let svc = find(&docs, "Service", "fed-cellfed-apiserver");
    assert_eq!(
        svc["spec"]["selector"]["app.kubernetes.io/component"],
        "apiserver"
    );
    let pdb = find(&docs, "PodDisruptionBudget", "fed-cellfed-apiserver");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);

    // the controller and the webhook talk to the Service through the kubeconfig in the Secret
    let pki = find(&docs, "Secret", "fed-cellfed-apiserver-pki");
    let decode = |k: &str| {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::STANDARD
            .decode(pki["data"][k].as_str().unwrap())
            .unwrap();
        String::from_utf8(b).unwrap()
    };
    let kubeconfig: serde_json::Value = serde_yaml::from_str(&decode("kubeconfig")).unwrap();
    assert_eq!(
        kubeconfig["clusters"][0]["cluster"]["server"],
        "https://fed-cellfed-apiserver.kube-federation-system.svc:443"
    );
    let token = kubeconfig["users"][0]["user"]["token"].as_str().unwrap();
    assert!(decode("tokens").starts_with(&format!("{token},")));
    for name in ["fed-cellfed-controller", "fed-cellfed-webhook"] {
        let d = find(&docs, "Deployment", name);
        assert!(
            args_of(d).contains(&"--kubeconfig=/apiserver/kubeconfig".to_string()),
            "{name}"
        );
        let volumes = d["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
        assert!(
            volumes
                .iter()
                .any(|v| v["secret"]["secretName"] == "fed-cellfed-apiserver-pki"),
            "{name} does not mount the apiserver kubeconfig"
        );
    }
}

#[test]
fn ha_layout_needs_a_storage_secret() {
    let out = run(Command::new(helm())
        .args(["template", "fed", "--set", "apiserver.enabled=true"])
        .arg(chart_dir()));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("apiserver.storage.existingSecret"));
}

fn ha_values() -> [&'static str; 4] {
    [
        "--set",
        "apiserver.enabled=true",
        "--set",
        "apiserver.storage.existingSecret=cellfed-db",
    ]
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// Issue 13: in the seed layout the federation API goes into the in-chart apiserver through a
/// hook Job, and nothing of it into the host: no CRDs, FederatedTypeConfigs, KubeFedConfig,
/// webhook configurations or RBAC rendered for the host.
#[test]
fn ha_layout_bootstraps_its_apiserver_with_a_hook_job_not_the_host() {
    let docs = render(&ha_values());
    let job = find(&docs, "Job", "fed-cellfed-apiserver-bootstrap");
    let annotations = &job["metadata"]["annotations"];
    assert_eq!(annotations["helm.sh/hook"], "post-install,post-upgrade");
    assert_eq!(
        annotations["helm.sh/hook-delete-policy"],
        "before-hook-creation,hook-succeeded"
    );
    assert_eq!(job["spec"]["backoffLimit"], 6);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["automountServiceAccountToken"], false);
    let account = pod["serviceAccountName"].as_str().unwrap();
    assert_eq!(account, "fed-cellfed-apiserver-bootstrap");
    find(&docs, "ServiceAccount", account);
    assert!(
        rules_of(&docs, account).is_empty(),
        "the bootstrap Job's account has host rights"
    );
    let args = strings(&pod["containers"][0]["args"]);
    assert_eq!(
        args,
        [
            "bootstrap",
            "--kubeconfig=/apiserver/kubeconfig",
            "--kubefed-namespace=kube-federation-system",
            "--webhook-service=fed-cellfed-webhook",
            "--webhook-ca-file=/webhook-certs/ca.crt",
            "--kubefed-admission=true",
            "--default-types=true",
            "--timeout=5m",
        ]
    );
    // it mounts the apiserver's kubeconfig and the webhook's CA, not the webhook's key
    let volumes = pod["volumes"].as_array().unwrap();
    let secret_items = |secret: &str| -> Vec<String> {
        let v = volumes
            .iter()
            .find(|v| v["secret"]["secretName"] == secret)
            .unwrap_or_else(|| panic!("no volume of Secret {secret}"));
        v["secret"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["key"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(secret_items("fed-cellfed-apiserver-pki"), ["kubeconfig"]);
    assert_eq!(secret_items("fed-cellfed-webhook-certs"), ["ca.crt"]);

    // none of the federation API for the host
    for kind in [
        "CustomResourceDefinition",
        "FederatedTypeConfig",
        "KubeFedConfig",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ] {
        let found: Vec<_> = docs
            .iter()
            .filter(|d| d["kind"] == kind)
            .map(|d| d["metadata"]["name"].clone())
            .collect();
        assert!(
            found.is_empty(),
            "the HA layout renders {kind} {found:?} for the host"
        );
    }
    // the webhook still gets its serving certificate
    find(&docs, "Secret", "fed-cellfed-webhook-certs");

    // values reach the Job's flags
    let docs = render(&[
        "--set",
        "apiserver.enabled=true",
        "--set",
        "apiserver.storage.existingSecret=cellfed-db",
        "--set",
        "webhook.kubefedAdmission=false",
        "--set",
        "federation.defaultTypes=false",
        "--set",
        "apiserver.bootstrap.backoffLimit=2",
    ]);
    let job = find(&docs, "Job", "fed-cellfed-apiserver-bootstrap");
    let args = strings(&job["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(
        args.contains(&"--kubefed-admission=false".to_string()),
        "{args:?}"
    );
    assert!(
        args.contains(&"--default-types=false".to_string()),
        "{args:?}"
    );
    assert_eq!(job["spec"]["backoffLimit"], 2);
}

/// The Job's command line as rendered, its mounted paths pointing at local copies: the
/// in-chart apiserver's kubeconfig replaced by `kubeconfig` (a test server's), every other
/// mounted Secret key written from the rendered Secret.
fn job_command(docs: &[serde_json::Value], kubeconfig: &Path, dir: &Path) -> Vec<String> {
    use base64::Engine as _;
    let job = find(docs, "Job", "fed-cellfed-apiserver-bootstrap");
    let pod = &job["spec"]["template"]["spec"];
    let mut args = strings(&pod["containers"][0]["args"]);
    for mount in pod["containers"][0]["volumeMounts"].as_array().unwrap() {
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        let local = dir.join(mount["name"].as_str().unwrap());
        std::fs::create_dir_all(&local).unwrap();
        let secret = find(
            docs,
            "Secret",
            volume["secret"]["secretName"].as_str().unwrap(),
        );
        for item in volume["secret"]["items"].as_array().unwrap() {
            let (key, path) = (
                item["key"].as_str().unwrap(),
                item["path"].as_str().unwrap(),
            );
            if key == "kubeconfig" {
                std::fs::copy(kubeconfig, local.join(path)).unwrap();
            } else {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(secret["data"][key].as_str().unwrap())
                    .unwrap();
                std::fs::write(local.join(path), data).unwrap();
            }
        }
        let mount_path = mount["mountPath"].as_str().unwrap();
        for a in &mut args {
            *a = a.replace(
                &format!("={mount_path}/"),
                &format!("={}/", local.display()),
            );
        }
    }
    args
}

fn cellfed(args: &[String]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cellfed"));
    cmd.args(args).env_remove("KUBECONFIG");
    run(&mut cmd)
}

/// `kind name` → resourceVersion of every object the bootstrap installs.
fn installed(server: &Apiserver) -> std::collections::BTreeMap<String, String> {
    let mut items = Vec::new();
    for args in [
        &[
            "get",
            "crd,validatingwebhookconfigurations,mutatingwebhookconfigurations",
        ][..],
        &[
            "get",
            "federatedtypeconfigs,kubefedconfigs",
            "-n",
            "kube-federation-system",
        ],
        &["get", "namespaces"],
    ] {
        let out = ok(server.kubectl().args(args).args(["-o", "json"]));
        let list: serde_json::Value = serde_json::from_str(&out).unwrap();
        items.extend(list["items"].as_array().unwrap().iter().cloned());
    }
    items
        .iter()
        .map(|i| {
            (
                format!(
                    "{} {}",
                    i["kind"].as_str().unwrap(),
                    i["metadata"]["name"].as_str().unwrap()
                ),
                i["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

/// Issue 13: the hook Job's very command line, run against a real `cellfed apiserver`, installs
/// the federation API into it (CRDs Established and converting through the chart's webhook
/// Service, FederatedTypeConfigs, KubeFedConfig, the webhook configurations trusting the chart's
/// CA); a second run writes nothing.
#[test]
fn bootstrap_job_command_installs_the_federation_api_into_cellfed_apiserver() {
    use base64::Engine as _;
    let server = start_apiserver();
    let docs = render(&ha_values());
    let dir = tempfile::tempdir().unwrap();
    let args = job_command(&docs, &server.kubeconfig, dir.path());
    let first = cellfed(&args);
    assert!(
        first.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&first.stderr)
    );

    let ca = find(&docs, "Secret", "fed-cellfed-webhook-certs")["data"]["ca.crt"]
        .as_str()
        .unwrap()
        .to_string();
    let crds: serde_json::Value =
        serde_json::from_str(&ok(server.kubectl().args(["get", "crd", "-o", "json"]))).unwrap();
    let crds = crds["items"].as_array().unwrap();
    let all = cellfed_api::all_crds().unwrap();
    assert_eq!(crds.len(), all.len());
    for crd in crds {
        let name = crd["metadata"]["name"].as_str().unwrap();
        let established = crd["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        assert!(established, "CRD {name} is not Established");
        if crd["spec"]["group"] == "types.kubefed.io" {
            let cc = &crd["spec"]["conversion"]["webhook"]["clientConfig"];
            assert_eq!(cc["service"]["name"], "fed-cellfed-webhook", "{name}");
            assert_eq!(cc["service"]["namespace"], "kube-federation-system");
            assert_eq!(cc["caBundle"], ca, "{name} trusts another CA");
        }
    }
    let ftcs = ok(server.kubectl().args([
        "get",
        "federatedtypeconfigs",
        "-n",
        "kube-federation-system",
        "-o",
        "name",
    ]));
    assert_eq!(
        ftcs.lines().count(),
        cellfed_api::targets::default_targets().len(),
        "{ftcs}"
    );
    let adopt = ok(server.kubectl().args([
        "get",
        "kubefedconfig",
        "kubefed",
        "-n",
        "kube-federation-system",
        "-o",
        "jsonpath={.spec.syncController.adoptResources}",
    ]));
    assert_eq!(adopt, "Disabled");
    for (kind, name, paths) in [
        (
            "validatingwebhookconfiguration",
            "fed-cellfed-webhook",
            vec!["/validate"],
        ),
        (
            "validatingwebhookconfiguration",
            "fed-cellfed-webhook-kubefed",
            vec![
                "/validate-federatedtypeconfigs",
                "/validate-kubefedcluster",
                "/validate-kubefedconfig",
            ],
        ),
        (
            "mutatingwebhookconfiguration",
            "fed-cellfed-webhook-kubefed",
            vec!["/default-kubefedconfig"],
        ),
    ] {
        let config: serde_json::Value = serde_json::from_str(&ok(server
            .kubectl()
            .args(["get", kind, name, "-o", "json"])))
        .unwrap();
        let hooks = config["webhooks"].as_array().unwrap();
        let got: Vec<&str> = hooks
            .iter()
            .map(|h| h["clientConfig"]["service"]["path"].as_str().unwrap())
            .collect();
        assert_eq!(got, paths, "{kind} {name}");
        for h in hooks {
            assert_eq!(h["clientConfig"]["caBundle"], ca, "{kind} {name}");
            assert_eq!(h["clientConfig"]["service"]["name"], "fed-cellfed-webhook");
            assert_eq!(h["failurePolicy"], "Fail");
        }
    }
    // the CA in the configurations is the webhook certificate's, as PEM
    let pem = base64::engine::general_purpose::STANDARD
        .decode(&ca)
        .unwrap();
    assert!(
        String::from_utf8(pem)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );

    // a second run (a helm upgrade with the same certificate) changes nothing
    let before = installed(&server);
    assert!(before.len() > all.len(), "{before:?}");
    let second = cellfed(&args);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("0 object(s) written"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(installed(&server), before, "the second run wrote");
}

/// Hostile or broken inputs fail the Job with a message and store nothing: a CA file that is
/// not PEM, an apiserver that never gets ready within the timeout.
#[test]
fn bootstrap_fails_clearly_and_writes_nothing_on_bad_input() {
    let server = start_apiserver();
    let dir = tempfile::tempdir().unwrap();
    let bad_ca = dir.path().join("ca.crt");
    std::fs::write(&bad_ca, "not a certificate\n").unwrap();
    let out = cellfed(&[
        "bootstrap".into(),
        format!("--kubeconfig={}", server.kubeconfig.display()),
        "--webhook-service=fed-cellfed-webhook".into(),
        format!("--webhook-ca-file={}", bad_ca.display()),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds no PEM certificate"), "{err}");
    let crds = ok(server.kubectl().args(["get", "crd", "-o", "name"]));
    assert_eq!(crds.trim(), "", "stored after a refused CA: {crds}");

    // an apiserver that does not answer: the kubeconfig's server on a closed port
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(&server.kubeconfig).unwrap();
    let mut kc: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    kc["clusters"][0]["cluster"]["server"] = format!("https://127.0.0.1:{port}").into();
    let dead = dir.path().join("dead.kubeconfig");
    std::fs::write(&dead, serde_yaml::to_string(&kc).unwrap()).unwrap();
    let out = cellfed(&[
        "bootstrap".into(),
        format!("--kubeconfig={}", dead.display()),
        "--timeout=2s".into(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/readyz not ok within 2s"), "{err}");
}
