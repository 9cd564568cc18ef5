//! ServiceAccount tokens as the TokenRequest API (`serviceaccounts/token`) issues them and
//! kube-apiserver authenticates them: JWS tokens (RS256, ES256, ES384) signed with
//! `--service-account-signing-key-file`, verified with `--service-account-key-file`, issued by the
//! first `--service-account-issuer` (every listed issuer is accepted), for audiences defaulting to
//! `--api-audiences` (itself defaulting to the issuers). The claims are kube's:
//!
//! ```json
//! {"aud":["https://cellfed.example"],"exp":1700003600,"iat":1700000000,"iss":"https://cellfed.example",
//!  "jti":"…","kubernetes.io":{"namespace":"ns","serviceaccount":{"name":"sa","uid":"…"}},
//!  "nbf":1700000000,"sub":"system:serviceaccount:ns:sa"}
//! ```
//!
//! A token stands for the user `system:serviceaccount:<ns>:<name>` in the groups
//! `system:serviceaccounts` and `system:serviceaccounts:<ns>`, and only while that ServiceAccount
//! still exists with the uid in the token (the caller looks it up). Legacy Secret-based tokens
//! (issuer `kubernetes/serviceaccount`) are not supported.

mod keys;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Deserializer, Serialize};

pub use keys::{Error as KeyError, SigningKey, VerifyingKey};

use crate::user::{CREDENTIAL_ID_KEY, UserInfo, service_account_groups, service_account_username};

/// `extra` key: the pod a token is bound to.
pub const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";
/// `extra` key: the uid of the pod a token is bound to.
pub const POD_UID_KEY: &str = "authentication.kubernetes.io/pod-uid";
/// `extra` key: the node of the pod a token is bound to.
pub const NODE_NAME_KEY: &str = "authentication.kubernetes.io/node-name";
/// `extra` key: the uid of that node.
pub const NODE_UID_KEY: &str = "authentication.kubernetes.io/node-uid";
/// The leeway kube (go-jose) allows on `exp`, `nbf` and `iat`.
pub const CLOCK_LEEWAY: Duration = Duration::from_secs(60);
/// TokenRequest's shortest expiration (10 minutes).
pub const MIN_EXPIRATION: Duration = Duration::from_secs(600);
/// TokenRequest's default expiration (1 hour).
pub const DEFAULT_EXPIRATION: Duration = Duration::from_secs(3600);

/// Why a token could not be issued or was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key file could not be used.
    #[error(transparent)]
    ReadKey(#[from] KeyError),
    /// The requested lifetime is outside TokenRequest's limits.
    #[error("spec.expirationSeconds: Invalid value: {0}: {1}")]
    ValidateExpiration(u64, &'static str),
    /// No issuer was configured.
    #[error("--service-account-issuer is required")]
    NoIssuer,
    /// Signing failed.
    #[error("signing the service account token: {0}")]
    Sign(jsonwebtoken::errors::Error),
    /// The token's issuer is ours but not one we accept (after signature verification).
    #[error("token issuer {0:?} is invalid")]
    CheckIssuer(String),
    /// No key verifies the signature.
    #[error("service account token signature is invalid: {0}")]
    VerifySignature(String),
    /// The token is past `exp` (plus leeway).
    #[error("service account token has expired")]
    CheckExpiry,
    /// The token is before `nbf` (minus leeway).
    #[error("service account token is not valid yet")]
    CheckNotBefore,
    /// The token's `iat` is in the future (beyond leeway).
    #[error("service account token is issued in the future")]
    CheckIssuedAt,
    /// The token is for other audiences (kube's wording).
    #[error("token audiences {token:?} is invalid for the target audiences {target:?}")]
    CheckAudience {
        /// The token's `aud`.
        token: Vec<String>,
        /// The audiences the server (or TokenReview) accepts.
        target: Vec<String>,
    },
    /// The `kubernetes.io` claims lack the namespace or ServiceAccount, or `sub` disagrees.
    #[error("service account token claims are incomplete: {0}")]
    CheckClaims(&'static str),
    /// The ServiceAccount no longer exists.
    #[error("service account {namespace}/{name} has been deleted")]
    LookupServiceAccount {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The ServiceAccount was deleted and re-created since the token was issued.
    #[error("service account UID ({current}) does not match claim ({claimed})")]
    CheckServiceAccountUid {
        /// The uid of the existing ServiceAccount.
        current: String,
        /// The uid in the token.
        claimed: String,
    },
}

/// `Result` of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A reference to an object in the `kubernetes.io` claims.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// The object's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The object's uid.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// The `kubernetes.io` private claims.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    /// The ServiceAccount's namespace.
    #[serde(default)]
    pub namespace: String,
    /// The node of the bound pod, when bound to a pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectRef>,
    /// The pod the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    /// The Secret the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
    /// The ServiceAccount.
    #[serde(default)]
    pub serviceaccount: ObjectRef,
}

/// The claims of a ServiceAccount token, fields in the order kube's tokens show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Audiences (`aud`); a single string is accepted when reading.
    #[serde(deserialize_with = "string_or_vec", default)]
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Issuer.
    pub iss: String,
    /// Token id; the credential id is `JTI=<jti>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    /// Namespace, ServiceAccount and bound objects.
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
    /// Not before, seconds since the epoch.
    pub nbf: u64,
    /// `system:serviceaccount:<ns>:<name>`.
    pub sub: String,
}

fn string_or_vec<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Aud::deserialize(d)? {
        Aud::One(s) => vec![s],
        Aud::Many(v) => v,
    })
}

/// What a TokenRequest asks for.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// The ServiceAccount's namespace.
    pub namespace: String,
    /// The ServiceAccount's name.
    pub name: String,
    /// The ServiceAccount's uid.
    pub uid: String,
    /// `spec.audiences`; empty means the server's API audiences.
    pub audiences: Vec<String>,
    /// `spec.expirationSeconds`; `None` means one hour.
    pub expiration: Option<Duration>,
    /// `spec.boundObjectRef` when it is a pod (with the pod's node, if known).
    pub pod: Option<ObjectRef>,
    /// The bound pod's node.
    pub node: Option<ObjectRef>,
    /// `spec.boundObjectRef` when it is a Secret.
    pub secret: Option<ObjectRef>,
}

/// A signed token and when it expires (TokenRequest's `status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWS.
    pub token: String,
    /// `status.expirationTimestamp`.
    pub expires_at: SystemTime,
}

/// TokenRequest's validation of `spec.expirationSeconds`.
pub fn validate_expiration(expiration: Duration) -> Result<()> {
    let secs = expiration.as_secs();
    if expiration < MIN_EXPIRATION {
        return Err(Error::ValidateExpiration(
            secs,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if secs > 1 << 32 {
        return Err(Error::ValidateExpiration(
            secs,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    Ok(())
}

/// Issues ServiceAccount tokens.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    issuer: String,
    api_audiences: Vec<String>,
    key: SigningKey,
}

impl TokenIssuer {
    /// An issuer named `issuer` (the first `--service-account-issuer`) signing with `key`, whose
    /// tokens are for `api_audiences` unless a request names its own (empty: `[issuer]`).
    pub fn new(
        issuer: impl Into<String>,
        api_audiences: Vec<String>,
        key: SigningKey,
    ) -> Result<Self> {
        let issuer = issuer.into();
        if issuer.is_empty() {
            return Err(Error::NoIssuer);
        }
        let api_audiences = if api_audiences.is_empty() {
            vec![issuer.clone()]
        } else {
            api_audiences
        };
        Ok(Self {
            issuer,
            api_audiences,
            key,
        })
    }

    /// Signs a token for `request` at `now`.
    pub fn issue(&self, request: &TokenRequest, now: SystemTime) -> Result<IssuedToken> {
        let lifetime = request.expiration.unwrap_or(DEFAULT_EXPIRATION);
        validate_expiration(lifetime)?;
        let iat = unix(now);
        let claims = Claims {
            aud: if request.audiences.is_empty() {
                self.api_audiences.clone()
            } else {
                request.audiences.clone()
            },
            exp: iat + lifetime.as_secs(),
            iat,
            iss: self.issuer.clone(),
            jti: random_uuid(),
            kubernetes: KubernetesClaims {
                namespace: request.namespace.clone(),
                node: request.node.clone(),
                pod: request.pod.clone(),
                secret: request.secret.clone(),
                serviceaccount: ObjectRef {
                    name: request.name.clone(),
                    uid: request.uid.clone(),
                },
            },
            nbf: iat,
            sub: service_account_username(&request.namespace, &request.name),
        };
        let mut header = Header::new(self.key.algorithm);
        header.kid = Some(self.key.key_id.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.key.key).map_err(Error::Sign)?;
        Ok(IssuedToken {
            token,
            expires_at: UNIX_EPOCH + Duration::from_secs(claims.exp),
        })
    }
}

/// A token that passed every check, and who it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// `system:serviceaccount:<ns>:<name>` with its groups, uid and extra values.
    pub user: UserInfo,
    /// The audiences the token was accepted for (the intersection).
    pub audiences: Vec<String>,
    /// The verified claims.
    pub claims: Claims,
}

/// Authenticates ServiceAccount bearer tokens.
#[derive(Debug, Clone)]
pub struct TokenAuthenticator {
    issuers: Vec<String>,
    keys: Vec<VerifyingKey>,
    api_audiences: Vec<String>,
}

impl TokenAuthenticator {
    /// Accepts tokens of `issuers` verified by one of `keys`, for `api_audiences` (empty: the
    /// issuers), as kube's `--service-account-issuer`/`--service-account-key-file`/`--api-audiences`.
    pub fn new(
        issuers: Vec<String>,
        keys: Vec<VerifyingKey>,
        api_audiences: Vec<String>,
    ) -> Result<Self> {
        if issuers.is_empty() {
            return Err(Error::NoIssuer);
        }
        let api_audiences = if api_audiences.is_empty() {
            issuers.clone()
        } else {
            api_audiences
        };
        Ok(Self {
            issuers,
            keys,
            api_audiences,
        })
    }

    /// Checks `token` at `now`, for `requested` audiences (a TokenReview's `spec.audiences`;
    /// `None` means the API audiences). `Ok(None)` means the token is not one of ours (not a JWS,
    /// or another issuer's), so the next authenticator may try it. `current_uid(namespace, name)`
    /// returns the uid of the ServiceAccount if it exists and is not being deleted.
    pub fn authenticate(
        &self,
        token: &str,
        now: SystemTime,
        requested: Option<&[String]>,
        current_uid: impl FnOnce(&str, &str) -> Option<String>,
    ) -> Result<Option<Authenticated>> {
        let Some(verified) = self.verify(token, now, requested)? else {
            return Ok(None);
        };
        let (namespace, name) = verified.service_account();
        let current = current_uid(namespace, name);
        verified.bind(current).map(Some)
    }

    /// The first half of [`TokenAuthenticator::authenticate`], for callers that look the
    /// ServiceAccount up asynchronously: signature, issuer, audiences, times and claims, nothing
    /// that needs the ServiceAccount. Finish with [`Verified::bind`].
    pub fn verify(
        &self,
        token: &str,
        now: SystemTime,
        requested: Option<&[String]>,
    ) -> Result<Option<Verified>> {
        // Like kube: read the issuer before checking the signature, to leave others' tokens alone.
        let Ok(unverified) = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(token)
        else {
            return Ok(None);
        };
        let Some(iss) = unverified.claims.get("iss").and_then(|v| v.as_str()) else {
            return Ok(None);
        };
        if !self.issuers.iter().any(|i| i == iss) {
            return Ok(None);
        }
        let kid = unverified.header.kid.as_deref();
        let candidates: Vec<&VerifyingKey> = match kid {
            Some(kid) if self.keys.iter().any(|k| k.key_id == kid) => {
                self.keys.iter().filter(|k| k.key_id == kid).collect()
            }
            _ => self.keys.iter().collect(),
        };
        let mut errors = Vec::new();
        let mut verified = None;
        for key in candidates {
            let mut validation = Validation::new(key.algorithm);
            // Time and audience are checked below with the caller's clock and kube's rules.
            validation.validate_exp = false;
            validation.validate_nbf = false;
            validation.validate_aud = false;
            validation.required_spec_claims.clear();
            match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
                Ok(data) => {
                    verified = Some(data.claims);
                    break;
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        let Some(claims) = verified else {
            if errors.is_empty() {
                errors.push("no verification key".into());
            }
            return Err(Error::VerifySignature(errors.join(", ")));
        };
        if !self.issuers.contains(&claims.iss) {
            return Err(Error::CheckIssuer(claims.iss));
        }
        let target = requested.unwrap_or(&self.api_audiences);
        let audiences: Vec<String> = claims
            .aud
            .iter()
            .filter(|a| target.contains(a))
            .cloned()
            .collect();
        if audiences.is_empty() {
            return Err(Error::CheckAudience {
                token: claims.aud,
                target: target.to_vec(),
            });
        }
        check_times(&claims, now)?;
        let k = &claims.kubernetes;
        let (namespace, name) = (&k.namespace, &k.serviceaccount.name);
        if namespace.is_empty() || name.is_empty() || k.serviceaccount.uid.is_empty() {
            return Err(Error::CheckClaims(
                "kubernetes.io namespace and serviceaccount name/uid are required",
            ));
        }
        if claims.sub != service_account_username(namespace, name) {
            return Err(Error::CheckClaims(
                "sub is not the service account in kubernetes.io",
            ));
        }
        Ok(Some(Verified { claims, audiences }))
    }
}

/// A token whose signature, issuer, audiences, times and claims are good; it stands for its
/// ServiceAccount once [`Verified::bind`] has seen that the ServiceAccount still exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    claims: Claims,
    audiences: Vec<String>,
}

impl Verified {
    /// The namespace and name of the ServiceAccount the token claims.
    pub fn service_account(&self) -> (&str, &str) {
        let k = &self.claims.kubernetes;
        (&k.namespace, &k.serviceaccount.name)
    }

    /// Finishes authentication with the uid of the ServiceAccount as it exists now (`None`:
    /// deleted or being deleted): the token is good only for the ServiceAccount it was issued
    /// to, not for one re-created under the same name.
    pub fn bind(self, current_uid: Option<String>) -> Result<Authenticated> {
        let Self { claims, audiences } = self;
        let k = &claims.kubernetes;
        let (namespace, name) = (&k.namespace, &k.serviceaccount.name);
        let Some(current) = current_uid else {
            return Err(Error::LookupServiceAccount {
                namespace: namespace.clone(),
                name: name.clone(),
            });
        };
        if current != k.serviceaccount.uid {
            return Err(Error::CheckServiceAccountUid {
                current,
                claimed: k.serviceaccount.uid.clone(),
            });
        }
        let mut user = UserInfo {
            name: claims.sub.clone(),
            uid: k.serviceaccount.uid.clone(),
            groups: service_account_groups(namespace),
            ..UserInfo::default()
        };
        let mut extra = |key: &str, value: &str| {
            if !value.is_empty() {
                user.extra.insert(key.to_string(), vec![value.to_string()]);
            }
        };
        if let Some(pod) = &k.pod {
            extra(POD_NAME_KEY, &pod.name);
            extra(POD_UID_KEY, &pod.uid);
        }
        if let Some(node) = &k.node {
            extra(NODE_NAME_KEY, &node.name);
            extra(NODE_UID_KEY, &node.uid);
        }
        if !claims.jti.is_empty() {
            extra(CREDENTIAL_ID_KEY, &format!("JTI={}", claims.jti));
        }
        Ok(Authenticated {
            user,
            audiences,
            claims,
        })
    }
}

fn check_times(claims: &Claims, now: SystemTime) -> Result<()> {
    let now = unix(now);
    let leeway = CLOCK_LEEWAY.as_secs();
    if now > claims.exp.saturating_add(leeway) {
        return Err(Error::CheckExpiry);
    }
    if now.saturating_add(leeway) < claims.nbf {
        return Err(Error::CheckNotBefore);
    }
    if now.saturating_add(leeway) < claims.iat {
        return Err(Error::CheckIssuedAt);
    }
    Ok(())
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A random (version 4) UUID, as kube's `jti`.
fn random_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests;
