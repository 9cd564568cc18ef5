//! apply: the planned member writes, all clusters at once, each in its own task with its own
//! timeout. The reconcile waits for them only up to [`PATIENCE`]: a write to a slow or hung
//! member goes on in the background (that member is left alone by later reconciles until it
//! ends, and its end reconciles the resource again), so one member never holds back the
//! resource's other members or the next change. Every write is recorded in the member's cache
//! so the next reconcile plans from it, and only the leader writes. Each write records a Kubernetes
//! Event on the federated resource when it starts and another when it fails ([`crate::events`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use cellfed_api::FederatedResource;
use cellfed_api::well_known::{
    FEDERATED_RESOURCE_ANNOTATION, FEDERATED_RESOURCE_UID_ANNOTATION, MANAGED_LABEL,
    MANAGED_LABEL_VALUE, PropagationStatus,
};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions;
use kube::ResourceExt as _;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions,
    PropagationPolicy,
};
use kube::core::ApiResource;
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};

use crate::context::TypeContext;
use crate::events::{self, Recorder};
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
                .and_then(|m| m.no_client.as_ref().map(|n| n.message.clone()))
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
        let (note, _) = events::starting(action, &ctx.target.kind);
        let regarding = reference(ctx, fed);
        ctx.shared
            .events
            .record(regarding.clone(), ctx.component.clone(), note);
        let write = Write {
            client,
            resource: ctx.target_resource.clone(),
            namespaced: ctx.target.namespaced,
            cache,
            action: action.clone(),
            events: ctx.shared.events.clone(),
            regarding,
            component: ctx.component.clone(),
            kind: ctx.target.kind.clone(),
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
            if let Err((_, why)) = &outcome {
                let note = events::failed(&write.action, &write.kind, why);
                write
                    .events
                    .record(write.regarding.clone(), write.component.clone(), note);
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

/// The federated resource as an Event's `involvedObject`.
fn reference(ctx: &TypeContext, fed: &FederatedResource) -> ObjectReference {
    ObjectReference {
        api_version: Some(ctx.federated.api_version.clone()),
        kind: Some(ctx.federated.kind.clone()),
        name: fed.metadata.name.clone(),
        namespace: fed.metadata.namespace.clone(),
        uid: fed.metadata.uid.clone(),
        resource_version: fed.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// The work-queue key of `fed`.
pub fn resource_ref(ctx: &TypeContext, fed: &FederatedResource) -> ObjectRef<FederatedResource> {
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
        }
        | MemberAction::RemoveManagedLabel {
            namespace, name, ..
        } => (namespace.clone().unwrap_or_default(), name.clone()),
    }
}

fn failed_status(action: &MemberAction) -> PropagationStatus {
    match action {
        MemberAction::Create { .. } => PropagationStatus::CreationFailed,
        MemberAction::Update { .. } => PropagationStatus::UpdateFailed,
        MemberAction::Delete { .. } => PropagationStatus::DeletionFailed,
        MemberAction::RemoveManagedLabel { .. } => PropagationStatus::LabelRemovalFailed,
    }
}

/// DeleteParams of a member delete: the `kubefed.io/deleteoption` annotation's, or background
/// propagation (what the server does by default for current API groups).
fn delete_params(options: Option<&DeleteOptions>) -> DeleteParams {
    let Some(o) = options else {
        return DeleteParams::background();
    };
    DeleteParams {
        dry_run: false,
        grace_period_seconds: o.grace_period_seconds.and_then(|g| u32::try_from(g).ok()),
        propagation_policy: o.propagation_policy.as_deref().and_then(|p| match p {
            "Orphan" => Some(PropagationPolicy::Orphan),
            "Foreground" => Some(PropagationPolicy::Foreground),
            "Background" => Some(PropagationPolicy::Background),
            _ => None,
        }),
        preconditions: o.preconditions.as_ref().map(|p| Preconditions {
            resource_version: p.resource_version.clone(),
            uid: p.uid.clone(),
        }),
    }
}

/// One member write with what it needs, owned (it runs in its own task).
struct Write {
    client: kube::Client,
    resource: ApiResource,
    namespaced: bool,
    cache: Option<Arc<MemberCache>>,
    action: MemberAction,
    /// Where a failure is recorded as an Event.
    events: Arc<Recorder>,
    regarding: ObjectReference,
    component: String,
    /// The target kind, for the Event message.
    kind: String,
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
                namespace,
                name,
                options,
                ..
            } => {
                let ns = namespace.as_deref().unwrap_or_default();
                let deleted_version = self.cached_version(ns, name);
                // the object planning judged ours, not one put there since under the same name
                let mut params = delete_params(options.as_ref());
                if params.preconditions.is_none() {
                    params.preconditions = self.cached_uid(ns, name).map(|uid| Preconditions {
                        uid: Some(uid),
                        resource_version: None,
                    });
                }
                match self.api(namespace.as_deref()).delete(name, &params).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err((PropagationStatus::DeletionFailed, e.to_string())),
                }
                if let Some(c) = &self.cache {
                    c.wrote(ns, name, None, deleted_version.as_deref());
                }
                Ok(())
            }
            MemberAction::RemoveManagedLabel {
                namespace, name, ..
            } => {
                let ns = namespace.as_deref().unwrap_or_default();
                let previous = self.cached_version(ns, name);
                // KubeFed's merge patch: only the label goes (and cellfed's owner annotations, so
                // the released object can be adopted by another resource), nothing else
                let patch = json!({"metadata": {
                    "labels": {MANAGED_LABEL: null},
                    "annotations": {
                        FEDERATED_RESOURCE_ANNOTATION: null,
                        FEDERATED_RESOURCE_UID_ANNOTATION: null,
                    },
                }});
                match self
                    .api(namespace.as_deref())
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err((PropagationStatus::LabelRemovalFailed, e.to_string())),
                }
                // it leaves the managed-objects watch: for this controller it is gone
                if let Some(c) = &self.cache {
                    c.wrote(ns, name, None, previous.as_deref());
                }
                Ok(())
            }
        }
    }

    /// uid of the cached member object.
    fn cached_uid(&self, namespace: &str, name: &str) -> Option<String> {
        self.cache
            .as_ref()
            .and_then(|c| c.get(namespace, name))
            .and_then(|o| o.pointer("/metadata/uid")?.as_str().map(str::to_string))
    }

    /// resourceVersion of the cached member object.
    fn cached_version(&self, namespace: &str, name: &str) -> Option<String> {
        self.cache
            .as_ref()
            .and_then(|c| c.get(namespace, name))
            .and_then(|o| {
                o.pointer("/metadata/resourceVersion")?
                    .as_str()
                    .map(str::to_string)
            })
    }
}

/// Namespaced objects need their namespace in the member (KubeFed expects a FederatedNamespace;
/// cellfed creates a missing one, so cells' member namespaces just work). It is labelled
/// `kubefed.io/managed: "true"`, so a FederatedNamespace of that name takes it over as its own.
async fn ensure_namespace(client: &kube::Client, ns: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    // network: GET, then create when missing
    if matches!(api.get_opt(ns).await, Ok(Some(_))) {
        return;
    }
    let obj: Value = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": {MANAGED_LABEL: MANAGED_LABEL_VALUE}}});
    if let Ok(obj) = serde_json::from_value(obj) {
        let _ = api.create(&PostParams::default(), &obj).await;
    }
}
