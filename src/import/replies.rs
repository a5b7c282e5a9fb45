//! Follow-up conversation: after a ticket exists, post the rest of its history.
//!
//! HappyFox can backdate only a ticket's `created_at`, so every later entry is posted
//! afterwards, oldest first, one at a time per ticket (HappyFox does not support
//! concurrent updates to one ticket), many tickets in parallel under the client's POST
//! ceiling. Staff replies never email the customer (`update_customer: false`,
//! `send_survey: false`). The ticket's final state rides on its last staff post; a closing
//! private note is added only when the last entry cannot carry it and something must
//! change.
//!
//! Every message is a journal row: its intent is committed before the POST, its outcome
//! after. A message whose outcome is unknown (timeout, dropped connection, crash) is
//! reconciled by reading the ticket back and looking for it among the updates after the
//! last one we know we posted, so nothing is posted twice and nothing is lost.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::attachments::MAX_REQUEST_BYTES;
use crate::client::{Client, ClientError, FilePart, WriteOutcome};
use crate::import::fetch::Fetcher;
use crate::import::outgoing::{MESSAGE_HTML, prepare_outgoing};
use crate::journal::{
    AttachmentFailure, Journal, JournalError, MessageOutcome, MessageRow, NewMessage,
    TicketConversation,
};
use crate::mapping::template::html_to_text;
use crate::payload::TicketPlan;
use crate::payload::conversation::plan_messages_as;
use crate::schema::Schema;

/// Tickets whose conversations are posted at the same time (each one message at a time).
pub(crate) const DEFAULT_TICKETS_IN_PARALLEL: usize = 32;

/// Why posting conversations stopped.
#[derive(Debug, thiserror::Error)]
pub enum RepliesError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("the journal lock was poisoned by a crashed task")]
    Poisoned,
}

/// The journal's rows for a ticket's planned messages ([`plan_messages`]), in order.
pub fn journal_messages(
    ticket: &TicketPlan,
    schema: &Schema,
    closing_staff: Option<u64>,
) -> Vec<NewMessage> {
    journal_messages_as(ticket, schema, closing_staff, ticket.transcript)
}

/// [`journal_messages`] in the history mode given (see [`plan_messages_as`]).
pub(crate) fn journal_messages_as(
    ticket: &TicketPlan,
    schema: &Schema,
    closing_staff: Option<u64>,
    as_transcript: bool,
) -> Vec<NewMessage> {
    plan_messages_as(ticket, schema, closing_staff, as_transcript)
        .into_iter()
        .map(|m| NewMessage {
            position: m.position,
            key: m.key,
            content: m.content,
            kind: m.kind.name().to_string(),
            author: m.author,
            author_name: m.author_name,
            payload: Value::Object(m.body).to_string(),
        })
        .collect()
}

/// The endpoint a message kind is posted to.
fn endpoint(kind: &str, ticket: u64) -> String {
    match kind {
        "staff_reply" => format!("ticket/{ticket}/staff_update/"),
        "contact_reply" => format!("ticket/{ticket}/user_reply/"),
        _ => format!("ticket/{ticket}/staff_pvtnote/"),
    }
}

/// What posting did, for the summary line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RepliesReport {
    pub posted: u64,
    pub failed: u64,
    pub reconciled: u64,
    pub contacts_created: u64,
    /// Files sent with messages (attachments and inline images).
    pub attachments_sent: u64,
    /// Attachments left out of a posted message; listed in `results`.
    pub attachment_failures: u64,
    /// Tickets left for later: a message an earlier run sent may still land, so it
    /// cannot be concluded absent yet, and the ticket's later messages wait behind it.
    pub deferred: u64,
    /// When the earliest deferred message can be concluded (ms since the epoch).
    pub deferred_until: Option<i64>,
}

impl RepliesReport {
    /// Adds the counts of a later pass of the same run.
    pub(crate) fn absorb(&mut self, later: RepliesReport) {
        self.posted += later.posted;
        self.failed += later.failed;
        self.reconciled += later.reconciled;
        self.contacts_created += later.contacts_created;
        self.attachments_sent += later.attachments_sent;
        self.attachment_failures += later.attachment_failures;
        self.deferred = later.deferred;
        self.deferred_until = later.deferred_until;
    }
}

#[derive(Default)]
struct Counters {
    posted: AtomicU64,
    failed: AtomicU64,
    reconciled: AtomicU64,
    contacts_created: AtomicU64,
    attachments_sent: AtomicU64,
    attachment_failures: AtomicU64,
    deferred: AtomicU64,
    /// `i64::MAX` while nothing is deferred.
    deferred_until: AtomicI64,
}

impl Counters {
    fn defer(&self, ready_at: i64) {
        self.deferred.fetch_add(1, Ordering::Relaxed);
        self.deferred_until.fetch_min(ready_at, Ordering::Relaxed);
    }
}

/// Posts every pending message of every created ticket in the journal, without reading
/// attachments (each is reported as not sent): see [`post_all_with`].
pub async fn post_all(
    client: &Client,
    journal: &Mutex<Journal>,
    parallel: usize,
    stop: &AtomicBool,
) -> Result<RepliesReport, RepliesError> {
    post_all_with(client, journal, parallel, stop, None).await
}

/// Posts every pending message of every created ticket in the journal; `fetcher` reads
/// their attachments and inline images from the export.
pub async fn post_all_with(
    client: &Client,
    journal: &Mutex<Journal>,
    parallel: usize,
    stop: &AtomicBool,
    fetcher: Option<&Fetcher>,
) -> Result<RepliesReport, RepliesError> {
    post_all_timed(client, journal, parallel, stop, fetcher, Duration::ZERO).await
}

/// [`post_all_with`] on an account whose writes may take up to `lag` after their answer
/// (or timeout) to show on the ticket: an unknown post is read back only after it.
pub(crate) async fn post_all_timed(
    client: &Client,
    journal: &Mutex<Journal>,
    parallel: usize,
    stop: &AtomicBool,
    fetcher: Option<&Fetcher>,
    lag: Duration,
) -> Result<RepliesReport, RepliesError> {
    let counters = Counters {
        deferred_until: AtomicI64::new(i64::MAX),
        ..Counters::default()
    };
    let mut after = 0;
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let page = lock(journal)?.conversations_to_post(after, 256)?;
        let Some(last) = page.last() else { break };
        after = last.row;
        let results: Vec<Result<(), RepliesError>> = futures::stream::iter(page)
            .map(|t| post_ticket(client, journal, t, stop, &counters, fetcher, lag))
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
        let mut stopped = false;
        for r in results {
            match r {
                // Ctrl-C: what waited for its turn was not sent; the rest is for the next run.
                Err(RepliesError::Client(ClientError::Stopped { .. })) => stopped = true,
                r => r?,
            }
        }
        if stopped {
            break;
        }
    }
    Ok(RepliesReport {
        posted: counters.posted.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        reconciled: counters.reconciled.load(Ordering::Relaxed),
        contacts_created: counters.contacts_created.load(Ordering::Relaxed),
        attachments_sent: counters.attachments_sent.load(Ordering::Relaxed),
        attachment_failures: counters.attachment_failures.load(Ordering::Relaxed),
        deferred: counters.deferred.load(Ordering::Relaxed),
        deferred_until: Some(counters.deferred_until.load(Ordering::Relaxed))
            .filter(|t| *t != i64::MAX),
    })
}

fn lock(journal: &Mutex<Journal>) -> Result<std::sync::MutexGuard<'_, Journal>, RepliesError> {
    journal.lock().map_err(|_| RepliesError::Poisoned)
}

/// One ticket's messages, strictly in order.
async fn post_ticket(
    client: &Client,
    journal: &Mutex<Journal>,
    ticket: TicketConversation,
    stop: &AtomicBool,
    counters: &Counters,
    fetcher: Option<&Fetcher>,
    lag: Duration,
) -> Result<(), RepliesError> {
    let mut poster = Poster {
        client,
        journal,
        counters,
        stop,
        lag,
        last_update: lock(journal)?.last_update_id(&ticket.source_id)?,
        ticket: &ticket,
    };
    for m in &ticket.messages {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut body: Map<String, Value> = serde_json::from_str(&m.payload).unwrap_or_default();
        // A message left `sending` by an earlier attempt may already be there, or may
        // still arrive until its deadline: only a read-back after that proves absence.
        if m.state == "sending" {
            let ready_at = m.deadline.unwrap_or(0) + super::send::ms(lag);
            let ripe = super::send::now_ms() >= ready_at;
            if poster.reconciled(m, &body, 0).await? {
                continue;
            }
            if !ripe {
                counters.defer(ready_at);
                return Ok(());
            }
        }
        if m.kind == "contact_reply" && !poster.add_contact(m, &mut body).await? {
            continue;
        }
        let ready = poster.prepare(m, body, fetcher).await?;
        if poster.send(m, &ready).await? == Sent::LeftSending {
            // The next run reconciles it first; later messages must wait for it.
            return Ok(());
        }
    }
    Ok(())
}

/// A message body with its files read and its inline images uploaded.
struct Ready {
    body: Map<String, Value>,
    parts: Vec<FilePart>,
    /// Files it carries (attachments and inline images), counted once it is posted.
    files: u64,
}

/// How sending one message ended.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    /// Posted, reconciled as posted, or failed for good: the ticket goes on.
    Settled,
    /// Its outcome is still unknown after every attempt: it stays `sending`.
    LeftSending,
}

/// Attempts at a message whose outcome stays unknown, before it is left to the next run.
const UNKNOWN_ATTEMPTS: u32 = 5;
/// The time a slow write is given to land before the ticket is read back.
const SETTLE: Duration = Duration::from_millis(500);

/// Posts one ticket's messages and keeps its newest update id, which is where
/// reconciliation starts looking.
struct Poster<'a> {
    client: &'a Client,
    journal: &'a Mutex<Journal>,
    counters: &'a Counters,
    stop: &'a AtomicBool,
    ticket: &'a TicketConversation,
    last_update: Option<u64>,
    /// How long a write may take after its answer to show on the ticket.
    lag: Duration,
}

impl Poster<'_> {
    /// Whether `m` is already on the ticket (after the last update we know of); if so it
    /// is journaled as posted, with `files` sent.
    async fn reconciled(
        &mut self,
        m: &MessageRow,
        body: &Map<String, Value>,
        files: u64,
    ) -> Result<bool, RepliesError> {
        let Some(id) =
            find_posted(self.client, self.ticket.happyfox_id, body, self.last_update).await?
        else {
            return Ok(false);
        };
        lock(self.journal)?.finish_message(
            m.id,
            &MessageOutcome::Posted {
                update_id: Some(id),
            },
        )?;
        self.counters.reconciled.fetch_add(1, Ordering::Relaxed);
        self.counters
            .attachments_sent
            .fetch_add(files, Ordering::Relaxed);
        self.last_update = Some(id);
        Ok(true)
    }

    /// A contact reply is posted as its author's contact (looked up, or created with
    /// login disabled); `false`, with the message failed, when there is none.
    async fn add_contact(
        &self,
        m: &MessageRow,
        body: &mut Map<String, Value>,
    ) -> Result<bool, RepliesError> {
        let (email, name) = if m.author.is_empty() {
            (&self.ticket.contact_email, &self.ticket.contact_name)
        } else {
            (&m.author, &m.author_name)
        };
        match contact_id(self.client, self.journal, email, name, self.counters).await? {
            Some(user) => {
                body.insert("user".into(), json!(user));
                Ok(true)
            }
            None => {
                self.fail(
                    m,
                    format!("contact {email:?} could not be found or created"),
                )?;
                Ok(false)
            }
        }
    }

    /// Files and inline images: whatever cannot be read is reported, and the message is
    /// posted without it.
    async fn prepare(
        &self,
        m: &MessageRow,
        body: Map<String, Value>,
        fetcher: Option<&Fetcher>,
    ) -> Result<Ready, RepliesError> {
        let outgoing = prepare_outgoing(self.client, fetcher, body, MESSAGE_HTML).await;
        let mut failures = outgoing.failures;
        let mut groups = outgoing.groups.into_iter();
        let first = groups.next().unwrap_or_default();
        // A reply's files beyond its first 25 MB would need extra notes between this
        // message and the next, which the journal's positions cannot order yet: reported
        // rather than sent in a way that could be repeated.
        failures.extend(groups.flatten().map(|(r, _)| AttachmentFailure {
            error: format!(
                "attachment {:?}: did not fit in this message's {MAX_REQUEST_BYTES} bytes per request with its other attachments; not sent (only a ticket's first message is split across notes)",
                r.name
            ),
            name: r.name,
        }));
        if !failures.is_empty() {
            lock(self.journal)?.record_attachment_failures(
                &self.ticket.source_id,
                m.position,
                &failures,
            )?;
            self.counters
                .attachment_failures
                .fetch_add(failures.len() as u64, Ordering::Relaxed);
        }
        let parts: Vec<FilePart> = first.iter().map(|(_, r)| r.file_part()).collect();
        Ok(Ready {
            files: outgoing.inline_uploaded + parts.len() as u64,
            body: outgoing.fields,
            parts,
        })
    }

    /// Posts `m`, its intent journaled before each attempt; an unknown outcome is
    /// looked for on the ticket before the next attempt.
    async fn send(&mut self, m: &MessageRow, ready: &Ready) -> Result<Sent, RepliesError> {
        let path = endpoint(&m.kind, self.ticket.happyfox_id);
        for attempt in 0..UNKNOWN_ATTEMPTS {
            {
                let mut journal = lock(self.journal)?;
                if ready.parts.is_empty() {
                    journal.begin_message(m.id)?;
                } else {
                    let lease = journal.lease() + super::send::UPLOAD_ALLOWANCE;
                    journal.begin_message_leased(m.id, lease)?;
                }
            }
            let outcome = if ready.parts.is_empty() {
                self.client.post_json(&path, &ready.body).await
            } else {
                self.client
                    .post_multipart(&path, &ready.body, &ready.parts)
                    .await
            };
            let outcome = match outcome {
                // Stopped before its first attempt left: nothing can land. After an
                // unknown outcome it stays `sending`, to be looked for next time.
                Err(e @ ClientError::Stopped { .. }) if attempt == 0 => {
                    lock(self.journal)?.unsent_message(m.id)?;
                    return Err(e.into());
                }
                r => r?,
            };
            match outcome {
                WriteOutcome::Done(v) => {
                    let id = latest_update_id(&v);
                    lock(self.journal)?
                        .finish_message(m.id, &MessageOutcome::Posted { update_id: id })?;
                    self.counters.posted.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .attachments_sent
                        .fetch_add(ready.files, Ordering::Relaxed);
                    self.last_update = id.or(self.last_update);
                    return Ok(Sent::Settled);
                }
                WriteOutcome::Rejected(e) => {
                    self.fail(m, e.to_string())?;
                    return Ok(Sent::Settled);
                }
                WriteOutcome::Items(_) => {
                    self.fail(m, "unexpected list answer to a single post".into())?;
                    return Ok(Sent::Settled);
                }
                WriteOutcome::Unknown(_) => {
                    tokio::time::sleep(SETTLE.max(self.lag)).await;
                    if self.reconciled(m, &ready.body, ready.files).await? {
                        return Ok(Sent::Settled);
                    }
                    if self.stop.load(Ordering::SeqCst) {
                        break;
                    }
                }
            }
        }
        Ok(Sent::LeftSending)
    }

    fn fail(&self, m: &MessageRow, error: String) -> Result<(), RepliesError> {
        lock(self.journal)?.finish_message(m.id, &MessageOutcome::Failed { error })?;
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The id of the newest update in a ticket-detail answer.
fn latest_update_id(ticket: &Value) -> Option<u64> {
    ticket
        .get("updates")
        .and_then(Value::as_array)
        .and_then(|u| {
            u.iter()
                .filter_map(|x| x.get("update_id").and_then(Value::as_u64))
                .max()
        })
}

/// Text used to recognise a message among a ticket's updates, whatever HTML cleaning the
/// server applied.
fn fingerprint(html: &str) -> String {
    let text = html_to_text(html);
    let words: Vec<&str> = text.split_whitespace().collect();
    let joined = words.join(" ");
    joined.chars().take(400).collect()
}

/// Reads the ticket back and finds the update carrying `body` after `after`.
async fn find_posted(
    client: &Client,
    ticket: u64,
    body: &Map<String, Value>,
    after: Option<u64>,
) -> Result<Option<u64>, RepliesError> {
    let ours = body
        .get("html")
        .or_else(|| body.get("text"))
        .and_then(Value::as_str)
        .map(fingerprint)
        .unwrap_or_default();
    let detail = client.get_json(&format!("ticket/{ticket}/"), &[]).await?;
    let Some(updates) = detail.get("updates").and_then(Value::as_array) else {
        return Ok(None);
    };
    for u in updates {
        let Some(id) = u.get("update_id").and_then(Value::as_u64) else {
            continue;
        };
        if after.is_some_and(|a| id <= a) {
            continue;
        }
        let msg = u.get("message");
        let theirs = ["html", "text"]
            .iter()
            .filter_map(|k| msg.and_then(|m| m.get(*k)).and_then(Value::as_str))
            .map(fingerprint)
            .any(|f| !f.is_empty() && f == ours);
        if theirs {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// A contact's HappyFox id: from the journal, else looked up, else created with login
/// disabled. Existing contacts are never re-posted (an upsert would reset their custom
/// fields).
async fn contact_id(
    client: &Client,
    journal: &Mutex<Journal>,
    email: &str,
    name: &str,
    counters: &Counters,
) -> Result<Option<u64>, RepliesError> {
    if email.is_empty() {
        return Ok(None);
    }
    if let Some(id) = lock(journal)?.contact_id(email)? {
        return Ok(Some(id));
    }
    let encoded: String = email
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let found = match client.get_json(&format!("user/{encoded}/"), &[]).await {
        Ok(v) => v.get("id").and_then(Value::as_u64),
        Err(ClientError::Rejected { error, .. }) if error.status == 404 => None,
        Err(e) => return Err(e.into()),
    };
    let id = match found {
        Some(id) => Some(id),
        None => {
            let name = if name.trim().is_empty() { email } else { name };
            let body = json!({ "name": name, "email": email, "is_login_enabled": "FALSE" });
            match client.post_json("users/", &body).await? {
                WriteOutcome::Done(v) => {
                    counters.contacts_created.fetch_add(1, Ordering::Relaxed);
                    v.get("id").and_then(Value::as_u64).or_else(|| {
                        v.as_array()
                            .and_then(|a| a.first())
                            .and_then(|x| x.get("id"))
                            .and_then(Value::as_u64)
                    })
                }
                // An upsert keyed on email is safe to repeat for a contact we just saw
                // did not exist; look it up again next time.
                _ => None,
            }
        }
    };
    if let Some(id) = id {
        lock(journal)?.set_contact_id(email, id)?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_markup_and_spacing() {
        assert_eq!(
            fingerprint("<p>Hello <b>there</b></p>\n<p>Bye</p>"),
            fingerprint("Hello there\nBye")
        );
        assert_ne!(fingerprint("<p>Hello</p>"), fingerprint("<p>Goodbye</p>"));
    }

    #[test]
    fn endpoints() {
        assert_eq!(endpoint("staff_reply", 7), "ticket/7/staff_update/");
        assert_eq!(endpoint("private_note", 7), "ticket/7/staff_pvtnote/");
        assert_eq!(endpoint("final_note", 7), "ticket/7/staff_pvtnote/");
        assert_eq!(endpoint("contact_reply", 7), "ticket/7/user_reply/");
    }
}
