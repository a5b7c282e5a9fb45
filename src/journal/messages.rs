//! The conversation half of the journal: one row per later message of a ticket, the
//! contacts already resolved to HappyFox ids, and the attachments a posted ticket or
//! message went without.
//!
//! States are the records' own: `pending → sending → created | failed`.
//!
//! HappyFox cannot backdate or delete an update, so each message must be posted exactly
//! once and in order. Like batches, a message's intent (`sending`) is committed before its
//! POST; a message found `sending` when a later run starts has an unknown outcome and is
//! reconciled by reading the ticket back before it is sent again.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Journal, JournalError, now_ms};

/// A message to store when its ticket is enqueued.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// 1-based order within the ticket's conversation.
    pub position: i64,
    /// The entry's key in the source (see `payload::EntryPlan::key`): a delta run posts
    /// the entries whose key the journal has not seen.
    pub key: String,
    /// A hash of what it says (`payload::conversation::message_content`).
    pub content: String,
    /// `staff_reply`, `private_note`, `contact_reply` or `final_note`.
    pub kind: String,
    /// The original author's email (contacts are resolved to ids when posting).
    pub author: String,
    pub author_name: String,
    /// The JSON body to post (without `user` for contact replies).
    pub payload: String,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    pub id: i64,
    pub position: i64,
    pub kind: String,
    pub author: String,
    pub author_name: String,
    pub payload: String,
    /// `pending`, or `sending` when an earlier attempt's outcome is unknown.
    pub state: String,
    pub attempts: i64,
    /// For a message `sending`: until when (ms since the epoch) that attempt may still
    /// land, so it must not be concluded absent before.
    pub deadline: Option<i64>,
}

/// A created ticket with messages still to post, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketConversation {
    /// The record's row id, for paging.
    pub row: i64,
    pub source_id: String,
    pub happyfox_id: u64,
    /// The ticket contact's email (from the create payload), the fallback author of
    /// contact replies whose own author has no email.
    pub contact_email: String,
    pub contact_name: String,
    pub messages: Vec<MessageRow>,
}

/// How a message ended.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageOutcome {
    Posted { update_id: Option<u64> },
    Failed { error: String },
}

/// Messages by state, with `created` named `posted`. (`status` shows the same counts
/// through [`Journal::summary`].)
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MessageCounts {
    pub pending: u64,
    pub sending: u64,
    pub posted: u64,
    pub failed: u64,
}

impl Journal {
    /// Stores the messages of enqueued tickets; messages already stored (same ticket and
    /// position) are left as they are, so a re-run never posts one twice.
    pub fn add_messages(
        &mut self,
        tickets: &[(String, Vec<NewMessage>)],
    ) -> Result<u64, JournalError> {
        let now = now_ms();
        let tx = self.conn.transaction()?;
        let mut added = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO messages
                   (ticket_source_id, position, kind, author, author_name, payload, state, updated_at,
                    entry_key, content_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9)",
            )?;
            for (source_id, messages) in tickets {
                for m in messages {
                    added += insert.execute(params![
                        source_id,
                        m.position,
                        m.kind,
                        m.author,
                        m.author_name,
                        m.payload,
                        now,
                        m.key,
                        m.content
                    ])? as u64;
                }
            }
        }
        tx.commit()?;
        Ok(added)
    }

    /// Created tickets that still have messages to post, after record row `after`.
    pub(crate) fn conversations_to_post(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<TicketConversation>, JournalError> {
        let mut tickets = self.conn.prepare_cached(
            "SELECT r.id, r.source_id, r.happyfox_id, p.payload FROM records r
             LEFT JOIN payloads p ON p.record_id = r.id
             WHERE r.id > ?1 AND r.state = 'created' AND r.happyfox_id IS NOT NULL
               AND EXISTS (SELECT 1 FROM messages m WHERE m.ticket_source_id = r.source_id
                           AND m.state IN ('pending', 'sending'))
             ORDER BY r.id LIMIT ?2",
        )?;
        let mut messages = self.conn.prepare_cached(
            "SELECT id, position, kind, coalesce(author, ''), coalesce(author_name, ''),
                    coalesce(payload, '{}'), state, attempts,
                    CASE WHEN state = 'sending' THEN coalesce(deadline, updated_at + ?2) END
             FROM messages WHERE ticket_source_id = ?1 AND state IN ('pending', 'sending')
             ORDER BY position",
        )?;
        let rows = tickets
            .query_map(params![after, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (row, source_id, happyfox_id, payload) in rows {
            let payload: serde_json::Value = payload
                .and_then(|p| serde_json::from_str(&p).ok())
                .unwrap_or_default();
            let text = |k: &str| {
                payload
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let list = messages
                .query_map(
                    params![&source_id, super::deadlines::ms(super::DEFAULT_LEASE)],
                    |r| {
                        Ok(MessageRow {
                            id: r.get(0)?,
                            position: r.get(1)?,
                            kind: r.get(2)?,
                            author: r.get(3)?,
                            author_name: r.get(4)?,
                            payload: r.get(5)?,
                            state: r.get(6)?,
                            attempts: r.get(7)?,
                            deadline: r.get(8)?,
                        })
                    },
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            out.push(TicketConversation {
                row,
                source_id,
                happyfox_id: u64::try_from(happyfox_id).unwrap_or_default(),
                contact_email: text("email"),
                contact_name: text("name"),
                messages: list,
            });
        }
        Ok(out)
    }

    /// Commits the intent to post a message, before the POST.
    pub(crate) fn begin_message(&mut self, id: i64) -> Result<(), JournalError> {
        self.begin_message_leased(id, self.lease())
    }

    /// [`Journal::begin_message`] for a post that may land until `lease` after this run's
    /// last heartbeat (longer for an upload).
    pub(crate) fn begin_message_leased(
        &mut self,
        id: i64,
        lease: std::time::Duration,
    ) -> Result<(), JournalError> {
        let lease = super::deadlines::ms(lease);
        self.conn
            .prepare_cached(
                "UPDATE messages SET state = 'sending', attempts = attempts + 1, updated_at = ?2,
                    run = ?3, sent_at = ?2, lease = ?4, deadline = ?2 + ?4
                 WHERE id = ?1 AND state IN ('pending', 'sending')",
            )?
            .execute(params![id, now_ms(), self.run, lease])?;
        Ok(())
    }

    /// A message whose intent was journaled but whose POST never left (Ctrl-C came while
    /// it waited for its turn) is pending again, so the next run posts it at once instead
    /// of waiting out a deadline for a request that does not exist.
    pub(crate) fn unsent_message(&mut self, id: i64) -> Result<(), JournalError> {
        self.conn
            .prepare_cached(
                "UPDATE messages SET state = 'pending', deadline = NULL, updated_at = ?2
                 WHERE id = ?1 AND state = 'sending'",
            )?
            .execute(params![id, now_ms()])?;
        Ok(())
    }

    /// Records a message's outcome.
    pub(crate) fn finish_message(
        &mut self,
        id: i64,
        outcome: &MessageOutcome,
    ) -> Result<(), JournalError> {
        let now = now_ms();
        match outcome {
            MessageOutcome::Posted { update_id } => self
                .conn
                .prepare_cached(
                    "UPDATE messages SET state = 'created', happyfox_update_id = ?2, last_error = NULL, updated_at = ?3
                     WHERE id = ?1",
                )?
                .execute(params![id, update_id.map(|u| i64::try_from(u).unwrap_or(i64::MAX)), now])?,
            MessageOutcome::Failed { error } => self
                .conn
                .prepare_cached(
                    "UPDATE messages SET state = 'failed', last_error = ?2, updated_at = ?3 WHERE id = ?1",
                )?
                .execute(params![id, error, now])?,
        };
        Ok(())
    }

    /// Failed messages go back to pending (`--retry-failed`).
    pub(crate) fn requeue_failed_messages(&mut self) -> Result<u64, JournalError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE messages SET state = 'pending', updated_at = ?1 WHERE state = 'failed'",
            )?
            .execute([now_ms()])?;
        Ok(n as u64)
    }

    /// Messages by state.
    pub fn message_counts(&self) -> Result<MessageCounts, JournalError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT state, count(*) FROM messages GROUP BY state")?;
        let mut c = MessageCounts::default();
        for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (state, n) = row?;
            let n = n as u64;
            match state.as_str() {
                "pending" => c.pending = n,
                "sending" => c.sending = n,
                "created" => c.posted = n,
                "failed" => c.failed = n,
                _ => {}
            }
        }
        Ok(c)
    }

    /// Failed messages as (ticket source id, position, kind, error). `results` writes the
    /// same rows into `errors.csv` from its own query.
    pub fn failed_messages(&self) -> Result<Vec<(String, i64, String, String)>, JournalError> {
        let mut st = self.conn.prepare_cached(
            "SELECT ticket_source_id, position, kind, coalesce(last_error, '') FROM messages
             WHERE state = 'failed' ORDER BY ticket_source_id, position",
        )?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The newest update id posted for a ticket: later updates are where an unknown
    /// message would be.
    pub(crate) fn last_update_id(&self, source_id: &str) -> Result<Option<u64>, JournalError> {
        let id: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT max(happyfox_update_id) FROM messages WHERE ticket_source_id = ?1 AND state = 'created'",
            )?
            .query_row([source_id], |r| r.get(0))?;
        Ok(id.and_then(|i| u64::try_from(i).ok()))
    }

    /// A contact already resolved to its HappyFox id.
    pub(crate) fn contact_id(&self, email: &str) -> Result<Option<u64>, JournalError> {
        let id: Option<i64> = self
            .conn
            .prepare_cached("SELECT id FROM contacts WHERE email = ?1")?
            .query_row([email.to_lowercase()], |r| r.get(0))
            .optional()?;
        Ok(id.and_then(|i| u64::try_from(i).ok()))
    }

    pub(crate) fn set_contact_id(&mut self, email: &str, id: u64) -> Result<(), JournalError> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO contacts (email, id) VALUES (?1, ?2)")?
            .execute(params![
                email.to_lowercase(),
                i64::try_from(id).unwrap_or(i64::MAX)
            ])?;
        Ok(())
    }

    /// Records attachments that were left out of a ticket (`position` 0) or a message:
    /// the post went without them, and `results` lists each under stage `attachment`.
    pub(crate) fn record_attachment_failures(
        &mut self,
        ticket_source_id: &str,
        position: i64,
        failures: &[AttachmentFailure],
    ) -> Result<(), JournalError> {
        if failures.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO attachment_failures
                   (ticket_source_id, position, name, error, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for f in failures {
                put.execute(params![ticket_source_id, position, f.name, f.error, now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every attachment left out, as (ticket source id, position, name, error).
    pub fn attachment_failures(&self) -> Result<Vec<(String, i64, String, String)>, JournalError> {
        let mut st = self.conn.prepare_cached(
            "SELECT ticket_source_id, position, name, error FROM attachment_failures
             ORDER BY ticket_source_id, position, name",
        )?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

/// A message of a ticket in any state, as verify compares it with HappyFox.
#[derive(Debug, Clone, PartialEq)]
pub struct JournaledMessage {
    pub id: i64,
    pub position: i64,
    pub kind: String,
    pub author: String,
    pub author_name: String,
    pub payload: String,
    pub state: String,
    pub update_id: Option<u64>,
}

impl Journal {
    /// Every message of a ticket, in position order, whatever its state.
    pub fn ticket_messages(&self, source_id: &str) -> Result<Vec<JournaledMessage>, JournalError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, position, kind, coalesce(author, ''), coalesce(author_name, ''),
                    coalesce(payload, '{}'), state, happyfox_update_id
             FROM messages WHERE ticket_source_id = ?1 ORDER BY position",
        )?;
        let rows = st
            .query_map([source_id], |r| {
                Ok(JournaledMessage {
                    id: r.get(0)?,
                    position: r.get(1)?,
                    kind: r.get(2)?,
                    author: r.get(3)?,
                    author_name: r.get(4)?,
                    payload: r.get(5)?,
                    state: r.get(6)?,
                    update_id: r
                        .get::<_, Option<i64>>(7)?
                        .and_then(|u| u64::try_from(u).ok()),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// A posted message that HappyFox no longer shows (verify read the ticket and found
    /// no update with it): back to `pending`, so the next import posts it once more. Only
    /// a `created` message moves; the return says whether it did.
    pub fn mark_message_missing(&mut self, id: i64) -> Result<bool, JournalError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE messages SET state = 'pending', happyfox_update_id = NULL,
                        last_error = 'missing from HappyFox when verified', updated_at = ?2
                 WHERE id = ?1 AND state = 'created'",
            )?
            .execute(params![id, now_ms()])?;
        if n == 1 {
            self.conn.execute_batch(super::verified::REPOSTED_TABLE)?;
            self.conn
                .prepare_cached("INSERT OR IGNORE INTO reposted (message_id) VALUES (?1)")?
                .execute([id])?;
        }
        Ok(n == 1)
    }
}

/// One attachment that could not be sent with its ticket or message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentFailure {
    /// The name HappyFox would have shown.
    pub name: String,
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{created, info, pending};
    use super::*;

    fn message(position: i64) -> NewMessage {
        NewMessage {
            position,
            key: format!("id:{position}"),
            content: String::new(),
            kind: "staff_reply".into(),
            author: "agent@acme.example".into(),
            author_name: String::new(),
            payload: format!(r#"{{"html":"reply {position}"}}"#),
        }
    }

    #[test]
    fn a_message_that_never_left_is_pending_again_not_of_unknown_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("run.db"), &info()).unwrap();
        j.upsert_pending(&pending(1)).unwrap();
        j.add_messages(&[("ZD-0".into(), vec![message(1)])])
            .unwrap();
        let b = j.begin_batch(&["ZD-0"]).unwrap();
        j.finish_batch(b, &[created("ZD-0", 7)]).unwrap();
        let id = j.conversations_to_post(0, 10).unwrap()[0].messages[0].id;
        j.begin_message(id).unwrap();
        assert_eq!(j.message_counts().unwrap().sending, 1);
        j.unsent_message(id).unwrap();
        let counts = j.message_counts().unwrap();
        assert_eq!((counts.sending, counts.pending), (0, 1));
    }

    #[test]
    fn retry_failed_puts_refused_messages_back_and_leaves_posted_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("run.db"), &info()).unwrap();
        j.upsert_pending(&pending(1)).unwrap();
        j.add_messages(&[("ZD-0".into(), vec![message(1), message(2)])])
            .unwrap();
        let b = j.begin_batch(&["ZD-0"]).unwrap();
        j.finish_batch(b, &[created("ZD-0", 7)]).unwrap();
        let ticket = j.conversations_to_post(0, 10).unwrap().remove(0);
        let (first, second) = (ticket.messages[0].id, ticket.messages[1].id);
        j.begin_message(first).unwrap();
        j.finish_message(first, &MessageOutcome::Posted { update_id: Some(1) })
            .unwrap();
        j.begin_message(second).unwrap();
        let refused = MessageOutcome::Failed {
            error: "HTTP 400".into(),
        };
        j.finish_message(second, &refused).unwrap();
        assert!(j.conversations_to_post(0, 10).unwrap().is_empty());

        assert_eq!(j.requeue_failed_messages().unwrap(), 1);
        let again = j.conversations_to_post(0, 10).unwrap();
        let ids: Vec<i64> = again[0].messages.iter().map(|m| m.id).collect();
        assert_eq!(
            ids,
            vec![second],
            "only the refused message is posted again"
        );
        assert_eq!(j.requeue_failed_messages().unwrap(), 0);
    }
}
