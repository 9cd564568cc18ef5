//! Planning propagation of one federated resource: pure functions, no I/O, no clock.
//!
//! Input is what fetch observed (the federated object, the tenant's clusters, the member objects),
//! output is data: the member writes to make ([`MemberAction`]) and what status to report. A
//! resource in sync plans zero actions, also when planned from scratch after a restart: everything
//! needed is on the member objects (the content hash and the keys our annotation rules set).
//!
//! Every object written carries its owner, `cellfed.io/federated-resource` ([`owner_of`]) and
//! `cellfed.io/federated-resource-uid`. A member object whose owner annotation names another
//! federated resource is never updated, deleted or unlabelled: where this resource is placed its
//! status reads `ManagedByAnotherResource`. A managed object without the annotation (written
//! before cellfed recorded owners) is ours, and the next plan stamps it; an unmanaged one is
//! adopted or not as `adoptResources` says, as in KubeFed.

pub mod desired;
pub mod overrides;
pub mod placement;
pub mod schedule;

use std::collections::{BTreeMap, BTreeSet};

use cellfed_api::FederatedResource;
use cellfed_api::federated::v1beta1::FederatedSpec;
use cellfed_api::well_known::{
    ADOPTED_ANNOTATION, DELETE_OPTION_ANNOTATION, FEDERATED_RESOURCE_ANNOTATION,
    FEDERATED_RESOURCE_UID_ANNOTATION, MANAGED_LABEL, MANAGED_LABEL_VALUE, ORPHAN_ANNOTATION,
    ORPHAN_ANNOTATION_VALUE, PropagationStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions;
use serde_json::{Map, Value, json};

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
    /// The member's API endpoint, when known: clusters with the same one (a cell's derived
    /// cluster and its base cluster) reach the same member objects.
    pub endpoint: Option<String>,
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

impl TargetType {
    /// Whether the target is the core `Namespace` (its federated type, FederatedNamespace, lives
    /// in the namespace it federates).
    pub fn is_namespace(&self) -> bool {
        self.api_version == "v1" && self.kind == "Namespace"
    }
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
    /// Spec of the FederatedNamespace of the resource's namespace, for a namespaced target type;
    /// None when the namespace has none (the resource's placement then holds verbatim).
    pub namespace_placement: Option<&'a FederatedSpec>,
    /// For a FederatedNamespace: the uid of the host's own Namespace it lives in. A member object
    /// with this uid is that very namespace (the host joined as a member): it is never deleted,
    /// only unlabelled (KubeFed's `IsNamespaceInHostCluster`).
    pub host_uid: Option<&'a str>,
    /// The KubeFedClusters the resource's tenant may not use, with why as a predicate of the
    /// cluster ("belongs to another tenant …"; nothing else of them is known to planning): a
    /// placement naming one says `TenantMismatch`, not `ClusterNotFound`.
    pub other_tenants_clusters: &'a BTreeMap<String, String>,
    /// The resource as owner of member objects, the value of `cellfed.io/federated-resource`
    /// ([`owner_of`]); a member object naming another owner is never written or deleted.
    pub owner: &'a str,
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
        /// `kubefed.io/deleteoption` of the federated resource being deleted (None: background
        /// propagation, the server's default for current API groups).
        options: Option<DeleteOptions>,
    },
    /// Remove `kubefed.io/managed` from the member object and leave it in place (orphaning, or
    /// the host's own namespace).
    RemoveManagedLabel {
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
            | Self::Delete { cluster, .. }
            | Self::RemoveManagedLabel { cluster, .. } => cluster,
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
    /// The placement cannot be computed.
    #[error("spec.placement: {0}")]
    Placement(String),
    /// A FederatedNamespace not named like the namespace it is in.
    #[error(
        "a FederatedNamespace must be named like its namespace: name it {namespace:?} (this one, {name:?}, is not propagated)"
    )]
    NamespaceName {
        /// Its name.
        name: String,
        /// Its namespace.
        namespace: String,
    },
    /// The `kubefed.io/deleteoption` annotation is not JSON DeleteOptions.
    #[error(
        "annotation {DELETE_OPTION_ANNOTATION}: {0}; set JSON DeleteOptions such as {{\"propagationPolicy\":\"Orphan\"}}"
    )]
    DeleteOptions(String),
}

impl Error {
    /// The reason of the `Propagation` condition reporting this error (KubeFed's
    /// `ComputePlacementFailed` and `InvalidName`; cellfed's `DeleteOptionsInvalid`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Placement(_) => "ComputePlacementFailed",
            Self::NamespaceName { .. } => "InvalidName",
            Self::DeleteOptions(_) => "DeleteOptionsInvalid",
        }
    }
}

/// Plans one reconcile of a live (not deleted) federated resource.
pub fn plan(input: &PlanInput<'_>) -> Result<Plan, Error> {
    let fed = input.federated;
    let spec = &fed.spec;
    let name = fed.metadata.name.clone().unwrap_or_default();
    if input.target.is_namespace() {
        // KubeFed's rule: only the FederatedNamespace named like its namespace is propagated
        let namespace = fed.metadata.namespace.clone().unwrap_or_default();
        if namespace != name {
            return Err(Error::NamespaceName { name, namespace });
        }
    }
    // KubeFed: an absent template is an empty object (a FederatedNamespace needs none)
    let empty = Map::new();
    let template = spec.template.as_ref().unwrap_or(&empty);
    let placement = placement::effective(spec, input.namespace_placement, input.clusters)
        .map_err(Error::Placement)?;
    let generation = fed.metadata.generation.unwrap_or(0);
    let mut out = Plan {
        actions: Vec::new(),
        clusters: Vec::new(),
        updated: 0,
        placed: placement.clusters.len(),
    };

    // the member objects the resource is placed on, as (endpoint, namespace): one reached through
    // two clusters (a base cluster and a cell on it) is not cleaned up through the one it left
    let target_namespace = |c: &ClusterView| {
        c.member_namespace
            .clone()
            .or_else(|| fed.metadata.namespace.clone())
            .filter(|_| input.target.namespaced)
    };
    let placed_targets: BTreeSet<(String, Option<String>)> = input
        .clusters
        .iter()
        .filter(|c| placement.clusters.contains(&c.name))
        .filter_map(|c| Some((c.endpoint.clone()?, target_namespace(c))))
        .collect();
    for cluster in input.clusters {
        let member = input.members.get(&cluster.name);
        let is_placed = placement.clusters.contains(&cluster.name);
        let in_mask = placement::in_mask(spec, &cluster.name);
        let namespace = cluster
            .member_namespace
            .clone()
            .or_else(|| fed.metadata.namespace.clone());
        let managed = member.is_some_and(is_managed);
        if !is_placed {
            let outside_namespace = placement.outside_namespace.contains(&cluster.name);
            // Cleanup of a cluster the resource left: only our own objects, only inside the mask.
            // KubeFed deletes here even when the resource carries the orphan annotation: orphaning
            // is about deleting the federated resource, not about leaving a cluster.
            let still_placed = cluster
                .endpoint
                .clone()
                .is_some_and(|e| placed_targets.contains(&(e, target_namespace(cluster))));
            let Some(m) = member
                .filter(|m| managed && other_owner(m, input.owner).is_none() && !still_placed)
            else {
                if outside_namespace {
                    out.clusters
                        .push(bare(cluster, PropagationStatus::NamespaceNotFederated));
                }
                continue;
            };
            let status = if !in_mask {
                Some(PropagationStatus::MaskedOut)
            } else if !cluster.ready {
                Some(PropagationStatus::ClusterNotReady)
            } else if is_deleting(m) {
                Some(PropagationStatus::WaitingForRemoval)
            } else {
                let target = namespace.filter(|_| input.target.namespaced);
                out.actions.push(if is_host_object(m, input.host_uid) {
                    MemberAction::RemoveManagedLabel {
                        cluster: cluster.name.clone(),
                        namespace: target,
                        name: name.clone(),
                    }
                } else {
                    MemberAction::Delete {
                        cluster: cluster.name.clone(),
                        namespace: target,
                        name: name.clone(),
                        options: None,
                    }
                });
                outside_namespace.then_some(PropagationStatus::NamespaceNotFederated)
            };
            if let Some(status) = status {
                out.clusters
                    .push(status_of(cluster, Some(status), m, input.target, None));
            }
            continue;
        }
        if member.is_some_and(|m| other_owner(m, input.owner).is_some()) {
            // another federated resource's object: nothing of it is read into our status
            out.clusters.push(ClusterPlanStatus {
                message: Some(format!(
                    "cluster {}: the {} {} there belongs to another federated resource (its {FEDERATED_RESOURCE_ANNOTATION} annotation); nothing is written or deleted there: place this resource elsewhere or give it another name",
                    cluster.name,
                    input.target.kind,
                    member_path(namespace.as_deref().filter(|_| input.target.namespaced), &name),
                )),
                ..bare(cluster, PropagationStatus::ManagedByAnotherResource)
            });
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
        // last, so neither the template nor an override can claim another owner
        stamp_owner(&mut wanted, input.owner, fed.metadata.uid.as_deref());
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
            if !managed && !input.adopt_resources && !is_host_object(m, input.host_uid) {
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
            if is_deleting(m) {
                // being deleted in the member: wait for it to go, then create it again
                out.clusters.push(status_of(
                    cluster,
                    Some(PropagationStatus::WaitingForRemoval),
                    m,
                    input.target,
                    None,
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
                if !managed && !is_host_object(m, input.host_uid) {
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
    for unknown in &placement.unknown {
        let (status, message) = if let Some(why) = input.other_tenants_clusters.get(unknown) {
            (
                PropagationStatus::TenantMismatch,
                Some(format!("cluster {unknown} {why}")),
            )
        } else {
            (PropagationStatus::ClusterNotFound, None)
        };
        out.clusters.push(ClusterPlanStatus {
            cluster: unknown.clone(),
            status: Some(status),
            generation: None,
            remote_status: None,
            message,
        });
    }
    Ok(out)
}

/// Plans the deletion of the federated resource (its finalizer path), KubeFed's `ensureDeletion`:
/// - orphaning (`kubefed.io/orphan: "true"`): the managed label is removed from every member
///   object we manage in a ready cluster, which is left in place; not-ready clusters are not
///   waited for (their objects keep the label, as in KubeFed);
/// - otherwise every member object we manage is deleted with the `kubefed.io/deleteoption`
///   annotation's DeleteOptions (background propagation without it); not-ready clusters block
///   (status says so) so nothing is left behind silently.
///
/// The host's own namespace (a FederatedNamespace, the host joined as a member) is only
/// unlabelled. A cluster still listed in the plan's statuses holds the finalizer.
pub fn plan_deletion(input: &PlanInput<'_>) -> Result<Plan, Error> {
    let fed = input.federated;
    let name = fed.metadata.name.clone().unwrap_or_default();
    let mut out = Plan {
        actions: Vec::new(),
        clusters: Vec::new(),
        updated: 0,
        placed: 0,
    };
    let orphaning = orphaned(fed);
    let options = if orphaning {
        None
    } else {
        delete_options(fed)?
    };
    for cluster in input.clusters {
        let Some(member) = input
            .members
            .get(&cluster.name)
            .filter(|m| is_managed(m) && other_owner(m, input.owner).is_none())
        else {
            continue;
        };
        let host = is_host_object(member, input.host_uid);
        let waiting = |status| status_of(cluster, Some(status), member, input.target, None);
        if !cluster.ready {
            if !orphaning {
                out.clusters
                    .push(waiting(PropagationStatus::ClusterNotReady));
            }
            continue;
        }
        if is_deleting(member) {
            if !orphaning && !host {
                out.clusters
                    .push(waiting(PropagationStatus::WaitingForRemoval));
            }
            continue;
        }
        let namespace = cluster
            .member_namespace
            .clone()
            .or_else(|| fed.metadata.namespace.clone())
            .filter(|_| input.target.namespaced);
        out.actions.push(if orphaning || host {
            MemberAction::RemoveManagedLabel {
                cluster: cluster.name.clone(),
                namespace,
                name: name.clone(),
            }
        } else {
            MemberAction::Delete {
                cluster: cluster.name.clone(),
                namespace,
                name: name.clone(),
                options: options.clone(),
            }
        });
        out.clusters
            .push(waiting(PropagationStatus::WaitingForRemoval));
    }
    Ok(out)
}

/// The `kubefed.io/deleteoption` annotation as DeleteOptions (pure): None without it.
pub fn delete_options(fed: &FederatedResource) -> Result<Option<DeleteOptions>, Error> {
    let Some(text) = fed
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETE_OPTION_ANNOTATION))
    else {
        return Ok(None);
    };
    let options: DeleteOptions =
        serde_json::from_str(text).map_err(|e| Error::DeleteOptions(e.to_string()))?;
    if let Some(policy) = options.propagation_policy.as_deref()
        && !matches!(policy, "Orphan" | "Background" | "Foreground")
    {
        return Err(Error::DeleteOptions(format!(
            "propagationPolicy {policy:?} is not Orphan, Background or Foreground"
        )));
    }
    if options.grace_period_seconds.is_some_and(|g| g < 0) {
        return Err(Error::DeleteOptions(
            "gracePeriodSeconds must not be negative".into(),
        ));
    }
    Ok(Some(options))
}

/// The owner of `fed`'s member objects, the value of `cellfed.io/federated-resource` (pure):
/// `<group>/<Kind>/<namespace>/<name>` of the federated type (`group`, `kind`), the namespace
/// empty for a cluster-scoped resource.
pub fn owner_of(group: &str, kind: &str, fed: &FederatedResource) -> String {
    format!(
        "{group}/{kind}/{}/{}",
        fed.metadata.namespace.as_deref().unwrap_or_default(),
        fed.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The owner another federated resource than `owner` has on `member`, if any (pure).
pub fn other_owner<'m>(member: &'m Value, owner: &str) -> Option<&'m str> {
    member
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(FEDERATED_RESOURCE_ANNOTATION))
        .and_then(Value::as_str)
        .filter(|o| *o != owner)
}

/// Sets the owner annotations on a desired object.
fn stamp_owner(obj: &mut Value, owner: &str, uid: Option<&str>) {
    if let Some(ann) = desired::annotations_mut(obj) {
        ann.insert(FEDERATED_RESOURCE_ANNOTATION.into(), json!(owner));
        match uid {
            Some(uid) => drop(ann.insert(FEDERATED_RESOURCE_UID_ANNOTATION.into(), json!(uid))),
            None => drop(ann.remove(FEDERATED_RESOURCE_UID_ANNOTATION)),
        }
    }
}

/// `namespace/name`, or `name` for cluster-scoped kinds.
fn member_path(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// Whether the member object carries `kubefed.io/managed: "true"`.
pub fn is_managed(member: &Value) -> bool {
    member
        .pointer("/metadata/labels")
        .and_then(|l| l.get(MANAGED_LABEL))
        .and_then(Value::as_str)
        == Some(MANAGED_LABEL_VALUE)
}

/// Whether the member object is being deleted (KubeFed waits for it: `WaitingForRemoval`).
fn is_deleting(member: &Value) -> bool {
    member
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// Whether the member object is the host's own (same uid; only Namespaces are looked at).
fn is_host_object(member: &Value, host_uid: Option<&str>) -> bool {
    host_uid.is_some_and(|uid| member.pointer("/metadata/uid").and_then(Value::as_str) == Some(uid))
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
