//! Shared state of the handlers and background tasks.

use std::collections::HashMap;
use std::sync::Arc;

use cellfed_store::{KeyValue, Store};
use serde_json::Value;

use crate::auth::Security;
use crate::error::{ApiError, ApiResult};
use crate::registry::{ConversionStrategy, Registry, Resource};

/// Converts custom resources between versions of one CRD in-process (for `cellfed up`, which
/// runs the conversion webhook's logic without a network hop).
pub trait Converter: Send + Sync {
    /// Whether this converter handles the CRD `<plural>.<group>`.
    fn handles(&self, crd_name: &str) -> bool;
    /// Converts `objects` to `desired_api_version`, as a ConversionReview response would.
    fn convert(&self, objects: Vec<Value>, desired_api_version: &str)
    -> Result<Vec<Value>, String>;
}

/// What a [`WriteHook`] holds until the object it admitted is stored or the write fails (a lock
/// serialising allocations, for instance).
pub type HeldUntilStored = Box<dyn Send>;

/// Changes objects on their way into the store, as a cluster's control plane would: called on
/// every create and every update of an object's main resource (not its status), after mutating
/// admission and before validation, with the stored object on update. `cellfed member` plugs its
/// defaulting and Service address allocation in here; the federation apiserver runs without one.
pub trait WriteHook: Send + Sync {
    /// Changes `obj` (of `res`; `live` = the stored object on update) or refuses it with the
    /// error the client sees. What it returns is dropped once the write is stored or has failed.
    fn admit<'a>(
        &'a self,
        state: &'a AppState,
        res: &'a Resource,
        live: Option<&'a Value>,
        obj: &'a mut Value,
    ) -> futures::future::BoxFuture<'a, ApiResult<Option<HeldUntilStored>>>;
}

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The revisioned key-value store.
    pub store: Store,
    /// The served resources (built-ins + established CRDs).
    pub registry: Registry,
    /// In-process converter, tried before a CRD's webhook.
    pub converter: Option<Arc<dyn Converter>>,
    /// Authentication and authorization; None = every request is allowed as
    /// `system:unsecured` (tests, benchmarks).
    pub security: Option<Arc<Security>>,
    /// `<service>.<namespace>.svc:<port>` → `host:port`, for conversion webhooks given as
    /// service references (there is no cluster DNS).
    pub service_addresses: Arc<HashMap<String, String>>,
    /// Called on every write before validation (see [`WriteHook`]); None for the federation
    /// apiserver.
    pub write_hook: Option<Arc<dyn WriteHook>>,
    /// Request counters served on `/metrics`.
    pub requests: Arc<crate::metrics::RequestCounts>,
    /// Bytes watches hold for their clients, and the limits that end a watch that falls behind.
    pub watches: Arc<crate::watch::Buffers>,
    /// Stored values that could not be decoded, by resource (served on `/metrics`).
    pub decode_errors: Arc<crate::metrics::CounterVec>,
    /// How long one call to a conversion webhook may take.
    pub conversion_timeout: std::time::Duration,
    /// How long a request that is not a watch may take (`--request-timeout`).
    pub request_timeout: std::time::Duration,
    /// Keep-alive connections to conversion and admission webhooks.
    pub webhook_clients: Arc<crate::webhook_client::WebhookClients>,
    /// Mutating and validating webhook configurations, followed through a store watch.
    pub webhooks: Arc<crate::admission::WebhookCache>,
    /// What admission webhook calls present (`--admission-control-config-file`); empty = nothing.
    pub webhook_credentials: Arc<crate::admission::credentials::WebhookCredentials>,
}

impl AppState {
    /// State over a store with built-in resources only, no auth, no converter.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            registry: Registry::new(),
            converter: None,
            security: None,
            service_addresses: Arc::new(HashMap::new()),
            write_hook: None,
            requests: crate::metrics::new_counts(),
            watches: Arc::new(crate::watch::Buffers::default()),
            decode_errors: crate::metrics::decode_errors(),
            conversion_timeout: crate::conversion::DEFAULT_CONVERSION_TIMEOUT,
            request_timeout: crate::deadline::DEFAULT_REQUEST_TIMEOUT,
            webhook_clients: Arc::default(),
            webhooks: Arc::default(),
            webhook_credentials: Arc::default(),
        }
    }

    /// Parses a stored value and sets its resourceVersion. A value that cannot be parsed is
    /// counted in `apiserver_storage_decode_errors_total` and answers 500 naming the key.
    pub fn decode(&self, kv: &KeyValue) -> ApiResult<Value> {
        let mut obj: Value = match serde_json::from_slice(&kv.value) {
            Ok(obj @ Value::Object(_)) => obj,
            Ok(_) => return Err(self.undecodable(kv, "not a JSON object")),
            Err(e) => return Err(self.undecodable(kv, &e.to_string())),
        };
        crate::meta::metadata_mut(&mut obj).insert(
            "resourceVersion".into(),
            Value::String(kv.mod_revision.to_string()),
        );
        Ok(obj)
    }

    fn undecodable(&self, kv: &KeyValue, why: &str) -> ApiError {
        self.decode_errors
            .inc(&crate::metrics::resource_of_key(&kv.key));
        tracing::warn!(key = %kv.key, revision = kv.mod_revision, error = why, "stored object cannot be decoded");
        ApiError::internal(format!(
            "the stored object at {} (revision {}) cannot be decoded: {why}; it is left out of lists and can be deleted by name",
            kv.key, kv.mod_revision
        ))
    }

    /// Converts an object to the version `res` serves (no-op when it is in that version).
    pub async fn convert(&self, res: &Resource, objs: Vec<Value>) -> ApiResult<Vec<Value>> {
        let target = res.api_version();
        let Some(crd) = &res.crd else {
            return crate::registry::convert::to_served(res, objs);
        };
        if objs
            .iter()
            .all(|o| o.get("apiVersion").and_then(Value::as_str) == Some(target.as_str()))
        {
            return Ok(objs);
        }
        if let Some(c) = &self.converter
            && c.handles(&crd.crd_name)
        {
            return c.convert(objs, &target).map_err(|e| {
                ApiError::internal(format!("conversion webhook for {}: {e}", crd.crd_name))
            });
        }
        match &crd.conversion {
            ConversionStrategy::None => Ok(objs
                .into_iter()
                .map(|mut o| {
                    o["apiVersion"] = Value::String(target.clone());
                    o
                })
                .collect()),
            ConversionStrategy::Webhook { client_config } => {
                crate::conversion::webhook_convert(
                    self,
                    &crd.crd_name,
                    client_config,
                    objs,
                    &target,
                )
                .await
            }
        }
    }

    /// Converts one object to the storage version of its resource.
    pub async fn to_storage(&self, res: &Resource, obj: Value) -> ApiResult<Value> {
        let Some(crd) = &res.crd else {
            return crate::registry::convert::to_storage(res, obj);
        };
        if crd.storage_version == res.version {
            return Ok(obj);
        }
        let mut storage = res.clone();
        storage.version = crd.storage_version.clone();
        let mut out = self.convert(&storage, vec![obj]).await?;
        out.pop()
            .ok_or_else(|| ApiError::internal("conversion returned no object"))
    }
}
