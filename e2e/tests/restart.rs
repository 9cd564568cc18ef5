#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Restarting the controller with 200 federated resources in sync across 3 members writes nothing
//! to the members (their store revisions do not move, and the controller counts no member write).

use cellfed_e2e::{Env, eventually, http_get, quiet_revisions};

#[test]
fn controller_restart_with_200_resources_in_sync_costs_zero_member_writes() {
    if cellfed_e2e::skip(
        "controller_restart_with_200_resources_in_sync_costs_zero_member_writes",
        false,
    ) {
        return;
    }
    let mut env = Env::start(3);
    env.host.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: bulk}\n",
    );
    let mut docs = String::new();
    for i in 0..200 {
        docs.push_str(&format!(
            "---\napiVersion: types.kubefed.io/v1beta1\nkind: FederatedConfigMap\nmetadata: {{name: cm-{i}, namespace: bulk}}\nspec:\n  template: {{data: {{index: \"{i}\"}}}}\n  placement: {{clusters: [{{name: member1}}, {{name: member2}}, {{name: member3}}]}}\n"
        ));
    }
    env.host.kubectl_stdin(&["apply", "-f", "-"], &docs);
    eventually(180, "200 configmaps in each member", || {
        for m in &env.members {
            let list = m
                .get(&["configmaps", "-n", "bulk", "-l", "kubefed.io/managed=true"])
                .ok_or("list failed")?;
            let n = list["items"].as_array().map_or(0, Vec::len);
            if n != 200 {
                return Err(format!("{}: {n}/200", m.name));
            }
        }
        Ok(())
    });
    let before = quiet_revisions(&env.members);
    env.start_controller();
    let metrics = format!("http://127.0.0.1:{}/metrics", env.metrics_port);
    eventually(
        120,
        "the restarted controller reconciled every resource with synced member caches",
        || {
            let text = http_get(&metrics)?;
            let n: u64 = text
                .lines()
                .find_map(|l| l.strip_prefix("cellfed_synced_reconciles_total "))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if n >= 200 {
                Ok(())
            } else {
                Err(format!("{n} reconciles"))
            }
        },
    );
    let after: Vec<u64> = env.members.iter().map(|m| m.revision()).collect();
    assert_eq!(
        before, after,
        "member store revisions moved: the controller wrote to a member"
    );
    let text = http_get(&metrics).unwrap();
    assert!(
        !text.contains("cellfed_member_writes_total{"),
        "member writes counted after restart:\n{text}"
    );
}
