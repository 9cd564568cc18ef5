//! Discovery: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/<g>[/<v>]` in the legacy forms and
//! the aggregated `apidiscovery.k8s.io/v2` (and v2beta1) forms client-go 1.30+ asks for first.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, header};
use serde_json::{Value, json};

use crate::registry::{Registry, Resource};

/// The Kubernetes version we answer as.
pub const MAJOR: &str = "1";
pub const MINOR: &str = "32";

pub fn version() -> Value {
    json!({
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": format!("v{MAJOR}.{MINOR}.0-cellfed"),
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "n/a (rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else if cfg!(target_arch = "aarch64") { "arm64" } else { std::env::consts::ARCH }),
    })
}

/// Which aggregated discovery version the Accept header asks for, if any (first match wins,
/// as content negotiation in kube-apiserver does).
pub fn aggregated_version(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        let has = |p: &str| params.contains(&p);
        if params.first() == Some(&"application/json")
            && has("g=apidiscovery.k8s.io")
            && has("as=APIGroupDiscoveryList")
        {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
        }
        if matches!(params.first(), Some(&"application/json") | Some(&"*/*")) && params.len() == 1 {
            return None;
        }
    }
    None
}

fn json_response(body: Value, content_type: &str) -> Response {
    let mut r = body.to_string().into_response();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    r
}

fn scope(r: &Resource) -> &'static str {
    if r.namespaced {
        "Namespaced"
    } else {
        "Cluster"
    }
}

fn subresource_kind(r: &Resource, sub: &str) -> Value {
    match sub {
        "scale" => json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}),
        "token" => {
            json!({"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"})
        }
        _ => json!({"group": r.group, "version": r.version, "kind": r.kind}),
    }
}

/// The subresources discovery lists: the resource's own, plus `serviceaccounts/token`
/// (TokenRequest), which is served by the authentication code rather than the registry.
fn discovered_subresources(r: &Resource) -> Vec<(&str, &'static [&'static str])> {
    let mut subs: Vec<(&str, &'static [&'static str])> = r
        .subresources
        .iter()
        .map(|s| (s.as_str(), &["get", "patch", "update"][..]))
        .collect();
    if r.group.is_empty() && r.plural == "serviceaccounts" {
        subs.push(("token", crate::registry::CREATE_ONLY));
    }
    subs
}

/// The aggregated list for `/api` (core only) or `/apis` (all other groups).
pub fn aggregated(registry: &Registry, core: bool, version: &str) -> Response {
    let all = registry.all();
    let items: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = all
                        .iter()
                        .filter(|r| r.group == group && &r.version == v)
                        .map(|r| {
                            let subs: Vec<Value> = discovered_subresources(r)
                                .into_iter()
                                .map(|(s, verbs)| json!({"subresource": s, "responseKind": subresource_kind(r, s), "verbs": verbs}))
                                .collect();
                            let mut o = json!({
                                "resource": r.plural,
                                "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                                "scope": scope(r),
                                "singularResource": r.singular,
                                "verbs": r.verbs,
                            });
                            if !r.short_names.is_empty() {
                                o["shortNames"] = json!(r.short_names);
                            }
                            if !r.categories.is_empty() {
                                o["categories"] = json!(r.categories);
                            }
                            if !subs.is_empty() {
                                o["subresources"] = json!(subs);
                            }
                            o
                        })
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    });
    json_response(
        body,
        &format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"),
    )
}

pub fn api_versions() -> Response {
    json_response(
        json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}),
        "application/json",
    )
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

pub fn api_group_list(registry: &Registry) -> Response {
    let groups: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_json(&g, &vs))
        .collect();
    json_response(
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
        "application/json",
    )
}

pub fn api_group(registry: &Registry, group: &str) -> Option<Response> {
    let (g, vs) = registry.groups().into_iter().find(|(g, _)| g == group)?;
    let mut body = group_json(&g, &vs);
    body["kind"] = json!("APIGroup");
    body["apiVersion"] = json!("v1");
    Some(json_response(body, "application/json"))
}

pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Response> {
    if !registry.serves_group_version(group, version) {
        return None;
    }
    let mut resources = Vec::new();
    for r in registry
        .all()
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut o = json!({
            "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
            "kind": r.kind, "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            o["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            o["categories"] = json!(r.categories);
        }
        resources.push(o);
        for (s, verbs) in discovered_subresources(r) {
            let k = subresource_kind(r, s);
            let mut o = json!({"name": format!("{}/{s}", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": k["kind"], "verbs": verbs});
            if s == "scale" || s == "token" {
                o["group"] = k["group"].clone();
                o["version"] = k["version"].clone();
            }
            resources.push(o);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json_response(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
        "application/json",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_accept_header_selects_v2() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"));
        assert_eq!(aggregated_version(&h), Some("v2"));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, */*"),
        );
        assert_eq!(aggregated_version(&h), None);
    }
}
