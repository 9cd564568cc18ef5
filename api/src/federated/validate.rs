//! Validation of federated specs, shared by the admission webhook (refuse) and the controller
//! (report `ApplyOverridesFailed` and conditions): names, override paths, duplicates.

use std::collections::BTreeSet;
use std::fmt;

use super::v1beta1::FederatedSpec;
use super::v1beta2::{TopologySpec, TopologyType};
use super::{ClusterOverride, OverrideOp};
use crate::naming::{dns1123_label_problem, dns1123_subdomain_problem};

/// Override paths that may not be overridden: the identity of the member object (KubeFed's rule).
pub const FORBIDDEN_OVERRIDE_PATHS: &[&str] = &[
    "/metadata/namespace",
    "/metadata/name",
    "/metadata/generateName",
    "/kind",
];

/// One problem of a spec, at a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `spec.overrides[0].clusterOverrides[1].path`.
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Problems of one override: the path must be a JSON pointer (`/…`) and not one of
/// [`FORBIDDEN_OVERRIDE_PATHS`]; `add` and `replace` need a value.
pub fn override_problem(o: &ClusterOverride) -> Option<String> {
    if !o.path.starts_with('/') {
        return Some(format!(
            "path {:?} must be a JSON pointer starting with '/', e.g. /spec/replicas",
            o.path
        ));
    }
    if FORBIDDEN_OVERRIDE_PATHS.contains(&o.path.as_str()) {
        return Some(format!(
            "path {:?} cannot be overridden: it identifies the member object",
            o.path
        ));
    }
    if o.op() != OverrideOp::Remove && o.value.is_none() {
        return Some(format!(
            "op {} on {:?} needs a value",
            o.op().as_str(),
            o.path
        ));
    }
    None
}

fn check_overrides(base: &str, entries: &[ClusterOverride], errors: &mut Vec<FieldError>) {
    for (j, o) in entries.iter().enumerate() {
        if let Some(message) = override_problem(o) {
            errors.push(FieldError {
                field: format!("{base}.clusterOverrides[{j}]"),
                message,
            });
        }
    }
}

fn check_names<'a>(
    field: &str,
    what: &str,
    names: impl Iterator<Item = &'a str>,
    problem: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<FieldError>,
) {
    let mut seen = BTreeSet::new();
    for (i, name) in names.enumerate() {
        let field = format!("{field}[{i}]");
        if let Some(p) = problem(name) {
            errors.push(FieldError {
                field,
                message: format!("{name:?} is not a valid {what} name: {p}"),
            });
        } else if !seen.insert(name) {
            errors.push(FieldError {
                field,
                message: format!("{name:?} appears more than once"),
            });
        }
    }
}

/// Problems of a v1beta1 spec (cluster names must be DNS-1123 subdomains and appear once per
/// list; overrides must be valid).
pub fn validate_v1beta1(spec: &FederatedSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let subdomain = |n: &str| dns1123_subdomain_problem(n);
    if let Some(clusters) = spec.placement.as_ref().and_then(|p| p.clusters.as_ref()) {
        let names = clusters.iter().map(|c| c.name.as_str());
        check_names(
            "spec.placement.clusters",
            "cluster",
            names,
            &subdomain,
            &mut errors,
        );
    }
    if let Some(mask) = &spec.placement_mask {
        let names = mask.clusters.iter().map(|c| c.name.as_str());
        check_names(
            "spec.placementMask.clusters",
            "cluster",
            names,
            &subdomain,
            &mut errors,
        );
    }
    let names = spec.overrides.iter().map(|o| o.cluster_name.as_str());
    check_names("spec.overrides", "cluster", names, &subdomain, &mut errors);
    for (i, o) in spec.overrides.iter().enumerate() {
        check_overrides(
            &format!("spec.overrides[{i}]"),
            &o.cluster_overrides,
            &mut errors,
        );
    }
    errors
}

/// Problems of a v1beta2 spec of an object in `namespace` (`None` when cluster-scoped): cell
/// topologies need a namespace and DNS-1123 label names, cluster topologies DNS-1123 subdomains.
pub fn validate_v1beta2(spec: &TopologySpec, namespace: Option<&str>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let cell = spec.topology_type() == TopologyType::Cell;
    if cell && namespace.is_none_or(str::is_empty) {
        errors.push(FieldError {
            field: "spec.topologyType".into(),
            message: "cell topology needs a namespaced resource; use cluster".into(),
        });
    }
    let what = if cell { "cell" } else { "cluster" };
    let problem = |n: &str| {
        if cell {
            dns1123_label_problem(n)
        } else {
            dns1123_subdomain_problem(n)
        }
    };
    if let Some(t) = spec.placement.as_ref().and_then(|p| p.topologies.as_ref()) {
        let names = t.iter().map(|c| c.name.as_str());
        check_names(
            "spec.placement.topologies",
            what,
            names,
            &problem,
            &mut errors,
        );
    }
    if let Some(mask) = &spec.placement_mask {
        let names = mask.topologies.iter().map(|c| c.name.as_str());
        check_names(
            "spec.placementMask.topologies",
            what,
            names,
            &problem,
            &mut errors,
        );
    }
    let names = spec.overrides.iter().map(|o| o.topology_name.as_str());
    check_names("spec.overrides", what, names, &problem, &mut errors);
    for (i, o) in spec.overrides.iter().enumerate() {
        check_overrides(
            &format!("spec.overrides[{i}]"),
            &o.cluster_overrides,
            &mut errors,
        );
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(yaml: &str) -> FederatedSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn kubefed_sample_spec_is_valid() {
        let spec = v1(r#"
placement: {clusters: [{name: cluster2}, {name: cluster1}]}
overrides:
- clusterName: cluster2
  clusterOverrides:
  - {path: /spec/replicas, value: 5}
  - {path: /metadata/annotations, op: add, value: {foo: bar}}
  - {path: /metadata/annotations/foo, op: remove}
"#);
        assert_eq!(validate_v1beta1(&spec), []);
    }

    #[test]
    fn bad_overrides_and_names_are_reported_at_their_field() {
        let spec = v1(r#"
placement: {clusters: [{name: c1}, {name: c1}, {name: Bad}]}
placementMask: {clusters: [{name: "a..b"}]}
overrides:
- clusterName: c1
  clusterOverrides:
  - {path: spec/replicas, value: 5}
  - {path: /metadata/name, value: other}
  - {path: /spec/replicas, op: add}
- clusterName: c1
"#);
        let errors: Vec<String> = validate_v1beta1(&spec)
            .iter()
            .map(ToString::to_string)
            .collect();
        let text = errors.join("\n");
        assert!(
            text.contains("spec.placement.clusters[1]: \"c1\" appears more than once"),
            "{text}"
        );
        assert!(
            text.contains("spec.placement.clusters[2]: \"Bad\""),
            "{text}"
        );
        assert!(text.contains("spec.placementMask.clusters[0]"), "{text}");
        assert!(text.contains("spec.overrides[0].clusterOverrides[0]: path \"spec/replicas\" must be a JSON pointer"), "{text}");
        assert!(text.contains("spec.overrides[0].clusterOverrides[1]: path \"/metadata/name\" cannot be overridden"), "{text}");
        assert!(
            text.contains(
                "spec.overrides[0].clusterOverrides[2]: op add on \"/spec/replicas\" needs a value"
            ),
            "{text}"
        );
        assert!(
            text.contains("spec.overrides[1]: \"c1\" appears more than once"),
            "{text}"
        );
        assert_eq!(errors.len(), 7, "{text}");
    }

    #[test]
    fn cell_topologies_must_be_cell_names_of_a_namespaced_resource() {
        let spec: TopologySpec = serde_yaml::from_str(
            r#"
topologyType: cell
placement: {topologies: [{name: rz00a}, {name: rz00a.ns}]}
"#,
        )
        .unwrap();
        let errors = validate_v1beta2(&spec, Some("ns"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "spec.placement.topologies[1]");
        assert!(errors[0].message.contains("not a valid cell name"));
        let errors = validate_v1beta2(&spec, None);
        assert!(errors.iter().any(|e| e.field == "spec.topologyType"));
        let mut clusters = spec.clone();
        clusters.topology_type = None;
        assert_eq!(validate_v1beta2(&clusters, Some("ns")), []);
    }
}
