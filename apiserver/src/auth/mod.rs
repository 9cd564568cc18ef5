//! Authentication and authorization of every request, kube-apiserver's chain over the
//! `cellfed-auth` building blocks: [`authn`] finds who sent a request, [`request_info`] reads
//! what it asks, and [`authorize`] lets it through or answers kube's 403. RBAC reads a
//! watch-fed cache of roles and bindings ([`rbac_cache`]); writes of roles and bindings are
//! checked for escalation ([`escalation`]); the access reviews ([`reviews`]) answer
//! `kubectl auth can-i` and `kubectl auth whoami`; [`token_request`] issues ServiceAccount tokens;
//! [`impersonation`] serves `kubectl --as`.
//!
//! Without [`Security`] in the state (`ServerConfig::anonymous`, router tests) nothing is checked
//! and requests run as [`unsecured_user`].

pub mod authn;
pub mod escalation;
pub mod impersonation;
pub mod rbac_cache;
pub mod request_info;
pub mod reviews;
pub mod token_request;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cellfed_auth::UserInfo;
use cellfed_auth::rbac::{self, Attributes, Decision, forbidden::forbidden_status};
use cellfed_auth::service_account::TokenIssuer;
use serde_json::json;

pub use authn::{Authenticator, PeerCertificates};
pub use rbac_cache::RbacCache;
pub use request_info::RequestInfo;

use crate::error::ApiError;
use crate::state::AppState;

/// One `--authorization-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Role-based access control over the stored Roles, ClusterRoles and bindings.
    Rbac,
    /// Everything is allowed (tests and local experiments only).
    AlwaysAllow,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RBAC" => Ok(Self::Rbac),
            "AlwaysAllow" => Ok(Self::AlwaysAllow),
            other => Err(format!(
                "authorization mode {other:?} is not supported: use RBAC (the default) or AlwaysAllow"
            )),
        }
    }
}

/// Who may do what: the authenticators, the authorization modes, the RBAC cache and the
/// ServiceAccount token issuer.
#[derive(Debug)]
pub struct Security {
    /// Finds the user of a request.
    pub authn: Authenticator,
    /// `--authorization-mode`, in order: the first mode that allows a request decides.
    pub modes: Vec<Mode>,
    /// Roles and bindings, followed through a store watch.
    pub rbac: Arc<RbacCache>,
    /// Signs TokenRequest tokens; None when no signing key is configured.
    pub issuer: Option<TokenIssuer>,
}

impl Security {
    /// kube's authorizer chain over the modes. `system:masters` is always allowed.
    pub fn decide(&self, attrs: &Attributes) -> Decision {
        let mut reason = String::new();
        if attrs.user.is_privileged() {
            return Decision::Allow { reason };
        }
        for mode in &self.modes {
            match mode {
                Mode::AlwaysAllow => return Decision::Allow { reason },
                Mode::Rbac => match rbac::authorize(attrs, &*self.rbac.snapshot()) {
                    allowed @ Decision::Allow { .. } => return allowed,
                    Decision::NoOpinion { reason: r } => reason = r,
                },
            }
        }
        Decision::NoOpinion { reason }
    }

    /// Whether RBAC decides alone (no AlwaysAllow in the chain), so writes of roles and
    /// bindings are checked for escalation.
    pub fn rbac_only(&self) -> bool {
        self.modes.contains(&Mode::Rbac) && !self.modes.contains(&Mode::AlwaysAllow)
    }
}

/// The user of requests when authentication is off: kube's old insecure-port identity.
pub fn unsecured_user() -> UserInfo {
    UserInfo::new(
        "system:unsecured",
        [
            cellfed_auth::user::SYSTEM_PRIVILEGED_GROUP,
            cellfed_auth::user::ALL_AUTHENTICATED,
        ],
    )
}

/// The user of the server's own writes (bootstrap, garbage collection) as admission webhooks
/// see it: kube's loopback identity.
pub fn apiserver_user() -> UserInfo {
    UserInfo::new(
        "system:apiserver",
        [
            cellfed_auth::user::SYSTEM_PRIVILEGED_GROUP,
            cellfed_auth::user::ALL_AUTHENTICATED,
        ],
    )
}

/// The request's user, as [`authenticate`] put it into the extensions.
pub fn user_of(extensions: &http::Extensions) -> UserInfo {
    extensions
        .get::<UserInfo>()
        .cloned()
        .unwrap_or_else(unsecured_user)
}

/// Middleware: finds the user of the request (401 when there is none), applies impersonation
/// headers the user may use, and stores the result in the request's extensions.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(security) = state.security.clone() else {
        req.extensions_mut().insert(unsecured_user());
        return next.run(req).await;
    };
    let user = security
        .authn
        .authenticate(
            &state,
            req.uri().path(),
            req.headers(),
            req.extensions().get::<PeerCertificates>(),
        )
        .await;
    match user {
        Ok(user) => match impersonation::impersonate(&security, user, req.headers()) {
            Ok(user) => {
                req.extensions_mut().insert(user);
                next.run(req).await
            }
            Err(e) => e.into_response(),
        },
        Err(why) => {
            tracing::debug!(path = req.uri().path(), reason = %why, "request not authenticated");
            ApiError::unauthorized().into_response()
        }
    }
}

/// How long a write of a role or binding waits for the RBAC cache before it is answered.
const RBAC_REFRESH_TIMEOUT: Duration = Duration::from_secs(2);

/// Middleware: authorizes the request (kube's 403 when no mode allows it); after a successful
/// write of an RBAC object, refreshes the RBAC cache so the next request sees it.
pub async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(security) = state.security.clone() else {
        return next.run(req).await;
    };
    let info = RequestInfo::new(req.method(), req.uri().path(), req.uri().query());
    let attrs = info.attributes(user_of(req.extensions()));
    let decision = security.decide(&attrs);
    if !decision.is_allowed() {
        tracing::debug!(user = %attrs.user.name, verb = %attrs.verb, resource = %attrs.resource, namespace = %attrs.namespace, path = %attrs.path, "request forbidden");
        return forbidden(&attrs, decision.reason()).into_response();
    }
    let rbac_write = info.resource_request && info.api_group == rbac::GROUP && info.is_write();
    let response = next.run(req).await;
    if rbac_write && response.status().is_success() {
        let refreshed =
            tokio::time::timeout(RBAC_REFRESH_TIMEOUT, security.rbac.refresh(&state.store)).await;
        if !matches!(refreshed, Ok(Ok(()))) {
            tracing::warn!("RBAC cache: refreshing after a write failed; the watch catches up");
        }
    }
    response
}

/// kube's 403 for `attrs`.
pub fn forbidden(attrs: &Attributes, reason: &str) -> ApiError {
    let status = forbidden_status(attrs, reason);
    let mut e = ApiError::forbidden(status.message.unwrap_or_default());
    if let Some(d) = status.details {
        let mut details = json!({});
        if let Some(g) = d.group {
            details["group"] = json!(g);
        }
        if let Some(k) = d.kind {
            details["kind"] = json!(k);
        }
        if let Some(n) = d.name {
            details["name"] = json!(n);
        }
        e.details = Some(details);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn security(modes: Vec<Mode>) -> Security {
        Security {
            authn: Authenticator::default(),
            modes,
            rbac: RbacCache::bootstrap_only(),
            issuer: None,
        }
    }

    #[test]
    fn modes_decide_in_order_and_masters_always_pass() {
        let bob = UserInfo::new("bob", ["system:authenticated"]);
        let secrets = Attributes::resource(bob.clone(), "get", "", "secrets").namespace("ns");
        assert!(!security(vec![Mode::Rbac]).decide(&secrets).is_allowed());
        assert!(
            security(vec![Mode::Rbac, Mode::AlwaysAllow])
                .decide(&secrets)
                .is_allowed()
        );
        let admin = UserInfo::new("root", ["system:masters"]);
        let any = Attributes::resource(admin, "delete", "", "secrets").namespace("ns");
        assert!(security(vec![Mode::Rbac]).decide(&any).is_allowed());
        let health = Attributes::non_resource(UserInfo::anonymous(), "get", "/healthz");
        assert!(security(vec![Mode::Rbac]).decide(&health).is_allowed());
        let api = Attributes::non_resource(UserInfo::anonymous(), "get", "/api");
        assert!(!security(vec![Mode::Rbac]).decide(&api).is_allowed());
        assert!("Node".parse::<Mode>().is_err());
    }

    #[test]
    fn forbidden_reads_like_kube() {
        let bob = UserInfo::new("bob", ["system:authenticated"]);
        let e = forbidden(
            &Attributes::resource(bob, "list", "", "configmaps").namespace("acme"),
            "",
        );
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "configmaps is forbidden: User \"bob\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"acme\""
        );
        assert_eq!(e.status()["details"]["kind"], "configmaps");
    }
}
