//! Rollout benchmark: one image change of a FederatedDeployment placed on C cells (spread over M
//! members), released in S mask steps: per step, the time from the mask edit until every newly
//! unmasked cell runs the new image, and the p99 over cells. See bench/README.md.
//!
//! `cargo build -p cellfed-cli && cargo run --release -p cellfed-bench --bin rollout_bench -- --cells 50 --steps 5`

use std::time::{Duration, Instant};

use anyhow::Result;
use cellfed_e2e::{Env, eventually};
use clap::Parser;
use serde_json::json;

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// Cells.
    #[arg(long, default_value_t = 50)]
    cells: usize,
    /// Member clusters the cells are spread over.
    #[arg(long, default_value_t = 5)]
    members: usize,
    /// Mask steps.
    #[arg(long, default_value_t = 5)]
    steps: usize,
}

fn cell(i: usize) -> String {
    format!("c{i:03}")
}

fn image_of(env: &Env, i: usize, members: usize) -> Option<String> {
    let m = &env.members[i % members];
    let d = m.get(&["deployment", "app", "-n", &format!("rel-{}", cell(i))])?;
    d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .map(str::to_string)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut env = Env::start(args.members);
    env.start_webhook();
    let mut docs = String::from("apiVersion: v1\nkind: Namespace\nmetadata: {name: rel}\n");
    for i in 0..args.cells {
        docs.push_str(&format!(
            "---\napiVersion: cellfed.io/v1alpha1\nkind: Cell\nmetadata: {{name: {}, namespace: rel}}\nspec: {{clusterName: member{}, memberNamespace: rel-{}}}\n",
            cell(i),
            i % args.members + 1,
            cell(i)
        ));
    }
    env.host.kubectl_stdin(&["apply", "-f", "-"], &docs);
    eventually(120, "derived clusters ready", || {
        let l = env
            .host
            .get(&[
                "kubefedclusters",
                "-n",
                "kube-federation-system",
                "-l",
                "cellfed.io/cell",
            ])
            .ok_or("list")?;
        let ready = l["items"].as_array().map_or(0, |a| {
            a.iter()
                .filter(|c| {
                    c["status"]["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|x| x["type"] == "Ready" && x["status"] == "True")
                })
                .count()
        });
        if ready == args.cells {
            Ok(())
        } else {
            Err(format!("{ready}/{}", args.cells))
        }
    });
    let topologies: Vec<_> = (0..args.cells).map(|i| json!({"name": cell(i)})).collect();
    let fd = json!({
        "apiVersion": "types.kubefed.io/v1beta2", "kind": "FederatedDeployment",
        "metadata": {"name": "app", "namespace": "rel"},
        "spec": {"topologyType": "cell",
                 "template": {"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "app"}},
                              "template": {"metadata": {"labels": {"app": "app"}}, "spec": {"containers": [{"name": "c", "image": "app:1"}]}}}},
                 "placement": {"topologies": topologies}, "placementMask": {"topologies": topologies}}
    });
    env.host
        .kubectl_stdin(&["apply", "-f", "-"], &fd.to_string());
    eventually(600, "app:1 in every cell", || {
        let n = (0..args.cells)
            .filter(|i| image_of(&env, *i, args.members).as_deref() == Some("app:1"))
            .count();
        if n == args.cells {
            Ok(())
        } else {
            Err(format!("{n}/{}", args.cells))
        }
    });

    // mask nothing new, change the image, then widen the mask step by step
    let patch = |mask: &[serde_json::Value], image: Option<&str>| {
        let mut p = json!({"spec": {"placementMask": {"topologies": mask}}});
        if let Some(img) = image {
            p["spec"]["template"] = fd["spec"]["template"].clone();
            p["spec"]["template"]["spec"]["template"]["spec"]["containers"][0]["image"] =
                json!(img);
        }
        env.host.kubectl(&[
            "patch",
            "federateddeployments.v1beta2.types.kubefed.io",
            "app",
            "-n",
            "rel",
            "--type=merge",
            "-p",
            &p.to_string(),
        ]);
    };
    patch(&[], Some("app:2"));
    let per_step = args.cells.div_ceil(args.steps);
    println!("| step | cells | mask edit → all updated | p99 per cell |\n|---|---|---|---|");
    let mut all = Vec::new();
    for step in 0..args.steps {
        let upto = ((step + 1) * per_step).min(args.cells);
        let mask: Vec<_> = (0..upto).map(|i| json!({"name": cell(i)})).collect();
        let t = Instant::now();
        patch(&mask, None);
        let mut pending: Vec<usize> = (step * per_step..upto).collect();
        let mut lat = Vec::new();
        while !pending.is_empty() {
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(300),
                "step {step} did not finish"
            );
            pending.retain(|i| {
                if image_of(&env, *i, args.members).as_deref() == Some("app:2") {
                    lat.push(t.elapsed());
                    false
                } else {
                    true
                }
            });
        }
        lat.sort();
        let p99 = lat[((lat.len() as f64 - 1.0) * 0.99).round() as usize];
        println!(
            "| {} | {} | {:.2} s | {:.2} s |",
            step + 1,
            lat.len(),
            t.elapsed().as_secs_f64(),
            p99.as_secs_f64()
        );
        all.extend(lat);
        // cells outside the mask must still run the old image
        if upto < args.cells {
            anyhow::ensure!(
                image_of(&env, upto, args.members).as_deref() == Some("app:1"),
                "a masked-out cell changed"
            );
        }
    }
    all.sort();
    let p99 = all[((all.len() as f64 - 1.0) * 0.99).round() as usize];
    println!("| all | {} | | p99 {:.2} s |", all.len(), p99.as_secs_f64());
    Ok(())
}
