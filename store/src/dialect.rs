//! Everything that differs between SQLite, MySQL/MariaDB and PostgreSQL lives here: placeholders
//! (`?` vs `$1`), column types, DDL, "insert unless present", how the revision counter is bumped
//! and returned, session settings and the migration lock. The rest of the crate writes portable
//! SQL with `?` placeholders and asks this module for the rest.

use std::time::Duration;

use sqlx::AnyConnection;

use crate::{Error, Result};

/// The SQL flavour of the database behind a `Store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (embedded, WAL journal).
    Sqlite,
    /// MySQL, MariaDB, and wire-compatible databases (OceanBase, TiDB).
    MySql,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// The backend a connection URL points at.
    pub fn from_url(url: &str) -> Result<Backend> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(Error::InvalidConfig {
                reason: format!(
                    "unsupported database URL scheme {scheme:?}: use sqlite://, mysql:// or postgres://"
                ),
            }),
        }
    }

    /// Rewrites the portable `?` placeholders for this backend (`$1`, `$2`… on PostgreSQL).
    /// Our statements never contain a literal `?`.
    pub(crate) fn sql(self, portable: &str) -> String {
        if self != Backend::Postgres {
            return portable.to_owned();
        }
        let mut out = String::with_capacity(portable.len() + 8);
        let mut n = 0;
        for c in portable.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// `?, ?, …` with `n` placeholders, for `IN (…)` lists (rewritten by [`Backend::sql`]).
    pub(crate) fn placeholders(n: usize) -> String {
        vec!["?"; n].join(", ")
    }

    /// The statements of schema version 1, for tables named `{prefix}_log` and `{prefix}_meta`.
    pub(crate) fn schema_v1(self, prefix: &str) -> Vec<String> {
        let log = format!("{prefix}_log");
        let meta = format!("{prefix}_meta");
        // The log table has no AUTO_INCREMENT / SERIAL column: `revision` is always supplied by
        // the store from the counter row in `meta` (see docs/store.md).
        match self {
            Backend::Sqlite => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {log} (
                        revision INTEGER NOT NULL PRIMARY KEY,
                        name TEXT NOT NULL,
                        created INTEGER NOT NULL,
                        deleted INTEGER NOT NULL,
                        create_revision INTEGER NOT NULL,
                        prev_revision INTEGER NOT NULL,
                        lease INTEGER NOT NULL,
                        value BLOB,
                        old_value BLOB)"
                ),
                format!("CREATE INDEX IF NOT EXISTS {log}_name_rev ON {log} (name, revision)"),
                format!(
                    "CREATE TABLE IF NOT EXISTS {meta} (
                        id INTEGER NOT NULL PRIMARY KEY,
                        revision INTEGER NOT NULL,
                        compacted INTEGER NOT NULL)"
                ),
                self.insert_ignore(&meta, "id, revision, compacted", "1, 0, 0"),
            ],
            Backend::MySql => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {log} (
                        revision BIGINT NOT NULL PRIMARY KEY,
                        name VARCHAR(700) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                        created SMALLINT NOT NULL,
                        deleted SMALLINT NOT NULL,
                        create_revision BIGINT NOT NULL,
                        prev_revision BIGINT NOT NULL,
                        lease BIGINT NOT NULL,
                        value MEDIUMBLOB,
                        old_value MEDIUMBLOB,
                        KEY {log}_name_rev (name, revision)) ENGINE=InnoDB"
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS {meta} (
                        id SMALLINT NOT NULL PRIMARY KEY,
                        revision BIGINT NOT NULL,
                        compacted BIGINT NOT NULL) ENGINE=InnoDB"
                ),
                self.insert_ignore(&meta, "id, revision, compacted", "1, 0, 0"),
            ],
            Backend::Postgres => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {log} (
                        revision BIGINT NOT NULL PRIMARY KEY,
                        name TEXT COLLATE \"C\" NOT NULL,
                        created SMALLINT NOT NULL,
                        deleted SMALLINT NOT NULL,
                        create_revision BIGINT NOT NULL,
                        prev_revision BIGINT NOT NULL,
                        lease BIGINT NOT NULL,
                        value BYTEA,
                        old_value BYTEA)"
                ),
                format!("CREATE INDEX IF NOT EXISTS {log}_name_rev ON {log} (name, revision)"),
                format!(
                    "CREATE TABLE IF NOT EXISTS {meta} (
                        id SMALLINT NOT NULL PRIMARY KEY,
                        revision BIGINT NOT NULL,
                        compacted BIGINT NOT NULL)"
                ),
                self.insert_ignore(&meta, "id, revision, compacted", "1, 0, 0"),
            ],
        }
    }

    /// `INSERT … VALUES (…)` that does nothing when the primary key exists already.
    pub(crate) fn insert_ignore(self, table: &str, columns: &str, values: &str) -> String {
        let portable = match self {
            Backend::MySql => format!("INSERT IGNORE INTO {table} ({columns}) VALUES ({values})"),
            Backend::Sqlite | Backend::Postgres => {
                format!("INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT DO NOTHING")
            }
        };
        self.sql(&portable)
    }

    /// The table recording applied schema versions.
    pub(crate) fn migrations_table(self, prefix: &str) -> String {
        let text = match self {
            Backend::Sqlite => "TEXT",
            Backend::MySql | Backend::Postgres => "VARCHAR(200)",
        };
        format!(
            "CREATE TABLE IF NOT EXISTS {prefix}_migrations (version BIGINT NOT NULL PRIMARY KEY, description {text} NOT NULL)"
        )
    }

    /// Statements run on every new connection: SQLite's durability level, the isolation the
    /// writer needs, and the bound on lock waits when one is configured.
    pub(crate) fn session_setup(
        self,
        synchronous: crate::Synchronous,
        lock_wait: Option<Duration>,
    ) -> Vec<String> {
        let mut setup = match self {
            // WAL itself is persistent and set once at open; `synchronous` is per connection.
            // FULL (the default) syncs the WAL on every commit: acknowledged writes survive
            // power loss; NORMAL only survives process crashes (see docs/store.md).
            Backend::Sqlite => vec![format!("PRAGMA synchronous = {}", synchronous.as_str())],
            // Every statement must see the newest committed rows: a writer reads the key's
            // latest version right after taking the counter row lock, and REPEATABLE READ
            // could hand it an older snapshot.
            Backend::MySql => vec!["SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED".into()],
            // PostgreSQL's default (READ COMMITTED) is what we need.
            Backend::Postgres => Vec::new(),
        };
        if let Some(wait) = lock_wait {
            let millis = wait.as_millis().max(1);
            setup.push(match self {
                Backend::Sqlite => format!("PRAGMA busy_timeout = {millis}"),
                // Whole seconds, at least one.
                Backend::MySql => format!(
                    "SET SESSION innodb_lock_wait_timeout = {}",
                    millis.div_ceil(1000)
                ),
                Backend::Postgres => format!("SET lock_timeout = {millis}"),
            });
        }
        setup
    }

    /// Makes this connection's reads causal when it talks to a Galera node (MariaDB Galera,
    /// Percona XtraDB Cluster): `wsrep_sync_wait = 1` makes every read wait until the node has
    /// applied what the cluster committed before the read began. Without it a node serves
    /// reads before it applied the writes other nodes acknowledged, so a LIST through one
    /// apiserver replica misses creates another replica already answered and reports an older
    /// resourceVersion. Other servers (no `wsrep_on`, or MySQL without the variable at all)
    /// are left alone. MySQL/MariaDB only; a no-op elsewhere.
    pub(crate) async fn causal_reads_on_galera(
        self,
        conn: &mut AnyConnection,
    ) -> Result<(), sqlx::Error> {
        use sqlx::Executor as _;
        if self != Backend::MySql {
            return Ok(());
        }
        // MySQL answers "unknown system variable" (1193): not a Galera node
        let wsrep: Option<i64> = sqlx::query_scalar("SELECT CAST(@@wsrep_on AS SIGNED)")
            .fetch_one(&mut *conn)
            .await
            .ok();
        if wsrep == Some(1) {
            conn.execute("SET SESSION wsrep_sync_wait = 1").await?;
        }
        Ok(())
    }

    /// How a write transaction starts, when not with a plain `BEGIN`.
    pub(crate) fn begin_write_sql(self) -> Option<&'static str> {
        match self {
            // Take the write lock at once (waiting with the busy timeout), rather than upgrading
            // a read transaction later, which can fail without waiting under WAL.
            Backend::Sqlite => Some("BEGIN IMMEDIATE"),
            Backend::MySql | Backend::Postgres => None,
        }
    }

    /// The statement that adds `?` to the counter row, locking it until commit; see
    /// [`Backend::bump`].
    pub(crate) fn bump_sql(self, meta: &str) -> String {
        match self {
            Backend::Sqlite => {
                format!("UPDATE {meta} SET revision = revision + ? WHERE id = 1 RETURNING revision")
            }
            Backend::Postgres => {
                format!(
                    "UPDATE {meta} SET revision = revision + $1 WHERE id = 1 RETURNING revision"
                )
            }
            // No UPDATE … RETURNING: LAST_INSERT_ID(expr) hands the new value back in the OK
            // packet of this very statement (no AUTO_INCREMENT is involved).
            Backend::MySql => {
                format!("UPDATE {meta} SET revision = LAST_INSERT_ID(revision + ?) WHERE id = 1")
            }
        }
    }

    /// Adds `n` to the counter row inside the caller's transaction and returns the new value.
    /// The row lock taken here is held until commit or rollback: it serialises all writers on
    /// the database, whatever process they run in.
    pub(crate) async fn bump(
        self,
        conn: &mut AnyConnection,
        bump_sql: &str,
        n: i64,
    ) -> Result<i64> {
        match self {
            Backend::Sqlite | Backend::Postgres => {
                let rev: i64 = sqlx::query_scalar(bump_sql).bind(n).fetch_one(conn).await?;
                Ok(rev)
            }
            Backend::MySql => {
                let done = sqlx::query(bump_sql).bind(n).execute(conn).await?;
                if done.rows_affected() != 1 {
                    return Err(Error::Database(sqlx::Error::RowNotFound));
                }
                done.last_insert_id()
                    .ok_or(Error::Database(sqlx::Error::RowNotFound))
            }
        }
    }

    /// Takes the lock that serialises concurrent migrations of the same tables.
    pub(crate) async fn lock_migrations(
        self,
        conn: &mut AnyConnection,
        prefix: &str,
    ) -> Result<()> {
        match self {
            // Schema changes take SQLite's database write lock anyway.
            Backend::Sqlite => {}
            Backend::MySql => {
                let _: i64 = sqlx::query_scalar("SELECT GET_LOCK(?, 60)")
                    .bind(format!("cellfed-migrate-{prefix}"))
                    .fetch_one(conn)
                    .await?;
            }
            Backend::Postgres => {
                let _: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM (SELECT pg_advisory_lock(hashtext($1))) l",
                )
                .bind(format!("cellfed-migrate-{prefix}"))
                .fetch_one(conn)
                .await?;
            }
        }
        Ok(())
    }

    /// Releases the lock of [`Backend::lock_migrations`].
    pub(crate) async fn unlock_migrations(
        self,
        conn: &mut AnyConnection,
        prefix: &str,
    ) -> Result<()> {
        match self {
            Backend::Sqlite => {}
            Backend::MySql => {
                let _: Option<i64> = sqlx::query_scalar("SELECT RELEASE_LOCK(?)")
                    .bind(format!("cellfed-migrate-{prefix}"))
                    .fetch_one(conn)
                    .await?;
            }
            Backend::Postgres => {
                let _: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM (SELECT pg_advisory_unlock(hashtext($1))) l",
                )
                .bind(format!("cellfed-migrate-{prefix}"))
                .fetch_one(conn)
                .await?;
            }
        }
        Ok(())
    }
}

/// The smallest string greater than every string starting with `prefix` (byte order), or None
/// when there is none (empty prefix, or only `char::MAX`s).
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        if next == 0xD800 {
            next = 0xE000; // skip the surrogate range
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_placeholders_are_numbered() {
        assert_eq!(
            Backend::Postgres.sql("a = ? AND b IN (?, ?)"),
            "a = $1 AND b IN ($2, $3)"
        );
        assert_eq!(Backend::MySql.sql("a = ?"), "a = ?");
    }

    #[test]
    fn prefix_end_is_the_next_string() {
        assert_eq!(
            prefix_end("/registry/pods/").as_deref(),
            Some("/registry/pods0")
        );
        assert_eq!(prefix_end("a"), Some("b".to_owned()));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
    }

    #[test]
    fn backend_comes_from_the_url_scheme() {
        assert_eq!(
            Backend::from_url("sqlite::memory:").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("mysql://root@127.0.0.1/test").ok(),
            Some(Backend::MySql)
        );
        assert_eq!(
            Backend::from_url("postgres://p@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(Backend::from_url("etcd://x").is_err());
    }
}
