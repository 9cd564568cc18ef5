//! The I/O half of `cellfed member`: the write hook the apiserver calls (defaulting of built-ins,
//! Service ClusterIP/NodePort allocation with immutability), and the controller loop that moves
//! workload statuses forward with the pure simulator.
//!
//! Allocation holds no memory of its own: each Service write rebuilds the allocator from the
//! Services in the store, under a lock held until the write is stored, so dry-runs, no-ops and
//! failed writes can never leak an address or a port.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cellfed_apiserver::error::{ApiError, ApiResult, Cause};
use cellfed_apiserver::registry::Resource;
use cellfed_apiserver::registry::list::{ListQuery, list};
use cellfed_apiserver::registry::write::{Part, WriteOpts, update};
use cellfed_apiserver::{AppState, HeldUntilStored, ServeError, Server, WriteHook};
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::Mutex;

use super::{Allocator, FieldError, SimConfig, apply_defaults, simulate};

/// Member semantics for one server: its write hook (`ServerConfig::write_hook`) and the shape of
/// the cluster the simulator pretends to run.
#[derive(Debug, Default)]
pub struct Member {
    /// Simulated cluster shape.
    pub sim: SimConfig,
    /// Serialises Service allocations until they are stored.
    services: Arc<Mutex<()>>,
}

impl WriteHook for Member {
    fn admit<'a>(
        &'a self,
        state: &'a AppState,
        res: &'a Resource,
        live: Option<&'a Value>,
        obj: &'a mut Value,
    ) -> BoxFuture<'a, ApiResult<Option<HeldUntilStored>>> {
        Box::pin(self.admit(state, res, live, obj))
    }
}

impl Member {
    /// Member semantics for a cluster of `sim.nodes` nodes.
    pub fn new(sim: SimConfig) -> Self {
        Self {
            sim,
            services: Arc::default(),
        }
    }

    /// Defaults `obj` as kube-apiserver would and, for a Service, allocates what it needs
    /// (`live` = the stored object on update). Keep the returned guard until the write is stored.
    pub async fn admit(
        &self,
        state: &AppState,
        res: &Resource,
        live: Option<&Value>,
        obj: &mut Value,
    ) -> ApiResult<Option<HeldUntilStored>> {
        apply_defaults(&res.api_version(), &res.kind, obj);
        if !(res.group.is_empty() && res.kind == "Service") {
            return Ok(None);
        }
        let guard = self.services.clone().lock_owned().await;
        let services = list(state, res, None, &ListQuery::parse(res, &HashMap::new())?).await?;
        let others: Vec<Value> = services
            .items
            .into_iter()
            .filter(|s| {
                live.is_none_or(|l| s.pointer("/metadata/uid") != l.pointer("/metadata/uid"))
            })
            .collect();
        let mut allocator = Allocator::from_existing(&others);
        if let Err(errors) = allocator.admit_service(live, obj) {
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            return Err(ApiError::invalid(
                "",
                "Service",
                &name,
                errors.iter().map(cause).collect(),
            ));
        }
        Ok(Some(Box::new(guard)))
    }
}

fn cause(e: &FieldError) -> Cause {
    let v = e.to_cause();
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    Cause {
        reason: s("reason"),
        message: s("message"),
        field: s("field"),
    }
}

/// Serves `server` with the simulated workload controllers of `member` (the hook the server was
/// configured with) running next to it, until `shutdown` resolves; the simulator is stopped
/// before this returns, so nothing of the member uses the store any more.
pub async fn run_until(
    server: Server,
    member: Arc<Member>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let simulator = tokio::spawn(run_simulator(server.state().clone(), member));
    let served = server.run_until(shutdown).await;
    simulator.abort();
    let _ = simulator.await;
    served
}

/// The workload kinds the simulator moves forward.
const SIMULATED: [(&str, &str, &str); 5] = [
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("apps", "v1", "daemonsets"),
    ("apps", "v1", "replicasets"),
    ("batch", "v1", "jobs"),
];

/// The simulated workload controllers, driven by the store's watch like real ones: every
/// Deployment, StatefulSet, DaemonSet, ReplicaSet and Job whose status (or Deployment revision) is
/// behind gets the writes a real control plane would make, when it is written (the object's own
/// event) — one object per change, so a member holding thousands of workloads does no work for
/// a change to another object. A broken watch (compaction, a slow reader) lists again. Runs
/// until the task is dropped.
pub async fn run_simulator(state: AppState, member: Arc<Member>) {
    let opts = WriteOpts {
        field_manager: "cellfed-member-simulator".into(),
        ..Default::default()
    };
    let resources: Vec<Resource> = SIMULATED
        .iter()
        .filter_map(|(g, v, p)| state.registry.find(g, v, p))
        .map(|r| Resource::clone(&r))
        .collect();
    loop {
        if let Err(e) = simulate_from_now(&state, &member, &resources, &opts).await {
            tracing::debug!(error = %e, "member simulator: watching again");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Steps every simulated object once, then each one written after, until the watch ends.
async fn simulate_from_now(
    state: &AppState,
    member: &Member,
    resources: &[Resource],
    opts: &WriteOpts,
) -> ApiResult<()> {
    let from = state.store.current_revision().await?;
    let mut events = state.store.watch("/registry/", from).await?;
    for res in resources {
        let listed = list(state, res, None, &ListQuery::parse(res, &HashMap::new())?).await?;
        for obj in listed.items {
            step(state, res, &obj, &member.sim, opts).await;
        }
    }
    while let Some(event) = futures::StreamExt::next(&mut events).await {
        let event = event?;
        if event.kind == cellfed_store::EventKind::Deleted {
            continue;
        }
        let Some(res) = resources
            .iter()
            .find(|r| event.kv.key.starts_with(&r.prefix()))
        else {
            continue;
        };
        if let Ok(obj) = state.decode(&event.kv) {
            step(state, res, &obj, &member.sim, opts).await;
        }
    }
    Ok(())
}

/// One object's simulated writes; conflicts are left for the next round.
async fn step(state: &AppState, res: &Resource, obj: &Value, sim: &SimConfig, opts: &WriteOpts) {
    let now = cellfed_apiserver::registry::meta::now();
    let writes = simulate(&res.api_version(), &res.kind, obj, &now, sim);
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut current = obj.clone();
    if let Some(annotations) = writes.annotations {
        current["metadata"]["annotations"] = Value::Object(annotations);
        match update(
            state,
            res,
            ns.as_deref(),
            &name,
            current.clone(),
            Part::Main,
            opts,
        )
        .await
        {
            Ok(o) => current = o.object,
            Err(_) => return,
        }
    }
    if let Some(status) = writes.status {
        current["status"] = status;
        let _ = update(
            state,
            res,
            ns.as_deref(),
            &name,
            current,
            Part::Status,
            opts,
        )
        .await;
    }
}
