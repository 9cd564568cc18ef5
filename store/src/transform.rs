//! Values as stored versus values as read: a `Store` handle may carry a [`ValueTransformer`]
//! (the apiserver's encryption at rest) that turns every written value into the bytes the log
//! holds and every read value (get, list, watch events, conflict and delete results) back.
//! The store itself never interprets either form.

use std::sync::Arc;

use crate::{Error, Event, KeyValue, Result};

/// Turns values into the bytes stored for a key and back. Both directions get the key, so an
/// implementation can bind the stored form to it (authenticated data) and choose per key prefix.
pub trait ValueTransformer: Send + Sync + 'static {
    /// The bytes to store for `value` under `key`.
    fn encode(&self, key: &str, value: Vec<u8>) -> std::result::Result<Vec<u8>, String>;
    /// The value `stored` stands for, and whether `encode` would no longer produce that form
    /// (written with an older key: a rewrite is due even when the value is unchanged).
    fn decode(&self, key: &str, stored: Vec<u8>) -> std::result::Result<(Vec<u8>, bool), String>;
}

/// The transformer of one `Store` handle, if any.
#[derive(Clone, Default)]
pub(crate) struct Transform(Option<Arc<dyn ValueTransformer>>);

impl Transform {
    pub(crate) fn new(t: Arc<dyn ValueTransformer>) -> Self {
        Self(Some(t))
    }

    /// The stored form of a value to write.
    pub(crate) fn encode(&self, key: &str, value: Vec<u8>) -> Result<Vec<u8>> {
        match &self.0 {
            None => Ok(value),
            Some(t) => t.encode(key, value).map_err(|reason| Error::Transform {
                key: key.to_owned(),
                reason,
            }),
        }
    }

    /// A version read from the log, with its value as written.
    pub(crate) fn decode(&self, mut kv: KeyValue) -> Result<KeyValue> {
        let Some(t) = &self.0 else {
            return Ok(kv);
        };
        let stored = std::mem::take(&mut kv.value);
        let (value, stale) = t
            .decode(&kv.key, stored)
            .map_err(|reason| Error::Transform {
                key: kv.key.clone(),
                reason,
            })?;
        kv.value = value;
        kv.stale = stale;
        Ok(kv)
    }

    /// A written version: its value is the one the caller passed, not the stored form.
    pub(crate) fn written(
        &self,
        result: Result<KeyValue>,
        value: Option<Vec<u8>>,
    ) -> Result<KeyValue> {
        let mut kv = self.decode_error(result)?;
        if let Some(v) = value {
            kv.value = v;
        }
        Ok(kv)
    }

    /// Decodes the version a `Conflict` carries and the value a delete returns.
    pub(crate) fn decode_error(&self, result: Result<KeyValue>) -> Result<KeyValue> {
        match result {
            Err(Error::Conflict {
                key,
                expected,
                current: Some(current),
            }) if self.0.is_some() => Err(Error::Conflict {
                key,
                expected,
                current: Some(Box::new(self.decode(*current)?)),
            }),
            other => other,
        }
    }

    /// A watch event with both its versions decoded.
    pub(crate) fn decode_event(&self, event: Event) -> Result<Event> {
        if self.0.is_none() {
            return Ok(event);
        }
        Ok(Event {
            kind: event.kind,
            kv: self.decode(event.kv)?,
            prev: event.prev.map(|p| self.decode(p)).transpose()?,
        })
    }

    /// Whether values are transformed at all (writes keep a copy of the plain value only then).
    pub(crate) fn is_set(&self) -> bool {
        self.0.is_some()
    }
}
