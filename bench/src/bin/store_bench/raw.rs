//! The baseline: raw sqlx single-row INSERTs (autocommit) into a plain table, through each
//! backend's native driver with the same durability settings the store uses (on SQLite the
//! URL's `synchronous=`, default FULL, as the store reads it).

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Result;
use sqlx::mysql::MySqlPoolOptions;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Executor};

/// Inserts `writes` rows from `clients` concurrent clients, each on a connection of its own
/// taken before the clock starts (so an insert is one round trip, not a pool checkout with its
/// liveness ping as well); returns the elapsed time.
macro_rules! insert_rows {
    ($pool:expr, $sql:expr, $writes:expr, $clients:expr, $value:expr) => {{
        let per_client = $writes / $clients;
        let mut conns = Vec::with_capacity($clients);
        for _ in 0..$clients {
            conns.push($pool.acquire().await?);
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (c, mut conn) in conns.into_iter().enumerate() {
            let sql = $sql.clone();
            let value = $value.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..per_client {
                    let id = i64::try_from(c * per_client + i)?;
                    sqlx::query(&sql)
                        .bind(id)
                        .bind(format!("/raw/key-{id}"))
                        .bind(&value)
                        .execute(&mut *conn)
                        .await?;
                }
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        started.elapsed()
    }};
}

/// Raw inserts/s on `url` with `clients` concurrent clients into a fresh table `table`.
pub async fn inserts(
    url: &str,
    table: &str,
    writes: usize,
    clients: usize,
    value: &[u8],
) -> Result<Duration> {
    let value = value.to_vec();
    let scheme = url.split(':').next().unwrap_or_default();
    let create = |blob: &str, key: &str| {
        format!(
            "CREATE TABLE {table} (id BIGINT NOT NULL PRIMARY KEY, name {key} NOT NULL, value {blob})"
        )
    };
    let elapsed = match scheme {
        "sqlite" => {
            let (url, synchronous) = match url.split_once("?synchronous=") {
                Some((base, level)) => (base, SqliteSynchronous::from_str(level)?),
                None => (url, SqliteSynchronous::Full),
            };
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(synchronous)
                .disable_statement_logging();
            let pool = SqlitePoolOptions::new()
                .max_connections(u32::try_from(clients)?.max(2))
                .connect_with(options)
                .await?;
            pool.execute(create("BLOB", "TEXT").as_str()).await?;
            let sql = format!("INSERT INTO {table} (id, name, value) VALUES (?, ?, ?)");
            let elapsed = insert_rows!(pool, sql, writes, clients, value);
            pool.execute(format!("DROP TABLE {table}").as_str()).await?;
            elapsed
        }
        "mysql" => {
            let options =
                sqlx::mysql::MySqlConnectOptions::from_str(url)?.disable_statement_logging();
            let pool = MySqlPoolOptions::new()
                .max_connections(u32::try_from(clients)?.max(2))
                .connect_with(options)
                .await?;
            pool.execute(
                format!("{} ENGINE=InnoDB", create("MEDIUMBLOB", "VARCHAR(700)")).as_str(),
            )
            .await?;
            let sql = format!("INSERT INTO {table} (id, name, value) VALUES (?, ?, ?)");
            let elapsed = insert_rows!(pool, sql, writes, clients, value);
            pool.execute(format!("DROP TABLE {table}").as_str()).await?;
            elapsed
        }
        _ => {
            let options =
                sqlx::postgres::PgConnectOptions::from_str(url)?.disable_statement_logging();
            let pool = PgPoolOptions::new()
                .max_connections(u32::try_from(clients)?.max(2))
                .connect_with(options)
                .await?;
            pool.execute(create("BYTEA", "TEXT").as_str()).await?;
            let sql = format!("INSERT INTO {table} (id, name, value) VALUES ($1, $2, $3)");
            let elapsed = insert_rows!(pool, sql, writes, clients, value);
            pool.execute(format!("DROP TABLE {table}").as_str()).await?;
            elapsed
        }
    };
    Ok(elapsed)
}
