//! Issue 9: member credentials are data, never programs or files. A member Secret whose kubeconfig
//! has an `exec` plugin or a `tokenFile` is refused without running or reading anything, and the
//! KubeFedCluster says why; a data-only kubeconfig still works. Against in-process apiservers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use serde_json::{Value, json};

/// A Secret `name` holding `kubeconfig` and a KubeFedCluster `name` using it.
async fn join_with_kubeconfig(fed: &Federation, name: &str, endpoint: &str, kubeconfig: &str) {
    let secrets: Api<Secret> = Api::namespaced(fed.host.client.clone(), FED_NS);
    create(
        &secrets,
        json!({"metadata": {"name": format!("{name}-secret")},
               "stringData": {"kubeconfig": kubeconfig}}),
    )
    .await;
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), FED_NS, &kubefed_clusters());
    create(
        &clusters,
        json!({"apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
               "metadata": {"name": name},
               "spec": {"apiEndpoint": endpoint, "secretRef": {"name": format!("{name}-secret")}}}),
    )
    .await;
}

fn kubeconfig(server: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: m\n  cluster:\n    server: {server}\nusers:\n- name: u\n  user:\n{user}\ncontexts:\n- name: c\n  context: {{cluster: m, user: u}}\ncurrent-context: c\n"
    )
}

/// The `Ready` condition of KubeFedCluster `name` once it has reason `reason`.
async fn ready_condition(fed: &Federation, name: &str, reason: &str) -> Value {
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), FED_NS, &kubefed_clusters());
    eventually(60, &format!("{name}: Ready condition {reason}"), || async {
        let c = clusters.get_opt(name).await.ok()??;
        c.data["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready" && c["reason"] == reason)
            .cloned()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_and_file_references_in_member_kubeconfigs_are_refused() {
    let fed = Federation::start(0).await;
    let member = Apiserver::start("creds-member").await;
    // where the refused clusters point: it must never hear from the controller
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let untouched_url = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let _untouched = tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    // the directory stays while the test runs, so `touch` would succeed if it ever ran
    let marker_dir = TempDir::new("creds-marker");
    let marker = marker_dir.0.join("MARKER");
    let exec = kubeconfig(
        &untouched_url,
        &format!(
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [-c, \"touch {}\"]",
            marker.display()
        ),
    );
    join_with_kubeconfig(&fed, "exec", &untouched_url, &exec).await;
    // a token file of this machine (as the controller's own service-account token would be)
    let token_file = TempDir::new("creds-token");
    let token_path = token_file.0.join("token");
    std::fs::write(&token_path, "the-controllers-own-token").unwrap();
    let file = kubeconfig(
        &untouched_url,
        &format!("    tokenFile: {}", token_path.display()),
    );
    join_with_kubeconfig(&fed, "tokenfile", &untouched_url, &file).await;
    // a data-only kubeconfig is fine
    let data = kubeconfig(&member.url, "    token: anonymous-is-fine");
    join_with_kubeconfig(&fed, "data", &member.url, &data).await;

    let (controller, _m) = fed.controller();
    let refused = ready_condition(&fed, "exec", "ClusterCredentialsRefused").await;
    assert_eq!(refused["status"], "False");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("users[0].user.exec would run a program")
            && message.contains("exec-secret"),
        "{message}"
    );
    let refused = ready_condition(&fed, "tokenfile", "ClusterCredentialsRefused").await;
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("users[0].user.tokenFile would read a file"),
        "{message}"
    );
    // the data-only cluster is probed and ready, so the controller has been at work meanwhile
    ready_condition(&fed, "data", "ClusterReady").await;
    assert!(
        !marker.exists(),
        "the exec plugin of a member Secret ran on the federation plane"
    );
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(fed.host.client.clone(), FED_NS, &kubefed_clusters());
    for name in ["exec", "tokenfile"] {
        let c = clusters.get(name).await.unwrap();
        let conditions = c.data["status"]["conditions"].as_array().unwrap();
        assert!(
            !conditions.iter().any(|c| c["type"] == "Offline"),
            "a refused cluster was never tried, so it is not Offline: {conditions:?}"
        );
    }
    controller.stop().await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the controller connected to a refused cluster's endpoint"
    );
    assert!(!marker.exists());
}
