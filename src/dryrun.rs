//! The dry run: read everything, build every payload, validate, write nothing to HappyFox.
//!
//! It is the same front half of the pipeline the import uses (source → mapping →
//! payload), run to completion with every per-record problem collected instead of acted
//! on. Records stream through; the only state that grows is on disk (side-file indexes,
//! the duplicate-id set), so memory stays flat whatever the size of the export.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use minijinja::value::Value;
use rusqlite::Connection;

use crate::mapping::template::{SideTable, Sides};
use crate::mapping::{MappingError, Plan};
use crate::payload::{Builder, EntryKind, RecordOutcome};
use crate::problem::{Problem, ProblemKind};
use crate::report::{
    ApiPlan, BATCH_SIZE, ConversationCounts, Counts, PayloadWriter, ProblemTally, RejectsWriter,
    SideFileReport, Summary,
};
use crate::schema::Schema;
use crate::source::{self, Format, SideIndex, SideSpec, SourceError, format_from_extension};

/// Default POST ceiling: 80% of HappyFox's 300 a minute.
pub const DEFAULT_POST_PER_MIN: u32 = 240;

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

fn report_err(path: &Path) -> impl Fn(std::io::Error) -> DryRunError + '_ {
    move |source| DryRunError::Report {
        path: path.to_path_buf(),
        source,
    }
}

/// Indexes the side files named in the plan.
pub fn build_sides(
    plan: &Plan,
    inputs: &[PathBuf],
    overrides: &[(String, PathBuf)],
) -> Result<(Arc<Sides>, Vec<SideFileReport>), DryRunError> {
    let root = source::export_root(inputs);
    let mut sides = Sides::default();
    let mut reports = vec![];
    for sp in &plan.source.sides {
        let path = overrides
            .iter()
            .find(|(n, _)| n == &sp.name)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| root.join(&sp.file));
        let exists = path.is_file();
        let table = if !exists && sp.optional {
            reports.push(SideFileReport {
                name: sp.name.clone(),
                path: None,
                entries: 0,
                keys: 0,
                unreadable: 0,
            });
            SideTable {
                name: sp.name.clone(),
                index: None,
            }
        } else if !exists {
            return Err(DryRunError::Side {
                name: sp.name.clone(),
                message: format!(
                    "{} does not exist; pass --side {}=PATH, or mark it `optional: true` in the mapping",
                    path.display(),
                    sp.name
                ),
            });
        } else {
            let spec = SideSpec {
                name: sp.name.clone(),
                path: path.clone(),
                read: sp.read.clone(),
                key: sp.key.clone(),
                explode: sp.explode.clone(),
                order_by: sp.order_by.clone(),
            };
            let mut unreadable = 0u64;
            let keep_expr = sp.keep_if.as_ref();
            let mut keep = |v: &serde_json::Value| match keep_expr {
                None => true,
                Some(e) => e
                    .eval(&Value::from_serialize(v))
                    .map(|r| r.is_true())
                    .unwrap_or(false),
            };
            let mut on_error = |_e: source::RecordError| unreadable += 1;
            let index = SideIndex::build(&spec, &mut keep, &mut on_error).map_err(|e| {
                DryRunError::Side {
                    name: sp.name.clone(),
                    message: e.to_string(),
                }
            })?;
            reports.push(SideFileReport {
                name: sp.name.clone(),
                path: Some(path.display().to_string()),
                entries: index.len(),
                keys: index.keys(),
                unreadable,
            });
            SideTable {
                name: sp.name.clone(),
                index: Some(Mutex::new(index)),
            }
        };
        let table = Arc::new(table);
        match &sp.join {
            Some(expr) => {
                sides.joins.insert(sp.name.clone(), (table, expr.clone()));
            }
            None => {
                sides.tables.insert(sp.name.clone(), table);
            }
        }
    }
    Ok((Arc::new(sides), reports))
}

/// Names templates may use besides the record's own fields.
fn builtin_names(plan: &Plan) -> HashSet<String> {
    let mut names: HashSet<String> = [
        "row",
        "record",
        "ticket",
        "position",
        "loop",
        "range",
        "dict",
        "namespace",
        "debug",
        "true",
        "false",
        "none",
        "__tz",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.extend(plan.source.sides.iter().map(|s| s.name.clone()));
    names
}

/// `row['Column Name']` references in a template's source.
fn row_subscripts(source: &str) -> Vec<String> {
    let mut out = vec![];
    for prefix in ["row[", "record["] {
        let mut rest = source;
        while let Some(i) = rest.find(prefix) {
            rest = &rest[i + prefix.len()..];
            let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
                continue;
            };
            if let Some(end) = rest[1..].find(q) {
                out.push(rest[1..1 + end].to_string());
            }
        }
    }
    out
}

/// For CSV sources the columns are known from the header: a template that names a column
/// the file does not have is a mapping error, found before any record is judged.
fn check_columns(plan: &Plan, first: &serde_json::Value, file: &Path) -> Vec<MappingError> {
    let Some(columns) = first.as_object() else {
        return vec![];
    };
    let builtins = builtin_names(plan);
    let mut errors = vec![];
    let mut seen = HashSet::new();
    for field in plan.fields() {
        let mut wanted: Vec<String> = field
            .expr
            .variables()
            .into_iter()
            .filter(|v| !builtins.contains(v))
            .collect();
        wanted.extend(row_subscripts(&field.source));
        for col in wanted {
            if columns.contains_key(&col) || !seen.insert((field.name.clone(), col.clone())) {
                continue;
            }
            let hint = crate::schema::did_you_mean(&col, columns.keys().map(String::as_str))
                .map(|s| {
                    format!("did you mean `{s}`? (columns with spaces are read as row['{s}'])")
                })
                .unwrap_or_else(|| {
                    format!(
                        "the columns of {} are: {}",
                        file.display(),
                        columns.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                });
            errors.push(
                MappingError::at(
                    field.pos,
                    format!(
                        "{}: unknown column `{col}` in {}",
                        field.name,
                        file.display()
                    ),
                )
                .help(hint),
            );
        }
    }
    errors
}

/// A set of source ids kept on disk, so duplicate detection does not grow memory.
struct SeenIds {
    conn: Connection,
    _dir: tempfile::TempDir,
    pending: Vec<String>,
    recent: HashSet<String>,
}

impl SeenIds {
    fn new() -> Result<SeenIds, DryRunError> {
        let dir = tempfile::tempdir().map_err(|e| DryRunError::Report {
            path: std::env::temp_dir(),
            source: e,
        })?;
        let conn = Connection::open(dir.path().join("seen.db"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -8192;
             CREATE TABLE seen (id TEXT PRIMARY KEY) WITHOUT ROWID;",
        )?;
        Ok(SeenIds {
            conn,
            _dir: dir,
            pending: vec![],
            recent: HashSet::new(),
        })
    }

    /// True when `id` was seen before.
    fn check(&mut self, id: &str) -> Result<bool, DryRunError> {
        if self.recent.contains(id) {
            return Ok(true);
        }
        let on_disk: bool = self
            .conn
            .prepare_cached("SELECT 1 FROM seen WHERE id = ?1")?
            .exists([id])?;
        if on_disk {
            return Ok(true);
        }
        self.recent.insert(id.to_string());
        self.pending.push(id.to_string());
        if self.pending.len() >= 10_000 {
            self.flush()?;
        }
        Ok(false)
    }

    fn flush(&mut self) -> Result<(), DryRunError> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached("INSERT OR IGNORE INTO seen (id) VALUES (?1)")?;
            for id in self.pending.drain(..) {
                st.execute([id])?;
            }
        }
        tx.commit()?;
        self.recent.clear();
        Ok(())
    }
}

/// Runs the dry run and writes the report files; returns the summary.
pub fn run(plan: &Plan, schema: Arc<Schema>, opts: &DryRunOptions) -> Result<Summary, DryRunError> {
    let started = Instant::now();
    let files = source::resolve_inputs(&opts.inputs, &plan.source.file)?;
    let (sides, side_reports) = build_sides(plan, &opts.inputs, &opts.sides)?;
    let builder = Builder::new(plan, schema.clone(), sides);

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
    let mut seen = SeenIds::new()?;
    let mut columns_checked = false;

    for file in &files {
        let is_csv = match plan.source.read.format {
            Some(f) => f == Format::Csv,
            None => format_from_extension(file)
                .map(|f| f == Format::Csv)
                .unwrap_or(false),
        };
        for item in source::read(file, &plan.source.read)? {
            counts.read += 1;
            let record = match item {
                Ok(r) => r,
                Err(e) => {
                    counts.rejected += 1;
                    let p = Problem::error(ProblemKind::UnreadableRecord, "", e.message.clone());
                    let loc = e.location.to_string();
                    tally.add(&loc, None, &p);
                    if let Some(w) = rejects.as_mut() {
                        w.write(
                            &loc,
                            None,
                            std::slice::from_ref(&p),
                            None,
                            e.raw.as_deref(),
                            is_csv,
                        )
                        .map_err(report_err(file))?;
                    }
                    continue;
                }
            };
            if is_csv && !columns_checked {
                columns_checked = true;
                let errors = check_columns(plan, &record.value, file);
                if !errors.is_empty() {
                    return Err(DryRunError::Mapping(errors));
                }
            }
            let loc = record.location.to_string();
            let outcome = builder.build(&record);
            let outcome = match outcome {
                RecordOutcome::Valid { plan: p, warnings } => {
                    if seen.check(&p.source_id)? {
                        let mut problems = vec![Problem::error(
                            ProblemKind::DuplicateSourceId,
                            "source.id",
                            format!(
                                "source id {:?} appeared before in the export; only its first record is imported",
                                p.source_id
                            ),
                        )];
                        problems.extend(warnings);
                        RecordOutcome::Rejected {
                            source_id: Some(p.source_id.clone()),
                            problems,
                        }
                    } else {
                        RecordOutcome::Valid { plan: p, warnings }
                    }
                }
                RecordOutcome::Rejected {
                    source_id: Some(id),
                    mut problems,
                } => {
                    if seen.check(&id)? {
                        problems.insert(
                            0,
                            Problem::error(
                                ProblemKind::DuplicateSourceId,
                                "source.id",
                                format!("source id {id:?} appeared before in the export"),
                            ),
                        );
                    }
                    RecordOutcome::Rejected {
                        source_id: Some(id),
                        problems,
                    }
                }
                other => other,
            };
            match outcome {
                RecordOutcome::Valid { plan: p, warnings } => {
                    counts.valid += 1;
                    if !warnings.is_empty() {
                        counts.with_warnings += 1;
                    }
                    for w in &warnings {
                        tally.add(&loc, Some(&p.source_id), w);
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
                        }
                    }
                    contact_lookups += contacts.len() as u64;
                    if p.conversation.is_empty() && p.final_state.needs_post(&schema) {
                        final_posts += 1;
                    }
                    if let Some(w) = payloads.as_mut() {
                        w.push(&p.source_id, &p.payload).map_err(report_err(file))?;
                    }
                }
                RecordOutcome::Rejected {
                    source_id,
                    problems,
                } => {
                    counts.rejected += 1;
                    for p in &problems {
                        tally.add(&loc, source_id.as_deref(), p);
                    }
                    if let Some(w) = rejects.as_mut() {
                        w.write(
                            &loc,
                            source_id.as_deref(),
                            &problems,
                            Some(&record.value),
                            None,
                            is_csv,
                        )
                        .map_err(report_err(file))?;
                    }
                }
                RecordOutcome::Skipped { .. } => counts.skipped += 1,
            }
        }
    }

    if let Some(w) = rejects {
        w.finish().map_err(report_err(Path::new("rejects.csv")))?;
    }
    if let Some(w) = payloads {
        w.finish()
            .map_err(report_err(Path::new("payloads.ndjson")))?;
    }

    let bulk = counts.valid.div_ceil(BATCH_SIZE as u64);
    let conversation_posts = conv.staff_replies + conv.private_notes + conv.contact_replies;
    let total = bulk + conversation_posts + final_posts;
    let post_per_min = opts.post_per_min.max(1);
    let api = ApiPlan {
        bulk_creates: bulk,
        single_creates: 0,
        conversation_posts,
        final_state_posts: final_posts,
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
