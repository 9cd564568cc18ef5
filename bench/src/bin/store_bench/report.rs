//! Figures of one backend and the summary table (the one pasted into bench/README.md).

use std::fmt::Write as _;
use std::time::Duration;

/// Percentiles of write-to-event latency (and of the write alone, for reference).
#[derive(Debug, Default, Clone)]
pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub write_p50: Duration,
    pub samples: usize,
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

impl Latency {
    pub fn from_samples(mut delivery: Vec<Duration>, mut write: Vec<Duration>) -> Latency {
        delivery.sort();
        write.sort();
        Latency {
            p50: percentile(&delivery, 50),
            p99: percentile(&delivery, 99),
            max: delivery.last().copied().unwrap_or_default(),
            write_p50: percentile(&write, 50),
            samples: delivery.len(),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub backend: String,
    pub writes: usize,
    /// Rounds raw inserts and store creates alternated in.
    pub rounds: usize,
    /// Simulated network round trip to the database (`--rtt-ms`), 0 for plain loopback.
    pub rtt_ms: f64,
    pub clients: usize,
    pub value_size: usize,
    /// Per second, [1 client, N clients].
    pub raw_inserts: [f64; 2],
    pub creates: [f64; 2],
    /// Galera: creates/s with the N clients spread over the nodes, one `Store` per node.
    pub creates_spread: Option<f64>,
    pub updates: [f64; 2],
    pub list_full: Duration,
    pub list_paged: (Duration, usize),
    pub list_keys: usize,
    pub watch_local: Latency,
    pub watch_cross: Latency,
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A rate, or "n/a" for a backend without that figure (etcd has no raw inserts).
fn per_s(rate: f64) -> String {
    if rate > 0.0 {
        format!("{rate:.0}")
    } else {
        "n/a".to_owned()
    }
}

/// `part` as a share of `whole`, or "n/a" without a baseline.
fn share(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.0}%", 100.0 * part / whole)
    } else {
        "n/a".to_owned()
    }
}

impl Report {
    pub fn new(backend: &str, writes: usize, clients: usize, value_size: usize) -> Report {
        Report {
            backend: backend.to_owned(),
            writes,
            clients,
            value_size,
            ..Default::default()
        }
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let n = self.clients;
        let _ = writeln!(
            s,
            "backend {} ({} writes of {} B values per figure; raw inserts and creates alternate in {} rounds{})",
            self.backend,
            self.writes,
            self.value_size,
            self.rounds,
            if self.rtt_ms > 0.0 {
                format!("; {} ms simulated round trip", self.rtt_ms)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            s,
            "  raw sqlx inserts/s   1 client {:>8}   {n} clients {:>8}",
            per_s(self.raw_inserts[0]),
            per_s(self.raw_inserts[1])
        );
        let _ = writeln!(
            s,
            "  store creates/s      1 client {:>8.0}   {n} clients {:>8.0}   ({} / {} of raw)",
            self.creates[0],
            self.creates[1],
            share(self.creates[0], self.raw_inserts[0]),
            share(self.creates[1], self.raw_inserts[1])
        );
        if let Some(spread) = self.creates_spread {
            let _ = writeln!(
                s,
                "  store creates/s      {n} clients spread over the nodes {spread:>8.0}   (through one node: {:.0})",
                self.creates[1]
            );
        }
        let _ = writeln!(
            s,
            "  store updates/s      1 client {:>8.0}   {n} clients {:>8.0}",
            self.updates[0], self.updates[1]
        );
        let _ = writeln!(
            s,
            "  list {} keys       one call {}   pages of 500: {} in {}",
            self.list_keys,
            ms(self.list_full),
            self.list_paged.1,
            ms(self.list_paged.0)
        );
        for (name, l) in [
            ("local", &self.watch_local),
            ("cross-instance", &self.watch_cross),
        ] {
            let _ = writeln!(
                s,
                "  watch {name:<15} p50 {}  p99 {}  max {}  (write alone p50 {}, {} samples)",
                ms(l.p50),
                ms(l.p99),
                ms(l.max),
                ms(l.write_p50),
                l.samples
            );
        }
        s
    }
}

/// A markdown table of all backends.
pub fn summary(reports: &[Report]) -> String {
    let keys = reports.first().map_or(0, |r| r.list_keys);
    let mut s = format!(
        "| backend | raw inserts/s (1 / N clients) | store creates/s (1 / N) | creates vs raw (1 / N) | updates/s (1 / N) | list {keys} keys | watch local p50 / p99 | watch cross-instance p50 / p99 |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        let _ = writeln!(
            s,
            "| {} | {} / {} | {:.0} / {} | {} / {} | {:.0} / {:.0} | {} | {} / {} | {} / {} |",
            if r.rtt_ms > 0.0 {
                format!("{} (+{} ms RTT)", r.backend, r.rtt_ms)
            } else {
                r.backend.clone()
            },
            per_s(r.raw_inserts[0]),
            per_s(r.raw_inserts[1]),
            r.creates[0],
            match r.creates_spread {
                Some(spread) => format!("{:.0} (spread over nodes: {spread:.0})", r.creates[1]),
                None => format!("{:.0}", r.creates[1]),
            },
            share(r.creates[0], r.raw_inserts[0]),
            share(r.creates[1], r.raw_inserts[1]),
            r.updates[0],
            r.updates[1],
            ms(r.list_full),
            ms(r.watch_local.p50),
            ms(r.watch_local.p99),
            ms(r.watch_cross.p50),
            ms(r.watch_cross.p99),
        );
    }
    s
}
