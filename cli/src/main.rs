//! `cellfed`: the federation plane's server subcommands.

fn main() -> std::process::ExitCode {
    cellfed_cli::run_cellfed()
}
