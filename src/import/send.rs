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
use super::reconcile::{Lookup, lookup_all};
use crate::attachments::MAX_REQUEST_BYTES;
use crate::client::{Client, ClientError, FilePart, ItemResult, WriteOutcome};
use crate::journal::{
    AttachmentFailure, BatchId, ItemOutcome, Journal, JournalError, RejectedRecord,
};

/// Tickets per bulk create unless `--batch-size` says fewer.
pub(crate) const BATCH_SIZE: usize = crate::happyfox::MAX_BULK_CREATE;

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
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            batch_size: BATCH_SIZE,
            reconcile_delay: Duration::from_secs(5),
            post_per_min: crate::happyfox::DEFAULT_POST_CEILING,
            fetcher: None,
            closing_staff: None,
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
    pub batches: u64,
    /// Batches whose answer was lost (or that an earlier run left `sending`).
    pub unknown: u64,
    /// Members found in HappyFox by reconciliation.
    pub found: u64,
    /// Batches sent again after reconciliation found none of their members.
    pub resent: u64,
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
    },
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
    let mut tick = tokio::time::interval(Duration::from_millis(500));
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
            _ = tick.tick() => {}
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
                let payload = match self.journal.payload(&source_id)? {
                    Some(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
                    None => Value::Null,
                };
                members.push(Member { source_id, payload });
            }
            self.report.unknown += 1;
            self.reconcile(unknown.batch, Arc::new(members));
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
            ceiling: self.options.post_per_min,
            concurrency: stats.concurrency,
            in_flight: stats.in_flight,
            retries: self.report.resent + (stats.throttled - self.throttled_at_start),
            reconciling: self.reconciling,
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
                match serde_json::from_str::<Value>(&row.payload) {
                    Ok(payload) => members.push(Member {
                        source_id: row.source_id,
                        payload,
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
                let batch = self.journal.begin_batch(&[m.source_id.as_str()])?;
                self.report.batches += 1;
                self.send(batch, Arc::new(vec![m]));
            }
            if members.is_empty() {
                continue;
            }
            let ids: Vec<&str> = members.iter().map(|m| m.source_id.as_str()).collect();
            let batch = self.journal.begin_batch(&ids)?;
            self.report.batches += 1;
            self.send(batch, Arc::new(members));
        }
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

    fn reconcile(&mut self, batch: BatchId, members: Arc<Vec<Member>>) {
        let client = self.client.clone();
        let kind = self.kind.clone();
        let delay = self.options.reconcile_delay;
        self.reconciling += 1;
        self.tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            let result = lookup_all(&client, &kind, &members).await;
            Done::Reconciled {
                batch,
                members,
                result,
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
            } => self.reconciled(batch, members, result),
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
                self.reconcile(batch, members);
                Ok(())
            }
            Ok(WriteOutcome::Rejected(e)) => {
                let error = if members.len() == 1 {
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
