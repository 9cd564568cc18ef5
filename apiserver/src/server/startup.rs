//! What a server sets up before it serves: the admin token file, ServiceAccount token keys,
//! authentication and authorization as configured, kube's bootstrap RBAC objects and the
//! built-in namespaces.

use std::path::Path;
use std::sync::Arc;

use cellfed_auth::service_account::{SigningKey, TokenAuthenticator, TokenIssuer, VerifyingKey};
use cellfed_auth::token_file::TokenFile;
use cellfed_auth::x509::ClientCa;
use serde_json::json;

use super::{ServeError, ServerConfig};
use crate::auth::{Authenticator, Mode, RbacCache, Security};
use crate::state::AppState;
use crate::tls;

/// The default `--service-account-issuer` (kubeadm's).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Reads the token file, creating it with one `system:masters` admin token when `create`;
/// returns the tokens and the one written to the kubeconfig (the first of a `system:masters`
/// user, else the first).
pub(super) fn ensure_tokens(
    path: &Path,
    create: bool,
) -> Result<(TokenFile, Option<String>), ServeError> {
    let err = |m: String| ServeError::ReadTokens {
        path: path.into(),
        message: m,
    };
    if !path.exists() && create {
        let t = tls::random_token();
        tls::write(path, &format!("{t},admin,admin,system:masters\n"))?;
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let records: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let first = records
        .iter()
        .find(|l| l.contains(cellfed_auth::user::SYSTEM_PRIVILEGED_GROUP))
        .or(records.first())
        .and_then(|l| l.split(',').next())
        .filter(|t| !t.starts_with('"'))
        .map(str::to_string);
    let tokens = TokenFile::parse(&text).map_err(|e| err(e.to_string()))?;
    for warning in tokens.warnings() {
        tracing::warn!(file = %path.display(), "{warning}");
    }
    Ok((tokens, first))
}

fn read_credentials(flag: &'static str, path: &Path) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|e| ServeError::ReadCredentials {
        flag,
        path: path.into(),
        message: e.to_string(),
    })
}

/// The ServiceAccount token authenticator and issuer of the configuration.
fn service_accounts(
    config: &ServerConfig,
) -> Result<(TokenAuthenticator, TokenIssuer), ServeError> {
    let flag = "--service-account-signing-key-file";
    let signing_path = match &config.service_account_signing_key_file {
        Some(p) => p.clone(),
        None => {
            let p = config.data_dir.join("sa.key");
            if !p.exists() {
                let pem = SigningKey::generate_pem().map_err(|e| ServeError::ReadCredentials {
                    flag,
                    path: p.clone(),
                    message: e.to_string(),
                })?;
                tls::write(&p, &pem)?;
            }
            p
        }
    };
    let bad =
        |flag: &'static str, path: &Path, e: &dyn std::fmt::Display| ServeError::ReadCredentials {
            flag,
            path: path.into(),
            message: e.to_string(),
        };
    let signing = SigningKey::from_pem(&read_credentials(flag, &signing_path)?)
        .map_err(|e| bad(flag, &signing_path, &e))?;
    let mut keys = Vec::new();
    for path in &config.service_account_key_files {
        let flag = "--service-account-key-file";
        keys.extend(
            VerifyingKey::all_from_pem(&read_credentials(flag, path)?)
                .map_err(|e| bad(flag, path, &e))?,
        );
    }
    keys.push(signing.verifying_key());
    let issuers = if config.service_account_issuers.is_empty() {
        vec![DEFAULT_ISSUER.to_string()]
    } else {
        config.service_account_issuers.clone()
    };
    let auth_err =
        |e: cellfed_auth::service_account::Error| ServeError::ConfigureAuth(e.to_string());
    let authenticator =
        TokenAuthenticator::new(issuers.clone(), keys, config.api_audiences.clone())
            .map_err(auth_err)?;
    let issuer = TokenIssuer::new(issuers[0].clone(), config.api_audiences.clone(), signing)
        .map_err(auth_err)?;
    Ok((authenticator, issuer))
}

/// Writes kube's bootstrap ClusterRoles and ClusterRoleBindings that are not stored yet
/// (kube-apiserver's `rbac/bootstrap-roles` post-start hook), so `kubectl get clusterroles` shows
/// `cluster-admin`, `admin`, `edit`, `view` and the discovery roles; existing ones are left as
/// they are.
async fn ensure_bootstrap_rbac(state: &AppState) -> Result<(), crate::error::ApiError> {
    use cellfed_auth::rbac::bootstrap;
    let opts = crate::registry::write::WriteOpts {
        field_manager: "cellfed-apiserver".into(),
        ..Default::default()
    };
    let to_json = |v: Result<serde_json::Value, serde_json::Error>| {
        v.map_err(|e| crate::error::ApiError::internal(e.to_string()))
    };
    let mut objects = Vec::new();
    for r in bootstrap::cluster_roles() {
        objects.push((
            "clusterroles",
            "ClusterRole",
            to_json(serde_json::to_value(r))?,
        ));
    }
    for b in bootstrap::cluster_role_bindings() {
        objects.push((
            "clusterrolebindings",
            "ClusterRoleBinding",
            to_json(serde_json::to_value(b))?,
        ));
    }
    for (plural, kind, mut obj) in objects {
        let Some(res) = state.registry.find(cellfed_auth::rbac::GROUP, "v1", plural) else {
            continue;
        };
        obj["apiVersion"] = json!(res.api_version());
        obj["kind"] = json!(kind);
        match crate::registry::write::create(state, &res, None, obj, &opts).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Authentication and authorization as the configuration asks.
pub(super) async fn security(
    config: &ServerConfig,
    state: &AppState,
    tokens: TokenFile,
) -> Result<Security, ServeError> {
    let client_ca = match &config.client_ca_file {
        None => None,
        Some(_) if config.insecure_http => {
            return Err(ServeError::ConfigureAuth(
                "--client-ca-file needs TLS: drop --insecure-http".into(),
            ));
        }
        Some(path) => Some(
            ClientCa::from_pem(
                &read_credentials("--client-ca-file", path)?,
                Arc::new(rustls::crypto::ring::default_provider()),
            )
            .map_err(|e| ServeError::ReadCredentials {
                flag: "--client-ca-file",
                path: path.clone(),
                message: e.to_string(),
            })?,
        ),
    };
    let (service_accounts, issuer) = service_accounts(config)?;
    if config.authorization_modes.is_empty() {
        return Err(ServeError::ConfigureAuth(
            "--authorization-mode needs at least one mode (RBAC or AlwaysAllow)".into(),
        ));
    }
    let rbac = if config.authorization_modes.contains(&Mode::Rbac) {
        ensure_bootstrap_rbac(state).await?;
        RbacCache::load(&state.store).await?
    } else {
        RbacCache::bootstrap_only()
    };
    Ok(Security {
        authn: Authenticator {
            tokens: Some(tokens),
            service_accounts: Some(service_accounts),
            client_ca,
            anonymous: config.anonymous_auth,
        },
        modes: config.authorization_modes.clone(),
        rbac,
        issuer: Some(issuer),
    })
}

/// Creates `default`, `kube-system`, `kube-public`, `kube-node-lease` if missing; loads CRDs and
/// webhook configurations.
pub async fn bootstrap(state: &AppState) -> Result<(), crate::error::ApiError> {
    crate::registry::crd::reload(state).await?;
    state.webhooks.refresh(&state.store).await?;
    let Some(res) = state.registry.find("", "v1", "namespaces") else {
        return Ok(());
    };
    let opts = crate::registry::write::WriteOpts {
        field_manager: "cellfed-apiserver".into(),
        ..Default::default()
    };
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        match crate::registry::write::create(state, &res, None, obj, &opts).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
