//! Looking a key up in a side file's index.
//!
//! Every ticket looks up its comments and its people, so lookups go through one cached
//! prepared statement, and the answers for recent keys are kept in a small two-generation
//! cache (the same users are looked up again and again).

use std::collections::HashMap;

use std::path::Path;

use rusqlite::Connection;
use serde_json::Value;

use super::SideIndex;
use crate::source::{Location, SourceError};

/// Keys whose entries are kept in the cache of recent lookups, per generation.
const CACHE_KEYS: usize = 1024;
/// Entries larger than this (JSON bytes for one key) are not cached, which bounds the
/// cache to a few MB whatever the side file holds.
const CACHE_MAX_BYTES: usize = 4 * 1024;
// `sorted` holds the entries clustered by key and in order, so one lookup reads a few
// adjacent pages instead of one random page per entry.
const SELECT_ALL: &str = "SELECT value, key_no FROM sorted WHERE key = ?1 ORDER BY rowid";
const SELECT_FIRST: &str = "SELECT value, key_no FROM sorted WHERE key = ?1 ORDER BY rowid LIMIT 1";
/// Each key's first entry with where it is, for the keys no lookup asked for.
/// (SQLite takes the bare columns `line`, `idx` and `file` from the row with `MIN(seq)`.)
const SELECT_KEYS: &str = "SELECT key_no, key, COUNT(*), line, idx, file, MIN(seq) FROM sorted GROUP BY key_no ORDER BY MIN(seq)";

/// Entries of a side file that no lookup asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unjoined {
    /// Entries whose key no ticket asked for.
    pub entries: u64,
    /// Distinct keys among them.
    pub keys: u64,
    /// The first few keys, in file order, with where their first entry is.
    pub first: Vec<(String, Location)>,
}

pub(super) struct Inner {
    pub(super) conn: Connection,
    /// Recent `get` answers.
    pub(super) all: Recent<Vec<Value>>,
    /// Recent `first` answers (users are looked up by id again and again).
    pub(super) first: Recent<Option<Value>>,
}

/// Two generations of recently looked-up keys: a hit in `old` moves to `recent`, and when
/// `recent` is full it becomes `old`. A cheap approximation of LRU with O(1) operations.
pub(super) struct Recent<V> {
    recent: HashMap<String, V>,
    old: HashMap<String, V>,
}

impl<V: Clone> Recent<V> {
    pub(super) fn new() -> Self {
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

impl SideIndex {
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
            if out.is_empty() {
                self.mark_joined(row.get(1)?);
            }
            let text = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
            *size += text.len();
            out.push(
                serde_json::from_str(text).map_err(|e| SourceError::Invalid {
                    path: self.files.first().cloned().unwrap_or_default(),
                    message: format!("side index entry unreadable: {e}"),
                })?,
            );
        }
        Ok(out)
    }
}

impl SideIndex {
    fn mark_joined(&self, key_no: u64) {
        let mut bits = self.joined.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(word) = bits.get_mut((key_no / 64) as usize) {
            *word |= 1 << (key_no % 64);
        }
    }

    /// The entries whose key no lookup asked for (for a joined file: entries that belong
    /// to no ticket of the export), with the first `shown` keys and where they are.
    pub fn unjoined(&self, shown: usize) -> Result<Unjoined, SourceError> {
        let bits = self
            .joined
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = inner.conn.prepare(SELECT_KEYS)?;
        let mut rows = stmt.query([])?;
        let mut out = Unjoined::default();
        while let Some(row) = rows.next()? {
            let key_no: u64 = row.get(0)?;
            let joined = bits
                .get((key_no / 64) as usize)
                .is_some_and(|w| w & (1 << (key_no % 64)) != 0);
            if joined {
                continue;
            }
            let count: u64 = row.get(2)?;
            out.entries += count;
            out.keys += 1;
            if out.first.len() < shown {
                let file_no: usize = row.get(5)?;
                let path = self
                    .files
                    .get(file_no)
                    .map_or(Path::new(""), |p| p.as_path());
                let location = Location {
                    file: std::sync::Arc::from(path),
                    line: row.get(3)?,
                    index: row.get(4)?,
                };
                out.first.push((row.get(1)?, location));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_files::{build, spec, write};
    use super::*;

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

    /// Keys no lookup asked for are reported with where their first entry is.
    #[test]
    fn entries_no_lookup_asked_for_are_reported() {
        let f = write(
            ".ndjson",
            "{\"t\":1}\n{\"t\":2}\n{\"t\":2}\n{\"t\":3}\n{\"t\":4}\n",
        );
        let (index, _) = build(&spec(f.path(), "t"));
        assert_eq!(index.get("1").unwrap().len(), 1);
        assert_eq!(index.get("3").unwrap().len(), 1);
        assert!(index.get("9").unwrap().is_empty());
        let u = index.unjoined(1).unwrap();
        assert_eq!((u.entries, u.keys), (3, 2));
        assert_eq!(u.first.len(), 1);
        assert_eq!(u.first[0].0, "2");
        assert_eq!(u.first[0].1.line, Some(2));
    }

    #[test]
    fn an_index_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<SideIndex>();
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
}
