//! apply: the planned member writes, all clusters at once, each in its own task with its own
//! timeout. The reconcile waits for them only up to [`PATIENCE`]: a write to a slow or hung
//! member goes on in the background (that member is left alone by later reconciles until it
//! ends, and its end reconciles the resource again), so one member never holds back the
//! resource's other members or the next change. Every write is recorded in the member's cache
//! so the next reconcile plans from it, and only the leader writes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use cellfed_api::FederatedResource;
use cellfed_api::well_known::PropagationStatus;
use kube::ResourceExt as _;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::ApiResource;
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};

use crate::context::TypeContext;
use crate::member_cache::MemberCache;
use crate::members::Member;
use crate::plan::MemberAction;

/// How long one member write may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reconcile waits for its member writes before leaving the slow ones running.
pub const PATIENCE: Duration = Duration::from_secs(1);

/// Failed writes by cluster: the propagation status to report and why.
pub type Failures = BTreeMap<String, (PropagationStatus, String)>;

/// What the writes of one reconcile came to.
#[derive(Debug, Default)]
pub struct Applied {
    /// Writes that failed, by cluster.
    pub failures: Failures,
    /// Clusters whose write is still under way.
    pub in_flight: BTreeSet<String>,
}

/// Runs `actions` for `fed`.
pub async fn apply(
    ctx: &Arc<TypeContext>,
    fed: &FederatedResource,
    visible: &[Arc<Member>],
    actions: &[MemberAction],
) -> Applied {
    let mut out = Applied::default();
    let mut tasks = Vec::new();
    for action in actions {
        let cluster = action.cluster().to_string();
        let member = visible.iter().find(|m| m.name == cluster);
        let Some(client) = member.and_then(|m| m.client.clone()) else {
            let why = member
                .and_then(|m| m.client_error.clone())
                .unwrap_or_else(|| "no client for the cluster".into());
            out.failures
                .insert(cluster, (PropagationStatus::ClientRetrievalFailed, why));
            continue;
        };
        if !ctx.shared.leadership.may_write() {
            continue; // not the leader (any more): another replica writes
        }
        let cache = ctx.cache(&cluster);
        let (ns, name) = target_of(action);
        if cache.as_ref().is_some_and(|c| !c.begin_write(&ns, &name)) {
            out.in_flight.insert(cluster);
            continue;
        }
        ctx.shared.metrics.member_write(&cluster);
        let write = Write {
            client,
            resource: ctx.target_resource.clone(),
            namespaced: ctx.target.namespaced,
            cache,
            action: action.clone(),
        };
        // network: one member write, in its own task
        let task = tokio::spawn(async move {
            let outcome = match tokio::time::timeout(WRITE_TIMEOUT, write.run()).await {
                Ok(r) => r,
                Err(_) => Err((
                    failed_status(&write.action),
                    format!("the member did not answer within {WRITE_TIMEOUT:?}"),
                )),
            };
            if let Some(c) = &write.cache {
                c.end_write(&ns, &name);
            }
            outcome
        });
        tasks.push((cluster, failed_status(action), task));
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    for (cluster, failed, mut task) in tasks {
        match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                out.failures.insert(cluster, e);
            }
            Ok(Err(e)) => {
                out.failures.insert(cluster, (failed, e.to_string()));
            }
            Err(_) => {
                // the member is slow: let the write finish on its own, then look again
                out.in_flight.insert(cluster);
                let again = resource_ref(ctx, fed);
                let requeue = ctx.requeue.clone();
                tokio::spawn(async move {
                    let _ = task.await;
                    let _ = requeue.send(again);
                });
            }
        }
    }
    out
}

fn resource_ref(ctx: &TypeContext, fed: &FederatedResource) -> ObjectRef<FederatedResource> {
    let r = ObjectRef::new_with(&fed.name_any(), ctx.federated.clone());
    match fed.namespace() {
        Some(ns) => r.within(&ns),
        None => r,
    }
}

/// (namespace, name) of the member object an action writes ("" for cluster-scoped kinds).
fn target_of(action: &MemberAction) -> (String, String) {
    match action {
        MemberAction::Create { object, .. } | MemberAction::Update { object, .. } => {
            let meta = |k: &str| {
                object
                    .pointer(&format!("/metadata/{k}"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            (meta("namespace"), meta("name"))
        }
        MemberAction::Delete {
            namespace, name, ..
        } => (namespace.clone().unwrap_or_default(), name.clone()),
    }
}

fn failed_status(action: &MemberAction) -> PropagationStatus {
    match action {
        MemberAction::Create { .. } => PropagationStatus::CreationFailed,
        MemberAction::Update { .. } => PropagationStatus::UpdateFailed,
        MemberAction::Delete { .. } => PropagationStatus::DeletionFailed,
    }
}

/// One member write with what it needs, owned (it runs in its own task).
struct Write {
    client: kube::Client,
    resource: ApiResource,
    namespaced: bool,
    cache: Option<Arc<MemberCache>>,
    action: MemberAction,
}

impl Write {
    fn api(&self, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace.filter(|ns| !ns.is_empty() && self.namespaced) {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &self.resource),
            None => Api::all_with(self.client.clone(), &self.resource),
        }
    }

    /// Remembers what the member returned until its watch delivers it.
    fn record(&self, obj: &DynamicObject) {
        if let Some(c) = &self.cache {
            let mut obj = obj.clone();
            obj.managed_fields_mut().clear();
            c.wrote(
                &obj.namespace().unwrap_or_default(),
                &obj.name_any(),
                serde_json::to_value(&obj).ok(),
                None,
            );
        }
    }

    async fn run(&self) -> Result<(), (PropagationStatus, String)> {
        match &self.action {
            MemberAction::Create { object, .. } => {
                let obj: DynamicObject = serde_json::from_value(object.clone())
                    .map_err(|e| (PropagationStatus::ComputeResourceFailed, e.to_string()))?;
                let ns = obj.metadata.namespace.clone().filter(|_| self.namespaced);
                if let Some(ns) = &ns {
                    ensure_namespace(&self.client, ns).await;
                }
                let created = self
                    .api(ns.as_deref())
                    .create(&PostParams::default(), &obj)
                    .await
                    .map_err(|e| (PropagationStatus::CreationFailed, e.to_string()))?;
                self.record(&created);
                Ok(())
            }
            MemberAction::Update { object, .. } => {
                let obj: DynamicObject = serde_json::from_value(object.clone())
                    .map_err(|e| (PropagationStatus::ComputeResourceFailed, e.to_string()))?;
                let ns = obj.metadata.namespace.clone();
                let updated = self
                    .api(ns.as_deref())
                    .replace(&obj.name_any(), &PostParams::default(), &obj)
                    .await
                    .map_err(|e| (PropagationStatus::UpdateFailed, e.to_string()))?;
                self.record(&updated);
                Ok(())
            }
            MemberAction::Delete {
                namespace, name, ..
            } => {
                let ns = namespace.as_deref().unwrap_or_default();
                let deleted_version =
                    self.cache
                        .as_ref()
                        .and_then(|c| c.get(ns, name))
                        .and_then(|o| {
                            o.pointer("/metadata/resourceVersion")?
                                .as_str()
                                .map(str::to_string)
                        });
                match self
                    .api(namespace.as_deref())
                    .delete(name, &DeleteParams::background())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err((PropagationStatus::DeletionFailed, e.to_string())),
                }
                if let Some(c) = &self.cache {
                    c.wrote(ns, name, None, deleted_version.as_deref());
                }
                Ok(())
            }
        }
    }
}

/// Namespaced objects need their namespace in the member (KubeFed expects a FederatedNamespace;
/// cellfed creates a missing one, so cells' member namespaces just work).
async fn ensure_namespace(client: &kube::Client, ns: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    // network: GET, then create when missing
    if matches!(api.get_opt(ns).await, Ok(Some(_))) {
        return;
    }
    let obj: Value = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    if let Ok(obj) = serde_json::from_value(obj) {
        let _ = api.create(&PostParams::default(), &obj).await;
    }
}
