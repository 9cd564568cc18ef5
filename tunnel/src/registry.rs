//! The connected agents, by cluster, and which CONNECT host belongs to which cluster.

use std::collections::BTreeMap;
use std::sync::Mutex;

use hyper::body::Bytes;

use crate::auth::AgentGrant;
use crate::protocol;

/// Opens HTTP/2 streams towards one agent.
pub type AgentSender = h2::client::SendRequest<Bytes>;

struct AgentConn {
    id: u64,
    sender: AgentSender,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    agents: BTreeMap<String, Vec<AgentConn>>,
    hosts: BTreeMap<String, String>,
}

/// Where a CONNECT to a host goes.
pub enum Route {
    /// To this agent of `cluster`.
    Agent {
        /// The cluster.
        cluster: String,
        /// Its newest agent connection.
        sender: AgentSender,
    },
    /// The host belongs to `cluster`, whose agent is not connected.
    Disconnected {
        /// The cluster.
        cluster: String,
    },
    /// No cluster is known for the host.
    Unknown,
}

/// Connected agents. Several agents of one cluster may be connected (replicas, or an old
/// connection not yet noticed dead); the newest one carries new streams. A connection is
/// removed as soon as its task sees it end.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

impl Registry {
    /// Registers an authenticated agent; returns its id for [`Registry::remove`]. The grant's
    /// host now routes to its cluster.
    pub fn add(&self, grant: &AgentGrant, sender: AgentSender) -> u64 {
        let Ok(mut inner) = self.inner.lock() else {
            return 0;
        };
        inner.next_id += 1;
        let id = inner.next_id;
        inner.hosts.retain(|_, c| c != &grant.cluster);
        inner
            .hosts
            .insert(grant.host.clone(), grant.cluster.clone());
        inner
            .agents
            .entry(grant.cluster.clone())
            .or_default()
            .push(AgentConn { id, sender });
        id
    }

    /// Forgets agent `id` of `cluster` (its connection ended). The host keeps routing to the
    /// cluster, so CONNECTs to it say `TunnelDisconnected`.
    pub fn remove(&self, cluster: &str, id: u64) {
        if let Ok(mut inner) = self.inner.lock()
            && let Some(conns) = inner.agents.get_mut(cluster)
        {
            conns.retain(|c| c.id != id);
        }
    }

    /// Live agent connections of `cluster`.
    pub fn connected(&self, cluster: &str) -> usize {
        self.inner
            .lock()
            .ok()
            .and_then(|i| i.agents.get(cluster).map(Vec::len))
            .unwrap_or(0)
    }

    /// The route of a CONNECT to `host` (lower case): the cluster whose agent registered the
    /// host, else the cluster named by a default tunnel host (`<cluster>.cluster.internal`).
    pub fn route(&self, host: &str) -> Route {
        let Ok(inner) = self.inner.lock() else {
            return Route::Unknown;
        };
        let cluster = inner.hosts.get(host).cloned().or_else(|| {
            host.strip_suffix(protocol::TUNNEL_DOMAIN)
                .and_then(|c| c.strip_suffix('.'))
                .filter(|c| protocol::valid_cluster_name(c))
                .map(str::to_string)
        });
        let Some(cluster) = cluster else {
            return Route::Unknown;
        };
        let live = inner.agents.get(&cluster).and_then(|conns| conns.last());
        match live {
            Some(c) => Route::Agent {
                sender: c.sender.clone(),
                cluster,
            },
            None => Route::Disconnected { cluster },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_disconnected_hosts() {
        let r = Registry::default();
        assert!(matches!(r.route("example.com"), Route::Unknown));
        assert!(matches!(
            r.route("member1.cluster.internal"),
            Route::Disconnected { cluster } if cluster == "member1"
        ));
        assert!(matches!(r.route("Bad_.cluster.internal"), Route::Unknown));
        assert_eq!(r.connected("member1"), 0);
    }
}
