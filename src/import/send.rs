//! The sending half of the import: pending records out in batches, every outcome into the
//! journal, ambiguous batches reconciled before anything in them is sent again.
//!
//! The journal is the only authority on what may be sent. A batch's intent is committed
//! before its POST; its outcome is recorded as soon as the answer arrives; a batch whose
//! answer was lost stays `sending` until a search for its markers says which members
//! exist. The journal lives on this task alone: HTTP work runs in spawned tasks that only
//! hand results back, so a commit never races another, and stopping (Ctrl-C, a fatal
//! answer) is a matter of not starting new work and waiting for what is in flight.
//!
//! Concurrency comes from the client: it admits requests within the POST ceiling and its
//! adaptive limit. This loop keeps only a couple of batches more in flight than the client
//! will send at once, because every batch begun and not yet answered is one a crash would
//! leave to reconcile (a search per member).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::fetch::Fetcher;
use super::marker::MarkerKind;
use super::outgoing::{
    ATTACHMENTS_KEY, Outgoing, TICKET_HTML, as_fields, continuation_notes, has_attachments,
    has_inline_images, prepare_outgoing,
};
use super::progress::{Progress, Snapshot};
use super::reconcile::{Lookup, lookup_all, merge};
use crate::attachments::MAX_REQUEST_BYTES;
use crate::client::{Client, ClientError, FilePart, ItemResult, WriteOutcome};
use crate::journal::{
    AttachmentFailure, BatchId, ItemOutcome, Journal, JournalError, RejectedRecord,
};

/// Tickets per bulk create unless `--batch-size` says fewer.
pub(crate) const BATCH_SIZE: usize = crate::happyfox::MAX_BULK_CREATE;

/// Bytes of payload per bulk create: HappyFox takes 25 MB per request, and 80% of it
/// leaves room for the JSON around the payloads and for the inline images' new URLs.
pub(crate) const BULK_BYTES: u64 = crate::happyfox::MAX_REQUEST_BYTES / 5 * 4;

/// How often the journal hears that this run's requests are still in flight.
pub(crate) const HEARTBEAT: Duration = Duration::from_millis(500);
/// What a lease adds to the request timeout: the heartbeats a busy run may miss.
pub(crate) const LEASE_SLACK: Duration = Duration::from_secs(5);
/// The extra time the client gives an upload of the largest request (25 MB at 256 KiB/s),
/// so an upload's lease outlasts its timeout too.
pub(crate) const UPLOAD_ALLOWANCE: Duration = Duration::from_secs(100);

/// Knobs of the sender.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Tickets per bulk create.
    pub batch_size: usize,
    /// Wait before searching for an ambiguous batch's markers: a ticket created a moment
    /// ago may not be searchable yet, and a miss would send it twice.
    pub reconcile_delay: Duration,
    /// The POST ceiling, for the progress display and the ETA.
    pub post_per_min: u32,
    /// Reads attachments and inline images from the export (or their URLs). Without it,
    /// tickets are still created and every attachment is reported as not sent.
    pub fetcher: Option<Arc<Fetcher>>,
    /// The agent who signs the private notes carrying a first message's attachments
    /// beyond the first 25 MB; without one, those files are reported as not sent.
    pub closing_staff: Option<u64>,
    /// The client's longest wait for one answer: until then (plus `reconcile_delay`) a
    /// request of a run that died may still land, so nothing it sent is concluded absent
    /// before.
    pub request_timeout: Duration,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            batch_size: BATCH_SIZE,
            reconcile_delay: Duration::from_secs(5),
            post_per_min: crate::happyfox::DEFAULT_POST_CEILING,
            fetcher: None,
            closing_staff: None,
            request_timeout: crate::client::ClientOptions::default().request_timeout,
        }
    }
}

/// Ctrl-C presses, counted: the first stops sending, the second abandons what is in flight.
///
/// SIGINT is process-wide, so so is the listener behind every [`Interrupts`]: one task,
/// installed on first use, in one of two modes. Before sending starts (validation, the
/// plan, the confirmation) nothing has been sent and the journal only ever holds whole
/// transactions, so a press ends the process at once with exit 4
/// ([`Interrupts::exit_until_sending`]). Once sending starts ([`Interrupts::ctrl_c`]) the
/// first press is acknowledged on stderr at once and stops the client: every request
/// still waiting for a pacing token, a slot or the end of a lockout is dropped unsent,
/// and only those already on the wire are awaited.
#[derive(Debug, Clone)]
pub struct Interrupts(watch::Receiver<u32>);

/// What a press does now.
enum Mode {
    /// Nothing sent yet: exit 4.
    BeforeSending,
    /// Stop this client and count the press.
    Sending(Client),
}

struct Listener {
    presses: watch::Sender<u32>,
    mode: std::sync::Mutex<Mode>,
}

static LISTENER: std::sync::OnceLock<Listener> = std::sync::OnceLock::new();

/// The process's listener, its task spawned on the current runtime the first time.
fn listener() -> &'static Listener {
    let mut fresh = false;
    let l = LISTENER.get_or_init(|| {
        fresh = true;
        Listener {
            presses: watch::Sender::new(0),
            mode: std::sync::Mutex::new(Mode::BeforeSending),
        }
    });
    if fresh {
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                pressed(l);
            }
        });
    }
    l
}

fn pressed(l: &Listener) {
    let mode = l.mode.lock().unwrap_or_else(|p| p.into_inner());
    match &*mode {
        Mode::BeforeSending => {
            eprintln!(
                "\ninterrupted before anything was sent: the journal holds only what was complete; run the same command again to continue"
            );
            std::process::exit(crate::exit::Exit::Interrupted.code().into());
        }
        Mode::Sending(client) => {
            let mut n = 0;
            l.presses.send_modify(|p| {
                *p += 1;
                n = *p;
            });
            if n == 1 {
                client.stop();
                eprintln!(
                    "\nCtrl-C: stopping; nothing more is sent. Waiting for {} request(s) already sent (Ctrl-C again to abandon them; the next run looks them up)",
                    client.stats().on_wire
                );
            } else {
                eprintln!("Ctrl-C again: abandoning the requests in flight");
            }
        }
    }
}

impl Interrupts {
    /// Until [`Interrupts::ctrl_c`] is called, Ctrl-C ends the process with exit 4 (for
    /// the phase before anything is sent). Call inside the runtime.
    pub fn exit_until_sending() {
        let l = listener();
        *l.mode.lock().unwrap_or_else(|p| p.into_inner()) = Mode::BeforeSending;
    }

    /// Counts SIGINT (Ctrl-C) for the rest of the process; the first press stops
    /// `client` at once.
    pub(crate) fn ctrl_c(client: &Client) -> Interrupts {
        let l = listener();
        *l.mode.lock().unwrap_or_else(|p| p.into_inner()) = Mode::Sending(client.clone());
        Interrupts(l.presses.subscribe())
    }

    /// Ctrl-C presses so far.
    pub fn count(&self) -> u32 {
        *self.0.borrow()
    }

    /// Waits for the next press and returns the count; never returns if the counter
    /// is gone (nothing can press any more).
    pub async fn next(&mut self) -> u32 {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        *self.0.borrow_and_update()
    }

    /// Interrupts driven by the caller (tests).
    pub fn manual() -> (watch::Sender<u32>, Interrupts) {
        let (tx, rx) = watch::channel(0);
        (tx, Interrupts(rx))
    }
}

/// Why sending ended before every pending record had an outcome.
#[derive(Debug)]
pub enum Stop {
    /// Ctrl-C: nothing new was sent; in-flight requests were waited for.
    Interrupted,
    /// A second Ctrl-C: in-flight batches were abandoned and stay `sending`, to be
    /// reconciled by the next run.
    Abandoned { batches: usize },
    /// Nothing more can succeed (401/403, unreachable, throttled, a refused search).
    Client(ClientError),
    /// The journal cannot record outcomes: stop before sending anything it cannot track.
    Journal(JournalError),
    /// A sending task died (a bug); its batch stays `sending` for reconciliation.
    Internal(String),
}

/// What one call of [`send_all`] did.
#[derive(Debug, Default)]
pub struct SendReport {
    pub created: u64,
    pub failed: u64,
    /// Create requests: bulk creates and single (multipart) creates.
    pub batches: u64,
    /// Of `batches`, the single creates of tickets with attachments.
    pub single_creates: u64,
    /// Batches whose answer was lost (or that an earlier run left `sending`).
    pub unknown: u64,
    /// Members found in HappyFox by reconciliation.
    pub found: u64,
    /// Batches sent again after reconciliation found none of their members.
    pub resent: u64,
    /// Batches of an earlier run left for later: their requests may still land, so
    /// absence cannot be concluded yet (at the end of a run: none).
    pub deferred: u64,
    /// When the earliest deferred batch can be concluded (ms since the epoch).
    pub deferred_until: Option<i64>,
    /// Tickets the account already held, found by marker and recorded as created
    /// before anything was sent (a new journal, `--adopt`, or a lost journal log).
    pub adopted: u64,
    /// Files sent with ticket creates (attachments and inline images).
    pub attachments_sent: u64,
    /// Attachments left out of a created ticket; listed in `results`.
    pub attachment_failures: u64,
    pub stop: Option<Stop>,
}

/// A batch member: source id and the payload exactly as stored.
#[derive(Debug)]
pub(super) struct Member {
    pub(super) source_id: String,
    pub(super) payload: Value,
    /// The stored payload's length, what it adds to a request.
    pub(super) bytes: u64,
}

/// A finished HTTP task.
enum Done {
    /// A ticket with attachments, its files read and planned, ready for its multipart
    /// create once its extra notes are journaled.
    Prepared {
        batch: BatchId,
        members: Arc<Vec<Member>>,
        outgoing: Outgoing,
    },
    Sent {
        batch: BatchId,
        members: Arc<Vec<Member>>,
        result: Result<WriteOutcome, ClientError>,
        /// Attachments (inline images) left out, by member source id.
        failures: Vec<(String, Vec<AttachmentFailure>)>,
        files_sent: u64,
    },
    Reconciled {
        batch: BatchId,
        members: Arc<Vec<Member>>,
        result: Result<Vec<Lookup>, ClientError>,
        /// `Some(ready_at)` (ms since the epoch) when the search ran before the batch's
        /// requests could have landed: it proves presence, never absence.
        early: Option<i64>,
    },
}

impl SendReport {
    /// Adds the counts of a later pass of the same run.
    pub(crate) fn absorb(&mut self, later: SendReport) {
        self.created += later.created;
        self.failed += later.failed;
        self.batches += later.batches;
        self.single_creates += later.single_creates;
        self.unknown += later.unknown;
        self.found += later.found;
        self.resent += later.resent;
        self.adopted += later.adopted;
        self.attachments_sent += later.attachments_sent;
        self.attachment_failures += later.attachment_failures;
        self.deferred = later.deferred;
        self.deferred_until = later.deferred_until;
        self.stop = later.stop;
    }
}

/// Sends every pending record (reconciling unknown batches first) until done, stopped or
/// interrupted. Outcomes are in the journal whatever happens; the report says why it
/// stopped.
pub async fn send_all(
    journal: &mut Journal,
    client: &Client,
    kind: &MarkerKind,
    options: &SendOptions,
    progress: &mut Progress,
    mut interrupts: Interrupts,
) -> SendReport {
    let mut sender = Sender {
        journal,
        client,
        kind: Arc::new(kind.clone()),
        options,
        tasks: JoinSet::new(),
        sending: 0,
        reconciling: 0,
        cursor: 0,
        bulk_bytes: BULK_BYTES,
        exhausted: false,
        report: SendReport::default(),
        base: Snapshot::default(),
        throttled_at_start: client.stats().throttled,
        posts_at_start: client.stats().posts_sent,
    };
    if let Err(e) = sender.start() {
        sender.report.stop = Some(Stop::Journal(e));
        return sender.report;
    }
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if sender.report.stop.is_none()
            && let Err(e) = sender.fill()
        {
            sender.report.stop = Some(Stop::Journal(e));
        }
        if sender.tasks.is_empty() {
            break;
        }
        tokio::select! {
            joined = sender.tasks.join_next() => {
                match joined {
                    Some(Ok(done)) => {
                        if let Err(e) = sender.handle(done) {
                            // Nothing more can be recorded: abandon the rest; their batches
                            // stay `sending` and are reconciled next time.
                            sender.tasks.abort_all();
                            sender.report.stop = Some(Stop::Journal(e));
                            break;
                        }
                    }
                    Some(Err(e)) => {
                        sender.sending = sender.sending.saturating_sub(1);
                        sender.stop(Stop::Internal(format!("a sending task failed: {e}")));
                    }
                    None => {}
                }
            }
            changed = interrupts.0.changed() => {
                let presses = if changed.is_ok() { *interrupts.0.borrow_and_update() } else { 0 };
                if presses >= 2 {
                    let batches = sender.tasks.len();
                    sender.tasks.abort_all();
                    progress.println(&format!(
                        "abandoned {batches} request(s) in flight; their batches will be reconciled by the next run"
                    ));
                    sender.report.stop = Some(Stop::Abandoned { batches });
                    break;
                }
                if presses >= 1 {
                    // Whatever waits for its turn is dropped unsent (the signal listener
                    // did this already and said so; a manual press needs it here).
                    client.stop();
                    if sender.report.stop.is_none() || stopped_unsent(&sender.report.stop) {
                        sender.report.stop = Some(Stop::Interrupted);
                    }
                }
                if changed.is_err() {
                    // The signal source is gone; keep going without it.
                    interrupts = Interrupts::manual().1;
                }
            }
            _ = tick.tick() => {
                if let Err(e) = sender.journal.heartbeat() {
                    // Requests in flight would outlive the deadlines the journal holds.
                    sender.tasks.abort_all();
                    sender.report.stop = Some(Stop::Journal(e));
                    break;
                }
            }
        }
        progress.update(&sender.snapshot());
    }
    progress.update(&sender.snapshot());
    // A request dropped unsent on Ctrl-C is the interruption, not a client failure.
    if stopped_unsent(&sender.report.stop) {
        sender.report.stop = Some(Stop::Interrupted);
    }
    sender.report
}

/// Whether the run stopped on a request Ctrl-C kept from being sent.
fn stopped_unsent(stop: &Option<Stop>) -> bool {
    matches!(stop, Some(Stop::Client(ClientError::Stopped { .. })))
}

struct Sender<'a> {
    journal: &'a mut Journal,
    client: &'a Client,
    kind: Arc<MarkerKind>,
    options: &'a SendOptions,
    tasks: JoinSet<Done>,
    /// Bulk creates in flight (spawned, not yet handled).
    sending: usize,
    /// Reconciliations in flight.
    reconciling: u64,
    /// Last pending row taken; reset to 0 when records go back to pending.
    cursor: i64,
    /// Payload bytes per bulk create; halved when HappyFox says a request was too large.
    bulk_bytes: u64,
    exhausted: bool,
    report: SendReport,
    /// Counts at the start, from the journal.
    base: Snapshot,
    throttled_at_start: u64,
    posts_at_start: u64,
}

impl Sender<'_> {
    /// Counts from the journal, then every batch an earlier run left `sending`.
    fn start(&mut self) -> Result<(), JournalError> {
        let s = self.journal.summary()?;
        self.base = Snapshot {
            total: s.records.pending + s.records.sending + s.records.created + s.records.failed,
            created: s.records.created,
            failed: s.records.failed,
            ..Snapshot::default()
        };
        for unknown in self.journal.unknown_batches()? {
            let mut members = Vec::with_capacity(unknown.source_ids.len());
            for source_id in unknown.source_ids {
                let text = self.journal.payload(&source_id)?.unwrap_or_default();
                members.push(Member {
                    source_id,
                    payload: serde_json::from_str(&text).unwrap_or(Value::Null),
                    bytes: text.len() as u64,
                });
            }
            self.report.unknown += 1;
            self.reconcile(unknown.batch, Arc::new(members), Some(unknown.deadline));
        }
        Ok(())
    }

    fn snapshot(&self) -> Snapshot {
        let stats = self.client.stats();
        Snapshot {
            total: self.base.total,
            created: self.base.created + self.report.created,
            failed: self.base.failed + self.report.failed,
            posts: stats.posts_sent - self.posts_at_start,
            // The live ceiling: lower than configured for a while after a 429.
            ceiling: stats.post_ceiling,
            concurrency: stats.concurrency,
            in_flight: stats.in_flight,
            retries: self.report.resent + (stats.throttled - self.throttled_at_start),
            reconciling: self.reconciling,
            files_sent: self.report.attachments_sent,
            files_not_sent: self.report.attachment_failures,
            last_problem: self.client.last_problem(),
        }
    }

    fn stop(&mut self, why: Stop) {
        if self.report.stop.is_none() {
            self.report.stop = Some(why);
        }
    }

    /// Starts batches while the client has room for them.
    fn fill(&mut self) -> Result<(), JournalError> {
        while !self.exhausted && self.sending < self.client.stats().concurrency + 2 {
            let rows = self
                .journal
                .next_pending(self.cursor, self.options.batch_size)?;
            let Some(last) = rows.last() else {
                self.exhausted = true;
                break;
            };
            self.cursor = last.row;
            let mut members = Vec::with_capacity(rows.len());
            let mut broken = Vec::new();
            for row in rows {
                let bytes = row.payload.len() as u64;
                if bytes > crate::happyfox::MAX_REQUEST_BYTES {
                    broken.push(RejectedRecord {
                        source_id: row.source_id,
                        file: String::new(),
                        line: None,
                        stage: "create".into(),
                        error: format!(
                            "its payload is {bytes} bytes, over the {} bytes HappyFox accepts per request; shorten its text or move content into attachments",
                            crate::happyfox::MAX_REQUEST_BYTES
                        ),
                    });
                    continue;
                }
                match serde_json::from_str::<Value>(&row.payload) {
                    Ok(payload) => members.push(Member {
                        source_id: row.source_id,
                        payload,
                        bytes,
                    }),
                    Err(e) => broken.push(RejectedRecord {
                        source_id: row.source_id,
                        file: String::new(),
                        line: None,
                        stage: "journal".into(),
                        error: format!("the stored payload is not JSON ({e}); run the import again with --allow-changes to rebuild it"),
                    }),
                }
            }
            if !broken.is_empty() {
                self.report.failed += self.journal.reject(&broken)?;
            }
            // A ticket with attachments is created alone by a multipart POST: a bulk
            // create is JSON only.
            let (singles, members): (Vec<Member>, Vec<Member>) = members
                .into_iter()
                .partition(|m| has_attachments(&m.payload));
            for m in singles {
                let lease = self.journal.lease() + UPLOAD_ALLOWANCE;
                let batch = self
                    .journal
                    .begin_batch_leased(&[m.source_id.as_str()], lease)?;
                self.report.batches += 1;
                self.report.single_creates += 1;
                self.send(batch, Arc::new(vec![m]));
            }
            // Cut by size too: many large bodies must not make one request over the
            // limit (HTTP 413 for all of them).
            let mut chunk: Vec<Member> = Vec::new();
            let mut bytes = 0;
            for m in members {
                if !chunk.is_empty() && bytes + m.bytes > self.bulk_bytes {
                    self.begin_bulk(std::mem::take(&mut chunk))?;
                    bytes = 0;
                }
                bytes += m.bytes;
                chunk.push(m);
            }
            if !chunk.is_empty() {
                self.begin_bulk(chunk)?;
            }
        }
        Ok(())
    }

    /// Journals a bulk create's intent and starts it.
    fn begin_bulk(&mut self, members: Vec<Member>) -> Result<(), JournalError> {
        let ids: Vec<&str> = members.iter().map(|m| m.source_id.as_str()).collect();
        let batch = self.journal.begin_batch(&ids)?;
        self.report.batches += 1;
        self.send(batch, Arc::new(members));
        Ok(())
    }

    /// Starts a batch: a bulk create, or for a lone ticket with attachments the reading
    /// of its files (its multipart create follows in [`Sender::handle`]).
    fn send(&mut self, batch: BatchId, members: Arc<Vec<Member>>) {
        let client = self.client.clone();
        let fetcher = self.options.fetcher.clone();
        self.sending += 1;
        if members.len() == 1 && has_attachments(&members[0].payload) {
            self.tasks.spawn(async move {
                let fields = as_fields(&members[0].payload);
                let outgoing =
                    prepare_outgoing(&client, fetcher.as_deref(), fields, TICKET_HTML).await;
                Done::Prepared {
                    batch,
                    members,
                    outgoing,
                }
            });
            return;
        }
        self.tasks.spawn(async move {
            let mut payloads: Vec<Value> = Vec::with_capacity(members.len());
            let mut failures = Vec::new();
            let mut files_sent = 0;
            for m in members.iter() {
                let Value::Object(map) = &m.payload else {
                    payloads.push(m.payload.clone());
                    continue;
                };
                let mut fields = map.clone();
                // Bulk creates are JSON only; a ticket with files never gets here, and
                // the reserved key must never reach HappyFox.
                fields.remove(ATTACHMENTS_KEY);
                if has_inline_images(&fields, TICKET_HTML) {
                    let out =
                        prepare_outgoing(&client, fetcher.as_deref(), fields, TICKET_HTML).await;
                    files_sent += out.inline_uploaded;
                    if !out.failures.is_empty() {
                        failures.push((m.source_id.clone(), out.failures));
                    }
                    fields = out.fields;
                }
                payloads.push(Value::Object(fields));
            }
            let result = client.bulk_create("tickets/", &payloads).await;
            Done::Sent {
                batch,
                members,
                result,
                failures,
                files_sent,
            }
        });
    }

    /// Journals a prepared ticket's extra attachment notes and its left-out files, then
    /// starts its multipart create. The notes are journaled before the create, so the
    /// files that did not fit in it are posted exactly once after it, before the rest of
    /// its conversation (negative positions sort first).
    fn send_prepared(
        &mut self,
        batch: BatchId,
        members: Arc<Vec<Member>>,
        outgoing: Outgoing,
    ) -> Result<(), JournalError> {
        let Outgoing {
            fields,
            mut groups,
            mut failures,
            inline_uploaded,
        } = outgoing;
        let source_id = members[0].source_id.clone();
        let first = if groups.is_empty() {
            Vec::new()
        } else {
            groups.remove(0)
        };
        if !groups.is_empty() {
            match self.options.closing_staff {
                Some(staff) => {
                    let notes = continuation_notes(staff, "", &groups);
                    self.journal.add_messages(&[(source_id.clone(), notes)])?;
                }
                None => failures.extend(groups.iter().flatten().map(|(r, _)| AttachmentFailure {
                    name: r.name.clone(),
                    error: format!(
                        "attachment {:?}: did not fit in the ticket's {MAX_REQUEST_BYTES} bytes per request, and no active agent can sign a note to carry it; not sent",
                        r.name
                    ),
                })),
            }
        }
        self.journal
            .record_attachment_failures(&source_id, 0, &failures)?;
        self.report.attachment_failures += failures.len() as u64;
        if self.report.stop.is_some() {
            self.sending -= 1;
            return self.not_sent(batch, &members);
        }
        let client = self.client.clone();
        self.tasks.spawn(async move {
            let parts: Vec<FilePart> = first.iter().map(|(_, r)| r.file_part()).collect();
            let files_sent = inline_uploaded + parts.len() as u64;
            let result = client
                .post_multipart("tickets/", &fields, &parts)
                .await
                .map(single_as_items);
            // The files (downloads are temp files) live until the answer is in.
            drop(first);
            Done::Sent {
                batch,
                members,
                result,
                failures: Vec::new(),
                files_sent,
            }
        });
        Ok(())
    }

    /// Searches for the members of a batch whose outcome is unknown. `earlier` is the
    /// deadline of a batch an earlier run sent: until it has passed (plus the search lag
    /// allowance) its request may still land, so a search then can only find members,
    /// and a batch not wholly found is deferred instead of waited for. A batch of this
    /// run has had its answer (or timeout) already; it is searched after the lag allowance.
    /// Before concluding a member absent the search is repeated after that allowance.
    fn reconcile(&mut self, batch: BatchId, members: Arc<Vec<Member>>, earlier: Option<i64>) {
        let client = self.client.clone();
        let kind = self.kind.clone();
        let lag = self.options.reconcile_delay;
        self.reconciling += 1;
        self.tasks.spawn(async move {
            if let Some(deadline) = earlier {
                let ready_at = deadline + ms(lag);
                if ready_at > now_ms() {
                    let result = lookup_all(&client, &kind, &members).await;
                    return Done::Reconciled {
                        batch,
                        members,
                        result,
                        early: Some(ready_at),
                    };
                }
            } else {
                tokio::time::sleep(lag).await;
            }
            let mut result = lookup_all(&client, &kind, &members).await;
            let absent = |r: &Result<Vec<Lookup>, ClientError>| {
                matches!(r, Ok(l) if l.iter().any(|x| matches!(x, Lookup::Absent)))
            };
            if !lag.is_zero() && absent(&result) {
                // The account's search may lag behind creation: look again first.
                tokio::time::sleep(lag).await;
                let again = lookup_all(&client, &kind, &members).await;
                result = match (result, again) {
                    (Ok(first), Ok(second)) => Ok(merge(first, second)),
                    (_, again) => again,
                };
            }
            Done::Reconciled {
                batch,
                members,
                result,
                early: None,
            }
        });
    }

    /// Records a finished task's outcome: the one place outcomes reach the journal.
    fn handle(&mut self, done: Done) -> Result<(), JournalError> {
        match done {
            Done::Prepared {
                batch,
                members,
                outgoing,
            } => self.send_prepared(batch, members, outgoing),
            Done::Sent {
                batch,
                members,
                result,
                failures,
                files_sent,
            } => self.sent(batch, members, result, &failures, files_sent),
            Done::Reconciled {
                batch,
                members,
                result,
                early,
            } => self.reconciled(batch, members, result, early),
        }
    }

    /// A bulk or single create answered (or not): each member's outcome, or the batch
    /// left to reconciliation when the answer does not say which member is which ticket.
    fn sent(
        &mut self,
        batch: BatchId,
        members: Arc<Vec<Member>>,
        result: Result<WriteOutcome, ClientError>,
        failures: &[(String, Vec<AttachmentFailure>)],
        files_sent: u64,
    ) -> Result<(), JournalError> {
        self.sending -= 1;
        for (source_id, f) in failures {
            self.journal.record_attachment_failures(source_id, 0, f)?;
            self.report.attachment_failures += f.len() as u64;
        }
        if matches!(result, Ok(WriteOutcome::Items(_))) {
            self.report.attachments_sent += files_sent;
        }
        match result {
            Ok(WriteOutcome::Items(items)) if items.len() == members.len() => {
                let outcomes: Vec<ItemOutcome> = members
                    .iter()
                    .zip(items)
                    .map(|(m, item)| match item {
                        ItemResult::Created { id, display_id } => ItemOutcome::Created {
                            source_id: m.source_id.clone(),
                            happyfox_id: id,
                            display_id,
                        },
                        ItemResult::Failed(e) => ItemOutcome::Failed {
                            source_id: m.source_id.clone(),
                            stage: "create".into(),
                            error: e.to_string(),
                        },
                    })
                    .collect();
                self.finish(batch, &outcomes)
            }
            // An answer that does not say which member became which ticket is as
            // good as no answer: look them up.
            Ok(WriteOutcome::Items(_) | WriteOutcome::Done(_)) | Ok(WriteOutcome::Unknown(_)) => {
                self.report.unknown += 1;
                self.reconcile(batch, members, None);
                Ok(())
            }
            Ok(WriteOutcome::Rejected(e)) if e.status == 413 && members.len() > 1 => {
                // Too large as a whole, not a refusal of any member: send them again in
                // requests half the size.
                let bytes: u64 = members.iter().map(|m| m.bytes).sum();
                self.bulk_bytes = (bytes / 2).max(1);
                self.report.resent += 1;
                self.not_sent(batch, &members)
            }
            Ok(WriteOutcome::Rejected(e)) => {
                let error = if e.status == 413 {
                    format!(
                        "HappyFox refused it as too large for one request (HTTP 413; its payload is {} bytes): shorten its text or attachments",
                        members.iter().map(|m| m.bytes).sum::<u64>()
                    )
                } else if members.len() == 1 {
                    format!("HappyFox refused it: {e}")
                } else {
                    format!("HappyFox refused the whole batch: {e}")
                };
                let outcomes: Vec<ItemOutcome> = members
                    .iter()
                    .map(|m| ItemOutcome::Failed {
                        source_id: m.source_id.clone(),
                        stage: "create".into(),
                        error: error.clone(),
                    })
                    .collect();
                self.finish(batch, &outcomes)
            }
            Err(e) => {
                // The client returns an error for a write only when HappyFox
                // provably did nothing (refused, throttled, never connected).
                self.not_sent(batch, &members)?;
                self.stop(Stop::Client(e));
                Ok(())
            }
        }
    }

    /// A reconciliation's searches: members found are created, a batch with none found is
    /// sent again, a member that cannot be searched for is failed for a person to check.
    fn reconciled(
        &mut self,
        batch: BatchId,
        members: Arc<Vec<Member>>,
        result: Result<Vec<Lookup>, ClientError>,
        early: Option<i64>,
    ) -> Result<(), JournalError> {
        self.reconciling -= 1;
        let lookups = match result {
            Ok(l) => l,
            Err(e) => {
                // The batch stays `sending`: the next run looks again.
                self.stop(Stop::Client(e));
                return Ok(());
            }
        };
        if let Some(ready_at) = early
            && !lookups.iter().all(|l| matches!(l, Lookup::Found(..)))
        {
            // Not all there yet, and what is missing may still land: decide later.
            self.report.deferred += 1;
            self.report.deferred_until = Some(
                self.report
                    .deferred_until
                    .map_or(ready_at, |t| t.min(ready_at)),
            );
            return Ok(());
        }
        if lookups.iter().all(|l| matches!(l, Lookup::Absent)) {
            if self.report.stop.is_some() {
                return self.not_sent(batch, &members);
            }
            // Nothing arrived: send the same batch again, same members.
            self.journal.resend_batch(batch)?;
            self.report.resent += 1;
            self.send(batch, members);
            return Ok(());
        }
        let mut outcomes = Vec::with_capacity(members.len());
        for (m, l) in members.iter().zip(lookups) {
            let source_id = m.source_id.clone();
            outcomes.push(match l {
                Lookup::Found(id, display_id) => {
                    self.report.found += 1;
                    ItemOutcome::Created {
                        source_id,
                        happyfox_id: id,
                        display_id,
                    }
                }
                Lookup::Absent => ItemOutcome::NotSent { source_id },
                Lookup::Unsearchable(why) => ItemOutcome::Failed {
                    source_id,
                    stage: "reconcile".into(),
                    error: format!(
                        "{why}; its batch's answer was lost, so check HappyFox for this ticket by hand before retrying it"
                    ),
                },
            });
        }
        self.finish(batch, &outcomes)
    }

    fn finish(&mut self, batch: BatchId, outcomes: &[ItemOutcome]) -> Result<(), JournalError> {
        self.journal.finish_batch(batch, outcomes)?;
        for o in outcomes {
            match o {
                ItemOutcome::Created { .. } => self.report.created += 1,
                ItemOutcome::Failed { .. } => self.report.failed += 1,
                ItemOutcome::NotSent { .. } => {
                    // Back to pending, behind the cursor: page from the start again.
                    self.cursor = 0;
                    self.exhausted = false;
                }
            }
        }
        Ok(())
    }

    fn not_sent(&mut self, batch: BatchId, members: &[Member]) -> Result<(), JournalError> {
        let outcomes: Vec<ItemOutcome> = members
            .iter()
            .map(|m| ItemOutcome::NotSent {
                source_id: m.source_id.clone(),
            })
            .collect();
        self.finish(batch, &outcomes)
    }
}

/// Milliseconds since the epoch, the journal's clock.
pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A single create's answer (the ticket detail) as the per-item answer of a batch of
/// one; an answer without an id is as good as none: reconciled by marker.
fn single_as_items(outcome: WriteOutcome) -> WriteOutcome {
    match outcome {
        WriteOutcome::Done(v) => match v.get("id").and_then(Value::as_u64) {
            Some(id) => WriteOutcome::Items(vec![ItemResult::Created {
                id,
                display_id: v
                    .get("display_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            }]),
            None => WriteOutcome::Unknown("the create answer has no ticket id".into()),
        },
        other => other,
    }
}
