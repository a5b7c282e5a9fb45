//! What `hfmigrate verify` has already compared, so that a stopped verify continues where
//! it stopped instead of reading a 100k-ticket account from the start again.
//!
//! Its table is verify's own and is created when verify first opens the journal (an
//! import never reads it, so older builds are unaffected). One row per compared ticket
//! holds the comparison itself, which is how a resumed verify can still report on every
//! ticket without asking HappyFox twice.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, params};

use super::{Journal, JournalError, lock_file, now_ms, open_error};

const VERIFIED_TABLE: &str = "
CREATE TABLE IF NOT EXISTS verified (
    source_id   TEXT PRIMARY KEY,
    result      TEXT NOT NULL,
    verified_at INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Messages verify found missing and handed back to the import: posted again, they come
/// last on their ticket (HappyFox cannot backdate an update; the header keeps the
/// original time), so their place is not held against the order.
pub(super) const REPOSTED_TABLE: &str = "
CREATE TABLE IF NOT EXISTS reposted (message_id INTEGER PRIMARY KEY);
";

/// A created record as verify reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedRecord {
    /// The record's row id, for paging.
    pub row: i64,
    pub source_id: String,
    pub happyfox_id: u64,
    pub display_id: String,
    /// The create payload the import sent (JSON).
    pub payload: String,
}

impl Journal {
    /// Opens an existing journal for verify: locked like an import (verify marks missing
    /// messages for the next import, which must not run meanwhile), but without starting a
    /// run or comparing fingerprints: verify sends nothing.
    pub fn open_for_verify(path: &Path) -> Result<Journal, JournalError> {
        let shown = path.display().to_string();
        if !path.is_file() {
            return Err(JournalError::CannotOpen {
                path: shown,
                reason: "no such file".into(),
            });
        }
        if std::fs::metadata(path).is_ok_and(|m| m.permissions().readonly()) {
            return Err(JournalError::ReadOnly { path: shown });
        }
        let lock = lock_file(path, &shown)?;
        // Through a symlink SQLite keeps its log beside the target, as the import does.
        let real = super::lock::real_path(path);
        let conn = Connection::open_with_flags(
            &real,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(&shown, e))?;
        let mut journal = Journal::handle(conn, path, Some(lock), true);
        journal.configure(true)?;
        journal.check_version(true, false)?;
        journal.conn.execute_batch(VERIFIED_TABLE)?;
        journal.conn.execute_batch(REPOSTED_TABLE)?;
        Ok(journal)
    }

    /// The messages verify marked missing before (see [`REPOSTED_TABLE`]).
    pub fn reposted_messages(&self) -> Result<std::collections::HashSet<i64>, JournalError> {
        self.conn.execute_batch(REPOSTED_TABLE)?;
        let mut st = self
            .conn
            .prepare_cached("SELECT message_id FROM reposted")?;
        let ids = st
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    /// Created records after row `after`, in journal order.
    pub fn created_records(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<CreatedRecord>, JournalError> {
        let mut st = self.conn.prepare_cached(
            "SELECT r.id, r.source_id, r.happyfox_id, coalesce(r.display_id, ''),
                    coalesce(p.payload, '{}')
             FROM records r LEFT JOIN payloads p ON p.record_id = r.id
             WHERE r.id > ?1 AND r.state = 'created' AND r.happyfox_id IS NOT NULL
             ORDER BY r.id LIMIT ?2",
        )?;
        let rows = st
            .query_map(params![after, limit as i64], |r| {
                Ok(CreatedRecord {
                    row: r.get(0)?,
                    source_id: r.get(1)?,
                    happyfox_id: u64::try_from(r.get::<_, i64>(2)?).unwrap_or_default(),
                    display_id: r.get(3)?,
                    payload: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Every comparison stored so far, as (source id, result JSON).
    pub fn verified(&self) -> Result<Vec<(String, String)>, JournalError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT source_id, result FROM verified ORDER BY source_id")?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Stores one ticket's comparison (replacing an earlier one).
    pub fn set_verified(&mut self, source_id: &str, result: &str) -> Result<(), JournalError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO verified (source_id, result, verified_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![source_id, result, now_ms()])?;
        Ok(())
    }

    /// Forgets every comparison: the next verify starts from the first ticket.
    pub fn clear_verified(&mut self) -> Result<(), JournalError> {
        self.conn.execute("DELETE FROM verified", [])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{created, info, pending};
    use super::*;

    #[test]
    fn comparisons_survive_a_reopen_and_can_be_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.db");
        {
            let mut j = Journal::open(&path, &info()).unwrap();
            j.upsert_pending(&pending(2)).unwrap();
            let b = j.begin_batch(&["ZD-0", "ZD-1"]).unwrap();
            j.finish_batch(b, &[created("ZD-0", 7), created("ZD-1", 8)])
                .unwrap();
        }
        {
            let mut j = Journal::open_for_verify(&path).unwrap();
            let rows = j.created_records(0, 10).unwrap();
            assert_eq!(rows.len(), 2);
            assert_eq!(rows[1].happyfox_id, 8);
            assert_eq!(rows[0].payload, r#"{"subject":"ticket 0"}"#);
            j.set_verified("ZD-0", "{}").unwrap();
        }
        let mut j = Journal::open_for_verify(&path).unwrap();
        assert_eq!(j.verified().unwrap(), vec![("ZD-0".into(), "{}".into())]);
        j.clear_verified().unwrap();
        assert!(j.verified().unwrap().is_empty());
        // An import still opens it.
        drop(j);
        Journal::open(&path, &info()).unwrap();
    }

    #[test]
    fn only_a_posted_message_is_marked_missing_and_then_waits_for_the_import() {
        use crate::journal::{MessageOutcome, NewMessage};
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("run.db"), &info()).unwrap();
        j.upsert_pending(&pending(1)).unwrap();
        let message = |position| NewMessage {
            position,
            key: format!("id:{position}"),
            content: String::new(),
            kind: "staff_reply".into(),
            author: "agent@acme.example".into(),
            author_name: String::new(),
            payload: format!(r#"{{"html":"reply {position}"}}"#),
        };
        j.add_messages(&[("ZD-0".into(), vec![message(1), message(2)])])
            .unwrap();
        let b = j.begin_batch(&["ZD-0"]).unwrap();
        j.finish_batch(b, &[created("ZD-0", 7)]).unwrap();
        let first = j.ticket_messages("ZD-0").unwrap()[0].id;
        j.begin_message(first).unwrap();
        j.finish_message(first, &MessageOutcome::Posted { update_id: Some(3) })
            .unwrap();
        assert_eq!(j.conversations_to_post(0, 10).unwrap()[0].messages.len(), 1);

        assert!(j.mark_message_missing(first).unwrap());
        let rows = j.ticket_messages("ZD-0").unwrap();
        assert_eq!(
            (rows[0].state.as_str(), rows[0].update_id),
            ("pending", None)
        );
        assert_eq!(j.conversations_to_post(0, 10).unwrap()[0].messages.len(), 2);
        // Neither a pending message nor one marked already moves.
        assert!(!j.mark_message_missing(first).unwrap());
        assert!(!j.mark_message_missing(rows[1].id).unwrap());
        // The marked one is remembered: posted again, it will come last.
        assert_eq!(j.reposted_messages().unwrap(), [first].into());
    }
}
