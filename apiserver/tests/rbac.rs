//! Authentication and RBAC with the real kubectl against a real server (TLS, SQLite): users from
//! the token file, x509 client certificates and ServiceAccount tokens; kube's 403 wording;
//! RoleBindings granting exactly their namespace and verbs; `kubectl auth can-i [--list]` and
//! `kubectl auth whoami`; escalation prevention; tenants that cannot read each other's
//! federated resources; the user reaching admission webhooks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::{Running, start_with};
use serde_json::{Value, json};

const TOKENS: &str = "admin-token,admin,0,system:masters\n\
                      bob-token,bob,1001\n\
                      alice-token,alice,1002,\"tenant-a,devs\"\n";

/// A server whose token file holds an admin, bob (no groups) and alice (groups tenant-a, devs).
async fn server(
    tag: &str,
    configure: impl FnOnce(&mut cellfed_apiserver::ServerConfig),
) -> Running {
    start_with(tag, |cfg| {
        let tokens = cfg.data_dir.join("users.csv");
        std::fs::write(&tokens, TOKENS).unwrap();
        cfg.token_file = Some(tokens);
        configure(cfg);
    })
    .await
}

fn token_user(s: &Running, name: &str) -> PathBuf {
    s.kubeconfig_for(name, json!({"token": format!("{name}-token")}))
}

async fn fails(s: &Running, kc: &Path, args: &[&str]) -> String {
    let (ok, out, err) = s.kubectl_with(kc, args, None).await;
    assert!(!ok, "kubectl {args:?} succeeded:\n{out}");
    err
}

async fn succeeds(s: &Running, kc: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let (ok, out, err) = s.kubectl_with(kc, args, stdin).await;
    assert!(ok, "kubectl {args:?} failed:\nstdout: {out}\nstderr: {err}");
    out
}

/// `kubectl auth can-i …`: "yes" (exit 0) or "no" (exit 1).
async fn can_i(s: &Running, kc: &Path, args: &[&str]) -> bool {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let (ok, out, err) = s.kubectl_with(kc, &all, None).await;
    assert_eq!(out.trim(), if ok { "yes" } else { "no" }, "{args:?}: {err}");
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_bindings_is_forbidden_in_kubes_words() {
    let s = server("rbac-deny", |_| {}).await;
    s.kubectl_ok(&["create", "namespace", "acme"], None).await;
    s.kubectl_ok(&["create", "configmap", "web", "-n", "acme"], None)
        .await;
    let bob = token_user(&s, "bob");
    let err = fails(&s, &bob, &["get", "configmaps", "-n", "acme"]).await;
    assert!(
        err.contains("Error from server (Forbidden): configmaps is forbidden: User \"bob\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"acme\""),
        "{err}"
    );
    let err = fails(&s, &bob, &["get", "configmap", "web", "-n", "acme"]).await;
    assert!(
        err.contains("configmaps \"web\" is forbidden: User \"bob\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"acme\""),
        "{err}"
    );
    let err = fails(
        &s,
        &bob,
        &[
            "get",
            "--raw",
            "/api/v1/namespaces/acme/configmaps?watch=true",
        ],
    )
    .await;
    assert!(
        err.contains("User \"bob\" cannot watch resource \"configmaps\" in API group \"\" in the namespace \"acme\""),
        "{err}"
    );
    let err = fails(&s, &bob, &["create", "configmap", "other", "-n", "acme"]).await;
    assert!(
        err.contains("User \"bob\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"acme\""),
        "{err}"
    );
    let err = fails(&s, &bob, &["get", "deployments", "-A"]).await;
    assert!(
        err.contains("User \"bob\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"),
        "{err}"
    );
    // discovery and whoami work for every authenticated user
    let who = succeeds(&s, &bob, &["auth", "whoami", "-o", "json"], None).await;
    let who: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "bob");
    assert_eq!(who["status"]["userInfo"]["uid"], "1001");
    assert_eq!(
        who["status"]["userInfo"]["groups"],
        json!(["system:authenticated"])
    );
    succeeds(&s, &bob, &["api-resources"], None).await;
    // nothing was written
    let out = s
        .kubectl_ok(&["get", "configmaps", "-n", "acme", "-o", "name"], None)
        .await;
    assert!(!out.contains("other"), "{out}");
}

const READER: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: acme}
---
apiVersion: v1
kind: Namespace
metadata: {name: globex}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm-reader, namespace: acme}
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-reads, namespace: acme}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_binding_grants_exactly_its_namespace_and_verbs_and_can_i_says_so() {
    let s = server("rbac-grant", |_| {}).await;
    s.kubectl_ok(&["apply", "-f", "-"], Some(READER)).await;
    for ns in ["acme", "globex"] {
        s.kubectl_ok(&["create", "configmap", "settings", "-n", ns], None)
            .await;
    }
    let bob = token_user(&s, "bob");
    // allowed: get and list in acme, right after the binding was written
    let out = succeeds(
        &s,
        &bob,
        &["get", "configmap", "settings", "-n", "acme", "-o", "name"],
        None,
    )
    .await;
    assert_eq!(out.trim(), "configmap/settings");
    let out = succeeds(
        &s,
        &bob,
        &["get", "configmaps", "-n", "acme", "-o", "name"],
        None,
    )
    .await;
    assert!(out.contains("configmap/settings"), "{out}");
    // refused: other verbs, other resources, other namespaces, the cluster scope
    for (args, what) in [
        (
            vec!["create", "configmap", "x", "-n", "acme"],
            "cannot create resource \"configmaps\"",
        ),
        (
            vec!["delete", "configmap", "settings", "-n", "acme"],
            "cannot delete resource \"configmaps\"",
        ),
        (
            vec!["get", "--raw", "/api/v1/namespaces/acme/configmaps?watch=1"],
            "cannot watch resource \"configmaps\"",
        ),
        (
            vec!["get", "secrets", "-n", "acme"],
            "cannot list resource \"secrets\"",
        ),
        (
            vec!["get", "configmap", "settings", "-n", "globex"],
            "cannot get resource \"configmaps\" in API group \"\" in the namespace \"globex\"",
        ),
        (
            vec!["get", "configmaps", "-A"],
            "cannot list resource \"configmaps\" in API group \"\" at the cluster scope",
        ),
    ] {
        let err = fails(&s, &bob, &args).await;
        assert!(err.contains(what), "{args:?}: {err}");
    }

    assert!(can_i(&s, &bob, &["get", "configmaps", "-n", "acme"]).await);
    assert!(can_i(&s, &bob, &["list", "configmaps", "-n", "acme"]).await);
    assert!(!can_i(&s, &bob, &["watch", "configmaps", "-n", "acme"]).await);
    assert!(!can_i(&s, &bob, &["create", "configmaps", "-n", "acme"]).await);
    assert!(!can_i(&s, &bob, &["get", "configmaps", "-n", "globex"]).await);
    assert!(!can_i(&s, &bob, &["get", "secrets", "-n", "acme"]).await);
    assert!(can_i(&s, &bob, &["get", "/api"]).await);
    assert!(!can_i(&s, &bob, &["get", "/metrics"]).await);
    assert!(can_i(&s, &s.kubeconfig, &["delete", "secrets", "-A"]).await);

    // an admin asks for bob (impersonation); bob may not impersonate
    assert!(
        can_i(
            &s,
            &s.kubeconfig,
            &["list", "configmaps", "-n", "acme", "--as", "bob"]
        )
        .await
    );
    assert!(
        !can_i(
            &s,
            &s.kubeconfig,
            &["list", "configmaps", "-n", "globex", "--as", "bob"]
        )
        .await
    );
    let err = fails(
        &s,
        &bob,
        &["get", "configmaps", "-n", "acme", "--as", "alice"],
    )
    .await;
    assert!(
        err.contains("users \"alice\" is forbidden: User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"),
        "{err}"
    );

    let list = succeeds(&s, &bob, &["auth", "can-i", "--list", "-n", "acme"], None).await;
    let line = list
        .lines()
        .find(|l| l.starts_with("configmaps "))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(line.trim_end().ends_with("[get list]"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("selfsubjectaccessreviews.authorization.k8s.io")),
        "{list}"
    );
    let other = succeeds(&s, &bob, &["auth", "can-i", "--list", "-n", "globex"], None).await;
    assert!(!other.contains("configmaps "), "{other}");

    // SubjectAccessReview: the admin asks about bob; bob may not ask about others
    let sar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "bob", "resourceAttributes": {"namespace": "acme", "verb": "list", "resource": "configmaps"}}});
    let out = s
        // (create-only kinds need --validate=false: kubectl then asks /openapi/v2 in protobuf)
        .kubectl_ok(
            &["create", "--validate=false", "-f", "-", "-o", "json"],
            Some(&sar.to_string()),
        )
        .await;
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["status"]["allowed"], true, "{out}");
    assert!(
        out["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("RoleBinding \"bob-reads/acme\""),
        "{out}"
    );
    let (ok, _, err) = s
        .kubectl_with(
            &bob,
            &["create", "--validate=false", "-f", "-"],
            Some(&sar.to_string()),
        )
        .await;
    assert!(
        !ok && err.contains("cannot create resource \"subjectaccessreviews\""),
        "{err}"
    );

    // deleting the binding revokes at once
    s.kubectl_ok(&["delete", "rolebinding", "bob-reads", "-n", "acme"], None)
        .await;
    assert!(!can_i(&s, &bob, &["get", "configmaps", "-n", "acme"]).await);
    fails(&s, &bob, &["get", "configmap", "settings", "-n", "acme"]).await;
}

const BOB_ADMIN: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: acme}
---
apiVersion: v1
kind: Namespace
metadata: {name: globex}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-admin, namespace: acme}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
"#;

const ESCALATING_ROLE: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: fed-owner, namespace: acme}
rules:
- apiGroups: ["types.kubefed.io"]
  resources: ["federateddeployments"]
  verbs: ["*"]
"#;

const BINDER: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: binder}
rules:
- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterroles]
  verbs: [bind]
  resourceNames: [cluster-admin]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles]
  verbs: [escalate]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-binder, namespace: acme}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: binder}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_grants_more_than_they_hold_without_bind_or_escalate() {
    let s = server("rbac-escalate", |_| {}).await;
    s.kubectl_ok(&["apply", "-f", "-"], Some(BOB_ADMIN)).await;
    let bob = token_user(&s, "bob");
    // what bob holds, he may hand out in his namespace
    succeeds(
        &s,
        &bob,
        &[
            "create",
            "rolebinding",
            "carol-view",
            "--clusterrole=view",
            "--user=carol",
            "-n",
            "acme",
        ],
        None,
    )
    .await;
    // more than he holds: refused, saying what is missing
    let err = fails(
        &s,
        &bob,
        &[
            "create",
            "rolebinding",
            "carol-root",
            "--clusterrole=cluster-admin",
            "--user=carol",
            "-n",
            "acme",
        ],
    )
    .await;
    assert!(
        err.contains("rolebindings.rbac.authorization.k8s.io \"carol-root\" is forbidden: user \"bob\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held"),
        "{err}"
    );
    let (ok, _, err) = s
        .kubectl_with(&bob, &["apply", "-f", "-"], Some(ESCALATING_ROLE))
        .await;
    assert!(!ok, "the escalating role was created");
    assert!(
        err.contains("roles.rbac.authorization.k8s.io \"fed-owner\" is forbidden"),
        "{err}"
    );
    assert!(
        err.contains("Resources:[\"federateddeployments\"]"),
        "{err}"
    );
    // outside his namespace he may not write bindings at all
    let err = fails(
        &s,
        &bob,
        &[
            "create",
            "rolebinding",
            "carol-view",
            "--clusterrole=view",
            "--user=carol",
            "-n",
            "globex",
        ],
    )
    .await;
    assert!(err.contains("cannot create resource \"rolebindings\" in API group \"rbac.authorization.k8s.io\" in the namespace \"globex\""), "{err}");
    let err = fails(
        &s,
        &bob,
        &[
            "create",
            "clusterrolebinding",
            "carol-view",
            "--clusterrole=view",
            "--user=carol",
        ],
    )
    .await;
    assert!(err.contains("at the cluster scope"), "{err}");
    let out = s
        .kubectl_ok(&["get", "rolebindings", "-n", "acme", "-o", "name"], None)
        .await;
    assert!(!out.contains("carol-root"), "{out}");

    // given `bind` on cluster-admin and `escalate` on roles, he may
    s.kubectl_ok(&["apply", "-f", "-"], Some(BINDER)).await;
    succeeds(
        &s,
        &bob,
        &[
            "create",
            "rolebinding",
            "carol-root",
            "--clusterrole=cluster-admin",
            "--user=carol",
            "-n",
            "acme",
        ],
        None,
    )
    .await;
    succeeds(&s, &bob, &["apply", "-f", "-"], Some(ESCALATING_ROLE)).await;
}

/// A CA and a client certificate it signs (CN `name`, O `group`), as PEM.
fn client_cert(
    ca: &rcgen::Certificate,
    ca_key: &rcgen::KeyPair,
    name: &str,
    group: &str,
) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, group);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, ca, ca_key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn new_ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    (params.self_signed(&key).unwrap(), key)
}

fn cert_user(s: &Running, name: &str, (cert, key): &(String, String)) -> PathBuf {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    s.kubeconfig_for(
        name,
        json!({"client-certificate-data": b64(cert), "client-key-data": b64(key)}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x509_client_certificates_log_in_and_other_cas_get_401() {
    let (ca, ca_key) = new_ca("test client CA");
    let dir = common::TempDir::new("client-ca");
    let ca_file = dir.0.join("client-ca.crt");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let s = server("rbac-x509", |cfg| {
        cfg.client_ca_file = Some(ca_file.clone())
    })
    .await;
    s.kubectl_ok(&["create", "namespace", "acme"], None).await;

    let carol = cert_user(
        &s,
        "carol",
        &client_cert(&ca, &ca_key, "carol", "acme-devs"),
    );
    let who = succeeds(&s, &carol, &["auth", "whoami", "-o", "json"], None).await;
    let who: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "carol");
    assert_eq!(
        who["status"]["userInfo"]["groups"],
        json!(["acme-devs", "system:authenticated"])
    );
    let err = fails(&s, &carol, &["get", "configmaps", "-n", "acme"]).await;
    assert!(
        err.contains("User \"carol\" cannot list resource \"configmaps\""),
        "{err}"
    );
    // the certificate's organization is a group bindings can name
    s.kubectl_ok(
        &[
            "create",
            "rolebinding",
            "devs-view",
            "--clusterrole=view",
            "--group=acme-devs",
            "-n",
            "acme",
        ],
        None,
    )
    .await;
    succeeds(&s, &carol, &["get", "configmaps", "-n", "acme"], None).await;

    // the same names from another CA: 401, not the user and not system:masters
    let (evil, evil_key) = new_ca("test client CA");
    let mallory = cert_user(
        &s,
        "mallory",
        &client_cert(&evil, &evil_key, "carol", "system:masters"),
    );
    let err = fails(&s, &mallory, &["get", "configmaps", "-n", "acme"]).await;
    assert!(err.contains("Unauthorized"), "{err}");
    // bearer tokens still work next to client certificates
    s.kubectl_ok(&["get", "namespaces"], None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens_from_token_request_log_in_until_the_account_goes() {
    let s = server("rbac-sa", |_| {}).await;
    s.kubectl_ok(&["create", "namespace", "acme"], None).await;
    s.kubectl_ok(&["create", "serviceaccount", "builder", "-n", "acme"], None)
        .await;
    let token = s
        .kubectl_ok(
            &["create", "token", "builder", "-n", "acme", "--duration=20m"],
            None,
        )
        .await;
    let sa = s.kubeconfig_for("builder", json!({"token": token.trim()}));
    let who = succeeds(&s, &sa, &["auth", "whoami", "-o", "json"], None).await;
    let who: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(
        who["status"]["userInfo"]["username"],
        "system:serviceaccount:acme:builder"
    );
    assert_eq!(
        who["status"]["userInfo"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:acme",
            "system:authenticated"
        ])
    );
    let err = fails(&s, &sa, &["get", "configmaps", "-n", "acme"]).await;
    assert!(
        err.contains(
            "User \"system:serviceaccount:acme:builder\" cannot list resource \"configmaps\""
        ),
        "{err}"
    );
    s.kubectl_ok(
        &[
            "create",
            "rolebinding",
            "builder-view",
            "--clusterrole=view",
            "--serviceaccount=acme:builder",
            "-n",
            "acme",
        ],
        None,
    )
    .await;
    succeeds(&s, &sa, &["get", "configmaps", "-n", "acme"], None).await;
    assert!(!can_i(&s, &sa, &["create", "configmaps", "-n", "acme"]).await);

    // a ServiceAccount that does not exist gets no token
    let (ok, _, err) = s
        .kubectl(&["create", "token", "ghost", "-n", "acme"], None)
        .await;
    assert!(
        !ok && err.contains("serviceaccounts \"ghost\" not found"),
        "{err}"
    );
    // deleting the ServiceAccount revokes its tokens
    s.kubectl_ok(&["delete", "serviceaccount", "builder", "-n", "acme"], None)
        .await;
    let err = fails(&s, &sa, &["get", "configmaps", "-n", "acme"]).await;
    assert!(err.contains("Unauthorized"), "{err}");
}

const TENANTS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: federateddeployments.types.kubefed.io}
spec:
  group: types.kubefed.io
  scope: Namespaced
  names: {plural: federateddeployments, singular: federateddeployment, kind: FederatedDeployment}
  versions:
  - name: v1beta1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: v1
kind: Namespace
metadata: {name: tenant-a, labels: {cellfed.io/tenant: a}}
---
apiVersion: v1
kind: Namespace
metadata: {name: tenant-b, labels: {cellfed.io/tenant: b}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: federated-editor}
rules:
- apiGroups: [types.kubefed.io]
  resources: ["*"]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: tenant-a-editors, namespace: tenant-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: federated-editor}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: tenant-a}
"#;

fn fed(ns: &str, image: &str) -> String {
    format!(
        "apiVersion: types.kubefed.io/v1beta1\nkind: FederatedDeployment\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  template:\n    spec:\n      template:\n        spec:\n          containers: [{{name: web, image: {image}}}]\n  placement:\n    clusters: [{{name: member1}}]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_read_or_change_another_tenants_federated_resources() {
    let s = server("rbac-tenants", |_| {}).await;
    s.kubectl_ok(&["apply", "-f", "-"], Some(TENANTS)).await;
    s.kubectl_ok(&["apply", "-f", "-"], Some(&fed("tenant-b", "b:1")))
        .await;
    let get_b = [
        "get",
        "federateddeployment",
        "web",
        "-n",
        "tenant-b",
        "-o",
        "json",
    ];
    let before = s.kubectl_ok(&get_b, None).await;

    // alice is in the group tenant-a (token file): her tenant's namespace is hers
    let alice = token_user(&s, "alice");
    succeeds(
        &s,
        &alice,
        &["apply", "-f", "-"],
        Some(&fed("tenant-a", "a:1")),
    )
    .await;
    let out = succeeds(
        &s,
        &alice,
        &[
            "get",
            "federateddeployments",
            "-n",
            "tenant-a",
            "-o",
            "name",
        ],
        None,
    )
    .await;
    assert_eq!(out.trim(), "federateddeployment.types.kubefed.io/web");
    // tenant B's is not: not by name, not by list, not across namespaces, not by writing
    let err = fails(
        &s,
        &alice,
        &["get", "federateddeployment", "web", "-n", "tenant-b"],
    )
    .await;
    assert!(
        err.contains("federateddeployments.types.kubefed.io \"web\" is forbidden: User \"alice\" cannot get resource \"federateddeployments\" in API group \"types.kubefed.io\" in the namespace \"tenant-b\""),
        "{err}"
    );
    let err = fails(&s, &alice, &["get", "federateddeployments", "-A"]).await;
    assert!(err.contains("at the cluster scope"), "{err}");
    let err = fails(
        &s,
        &alice,
        &[
            "get",
            "--raw",
            "/apis/types.kubefed.io/v1beta1/namespaces/tenant-b/federateddeployments?watch=true",
        ],
    )
    .await;
    assert!(
        err.contains("cannot watch resource \"federateddeployments\""),
        "{err}"
    );
    let (ok, _, err) = s
        .kubectl_with(
            &alice,
            &["apply", "-f", "-"],
            Some(&fed("tenant-b", "evil:1")),
        )
        .await;
    assert!(!ok && err.contains("forbidden"), "{err}");
    fails(
        &s,
        &alice,
        &["delete", "federateddeployment", "web", "-n", "tenant-b"],
    )
    .await;
    assert!(
        !can_i(
            &s,
            &alice,
            &[
                "get",
                "federateddeployments.types.kubefed.io",
                "-n",
                "tenant-b"
            ]
        )
        .await
    );
    assert!(
        can_i(
            &s,
            &alice,
            &[
                "delete",
                "federateddeployments.types.kubefed.io",
                "-n",
                "tenant-a"
            ]
        )
        .await
    );
    // nor can she bind herself into tenant B
    let err = fails(
        &s,
        &alice,
        &[
            "create",
            "rolebinding",
            "me",
            "--clusterrole=federated-editor",
            "--user=alice",
            "-n",
            "tenant-b",
        ],
    )
    .await;
    assert!(err.contains("forbidden"), "{err}");

    let after = s.kubectl_ok(&get_b, None).await;
    assert_eq!(before, after, "tenant B's resource changed");
}

/// A plain-HTTP validating webhook that allows everything and keeps each review's userInfo.
async fn recording_webhook() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: http::Request<hyper::body::Incoming>| {
                        let record = record.clone();
                        async move {
                            use http_body_util::BodyExt;
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let review: Value = serde_json::from_slice(&body).unwrap();
                            record
                                .lock()
                                .unwrap()
                                .push(review["request"]["userInfo"].clone());
                            let answer = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                            "response": {"uid": review["request"]["uid"], "allowed": true}});
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(hyper::body::Bytes::from(
                                    answer.to_string(),
                                )),
                            ))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(conn), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_webhooks_see_the_requesting_user() {
    let s = server("rbac-admission", |_| {}).await;
    let (addr, seen) = recording_webhook().await;
    let hook = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "record"},
        "webhooks": [{"name": "record.example.com", "clientConfig": {"url": format!("http://{addr}/validate")},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"], "operations": ["CREATE"]}],
            "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"]}]});
    s.kubectl_ok(&["apply", "-f", "-"], Some(&hook.to_string()))
        .await;
    s.kubectl_ok(&["create", "namespace", "tenant-a"], None)
        .await;
    s.kubectl_ok(
        &[
            "create",
            "rolebinding",
            "devs-edit",
            "--clusterrole=edit",
            "--group=devs",
            "-n",
            "tenant-a",
        ],
        None,
    )
    .await;
    let alice = token_user(&s, "alice");
    succeeds(
        &s,
        &alice,
        // with data, so the create has a field to manage (an object with no fields of its
        // own gets no managedFields entry, as in kube)
        &[
            "create",
            "configmap",
            "c",
            "-n",
            "tenant-a",
            "--from-literal=a=1",
        ],
        None,
    )
    .await;
    let user = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(user["username"], "alice");
    assert_eq!(user["uid"], "1002");
    assert_eq!(
        user["groups"],
        json!(["tenant-a", "devs", "system:authenticated"])
    );
    // managedFields keep naming the client's field manager
    let out = s
        .kubectl_ok(
            &[
                "get",
                "configmap",
                "c",
                "-n",
                "tenant-a",
                "-o",
                "jsonpath={.metadata.managedFields[0].manager}",
            ],
            None,
        )
        .await;
    assert_eq!(out, "kubectl-create");
}
