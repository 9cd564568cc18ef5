//! What a stored value is: the object's JSON in its storage version, without
//! `metadata.resourceVersion` (the store's revision is the resourceVersion, set again on every
//! read). Every write encodes through [`encode`] (after [`super::limits`]) and every read decodes
//! through [`AppState::decode`]; encryption at rest happens below, in the store's value
//! transformer ([`super::encryption`]).

use cellfed_store::KeyValue;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::registry::Resource;
use crate::state::AppState;

/// The bytes stored for `obj` (its resourceVersion left out).
pub fn encode(obj: &Value) -> ApiResult<Vec<u8>> {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    serde_json::to_vec(&o).map_err(|e| ApiError::internal(e.to_string()))
}

impl AppState {
    /// Parses a stored value and sets its resourceVersion. A value that cannot be parsed is
    /// counted in `apiserver_storage_decode_errors_total` and answers 500 naming the key.
    pub fn decode(&self, kv: &KeyValue) -> ApiResult<Value> {
        let mut obj: Value = match serde_json::from_slice(&kv.value) {
            Ok(obj @ Value::Object(_)) => obj,
            Ok(_) => return Err(self.undecodable(kv, "not a JSON object")),
            Err(e) => return Err(self.undecodable(kv, &e.to_string())),
        };
        crate::registry::meta::metadata_mut(&mut obj).insert(
            "resourceVersion".into(),
            Value::String(kv.mod_revision.to_string()),
        );
        Ok(obj)
    }

    fn undecodable(&self, kv: &KeyValue, why: &str) -> ApiError {
        self.decode_errors
            .inc(&crate::http::metrics::resource_of_key(&kv.key));
        tracing::warn!(key = %kv.key, revision = kv.mod_revision, error = why, "stored object cannot be decoded");
        ApiError::internal(format!(
            "the stored object at {} (revision {}) cannot be decoded: {why}; it is left out of lists and can be deleted by name",
            kv.key, kv.mod_revision
        ))
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
