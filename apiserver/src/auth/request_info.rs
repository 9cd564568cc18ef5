//! What a request asks to do, read from its method, path and query exactly as kube-apiserver's
//! `RequestInfoFactory` reads it: `/api/v1/…` and `/apis/<group>/<version>/…` are resource
//! requests (verb from the method, `list`/`watch` for collection GETs, `deletecollection` for
//! collection DELETEs, the legacy `/watch/` prefix, a `metadata.name=` field selector naming the
//! object), everything else (`/healthz`, `/api`, `/apis/<group>/<version>`, `/openapi/v2`) is a
//! non-resource request whose verb is the lower-cased method.

use cellfed_auth::UserInfo;
use cellfed_auth::rbac::Attributes;
use http::Method;

/// kube's `RequestInfo`, the part authorization uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Whether the path names an API resource.
    pub resource_request: bool,
    /// The URL path.
    pub path: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or for
    /// non-resource requests the lower-cased method.
    pub verb: String,
    /// The API group, empty for the core group.
    pub api_group: String,
    /// The API version.
    pub api_version: String,
    /// The namespace, empty for cluster-scoped requests.
    pub namespace: String,
    /// The resource (`configmaps`).
    pub resource: String,
    /// The subresource (`status`, `token`), or empty.
    pub subresource: String,
    /// The object name, empty for collections.
    pub name: String,
}

impl RequestInfo {
    /// Reads a request as kube does.
    pub fn new(method: &Method, path: &str, query: Option<&str>) -> Self {
        let mut info = Self {
            path: path.to_string(),
            verb: method.as_str().to_ascii_lowercase(),
            ..Self::default()
        };
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
            return info;
        }
        let mut rest = &parts[1..];
        if parts[0] == "apis" {
            if rest.len() < 3 {
                return info;
            }
            info.api_group = rest[0].to_string();
            rest = &rest[1..];
        }
        info.resource_request = true;
        info.api_version = rest[0].to_string();
        rest = &rest[1..];
        if matches!(rest.first(), Some(&"watch") | Some(&"proxy")) {
            if rest.len() < 2 {
                // kube refuses such a request; nothing below would grant it.
                info.resource_request = false;
                return info;
            }
            info.verb = rest[0].to_string();
            rest = &rest[1..];
        } else {
            info.verb = match *method {
                Method::POST => "create",
                Method::GET | Method::HEAD => "get",
                Method::PUT => "update",
                Method::PATCH => "patch",
                Method::DELETE => "delete",
                _ => "",
            }
            .to_string();
        }
        if rest.first() == Some(&"namespaces")
            && let Some(ns) = rest.get(1)
        {
            info.namespace = ns.to_string();
            // `namespaces/<ns>/<resource>…`, unless `namespaces/<ns>/status|finalize`.
            if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
                rest = &rest[2..];
            }
        }
        if rest.len() >= 3 && info.verb != "proxy" {
            info.subresource = rest[2].to_string();
        }
        if rest.len() >= 2 {
            info.name = rest[1].to_string();
        }
        if let Some(r) = rest.first() {
            info.resource = r.to_string();
        }
        if info.name.is_empty() && info.verb == "get" {
            let query = parse_query(query);
            let watch = query
                .iter()
                .find(|(k, _)| k == "watch")
                .is_some_and(|(_, v)| !matches!(v.to_ascii_lowercase().as_str(), "false" | "0"));
            info.verb = if watch { "watch" } else { "list" }.into();
            if let Some((_, selector)) = query.iter().find(|(k, _)| k == "fieldSelector")
                && let Some(name) = exact_name(selector)
            {
                info.name = name;
            }
        }
        if info.name.is_empty() && info.verb == "delete" {
            info.verb = "deletecollection".into();
        }
        info
    }

    /// The authorization attributes of this request by `user`.
    pub fn attributes(&self, user: UserInfo) -> Attributes {
        Attributes {
            user,
            verb: self.verb.clone(),
            resource_request: self.resource_request,
            namespace: self.namespace.clone(),
            api_group: self.api_group.clone(),
            api_version: self.api_version.clone(),
            resource: self.resource.clone(),
            subresource: self.subresource.clone(),
            name: self.name.clone(),
            path: self.path.clone(),
        }
    }

    /// Whether the request may change something.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
}

fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default()
}

/// The name a field selector requires exactly (`metadata.name=x` or `metadata.name==x`, alone or
/// among other terms), if it is a valid path segment.
fn exact_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let value = term
            .trim()
            .strip_prefix("metadata.name")?
            .trim_start()
            .strip_prefix('=')?;
        let value = value.strip_prefix('=').unwrap_or(value).trim();
        let valid = !value.is_empty() && value != "." && value != ".." && !value.contains('/');
        valid.then(|| value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: Method, path: &str) -> RequestInfo {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        RequestInfo::new(&method, path, query)
    }

    fn summary(i: &RequestInfo) -> String {
        format!(
            "{} {}|{}|{}|{}|{}|{}",
            i.resource_request, i.verb, i.api_group, i.namespace, i.resource, i.subresource, i.name
        )
    }

    #[test]
    fn resource_requests_read_like_kube() {
        let cases = [
            (
                Method::GET,
                "/api/v1/namespaces",
                "true list|||namespaces||",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/ns",
                "true get||ns|namespaces||ns",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/ns/status",
                "true get||ns|namespaces|status|ns",
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/ns/finalize",
                "true update||ns|namespaces|finalize|ns",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/ns/configmaps",
                "true list||ns|configmaps||",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/ns/configmaps?watch=true",
                "true watch||ns|configmaps||",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/ns/configmaps?watch=0",
                "true list||ns|configmaps||",
            ),
            (
                Method::GET,
                "/api/v1/watch/namespaces/ns/configmaps",
                "true watch||ns|configmaps||",
            ),
            (
                Method::GET,
                "/api/v1/configmaps",
                "true list|||configmaps||",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/ns/configmaps?fieldSelector=metadata.name%3Dweb",
                "true list||ns|configmaps||web",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/ns/configmaps/web",
                "true get||ns|configmaps||web",
            ),
            (
                Method::POST,
                "/api/v1/namespaces/ns/configmaps",
                "true create||ns|configmaps||",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/ns/configmaps",
                "true deletecollection||ns|configmaps||",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/ns/configmaps/web",
                "true delete||ns|configmaps||web",
            ),
            (
                Method::PATCH,
                "/apis/apps/v1/namespaces/ns/deployments/web/scale",
                "true patch|apps|ns|deployments|scale|web",
            ),
            (
                Method::POST,
                "/api/v1/namespaces/ns/serviceaccounts/sa/token",
                "true create||ns|serviceaccounts|token|sa",
            ),
            (
                Method::POST,
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                "true create|authorization.k8s.io||selfsubjectaccessreviews||",
            ),
            (
                Method::GET,
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/view",
                "true get|rbac.authorization.k8s.io||clusterroles||view",
            ),
        ];
        for (method, path, want) in cases {
            assert_eq!(
                summary(&info(method.clone(), path)),
                want,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn discovery_and_health_are_non_resource_requests() {
        for path in [
            "/",
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps",
            "/apis/apps/v1",
            "/healthz",
            "/openapi/v2",
            "/openapi/v3/apis/apps/v1",
            "/version",
        ] {
            let i = info(Method::GET, path);
            assert!(!i.resource_request, "{path}");
            assert_eq!(i.verb, "get");
            assert_eq!(i.path, path);
        }
        assert_eq!(info(Method::POST, "/healthz").verb, "post");
    }

    #[test]
    fn field_selectors_name_objects_only_when_exact() {
        assert_eq!(exact_name("metadata.name=web"), Some("web".into()));
        assert_eq!(exact_name("metadata.name==web,a=b"), Some("web".into()));
        assert_eq!(exact_name("metadata.name!=web"), None);
        assert_eq!(exact_name("metadata.namespace=x"), None);
        assert_eq!(exact_name("metadata.name=a/b"), None);
    }
}
