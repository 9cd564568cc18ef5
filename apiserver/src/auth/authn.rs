//! Authentication, kube-apiserver's union of authenticators in its order: the x509 client
//! certificate (`--client-ca-file`), then bearer tokens from the token file
//! (`--token-auth-file`) and ServiceAccount tokens (`--service-account-*`). The first that
//! recognises the request wins, even when an earlier one failed; a bearer token nobody accepts is
//! a 401 (`invalid bearer token`), never the anonymous user. A request with no credential at all
//! is anonymous (`system:anonymous`, `system:unauthenticated`) with `--anonymous-auth`, and
//! otherwise only for the health and version paths, as kube's `AuthenticationConfiguration`
//! limits anonymous requests with path conditions; everything else gets 401.
//!
//! Every authenticated user also gets `system:authenticated`. Why a credential was refused is
//! logged at debug level, without the credential.

use std::sync::Arc;
use std::time::SystemTime;

use cellfed_auth::UserInfo;
use cellfed_auth::service_account::TokenAuthenticator;
use cellfed_auth::token_file::TokenFile;
use cellfed_auth::x509::ClientCa;
use http::HeaderMap;
use rustls_pki_types::CertificateDer;
use serde_json::Value;

use crate::state::AppState;

/// Paths anonymous requests may reach without `--anonymous-auth`: what kube's
/// `system:public-info-viewer` role covers, so load balancers and probes need no credential.
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version"];

/// The client certificate chain of the TLS connection a request came on (leaf first), put into
/// every request's extensions by the server; absent on plain HTTP and without a certificate.
#[derive(Debug, Clone)]
pub struct PeerCertificates(pub Arc<Vec<CertificateDer<'static>>>);

/// The configured authenticators.
#[derive(Debug, Default)]
pub struct Authenticator {
    /// `--token-auth-file`.
    pub tokens: Option<TokenFile>,
    /// `--service-account-key-file` and `--service-account-issuer`.
    pub service_accounts: Option<TokenAuthenticator>,
    /// `--client-ca-file`.
    pub client_ca: Option<ClientCa>,
    /// `--anonymous-auth`.
    pub anonymous: bool,
}

/// Why a request was not authenticated (for the debug log; the client only sees 401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub Vec<String>);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

impl Authenticator {
    /// Who sent a request with these headers and client certificates, to `path`.
    pub async fn authenticate(
        &self,
        state: &AppState,
        path: &str,
        headers: &HeaderMap,
        peer: Option<&PeerCertificates>,
    ) -> Result<UserInfo, Refused> {
        let mut errors = Vec::new();
        if let (Some(ca), Some(peer)) = (&self.client_ca, peer) {
            match ca.authenticate(&peer.0, rustls_pki_types::UnixTime::now()) {
                Ok(Some(user)) => return Ok(user.with_authenticated_group()),
                Ok(None) => {}
                Err(e) => errors.push(format!("x509: {e}")),
            }
        }
        if let Some(token) = bearer_token(headers) {
            return match self.review_token(state, token, None).await {
                Ok((user, _)) => Ok(user),
                Err(Refused(more)) => {
                    errors.extend(more);
                    Err(Refused(errors))
                }
            };
        }
        if !errors.is_empty() {
            return Err(Refused(errors));
        }
        if self.anonymous || PUBLIC_PATHS.contains(&path) {
            return Ok(UserInfo::anonymous());
        }
        Err(Refused(vec!["no credentials".into()]))
    }
}

impl Authenticator {
    /// Whom a bearer token stands for (with `system:authenticated`), and the audiences it was
    /// accepted for: the token file's tokens for any audience, ServiceAccount tokens for
    /// `requested` (None: the API audiences). A TokenReview asks the same.
    pub async fn review_token(
        &self,
        state: &AppState,
        token: &str,
        requested: Option<&[String]>,
    ) -> Result<(UserInfo, Vec<String>), Refused> {
        if let Some(user) = self.tokens.as_ref().and_then(|t| t.authenticate(token)) {
            let audiences = requested.map(<[String]>::to_vec).unwrap_or_default();
            return Ok((user.clone().with_authenticated_group(), audiences));
        }
        let mut errors = Vec::new();
        if let Some(sa) = &self.service_accounts {
            match sa.verify(token, SystemTime::now(), requested) {
                Ok(Some(verified)) => {
                    let (namespace, name) = verified.service_account();
                    let uid = service_account_uid(state, namespace, name).await;
                    match verified.bind(uid) {
                        Ok(ok) => return Ok((ok.user.with_authenticated_group(), ok.audiences)),
                        Err(e) => errors.push(format!("service account token: {e}")),
                    }
                }
                Ok(None) => {}
                Err(e) => errors.push(format!("service account token: {e}")),
            }
        }
        errors.push("invalid bearer token".into());
        Err(Refused(errors))
    }
}

/// The token of an `Authorization: Bearer <token>` header (kube: the scheme case-insensitive, an
/// empty token is no token).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The uid of a ServiceAccount that exists and is not being deleted.
async fn service_account_uid(state: &AppState, namespace: &str, name: &str) -> Option<String> {
    let key = format!("/registry/core/serviceaccounts/{namespace}/{name}");
    let kv = match state.store.get(&key, None).await {
        Ok(kv) => kv?,
        Err(e) => {
            tracing::warn!(error = %e, "looking up a service account for its token failed");
            return None;
        }
    };
    let sa: Value = serde_json::from_slice(&kv.value).ok()?;
    if sa.pointer("/metadata/deletionTimestamp").is_some() {
        return None;
    }
    sa.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn bearer_tokens_are_read_like_kube() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert("authorization", HeaderValue::from_static("bearer  abc "));
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert("authorization", HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&h), None);
        h.insert("authorization", HeaderValue::from_static("Basic YTpi"));
        assert_eq!(bearer_token(&h), None);
    }
}
