//! kube-rs (the client the controller uses) against a real server: list, watch via the runtime
//! watcher, and patch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};

async fn client(s: &common::Running) -> kube::Client {
    let kc = Kubeconfig::read_from(&s.kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

fn cm(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"team": "a"}},
        "data": {"v": value}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_lists_and_watches_configmaps() {
    let s = common::start("kube-rs").await;
    let client = client(&s).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &cm("one", "1"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("two", "2"))
        .await
        .unwrap();
    let list = api
        .list(&ListParams::default().labels("team=a"))
        .await
        .unwrap();
    let names: Vec<_> = list
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(names, vec!["one", "two"]);
    assert!(list.metadata.resource_version.is_some());

    let err = api
        .create(&PostParams::default(), &cm("one", "1"))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "AlreadyExists");
        }
        other => panic!("unexpected {other:?}"),
    }

    let mut stream =
        watcher::watcher(api.clone(), watcher::Config::default().labels("team=a")).boxed();
    let mut seen_init = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match ev {
            Event::Init => {}
            Event::InitApply(c) => seen_init.push(c.metadata.name.unwrap()),
            Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen_init, vec!["one", "two"]);

    let mut two = api.get("two").await.unwrap();
    two.data.as_mut().unwrap().insert("v".into(), "22".into());
    api.replace("two", &PostParams::default(), &two)
        .await
        .unwrap();
    api.delete("one", &Default::default()).await.unwrap();
    let mut applied = None;
    let mut deleted = None;
    while applied.is_none() || deleted.is_none() {
        let ev = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match ev {
            Event::Apply(c) => applied = Some(c),
            Event::Delete(c) => deleted = Some(c),
            _ => {}
        }
    }
    assert_eq!(applied.unwrap().data.unwrap()["v"], "22");
    assert_eq!(deleted.unwrap().metadata.name.unwrap(), "one");
}
