//! Deciding a batch: given the newest row of every key it touches and the first revision
//! reserved for it, which rows to append and what each request gets back. Pure; both ways of
//! talking to the database (`stepwise`, `packed`) share it.

use std::collections::HashMap;

use crate::row::LogRow;
use crate::{Error, KeyValue, Result};

/// What a request wants done to its key.
#[derive(Debug)]
pub(crate) enum Op {
    Create {
        value: Vec<u8>,
        lease: i64,
    },
    Update {
        value: Vec<u8>,
        expected: i64,
        lease: i64,
    },
    Delete {
        expected: Option<i64>,
    },
}

/// A row to append.
pub(super) struct NewRow {
    pub kv: KeyValue,
    pub created: bool,
    pub deleted: bool,
    pub prev_revision: i64,
    pub old_value: Option<Vec<u8>>,
}

/// The rows a batch appends, at `first`, `first + 1`, …, and one outcome per request, in order.
pub(super) struct Plan {
    pub rows: Vec<NewRow>,
    pub outcomes: Vec<Result<KeyValue>>,
}

impl Plan {
    /// The last revision the plan uses (`first - 1` when it appends nothing).
    pub(super) fn last_revision(&self, first: i64) -> i64 {
        first - 1 + i64::try_from(self.rows.len()).unwrap_or(i64::MAX)
    }
}

/// Decides `requests` (key, op) in order; a request sees the effect of the ones before it.
pub(super) fn plan<'a>(
    requests: impl Iterator<Item = (&'a str, &'a Op)>,
    mut latest: HashMap<String, LogRow>,
    first: i64,
) -> Plan {
    let mut next = first;
    let mut rows = Vec::new();
    let mut outcomes = Vec::new();
    for (key, op) in requests {
        match decide(key, op, latest.get(key), next) {
            Ok(row) => {
                next += 1;
                outcomes.push(Ok(row.kv.clone()));
                latest.insert(key.to_owned(), row.as_log_row());
                rows.push(row);
            }
            Err(e) => outcomes.push(Err(e)),
        }
    }
    Plan { rows, outcomes }
}

/// The row `op` appends at `revision` given the key's newest row, or why it must not.
fn decide(key: &str, op: &Op, current: Option<&LogRow>, revision: i64) -> Result<NewRow> {
    let live = current.filter(|row| !row.deleted);
    let check = |expected: Option<i64>| -> Result<&LogRow> {
        let Some(live) = live else {
            return Err(Error::NotFound {
                key: key.to_owned(),
            });
        };
        match expected {
            Some(expected) if expected != live.revision => Err(Error::Conflict {
                key: key.to_owned(),
                expected,
                current: Some(Box::new(live.kv())),
            }),
            _ => Ok(live),
        }
    };
    match op {
        Op::Create { value, lease } => {
            if live.is_some() {
                return Err(Error::AlreadyExists {
                    key: key.to_owned(),
                });
            }
            Ok(NewRow {
                kv: KeyValue {
                    key: key.to_owned(),
                    value: value.clone(),
                    create_revision: revision,
                    mod_revision: revision,
                    lease: *lease,
                    stale: false,
                },
                created: true,
                deleted: false,
                prev_revision: current.map_or(0, |row| row.revision),
                old_value: None,
            })
        }
        Op::Update {
            value,
            expected,
            lease,
        } => {
            let live = check(Some(*expected))?;
            Ok(NewRow {
                kv: KeyValue {
                    key: key.to_owned(),
                    value: value.clone(),
                    create_revision: live.create_revision,
                    mod_revision: revision,
                    lease: *lease,
                    stale: false,
                },
                created: false,
                deleted: false,
                prev_revision: live.revision,
                old_value: Some(live.value.clone()),
            })
        }
        Op::Delete { expected } => {
            let live = check(*expected)?;
            // A tombstone keeps the last value (the Deleted event carries it), no old_value.
            Ok(NewRow {
                kv: KeyValue {
                    key: key.to_owned(),
                    value: live.value.clone(),
                    create_revision: live.create_revision,
                    mod_revision: revision,
                    lease: live.lease,
                    stale: false,
                },
                created: false,
                deleted: true,
                prev_revision: live.revision,
                old_value: None,
            })
        }
    }
}

impl NewRow {
    /// The row as the next request of the batch will read it.
    fn as_log_row(&self) -> LogRow {
        LogRow {
            revision: self.kv.mod_revision,
            name: self.kv.key.clone(),
            created: self.created,
            deleted: self.deleted,
            create_revision: self.kv.create_revision,
            prev_revision: self.prev_revision,
            lease: self.kv.lease,
            value: self.kv.value.clone(),
            old_value: self.old_value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(value: &[u8]) -> Op {
        Op::Create {
            value: value.to_vec(),
            lease: 0,
        }
    }

    #[test]
    fn a_request_sees_the_requests_before_it_in_its_batch() {
        let update = Op::Update {
            value: b"b".to_vec(),
            expected: 11,
            lease: 0,
        };
        let stale = Op::Update {
            value: b"c".to_vec(),
            expected: 11,
            lease: 0,
        };
        let delete = Op::Delete { expected: None };
        let requests = [
            ("/k", &create(b"a")),
            ("/k", &create(b"again")),
            ("/k", &update),
            ("/k", &stale),
            ("/k", &delete),
            ("/gone", &delete),
        ];
        let plan = plan(requests.into_iter(), HashMap::new(), 11);
        assert_eq!(plan.rows.len(), 3);
        assert_eq!(plan.last_revision(11), 13);
        let revs: Vec<i64> = plan.rows.iter().map(|r| r.kv.mod_revision).collect();
        assert_eq!(revs, [11, 12, 13]);
        assert_eq!(plan.rows[1].prev_revision, 11);
        assert_eq!(plan.rows[1].old_value.as_deref(), Some(&b"a"[..]));
        assert_eq!(plan.rows[2].kv.create_revision, 11);
        assert!(plan.rows[2].deleted);
        assert!(matches!(plan.outcomes[1], Err(Error::AlreadyExists { .. })));
        assert!(matches!(
            &plan.outcomes[3],
            Err(Error::Conflict { expected: 11, current: Some(kv), .. }) if kv.mod_revision == 12
        ));
        assert!(matches!(plan.outcomes[5], Err(Error::NotFound { .. })));
    }

    #[test]
    fn a_plan_without_rows_uses_no_revision() {
        let delete = Op::Delete { expected: None };
        let plan = plan([("/absent", &delete)].into_iter(), HashMap::new(), 5);
        assert!(plan.rows.is_empty());
        assert_eq!(plan.last_revision(5), 4);
    }
}
