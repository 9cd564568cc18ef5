//! Patch strategies of built-in kinds: which lists merge by which key (kube's `patchMergeKey` /
//! `patchStrategy` struct tags), which are sets, which structs retain keys. Strategic merge patch
//! and server-side apply both read this table; any field not listed is a plain map or an atomic
//! list, as in kube.

/// How a list field is merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole (no patch strategy).
    Atomic,
    /// A list of scalars merged as a set (`patchStrategy:"merge"` on `[]string`).
    Set,
    /// A list of objects merged by this key (`patchMergeKey`).
    Map(&'static str),
}

/// The type context of a value inside an object: which struct of the Kubernetes API it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// Nothing known: maps merge, lists are atomic.
    Unknown,
    /// A top-level object whose `spec` has this type.
    Root(&'static Ty),
    ObjectMeta,
    PodTemplateSpec,
    PodSpec,
    Container,
    Volume,
    ServiceSpec,
    /// Deployment, ReplicaSet, StatefulSet, DaemonSet, ReplicationController spec.
    WorkloadSpec,
    JobSpec,
    CronJobSpec,
    JobTemplateSpec,
    /// Any `status`: `conditions` merge by `type`.
    Status,
}

/// What the table says about one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    /// For list values: how they merge.
    pub list: ListKind,
    /// The type of the value, or of each list item.
    pub ty: Ty,
    /// `patchStrategy:"retainKeys"` (a union struct: keys absent from the patch are dropped).
    pub retain_keys: bool,
}

const fn info(list: ListKind, ty: Ty) -> FieldInfo {
    FieldInfo {
        list,
        ty,
        retain_keys: false,
    }
}

const PLAIN: FieldInfo = info(ListKind::Atomic, Ty::Unknown);

/// The root type of a built-in kind (`group` "" for core).
pub fn root(group: &str, kind: &str) -> Ty {
    let spec: &'static Ty = match (group, kind) {
        ("", "Pod") => &Ty::PodSpec,
        ("", "Service") => &Ty::ServiceSpec,
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("", "ReplicationController")
        | ("extensions", "Deployment" | "ReplicaSet" | "DaemonSet") => &Ty::WorkloadSpec,
        ("batch", "Job") => &Ty::JobSpec,
        ("batch", "CronJob") => &Ty::CronJobSpec,
        _ => &Ty::Unknown,
    };
    Ty::Root(spec)
}

/// The group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// What is known about `field` of a value of type `ty`.
pub fn field(ty: Ty, name: &str) -> FieldInfo {
    use ListKind::{Atomic, Map, Set};
    match (ty, name) {
        (Ty::Root(_), "metadata") => info(Atomic, Ty::ObjectMeta),
        (Ty::Root(spec), "spec") => info(Atomic, *spec),
        (Ty::Root(_), "status") => info(Atomic, Ty::Status),
        (Ty::Root(_), "template") => info(Atomic, Ty::PodTemplateSpec),
        (Ty::ObjectMeta, "finalizers") => info(Set, Ty::Unknown),
        (Ty::ObjectMeta, "ownerReferences") => info(Map("uid"), Ty::Unknown),
        (Ty::PodTemplateSpec, "metadata") | (Ty::JobTemplateSpec, "metadata") => {
            info(Atomic, Ty::ObjectMeta)
        }
        (Ty::PodTemplateSpec, "spec") => info(Atomic, Ty::PodSpec),
        (Ty::JobTemplateSpec, "spec") => info(Atomic, Ty::JobSpec),
        (Ty::WorkloadSpec | Ty::JobSpec, "template") => info(Atomic, Ty::PodTemplateSpec),
        (Ty::WorkloadSpec, "strategy") => FieldInfo {
            retain_keys: true,
            ..PLAIN
        },
        (Ty::CronJobSpec, "jobTemplate") => info(Atomic, Ty::JobTemplateSpec),
        (Ty::PodSpec, "containers" | "initContainers" | "ephemeralContainers") => {
            info(Map("name"), Ty::Container)
        }
        (Ty::PodSpec, "volumes") => FieldInfo {
            retain_keys: true,
            ..info(Map("name"), Ty::Volume)
        },
        (Ty::PodSpec, "imagePullSecrets" | "resourceClaims" | "schedulingGates") => {
            info(Map("name"), Ty::Unknown)
        }
        (Ty::PodSpec, "hostAliases") => info(Map("ip"), Ty::Unknown),
        (Ty::PodSpec, "topologySpreadConstraints") => info(Map("topologyKey"), Ty::Unknown),
        (Ty::Container, "ports") => info(Map("containerPort"), Ty::Unknown),
        (Ty::Container, "env") => info(Map("name"), Ty::Unknown),
        (Ty::Container, "volumeMounts") => info(Map("mountPath"), Ty::Unknown),
        (Ty::Container, "volumeDevices") => info(Map("devicePath"), Ty::Unknown),
        (Ty::ServiceSpec, "ports") => info(Map("port"), Ty::Unknown),
        (Ty::Status, "conditions" | "addresses") => info(Map("type"), Ty::Unknown),
        _ => PLAIN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_containers_merge_by_name() {
        let root = root(group_of("apps/v1"), "Deployment");
        let spec = field(root, "spec").ty;
        let template = field(spec, "template").ty;
        let pod = field(template, "spec").ty;
        let containers = field(pod, "containers");
        assert_eq!(containers.list, ListKind::Map("name"));
        assert_eq!(
            field(containers.ty, "ports").list,
            ListKind::Map("containerPort")
        );
        assert_eq!(field(pod, "tolerations").list, ListKind::Atomic);
        let svc = field(root_of("Service"), "spec").ty;
        assert_eq!(field(svc, "ports").list, ListKind::Map("port"));
    }

    fn root_of(kind: &str) -> Ty {
        root("", kind)
    }
}
