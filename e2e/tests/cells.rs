#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 6: cell topology through the conversion webhook, and grey release by placementMask
//! (including a member that is down and masked out). One environment, steps in order.

use cellfed_e2e::{Env, eventually};
use serde_json::{Value, json};

const CELLS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {cellfed.io/tenant: acme}}
---
apiVersion: cellfed.io/v1alpha1
kind: Cell
metadata: {name: rz00a, namespace: shop}
spec: {clusterName: member1, memberNamespace: shop-rz00a}
---
apiVersion: cellfed.io/v1alpha1
kind: Cell
metadata: {name: rz01a, namespace: shop}
spec: {clusterName: member1, memberNamespace: shop-rz01a}
---
apiVersion: cellfed.io/v1alpha1
kind: Cell
metadata: {name: rz02a, namespace: shop}
spec: {clusterName: member2}
"#;

fn image_in(env: &Env, member: &str, ns: &str, name: &str) -> Option<(String, i64)> {
    let d = env.member(member).get(&["deployment", name, "-n", ns])?;
    Some((
        d["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()?
            .to_string(),
        d["metadata"]["generation"].as_i64()?,
    ))
}

fn apply(env: &Env, yaml: &str) {
    env.host.kubectl_stdin(&["apply", "-f", "-"], yaml);
}

fn mask(env: &Env, name: &str, cells: &[&str]) {
    let topologies: Vec<Value> = cells.iter().map(|c| json!({"name": c})).collect();
    let patch = json!({"spec": {"placementMask": {"topologies": topologies}}});
    env.host.kubectl(&[
        "patch",
        "federateddeployments.v1beta2.types.kubefed.io",
        name,
        "-n",
        "shop",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ]);
}

fn set_image(env: &Env, name: &str, image: &str) {
    let patch = json!([{"op": "replace", "path": "/spec/template/spec/template/spec/containers/0/image", "value": image}]);
    env.host.kubectl(&[
        "patch",
        "federateddeployments.v1beta2.types.kubefed.io",
        name,
        "-n",
        "shop",
        "--type=json",
        "-p",
        &patch.to_string(),
    ]);
}

fn deployment(name: &str, cells: &[&str]) -> String {
    let topologies: Vec<String> = cells.iter().map(|c| format!("{{name: {c}}}")).collect();
    format!(
        r#"
apiVersion: types.kubefed.io/v1beta2
kind: FederatedDeployment
metadata: {{name: {name}, namespace: shop}}
spec:
  topologyType: cell
  template:
    spec:
      replicas: 1
      selector: {{matchLabels: {{app: {name}}}}}
      template:
        metadata: {{labels: {{app: {name}}}}}
        spec: {{containers: [{{name: app, image: "shop/{name}:1"}}]}}
  placement:
    topologies: [{}]
"#,
        topologies.join(", ")
    )
}

#[test]
fn cells_conversion_and_grey_release() {
    if cellfed_e2e::skip("cells_conversion_and_grey_release", false) {
        return;
    }
    let mut env = Env::start(2);
    env.start_webhook();
    apply(&env, CELLS);
    // derived clusters appear for every cell
    eventually(30, "derived KubeFedClusters", || {
        let list = env
            .host
            .get(&[
                "kubefedclusters",
                "-n",
                "kube-federation-system",
                "-l",
                "cellfed.io/cell",
            ])
            .unwrap();
        let n = list["items"].as_array().map_or(0, Vec::len);
        if n == 3 {
            Ok(())
        } else {
            Err(format!("{n}/3"))
        }
    });

    // `kubectl get cells` shows each cell's Ready condition in its READY column
    eventually(60, "kubectl get cells: READY True", || {
        let out = env
            .host
            .kubectl(&["get", "cells", "-n", "shop", "--no-headers"]);
        let ready: Vec<(String, String)> = out
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[0].to_string(), f[f.len() - 2].to_string())
            })
            .collect();
        if ready.len() == 3 && ready.iter().all(|(_, r)| r == "True") {
            Ok(())
        } else {
            Err(out)
        }
    });

    // --- v1beta2 cell placement lands in the cells' member namespaces
    apply(&env, &deployment("web", &["rz00a", "rz01a", "rz02a"]));
    eventually(60, "web in all three cells", || {
        for (m, ns) in [
            ("member1", "shop-rz00a"),
            ("member1", "shop-rz01a"),
            ("member2", "shop"),
        ] {
            image_in(&env, m, ns, "web").ok_or(format!("absent in {m}/{ns}"))?;
        }
        Ok(())
    });
    // the v1beta1 view names clusters <cell>.<namespace>; the v1beta2 view is what we applied
    let v1 = env
        .host
        .get(&[
            "federateddeployments.v1beta1.types.kubefed.io",
            "web",
            "-n",
            "shop",
        ])
        .unwrap();
    assert_eq!(v1["apiVersion"], "types.kubefed.io/v1beta1");
    assert_eq!(
        v1["spec"]["placement"]["clusters"],
        json!([{"name": "rz00a.shop"}, {"name": "rz01a.shop"}, {"name": "rz02a.shop"}])
    );
    let v2 = env
        .host
        .get(&[
            "federateddeployments.v1beta2.types.kubefed.io",
            "web",
            "-n",
            "shop",
        ])
        .unwrap();
    assert_eq!(v2["spec"]["topologyType"], "cell");
    assert_eq!(
        v2["spec"]["placement"]["topologies"],
        json!([{"name": "rz00a"}, {"name": "rz01a"}, {"name": "rz02a"}])
    );
    // the default `kubectl get federateddeployments` shows the v1beta2 view
    let default_view = env
        .host
        .get(&["federateddeployments", "web", "-n", "shop"])
        .unwrap();
    assert_eq!(default_view["apiVersion"], "types.kubefed.io/v1beta2");
    // writing the v1beta1 view back (as KubeFed tools do) loses nothing of the v1beta2 view
    let mut v1_edit = v1.clone();
    v1_edit["metadata"]["labels"] = json!({"edited": "by-kubefed-tool"});
    env.host
        .kubectl_stdin(&["replace", "-f", "-"], &v1_edit.to_string());
    let v2_after = env
        .host
        .get(&[
            "federateddeployments.v1beta2.types.kubefed.io",
            "web",
            "-n",
            "shop",
        ])
        .unwrap();
    assert_eq!(
        v2_after["spec"], v2["spec"],
        "round trip through v1beta1 changed the spec"
    );
    assert_eq!(v2_after["metadata"]["labels"]["edited"], "by-kubefed-tool");

    // --- grey release: placed on rz00a and rz01a, mask rz00a, new image
    apply(&env, &deployment("grey", &["rz00a", "rz01a"]));
    eventually(60, "grey at generation 1 in both cells", || {
        for ns in ["shop-rz00a", "shop-rz01a"] {
            image_in(&env, "member1", ns, "grey").ok_or(format!("absent in {ns}"))?;
        }
        Ok(())
    });
    mask(&env, "grey", &["rz00a"]);
    set_image(&env, "grey", "shop/grey:2");
    eventually(60, "only rz00a runs the new image", || {
        let a = image_in(&env, "member1", "shop-rz00a", "grey").unwrap();
        if a == ("shop/grey:2".into(), 2) {
            Ok(())
        } else {
            Err(format!("{a:?}"))
        }
    });
    eventually(30, "status says 1/2 updated and rz01a is behind", || {
        let v2 = env
            .host
            .get(&[
                "federateddeployments.v1beta2.types.kubefed.io",
                "grey",
                "-n",
                "shop",
            ])
            .unwrap();
        let summary = v2["status"]["rollout"]["summary"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let behind = v2["status"]["topologies"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["name"] == "rz01a" && t["status"] == "MaskedOut");
        if summary == "1/2" && behind {
            Ok(())
        } else {
            Err(v2["status"].to_string())
        }
    });
    assert_eq!(
        image_in(&env, "member1", "shop-rz01a", "grey").unwrap(),
        ("shop/grey:1".to_string(), 1),
        "rz01a must keep generation 1"
    );
    mask(&env, "grey", &["rz00a", "rz01a"]);
    eventually(60, "widening the mask finishes the rollout", || {
        let b = image_in(&env, "member1", "shop-rz01a", "grey").unwrap();
        if b == ("shop/grey:2".into(), 2) {
            Ok(())
        } else {
            Err(format!("{b:?}"))
        }
    });

    // --- a member down: mask it out, the rest releases; back, it gets nothing until unmasked
    env.member_mut("member2").stop();
    mask(&env, "web", &["rz00a", "rz01a"]);
    set_image(&env, "web", "shop/web:2");
    eventually(60, "rz00a and rz01a release while member2 is down", || {
        for ns in ["shop-rz00a", "shop-rz01a"] {
            let (img, _) = image_in(&env, "member1", ns, "web").unwrap();
            if img != "shop/web:2" {
                return Err(format!("{ns}: {img}"));
            }
        }
        Ok(())
    });
    env.member_mut("member2").restart();
    eventually(30, "member2 ready again", || {
        let c = env
            .host
            .get(&[
                "kubefedclusters",
                "rz02a.shop",
                "-n",
                "kube-federation-system",
            ])
            .unwrap();
        let ready = c["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|x| x["type"] == "Ready" && x["status"] == "True");
        if ready {
            Ok(())
        } else {
            Err(c["status"].to_string())
        }
    });
    // once the controller reconciled with rz02a ready again (its status turns from
    // ClusterNotReady to MaskedOut), rz02a still runs the old image
    eventually(60, "web reconciled with rz02a back: MaskedOut", || {
        let v2 = env
            .host
            .get(&[
                "federateddeployments.v1beta2.types.kubefed.io",
                "web",
                "-n",
                "shop",
            ])
            .ok_or("no web")?;
        let masked = v2["status"]["topologies"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["name"] == "rz02a" && t["status"] == "MaskedOut");
        if masked {
            Ok(())
        } else {
            Err(v2["status"].to_string())
        }
    });
    assert_eq!(
        image_in(&env, "member2", "shop", "web").unwrap().0,
        "shop/web:1",
        "a masked-out cell must not change"
    );
    mask(&env, "web", &["rz00a", "rz01a", "rz02a"]);
    eventually(60, "rz02a released once unmasked", || {
        let (img, _) = image_in(&env, "member2", "shop", "web").unwrap();
        if img == "shop/web:2" {
            Ok(())
        } else {
            Err(img)
        }
    });
}
