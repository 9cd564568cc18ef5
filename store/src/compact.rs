//! Compaction: forget history older than a revision.
//!
//! First the counter row records the new compacted revision C (readers and watchers compare
//! against it *after* reading, see `read`), then rows are deleted in batches, in revision order:
//! every row at or below C that a newer row at or below C supersedes, and every tombstone at or
//! below C. Deleting in revision order means a tombstone goes only after the versions it hides,
//! so a reader at a revision >= C never sees a deleted key come back.

use crate::read::meta;
use crate::{Error, Inner, Result};

/// Rows deleted per statement: small enough not to hold locks for long.
const BATCH: i64 = 500;

pub(crate) async fn compact(inner: &Inner, revision: i64) -> Result<()> {
    let sql = &inner.sql;
    let done = sqlx::query(&sql.set_compacted)
        .bind(revision)
        .bind(revision)
        .bind(revision)
        .execute(&inner.pool)
        .await?;
    if done.rows_affected() == 0 {
        let m = meta(&inner.pool, sql).await?;
        if revision > m.revision {
            return Err(Error::FutureRevision {
                requested: revision,
                current: m.revision,
            });
        }
        // Already compacted this far; still sweep below, in case an earlier run was cut short.
    }
    let mut cursor = 0_i64;
    loop {
        let victims: Vec<i64> = sqlx::query_scalar(&sql.compactable)
            .bind(cursor)
            .bind(revision)
            .bind(revision)
            .bind(BATCH)
            .fetch_all(&inner.pool)
            .await?;
        let Some(&last) = victims.last() else { break };
        let statement = sql.delete_revisions(victims.len());
        let mut query = sqlx::query(&statement);
        for victim in &victims {
            query = query.bind(*victim);
        }
        query.execute(&inner.pool).await?;
        cursor = last;
        if i64::try_from(victims.len()).unwrap_or(BATCH) < BATCH {
            break;
        }
    }
    tracing::debug!(revision, table = %sql.log, "store compacted");
    Ok(())
}
