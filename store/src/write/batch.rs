//! Cutting the writer's queue into batches: how many writes, and how many bytes, one
//! transaction (one commit, one fsync) may carry. Pure; the writer task does the queueing.

/// The bound of one batch (`Config::write_batch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimit {
    /// Most writes committed together (at least 1; 1 turns group commit off).
    pub max_writes: usize,
    /// Most bytes of keys and values committed together. A write larger than this on its own
    /// still goes through, alone in its batch.
    pub max_bytes: usize,
}

impl Default for BatchLimit {
    fn default() -> Self {
        BatchLimit {
            max_writes: 128,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

impl BatchLimit {
    /// Whether a write of `size` bytes joins a batch that holds `writes` writes of `bytes`
    /// bytes so far. The first write of a batch always joins.
    pub(crate) fn admits(&self, writes: usize, bytes: usize, size: usize) -> bool {
        writes == 0 || (writes < self.max_writes && bytes.saturating_add(size) <= self.max_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: BatchLimit = BatchLimit {
        max_writes: 3,
        max_bytes: 100,
    };

    #[test]
    fn the_first_write_always_joins_even_when_larger_than_the_bound() {
        assert!(LIMIT.admits(0, 0, 1_000));
        assert!(
            BatchLimit {
                max_writes: 0,
                max_bytes: 0
            }
            .admits(0, 0, 1)
        );
    }

    #[test]
    fn a_batch_stops_at_its_count_or_its_bytes() {
        assert!(LIMIT.admits(2, 10, 10));
        assert!(!LIMIT.admits(3, 10, 10), "count");
        assert!(LIMIT.admits(1, 60, 40), "exactly the bound");
        assert!(!LIMIT.admits(1, 60, 41), "bytes");
        assert!(!LIMIT.admits(1, usize::MAX, 1), "no overflow");
    }

    #[test]
    fn one_write_per_batch_turns_group_commit_off() {
        let off = BatchLimit {
            max_writes: 1,
            max_bytes: usize::MAX,
        };
        assert!(off.admits(0, 0, 10));
        assert!(!off.admits(1, 10, 10));
    }
}
