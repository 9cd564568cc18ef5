//! Where the member clusters come from: local `cellfed member` processes (the default) or kind
//! clusters (`E2E_PROVIDER=kind`, needs docker and kind on PATH).

use std::path::Path;
use std::process::{Command, Stdio};

/// The source of member clusters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// `cellfed member` processes on loopback.
    Local,
    /// kind clusters named `cellfed-e2e-<member>`, created on first use and kept for reuse.
    Kind,
}

/// The provider chosen by `E2E_PROVIDER` (`local` when unset; `kind`).
pub fn provider() -> Provider {
    match std::env::var("E2E_PROVIDER").as_deref() {
        Ok("kind") => Provider::Kind,
        _ => Provider::Local,
    }
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Why the chosen provider cannot run here, if it cannot (kind without docker or kind).
pub fn unavailable() -> Option<String> {
    match provider() {
        Provider::Local => None,
        Provider::Kind => {
            if !runs("kind", &["version"]) {
                Some("`kind` is not on PATH".into())
            } else if !runs("docker", &["info"]) {
                Some("docker is not running (`docker info` failed)".into())
            } else {
                None
            }
        }
    }
}

/// Call first in every test: true (after printing why) when the test must be skipped — the kind
/// provider was asked for but docker/kind are missing, or the test is `local_only` (it drives
/// `cellfed` processes itself, e.g. `cellfed up`) and the provider is kind. A skipped test is
/// reported by cargo as passed; the printed `SKIPPED` line is the truth.
pub fn skip(test: &str, local_only: bool) -> bool {
    if local_only && provider() == Provider::Kind {
        eprintln!("SKIPPED {test}: local-only test, E2E_PROVIDER=kind");
        return true;
    }
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED {test}: E2E_PROVIDER=kind but {why}");
        return true;
    }
    false
}

/// The kind cluster backing member `name`.
pub fn kind_cluster(name: &str) -> String {
    format!("cellfed-e2e-{name}")
}

/// Creates kind cluster `cluster` unless it exists, and writes its kubeconfig to `kubeconfig`.
pub fn kind_up(cluster: &str, kubeconfig: &Path) -> Result<(), String> {
    let list = Command::new("kind")
        .args(["get", "clusters"])
        .output()
        .map_err(|e| e.to_string())?;
    let exists = String::from_utf8_lossy(&list.stdout)
        .lines()
        .any(|l| l.trim() == cluster);
    if !exists
        && !runs(
            "kind",
            &["create", "cluster", "--name", cluster, "--wait", "120s"],
        )
    {
        return Err(format!("kind create cluster --name {cluster} failed"));
    }
    let out = Command::new("kind")
        .args(["get", "kubeconfig", "--name", cluster])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    if let Some(dir) = kubeconfig.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(kubeconfig, &out.stdout).map_err(|e| e.to_string())
}

/// Stops (`false`) or starts (`true`) the node container of kind cluster `cluster` (a member
/// going down and coming back; kind keeps the host port mapping across restarts).
pub fn kind_power(cluster: &str, on: bool) -> Result<(), String> {
    let verb = if on { "start" } else { "stop" };
    let node = format!("{cluster}-control-plane");
    if runs("docker", &[verb, &node]) {
        Ok(())
    } else {
        Err(format!("docker {verb} {node} failed"))
    }
}
