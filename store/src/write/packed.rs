//! MySQL/MariaDB and PostgreSQL: a batch in two round trips.
//!
//! The transaction is the one `stepwise` runs, statement for statement; only the packaging
//! differs. Each round trip is one multi-statement text query, which the server runs in order,
//! stopping at the first error:
//!
//! 1. `BEGIN; UPDATE meta SET revision = revision + n …` (locks the counter row: the writers'
//!    lock, until commit; the new value comes back with `RETURNING` on PostgreSQL, through
//!    `LAST_INSERT_ID(expr)` in the UPDATE's OK packet on MySQL) `; SELECT` the newest row of
//!    every key in the batch (a new statement, so it sees everything committed before the lock
//!    was granted);
//! 2. decide the batch here (`decide::plan`), then `INSERT` its rows `; UPDATE` the counter
//!    back to the last revision used, when some requests failed their check `; COMMIT` — or
//!    just `ROLLBACK` when nothing is to be written.
//!
//! A text query cannot carry bind parameters, so keys and values travel as literals
//! (`literal`). A batch whose rows make a statement larger than [`MAX_STATEMENT`] inserts them
//! in several statements, one round trip each, before the last one commits (values of
//! megabytes; MySQL refuses a packet over `max_allowed_packet`, 16 MiB by default).

use std::collections::HashMap;
use std::fmt::Write as _;

use futures::TryStreamExt;
use sqlx::{AnyConnection, Either, Executor, Row};

use super::decide::{NewRow, plan};
use super::{Applied, Failed, Request};
use crate::dialect::Backend;
use crate::literal;
use crate::row::LogRow;
use crate::sql::{ROW_COLUMNS, Sql};
use crate::{Error, Result};

/// Bytes of SQL text above which a batch's rows go into more than one INSERT statement.
const MAX_STATEMENT: usize = 4 << 20;

pub(super) async fn apply(conn: &mut AnyConnection, sql: &Sql, batch: &[Request]) -> Applied {
    let reserved = i64::try_from(batch.len()).unwrap_or(i64::MAX);
    let mut keys: Vec<&str> = batch.iter().map(|r| r.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    // Round trip 1.
    let (top, latest) = match reserve(conn, sql, reserved, &keys).await {
        Ok(read) => read,
        Err(e) => return abandon(conn, Failed::BeforeCommit(e)).await,
    };
    let first = top - reserved + 1;
    let plan = plan(batch.iter().map(|r| (r.key.as_str(), &r.op)), latest, first);
    if plan.rows.is_empty() {
        let dirty = conn.execute(sqlx::raw_sql("ROLLBACK")).await.is_err();
        return Applied {
            result: Ok(plan.outcomes),
            dirty,
        };
    }
    // Round trip 2 (more only for batches of megabytes).
    let last = plan.last_revision(first);
    let mut inserts = inserts(sql, &plan.rows);
    let Some(mut final_text) = inserts.pop() else {
        return abandon(
            conn,
            Failed::BeforeCommit(Error::Database(sqlx::Error::RowNotFound)),
        )
        .await;
    };
    for text in inserts {
        if let Err(e) = conn.execute(sqlx::raw_sql(&text)).await {
            return abandon(conn, Failed::BeforeCommit(e.into())).await;
        }
    }
    let mut before_commit = 1;
    if last != top {
        let _ = write!(
            final_text,
            "; UPDATE {} SET revision = {last} WHERE id = 1",
            sql.meta_table
        );
        before_commit += 1;
    }
    final_text.push_str("; COMMIT");
    // MySQL/MariaDB: read back the batch's last row in the same round trip, after the commit.
    // A Galera node can answer OK to a COMMIT whose transaction a replicated write aborted
    // (brute-force abort) while the text was in flight: nothing was written, and only this
    // read shows it. The revision is the log's primary key, so the row there is either ours
    // or another writer's.
    let check = (sql.backend == Backend::MySql).then(|| {
        let row = plan.rows.last().map(|r| &r.kv);
        let _ = write!(
            final_text,
            "; SELECT name, LENGTH(value) FROM {} WHERE revision = {last}",
            sql.log
        );
        row.map(|kv| (kv.key.clone(), kv.value.len()))
    });
    let mut done = 0;
    let mut found = None;
    let mut results = conn.fetch_many(sqlx::raw_sql(&final_text));
    let outcome = loop {
        match results.try_next().await {
            Ok(Some(Either::Left(_))) => done += 1,
            Ok(Some(Either::Right(row))) => {
                let name = row.try_get::<String, _>(0).ok();
                let len = row.try_get::<i64, _>(1).ok();
                found = name.zip(len);
            }
            Ok(None) => break Ok(()),
            // The server refused a statement before COMMIT and stopped there: nothing written.
            Err(e @ sqlx::Error::Database(_)) if done < before_commit => {
                break Err(Failed::BeforeCommit(e.into()));
            }
            // The commit failed, or the connection did with the whole text in flight: the
            // server may have committed it.
            Err(e) => break Err(Failed::Commit(e.into())),
        }
    };
    drop(results);
    if let (Ok(()), Some(expected)) = (&outcome, check) {
        let ours = match (&expected, &found) {
            (Some((key, len)), Some((name, stored))) => {
                key == name && i64::try_from(*len).ok() == Some(*stored)
            }
            _ => false,
        };
        if !ours {
            tracing::warn!(
                revision = last,
                "commit acknowledged but the batch is not in the log (Galera brute-force abort); applying it again"
            );
            return Applied {
                result: Err(Failed::NotApplied),
                dirty: false,
            };
        }
    }
    match outcome {
        Ok(()) => Applied {
            result: Ok(plan.outcomes),
            dirty: false,
        },
        Err(failed) => abandon(conn, failed).await,
    }
}

/// Round trip 1: opens the transaction, reserves `n` revisions and reads the keys' newest rows.
/// Returns the counter's new value and those rows.
async fn reserve(
    conn: &mut AnyConnection,
    sql: &Sql,
    n: i64,
    keys: &[&str],
) -> Result<(i64, HashMap<String, LogRow>)> {
    let backend = sql.backend;
    let (log, meta) = (&sql.log, &sql.meta_table);
    let mut text = match backend {
        Backend::Postgres => format!(
            "BEGIN; UPDATE {meta} SET revision = revision + {n} WHERE id = 1 RETURNING revision; "
        ),
        // No UPDATE … RETURNING: LAST_INSERT_ID(expr) hands the new value back in the OK
        // packet of the UPDATE itself (no AUTO_INCREMENT is involved).
        Backend::MySql | Backend::Sqlite => format!(
            "START TRANSACTION; \
             UPDATE {meta} SET revision = LAST_INSERT_ID(revision + {n}) WHERE id = 1; "
        ),
    };
    if let [key] = keys {
        let key = literal::text(backend, key);
        let _ = write!(
            text,
            "SELECT {ROW_COLUMNS} FROM {log} WHERE name = {key} ORDER BY revision DESC LIMIT 1"
        );
    } else {
        let list: Vec<String> = keys.iter().map(|k| literal::text(backend, k)).collect();
        let _ = write!(
            text,
            "SELECT {} FROM {log} l JOIN (SELECT name, MAX(revision) AS mr FROM {log} \
             WHERE name IN ({}) GROUP BY name) m ON l.revision = m.mr",
            crate::sql::L_ROW_COLUMNS,
            list.join(", ")
        );
    }
    let mut top = None;
    let mut statement = 0;
    let mut latest = HashMap::with_capacity(keys.len());
    let mut results = conn.fetch_many(sqlx::raw_sql(&text));
    while let Some(item) = results.try_next().await? {
        match item {
            // MySQL: the second statement's OK packet (the UPDATE) carries the new value.
            Either::Left(done) => {
                statement += 1;
                if backend == Backend::MySql && statement == 2 && done.rows_affected() == 1 {
                    top = done.last_insert_id();
                }
            }
            // PostgreSQL: the UPDATE's RETURNING row.
            Either::Right(row) if row.columns().len() == 1 => {
                top = Some(row.try_get::<i64, _>(0)?);
            }
            Either::Right(row) => {
                let row = LogRow::from_any(&row)?;
                latest.insert(row.name.clone(), row);
            }
        }
    }
    let top = top.ok_or(Error::Database(sqlx::Error::RowNotFound))?;
    Ok((top, latest))
}

/// The INSERT statements appending `rows`, each at most [`MAX_STATEMENT`] bytes unless a single
/// row is larger.
fn inserts(sql: &Sql, rows: &[NewRow]) -> Vec<String> {
    let backend = sql.backend;
    let head = format!("INSERT INTO {} ({ROW_COLUMNS}) VALUES ", sql.log);
    let mut out = Vec::new();
    let mut text = head.clone();
    for row in rows {
        let values = format!(
            "({}, {}, {}, {}, {}, {}, {}, {}, {})",
            row.kv.mod_revision,
            literal::text(backend, &row.kv.key),
            i64::from(row.created),
            i64::from(row.deleted),
            row.kv.create_revision,
            row.prev_revision,
            row.kv.lease,
            literal::blob(backend, Some(&row.kv.value)),
            literal::blob(backend, row.old_value.as_deref()),
        );
        if text.len() > head.len() && text.len() + values.len() + 2 > MAX_STATEMENT {
            out.push(std::mem::replace(&mut text, head.clone()));
        }
        if text.len() > head.len() {
            text.push_str(", ");
        }
        text.push_str(&values);
    }
    out.push(text);
    out
}

/// Ends a failed transaction: `ROLLBACK`, or, if even that fails, marks the connection dirty
/// so it is closed instead of going back to the pool inside a transaction.
async fn abandon(conn: &mut AnyConnection, failed: Failed) -> Applied {
    let dirty = conn.execute(sqlx::raw_sql("ROLLBACK")).await.is_err();
    Applied {
        result: Err(failed),
        dirty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyValue;

    fn row(revision: i64, value_len: usize) -> NewRow {
        NewRow {
            kv: KeyValue {
                key: format!("/k/{revision}"),
                value: vec![b'v'; value_len],
                create_revision: revision,
                mod_revision: revision,
                lease: 0,
                stale: false,
            },
            created: true,
            deleted: false,
            prev_revision: 0,
            old_value: None,
        }
    }

    #[test]
    fn small_batches_insert_in_one_statement() {
        let sql = Sql::new(Backend::MySql, "p");
        let texts = inserts(&sql, &[row(1, 3), row(2, 0)]);
        assert_eq!(
            texts,
            [format!(
                "INSERT INTO p_log ({ROW_COLUMNS}) VALUES \
                 (1, _utf8mb4 X'2f6b2f31', 1, 0, 1, 0, 0, X'767676', NULL), \
                 (2, _utf8mb4 X'2f6b2f32', 1, 0, 2, 0, 0, X'', NULL)"
            )]
        );
    }

    #[test]
    fn large_batches_are_split_and_every_row_is_inserted_once() {
        let sql = Sql::new(Backend::Postgres, "p");
        // Three rows of 1.5 MiB values (3 MiB of hex each): no two fit in one statement.
        let rows: Vec<NewRow> = (1..=3).map(|r| row(r, 3 << 19)).collect();
        let texts = inserts(&sql, &rows);
        assert_eq!(texts.len(), 3);
        for (text, revision) in texts.iter().zip(1..) {
            assert!(text.starts_with(&format!(
                "INSERT INTO p_log ({ROW_COLUMNS}) VALUES ({revision}, $c$/k/{revision}$c$"
            )));
            assert!(text.len() <= MAX_STATEMENT);
        }
    }
}
