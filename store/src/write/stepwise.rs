//! SQLite: a batch as one statement per step, with bind parameters. The database is in the
//! process, so a "round trip" is a function call and packing statements would gain nothing.
//!
//! `BEGIN IMMEDIATE` (the database write lock, waiting with the busy timeout); add the batch's
//! size to the counter row; read the newest row of every key; decide (`decide::plan`); insert
//! the rows; store the last revision used when some requests failed their check; commit.

use std::collections::HashMap;

use sqlx::{AnyConnection, Connection};

use super::decide::plan;
use super::{Failed, Request};
use crate::Result;
use crate::row::LogRow;
use crate::sql::Sql;

pub(super) async fn apply(
    conn: &mut AnyConnection,
    sql: &Sql,
    batch: &[Request],
) -> Result<Vec<Result<crate::KeyValue>>, Failed> {
    let mut tx = match sql.backend.begin_write_sql() {
        Some(begin) => AnyConnection::begin_with(conn, begin).await?,
        None => conn.begin().await?,
    };
    // Reserve a revision per request (locking the counter row); give back the unused ones
    // before commit if some requests fail their checks.
    let reserved = i64::try_from(batch.len()).unwrap_or(i64::MAX);
    let top = sql.backend.bump(&mut tx, &sql.bump, reserved).await?;
    let latest = latest_rows(&mut tx, sql, batch).await?;
    let first = top - reserved + 1;
    let plan = plan(batch.iter().map(|r| (r.key.as_str(), &r.op)), latest, first);
    if plan.rows.is_empty() {
        tx.rollback().await?;
        return Ok(plan.outcomes);
    }
    let statement = sql.insert_rows(plan.rows.len());
    let mut insert = sqlx::query(&statement);
    for row in &plan.rows {
        insert = insert
            .bind(row.kv.mod_revision)
            .bind(row.kv.key.as_str())
            .bind(i64::from(row.created))
            .bind(i64::from(row.deleted))
            .bind(row.kv.create_revision)
            .bind(row.prev_revision)
            .bind(row.kv.lease)
            .bind(row.kv.value.as_slice())
            .bind(row.old_value.as_deref());
    }
    insert.execute(&mut *tx).await?;
    let last = plan.last_revision(first);
    if last != top {
        sqlx::query(&sql.set_revision)
            .bind(last)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await.map_err(|e| Failed::Commit(e.into()))?;
    Ok(plan.outcomes)
}

/// The newest row of every key in `batch`.
async fn latest_rows(
    tx: &mut AnyConnection,
    sql: &Sql,
    batch: &[Request],
) -> Result<HashMap<String, LogRow>> {
    let mut keys: Vec<&str> = batch.iter().map(|r| r.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut latest = HashMap::with_capacity(keys.len());
    if let [key] = keys[..] {
        let row = sqlx::query(&sql.latest)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = row {
            let row = LogRow::from_any(&row)?;
            latest.insert(row.name.clone(), row);
        }
        return Ok(latest);
    }
    let statement = sql.latest_of(keys.len());
    let mut query = sqlx::query(&statement);
    for key in &keys {
        query = query.bind(*key);
    }
    for row in query.fetch_all(&mut *tx).await? {
        let row = LogRow::from_any(&row)?;
        latest.insert(row.name.clone(), row);
    }
    Ok(latest)
}
