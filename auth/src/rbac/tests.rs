use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::escalation::{
    self, check_binding_write, check_cluster_role_write, check_role_write, covers,
};
use super::forbidden::{forbidden_message, forbidden_status};
use super::*;

fn s(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|x| (*x).to_string()).collect())
}

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: s(verbs).unwrap(),
        api_groups: s(groups),
        resources: s(resources),
        ..PolicyRule::default()
    }
}

fn named(mut r: PolicyRule, names: &[&str]) -> PolicyRule {
    r.resource_names = s(names);
    r
}

fn url_rule(verbs: &[&str], urls: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: s(verbs).unwrap(),
        non_resource_urls: s(urls),
        ..PolicyRule::default()
    }
}

fn meta(ns: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: ns.map(Into::into),
        ..ObjectMeta::default()
    }
}

fn role(ns: &str, name: &str, rules: Vec<PolicyRule>) -> Role {
    Role {
        metadata: meta(Some(ns), name),
        rules: Some(rules),
    }
}

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        metadata: meta(None, name),
        rules: Some(rules),
        aggregation_rule: None,
    }
}

fn user_subject(name: &str) -> Subject {
    Subject {
        kind: "User".into(),
        name: name.into(),
        api_group: Some(GROUP.into()),
        namespace: None,
    }
}

fn group_subject(name: &str) -> Subject {
    Subject {
        kind: "Group".into(),
        ..user_subject(name)
    }
}

fn sa_subject(ns: Option<&str>, name: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".into(),
        name: name.into(),
        api_group: None,
        namespace: ns.map(Into::into),
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: GROUP.into(),
        kind: kind.into(),
        name: name.into(),
    }
}

fn rb(ns: &str, name: &str, kind: &str, role: &str, subjects: Vec<Subject>) -> RoleBinding {
    RoleBinding {
        metadata: meta(Some(ns), name),
        role_ref: role_ref(kind, role),
        subjects: Some(subjects),
    }
}

fn crb(name: &str, role: &str, subjects: Vec<Subject>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(None, name),
        role_ref: role_ref("ClusterRole", role),
        subjects: Some(subjects),
    }
}

fn alice() -> UserInfo {
    UserInfo::new("alice", ["dev", "system:authenticated"])
}

fn can(
    source: &Snapshot,
    user: &UserInfo,
    verb: &str,
    group: &str,
    resource: &str,
    ns: &str,
) -> bool {
    authorize(
        &Attributes::resource(user.clone(), verb, group, resource).namespace(ns),
        source,
    )
    .is_allowed()
}

#[test]
fn no_binding_means_no_opinion_and_kube_s_403() {
    let attrs = Attributes::resource(alice(), "get", "", "pods")
        .namespace("default")
        .name("web");
    let d = authorize(&attrs, &Snapshot::default());
    assert_eq!(
        d,
        Decision::NoOpinion {
            reason: String::new()
        }
    );
    let status = forbidden_status(&attrs, d.reason());
    assert_eq!(
        status.message.as_deref(),
        Some(
            "pods \"web\" is forbidden: User \"alice\" cannot get resource \"pods\" in API group \"\" in the namespace \"default\""
        )
    );
    assert_eq!(status.code, Some(403));
    assert_eq!(status.reason.as_deref(), Some("Forbidden"));
    let details = status.details.unwrap();
    assert_eq!(details.kind.as_deref(), Some("pods"));
    assert_eq!(details.name.as_deref(), Some("web"));
    assert_eq!(details.group, None);
}

#[test]
fn forbidden_messages_follow_kube_for_every_shape() {
    let list = Attributes::resource(alice(), "list", "apps", "deployments");
    assert_eq!(
        forbidden_status(&list, "").message.unwrap(),
        "deployments.apps is forbidden: User \"alice\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
    );
    let log = Attributes::resource(alice(), "get", "", "pods")
        .namespace("ns")
        .name("p")
        .subresource("log");
    assert_eq!(
        forbidden_message(&log),
        "User \"alice\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"ns\""
    );
    let path = Attributes::non_resource(UserInfo::anonymous(), "get", "/metrics");
    assert_eq!(
        forbidden_status(&path, "").message.unwrap(),
        "forbidden: User \"system:anonymous\" cannot get path \"/metrics\""
    );
    let odd = Attributes::resource(UserInfo::new("<b>\"x\"", ["g"]), "get", "", "pods");
    assert_eq!(
        forbidden_message(&odd),
        "User \"&lt;b&gt;\\\"x\\\"\" cannot get resource \"pods\" in API group \"\" at the cluster scope"
    );
    assert!(
        forbidden_status(
            &list,
            "RBAC: clusterrole.rbac.authorization.k8s.io \"x\" not found"
        )
        .message
        .unwrap()
        .ends_with(
            "at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io \"x\" not found"
        )
    );
}

#[test]
fn role_binding_grants_its_namespace_and_verbs_only() {
    let snap = Snapshot::new(
        [role(
            "team-a",
            "reader",
            vec![rule(&["get", "list"], &[""], &["pods"])],
        )],
        [],
        [rb(
            "team-a",
            "alice-reads",
            "Role",
            "reader",
            vec![user_subject("alice")],
        )],
        [],
    );
    let d = authorize(
        &Attributes::resource(alice(), "get", "", "pods").namespace("team-a"),
        &snap,
    );
    assert_eq!(
        d,
        Decision::Allow {
            reason: "RBAC: allowed by RoleBinding \"alice-reads/team-a\" of Role \"reader\" to User \"alice\"".into()
        }
    );
    assert!(can(&snap, &alice(), "list", "", "pods", "team-a"));
    assert!(!can(&snap, &alice(), "delete", "", "pods", "team-a"));
    assert!(!can(&snap, &alice(), "get", "", "pods", "team-b"));
    assert!(
        !can(&snap, &alice(), "get", "", "pods", ""),
        "not cluster-wide"
    );
    assert!(
        !can(&snap, &alice(), "get", "apps", "pods", "team-a"),
        "other group"
    );
    assert!(!can(
        &snap,
        &UserInfo::new("bob", ["dev"]),
        "get",
        "",
        "pods",
        "team-a"
    ));
}

#[test]
fn role_binding_to_a_cluster_role_is_scoped_and_cluster_role_binding_is_global() {
    let snap = Snapshot::new(
        [],
        [cluster_role(
            "pod-reader",
            vec![rule(&["get"], &[""], &["pods"])],
        )],
        [rb(
            "team-a",
            "b",
            "ClusterRole",
            "pod-reader",
            vec![group_subject("dev")],
        )],
        [crb("ops", "pod-reader", vec![user_subject("olga")])],
    );
    assert!(can(&snap, &alice(), "get", "", "pods", "team-a"));
    assert!(!can(&snap, &alice(), "get", "", "pods", "team-b"));
    let olga = UserInfo::new("olga", Vec::<String>::new());
    assert!(can(&snap, &olga, "get", "", "pods", "team-b"));
    assert!(can(&snap, &olga, "get", "", "pods", ""));
    let d = authorize(&Attributes::resource(olga, "get", "", "pods"), &snap);
    assert_eq!(
        d.reason(),
        "RBAC: allowed by ClusterRoleBinding \"ops\" of ClusterRole \"pod-reader\" to User \"olga\""
    );
}

#[test]
fn wildcards_and_subresources_match_as_in_kube() {
    let snap = Snapshot::new(
        [],
        [
            cluster_role("star", vec![rule(&["*"], &["*"], &["*"])]),
            cluster_role("pods-only", vec![rule(&["get"], &[""], &["pods"])]),
            cluster_role("scale", vec![rule(&["update"], &["apps"], &["*/scale"])]),
            cluster_role("pods-star", vec![rule(&["get"], &[""], &["pods/*"])]),
            cluster_role("log", vec![rule(&["get"], &[""], &["pods/log"])]),
        ],
        [],
        [
            crb("a", "star", vec![user_subject("root")]),
            crb("b", "pods-only", vec![user_subject("p")]),
            crb("c", "scale", vec![user_subject("s")]),
            crb("d", "pods-star", vec![user_subject("ps")]),
            crb("e", "log", vec![user_subject("l")]),
        ],
    );
    let u = |n: &str| UserInfo::new(n, Vec::<String>::new());
    let sub = |user: &str, verb: &str, group: &str, res: &str, subres: &str| {
        authorize(
            &Attributes::resource(u(user), verb, group, res)
                .namespace("ns")
                .subresource(subres),
            &snap,
        )
        .is_allowed()
    };
    // `*` resources cover subresources and custom verbs.
    assert!(sub(
        "root",
        "escalate",
        "rbac.authorization.k8s.io",
        "roles",
        ""
    ));
    assert!(sub("root", "get", "", "pods", "exec"));
    // `pods` does not cover `pods/log`.
    assert!(sub("p", "get", "", "pods", ""));
    assert!(!sub("p", "get", "", "pods", "log"));
    // `*/scale` covers every scale subresource and nothing else.
    assert!(sub("s", "update", "apps", "deployments", "scale"));
    assert!(sub("s", "update", "apps", "statefulsets", "scale"));
    assert!(!sub("s", "update", "apps", "deployments", ""));
    assert!(!sub("s", "update", "apps", "deployments", "status"));
    // `pods/*` is not a wildcard in kube.
    assert!(!sub("ps", "get", "", "pods", "log"));
    // `pods/log` does not cover `pods`.
    assert!(sub("l", "get", "", "pods", "log"));
    assert!(!sub("l", "get", "", "pods", ""));
    // Resource rules never allow non-resource paths.
    assert!(
        !authorize(
            &Attributes::non_resource(u("root"), "get", "/metrics"),
            &snap
        )
        .is_allowed()
    );
}

#[test]
fn resource_names_restrict_to_named_requests() {
    let snap = Snapshot::new(
        [],
        [cluster_role(
            "one-cm",
            vec![named(
                rule(&["get", "list", "update"], &[""], &["configmaps"]),
                &["app-config"],
            )],
        )],
        [],
        [crb("x", "one-cm", vec![user_subject("alice")])],
    );
    let req = |verb: &str, name: &str| {
        authorize(
            &Attributes::resource(alice(), verb, "", "configmaps")
                .namespace("ns")
                .name(name),
            &snap,
        )
        .is_allowed()
    };
    assert!(req("get", "app-config"));
    assert!(req("update", "app-config"));
    assert!(!req("get", "other"));
    assert!(
        !req("list", ""),
        "a list has no name, so a named rule does not allow it"
    );
}

#[test]
fn non_resource_urls_match_exactly_or_by_trailing_star() {
    let snap = Snapshot::new(
        [],
        [cluster_role(
            "urls",
            vec![url_rule(&["get"], &["/healthz/*", "/version", "/logs**"])],
        )],
        [],
        [crb("x", "urls", vec![group_subject("dev")])],
    );
    let get =
        |path: &str| authorize(&Attributes::non_resource(alice(), "get", path), &snap).is_allowed();
    assert!(get("/healthz/etcd"));
    assert!(get("/healthz/"));
    assert!(!get("/healthz"));
    assert!(get("/version"));
    assert!(!get("/version/"));
    assert!(
        get("/logs/kube.log"),
        "every trailing * is dropped, as Go's TrimRight"
    );
    assert!(
        !authorize(
            &Attributes::non_resource(alice(), "post", "/version"),
            &snap
        )
        .is_allowed()
    );
    assert!(
        !can(&snap, &alice(), "get", "", "version", ""),
        "URL rules never allow resources"
    );
}

#[test]
fn service_account_subjects_default_to_the_binding_namespace() {
    let sa = |ns: &str, name: &str| UserInfo {
        name: crate::user::service_account_username(ns, name),
        groups: crate::user::service_account_groups(ns),
        ..UserInfo::default()
    };
    let snap = Snapshot::new(
        [],
        [cluster_role(
            "edit-cm",
            vec![rule(&["update"], &[""], &["configmaps"])],
        )],
        [
            rb(
                "ci",
                "local",
                "ClusterRole",
                "edit-cm",
                vec![sa_subject(None, "builder")],
            ),
            rb(
                "prod",
                "remote",
                "ClusterRole",
                "edit-cm",
                vec![sa_subject(Some("ci"), "deployer")],
            ),
        ],
        [crb("no-ns", "edit-cm", vec![sa_subject(None, "builder")])],
    );
    assert!(can(
        &snap,
        &sa("ci", "builder"),
        "update",
        "",
        "configmaps",
        "ci"
    ));
    assert!(!can(
        &snap,
        &sa("other", "builder"),
        "update",
        "",
        "configmaps",
        "ci"
    ));
    assert!(!can(
        &snap,
        &sa("ci", "builder"),
        "update",
        "",
        "configmaps",
        "prod"
    ));
    assert!(can(
        &snap,
        &sa("ci", "deployer"),
        "update",
        "",
        "configmaps",
        "prod"
    ));
    assert!(!can(
        &snap,
        &sa("prod", "deployer"),
        "update",
        "",
        "configmaps",
        "prod"
    ));
    // A ServiceAccount subject without namespace in a ClusterRoleBinding matches no one.
    assert!(!can(
        &snap,
        &sa("ci", "builder"),
        "update",
        "",
        "configmaps",
        ""
    ));
    let d = authorize(
        &Attributes::resource(sa("ci", "builder"), "update", "", "configmaps").namespace("ci"),
        &snap,
    );
    assert_eq!(
        d.reason(),
        "RBAC: allowed by RoleBinding \"local/ci\" of ClusterRole \"edit-cm\" to ServiceAccount \"builder/ci\""
    );
}

#[test]
fn system_masters_is_all_powerful_without_any_binding() {
    let root = UserInfo::new("root", ["system:masters"]);
    let snap = Snapshot::default();
    assert!(can(
        &snap,
        &root,
        "delete",
        "rbac.authorization.k8s.io",
        "clusterroles",
        ""
    ));
    assert!(authorize(&Attributes::non_resource(root, "get", "/anything"), &snap).is_allowed());
}

#[test]
fn missing_roles_are_reported_and_do_not_hide_other_grants() {
    let snap = Snapshot::new(
        [],
        [cluster_role(
            "reader",
            vec![rule(&["get"], &[""], &["pods"])],
        )],
        [rb(
            "ns",
            "gone",
            "Role",
            "missing",
            vec![user_subject("alice")],
        )],
        [
            crb("broken", "nope", vec![group_subject("dev")]),
            crb("weird", "reader", vec![]),
        ],
    );
    let d = authorize(
        &Attributes::resource(alice(), "list", "", "pods").namespace("ns"),
        &snap,
    );
    assert_eq!(
        d.reason(),
        "RBAC: [clusterrole.rbac.authorization.k8s.io \"nope\" not found, role.rbac.authorization.k8s.io \"missing\" not found]"
    );
    let mut snap2 = Snapshot::new(
        [],
        [cluster_role(
            "reader",
            vec![rule(&["get"], &[""], &["pods"])],
        )],
        [],
        [
            crb("broken", "nope", vec![group_subject("dev")]),
            crb("ok", "reader", vec![group_subject("dev")]),
        ],
    );
    assert!(can(&snap2, &alice(), "get", "", "pods", "ns"));
    let bad = RoleBinding {
        role_ref: role_ref("Group", "x"),
        ..rb("ns", "bad", "Role", "x", vec![user_subject("alice")])
    };
    snap2 = Snapshot::new([], [], [bad], []);
    let d = authorize(
        &Attributes::resource(alice(), "get", "", "pods").namespace("ns"),
        &snap2,
    );
    assert_eq!(
        d.reason(),
        "RBAC: unsupported role reference kind: \"Group\""
    );
}

#[test]
fn rules_for_feeds_self_subject_rules_review() {
    let snap = Snapshot::with_bootstrap(
        [role(
            "ns",
            "cm",
            vec![rule(&["get"], &[""], &["configmaps"])],
        )],
        [],
        [
            rb("ns", "a", "Role", "cm", vec![user_subject("alice")]),
            rb("ns", "b", "Role", "missing", vec![user_subject("alice")]),
        ],
        [],
    );
    let rules = rules_for(&snap, &alice(), "ns");
    assert!(
        rules
            .rules
            .contains(&rule(&["get"], &[""], &["configmaps"]))
    );
    let status = rules.review_status();
    assert!(status.incomplete);
    assert_eq!(
        status.evaluation_error.as_deref(),
        Some("role.rbac.authorization.k8s.io \"missing\" not found")
    );
    assert!(status.non_resource_rules.iter().any(|r| {
        r.non_resource_urls
            .as_ref()
            .is_some_and(|u| u.contains(&"/apis/*".to_string()))
    }));
    assert!(status.resource_rules.iter().any(|r| {
        r.resources
            .as_ref()
            .is_some_and(|u| u.contains(&"selfsubjectaccessreviews".to_string()))
    }));
    let elsewhere = rules_for(&snap, &alice(), "other");
    assert!(
        !elsewhere
            .rules
            .contains(&rule(&["get"], &[""], &["configmaps"]))
    );
    assert!(elsewhere.errors.is_empty());
}

#[test]
fn bootstrap_roles_grant_what_kube_s_grant() {
    let user = |n: &str| UserInfo::new(n, ["system:authenticated"]);
    let snap = Snapshot::with_bootstrap(
        [],
        [],
        [
            rb(
                "t",
                "v",
                "ClusterRole",
                "view",
                vec![user_subject("viewer")],
            ),
            rb(
                "t",
                "e",
                "ClusterRole",
                "edit",
                vec![user_subject("editor")],
            ),
            rb(
                "t",
                "a",
                "ClusterRole",
                "admin",
                vec![user_subject("admin")],
            ),
        ],
        [crb("ca", "cluster-admin", vec![user_subject("root")])],
    );
    let (v, e, a, r) = (user("viewer"), user("editor"), user("admin"), user("root"));
    assert!(can(&snap, &v, "list", "apps", "deployments", "t"));
    assert!(can(&snap, &v, "watch", "batch", "jobs", "t"));
    assert!(
        !can(&snap, &v, "get", "", "secrets", "t"),
        "view never reads Secrets"
    );
    assert!(!can(&snap, &v, "create", "", "configmaps", "t"));
    assert!(!can(&snap, &v, "list", "apps", "deployments", "u"));
    assert!(can(&snap, &e, "create", "apps", "deployments", "t"));
    assert!(can(&snap, &e, "get", "", "secrets", "t"));
    assert!(
        can(&snap, &e, "list", "", "pods", "t"),
        "edit includes view"
    );
    assert!(!can(
        &snap,
        &e,
        "create",
        "rbac.authorization.k8s.io",
        "rolebindings",
        "t"
    ));
    assert!(can(
        &snap,
        &a,
        "create",
        "rbac.authorization.k8s.io",
        "rolebindings",
        "t"
    ));
    assert!(
        can(&snap, &a, "delete", "batch", "cronjobs", "t"),
        "admin includes edit"
    );
    assert!(
        !can(&snap, &a, "list", "", "namespaces", ""),
        "admin is namespace-scoped"
    );
    assert!(can(&snap, &r, "delete", "", "nodes", ""));
    assert!(authorize(&Attributes::non_resource(r, "get", "/metrics"), &snap).is_allowed());
    // Discovery for every authenticated user, public info for everyone.
    let get = |u: UserInfo, p: &str| {
        authorize(&Attributes::non_resource(u, "get", p), &snap).is_allowed()
    };
    assert!(get(user("nobody"), "/apis/apps/v1"));
    assert!(can(
        &snap,
        &user("nobody"),
        "create",
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        ""
    ));
    assert!(get(UserInfo::anonymous(), "/healthz"));
    assert!(get(UserInfo::anonymous(), "/version"));
    assert!(!get(UserInfo::anonymous(), "/api"));
}

#[test]
fn bootstrap_aggregation_matches_kube_s_order() {
    let roles = bootstrap::cluster_roles();
    let get = |n: &str| {
        roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(n))
            .unwrap()
    };
    let rules = |n: &str| get(n).rules.clone().unwrap();
    let mut edit = rules("system:aggregate-to-edit");
    edit.extend(rules("view"));
    assert_eq!(rules("edit"), edit);
    assert_eq!(rules("view"), rules("system:aggregate-to-view"));
    let mut admin = rules("edit");
    admin.extend(rules("system:aggregate-to-admin"));
    assert_eq!(rules("admin"), admin);
    // Aggregation picks up an extra role labelled for view, up the chain.
    let mut extra = cluster_role(
        "cellfed-view",
        vec![rule(&["get"], &["types.kubefed.io"], &["*"])],
    );
    extra.metadata.labels =
        Some([(bootstrap::AGGREGATE_TO_VIEW.to_string(), "true".to_string())].into());
    let mut all = roles.clone();
    all.push(extra);
    aggregate::aggregate(&mut all);
    let admin = all
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some("admin"))
        .unwrap();
    assert!(
        admin
            .rules
            .as_ref()
            .unwrap()
            .contains(&rule(&["get"], &["types.kubefed.io"], &["*"]))
    );
}

#[test]
fn label_selectors_support_expressions() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
    let labels = [("tier".to_string(), "web".to_string())].into();
    let sel = |op: &str, values: &[&str]| LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "tier".into(),
            operator: op.into(),
            values: s(values),
        }]),
        match_labels: None,
    };
    assert!(aggregate::selector_matches(
        &sel("In", &["web", "db"]),
        &labels
    ));
    assert!(!aggregate::selector_matches(
        &sel("NotIn", &["web"]),
        &labels
    ));
    assert!(aggregate::selector_matches(&sel("Exists", &[]), &labels));
    assert!(!aggregate::selector_matches(
        &sel("DoesNotExist", &[]),
        &labels
    ));
    assert!(!aggregate::selector_matches(&sel("Bogus", &[]), &labels));
    assert!(aggregate::selector_matches(
        &LabelSelector::default(),
        &labels
    ));
}

#[test]
fn covers_follows_kube_s_policy_comparator() {
    let owner = [rule(&["*"], &["*"], &["*"])];
    assert!(covers(&owner, &[rule(&["get"], &["apps"], &["deployments/scale"])]).is_ok());
    // Resource wildcard rules do not cover non-resource URLs.
    assert!(covers(&owner, &[url_rule(&["get"], &["/metrics"])]).is_err());
    let owner = [rule(&["get", "list"], &[""], &["pods", "*/status"])];
    assert!(
        covers(
            &owner,
            &[rule(&["get"], &[""], &["pods", "deployments/status"])]
        )
        .is_ok()
    );
    let Err(missing) = covers(
        &owner,
        &[rule(&["get", "delete"], &["", "apps"], &["pods"])],
    ) else {
        panic!("expected missing rules");
    };
    assert_eq!(missing.len(), 3, "{missing:?}");
    // Named owner rules cover only those names; unnamed requests need unnamed owners.
    let owner = [named(rule(&["get"], &[""], &["secrets"]), &["a", "b"])];
    assert!(
        covers(
            &owner,
            &[named(rule(&["get"], &[""], &["secrets"]), &["a"])]
        )
        .is_ok()
    );
    assert!(
        covers(
            &owner,
            &[named(rule(&["get"], &[""], &["secrets"]), &["c"])]
        )
        .is_err()
    );
    assert!(covers(&owner, &[rule(&["get"], &[""], &["secrets"])]).is_err());
    let owner = [url_rule(&["get"], &["/healthz/*", "/api"])];
    assert!(covers(&owner, &[url_rule(&["get"], &["/healthz/etcd", "/api"])]).is_ok());
    assert!(covers(&owner, &[url_rule(&["get"], &["/api/v1"])]).is_err());
    assert!(
        covers(
            &[url_rule(&["*"], &["*"])],
            &[url_rule(&["get"], &["/any"])]
        )
        .is_ok()
    );
}

#[test]
fn escalation_is_refused_with_kube_s_message() {
    let bob = UserInfo::new("bob", ["dev", "system:authenticated"]);
    let snap = Snapshot::new(
        [
            role(
                "t",
                "deployer",
                vec![
                    rule(&["get", "list", "delete"], &["apps"], &["deployments"]),
                    rule(&["get"], &[""], &["pods"]),
                ],
            ),
            role(
                "t",
                "rbac-writer",
                vec![rule(
                    &["create", "update"],
                    &[GROUP],
                    &["roles", "rolebindings"],
                )],
            ),
        ],
        [cluster_role(
            "pod-get",
            vec![rule(&["get"], &[""], &["pods"])],
        )],
        [
            rb(
                "t",
                "bob-rbac",
                "Role",
                "rbac-writer",
                vec![user_subject("bob")],
            ),
            rb(
                "t",
                "bob-pods",
                "ClusterRole",
                "pod-get",
                vec![user_subject("bob")],
            ),
        ],
        [],
    );
    // bob holds `get pods` in t, so he may bind a role that grants only that.
    let pod_role = role_ref("ClusterRole", "pod-get");
    assert!(check_binding_write(&snap, &bob, "t", &pod_role).is_ok());
    // ... but not the deployer role, nor pod-get cluster-wide.
    let e = check_binding_write(&snap, &bob, "t", &role_ref("Role", "deployer")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "user \"bob\" (groups=[\"dev\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n\
         {APIGroups:[\"apps\"], Resources:[\"deployments\"], Verbs:[\"get\" \"list\" \"delete\"]}"
    );
    assert!(check_binding_write(&snap, &bob, "", &pod_role).is_err());
    let e = check_binding_write(&snap, &bob, "t", &role_ref("Role", "gone")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "role.rbac.authorization.k8s.io \"gone\" not found"
    );
    // A role he writes may hold only what he holds.
    assert!(
        check_role_write(
            &snap,
            &bob,
            &role("t", "mine", vec![rule(&["get"], &[""], &["pods"])])
        )
        .is_ok()
    );
    let e = check_role_write(
        &snap,
        &bob,
        &role(
            "t",
            "mine",
            vec![rule(&["get", "list"], &[""], &["pods", "secrets"])],
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(e.ends_with(
        "not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"list\"]}\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\"]}"
    ), "{e}");
}

#[test]
fn bind_and_escalate_verbs_and_masters_lift_the_check() {
    let carol = UserInfo::new("carol", Vec::<String>::new());
    let snap = Snapshot::new(
        [],
        [
            cluster_role(
                "binder",
                vec![named(
                    rule(&["bind"], &[GROUP], &["clusterroles"]),
                    &["admin"],
                )],
            ),
            cluster_role(
                "escalator",
                vec![rule(&["escalate"], &[GROUP], &["clusterroles"])],
            ),
            cluster_role("admin", vec![rule(&["*"], &["*"], &["*"])]),
        ],
        [rb(
            "t",
            "carol-binds",
            "ClusterRole",
            "binder",
            vec![user_subject("carol")],
        )],
        [],
    );
    assert!(check_binding_write(&snap, &carol, "t", &role_ref("ClusterRole", "admin")).is_ok());
    assert!(check_binding_write(&snap, &carol, "u", &role_ref("ClusterRole", "admin")).is_err());
    let agg = ClusterRole {
        aggregation_rule: Some(Default::default()),
        ..cluster_role("agg", vec![])
    };
    assert!(matches!(
        check_cluster_role_write(&snap, &carol, &agg),
        Err(escalation::Error::ConfirmAggregationRule)
    ));
    let snap = Snapshot::new(
        [],
        [cluster_role(
            "escalator",
            vec![rule(&["escalate"], &[GROUP], &["clusterroles"])],
        )],
        [],
        [crb("e", "escalator", vec![user_subject("carol")])],
    );
    assert!(check_cluster_role_write(&snap, &carol, &agg).is_ok());
    let root = UserInfo::new("root", ["system:masters"]);
    assert!(
        check_binding_write(
            &Snapshot::default(),
            &root,
            "",
            &role_ref("ClusterRole", "x")
        )
        .is_ok()
    );
}

#[test]
fn compact_string_and_compaction_match_kube() {
    let r = named(rule(&["get"], &[""], &["secrets"]), &["a"]);
    assert_eq!(
        escalation::compact_string(&r),
        "{APIGroups:[\"\"], Resources:[\"secrets\"], ResourceNames:[\"a\"], Verbs:[\"get\"]}"
    );
    assert_eq!(
        escalation::compact_string(&url_rule(&["get"], &["/x"])),
        "{NonResourceURLs:[\"/x\"], Verbs:[\"get\"]}"
    );
    let atoms = escalation::breakdown_rule(&rule(&["get", "list"], &["apps"], &["deployments"]));
    assert_eq!(atoms.len(), 2);
    assert_eq!(
        escalation::compact_rules(&atoms),
        vec![rule(&["get", "list"], &["apps"], &["deployments"])]
    );
}
