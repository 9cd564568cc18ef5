use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;

const RSA_KEY: &[u8] = include_bytes!("../../testdata/sa-rsa.key");
const EC_KEY: &[u8] = include_bytes!("../../testdata/sa-ec.key");
const EC_PUB: &[u8] = include_bytes!("../../testdata/sa-ec.pub");
const ISSUER: &str = "https://cellfed.example";

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn request() -> TokenRequest {
    TokenRequest {
        namespace: "ns".into(),
        name: "builder".into(),
        uid: "uid-1".into(),
        ..TokenRequest::default()
    }
}

fn pair(pem: &[u8]) -> (TokenIssuer, TokenAuthenticator) {
    let key = SigningKey::from_pem(pem).unwrap();
    let auth =
        TokenAuthenticator::new(vec![ISSUER.into()], vec![key.verifying_key()], vec![]).unwrap();
    (TokenIssuer::new(ISSUER, vec![], key).unwrap(), auth)
}

fn uid_1(_: &str, _: &str) -> Option<String> {
    Some("uid-1".into())
}

fn payload(token: &str) -> serde_json::Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn rs256_and_es256_tokens_round_trip_as_service_account_users() {
    for pem in [RSA_KEY, EC_KEY] {
        let (issuer, auth) = pair(pem);
        let mut req = request();
        req.pod = Some(ObjectRef {
            name: "web-0".into(),
            uid: "pod-uid".into(),
        });
        let issued = issuer.issue(&req, t(1_700_000_000)).unwrap();
        assert_eq!(issued.expires_at, t(1_700_003_600));
        let ok = auth
            .authenticate(&issued.token, t(1_700_000_100), None, uid_1)
            .unwrap()
            .unwrap();
        assert_eq!(ok.user.name, "system:serviceaccount:ns:builder");
        assert_eq!(ok.user.uid, "uid-1");
        assert_eq!(
            ok.user.groups,
            ["system:serviceaccounts", "system:serviceaccounts:ns"]
        );
        assert_eq!(ok.user.extra[POD_NAME_KEY], ["web-0"]);
        assert_eq!(ok.user.extra[POD_UID_KEY], ["pod-uid"]);
        assert!(ok.user.extra[CREDENTIAL_ID_KEY][0].starts_with("JTI="));
        assert_eq!(ok.audiences, [ISSUER]);
    }
}

#[test]
fn tokens_look_like_kube_token_request_tokens() {
    let (issuer, _) = pair(RSA_KEY);
    let token = issuer.issue(&request(), t(1_700_000_000)).unwrap().token;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(
        header.kid.as_deref(),
        Some("d3-V1h1HLbH3gl9mgOI_8Hg9Hhlmqj4-ONFG3DPSPMs")
    );
    let claims = payload(&token);
    let keys: Vec<&String> = claims.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "aud",
            "exp",
            "iat",
            "iss",
            "jti",
            "kubernetes.io",
            "nbf",
            "sub"
        ]
    );
    assert_eq!(claims["aud"], serde_json::json!([ISSUER]));
    assert_eq!(claims["sub"], "system:serviceaccount:ns:builder");
    assert_eq!(
        claims["kubernetes.io"],
        serde_json::json!({"namespace": "ns", "serviceaccount": {"name": "builder", "uid": "uid-1"}})
    );
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(jti.len(), 36);
    assert_eq!(&jti[14..15], "4");
}

#[test]
fn expiry_and_not_before_allow_a_minute_of_clock_skew() {
    let (issuer, auth) = pair(EC_KEY);
    let mut req = request();
    req.expiration = Some(Duration::from_secs(600));
    let token = issuer.issue(&req, t(1_000_000)).unwrap().token;
    let at = |s| auth.authenticate(&token, t(s), None, uid_1);
    assert!(at(1_000_600 + 60).is_ok());
    assert!(matches!(at(1_000_600 + 61), Err(Error::CheckExpiry)));
    assert!(at(1_000_000 - 60).is_ok());
    assert!(matches!(at(1_000_000 - 61), Err(Error::CheckNotBefore)));
}

#[test]
fn audiences_must_intersect() {
    let (issuer, auth) = pair(EC_KEY);
    let mut req = request();
    req.audiences = vec!["vault".into()];
    let token = issuer.issue(&req, t(1_000_000)).unwrap().token;
    let e = auth
        .authenticate(&token, t(1_000_000), None, uid_1)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "token audiences [\"vault\"] is invalid for the target audiences [\"https://cellfed.example\"]"
    );
    let wanted = vec!["vault".to_string(), "other".to_string()];
    let ok = auth
        .authenticate(&token, t(1_000_000), Some(&wanted), uid_1)
        .unwrap()
        .unwrap();
    assert_eq!(ok.audiences, ["vault"]);
}

#[test]
fn deleted_or_recreated_service_accounts_invalidate_their_tokens() {
    let (issuer, auth) = pair(EC_KEY);
    let token = issuer.issue(&request(), t(1_000_000)).unwrap().token;
    let e = auth
        .authenticate(&token, t(1_000_000), None, |_, _| None)
        .unwrap_err();
    assert_eq!(e.to_string(), "service account ns/builder has been deleted");
    let e = auth
        .authenticate(&token, t(1_000_000), None, |_, _| Some("uid-2".into()))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "service account UID (uid-2) does not match claim (uid-1)"
    );
}

#[test]
fn other_issuers_and_non_jwts_are_left_to_other_authenticators() {
    let (_, auth) = pair(EC_KEY);
    let key = SigningKey::from_pem(EC_KEY).unwrap();
    let foreign = TokenIssuer::new("https://elsewhere", vec![ISSUER.into()], key).unwrap();
    let token = foreign.issue(&request(), t(1_000_000)).unwrap().token;
    assert_eq!(
        auth.authenticate(&token, t(1_000_000), None, uid_1)
            .unwrap(),
        None
    );
    assert_eq!(
        auth.authenticate("abc123", t(1_000_000), None, uid_1)
            .unwrap(),
        None
    );
}

#[test]
fn a_token_signed_by_another_key_or_tampered_with_is_refused() {
    let (_, auth) = pair(EC_KEY);
    let (rsa_issuer, _) = pair(RSA_KEY);
    let token = rsa_issuer.issue(&request(), t(1_000_000)).unwrap().token;
    assert!(matches!(
        auth.authenticate(&token, t(1_000_000), None, uid_1),
        Err(Error::VerifySignature(_))
    ));

    let (issuer, auth) = pair(EC_KEY);
    let token = issuer.issue(&request(), t(1_000_000)).unwrap().token;
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut claims = payload(&token);
    claims["kubernetes.io"]["namespace"] = "kube-system".into();
    claims["sub"] = "system:serviceaccount:kube-system:builder".into();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let forged = parts.join(".");
    assert!(matches!(
        auth.authenticate(&forged, t(1_000_000), None, uid_1),
        Err(Error::VerifySignature(_))
    ));
}

#[test]
fn verification_keys_may_come_from_the_public_key_file() {
    let issuer = TokenIssuer::new(ISSUER, vec![], SigningKey::from_pem(EC_KEY).unwrap()).unwrap();
    let keys = VerifyingKey::all_from_pem(EC_PUB).unwrap();
    let auth = TokenAuthenticator::new(
        vec!["https://old".into(), ISSUER.into()],
        keys,
        vec![ISSUER.into()],
    )
    .unwrap();
    let token = issuer.issue(&request(), t(1_000_000)).unwrap().token;
    assert!(
        auth.authenticate(&token, t(1_000_000), None, uid_1)
            .unwrap()
            .is_some()
    );
}

#[test]
fn expiration_is_validated_as_token_request_does() {
    let (issuer, _) = pair(EC_KEY);
    let mut req = request();
    req.expiration = Some(Duration::from_secs(599));
    let e = issuer.issue(&req, t(1_000_000)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"
    );
    assert!(validate_expiration(Duration::from_secs((1 << 32) + 1)).is_err());
    assert!(validate_expiration(Duration::from_secs(1 << 32)).is_ok());
}
