//! The dry run: read everything, build every payload, validate, write nothing to HappyFox.
//!
//! It is the same front half of the pipeline the import uses (source → mapping →
//! payload), run to completion with every per-record problem collected instead of acted
//! on. Records stream through; the only state that grows is on disk (side-file indexes,
//! the duplicate-id set), so memory stays flat whatever the size of the export.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::mapping::{MappingError, Plan};
use crate::payload::conversation::{MessageKind, closing_staff, plan_messages, plan_messages_as};
use crate::payload::{EntryKind, RecordOutcome, TicketPlan};
use crate::pipeline::coverage::FieldCounts;
use crate::pipeline::{Pipeline, PipelineError, Processed};
use crate::problem::{Problem, ProblemKind};
use crate::report::{
    ApiPlan, BREAKDOWN_SHOWN, Breakdowns, CappedTally, ChangedValues, ConversationCounts, Counts,
    Coverage, CoverageField, PayloadWriter, ProblemTally, RejectsWriter, Summary, WindowTally,
};
use crate::schema::Schema;
use crate::source::SourceError;

/// Attachments counted while records stream by.
#[derive(Debug, Default)]
struct AttachmentTally {
    files: u64,
    /// Sizes the export states (files without one count as 0).
    bytes: u64,
    /// Posts beyond the message's own, when its files exceed 25 MB together.
    extra_posts: u64,
    /// Single files over 25 MB: reported, never sent.
    oversize: u64,
    /// Images of HTML bodies uploaded before the body, one POST each.
    inline: u64,
}

impl AttachmentTally {
    /// The uploads an HTML body costs: one per distinct image it shows.
    fn add_html(&mut self, html: Option<&str>) {
        if let Some(html) = html {
            self.inline += crate::attachments::inline_images(html).len() as u64;
        }
    }

    fn add(&mut self, items: &[crate::attachments::AttachmentRef]) {
        if items.is_empty() {
            return;
        }
        self.files += items.len() as u64;
        let sized: Vec<(&str, u64)> = items
            .iter()
            .map(|a| (a.name.as_str(), a.size.unwrap_or(0)))
            .collect();
        self.bytes += sized.iter().map(|(_, s)| s).sum::<u64>();
        let groups =
            match crate::attachments::plan_groups(&sized, crate::attachments::MAX_REQUEST_BYTES) {
                Ok(g) => g,
                Err(o) => {
                    self.oversize += o.files.len() as u64;
                    o.groups
                }
            };
        self.extra_posts += groups.len().saturating_sub(1) as u64;
    }
}

/// The valid tickets per category, final status, priority and assignee, by the account's
/// ids: a lead compares these with the old helpdesk's figures. Named only at the end, so a
/// record costs four look-ups and no text.
#[derive(Debug)]
struct FieldTally {
    category: CappedTally<Option<u64>>,
    status: CappedTally<Option<u64>>,
    priority: CappedTally<Option<u64>>,
    assignee: CappedTally<Option<u64>>,
    /// What a ticket gets when it says nothing: the import sends no status or priority then.
    default_status: Option<u64>,
    default_priority: Option<u64>,
}

impl FieldTally {
    fn new(schema: &Schema) -> FieldTally {
        FieldTally {
            category: CappedTally::default(),
            status: CappedTally::default(),
            priority: CappedTally::default(),
            assignee: CappedTally::default(),
            default_status: schema.default_status().map(|s| s.id),
            default_priority: schema.default_priority().map(|p| p.id),
        }
    }

    fn add(&mut self, p: &TicketPlan) {
        let id = |key: &str| p.payload.get(key).and_then(serde_json::Value::as_u64);
        self.category.add(id("category"));
        self.status
            .add(p.final_state.status.or(self.default_status));
        self.priority.add(id("priority").or(self.default_priority));
        self.assignee.add(id("assignee"));
    }

    fn finish(self, schema: &Schema) -> Breakdowns {
        fn name_of<'s, T: 's>(
            list: &'s [T],
            id_name: impl Fn(&'s T) -> (u64, &'s str),
            unset: &'static str,
        ) -> impl Fn(&Option<u64>) -> String {
            move |id| match id {
                None => unset.to_string(),
                // An id the account does not list cannot come from the payload builder;
                // shown as the id rather than hidden.
                Some(id) => list
                    .iter()
                    .map(&id_name)
                    .find(|(i, _)| i == id)
                    .map_or_else(|| format!("#{id}"), |(_, n)| n.to_string()),
            }
        }
        let staff_name = |s: &'_ crate::schema::Staff| -> String {
            if s.name.trim().is_empty() {
                s.email.clone()
            } else {
                s.name.clone()
            }
        };
        let staff: Vec<(u64, String)> =
            schema.staff.iter().map(|s| (s.id, staff_name(s))).collect();
        Breakdowns {
            category: self.category.finish(
                BREAKDOWN_SHOWN,
                name_of(&schema.categories, |c| (c.id, &c.name), "none"),
            ),
            status: self.status.finish(
                BREAKDOWN_SHOWN,
                name_of(&schema.statuses, |s| (s.id, &s.name), "not set"),
            ),
            priority: self.priority.finish(
                BREAKDOWN_SHOWN,
                name_of(&schema.priorities, |p| (p.id, &p.name), "not set"),
            ),
            assignee: self.assignee.finish(
                BREAKDOWN_SHOWN,
                name_of(&staff, |(id, name)| (*id, name), "unassigned"),
            ),
        }
    }
}

/// What to run the dry run on.
#[derive(Debug, Clone)]
pub struct DryRunOptions {
    pub mapping_path: PathBuf,
    pub inputs: Vec<PathBuf>,
    /// `--side NAME=PATH` overrides.
    pub sides: Vec<(String, PathBuf)>,
    /// Where the schema came from, for the report.
    pub schema_label: String,
    pub report_dir: Option<PathBuf>,
    pub post_per_min: u32,
    /// The time the migration may take (`--window`): the report says whether the plan fits
    /// and which transcript cut-off would make it.
    pub window: Option<std::time::Duration>,
    /// Counts as records stream by, for a progress display on another thread.
    pub live: Option<Arc<LiveCounts>>,
}

/// The record counts so far, readable while the dry run goes on (a big export takes
/// minutes, and a silent terminal looks like a hang).
#[derive(Debug, Default)]
pub struct LiveCounts {
    pub read: std::sync::atomic::AtomicU64,
    pub valid: std::sync::atomic::AtomicU64,
    pub rejected: std::sync::atomic::AtomicU64,
    pub skipped: std::sync::atomic::AtomicU64,
}

impl LiveCounts {
    fn set(&self, c: &Counts) {
        use std::sync::atomic::Ordering::Relaxed;
        self.read.store(c.read, Relaxed);
        self.valid.store(c.valid, Relaxed);
        self.rejected.store(c.rejected, Relaxed);
        self.skipped.store(c.skipped, Relaxed);
    }
}

/// Why the dry run could not run at all (per-record problems never end up here).
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("side file `{name}`: {message}")]
    Side { name: String, message: String },
    /// The mapping does not fit the data (an unknown CSV column): exit code 2.
    #[error("{}", .0.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("\n"))]
    Mapping(Vec<MappingError>),
    #[error("cannot write the report to {path}: {source}")]
    Report {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("duplicate-id index")]
    Index(#[from] rusqlite::Error),
}

impl crate::exit::Classify for DryRunError {
    /// The export or a side file cannot be read as the mapping says: the user's to fix.
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::usage_if(matches!(
            self,
            DryRunError::Source(_) | DryRunError::Side { .. } | DryRunError::Mapping(_)
        ))
    }
}

impl DryRunError {
    /// The pipeline's errors as the dry run's; `consumer` converts the consumer's own.
    fn from_pipeline<E>(e: PipelineError<E>, consumer: impl FnOnce(E) -> DryRunError) -> Self {
        match e {
            PipelineError::Source(e) => DryRunError::Source(e),
            PipelineError::Side { name, message } => DryRunError::Side { name, message },
            PipelineError::Mapping(e) => DryRunError::Mapping(e),
            PipelineError::Index(e) => DryRunError::Index(e),
            PipelineError::TempDir { path, source } => DryRunError::Report { path, source },
            PipelineError::Consumer(e) => consumer(e),
        }
    }
}

impl From<PipelineError<DryRunError>> for DryRunError {
    fn from(e: PipelineError<DryRunError>) -> Self {
        DryRunError::from_pipeline(e, |e| e)
    }
}

impl From<PipelineError> for DryRunError {
    fn from(e: PipelineError) -> Self {
        DryRunError::from_pipeline(e, |never| match never {})
    }
}

fn report_err(path: &Path) -> impl Fn(std::io::Error) -> DryRunError + '_ {
    move |source| DryRunError::Report {
        path: path.to_path_buf(),
        source,
    }
}

/// The report files written while records stream by (with `--report`).
/// Each with its path, which a failed write names (a full disk, a lost mount).
struct Writers {
    rejects: RejectsWriter,
    rejects_path: PathBuf,
    payloads: PayloadWriter,
    payloads_path: PathBuf,
}

impl Writers {
    fn create(dir: &Path) -> Result<Writers, DryRunError> {
        std::fs::create_dir_all(dir).map_err(report_err(dir))?;
        let rejects_path = dir.join("rejects.csv");
        let payloads_path = dir.join("payloads.ndjson");
        Ok(Writers {
            rejects: RejectsWriter::create(&rejects_path).map_err(report_err(&rejects_path))?,
            payloads: PayloadWriter::create(&payloads_path).map_err(report_err(&payloads_path))?,
            rejects_path,
            payloads_path,
        })
    }

    fn finish(self) -> Result<(), DryRunError> {
        self.rejects
            .finish()
            .map_err(report_err(&self.rejects_path))?;
        self.payloads
            .finish()
            .map_err(report_err(&self.payloads_path))?;
        Ok(())
    }
}

/// Everything counted while records stream by: the summary's counts and the API work.
struct Tally<'a> {
    schema: &'a Schema,
    /// The agent who signs closing notes, as the import will choose it.
    closing: Option<u64>,
    counts: Counts,
    problems: ProblemTally,
    conv: ConversationCounts,
    final_posts: u64,
    contact_lookups: u64,
    /// Valid tickets without files of their own: they go in bulk creates.
    bulk_members: u64,
    files: AttachmentTally,
    fields: FieldTally,
    /// With `--window`: each ticket's later posts in both history modes, by month.
    window: Option<WindowTally>,
}

impl Tally<'_> {
    /// A valid ticket: its warnings, its conversation and the posts it will cost, exactly
    /// as the import will journal them (closing notes included).
    fn valid(
        &mut self,
        p: TicketPlan,
        warnings: &[Problem],
        loc: impl Fn() -> String,
        writers: Option<&mut Writers>,
    ) -> Result<(), DryRunError> {
        self.counts.valid += 1;
        self.fields.add(&p);
        if !warnings.is_empty() {
            self.counts.with_warnings += 1;
            let loc = loc();
            for w in warnings {
                self.problems.add(&loc, Some(&p.source_id), w);
            }
        }
        if !p.conversation.is_empty() {
            self.conv.tickets_with_entries += 1;
        }
        let messages = plan_messages(&p, self.schema, self.closing);
        let as_transcript = messages.iter().any(|m| m.kind == MessageKind::Transcript);
        if let Some(w) = &mut self.window {
            // `messages` is the plan in the ticket's own mode; only the other is planned.
            let planned = messages.len() as u64;
            let other = plan_messages_as(&p, self.schema, self.closing, !p.transcript).len() as u64;
            let (full, transcript) = if p.transcript {
                (other, planned)
            } else {
                (planned, other)
            };
            w.add(
                p.payload
                    .get("created_at")
                    .and_then(serde_json::Value::as_str),
                planned,
                full,
                transcript,
            );
        }
        if as_transcript {
            self.conv.transcripts += 1;
            self.conv.transcript_entries += p.conversation.len() as u64;
            // One note carries every entry's files, split by 25 MB as one list.
            let files: Vec<_> = p
                .conversation
                .iter()
                .flat_map(|e| e.attachments.iter().cloned())
                .collect();
            self.files.add(&files);
        }
        let mut contacts = HashSet::new();
        for e in &p.conversation {
            match e.kind {
                EntryKind::StaffReply => self.conv.staff_replies += 1,
                EntryKind::PrivateNote => self.conv.private_notes += 1,
                EntryKind::ContactReply => {
                    self.conv.contact_replies += 1;
                    contacts.insert(e.author.to_lowercase());
                }
            }
            if e.fell_back {
                self.conv.fallback_authors += 1;
            } else {
                self.conv.resolved_authors += 1;
            }
            if !as_transcript {
                self.files.add(&e.attachments);
                self.files.add_html(Some(&e.html));
            }
        }
        for m in messages
            .iter()
            .filter(|m| m.kind == MessageKind::Transcript)
        {
            // Its images are uploaded once for the note, however many entries show one.
            self.files
                .add_html(m.body.get("html").and_then(serde_json::Value::as_str));
        }
        self.files
            .add_html(p.payload.get("html").and_then(serde_json::Value::as_str));
        self.contact_lookups += contacts.len() as u64;
        self.final_posts += messages
            .iter()
            .filter(|m| m.kind == MessageKind::FinalNote)
            .count() as u64;
        if p.attachments.is_empty() {
            self.bulk_members += 1;
            if let Some(w) = writers {
                w.payloads
                    .push(p.source_id, p.payload)
                    .map_err(report_err(&w.payloads_path))?;
            }
        } else {
            self.files.add(&p.attachments);
            if let Some(w) = writers {
                w.payloads
                    .push_single(&p.source_id, &p.payload, &p.attachments)
                    .map_err(report_err(&w.payloads_path))?;
            }
        }
        Ok(())
    }

    /// A rejected record: every problem tallied, the row kept in rejects.csv.
    fn rejected(
        &mut self,
        item: &Processed,
        source_id: Option<&str>,
        problems: &[Problem],
        writers: Option<&mut Writers>,
    ) -> Result<(), DryRunError> {
        self.counts.rejected += 1;
        let loc = item.location.to_string();
        for p in problems {
            self.problems.add(&loc, source_id, p);
        }
        if let Some(w) = writers {
            w.rejects
                .write(
                    &loc,
                    source_id,
                    problems,
                    item.record.as_ref(),
                    item.raw.as_deref(),
                    item.is_csv,
                )
                .map_err(report_err(&w.rejects_path))?;
        }
        Ok(())
    }

    /// The API work the import will do, and its duration at the POST ceiling.
    fn api_plan(&self, post_per_min: u32) -> ApiPlan {
        let bulk = self
            .bulk_members
            .div_ceil(crate::happyfox::MAX_BULK_CREATE as u64);
        let single = self.counts.valid - self.bulk_members;
        let c = &self.conv;
        let conversation_posts = c.staff_replies + c.private_notes + c.contact_replies
            - c.transcript_entries
            + c.transcripts;
        let total = bulk
            + single
            + conversation_posts
            + self.final_posts
            + self.files.extra_posts
            + self.files.inline;
        let post_per_min = post_per_min.max(1);
        ApiPlan {
            bulk_creates: bulk,
            single_creates: single,
            conversation_posts,
            final_state_posts: self.final_posts,
            attachments: self.files.files,
            attachment_bytes: self.files.bytes,
            attachment_extra_posts: self.files.extra_posts,
            inline_images: self.files.inline,
            oversize_attachments: self.files.oversize,
            total_posts: total,
            gets: 7 + self.contact_lookups,
            post_ceiling_per_min: post_per_min,
            estimated_seconds: (total * 60).div_ceil(post_per_min as u64),
        }
    }
}

/// The coverage section from the fields counted and the problems tallied.
fn coverage(
    counted: &FieldCounts,
    mapping_path: &Path,
    sides: &[String],
    tally: &Tally<'_>,
) -> Coverage {
    // The mapping was just loaded from this path; should it have gone since, every
    // field shows as unmapped, which errs on the side of telling.
    let text = std::fs::read_to_string(mapping_path).unwrap_or_default();
    let fields: Vec<CoverageField> = counted
        .paths()
        .into_iter()
        .map(|(path, records)| {
            // A template's `people` is the side file when one is named so: the record's
            // own field of that name is out of reach, whatever the text mentions.
            let hidden_by_side_file = sides.iter().find(|s| path.top() == s.as_str()).cloned();
            CoverageField {
                mapped: hidden_by_side_file.is_none() && path.mentioned_in(&text),
                path: path.to_string(),
                records,
                hidden_by_side_file,
            }
        })
        .collect();
    let problems = |kinds: &[ProblemKind]| tally.problems.count_of(kinds);
    Coverage {
        unmapped_with_data: fields.iter().filter(|f| !f.mapped).count() as u64,
        fields_not_listed: counted.dropped_paths,
        fields,
        changed: vec![
            ChangedValues {
                kind: "defaulted by a value map",
                count: problems(&[ProblemKind::UnmappedValue]),
            },
            ChangedValues {
                kind: "assignee not found (ticket left unassigned)",
                count: problems(&[ProblemKind::UnknownAssignee, ProblemKind::InactiveAssignee]),
            },
            ChangedValues {
                kind: "authors fallen back to the migration agent",
                count: tally.conv.fallback_authors,
            },
            ChangedValues {
                kind: "contacts without email given a placeholder",
                count: problems(&[ProblemKind::PlaceholderEmail]),
            },
            ChangedValues {
                kind: "oversized (rejected; nothing is truncated)",
                count: problems(&[ProblemKind::Oversized]),
            },
        ],
    }
}

/// Runs the dry run and writes the report files; returns the summary.
pub fn run(plan: &Plan, schema: Arc<Schema>, opts: &DryRunOptions) -> Result<Summary, DryRunError> {
    let started = Instant::now();
    let pipeline = Pipeline::open(plan, schema.clone(), &opts.inputs, &opts.sides)?;
    let mut writers = match &opts.report_dir {
        Some(dir) => Some(Writers::create(dir)?),
        None => None,
    };
    let mut tally = Tally {
        schema: &schema,
        closing: closing_staff(plan, &schema),
        counts: Counts::default(),
        problems: ProblemTally::default(),
        conv: ConversationCounts::default(),
        final_posts: 0,
        contact_lookups: 0,
        bulk_members: 0,
        files: AttachmentTally::default(),
        fields: FieldTally::new(&schema),
        window: opts.window.map(|_| WindowTally::default()),
    };
    let live = opts.live.clone();
    let info = pipeline.for_each(|item: Processed| -> Result<(), DryRunError> {
        if let Some(live) = &live {
            live.set(&tally.counts);
        }
        tally.counts.read += 1;
        match item.outcome {
            RecordOutcome::Valid { plan, warnings } => {
                // Formatted only for records that report something: most are silent.
                let loc = || item.location.to_string();
                tally.valid(*plan, &warnings, loc, writers.as_mut())
            }
            RecordOutcome::Rejected {
                ref source_id,
                ref problems,
            } => tally.rejected(&item, source_id.as_deref(), problems, writers.as_mut()),
            RecordOutcome::Skipped { .. } => {
                tally.counts.skipped += 1;
                Ok(())
            }
        }
    })?;
    if let Some(live) = &live {
        live.set(&tally.counts);
    }
    // The report files, timed as a fourth stage for `HFMIGRATE_STAGE_TIMES`.
    let finish = crate::pipeline::stages::Stage::default();
    let (finish_start, mut finish_clock) = (Instant::now(), finish.thread());
    if let Some(w) = writers {
        w.finish()?;
    }
    if tally.counts.read == 0 {
        // Nothing to migrate is never what a lead meant: say so, and exit 3.
        let files: Vec<String> = info.files.iter().map(|f| f.display().to_string()).collect();
        tally.problems.add(
            &files.join(", "),
            None,
            &Problem::error(
                ProblemKind::EmptyExport,
                "source.tickets",
                "the export holds no records; check --input and `source.tickets` (`records:` for JSON)",
            ),
        );
    }
    for side in &info.side_files {
        for g in side.problems.groups() {
            let mut first = g.first.iter();
            if let Some((loc, p)) = first.next() {
                let rest = first.len() as u64;
                tally.problems.add_counted(g.count - rest, loc, None, p);
                for (loc, p) in first {
                    tally.problems.add(loc, None, p);
                }
            }
        }
    }
    let sides: Vec<String> = plan.source.sides.iter().map(|s| s.name.clone()).collect();
    let coverage = coverage(&info.fields, &opts.mapping_path, &sides, &tally);
    let api = tally.api_plan(opts.post_per_min);
    let window = match (&tally.window, opts.window) {
        (Some(w), Some(d)) => Some(w.fit(d.as_secs(), api.post_ceiling_per_min, api.total_posts)),
        _ => None,
    };
    let breakdowns = tally.fields.finish(&schema);
    let now = jiff::Timestamp::now();
    let summary = Summary {
        mapping: opts.mapping_path.display().to_string(),
        inputs: info.files.iter().map(|f| f.display().to_string()).collect(),
        schema: opts.schema_label.clone(),
        account: schema.source.clone(),
        generated_at: now.round(jiff::Unit::Second).unwrap_or(now).to_string(),
        api,
        counts: tally.counts,
        problems: tally.problems.into_groups(),
        conversation: tally.conv,
        side_files: info.side_files,
        coverage,
        breakdowns,
        window,
        seconds: started.elapsed().as_secs_f64(),
    };
    if let Some(dir) = &opts.report_dir {
        crate::report::write_reports(&summary, dir).map_err(report_err(dir))?;
    }
    finish_clock.busy_since(finish_start);
    drop(finish_clock);
    if crate::pipeline::stages::stage_times_wanted() {
        eprint!("{}", info.stages.render(Some(&finish)));
    }
    Ok(summary)
}
