//! Who a request comes from, as Kubernetes' `user.Info` says it: name, uid, groups and extra
//! values, plus the well-known names every authenticator and RBAC rule refers to.

use std::collections::BTreeMap;

/// Every authenticated user is in this group (added by the authentication chain).
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// The group of requests no authenticator recognised (anonymous requests).
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The all-powerful group: its members pass authorization without consulting RBAC.
pub const SYSTEM_PRIVILEGED_GROUP: &str = "system:masters";
/// The user name of anonymous requests.
pub const ANONYMOUS: &str = "system:anonymous";
/// Every ServiceAccount is in this group.
pub const ALL_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// The prefix of ServiceAccount user names: `system:serviceaccount:<namespace>:<name>`.
pub const SERVICE_ACCOUNT_USERNAME_PREFIX: &str = "system:serviceaccount:";
/// The `extra` key naming the credential a request used (`JTI=…`, `X509SHA256=…`).
pub const CREDENTIAL_ID_KEY: &str = "authentication.kubernetes.io/credential-id";

/// The identity of a request, as kube's `user.DefaultInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name (`alice`, `system:serviceaccount:ns:sa`).
    pub name: String,
    /// A unique id that survives renames, when the authenticator knows one.
    pub uid: String,
    /// The groups the user belongs to, in the order the authenticator gave them.
    pub groups: Vec<String>,
    /// Additional attributes (ServiceAccount pod binding, credential id, …).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user with a name and groups, nothing else.
    pub fn new(
        name: impl Into<String>,
        groups: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            groups: groups.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// The anonymous user (`system:anonymous` in `system:unauthenticated`).
    pub fn anonymous() -> Self {
        Self::new(ANONYMOUS, [ALL_UNAUTHENTICATED])
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// Whether the user is in `system:masters`, the group that bypasses authorization.
    pub fn is_privileged(&self) -> bool {
        self.in_group(SYSTEM_PRIVILEGED_GROUP)
    }

    /// Adds `system:authenticated` as kube's `AuthenticatedGroupAdder` does: not for the
    /// anonymous user, and not when the user already carries `system:authenticated` or
    /// `system:unauthenticated`.
    pub fn with_authenticated_group(mut self) -> Self {
        if self.name != ANONYMOUS
            && !self.in_group(ALL_AUTHENTICATED)
            && !self.in_group(ALL_UNAUTHENTICATED)
        {
            self.groups.push(ALL_AUTHENTICATED.to_string());
        }
        self
    }

    /// The namespace and name when this is a ServiceAccount user.
    pub fn service_account(&self) -> Option<(&str, &str)> {
        split_service_account_username(&self.name)
    }
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USERNAME_PREFIX}{namespace}:{name}")
}

/// `system:serviceaccounts:<namespace>`, the group of every ServiceAccount in a namespace.
pub fn service_account_namespace_group(namespace: &str) -> String {
    format!("{ALL_SERVICE_ACCOUNTS}:{namespace}")
}

/// The groups kube gives a ServiceAccount: `system:serviceaccounts` and
/// `system:serviceaccounts:<namespace>`.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        ALL_SERVICE_ACCOUNTS.to_string(),
        service_account_namespace_group(namespace),
    ]
}

/// Splits `system:serviceaccount:<namespace>:<name>` (both parts non-empty, no further `:`).
pub fn split_service_account_username(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix(SERVICE_ACCOUNT_USERNAME_PREFIX)?;
    let (namespace, name) = rest.split_once(':')?;
    if namespace.is_empty() || name.is_empty() || name.contains(':') {
        return None;
    }
    Some((namespace, name))
}

/// Whether `username` is the ServiceAccount `namespace/name` (kube's `MatchesUsername`).
pub fn matches_service_account(namespace: &str, name: &str, username: &str) -> bool {
    username
        .strip_prefix(SERVICE_ACCOUNT_USERNAME_PREFIX)
        .and_then(|rest| rest.strip_prefix(namespace))
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|rest| rest == name)
}

impl From<UserInfo> for k8s_openapi::api::authentication::v1::UserInfo {
    fn from(u: UserInfo) -> Self {
        Self {
            username: Some(u.name),
            uid: Some(u.uid).filter(|s| !s.is_empty()),
            groups: Some(u.groups).filter(|g| !g.is_empty()),
            extra: Some(u.extra).filter(|e| !e.is_empty()),
        }
    }
}

impl From<k8s_openapi::api::authentication::v1::UserInfo> for UserInfo {
    fn from(u: k8s_openapi::api::authentication::v1::UserInfo) -> Self {
        Self {
            name: u.username.unwrap_or_default(),
            uid: u.uid.unwrap_or_default(),
            groups: u.groups.unwrap_or_default(),
            extra: u.extra.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticated_group_is_added_once_and_never_to_anonymous() {
        let u = UserInfo::new("alice", ["dev"]).with_authenticated_group();
        assert_eq!(u.groups, ["dev", ALL_AUTHENTICATED]);
        assert_eq!(u.clone().with_authenticated_group(), u);
        let anon = UserInfo::anonymous().with_authenticated_group();
        assert_eq!(anon.groups, [ALL_UNAUTHENTICATED]);
    }

    #[test]
    fn service_account_names_round_trip() {
        let name = service_account_username("ns", "builder");
        assert_eq!(name, "system:serviceaccount:ns:builder");
        assert_eq!(
            split_service_account_username(&name),
            Some(("ns", "builder"))
        );
        assert!(matches_service_account("ns", "builder", &name));
        assert!(!matches_service_account("ns", "build", &name));
        assert!(!matches_service_account("n", "s:builder", &name));
        assert_eq!(
            split_service_account_username("system:serviceaccount:ns"),
            None
        );
        assert_eq!(
            split_service_account_username("system:serviceaccount::x"),
            None
        );
        assert_eq!(
            service_account_groups("ns"),
            ["system:serviceaccounts", "system:serviceaccounts:ns"]
        );
    }

    #[test]
    fn converts_to_and_from_the_kubernetes_type() {
        let mut u = UserInfo::new("alice", ["dev"]);
        u.uid = "42".into();
        let k: k8s_openapi::api::authentication::v1::UserInfo = u.clone().into();
        assert_eq!(k.username.as_deref(), Some("alice"));
        assert_eq!(k.extra, None);
        assert_eq!(UserInfo::from(k), u);
    }
}
