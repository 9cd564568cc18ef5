//! `kubectl cellfed`: the kubectl plugin (join, unjoin, enable, disable, federate, rollout).

fn main() -> std::process::ExitCode {
    cellfed_cli::run_plugin()
}
