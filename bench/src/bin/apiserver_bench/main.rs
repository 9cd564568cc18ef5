//! Apiserver benchmark: requests/s and p99 latency for create, get, list (1k and 10k objects)
//! and watch fan-out to 100 watchers, per storage backend, against a real
//! `cellfed_apiserver::Server` on a loopback socket, driven by a hyper HTTP/1.1 client.
//! See bench/README.md.
//!
//! `cargo run --release -p cellfed-bench --bin apiserver_bench -- --help`

mod client;
mod run;

use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;

/// Command line of the apiserver benchmark.
#[derive(Debug, Parser)]
#[command(about = "Benchmark cellfed-apiserver over HTTP on SQLite, MySQL, PostgreSQL")]
pub struct Args {
    /// Backends to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,mysql,postgres")]
    pub backends: Vec<String>,
    /// MySQL/MariaDB URL.
    #[arg(
        long,
        env = "CELLFED_TEST_MYSQL_URL",
        default_value = "mysql://root@127.0.0.1:3306/test"
    )]
    pub mysql_url: String,
    /// PostgreSQL URL.
    #[arg(
        long,
        env = "CELLFED_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub postgres_url: String,
    /// Concurrent HTTP clients for create and get.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// GET requests (spread over the created objects).
    #[arg(long, default_value_t = 5000)]
    pub gets: usize,
    /// Objects in the small and the large list namespace.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub list_sizes: Vec<usize>,
    /// LIST requests per list size (sequential).
    #[arg(long, default_value_t = 10)]
    pub lists: usize,
    /// Concurrent watchers in the fan-out measurement.
    #[arg(long, default_value_t = 100)]
    pub watchers: usize,
    /// Objects created while the watchers watch.
    #[arg(long, default_value_t = 100)]
    pub watch_events: usize,
    /// Bytes of data per ConfigMap.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let mut reports = Vec::new();
    for backend in &args.backends {
        eprintln!("== {backend}");
        let report = run::backend(&args, backend)
            .await
            .with_context(|| format!("benchmark on {backend}"))?;
        println!("{}", run::render(&report));
        reports.push(report);
    }
    println!("{}", run::summary(&args, &reports));
    eprintln!("done in {:.1?}", started.elapsed());
    Ok(())
}
