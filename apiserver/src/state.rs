//! Shared state of the handlers and background tasks.

use std::collections::HashMap;
use std::sync::Arc;

use cellfed_store::Store;
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
    pub requests: Arc<crate::http::metrics::RequestCounts>,
    /// Bytes watches hold for their clients, and the limits that end a watch that falls behind.
    pub watches: Arc<crate::http::watch::Buffers>,
    /// Stored values that could not be decoded, by resource (served on `/metrics`).
    pub decode_errors: Arc<crate::http::metrics::CounterVec>,
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
            requests: crate::http::metrics::new_counts(),
            watches: Arc::new(crate::http::watch::Buffers::default()),
            decode_errors: crate::http::metrics::decode_errors(),
            conversion_timeout: crate::registry::conversion::DEFAULT_CONVERSION_TIMEOUT,
            request_timeout: crate::http::deadline::DEFAULT_REQUEST_TIMEOUT,
            webhook_clients: Arc::default(),
            webhooks: Arc::default(),
            webhook_credentials: Arc::default(),
        }
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
                crate::registry::conversion::webhook_convert(
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
}
