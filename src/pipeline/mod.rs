//! The front half of every run: read the export and yield each record's validated outcome,
//! in input order.
//!
//! The dry run and the import both need exactly this (source → mapping → payload, with
//! the side files indexed and duplicate source ids caught), and differ only in what they do
//! with each outcome. Keeping it in one place means the import sends precisely what the dry
//! run reported. Memory stays flat whatever the size of the export: records stream
//! through, and the only state that grows (side-file indexes, the duplicate-id set) is on
//! disk.
//!
//! [`Pipeline::open`] resolves the inputs and indexes the side files (`sides`);
//! [`Pipeline::for_each`] (`threads`) reads the records, checks a CSV header against the
//! mapping (`columns`), catches repeated source ids (`dedupe`) and builds the payloads on a
//! pool of threads.

use std::path::PathBuf;
use std::sync::Arc;

use crate::mapping::template::Sides;
use crate::mapping::{MappingError, Plan};
use crate::payload::RecordOutcome;
use crate::schema::Schema;
use crate::source::{self, Location, SourceError};

mod columns;
pub(crate) mod coverage;
mod dedupe;
mod sides;
pub mod stages;
mod threads;

pub(crate) use sides::{build_sides, side_paths};

/// One record after the pipeline: where it came from and what became of it.
#[derive(Debug)]
pub struct Processed {
    pub location: Location,
    /// The record came from a CSV file (rejects files quote raw rows differently).
    pub is_csv: bool,
    /// The source record, kept for rejected records only (the rejects file shows it so
    /// the user can fix and re-run it); `None` for valid and skipped records.
    pub record: Option<serde_json::Value>,
    /// The raw text of a record that could not be read at all, where the reader has it.
    pub raw: Option<String>,
    /// The outcome; a repeated source id has already been turned into a rejection, and an
    /// unreadable record is a rejection with one `UnreadableRecord` problem.
    pub outcome: RecordOutcome,
}

/// A side file as it was indexed: what the report shows so a lead sees a side file that
/// matched nothing.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub(crate) struct SideFileStats {
    pub name: String,
    pub path: Option<String>,
    pub entries: u64,
    pub keys: u64,
    /// Records or entries left out: unreadable, without a key, or failing `keep_if`.
    pub unreadable: u64,
    /// Entries of a joined file whose key no ticket of the export asked for.
    pub unjoined: u64,
    /// Those left out and unjoined, with locations (in the report's problems).
    #[serde(skip)]
    pub problems: crate::problem::Sampled,
}

/// What the pipeline learnt about its inputs, besides the records.
#[derive(Debug, Clone, Default)]
pub struct PipelineInfo {
    /// The files read, in the order they were read.
    pub files: Vec<PathBuf>,
    /// One entry per side file the mapping names.
    pub(crate) side_files: Vec<SideFileStats>,
    /// The source fields the records fill (for the dry run's coverage section).
    pub(crate) fields: Arc<coverage::FieldCounts>,
    /// Where the run's time went, per stage.
    pub stages: Arc<stages::StageTimes>,
}

/// Why the pipeline stopped (per-record problems never end up here). `E` is the error of
/// the caller's per-record function, passed through unchanged as [`PipelineError::Consumer`].
#[derive(Debug, thiserror::Error)]
pub enum PipelineError<E = std::convert::Infallible> {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("side file `{name}`: {message}")]
    Side { name: String, message: String },
    /// The mapping does not fit the data (an unknown CSV column).
    #[error("{}", .0.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("\n"))]
    Mapping(Vec<MappingError>),
    #[error("duplicate-id index")]
    Index(#[from] rusqlite::Error),
    #[error("cannot create a temporary directory for the duplicate-id index in {path}: {source}")]
    TempDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The per-record function failed; the pipeline stopped at that record.
    #[error(transparent)]
    Consumer(E),
}

impl PipelineError {
    /// The same error typed for any consumer (for errors raised while no consumer runs).
    fn cast<F>(self) -> PipelineError<F> {
        match self {
            PipelineError::Source(e) => PipelineError::Source(e),
            PipelineError::Side { name, message } => PipelineError::Side { name, message },
            PipelineError::Mapping(e) => PipelineError::Mapping(e),
            PipelineError::Index(e) => PipelineError::Index(e),
            PipelineError::TempDir { path, source } => PipelineError::TempDir { path, source },
            PipelineError::Consumer(never) => match never {},
        }
    }
}

/// An opened pipeline: inputs resolved and side files indexed, records not read yet.
///
/// Opening is separate from running so that a caller can fail early on a bad input or side
/// file before creating its own outputs (the dry run's report folder).
pub(crate) struct Pipeline<'p> {
    plan: &'p Plan,
    schema: Arc<Schema>,
    sides: Arc<Sides>,
    info: PipelineInfo,
}

impl<'p> Pipeline<'p> {
    /// Resolves `inputs` against the mapping's file pattern and indexes the side files
    /// (`sides` are `--side NAME=PATH` overrides).
    pub fn open(
        plan: &'p Plan,
        schema: Arc<Schema>,
        inputs: &[PathBuf],
        sides: &[(String, PathBuf)],
    ) -> Result<Pipeline<'p>, PipelineError> {
        let files = source::resolve_inputs(inputs, &plan.source.file)?;
        let (side_tables, side_files) = build_sides(plan, inputs, sides)?;
        Ok(Pipeline {
            plan,
            schema,
            sides: side_tables,
            info: PipelineInfo {
                files,
                side_files,
                fields: Arc::default(),
                stages: Arc::default(),
            },
        })
    }
}

/// Opens the pipeline and runs `f` on every record's outcome, in input order.
pub fn for_each<E>(
    plan: &Plan,
    schema: Arc<Schema>,
    inputs: &[PathBuf],
    sides: &[(String, PathBuf)],
    f: impl FnMut(Processed) -> Result<(), E>,
) -> Result<PipelineInfo, PipelineError<E>> {
    Pipeline::open(plan, schema, inputs, sides)
        .map_err(PipelineError::cast)?
        .for_each(f)
}

#[cfg(test)]
mod tests {
    use super::dedupe::SEEN_BATCH;
    use super::*;
    use crate::problem::ProblemKind;
    use std::io::Write;
    use std::path::Path;

    /// Many chunks through several builders: outcomes come back in input order, and a
    /// repeated id is rejected at its later occurrence only, also after the id set spilled
    /// to disk.
    #[test]
    fn outcomes_in_input_order_and_repeats_rejected() {
        let (schema, plan) = bench_plan();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tickets.ndjson");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let n = SEEN_BATCH + 3_000;
        for i in 0..n {
            let id = if i >= SEEN_BATCH + 2_000 {
                i - SEEN_BATCH - 1_000
            } else {
                i
            };
            let line = serde_json::json!({
                "id": id, "subject": format!("s{i}"), "description": "body",
                "status": "open", "priority": "low", "group_id": 360011111101u64,
                "requester": {"name": "A", "email": "a@example.com"}, "tags": [],
                "created_at": "2024-01-02T03:04:05Z", "custom_fields": [],
            });
            if i == 5 {
                writeln!(out, "{{not json").unwrap();
            }
            writeln!(out, "{line}").unwrap();
        }
        drop(out);
        let mut seen = vec![];
        let info = for_each(&plan, schema, &[path], &[], |p: Processed| {
            seen.push(p);
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap();
        assert_eq!(info.files.len(), 1);
        assert_eq!(seen.len(), n + 1);
        let lines: Vec<u64> = seen.iter().map(|p| p.location.line.unwrap()).collect();
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "out of order");
        let dups: Vec<usize> = seen
            .iter()
            .enumerate()
            .filter(|(_, p)| match &p.outcome {
                RecordOutcome::Rejected { problems, .. } => problems
                    .iter()
                    .any(|x| x.kind == ProblemKind::DuplicateSourceId),
                _ => false,
            })
            .map(|(i, _)| i)
            .collect();
        assert_eq!(dups.len(), 1_000);
        assert_eq!(dups[0], SEEN_BATCH + 2_000 + 1);
        assert!(seen[5].outcome_is_unreadable());
        // A duplicate's record, parsed again from its line for the rejects file.
        let kept = seen[dups[0]]
            .record
            .as_ref()
            .expect("rejects keep their record");
        assert_eq!(kept["subject"], format!("s{}", SEEN_BATCH + 2_000));
        assert_eq!(kept["id"], 1_000);
        assert!(matches!(seen[0].outcome, RecordOutcome::Valid { .. }));
        assert!(seen[0].record.is_none());
    }

    /// Files parsed on different threads (a JSON document by the reader, NDJSON lines by
    /// the builders) still see a repeated id at its later occurrence in input order,
    /// whichever file comes first.
    #[test]
    fn repeats_across_formats_follow_input_order() {
        let (schema, plan) = bench_plan();
        let dir = tempfile::tempdir().unwrap();
        let ticket = |id: u64, subject: &str| {
            serde_json::json!({
                "id": id, "subject": subject, "description": "b",
                "requester": {"name": "A", "email": "a@example.com"},
            })
        };
        let doc = dir.path().join("a.json");
        let doc_records = serde_json::json!([ticket(1, "doc 1"), ticket(2, "doc 2")]);
        std::fs::write(&doc, doc_records.to_string()).unwrap();
        let lines = dir.path().join("b.ndjson");
        let text: String = [
            ticket(2, "line 2"),
            ticket(3, "line 3"),
            ticket(1, "line 1"),
        ]
        .iter()
        .map(|t| format!("{t}\n"))
        .collect();
        std::fs::write(&lines, text).unwrap();
        for (files, want) in [
            ([doc.clone(), lines.clone()], ["line 2", "line 1"]),
            ([lines.clone(), doc.clone()], ["doc 1", "doc 2"]),
        ] {
            let mut rejected = vec![];
            for_each(&plan, schema.clone(), &files, &[], |p: Processed| {
                if let RecordOutcome::Rejected { problems, .. } = &p.outcome {
                    assert_eq!(problems[0].kind, ProblemKind::DuplicateSourceId);
                    let record = p.record.expect("a duplicate keeps its record");
                    rejected.push(record["subject"].as_str().unwrap().to_string());
                }
                Ok::<(), std::convert::Infallible>(())
            })
            .unwrap();
            assert_eq!(rejected, want, "{files:?}");
        }
    }

    /// A failing consumer stops the run at once: every thread ends, nothing hangs.
    #[test]
    fn consumer_error_stops_the_threads() {
        let (schema, plan) = bench_plan();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tickets.ndjson");
        let line = r#"{"id": 1, "subject": "s", "description": "b", "requester": {"name": "A", "email": "a@example.com"}}"#;
        std::fs::write(&path, format!("{line}\n").repeat(5_000)).unwrap();
        let mut n = 0;
        let err = for_each(&plan, schema, &[path], &[], |_p: Processed| {
            n += 1;
            if n == 300 { Err("stop") } else { Ok(()) }
        })
        .unwrap_err();
        assert!(matches!(err, PipelineError::Consumer("stop")));
        assert_eq!(n, 300);
    }

    /// The sample schema and the benchmark's NDJSON mapping, which the tests' records fit.
    fn bench_plan() -> (Arc<Schema>, Plan) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let schema = Arc::new(Schema::load(&root.join("samples/happyfox-schema.json")).unwrap());
        let plan =
            crate::mapping::load(&root.join("bench/ndjson.yaml"), Some(schema.clone())).unwrap();
        (schema, plan)
    }

    impl Processed {
        fn outcome_is_unreadable(&self) -> bool {
            matches!(&self.outcome, RecordOutcome::Rejected { source_id: None, problems }
                if problems[0].kind == ProblemKind::UnreadableRecord)
        }
    }
}
