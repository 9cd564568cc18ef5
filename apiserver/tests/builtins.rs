//! The built-in resources of Kubernetes 1.33 beyond the workload basics, through kubectl and
//! helm against the real server: `kubectl api-resources` lists them with kube's short names,
//! `kubectl explain` reads their schemas, `apply` stores them and `get` prints kube's columns,
//! an HPA written as autoscaling/v2 reads back as autoscaling/v1, and an application chart
//! (tests/charts/app) installs, upgrades and uninstalls with helm.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

const APP: &str = r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: default}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: fast
  resources: {requests: {storage: 1Gi}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cleanup, namespace: default}
spec:
  schedule: "0 3 * * *"
  timeZone: Europe/Paris
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: cleanup, image: "busybox:1.36"}]
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
globalDefault: false
"#;

/// The header line of a `kubectl get` table, split on runs of spaces.
fn header(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The line of `table` whose first column is `name`, split on whitespace.
fn row(table: &str, name: &str) -> Vec<String> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resources_lists_kube_kinds_with_short_names() {
    let s = common::start("builtins-api-resources").await;
    let out = s.kubectl_ok(&["api-resources", "--no-headers"], None).await;
    // NAME SHORTNAMES APIVERSION NAMESPACED KIND, as kubectl prints it for a 1.33 cluster.
    for (name, short, api_version, namespaced, kind) in [
        (
            "horizontalpodautoscalers",
            "hpa",
            "autoscaling/v2",
            "true",
            "HorizontalPodAutoscaler",
        ),
        ("cronjobs", "cj", "batch/v1", "true", "CronJob"),
        (
            "poddisruptionbudgets",
            "pdb",
            "policy/v1",
            "true",
            "PodDisruptionBudget",
        ),
        (
            "networkpolicies",
            "netpol",
            "networking.k8s.io/v1",
            "true",
            "NetworkPolicy",
        ),
        (
            "persistentvolumeclaims",
            "pvc",
            "v1",
            "true",
            "PersistentVolumeClaim",
        ),
        (
            "priorityclasses",
            "pc",
            "scheduling.k8s.io/v1",
            "false",
            "PriorityClass",
        ),
        (
            "storageclasses",
            "sc",
            "storage.k8s.io/v1",
            "false",
            "StorageClass",
        ),
        ("endpoints", "ep", "v1", "true", "Endpoints"),
        ("limitranges", "limits", "v1", "true", "LimitRange"),
        ("resourcequotas", "quota", "v1", "true", "ResourceQuota"),
    ] {
        assert_eq!(
            row(&out, name),
            [name, short, api_version, namespaced, kind],
            "{out}"
        );
    }
    for (name, api_version, namespaced, kind) in [
        (
            "endpointslices",
            "discovery.k8s.io/v1",
            "true",
            "EndpointSlice",
        ),
        (
            "ingressclasses",
            "networking.k8s.io/v1",
            "false",
            "IngressClass",
        ),
        (
            "controllerrevisions",
            "apps/v1",
            "true",
            "ControllerRevision",
        ),
        ("csidrivers", "storage.k8s.io/v1", "false", "CSIDriver"),
    ] {
        assert_eq!(
            row(&out, name),
            [name, api_version, namespaced, kind],
            "{out}"
        );
    }

    // `kubectl get all` covers the new members of the `all` category.
    let all = s
        .kubectl_ok(&["api-resources", "--categories=all", "-o", "name"], None)
        .await;
    for r in [
        "horizontalpodautoscalers.autoscaling",
        "cronjobs.batch",
        "replicationcontrollers",
        "pods",
    ] {
        assert!(
            all.lines().any(|l| l == r),
            "{r} not in category all:\n{all}"
        );
    }
    assert!(!all.contains("poddisruptionbudgets"), "{all}");

    // Both served versions of the HPA are listed by the group, v2 preferred.
    let group = s
        .kubectl_ok(&["get", "--raw", "/apis/autoscaling"], None)
        .await;
    let group: serde_json::Value = serde_json::from_str(&group).unwrap();
    assert_eq!(group["preferredVersion"]["version"], "v2");
    assert_eq!(group["versions"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_reads_builtin_schemas() {
    let s = common::start("builtins-explain").await;
    let out = s
        .kubectl_ok(&["explain", "hpa.spec.maxReplicas"], None)
        .await;
    assert!(out.contains("GROUP:      autoscaling\n"), "{out}");
    assert!(
        out.contains("KIND:       HorizontalPodAutoscaler\n"),
        "{out}"
    );
    assert!(out.contains("VERSION:    v2\n"), "{out}");
    assert!(out.contains("FIELD: maxReplicas <integer>"), "{out}");
    assert!(out.contains("maxReplicas is the upper limit"), "{out}");
    let out = s
        .kubectl_ok(&["explain", "cronjob.spec.schedule"], None)
        .await;
    assert!(out.contains("KIND:       CronJob\n"), "{out}");
    assert!(out.contains("FIELD: schedule <string>"), "{out}");
    assert!(out.contains("The schedule in Cron format"), "{out}");
    let out = s
        .kubectl_ok(&["explain", "pdb.spec", "--api-version=policy/v1"], None)
        .await;
    assert!(out.contains("minAvailable"), "{out}");
    let out = s
        .kubectl_ok(
            &["explain", "hpa.spec", "--api-version=autoscaling/v1"],
            None,
        )
        .await;
    assert!(out.contains("targetCPUUtilizationPercentage"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_stores_them_and_get_prints_kube_columns() {
    let s = common::start("builtins-apply").await;
    let applied = s.kubectl_ok(&["apply", "-f", "-"], Some(APP)).await;
    for line in [
        "horizontalpodautoscaler.autoscaling/web created",
        "poddisruptionbudget.policy/web created",
        "networkpolicy.networking.k8s.io/web created",
        "persistentvolumeclaim/data created",
        "cronjob.batch/cleanup created",
        "priorityclass.scheduling.k8s.io/high created",
    ] {
        assert!(applied.contains(line), "{applied}");
    }

    let hpa = s.kubectl_ok(&["get", "hpa"], None).await;
    assert_eq!(
        header(&hpa),
        [
            "NAME",
            "REFERENCE",
            "TARGETS",
            "MINPODS",
            "MAXPODS",
            "REPLICAS",
            "AGE"
        ],
        "{hpa}"
    );
    assert_eq!(
        &row(&hpa, "web")[..7],
        [
            "web",
            "Deployment/web",
            "cpu:",
            "<unknown>/70%",
            "2",
            "5",
            "0"
        ],
        "{hpa}"
    );
    let cj = s.kubectl_ok(&["get", "cj"], None).await;
    assert_eq!(
        header(&cj),
        [
            "NAME",
            "SCHEDULE",
            "TIMEZONE",
            "SUSPEND",
            "ACTIVE",
            "LAST SCHEDULE",
            "AGE"
        ],
        "{cj}"
    );
    assert_eq!(
        &row(&cj, "cleanup")[..8],
        ["cleanup", "0", "3", "*", "*", "*", "Europe/Paris", "false"],
        "{cj}"
    );
    let pdb = s.kubectl_ok(&["get", "pdb"], None).await;
    assert_eq!(
        header(&pdb),
        [
            "NAME",
            "MIN AVAILABLE",
            "MAX UNAVAILABLE",
            "ALLOWED DISRUPTIONS",
            "AGE"
        ],
        "{pdb}"
    );
    assert_eq!(&row(&pdb, "web")[..4], ["web", "1", "N/A", "0"], "{pdb}");
    let netpol = s.kubectl_ok(&["get", "netpol"], None).await;
    assert_eq!(header(&netpol), ["NAME", "POD-SELECTOR", "AGE"], "{netpol}");
    assert_eq!(&row(&netpol, "web")[..2], ["web", "app=web"], "{netpol}");
    let pvc = s.kubectl_ok(&["get", "pvc"], None).await;
    assert_eq!(
        header(&pvc),
        [
            "NAME",
            "STATUS",
            "VOLUME",
            "CAPACITY",
            "ACCESS MODES",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "AGE"
        ],
        "{pvc}"
    );
    assert_eq!(
        &row(&pvc, "data")[..4],
        ["data", "Pending", "fast", "<unset>"],
        "{pvc}"
    );
    let pc = s.kubectl_ok(&["get", "pc"], None).await;
    assert_eq!(
        header(&pc),
        ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"],
        "{pc}"
    );
    assert_eq!(&row(&pc, "high")[..3], ["high", "1000", "false"], "{pc}");

    // `kubectl get all` takes in HPAs and CronJobs (category `all`), not PDBs.
    let all = s.kubectl_ok(&["get", "all", "-o", "name"], None).await;
    assert!(
        all.lines()
            .any(|l| l == "horizontalpodautoscaler.autoscaling/web")
            && all.lines().any(|l| l == "cronjob.batch/cleanup")
            && !all.contains("poddisruptionbudget"),
        "{all}"
    );

    // All six in one `get`, by short names.
    let all = s
        .kubectl_ok(&["get", "hpa,cj,pdb,netpol,pvc,pc", "-o", "name"], None)
        .await;
    assert_eq!(
        all.lines().collect::<Vec<_>>(),
        [
            "horizontalpodautoscaler.autoscaling/web",
            "cronjob.batch/cleanup",
            "poddisruptionbudget.policy/web",
            "networkpolicy.networking.k8s.io/web",
            "persistentvolumeclaim/data",
            "priorityclass.scheduling.k8s.io/high",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_created_as_v2_reads_as_v1_and_back() {
    let s = common::start("builtins-hpa-versions").await;
    s.kubectl_ok(&["apply", "-f", "-"], Some(APP)).await;
    let path = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web";
    let v1: serde_json::Value =
        serde_json::from_str(&s.kubectl_ok(&["get", "--raw", path], None).await).unwrap();
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
    assert_eq!(v1["spec"]["maxReplicas"], 5);
    assert!(v1["spec"].get("metrics").is_none(), "{v1}");

    // A v1 update of the CPU target shows in v2 as the metric.
    let mut edited = v1.clone();
    edited["spec"]["targetCPUUtilizationPercentage"] = serde_json::json!(55);
    let file = s.dir.0.join("hpa-v1.json");
    std::fs::write(&file, edited.to_string()).unwrap();
    s.kubectl_ok(&["replace", "-f", file.to_str().unwrap()], None)
        .await;
    let target = s
        .kubectl_ok(
            &[
                "get",
                "hpa.v2.autoscaling",
                "web",
                "-o",
                "jsonpath={.apiVersion} {.spec.metrics[0].resource.target.averageUtilization}",
            ],
            None,
        )
        .await;
    assert_eq!(target, "autoscaling/v2 55");
    // Lists of v1 convert every item.
    let list: serde_json::Value = serde_json::from_str(
        &s.kubectl_ok(
            &[
                "get",
                "--raw",
                "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
            ],
            None,
        )
        .await,
    )
    .unwrap();
    assert_eq!(list["items"][0]["apiVersion"], "autoscaling/v1");
    assert_eq!(
        list["items"][0]["spec"]["targetCPUUtilizationPercentage"],
        55
    );
}

/// helm as scripts/ensure-services.sh installs it (or $HELM, or from PATH).
fn helm_bin() -> PathBuf {
    if let Some(h) = std::env::var_os("HELM") {
        return h.into();
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/helm");
    if local.exists() {
        return local;
    }
    "helm".into()
}

async fn helm(s: &common::Running, args: &[&str]) -> String {
    let home = |d: &str| s.dir.0.join(d);
    let out = tokio::process::Command::new(helm_bin())
        .env("KUBECONFIG", &s.kubeconfig)
        .env("HELM_CACHE_HOME", home("helm-cache"))
        .env("HELM_CONFIG_HOME", home("helm-config"))
        .env("HELM_DATA_HOME", home("helm-data"))
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("helm {args:?}: {e} (run scripts/ensure-services.sh)"));
    assert!(
        out.status.success(),
        "helm {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every object the chart creates, as `kubectl get -o name` prints them.
const CHART_OBJECTS: &str = "sa,role,rolebinding,cm,pvc,deploy,svc,hpa,pdb,netpol,ing,cj";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_upgrades_and_uninstalls_an_application_chart() {
    let s = common::start("builtins-helm").await;
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/charts/app");
    let chart = chart.to_str().unwrap();
    helm(&s, &["install", "shop", chart, "-n", "default"]).await;

    let names = s
        .kubectl_ok(&["get", CHART_OBJECTS, "-o", "name"], None)
        .await;
    let mut names: Vec<&str> = names.lines().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "configmap/shop",
            "cronjob.batch/shop-cleanup",
            "deployment.apps/shop",
            "horizontalpodautoscaler.autoscaling/shop",
            "ingress.networking.k8s.io/shop",
            "networkpolicy.networking.k8s.io/shop",
            "persistentvolumeclaim/shop-data",
            "poddisruptionbudget.policy/shop",
            "role.rbac.authorization.k8s.io/shop",
            "rolebinding.rbac.authorization.k8s.io/shop",
            "service/shop",
            "serviceaccount/shop",
        ]
    );
    let pc = s
        .kubectl_ok(&["get", "pc", "shop-high", "-o", "jsonpath={.value}"], None)
        .await;
    assert_eq!(pc, "1000");
    let get = |args: Vec<&'static str>| {
        let s = &s;
        async move { s.kubectl_ok(&args, None).await }
    };
    assert_eq!(
        get(vec![
            "get",
            "hpa",
            "shop",
            "-o",
            "jsonpath={.spec.maxReplicas}"
        ])
        .await,
        "5"
    );

    helm(
        &s,
        &[
            "upgrade",
            "shop",
            chart,
            "-n",
            "default",
            "--set",
            "maxReplicas=9",
            "--set",
            "schedule=30 4 * * *",
            "--set",
            "minAvailable=2",
        ],
    )
    .await;
    assert_eq!(
        get(vec![
            "get",
            "hpa",
            "shop",
            "-o",
            "jsonpath={.spec.maxReplicas}"
        ])
        .await,
        "9"
    );
    assert_eq!(
        get(vec![
            "get",
            "cj",
            "shop-cleanup",
            "-o",
            "jsonpath={.spec.schedule}"
        ])
        .await,
        "30 4 * * *"
    );
    assert_eq!(
        get(vec![
            "get",
            "pdb",
            "shop",
            "-o",
            "jsonpath={.spec.minAvailable}"
        ])
        .await,
        "2"
    );
    let history = helm(&s, &["history", "shop", "-n", "default", "-o", "json"]).await;
    assert!(history.contains("\"revision\":2"), "{history}");

    helm(&s, &["uninstall", "shop", "-n", "default"]).await;
    let left = get(vec!["get", CHART_OBJECTS, "-o", "name"]).await;
    assert_eq!(left, "", "left after uninstall: {left}");
    let (found, _, err) = s.kubectl(&["get", "pc", "shop-high"], None).await;
    assert!(!found && err.contains("NotFound"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_one_store_under_core_and_events_k8s_io() {
    let s = common::start("builtins-events").await;
    let core = "apiVersion: v1\nkind: Event\nmetadata: {name: pulled, namespace: default}\ninvolvedObject: {kind: Pod, name: web-1, namespace: default}\nreason: Pulled\nmessage: image pulled\ntype: Normal\ncount: 3\n";
    s.kubectl_ok(&["create", "-f", "-"], Some(core)).await;
    let as_new = s
        .kubectl_ok(
            &[
                "get",
                "events.v1.events.k8s.io",
                "pulled",
                "-o",
                "jsonpath={.apiVersion} {.regarding.name} {.note} {.deprecatedCount}",
            ],
            None,
        )
        .await;
    assert_eq!(as_new, "events.k8s.io/v1 web-1 image pulled 3");

    let new = "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata: {name: scaled, namespace: default}\neventTime: '2026-01-10T11:59:00.000000Z'\nregarding: {kind: Deployment, name: web, namespace: default}\nreason: ScalingReplicaSet\nnote: Scaled up to 3\ntype: Normal\naction: Scale\nreportingController: deployment-controller\nreportingInstance: cp-1\n";
    s.kubectl_ok(&["create", "-f", "-"], Some(new)).await;
    let as_core = s
        .kubectl_ok(
            &[
                "get",
                "events",
                "scaled",
                "-o",
                "jsonpath={.apiVersion} {.involvedObject.name} {.message} {.reportingComponent}",
            ],
            None,
        )
        .await;
    assert_eq!(as_core, "v1 web Scaled up to 3 deployment-controller");

    // Both lists hold both events; both print kube's event columns.
    for resource in ["events", "events.events.k8s.io"] {
        let table = s.kubectl_ok(&["get", resource], None).await;
        assert_eq!(
            header(&table),
            ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
            "{table}"
        );
        assert!(
            table.contains("pod/web-1") && table.contains("image pulled"),
            "{table}"
        );
        assert!(
            table.contains("deployment/web") && table.contains("Scaled up to 3"),
            "{table}"
        );
    }
    s.kubectl_ok(&["delete", "events.events.k8s.io", "pulled"], None)
        .await;
    let (found, _, err) = s.kubectl(&["get", "events", "pulled"], None).await;
    assert!(!found && err.contains("NotFound"), "{err}");
}
