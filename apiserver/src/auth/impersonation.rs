//! Impersonation (`kubectl --as`, `--as-group`, `--as-uid`), as kube-apiserver's filter does
//! it: the `Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid` and
//! `Impersonate-Extra-<key>` headers replace the authenticated user, once the requester may
//! `impersonate` each of them (`users`, `serviceaccounts`, `groups`, `uids`, `userextras/<key>`
//! in the core and `authentication.k8s.io` groups as kube checks them). An impersonated user is in
//! `system:authenticated`; an impersonated ServiceAccount also in its ServiceAccount groups.

use cellfed_auth::UserInfo;
use cellfed_auth::rbac::Attributes;
use cellfed_auth::user::{
    ALL_AUTHENTICATED, service_account_groups, split_service_account_username,
};
use http::HeaderMap;

use super::Security;
use crate::error::ApiError;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";

/// The user the request acts as: `user` itself without impersonation headers, the impersonated
/// user when `user` may impersonate it, else kube's 403 (or 400 for incomplete headers).
pub fn impersonate(
    security: &Security,
    user: UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let name = values(USER).into_iter().next();
    let groups = values(GROUP);
    let uid = values(UID).into_iter().next();
    let mut extra = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (header, value) in headers {
        if let Some(key) = header.as_str().strip_prefix(EXTRA_PREFIX)
            && let Ok(v) = value.to_str()
        {
            let key = percent_decode(key);
            extra.entry(key).or_default().push(v.to_string());
        }
    }
    let Some(name) = name else {
        if !groups.is_empty() || uid.is_some() || !extra.is_empty() {
            return Err(ApiError::bad_request(
                "requested impersonation of groups, uid or extra without impersonating a user",
            ));
        }
        return Ok(user);
    };
    let mut checks = Vec::new();
    let check = |resource: &str, group: &str, name: &str| {
        Attributes::resource(user.clone(), "impersonate", group, resource).name(name)
    };
    let service_account =
        split_service_account_username(&name).map(|(ns, n)| (ns.to_string(), n.to_string()));
    match &service_account {
        Some((ns, n)) => checks.push(check("serviceaccounts", "", n).namespace(ns)),
        None => checks.push(check("users", "", &name)),
    }
    for g in &groups {
        checks.push(check("groups", "", g));
    }
    if let Some(uid) = &uid {
        checks.push(check("uids", "authentication.k8s.io", uid));
    }
    for (key, vals) in &extra {
        for v in vals {
            checks.push(check("userextras", "authentication.k8s.io", v).subresource(key));
        }
    }
    for attrs in &checks {
        let decision = security.decide(attrs);
        if !decision.is_allowed() {
            return Err(super::forbidden(attrs, decision.reason()));
        }
    }
    let mut groups = groups;
    if let Some((ns, _)) = &service_account {
        for g in service_account_groups(ns) {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    if name != cellfed_auth::user::ANONYMOUS && !groups.iter().any(|g| g == ALL_AUTHENTICATED) {
        groups.push(ALL_AUTHENTICATED.to_string());
    }
    Ok(UserInfo {
        name,
        uid: uid.unwrap_or_default(),
        groups,
        extra,
    })
}

/// Header names carry extra keys percent-encoded (kube: `url.PathUnescape`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Authenticator, Mode, RbacCache};
    use http::HeaderValue;

    fn security() -> Security {
        Security {
            authn: Authenticator::default(),
            modes: vec![Mode::Rbac],
            rbac: RbacCache::bootstrap_only(),
            issuer: None,
        }
    }

    #[test]
    fn only_those_allowed_to_impersonate_may() {
        let mut h = HeaderMap::new();
        let admin = UserInfo::new("root", ["system:masters"]);
        assert_eq!(impersonate(&security(), admin.clone(), &h).unwrap(), admin);
        h.insert(
            USER,
            HeaderValue::from_static("system:serviceaccount:ns:sa"),
        );
        h.append(GROUP, HeaderValue::from_static("devs"));
        h.insert(
            "impersonate-extra-scopes%2Fa",
            HeaderValue::from_static("x"),
        );
        let as_sa = impersonate(&security(), admin, &h).unwrap();
        assert_eq!(as_sa.name, "system:serviceaccount:ns:sa");
        assert_eq!(
            as_sa.groups,
            [
                "devs",
                "system:serviceaccounts",
                "system:serviceaccounts:ns",
                "system:authenticated"
            ]
        );
        assert_eq!(as_sa.extra["scopes/a"], ["x"]);

        let bob = UserInfo::new("bob", ["system:authenticated"]);
        let mut h = HeaderMap::new();
        h.insert(USER, HeaderValue::from_static("alice"));
        let e = impersonate(&security(), bob.clone(), &h).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "users \"alice\" is forbidden: User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        );
        let mut h = HeaderMap::new();
        h.insert(GROUP, HeaderValue::from_static("devs"));
        assert_eq!(impersonate(&security(), bob, &h).unwrap_err().code, 400);
    }
}
