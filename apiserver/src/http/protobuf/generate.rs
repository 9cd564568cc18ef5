//! The generator of `descriptors.txt`: reads the message definitions of the `k8s-pb` crate (the
//! `#[prost(...)]` attribute of every field gives its tag, wire type and cardinality) and the JSON
//! property names of the `k8s-openapi` crate (its serde impls name every field as the Go JSON tag
//! does), and writes one line per field.
//!
//! `descriptors_match_k8s_pb` fails when the committed file is not what this produces; run
//! `CELLFED_WRITE_DESCRIPTORS=1 cargo test -p cellfed-apiserver --lib protobuf::generate` to
//! rewrite it after a k8s-pb or k8s-openapi upgrade (`CELLFED_SHOW_UNMATCHED=1` lists the fields
//! k8s-openapi does not name, whose JSON name is camel-cased from prost's instead).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use regex::Regex;

/// The k8s-openapi feature (Kubernetes version) whose JSON names are read.
const OPENAPI_VERSION_DIR: &str = "v1_33";

/// Where the cargo registry put a dependency's sources.
fn source_dir(package: &str) -> PathBuf {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let manifest = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == package)
        .and_then(|p| p["manifest_path"].as_str())
        .unwrap_or_else(|| panic!("{package} is a dependency"));
    Path::new(manifest)
        .parent()
        .expect("manifest has a directory")
        .join("src")
}

/// Every `mod.rs` (k8s-pb) or `*.rs` (k8s-openapi) under `dir`, with its module path.
fn rust_files(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("readable source dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, base, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p
                .parent()
                .and_then(|d| d.strip_prefix(base).ok())
                .map(|d| d.to_string_lossy().replace('/', "."))
                .unwrap_or_default();
            out.push((rel, p));
        }
    }
}

/// `hostIPC` and `host_ipc` alike: lower case, letters and digits only.
fn norm(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// k8s-openapi's view of one struct: normalized field name → (JSON name, required).
type Props = HashMap<String, (String, bool)>;

/// k8s-openapi structs by `module.path.lowercasedname`.
fn openapi_props() -> HashMap<String, Props> {
    let base = source_dir("k8s-openapi").join(OPENAPI_VERSION_DIR);
    let mut files = Vec::new();
    rust_files(&base, &base, &mut files);
    let strukt = Regex::new(r"(?s)\npub struct (\w+) \{(|.*?\n)\}").expect("regex");
    let field = Regex::new(r"\n    pub (?:r#)?(\w+): (Option<)?").expect("regex");
    let key = Regex::new(r#""([^"]+)" => Field::Key_(\w+),"#).expect("regex");
    let mut out = HashMap::new();
    for (module, path) in files {
        let text = std::fs::read_to_string(&path).expect("readable source");
        let Some(s) = strukt.captures(&text) else {
            continue;
        };
        let required: HashMap<String, bool> = field
            .captures_iter(&s[2])
            .map(|c| (c[1].to_string(), c.get(2).is_none()))
            .collect();
        let mut props = Props::new();
        for c in key.captures_iter(&text) {
            let req = required.get(&c[2]).copied().unwrap_or(false);
            props.insert(norm(&c[1]), (c[1].to_string(), req));
        }
        out.insert(format!("{module}.{}", s[1].to_lowercase()), props);
    }
    out
}

/// `super::super::core::v1::PodSpec` seen from `api.apps.v1` → `api.core.v1.PodSpec`.
fn resolve(module: &str, rust_type: &str) -> Option<String> {
    let mut ty = rust_type.replace([' ', '\n'], "");
    for wrapper in [
        "::core::option::Option<",
        "::prost::alloc::boxed::Box<",
        "::prost::alloc::vec::Vec<",
        "::prost::alloc::collections::BTreeMap<::prost::alloc::string::String,",
    ] {
        if let Some(rest) = ty.strip_prefix(wrapper) {
            ty = rest.trim_end_matches(',').trim_end_matches('>').to_string();
        }
    }
    let ty = ty.trim_end_matches(',').trim_end_matches('>');
    let mut path: Vec<&str> = module.split('.').collect();
    let mut parts: Vec<&str> = ty.split("::").collect();
    while parts.first() == Some(&"super") {
        parts.remove(0);
        path.pop()?;
    }
    path.extend(parts);
    Some(path.join("."))
}

/// The text of `descriptors.txt`.
pub fn generate() -> String {
    let base = source_dir("k8s-pb");
    let mut files = Vec::new();
    rust_files(&base, &base, &mut files);
    let props = openapi_props();
    let strukt = Regex::new(r"(?s)\npub struct (\w+) \{(|.*?\n)\}").expect("regex");
    let tag_re = Regex::new(r#"tag = "(\d+)""#).expect("regex");
    let api_version = Regex::new(r#"const API_VERSION: &'static str = "([^"]*)";"#).expect("regex");
    // group of each API group module (`api.apps`), from any version that names one
    let mut groups: BTreeMap<String, String> = BTreeMap::new();
    for (module, path) in &files {
        let text = std::fs::read_to_string(path).expect("readable source");
        if let Some(c) = api_version.captures(&text) {
            let group = c[1].rsplit_once('/').map(|(g, _)| g).unwrap_or("");
            let parent = module.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
            groups.insert(parent.to_string(), group.to_string());
        }
    }
    // pass 1: every message's fields (tag, rust name, prost attribute, resolved type)
    struct Msg {
        name: String,
        fields: Vec<(String, String, String, String)>,
    }
    let mut packages: Vec<(String, String, Vec<Msg>)> = Vec::new();
    for (module, path) in &files {
        let text = std::fs::read_to_string(path).expect("readable source");
        let mut messages = Vec::new();
        for m in strukt.captures_iter(&text) {
            let mut fields = Vec::new();
            // each field: `#[prost(<attr>, tag = "N")]`, doc lines, `pub <name>: <type>,`
            for chunk in m[2].split("#[prost(").skip(1) {
                let (attr, rest) = chunk.split_once(")]").expect("prost attribute");
                let tag = tag_re.captures(attr).expect("field tag")[1].to_string();
                let attr = attr.replace(' ', "");
                let rest = rest.trim_start().strip_prefix("pub ").expect("pub field");
                let (name, rust_ty) = rest.split_once(':').expect("typed field");
                let name = name.trim_start_matches("r#");
                let rust_ty = rust_ty.split("\n    ///").next().unwrap_or_default();
                let rust_ty = rust_ty.trim().trim_end_matches(',');
                let (label, ty) = if let Some(map) = attr.strip_prefix("btree_map=\"string,") {
                    ("map", map.split('"').next().unwrap_or_default().to_string())
                } else {
                    let kind = attr.split(',').next().unwrap_or_default();
                    let label = if attr.contains(",repeated,") {
                        "rep"
                    } else {
                        "opt"
                    };
                    (label, kind.trim_end_matches("=\"vec\"").to_string())
                };
                let ty = if ty == "message" {
                    resolve(module, rust_ty).unwrap_or_else(|| panic!("type of {name}"))
                } else {
                    ty
                };
                fields.push((tag, name.to_string(), label.to_string(), ty));
            }
            messages.push(Msg {
                name: m[1].to_string(),
                fields,
            });
        }
        if messages.is_empty() {
            continue;
        }
        let (parent, version) = module.rsplit_once('.').unwrap_or(("", module));
        let av = match groups.get(parent) {
            Some(g) if g.is_empty() => version.to_string(),
            Some(g) => format!("{g}/{version}"),
            None => "-".into(),
        };
        packages.push((module.clone(), av, messages));
    }
    let by_name: HashMap<String, &Msg> = packages
        .iter()
        .flat_map(|(module, _, ms)| ms.iter().map(move |m| (format!("{module}.{}", m.name), m)))
        .collect();
    // the normalized JSON names a message's fields have, with inline structs expanded
    fn visible(
        full: &str,
        messages: &HashMap<String, &Msg>,
        props: &HashMap<String, Props>,
        depth: usize,
    ) -> Vec<String> {
        let Some(m) = messages.get(full) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for f in &m.fields {
            if depth < 4 && is_inline(full, f, messages, props, depth) {
                out.extend(visible(&f.3, messages, props, depth + 1));
            } else {
                out.push(norm(&f.1));
            }
        }
        out
    }
    fn is_inline(
        parent: &str,
        f: &(String, String, String, String),
        messages: &HashMap<String, &Msg>,
        props: &HashMap<String, Props>,
        depth: usize,
    ) -> bool {
        let Some(p) = props_of(props, parent) else {
            return false;
        };
        if p.contains_key(&norm(&f.1)) || f.2 != "opt" || !messages.contains_key(&f.3) {
            return false;
        }
        let names = visible(&f.3, messages, props, depth + 1);
        let hits = names.iter().filter(|n| p.contains_key(*n)).count();
        hits > 0 && hits * 5 >= names.len() * 4
    }

    // pass 2: JSON names, required fields, and Go's inline (embedded) structs: a message field
    // that k8s-openapi does not name, all of whose own fields the parent's JSON has
    let mut out = String::from(
        "# Generated by apiserver/src/protobuf/generate.rs from k8s-pb (fields) and k8s-openapi\n\
         # (JSON names). Do not edit. Lines: `package <module> <apiVersion|->`, `message <name>`,\n\
         # `<tag> <jsonName> <opt|req|rep|map|inl> <string|bool|int32|int64|double|bytes|message>`\n\
         # (`inl`: a Go struct embedded inline, whose fields are the parent's in JSON).\n",
    );
    let mut unmatched = Vec::new();
    for (module, av, messages) in &packages {
        out.push_str(&format!("package {module} {av}\n"));
        for m in messages {
            out.push_str(&format!("message {}\n", m.name));
            let known = props.get(&format!("{module}.{}", m.name.to_lowercase()));
            for (tag, rust_name, label, ty) in &m.fields {
                let (json, label) = match known.and_then(|p| p.get(&norm(rust_name))) {
                    Some((json, true)) if label == "opt" => (json.clone(), "req"),
                    Some((json, _)) => (json.clone(), label.as_str()),
                    None => {
                        let full = format!("{module}.{}", m.name);
                        let f = (tag.clone(), rust_name.clone(), label.clone(), ty.clone());
                        if is_inline(&full, &f, &by_name, &props, 0) {
                            (rust_name.clone(), "inl")
                        } else {
                            if known.is_some() {
                                unmatched.push(format!("{module}.{}.{rust_name}", m.name));
                            }
                            (camel(rust_name), label.as_str())
                        }
                    }
                };
                out.push_str(&format!("{tag} {json} {label} {ty}\n"));
            }
        }
    }
    if std::env::var_os("CELLFED_SHOW_UNMATCHED").is_some() {
        eprintln!("{unmatched:#?}");
    }
    // fields newer than the k8s-openapi version read (camel-cased from prost's name instead)
    assert!(
        unmatched.len() < 80,
        "k8s-openapi names none of these fields: {unmatched:?}"
    );
    out
}

/// k8s-openapi's struct of the same module and name (`JsonSchemaProps` is `JSONSchemaProps`).
fn props_of<'a>(props: &'a HashMap<String, Props>, full: &str) -> Option<&'a Props> {
    let (module, name) = full.rsplit_once('.').unwrap_or(("", full));
    props.get(&format!("{module}.{}", name.to_lowercase()))
}

/// `pod_i_ps` → `podIPs`: the proto (Go JSON) name prost snake-cased, for fields k8s-openapi
/// does not have.
fn camel(snake: &str) -> String {
    let mut out = String::new();
    for (i, part) in snake.split('_').enumerate() {
        let mut chars = part.chars();
        match (i, chars.next()) {
            (0, Some(c)) => out.extend(std::iter::once(c).chain(chars)),
            (_, Some(c)) => out.extend(std::iter::once(c.to_ascii_uppercase()).chain(chars)),
            _ => {}
        }
    }
    out
}

#[test]
fn descriptors_match_k8s_pb() {
    let generated = generate();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/protobuf/descriptors.txt");
    if std::env::var_os("CELLFED_WRITE_DESCRIPTORS").is_some() {
        std::fs::write(&path, &generated).expect("writable descriptors.txt");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "apiserver/src/http/protobuf/descriptors.txt is not what the generator produces from k8s-pb and \
         k8s-openapi; rerun with CELLFED_WRITE_DESCRIPTORS=1 and commit it"
    );
}
