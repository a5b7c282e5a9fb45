//! The front half of every run: read the export and yield each record's validated outcome,
//! in input order.
//!
//! The dry run and the import both need exactly this (source → mapping → payload, with
//! the side files indexed and duplicate source ids caught), and differ only in what they do
//! with each outcome. Keeping it in one place means the import sends precisely what the dry
//! run reported. Memory stays flat whatever the size of the export: records stream
//! through, and the only state that grows (side-file indexes, the duplicate-id set) is on
//! disk.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use minijinja::value::Value;
use rusqlite::Connection;

use crate::mapping::template::{SideTable, Sides};
use crate::mapping::{MappingError, Plan};
use crate::payload::{Builder, RecordOutcome};
use crate::problem::{Problem, ProblemKind};
use crate::schema::Schema;
use crate::source::{
    self, Format, Location, SideIndex, SideSpec, SourceError, SourceRecord, format_from_extension,
};

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

/// What the pipeline learnt about its inputs, besides the records.
/// A side file as it was indexed: what the report shows so a lead sees a side file that
/// matched nothing.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct SideFileStats {
    pub name: String,
    pub path: Option<String>,
    pub entries: u64,
    pub keys: u64,
    pub unreadable: u64,
}

#[derive(Debug, Clone, Default)]
pub struct PipelineInfo {
    /// The files read, in the order they were read.
    pub files: Vec<PathBuf>,
    /// One entry per side file the mapping names.
    pub side_files: Vec<SideFileStats>,
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
pub struct Pipeline<'p> {
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
            info: PipelineInfo { files, side_files },
        })
    }

    /// The files and side files found by [`Pipeline::open`].
    pub fn info(&self) -> &PipelineInfo {
        &self.info
    }

    /// Reads every record and hands its outcome to `f`, in input order.
    ///
    /// Building a ticket plan costs far more than reading the record, so the work is
    /// spread over threads: one reads the files, checks source ids for repeats (which
    /// depends on input order) and cuts the stream into numbered chunks, a pool builds the
    /// chunks, and `f` runs on the calling thread, which puts the chunks back in input
    /// order. Records are dropped by the builders, not by `f`'s thread, which is the one
    /// thread every record passes through. A fixed
    /// number of chunks may be in flight at once, so memory stays flat however large the
    /// export and however unevenly the builders progress.
    pub fn for_each<E>(
        self,
        mut f: impl FnMut(Processed) -> Result<(), E>,
    ) -> Result<PipelineInfo, PipelineError<E>> {
        let plan = self.plan;
        let builder = Builder::new(plan, self.schema.clone(), self.sides.clone());
        let mut seen = SeenIds::new().map_err(PipelineError::cast)?;
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, MAX_WORKERS);
        let files = &self.info.files;

        let result = std::thread::scope(|scope| -> Result<(), PipelineError<E>> {
            let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(workers);
            let chunk_rx = Arc::new(std::sync::Mutex::new(chunk_rx));
            let (done_tx, done_rx) = sync_channel::<Built>(IN_FLIGHT);
            let (credit_tx, credit_rx) = sync_channel::<()>(IN_FLIGHT);
            for _ in 0..IN_FLIGHT {
                // The channel holds exactly IN_FLIGHT credits: these sends cannot block.
                let _ = credit_tx.send(());
            }

            let (spent_tx, spent_rx) = channel::<Vec<serde_json::Value>>();
            let reader = Reader {
                plan,
                builder: &builder,
                seen: &mut seen,
                spent: spent_rx,
            };
            scope.spawn(move || reader.run(files, &chunk_tx, &credit_rx));
            for _ in 0..workers {
                let chunk_rx = chunk_rx.clone();
                let done_tx = done_tx.clone();
                let builder = &builder;
                let spent_tx = spent_tx.clone();
                scope.spawn(move || build_chunks(builder, &chunk_rx, &done_tx, &spent_tx));
            }
            drop(done_tx);
            drop(spent_tx);

            // Reorder: chunks may finish out of order; hand them on by sequence number.
            let mut waiting: BTreeMap<u64, Built> = BTreeMap::new();
            let mut next = 0u64;
            for built in done_rx.iter() {
                waiting.insert(built.seq, built);
                while let Some(built) = waiting.remove(&next) {
                    next += 1;
                    for item in built.items {
                        f(item.map_err(PipelineError::cast)?).map_err(PipelineError::Consumer)?;
                    }
                    // The reader may cut one more chunk; it stops when this fails.
                    let _ = credit_tx.send(());
                }
            }
            Ok(())
        });
        result?;
        Ok(self.info)
    }
}

/// Records per chunk: enough that thread hand-offs cost little, few enough that chunks in
/// flight stay small (about 1,000 records at 1 KB each with the defaults).
const CHUNK: usize = 128;
/// Chunks read but not yet handed to the consumer, at most.
const IN_FLIGHT: usize = 8;
/// Builder threads at most (the reader and the consumer run besides them).
const MAX_WORKERS: usize = 8;

/// One item of a chunk: a record, a record that could not be read, or a reason to stop
/// (a file that cannot be opened, a CSV header that does not fit the mapping), which the
/// consumer raises once everything before it has been handed on.
enum ReadItem {
    Record {
        record: SourceRecord,
        is_csv: bool,
        /// Its source id appeared before.
        duplicate: bool,
    },
    Unreadable {
        error: source::RecordError,
        is_csv: bool,
    },
    Fatal(PipelineError),
}

struct Chunk {
    seq: u64,
    items: Vec<ReadItem>,
}

struct Built {
    seq: u64,
    items: Vec<Result<Processed, PipelineError>>,
}

/// The reader thread: cuts the records of every file into numbered chunks, taking a credit
/// for each so that at most `IN_FLIGHT` chunks exist at once, and marks records whose
/// source id appeared before.
struct Reader<'a, 'p> {
    plan: &'a Plan,
    builder: &'a Builder<'p>,
    seen: &'a mut SeenIds,
    /// Records the builders are done with, freed here (see [`build_chunks`]).
    spent: Receiver<Vec<serde_json::Value>>,
}

impl Reader<'_, '_> {
    fn run(self, files: &[PathBuf], chunk_tx: &SyncSender<Chunk>, credits: &Receiver<()>) {
        let plan = self.plan;
        let mut seq = 0u64;
        let mut items = Vec::with_capacity(CHUNK);
        let spent = &self.spent;
        let send = |items: &mut Vec<ReadItem>, seq: &mut u64| -> bool {
            if credits.recv().is_err() {
                return false;
            }
            while let Ok(values) = spent.try_recv() {
                drop(values);
            }
            let chunk = Chunk {
                seq: *seq,
                items: std::mem::replace(items, Vec::with_capacity(CHUNK)),
            };
            *seq += 1;
            chunk_tx.send(chunk).is_ok()
        };
        let mut columns_checked = false;
        'files: for file in files {
            let is_csv = match plan.source.read.format {
                Some(f) => f == Format::Csv,
                None => format_from_extension(file)
                    .map(|f| f == Format::Csv)
                    .unwrap_or(false),
            };
            let stream = match source::read(file, &plan.source.read) {
                Ok(s) => s,
                Err(e) => {
                    items.push(ReadItem::Fatal(e.into()));
                    break 'files;
                }
            };
            for item in stream {
                match item {
                    Ok(record) => {
                        if is_csv && !columns_checked {
                            columns_checked = true;
                            let errors = check_columns(plan, &record.value, file);
                            if !errors.is_empty() {
                                items.push(ReadItem::Fatal(PipelineError::Mapping(errors)));
                                break 'files;
                            }
                        }
                        let dup = match self.builder.dedupe_key(&record) {
                            Some(id) => match self.seen.check(&id) {
                                Ok(dup) => dup,
                                Err(e) => {
                                    items.push(ReadItem::Fatal(e));
                                    break 'files;
                                }
                            },
                            None => false,
                        };
                        items.push(ReadItem::Record {
                            record,
                            is_csv,
                            duplicate: dup,
                        });
                    }
                    Err(error) => items.push(ReadItem::Unreadable { error, is_csv }),
                }
                if items.len() >= CHUNK && !send(&mut items, &mut seq) {
                    return;
                }
            }
        }
        if !items.is_empty() {
            send(&mut items, &mut seq);
        }
    }
}

/// A builder thread: builds chunks until the reader is done or the consumer has stopped.
///
/// The records it has built are sent back to the reader thread to be freed there. With
/// glibc's allocator, freeing memory that another thread allocated takes that thread's
/// arena lock; the reader allocates without pause, so builders freeing its records
/// contended on that lock for every record (futex calls about as many as records).
fn build_chunks(
    builder: &Builder<'_>,
    chunks: &std::sync::Mutex<Receiver<Chunk>>,
    done: &SyncSender<Built>,
    spent: &Sender<Vec<serde_json::Value>>,
) {
    loop {
        let chunk = match chunks.lock() {
            Ok(rx) => match rx.recv() {
                Ok(c) => c,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let mut used = Vec::with_capacity(chunk.items.len());
        let items = chunk
            .items
            .into_iter()
            .map(|item| match item {
                ReadItem::Record {
                    record,
                    is_csv,
                    duplicate: dup,
                } => {
                    let outcome = builder.build(&record);
                    let outcome = if dup {
                        mark_duplicate(outcome)
                    } else {
                        outcome
                    };
                    let keep = matches!(outcome, RecordOutcome::Rejected { .. });
                    let value = if keep {
                        Some(record.value)
                    } else {
                        used.push(record.value);
                        None
                    };
                    Ok(Processed {
                        location: record.location,
                        is_csv,
                        record: value,
                        raw: None,
                        outcome,
                    })
                }
                ReadItem::Unreadable { error: e, is_csv } => {
                    let p = Problem::error(ProblemKind::UnreadableRecord, "", e.message);
                    Ok(Processed {
                        location: e.location,
                        is_csv,
                        record: None,
                        raw: e.raw,
                        outcome: RecordOutcome::Rejected {
                            source_id: None,
                            problems: vec![p],
                        },
                    })
                }
                ReadItem::Fatal(e) => Err(e),
            })
            .collect();
        // Hand the records back to be freed where they were allocated (see `Spent`).
        let _ = spent.send(used);
        if done
            .send(Built {
                seq: chunk.seq,
                items,
            })
            .is_err()
        {
            return;
        }
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

/// Indexes the side files named in the plan.
pub fn build_sides(
    plan: &Plan,
    inputs: &[PathBuf],
    overrides: &[(String, PathBuf)],
) -> Result<(Arc<Sides>, Vec<SideFileStats>), PipelineError> {
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
            reports.push(SideFileStats {
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
            return Err(PipelineError::Side {
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
                PipelineError::Side {
                    name: sp.name.clone(),
                    message: e.to_string(),
                }
            })?;
            reports.push(SideFileStats {
                name: sp.name.clone(),
                path: Some(path.display().to_string()),
                entries: index.len(),
                keys: index.keys(),
                unreadable,
            });
            SideTable {
                name: sp.name.clone(),
                index: Some(index),
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
///
/// A fixed-size Bloom filter sits in front of the on-disk set: an id it has never seen is
/// certainly new (the common case, answered without SQLite), and only ids the filter may
/// have seen (real duplicates and rare false positives) are looked up on disk. New ids are
/// written in batches; ids not yet written are kept in `pending`. The database is opened in
/// exclusive locking mode because nothing else reads it, so queries take no file locks.
struct SeenIds {
    conn: Connection,
    _dir: tempfile::TempDir,
    bloom: Bloom,
    /// Ids not written yet. A list, not a set: it is searched only on a filter hit, which
    /// is rare, and hashing every id into a set cost more than the searches.
    pending: Vec<String>,
}

/// Ids written to disk per transaction.
const SEEN_BATCH: usize = 10_000;

/// A fast 64-bit hash of short keys (FNV-1a over 8-byte words, then a murmur3 finaliser):
/// the filter lives for one run and needs no protection from crafted ids, and SipHash
/// showed in profiles of the reader thread.
fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A Bloom filter of fixed size (8 MiB, 4 probes): under 0.01% false positives at 1M ids,
/// about 5% at 10M, where the disk lookup still gives the right answer.
struct Bloom {
    bits: Vec<u64>,
}

impl Bloom {
    const WORDS: usize = 1 << 20;
    const PROBES: u64 = 4;

    fn new() -> Bloom {
        Bloom {
            bits: vec![0; Self::WORDS],
        }
    }

    fn positions(id: &str) -> impl Iterator<Item = usize> {
        let a = hash64(id.as_bytes());
        let b = a.rotate_left(32) | 1;
        let nbits = (Self::WORDS * 64) as u64;
        (0..Self::PROBES).map(move |i| (a.wrapping_add(i.wrapping_mul(b)) % nbits) as usize)
    }

    /// Adds `id`; true when every bit was already set (the id may have been seen).
    fn insert(&mut self, id: &str) -> bool {
        let mut all_set = true;
        for bit in Self::positions(id) {
            let (w, m) = (bit / 64, 1u64 << (bit % 64));
            all_set &= self.bits[w] & m != 0;
            self.bits[w] |= m;
        }
        all_set
    }
}

impl SeenIds {
    fn new() -> Result<SeenIds, PipelineError> {
        let dir = tempfile::tempdir().map_err(|source| PipelineError::TempDir {
            path: std::env::temp_dir(),
            source,
        })?;
        let conn = Connection::open(dir.path().join("seen.db"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -2048;
             PRAGMA locking_mode = EXCLUSIVE;
             CREATE TABLE seen (id TEXT PRIMARY KEY) WITHOUT ROWID;",
        )?;
        Ok(SeenIds {
            conn,
            _dir: dir,
            bloom: Bloom::new(),
            pending: Vec::with_capacity(SEEN_BATCH),
        })
    }

    /// True when `id` was seen before.
    fn check(&mut self, id: &str) -> Result<bool, PipelineError> {
        if self.bloom.insert(id) {
            if self.pending.iter().any(|p| p == id) {
                return Ok(true);
            }
            let on_disk: bool = self
                .conn
                .prepare_cached("SELECT 1 FROM seen WHERE id = ?1")?
                .exists([id])?;
            if on_disk {
                return Ok(true);
            }
        }
        self.pending.push(id.to_string());
        if self.pending.len() >= SEEN_BATCH {
            self.flush()?;
        }
        Ok(false)
    }

    fn flush(&mut self) -> Result<(), PipelineError> {
        // In key order, inserts walk the B-tree once instead of jumping around its pages.
        self.pending.sort_unstable();
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached("INSERT OR IGNORE INTO seen (id) VALUES (?1)")?;
            for id in self.pending.drain(..) {
                st.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Turns the outcome of a record whose source id appeared before into a rejection.
fn mark_duplicate(outcome: RecordOutcome) -> RecordOutcome {
    match outcome {
        RecordOutcome::Valid { plan: p, warnings } => {
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
                source_id: Some(p.source_id),
                problems,
            }
        }
        RecordOutcome::Rejected {
            source_id: Some(id),
            mut problems,
        } => {
            problems.insert(
                0,
                Problem::error(
                    ProblemKind::DuplicateSourceId,
                    "source.id",
                    format!("source id {id:?} appeared before in the export"),
                ),
            );
            RecordOutcome::Rejected {
                source_id: Some(id),
                problems,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Many chunks through several builders: outcomes come back in input order, and a
    /// repeated id is rejected at its later occurrence only, also after the id set spilled
    /// to disk.
    #[test]
    fn outcomes_in_input_order_and_repeats_rejected() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let schema = Arc::new(Schema::load(&root.join("samples/happyfox-schema.json")).unwrap());
        let plan =
            crate::mapping::load(&root.join("bench/ndjson.yaml"), Some(schema.clone())).unwrap();
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
        assert!(seen[dups[0]].record.is_some(), "rejects keep their record");
        assert!(matches!(seen[0].outcome, RecordOutcome::Valid { .. }));
        assert!(seen[0].record.is_none());
    }

    /// A failing consumer stops the run at once: every thread ends, nothing hangs.
    #[test]
    fn consumer_error_stops_the_threads() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let schema = Arc::new(Schema::load(&root.join("samples/happyfox-schema.json")).unwrap());
        let plan =
            crate::mapping::load(&root.join("bench/ndjson.yaml"), Some(schema.clone())).unwrap();
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

    impl Processed {
        fn outcome_is_unreadable(&self) -> bool {
            matches!(&self.outcome, RecordOutcome::Rejected { source_id: None, problems }
                if problems[0].kind == ProblemKind::UnreadableRecord)
        }
    }
}
