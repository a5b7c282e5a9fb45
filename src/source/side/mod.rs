//! Side files joined by key.
//!
//! Tickets name their requester by id and keep their comments in another file (users,
//! conversations, Zendesk audits), and those files can be larger than memory. A side file
//! is therefore read once into an on-disk SQLite index (key → entries in order) in the
//! temp folder, and looked up once or twice per ticket. Lookups go through one cached
//! prepared statement and a small cache of recent keys (users are looked up again and
//! again), and the index file is deleted when the `SideIndex` is dropped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::source::{ReadOptions, SourceError};

mod build;
mod lookup;

use lookup::Inner;
pub use lookup::Unjoined;

/// A side file: users to resolve ids to names, comments joined to tickets by ticket id.
#[derive(Debug, Clone)]
pub struct SideSpec {
    /// The name templates use (`users`, `comments`).
    pub name: String,
    /// The files read into the one index, in this order (a glob's matches in path order);
    /// each entry keeps its own file and line.
    pub files: Vec<PathBuf>,
    pub read: ReadOptions,
    /// How each record's key is found (before `explode`).
    pub key: SideKey,
    /// Dotted path of an array in each record whose items become the entries; each item
    /// that is an object gets the record without that array as `_parent` (Zendesk comment
    /// events carry no date or audit author of their own).
    pub explode: Option<String>,
    /// Dotted path (in an entry) that orders the entries of one key: numbers numerically,
    /// strings as strings (ISO timestamps sort correctly), ties in file order, entries
    /// without a value last in file order.
    pub order_by: Option<String>,
}

/// Where a side file's record keeps its key.
#[derive(Clone)]
pub enum SideKey {
    /// The dotted path of the key in each record (`ticket_id`, `via.ticket.id`).
    Path(String),
    /// A key computed from each record (the mapping's `key:` template): `eval` renders
    /// it, or says why it could not; `source` is the template as written, for messages.
    Computed { source: String, eval: ComputeKey },
}

/// Renders a record's key; an `Err` says why it could not.
pub type ComputeKey = Arc<dyn Fn(&Value) -> Result<String, String> + Send + Sync>;

impl SideKey {
    /// The key as the mapping writes it (`ticket_id`, or the template).
    pub fn as_written(&self) -> &str {
        match self {
            SideKey::Path(p) => p,
            SideKey::Computed { source, .. } => source,
        }
    }

    /// The key of `record`, or why it has none (the entry is reported and left out).
    pub(crate) fn of(&self, record: &Value) -> Result<String, String> {
        match self {
            SideKey::Path(p) => crate::source::get_path(record, p)
                .and_then(crate::source::key_string)
                .ok_or_else(|| format!("no key at `{p}`")),
            SideKey::Computed { source, eval } => match eval(record) {
                Ok(k) if !k.trim().is_empty() => Ok(k),
                Ok(_) => Err(format!(
                    "`key: {source}` renders empty for this record, so the entry is left out"
                )),
                Err(why) => Err(format!(
                    "`key: {source}` failed, so the entry is left out: {why}"
                )),
            },
        }
    }
}

/// A dotted path.
impl From<&str> for SideKey {
    fn from(path: &str) -> SideKey {
        SideKey::Path(path.to_string())
    }
}

impl std::fmt::Debug for SideKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SideKey::Path(p) => f.debug_tuple("Path").field(p).finish(),
            SideKey::Computed { source, .. } => f.debug_tuple("Computed").field(source).finish(),
        }
    }
}

/// Field added to exploded entries holding the record they came from.
pub(crate) const PARENT_FIELD: &str = "_parent";

/// An on-disk index of a side file: key -> entries in order.
pub struct SideIndex {
    name: String,
    files: Vec<PathBuf>,
    entries: u64,
    keys: u64,
    /// Readable records in the file.
    read: u64,
    /// Readable records without a key (they were left out).
    without_key: u64,
    /// Field names of the first readable record.
    first_fields: Vec<String>,
    /// One bit per distinct key (by its rank in key order): set once a lookup asked for
    /// it, so entries that no ticket joined can be reported at the end. A bit per key
    /// keeps this flat (125 KB for a million keys).
    joined: Mutex<Vec<u64>>,
    // Declared before `_db` so the connection is closed before the file is deleted.
    inner: Mutex<Inner>,
    _db: TempDb,
}

impl std::fmt::Debug for SideIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SideIndex")
            .field("name", &self.name)
            .field("files", &self.files)
            .field("entries", &self.entries)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// The index's database file, removed (with any SQLite side files) on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn create() -> Result<TempDb, SourceError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut attempt = 0;
        loop {
            let name = format!(
                "hfmigrate-side-{}-{}-{nanos}.sqlite",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = dir.join(name);
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(TempDb(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(source) => return Err(SourceError::Open { path, source }),
            }
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        for suffix in ["-journal", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

impl SideIndex {
    /// Entries stored (after explode and `keep`).
    pub fn len(&self) -> u64 {
        self.entries
    }

    /// True when no entry was stored.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Distinct keys stored.
    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// Readable records in the file (before explode and `keep`).
    pub fn records_read(&self) -> u64 {
        self.read
    }

    /// Readable records that have no key (none at the key path, or the key template
    /// failed or rendered empty); they were left out.
    pub fn records_without_key(&self) -> u64 {
        self.without_key
    }

    /// The field names of the first readable record (to suggest the right key path).
    pub fn first_fields(&self) -> &[String] {
        &self.first_fields
    }

    /// The side file's name in the mapping.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The files this index was built from, in the order they were read.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

#[cfg(test)]
mod test_files {
    use super::*;
    use crate::source::RecordError;
    use std::io::Write;
    use std::path::Path;

    pub(super) fn spec(path: &Path, key: &str) -> SideSpec {
        SideSpec {
            name: "side".into(),
            files: vec![path.to_path_buf()],
            read: ReadOptions::default(),
            key: SideKey::Path(key.into()),
            explode: None,
            order_by: None,
        }
    }

    pub(super) fn build(spec: &SideSpec) -> (SideIndex, Vec<RecordError>) {
        let mut errors = Vec::new();
        let index = SideIndex::build(spec, &mut |_| Ok(true), &mut |e| errors.push(e)).unwrap();
        (index, errors)
    }

    pub(super) fn write(suffix: &str, text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }
}

#[cfg(test)]
mod tests {
    use super::test_files::{build, spec, write};

    #[test]
    fn the_index_file_is_removed_on_drop() {
        let f = write(".ndjson", "{\"id\":1}\n");
        let (index, _) = build(&spec(f.path(), "id"));
        let db = index._db.0.clone();
        assert!(db.exists());
        drop(index);
        assert!(!db.exists());
    }
}
