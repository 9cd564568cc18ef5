//! Planning propagation of one federated resource: pure functions, no I/O, no clock.
//!
//! Input is what fetch observed (the federated object, the tenant's clusters, the member objects),
//! output is data: the member writes to make ([`MemberAction`]) and what status to report. A
//! resource in sync plans zero actions, also when planned from scratch after a restart: everything
//! needed is on the member objects (the content hash and the keys our annotation rules set).

pub mod desired;
pub mod overrides;
pub mod placement;

use std::collections::BTreeMap;

use cellfed_api::FederatedResource;
use cellfed_api::well_known::{
    ADOPTED_ANNOTATION, MANAGED_LABEL, MANAGED_LABEL_VALUE, ORPHAN_ANNOTATION,
    ORPHAN_ANNOTATION_VALUE, PropagationStatus,
};
use serde_json::{Value, json};

use desired::{FEDERATED_GENERATION_ANNOTATION, member_hash};

/// A member cluster as planning sees it (already limited to the resource's tenant by fetch).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterView {
    /// KubeFedCluster name (`member1`, or `<cell>.<namespace>` for a cell's derived cluster).
    pub name: String,
    /// KubeFedCluster labels (for clusterSelector).
    pub labels: BTreeMap<String, String>,
    /// Ready condition is True.
    pub ready: bool,
    /// For a cell's derived cluster: the member namespace its objects live in.
    pub member_namespace: Option<String>,
}

/// The type being propagated (from the FederatedTypeConfig).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetType {
    /// `apps/v1`.
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// `spec.propagatedAnnotations` wildcard patterns; empty = KubeFed behaviour.
    pub propagated_annotations: Vec<String>,
    /// Copy the member's `status` into `remoteStatus`.
    pub collect_status: bool,
}

/// Everything plan needs for one federated resource.
pub struct PlanInput<'a> {
    /// The federated resource (v1beta1, the storage version).
    pub federated: &'a FederatedResource,
    /// The propagated type.
    pub target: &'a TargetType,
    /// Candidate clusters (tenant-filtered).
    pub clusters: &'a [ClusterView],
    /// Member objects observed, by cluster; absent = not present in that member.
    pub members: &'a BTreeMap<String, Value>,
    /// `KubeFedConfig` `syncController.adoptResources: Enabled`.
    pub adopt_resources: bool,
}

/// One write to a member.
#[derive(Clone, Debug, PartialEq)]
pub enum MemberAction {
    /// Create `object` in `cluster`.
    Create {
        /// Target cluster.
        cluster: String,
        /// The complete desired object.
        object: Value,
    },
    /// Replace the member object with `object` (carrying the member's resourceVersion).
    Update {
        /// Target cluster.
        cluster: String,
        /// The complete desired object with retained member fields.
        object: Value,
    },
    /// Delete the member object.
    Delete {
        /// Target cluster.
        cluster: String,
        /// Its namespace (None for cluster-scoped kinds).
        namespace: Option<String>,
        /// Its name.
        name: String,
    },
}

impl MemberAction {
    /// The cluster this action writes to.
    pub fn cluster(&self) -> &str {
        match self {
            Self::Create { cluster, .. }
            | Self::Update { cluster, .. }
            | Self::Delete { cluster, .. } => cluster,
        }
    }
}

/// Per-cluster outcome known at plan time (apply may replace it with CreationFailed etc.).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterPlanStatus {
    /// Cluster name.
    pub cluster: String,
    /// None = in sync (KubeFed reports an empty status then: "OK" in cellfed's column).
    pub status: Option<PropagationStatus>,
    /// Federated generation whose content the member carries.
    pub generation: Option<i64>,
    /// Member `status` when status collection is on.
    pub remote_status: Option<Value>,
    /// A sentence for the condition message when `status` is an error.
    pub message: Option<String>,
}

/// The plan for one resource.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Member writes, in cluster order.
    pub actions: Vec<MemberAction>,
    /// Status per placed cluster (and per cluster being cleaned up).
    pub clusters: Vec<ClusterPlanStatus>,
    /// Placed clusters whose member carries the current content.
    pub updated: usize,
    /// Placed clusters.
    pub placed: usize,
}

/// Why a resource cannot be planned at all (a bad spec: report it, wait for a change).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// `spec.template` is missing.
    #[error("spec.template is missing: set the {0} to propagate")]
    MissingTemplate(String),
    /// The placement cannot be computed.
    #[error("spec.placement: {0}")]
    Placement(String),
}

/// Plans one reconcile of a live (not deleted) federated resource.
pub fn plan(input: &PlanInput<'_>) -> Result<Plan, Error> {
    let fed = input.federated;
    let spec = &fed.spec;
    let template = spec
        .template
        .as_ref()
        .ok_or_else(|| Error::MissingTemplate(input.target.kind.clone()))?;
    let placed = placement::placed(spec, input.clusters).map_err(Error::Placement)?;
    let name = fed.metadata.name.clone().unwrap_or_default();
    let generation = fed.metadata.generation.unwrap_or(0);
    let mut out = Plan {
        actions: Vec::new(),
        clusters: Vec::new(),
        updated: 0,
        placed: placed.len(),
    };

    for cluster in input.clusters {
        let member = input.members.get(&cluster.name);
        let is_placed = placed.contains(&cluster.name);
        let in_mask = placement::in_mask(spec, &cluster.name);
        let namespace = cluster
            .member_namespace
            .clone()
            .or_else(|| fed.metadata.namespace.clone());
        let managed = member.is_some_and(is_managed);
        if !is_placed {
            // Cleanup of a cluster the resource left: only our own objects, only inside the mask.
            if let Some(m) = member.filter(|_| managed) {
                if !in_mask {
                    out.clusters.push(status_of(
                        cluster,
                        Some(PropagationStatus::MaskedOut),
                        m,
                        input.target,
                        None,
                    ));
                } else if !cluster.ready {
                    out.clusters.push(status_of(
                        cluster,
                        Some(PropagationStatus::ClusterNotReady),
                        m,
                        input.target,
                        None,
                    ));
                } else if !orphaned(fed) {
                    out.actions.push(MemberAction::Delete {
                        cluster: cluster.name.clone(),
                        namespace: namespace.filter(|_| input.target.namespaced),
                        name: name.clone(),
                    });
                }
            }
            continue;
        }
        let overrides = spec.overrides_for(&cluster.name);
        let mut wanted = match desired::build(
            template,
            overrides,
            input.target,
            &name,
            namespace.as_deref(),
        ) {
            Ok(obj) => obj,
            Err(why) => {
                out.clusters.push(ClusterPlanStatus {
                    cluster: cluster.name.clone(),
                    status: Some(PropagationStatus::ApplyOverridesFailed),
                    generation: member.and_then(member_generation),
                    remote_status: None,
                    message: Some(format!(
                        "cluster {}: {why}; fix spec.overrides[clusterName={}]",
                        cluster.name, cluster.name
                    )),
                });
                continue;
            }
        };
        desired::record_propagated(&mut wanted, &input.target.propagated_annotations);
        let current = member.is_some_and(|m| member_hash(m) == member_hash(&wanted));
        if current {
            out.updated += 1;
        }
        if !cluster.ready {
            out.clusters.push(match member {
                Some(m) => status_of(
                    cluster,
                    Some(PropagationStatus::ClusterNotReady),
                    m,
                    input.target,
                    None,
                ),
                None => bare(cluster, PropagationStatus::ClusterNotReady),
            });
            continue;
        }
        if let Some(m) = member {
            if m.pointer(&format!(
                "/metadata/labels/{}",
                MANAGED_LABEL.replace('/', "~1")
            ))
            .and_then(Value::as_str)
                == Some("false")
            {
                out.clusters.push(status_of(
                    cluster,
                    Some(PropagationStatus::ManagedLabelFalse),
                    m,
                    input.target,
                    None,
                ));
                continue;
            }
            if !managed && !input.adopt_resources {
                out.clusters.push(status_of(
                    cluster,
                    Some(PropagationStatus::AlreadyExists),
                    m,
                    input.target,
                    Some(format!(
                        "cluster {}: a {} {name} not created by federation already exists; delete it, or enable adoption (KubeFedConfig spec.syncController.adoptResources: Enabled)",
                        cluster.name, input.target.kind
                    )),
                ));
                continue;
            }
        }
        if !in_mask {
            let status = if current {
                None
            } else {
                Some(PropagationStatus::MaskedOut)
            };
            out.clusters.push(match member {
                Some(m) => status_of(cluster, status, m, input.target, None),
                None => ClusterPlanStatus {
                    status,
                    ..bare(cluster, PropagationStatus::MaskedOut)
                },
            });
            continue;
        }
        let override_keys = desired::override_annotation_keys(overrides);
        match member {
            None => {
                let mut obj = wanted;
                if let Some(ann) = desired::annotations_mut(&mut obj) {
                    ann.insert(
                        FEDERATED_GENERATION_ANNOTATION.into(),
                        json!(generation.to_string()),
                    );
                }
                out.actions.push(MemberAction::Create {
                    cluster: cluster.name.clone(),
                    object: obj,
                });
                out.updated += 1;
                out.clusters.push(ClusterPlanStatus {
                    cluster: cluster.name.clone(),
                    status: None,
                    generation: Some(generation),
                    remote_status: None,
                    message: None,
                });
            }
            Some(m) => {
                let mut obj = wanted;
                desired::merge_annotations(
                    &mut obj,
                    m,
                    &input.target.propagated_annotations,
                    &override_keys,
                );
                desired::retain(
                    &mut obj,
                    m,
                    &input.target.kind,
                    spec.retain_replicas.unwrap_or(false),
                );
                if !managed {
                    // Adoption: take the object over explicitly.
                    obj["metadata"]["annotations"][ADOPTED_ANNOTATION] = json!("true");
                }
                let in_sync =
                    current && managed && desired::is_subset(&without_bookkeeping(&obj), m);
                if in_sync {
                    out.clusters
                        .push(status_of(cluster, None, m, input.target, None));
                } else {
                    let gen_annotation = if current {
                        member_generation(m).unwrap_or(generation)
                    } else {
                        generation
                    };
                    obj["metadata"]["annotations"][FEDERATED_GENERATION_ANNOTATION] =
                        json!(gen_annotation.to_string());
                    if !current {
                        out.updated += 1;
                    }
                    out.actions.push(MemberAction::Update {
                        cluster: cluster.name.clone(),
                        object: obj,
                    });
                    out.clusters.push(ClusterPlanStatus {
                        cluster: cluster.name.clone(),
                        status: None,
                        generation: Some(gen_annotation),
                        remote_status: remote_status(m, input.target),
                        message: None,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Plans the deletion of the federated resource (its finalizer path): delete every member object
/// we manage in `clusters`, unless the resource is orphaning; not-ready clusters block (status
/// says so) so nothing is left behind silently.
pub fn plan_deletion(input: &PlanInput<'_>) -> Plan {
    let fed = input.federated;
    let name = fed.metadata.name.clone().unwrap_or_default();
    let mut out = Plan {
        actions: Vec::new(),
        clusters: Vec::new(),
        updated: 0,
        placed: 0,
    };
    if orphaned(fed) {
        return out;
    }
    for cluster in input.clusters {
        let Some(member) = input.members.get(&cluster.name).filter(|m| is_managed(m)) else {
            continue;
        };
        if !cluster.ready {
            out.clusters.push(status_of(
                cluster,
                Some(PropagationStatus::ClusterNotReady),
                member,
                input.target,
                None,
            ));
            continue;
        }
        let namespace = cluster
            .member_namespace
            .clone()
            .or_else(|| fed.metadata.namespace.clone());
        out.actions.push(MemberAction::Delete {
            cluster: cluster.name.clone(),
            namespace: namespace.filter(|_| input.target.namespaced),
            name: name.clone(),
        });
        out.clusters.push(status_of(
            cluster,
            Some(PropagationStatus::WaitingForRemoval),
            member,
            input.target,
            None,
        ));
    }
    out
}

/// Whether the member object carries `kubefed.io/managed: "true"`.
pub fn is_managed(member: &Value) -> bool {
    member
        .pointer("/metadata/labels")
        .and_then(|l| l.get(MANAGED_LABEL))
        .and_then(Value::as_str)
        == Some(MANAGED_LABEL_VALUE)
}

fn orphaned(fed: &FederatedResource) -> bool {
    fed.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ORPHAN_ANNOTATION))
        .map(String::as_str)
        == Some(ORPHAN_ANNOTATION_VALUE)
}

fn member_generation(member: &Value) -> Option<i64> {
    member
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(FEDERATED_GENERATION_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

fn remote_status(member: &Value, target: &TargetType) -> Option<Value> {
    target
        .collect_status
        .then(|| member.get("status").cloned())
        .flatten()
}

fn status_of(
    cluster: &ClusterView,
    status: Option<PropagationStatus>,
    member: &Value,
    target: &TargetType,
    message: Option<String>,
) -> ClusterPlanStatus {
    ClusterPlanStatus {
        cluster: cluster.name.clone(),
        status,
        generation: member_generation(member),
        remote_status: remote_status(member, target),
        message,
    }
}

fn bare(cluster: &ClusterView, status: PropagationStatus) -> ClusterPlanStatus {
    ClusterPlanStatus {
        cluster: cluster.name.clone(),
        status: Some(status),
        generation: None,
        remote_status: None,
        message: None,
    }
}

/// The desired object without what the member legitimately changes on its own (resourceVersion).
fn without_bookkeeping(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    o
}

#[cfg(test)]
mod tests;
