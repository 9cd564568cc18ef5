//! Reads: the counter row, get, list, count — at the current revision or an older one.
//!
//! A read at revision R only looks at rows with revision <= R, all committed before R was
//! visible in the counter row, so it needs no transaction. Compaction is the one thing that
//! changes history: it records its new compacted revision before deleting anything, so a read
//! that finds the compacted revision still <= R *after* its query saw no deletion that matters.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::row::{LogRow, Meta, meta_from_any};
use crate::sql::Sql;
use crate::{Error, Inner, KeyValue, ListOptions, ListResult, Result};

/// Columns of a key version in list queries, read by [`kv_from_list_row`].
const KV_COLUMNS: &str = "l.name, l.value, l.create_revision, l.revision, l.lease";

/// The counter row.
pub(crate) async fn meta(pool: &AnyPool, sql: &Sql) -> Result<Meta> {
    let row = sqlx::query(&sql.meta).fetch_one(pool).await?;
    meta_from_any(&row)
}

/// Fails unless `requested` is readable.
fn check_readable(meta: Meta, requested: i64) -> Result<()> {
    if requested > meta.revision {
        return Err(Error::FutureRevision {
            requested,
            current: meta.revision,
        });
    }
    if requested < meta.compacted {
        return Err(Error::Compacted {
            requested,
            compacted: meta.compacted,
        });
    }
    Ok(())
}

/// After reading at `revision`: fails if a compaction beyond it started meanwhile.
async fn recheck_compaction(inner: &Inner, revision: i64) -> Result<()> {
    let now = meta(&inner.pool, &inner.sql).await?;
    if now.compacted > revision {
        return Err(Error::Compacted {
            requested: revision,
            compacted: now.compacted,
        });
    }
    Ok(())
}

pub(crate) async fn get(
    inner: &Inner,
    key: &str,
    revision: Option<i64>,
) -> Result<Option<KeyValue>> {
    let Some(revision) = revision else {
        // Compaction never removes the newest row of a live key, so no recheck is needed.
        let row = sqlx::query(&inner.sql.latest)
            .bind(key)
            .fetch_optional(&inner.pool)
            .await?;
        return live_kv(row.as_ref());
    };
    check_readable(meta(&inner.pool, &inner.sql).await?, revision)?;
    let row = sqlx::query(&inner.sql.latest_at)
        .bind(key)
        .bind(revision)
        .fetch_optional(&inner.pool)
        .await?;
    recheck_compaction(inner, revision).await?;
    live_kv(row.as_ref())
}

/// The key version of a full log row, None for a tombstone.
fn live_kv(row: Option<&AnyRow>) -> Result<Option<KeyValue>> {
    let Some(row) = row else { return Ok(None) };
    let row = LogRow::from_any(row)?;
    Ok((!row.deleted).then(|| row.kv()))
}

fn kv_from_list_row(row: &AnyRow) -> Result<KeyValue> {
    let value: Option<Vec<u8>> = row.try_get(1)?;
    Ok(KeyValue {
        key: row.try_get(0)?,
        value: value.unwrap_or_default(),
        create_revision: row.try_get(2)?,
        mod_revision: row.try_get(3)?,
        lease: row.try_get(4)?,
        stale: false,
    })
}

pub(crate) async fn list(inner: &Inner, prefix: &str, options: ListOptions) -> Result<ListResult> {
    let current = meta(&inner.pool, &inner.sql).await?;
    let revision = options.revision.unwrap_or(current.revision);
    check_readable(current, revision)?;
    let limit = options.limit.filter(|l| *l > 0);
    let (range, binds) = Sql::key_range(prefix, options.start_after.as_deref(), "name");
    let tail = if limit.is_some() {
        "ORDER BY l.name LIMIT ?"
    } else {
        "ORDER BY l.name"
    };
    let statement = inner.sql.live_at(&range, KV_COLUMNS, tail);
    let mut query = sqlx::query(&statement);
    for bind in binds {
        query = query.bind(bind);
    }
    query = query.bind(revision);
    if let Some(limit) = limit {
        query = query.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    }
    let rows = query.fetch_all(&inner.pool).await?;
    let items = rows
        .iter()
        .map(kv_from_list_row)
        .collect::<Result<Vec<_>>>()?;
    let remaining = match (limit, items.last()) {
        (Some(limit), Some(last)) if items.len() == limit => {
            count_at(inner, prefix, Some(&last.key), revision).await?
        }
        _ => 0,
    };
    recheck_compaction(inner, revision).await?;
    Ok(ListResult {
        items,
        revision,
        remaining,
    })
}

pub(crate) async fn count(inner: &Inner, prefix: &str) -> Result<(u64, i64)> {
    let revision = meta(&inner.pool, &inner.sql).await?.revision;
    let n = count_at(inner, prefix, None, revision).await?;
    recheck_compaction(inner, revision).await?;
    Ok((n, revision))
}

/// Live keys under `prefix` (after `start_after`) at `revision`.
async fn count_at(
    inner: &Inner,
    prefix: &str,
    start_after: Option<&str>,
    revision: i64,
) -> Result<u64> {
    let (range, binds) = Sql::key_range(prefix, start_after, "name");
    let statement = inner.sql.live_at(&range, "COUNT(*)", "");
    let mut query = sqlx::query_scalar::<_, i64>(&statement);
    for bind in binds {
        query = query.bind(bind);
    }
    let n = query.bind(revision).fetch_one(&inner.pool).await?;
    Ok(u64::try_from(n).unwrap_or(0))
}
