//! Tenant isolation rule (feature gate `TenantIsolation`), shared by the admission webhook (which
//! refuses a placement) and the controller (which never writes): who may use which cluster.
//!
//! Tenancy is read from the labels `cellfed.io/tenant` and `cellfed.io/workspace` of the federated
//! resource's namespace (of the resource itself when cluster-scoped) and of each `KubeFedCluster`.
//!
//! A Cell belongs to the tenancy of its namespace; what it may run on and write into is decided
//! here too ([`Tenancy::base_cluster_refusal`], [`member_namespace_problem`]), so admission and
//! the controller's re-check can never disagree.

use std::collections::BTreeMap;
use std::fmt;

use kube::ResourceExt as _;

use crate::Cell;
use crate::well_known::{TENANT_LABEL, WORKSPACE_LABEL};

/// Tenant and workspace of a resource or a cluster; `None` where the label is absent or empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tenancy {
    /// Value of `cellfed.io/tenant`.
    pub tenant: Option<String>,
    /// Value of `cellfed.io/workspace`.
    pub workspace: Option<String>,
}

impl Tenancy {
    /// Tenancy from an object's labels.
    pub fn from_labels(labels: Option<&BTreeMap<String, String>>) -> Self {
        let get = |key: &str| {
            labels
                .and_then(|l| l.get(key))
                .filter(|v| !v.is_empty())
                .cloned()
        };
        Self {
            tenant: get(TENANT_LABEL),
            workspace: get(WORKSPACE_LABEL),
        }
    }

    /// Whether a resource of this tenancy may be placed on (read from, written to, cleaned up
    /// in) a cluster of tenancy `cluster`:
    /// - the tenants must be equal (a resource without tenant only uses clusters without tenant);
    /// - a cluster with a workspace serves only that workspace; a cluster without workspace serves
    ///   every workspace of its tenant.
    pub fn may_use(&self, cluster: &Tenancy) -> bool {
        self.tenant == cluster.tenant
            && (cluster.workspace.is_none() || cluster.workspace == self.workspace)
    }

    /// The sentence refusing the placement of `resource` (e.g. `FederatedDeployment shop/web`) of
    /// this tenancy on `cluster_name` of tenancy `cluster`, or `None` if it is allowed. It names
    /// the requester's tenancy only, never the cluster's owner (another tenant's name is not the
    /// requester's to know).
    pub fn refusal(&self, resource: &str, cluster_name: &str, cluster: &Tenancy) -> Option<String> {
        (!self.may_use(cluster)).then(|| {
            format!(
                "{resource} belongs to {self} and cannot be placed on cluster {cluster_name:?}: the cluster is not available to {self}; place it on clusters or cells of its own tenant and workspace"
            )
        })
    }
}

impl Tenancy {
    /// Why a Cell of this tenancy may not run on base cluster `cluster` of tenancy `base`, or
    /// `None` if it may: a base cluster without tenant is shared by every tenant's cells; one
    /// with a tenant serves only that tenant's (and, with a workspace, that workspace's) cells.
    /// The sentence never names the other tenant.
    pub fn base_cluster_refusal(&self, cluster: &str, base: &Tenancy) -> Option<String> {
        (base.tenant.is_some() && !self.may_use(base)).then(|| {
            format!(
                "spec.clusterName: cluster {cluster:?} belongs to another tenant or workspace; a Cell of {self} may only run on clusters of its own tenant or on shared clusters without a tenant"
            )
        })
    }
}

/// Whether no Cell may use `namespace` as its member namespace: `default` and every `kube-*`
/// namespace (Kubernetes reserves the prefix: `kube-system`, `kube-public`, `kube-node-lease`,
/// `kube-federation-system`).
pub fn reserved_namespace(namespace: &str) -> bool {
    namespace == "default" || namespace.starts_with("kube-")
}

/// Whether Cell `a` was created before Cell `b` (creation time, then namespace/name; a Cell not
/// stored yet is the newest).
fn older(a: &Cell, b: &Cell) -> bool {
    let key = |c: &Cell| {
        (
            c.metadata.creation_timestamp.is_none(),
            c.metadata.creation_timestamp.as_ref().map(|t| t.0),
            c.namespace().unwrap_or_default(),
            c.name_any(),
        )
    };
    key(a) < key(b)
}

/// Why `cell`'s member namespace (`spec.memberNamespace`, by default the Cell's own namespace)
/// does not belong to the Cell's tenant, or `None` when it does (pure). The rule:
///
/// 1. never `default` or a `kube-*` namespace ([`reserved_namespace`]), whatever the gate says;
/// 2. with `isolation` (the `TenantIsolation` gate) the member namespace must be the Cell's own
///    namespace (the default), or start with `<cell namespace>-` or `<tenant>-`;
/// 3. a namespace of that name on the federation host, if any, has the Cell's tenancy (its
///    resources propagate into the member namespace of the same name);
/// 4. no older Cell of another tenant or workspace uses it (first come, first served, so a
///    newcomer cannot take a namespace away from its owner).
///
/// `namespace_tenancy(ns)` is the tenancy of host namespace `ns` (None when it does not exist);
/// `cells` are all Cells (`cell` itself among them is skipped). Sentences never name another
/// tenant.
pub fn member_namespace_problem<'a>(
    cell: &Cell,
    namespace_tenancy: impl Fn(&str) -> Option<Tenancy>,
    cells: impl IntoIterator<Item = &'a Cell>,
    isolation: bool,
) -> Option<String> {
    let own_ns = cell.namespace().unwrap_or_default();
    let target = cell.member_namespace(&own_ns);
    let field = if cell.spec.member_namespace.is_some() {
        "spec.memberNamespace"
    } else {
        "metadata.namespace (the default spec.memberNamespace)"
    };
    if reserved_namespace(target) {
        return Some(format!(
            "{field}: namespace {target:?} is reserved for the system; give the Cell a namespace of its own, e.g. \"{own_ns}-{}\"",
            cell.name_any()
        ));
    }
    if !isolation || target == own_ns {
        return None;
    }
    let own = namespace_tenancy(&own_ns).unwrap_or_default();
    let mut prefixes = vec![format!("{own_ns}-")];
    if let Some(t) = &own.tenant
        && *t != own_ns
    {
        prefixes.push(format!("{t}-"));
    }
    if !prefixes.iter().any(|p| target.starts_with(p.as_str())) {
        let allowed = prefixes
            .iter()
            .map(|p| format!("{p:?}"))
            .collect::<Vec<_>>()
            .join(" or ");
        return Some(format!(
            "{field}: namespace {target:?} is not a namespace of this Cell's tenant ({own}): use the Cell's own namespace {own_ns:?} (the default) or a namespace starting with {allowed}"
        ));
    }
    if namespace_tenancy(target).is_some_and(|t| t != own) {
        return Some(format!(
            "{field}: namespace {target:?} is a namespace of another tenant or workspace on the federation; choose another member namespace"
        ));
    }
    let taken = cells.into_iter().any(|other| {
        let other_ns = other.namespace().unwrap_or_default();
        let same = other_ns == own_ns && other.name_any() == cell.name_any();
        !same
            && other.member_namespace(&other_ns) == target
            && namespace_tenancy(&other_ns).unwrap_or_default() != own
            && older(other, cell)
    });
    taken.then(|| {
        format!(
            "{field}: namespace {target:?} is already used by a Cell of another tenant or workspace; choose another member namespace"
        )
    })
}

impl fmt::Display for Tenancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.tenant, &self.workspace) {
            (None, _) => f.write_str("no tenant"),
            (Some(t), None) => write!(f, "tenant {t:?}"),
            (Some(t), Some(w)) => write!(f, "tenant {t:?} workspace {w:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(tenant: Option<&str>, workspace: Option<&str>) -> Tenancy {
        Tenancy {
            tenant: tenant.map(Into::into),
            workspace: workspace.map(Into::into),
        }
    }

    #[test]
    fn labels_are_read_and_empty_values_ignored() {
        let labels: BTreeMap<String, String> = [
            (TENANT_LABEL.to_owned(), "acme".to_owned()),
            (WORKSPACE_LABEL.to_owned(), String::new()),
        ]
        .into();
        assert_eq!(Tenancy::from_labels(Some(&labels)), t(Some("acme"), None));
        assert_eq!(Tenancy::from_labels(None), Tenancy::default());
    }

    #[test]
    fn tenants_only_use_their_own_clusters() {
        let acme_shop = t(Some("acme"), Some("shop"));
        assert!(acme_shop.may_use(&t(Some("acme"), Some("shop"))));
        assert!(
            acme_shop.may_use(&t(Some("acme"), None)),
            "tenant-wide cluster"
        );
        assert!(!acme_shop.may_use(&t(Some("acme"), Some("blog"))));
        assert!(!acme_shop.may_use(&t(Some("other"), Some("shop"))));
        assert!(
            !acme_shop.may_use(&t(None, None)),
            "untenanted base cluster"
        );
        assert!(t(None, None).may_use(&t(None, None)));
        assert!(!t(None, None).may_use(&t(Some("acme"), None)));
    }

    fn cell(ns: &str, name: &str, member_ns: Option<&str>, created: Option<i64>) -> Cell {
        let mut c = Cell::new(
            name,
            crate::CellSpec {
                cluster_name: "member1".into(),
                member_namespace: member_ns.map(Into::into),
            },
        );
        c.metadata.namespace = Some(ns.into());
        c.metadata.creation_timestamp = created.map(|s| {
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::from_second(s).unwrap(),
            )
        });
        c
    }

    fn none() -> &'static [Cell] {
        &[]
    }

    /// Host namespaces: shop and shop-x of acme, demo of tenant demo, ops without tenant.
    fn host(ns: &str) -> Option<Tenancy> {
        match ns {
            "shop" | "shop-x" => Some(t(Some("acme"), None)),
            "demo" => Some(t(Some("demo"), None)),
            "ops" => Some(t(None, None)),
            _ => None,
        }
    }

    #[test]
    fn member_namespaces_belong_to_the_cells_tenant() {
        let check = |c: &Cell, others: &[Cell]| member_namespace_problem(c, host, others, true);
        // the default (own namespace), <namespace>-…, <tenant>-…, an acme host namespace
        for ok in [None, Some("shop-rz00a"), Some("acme-rz00a"), Some("shop-x")] {
            assert_eq!(check(&cell("shop", "rz00a", ok, None), &[]), None, "{ok:?}");
        }
        // another tenant's namespace: neither its own nor prefixed, and named on the host
        let msg = check(&cell("shop", "rz00a", Some("demo"), None), &[]).unwrap();
        assert!(
            msg.starts_with("spec.memberNamespace: namespace \"demo\" is not a namespace of this Cell's tenant (tenant \"acme\")"),
            "{msg}"
        );
        assert!(msg.contains("\"shop-\" or \"acme-\""), "{msg}");
        // an untenanted cell may use its own prefix only
        let msg = check(&cell("ops", "c", Some("acme-x"), None), &[]).unwrap();
        assert!(msg.contains("(no tenant)"), "{msg}");
        assert_eq!(check(&cell("ops", "c", Some("ops-c"), None), &[]), None);
        // system namespaces are never a member namespace, gate or not
        for reserved in [
            "kube-system",
            "kube-public",
            "default",
            "kube-federation-system",
        ] {
            let c = cell("shop", "rz00a", Some(reserved), None);
            let msg = member_namespace_problem(&c, host, none(), false).unwrap();
            assert!(msg.contains("reserved"), "{msg}");
        }
        assert_eq!(
            member_namespace_problem(&cell("shop", "c", Some("demo"), None), host, none(), false),
            None,
            "without TenantIsolation only reserved namespaces are refused"
        );
    }

    #[test]
    fn a_host_namespace_or_an_older_cell_of_another_tenant_keeps_its_namespace() {
        // a host namespace "acme-shop" of tenant demo: its resources land in member namespace
        // "acme-shop", so acme's cell may not write there although the prefix matches
        let host = |ns: &str| match ns {
            "acme-shop" | "demo" => Some(t(Some("demo"), None)),
            other => super::tests::host(other),
        };
        let msg = member_namespace_problem(
            &cell("shop", "c", Some("acme-shop"), None),
            host,
            none(),
            true,
        )
        .unwrap();
        assert!(msg.contains("another tenant or workspace"), "{msg}");
        assert!(!msg.contains("demo"), "names the other tenant: {msg}");
        // tenant "acme-x"'s old cell uses "acme-x-db"; acme's newer cell may not take it
        let host = |ns: &str| match ns {
            "xdb" => Some(t(Some("acme-x"), None)),
            other => super::tests::host(other),
        };
        let theirs = cell("xdb", "db", Some("acme-x-db"), Some(10));
        let mine = cell("shop", "c", Some("acme-x-db"), Some(20));
        let msg = member_namespace_problem(&mine, host, [&theirs, &mine], true).unwrap();
        assert!(msg.contains("already used by a Cell"), "{msg}");
        // the older one is not refused for the newcomer (first come, first served)
        let fresh = cell("shop", "c", Some("acme-x-db"), None);
        assert_eq!(
            member_namespace_problem(&theirs, host, [&theirs, &fresh], true)
                .filter(|m| m.contains("already used")),
            None
        );
        // two cells of one tenant sharing a name is admission's concern (per cluster), not this
        let sibling = cell("shop", "d", Some("shop-x"), Some(1));
        assert_eq!(
            member_namespace_problem(
                &cell("shop", "c", Some("shop-x"), Some(2)),
                host,
                [&sibling],
                true
            ),
            None
        );
    }

    #[test]
    fn base_clusters_serve_their_tenant_or_everyone() {
        let acme = t(Some("acme"), Some("web"));
        assert_eq!(acme.base_cluster_refusal("m", &t(None, None)), None);
        assert_eq!(acme.base_cluster_refusal("m", &t(Some("acme"), None)), None);
        let msg = acme
            .base_cluster_refusal("member2", &t(Some("globex"), None))
            .unwrap();
        assert!(
            msg.contains("\"member2\" belongs to another tenant"),
            "{msg}"
        );
        assert!(!msg.contains("globex"), "{msg}");
    }

    #[test]
    fn refusal_names_the_requester_never_the_owner() {
        let msg = t(Some("acme"), Some("shop"))
            .refusal(
                "FederatedDeployment shop/web",
                "rz00a.blog",
                &t(Some("acme"), Some("blog")),
            )
            .unwrap();
        assert!(
            msg.contains(
                "FederatedDeployment shop/web belongs to tenant \"acme\" workspace \"shop\""
            ),
            "{msg}"
        );
        assert!(
            msg.contains(
                "cluster \"rz00a.blog\": the cluster is not available to tenant \"acme\" workspace \"shop\""
            ),
            "{msg}"
        );
        assert!(
            !msg.contains("workspace \"blog\""),
            "names the owner: {msg}"
        );
        let msg = t(Some("acme"), None)
            .refusal(
                "FederatedDeployment shop/web",
                "b1",
                &t(Some("globex"), Some("x")),
            )
            .unwrap();
        assert!(!msg.contains("globex") && !msg.contains("\"x\""), "{msg}");
        assert!(t(None, None).refusal("x", "c", &t(None, None)).is_none());
    }
}
