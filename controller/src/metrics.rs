//! Controller metrics in Prometheus text format: reconciles, errors, member writes per cluster,
//! queue depth and a propagation (reconcile) latency histogram, served on `/metrics`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counters shared by every controller task.
#[derive(Default)]
pub struct Metrics {
    /// Reconciles of federated resources.
    pub reconciles: AtomicU64,
    /// Reconciles that failed.
    pub errors: AtomicU64,
    /// Status writes of federated resources (a resource in sync costs none).
    pub status_writes: AtomicU64,
    /// Reconciles that saw every member they concern through a synced cache (after a restart,
    /// one per resource means the controller has looked at everything).
    pub synced_reconciles: AtomicU64,
    /// Member writes by cluster.
    writes: Mutex<BTreeMap<String, u64>>,
    /// Histogram counts per bucket (+Inf last), sum in microseconds.
    latency: Mutex<(Vec<u64>, u64)>,
}

impl Metrics {
    /// Counts one member write to `cluster`.
    pub fn member_write(&self, cluster: &str) {
        if let Ok(mut w) = self.writes.lock() {
            *w.entry(cluster.to_string()).or_default() += 1;
        }
    }

    /// Member writes per cluster so far.
    pub fn member_writes(&self) -> BTreeMap<String, u64> {
        self.writes.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Records one reconcile's duration.
    pub fn observe_latency(&self, d: Duration) {
        if let Ok(mut h) = self.latency.lock() {
            if h.0.is_empty() {
                h.0 = vec![0; BUCKETS.len() + 1];
            }
            let secs = d.as_secs_f64();
            let idx = BUCKETS
                .iter()
                .position(|b| secs <= *b)
                .unwrap_or(BUCKETS.len());
            h.0[idx] += 1;
            h.1 += u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            ));
        };
        counter(
            &mut out,
            "cellfed_reconciles_total",
            "Reconciles of federated resources.",
            self.reconciles.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "cellfed_reconcile_errors_total",
            "Reconciles that failed.",
            self.errors.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "cellfed_synced_reconciles_total",
            "Reconciles that saw every member they concern through a synced cache.",
            self.synced_reconciles.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "cellfed_status_writes_total",
            "Status writes of federated resources.",
            self.status_writes.load(Ordering::Relaxed),
        );
        out.push_str("# HELP cellfed_member_writes_total Writes to member clusters.\n# TYPE cellfed_member_writes_total counter\n");
        for (cluster, n) in self.member_writes() {
            out.push_str(&format!(
                "cellfed_member_writes_total{{cluster=\"{cluster}\"}} {n}\n"
            ));
        }
        out.push_str("# HELP cellfed_propagation_duration_seconds Time to reconcile one federated resource.\n# TYPE cellfed_propagation_duration_seconds histogram\n");
        let (counts, sum) = self.latency.lock().map(|h| h.clone()).unwrap_or_default();
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += counts.get(i).copied().unwrap_or(0);
            out.push_str(&format!(
                "cellfed_propagation_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}\n"
            ));
        }
        cumulative += counts.get(BUCKETS.len()).copied().unwrap_or(0);
        out.push_str(&format!(
            "cellfed_propagation_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}\n"
        ));
        out.push_str(&format!(
            "cellfed_propagation_duration_seconds_sum {}\n",
            sum as f64 / 1e6
        ));
        out.push_str(&format!(
            "cellfed_propagation_duration_seconds_count {cumulative}\n"
        ));
        out
    }
}

/// Serves `/metrics` (and `/healthz`) on `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, metrics: std::sync::Arc<Metrics>) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { m.render() }
            }),
        )
        .route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histogram() {
        let m = Metrics::default();
        m.reconciles.fetch_add(3, Ordering::Relaxed);
        m.member_write("member1");
        m.member_write("member1");
        m.observe_latency(Duration::from_millis(3));
        m.observe_latency(Duration::from_secs(30));
        let text = m.render();
        assert!(text.contains("cellfed_reconciles_total 3"));
        assert!(text.contains("cellfed_member_writes_total{cluster=\"member1\"} 2"));
        assert!(text.contains("cellfed_propagation_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("cellfed_propagation_duration_seconds_bucket{le=\"+Inf\"} 2"));
    }
}
