//! The statements of the store, rendered once per `Store` for its backend and table prefix.

use crate::dialect::Backend;

/// Columns of a full log row, in the order [`crate::row::LogRow::from_any`] reads them.
pub(crate) const ROW_COLUMNS: &str =
    "revision, name, created, deleted, create_revision, prev_revision, lease, value, old_value";

/// [`ROW_COLUMNS`] of the table aliased `l`.
pub(crate) const L_ROW_COLUMNS: &str = "l.revision, l.name, l.created, l.deleted, l.create_revision, \
    l.prev_revision, l.lease, l.value, l.old_value";

/// Rendered statements; `?` already rewritten for the backend.
#[derive(Debug)]
pub(crate) struct Sql {
    pub backend: Backend,
    pub log: String,
    /// The counter table.
    pub meta_table: String,
    /// Add to the counter row (taking the writers' lock) and return the new revision.
    pub bump: String,
    /// Store a new current revision in the locked counter row.
    pub set_revision: String,
    /// `(revision, compacted)` of the counter row.
    pub meta: String,
    /// Newest row of one key.
    pub latest: String,
    /// Newest row of one key at or below a revision.
    pub latest_at: String,
    /// Rows after a revision, in order (the watch poller).
    pub poll: String,
    /// Raise the compacted revision if it is lower and not beyond the current one.
    pub set_compacted: String,
    /// Revisions a compaction up to a revision may delete, in order, after a cursor.
    pub compactable: String,
}

impl Sql {
    pub(crate) fn new(backend: Backend, prefix: &str) -> Sql {
        let log = format!("{prefix}_log");
        let meta = format!("{prefix}_meta");
        let b = |s: String| backend.sql(&s);
        Sql {
            backend,
            bump: backend.bump_sql(&meta),
            set_revision: b(format!("UPDATE {meta} SET revision = ? WHERE id = 1")),
            meta: format!("SELECT revision, compacted FROM {meta} WHERE id = 1"),
            latest: b(format!(
                "SELECT {ROW_COLUMNS} FROM {log} WHERE name = ? ORDER BY revision DESC LIMIT 1"
            )),
            latest_at: b(format!(
                "SELECT {ROW_COLUMNS} FROM {log} WHERE name = ? AND revision <= ? \
                 ORDER BY revision DESC LIMIT 1"
            )),
            poll: b(format!(
                "SELECT {ROW_COLUMNS} FROM {log} WHERE revision > ? ORDER BY revision LIMIT ?"
            )),
            set_compacted: b(format!(
                "UPDATE {meta} SET compacted = ? WHERE id = 1 AND compacted < ? AND revision >= ?"
            )),
            compactable: b(format!(
                "SELECT l.revision FROM {log} l WHERE l.revision > ? AND l.revision <= ? \
                 AND (l.deleted = 1 OR EXISTS (SELECT 1 FROM {log} n WHERE n.name = l.name \
                 AND n.revision > l.revision AND n.revision <= ?)) \
                 ORDER BY l.revision LIMIT ?"
            )),
            log,
            meta_table: meta,
        }
    }

    /// `WHERE` conditions selecting keys under `prefix` (and strictly after `start_after`),
    /// with their bind values in order. Uses ranges, not LIKE, so no escaping and the
    /// `(name, revision)` index serves them.
    pub(crate) fn key_range(
        prefix: &str,
        start_after: Option<&str>,
        column: &str,
    ) -> (String, Vec<String>) {
        let mut conds = Vec::new();
        let mut binds = Vec::new();
        if !prefix.is_empty() {
            conds.push(format!("{column} >= ?"));
            binds.push(prefix.to_owned());
        }
        if let Some(end) = crate::dialect::prefix_end(prefix) {
            conds.push(format!("{column} < ?"));
            binds.push(end);
        }
        if let Some(after) = start_after {
            conds.push(format!("{column} > ?"));
            binds.push(after.to_owned());
        }
        if conds.is_empty() {
            conds.push("1 = 1".to_owned());
        }
        (conds.join(" AND "), binds)
    }

    /// Live keys under a range at a revision: the newest row per key at or below the revision
    /// (`?` after the range binds), unless it is a tombstone. `select` is what to return.
    pub(crate) fn live_at(&self, range: &str, select: &str, tail: &str) -> String {
        let log = &self.log;
        self.backend.sql(&format!(
            "SELECT {select} FROM {log} l JOIN \
             (SELECT name, MAX(revision) AS mr FROM {log} WHERE {range} AND revision <= ? \
              GROUP BY name) m ON l.revision = m.mr \
             WHERE l.deleted = 0 {tail}"
        ))
    }

    /// Rows under a range in `(after, upto]`, in order (a watcher's catch-up).
    pub(crate) fn range_rows(&self, range: &str) -> String {
        let log = &self.log;
        self.backend.sql(&format!(
            "SELECT {ROW_COLUMNS} FROM {log} WHERE {range} AND revision > ? AND revision <= ? \
             ORDER BY revision LIMIT ?"
        ))
    }

    /// Append `n` rows.
    pub(crate) fn insert_rows(&self, n: usize) -> String {
        let log = &self.log;
        let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";
        self.backend.sql(&format!(
            "INSERT INTO {log} ({ROW_COLUMNS}) VALUES {}",
            vec![row; n].join(", ")
        ))
    }

    /// The newest row of each of `n` keys.
    pub(crate) fn latest_of(&self, n: usize) -> String {
        let log = &self.log;
        self.backend.sql(&format!(
            "SELECT {L_ROW_COLUMNS} FROM {log} l JOIN \
             (SELECT name, MAX(revision) AS mr FROM {log} WHERE name IN ({}) GROUP BY name) m \
             ON l.revision = m.mr",
            Backend::placeholders(n)
        ))
    }

    /// Delete these revisions.
    pub(crate) fn delete_revisions(&self, n: usize) -> String {
        let log = &self.log;
        self.backend.sql(&format!(
            "DELETE FROM {log} WHERE revision IN ({})",
            Backend::placeholders(n)
        ))
    }
}
