//! What a newer export of the same migration changes, as the journal stores it: a
//! ticket's known messages (by entry key), the messages a delta adds, what it reports
//! instead of applying, and what each run did.
//!
//! The decisions (which entry is new, which was removed, what state changed) are the
//! import's (`import::delta`); this module only reads and writes them, each chunk of
//! tickets in one transaction so a killed run leaves either all of a ticket's delta or
//! none of it.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Journal, JournalError, NewMessage, now_ms};

/// The note naming the run whose enqueue is in progress (see [`Journal::add_run_counts`]).
const OPEN_ENQUEUE: &str = "enqueue_open";

/// A message the journal already holds for a ticket, in any state.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownMessage {
    pub id: i64,
    pub position: i64,
    /// `None` for rows written before entries had keys (schema 3 and older).
    pub key: Option<String>,
    pub content: Option<String>,
    pub kind: String,
    pub author: String,
    pub payload: String,
    pub state: String,
}

/// A ticket as the journal knows it when a newer export arrives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownTicket {
    /// The record's state and stored create payload; `None` when the journal has not
    /// seen the record.
    pub record: Option<(String, String)>,
    pub messages: Vec<KnownMessage>,
}

impl KnownTicket {
    /// Whether HappyFox may hold the ticket (created, or its create's outcome unknown):
    /// then what was journaled may have been posted and is never replaced.
    pub fn may_exist(&self) -> bool {
        matches!(
            self.record.as_ref().map(|(s, _)| s.as_str()),
            Some("created" | "sending")
        )
    }
}

/// Something a newer export changed that the import reports instead of applying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// An entry the journal holds is no longer in the export: HappyFox keeps it.
    Removed,
    /// An entry with a known id says something else now: HappyFox keeps what was posted.
    Changed,
    /// A created record the export now skips (e.g. Zendesk `status: deleted`): the
    /// ticket stays in HappyFox.
    Deleted,
    /// The final state changed but no agent can sign the update that would carry it.
    StateNotApplied,
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FindingKind::Removed => "removed in the source",
            FindingKind::Changed => "changed in the source",
            FindingKind::Deleted => "deleted in the source",
            FindingKind::StateNotApplied => "state not applied",
        })
    }
}

impl FindingKind {
    /// Whether HappyFox ends up differing from the export in what it shows: an edited
    /// entry or an unapplied state does; a removed entry or deleted record only means
    /// HappyFox keeps more than the export has.
    pub fn leaves_a_difference(self) -> bool {
        matches!(self, FindingKind::Changed | FindingKind::StateNotApplied)
    }

    fn name(self) -> &'static str {
        match self {
            FindingKind::Removed => "removed",
            FindingKind::Changed => "changed",
            FindingKind::Deleted => "deleted",
            FindingKind::StateNotApplied => "state_not_applied",
        }
    }

    fn parse(s: &str) -> Option<FindingKind> {
        Some(match s {
            "removed" => FindingKind::Removed,
            "changed" => FindingKind::Changed,
            "deleted" => FindingKind::Deleted,
            "state_not_applied" => FindingKind::StateNotApplied,
            _ => return None,
        })
    }
}

/// One reported change, located by ticket and entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub ticket: String,
    /// The entry's key, or `-` for the record itself.
    pub entry: String,
    pub kind: FindingKind,
    pub detail: String,
}

/// What to write for one ticket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketDelta {
    /// Drop every message row first: the ticket was never created, so none was posted,
    /// and the newer export's conversation replaces the old one.
    pub replace: bool,
    /// Rows matched by content whose key is now known: (row id, key, content).
    pub rekey: Vec<(i64, String, String)>,
    pub insert: Vec<NewMessage>,
    pub findings: Vec<Finding>,
}

/// What one run did, for `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    /// 0 for the first run that enqueued the export, then 1, 2, … for each newer export.
    pub delta: u64,
    pub new_tickets: u64,
    pub new_entries: u64,
    /// New entries older than an entry already posted on their ticket: posted last,
    /// with their original time in the header.
    pub out_of_order: u64,
    pub state_updates: u64,
    pub removed: u64,
    pub changed: u64,
    pub deleted: u64,
}

/// A run of the journal with what it enqueued.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunHistory {
    pub run: i64,
    pub started_at: i64,
    pub outcome: Option<String>,
    pub counts: Option<RunCounts>,
}

impl Journal {
    /// A journal of an older build opened read-only (`status`) has not been migrated.
    fn has_delta_tables(&self) -> Result<bool, JournalError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'run_counts'",
            [],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// The record and messages the journal holds for `source_id`.
    pub fn known_ticket(&self, source_id: &str) -> Result<KnownTicket, JournalError> {
        let record = self
            .conn
            .prepare_cached(
                "SELECT r.state, coalesce(p.payload, '{}') FROM records r
                 LEFT JOIN payloads p ON p.record_id = r.id WHERE r.source_id = ?1",
            )?
            .query_row([source_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let mut st = self.conn.prepare_cached(
            "SELECT id, position, entry_key, content_hash, kind, coalesce(author, ''),
                    coalesce(payload, '{}'), state
             FROM messages WHERE ticket_source_id = ?1 ORDER BY position",
        )?;
        let messages = st
            .query_map([source_id], |r| {
                Ok(KnownMessage {
                    id: r.get(0)?,
                    position: r.get(1)?,
                    key: r.get(2)?,
                    content: r.get(3)?,
                    kind: r.get(4)?,
                    author: r.get(5)?,
                    payload: r.get(6)?,
                    state: r.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(KnownTicket { record, messages })
    }

    /// Writes the deltas of a chunk of tickets in one transaction.
    pub fn apply_deltas(&mut self, deltas: &[(String, TicketDelta)]) -> Result<(), JournalError> {
        let now = now_ms();
        let run = self.run;
        let tx = self.conn.savepoint()?;
        {
            let mut clear = tx.prepare_cached(
                "DELETE FROM messages WHERE ticket_source_id = ?1 AND state IN ('pending', 'failed')",
            )?;
            let mut rekey = tx.prepare_cached(
                "UPDATE messages SET entry_key = ?2, content_hash = ?3 WHERE id = ?1",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO messages
                   (ticket_source_id, position, kind, author, author_name, payload, state, updated_at,
                    entry_key, content_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9)",
            )?;
            let mut find = tx.prepare_cached(
                "INSERT OR REPLACE INTO delta_findings
                   (ticket_source_id, entry_key, finding, detail, run) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (source_id, d) in deltas {
                if d.replace {
                    clear.execute([source_id])?;
                }
                for (id, key, content) in &d.rekey {
                    rekey.execute(params![id, key, content])?;
                }
                for m in &d.insert {
                    insert.execute(params![
                        source_id,
                        m.position,
                        m.kind,
                        m.author,
                        m.author_name,
                        m.payload,
                        now,
                        m.key,
                        m.content
                    ])?;
                }
                for f in &d.findings {
                    find.execute(params![source_id, f.entry, f.kind.name(), f.detail, run])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Adds a chunk's counts to those of the enqueue in progress. Called inside the
    /// chunk's own [`Journal::atomically`], so the counts say exactly what the journal
    /// holds however the run ends: a run killed mid-enqueue leaves its counts so far, and
    /// the next run that enqueues adds to them instead of starting a delta of its own.
    pub(crate) fn add_run_counts(&mut self, chunk: &RunCounts) -> Result<(), JournalError> {
        let run = self.counting_run()?;
        self.conn
            .prepare_cached(
                "INSERT INTO run_counts
                   (run, delta, new_tickets, new_entries, out_of_order, state_updates, removed, changed, deleted)
                 VALUES (?1, (SELECT count(*) FROM run_counts WHERE run <> ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (run) DO UPDATE SET
                   new_tickets = new_tickets + excluded.new_tickets,
                   new_entries = new_entries + excluded.new_entries,
                   out_of_order = out_of_order + excluded.out_of_order,
                   state_updates = state_updates + excluded.state_updates,
                   removed = removed + excluded.removed,
                   changed = changed + excluded.changed,
                   deleted = deleted + excluded.deleted",
            )?
            .execute(params![
                run,
                chunk.new_tickets as i64,
                chunk.new_entries as i64,
                chunk.out_of_order as i64,
                chunk.state_updates as i64,
                chunk.removed as i64,
                chunk.changed as i64,
                chunk.deleted as i64
            ])?;
        Ok(())
    }

    /// Ends the enqueue in progress: what it enqueued in all, with its delta number (one
    /// more than the runs before it that enqueued).
    pub(crate) fn finish_run_counts(&mut self) -> Result<RunCounts, JournalError> {
        self.add_run_counts(&RunCounts::default())?;
        let run = self.counting_run()?;
        self.clear_note(OPEN_ENQUEUE)?;
        Ok(self.conn.query_row(
            "SELECT delta, new_tickets, new_entries, out_of_order, state_updates, removed, changed, deleted
             FROM run_counts WHERE run = ?1",
            [run],
            |r| counts_at(r, 0),
        )?)
    }

    /// Whether an enqueue began and never finished (its run was killed): what it wrote
    /// stands, but the journal does not hold the whole export it was reading.
    pub(crate) fn enqueue_unfinished(&self) -> Result<bool, JournalError> {
        Ok(self.note(OPEN_ENQUEUE)?.is_some())
    }

    /// The run whose counts an enqueue adds to: the unfinished one if a run died in its
    /// enqueue, else this one (noted, so that a kill from here on is seen by the next).
    fn counting_run(&mut self) -> Result<i64, JournalError> {
        if let Some(run) = self.note(OPEN_ENQUEUE)?.and_then(|r| r.parse().ok()) {
            return Ok(run);
        }
        let run = self.run;
        self.set_note(OPEN_ENQUEUE, &run.to_string())?;
        Ok(run)
    }

    /// Every run of the journal, oldest first, with what it enqueued (`None` for a run
    /// that only resumed sending).
    pub fn run_history(&self) -> Result<Vec<RunHistory>, JournalError> {
        if !self.has_delta_tables()? {
            return Ok(vec![]);
        }
        let mut st = self.conn.prepare_cached(
            "SELECT r.id, r.started_at, r.outcome, c.delta, c.new_tickets, c.new_entries,
                    c.out_of_order, c.state_updates, c.removed, c.changed, c.deleted
             FROM runs r LEFT JOIN run_counts c ON c.run = r.id ORDER BY r.id",
        )?;
        let rows = st
            .query_map([], |r| {
                let counts = match r.get::<_, Option<i64>>(3)? {
                    Some(_) => Some(counts_at(r, 3)?),
                    None => None,
                };
                Ok(RunHistory {
                    run: r.get(0)?,
                    started_at: r.get(1)?,
                    outcome: r.get(2)?,
                    counts,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Everything newer exports changed that was reported instead of applied.
    pub fn delta_findings(&self) -> Result<Vec<Finding>, JournalError> {
        if !self.has_delta_tables()? {
            return Ok(vec![]);
        }
        let mut st = self.conn.prepare_cached(
            "SELECT ticket_source_id, entry_key, finding, detail FROM delta_findings
             ORDER BY ticket_source_id, entry_key",
        )?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows
            .into_iter()
            .filter_map(|(ticket, entry, kind, detail)| {
                Some(Finding {
                    ticket,
                    entry,
                    kind: FindingKind::parse(&kind)?,
                    detail,
                })
            })
            .collect())
    }
}

/// The `run_counts` columns (`delta` to `deleted`, in the table's order) of a row,
/// starting at column `at`.
fn counts_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<RunCounts> {
    let n = |i: usize| -> rusqlite::Result<u64> {
        Ok(r.get::<_, Option<i64>>(at + i)?.unwrap_or_default() as u64)
    };
    Ok(RunCounts {
        delta: n(0)?,
        new_tickets: n(1)?,
        new_entries: n(2)?,
        out_of_order: n(3)?,
        state_updates: n(4)?,
        removed: n(5)?,
        changed: n(6)?,
        deleted: n(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::test_support::{info, pending};

    fn counts(new_tickets: u64, new_entries: u64) -> RunCounts {
        RunCounts {
            new_tickets,
            new_entries,
            ..RunCounts::default()
        }
    }

    /// A run killed between two chunks of its enqueue keeps the counts of what it wrote,
    /// and the next run's enqueue completes the same delta instead of starting another.
    #[test]
    fn a_kill_mid_enqueue_keeps_its_counts_and_the_next_run_completes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.db");
        {
            let mut full = Journal::open(&path, &info()).unwrap();
            full.add_run_counts(&counts(3, 0)).unwrap();
            assert_eq!(full.finish_run_counts().unwrap(), counts(3, 0));
        }
        let killed_run = {
            let mut killed = Journal::open(&path, &info()).unwrap();
            killed
                .atomically(|j| j.add_run_counts(&counts(0, 2)))
                .unwrap();
            killed.run
            // Dropped here without finishing, as a SIGKILL would leave it.
        };
        let mut next = Journal::open(&path, &info()).unwrap();
        assert!(next.enqueue_unfinished().unwrap());
        next.add_run_counts(&counts(1, 0)).unwrap();
        let done = next.finish_run_counts().unwrap();
        assert_eq!(
            done,
            RunCounts {
                delta: 1,
                ..counts(1, 2)
            }
        );
        assert!(!next.enqueue_unfinished().unwrap());
        let history = next.run_history().unwrap();
        let of = |run: i64| history.iter().find(|h| h.run == run).unwrap().counts;
        assert_eq!(of(killed_run), Some(done));
        assert_eq!(
            of(next.run),
            None,
            "the finishing run added to the killed one's"
        );
    }

    /// Nothing of a failed atomic block stays: not its records, not its counts.
    #[test]
    fn a_failed_atomic_block_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("run.db"), &info()).unwrap();
        let r: Result<(), JournalError> = j.atomically(|j| {
            j.upsert_pending(&pending(2))?;
            j.add_run_counts(&counts(2, 0))?;
            Err(JournalError::CannotOpen {
                path: "x".into(),
                reason: "stop".into(),
            })
        });
        assert!(r.is_err());
        assert_eq!(j.summary().unwrap().records.pending, 0);
        assert!(!j.enqueue_unfinished().unwrap());
        assert!(j.run_history().unwrap().iter().all(|h| h.counts.is_none()));
        // And the journal takes the next block as usual.
        j.atomically(|j| j.upsert_pending(&pending(2))).unwrap();
        assert_eq!(j.summary().unwrap().records.pending, 2);
    }
}
