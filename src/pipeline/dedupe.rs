//! Duplicate source ids: a later record with an id seen before is rejected, so that only
//! the first is imported. Which record came first depends on input order, so the consumer
//! thread, which puts the built records back in that order, asks [`SeenIds`] and turns
//! the outcome into a rejection.

use rusqlite::Connection;

use super::PipelineError;
use crate::payload::RecordOutcome;
use crate::problem::{Problem, ProblemKind};
use crate::source::SourceId;

/// A set of source ids kept on disk, so duplicate detection does not grow memory.
///
/// A fixed-size Bloom filter sits in front of the on-disk set: an id it has never seen is
/// certainly new (the common case, answered without SQLite), and only ids the filter may
/// have seen (real duplicates and rare false positives) are looked up on disk. New ids are
/// written in batches; ids not yet written are kept in `pending`. The database is opened in
/// exclusive locking mode because nothing else reads it, so queries take no file locks.
pub(super) struct SeenIds {
    conn: Connection,
    _dir: tempfile::TempDir,
    bloom: Bloom,
    /// Ids not written yet. A list, not a set: it is searched only on a filter hit, which
    /// is rare, and hashing every id into a set cost more than the searches.
    pending: Vec<String>,
}

/// Ids written to disk per transaction.
pub(super) const SEEN_BATCH: usize = 10_000;

/// A fast 64-bit hash of short keys (FNV-1a over 8-byte words, then a murmur3 finaliser):
/// the filter lives for one run and needs no protection from crafted ids, and SipHash
/// showed in profiles of the thread that checked ids.
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
    pub(super) fn new() -> Result<SeenIds, PipelineError> {
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
    pub(super) fn check(&mut self, id: &str) -> Result<bool, PipelineError> {
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
            // Many rows per statement: one statement run per id cost more than the
            // B-tree insert itself.
            let mut chunks = self.pending.chunks_exact(ROWS_PER_INSERT);
            let mut st = tx.prepare_cached(&insert_rows(ROWS_PER_INSERT))?;
            for chunk in &mut chunks {
                st.execute(rusqlite::params_from_iter(chunk))?;
            }
            let rest = chunks.remainder();
            if !rest.is_empty() {
                tx.execute(&insert_rows(rest.len()), rusqlite::params_from_iter(rest))?;
            }
        }
        tx.commit()?;
        self.pending.clear();
        Ok(())
    }
}

/// Ids per `INSERT` statement (SQLite allows 32,766 parameters).
const ROWS_PER_INSERT: usize = 500;

/// `INSERT OR IGNORE INTO seen (id) VALUES (?),(?),…` for `rows` ids.
fn insert_rows(rows: usize) -> String {
    let mut sql = String::from("INSERT OR IGNORE INTO seen (id) VALUES (?)");
    for _ in 1..rows {
        sql.push_str(",(?)");
    }
    sql
}

/// The source id under which a record's outcome can be a duplicate: a valid record's, or a
/// rejected one's where it has one. A skipped record is not imported, so it repeats
/// nothing and nothing repeats it.
pub(super) fn repeatable_id(outcome: &RecordOutcome) -> Option<&SourceId> {
    match outcome {
        RecordOutcome::Valid { plan, .. } => Some(&plan.source_id),
        RecordOutcome::Rejected { source_id, .. } => source_id.as_ref(),
        RecordOutcome::Skipped { .. } => None,
    }
}

/// Turns the outcome of a record whose source id appeared before into a rejection.
pub(super) fn mark_duplicate(outcome: RecordOutcome) -> RecordOutcome {
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
