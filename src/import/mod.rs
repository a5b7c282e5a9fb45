//! The import: every valid ticket created in HappyFox exactly once, as fast as the
//! account's limits allow, and safe to stop, crash or re-run at any point.
//!
//! It runs in two halves around the journal. [`prepare`] validates exactly as the dry run
//! does (the shared [`crate::pipeline`]), opens the journal, refuses changed inputs
//! unless allowed, and enqueues every valid record (rejected ones are journaled too, so
//! `results` lists them). [`send::send_all`] then drains the journal: it reconciles
//! batches an earlier run left without an answer, and sends the rest 100 per bulk create.
//! An unchanged resume skips the validation pass: the payloads are in the journal, and
//! re-reading a large export would make every restart as slow as the first run.
//!
//! Each valid record's later conversation is journaled with it ([`replies`]): once
//! its ticket is created, [`replies::post_all`] posts the messages in order.

mod adopt;
pub(crate) mod delta;
pub mod fetch;
pub mod marker;
pub mod outgoing;
pub mod plan;
pub mod preflight;
pub mod progress;
mod reconcile;
pub mod replies;
pub mod run;
pub mod send;
pub mod undo;
pub mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::journal::{
    Change, Finding, FindingKind, InputFingerprint, Journal, JournalError, NewMessage,
    PendingRecord, RejectedRecord, RunCounts, RunInfo, Summary, TicketDelta, UpsertReport,
    fingerprint_bytes,
};
use crate::mapping::Plan;
use crate::payload::RecordOutcome;
use crate::payload::conversation::MessageKind;
use crate::pipeline::{self, PipelineError};
use crate::schema::Schema;
use crate::source;

pub use marker::MarkerKind;
pub use run::run;
pub(crate) use run::{ConversationOutcome, ImportOutcome};
pub(crate) use send::BATCH_SIZE;
pub(crate) use send::Stop;
pub use send::{Interrupts, SendOptions, SendReport, send_all};

/// The journal note holding the fingerprint of the inputs whose records are all enqueued.
const ENQUEUED_NOTE: &str = "enqueued";
/// Side-file entries the export holds that no ticket carries (unreadable, without a key,
/// joining no exported ticket), as the last enqueue found them: kept in the journal so a
/// resumed run, which does not read the export again, still ends with exit 3 for them.
const SIDE_LOST_NOTE: &str = "side_entries_lost";

/// Side-file entries that will not reach HappyFox, with the first locations.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LostSideEntries {
    pub count: u64,
    /// `file:line: problem`, the first few.
    pub first: Vec<String>,
}

impl LostSideEntries {
    const SHOWN: usize = 10;

    fn of(info: &pipeline::PipelineInfo) -> LostSideEntries {
        let mut lost = LostSideEntries::default();
        for side in &info.side_files {
            for g in side.problems.groups() {
                lost.count += g.count;
                for (loc, p) in &g.first {
                    if lost.first.len() < Self::SHOWN {
                        lost.first.push(format!("{loc}: {p}"));
                    }
                }
            }
        }
        lost
    }

    /// What the journal recorded at the last enqueue (none before one).
    pub(crate) fn recorded(journal: &Journal) -> Result<LostSideEntries, JournalError> {
        Ok(journal
            .note(SIDE_LOST_NOTE)?
            .and_then(|n| serde_json::from_str(&n).ok())
            .unwrap_or_default())
    }
}
/// Records handed to the journal per transaction while enqueueing.
const ENQUEUE_CHUNK: usize = 2_000;

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub mapping_path: PathBuf,
    pub inputs: Vec<PathBuf>,
    /// `--side NAME=PATH` overrides.
    pub sides: Vec<(String, PathBuf)>,
    pub journal_path: PathBuf,
    /// The account URL as stored in the journal (never credentials).
    pub target_url: String,
    pub retry_failed: bool,
    pub allow_changes: bool,
    /// Adopt the account's tickets that carry this mapping's markers before creating any.
    pub adopt: bool,
    /// Records read so far by validation, for a progress display on another thread.
    pub read_so_far: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

/// Why the import cannot start. Per-record problems never end up here.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "the mapping has no usable marker: an import must be able to find each ticket again after a lost answer; add `marker: {{ custom_field: Source ID }}` (a text ticket custom field) or `marker: {{ tag: \"src-{{{{ id }}}}\" }}` to the mapping"
    )]
    NoMarker,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pipeline(#[from] PipelineError<JournalError>),
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A journal write failed while the export was read into it (a full disk, a file made
    /// read-only): nothing was sent.
    #[error(
        "the journal {path} could not be written while the export was read into it ({}); nothing was sent: free disk space (or fix the file's permissions) and run the same command again, which reads the export again",
        .cause.cause()
    )]
    JournalWrite { path: PathBuf, cause: JournalError },
    #[error(
        "the journal {path} belongs to a different run:\n{}\nhelp: pass --allow-changes to continue with the new mapping (records already created are never sent again), or use a new --journal path for a separate migration",
        changes.iter().map(|c| format!("  - {c}")).collect::<Vec<_>>().join("\n")
    )]
    Changed { path: PathBuf, changes: Vec<Change> },
    #[error(
        "the journal {path} records an import into {before}, not {after}: use a new journal for a new account (pass a new --journal path; a journal says what one account holds, so continuing it elsewhere would skip every ticket it created there)"
    )]
    OtherAccount {
        path: PathBuf,
        before: String,
        after: String,
    },
}

impl crate::exit::Classify for ImportError {
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::usage_if(self.is_usage())
    }
}

impl ImportError {
    /// Whether the user must change the command, a file or the setup.
    fn is_usage(&self) -> bool {
        match self {
            ImportError::NoMarker
            | ImportError::Read { .. }
            | ImportError::Changed { .. }
            | ImportError::OtherAccount { .. } => true,
            ImportError::JournalWrite { .. } => false,
            ImportError::Pipeline(p) => !matches!(
                p,
                PipelineError::Consumer(_)
                    | PipelineError::Index(_)
                    | PipelineError::TempDir { .. }
            ),
            ImportError::Journal(j) => matches!(
                j,
                JournalError::ReadOnly { .. }
                    | JournalError::CannotOpen { .. }
                    | JournalError::NotAJournal { .. }
                    | JournalError::NewerVersion { .. }
                    | JournalError::Busy { .. }
                    | JournalError::ContentsLost { .. }
            ),
        }
    }
}

/// What the validation pass found (absent on an unchanged resume, which skips it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct EnqueueCounts {
    pub read: u64,
    pub valid: u64,
    pub rejected: u64,
    pub skipped: u64,
    pub upsert: UpsertReport,
    /// What a newer export changed on tickets the journal already holds; `delta` is 0
    /// for the run that enqueued the export first.
    pub run: RunCounts,
    /// The mapping's conversation has no `id:`: entries are known by a hash of their
    /// time, author and text, so one edited in the source looks new to a delta.
    pub entries_keyed_by_hash: bool,
}

/// The journal, ready to send from, and what was found on the way.
#[derive(Debug)]
pub struct Prepared {
    pub journal: Journal,
    pub marker: MarkerKind,
    /// Whether the journal existed before this run.
    pub resumed: bool,
    /// Changes accepted (with `--allow-changes`) or not significant, to be shown.
    pub changes: Vec<Change>,
    pub(crate) enqueued: Option<EnqueueCounts>,
    /// Failed records put back to pending by `--retry-failed`.
    pub requeued: u64,
    /// Failed conversation messages put back to pending by `--retry-failed`.
    pub requeued_messages: u64,
    pub summary: Summary,
}

impl Prepared {
    /// Every POST still to send, by kind.
    pub fn post_plan(&self, batch_size: usize) -> Result<plan::PostPlan, JournalError> {
        plan::PostPlan::count(&self.journal, &self.summary, batch_size)
    }
}

/// The fingerprints this run is compared with: the mapping file's bytes, and every input
/// and side file.
pub fn run_info(plan: &Plan, opts: &ImportOptions) -> Result<RunInfo, ImportError> {
    let mapping = std::fs::read(&opts.mapping_path).map_err(|source| ImportError::Read {
        path: opts.mapping_path.clone(),
        source,
    })?;
    let mut files = source::resolve_inputs(&opts.inputs, &plan.source.file)
        .map_err(|e| ImportError::Pipeline(PipelineError::Source(e)))?;
    let root = source::export_root(&opts.inputs);
    for side in &plan.source.sides {
        let paths = match opts.sides.iter().find(|(n, _)| n == &side.name) {
            Some((_, p)) => vec![p.clone()],
            // Every file a glob matches is an input: a changed page is a newer export.
            // One that matches nothing is an absent optional side file, read as such.
            None if source::is_pattern(&side.file) => {
                source::find_files(&root, &side.file).unwrap_or_default()
            }
            None => vec![root.join(&side.file)],
        };
        for path in paths {
            // Two side files may read one file (keyed differently): it is one input.
            if path.is_file() && !files.contains(&path) {
                files.push(path);
            }
        }
    }
    let mut inputs = Vec::with_capacity(files.len());
    for f in files {
        inputs.push(
            InputFingerprint::of(&f).map_err(|source| ImportError::Read { path: f, source })?,
        );
    }
    Ok(RunInfo::new(
        fingerprint_bytes(&mapping),
        inputs,
        opts.target_url.clone(),
    ))
}

/// What the enqueued payloads depend on: mapping, inputs (content, not times) and the
/// account schema (names resolve to its ids). When it matches the journal's note, every
/// record is already in the journal as this run would build it.
fn enqueue_fingerprint(info: &RunInfo, schema: &Schema) -> String {
    let stable_schema = Schema {
        source: None,
        pulled_at: None,
        ..schema.clone()
    };
    let mut text = info.mapping_fingerprint.clone();
    text.push('\n');
    text.push_str(&serde_json::to_string(&stable_schema).unwrap_or_default());
    for i in &info.inputs {
        text.push_str(&format!("\n{}\t{}\t{}", i.path, i.size, i.digest));
    }
    fingerprint_bytes(text.as_bytes())
}

/// Validates, opens the journal and enqueues: everything before the first POST.
pub fn prepare(
    plan: &Plan,
    schema: Arc<Schema>,
    opts: &ImportOptions,
) -> Result<Prepared, ImportError> {
    prepare_journal(plan, schema, opts).map_err(|e| {
        let failed_write =
            |j: &JournalError| matches!(j, JournalError::Sqlite(_) | JournalError::Write { .. });
        match e {
            ImportError::Journal(cause) | ImportError::Pipeline(PipelineError::Consumer(cause))
                if failed_write(&cause) =>
            {
                ImportError::JournalWrite {
                    path: opts.journal_path.clone(),
                    cause,
                }
            }
            other => other,
        }
    })
}

fn prepare_journal(
    plan: &Plan,
    schema: Arc<Schema>,
    opts: &ImportOptions,
) -> Result<Prepared, ImportError> {
    let marker = MarkerKind::from_plan(plan.marker.as_ref()).ok_or(ImportError::NoMarker)?;
    let info = run_info(plan, opts)?;
    let mut journal = Journal::open(&opts.journal_path, &info)?;
    let resumed = journal.resumed();
    let changes = journal.changes().to_vec();
    // Never a resumable change, whatever --allow-changes says.
    if let Some(Change::TargetChanged { before, after }) = changes
        .iter()
        .find(|c| matches!(c, Change::TargetChanged { .. }))
    {
        return Err(ImportError::OtherAccount {
            path: opts.journal_path.clone(),
            before: before.clone(),
            after: after.clone(),
        });
    }
    if changes.iter().any(Change::is_significant) && !opts.allow_changes {
        return Err(ImportError::Changed {
            path: opts.journal_path.clone(),
            changes,
        });
    }
    if !changes.is_empty() {
        journal.accept_changes(&info)?;
    }
    journal.set_note(verify::MARKER_NOTE, &marker.to_note())?;
    let lost = journal.lost_log();
    if let Some(until) = lost {
        // Messages that run posted after its last checkpoint look unposted here.
        journal.suspect_pending_messages(until)?;
    }
    if !resumed || opts.adopt || lost.is_some() {
        // Before the first create: the account may hold tickets this journal does not
        // know about (a first run after a lost or replaced journal, or a lost log).
        journal.set_note(adopt::ADOPT_NOTE, "0")?;
    }
    let fingerprint = enqueue_fingerprint(&info, &schema);
    // An enqueue a killed run left unfinished may have written part of another export.
    let enqueued = if journal.note(ENQUEUED_NOTE)?.as_deref() == Some(fingerprint.as_str())
        && !journal.enqueue_unfinished()?
    {
        None
    } else {
        Some(enqueue(&mut journal, plan, schema, opts, &fingerprint)?)
    };
    // Everything so far in the file itself, before any request can depend on it.
    journal.checkpoint()?;
    let (requeued, requeued_messages) = if opts.retry_failed {
        (
            journal.requeue_failed()?,
            journal.requeue_failed_messages()?,
        )
    } else {
        (0, 0)
    };
    let summary = journal.summary()?;
    Ok(Prepared {
        journal,
        marker,
        resumed,
        changes,
        enqueued,
        requeued,
        requeued_messages,
        summary,
    })
}

/// A valid ticket's planned messages and the state it should end in, on their way to
/// the journal.
struct Conversation {
    source_id: String,
    state: serde_json::Map<String, serde_json::Value>,
    messages: Vec<NewMessage>,
    /// With `history: transcript` in the mapping, the same conversation in the other
    /// mode: a ticket already journaled keeps its mode in a delta, so a ticket closed
    /// since the full import does not get its whole thread again as a transcript.
    other_mode: Option<Vec<NewMessage>>,
}

/// What an enqueue holds until its next chunk is written.
struct Chunk {
    valid: Vec<PendingRecord>,
    messages: Vec<Conversation>,
    rejected: Vec<RejectedRecord>,
}

/// Reads the export through the shared pipeline and records every outcome: valid records
/// as pending (their payload is what will be sent), rejected ones as failed at validation.
///
/// Each chunk is written in one transaction with its share of the run's counts, and the
/// last one with `fingerprint` (the note that lets an unchanged resume skip all this), so
/// a kill at any point leaves counts that match what the journal holds.
fn enqueue(
    journal: &mut Journal,
    plan: &Plan,
    schema: Arc<Schema>,
    opts: &ImportOptions,
    fingerprint: &str,
) -> Result<EnqueueCounts, ImportError> {
    let mut counts = EnqueueCounts {
        entries_keyed_by_hash: plan.conversation.as_ref().is_some_and(|c| c.id.is_none()),
        ..EnqueueCounts::default()
    };
    let mut chunk = Chunk {
        valid: Vec::with_capacity(ENQUEUE_CHUNK),
        messages: Vec::new(),
        rejected: Vec::new(),
    };
    let mut deleted: Vec<(String, TicketDelta)> = Vec::new();
    let closing = crate::payload::conversation::closing_staff(plan, &schema);
    let transcripts = plan.conversation.as_ref().is_some_and(|c| {
        matches!(
            c.history,
            crate::mapping::compile::History::Transcript { .. }
        )
    });
    let default_status = schema.default_status().map(|s| s.id);
    let account = schema.clone();
    let flush = |journal: &mut Journal,
                 chunk: &mut Chunk,
                 counts: &mut EnqueueCounts|
     -> Result<(), JournalError> {
        let Chunk {
            valid,
            messages,
            rejected,
        } = chunk;
        let mut run = RunCounts::default();
        if !messages.is_empty() {
            // Messages first: a ticket must never be sendable without its conversation.
            // Each is compared with what the journal holds, so a newer export adds exactly
            // the entries it does not know (see `delta`).
            let mut deltas = Vec::with_capacity(messages.len());
            for c in messages.drain(..) {
                let known = journal.known_ticket(&c.source_id)?;
                let transcript = MessageKind::Transcript.name();
                let journaled_as_transcript = known.messages.iter().any(|m| m.kind == transcript);
                let planned_as_transcript = c.messages.iter().any(|m| m.kind == transcript);
                let planned = match c.other_mode {
                    Some(other)
                        if !known.messages.is_empty()
                            && journaled_as_transcript != planned_as_transcript =>
                    {
                        other
                    }
                    _ => c.messages,
                };
                let (d, t) = delta::plan_ticket(
                    &known,
                    delta::Wanted {
                        source_id: &c.source_id,
                        planned,
                        state: c.state,
                        default_status,
                        closing_staff: closing,
                    },
                );
                run.new_entries += t.new_entries;
                run.out_of_order += t.out_of_order;
                run.state_updates += t.state_updates;
                run.removed += t.removed;
                run.changed += t.changed;
                if d != TicketDelta::default() {
                    deltas.push((c.source_id, d));
                }
            }
            journal.apply_deltas(&deltas)?;
        }
        if !valid.is_empty() {
            let r = journal.upsert_pending(valid)?;
            run.new_tickets += r.inserted;
            counts.upsert.inserted += r.inserted;
            counts.upsert.unchanged += r.unchanged;
            counts.upsert.updated += r.updated;
            counts.upsert.frozen += r.frozen;
            valid.clear();
        }
        if !rejected.is_empty() {
            journal.reject(rejected)?;
            rejected.clear();
        }
        journal.add_run_counts(&run)
    };
    let info = pipeline::for_each(plan, schema, &opts.inputs, &opts.sides, |p| {
        counts.read += 1;
        if let Some(n) = &opts.read_so_far {
            n.store(counts.read, std::sync::atomic::Ordering::Relaxed);
        }
        let file = p.location.file.display().to_string();
        let line = p.location.line;
        match p.outcome {
            RecordOutcome::Valid { plan: t, .. } => {
                counts.valid += 1;
                let payload = t.stored_payload().map_err(|e| JournalError::CannotOpen {
                    path: opts.journal_path.display().to_string(),
                    reason: format!("cannot encode the payload of {}: {e}", t.source_id),
                })?;
                let follow_up = replies::journal_messages(&t, &account, closing);
                let other_mode = transcripts
                    .then(|| replies::journal_messages_as(&t, &account, closing, !t.transcript));
                chunk.messages.push(Conversation {
                    source_id: t.source_id.to_string(),
                    state: delta::wanted_state(&t, &account),
                    messages: follow_up,
                    other_mode,
                });
                chunk.valid.push(PendingRecord {
                    source_id: t.source_id.into_string(),
                    file,
                    line,
                    payload,
                });
            }
            RecordOutcome::Rejected {
                source_id,
                problems,
            } => {
                counts.rejected += 1;
                let error = problems
                    .iter()
                    .filter(|p| p.severity == crate::problem::Severity::Error)
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                let duplicate = problems
                    .iter()
                    .any(|p| p.kind == crate::problem::ProblemKind::DuplicateSourceId);
                let source_id = match source_id {
                    // The first record with this id is the one imported; journaling the
                    // repeat under the same id would overwrite it.
                    Some(id) if duplicate => format!("{id} (repeated at {})", p.location),
                    Some(id) => id.into_string(),
                    // A record without a readable id is still listed, under its position.
                    None => format!("(no id) {}", p.location),
                };
                chunk.rejected.push(RejectedRecord {
                    source_id,
                    file,
                    line,
                    stage: "validation".into(),
                    error,
                });
            }
            RecordOutcome::Skipped { source_id } => {
                counts.skipped += 1;
                // A ticket already in HappyFox whose record the export now skips (Zendesk
                // `status: deleted`) is kept there, and said so.
                let known = match &source_id {
                    Some(id) => journal.known_ticket(id.as_str())?.may_exist(),
                    None => false,
                };
                if let (true, Some(id)) = (known, source_id) {
                    deleted.push((
                            id.to_string(),
                            TicketDelta {
                                findings: vec![Finding {
                                    ticket: id.to_string(),
                                    entry: "-".into(),
                                    kind: FindingKind::Deleted,
                                    detail: format!("the export now skips this record ({}); its HappyFox ticket is kept", p.location),
                                }],
                                ..TicketDelta::default()
                            },
                        ));
                }
            }
        }
        if chunk.valid.len() >= ENQUEUE_CHUNK || chunk.rejected.len() >= ENQUEUE_CHUNK {
            journal.atomically(|journal| flush(journal, &mut chunk, &mut counts))?;
        }
        Ok(())
    })?;
    counts.run = journal.atomically(|journal| {
        flush(journal, &mut chunk, &mut counts)?;
        journal.apply_deltas(&deleted)?;
        journal.add_run_counts(&RunCounts {
            deleted: deleted.len() as u64,
            ..RunCounts::default()
        })?;
        let run = journal.finish_run_counts()?;
        journal.set_note(ENQUEUED_NOTE, fingerprint)?;
        Ok::<_, JournalError>(run)
    })?;
    let lost = LostSideEntries::of(&info);
    journal.set_note(
        SIDE_LOST_NOTE,
        &serde_json::to_string(&lost).unwrap_or_default(),
    )?;
    Ok(counts)
}

/// How the run ended, for the journal and the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every record has an outcome, all created.
    Done,
    /// Every record has an outcome; some were rejected or failed.
    DoneWithFailures,
    /// Ctrl-C: resumable.
    Interrupted,
    /// A fatal error stopped it: resumable once fixed.
    Failed,
}

impl RunEnd {
    /// How the command ends.
    pub fn exit(self) -> crate::exit::Exit {
        use crate::exit::Exit;
        match self {
            RunEnd::Done => Exit::Done,
            RunEnd::DoneWithFailures => Exit::Incomplete,
            RunEnd::Interrupted => Exit::Interrupted,
            RunEnd::Failed => Exit::Fatal,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            RunEnd::Done => "done",
            RunEnd::DoneWithFailures => "done_with_failures",
            RunEnd::Interrupted => "interrupted",
            RunEnd::Failed => "failed",
        }
    }
}

/// Decides how the run ended from the send report and the journal, and stamps the run.
pub(crate) fn finish(
    journal: &mut Journal,
    report: &SendReport,
) -> Result<(RunEnd, Summary), JournalError> {
    let summary = journal.summary()?;
    let side_lost = LostSideEntries::recorded(journal)?.count;
    // HappyFox holds an entry's old text, or an old state, that the export no longer has.
    let unapplied = journal
        .delta_findings()?
        .iter()
        .filter(|f| f.kind.leaves_a_difference())
        .count();
    let end = match &report.stop {
        Some(Stop::Interrupted | Stop::Abandoned { .. }) => RunEnd::Interrupted,
        Some(_) => RunEnd::Failed,
        None if summary.records.pending + summary.records.sending > 0 => RunEnd::Failed,
        None if summary.messages.pending + summary.messages.sending > 0 => RunEnd::Failed,
        None if summary.records.failed > 0
            || summary.messages.failed > 0
            || side_lost > 0
            || unapplied > 0 =>
        {
            RunEnd::DoneWithFailures
        }
        None => RunEnd::Done,
    };
    journal.finish_run(end.as_str())?;
    Ok((end, summary))
}

/// The journal file's directory is created when missing (a fresh checkout running the
/// quick start has no `out/`); when it cannot be, say so plainly rather than through SQLite.
pub(crate) fn check_journal_dir(path: &Path) -> Result<(), ImportError> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => std::fs::create_dir_all(dir).map_err(|e| {
            ImportError::Journal(JournalError::CannotOpen {
                path: path.display().to_string(),
                reason: format!(
                    "directory {} does not exist and cannot be created: {e}",
                    dir.display()
                ),
            })
        }),
        _ => Ok(()),
    }
}
