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
use crate::payload::conversation::MessageKind;
use crate::payload::{EntryKind, RecordOutcome};
use crate::pipeline::{Pipeline, PipelineError, Processed};
use crate::report::{
    ApiPlan, ConversationCounts, Counts, PayloadWriter, ProblemTally, RejectsWriter, Summary,
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
}

impl AttachmentTally {
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

impl From<PipelineError<DryRunError>> for DryRunError {
    fn from(e: PipelineError<DryRunError>) -> Self {
        match e {
            PipelineError::Source(e) => DryRunError::Source(e),
            PipelineError::Side { name, message } => DryRunError::Side { name, message },
            PipelineError::Mapping(e) => DryRunError::Mapping(e),
            PipelineError::Index(e) => DryRunError::Index(e),
            PipelineError::TempDir { path, source } => DryRunError::Report { path, source },
            PipelineError::Consumer(e) => e,
        }
    }
}

impl From<PipelineError> for DryRunError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Source(e) => DryRunError::Source(e),
            PipelineError::Side { name, message } => DryRunError::Side { name, message },
            PipelineError::Mapping(e) => DryRunError::Mapping(e),
            PipelineError::Index(e) => DryRunError::Index(e),
            PipelineError::TempDir { path, source } => DryRunError::Report { path, source },
            PipelineError::Consumer(never) => match never {},
        }
    }
}

fn report_err(path: &Path) -> impl Fn(std::io::Error) -> DryRunError + '_ {
    move |source| DryRunError::Report {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs the dry run and writes the report files; returns the summary.
pub fn run(plan: &Plan, schema: Arc<Schema>, opts: &DryRunOptions) -> Result<Summary, DryRunError> {
    let started = Instant::now();
    let pipeline = Pipeline::open(plan, schema.clone(), &opts.inputs, &opts.sides)?;

    if let Some(dir) = &opts.report_dir {
        std::fs::create_dir_all(dir).map_err(report_err(dir))?;
    }
    let mut rejects = match &opts.report_dir {
        Some(d) => Some(RejectsWriter::create(&d.join("rejects.csv")).map_err(report_err(d))?),
        None => None,
    };
    let mut payloads = match &opts.report_dir {
        Some(d) => Some(PayloadWriter::create(&d.join("payloads.ndjson")).map_err(report_err(d))?),
        None => None,
    };

    let mut counts = Counts::default();
    let mut tally = ProblemTally::default();
    let mut conv = ConversationCounts::default();
    let mut final_posts = 0u64;
    let mut contact_lookups = 0u64;
    let mut bulk_members = 0u64;
    let mut tally_files = AttachmentTally::default();
    let closing = crate::payload::conversation::closing_staff(plan, &schema);

    let info = pipeline.for_each(|item: Processed| -> Result<(), DryRunError> {
        counts.read += 1;
        // Formatted only for records that report something: most are valid and silent.
        let loc = || item.location.to_string();
        let file = &item.location.file;
        match item.outcome {
            RecordOutcome::Valid { plan: p, warnings } => {
                counts.valid += 1;
                if !warnings.is_empty() {
                    counts.with_warnings += 1;
                }
                if !warnings.is_empty() {
                    let loc = loc();
                    for w in &warnings {
                        tally.add(&loc, Some(&p.source_id), w);
                    }
                }
                if !p.conversation.is_empty() {
                    conv.tickets_with_entries += 1;
                }
                let mut contacts = HashSet::new();
                for e in &p.conversation {
                    match e.kind {
                        EntryKind::StaffReply => conv.staff_replies += 1,
                        EntryKind::PrivateNote => conv.private_notes += 1,
                        EntryKind::ContactReply => {
                            conv.contact_replies += 1;
                            contacts.insert(e.author.to_lowercase());
                        }
                    }
                    if e.fell_back {
                        conv.fallback_authors += 1;
                    } else {
                        conv.resolved_authors += 1;
                    }
                    tally_files.add(&e.attachments);
                }
                contact_lookups += contacts.len() as u64;
                // The same messages the import will journal: closing notes included.
                final_posts += crate::payload::conversation::plan_messages(&p, &schema, closing)
                    .iter()
                    .filter(|m| m.kind == MessageKind::FinalNote)
                    .count() as u64;
                if p.attachments.is_empty() {
                    bulk_members += 1;
                    if let Some(w) = payloads.as_mut() {
                        let plan = *p;
                        w.push(plan.source_id, plan.payload)
                            .map_err(report_err(file))?;
                    }
                } else {
                    tally_files.add(&p.attachments);
                    if let Some(w) = payloads.as_mut() {
                        w.push_single(&p.source_id, &p.payload, &p.attachments)
                            .map_err(report_err(file))?;
                    }
                }
            }
            RecordOutcome::Rejected {
                source_id,
                problems,
            } => {
                counts.rejected += 1;
                let loc = loc();
                for p in &problems {
                    tally.add(&loc, source_id.as_deref(), p);
                }
                if let Some(w) = rejects.as_mut() {
                    w.write(
                        &loc,
                        source_id.as_deref(),
                        &problems,
                        item.record.as_ref(),
                        item.raw.as_deref(),
                        item.is_csv,
                    )
                    .map_err(report_err(file))?;
                }
            }
            RecordOutcome::Skipped { .. } => counts.skipped += 1,
        }
        Ok(())
    })?;
    let files = info.files;
    let side_reports = info.side_files;

    if let Some(w) = rejects {
        w.finish().map_err(report_err(Path::new("rejects.csv")))?;
    }
    if let Some(w) = payloads {
        w.finish()
            .map_err(report_err(Path::new("payloads.ndjson")))?;
    }

    let bulk = bulk_members.div_ceil(crate::happyfox::MAX_BULK_CREATE as u64);
    let single = counts.valid - bulk_members;
    let conversation_posts = conv.staff_replies + conv.private_notes + conv.contact_replies;
    let total = bulk + single + conversation_posts + final_posts + tally_files.extra_posts;
    let post_per_min = opts.post_per_min.max(1);
    let api = ApiPlan {
        bulk_creates: bulk,
        single_creates: single,
        conversation_posts,
        final_state_posts: final_posts,
        attachments: tally_files.files,
        attachment_bytes: tally_files.bytes,
        attachment_extra_posts: tally_files.extra_posts,
        oversize_attachments: tally_files.oversize,
        total_posts: total,
        gets: 7 + contact_lookups,
        post_ceiling_per_min: post_per_min,
        estimated_seconds: (total * 60).div_ceil(post_per_min as u64),
    };
    let summary = Summary {
        mapping: opts.mapping_path.display().to_string(),
        inputs: files.iter().map(|f| f.display().to_string()).collect(),
        schema: opts.schema_label.clone(),
        counts,
        problems: tally.into_groups(),
        conversation: conv,
        api,
        side_files: side_reports,
        seconds: started.elapsed().as_secs_f64(),
    };
    if let Some(dir) = &opts.report_dir {
        crate::report::write_reports(&summary, dir).map_err(report_err(dir))?;
    }
    Ok(summary)
}
