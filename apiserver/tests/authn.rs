//! Hostile credentials against a real server's router: no credential, unknown tokens, forged
//! ServiceAccount JWTs (another key, another issuer, expired, `alg: none`, another audience) —
//! each a 401 Status, while the genuine token of the same ServiceAccount authenticates; the
//! health paths stay public; `--anonymous-auth` makes credential-less requests
//! `system:anonymous`, authorized like anyone else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cellfed_apiserver::AppState;
use cellfed_auth::service_account::{SigningKey, TokenIssuer, TokenRequest};
use common::{Running, start_with};
use serde_json::{Value, json};
use tower::ServiceExt;

const ISSUER: &str = cellfed_apiserver::server::DEFAULT_ISSUER;

async fn request(
    st: &AppState,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let resp = cellfed_apiserver::router(st.clone())
        .oneshot(req.body(axum::body::Body::from(body)).unwrap())
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (code, v)
}

fn assert_401(code: u16, status: &Value, what: &str) {
    assert_eq!(code, 401, "{what}: {status}");
    assert_eq!(status["kind"], "Status", "{what}");
    assert_eq!(status["reason"], "Unauthorized", "{what}");
    assert_eq!(status["message"], "Unauthorized", "{what}");
}

async fn server(tag: &str, anonymous_auth: bool) -> Running {
    start_with(tag, |cfg| {
        let tokens = cfg.data_dir.join("users.csv");
        std::fs::write(&tokens, "admin-token,admin,0,system:masters\n").unwrap();
        cfg.token_file = Some(tokens);
        cfg.anonymous_auth = anonymous_auth;
    })
    .await
}

fn issue(
    key: &SigningKey,
    issuer: &str,
    audiences: Vec<String>,
    uid: &str,
    at: SystemTime,
) -> String {
    let issuer = TokenIssuer::new(issuer, vec![], key.clone()).unwrap();
    let req = TokenRequest {
        namespace: "acme".into(),
        name: "builder".into(),
        uid: uid.into(),
        audiences,
        expiration: Some(Duration::from_secs(3600)),
        ..TokenRequest::default()
    };
    issuer.issue(&req, at).unwrap().token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_credentials_are_401_and_only_genuine_tokens_pass() {
    let s = server("authn-hostile", false).await;
    let st = &s.state;
    let admin = Some("admin-token");
    let (code, _) = request(
        st,
        "POST",
        "/api/v1/namespaces",
        admin,
        Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "acme"}})),
    )
    .await;
    assert_eq!(code, 201);
    let (code, sa) = request(
        st,
        "POST",
        "/api/v1/namespaces/acme/serviceaccounts",
        admin,
        Some(
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder"}}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{sa}");
    let uid = sa["metadata"]["uid"].as_str().unwrap().to_string();
    let cms = "/api/v1/namespaces/acme/configmaps";

    // no credential: 401 everywhere but the health and version paths
    let (code, status) = request(st, "GET", cms, None, None).await;
    assert_401(code, &status, "no credential");
    let (code, status) = request(st, "GET", "/api", None, None).await;
    assert_401(code, &status, "no credential on discovery");
    for path in ["/healthz", "/livez", "/readyz", "/version"] {
        let (code, _) = request(st, "GET", path, None, None).await;
        assert_eq!(code, 200, "{path}");
    }

    // the genuine token (TokenRequest) authenticates: 403, not 401, for a user without rights
    let (code, tr) = request(
        st,
        "POST",
        "/api/v1/namespaces/acme/serviceaccounts/builder/token",
        admin,
        Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})),
    )
    .await;
    assert_eq!(code, 201, "{tr}");
    assert_eq!(tr["spec"]["audiences"], json!([ISSUER]));
    assert_eq!(tr["spec"]["expirationSeconds"], 3600);
    let genuine = tr["status"]["token"].as_str().unwrap().to_string();
    let (code, status) = request(st, "GET", cms, Some(&genuine), None).await;
    assert_eq!(code, 403, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("system:serviceaccount:acme:builder"),
        "{status}"
    );

    // forged and stale ones do not
    let real_key = SigningKey::from_pem(&std::fs::read(s.dir.0.join("sa.key")).unwrap()).unwrap();
    let other_key = SigningKey::from_pem(SigningKey::generate_pem().unwrap().as_bytes()).unwrap();
    let now = SystemTime::now();
    let alg_none = {
        let payload = genuine.split('.').nth(1).unwrap();
        format!(
            "{}.{payload}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
        )
    };
    let tampered = {
        let mut parts: Vec<String> = genuine.split('.').map(str::to_string).collect();
        let mut claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        claims["sub"] = json!("system:serviceaccount:kube-system:admin");
        claims["kubernetes.io"]["namespace"] = json!("kube-system");
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        parts.join(".")
    };
    let hostile = [
        ("an unknown token", "nonsense".to_string()),
        ("a very long token", "x".repeat(16 * 1024)),
        (
            "a JWT signed with another key",
            issue(&other_key, ISSUER, vec![], &uid, now),
        ),
        (
            "a JWT of another issuer",
            issue(&real_key, "https://evil.example", vec![], &uid, now),
        ),
        (
            "an expired JWT",
            issue(
                &real_key,
                ISSUER,
                vec![],
                &uid,
                now - Duration::from_secs(2 * 3600),
            ),
        ),
        (
            "a JWT issued in the future",
            issue(
                &real_key,
                ISSUER,
                vec![],
                &uid,
                now + Duration::from_secs(3600),
            ),
        ),
        (
            "a JWT for another audience",
            issue(
                &real_key,
                ISSUER,
                vec!["https://other.example".into()],
                &uid,
                now,
            ),
        ),
        (
            "a JWT for an earlier ServiceAccount of the same name",
            issue(&real_key, ISSUER, vec![], "old-uid", now),
        ),
        ("a JWT with alg none", alg_none),
        ("a JWT with tampered claims", tampered),
    ];
    for (what, token) in &hostile {
        let (code, status) = request(st, "GET", cms, Some(token), None).await;
        assert_401(code, &status, what);
    }
    // a token the server signed itself (same key and issuer) is accepted
    let (code, _) = request(
        st,
        "GET",
        cms,
        Some(&issue(&real_key, ISSUER, vec![], &uid, now)),
        None,
    )
    .await;
    assert_eq!(code, 403);

    // TokenReview (admins only) says the same
    for (token, authenticated) in [(genuine.as_str(), true), (hostile[2].1.as_str(), false)] {
        let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}});
        let (code, out) = request(
            st,
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            admin,
            Some(review),
        )
        .await;
        assert_eq!(code, 201, "{out}");
        assert_eq!(out["status"]["authenticated"], authenticated, "{out}");
    }
    // TokenRequest validation
    let (code, out) = request(st, "POST", "/api/v1/namespaces/acme/serviceaccounts/builder/token", admin, Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 60}}))).await;
    assert_eq!(code, 422, "{out}");
    assert!(
        out["message"]
            .as_str()
            .unwrap()
            .contains("may not specify a duration less than 10 minutes"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_auth_lets_requests_in_as_system_anonymous_for_rbac_to_decide() {
    let s = server("authn-anonymous", true).await;
    let st = &s.state;
    let (code, status) = request(
        st,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        None,
        None,
    )
    .await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(
        status["message"],
        "configmaps is forbidden: User \"system:anonymous\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );
    // kube grants anonymous users no discovery, only the public info
    let (code, status) = request(st, "GET", "/api", None, None).await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(
        status["message"],
        "forbidden: User \"system:anonymous\" cannot get path \"/api\""
    );
    let (code, _) = request(st, "GET", "/version", None, None).await;
    assert_eq!(code, 200);
    // a bad token is still a 401, never anonymous
    let (code, status) = request(st, "GET", "/api", Some("nonsense"), None).await;
    assert_401(code, &status, "bad token with anonymous auth");
}
