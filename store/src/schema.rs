//! Schema migrations, run by every `Store::open`. Versions are recorded in
//! `{prefix}_migrations`; a per-prefix lock (advisory lock on PostgreSQL, `GET_LOCK` on MySQL,
//! the database write lock on SQLite) keeps concurrent openers from racing. Every step is also
//! idempotent (`IF NOT EXISTS`), so a crash between a step and its record is harmless.

use sqlx::{AnyPool, Executor};

use crate::Result;
use crate::dialect::Backend;

/// Puts a SQLite database file in WAL mode (persistent; needs a moment alone with the file).
pub(crate) async fn enable_wal(pool: &AnyPool) -> Result<()> {
    let mut conn = pool.acquire().await?;
    let mut last = None;
    for _ in 0..50 {
        match sqlx::query("PRAGMA journal_mode = WAL")
            .fetch_optional(&mut *conn)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Err(last.map_or(
        crate::Error::Database(sqlx::Error::PoolTimedOut),
        Into::into,
    ))
}

/// Brings the tables of `prefix` to the newest schema version.
pub(crate) async fn migrate(pool: &AnyPool, backend: Backend, prefix: &str) -> Result<()> {
    let mut conn = pool.acquire().await?;
    backend.lock_migrations(&mut conn, prefix).await?;
    let outcome = apply(&mut conn, backend, prefix).await;
    let unlocked = backend.unlock_migrations(&mut conn, prefix).await;
    outcome.and(unlocked)
}

async fn apply(conn: &mut sqlx::AnyConnection, backend: Backend, prefix: &str) -> Result<()> {
    conn.execute(backend.migrations_table(prefix).as_str())
        .await?;
    let applied: Option<i64> =
        sqlx::query_scalar(&format!("SELECT MAX(version) FROM {prefix}_migrations"))
            .fetch_one(&mut *conn)
            .await?;
    let applied = applied.unwrap_or(0);
    let steps = [(1_i64, "log and counter tables", backend.schema_v1(prefix))];
    for (version, description, statements) in steps {
        if version <= applied {
            continue;
        }
        for statement in statements {
            conn.execute(statement.as_str()).await?;
        }
        let record = backend.insert_ignore(
            &format!("{prefix}_migrations"),
            "version, description",
            "?, ?",
        );
        sqlx::query(&record)
            .bind(version)
            .bind(description)
            .execute(&mut *conn)
            .await?;
        tracing::info!(prefix, version, description, "store schema migrated");
    }
    Ok(())
}
