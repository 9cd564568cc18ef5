//! `kubectl cellfed` subcommands.

use clap::{Parser, Subcommand};

/// kubectl cellfed: join clusters, enable federated types, federate objects, roll out changes.
#[derive(Debug, Parser)]
#[command(name = "kubectl-cellfed", bin_name = "kubectl cellfed", version)]
pub struct Plugin {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Join a member cluster to the federation (not built yet).
    Join,
}

pub fn run(plugin: Plugin) -> anyhow::Result<()> {
    match plugin.command {
        Command::Join => anyhow::bail!("kubectl cellfed join: not built yet"),
    }
}
