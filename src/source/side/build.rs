//! Building a side file's index: the file is read once, each record (or each item of its
//! `explode` list) stored under its key with its `order_by` value, then the entries are
//! copied into key order so that a lookup reads adjacent pages.

use std::sync::Mutex;

use rusqlite::{Connection, params};
use serde_json::Value;

use super::lookup::{Inner, Recent};
use super::{PARENT_FIELD, SideIndex, SideSpec, TempDb};
use crate::source::{RecordError, RecordStream, SourceError, get_path, json_kind, read};

/// SQLite page cache, in KiB.
const PAGE_CACHE_KIB: i64 = 16 * 1024;

impl SideIndex {
    /// Reads the side file into a fresh on-disk index.
    ///
    /// `keep` decides per entry (after explode) whether it is kept (the mapping passes a
    /// compiled template; an `Err` is why it could not decide, and the entry is reported
    /// and left out); `on_error` receives unreadable records, records without a key and
    /// entries `keep` failed on, and reading goes on.
    pub fn build(
        spec: &SideSpec,
        keep: &mut dyn FnMut(&Value) -> Result<bool, String>,
        on_error: &mut dyn FnMut(RecordError),
    ) -> Result<SideIndex, SourceError> {
        let db = TempDb::create()?;
        let mut conn = open(&db)?;
        let loaded = load(&mut conn, spec, keep, on_error)?;
        let keys = sort_by_key(&conn)?;
        conn.set_prepared_statement_cache_capacity(8);
        Ok(SideIndex {
            name: spec.name.clone(),
            files: spec.files.clone(),
            entries: loaded.entries,
            keys,
            read: loaded.read,
            without_key: loaded.without_key,
            first_fields: loaded.first_fields,
            joined: Mutex::new(vec![0; keys.div_ceil(64) as usize]),
            inner: Mutex::new(Inner {
                conn,
                all: Recent::new(),
                first: Recent::new(),
            }),
            _db: db,
        })
    }
}

/// The index's database, set up for one writer that never needs to recover it: no
/// journal, no syncing, no locks taken per query.
fn open(db: &TempDb) -> Result<Connection, SourceError> {
    let conn = Connection::open(&db.0)?;
    conn.execute_batch(&format!(
        "PRAGMA page_size = 8192;
         PRAGMA journal_mode = OFF;
         PRAGMA synchronous = OFF;
         PRAGMA locking_mode = EXCLUSIVE;
         PRAGMA cache_size = -{PAGE_CACHE_KIB};
         CREATE TABLE entries (key TEXT NOT NULL, ord, value TEXT NOT NULL, line INTEGER, idx INTEGER NOT NULL, file INTEGER NOT NULL);"
    ))?;
    Ok(conn)
}

/// What loading a side file found.
struct Loaded {
    /// Entries stored.
    entries: u64,
    /// Records read (readable ones).
    read: u64,
    /// Readable records without a key (none at the path, or the template failed).
    without_key: u64,
    /// The field names of the first readable record, for the message when no record has
    /// the key.
    first_fields: Vec<String>,
}

/// Stores the entries of every record in file order (the files one after the other, each
/// opened only when the one before is read), in one transaction.
fn load(
    conn: &mut Connection,
    spec: &SideSpec,
    keep: &mut dyn FnMut(&Value) -> Result<bool, String>,
    on_error: &mut dyn FnMut(RecordError),
) -> Result<Loaded, SourceError> {
    let mut entries = 0u64;
    let mut read_count = 0u64;
    let mut without_key = 0u64;
    let mut first_fields = None;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO entries (key, ord, value, line, idx, file) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut file_no = 0usize;
        let mut store = |key: &str,
                         entry: &Value,
                         at: &crate::source::Location,
                         file_no: usize|
         -> Result<(), SourceError> {
            let ord = spec
                .order_by
                .as_deref()
                .map_or(SqlOrd::Null, |p| SqlOrd::of(get_path(entry, p)));
            let text = serde_json::to_string(entry).map_err(|e| SourceError::Invalid {
                path: at.file.to_path_buf(),
                message: format!("cannot store an entry: {e}"),
            })?;
            insert.execute(params![key, ord, text, at.line, at.index, file_no])?;
            entries += 1;
            Ok(())
        };
        let mut streams = spec
            .files
            .iter()
            .enumerate()
            .map(|(no, path)| read(path, &spec.read).map(|s| (no, s)));
        let mut current: Option<RecordStream> = None;
        loop {
            let item = match current.as_mut().and_then(Iterator::next) {
                Some(item) => item,
                None => match streams.next() {
                    Some(opened) => {
                        let (no, stream) = opened?;
                        file_no = no;
                        current = Some(stream);
                        continue;
                    }
                    None => break,
                },
            };
            let (location, value) = match item {
                // Entries are stored as JSON, so a CSV row becomes its object here.
                Ok(r) => (r.location, r.value.into_json()),
                Err(e) => {
                    on_error(e);
                    continue;
                }
            };
            read_count += 1;
            if first_fields.is_none() {
                first_fields = Some(match &value {
                    Value::Object(m) => m.keys().cloned().collect(),
                    _ => Vec::new(),
                });
            }
            let key = match spec.key.of(&value) {
                Ok(key) => key,
                Err(message) => {
                    without_key += 1;
                    on_error(RecordError {
                        location,
                        message,
                        raw: None,
                    });
                    continue;
                }
            };
            let Some(explode) = spec.explode.as_deref() else {
                match keep(&value) {
                    Ok(true) => store(&key, &value, &location, file_no)?,
                    Ok(false) => {}
                    Err(message) => on_error(RecordError {
                        location,
                        message,
                        raw: None,
                    }),
                }
                continue;
            };
            let mut parent = value;
            let items = match take_path(&mut parent, explode) {
                None | Some(Value::Null) => continue,
                Some(Value::Array(items)) => items,
                Some(other) => {
                    on_error(RecordError {
                        location,
                        message: format!("`{explode}` is {}, not a list", json_kind(&other)),
                        raw: None,
                    });
                    continue;
                }
            };
            for mut item in items {
                if let Value::Object(map) = &mut item {
                    map.insert(PARENT_FIELD.to_string(), parent.clone());
                }
                match keep(&item) {
                    Ok(true) => store(&key, &item, &location, file_no)?,
                    Ok(false) => {}
                    Err(message) => on_error(RecordError {
                        location: location.clone(),
                        message,
                        raw: None,
                    }),
                }
            }
        }
    }
    tx.commit()?;
    Ok(Loaded {
        entries,
        read: read_count,
        without_key,
        first_fields: first_fields.unwrap_or_default(),
    })
}

/// Copies the entries into key order (by `order_by` within a key, ties and entries without
/// a value in file order) and indexes the copy; returns the number of distinct keys.
fn sort_by_key(conn: &Connection) -> Result<u64, SourceError> {
    conn.execute_batch(
        "CREATE TABLE sorted AS
             SELECT key, value, line, idx, file, rowid AS seq,
                    DENSE_RANK() OVER (ORDER BY key) - 1 AS key_no
             FROM entries ORDER BY key, ord IS NULL, ord, rowid;
         DROP TABLE entries;
         CREATE INDEX sorted_by_key ON sorted (key);",
    )?;
    let keys: i64 = conn.query_row("SELECT COUNT(DISTINCT key) FROM sorted", [], |r| r.get(0))?;
    Ok(keys.max(0) as u64)
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
    use super::super::SideKey;
    use super::super::test_files::{build, spec, write};
    use super::*;
    use crate::source::{Format, ReadOptions};
    use crate::test_fixtures::real_fixture;
    use serde_json::json;
    use std::path::Path;

    #[test]
    fn zendesk_audits_comment_events_by_ticket() {
        let Some(path) = real_fixture("zendesk/api_ticket_audits_list.json") else {
            return;
        };
        let spec = SideSpec {
            name: "comments".into(),
            files: vec![path],
            read: ReadOptions {
                records: Some("audits".into()),
                ..Default::default()
            },
            key: SideKey::Path("ticket_id".into()),
            explode: Some("events".into()),
            order_by: Some("_parent.created_at".into()),
        };
        let mut errors = Vec::new();
        let index = SideIndex::build(&spec, &mut |e| Ok(e["type"] == "Comment"), &mut |e| {
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

    /// A side file split over several files (ServiceNow's journal): one index, entries in
    /// file order, each with its own file:line.
    #[test]
    fn several_files_make_one_index_with_their_own_locations() {
        let a = write(
            ".ndjson",
            "{\"t\":1,\"n\":\"a1\"}\n{\"t\":2,\"n\":\"a2\"}\n",
        );
        let b = write(
            ".ndjson",
            "{\"t\":1,\"n\":\"b1\"}\n{\"n\":\"no key\"}\n{\"t\":3,\"n\":\"b3\"}\n",
        );
        let mut s = spec(a.path(), "t");
        s.files.push(b.path().to_path_buf());
        let (index, errors) = build(&s);
        assert_eq!((index.len(), index.keys()), (4, 3));
        let names: Vec<_> = index
            .get("1")
            .unwrap()
            .iter()
            .map(|e| e["n"].clone())
            .collect();
        assert_eq!(names, [json!("a1"), json!("b1")]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].location.file.as_ref(), b.path());
        assert_eq!(errors[0].location.line, Some(2));
        assert_eq!(index.files(), [a.path(), b.path()]);
        index.get("1").unwrap();
        let unjoined = index.unjoined(10).unwrap();
        assert_eq!((unjoined.entries, unjoined.keys), (2, 2));
        assert_eq!(unjoined.first[0].0, "2");
        assert_eq!(unjoined.first[0].1.file.as_ref(), a.path());
        assert_eq!(unjoined.first[0].1.line, Some(2));
        assert_eq!(unjoined.first[1].0, "3");
        assert_eq!(unjoined.first[1].1.file.as_ref(), b.path());
        assert_eq!(unjoined.first[1].1.line, Some(3));
    }

    /// A computed key indexes by what it renders; a record it fails on or renders empty
    /// for is reported at its line and counted as without a key.
    #[test]
    fn computed_keys_index_by_their_value_and_report_failures() {
        let f = write(
            ".ndjson",
            "{\"u\":\"/issue/7/c/1\"}\n{\"u\":\"\"}\n{\"u\":5}\n{\"u\":\"/issue/7/c/2\"}\n",
        );
        let mut s = spec(f.path(), "unused");
        s.key = SideKey::Computed {
            source: "{{ u | issue }}".into(),
            eval: std::sync::Arc::new(|v: &Value| match &v["u"] {
                Value::String(u) => Ok(u.split('/').nth(2).unwrap_or("").to_string()),
                other => Err(format!("`u` is {}", json_kind(other))),
            }),
        };
        let (index, errors) = build(&s);
        assert_eq!((index.len(), index.keys()), (2, 1));
        assert_eq!(index.get("7").unwrap().len(), 2);
        assert_eq!(index.records_without_key(), 2);
        let messages: Vec<_> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            messages[0].ends_with(
                ":2: `key: {{ u | issue }}` renders empty for this record, so the entry is left out"
            ),
            "{messages:?}"
        );
        assert!(
            messages[1].ends_with(
                ":3: `key: {{ u | issue }}` failed, so the entry is left out: `u` is a number"
            ),
            "{messages:?}"
        );
    }

    #[test]
    fn csv_side_file_and_fatal_errors() {
        let f = write(".csv", "ticket,body\n1,a\n1,b\n2,c\n");
        let (index, _) = build(&spec(f.path(), "ticket"));
        assert_eq!(index.get("1").unwrap().len(), 2);
        let mut s = spec(Path::new("/nonexistent/users.json"), "id");
        s.read.format = Some(Format::Json);
        assert!(matches!(
            SideIndex::build(&s, &mut |_| Ok(true), &mut |_| {}),
            Err(SourceError::Open { .. })
        ));
        if let Some(audits) = real_fixture("zendesk/api_ticket_audits_list.json") {
            let mut s = spec(&audits, "id");
            s.read.records = Some("nope".into());
            let err = SideIndex::build(&s, &mut |_| Ok(true), &mut |_| {}).unwrap_err();
            assert!(
                err.to_string()
                    .contains("its keys are: audits, meta, links")
            );
        }
    }
}
