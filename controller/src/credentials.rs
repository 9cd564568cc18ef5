//! Member credentials: the kubeconfig a member client is built from, taken from a KubeFedCluster
//! and its Secret (pure; nothing here runs a program, reads a file or touches the network).
//!
//! A member Secret may hold only data: the keys `token`, `ca.crt`, `tls.crt` + `tls.key` (a client
//! certificate), `proxyToken` (the tunnel's), or a whole `kubeconfig` whose users and clusters
//! carry nothing but data (`token`, `client-certificate-data`, `client-key-data`,
//! `certificate-authority-data`, basic auth, impersonation, TLS settings, `proxy-url`). A
//! kubeconfig with `exec` or `auth-provider` (programs and plugins kube-rs would run as the
//! controller), or with a file reference (`tokenFile`, `client-certificate`, `client-key`,
//! `certificate-authority`: files of the controller's own machine, e.g. its service-account
//! token), or with a field kube-rs does not know, is refused as a whole before kube-rs sees it:
//! the KubeFedCluster then reads `Ready=False`, reason `ClusterCredentialsRefused`, with a message
//! naming the field. Other keys of the Secret (a service-account token Secret's `namespace`, for
//! instance) are never read.

use base64::Engine as _;
use cellfed_api::kubefed::KubeFedCluster;
use k8s_openapi::api::core::v1::Secret;
use kube::config::{
    AuthInfo, Cluster, Context as KubeContext, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};

/// Reason of the `Ready` condition of a KubeFedCluster whose Secret holds credentials the
/// controller refuses to use.
pub const CREDENTIALS_REFUSED: &str = "ClusterCredentialsRefused";

/// Why no kubeconfig could be made for a member.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The cluster's Secret is not in the federation namespace (yet).
    #[error("secret {secret:?} of cluster {cluster} not found")]
    ReadSecret {
        /// The KubeFedCluster.
        cluster: String,
        /// Its `spec.secretRef.name`.
        secret: String,
    },
    /// The Secret has no credentials the controller knows.
    #[error(
        "secret {secret:?} of cluster {cluster} has neither token, tls.crt/tls.key nor kubeconfig; store the member's service-account token under key token"
    )]
    FindCredentials {
        /// The KubeFedCluster.
        cluster: String,
        /// Its `spec.secretRef.name`.
        secret: String,
    },
    /// The Secret's `kubeconfig` is not a kubeconfig.
    #[error(
        "secret {secret:?} of cluster {cluster}: key kubeconfig is not a valid kubeconfig ({reason}); nothing in it was used"
    )]
    ParseKubeconfig {
        /// The KubeFedCluster.
        cluster: String,
        /// Its `spec.secretRef.name`.
        secret: String,
        /// The parser's words.
        reason: String,
    },
    /// The Secret's `kubeconfig` asks for a program, a plugin or a file of the controller.
    #[error(
        "secret {secret:?} of cluster {cluster}: key kubeconfig: {field} {why}; cellfed accepts only data (token, certificate-authority-data, client-certificate-data/client-key-data), never exec, auth-provider or file paths: store the member's service-account token under key token (kubectl cellfed join mints one)"
    )]
    Refused {
        /// The KubeFedCluster.
        cluster: String,
        /// Its `spec.secretRef.name`.
        secret: String,
        /// Where in the kubeconfig, e.g. `users[0].user.exec`.
        field: String,
        /// What it would have made the controller do.
        why: &'static str,
    },
    /// `spec.apiEndpoint` is not a URL.
    #[error("spec.apiEndpoint of cluster {cluster}: {reason}")]
    ParseEndpoint {
        /// The KubeFedCluster.
        cluster: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// Whether the controller refused the credentials on purpose (the condition reason is then
    /// [`CREDENTIALS_REFUSED`]) rather than missing them.
    pub fn refused(&self) -> bool {
        matches!(self, Self::Refused { .. } | Self::ParseKubeconfig { .. })
    }
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kubeconfig of `cluster` from its Secret (pure): the Secret's `kubeconfig` when it holds
/// only data, otherwise one built from `apiEndpoint`, `caBundle` (or the Secret's `ca.crt`) and
/// the Secret's `token` and/or `tls.crt`/`tls.key`.
pub fn kubeconfig(cluster: &KubeFedCluster, secret: Option<&Secret>) -> Result<Kubeconfig> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let secret_name = cluster.spec.secret_ref.name.clone();
    let secret = secret.ok_or_else(|| Error::ReadSecret {
        cluster: name.clone(),
        secret: secret_name.clone(),
    })?;
    let data = secret.data.clone().unwrap_or_default();
    let text = |key: &str| {
        data.get(key)
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
    };
    if let Some(kc) = text("kubeconfig") {
        let parsed = Kubeconfig::from_yaml(&kc).map_err(|e| Error::ParseKubeconfig {
            cluster: name.clone(),
            secret: secret_name.clone(),
            reason: e.to_string(),
        })?;
        if let Some((field, why)) = refusal(&parsed) {
            return Err(Error::Refused {
                cluster: name,
                secret: secret_name,
                field,
                why,
            });
        }
        return Ok(parsed);
    }
    let token = text("token").map(|t| t.trim().to_string());
    let client_cert = data.get("tls.crt").zip(data.get("tls.key"));
    if token.is_none() && client_cert.is_none() {
        return Err(Error::FindCredentials {
            cluster: name,
            secret: secret_name,
        });
    }
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let ca = cluster
        .spec
        .ca_bundle
        .as_ref()
        .map(|b| b.0.clone())
        .or_else(|| data.get("ca.crt").map(|b| b.0.clone()));
    let server =
        cellfed_api::kubefed::api_endpoint_url(&cluster.spec.api_endpoint).map_err(|reason| {
            Error::ParseEndpoint {
                cluster: name.clone(),
                reason: reason.to_string(),
            }
        })?;
    Ok(Kubeconfig {
        clusters: vec![NamedCluster {
            name: name.clone(),
            cluster: Some(Cluster {
                server: Some(server),
                certificate_authority_data: ca.map(|pem| b64(&pem)),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: name.clone(),
            auth_info: Some(AuthInfo {
                token: token.map(Into::into),
                client_certificate_data: client_cert.map(|(crt, _)| b64(&crt.0)),
                client_key_data: client_cert.map(|(_, key)| b64(&key.0).into()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: name.clone(),
            context: Some(KubeContext {
                cluster: name.clone(),
                user: Some(name.clone()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        current_context: Some(name),
        ..Default::default()
    })
}

/// The first field of `kc` that would make kube-rs run something or read a file of the
/// controller (or that kube-rs does not know), and what it would do (pure).
pub fn refusal(kc: &Kubeconfig) -> Option<(String, &'static str)> {
    const RUNS: &str = "would run a program on the federation plane";
    const PLUGIN: &str = "would run an authentication plugin (gcp's cmd-path runs a program) on the federation plane";
    const READS: &str =
        "would read a file of the federation plane (e.g. the controller's own token)";
    const UNKNOWN: &str = "is not a field cellfed accepts in member credentials";
    for (i, named) in kc.auth_infos.iter().enumerate() {
        let at = |f: &str| format!("users[{i}].{f}");
        if let Some(key) = named.other.keys().next() {
            return Some((at(key), UNKNOWN));
        }
        let Some(user) = &named.auth_info else {
            continue;
        };
        let checks = [
            ("user.exec", user.exec.is_some(), RUNS),
            ("user.auth-provider", user.auth_provider.is_some(), PLUGIN),
            ("user.tokenFile", user.token_file.is_some(), READS),
            (
                "user.client-certificate",
                user.client_certificate.is_some(),
                READS,
            ),
            ("user.client-key", user.client_key.is_some(), READS),
        ];
        if let Some((field, _, why)) = checks.into_iter().find(|(_, present, _)| *present) {
            return Some((at(field), why));
        }
        if let Some(key) = user.other.keys().next() {
            return Some((at(&format!("user.{key}")), UNKNOWN));
        }
    }
    for (i, named) in kc.clusters.iter().enumerate() {
        let at = |f: &str| format!("clusters[{i}].{f}");
        if let Some(key) = named.other.keys().next() {
            return Some((at(key), UNKNOWN));
        }
        let Some(cluster) = &named.cluster else {
            continue;
        };
        if cluster.certificate_authority.is_some() {
            return Some((at("cluster.certificate-authority"), READS));
        }
        if let Some(key) = cluster.other.keys().next() {
            return Some((at(&format!("cluster.{key}")), UNKNOWN));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster() -> KubeFedCluster {
        serde_json::from_value(json!({
            "apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
            "metadata": {"name": "m1", "namespace": "kube-federation-system"},
            "spec": {"apiEndpoint": "https://127.0.0.1:6443", "secretRef": {"name": "m1-secret"}}
        }))
        .unwrap()
    }

    fn secret(data: serde_json::Value) -> Secret {
        let data: serde_json::Map<String, serde_json::Value> = data
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let b = base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap());
                (k.clone(), json!(b))
            })
            .collect();
        serde_json::from_value(json!({"metadata": {"name": "m1-secret"}, "data": data})).unwrap()
    }

    fn with_user(user: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: m\n  cluster: {{server: 'https://127.0.0.1:6443'}}\nusers:\n- name: u\n  user:\n{user}\ncontexts:\n- name: c\n  context: {{cluster: m, user: u}}\ncurrent-context: c\n"
        )
    }

    fn refused_field(kubeconfig_text: &str) -> Option<String> {
        match kubeconfig(
            &cluster(),
            Some(&secret(json!({"kubeconfig": kubeconfig_text}))),
        ) {
            Err(Error::Refused { field, .. }) => Some(field),
            Err(e) => panic!("not a refusal: {e}"),
            Ok(_) => None,
        }
    }

    #[test]
    fn programs_plugins_and_files_are_refused_naming_the_field() {
        let exec = with_user(
            "    exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: [-c, touch /tmp/x]}",
        );
        assert_eq!(refused_field(&exec).as_deref(), Some("users[0].user.exec"));
        let provider = with_user("    auth-provider: {name: gcp, config: {cmd-path: /bin/sh}}");
        assert_eq!(
            refused_field(&provider).as_deref(),
            Some("users[0].user.auth-provider")
        );
        for (user, field) in [
            (
                "    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token",
                "users[0].user.tokenFile",
            ),
            (
                "    client-certificate: /etc/cert.pem\n    client-key-data: eA==",
                "users[0].user.client-certificate",
            ),
            ("    client-key: /etc/key.pem", "users[0].user.client-key"),
            (
                "    token: t\n    somePlugin: {}",
                "users[0].user.somePlugin",
            ),
        ] {
            assert_eq!(refused_field(&with_user(user)).as_deref(), Some(field));
        }
        let ca_file = with_user("    token: t").replace(
            "{server: 'https://127.0.0.1:6443'}",
            "{server: 'https://127.0.0.1:6443', certificate-authority: /etc/ca.pem}",
        );
        assert_eq!(
            refused_field(&ca_file).as_deref(),
            Some("clusters[0].cluster.certificate-authority")
        );
        // the message says what to do
        let e = kubeconfig(&cluster(), Some(&secret(json!({"kubeconfig": exec})))).unwrap_err();
        assert!(e.refused());
        let msg = e.to_string();
        assert!(
            msg.contains("users[0].user.exec would run a program") && msg.contains("key token"),
            "{msg}"
        );
    }

    #[test]
    fn data_only_credentials_are_accepted() {
        let kc =
            with_user("    token: t\n    client-certificate-data: eA==\n    client-key-data: eA==");
        assert_eq!(refused_field(&kc), None);
        let built = kubeconfig(
            &cluster(),
            Some(&secret(
                json!({"token": "t\n", "ca.crt": "CA", "namespace": "x"}),
            )),
        )
        .unwrap();
        let user = built.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(user.token.is_some() && user.client_certificate_data.is_none());
        assert_eq!(
            built.clusters[0]
                .cluster
                .as_ref()
                .unwrap()
                .certificate_authority_data
                .as_deref(),
            Some("Q0E=")
        );
        let built = kubeconfig(
            &cluster(),
            Some(&secret(json!({"tls.crt": "C", "tls.key": "K"}))),
        )
        .unwrap();
        let user = built.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(user.token.is_none());
        assert_eq!(user.client_certificate_data.as_deref(), Some("Qw=="));
        assert_eq!(refusal(&built), None);
    }

    #[test]
    fn missing_credentials_are_not_refusals() {
        let e = kubeconfig(&cluster(), None).unwrap_err();
        assert!(!e.refused() && e.to_string().contains("not found"), "{e}");
        let e = kubeconfig(&cluster(), Some(&secret(json!({"namespace": "x"})))).unwrap_err();
        assert!(!e.refused() && e.to_string().contains("key token"), "{e}");
        let e =
            kubeconfig(&cluster(), Some(&secret(json!({"kubeconfig": "users: 7"})))).unwrap_err();
        assert!(e.refused(), "{e}");
    }
}
