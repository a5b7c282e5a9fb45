//! The journal: one SQLite file per migration that makes stopping, crashing and re-running
//! safe.
//!
//! HappyFox has no idempotency keys, so "create every ticket exactly once" can only come
//! from local state: every source record is written here before anything is sent, a
//! batch's intent is committed *before* its POST, and its outcome right after. A batch
//! still marked `sending` when a later run opens the file is one whose outcome nobody saw;
//! it must be reconciled (searched for by marker) before any of its members is sent again.
//!
//! Record states only move forward, `pending → sending → created | failed`, with two
//! deliberate ways back to `pending`, both for records HappyFox provably never got:
//! reconciliation finding a member absent ([`ItemOutcome::NotSent`]) and the user asking to
//! retry failures ([`Journal::requeue_failed`]).
//!
//! The file also keeps the run's fingerprints (mapping, inputs, target URL: never
//! credentials) so a re-run with different inputs is noticed, and it is what `status` and
//! `results` read. It is built for millions of records: opening does no full scan, and
//! every write path is one transaction over cached statements.
//!
//! The import drives it in this order:
//!
//! 1. [`Journal::open`]; if [`Journal::changes`] holds a significant change, refuse unless
//!    `--allow-changes`, then [`Journal::accept_changes`].
//! 2. On a fresh journal or changed inputs: [`Journal::add_messages`] for each ticket's
//!    conversation, then [`Journal::upsert_pending`] the valid records and
//!    [`Journal::reject`] the invalid ones. On an unchanged resume (a [`Journal::note`]
//!    says so) this is skipped: payloads are in the journal. `--retry-failed`:
//!    [`Journal::requeue_failed`].
//! 3. [`Journal::unknown_batches`]: search HappyFox for each member's marker, then
//!    [`Journal::finish_batch`] with `Created` for those found and `NotSent` for the rest.
//! 4. Loop: [`Journal::next_pending`] 100 → [`Journal::begin_batch`] → POST →
//!    [`Journal::finish_batch`] (or leave it `sending` when the outcome is unknown and
//!    reconcile it as in step 3).
//! 5. Once no ticket is left to create, the conversations: [`Journal::conversations_to_post`],
//!    then per message [`Journal::begin_message`] → POST → [`Journal::finish_message`].
//! 6. [`Journal::finish_run`]. `status` and `results` use [`Journal::open_read_only`].

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;

mod deadlines;
mod delta;
mod lock;
mod messages;
mod records;
mod results;
mod run_info;
mod schema;
mod status;
mod undo;
pub(crate) use deadlines::DEFAULT_LEASE;
mod verified;
pub use delta::{
    Finding, FindingKind, KnownMessage, KnownTicket, RunCounts, RunHistory, TicketDelta,
};
pub use messages::NewMessage;
pub use messages::{
    AttachmentFailure, JournaledMessage, MessageCounts, MessageOutcome, MessageRow,
    TicketConversation,
};
pub(crate) use records::Unsent;
pub use records::{ItemOutcome, PendingRecord};
pub use records::{PendingRow, RejectedRecord, UnknownBatch, UpsertReport};
pub use results::ResultsWritten;
pub use run_info::{Change, InputFingerprint, RunInfo, fingerprint_bytes};
pub(crate) use schema::SCHEMA_VERSION;
pub use status::{BatchSummary, StateCounts, Summary};
pub use undo::{CreatedTicket, UndoOutcome};
pub use verified::CreatedRecord;

use lock::lock_file;

use schema::{APPLICATION_ID, migrate};

/// Why the journal cannot be used or updated.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "journal {path} is read-only: the import records every step in it; use a writable path (or copy the file) and run again"
    )]
    ReadOnly { path: String },
    #[error("cannot open journal {path}: {reason}")]
    CannotOpen { path: String, reason: String },
    #[error("{path} is not an hfmigrate journal")]
    NotAJournal { path: String },
    #[error(
        "journal {path} was written by a newer hfmigrate (journal version {found}, this build reads up to {supported}); upgrade hfmigrate"
    )]
    NewerVersion {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error(
        "journal {path} is in use by another hfmigrate process; two imports on one journal would send tickets twice"
    )]
    Busy { path: String },
    #[error(
        "journal {path} was started by hfmigrate but its contents are gone: its write-ahead log ({path}-wal) was deleted, or the file was copied without it. Put that file back beside it, or use a new --journal path: a new journal first adopts the tickets the account already holds (found by their markers), so nothing is created twice"
    )]
    ContentsLost { path: String },
    #[error("record {source_id} is {state}, not pending; it cannot join a batch")]
    NotPending { source_id: String, state: String },
    #[error("no record with source id {source_id} in the journal")]
    UnknownRecord { source_id: String },
    #[error("record {source_id} is not waiting for an outcome in batch {batch}")]
    NotInBatch { source_id: String, batch: BatchId },
    #[error("batch {batch} still has {missing} member(s) without an outcome")]
    IncompleteBatch { batch: BatchId, missing: i64 },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("journal database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl JournalError {
    /// Whether the disk holding the journal is full: the write failure a user fixes by
    /// freeing space, worth saying plainly.
    pub fn is_disk_full(&self) -> bool {
        match self {
            JournalError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            JournalError::Write { source, .. } => source.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }

    /// The cause, for a message that already names the journal: "its disk is full"
    /// rather than SQLite's two phrasings of it after a "journal database error".
    pub fn cause(&self) -> String {
        match self {
            _ if self.is_disk_full() => "its disk is full".into(),
            JournalError::Sqlite(e) => e.to_string(),
            other => other.to_string(),
        }
    }
}

/// A batch's row id. Stable across runs; reported in `status` and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct BatchId(pub i64);

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// An open journal. Opened for writing it holds a lock file (`<journal>.lock`) for its
/// lifetime so two imports can never share it; opened read-only it takes no lock.
pub struct Journal {
    conn: Connection,
    path: PathBuf,
    run: i64,
    changes: Vec<Change>,
    resumed: bool,
    /// Set when the journal was left by a run that died and its write-ahead log is gone
    /// (deleted, or the file copied alone): until when (ms since the epoch) that run's
    /// requests may still land. What it did since its last checkpoint is unknown.
    lost_log: Option<i64>,
    /// How long after its last heartbeat a request of this run may still land
    /// ([`Journal::set_lease`]).
    lease_ms: i64,
    /// When the write-ahead log was last folded into the file ([`Journal::heartbeat`]).
    last_checkpoint: std::time::Instant,
    _lock: Option<File>,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("run", &self.run)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn is_readonly_error(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
    )
}

impl Journal {
    /// Creates the journal, or resumes it. On resume, [`Journal::changes`] lists what differs
    /// from the recorded run (nothing is overwritten until [`Journal::accept_changes`]).
    pub fn open(path: &Path, info: &RunInfo) -> Result<Journal, JournalError> {
        let shown = path.display().to_string();
        let exists = path.exists();
        let writable_dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) => std::fs::metadata(dir)
                .map(|m| !m.permissions().readonly())
                .map_err(|e| JournalError::CannotOpen {
                    path: shown.clone(),
                    reason: format!("directory {}: {e}", dir.display()),
                })?,
            None => true,
        };
        // Checked by hand because root ignores permission bits; a read-only journal is a
        // statement that it must not change.
        if exists && std::fs::metadata(path).is_ok_and(|m| m.permissions().readonly()) {
            return Err(JournalError::ReadOnly { path: shown });
        }
        if !writable_dir {
            return Err(JournalError::ReadOnly { path: shown });
        }
        let lock = lock_file(path, &shown)?;
        // Through a symlink SQLite keeps its log beside the target; so does everything here.
        let real = lock::real_path(path);
        let log_present = wal_path(&real).metadata().is_ok_and(|m| m.len() > 0);
        let empty = !exists || std::fs::metadata(&real).is_ok_and(|m| m.len() == 0);
        let conn = Connection::open_with_flags(
            &real,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(&shown, e))?;
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(JournalError::ReadOnly { path: shown });
        }
        let mut journal = Journal::handle(conn, path, Some(lock), false);
        if empty {
            // Marked as ours in the file itself before the write-ahead log holds
            // anything, so a file whose log is lost says so instead of looking new.
            journal
                .conn
                .pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(|e| open_error(&shown, e))?;
        }
        journal.configure(true)?;
        journal.check_version(true, empty)?;
        journal.resumed = journal.meta("target_url")?.is_some();
        if journal.resumed {
            journal.changes = journal.diff(info)?;
            journal.lost_log = journal.log_lost(log_present)?;
        } else if !empty {
            return Err(JournalError::ContentsLost { path: shown });
        } else {
            journal.store_info(info, true)?;
        }
        let now = now_ms();
        journal.conn.execute(
            "INSERT INTO runs (started_at, tool_version) VALUES (?1, ?2)",
            params![now, info.tool_version],
        )?;
        journal.run = journal.conn.last_insert_rowid();
        Ok(journal)
    }

    /// Opens an existing journal for `status` and `results`, without locking it: they may
    /// run while an import is writing.
    pub fn open_read_only(path: &Path) -> Result<Journal, JournalError> {
        let shown = path.display().to_string();
        if !path.exists() {
            return Err(JournalError::CannotOpen {
                path: shown,
                reason: "no such file".into(),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(&shown, e))?;
        let mut journal = Journal::handle(conn, path, None, true);
        journal.configure(false)?;
        journal.check_version(false, false)?;
        if journal.meta("target_url")?.is_none() {
            return Err(JournalError::ContentsLost { path: shown });
        }
        Ok(journal)
    }

    /// A journal on an open connection, before any run: the one place its fields get
    /// their starting values, for every way of opening one.
    pub(super) fn handle(
        conn: Connection,
        path: &Path,
        lock: Option<File>,
        resumed: bool,
    ) -> Journal {
        Journal {
            conn,
            path: path.to_owned(),
            run: 0,
            changes: Vec::new(),
            resumed,
            lost_log: None,
            lease_ms: deadlines::ms(DEFAULT_LEASE),
            last_checkpoint: std::time::Instant::now(),
            _lock: lock,
        }
    }

    fn configure(&mut self, write: bool) -> Result<(), JournalError> {
        let shown = self.path.display().to_string();
        self.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| open_error(&shown, e))?;
        self.conn.set_prepared_statement_cache_capacity(64);
        // Fails here (not later) when the file is not a database.
        let probe: rusqlite::Result<i64> =
            self.conn
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0));
        if let Err(e) = probe {
            return Err(match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::NotADatabase) => {
                    JournalError::NotAJournal { path: shown }
                }
                _ => open_error(&shown, e),
            });
        }
        if write {
            let mode: String = self
                .conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(|e| open_error(&shown, e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(JournalError::CannotOpen {
                    path: shown,
                    reason: format!("SQLite could not use write-ahead logging (mode {mode})"),
                });
            }
            self.conn
                .pragma_update(None, "synchronous", "NORMAL")
                .map_err(|e| open_error(&shown, e))?;
        }
        Ok(())
    }

    /// `created` is true when this open created the file (so an empty journal is new,
    /// not one whose contents were lost).
    fn check_version(&mut self, write: bool, created: bool) -> Result<(), JournalError> {
        let shown = self.path.display().to_string();
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let app: i64 = self
            .conn
            .pragma_query_value(None, "application_id", |r| r.get(0))?;
        let tables: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION && app == APPLICATION_ID {
            return Err(JournalError::NewerVersion {
                path: shown,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if (version == 0 && tables > 0 && app != APPLICATION_ID)
            || (version > 0 && app != APPLICATION_ID)
        {
            return Err(JournalError::NotAJournal { path: shown });
        }
        if app == APPLICATION_ID && !created && (tables == 0 || version == 0) {
            return Err(JournalError::ContentsLost { path: shown });
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        if !write {
            return Err(JournalError::CannotOpen {
                path: shown,
                reason: format!(
                    "journal version {version} must be upgraded to {SCHEMA_VERSION}; run the import once"
                ),
            });
        }
        let tx = self.conn.transaction().map_err(|e| open_error(&shown, e))?;
        migrate(&tx, version).map_err(|e| open_error(&shown, e))?;
        tx.commit().map_err(|e| open_error(&shown, e))?;
        Ok(())
    }

    fn meta(&self, key: &str) -> rusqlite::Result<Option<String>> {
        self.conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()
    }

    /// Whether the journal already existed (this run continues an earlier one).
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// When the run before this one died and its write-ahead log is gone: until when
    /// (ms since the epoch) its requests may still land. Whatever it did after its last
    /// checkpoint is unknown: tickets it created look pending, messages it posted look
    /// unposted.
    pub fn lost_log(&self) -> Option<i64> {
        self.lost_log
    }

    /// Whether the last run's end is missing and so is the log that would hold it. Only
    /// journals whose writer checkpoints (and notes `alive_until`) can say.
    fn log_lost(&self, log_present: bool) -> Result<Option<i64>, JournalError> {
        if log_present {
            return Ok(None);
        }
        let Some(alive_until) = self.meta("alive_until")? else {
            return Ok(None);
        };
        let last: Option<i64> = self
            .conn
            .query_row("SELECT max(id) FROM runs", [], |r| r.get(0))?;
        let closed = self.meta("closed")?.and_then(|c| c.parse::<i64>().ok());
        Ok((last.is_some() && last != closed).then(|| alive_until.parse().unwrap_or(0)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one transaction: what it writes lands together or not at all, so a run
    /// killed inside leaves the journal as it was before. The journal's writing methods
    /// nest inside it (each is a savepoint).
    pub(crate) fn atomically<T, E: From<JournalError>>(
        &mut self,
        f: impl FnOnce(&mut Journal) -> Result<T, E>,
    ) -> Result<T, E> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(JournalError::from)?;
        match f(self) {
            Ok(v) => {
                self.conn
                    .execute_batch("COMMIT")
                    .map_err(JournalError::from)?;
                Ok(v)
            }
            Err(e) => {
                // The error being returned says what went wrong; a failed rollback
                // leaves the transaction to be rolled back when the connection closes.
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// A value the importer keeps between runs under its own key (such as the fingerprint
    /// of the inputs it finished enqueueing, so an unchanged resume need not read them).
    pub fn note(&self, key: &str) -> Result<Option<String>, JournalError> {
        Ok(self.meta(&format!("note.{key}"))?)
    }

    /// Sets a [`Journal::note`].
    pub(crate) fn set_note(&mut self, key: &str, value: &str) -> Result<(), JournalError> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
            .execute(params![format!("note.{key}"), value])?;
        Ok(())
    }

    /// Removes a [`Journal::note`].
    pub(crate) fn clear_note(&mut self, key: &str) -> Result<(), JournalError> {
        self.conn
            .prepare_cached("DELETE FROM meta WHERE key = ?1")?
            .execute([format!("note.{key}")])?;
        Ok(())
    }

    /// Stamps the end of this run (`done`, `interrupted`, `failed`...).
    pub fn finish_run(&mut self, outcome: &str) -> Result<(), JournalError> {
        self.conn.execute(
            "UPDATE runs SET finished_at = ?2, outcome = ?3 WHERE id = ?1",
            params![self.run, now_ms(), outcome],
        )?;
        Ok(())
    }
}

impl Drop for Journal {
    /// A journal closed by its process (not killed) says so: with its log folded in on
    /// close, a missing log is then no loss.
    fn drop(&mut self) {
        if self._lock.is_some() {
            let _ = self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('closed', ?1)",
                [self.run.to_string()],
            );
        }
    }
}

/// The write-ahead log beside a journal.
fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn open_error(path: &str, e: rusqlite::Error) -> JournalError {
    if is_readonly_error(&e) && matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::ReadOnly))
    {
        return JournalError::ReadOnly { path: path.into() };
    }
    if matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase)
    ) {
        return JournalError::NotAJournal { path: path.into() };
    }
    JournalError::CannotOpen {
        path: path.into(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod test_support {
    use super::*;

    pub(super) fn info() -> RunInfo {
        RunInfo::new("mapping-1", vec![], "https://acme.happyfox.com")
    }

    pub(super) fn pending(n: usize) -> Vec<PendingRecord> {
        (0..n)
            .map(|i| PendingRecord {
                source_id: format!("ZD-{i}"),
                file: "tickets.json".into(),
                line: Some(i as u64 + 1),
                payload: format!(r#"{{"subject":"ticket {i}"}}"#),
            })
            .collect()
    }

    pub(super) fn created(id: &str, n: u64) -> ItemOutcome {
        ItemOutcome::Created {
            source_id: id.into(),
            happyfox_id: n,
            display_id: format!("#DC{n:08}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::info;
    use super::*;

    #[test]
    fn a_second_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.db");
        let _j = Journal::open(&path, &info()).unwrap();
        let e = Journal::open(&path, &info()).unwrap_err();
        assert!(matches!(e, JournalError::Busy { .. }), "{e}");
        // Readers are welcome.
        Journal::open_read_only(&path).unwrap().summary().unwrap();
    }

    #[test]
    fn a_journal_whose_log_was_lost_before_any_checkpoint_is_refused_not_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.db");
        let copy = dir.path().join("copy.db");
        let j = Journal::open(&path, &info()).unwrap();
        // Everything so far is in the log; the file alone only says it is ours.
        std::fs::copy(&path, &copy).unwrap();
        drop(j);
        let e = Journal::open(&copy, &info()).unwrap_err();
        assert!(matches!(e, JournalError::ContentsLost { .. }), "{e}");
        assert!(e.to_string().contains("new --journal path"), "{e}");
        // `status` says the same, never "run the import once".
        let e = Journal::open_read_only(&copy).unwrap_err();
        assert!(matches!(e, JournalError::ContentsLost { .. }), "{e}");
    }

    #[test]
    fn a_run_that_died_without_its_log_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.db");
        let copy = dir.path().join("copy.db");
        let mut j = Journal::open(&path, &info()).unwrap();
        j.checkpoint().unwrap();
        std::fs::copy(&path, &copy).unwrap();
        drop(j);
        // Closed by its process: nothing lost.
        assert_eq!(Journal::open(&path, &info()).unwrap().lost_log(), None);
        // The copy was taken while that run was alive: its end is missing.
        let lost = Journal::open(&copy, &info()).unwrap().lost_log();
        assert!(lost.is_some_and(|t| t > now_ms()), "{lost:?}");
    }

    #[test]
    fn a_symlink_to_a_journal_in_use_is_refused_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.db");
        let other = dir.path().join("elsewhere");
        std::fs::create_dir(&other).unwrap();
        let link = other.join("link.db");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        // The link is opened first (the journal does not exist yet), then the file.
        let _j = Journal::open(&link, &info()).unwrap();
        let e = Journal::open(&path, &info()).unwrap_err();
        assert!(matches!(e, JournalError::Busy { .. }), "{e}");
        drop(_j);
        let _j = Journal::open(&path, &info()).unwrap();
        let e = Journal::open(&link, &info()).unwrap_err();
        assert!(matches!(e, JournalError::Busy { .. }), "{e}");
        assert!(e.to_string().contains("link.db"), "named as given: {e}");
    }

    #[test]
    fn not_a_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(
            &path,
            "hello, this is not SQLite at all, just some text......",
        )
        .unwrap();
        let e = Journal::open(&path, &info()).unwrap_err();
        assert!(matches!(e, JournalError::NotAJournal { .. }), "{e}");
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let e = Journal::open(&other, &info()).unwrap_err();
        assert!(matches!(e, JournalError::NotAJournal { .. }), "{e}");
    }
}
