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
