//! One row of the log table and what it means as a key version or a watch event.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Event, EventKind, KeyValue, Result};

/// A row of `{prefix}_log`, read with [`crate::sql::ROW_COLUMNS`].
#[derive(Debug, Clone)]
pub(crate) struct LogRow {
    pub revision: i64,
    pub name: String,
    pub created: bool,
    pub deleted: bool,
    pub create_revision: i64,
    pub prev_revision: i64,
    pub lease: i64,
    /// The value after the change; for a tombstone, the last value before the deletion.
    pub value: Vec<u8>,
    /// The value before an update (None for creates and tombstones).
    pub old_value: Option<Vec<u8>>,
}

impl LogRow {
    pub(crate) fn from_any(row: &AnyRow) -> Result<LogRow> {
        let created: i64 = row.try_get(2)?;
        let deleted: i64 = row.try_get(3)?;
        let value: Option<Vec<u8>> = row.try_get(7)?;
        Ok(LogRow {
            revision: row.try_get(0)?,
            name: row.try_get(1)?,
            created: created != 0,
            deleted: deleted != 0,
            create_revision: row.try_get(4)?,
            prev_revision: row.try_get(5)?,
            lease: row.try_get(6)?,
            value: value.unwrap_or_default(),
            old_value: row.try_get(8)?,
        })
    }

    /// The version of the key this row records (for a tombstone: the last value, at the
    /// deletion revision).
    pub(crate) fn kv(&self) -> KeyValue {
        KeyValue {
            key: self.name.clone(),
            value: self.value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.revision,
            lease: self.lease,
            stale: false,
        }
    }

    /// The key as it was before this change, when there was one.
    fn prev(&self) -> Option<KeyValue> {
        if self.created {
            return None;
        }
        let value = if self.deleted {
            self.value.clone()
        } else {
            self.old_value.clone().unwrap_or_default()
        };
        Some(KeyValue {
            key: self.name.clone(),
            value,
            create_revision: self.create_revision,
            mod_revision: self.prev_revision,
            lease: self.lease,
            stale: false,
        })
    }

    pub(crate) fn into_event(self) -> Event {
        let kind = if self.deleted {
            EventKind::Deleted
        } else if self.created {
            EventKind::Created
        } else {
            EventKind::Updated
        };
        let prev = self.prev();
        Event {
            kind,
            kv: self.kv(),
            prev,
        }
    }
}

/// Reads `(revision, compacted)` from a meta row.
pub(crate) fn meta_from_any(row: &AnyRow) -> Result<Meta> {
    Ok(Meta {
        revision: row.try_get(0)?,
        compacted: row.try_get(1)?,
    })
}

/// The counter row: newest revision and oldest readable revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub revision: i64,
    pub compacted: i64,
}
