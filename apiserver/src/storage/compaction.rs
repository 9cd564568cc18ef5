//! Periodic compaction of the store's history, as kube-apiserver compacts etcd
//! (`--etcd-compaction-interval`, default 5 minutes, 0 = off).
//!
//! Every interval each replica runs one round: a compare-and-swap on the key
//! [`COMPACT_REV_KEY`] against the version of it the replica saw in its previous round. The
//! replica whose swap succeeds compacts the store to the revision it saw one round earlier; the
//! others learn the key's new version and the current revision and try again next round. So
//! among replicas sharing a database one compacts per interval, and history younger than one
//! interval always survives (a watcher that is at most one interval behind can resume). This is
//! kube-apiserver's algorithm (`storage/etcd3/compact.go`) over the store's own compare-and-swap:
//! no lease table and no database-specific lock is needed.

use std::time::Duration;

use cellfed_store::{Error as StoreError, Store};

/// The key replicas take turns on (kube-apiserver's `compact_rev_key`); outside `/registry/`,
/// so no resource lists or watches it.
pub const COMPACT_REV_KEY: &str = "compact_rev_key";

/// What a replica remembers between rounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// The mod revision of [`COMPACT_REV_KEY`] last seen (0: absent).
    pub version: i64,
    /// The store revision seen in the previous round (0: none yet): the next compaction target.
    pub revision: i64,
}

/// What one round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This replica won the round and compacted to this revision (0: the first round, nothing
    /// to compact yet).
    Compacted(i64),
    /// Another replica won the round.
    Skipped,
}

/// One round: compare-and-swap the key, then compact if this replica won.
pub async fn round(store: &Store, last: Round) -> Result<(Round, Outcome), StoreError> {
    let value = last.revision.to_string().into_bytes();
    let swapped = if last.version == 0 {
        store.create(COMPACT_REV_KEY, value, 0).await
    } else {
        store.update(COMPACT_REV_KEY, value, last.version, 0).await
    };
    match swapped {
        Ok(kv) => {
            // Our write is the newest revision: compact to the one seen a round ago.
            let next = Round {
                version: kv.mod_revision,
                revision: kv.mod_revision,
            };
            if last.revision > 0 {
                store.compact(last.revision).await?;
                tracing::info!(revision = last.revision, "store history compacted");
            }
            Ok((next, Outcome::Compacted(last.revision)))
        }
        Err(StoreError::Conflict { current, .. }) => {
            let version = current.map_or(0, |kv| kv.mod_revision);
            let revision = store.current_revision().await?;
            Ok((Round { version, revision }, Outcome::Skipped))
        }
        Err(StoreError::AlreadyExists { .. } | StoreError::NotFound { .. }) => {
            let version = store
                .get(COMPACT_REV_KEY, None)
                .await?
                .map_or(0, |kv| kv.mod_revision);
            let revision = store.current_revision().await?;
            Ok((Round { version, revision }, Outcome::Skipped))
        }
        Err(e) => Err(e),
    }
}

/// Runs a round every `interval` until the task is dropped; zero turns compaction off.
pub async fn run(store: Store, interval: Duration) {
    if interval.is_zero() {
        return;
    }
    let mut last = Round::default();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match round(&store, last).await {
            Ok((next, outcome)) => {
                tracing::debug!(?outcome, ?next, "compaction round");
                last = next;
            }
            // Keep `last`: the next round retries the same swap.
            Err(e) => tracing::warn!(error = %e, "store compaction failed"),
        }
    }
}
