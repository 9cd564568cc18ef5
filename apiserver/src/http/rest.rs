//! Request routing for resource paths (`/api/v1/...`, `/apis/<g>/<v>/...`): parses the path,
//! negotiates content, and calls the list/watch/write functions.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use cellfed_auth::UserInfo;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::MAX_BODY_BYTES;
use crate::error::{ApiError, ApiResult};
use crate::http::discovery;
use crate::http::table::IncludeObject;
use crate::http::watch::{self, Render};
use crate::registry::Resource;
use crate::registry::list::{self, ListQuery};
use crate::registry::patch;
use crate::registry::write::{self, FieldValidation, Outcome, Part, WriteOpts};
use crate::state::AppState;

/// What a resource path names.
#[derive(Debug, Clone)]
struct Target {
    res: std::sync::Arc<Resource>,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
    /// Legacy `/watch/` path.
    watch_path: bool,
}

/// The response for `body`: protobuf when the client prefers it and the kind has a protobuf
/// form, JSON otherwise.
fn respond(headers: &HeaderMap, code: StatusCode, body: &Value, warnings: &[String]) -> Response {
    let proto = crate::http::protobuf::preferred(headers)
        .then(|| crate::http::protobuf::encode(body))
        .flatten();
    let (content_type, bytes) = match proto {
        Some(b) => (crate::http::protobuf::MEDIA_TYPE, Body::from(b)),
        None => ("application/json", Body::from(body.to_string())),
    };
    let mut r = (code, bytes).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&format!("299 - {:?}", w)) {
            r.headers_mut().append(header::WARNING, v);
        }
    }
    r
}

/// The fallback handler: discovery below group/version and all resource requests.
pub async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    let proto = crate::http::protobuf::preferred(req.headers());
    match handle(state, req).await {
        Ok(r) => r,
        Err(e) if proto => crate::http::protobuf::error_response(e),
        Err(e) => e.into_response(),
    }
}

async fn handle(state: AppState, req: Request) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query: HashMap<String, String> =
        serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["api"] => return Ok(discovery::api_versions()),
        ["apis", g] => {
            return discovery::api_group(&state.registry, g).ok_or_else(ApiError::path_not_found);
        }
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::path_not_found()),
    };
    if rest.is_empty() {
        return discovery::resource_list(&state.registry, group, version)
            .ok_or_else(ApiError::path_not_found);
    }
    let target = parse_target(&state, group, version, rest)?;
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::too_large())?;
    let user = crate::auth::user_of(&parts.extensions);
    if target.res.is_review() {
        if parts.method != Method::POST || target.name.is_some() {
            return Err(ApiError::method_not_allowed());
        }
        let obj = decode_body(&parts.headers, &body)?;
        let (code, out) = crate::auth::reviews::create(
            &state,
            &target.res,
            target.namespace.as_deref(),
            user,
            obj,
        )
        .await?;
        return Ok(respond(&parts.headers, code, &out, &[]));
    }
    if let (Some(name), Some("token"), Some(ns)) =
        (&target.name, target.sub.as_deref(), &target.namespace)
        && target.res.group.is_empty()
        && target.res.plural == "serviceaccounts"
    {
        if parts.method != Method::POST {
            return Err(ApiError::method_not_allowed());
        }
        let opts = write_opts(&parts.headers, &query, &user)?;
        let obj = if body.is_empty() {
            json!({})
        } else {
            decode_body(&parts.headers, &body)?
        };
        let (code, out) =
            crate::auth::token_request::create(&state, &target.res, ns, name, obj, opts.dry_run)
                .await?;
        return Ok(respond(&parts.headers, code, &out, &[]));
    }
    route(
        &state,
        target,
        &parts.method,
        &parts.headers,
        &query,
        body,
        &user,
    )
    .await
}

fn parse_target(state: &AppState, group: &str, version: &str, rest: &[&str]) -> ApiResult<Target> {
    let (watch_path, rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    let find = |plural: &str| state.registry.find(group, version, plural);
    if let ["namespaces", ns, plural, tail @ ..] = rest
        && let Some(res) = find(plural).filter(|r| r.namespaced)
    {
        if tail.len() > 2 {
            return Err(ApiError::path_not_found());
        }
        return Ok(Target {
            res,
            namespace: Some(ns.to_string()),
            name: tail.first().map(|s| s.to_string()),
            sub: tail.get(1).map(|s| s.to_string()),
            watch_path,
        });
    }
    let [plural, tail @ ..] = rest else {
        return Err(ApiError::path_not_found());
    };
    let res = find(plural).ok_or_else(ApiError::path_not_found)?;
    if tail.len() > 2 || (res.namespaced && !tail.is_empty()) {
        return Err(ApiError::path_not_found());
    }
    Ok(Target {
        res,
        namespace: None,
        name: tail.first().map(|s| s.to_string()),
        sub: tail.get(1).map(|s| s.to_string()),
        watch_path,
    })
}

/// Decodes a JSON, YAML or (for the kinds typed clients send so) protobuf body.
pub(crate) fn decode_body(headers: &HeaderMap, body: &Bytes) -> ApiResult<Value> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let mime = ct.split(';').next().unwrap_or("").trim();
    match mime {
        "application/json" | "" | "*/*" => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        }),
        "application/yaml" | "application/x-yaml" | "text/yaml" => serde_yaml::from_slice(body)
            .map_err(|e| {
                ApiError::bad_request(format!("error converting YAML to JSON: yaml: {e}"))
            }),
        "application/vnd.kubernetes.protobuf" => crate::http::protobuf::decode(body),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

fn write_opts(
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    user: &UserInfo,
) -> ApiResult<WriteOpts> {
    let dry_run = match q.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other:?}; supported values: \"All\""
            )));
        }
    };
    let field_manager = q
        .get("fieldManager")
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| {
            headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.split('/').next().unwrap_or(ua).to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unknown".into())
        });
    let field_validation = match q.get("fieldValidation").map(String::as_str) {
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        _ => FieldValidation::Warn,
    };
    Ok(WriteOpts {
        dry_run,
        field_manager,
        field_validation,
        applied: false,
        user: Some(user.clone()),
    })
}

/// Whether the client asked for a `meta.k8s.io/v1` Table.
fn table_requested(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .next()
                .is_some_and(|first| first.contains("as=Table") && first.contains("g=meta.k8s.io"))
        })
}

fn include_object(q: &HashMap<String, String>) -> IncludeObject {
    match q.get("includeObject").map(String::as_str) {
        Some("None") => IncludeObject::None,
        Some("Object") => IncludeObject::Object,
        _ => IncludeObject::Metadata,
    }
}

/// How a watch renders its events: tables, protobuf frames for built-in kinds when the client
/// prefers protobuf, JSON lines otherwise.
fn watch_render(
    res: &Resource,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    table: bool,
) -> Render {
    if table {
        Render::Table(include_object(q))
    } else if res.crd.is_none() && crate::http::protobuf::preferred(headers) {
        Render::Protobuf
    } else {
        Render::Object
    }
}

async fn route(
    state: &AppState,
    t: Target,
    method: &Method,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    body: Bytes,
    user: &UserInfo,
) -> ApiResult<Response> {
    let res = t.res.clone();
    let ns = t.namespace.as_deref();
    let table = table_requested(headers);
    match (&t.name, t.sub.as_deref()) {
        (None, _) => match *method {
            Method::GET => {
                let mut lq = ListQuery::parse(&res, q)?;
                if t.watch_path {
                    lq.watch = true;
                }
                if lq.watch {
                    let render = watch_render(&res, headers, q, table);
                    return watch::watch(
                        state.clone(),
                        Resource::clone(&res),
                        t.namespace.clone(),
                        lq,
                        render,
                    )
                    .await;
                }
                let l = list::list(state, &res, ns, &lq).await?;
                let warnings = l.skipped.clone();
                let body = if table {
                    crate::http::table::table_object(&res, l, include_object(q))
                } else {
                    list::list_object(&res, l)
                };
                Ok(respond(headers, StatusCode::OK, &body, &warnings))
            }
            Method::POST => {
                let opts = write_opts(headers, q, user)?;
                let obj = decode_body(headers, &body)?;
                let Outcome { object, warnings } =
                    write::create(state, &res, ns, obj, &opts).await?;
                Ok(respond(headers, StatusCode::CREATED, &object, &warnings))
            }
            Method::DELETE => {
                let opts = write_opts(headers, q, user)?;
                let options = if body.is_empty() {
                    json!({})
                } else {
                    decode_body(headers, &body)?
                };
                let lq = ListQuery::parse(&res, q)?;
                let l = list::list(state, &res, ns, &lq).await?;
                let mut deleted = Vec::new();
                for item in l.items {
                    let name = item
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let item_ns = item
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    match write::delete(
                        state,
                        &res,
                        item_ns.as_deref().or(ns),
                        &name,
                        &options,
                        q.get("propagationPolicy").map(String::as_str),
                        &opts,
                    )
                    .await
                    {
                        Ok(o) => deleted.push(o),
                        Err(e) if e.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
                let body = json!({"kind": res.list_kind(), "apiVersion": res.api_version(), "metadata": {"resourceVersion": l.revision.to_string()}, "items": deleted});
                Ok(respond(headers, StatusCode::OK, &body, &[]))
            }
            _ => Err(ApiError::method_not_allowed()),
        },
        (Some(name), sub) => {
            if let Some(s) = sub
                && !res.subresources.iter().any(|x| x == s)
                && !(res.kind == "Namespace" && s == "finalize")
            {
                return Err(ApiError::path_not_found());
            }
            let part = if sub == Some("status") {
                Part::Status
            } else {
                Part::Main
            };
            if t.watch_path
                || (*method == Method::GET
                    && q.get("watch").is_some_and(|w| w == "true" || w == "1"))
            {
                let mut q2 = q.clone();
                q2.insert("fieldSelector".into(), format!("metadata.name={name}"));
                let mut lq = ListQuery::parse(&res, &q2)?;
                lq.watch = true;
                let render = watch_render(&res, headers, q, table);
                return watch::watch(
                    state.clone(),
                    Resource::clone(&res),
                    t.namespace.clone(),
                    lq,
                    render,
                )
                .await;
            }
            match (method.clone(), sub) {
                (Method::GET, Some("scale")) => {
                    let obj = get(state, &res, ns, name).await?;
                    Ok(respond(
                        headers,
                        StatusCode::OK,
                        &crate::registry::scale::to_scale(&res, &obj),
                        &[],
                    ))
                }
                (Method::GET, _) => {
                    let obj = get(state, &res, ns, name).await?;
                    let body = if table {
                        crate::http::table::table_object(
                            &res,
                            list::Listed {
                                revision: obj
                                    .pointer("/metadata/resourceVersion")
                                    .and_then(Value::as_str)
                                    .and_then(|s| s.parse().ok())
                                    .unwrap_or(0),
                                items: vec![obj],
                                continue_token: None,
                                skipped: Vec::new(),
                            },
                            include_object(q),
                        )
                    } else {
                        obj
                    };
                    Ok(respond(headers, StatusCode::OK, &body, &[]))
                }
                (Method::PUT, Some("scale")) => {
                    let opts = write_opts(headers, q, user)?;
                    let scale = decode_body(headers, &body)?;
                    let obj = get(state, &res, ns, name).await?;
                    let new = crate::registry::scale::apply_scale(&res, obj, &scale)?;
                    let out = write::update(state, &res, ns, name, new, Part::Main, &opts).await?;
                    Ok(respond(
                        headers,
                        StatusCode::OK,
                        &crate::registry::scale::to_scale(&res, &out.object),
                        &out.warnings,
                    ))
                }
                (Method::PUT, _) => {
                    let opts = write_opts(headers, q, user)?;
                    let obj = decode_body(headers, &body)?;
                    let out = write::update(state, &res, ns, name, obj, part, &opts).await?;
                    Ok(respond(headers, StatusCode::OK, &out.object, &out.warnings))
                }
                (Method::PATCH, sub) => {
                    let opts = write_opts(headers, q, user)?;
                    let force = q.get("force").is_some_and(|f| f == "true");
                    let (code, out) =
                        patch_object(state, &res, ns, name, sub, headers, &body, &opts, force)
                            .await?;
                    Ok(respond(headers, code, &out.object, &out.warnings))
                }
                (Method::DELETE, None) => {
                    let opts = write_opts(headers, q, user)?;
                    let options = if body.is_empty() {
                        json!({})
                    } else {
                        decode_body(headers, &body)?
                    };
                    let obj = write::delete(
                        state,
                        &res,
                        ns,
                        name,
                        &options,
                        q.get("propagationPolicy").map(String::as_str),
                        &opts,
                    )
                    .await?;
                    Ok(respond(headers, StatusCode::OK, &obj, &[]))
                }
                _ => Err(ApiError::method_not_allowed()),
            }
        }
    }
}

/// Reads one object in the request's version.
pub async fn get(
    state: &AppState,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<Value> {
    let kv = state
        .store
        .get(&res.key(ns, name), None)
        .await?
        .ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?;
    let obj = state.decode(&kv)?;
    state
        .convert(res, vec![obj])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("conversion returned nothing"))
}

#[allow(clippy::too_many_arguments)]
async fn patch_object(
    state: &AppState,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
    sub: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
    opts: &WriteOpts,
    force: bool,
) -> ApiResult<(StatusCode, Outcome)> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let patch_type = patch::PatchType::from_content_type(ct)
        .ok_or_else(|| ApiError::unsupported_media_type(ct))?;
    if patch_type == patch::PatchType::Apply && opts.field_manager.is_empty() {
        return Err(ApiError::bad_request(
            "PATCH, fieldManager is required for apply requests",
        ));
    }
    let av = res.api_version();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let live = match get(state, res, ns, name).await {
            Ok(o) => Some(o),
            Err(e) if e.code == 404 => None,
            Err(e) => return Err(e),
        };
        if live.is_none() && patch_type != patch::PatchType::Apply {
            return Err(ApiError::not_found(&res.group, &res.plural, name));
        }
        let live_for_patch = live.as_ref().map(|l| {
            if sub == Some("scale") {
                crate::registry::scale::to_scale(res, l)
            } else {
                l.clone()
            }
        });
        let now = crate::registry::meta::now();
        let req = patch::PatchRequest {
            api_version: if sub == Some("scale") {
                "autoscaling/v1"
            } else {
                &av
            },
            kind: if sub == Some("scale") {
                "Scale"
            } else {
                &res.kind
            },
            builtin: res.crd.is_none(),
            live: live_for_patch.as_ref(),
            patch: body,
            patch_type,
            field_manager: Some(opts.field_manager.as_str()),
            force,
            now: &now,
        };
        let mut patched = patch::apply(&req).map_err(|e| {
            let mut err = ApiError::new(e.code(), e.reason(), e.to_string());
            if let patch::PatchError::Conflict { conflicts } = &e {
                let causes: Vec<Value> = conflicts.iter().map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.field})).collect();
                err.message = format!("Apply failed with {} conflict{}: {}", conflicts.len(), if conflicts.len() == 1 { "" } else { "s" }, conflicts.iter().map(|c| format!("conflict with \"{}\": {}", c.manager, c.field)).collect::<Vec<_>>().join("\n"));
                err.details = Some(json!({"name": name, "group": res.group, "kind": res.plural, "causes": causes}));
            }
            err
        })?;
        let Some(live) = live else {
            // Server-side apply of a missing object creates it.
            let m = crate::registry::meta::metadata_mut(&mut patched);
            m.insert("name".into(), json!(name));
            let create_opts = WriteOpts {
                applied: patch_type == patch::PatchType::Apply,
                ..opts.clone()
            };
            let out = write::create(state, res, ns, patched, &create_opts).await?;
            return Ok((StatusCode::CREATED, out));
        };
        let live_rv = live.pointer("/metadata/resourceVersion").cloned();
        let new = if sub == Some("scale") {
            crate::registry::scale::apply_scale(res, live.clone(), &patched)?
        } else {
            patched
        };
        let pinned = new.pointer("/metadata/resourceVersion").cloned() != live_rv;
        let mut new = new;
        if new.pointer("/metadata/resourceVersion").is_none() {
            crate::registry::meta::metadata_mut(&mut new).insert(
                "resourceVersion".into(),
                live_rv.clone().unwrap_or(Value::Null),
            );
        }
        let part = if sub == Some("status") {
            Part::Status
        } else {
            Part::Main
        };
        match write::update(state, res, ns, name, new, part, opts).await {
            Ok(mut out) => {
                if sub == Some("scale") {
                    out.object = crate::registry::scale::to_scale(res, &out.object);
                }
                return Ok((StatusCode::OK, out));
            }
            Err(e) if e.code == 409 && e.reason == "Conflict" && !pinned && attempts < 5 => {
                continue;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Empty body helper for HEAD-like answers.
pub fn empty(code: StatusCode) -> Response {
    (code, Body::empty()).into_response()
}
