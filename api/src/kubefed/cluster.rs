//! `KubeFedCluster`: a member cluster the federation plane can reach.

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ConditionStatus;

/// Desired state of a KubeFedCluster: how to reach the member cluster.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "core.kubefed.io",
    version = "v1beta1",
    kind = "KubeFedCluster",
    doc = "KubeFedCluster configures the federation plane to be aware of a Kubernetes cluster and holds what is needed to talk to it. Its name is the cluster name used in placements and overrides.",
    plural = "kubefedclusters",
    namespaced,
    status = "KubeFedClusterStatus",
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct KubeFedClusterSpec {
    /// The API endpoint of the member cluster: a hostname, hostname:port, IP, IP:port or URL.
    pub api_endpoint: String,
    /// PEM certificate authority bundle to verify the member's API server (base64 in JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "bytes_schema")]
    pub ca_bundle: Option<ByteString>,
    /// Secret in the same namespace as this object holding the bearer token under the key `token`.
    pub secret_ref: LocalSecretReference,
    /// TLS checks to skip when connecting to the member: `*` (alone), `SubjectName` or `ValidityPeriod`.
    #[serde(
        rename = "disabledTLSValidations",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub disabled_tls_validations: Vec<TlsValidation>,
    /// Proxy URL to reach the member through.
    #[serde(rename = "proxyURL", default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
}

fn bytes_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "format": "byte" })
}

/// Reference to a Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct LocalSecretReference {
    /// Name of the Secret.
    pub name: String,
}

/// A TLS check that can be disabled.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TlsValidation {
    /// Every check.
    #[serde(rename = "*")]
    All,
    /// The server name in the certificate.
    SubjectName,
    /// The certificate's validity period.
    ValidityPeriod,
}

/// Observed state of a member cluster, updated by the cluster health check.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeFedClusterStatus {
    /// Current conditions of the cluster (`Ready`, `Offline`, `ConfigMalformed`).
    #[serde(default)]
    pub conditions: Vec<ClusterCondition>,
    /// Availability zones of the cluster's nodes, e.g. `us-east1-a`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// Region of all of the cluster's nodes, e.g. `us-east1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// A condition of a member cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCondition {
    /// Type of the condition.
    #[serde(rename = "type")]
    pub type_: ClusterConditionType,
    /// Status of the condition: True, False or Unknown.
    pub status: ConditionStatus,
    /// Last time the condition was probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<Time>,
    /// Last time the condition changed status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// One-word reason of the last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable details of the last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Type of a cluster condition.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ClusterConditionType {
    /// The cluster answers its health endpoint and accepts workloads.
    Ready,
    /// The cluster cannot be reached.
    Offline,
    /// cellfed: the access configuration (endpoint, CA bundle, secret) is unusable.
    ConfigMalformed,
}

/// The URL of a KubeFedCluster's `spec.apiEndpoint` as KubeFed accepts it (pure): a URL with
/// scheme `https` or `http`, or a bare `host`, `host:port`, `IP`, `IP:port` or `[IPv6]:port`,
/// which means `https://` + it. Fails with a sentence saying what is wrong.
///
/// KubeFed (client-go) picks `http://` for a bare host when the cluster has no `caBundle`;
/// cellfed always picks `https://`, so a bearer token is never sent in clear text by a guess.
pub fn api_endpoint_url(endpoint: &str) -> Result<String, String> {
    let endpoint = endpoint.trim();
    if endpoint.is_empty() {
        return Err("is required: the member's API server, e.g. https://10.0.0.1:6443".into());
    }
    let (scheme, rest) = match endpoint.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("https".to_string(), endpoint),
    };
    if scheme != "https" && scheme != "http" {
        return Err(format!(
            "{endpoint:?} has scheme {scheme:?}; use https:// (or http://), or host:port"
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let bare = !endpoint.contains("://");
    if authority.is_empty() || (bare && !path.is_empty()) {
        return Err(format!(
            "{endpoint:?}: host must be a URL or a host:port pair"
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err(format!("{endpoint:?}: an IPv6 address needs a closing ]"));
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{endpoint:?}: {addr:?} is not an IPv6 address"));
        }
        match after {
            "" => (authority, None),
            p => match p.strip_prefix(':') {
                Some(port) => (&authority[..authority.len() - p.len()], Some(port)),
                None => {
                    return Err(format!(
                        "{endpoint:?}: host must be a URL or a host:port pair"
                    ));
                }
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[')
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')));
    if !host_ok {
        return Err(format!(
            "{endpoint:?}: {host:?} is not a host name or IP address"
        ));
    }
    if let Some(port) = port
        && port.parse::<u16>().ok().filter(|p| *p > 0).is_none()
    {
        return Err(format!(
            "{endpoint:?}: port {port:?} must be a number between 1 and 65535"
        ));
    }
    Ok(format!("{scheme}://{authority}{path}"))
}

impl KubeFedCluster {
    /// The status of the `Ready` condition, if any.
    pub fn ready_status(&self) -> Option<ConditionStatus> {
        self.status.as_ref().and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == ClusterConditionType::Ready)
                .map(|c| c.status)
        })
    }

    /// Whether the cluster's `Ready` condition is `True`.
    pub fn is_ready(&self) -> bool {
        self.ready_status() == Some(ConditionStatus::True)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KubeFed's `TestValidateAPIEndpoint` cases (pkg/apis/core/v1beta1/validation).
    #[test]
    fn endpoints_kubefed_accepts() {
        for scheme in ["", "http://", "https://"] {
            for host in [
                "example.com",
                "my.example.com",
                "192.0.2.219",
                "[2001:db8:25a4:8d2::1]",
            ] {
                for port in ["", ":1", ":80", ":8080", ":65535"] {
                    for path in ["", "/", "/path/to/endpoint"] {
                        if scheme.is_empty() && !path.is_empty() {
                            continue;
                        }
                        let e = format!("{scheme}{host}{port}{path}");
                        let url = api_endpoint_url(&e).unwrap_or_else(|err| panic!("{e}: {err}"));
                        let want_scheme = if scheme.is_empty() {
                            "https://"
                        } else {
                            scheme
                        };
                        assert_eq!(url, format!("{want_scheme}{host}{port}{path}"));
                    }
                }
            }
        }
    }

    #[test]
    fn endpoints_kubefed_refuses() {
        for bad in [
            "",
            "https://",
            "example.com/path/to/somewhere",
            "192.0.2.35/path/to/somewhere",
            "example.com:0",
            "example.com:65536",
            "example.com:https",
            "ftp://example.com",
            "exa mple.com",
            "[::1",
        ] {
            assert!(api_endpoint_url(bad).is_err(), "{bad:?} accepted");
        }
        assert!(api_endpoint_url("ftp://x").unwrap_err().contains("scheme"));
    }
}
