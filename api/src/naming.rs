//! Naming rules: DNS-1123 validators (as the Kubernetes apiserver applies them to object names)
//! and the cell ⇄ cluster rule: cell `rz00a` in namespace `ns` is the `KubeFedCluster` `rz00a.ns`.

/// Maximum length of a DNS-1123 label (namespace names, cell names, each part of a subdomain).
pub const DNS1123_LABEL_MAX_LEN: usize = 63;
/// Maximum length of a DNS-1123 subdomain (most object names, `KubeFedCluster` names).
pub const DNS1123_SUBDOMAIN_MAX_LEN: usize = 253;

/// Errors of the naming rules.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A name is not a valid DNS-1123 label.
    #[error("{what} {name:?} is not a valid DNS-1123 label: {reason}")]
    ValidateLabel {
        /// Which part was checked (e.g. "cell name").
        what: &'static str,
        /// The offending name.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A name is not a valid DNS-1123 subdomain.
    #[error("{what} {name:?} is not a valid DNS-1123 subdomain: {reason}")]
    ValidateSubdomain {
        /// Which part was checked (e.g. "cluster name").
        what: &'static str,
        /// The offending name.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A cluster name is not of the form `<cell>.<namespace>` for the expected namespace.
    #[error(
        "cluster {cluster:?} is not a cell cluster of namespace {namespace:?}: expected <cell>.{namespace}"
    )]
    ParseCellCluster {
        /// The cluster name.
        cluster: String,
        /// The namespace it should end with.
        namespace: String,
    },
}

/// Why `name` is not a DNS-1123 label (lower-case alphanumerics and '-', starting and ending
/// alphanumeric, at most 63 characters), or `None` if it is one.
pub fn dns1123_label_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name.len() > DNS1123_LABEL_MAX_LEN {
        return Some(format!(
            "must be no more than {DNS1123_LABEL_MAX_LEN} characters (it has {})",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "must consist of lower case alphanumeric characters or '-' (found {c:?})"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("must start and end with an alphanumeric character".into());
    }
    None
}

/// Why `name` is not a DNS-1123 subdomain (dot-separated DNS-1123 labels, at most 253
/// characters), or `None` if it is one.
pub fn dns1123_subdomain_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name.len() > DNS1123_SUBDOMAIN_MAX_LEN {
        return Some(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX_LEN} characters (it has {})",
            name.len()
        ));
    }
    name.split('.').enumerate().find_map(|(i, part)| {
        dns1123_label_problem(part).map(|p| format!("part {} ({part:?}) {p}", i + 1))
    })
}

/// Checks that `name` is a DNS-1123 label; `what` names the part in the error.
pub fn validate_dns1123_label(what: &'static str, name: &str) -> Result<(), Error> {
    match dns1123_label_problem(name) {
        None => Ok(()),
        Some(reason) => Err(Error::ValidateLabel {
            what,
            name: name.to_owned(),
            reason,
        }),
    }
}

/// Checks that `name` is a DNS-1123 subdomain; `what` names the part in the error.
pub fn validate_dns1123_subdomain(what: &'static str, name: &str) -> Result<(), Error> {
    match dns1123_subdomain_problem(name) {
        None => Ok(()),
        Some(reason) => Err(Error::ValidateSubdomain {
            what,
            name: name.to_owned(),
            reason,
        }),
    }
}

/// The `KubeFedCluster` name of cell `cell` in namespace `namespace`: `<cell>.<namespace>`.
pub fn cell_cluster_name(cell: &str, namespace: &str) -> Result<String, Error> {
    validate_dns1123_label("cell name", cell)?;
    validate_dns1123_label("namespace", namespace)?;
    let cluster = format!("{cell}.{namespace}");
    validate_dns1123_subdomain("cluster name", &cluster)?;
    Ok(cluster)
}

/// The cell name of cluster `cluster` seen from namespace `namespace`: the inverse of
/// [`cell_cluster_name`]. Fails unless `cluster` is `<cell>.<namespace>` with a valid cell name.
pub fn cell_of_cluster<'a>(cluster: &'a str, namespace: &str) -> Result<&'a str, Error> {
    let parse_error = || Error::ParseCellCluster {
        cluster: cluster.to_owned(),
        namespace: namespace.to_owned(),
    };
    let (cell, ns) = cluster.split_once('.').ok_or_else(parse_error)?;
    if ns != namespace {
        return Err(parse_error());
    }
    validate_dns1123_label("cell name", cell)?;
    Ok(cell)
}

/// Splits a cell cluster name `<cell>.<namespace>` into its parts, whatever the namespace.
pub fn split_cell_cluster(cluster: &str) -> Result<(&str, &str), Error> {
    let (cell, ns) = cluster
        .split_once('.')
        .ok_or_else(|| Error::ParseCellCluster {
            cluster: cluster.to_owned(),
            namespace: "<namespace>".into(),
        })?;
    validate_dns1123_label("cell name", cell)?;
    validate_dns1123_label("namespace", ns)?;
    Ok((cell, ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_and_cluster_round_trip() {
        let cluster = cell_cluster_name("rz00a", "ns").unwrap();
        assert_eq!(cluster, "rz00a.ns");
        assert_eq!(cell_of_cluster(&cluster, "ns").unwrap(), "rz00a");
        assert_eq!(split_cell_cluster(&cluster).unwrap(), ("rz00a", "ns"));
    }

    #[test]
    fn invalid_parts_are_named_with_the_reason() {
        let err = cell_cluster_name("RZ00a", "ns").unwrap_err().to_string();
        assert!(err.contains("cell name \"RZ00a\""), "{err}");
        assert!(err.contains("lower case"), "{err}");
        let err = cell_cluster_name("rz00a", "my.ns").unwrap_err().to_string();
        assert!(err.contains("namespace \"my.ns\""), "{err}");
        let err = cell_cluster_name("", "ns").unwrap_err().to_string();
        assert!(err.contains("must not be empty"), "{err}");
        let err = cell_cluster_name("-a", "ns").unwrap_err().to_string();
        assert!(err.contains("start and end"), "{err}");
    }

    #[test]
    fn overlong_names_are_refused() {
        let long = "a".repeat(64);
        let err = cell_cluster_name(&long, "ns").unwrap_err().to_string();
        assert!(err.contains("no more than 63"), "{err}");
        assert!(cell_cluster_name(&"a".repeat(63), &"b".repeat(63)).is_ok());
        let subdomain = vec!["a".repeat(63); 4].join(".");
        assert_eq!(subdomain.len(), 255);
        let err = validate_dns1123_subdomain("cluster name", &subdomain)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no more than 253"), "{err}");
    }

    #[test]
    fn cluster_not_of_the_namespace_is_refused() {
        let err = cell_of_cluster("rz00a.other", "ns")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"rz00a.other\""), "{err}");
        assert!(err.contains("<cell>.ns"), "{err}");
        assert!(cell_of_cluster("cluster1", "ns").is_err());
        assert!(cell_of_cluster("a.b.ns", "ns").is_err());
        assert!(split_cell_cluster("a.b.c").is_err());
    }

    #[test]
    fn validators_match_kubernetes_rules() {
        assert!(dns1123_label_problem("my-ns-1").is_none());
        assert!(dns1123_label_problem("a_b").is_some());
        assert!(dns1123_subdomain_problem("deployments.apps").is_none());
        assert!(dns1123_subdomain_problem("a..b").is_some());
        assert!(dns1123_subdomain_problem("a.").is_some());
    }
}
