//! Mutating and validating webhook configurations as the store holds them, kept in memory by a
//! store watch (as kube-apiserver's webhook plugins read informer caches): the write path reads
//! an immutable [`Webhooks`] snapshot and never lists the store. The snapshot is rebuilt by one
//! LIST when a configuration changes — through this server before its write is answered
//! ([`WebhookCache::refresh`]), through another replica within the store's poll interval.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use cellfed_store::Store;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

/// The store prefix of every admissionregistration object.
pub const PREFIX: &str = "/registry/admissionregistration.k8s.io/";
const MUTATING: &str = "mutatingwebhookconfigurations";
const VALIDATING: &str = "validatingwebhookconfigurations";

/// One rule of a webhook (`rules[]`): what it asks to see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub operations: Vec<String>,
    pub api_groups: Vec<String>,
    pub api_versions: Vec<String>,
    /// `plural`, `plural/subresource`, `*`, `*/*`, `plural/*`, `*/subresource`.
    pub resources: Vec<String>,
    /// `Namespaced`, `Cluster` or `*` (the default).
    pub scope: String,
}

/// One webhook of a configuration, with kube's defaults applied.
#[derive(Debug, Clone)]
pub struct Hook {
    /// The configuration it belongs to.
    pub configuration: String,
    /// `webhooks[].name`, as messages name it.
    pub name: String,
    /// `clientConfig` (url or service, caBundle), as the webhook client reads it.
    pub client_config: Value,
    pub rules: Vec<Rule>,
    /// `failurePolicy: Ignore` (the default is Fail).
    pub fail_open: bool,
    /// `matchPolicy: Exact` (the default is Equivalent).
    pub exact: bool,
    /// None matches every namespace.
    pub namespace_selector: Option<LabelSelector>,
    /// None matches every object.
    pub object_selector: Option<LabelSelector>,
    /// `sideEffects`; None when the configuration does not say.
    pub side_effects: Option<String>,
    /// `timeoutSeconds`: 10 unless set, within 1..=30.
    pub timeout: Duration,
    /// `reinvocationPolicy: IfNeeded` (mutating webhooks; the default is Never).
    pub reinvoke: bool,
}

impl Hook {
    /// Whether the webhook may be called for a dry-run request (it declares no side effects).
    pub fn dry_run_safe(&self) -> bool {
        matches!(self.side_effects.as_deref(), Some("None" | "NoneOnDryRun"))
    }
}

/// The webhooks in the order kube calls them: configurations by name, then each one's webhooks
/// in their order.
#[derive(Debug, Default)]
pub struct Webhooks {
    pub mutating: Vec<Hook>,
    pub validating: Vec<Hook>,
}

/// The watch-fed cache of webhook configurations.
#[derive(Default)]
pub struct WebhookCache {
    current: RwLock<(i64, Arc<Webhooks>)>,
}

impl std::fmt::Debug for WebhookCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (revision, hooks) = self.read();
        f.debug_struct("WebhookCache")
            .field("revision", &revision)
            .field("mutating", &hooks.mutating.len())
            .field("validating", &hooks.validating.len())
            .finish()
    }
}

impl WebhookCache {
    fn read(&self) -> (i64, Arc<Webhooks>) {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The current webhooks.
    pub fn snapshot(&self) -> Arc<Webhooks> {
        self.read().1
    }

    /// The store revision the snapshot reflects.
    pub fn revision(&self) -> i64 {
        self.read().0
    }

    /// Re-reads every configuration (one LIST) unless the cache is already newer than that
    /// read; returns the revision read at.
    pub async fn refresh(&self, store: &Store) -> Result<i64, cellfed_store::Error> {
        let list = store.list(PREFIX, Default::default()).await?;
        let webhooks =
            Arc::new(build(list.items.iter().filter_map(|kv| {
                Some((kv.key.as_str(), parse(&kv.key, &kv.value)?))
            })));
        let mut current = match self.current.write() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        if list.revision >= current.0 {
            *current = (list.revision, webhooks);
        }
        Ok(list.revision)
    }

    /// Follows the store until the task is aborted.
    pub async fn follow(self: Arc<Self>, store: Store) {
        let cache = self.clone();
        crate::storage::follow::follow(
            store.clone(),
            PREFIX,
            "webhook configurations",
            move || cache.revision(),
            || {
                let (cache, store) = (self.clone(), store.clone());
                async move { cache.refresh(&store).await.map_err(|e| e.to_string()) }
            },
        )
        .await;
    }
}

fn parse(key: &str, value: &[u8]) -> Option<Value> {
    match serde_json::from_slice(value) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(key, error = %e, "webhook configuration cannot be decoded; it is not called");
            None
        }
    }
}

/// The webhooks of stored configurations, by store key (`…/<plural>/<name>`).
fn build<'a>(configs: impl Iterator<Item = (&'a str, Value)>) -> Webhooks {
    let mut mutating = Vec::new();
    let mut validating = Vec::new();
    for (key, config) in configs {
        let Some((plural, name)) = key.strip_prefix(PREFIX).and_then(|r| r.split_once('/')) else {
            continue;
        };
        let into = match plural {
            MUTATING => &mut mutating,
            VALIDATING => &mut validating,
            _ => continue,
        };
        into.push((name.to_string(), config));
    }
    let hooks = |mut configs: Vec<(String, Value)>, mutating: bool| {
        configs.sort_by(|a, b| a.0.cmp(&b.0));
        configs
            .iter()
            .flat_map(|(name, config)| {
                config
                    .get("webhooks")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(move |w| hook(name, w, mutating))
            })
            .collect()
    };
    Webhooks {
        mutating: hooks(mutating, true),
        validating: hooks(validating, false),
    }
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn selector(w: &Value, key: &str) -> Option<LabelSelector> {
    let v = w.get(key).filter(|v| !v.is_null())?;
    match serde_json::from_value::<LabelSelector>(v.clone()) {
        // `{}` (kube's default) selects everything: no namespace to read
        Ok(s)
            if s.match_labels.as_ref().is_none_or(|l| l.is_empty())
                && s.match_expressions.as_ref().is_none_or(|e| e.is_empty()) =>
        {
            None
        }
        Ok(s) => Some(s),
        Err(e) => {
            // kube refuses such a configuration; calling the webhook for everything is the
            // safer reading of one stored anyway.
            tracing::warn!(error = %e, "webhook {key} cannot be decoded; it matches everything");
            None
        }
    }
}

fn hook(configuration: &str, w: &Value, mutating: bool) -> Hook {
    let str_of = |key: &str| w.get(key).and_then(Value::as_str);
    Hook {
        configuration: configuration.to_string(),
        name: str_of("name").unwrap_or_default().to_string(),
        client_config: w.get("clientConfig").cloned().unwrap_or(Value::Null),
        rules: w
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|r| Rule {
                operations: strings(r, "operations"),
                api_groups: strings(r, "apiGroups"),
                api_versions: strings(r, "apiVersions"),
                resources: strings(r, "resources"),
                scope: r
                    .get("scope")
                    .and_then(Value::as_str)
                    .unwrap_or("*")
                    .to_string(),
            })
            .collect(),
        fail_open: str_of("failurePolicy") == Some("Ignore"),
        exact: str_of("matchPolicy") == Some("Exact"),
        namespace_selector: selector(w, "namespaceSelector"),
        object_selector: selector(w, "objectSelector"),
        side_effects: str_of("sideEffects").map(str::to_string),
        timeout: Duration::from_secs(
            w.get("timeoutSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(10)
                .clamp(1, 30),
        ),
        reinvoke: mutating && str_of("reinvocationPolicy") == Some("IfNeeded"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configurations_are_ordered_by_name_then_webhook_order_with_kubes_defaults() {
        let config = |hooks: &[&str]| json!({"webhooks": hooks.iter().map(|h| json!({"name": h, "clientConfig": {"url": "https://x"}})).collect::<Vec<_>>()});
        let items = [
            (format!("{PREFIX}{MUTATING}/b"), config(&["b1", "b2"])),
            (format!("{PREFIX}{MUTATING}/a"), config(&["a2", "a1"])),
            (format!("{PREFIX}{VALIDATING}/v"), config(&["v1"])),
            (format!("{PREFIX}validatingadmissionpolicies/p"), json!({})),
        ];
        let w = build(items.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let names: Vec<&str> = w.mutating.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["a2", "a1", "b1", "b2"]);
        assert_eq!(w.validating.len(), 1);
        let h = &w.mutating[0];
        assert!(!h.fail_open && !h.exact && !h.reinvoke && !h.dry_run_safe());
        assert_eq!(h.timeout, Duration::from_secs(10));
        assert!(h.namespace_selector.is_none());
    }

    #[test]
    fn fields_are_read_and_timeouts_bounded() {
        let w = json!({"name": "h", "failurePolicy": "Ignore", "matchPolicy": "Exact",
            "sideEffects": "NoneOnDryRun", "timeoutSeconds": 99, "reinvocationPolicy": "IfNeeded",
            "objectSelector": {"matchLabels": {"a": "b"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/status"], "scope": "Namespaced"}]});
        let h = hook("c", &w, true);
        assert!(h.fail_open && h.exact && h.reinvoke && h.dry_run_safe());
        assert_eq!(h.timeout, Duration::from_secs(30));
        assert_eq!(h.rules[0].resources, ["pods/status"]);
        assert_eq!(h.rules[0].scope, "Namespaced");
        assert!(h.object_selector.is_some());
        let everything = json!({"namespaceSelector": {}, "objectSelector": {"matchLabels": {}}});
        let h = hook("c", &everything, true);
        assert!(h.namespace_selector.is_none() && h.object_selector.is_none());
        assert!(
            !hook("c", &w, false).reinvoke,
            "validating webhooks are never reinvoked"
        );
    }
}
