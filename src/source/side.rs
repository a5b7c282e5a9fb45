//! Side files joined by key.
//!
//! Tickets name their requester by id and keep their comments in another file (users,
//! conversations, Zendesk audits), and those files can be larger than memory. A side file
//! is therefore read once into an on-disk SQLite index (key → entries in order) in the
//! temp folder, and looked up once or twice per ticket. Lookups go through one cached
//! prepared statement and a small cache of recent keys (users are looked up again and
//! again), and the index file is deleted when the `SideIndex` is dropped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, params};
use serde_json::Value;

use super::{ReadOptions, RecordError, SourceError, get_path, key_string, read};

/// A side file: users to resolve ids to names, comments joined to tickets by ticket id.
#[derive(Debug, Clone)]
pub struct SideSpec {
    /// The name templates use (`users`, `comments`).
    pub name: String,
    pub path: PathBuf,
    pub read: ReadOptions,
    /// Dotted path of the key in each record (before `explode`).
    pub key: String,
    /// Dotted path of an array in each record whose items become the entries; each item
    /// that is an object gets the record without that array as `_parent` (Zendesk comment
    /// events carry no date or audit author of their own).
    pub explode: Option<String>,
    /// Dotted path (in an entry) that orders the entries of one key: numbers numerically,
    /// strings as strings (ISO timestamps sort correctly), ties in file order, entries
    /// without a value last in file order.
    pub order_by: Option<String>,
}

/// Field added to exploded entries holding the record they came from.
pub const PARENT_FIELD: &str = "_parent";

/// Keys whose entries are kept in the cache of recent lookups, per generation.
const CACHE_KEYS: usize = 1024;
/// Entries larger than this (JSON bytes for one key) are not cached, which bounds the
/// cache to a few MB whatever the side file holds.
const CACHE_MAX_BYTES: usize = 4 * 1024;
/// SQLite page cache, in KiB.
const PAGE_CACHE_KIB: i64 = 16 * 1024;

// `sorted` holds the entries clustered by key and in order, so one lookup reads a few
// adjacent pages instead of one random page per entry.
const SELECT_ALL: &str = "SELECT value FROM sorted WHERE key = ?1 ORDER BY rowid";
const SELECT_FIRST: &str = "SELECT value FROM sorted WHERE key = ?1 ORDER BY rowid LIMIT 1";

/// An on-disk index of a side file: key -> entries in order.
pub struct SideIndex {
    name: String,
    path: PathBuf,
    entries: u64,
    keys: u64,
    // Declared before `_db` so the connection is closed before the file is deleted.
    inner: Mutex<Inner>,
    _db: TempDb,
}

struct Inner {
    conn: Connection,
    /// Recent `get` answers.
    all: Recent<Vec<Value>>,
    /// Recent `first` answers (users are looked up by id again and again).
    first: Recent<Option<Value>>,
}

/// Two generations of recently looked-up keys: a hit in `old` moves to `recent`, and when
/// `recent` is full it becomes `old`. A cheap approximation of LRU with O(1) operations.
struct Recent<V> {
    recent: HashMap<String, V>,
    old: HashMap<String, V>,
}

impl<V: Clone> Recent<V> {
    fn new() -> Self {
        Recent {
            recent: HashMap::new(),
            old: HashMap::new(),
        }
    }

    fn get(&mut self, key: &str) -> Option<V> {
        if let Some(hit) = self.recent.get(key) {
            return Some(hit.clone());
        }
        let hit = self.old.remove(key)?;
        self.put(key, hit.clone());
        Some(hit)
    }

    fn put(&mut self, key: &str, value: V) {
        if self.recent.len() >= CACHE_KEYS {
            self.old = std::mem::take(&mut self.recent);
        }
        self.recent.insert(key.to_string(), value);
    }
}

impl std::fmt::Debug for SideIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SideIndex")
            .field("name", &self.name)
            .field("path", &self.path)
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
    /// Reads the side file into a fresh on-disk index.
    ///
    /// `keep` decides per entry (after explode) whether it is kept (the mapping passes a
    /// compiled template); `on_error` receives unreadable records and records without a
    /// key, and reading goes on.
    pub fn build(
        spec: &SideSpec,
        keep: &mut dyn FnMut(&Value) -> bool,
        on_error: &mut dyn FnMut(RecordError),
    ) -> Result<SideIndex, SourceError> {
        let records = read(&spec.path, &spec.read)?;
        let db = TempDb::create()?;
        let mut conn = Connection::open(&db.0)?;
        conn.execute_batch(&format!(
            "PRAGMA page_size = 8192;
             PRAGMA journal_mode = OFF;
             PRAGMA synchronous = OFF;
             PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA cache_size = -{PAGE_CACHE_KIB};
             CREATE TABLE entries (key TEXT NOT NULL, ord, value TEXT NOT NULL);"
        ))?;
        let mut entries = 0u64;
        let tx = conn.transaction()?;
        {
            let mut insert =
                tx.prepare("INSERT INTO entries (key, ord, value) VALUES (?1, ?2, ?3)")?;
            let mut store = |key: &str, entry: &Value| -> Result<(), SourceError> {
                let ord = spec
                    .order_by
                    .as_deref()
                    .map_or(SqlOrd::Null, |p| SqlOrd::of(get_path(entry, p)));
                let text = serde_json::to_string(entry).map_err(|e| SourceError::Invalid {
                    path: spec.path.clone(),
                    message: format!("cannot store an entry: {e}"),
                })?;
                insert.execute(params![key, ord, text])?;
                entries += 1;
                Ok(())
            };
            for item in records {
                let record = match item {
                    Ok(r) => r,
                    Err(e) => {
                        on_error(e);
                        continue;
                    }
                };
                let Some(key) = get_path(&record.value, &spec.key).and_then(key_string) else {
                    on_error(RecordError {
                        location: record.location,
                        message: format!("no key at `{}`", spec.key),
                        raw: None,
                    });
                    continue;
                };
                let Some(explode) = spec.explode.as_deref() else {
                    if keep(&record.value) {
                        store(&key, &record.value)?;
                    }
                    continue;
                };
                let mut parent = record.value;
                let items = match take_path(&mut parent, explode) {
                    None | Some(Value::Null) => continue,
                    Some(Value::Array(items)) => items,
                    Some(other) => {
                        on_error(RecordError {
                            location: record.location,
                            message: format!(
                                "`{explode}` is {}, not a list",
                                super::json_kind(&other)
                            ),
                            raw: None,
                        });
                        continue;
                    }
                };
                for mut item in items {
                    if let Value::Object(map) = &mut item {
                        map.insert(PARENT_FIELD.to_string(), parent.clone());
                    }
                    if keep(&item) {
                        store(&key, &item)?;
                    }
                }
            }
        }
        tx.commit()?;
        conn.execute_batch(
            "CREATE TABLE sorted AS
                 SELECT key, value FROM entries ORDER BY key, ord IS NULL, ord, rowid;
             DROP TABLE entries;
             CREATE INDEX sorted_by_key ON sorted (key);",
        )?;
        let keys: i64 =
            conn.query_row("SELECT COUNT(DISTINCT key) FROM sorted", [], |r| r.get(0))?;
        conn.set_prepared_statement_cache_capacity(8);
        Ok(SideIndex {
            name: spec.name.clone(),
            path: spec.path.clone(),
            entries,
            keys: keys.max(0) as u64,
            inner: Mutex::new(Inner {
                conn,
                all: Recent::new(),
                first: Recent::new(),
            }),
            _db: db,
        })
    }

    /// The entries for a key, in order; empty when the key has none.
    pub fn get(&self, key: &str) -> Result<Vec<Value>, SourceError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = inner.all.get(key) {
            return Ok(hit);
        }
        let mut size = 0;
        let found = self.query(&inner.conn, SELECT_ALL, key, &mut size)?;
        if size <= CACHE_MAX_BYTES {
            inner.all.put(key, found.clone());
        }
        Ok(found)
    }

    /// The first entry for a key (in order), if any.
    pub fn first(&self, key: &str) -> Result<Option<Value>, SourceError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = inner.first.get(key) {
            return Ok(hit);
        }
        let mut size = 0;
        let found = self
            .query(&inner.conn, SELECT_FIRST, key, &mut size)?
            .into_iter()
            .next();
        if size <= CACHE_MAX_BYTES {
            inner.first.put(key, found.clone());
        }
        Ok(found)
    }

    fn query(
        &self,
        conn: &Connection,
        sql: &str,
        key: &str,
        size: &mut usize,
    ) -> Result<Vec<Value>, SourceError> {
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query([key])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let text = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
            *size += text.len();
            out.push(
                serde_json::from_str(text).map_err(|e| SourceError::Invalid {
                    path: self.path.clone(),
                    message: format!("side index entry unreadable: {e}"),
                })?,
            );
        }
        Ok(out)
    }

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

    /// The side file's name in the mapping.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The side file this index was built from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// An `order_by` value as SQLite compares it: numbers before strings, missing as NULL.
enum SqlOrd<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
}

impl<'a> SqlOrd<'a> {
    fn of(v: Option<&'a Value>) -> SqlOrd<'a> {
        match v {
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => SqlOrd::Int(i),
                None => n.as_f64().map_or(SqlOrd::Null, SqlOrd::Real),
            },
            Some(Value::String(s)) => SqlOrd::Text(s),
            Some(Value::Bool(b)) => SqlOrd::Int(i64::from(*b)),
            _ => SqlOrd::Null,
        }
    }
}

impl rusqlite::ToSql for SqlOrd<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            SqlOrd::Null => ValueRef::Null,
            SqlOrd::Int(i) => ValueRef::Integer(*i),
            SqlOrd::Real(f) => ValueRef::Real(*f),
            SqlOrd::Text(s) => ValueRef::Text(s.as_bytes()),
        }))
    }
}

/// Removes the value at a dotted path and returns it.
fn take_path(value: &mut Value, path: &str) -> Option<Value> {
    let (parent, last) = match path.rsplit_once('.') {
        Some((head, last)) => (get_path_mut(value, head)?, last),
        None => (value, path),
    };
    match parent {
        Value::Object(map) => map.shift_remove(last),
        Value::Array(items) => {
            let i = last.parse::<usize>().ok().filter(|&i| i < items.len())?;
            Some(items.remove(i))
        }
        _ => None,
    }
}

fn get_path_mut<'v>(value: &'v mut Value, path: &str) -> Option<&'v mut Value> {
    path.split('.').try_fold(value, |v, part| match v {
        Value::Object(m) => m.get_mut(part),
        Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Format;
    use crate::test_fixtures::real_fixture;
    use serde_json::json;
    use std::io::Write;

    fn spec(path: &Path, key: &str) -> SideSpec {
        SideSpec {
            name: "side".into(),
            path: path.to_path_buf(),
            read: ReadOptions::default(),
            key: key.into(),
            explode: None,
            order_by: None,
        }
    }

    fn build(spec: &SideSpec) -> (SideIndex, Vec<RecordError>) {
        let mut errors = Vec::new();
        let index = SideIndex::build(spec, &mut |_| true, &mut |e| errors.push(e)).unwrap();
        (index, errors)
    }

    fn write(suffix: &str, text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn zendesk_audits_comment_events_by_ticket() {
        let Some(path) = real_fixture("zendesk/api_ticket_audits_list.json") else {
            return;
        };
        let spec = SideSpec {
            name: "comments".into(),
            path,
            read: ReadOptions {
                records: Some("audits".into()),
                ..Default::default()
            },
            key: "ticket_id".into(),
            explode: Some("events".into()),
            order_by: Some("_parent.created_at".into()),
        };
        let mut errors = Vec::new();
        let index = SideIndex::build(&spec, &mut |e| e["type"] == "Comment", &mut |e| {
            errors.push(e)
        })
        .unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!((index.len(), index.keys()), (88, 86));
        let comments = index.get("1").unwrap();
        let ids: Vec<_> = comments.iter().map(|c| c["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, [6130852545306, 6707050311322, 6707063839514]);
        let first = &comments[0];
        assert_eq!(first["_parent"]["created_at"], "2023-09-09T23:52:05Z");
        assert_eq!(first["_parent"]["author_id"], 6130907993114u64);
        assert_eq!(first["_parent"]["ticket_id"], 1);
        assert!(first["_parent"].get("events").is_none());
        assert_eq!(comments[2]["_parent"]["created_at"], "2024-02-07T00:11:18Z");
        assert_eq!(index.first("1").unwrap().unwrap()["id"], 6130852545306u64);
        assert!(index.get("999999").unwrap().is_empty());
        assert!(index.first("999999").unwrap().is_none());
        // Cached lookups give the same answer.
        assert_eq!(index.get("1").unwrap(), comments);
    }

    #[test]
    fn freshdesk_conversations_by_ticket_id() {
        let Some(path) = real_fixture("freshdesk/api_v2_conversations.json") else {
            return;
        };
        let mut s = spec(&path, "ticket_id");
        s.order_by = Some("created_at".into());
        let (index, errors) = build(&s);
        assert!(errors.is_empty());
        assert_eq!((index.len(), index.keys()), (2, 1));
        let convs = index.get("1").unwrap();
        assert_eq!(convs[0]["body_text"], "This is a private note");
        assert_eq!(convs[1]["body_text"], "This is a reply");
    }

    #[test]
    fn users_keyed_by_id_numbers_and_strings_alike() {
        let f = write(
            ".ndjson",
            "{\"id\":7,\"name\":\"Ann\"}\n{\"id\":\"8\",\"name\":\"Bo\"}\n{\"name\":\"nobody\"}\nnot json\n",
        );
        let (index, errors) = build(&spec(f.path(), "id"));
        assert_eq!(index.first("7").unwrap().unwrap()["name"], "Ann");
        assert_eq!(index.first("8").unwrap().unwrap()["name"], "Bo");
        assert_eq!((index.len(), index.keys()), (2, 2));
        let messages: Vec<_> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 2);
        assert!(messages[0].ends_with(":3: no key at `id`"), "{messages:?}");
        assert!(messages[1].contains(":4: invalid JSON"), "{messages:?}");
    }

    #[test]
    fn order_by_numbers_strings_missing_and_ties() {
        let f = write(
            ".ndjson",
            concat!(
                "{\"t\":1,\"n\":\"a\",\"o\":10}\n",
                "{\"t\":1,\"n\":\"b\"}\n",
                "{\"t\":1,\"n\":\"c\",\"o\":9}\n",
                "{\"t\":1,\"n\":\"d\",\"o\":10}\n",
                "{\"t\":1,\"n\":\"e\",\"o\":2.5}\n",
                "{\"t\":1,\"n\":\"f\"}\n",
                "{\"t\":2,\"n\":\"g\",\"o\":\"2024-01-02T00:00:00Z\"}\n",
                "{\"t\":2,\"n\":\"h\",\"o\":\"2023-12-31T23:00:00Z\"}\n",
            ),
        );
        let mut s = spec(f.path(), "t");
        s.order_by = Some("o".into());
        let (index, _) = build(&s);
        let names = |k: &str| -> Vec<String> {
            index
                .get(k)
                .unwrap()
                .iter()
                .map(|e| e["n"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names("1"), ["e", "c", "a", "d", "b", "f"]);
        assert_eq!(names("2"), ["h", "g"]);
        assert_eq!(index.first("1").unwrap().unwrap()["n"], "e");
    }

    #[test]
    fn explode_errors_and_non_object_items() {
        let f = write(
            ".ndjson",
            "{\"k\":1,\"ev\":[{\"a\":1},5]}\n{\"k\":2,\"ev\":\"x\"}\n{\"k\":3}\n{\"k\":4,\"ev\":null}\n",
        );
        let mut s = spec(f.path(), "k");
        s.explode = Some("ev".into());
        let (index, errors) = build(&s);
        assert_eq!(
            index.get("1").unwrap(),
            [json!({"a": 1, "_parent": {"k": 1}}), json!(5)]
        );
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .to_string()
                .ends_with(":2: `ev` is a string, not a list")
        );
        assert_eq!(index.keys(), 1);
    }

    #[test]
    fn csv_side_file_and_fatal_errors() {
        let f = write(".csv", "ticket,body\n1,a\n1,b\n2,c\n");
        let (index, _) = build(&spec(f.path(), "ticket"));
        assert_eq!(index.get("1").unwrap().len(), 2);
        let mut s = spec(Path::new("/nonexistent/users.json"), "id");
        s.read.format = Some(Format::Json);
        assert!(matches!(
            SideIndex::build(&s, &mut |_| true, &mut |_| {}),
            Err(SourceError::Open { .. })
        ));
        if let Some(audits) = real_fixture("zendesk/api_ticket_audits_list.json") {
            let mut s = spec(&audits, "id");
            s.read.records = Some("nope".into());
            let err = SideIndex::build(&s, &mut |_| true, &mut |_| {}).unwrap_err();
            assert!(
                err.to_string()
                    .contains("its keys are: audits, meta, links")
            );
        }
    }

    #[test]
    fn cached_answers_survive_cache_generations() {
        let mut text = String::new();
        for i in 0..3 * CACHE_KEYS {
            text.push_str(&format!("{{\"id\":{i},\"n\":{}}}\n", i * 2));
        }
        let f = write(".ndjson", &text);
        let (index, _) = build(&spec(f.path(), "id"));
        for _ in 0..2 {
            for i in (0..3 * CACHE_KEYS).chain(0..10) {
                let key = i.to_string();
                assert_eq!(index.first(&key).unwrap().unwrap()["n"], i * 2);
                assert_eq!(index.get(&key).unwrap()[0]["n"], i * 2);
            }
        }
    }

    #[test]
    fn an_index_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<SideIndex>();
    }

    #[test]
    fn the_index_file_is_removed_on_drop() {
        let f = write(".ndjson", "{\"id\":1}\n");
        let (index, _) = build(&spec(f.path(), "id"));
        let db = index._db.0.clone();
        assert!(db.exists());
        drop(index);
        assert!(!db.exists());
    }

    #[test]
    fn lookups_use_the_index() {
        let f = write(".ndjson", "{\"id\":1}\n");
        let (index, _) = build(&spec(f.path(), "id"));
        let inner = index.inner.lock().unwrap();
        let plan: Vec<String> = inner
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {SELECT_ALL}"))
            .unwrap()
            .query_map(["1"], |r| r.get::<_, String>(3))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert!(
            plan.iter().any(|p| p.contains("USING INDEX sorted_by_key")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}");
    }

    /// Lookup speed on a larger side file; run with `--ignored --nocapture` to see figures.
    #[test]
    #[ignore]
    fn lookup_speed() {
        const TICKETS: u64 = 200_000;
        let mut f = tempfile::Builder::new()
            .suffix(".ndjson")
            .tempfile()
            .unwrap();
        {
            let mut w = std::io::BufWriter::new(f.as_file_mut());
            for i in 0..TICKETS * 3 {
                writeln!(
                    w,
                    "{{\"id\":{i},\"ticket_id\":{},\"created_at\":\"2024-01-01T00:00:{:02}Z\",\"body\":\"{}\"}}",
                    (i * 7919) % TICKETS,
                    i % 60,
                    "x".repeat(300)
                )
                .unwrap();
            }
        }
        let mut s = spec(f.path(), "ticket_id");
        s.order_by = Some("created_at".into());
        let started = std::time::Instant::now();
        let (index, _) = build(&s);
        let built = started.elapsed();
        let started = std::time::Instant::now();
        let mut n = 0;
        for t in (0..TICKETS).map(|t| (t * 104_729) % TICKETS) {
            n += index.get(&t.to_string()).unwrap().len();
        }
        let per = started.elapsed() / TICKETS as u32;
        eprintln!(
            "built {} entries / {} keys in {built:?}; get: {per:?} per lookup ({n} entries)",
            index.len(),
            index.keys()
        );
        {
            let inner = index.inner.lock().unwrap();
            let started = std::time::Instant::now();
            let mut bytes = 0;
            for t in (0..TICKETS).map(|t| (t * 104_729) % TICKETS) {
                let mut stmt = inner.conn.prepare_cached(SELECT_ALL).unwrap();
                let mut rows = stmt.query([t.to_string()]).unwrap();
                while let Some(row) = rows.next().unwrap() {
                    bytes += row.get_ref(0).unwrap().as_str().unwrap().len();
                }
            }
            eprintln!(
                "SQL only: {:?} per lookup ({bytes} bytes)",
                started.elapsed() / TICKETS as u32
            );
        }
        let started = std::time::Instant::now();
        for t in 0..TICKETS {
            index.first(&(t % 500).to_string()).unwrap();
        }
        eprintln!(
            "first, 500 hot keys: {:?} per lookup",
            started.elapsed() / TICKETS as u32
        );
    }
}
