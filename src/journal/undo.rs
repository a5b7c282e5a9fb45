//! What `hfmigrate undo` did, ticket by ticket, and the records it hands back to the import.
//!
//! An undo deletes the tickets a rehearsal created. Each deletion is recorded here in the
//! same transaction that turns its record back into "not yet created" (pending, no
//! HappyFox id, its conversation unposted), so a later `import` on this journal creates
//! it again and a stopped undo continues with what is left: nothing is deleted twice and
//! nothing is forgotten. A ticket that is skipped (its marker no longer matches) stays
//! created and is listed.
//!
//! The table is this module's own (created if missing), so the journal's versioned schema
//! is unchanged by it.

use rusqlite::params;
use serde::Serialize;

use super::{Journal, JournalError, RunInfo, now_ms};

/// The undo's table: one row per ticket an undo dealt with, the latest outcome.
const UNDO_TABLE: &str = "
CREATE TABLE IF NOT EXISTS undo_tickets (
    source_id   TEXT PRIMARY KEY,
    happyfox_id INTEGER NOT NULL,
    display_id  TEXT,
    outcome     TEXT NOT NULL,
    reason      TEXT,
    run         INTEGER NOT NULL,
    at          INTEGER NOT NULL
) WITHOUT ROWID;
";

/// A ticket the journal says it created, to be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTicket {
    /// Row id: pass the last one to [`Journal::created_tickets`] to page on.
    pub row: i64,
    pub source_id: String,
    pub happyfox_id: u64,
    pub display_id: String,
    /// The payload it was created with (holds its marker); `None` if the journal lost it.
    pub payload: Option<String>,
}

/// What an undo did with one ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UndoOutcome {
    /// Deleted by this undo.
    Deleted,
    /// Already absent from HappyFox (deleted by hand, or by an undo whose answer was lost).
    Gone,
    /// Left in HappyFox: it no longer carries the journal's marker.
    Skipped { reason: String },
    /// HappyFox refused the delete; the ticket stays created.
    Failed { reason: String },
}

impl UndoOutcome {
    fn as_str(&self) -> &'static str {
        match self {
            UndoOutcome::Deleted => "deleted",
            UndoOutcome::Gone => "gone",
            UndoOutcome::Skipped { .. } => "skipped",
            UndoOutcome::Failed { .. } => "failed",
        }
    }

    fn reason(&self) -> Option<&str> {
        match self {
            UndoOutcome::Skipped { reason } | UndoOutcome::Failed { reason } => Some(reason),
            UndoOutcome::Deleted | UndoOutcome::Gone => None,
        }
    }

    /// Whether the ticket no longer exists, so its record is "not yet created" again.
    fn removes(&self) -> bool {
        matches!(self, UndoOutcome::Deleted | UndoOutcome::Gone)
    }
}

impl Journal {
    /// Opens an existing journal for an undo (never creates one: an undo of nothing is a
    /// mistyped path). Takes the writer's lock like an import, and adds the undo's table.
    pub fn open_for_undo(path: &std::path::Path) -> Result<Journal, JournalError> {
        if !path.is_file() {
            return Err(JournalError::CannotOpen {
                path: path.display().to_string(),
                reason: "no such file; pass the --journal the import wrote".into(),
            });
        }
        // The fingerprints are only compared, never stored, unless changes are accepted,
        // which an undo never does.
        let journal = Journal::open(path, &RunInfo::new("", vec![], ""))?;
        if journal.meta("target_url")?.is_none() {
            return Err(JournalError::CannotOpen {
                path: path.display().to_string(),
                reason: "it records no import; pass the --journal the import wrote".into(),
            });
        }
        journal.conn.execute_batch(UNDO_TABLE)?;
        Ok(journal)
    }

    /// The account URL the journal's tickets were created in.
    pub fn target_url(&self) -> Result<String, JournalError> {
        Ok(self.meta("target_url")?.unwrap_or_default())
    }

    /// Up to `limit` created tickets after row `after` (0 to start), in input order.
    pub fn created_tickets(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<CreatedTicket>, JournalError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.id, r.source_id, r.happyfox_id, coalesce(r.display_id, ''), p.payload
             FROM records r LEFT JOIN payloads p ON p.record_id = r.id
             WHERE r.state = 'created' AND r.happyfox_id IS NOT NULL AND r.id > ?1
             ORDER BY r.id LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(
                params![after, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok(CreatedTicket {
                        row: r.get(0)?,
                        source_id: r.get(1)?,
                        happyfox_id: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                        display_id: r.get(3)?,
                        payload: r.get(4)?,
                    })
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// How many tickets the journal says it created.
    pub fn created_count(&self) -> Result<u64, JournalError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM records WHERE state = 'created' AND happyfox_id IS NOT NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Records in a batch whose answer was never seen: they may exist in HappyFox, but the
    /// journal has no ticket id to delete.
    pub fn in_flight_records(&self) -> Result<Vec<String>, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT source_id FROM records WHERE state = 'sending' ORDER BY id")?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    /// Contacts the import created or looked up for conversation replies (email, id):
    /// the API cannot delete contacts, so an undo can only list them.
    pub fn journaled_contacts(&self) -> Result<Vec<(String, u64)>, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT email, id FROM contacts ORDER BY email")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Records what the undo did with one ticket. When the ticket no longer exists, its
    /// record becomes "not yet created" in the same transaction: pending with its stored
    /// payload, no HappyFox id, every message of its conversation unposted and its
    /// attachment failures cleared (they belonged to the deleted ticket).
    pub fn record_undo(
        &mut self,
        ticket: &CreatedTicket,
        outcome: &UndoOutcome,
    ) -> Result<(), JournalError> {
        let now = now_ms();
        let id = i64::try_from(ticket.happyfox_id).unwrap_or(i64::MAX);
        let tx = self.conn.transaction()?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO undo_tickets (source_id, happyfox_id, display_id, outcome, reason, run, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            ticket.source_id,
            id,
            ticket.display_id,
            outcome.as_str(),
            outcome.reason(),
            self.run,
            now
        ])?;
        if outcome.removes() {
            tx.prepare_cached(
                "UPDATE records SET state = 'pending', happyfox_id = NULL, display_id = NULL,
                    batch = NULL, stage = NULL, last_error = NULL, attempts = 0, updated_at = ?3
                 WHERE source_id = ?1 AND state = 'created' AND happyfox_id = ?2",
            )?
            .execute(params![ticket.source_id, id, now])?;
            tx.prepare_cached(
                "UPDATE messages SET state = 'pending', happyfox_update_id = NULL,
                    last_error = NULL, attempts = 0, updated_at = ?2
                 WHERE ticket_source_id = ?1",
            )?
            .execute(params![ticket.source_id, now])?;
            tx.prepare_cached("DELETE FROM attachment_failures WHERE ticket_source_id = ?1")?
                .execute([&ticket.source_id])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Outcomes recorded by undo runs, by outcome (`deleted`, `gone`, `skipped`, `failed`).
    pub fn undo_counts(&self) -> Result<Vec<(String, u64)>, JournalError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT outcome, count(*) FROM undo_tickets GROUP BY outcome ORDER BY outcome",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::NewMessage;
    use crate::journal::test_support::{created, info, pending};

    #[test]
    fn an_undone_ticket_is_not_yet_created_again_and_a_skipped_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.db");
        {
            let mut j = Journal::open(&path, &info()).unwrap();
            j.add_messages(&[(
                "ZD-0".into(),
                vec![NewMessage {
                    position: 1,
                    key: "id:1".into(),
                    content: String::new(),
                    kind: "staff_reply".into(),
                    author: String::new(),
                    author_name: String::new(),
                    payload: "{}".into(),
                }],
            )])
            .unwrap();
            j.upsert_pending(&pending(2)).unwrap();
            let b = j.begin_batch(&["ZD-0", "ZD-1"]).unwrap();
            j.finish_batch(b, &[created("ZD-0", 7), created("ZD-1", 8)])
                .unwrap();
        }
        let e = Journal::open_for_undo(&dir.path().join("nope.db")).unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
        assert!(!dir.path().join("nope.db").exists(), "never created");

        let mut j = Journal::open_for_undo(&path).unwrap();
        assert_eq!(j.created_count().unwrap(), 2);
        let tickets = j.created_tickets(0, 10).unwrap();
        assert_eq!(tickets.len(), 2);
        assert!(tickets[0].payload.is_some());
        j.record_undo(&tickets[0], &UndoOutcome::Deleted).unwrap();
        j.record_undo(
            &tickets[1],
            &UndoOutcome::Skipped {
                reason: "marker changed".into(),
            },
        )
        .unwrap();
        let s = j.summary().unwrap();
        assert_eq!((s.records.pending, s.records.created), (1, 1), "{s:?}");
        assert_eq!(s.messages.pending, 1, "{s:?}");
        let left = j.created_tickets(0, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].source_id, "ZD-1");
        assert_eq!(j.next_pending(0, 10).unwrap()[0].source_id, "ZD-0");
        assert_eq!(
            j.undo_counts().unwrap(),
            vec![("deleted".into(), 1), ("skipped".into(), 1)]
        );
    }
}
