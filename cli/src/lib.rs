//! The `cellfed` binary and the `kubectl-cellfed` plugin. This crate only wires the other crates
//! together: argument parsing, logging, process lifetime. It holds no logic of its own.

pub mod chart;
mod commands;
pub mod plugin;

use std::process::ExitCode;

use clap::Parser;

/// Runs the `cellfed` binary with the process arguments.
pub fn run_cellfed() -> ExitCode {
    let cli = commands::Cli::parse();
    init_logging();
    finish(commands::run(cli))
}

/// Runs the `kubectl-cellfed` plugin with the process arguments (errors in kubectl's words).
pub fn run_plugin() -> ExitCode {
    plugin::main()
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
