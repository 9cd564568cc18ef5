//! KubeFedCluster validation, KubeFed's `validateKubeFedClusterSpec`: `apiEndpoint` present and
//! a URL (http or https, valid port) or a bare `host[:port]`; `secretRef.name` a DNS subdomain;
//! every `disabledTLSValidations` entry known and `*` alone; `proxyURL` http, https or socks5.
//! cellfed adds: a `caBundle`, when set, holds at least one PEM certificate.

use serde_json::{Value, json};

use super::field::{self, ErrorList};

/// The values `disabledTLSValidations` accepts.
const TLS_VALIDATIONS: [&str; 3] = ["*", "SubjectName", "ValidityPeriod"];

/// Every field error of a KubeFedCluster's spec (pure).
pub fn validate(obj: &Value) -> ErrorList {
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let mut errs = ErrorList::new();
    api_endpoint(spec.get("apiEndpoint"), &mut errs);
    match spec.pointer("/secretRef/name").and_then(Value::as_str) {
        None | Some("") => errs.push(field::required(
            "spec.secretRef.name",
            "the Secret in this namespace holding the member's token",
        )),
        Some(name) => {
            if let Err(why) = field::dns1123_subdomain(name) {
                errs.push(field::invalid("spec.secretRef.name", json!(name), why));
            }
        }
    }
    if let Some(bundle) = spec.get("caBundle").filter(|v| !v.is_null()) {
        ca_bundle(bundle, &mut errs);
    }
    disabled_tls_validations(spec.get("disabledTLSValidations"), &mut errs);
    if let Some(proxy) = spec
        .get("proxyURL")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        let scheme = proxy.split_once("://").map(|(s, _)| s);
        if !matches!(scheme, Some("http" | "https" | "socks5")) {
            errs.push(field::invalid(
                "spec.proxyURL",
                json!(proxy),
                "proxy URL scheme must be one of: [http, https, socks5]",
            ));
        }
    }
    errs
}

fn api_endpoint(value: Option<&Value>, errs: &mut ErrorList) {
    const FIELD: &str = "spec.apiEndpoint";
    let endpoint = match value.and_then(Value::as_str) {
        None | Some("") => {
            errs.push(field::required(
                FIELD,
                "the member's API server, e.g. https://10.0.0.1:6443",
            ));
            return;
        }
        Some(e) => e,
    };
    // the same parser the controller connects with: what passes here is what it dials
    let url = match cellfed_api::kubefed::api_endpoint_url(endpoint) {
        Ok(url) => url,
        Err(why) => {
            errs.push(field::invalid(FIELD, json!(endpoint), why));
            return;
        }
    };
    let authority = url
        .split_once("://")
        .map_or("", |(_, rest)| rest.split('/').next().unwrap_or_default());
    let port = match authority.rsplit_once(']') {
        Some((_, after)) => after.strip_prefix(':'),
        None => authority.rsplit_once(':').map(|(_, p)| p),
    };
    if let Some(port) = port
        && !matches!(port.parse::<u32>(), Ok(1..=65535))
    {
        errs.push(field::invalid(
            FIELD,
            json!(endpoint),
            format!("port {port:?} must be between 1 and 65535, inclusive"),
        ));
    }
}

fn ca_bundle(bundle: &Value, errs: &mut ErrorList) {
    const FIELD: &str = "spec.caBundle";
    let Ok(bytes) = serde_json::from_value::<k8s_openapi::ByteString>(bundle.clone()) else {
        errs.push(field::invalid(
            FIELD,
            json!("<not base64>"),
            "must be the base64 encoding of PEM CA certificates",
        ));
        return;
    };
    if let Err(e) = cellfed_pki::roots(&bytes.0) {
        errs.push(field::invalid(
            FIELD,
            json!("<bytes>"),
            format!("must hold PEM CA certificates (-----BEGIN CERTIFICATE-----): {e}"),
        ));
    }
}

fn disabled_tls_validations(value: Option<&Value>, errs: &mut ErrorList) {
    const FIELD: &str = "spec.disabledTLSValidations";
    let Some(list) = value.and_then(Value::as_array) else {
        return;
    };
    for (i, v) in list.iter().enumerate() {
        match v.as_str() {
            Some(s) if TLS_VALIDATIONS.contains(&s) => {}
            Some("") | None => errs.push(field::required(format!("{FIELD}[{i}]"), "")),
            Some(_) => errs.push(field::not_supported(
                format!("{FIELD}[{i}]"),
                v.clone(),
                &TLS_VALIDATIONS,
            )),
        }
    }
    if list.len() > 1 && list.iter().any(|v| v == "*") {
        errs.push(field::invalid(
            FIELD,
            Value::Array(list.clone()),
            "when * is specified, it is expected to be the only option in list",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kfc(spec: Value) -> Value {
        json!({"apiVersion": "core.kubefed.io/v1beta1", "kind": "KubeFedCluster",
               "metadata": {"name": "m1", "namespace": "kube-federation-system"}, "spec": spec})
    }

    fn fields(spec: Value) -> Vec<String> {
        validate(&kfc(spec)).into_iter().map(|e| e.field).collect()
    }

    /// `bytes` as a caBundle appears in JSON (base64).
    fn b64(bytes: &[u8]) -> Value {
        serde_json::to_value(k8s_openapi::ByteString(bytes.to_vec())).unwrap()
    }

    #[test]
    fn kubefeds_examples_are_accepted() {
        let ca = b64(cellfed_pki::generate("member", &[])
            .unwrap()
            .ca_pem
            .as_bytes());
        for endpoint in [
            "https://10.0.0.1:6443",
            "http://member:80",
            "10.0.0.1:6443",
            "member.example.com",
            "https://[::1]:6443",
        ] {
            assert_eq!(
                fields(
                    json!({"apiEndpoint": endpoint, "secretRef": {"name": "m1-token"},
                              "caBundle": ca, "disabledTLSValidations": ["SubjectName", "ValidityPeriod"],
                              "proxyURL": "socks5://proxy:1080"})
                ),
                Vec::<String>::new(),
                "{endpoint}"
            );
        }
        assert!(fields(json!({"apiEndpoint": "a:1", "secretRef": {"name": "s"}, "disabledTLSValidations": ["*"]})).is_empty());
    }

    #[test]
    fn api_endpoint_must_be_present_and_parse() {
        let errs = validate(&kfc(json!({"secretRef": {"name": "s"}})));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.apiEndpoint");
        assert_eq!(errs[0].type_, field::ErrorType::Required);
        for bad in [
            "ftp://x",
            "example.com/path",
            "https://x:0",
            "x:70000",
            "https://x:port",
        ] {
            let errs = validate(&kfc(
                json!({"apiEndpoint": bad, "secretRef": {"name": "s"}}),
            ));
            assert_eq!(errs.len(), 1, "{bad}: {errs:?}");
            assert_eq!(
                (errs[0].field.as_str(), errs[0].type_),
                ("spec.apiEndpoint", field::ErrorType::Invalid),
                "{bad}"
            );
        }
    }

    #[test]
    fn secret_ref_name_is_required_and_a_dns_name() {
        assert_eq!(
            fields(json!({"apiEndpoint": "a:1"})),
            ["spec.secretRef.name"]
        );
        assert_eq!(
            fields(json!({"apiEndpoint": "a:1", "secretRef": {"name": "Not_A_Name"}})),
            ["spec.secretRef.name"]
        );
    }

    #[test]
    fn ca_bundle_must_hold_pem_certificates() {
        let not_pem = b64(b"hello");
        let errs = validate(&kfc(
            json!({"apiEndpoint": "a:1", "secretRef": {"name": "s"}, "caBundle": not_pem}),
        ));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.caBundle");
        assert!(errs[0].detail.contains("PEM"), "{}", errs[0]);
        assert_eq!(
            fields(json!({"apiEndpoint": "a:1", "secretRef": {"name": "s"}, "caBundle": "%%%"})),
            ["spec.caBundle"]
        );
    }

    #[test]
    fn disabled_tls_validations_are_known_and_star_is_alone() {
        assert_eq!(
            fields(
                json!({"apiEndpoint": "a:1", "secretRef": {"name": "s"}, "disabledTLSValidations": ["SubjectName", "Nope"]})
            ),
            ["spec.disabledTLSValidations[1]"]
        );
        let errs = validate(&kfc(
            json!({"apiEndpoint": "a:1", "secretRef": {"name": "s"}, "disabledTLSValidations": ["*", "SubjectName"]}),
        ));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.disabledTLSValidations");
        assert!(errs[0].detail.contains("only option"));
    }

    #[test]
    fn proxy_url_scheme_is_checked() {
        assert_eq!(
            fields(
                json!({"apiEndpoint": "a:1", "secretRef": {"name": "s"}, "proxyURL": "gopher://p:1"})
            ),
            ["spec.proxyURL"]
        );
    }
}
