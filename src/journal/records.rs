//! The record queue and its batches: the part of the journal that makes "create every
//! ticket exactly once" hold.
//!
//! Records move `pending → sending → created | failed`. A batch's intent is committed
//! before its POST ([`Journal::begin_batch`]) and its outcome right after
//! ([`Journal::finish_batch`]). A batch a later run finds still `sending` is one whose
//! outcome nobody saw: [`Journal::unknown_batches`] lists it for reconciliation.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{BatchId, Journal, JournalError, fingerprint_bytes, now_ms};

/// A ticket that failed takes its conversation with it: its messages can never be posted,
/// so they are failed with the ticket's error (listed in `results`; `--retry-failed`
/// puts both back) rather than left pending for ever.
const ORPHAN_MESSAGES: &str = "UPDATE messages SET state = 'failed', updated_at = ?3,
        last_error = 'not posted: its ticket was not created (' || ?2 || ')'
     WHERE ticket_source_id = ?1 AND state = 'pending'";

/// A valid record to create, as rendered from the source.
#[derive(Debug, Clone)]
pub struct PendingRecord {
    pub source_id: String,
    pub file: String,
    pub line: Option<u64>,
    /// The JSON payload sent to HappyFox; stored so a resume needs no re-rendering.
    pub payload: String,
}

/// A record that never reached HappyFox because it failed before sending (validation).
#[derive(Debug, Clone)]
pub struct RejectedRecord {
    pub source_id: String,
    pub file: String,
    pub line: Option<u64>,
    pub stage: String,
    pub error: String,
}

/// What [`Journal::upsert_pending`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UpsertReport {
    pub inserted: u64,
    pub unchanged: u64,
    /// Existing records not yet in HappyFox whose payload differs (the mapping, an input or
    /// the account schema changed): their payload was replaced.
    pub updated: u64,
    /// Existing records already sent or created whose payload now differs: left alone.
    pub frozen: u64,
}

/// A record ready to be sent, with its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRow {
    /// Row id: pass the last one to [`Journal::next_pending`] to page on.
    pub row: i64,
    pub source_id: String,
    pub payload: String,
}

/// The outcome of one batch member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    Created {
        source_id: String,
        happyfox_id: u64,
        display_id: String,
    },
    Failed {
        source_id: String,
        stage: String,
        error: String,
    },
    /// Reconciliation proved HappyFox does not have it: back to pending, to be sent again.
    NotSent { source_id: String },
}

impl ItemOutcome {
    fn source_id(&self) -> &str {
        match self {
            ItemOutcome::Created { source_id, .. }
            | ItemOutcome::Failed { source_id, .. }
            | ItemOutcome::NotSent { source_id } => source_id,
        }
    }
}

/// A batch whose outcome an earlier run never saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBatch {
    pub batch: BatchId,
    pub source_ids: Vec<String>,
    /// Until when (ms since the epoch) its request may still land: no member may be
    /// concluded absent before.
    pub deadline: i64,
}

/// Whose payload [`Journal::for_each_unsent`] passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsent<'a> {
    /// A ticket still to create.
    Ticket,
    /// A message still to post (or whose post is being reconciled).
    Message {
        /// The message's kind as journaled (`MessageKind::name`).
        kind: &'a str,
    },
}

impl Journal {
    /// The stored payload of a record: reconciling a batch from an earlier run needs each
    /// member's marker, which is in the payload.
    pub fn payload(&self, source_id: &str) -> Result<Option<String>, JournalError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT p.payload FROM records r JOIN payloads p ON p.record_id = r.id WHERE r.source_id = ?1",
            )?
            .query_row([source_id], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten())
    }

    /// Adds records to create, in one transaction. Known source ids keep their state; a
    /// changed payload replaces the stored one only while HappyFox has not seen it. A
    /// record that failed validation earlier and is now valid becomes pending again.
    pub fn upsert_pending(
        &mut self,
        records: &[PendingRecord],
    ) -> Result<UpsertReport, JournalError> {
        let now = now_ms();
        let mut report = UpsertReport::default();
        let tx = self.conn.savepoint()?;
        {
            let mut find = tx.prepare_cached(
                "SELECT id, state, payload_hash, stage FROM records WHERE source_id = ?1",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO records (source_id, file, line, payload_hash, state, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
            )?;
            let mut store = tx.prepare_cached(
                "INSERT OR REPLACE INTO payloads (record_id, payload) VALUES (?1, ?2)",
            )?;
            let mut update = tx.prepare_cached(
                "UPDATE records SET file = ?2, line = ?3, payload_hash = ?4, state = ?5,
                    stage = CASE WHEN ?5 = 'pending' THEN NULL ELSE stage END,
                    last_error = CASE WHEN ?5 = 'pending' THEN NULL ELSE last_error END,
                    updated_at = ?6
                 WHERE id = ?1",
            )?;
            for r in records {
                let hash = fingerprint_bytes(r.payload.as_bytes());
                let line = r.line.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
                let existing = find
                    .query_row([&r.source_id], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, Option<String>>(2)?,
                            row.get::<_, Option<String>>(3)?,
                        ))
                    })
                    .optional()?;
                match existing {
                    None => {
                        insert.execute(params![r.source_id, r.file, line, hash, now])?;
                        store.execute(params![tx.last_insert_rowid(), r.payload])?;
                        report.inserted += 1;
                    }
                    Some((_, _, Some(old), _)) if old == hash => report.unchanged += 1,
                    Some((id, state, _, stage)) => match state.as_str() {
                        "pending" | "failed" => {
                            let new_state =
                                if state == "failed" && stage.as_deref() != Some("validation") {
                                    "failed"
                                } else {
                                    "pending"
                                };
                            update.execute(params![id, r.file, line, hash, new_state, now])?;
                            store.execute(params![id, r.payload])?;
                            report.updated += 1;
                        }
                        _ => report.frozen += 1,
                    },
                }
            }
        }
        tx.commit()?;
        Ok(report)
    }

    /// Journals records that failed before sending (stage `validation` or similar), so
    /// `results` lists them for fixing. Records already sent or created are left alone.
    pub fn reject(&mut self, records: &[RejectedRecord]) -> Result<u64, JournalError> {
        let now = now_ms();
        let mut changed = 0;
        let tx = self.conn.savepoint()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO records (source_id, file, line, state, stage, last_error, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'failed', ?4, ?5, ?6, ?6)
                 ON CONFLICT (source_id) DO UPDATE SET
                    file = excluded.file, line = excluded.line, state = 'failed',
                    stage = excluded.stage, last_error = excluded.last_error,
                    payload_hash = NULL, updated_at = excluded.updated_at
                 WHERE records.state IN ('pending', 'failed')",
            )?;
            let mut orphaned = tx.prepare_cached(ORPHAN_MESSAGES)?;
            let mut drop_payload = tx.prepare_cached(
                "DELETE FROM payloads WHERE record_id =
                    (SELECT id FROM records WHERE source_id = ?1 AND payload_hash IS NULL)",
            )?;
            for r in records {
                let line = r.line.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
                let n =
                    upsert.execute(params![r.source_id, r.file, line, r.stage, r.error, now])?;
                if n > 0 {
                    drop_payload.execute([&r.source_id])?;
                    orphaned.execute(params![r.source_id, r.error, now])?;
                }
                changed += n as u64;
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Every payload still to send, records then messages, one at a time: the plan counts
    /// the POSTs each one costs (its files, its inline images) without holding them all.
    pub(crate) fn for_each_unsent(
        &self,
        mut f: impl FnMut(Unsent, &str),
    ) -> Result<(), JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT p.payload FROM records r JOIN payloads p ON p.record_id = r.id
             WHERE r.state = 'pending'",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            f(Unsent::Ticket, row.get_ref(0)?.as_str().unwrap_or(""));
        }
        let mut stmt = self.conn.prepare(
            "SELECT coalesce(payload, ''), kind FROM messages WHERE state IN ('pending', 'sending')",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let kind = row.get_ref(1)?.as_str().unwrap_or("");
            f(
                Unsent::Message { kind },
                row.get_ref(0)?.as_str().unwrap_or(""),
            );
        }
        Ok(())
    }

    /// Up to `limit` pending records after row `after` (0 to start), in input order.
    pub fn next_pending(&self, after: i64, limit: usize) -> Result<Vec<PendingRow>, JournalError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.id, r.source_id, p.payload FROM records r JOIN payloads p ON p.record_id = r.id
             WHERE r.state = 'pending' AND r.id > ?1 ORDER BY r.id LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(
                params![after, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok(PendingRow {
                        row: r.get(0)?,
                        source_id: r.get(1)?,
                        payload: r.get(2)?,
                    })
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Commits the intent to send these pending records as one batch. Call it *before*
    /// the POST: if the process dies after this, the next run sees the batch as unknown.
    pub fn begin_batch<S: AsRef<str>>(
        &mut self,
        source_ids: &[S],
    ) -> Result<BatchId, JournalError> {
        self.begin_batch_leased(source_ids, self.lease())
    }

    /// [`Journal::begin_batch`] for a request that may take longer than most (an upload):
    /// it may land until `lease` after this run's last heartbeat.
    pub(crate) fn begin_batch_leased<S: AsRef<str>>(
        &mut self,
        source_ids: &[S],
        lease: std::time::Duration,
    ) -> Result<BatchId, JournalError> {
        let now = now_ms();
        let lease = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let tx = self.conn.transaction()?;
        let batch;
        {
            tx.prepare_cached(
                "INSERT INTO batches (run, state, members, created_at, sent_at, lease, deadline)
                 VALUES (?1, 'sending', ?2, ?3, ?3, ?4, ?3 + ?4)",
            )?
            .execute(params![self.run, source_ids.len() as i64, now, lease])?;
            batch = tx.last_insert_rowid();
            let mut claim = tx.prepare_cached(
                "UPDATE records SET state = 'sending', batch = ?1, attempts = attempts + 1, updated_at = ?2
                 WHERE source_id = ?3 AND state = 'pending' AND payload_hash IS NOT NULL",
            )?;
            let mut state_of =
                tx.prepare_cached("SELECT state FROM records WHERE source_id = ?1")?;
            for id in source_ids {
                let id = id.as_ref();
                if claim.execute(params![batch, now, id])? == 0 {
                    let state: Option<String> =
                        state_of.query_row([id], |r| r.get(0)).optional()?;
                    return Err(match state {
                        Some(state) => JournalError::NotPending {
                            source_id: id.to_owned(),
                            state,
                        },
                        None => JournalError::UnknownRecord {
                            source_id: id.to_owned(),
                        },
                    });
                }
            }
        }
        tx.commit()?;
        Ok(BatchId(batch))
    }

    /// Marks a batch as sent once more (a resend after a throttle, same members).
    pub(crate) fn resend_batch(&mut self, batch: BatchId) -> Result<(), JournalError> {
        self.conn
            .prepare_cached(
                "UPDATE batches SET attempts = attempts + 1, sent_at = ?2, run = ?3,
                    deadline = ?2 + coalesce(lease, ?4)
                 WHERE id = ?1",
            )?
            .execute(params![batch.0, now_ms(), self.run, self.lease_ms])?;
        Ok(())
    }

    /// Records every member's outcome in one transaction. Every member still `sending` in
    /// the batch must get one, or nothing is recorded.
    pub fn finish_batch(
        &mut self,
        batch: BatchId,
        outcomes: &[ItemOutcome],
    ) -> Result<(), JournalError> {
        let now = now_ms();
        let tx = self.conn.transaction()?;
        {
            let mut created = tx.prepare_cached(
                "UPDATE records SET state = 'created', happyfox_id = ?3, display_id = ?4, stage = NULL,
                    last_error = NULL, updated_at = ?5
                 WHERE source_id = ?1 AND batch = ?2 AND state = 'sending'",
            )?;
            let mut failed = tx.prepare_cached(
                "UPDATE records SET state = 'failed', stage = ?3, last_error = ?4, updated_at = ?5
                 WHERE source_id = ?1 AND batch = ?2 AND state = 'sending'",
            )?;
            let mut not_sent = tx.prepare_cached(
                "UPDATE records SET state = 'pending', updated_at = ?3
                 WHERE source_id = ?1 AND batch = ?2 AND state = 'sending'",
            )?;
            let mut orphaned = tx.prepare_cached(ORPHAN_MESSAGES)?;
            for o in outcomes {
                let n = match o {
                    ItemOutcome::Created {
                        source_id,
                        happyfox_id,
                        display_id,
                    } => created.execute(params![
                        source_id,
                        batch.0,
                        i64::try_from(*happyfox_id).unwrap_or(i64::MAX),
                        display_id,
                        now
                    ])?,
                    ItemOutcome::Failed {
                        source_id,
                        stage,
                        error,
                    } => {
                        let n = failed.execute(params![source_id, batch.0, stage, error, now])?;
                        orphaned.execute(params![source_id, error, now])?;
                        n
                    }
                    ItemOutcome::NotSent { source_id } => {
                        not_sent.execute(params![source_id, batch.0, now])?
                    }
                };
                if n == 0 {
                    return Err(JournalError::NotInBatch {
                        source_id: o.source_id().to_owned(),
                        batch,
                    });
                }
            }
            let missing: i64 = tx
                .prepare_cached(
                    "SELECT count(*) FROM records WHERE batch = ?1 AND state = 'sending'",
                )?
                .query_row([batch.0], |r| r.get(0))?;
            if missing > 0 {
                return Err(JournalError::IncompleteBatch { batch, missing });
            }
            tx.prepare_cached(
                "UPDATE batches SET state = 'finished', finished_at = ?2 WHERE id = ?1",
            )?
            .execute(params![batch.0, now])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Batches sent by an earlier run whose outcome was never recorded. Reconcile them
    /// (search HappyFox for their markers) and [`Journal::finish_batch`] them before
    /// sending anything else.
    pub fn unknown_batches(&self) -> Result<Vec<UnknownBatch>, JournalError> {
        let mut batches = self.conn.prepare_cached(
            "SELECT id, coalesce(deadline, coalesce(sent_at, created_at) + ?2) FROM batches
             WHERE state = 'sending' AND run <> ?1 ORDER BY id",
        )?;
        let ids = batches
            .query_map(
                params![self.run, super::deadlines::ms(super::DEFAULT_LEASE)],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut members = self.conn.prepare_cached(
            "SELECT source_id FROM records WHERE batch = ?1 AND state = 'sending' ORDER BY id",
        )?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, deadline) in ids {
            let source_ids = members
                .query_map([id], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            out.push(UnknownBatch {
                batch: BatchId(id),
                source_ids,
                deadline,
            });
        }
        Ok(out)
    }

    /// Records pending here that the account already holds (found by their markers):
    /// created, with their HappyFox ids. Their messages may have been posted too, so each
    /// is read back before it is posted (left `sending`, not before `not_before`, ms since
    /// the epoch). Returns how many records were adopted; records not pending are left.
    pub(crate) fn adopt(
        &mut self,
        found: &[(String, u64, String)],
        not_before: i64,
    ) -> Result<u64, JournalError> {
        let now = now_ms();
        let mut adopted = 0;
        let tx = self.conn.transaction()?;
        {
            let mut record = tx.prepare_cached(
                "UPDATE records SET state = 'created', happyfox_id = ?2, display_id = ?3,
                    stage = NULL, last_error = NULL, updated_at = ?4
                 WHERE source_id = ?1 AND state = 'pending'",
            )?;
            let mut messages = tx.prepare_cached(
                "UPDATE messages SET state = 'sending', run = NULL, deadline = ?2, updated_at = ?3
                 WHERE ticket_source_id = ?1 AND state = 'pending'",
            )?;
            for (source_id, id, display) in found {
                let id = i64::try_from(*id).unwrap_or(i64::MAX);
                if record.execute(params![source_id, id, display, now])? > 0 {
                    messages.execute(params![source_id, not_before, now])?;
                    adopted += 1;
                }
            }
        }
        tx.commit()?;
        Ok(adopted)
    }

    /// After a lost log: every pending message may have been posted by the run whose
    /// record of it is gone, so each is read back before it is posted.
    pub(crate) fn suspect_pending_messages(
        &mut self,
        not_before: i64,
    ) -> Result<u64, JournalError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE messages SET state = 'sending', run = NULL, deadline = ?1, updated_at = ?2
                 WHERE state = 'pending'",
            )?
            .execute(params![not_before, now_ms()])?;
        Ok(n as u64)
    }

    /// `--retry-failed`: failed records that have a payload go back to pending. Returns how
    /// many. Records that failed validation stay failed until their input is fixed.
    pub(crate) fn requeue_failed(&mut self) -> Result<u64, JournalError> {
        let n = self.conn.execute(
            "UPDATE records SET state = 'pending', updated_at = ?1
             WHERE state = 'failed' AND payload_hash IS NOT NULL",
            [now_ms()],
        )?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::test_support::{created, info, pending};

    #[test]
    fn states_move_forward() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("run.db"), &info()).unwrap();
        assert!(!j.resumed());
        let r = j.upsert_pending(&pending(3)).unwrap();
        assert_eq!(r.inserted, 3);
        let rows = j.next_pending(0, 10).unwrap();
        assert_eq!(rows.len(), 3);
        let b = j.begin_batch(&["ZD-0", "ZD-1"]).unwrap();
        // Not pending any more: cannot join another batch.
        assert!(matches!(
            j.begin_batch(&["ZD-1"]),
            Err(JournalError::NotPending { .. })
        ));
        assert!(matches!(
            j.begin_batch(&["nope"]),
            Err(JournalError::UnknownRecord { .. })
        ));
        // Every member needs an outcome; nothing is recorded otherwise.
        assert!(matches!(
            j.finish_batch(b, &[created("ZD-0", 1)]),
            Err(JournalError::IncompleteBatch { missing: 1, .. })
        ));
        j.finish_batch(
            b,
            &[
                created("ZD-0", 1),
                ItemOutcome::Failed {
                    source_id: "ZD-1".into(),
                    stage: "create".into(),
                    error: "category: required".into(),
                },
            ],
        )
        .unwrap();
        // Created is final.
        assert!(matches!(
            j.finish_batch(b, &[created("ZD-0", 2)]),
            Err(JournalError::NotInBatch { .. })
        ));
        assert!(matches!(
            j.begin_batch(&["ZD-0"]),
            Err(JournalError::NotPending { .. })
        ));
        let s = j.summary().unwrap();
        assert_eq!(
            (s.records.pending, s.records.created, s.records.failed),
            (1, 1, 1)
        );
        assert_eq!(j.requeue_failed().unwrap(), 1);
        assert_eq!(j.next_pending(0, 10).unwrap().len(), 2);
        // The transaction that failed above left no batch half-begun.
        assert_eq!(j.summary().unwrap().batches.sending, 0);
    }

    #[test]
    fn upsert_keeps_sent_records_and_updates_unsent_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("run.db"), &info()).unwrap();
        j.upsert_pending(&pending(3)).unwrap();
        let b = j.begin_batch(&["ZD-0"]).unwrap();
        j.finish_batch(b, &[created("ZD-0", 7)]).unwrap();
        let mut again = pending(4);
        for r in &mut again {
            r.payload.push(' ');
        }
        again[2].payload = pending(3)[2].payload.clone();
        let r = j.upsert_pending(&again).unwrap();
        assert_eq!(
            r,
            UpsertReport {
                inserted: 1,
                unchanged: 1,
                updated: 1,
                frozen: 1
            }
        );
    }

    #[test]
    fn rejected_records_are_listed_and_come_back_when_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("run.db"), &info()).unwrap();
        let bad = RejectedRecord {
            source_id: "ZD-0".into(),
            file: "tickets.json".into(),
            line: Some(1),
            stage: "validation".into(),
            error: "=HYPERLINK(\"x\") is not an email".into(),
        };
        assert_eq!(j.reject(&[bad]).unwrap(), 1);
        assert!(j.next_pending(0, 10).unwrap().is_empty());
        assert_eq!(j.requeue_failed().unwrap(), 0, "no payload to send");
        let out = j.write_results(&dir.path().join("out")).unwrap();
        assert_eq!(out.errors, 1);
        let text = std::fs::read_to_string(out.errors_csv).unwrap();
        assert!(text.contains("'=HYPERLINK"), "{text}");
        j.upsert_pending(&pending(1)).unwrap();
        assert_eq!(j.next_pending(0, 10).unwrap().len(), 1);
    }
}
