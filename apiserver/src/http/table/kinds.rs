//! kube-apiserver's columns for built-in kinds, as data: per kind, each column's name, type,
//! description and how its cell is read ([`Cell`]: a field, a count, a selector, or a small
//! formatter from [`super::cells`]). Pod and Event, whose cells share one computation, keep a
//! printer function in [`super::columns`].
//!
//! Pure data, one entry per kind: this module is long because kube prints many kinds, not because
//! it holds logic (every computation lives in `cells`, `columns` or `hpa`).

use serde_json::{Value, json};

use super::cells::*;
use super::columns::{
    AGE_DOC, NAME_DOC, age_of, container_field, len, map_string, selector_string,
};
use super::duration::age;
use super::hpa::hpa_targets;

/// How one cell is read from an object.
#[derive(Clone, Copy)]
pub enum Cell {
    /// `metadata.name`.
    Name,
    /// `metadata.creationTimestamp` as an age (`3m2s`).
    Age,
    /// The string at a JSON pointer, or the default when absent or empty.
    Str(&'static str, &'static str),
    /// The integer at a JSON pointer, or the default.
    Int(&'static str, i64),
    /// The boolean at a JSON pointer, or the default.
    Bool(&'static str, bool),
    /// The number of entries of the maps or arrays at these pointers, summed.
    Count(&'static [&'static str]),
    /// The LabelSelector at a pointer, as kubectl prints it (`<none>` when empty).
    Selector(&'static str),
    /// The string map at a pointer as `k=v,…` (`<none>` when empty).
    Labels(&'static str),
    /// A field (`name`, `image`) of each container of the pod spec at a pointer, joined.
    Containers(&'static str, &'static str),
    /// An int-or-string at a pointer, `N/A` when absent.
    IntOrString(&'static str),
    /// A formatter of its own.
    Fn(fn(&Value, &str) -> Value),
}

/// One column: its Table definition and its cell.
pub struct Col {
    pub name: &'static str,
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
    pub cell: Cell,
}

const fn col(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
    cell: Cell,
) -> Col {
    Col {
        name,
        type_,
        format: "",
        description,
        priority: 0,
        cell,
    }
}

/// A string column, the type kube gives most.
const fn s(name: &'static str, description: &'static str, cell: Cell) -> Col {
    col(name, "string", description, cell)
}

/// A column kubectl shows only with `-o wide`.
const fn wide(mut c: Col) -> Col {
    c.priority = 1;
    c
}

const NAME: Col = Col {
    name: "Name",
    type_: "string",
    format: "name",
    description: NAME_DOC,
    priority: 0,
    cell: Cell::Name,
};
const AGE: Col = s("Age", AGE_DOC, Cell::Age);
const POD: &str = "/spec/template/spec";
const CONTAINERS: Col = wide(s(
    "Containers",
    "Names of each container in the template.",
    Cell::Containers(POD, "name"),
));
const IMAGES: Col = wide(s(
    "Images",
    "Images referenced by each container in the template.",
    Cell::Containers(POD, "image"),
));
const SELECTOR: Col = wide(s(
    "Selector",
    "Selector is a label query over pods that should match the replica count.",
    Cell::Selector("/spec/selector"),
));

/// The columns of the kinds printed from data: (group, kinds, columns).
pub const KINDS: &[(&str, &[&str], &[Col])] = &[
    (
        "",
        &["Namespace"],
        &[
            NAME,
            s(
                "Status",
                "The status of the namespace",
                Cell::Str("/status/phase", ""),
            ),
            AGE,
        ],
    ),
    (
        "",
        &["ConfigMap"],
        &[
            NAME,
            s(
                "Data",
                "Data contains the configuration data.",
                Cell::Count(&["/data", "/binaryData"]),
            ),
            AGE,
        ],
    ),
    (
        "",
        &["Secret"],
        &[
            NAME,
            s(
                "Type",
                "Used to facilitate programmatic handling of secret data.",
                Cell::Str("/type", ""),
            ),
            s(
                "Data",
                "Data contains the secret data.",
                Cell::Count(&["/data", "/stringData"]),
            ),
            AGE,
        ],
    ),
    (
        "",
        &["ServiceAccount"],
        &[
            NAME,
            s(
                "Secrets",
                "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
                Cell::Count(&["/secrets"]),
            ),
            AGE,
        ],
    ),
    (
        "",
        &["Service"],
        &[
            NAME,
            s(
                "Type",
                "type determines how the Service is exposed.",
                Cell::Fn(service_type_cell),
            ),
            s(
                "Cluster-IP",
                "clusterIP is the IP address of the service.",
                Cell::Fn(cluster_ip),
            ),
            s(
                "External-IP",
                "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
                Cell::Fn(external_ip),
            ),
            s(
                "Port(s)",
                "The list of ports that are exposed by this service.",
                Cell::Fn(service_ports),
            ),
            AGE,
            wide(s(
                "Selector",
                "Route service traffic to pods with label keys and values matching this selector.",
                Cell::Labels("/spec/selector"),
            )),
        ],
    ),
    (
        "",
        &["Endpoints"],
        &[
            NAME,
            s(
                "Endpoints",
                "The set of all endpoints is the union of all subsets.",
                Cell::Fn(endpoints),
            ),
            AGE,
        ],
    ),
    (
        "",
        &["Node"],
        &[
            NAME,
            s("Status", "The status of the node", Cell::Fn(node_status)),
            s("Roles", "The roles of the node", Cell::Fn(node_roles)),
            AGE,
            s(
                "Version",
                "Kubelet Version reported by the node.",
                Cell::Str("/status/nodeInfo/kubeletVersion", ""),
            ),
        ],
    ),
    (
        "batch",
        &["Job"],
        &[
            NAME,
            s("Status", "Status of the job.", Cell::Fn(job_status)),
            s(
                "Completions",
                "The completion status of the job.",
                Cell::Fn(job_completions),
            ),
            s(
                "Duration",
                "Time required to complete the job.",
                Cell::Fn(job_duration),
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            wide(s(
                "Selector",
                "A label query over pods that should match the pod count.",
                Cell::Selector("/spec/selector"),
            )),
        ],
    ),
    (
        "networking.k8s.io",
        &["Ingress"],
        &[
            NAME,
            s(
                "Class",
                "The name of the IngressClass resource that should be used for this Ingress.",
                Cell::Str("/spec/ingressClassName", "<none>"),
            ),
            s(
                "Hosts",
                "Hosts that incoming requests are matched against before the ingress rule",
                Cell::Fn(ingress_hosts),
            ),
            s(
                "Address",
                "Address is a list containing ingress points for the load-balancer",
                Cell::Fn(ingress_address),
            ),
            s(
                "Ports",
                "Ports of TLS configurations that open",
                Cell::Fn(ingress_ports),
            ),
            AGE,
        ],
    ),
    (
        "rbac.authorization.k8s.io",
        &["RoleBinding", "ClusterRoleBinding"],
        &[
            NAME,
            s(
                "Role",
                "RoleRef references the role this binding grants.",
                Cell::Fn(role_ref),
            ),
            AGE,
            wide(s("Users", "Users in the binding", Cell::Fn(users))),
            wide(s("Groups", "Groups in the binding", Cell::Fn(groups))),
            wide(s(
                "ServiceAccounts",
                "ServiceAccounts in the binding",
                Cell::Fn(service_accounts),
            )),
        ],
    ),
    (
        "",
        &["PersistentVolumeClaim"],
        &[
            NAME,
            s(
                "Status",
                "phase represents the current phase of PersistentVolumeClaim.",
                Cell::Fn(pvc_phase),
            ),
            s(
                "Volume",
                "volumeName is the binding reference to the PersistentVolume backing this claim.",
                Cell::Str("/spec/volumeName", ""),
            ),
            s(
                "Capacity",
                "capacity represents the actual resources of the underlying volume.",
                Cell::Fn(pvc_capacity),
            ),
            s(
                "Access Modes",
                "accessModes contains the actual access modes the volume backing the PVC has.",
                Cell::Fn(pvc_access_modes),
            ),
            s(
                "StorageClass",
                "StorageClass of the pvc",
                Cell::Fn(storage_class_of),
            ),
            s(
                "VolumeAttributesClass",
                "VolumeAttributesClass of the pvc",
                Cell::Str("/spec/volumeAttributesClassName", "<unset>"),
            ),
            AGE,
            wide(s(
                "VolumeMode",
                "volumeMode defines what type of volume is required by the claim.",
                Cell::Str("/spec/volumeMode", "<unset>"),
            )),
        ],
    ),
    (
        "",
        &["PersistentVolume"],
        &[
            NAME,
            s(
                "Capacity",
                "capacity is the description of the persistent volume's resources and capacity.",
                Cell::Str("/spec/capacity/storage", ""),
            ),
            s(
                "Access Modes",
                "accessModes contains all ways the volume can be mounted.",
                Cell::Fn(pv_access_modes),
            ),
            s(
                "Reclaim Policy",
                "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim.",
                Cell::Str("/spec/persistentVolumeReclaimPolicy", "Retain"),
            ),
            s(
                "Status",
                "phase indicates if a volume is available, bound to a claim, or released by a claim.",
                Cell::Str("/status/phase", "Pending"),
            ),
            s(
                "Claim",
                "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim.",
                Cell::Fn(pv_claim),
            ),
            s(
                "StorageClass",
                "StorageClass of the pv",
                Cell::Fn(storage_class_of),
            ),
            s(
                "VolumeAttributesClass",
                "VolumeAttributesClass of the pv",
                Cell::Str("/spec/volumeAttributesClassName", "<unset>"),
            ),
            s(
                "Reason",
                "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
                Cell::Str("/status/reason", ""),
            ),
            AGE,
            wide(s(
                "VolumeMode",
                "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.",
                Cell::Str("/spec/volumeMode", "<unset>"),
            )),
        ],
    ),
    (
        "",
        &["PodTemplate"],
        &[
            NAME,
            s(
                "Containers",
                "Names of each container in the template.",
                Cell::Containers("/template/spec", "name"),
            ),
            s(
                "Images",
                "Images referenced by each container in the template.",
                Cell::Containers("/template/spec", "image"),
            ),
            s(
                "Pod Labels",
                "The labels for the pod template.",
                Cell::Labels("/template/metadata/labels"),
            ),
        ],
    ),
    (
        "",
        &["ResourceQuota"],
        &[
            NAME,
            s(
                "Request",
                "Request represents a minimum amount of cpu/memory that a container may consume.",
                Cell::Fn(|o, _| json!(quota(o, false))),
            ),
            s(
                "Limit",
                "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
                Cell::Fn(|o, _| json!(quota(o, true))),
            ),
            AGE,
        ],
    ),
    (
        "apps",
        &["Deployment"],
        &[
            NAME,
            s(
                "Ready",
                "Number of the pod with ready state",
                Cell::Fn(ready),
            ),
            s(
                "Up-to-date",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                Cell::Int("/status/updatedReplicas", 0),
            ),
            s(
                "Available",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                Cell::Int("/status/availableReplicas", 0),
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            wide(s(
                "Selector",
                "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
                Cell::Selector("/spec/selector"),
            )),
        ],
    ),
    (
        "apps",
        &["StatefulSet"],
        &[
            NAME,
            s(
                "Ready",
                "Number of the pod with ready state",
                Cell::Fn(ready),
            ),
            AGE,
            CONTAINERS,
            IMAGES,
        ],
    ),
    (
        "apps",
        &["DaemonSet"],
        &[
            NAME,
            col(
                "Desired",
                "integer",
                "The total number of nodes that should be running the daemon pod.",
                Cell::Int("/status/desiredNumberScheduled", 0),
            ),
            col(
                "Current",
                "integer",
                "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
                Cell::Int("/status/currentNumberScheduled", 0),
            ),
            col(
                "Ready",
                "integer",
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.",
                Cell::Int("/status/numberReady", 0),
            ),
            col(
                "Up-to-date",
                "integer",
                "The total number of nodes that are running updated daemon pod",
                Cell::Int("/status/updatedNumberScheduled", 0),
            ),
            col(
                "Available",
                "integer",
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.",
                Cell::Int("/status/numberAvailable", 0),
            ),
            s(
                "Node Selector",
                "NodeSelector is a selector which must be true for the pod to fit on a node.",
                Cell::Labels("/spec/template/spec/nodeSelector"),
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            wide(s(
                "Selector",
                "A label query over pods that are managed by the daemon set.",
                Cell::Selector("/spec/selector"),
            )),
        ],
    ),
    (
        "apps",
        &["ReplicaSet"],
        &[
            NAME,
            col(
                "Desired",
                "integer",
                "Replicas is the number of desired pods.",
                Cell::Int("/spec/replicas", 1),
            ),
            col(
                "Current",
                "integer",
                "Replicas is the most recently observed number of replicas.",
                Cell::Int("/status/replicas", 0),
            ),
            col(
                "Ready",
                "integer",
                "The number of ready replicas for this replica set.",
                Cell::Int("/status/readyReplicas", 0),
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
    ),
    (
        "",
        &["ReplicationController"],
        &[
            NAME,
            col(
                "Desired",
                "integer",
                "Replicas is the number of desired pods.",
                Cell::Int("/spec/replicas", 1),
            ),
            col(
                "Current",
                "integer",
                "Replicas is the most recently observed number of replicas.",
                Cell::Int("/status/replicas", 0),
            ),
            col(
                "Ready",
                "integer",
                "The number of ready replicas for this replication controller.",
                Cell::Int("/status/readyReplicas", 0),
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            wide(s(
                "Selector",
                "Selector is a label query over pods that should match the Replicas count.",
                Cell::Labels("/spec/selector"),
            )),
        ],
    ),
    (
        "apps",
        &["ControllerRevision"],
        &[
            NAME,
            s(
                "Controller",
                "Controller of the object",
                Cell::Fn(controller),
            ),
            s(
                "Revision",
                "Revision indicates the revision of the state represented by Data.",
                Cell::Int("/revision", 0),
            ),
            AGE,
        ],
    ),
    (
        "batch",
        &["CronJob"],
        &[
            NAME,
            s(
                "Schedule",
                "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
                Cell::Str("/spec/schedule", ""),
            ),
            s(
                "Timezone",
                "The time zone name for the given schedule.",
                Cell::Str("/spec/timeZone", "<none>"),
            ),
            col(
                "Suspend",
                "boolean",
                "This flag tells the controller to suspend subsequent executions.",
                Cell::Bool("/spec/suspend", false),
            ),
            col(
                "Active",
                "integer",
                "A list of pointers to currently running jobs.",
                Cell::Count(&["/status/active"]),
            ),
            s(
                "Last Schedule",
                "Information when was the last time the job was successfully scheduled.",
                Cell::Fn(|o, now| {
                    json!(
                        o.pointer("/status/lastScheduleTime")
                            .and_then(Value::as_str)
                            .map_or_else(|| "<none>".to_string(), |t| age(Some(t), now))
                    )
                }),
            ),
            AGE,
            wide(s(
                "Containers",
                "Names of each container in the template.",
                Cell::Containers("/spec/jobTemplate/spec/template/spec", "name"),
            )),
            wide(s(
                "Images",
                "Images referenced by each container in the template.",
                Cell::Containers("/spec/jobTemplate/spec/template/spec", "image"),
            )),
            wide(s(
                "Selector",
                "A label query over pods that should match the pod count.",
                Cell::Selector("/spec/jobTemplate/spec/selector"),
            )),
        ],
    ),
    (
        "autoscaling",
        &["HorizontalPodAutoscaler"],
        &[
            NAME,
            s(
                "Reference",
                "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.",
                Cell::Fn(|o, _| {
                    let f = |k: &str| {
                        o.pointer(&format!("/spec/scaleTargetRef/{k}"))
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    json!(format!("{}/{}", f("kind"), f("name")))
                }),
            ),
            s(
                "Targets",
                "metrics contains the specifications for which to use to calculate the desired replica count.",
                Cell::Fn(hpa_targets),
            ),
            s(
                "MinPods",
                "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.",
                Cell::Fn(
                    |o, _| match o.pointer("/spec/minReplicas").and_then(Value::as_i64) {
                        Some(n) => json!(n.to_string()),
                        None => json!("<unset>"),
                    },
                ),
            ),
            s(
                "MaxPods",
                "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up.",
                Cell::Int("/spec/maxReplicas", 0),
            ),
            s(
                "Replicas",
                "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.",
                Cell::Int("/status/currentReplicas", 0),
            ),
            AGE,
        ],
    ),
    (
        "policy",
        &["PodDisruptionBudget"],
        &[
            NAME,
            s(
                "Min Available",
                "The minimum number of pods that must be available.",
                Cell::IntOrString("/spec/minAvailable"),
            ),
            s(
                "Max Unavailable",
                "The maximum number of pods that may be unavailable.",
                Cell::IntOrString("/spec/maxUnavailable"),
            ),
            col(
                "Allowed Disruptions",
                "integer",
                "Calculated number of pods that may be disrupted at this time.",
                Cell::Int("/status/disruptionsAllowed", 0),
            ),
            AGE,
        ],
    ),
    (
        "networking.k8s.io",
        &["NetworkPolicy"],
        &[
            NAME,
            s(
                "Pod-Selector",
                "Selects the pods to which this NetworkPolicy object applies.",
                Cell::Selector("/spec/podSelector"),
            ),
            AGE,
        ],
    ),
    (
        "networking.k8s.io",
        &["IngressClass"],
        &[
            NAME,
            s(
                "Controller",
                "Controller that is responsible for handling this class",
                Cell::Str("/spec/controller", ""),
            ),
            s(
                "Parameters",
                "A reference to a resource with additional parameters",
                Cell::Fn(ingress_class_parameters),
            ),
            AGE,
        ],
    ),
    (
        "discovery.k8s.io",
        &["EndpointSlice"],
        &[
            NAME,
            s(
                "AddressType",
                "addressType specifies the type of address carried by this EndpointSlice.",
                Cell::Str("/addressType", ""),
            ),
            s(
                "Ports",
                "ports specifies the list of network ports exposed by each endpoint in this slice.",
                Cell::Fn(slice_ports),
            ),
            s(
                "Endpoints",
                "endpoints is a list of unique endpoints in this slice.",
                Cell::Fn(slice_endpoints),
            ),
            AGE,
        ],
    ),
    (
        "scheduling.k8s.io",
        &["PriorityClass"],
        &[
            NAME,
            col(
                "Value",
                "integer",
                "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.",
                Cell::Int("/value", 0),
            ),
            col(
                "Global-Default",
                "boolean",
                "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class.",
                Cell::Bool("/globalDefault", false),
            ),
            AGE,
            s(
                "PreemptionPolicy",
                "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.",
                Cell::Str("/preemptionPolicy", "PreemptLowerPriority"),
            ),
        ],
    ),
    (
        "storage.k8s.io",
        &["StorageClass"],
        &[
            Col {
                cell: Cell::Fn(|o, _| {
                    let name = o
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let default = [
                        "storageclass.kubernetes.io/is-default-class",
                        "storageclass.beta.kubernetes.io/is-default-class",
                    ]
                    .iter()
                    .any(|a| {
                        o.pointer("/metadata/annotations").and_then(|m| m.get(a))
                            == Some(&json!("true"))
                    });
                    json!(if default {
                        format!("{name} (default)")
                    } else {
                        name.to_string()
                    })
                }),
                ..NAME
            },
            s(
                "Provisioner",
                "provisioner indicates the type of the provisioner.",
                Cell::Str("/provisioner", ""),
            ),
            s(
                "ReclaimPolicy",
                "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete.",
                Cell::Str("/reclaimPolicy", "Delete"),
            ),
            s(
                "VolumeBindingMode",
                "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound. When unset, VolumeBindingImmediate is used.",
                Cell::Str("/volumeBindingMode", "Immediate"),
            ),
            s(
                "AllowVolumeExpansion",
                "allowVolumeExpansion shows whether the storage class allow volume expand.",
                Cell::Bool("/allowVolumeExpansion", false),
            ),
            AGE,
        ],
    ),
    (
        "storage.k8s.io",
        &["VolumeAttachment"],
        &[
            NAME,
            s(
                "Attacher",
                "attacher indicates the name of the volume driver that MUST handle this request.",
                Cell::Str("/spec/attacher", ""),
            ),
            s(
                "PV",
                "persistentVolumeName represents the name of the persistent volume to attach.",
                Cell::Str("/spec/source/persistentVolumeName", ""),
            ),
            s(
                "Node",
                "nodeName represents the node that the volume should be attached to.",
                Cell::Str("/spec/nodeName", ""),
            ),
            col(
                "Attached",
                "boolean",
                "attached indicates the volume is successfully attached.",
                Cell::Bool("/status/attached", false),
            ),
            AGE,
        ],
    ),
    (
        "certificates.k8s.io",
        &["CertificateSigningRequest"],
        &[
            NAME,
            AGE,
            s(
                "SignerName",
                "signerName indicates the requested signer, and is a qualified name.",
                Cell::Str("/spec/signerName", "<none>"),
            ),
            s(
                "Requestor",
                "username contains the name of the user that created the CertificateSigningRequest.",
                Cell::Str("/spec/username", ""),
            ),
            s(
                "RequestedDuration",
                "expirationSeconds is the requested duration of validity of the issued certificate.",
                Cell::Fn(csr_duration),
            ),
            s(
                "Condition",
                "conditions applied to the request. Known conditions are \"Approved\", \"Denied\", and \"Failed\".",
                Cell::Fn(csr_condition),
            ),
        ],
    ),
    (
        "storage.k8s.io",
        &["CSIDriver"],
        &[
            NAME,
            col(
                "AttachRequired",
                "boolean",
                "attachRequired indicates this CSI volume driver requires an attach operation.",
                Cell::Bool("/spec/attachRequired", true),
            ),
            col(
                "PodInfoOnMount",
                "boolean",
                "podInfoOnMount indicates this CSI volume driver requires additional pod information (like podName, podUID, etc.) during mount operations.",
                Cell::Bool("/spec/podInfoOnMount", false),
            ),
            col(
                "StorageCapacity",
                "boolean",
                "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report.",
                Cell::Bool("/spec/storageCapacity", false),
            ),
            s(
                "TokenRequests",
                "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication.",
                Cell::Fn(token_requests),
            ),
            col(
                "RequiresRepublish",
                "boolean",
                "requiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume.",
                Cell::Bool("/spec/requiresRepublish", false),
            ),
            s(
                "Modes",
                "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports.",
                Cell::Fn(lifecycle_modes),
            ),
            AGE,
        ],
    ),
    (
        "storage.k8s.io",
        &["CSINode"],
        &[
            NAME,
            col(
                "Drivers",
                "integer",
                "Drivers indicates the number of CSI drivers registered on the node",
                Cell::Count(&["/spec/drivers"]),
            ),
            AGE,
        ],
    ),
    (
        "storage.k8s.io",
        &["CSIStorageCapacity"],
        &[
            NAME,
            s(
                "StorageClassName",
                "storageClassName represents the name of the StorageClass that the reported capacity applies to.",
                Cell::Str("/storageClassName", ""),
            ),
            s(
                "Capacity",
                "capacity is the value reported by the CSI driver in its GetCapacityResponse for a GetCapacityRequest with topology and parameters that match the previous fields.",
                Cell::Str("/capacity", ""),
            ),
        ],
    ),
    (
        "networking.k8s.io",
        &["ServiceCIDR"],
        &[
            NAME,
            s(
                "CIDRs",
                "cidrs defines the IP blocks in CIDR notation from which to assign service cluster IPs.",
                Cell::Fn(cidrs),
            ),
            AGE,
        ],
    ),
    (
        "node.k8s.io",
        &["RuntimeClass"],
        &[
            NAME,
            s(
                "Handler",
                "handler specifies the underlying runtime and configuration that the CRI implementation will use to handle pods of this class.",
                Cell::Str("/handler", ""),
            ),
            AGE,
        ],
    ),
    (
        "coordination.k8s.io",
        &["Lease"],
        &[
            NAME,
            s(
                "Holder",
                "holderIdentity contains the identity of the holder of a current lease.",
                Cell::Str("/spec/holderIdentity", ""),
            ),
            AGE,
        ],
    ),
    (
        "admissionregistration.k8s.io",
        &["ValidatingAdmissionPolicy"],
        &[
            NAME,
            col(
                "Validations",
                "integer",
                "Validations indicates the number of validation rules defined in this configuration",
                Cell::Count(&["/spec/validations"]),
            ),
            s(
                "ParamKind",
                "ParamKind specifies the kind of resources used to parameterize this policy",
                Cell::Fn(param_kind),
            ),
            AGE,
        ],
    ),
    (
        "admissionregistration.k8s.io",
        &["ValidatingAdmissionPolicyBinding"],
        &[
            NAME,
            s(
                "PolicyName",
                "PolicyName indicates the policy definition which the policy binding binded to",
                Cell::Str("/spec/policyName", ""),
            ),
            s(
                "ParamRef",
                "ParamRef indicates the param resource which sets the configration param",
                Cell::Fn(param_ref),
            ),
            AGE,
        ],
    ),
    (
        "admissionregistration.k8s.io",
        &[
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ],
        &[
            NAME,
            col(
                "Webhooks",
                "integer",
                "Webhooks indicates the number of webhooks in this configuration",
                Cell::Count(&["/webhooks"]),
            ),
            AGE,
        ],
    ),
];

/// The data columns of a kind, if it is printed from data.
pub fn find(group: &str, kind: &str) -> Option<&'static [Col]> {
    KINDS
        .iter()
        .find(|(g, kinds, _)| *g == group && kinds.contains(&kind))
        .map(|(_, _, cols)| *cols)
}

impl Cell {
    /// The cell of `o`; `now` is the RFC 3339 time ages are computed from.
    pub fn read(&self, o: &Value, now: &str) -> Value {
        let at = |p: &str| o.pointer(p);
        match *self {
            Cell::Name => at("/metadata/name").cloned().unwrap_or(json!("")),
            Cell::Age => age_of(o, now),
            Cell::Str(p, default) => json!(
                at(p)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
                    .unwrap_or(default)
            ),
            Cell::Int(p, default) => json!(at(p).and_then(Value::as_i64).unwrap_or(default)),
            Cell::Bool(p, default) => json!(at(p).and_then(Value::as_bool).unwrap_or(default)),
            Cell::Count(ps) => json!(ps.iter().map(|p| len(o, p)).sum::<usize>()),
            Cell::Selector(p) => json!(selector_string(at(p))),
            Cell::Labels(p) => json!(map_string(at(p))),
            Cell::Containers(p, field) => json!(container_field(at(p), field)),
            Cell::IntOrString(p) => match at(p) {
                Some(Value::String(s)) => json!(s),
                Some(Value::Number(n)) => json!(n.to_string()),
                _ => json!("N/A"),
            },
            Cell::Fn(f) => f(o, now),
        }
    }
}
