//! ClusterIP and NodePort allocation for Services, as kube-apiserver 1.32 does it in its
//! Service REST storage (single-stack IPv4, bitmap allocators).
//!
//! What follows kube: the first address of the range is the `default/kubernetes` Service's; a
//! requested address or port must be free and in range; on update omitted values are patched
//! from the live object (`patchAllocatedValues`: clusterIP/clusterIPs, nodePorts matched by port
//! name, healthCheckNodePort), fields a type change no longer needs are dropped and released,
//! and clusterIPs may not change once set. Where kube differs: it picks free values at random
//! in the upper part of each range (static/dynamic split); we pick the lowest free one in that
//! upper part, so tests are deterministic. IPv6 and dual-stack ranges are not supported.

use super::field_error::{FieldError, go_strings};
use super::service_spec::{
    cluster_ips, cluster_ips_field, drop_type_dependent_fields, forbid_node_ports,
    immutable_cluster_ips, ip_families, is_kubernetes_service, needs_cluster_ip,
    needs_health_check_port, needs_node_port, node_ports, normalize_against_live,
    normalize_cluster_ips, patch_allocated_values, str_at,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Errors building an [`Allocator`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service CIDR is not an IPv4 `a.b.c.d/n` with 8 <= n <= 30.
    #[error("invalid service CIDR {0:?}: want an IPv4 a.b.c.d/n with 8 <= n <= 30")]
    ParseServiceCidr(String),
    /// The NodePort range is empty or reversed.
    #[error("invalid NodePort range {first}-{last}")]
    CheckNodePortRange { first: u16, last: u16 },
}

/// The default service CIDR (kubeadm's and kind's).
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
/// The default NodePort range, kube's `--service-node-port-range`.
pub const DEFAULT_NODE_PORTS: (u16, u16) = (30000, 32767);

/// Allocated cluster IPs and node ports of one member cluster. Not thread-safe by itself: keep
/// it behind the same lock as the Service writes it admits.
#[derive(Debug, Clone)]
pub struct Allocator {
    /// The range as configured, for error messages.
    cidr: String,
    /// First usable address (network + 1).
    first_ip: u32,
    /// Number of usable addresses (network and broadcast excluded).
    ip_count: u32,
    /// Allocated addresses, the reserved first one excluded.
    ips: BTreeSet<u32>,
    /// Whether a `default/kubernetes` Service holds the reserved first address.
    kubernetes_present: bool,
    first_port: u16,
    last_port: u16,
    ports: BTreeSet<u16>,
}

impl Default for Allocator {
    fn default() -> Self {
        // The defaults are valid constants.
        Self::new(DEFAULT_SERVICE_CIDR, DEFAULT_NODE_PORTS).unwrap_or_else(|_| unreachable!())
    }
}

impl Allocator {
    /// An empty allocator over `service_cidr` and the inclusive `node_ports` range.
    pub fn new(service_cidr: &str, node_ports: (u16, u16)) -> Result<Self, Error> {
        let parse = || -> Option<(u32, u32)> {
            let (addr, len) = service_cidr.split_once('/')?;
            let addr: Ipv4Addr = addr.parse().ok()?;
            let len: u32 = len.parse().ok().filter(|l| (8..=30).contains(l))?;
            let mask = u32::MAX << (32 - len);
            Some((u32::from(addr) & mask, 1u32 << (32 - len)))
        };
        let (network, size) =
            parse().ok_or_else(|| Error::ParseServiceCidr(service_cidr.to_owned()))?;
        let (first, last) = node_ports;
        if first == 0 || first > last {
            return Err(Error::CheckNodePortRange { first, last });
        }
        Ok(Self {
            cidr: service_cidr.to_owned(),
            first_ip: network + 1,
            ip_count: size - 2,
            ips: BTreeSet::new(),
            kubernetes_present: false,
            first_port: first,
            last_port: last,
            ports: BTreeSet::new(),
        })
    }

    /// The default allocator rebuilt from the stored Services (after a restart). Values out of
    /// range are ignored, as kube's repair loop would report them, not reject them.
    pub fn from_existing(services: &[Value]) -> Self {
        let mut allocator = Self::default();
        for svc in services {
            allocator.reserve(svc);
        }
        allocator
    }

    /// Marks everything `svc` holds as allocated (rebuild, or undo of a failed update).
    pub fn reserve(&mut self, svc: &Value) {
        let kubernetes = is_kubernetes_service(svc);
        for ip in cluster_ips(svc) {
            if let Some(offset) = self.offset(&ip) {
                if offset == self.first_ip && kubernetes {
                    self.kubernetes_present = true;
                } else if offset != self.first_ip {
                    self.ips.insert(offset);
                }
            }
        }
        for port in node_ports(svc) {
            if self.port_in_range(port) {
                self.ports.insert(port);
            }
        }
    }

    /// Frees everything `svc` holds: call after a Service is deleted, or to undo the admission
    /// of a create whose storage write failed.
    pub fn release(&mut self, svc: &Value) {
        let kubernetes = is_kubernetes_service(svc);
        for ip in cluster_ips(svc) {
            if let Some(offset) = self.offset(&ip) {
                if offset == self.first_ip {
                    self.kubernetes_present &= !kubernetes;
                } else {
                    self.ips.remove(&offset);
                }
            }
        }
        for port in node_ports(svc) {
            self.ports.remove(&port);
        }
    }

    /// Whether `ip` is allocated.
    pub fn ip_allocated(&self, ip: &str) -> bool {
        self.offset(ip)
            .is_some_and(|o| o == self.first_ip && self.kubernetes_present || self.ips.contains(&o))
    }

    /// Whether `port` is allocated.
    pub fn port_allocated(&self, port: u16) -> bool {
        self.ports.contains(&port)
    }

    /// Admits a Service create (`live` None) or update: fills `spec.clusterIP(s)`,
    /// `spec.ipFamilies`, `spec.ipFamilyPolicy`, `spec.ports[].nodePort` and
    /// `spec.healthCheckNodePort` of `new`, allocating what is new and releasing what the update
    /// drops. Call after defaulting. On error nothing is allocated or released.
    pub fn admit_service(
        &mut self,
        live: Option<&Value>,
        new: &mut Value,
    ) -> Result<(), Vec<FieldError>> {
        if let Some(live) = live {
            normalize_against_live(new, live);
            patch_allocated_values(new, live);
            drop_type_dependent_fields(new, live);
        }
        normalize_cluster_ips(new);
        let mut errors = live
            .map(|l| immutable_cluster_ips(new, l))
            .unwrap_or_default();
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut txn = Txn::default();
        let held_ips = live.map(cluster_ips).unwrap_or_default();
        let held_ports = live.map(node_ports).unwrap_or_default();
        if needs_cluster_ip(new) {
            self.admit_cluster_ip(new, &held_ips, &mut txn, &mut errors);
            ip_families(new, &mut errors);
        }
        if needs_node_port(new) {
            self.admit_node_ports(new, &held_ports, &mut txn, &mut errors);
        } else {
            forbid_node_ports(new, &mut errors);
        }
        self.admit_health_check_port(new, &held_ports, &mut txn, &mut errors);
        if !errors.is_empty() {
            self.rollback(txn);
            return Err(errors);
        }
        if let Some(live) = live {
            let kept_ips = cluster_ips(new);
            let kept_ports = node_ports(new);
            let mut dropped = json!({"metadata": live.get("metadata"), "spec": {}});
            dropped["spec"]["clusterIPs"] = json!(
                held_ips
                    .iter()
                    .filter(|ip| !kept_ips.contains(ip))
                    .collect::<Vec<_>>()
            );
            dropped["spec"]["ports"] = json!(
                held_ports
                    .iter()
                    .filter(|p| !kept_ports.contains(p))
                    .map(|p| json!({"nodePort": p}))
                    .collect::<Vec<_>>()
            );
            self.release(&dropped);
        }
        Ok(())
    }

    fn admit_cluster_ip(
        &mut self,
        svc: &mut Value,
        held: &[String],
        txn: &mut Txn,
        errors: &mut Vec<FieldError>,
    ) {
        let requested = str_at(svc, "/spec/clusterIP").to_owned();
        let ip = if requested == "None" || !requested.is_empty() && held.contains(&requested) {
            requested
        } else if !requested.is_empty() {
            let Some(offset) = requested.parse::<Ipv4Addr>().ok().map(u32::from) else {
                errors.push(FieldError::invalid(
                    "spec.clusterIPs[0]",
                    format!("{requested:?}"),
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                ));
                return;
            };
            let failure = if !self.ip_in_range(offset) {
                Some(format!(
                    "the provided IP ({requested}) is not in the valid range. The range of valid IPs is {}",
                    self.cidr
                ))
            } else if offset == self.first_ip {
                if is_kubernetes_service(svc) && !self.kubernetes_present {
                    self.kubernetes_present = true;
                    txn.kubernetes = true;
                    None
                } else {
                    Some("provided IP is already allocated".to_owned())
                }
            } else if self.ips.insert(offset) {
                txn.ips.push(offset);
                None
            } else {
                Some("provided IP is already allocated".to_owned())
            };
            if let Some(reason) = failure {
                errors.push(FieldError::invalid(
                    "spec.clusterIPs",
                    go_strings(&cluster_ips_field(svc)),
                    format!("failed to allocate IP {requested}: {reason}"),
                ));
                return;
            }
            requested
        } else {
            let Some(offset) = self.next_ip() else {
                errors.push(FieldError::invalid(
                    "spec.clusterIPs",
                    go_strings(&cluster_ips_field(svc)),
                    "failed to allocate a serviceIP: range is full",
                ));
                return;
            };
            self.ips.insert(offset);
            txn.ips.push(offset);
            Ipv4Addr::from(offset).to_string()
        };
        svc["spec"]["clusterIP"] = json!(ip);
        svc["spec"]["clusterIPs"] = json!([ip]);
    }

    fn admit_node_ports(
        &mut self,
        svc: &mut Value,
        held: &[u16],
        txn: &mut Txn,
        errors: &mut Vec<FieldError>,
    ) {
        let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
            return;
        };
        // Ports of one Service may share a node port (same port, TCP and UDP).
        let mut mine: Vec<(i64, u16)> = Vec::new();
        for (i, port) in ports.iter_mut().enumerate() {
            let field = format!("spec.ports[{i}].nodePort");
            let number = port.get("port").and_then(Value::as_i64).unwrap_or_default();
            let requested = port.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
            let node_port = if requested != 0 {
                match self.claim_port(requested, held, &mine, txn) {
                    Ok(p) => p,
                    Err(detail) => {
                        errors.push(FieldError::invalid(field, requested.to_string(), detail));
                        continue;
                    }
                }
            } else if let Some((_, shared)) = mine.iter().find(|(n, _)| *n == number) {
                *shared
            } else if let Some(p) = self.next_port() {
                self.ports.insert(p);
                txn.ports.push(p);
                p
            } else {
                errors.push(FieldError::invalid(
                    field,
                    "0".into(),
                    "failed to allocate a nodePort: range is full",
                ));
                continue;
            };
            mine.push((number, node_port));
            port["nodePort"] = json!(node_port);
        }
    }

    fn admit_health_check_port(
        &mut self,
        svc: &mut Value,
        held: &[u16],
        txn: &mut Txn,
        errors: &mut Vec<FieldError>,
    ) {
        let requested = svc
            .pointer("/spec/healthCheckNodePort")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if !needs_health_check_port(svc) {
            if requested != 0 {
                errors.push(FieldError::invalid(
                    "spec.healthCheckNodePort",
                    requested.to_string(),
                    "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
                ));
            }
            return;
        }
        let port = if requested != 0 {
            match self.claim_port(requested, held, &[], txn) {
                Ok(p) => p,
                Err(detail) => {
                    errors.push(FieldError::invalid(
                        "spec.healthCheckNodePort",
                        requested.to_string(),
                        detail,
                    ));
                    return;
                }
            }
        } else if let Some(p) = self.next_port() {
            self.ports.insert(p);
            txn.ports.push(p);
            p
        } else {
            errors.push(FieldError::invalid(
                "spec.healthCheckNodePort",
                "0".into(),
                "failed to allocate a nodePort: range is full",
            ));
            return;
        };
        svc["spec"]["healthCheckNodePort"] = json!(port);
    }

    /// Takes a requested port unless someone else holds it; kube's message on failure.
    fn claim_port(
        &mut self,
        requested: i64,
        held: &[u16],
        mine: &[(i64, u16)],
        txn: &mut Txn,
    ) -> Result<u16, String> {
        let port = u16::try_from(requested)
            .ok()
            .filter(|p| self.port_in_range(*p))
            .ok_or_else(|| {
                format!(
                    "provided port is not in the valid range. The range of valid ports is {}-{}",
                    self.first_port, self.last_port
                )
            })?;
        if held.contains(&port) || mine.iter().any(|(_, p)| *p == port) {
            return Ok(port);
        }
        if !self.ports.insert(port) {
            return Err("provided port is already allocated".to_owned());
        }
        txn.ports.push(port);
        Ok(port)
    }

    fn rollback(&mut self, txn: Txn) {
        for ip in txn.ips {
            self.ips.remove(&ip);
        }
        for port in txn.ports {
            self.ports.remove(&port);
        }
        if txn.kubernetes {
            self.kubernetes_present = false;
        }
    }

    fn offset(&self, ip: &str) -> Option<u32> {
        let addr = u32::from(ip.parse::<Ipv4Addr>().ok()?);
        self.ip_in_range(addr).then_some(addr)
    }

    fn ip_in_range(&self, addr: u32) -> bool {
        addr >= self.first_ip && addr - self.first_ip < self.ip_count
    }

    fn port_in_range(&self, port: u16) -> bool {
        (self.first_port..=self.last_port).contains(&port)
    }

    /// The lowest free address of the dynamic (upper) part of the range, then of the static
    /// part, never the reserved first address. kube sizes the static part min(max(16, n/16), 256).
    fn next_ip(&self) -> Option<u32> {
        let band = (self.ip_count / 16).clamp(16, 256).min(self.ip_count);
        let start = self.first_ip;
        let end = start + self.ip_count;
        (start + band..end)
            .chain(start + 1..start + band)
            .find(|a| !self.ips.contains(a))
    }

    /// Like [`Self::next_ip`] for ports; kube's static part is min(max(16, n/32), 128).
    fn next_port(&self) -> Option<u16> {
        let count = u32::from(self.last_port - self.first_port) + 1;
        let band = u16::try_from((count / 32).clamp(16, 128).min(count)).unwrap_or(16);
        let split = self.first_port.saturating_add(band);
        (split..=self.last_port)
            .chain(self.first_port..split)
            .find(|p| !self.ports.contains(p))
    }
}

/// What one admission allocated, to undo on error.
#[derive(Default)]
struct Txn {
    ips: Vec<u32>,
    ports: Vec<u16>,
    kubernetes: bool,
}
