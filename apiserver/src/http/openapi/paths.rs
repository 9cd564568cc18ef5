//! `paths`: the REST operations of each resource with kube's operation ids, parameters,
//! `x-kubernetes-action` and `x-kubernetes-group-version-kind`. kubectl looks for the PATCH
//! operation of a kind and its `fieldValidation` query parameter to decide on server-side
//! validation, and for `application/strategic-merge-patch+json` among its body types.

use serde_json::{Map, Value, json};

use super::ResourceSchema;
use super::schemas::{REF_PREFIX, gvk_single};

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("{REF_PREFIX}{name}")})
}

fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": ty, "uniqueItems": true}})
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

const FIELD_VALIDATION_DOC: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.";

fn write_params(patch: bool) -> Vec<Value> {
    let mut p = vec![
        query(
            "dryRun",
            "string",
            "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
        ),
        query(
            "fieldManager",
            "string",
            "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).",
        ),
        query("fieldValidation", "string", FIELD_VALIDATION_DOC),
    ];
    if patch {
        p.push(query("force", "boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests."));
    }
    p
}

fn list_params() -> Vec<Value> {
    [
        ("allowWatchBookmarks", "boolean"),
        ("continue", "string"),
        ("fieldSelector", "string"),
        ("labelSelector", "string"),
        ("limit", "integer"),
        ("resourceVersion", "string"),
        ("resourceVersionMatch", "string"),
        ("sendInitialEvents", "boolean"),
        ("timeoutSeconds", "integer"),
        ("watch", "boolean"),
    ]
    .iter()
    .map(|(n, t)| query(n, t, &format!("{n} of the list or watch request.")))
    .collect()
}

fn delete_params() -> Vec<Value> {
    [
        ("dryRun", "string"),
        ("gracePeriodSeconds", "integer"),
        ("orphanDependents", "boolean"),
        ("propagationPolicy", "string"),
    ]
    .iter()
    .map(|(n, t)| query(n, t, &format!("{n} of the delete request.")))
    .collect()
}

fn content(schema: &Value, types: &[&str]) -> Value {
    Value::Object(
        types
            .iter()
            .map(|t| (t.to_string(), json!({"schema": schema})))
            .collect(),
    )
}

const RESPONSE_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

fn responses(codes: &[(&str, &str)], schema: &Value) -> Value {
    let mut m = Map::new();
    for (code, desc) in codes {
        m.insert(
            code.to_string(),
            json!({"description": desc, "content": content(schema, RESPONSE_TYPES)}),
        );
    }
    m.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(m)
}

struct Op<'a> {
    r: &'a ResourceSchema,
    kind: (&'a str, &'a str, &'a str),
    tag: String,
    id_stem: String,
}

impl Op<'_> {
    fn op(&self, action: &str, verb: &str, description: String, params: Vec<Value>) -> Value {
        let (g, v, k) = self.kind;
        json!({
            "tags": [self.tag],
            "description": description,
            "operationId": format!("{verb}{}", self.id_stem),
            "parameters": params,
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk_single(g, v, k),
        })
    }
}

fn camel(s: &str) -> String {
    s.split(['.', '-'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The operation tag and id infix kube uses: `appsV1`, `AppsV1`; `coreV1` for the core group.
fn group_tag(group: &str, version: &str) -> (String, String) {
    let g = if group.is_empty() {
        "core".to_string()
    } else {
        group
            .trim_end_matches(".k8s.io")
            .trim_end_matches(".authorization")
            .to_string()
    };
    let upper = format!("{}{}", camel(&g), camel(version));
    let mut lower = upper.clone();
    if let Some(first) = lower.get_mut(0..1) {
        first.make_ascii_lowercase();
    }
    (lower, upper)
}

fn has(r: &ResourceSchema, verb: &str) -> bool {
    r.verbs.is_empty() || r.verbs.iter().any(|v| v == verb)
}

/// Adds the paths of one resource; `kind_schema` is its kind's schema name, `list_schema` its
/// list kind's, `scale_schema` the autoscaling/v1 Scale schema when it has a scale subresource.
pub fn add_paths(
    paths: &mut Map<String, Value>,
    r: &ResourceSchema,
    kind_schema: &str,
    list_schema: &str,
    scale_schema: Option<&str>,
    strategic: bool,
) {
    let prefix = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let (tag, upper) = group_tag(&r.group, &r.version);
    let ns = if r.namespaced { "Namespaced" } else { "" };
    let base = if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{prefix}/{}", r.plural)
    };
    let obj = schema_ref(kind_schema);
    let list = schema_ref(list_schema);
    let op = Op {
        r,
        kind: (&r.group, &r.version, &r.kind),
        tag: tag.clone(),
        id_stem: format!("{upper}{ns}{}", r.kind),
    };
    let mut common = vec![
        json!({"name": "pretty", "in": "query", "description": "If 'true', then the output is pretty printed.", "schema": {"type": "string", "uniqueItems": true}}),
    ];
    if r.namespaced {
        common.push(path_param(
            "namespace",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    let mut patch_types = vec![
        "application/json-patch+json",
        "application/merge-patch+json",
    ];
    if strategic {
        patch_types.push("application/strategic-merge-patch+json");
    }
    patch_types.push("application/apply-patch+yaml");
    let patch_body = json!({"content": content(&schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch"), &patch_types), "required": true});
    let body = json!({"content": content(&obj, &["*/*"]), "required": true});
    let status = schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Status");

    // Collection.
    let mut coll = Map::new();
    coll.insert("parameters".into(), json!(common));
    if has(r, "list") {
        let mut o = op.op(
            "list",
            "list",
            format!("list or watch objects of kind {}", r.kind),
            list_params(),
        );
        o["responses"] = responses(&[("200", "OK")], &list);
        coll.insert("get".into(), o);
    }
    if has(r, "create") {
        let mut o = op.op(
            "post",
            "create",
            format!("create a {}", r.kind),
            write_params(false),
        );
        o["requestBody"] = body.clone();
        o["responses"] = responses(
            &[("200", "OK"), ("201", "Created"), ("202", "Accepted")],
            &obj,
        );
        coll.insert("post".into(), o);
    }
    if has(r, "deletecollection") {
        let coll_op = Op {
            r,
            kind: op.kind,
            tag: tag.clone(),
            id_stem: format!("{upper}Collection{ns}{}", r.kind),
        };
        let mut d = coll_op.op(
            "deletecollection",
            "delete",
            format!("delete collection of {}", r.kind),
            [delete_params(), list_params()].concat(),
        );
        d["requestBody"] = json!({"content": content(&schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"), &["*/*"])});
        d["responses"] = responses(&[("200", "OK")], &status);
        coll.insert("delete".into(), d);
    }
    paths.insert(base.clone(), Value::Object(coll));
    add_item_paths(
        paths,
        &op,
        &base,
        &common,
        &obj,
        &status,
        &body,
        &patch_body,
    );

    if r.namespaced && has(r, "list") {
        let all = Op {
            r,
            kind: op.kind,
            tag: tag.clone(),
            id_stem: format!("{upper}{}ForAllNamespaces", r.kind),
        };
        let mut o = all.op(
            "list",
            "list",
            format!("list or watch objects of kind {}", r.kind),
            list_params(),
        );
        o["responses"] = responses(&[("200", "OK")], &list);
        paths.insert(
            format!("{prefix}/{}", r.plural),
            json!({"get": o, "parameters": [common[0].clone()]}),
        );
    }

    for sub in &r.subresources {
        let (schema, kind) = match (sub.as_str(), scale_schema) {
            ("status", _) => (
                obj.clone(),
                (r.group.as_str(), r.version.as_str(), r.kind.as_str()),
            ),
            ("scale", Some(s)) => (schema_ref(s), ("autoscaling", "v1", "Scale")),
            _ => continue,
        };
        let sub_op = Op {
            r,
            kind,
            tag: tag.clone(),
            id_stem: format!("{upper}{ns}{}{}", r.kind, camel(sub)),
        };
        let mut item = Map::new();
        let mut params = common.clone();
        params.insert(0, path_param("name", &format!("name of the {}", kind.2)));
        item.insert("parameters".into(), json!(params));
        let mut g = sub_op.op(
            "get",
            "read",
            format!("read {sub} of the specified {}", r.kind),
            vec![],
        );
        g["responses"] = responses(&[("200", "OK")], &schema);
        item.insert("get".into(), g);
        let mut p = sub_op.op(
            "put",
            "replace",
            format!("replace {sub} of the specified {}", r.kind),
            write_params(false),
        );
        p["requestBody"] = json!({"content": content(&schema, &["*/*"]), "required": true});
        p["responses"] = responses(&[("200", "OK"), ("201", "Created")], &schema);
        item.insert("put".into(), p);
        let mut pa = sub_op.op(
            "patch",
            "patch",
            format!("partially update {sub} of the specified {}", r.kind),
            write_params(true),
        );
        pa["requestBody"] = patch_body.clone();
        pa["responses"] = responses(&[("200", "OK"), ("201", "Created")], &schema);
        item.insert("patch".into(), pa);
        paths.insert(format!("{base}/{{name}}/{sub}"), Value::Object(item));
    }
}

#[allow(clippy::too_many_arguments)]
fn add_item_paths(
    paths: &mut Map<String, Value>,
    op: &Op<'_>,
    base: &str,
    common: &[Value],
    obj: &Value,
    status: &Value,
    body: &Value,
    patch_body: &Value,
) {
    let r = op.r;
    let mut item = Map::new();
    let mut params = common.to_vec();
    params.insert(0, path_param("name", &format!("name of the {}", r.kind)));
    item.insert("parameters".into(), json!(params));
    if has(r, "get") {
        let mut o = op.op(
            "get",
            "read",
            format!("read the specified {}", r.kind),
            vec![],
        );
        o["responses"] = responses(&[("200", "OK")], obj);
        item.insert("get".into(), o);
    }
    if has(r, "update") {
        let mut o = op.op(
            "put",
            "replace",
            format!("replace the specified {}", r.kind),
            write_params(false),
        );
        o["requestBody"] = body.clone();
        o["responses"] = responses(&[("200", "OK"), ("201", "Created")], obj);
        item.insert("put".into(), o);
    }
    if has(r, "delete") {
        let mut o = op.op(
            "delete",
            "delete",
            format!("delete a {}", r.kind),
            delete_params(),
        );
        o["requestBody"] = json!({"content": content(&schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"), &["*/*"])});
        o["responses"] = responses(&[("200", "OK"), ("202", "Accepted")], status);
        item.insert("delete".into(), o);
    }
    if has(r, "patch") {
        let mut o = op.op(
            "patch",
            "patch",
            format!("partially update the specified {}", r.kind),
            write_params(true),
        );
        o["requestBody"] = patch_body.clone();
        o["responses"] = responses(&[("200", "OK"), ("201", "Created")], obj);
        item.insert("patch".into(), o);
    }
    paths.insert(format!("{base}/{{name}}"), Value::Object(item));
}
