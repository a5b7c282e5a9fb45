//! Running an opened pipeline on threads: one reads, a pool builds, the caller's thread
//! puts the outcomes back in input order.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::time::Instant;

use super::columns::check_columns;
use super::coverage::FieldCounts;
use super::dedupe::{SeenIds, mark_duplicate, repeatable_id};
use super::stages::Stage;
use super::{Pipeline, PipelineError, PipelineInfo, Processed};
use crate::mapping::Plan;
use crate::mapping::template::Sides;
use crate::payload::{Builder, RecordOutcome};
use crate::problem::{Problem, ProblemKind, Sampled};
use crate::source::{self, Format, Location, Opened, RecordValue, SourceRecord};

impl Pipeline<'_> {
    /// Reads every record and hands its outcome to `f`, in input order.
    ///
    /// Building a ticket plan costs far more than reading the record, so the work is
    /// spread over threads: one reads the files and cuts the stream into numbered chunks
    /// (NDJSON lines are only cut, not parsed: parsing them is most of their cost), a pool
    /// parses those lines and builds the chunks, and `f` runs on the calling thread, which
    /// puts the chunks back in input order and checks source ids for repeats there, as
    /// which record of a repeated id comes first depends on that order. The records `f` is
    /// not given are freed on the thread that allocated them (see `build_chunks`), not on
    /// `f`'s thread, which is the one thread every record passes through. A fixed number
    /// of chunks may be in flight at once, so memory stays flat however large the export
    /// and however unevenly the builders progress.
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
        let stages = &*self.info.stages;
        let mut report_clock = stages.report.thread();

        let result = std::thread::scope(|scope| -> Result<FieldCounts, PipelineError<E>> {
            // Room for every chunk the credits allow: the reader then waits only for a
            // credit, never for a builder. With room for one chunk per builder, the reader
            // (one of four threads on two cores) was often not scheduled in time to refill
            // it, and 8% of the two cores stood idle through a dry run.
            let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(IN_FLIGHT);
            let chunk_rx = Arc::new(std::sync::Mutex::new(chunk_rx));
            let (done_tx, done_rx) = sync_channel::<Built>(IN_FLIGHT);
            let (credit_tx, credit_rx) = sync_channel::<()>(IN_FLIGHT);
            for _ in 0..IN_FLIGHT {
                // The channel holds exactly IN_FLIGHT credits: these sends cannot block.
                let _ = credit_tx.send(());
            }

            let (spent_tx, spent_rx) = channel::<Spent>();
            let reader = Reader {
                plan,
                spent: spent_rx,
            };
            scope.spawn(move || reader.run(files, &chunk_tx, &credit_rx, &stages.read));
            let mut counters = Vec::with_capacity(workers);
            for _ in 0..workers {
                let chunk_rx = chunk_rx.clone();
                let done_tx = done_tx.clone();
                let builder = &builder;
                let spent_tx = spent_tx.clone();
                counters.push(scope.spawn(move || {
                    build_chunks(builder, &chunk_rx, &done_tx, &spent_tx, &stages.build)
                }));
            }
            drop(done_tx);

            // Reorder: chunks may finish out of order; hand them on by sequence number.
            let mut waiting: BTreeMap<u64, Built> = BTreeMap::new();
            let mut next = 0u64;
            for built in done_rx.iter() {
                waiting.insert(built.seq, built);
                while let Some(built) = waiting.remove(&next) {
                    next += 1;
                    let spent = report_clock.time(|| hand_on(built, &mut seen, &mut f))?;
                    // Back to the reader, which allocated them (see `Reader::spent`).
                    let _ = spent_tx.send(spent);
                    // The reader may cut one more chunk; it stops when this fails.
                    let _ = credit_tx.send(());
                }
            }
            let mut fields = FieldCounts::default();
            for c in counters {
                // A builder that panicked has already ended the run's output early.
                if let Ok(counted) = c.join() {
                    fields.merge(counted);
                }
            }
            Ok(fields)
        });
        drop(report_clock);
        let fields = result?;
        let mut info = self.info;
        info.fields = Arc::new(fields);
        report_unjoined(&self.sides, &mut info.side_files)?;
        Ok(info)
    }
}

/// Hands a built chunk's records to `f` in order, turning each record whose source id
/// appeared before into a rejection first; returns what the reader allocated and no one
/// needs any more.
fn hand_on<E>(
    built: Built,
    seen: &mut SeenIds,
    f: &mut impl FnMut(Processed) -> Result<(), E>,
) -> Result<Spent, PipelineError<E>> {
    let mut values = Vec::new();
    for item in built.items {
        let Item {
            mut processed,
            kept,
        } = item.map_err(PipelineError::cast)?;
        let duplicate = match repeatable_id(&processed.outcome) {
            Some(id) => seen.check(id.as_str()).map_err(PipelineError::cast)?,
            None => false,
        };
        if duplicate {
            processed.outcome = mark_duplicate(processed.outcome);
            if processed.record.is_none() {
                processed.record = kept.into_json(&built.text, &processed.location);
            }
        } else if let Kept::Value(value) = kept {
            values.push(value);
        }
        f(processed).map_err(PipelineError::Consumer)?;
    }
    Ok(Spent {
        values,
        text: built.text,
    })
}

/// Entries of joined side files that no ticket asked for: they reach no ticket, so each
/// file's count and first keys (with where they are) become problems of the run.
fn report_unjoined<E>(
    sides: &Sides,
    stats: &mut [super::SideFileStats],
) -> Result<(), PipelineError<E>> {
    for (name, (table, _)) in &sides.joins {
        let Some(index) = &table.index else {
            continue;
        };
        let u = index
            .unjoined(Sampled::KEPT)
            .map_err(|e| PipelineError::Source(e))?;
        let Some(stat) = stats.iter_mut().find(|s| &s.name == name) else {
            continue;
        };
        stat.unjoined = u.entries;
        let mut first = u.first.into_iter();
        if let Some((key, at)) = first.next() {
            let problem = |key: &str| {
                Problem::error(
                    ProblemKind::UnjoinedSideEntry,
                    format!("source.side.{name}"),
                    format!(
                        "key {key:?} matches no ticket of the export; its entries are not migrated"
                    ),
                )
            };
            let rest: Vec<_> = first.collect();
            stat.problems
                .add_many(u.keys - rest.len() as u64, at, problem(&key));
            for (key, at) in rest {
                stat.problems.add(at, problem(&key));
            }
        }
    }
    Ok(())
}

/// Records per chunk: enough that thread hand-offs cost little, few enough that chunks in
/// flight stay small (about 2,000 records at 1 KB each with the defaults).
const CHUNK: usize = 128;
/// NDJSON text per chunk at most (a chunk is cut sooner when its lines are long), so that
/// chunks in flight stay small when records are large.
const CHUNK_TEXT: usize = 1 << 20;
/// Chunks read but not yet handed to the consumer, at most: a queue deep enough that the
/// builders find a chunk waiting however the cores are shared out, small enough that
/// memory stays flat (at most 16 MiB of NDJSON text).
const IN_FLIGHT: usize = 16;
/// Builder threads at most (the reader and the consumer run besides them).
const MAX_WORKERS: usize = 8;

/// One item of a chunk: a record, an NDJSON line to parse, a record that could not be read,
/// or a reason to stop (a file that cannot be opened, a CSV header that does not fit the
/// mapping), which the consumer raises once everything before it has been handed on.
enum ReadItem {
    Record {
        record: SourceRecord,
        is_csv: bool,
    },
    /// An NDJSON line: its text is `range` of the chunk's `text`.
    Line {
        location: Location,
        range: Range<usize>,
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
    /// The text of the chunk's NDJSON lines, one after another.
    text: Vec<u8>,
}

struct Built {
    seq: u64,
    items: Vec<Result<Item, PipelineError>>,
    /// The chunk's text, which a duplicate's line is parsed from again.
    text: Vec<u8>,
}

/// A built record on its way to the consumer, which checks its source id for repeats.
struct Item {
    processed: Processed,
    kept: Kept,
}

/// How a record is found again if it turns out to be a duplicate, which the rejects file
/// shows; a record already kept (rejected) or with no id to check needs neither.
enum Kept {
    Nothing,
    /// A record the reader parsed, handed back to it unless it is a duplicate.
    Value(RecordValue),
    /// A line of the chunk's text, parsed again: duplicates are rare, and the builder
    /// frees the record it parsed rather than sending it to another thread.
    Line(Range<usize>),
}

impl Kept {
    fn into_json(self, text: &[u8], location: &Location) -> Option<serde_json::Value> {
        match self {
            Kept::Nothing => None,
            Kept::Value(value) => Some(value.into_json()),
            Kept::Line(range) => source::parse_line(
                &text[range],
                location.clone(),
                &mut source::Shape::default(),
            )
            .ok()
            .map(|record| record.value.into_json()),
        }
    }
}

/// What the consumer and builders are done with, freed or reused on the reader thread,
/// which allocated it (see [`Reader::spent`]).
struct Spent {
    values: Vec<RecordValue>,
    text: Vec<u8>,
}

/// The reader thread: cuts the records of every file into numbered chunks, taking a credit
/// for each so that at most `IN_FLIGHT` chunks exist at once.
struct Reader<'a> {
    plan: &'a Plan,
    /// Records and chunk texts the other threads are done with. With glibc's allocator,
    /// freeing memory that another thread allocated takes that thread's arena lock; the
    /// reader allocates without pause, so builders freeing its records contended on that
    /// lock for every record (futex calls about as many as records). Texts are reused.
    spent: Receiver<Spent>,
}

impl Reader<'_> {
    fn run(
        self,
        files: &[PathBuf],
        chunk_tx: &SyncSender<Chunk>,
        credits: &Receiver<()>,
        stage: &Stage,
    ) {
        let plan = self.plan;
        let mut clock = stage.thread();
        let mut working = Instant::now();
        let mut seq = 0u64;
        let mut items = Vec::with_capacity(CHUNK);
        let mut text = Vec::new();
        let mut texts: Vec<Vec<u8>> = Vec::new();
        let spent = &self.spent;
        let mut send = |items: &mut Vec<ReadItem>, text: &mut Vec<u8>, seq: &mut u64| -> bool {
            while let Ok(s) = spent.try_recv() {
                drop(s.values);
                if s.text.capacity() > 0 && texts.len() < IN_FLIGHT {
                    texts.push(s.text);
                }
            }
            // Waiting for a credit or a free builder is not reading.
            clock.busy_since(working);
            let sent = credits.recv().is_ok() && {
                let mut next = texts.pop().unwrap_or_default();
                next.clear();
                let chunk = Chunk {
                    seq: *seq,
                    items: std::mem::replace(items, Vec::with_capacity(CHUNK)),
                    text: std::mem::replace(text, next),
                };
                *seq += 1;
                chunk_tx.send(chunk).is_ok()
            };
            working = Instant::now();
            sent
        };
        let mut columns_checked = false;
        'files: for file in files {
            // A file of no known format is not opened: `open` below says so.
            let is_csv = matches!(source::format_of(file, &plan.source.read), Ok(Format::Csv));
            let opened = match source::open(file, &plan.source.read) {
                Ok(s) => s,
                Err(e) => {
                    items.push(ReadItem::Fatal(e.into()));
                    break 'files;
                }
            };
            match opened {
                Opened::Records(stream) => {
                    for item in stream {
                        match item {
                            Ok(record) => {
                                if is_csv && !columns_checked {
                                    columns_checked = true;
                                    let errors = check_columns(plan, &record.value.to_json(), file);
                                    if !errors.is_empty() {
                                        items.push(ReadItem::Fatal(PipelineError::Mapping(errors)));
                                        break 'files;
                                    }
                                }
                                items.push(ReadItem::Record { record, is_csv });
                            }
                            Err(error) => items.push(ReadItem::Unreadable { error, is_csv }),
                        }
                        if items.len() >= CHUNK && !send(&mut items, &mut text, &mut seq) {
                            return;
                        }
                    }
                }
                Opened::Lines(mut lines) => loop {
                    let start = text.len();
                    match lines.next_into(&mut text) {
                        None => break,
                        Some(Ok(location)) => items.push(ReadItem::Line {
                            location,
                            range: start..text.len(),
                        }),
                        Some(Err(error)) => items.push(ReadItem::Unreadable {
                            error,
                            is_csv: false,
                        }),
                    }
                    if (items.len() >= CHUNK || text.len() >= CHUNK_TEXT)
                        && !send(&mut items, &mut text, &mut seq)
                    {
                        return;
                    }
                },
            }
        }
        if !items.is_empty() {
            send(&mut items, &mut text, &mut seq);
        }
        clock.busy_since(working);
    }
}

/// A builder thread: parses and builds chunks until the reader is done or the consumer has
/// stopped.
///
/// The reader's records it has built are sent back to the reader thread to be freed there
/// (see [`Reader::spent`]); the records it parsed itself it frees itself.
fn build_chunks(
    builder: &Builder<'_>,
    chunks: &std::sync::Mutex<Receiver<Chunk>>,
    done: &SyncSender<Built>,
    spent: &Sender<Spent>,
    stage: &Stage,
) -> FieldCounts {
    let mut fields = FieldCounts::default();
    let mut clock = stage.thread();
    // The keys of the last line this thread parsed (see `source::parse_line`).
    let mut shape = source::Shape::default();
    loop {
        let chunk = match chunks.lock() {
            Ok(rx) => match rx.recv() {
                Ok(c) => c,
                Err(_) => return fields,
            },
            Err(_) => return fields,
        };
        let working = Instant::now();
        let mut used = Vec::with_capacity(chunk.items.len());
        let text = chunk.text;
        // A line's record, once built, is kept in `shape` for the next line to be read
        // into: reused, not freed.
        let mut build = |record: SourceRecord,
                         is_csv: bool,
                         line: Option<(Range<usize>, &mut source::Shape)>| {
            fields.add(record.value.as_ref());
            let outcome = builder.build(&record);
            let (value, kept) = if matches!(outcome, RecordOutcome::Rejected { .. }) {
                (Some(record.value.into_json()), Kept::Nothing)
            } else {
                let repeatable = repeatable_id(&outcome).is_some();
                let kept = match line {
                    Some((range, shape)) => {
                        shape.recycle(record.value);
                        if repeatable {
                            Kept::Line(range)
                        } else {
                            Kept::Nothing
                        }
                    }
                    None if repeatable => Kept::Value(record.value),
                    None => {
                        used.push(record.value);
                        Kept::Nothing
                    }
                };
                (None, kept)
            };
            Item {
                processed: Processed {
                    location: record.location,
                    is_csv,
                    record: value,
                    raw: None,
                    outcome,
                },
                kept,
            }
        };
        let items = chunk
            .items
            .into_iter()
            .map(|item| match item {
                ReadItem::Record { record, is_csv } => Ok(build(record, is_csv, None)),
                ReadItem::Line { location, range } => {
                    match source::parse_line(&text[range.clone()], location, &mut shape) {
                        Ok(record) => Ok(build(record, false, Some((range, &mut shape)))),
                        Err(error) => Ok(unreadable(error, false)),
                    }
                }
                ReadItem::Unreadable { error, is_csv } => Ok(unreadable(error, is_csv)),
                ReadItem::Fatal(e) => Err(e),
            })
            .collect();
        // Hand the reader's records back to be freed where they were allocated.
        let _ = spent.send(Spent {
            values: used,
            text: Vec::new(),
        });
        clock.busy_since(working);
        if done
            .send(Built {
                seq: chunk.seq,
                items,
                text,
            })
            .is_err()
        {
            return fields;
        }
    }
}

/// A record that could not be read: a rejection with one `UnreadableRecord` problem.
fn unreadable(error: source::RecordError, is_csv: bool) -> Item {
    let p = Problem::error(ProblemKind::UnreadableRecord, "", error.message);
    Item {
        processed: Processed {
            location: error.location,
            is_csv,
            record: None,
            raw: error.raw,
            outcome: RecordOutcome::Rejected {
                source_id: None,
                problems: vec![p],
            },
        },
        kept: Kept::Nothing,
    }
}
