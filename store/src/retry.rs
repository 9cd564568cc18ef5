//! Transient write failures: which database errors mean "nothing was written, try again", and
//! the jittered exponential backoff the writer retries them with.
//!
//! Those errors come from concurrency control, not from the request: deadlocks and lock wait
//! timeouts (InnoDB), certification conflicts (Galera reports them as deadlocks), optimistic
//! write conflicts (TiDB, OceanBase), serialization failures (PostgreSQL `SERIALIZABLE` /
//! `REPEATABLE READ`), SQLite's busy database. In every case the database rolled the statement
//! or transaction back, so the same batch can be applied again.

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

/// How the writer retries transient failures (`Config::retry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most attempts of one batch, the first included (at least 1).
    pub max_attempts: u32,
    /// No retry starts later than this after the first attempt.
    pub max_elapsed: Duration,
    /// Upper bound of the first backoff; it doubles on every retry…
    pub first_delay: Duration,
    /// …up to this. Each sleep is uniformly random in `[0, bound]` (full jitter), so writers
    /// that collided once do not collide again in lockstep.
    pub max_delay: Duration,
    /// What `Error::Busy` tells the caller to wait before trying again.
    pub retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            max_elapsed: Duration::from_secs(5),
            first_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(500),
            retry_after: Duration::from_secs(1),
        }
    }
}

/// The retries of one batch.
pub(crate) struct Backoff {
    policy: RetryPolicy,
    started: Instant,
    attempts: u32,
    random: RandomState,
}

impl Backoff {
    pub(crate) fn new(policy: RetryPolicy) -> Backoff {
        Backoff {
            policy,
            started: Instant::now(),
            attempts: 1,
            random: RandomState::new(),
        }
    }

    /// How long to sleep before the next attempt, or None when the bound is reached.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        if self.attempts >= self.policy.max_attempts.max(1)
            || self.started.elapsed() >= self.policy.max_elapsed
        {
            return None;
        }
        let exponent = (self.attempts - 1).min(20);
        let bound = self
            .policy
            .first_delay
            .saturating_mul(1 << exponent)
            .min(self.policy.max_delay);
        let bound_micros = u64::try_from(bound.as_micros()).unwrap_or(u64::MAX);
        let jitter = self.random.hash_one(self.attempts) % bound_micros.saturating_add(1);
        let delay = Duration::from_micros(jitter);
        if self.started.elapsed() + delay > self.policy.max_elapsed {
            return None;
        }
        self.attempts += 1;
        Some(delay)
    }
}

/// Whether `e` is a transient concurrency failure after which the batch can be applied again.
pub(crate) fn is_transient(e: &crate::Error) -> bool {
    let crate::Error::Database(sqlx::Error::Database(db)) = e else {
        return false;
    };
    let id = if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        ErrorId::MySql(my.number())
    } else if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        ErrorId::Postgres(pg.code())
    } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        ErrorId::Sqlite(db.code().and_then(|c| c.parse().ok()).unwrap_or(0))
    } else {
        return false;
    };
    id.is_transient()
}

/// What identifies a database error, per backend.
#[derive(Debug, Clone, Copy)]
enum ErrorId<'a> {
    /// MySQL/MariaDB/TiDB/OceanBase error number.
    MySql(u16),
    /// PostgreSQL SQLSTATE.
    Postgres(&'a str),
    /// SQLite extended result code.
    Sqlite(i32),
}

impl ErrorId<'_> {
    fn is_transient(self) -> bool {
        match self {
            // 1213 deadlock (InnoDB; also Galera's certification failure), 1205 lock wait
            // timeout, TiDB's 9007 write conflict, 8002 "can not retry select for update",
            // 8022 "transaction retry" and 8028 "information schema changed".
            ErrorId::MySql(n) => matches!(n, 1205 | 1213 | 8002 | 8022 | 8028 | 9007),
            // serialization_failure, deadlock_detected, lock_not_available (lock_timeout).
            ErrorId::Postgres(code) => matches!(code, "40001" | "40P01" | "55P03"),
            // SQLITE_BUSY and its extended codes (another process holds the write lock
            // longer than the busy timeout).
            ErrorId::Sqlite(code) => code & 0xff == 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_failures_are_transient_and_request_errors_are_not() {
        for n in [1213, 1205, 9007, 8002, 8022, 8028] {
            assert!(ErrorId::MySql(n).is_transient(), "{n}");
        }
        // duplicate key, data too long, syntax error, SIGNAL from a trigger, gone away
        for n in [1062, 1406, 1064, 1644, 2006] {
            assert!(!ErrorId::MySql(n).is_transient(), "{n}");
        }
        for code in ["40001", "40P01", "55P03"] {
            assert!(ErrorId::Postgres(code).is_transient(), "{code}");
        }
        // unique violation, raise_exception, admin shutdown, undefined table
        for code in ["23505", "P0001", "57P01", "42P01"] {
            assert!(!ErrorId::Postgres(code).is_transient(), "{code}");
        }
        assert!(ErrorId::Sqlite(5).is_transient());
        assert!(ErrorId::Sqlite(517).is_transient()); // SQLITE_BUSY_SNAPSHOT
        assert!(!ErrorId::Sqlite(19).is_transient()); // SQLITE_CONSTRAINT
        assert!(!ErrorId::Sqlite(1).is_transient());
    }

    #[test]
    fn other_errors_are_not_transient() {
        assert!(!is_transient(&crate::Error::Database(
            sqlx::Error::PoolTimedOut
        )));
        assert!(!is_transient(&crate::Error::NotFound { key: "/a".into() }));
    }

    #[test]
    fn backoff_stops_at_the_attempt_bound() {
        let policy = RetryPolicy {
            max_attempts: 4,
            max_elapsed: Duration::from_secs(3600),
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            retry_after: Duration::from_secs(1),
        };
        let mut backoff = Backoff::new(policy);
        let delays: Vec<Duration> = std::iter::from_fn(|| backoff.next_delay()).collect();
        assert_eq!(delays.len(), 3, "4 attempts = 3 retries");
        // Full jitter under a doubling bound capped at max_delay.
        for (delay, bound_ms) in delays.iter().zip([1, 2, 4]) {
            assert!(*delay <= Duration::from_millis(bound_ms), "{delay:?}");
        }
    }

    #[test]
    fn backoff_stops_at_the_time_bound() {
        let policy = RetryPolicy {
            max_attempts: u32::MAX,
            max_elapsed: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert_eq!(Backoff::new(policy).next_delay(), None);
    }
}
