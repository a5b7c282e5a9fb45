//! Running an opened pipeline on threads: one reads, a pool builds, the caller's thread
//! puts the outcomes back in input order.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::time::Instant;

use super::columns::check_columns;
use super::coverage::FieldCounts;
use super::dedupe::{SeenIds, mark_duplicate};
use super::stages::Stage;
use super::{Pipeline, PipelineError, PipelineInfo, Processed};
use crate::mapping::Plan;
use crate::mapping::template::Sides;
use crate::payload::{Builder, RecordOutcome};
use crate::problem::{Problem, ProblemKind, Sampled};
use crate::source::{self, Format, RecordValue, SourceRecord, format_from_extension};

impl Pipeline<'_> {
    /// Reads every record and hands its outcome to `f`, in input order.
    ///
    /// Building a ticket plan costs far more than reading the record, so the work is
    /// spread over threads: one reads the files, checks source ids for repeats (which
    /// depends on input order) and cuts the stream into numbered chunks, a pool builds the
    /// chunks, and `f` runs on the calling thread, which puts the chunks back in input
    /// order. The records `f` is not given are freed on the reader thread, which allocated
    /// them (see `build_chunks`), not on `f`'s thread, which is the one thread every record
    /// passes through. A fixed number of chunks may be in flight at once, so memory stays
    /// flat however large the export and however unevenly the builders progress.
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
            let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(workers);
            let chunk_rx = Arc::new(std::sync::Mutex::new(chunk_rx));
            let (done_tx, done_rx) = sync_channel::<Built>(IN_FLIGHT);
            let (credit_tx, credit_rx) = sync_channel::<()>(IN_FLIGHT);
            for _ in 0..IN_FLIGHT {
                // The channel holds exactly IN_FLIGHT credits: these sends cannot block.
                let _ = credit_tx.send(());
            }

            let (spent_tx, spent_rx) = channel::<Vec<RecordValue>>();
            let reader = Reader {
                plan,
                builder: &builder,
                seen: &mut seen,
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
            drop(spent_tx);

            // Reorder: chunks may finish out of order; hand them on by sequence number.
            let mut waiting: BTreeMap<u64, Built> = BTreeMap::new();
            let mut next = 0u64;
            for built in done_rx.iter() {
                waiting.insert(built.seq, built);
                while let Some(built) = waiting.remove(&next) {
                    next += 1;
                    report_clock.time(|| -> Result<(), PipelineError<E>> {
                        for item in built.items {
                            f(item.map_err(PipelineError::cast)?)
                                .map_err(PipelineError::Consumer)?;
                        }
                        Ok(())
                    })?;
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
    spent: Receiver<Vec<RecordValue>>,
}

impl Reader<'_, '_> {
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
        let spent = &self.spent;
        let mut send = |items: &mut Vec<ReadItem>, seq: &mut u64| -> bool {
            while let Ok(values) = spent.try_recv() {
                drop(values);
            }
            // Waiting for a credit or a free builder is not reading.
            clock.busy_since(working);
            let sent = credits.recv().is_ok() && {
                let chunk = Chunk {
                    seq: *seq,
                    items: std::mem::replace(items, Vec::with_capacity(CHUNK)),
                };
                *seq += 1;
                chunk_tx.send(chunk).is_ok()
            };
            working = Instant::now();
            sent
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
                            let errors = check_columns(plan, &record.value.to_json(), file);
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
        clock.busy_since(working);
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
    spent: &Sender<Vec<RecordValue>>,
    stage: &Stage,
) -> FieldCounts {
    let mut fields = FieldCounts::default();
    let mut clock = stage.thread();
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
        let items = chunk
            .items
            .into_iter()
            .map(|item| match item {
                ReadItem::Record {
                    record,
                    is_csv,
                    duplicate: dup,
                } => {
                    fields.add(record.value.as_ref());
                    let outcome = builder.build(&record);
                    let outcome = if dup {
                        mark_duplicate(outcome)
                    } else {
                        outcome
                    };
                    let keep = matches!(outcome, RecordOutcome::Rejected { .. });
                    let value = if keep {
                        Some(record.value.into_json())
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
        // Hand the records back to be freed where they were allocated (see `Reader::spent`).
        let _ = spent.send(used);
        clock.busy_since(working);
        if done
            .send(Built {
                seq: chunk.seq,
                items,
            })
            .is_err()
        {
            return fields;
        }
    }
}
