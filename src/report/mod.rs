//! The dry-run report: what would happen, what is wrong, and how long it would take.
//!
//! A migration lead decides from this report whether to run the import, so it must be
//! complete (every problem counted, grouped by kind, with the first examples and where
//! they are), readable by a non-engineer (`report.html`), machine-readable
//! (`report.json`), and actionable (`rejects.csv` holds the rejected rows with their
//! errors, ready to fix and re-run; `payloads.ndjson` holds exactly what would be sent).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value as Json;

mod breakdown;
mod html;
mod json;
mod window;
mod write_behind;

pub use breakdown::{Breakdown, BreakdownValue, Breakdowns};
pub(crate) use breakdown::{CappedTally, SHOWN as BREAKDOWN_SHOWN};
pub(crate) use window::WindowTally;
pub use window::{Cutoff, DayCost, DayRow, WindowFit};

use crate::happyfox::MAX_BULK_CREATE;
use crate::payload::TicketPayload;
use crate::pipeline::SideFileStats;
use crate::problem::{Problem, ProblemKind, Severity};
use crate::source::SourceId;
use crate::spreadsheet::neutralise;
use write_behind::WriteBehind;

/// How many examples each problem group keeps.
pub(crate) const EXAMPLES_PER_KIND: usize = 5;

/// Record counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    /// Records read from the ticket files, readable or not.
    pub read: u64,
    pub valid: u64,
    pub rejected: u64,
    pub skipped: u64,
    /// Valid records that carry warnings.
    pub with_warnings: u64,
}

/// One example of a problem.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Example {
    pub location: String,
    pub source_id: Option<String>,
    pub field: String,
    pub message: String,
}

/// All problems of one kind and severity.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProblemGroup {
    pub kind: ProblemKind,
    pub(crate) severity: Severity,
    pub title: String,
    pub count: u64,
    pub examples: Vec<Example>,
}

/// Conversation entries that would be posted after creation.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ConversationCounts {
    pub staff_replies: u64,
    pub private_notes: u64,
    pub contact_replies: u64,
    /// Entries whose author resolves (an active agent, or a contact with an email).
    pub resolved_authors: u64,
    /// Entries whose author is not an active HappyFox agent (posted as the fallback).
    pub fallback_authors: u64,
    pub tickets_with_entries: u64,
    /// Tickets whose later entries go in one transcript note (`history: transcript`).
    pub transcripts: u64,
    /// The entries those notes hold, each not a post of its own.
    pub transcript_entries: u64,
}

/// The API requests the import would make.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ApiPlan {
    /// `POST tickets/` with up to 100 tickets each.
    pub bulk_creates: u64,
    /// Multipart creates for tickets whose first message has attachments.
    pub single_creates: u64,
    /// One per later conversation entry.
    pub conversation_posts: u64,
    /// Tickets whose final status or fields need a post of their own.
    pub final_state_posts: u64,
    /// Files of first messages and later entries.
    pub attachments: u64,
    /// Their total size as the export states it.
    pub attachment_bytes: u64,
    /// Posts beyond a message's own when its files exceed 25 MB together.
    pub attachment_extra_posts: u64,
    /// Single files over 25 MB: reported, never sent.
    pub oversize_attachments: u64,
    /// Images an HTML body shows from the old helpdesk or the export, uploaded one POST
    /// each before the body is sent (once per body however often it shows one).
    pub inline_images: u64,
    pub total_posts: u64,
    /// Reference data and contact look-ups (upper bound).
    pub gets: u64,
    pub post_ceiling_per_min: u32,
    /// At the POST ceiling.
    pub estimated_seconds: u64,
}

/// Everything the dry run found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub mapping: String,
    pub inputs: Vec<String>,
    pub schema: String,
    /// The HappyFox account the schema was pulled from, when the schema says so: the page
    /// is forwarded, and its reader must see which account it is about.
    pub account: Option<String>,
    /// When the dry run ran (UTC, RFC 3339): a forwarded report is compared with later ones.
    pub generated_at: String,
    pub counts: Counts,
    pub problems: Vec<ProblemGroup>,
    pub conversation: ConversationCounts,
    pub api: ApiPlan,
    pub(crate) side_files: Vec<SideFileStats>,
    pub coverage: Coverage,
    /// The valid tickets per category, status, priority and assignee.
    pub breakdowns: Breakdowns,
    /// The plan against `--window`, with the transcript cut-off that would make it fit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowFit>,
    pub seconds: f64,
}

/// What of the export reaches HappyFox: every source field seen with how many records
/// fill it and whether the mapping reads it, and the values the mapping drops or changes,
/// counted per kind. A lead decides from this before the run, not after.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Coverage {
    /// Fields of the ticket records (`key`, `key.sub`, `list[id=N]`), by path.
    pub fields: Vec<CoverageField>,
    /// Fields with data that the mapping never names.
    pub unmapped_with_data: u64,
    /// Values of fields not listed because the export has more distinct fields than the
    /// report keeps (2,000); 0 when every field is listed.
    pub fields_not_listed: u64,
    /// Values changed or dropped on the way, per kind.
    pub changed: Vec<ChangedValues>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CoverageField {
    pub path: String,
    /// Records with a non-empty value.
    pub records: u64,
    /// The mapping names the field (its text mentions it outside comments).
    pub mapped: bool,
    /// The side file whose name hides this record field in templates (side files win),
    /// so the field cannot be read however often the mapping names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden_by_side_file: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChangedValues {
    pub kind: &'static str,
    pub count: u64,
}

impl Summary {
    /// Nothing is lost: no record rejected, and no error outside the records either (a
    /// side file's unreadable or unjoined entries, a damaged part of a file).
    pub(crate) fn all_valid(&self) -> bool {
        self.counts.rejected == 0 && !self.problems.iter().any(|g| g.severity == Severity::Error)
    }
}

/// Collects problems into groups while records stream by.
#[derive(Debug, Default)]
pub(crate) struct ProblemTally {
    groups: Vec<ProblemGroup>,
}

impl ProblemTally {
    pub fn add(&mut self, location: &str, source_id: Option<&str>, p: &Problem) {
        self.add_counted(1, location, source_id, p);
    }

    /// `count` problems like `p`, the first of them at `location`.
    pub fn add_counted(
        &mut self,
        count: u64,
        location: &str,
        source_id: Option<&str>,
        p: &Problem,
    ) {
        let group = match self
            .groups
            .iter_mut()
            .position(|g| g.kind == p.kind && g.severity == p.severity)
        {
            Some(i) => &mut self.groups[i],
            None => {
                self.groups.push(ProblemGroup {
                    kind: p.kind,
                    severity: p.severity,
                    title: p.kind.title().to_string(),
                    count: 0,
                    examples: vec![],
                });
                let last = self.groups.len() - 1;
                &mut self.groups[last]
            }
        };
        group.count += count;
        if group.examples.len() < EXAMPLES_PER_KIND {
            group.examples.push(Example {
                location: location.to_string(),
                source_id: source_id.map(str::to_string),
                field: p.field.clone(),
                message: p.message.clone(),
            });
        }
    }

    /// Problems of these kinds, warnings and errors.
    pub(crate) fn count_of(&self, kinds: &[ProblemKind]) -> u64 {
        self.groups
            .iter()
            .filter(|g| kinds.contains(&g.kind))
            .map(|g| g.count)
            .sum()
    }

    /// Errors first, then by count.
    pub(crate) fn into_groups(mut self) -> Vec<ProblemGroup> {
        self.groups.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(b.count.cmp(&a.count))
                .then(a.kind.cmp(&b.kind))
        });
        self.groups
    }
}

/// Streams rejected rows into `rejects.csv`: the source columns as they were (CSV
/// sources), the record as one JSON cell (JSON sources) and the raw text of records that
/// could not be read, plus where each was and what is wrong.
///
/// Rows go to a spill file next to `rejects.csv` first and the CSV is written at
/// [`RejectsWriter::finish`], because the header must hold every column any reject has
/// (files with different headers, an unreadable row first): fixing it from the first
/// reject lost the columns of every later one. Only the column names are kept in memory.
pub(crate) struct RejectsWriter {
    path: PathBuf,
    spill: tempfile::NamedTempFile,
    out: BufWriter<File>,
    /// Source CSV columns in first-seen order, with their position.
    columns: indexmap::IndexSet<String>,
    any_record: bool,
    any_raw: bool,
}

/// One rejected row as spilled.
#[derive(Serialize, serde::Deserialize)]
struct SpilledReject {
    location: String,
    source_id: String,
    errors: String,
    /// CSV sources: (column position in `columns`, cell).
    cells: Vec<(usize, String)>,
    /// JSON sources: the record as JSON text.
    record: Option<String>,
    /// Unreadable records: their raw text.
    raw: Option<String>,
}

/// Columns rejects.csv has besides the source's own.
const REJECT_LOCATION: &str = "hfmigrate_location";
const REJECT_ID: &str = "hfmigrate_source_id";
const REJECT_ERRORS: &str = "hfmigrate_errors";
/// A JSON source's rejected record, as one JSON cell.
const REJECT_RECORD: &str = "hfmigrate_record";
/// The raw text of a record that could not be read at all.
const REJECT_RAW: &str = "hfmigrate_raw";

impl RejectsWriter {
    pub fn create(path: &Path) -> std::io::Result<RejectsWriter> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let spill = tempfile::Builder::new()
            .prefix(".rejects-")
            .suffix(".ndjson")
            .tempfile_in(dir.unwrap_or(Path::new(".")))?;
        let out = BufWriter::new(spill.reopen()?);
        // Created now so a failure to write there shows before the run.
        File::create(path)?;
        Ok(RejectsWriter {
            path: path.to_path_buf(),
            spill,
            out,
            columns: indexmap::IndexSet::new(),
            any_record: false,
            any_raw: false,
        })
    }

    /// Writes one rejected record.
    pub fn write(
        &mut self,
        location: &str,
        source_id: Option<&str>,
        problems: &[Problem],
        record: Option<&Json>,
        raw: Option<&str>,
        csv_source: bool,
    ) -> std::io::Result<()> {
        let errors = problems
            .iter()
            .filter(|p| p.is_error())
            .map(|p| {
                if p.field.is_empty() {
                    p.message.clone()
                } else {
                    format!("{}: {}", p.field, p.message)
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        let mut row = SpilledReject {
            location: location.to_string(),
            source_id: source_id.unwrap_or_default().to_string(),
            errors,
            cells: vec![],
            record: None,
            raw: raw.map(str::to_string),
        };
        match (csv_source, record) {
            (true, Some(Json::Object(m))) => {
                for (name, value) in m {
                    let (i, _) = self.columns.insert_full(name.clone());
                    row.cells.push((i, csv_cell(value)));
                }
            }
            (_, Some(r)) => {
                row.record = Some(serde_json::to_string(r)?);
            }
            (_, None) => {}
        }
        self.any_record |= row.record.is_some();
        self.any_raw |= row.raw.is_some();
        serde_json::to_writer(&mut self.out, &row)?;
        self.out.write_all(b"\n")
    }

    pub(crate) fn finish(mut self) -> std::io::Result<()> {
        self.out.flush()?;
        let mut csv = csv::Writer::from_writer(BufWriter::new(File::create(&self.path)?));
        let mut header: Vec<&str> = vec![REJECT_LOCATION, REJECT_ID, REJECT_ERRORS];
        header.extend(self.columns.iter().map(String::as_str));
        if self.any_record {
            header.push(REJECT_RECORD);
        }
        if self.any_raw {
            header.push(REJECT_RAW);
        }
        csv.write_record(&header).map_err(std::io::Error::other)?;
        let spilled = std::io::BufReader::new(self.spill.reopen()?);
        let width = self.columns.len();
        for line in std::io::BufRead::lines(spilled) {
            let row: SpilledReject = serde_json::from_str(&line?)?;
            let mut cells: Vec<String> = Vec::with_capacity(header.len());
            cells.push(row.location);
            cells.push(row.source_id);
            cells.push(row.errors);
            let mut source = vec![String::new(); width];
            for (i, cell) in row.cells {
                if let Some(slot) = source.get_mut(i) {
                    *slot = cell;
                }
            }
            cells.extend(source);
            if self.any_record {
                cells.push(row.record.unwrap_or_default());
            }
            if self.any_raw {
                cells.push(row.raw.unwrap_or_default());
            }
            csv.write_record(cells.iter().map(|c| neutralise(c).into_owned()))
                .map_err(std::io::Error::other)?;
        }
        csv.flush()
    }
}

/// A CSV record's cell as it was read: a string, or the cells of a repeated header one per
/// line.
fn csv_cell(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| i.to_string())
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// Streams `payloads.ndjson`: one line per bulk-create request, exactly its body.
pub(crate) struct PayloadWriter {
    /// Written behind: at a million records the file is over a gigabyte.
    out: BufWriter<WriteBehind>,
    batch: Vec<(SourceId, TicketPayload)>,
    batches: u64,
    /// One batch's line, reused: it grows to the largest batch once.
    line: Vec<u8>,
}

impl PayloadWriter {
    pub fn create(path: &Path) -> std::io::Result<PayloadWriter> {
        Ok(PayloadWriter {
            out: BufWriter::new(WriteBehind::new(File::create(path)?)),
            batch: Vec::with_capacity(MAX_BULK_CREATE),
            batches: 0,
            line: Vec::new(),
        })
    }

    /// Takes the payload by value: the dry run is done with it, and copying every
    /// payload was a measurable share of the run.
    pub fn push(&mut self, source_id: SourceId, payload: TicketPayload) -> std::io::Result<()> {
        self.batch.push((source_id, payload));
        if self.batch.len() == MAX_BULK_CREATE {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> std::io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.batches += 1;
        self.line.clear();
        json::bulk_line(&mut self.line, self.batches, &self.batch);
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.batch.clear();
        Ok(())
    }

    /// A ticket whose first message has attachments: created on its own, multipart.
    pub(crate) fn push_single(
        &mut self,
        source_id: &str,
        payload: &TicketPayload,
        attachments: &[crate::attachments::AttachmentRef],
    ) -> std::io::Result<()> {
        #[derive(Serialize)]
        struct Line<'a> {
            request: &'static str,
            source_ids: [&'a str; 1],
            body: &'a TicketPayload,
            attachments: &'a [crate::attachments::AttachmentRef],
        }
        let line = Line {
            request: "POST /api/1.1/json/tickets/ (multipart/form-data)",
            source_ids: [source_id],
            body: payload,
            attachments,
        };
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")
    }

    pub(crate) fn finish(mut self) -> std::io::Result<u64> {
        self.flush_batch()?;
        self.out.flush()?;
        Ok(self.batches)
    }
}

/// The one duration format of every screen (progress, plan, report).
fn human_duration(seconds: u64) -> String {
    crate::duration::format(std::time::Duration::from_secs(seconds))
}

/// The terminal summary.
pub(crate) fn render_text(s: &Summary, report_dir: Option<&Path>) -> String {
    let mut o = String::new();
    let c = &s.counts;
    let _ = writeln!(o, "dry run of {} on {}", s.mapping, s.inputs.join(", "));
    let _ = writeln!(o, "schema: {}", s.schema);
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "records: {} read, {} valid, {} rejected, {} skipped ({} valid with warnings)",
        c.read, c.valid, c.rejected, c.skipped, c.with_warnings
    );
    for side in &s.side_files {
        match &side.path {
            Some(p) => {
                let _ = writeln!(
                    o,
                    "side file {}: {} entries for {} keys from {}{}{}",
                    side.name,
                    side.entries,
                    side.keys,
                    p,
                    if side.unreadable > 0 {
                        format!(" ({} left out, listed under problems)", side.unreadable)
                    } else {
                        String::new()
                    },
                    if side.unjoined > 0 {
                        format!(
                            " ({} of them join no ticket, listed under problems)",
                            side.unjoined
                        )
                    } else {
                        String::new()
                    }
                );
            }
            None => {
                let _ = writeln!(o, "side file {}: not present (optional)", side.name);
            }
        }
    }
    render_coverage(&mut o, &s.coverage);
    if !s.problems.is_empty() {
        let _ = writeln!(o, "\nproblems:");
        for g in &s.problems {
            let sev = match g.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let _ = writeln!(o, "  {sev:<7} {:>6} × {}", g.count, g.title);
            for e in g.examples.iter().take(3) {
                let id = e
                    .source_id
                    .as_deref()
                    .map(|i| format!(" [{i}]"))
                    .unwrap_or_default();
                let field = if e.field.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", e.field)
                };
                let _ = writeln!(o, "            {}{id} {field}{}", e.location, e.message);
            }
            if g.count > 3 {
                let _ = writeln!(o, "            … and {} more", g.count - 3);
            }
        }
    }
    let cv = &s.conversation;
    let _ = writeln!(
        o,
        "\nconversation: {} staff replies, {} private notes, {} contact replies on {} tickets ({} authors resolve, {} fall back to the migration agent)",
        cv.staff_replies,
        cv.private_notes,
        cv.contact_replies,
        cv.tickets_with_entries,
        cv.resolved_authors,
        cv.fallback_authors
    );
    if cv.transcripts > 0 {
        let _ = writeln!(
            o,
            "history: {} tickets as one transcript note each, holding {} entries ({} POSTs fewer than full history)",
            cv.transcripts,
            cv.transcript_entries,
            cv.transcript_entries.saturating_sub(cv.transcripts)
        );
    }
    let a = &s.api;
    let _ = writeln!(
        o,
        "API work: {} POSTs ({} bulk creates of ≤100, {} single creates, {} conversation posts, {} final-state posts, {} extra attachment posts, {} inline image uploads), ≤{} GETs",
        a.total_posts,
        a.bulk_creates,
        a.single_creates,
        a.conversation_posts,
        a.final_state_posts,
        a.attachment_extra_posts,
        a.inline_images,
        a.gets
    );
    if a.attachments > 0 {
        let _ = writeln!(
            o,
            "attachments: {} files, {:.1} MB as the export states sizes{}",
            a.attachments,
            a.attachment_bytes as f64 / (1024.0 * 1024.0),
            if a.oversize_attachments > 0 {
                format!(
                    ", {} over 25 MB (reported, not sent)",
                    a.oversize_attachments
                )
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(
        o,
        "time at {} POST/min ({}% of HappyFox's {}/min): about {}",
        a.post_ceiling_per_min,
        u64::from(a.post_ceiling_per_min) * 100 / u64::from(crate::happyfox::POST_PER_MIN),
        crate::happyfox::POST_PER_MIN,
        human_duration(a.estimated_seconds)
    );
    if let Some(w) = &s.window {
        render_window(&mut o, w);
    }
    if let Some(dir) = report_dir {
        let _ = writeln!(o, "\nreport: {}", dir.join("report.html").display());
    }
    let _ = writeln!(o, "nothing was sent to HappyFox");
    o
}

/// `--window`: does the plan fit, and if not, which transcript cut-off would.
fn render_window(o: &mut String, w: &WindowFit) {
    let window = human_duration(w.window_seconds);
    if w.fits {
        let _ = writeln!(
            o,
            "window {window}: fits ({} POSTs, about {}, of the {} the window holds at {} POST/min)",
            w.planned_posts,
            human_duration(w.planned_seconds),
            w.budget_posts,
            w.post_per_min
        );
        return;
    }
    let _ = writeln!(
        o,
        "window {window}: does not fit ({} POSTs, about {}; the window holds {} at {} POST/min)",
        w.planned_posts,
        human_duration(w.planned_seconds),
        w.budget_posts,
        w.post_per_min
    );
    match &w.suggestion {
        Some(Cutoff {
            before: Some(date),
            transcripts,
            posts,
            seconds,
        }) => {
            let _ = writeln!(
                o,
                "  to fit: `conversation.history: transcript` for the {transcripts} tickets created before {date} (history_when on the ticket's creation date), full history after: {posts} POSTs, about {}",
                human_duration(*seconds)
            );
        }
        Some(Cutoff { posts, seconds, .. }) => {
            let _ = writeln!(
                o,
                "  full history for every ticket fits ({posts} POSTs, about {}): the mapping's transcript rule is not what makes it long",
                human_duration(*seconds)
            );
        }
        None => {
            let _ = writeln!(
                o,
                "  no cut-off fits: every ticket as a transcript is still {} POSTs, about {}; a longer window or a higher --post-per-min is needed",
                w.all_transcripts_posts,
                human_duration(
                    (w.all_transcripts_posts * 60).div_ceil(u64::from(w.post_per_min.max(1)))
                )
            );
        }
    }
    if w.undated_tickets > 0 {
        let _ = writeln!(
            o,
            "  {} tickets have no creation date the cut-off can read (ticket.created_at): counted as planned",
            w.undated_tickets
        );
    }
}

/// Fields shown in the terminal summary's list of unmapped fields (all are in the files).
const UNMAPPED_SHOWN: usize = 15;

fn render_coverage(o: &mut String, c: &Coverage) {
    let _ = writeln!(
        o,
        "\ncoverage: {} source fields seen, {} with data that the mapping does not name{}",
        c.fields.len(),
        c.unmapped_with_data,
        if c.fields_not_listed > 0 {
            format!(
                " (more fields than the report keeps: {} values not listed)",
                c.fields_not_listed
            )
        } else {
            String::new()
        }
    );
    let unmapped: Vec<&CoverageField> = c.fields.iter().filter(|f| !f.mapped).collect();
    for f in unmapped.iter().take(UNMAPPED_SHOWN) {
        let _ = match &f.hidden_by_side_file {
            Some(side) => writeln!(
                o,
                "  not mapped: {} ({} records): the side file {side:?} of the same name hides it in templates; rename the side file to read it",
                f.path, f.records
            ),
            None => writeln!(o, "  not mapped: {} ({} records)", f.path, f.records),
        };
    }
    if unmapped.len() > UNMAPPED_SHOWN {
        let _ = writeln!(
            o,
            "  … and {} more (report.json, report.html)",
            unmapped.len() - UNMAPPED_SHOWN
        );
    }
    let changed: Vec<String> = c
        .changed
        .iter()
        .map(|v| format!("{} {}", v.count, v.kind))
        .collect();
    let _ = writeln!(o, "  values changed: {}", changed.join(", "));
}

/// `report.json`.
pub(crate) fn write_json(s: &Summary, path: &Path) -> std::io::Result<()> {
    let mut f = BufWriter::new(File::create(path)?);
    serde_json::to_writer_pretty(&mut f, s)?;
    f.write_all(b"\n")?;
    f.flush()
}

/// Writes `report.html` and `report.json` into `dir`, beside the files written while
/// records streamed by (the page links those it finds).
pub(crate) fn write_reports(s: &Summary, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let html = dir.join("report.html");
    let beside = html::Beside {
        rejects: dir.join(html::REJECTS).is_file(),
        payloads: dir.join(html::PAYLOADS).is_file(),
    };
    let page = html::render(s, beside).map_err(std::io::Error::other)?;
    std::fs::write(&html, page)?;
    let json = dir.join("report.json");
    write_json(s, &json)?;
    Ok(vec![html, json])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(neutralise("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(neutralise("+1"), "'+1");
        assert_eq!(neutralise("-2"), "'-2");
        assert_eq!(neutralise("@cmd"), "'@cmd");
        assert_eq!(neutralise("plain"), "plain");
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(42), "42s");
        // As the progress display and the import plan write them.
        assert_eq!(human_duration(125), "2m 5s");
        assert_eq!(human_duration(3 * 3600 + 5 * 60), "3h 5m");
    }
}
