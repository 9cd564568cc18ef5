//! Tenant isolation rule (feature gate `TenantIsolation`), shared by the admission webhook (which
//! refuses a placement) and the controller (which never writes): who may use which cluster.
//!
//! Tenancy is read from the labels `cellfed.io/tenant` and `cellfed.io/workspace` of the federated
//! resource's namespace (of the resource itself when cluster-scoped) and of each `KubeFedCluster`.

use std::collections::BTreeMap;
use std::fmt;

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
    /// this tenancy on `cluster_name` of tenancy `cluster`, or `None` if it is allowed.
    pub fn refusal(&self, resource: &str, cluster_name: &str, cluster: &Tenancy) -> Option<String> {
        (!self.may_use(cluster)).then(|| {
            format!(
                "{resource} belongs to {self} and cannot be placed on cluster {cluster_name:?}, which belongs to {cluster}; place it on clusters or cells of its own tenant and workspace"
            )
        })
    }
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

    #[test]
    fn refusal_names_both_sides() {
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
                "cluster \"rz00a.blog\", which belongs to tenant \"acme\" workspace \"blog\""
            ),
            "{msg}"
        );
        assert!(t(None, None).refusal("x", "c", &t(None, None)).is_none());
    }
}
