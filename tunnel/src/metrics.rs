//! Prometheus metrics of both sides, as plain atomics rendered in the text exposition format.
//!
//! Server: agents connected (per cluster), agent handshakes accepted and refused, streams open
//! and opened, CONNECTs refused by reason, bytes each way. Agent: connected, connects and
//! reconnects, streams open and opened, dial failures, bytes each way.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes carried by one side of a spliced stream.
#[derive(Debug, Default)]
pub struct Bytes {
    /// Towards the member apiserver (requests).
    pub to_member: AtomicU64,
    /// From the member apiserver (responses, watch events).
    pub from_member: AtomicU64,
}

/// The tunnel server's metrics.
#[derive(Debug, Default)]
pub struct ServerMetrics {
    /// Connected agents per cluster.
    agents: Mutex<BTreeMap<String, u64>>,
    /// Agent handshakes accepted (first connects and reconnects).
    pub agent_connects: AtomicU64,
    /// Agent handshakes refused by reason.
    refused_agents: Mutex<BTreeMap<&'static str, u64>>,
    /// CONNECTs refused or failed by reason.
    refused_connects: Mutex<BTreeMap<&'static str, u64>>,
    /// Streams currently open.
    pub streams_open: AtomicU64,
    /// Streams opened since start.
    pub streams_total: AtomicU64,
    /// Bytes carried.
    pub bytes: std::sync::Arc<Bytes>,
}

impl ServerMetrics {
    /// An agent of `cluster` connected (+1) or went (-1).
    pub fn agent(&self, cluster: &str, connected: bool) {
        if let Ok(mut m) = self.agents.lock() {
            let n = m.entry(cluster.to_string()).or_default();
            *n = if connected {
                *n + 1
            } else {
                n.saturating_sub(1)
            };
        }
        if connected {
            self.agent_connects.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Connected agents of `cluster`.
    pub fn agents_connected(&self, cluster: &str) -> u64 {
        self.agents
            .lock()
            .ok()
            .and_then(|m| m.get(cluster).copied())
            .unwrap_or(0)
    }

    /// An agent handshake was refused for `reason`.
    pub fn refused_agent(&self, reason: &'static str) {
        bump(&self.refused_agents, reason);
    }

    /// A CONNECT was refused or failed for `reason`.
    pub fn refused_connect(&self, reason: &'static str) {
        bump(&self.refused_connects, reason);
    }

    /// CONNECTs refused for `reason` so far.
    pub fn refused_connects(&self, reason: &str) -> u64 {
        self.refused_connects
            .lock()
            .ok()
            .and_then(|m| m.get(reason).copied())
            .unwrap_or(0)
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let agents = self.agents.lock().map(|m| m.clone()).unwrap_or_default();
        header(
            &mut out,
            "cellfed_tunnel_agents_connected",
            "gauge",
            "Agents connected, per cluster.",
        );
        for (cluster, n) in &agents {
            let _ = writeln!(
                out,
                "cellfed_tunnel_agents_connected{{cluster=\"{cluster}\"}} {n}"
            );
        }
        counter(
            &mut out,
            "cellfed_tunnel_agent_connects_total",
            "Agent handshakes accepted (connects and reconnects).",
            self.agent_connects.load(Ordering::Relaxed),
        );
        labelled(
            &mut out,
            "cellfed_tunnel_agent_refused_total",
            "Agent handshakes refused, by reason.",
            &self.refused_agents,
        );
        labelled(
            &mut out,
            "cellfed_tunnel_connect_refused_total",
            "CONNECT requests refused or failed, by reason.",
            &self.refused_connects,
        );
        gauge(
            &mut out,
            "cellfed_tunnel_streams_open",
            "Proxied connections open.",
            self.streams_open.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "cellfed_tunnel_streams_total",
            "Proxied connections opened.",
            self.streams_total.load(Ordering::Relaxed),
        );
        bytes(&mut out, "cellfed_tunnel", &self.bytes);
        out
    }
}

/// The agent's metrics.
#[derive(Debug, Default)]
pub struct AgentMetrics {
    /// 1 while connected to the server.
    pub connected: AtomicU64,
    /// Successful handshakes.
    pub connects: AtomicU64,
    /// Connection attempts after the first (failed or after a drop).
    pub reconnects: AtomicU64,
    /// Streams currently open.
    pub streams_open: AtomicU64,
    /// Streams opened since start.
    pub streams_total: AtomicU64,
    /// Streams whose member apiserver could not be dialled.
    pub dial_failures: AtomicU64,
    /// Bytes carried.
    pub bytes: std::sync::Arc<Bytes>,
}

impl AgentMetrics {
    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        gauge(
            &mut out,
            "cellfed_agent_connected",
            "1 while the agent is connected to the tunnel server.",
            load(&self.connected),
        );
        counter(
            &mut out,
            "cellfed_agent_connects_total",
            "Successful handshakes with the tunnel server.",
            load(&self.connects),
        );
        counter(
            &mut out,
            "cellfed_agent_reconnects_total",
            "Connection attempts after the first one.",
            load(&self.reconnects),
        );
        gauge(
            &mut out,
            "cellfed_agent_streams_open",
            "Proxied connections open.",
            load(&self.streams_open),
        );
        counter(
            &mut out,
            "cellfed_agent_streams_total",
            "Proxied connections opened.",
            load(&self.streams_total),
        );
        counter(
            &mut out,
            "cellfed_agent_dial_failures_total",
            "Streams whose member apiserver could not be dialled.",
            load(&self.dial_failures),
        );
        bytes(&mut out, "cellfed_agent", &self.bytes);
        out
    }
}

fn bump(map: &Mutex<BTreeMap<&'static str, u64>>, key: &'static str) {
    if let Ok(mut m) = map.lock() {
        *m.entry(key).or_default() += 1;
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, v: u64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {v}");
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {v}");
}

fn labelled(out: &mut String, name: &str, help: &str, map: &Mutex<BTreeMap<&'static str, u64>>) {
    header(out, name, "counter", help);
    for (reason, n) in map.lock().map(|m| m.clone()).unwrap_or_default() {
        let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {n}");
    }
}

fn bytes(out: &mut String, prefix: &str, b: &Bytes) {
    let name = format!("{prefix}_bytes_total");
    header(
        out,
        &name,
        "counter",
        "Bytes carried, by direction (to_member, from_member).",
    );
    let _ = writeln!(
        out,
        "{name}{{direction=\"to_member\"}} {}\n{name}{{direction=\"from_member\"}} {}",
        b.to_member.load(Ordering::Relaxed),
        b.from_member.load(Ordering::Relaxed)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_metrics_render() {
        let m = ServerMetrics::default();
        m.agent("member1", true);
        m.agent("member1", false);
        m.agent("member1", true);
        m.refused_connect("TunnelDisconnected");
        m.bytes.to_member.fetch_add(5, Ordering::Relaxed);
        let text = m.render();
        assert!(text.contains("cellfed_tunnel_agents_connected{cluster=\"member1\"} 1"));
        assert!(text.contains("cellfed_tunnel_agent_connects_total 2"));
        assert!(
            text.contains("cellfed_tunnel_connect_refused_total{reason=\"TunnelDisconnected\"} 1")
        );
        assert!(text.contains("cellfed_tunnel_bytes_total{direction=\"to_member\"} 5"));
        assert_eq!(m.agents_connected("member1"), 1);
        assert_eq!(m.refused_connects("TunnelDisconnected"), 1);
    }

    #[test]
    fn agent_metrics_render() {
        let m = AgentMetrics::default();
        m.reconnects.fetch_add(3, Ordering::Relaxed);
        let text = m.render();
        assert!(text.contains("cellfed_agent_reconnects_total 3"));
        assert!(text.contains("# TYPE cellfed_agent_connected gauge"));
    }
}
