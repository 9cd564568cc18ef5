//! apply: the planned member writes, all clusters at once, each with its own timeout so one hung
//! member never holds the others; every write is recorded in the
//! member's cache so the next reconcile plans from it, and only the leader writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cellfed_api::well_known::PropagationStatus;
use futures::StreamExt as _;
use kube::ResourceExt as _;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::ApiResource;
use serde_json::{Value, json};

use crate::context::TypeContext;
use crate::member_cache::MemberCache;
use crate::members::Member;
use crate::plan::MemberAction;

/// How long one member write may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Failed writes by cluster: the propagation status to report and why.
pub type Failures = BTreeMap<String, (PropagationStatus, String)>;

/// Runs `actions`; returns the failures by cluster.
pub async fn apply(
    ctx: &TypeContext,
    visible: &[Arc<Member>],
    actions: &[MemberAction],
) -> Failures {
    // every cluster at once: one slow member never delays the writes to the others
    let parallel = actions.len().max(1);
    let results = futures::stream::iter(actions.iter().cloned())
        .map(|action: MemberAction| {
            let member = visible.iter().find(|m| m.name == action.cluster()).cloned();
            async move {
                let cluster = action.cluster().to_string();
                let Some(client) = member.as_ref().and_then(|m| m.client.clone()) else {
                    let why = member
                        .and_then(|m| m.client_error.clone())
                        .unwrap_or_else(|| "no client for the cluster".into());
                    return Some((cluster, (PropagationStatus::ClientRetrievalFailed, why)));
                };
                if !ctx.shared.leadership.may_write() {
                    return None; // not the leader (any more): another replica writes
                }
                let cache = ctx.cache(&cluster);
                ctx.shared.metrics.member_write(&cluster);
                // network: one member write
                let write = write_member(client, ctx, cache.as_deref(), &action);
                let outcome = match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                    Ok(r) => r,
                    Err(_) => Err((
                        failed_status(&action),
                        format!("the member did not answer within {WRITE_TIMEOUT:?}"),
                    )),
                };
                outcome.err().map(|e| (cluster, e))
            }
        })
        .buffer_unordered(parallel)
        .collect::<Vec<_>>()
        .await;
    results.into_iter().flatten().collect()
}

fn failed_status(action: &MemberAction) -> PropagationStatus {
    match action {
        MemberAction::Create { .. } => PropagationStatus::CreationFailed,
        MemberAction::Update { .. } => PropagationStatus::UpdateFailed,
        MemberAction::Delete { .. } => PropagationStatus::DeletionFailed,
    }
}

fn api_for(client: &kube::Client, ar: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace.filter(|ns| !ns.is_empty()) {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

async fn write_member(
    client: kube::Client,
    ctx: &TypeContext,
    cache: Option<&MemberCache>,
    action: &MemberAction,
) -> Result<(), (PropagationStatus, String)> {
    let ar = &ctx.target_resource;
    let namespaced = ctx.target.namespaced;
    let record = |obj: &DynamicObject| {
        if let Some(c) = cache {
            let mut obj = obj.clone();
            obj.managed_fields_mut().clear();
            c.wrote(
                &obj.namespace().unwrap_or_default(),
                &obj.name_any(),
                serde_json::to_value(&obj).ok(),
                None,
            );
        }
    };
    match action {
        MemberAction::Create { object, .. } => {
            let obj: DynamicObject = serde_json::from_value(object.clone())
                .map_err(|e| (PropagationStatus::ComputeResourceFailed, e.to_string()))?;
            let ns = obj.metadata.namespace.clone().filter(|_| namespaced);
            if let Some(ns) = &ns {
                ensure_namespace(&client, ns).await;
            }
            let created = api_for(&client, ar, ns.as_deref())
                .create(&PostParams::default(), &obj)
                .await
                .map_err(|e| (PropagationStatus::CreationFailed, e.to_string()))?;
            record(&created);
            Ok(())
        }
        MemberAction::Update { object, .. } => {
            let obj: DynamicObject = serde_json::from_value(object.clone())
                .map_err(|e| (PropagationStatus::ComputeResourceFailed, e.to_string()))?;
            let ns = obj.metadata.namespace.clone().filter(|_| namespaced);
            let updated = api_for(&client, ar, ns.as_deref())
                .replace(&obj.name_any(), &PostParams::default(), &obj)
                .await
                .map_err(|e| (PropagationStatus::UpdateFailed, e.to_string()))?;
            record(&updated);
            Ok(())
        }
        MemberAction::Delete {
            namespace, name, ..
        } => {
            let ns = namespace.as_deref().unwrap_or_default();
            let deleted_version = cache.and_then(|c| c.get(ns, name)).and_then(|o| {
                o.pointer("/metadata/resourceVersion")?
                    .as_str()
                    .map(str::to_string)
            });
            let outcome = api_for(&client, ar, namespace.as_deref())
                .delete(name, &DeleteParams::background())
                .await;
            match outcome {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err((PropagationStatus::DeletionFailed, e.to_string())),
            }
            if let Some(c) = cache {
                c.wrote(ns, name, None, deleted_version.as_deref());
            }
            Ok(())
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
