//! Which source fields the export fills, counted while records are built, so that the
//! dry run can list the fields with data that the mapping never reads before anything is
//! written (issue 9, "a loss report").
//!
//! Counting is per builder thread and merged at the end. Field names are looked up by
//! `&str` in nested maps (a record's own keys, one level into objects, and the ids of
//! `[{id, value}]` lists such as Zendesk's `custom_fields`), so a record whose fields were
//! seen before allocates nothing. The number of paths is capped, which keeps memory flat
//! whatever the export holds.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;
use serde_json::Value;

use crate::source::{Header, RecordRef, id_text, object_get};

/// Paths counted at most; more are counted together as `dropped_paths`.
pub(crate) const MAX_PATHS: usize = 2_000;

/// Fields seen in the records, with how many records have a non-empty value.
#[derive(Debug, Default)]
pub(crate) struct FieldCounts {
    /// A record's own keys, with where their counts are in `nodes`.
    top: HashMap<String, usize>,
    nodes: Vec<Node>,
    /// The header of the last row counted, with each column's place in `nodes` once
    /// known: the rows of a file (and NDJSON lines alike) share a header, so their cells
    /// are counted by place, not by hashing every name of every row.
    last_header: Option<(Arc<Header>, Vec<Option<usize>>)>,
    paths: usize,
    /// Values not counted because their path did not fit in [`MAX_PATHS`].
    pub dropped_paths: u64,
}

#[derive(Debug, Default)]
struct Node {
    filled: u64,
    /// Keys of an object value.
    sub: HashMap<String, u64>,
    /// Ids of a list of `{id, value}` objects, with records whose value is non-empty.
    ids: HashMap<String, u64>,
}

fn filled(v: &Value) -> bool {
    match v {
        Value::Null => false,
        // Most values start with a visible ASCII character: no need to trim them.
        Value::String(s) => match s.as_bytes().first() {
            None => false,
            Some(b) if b.is_ascii_graphic() => true,
            Some(_) => !s.trim().is_empty(),
        },
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
        _ => true,
    }
}

/// An id as text; an integer is written into `buf`, so counting allocates nothing.
fn id_str<'a>(v: &'a Value, buf: &'a mut itoa::Buffer) -> Option<std::borrow::Cow<'a, str>> {
    match v {
        Value::Number(n) if !(n.is_u64() || n.is_i64()) => Some(n.to_string().into()),
        _ => id_text(v, buf).map(Into::into),
    }
}

/// Adds one to the count under `key`, inserting it while the path budget allows.
fn bump(map: &mut HashMap<String, u64>, key: &str, paths: &mut usize, dropped: &mut u64) {
    if let Some(n) = map.get_mut(key) {
        *n += 1;
    } else if *paths < MAX_PATHS {
        *paths += 1;
        map.insert(key.to_string(), 1);
    } else {
        *dropped += 1;
    }
}

impl FieldCounts {
    /// Counts the non-empty fields of one record.
    pub(crate) fn add(&mut self, record: RecordRef<'_>) {
        let RecordRef::Row(row) = record else {
            for (key, value) in record.entries() {
                if filled(value)
                    && let Some(node) = self.node(key)
                {
                    self.count(node, value);
                }
            }
            return;
        };
        let (header, mut places) = match self.last_header.take() {
            Some((header, places)) if Arc::ptr_eq(&header, row.header()) => (header, places),
            _ => (row.header().clone(), vec![None; row.header().names().len()]),
        };
        for ((key, value), place) in row.iter().zip(places.iter_mut()) {
            if !filled(value) {
                continue;
            }
            let node = match *place {
                Some(node) => node,
                None => match self.node(key) {
                    Some(node) => *place.insert(node),
                    None => continue,
                },
            };
            self.count(node, value);
        }
        self.last_header = Some((header, places));
    }

    /// Where the counts of the record key `key` are, added while the path budget allows.
    fn node(&mut self, key: &str) -> Option<usize> {
        if let Some(&node) = self.top.get(key) {
            return Some(node);
        }
        if self.paths < MAX_PATHS {
            self.paths += 1;
            self.nodes.push(Node::default());
            self.top.insert(key.to_string(), self.nodes.len() - 1);
            Some(self.nodes.len() - 1)
        } else {
            self.dropped_paths += 1;
            None
        }
    }

    /// Counts a non-empty `value` of the key whose counts are at `node`.
    fn count(&mut self, node: usize, value: &Value) {
        let node = &mut self.nodes[node];
        node.filled += 1;
        match value {
            Value::Object(m) => {
                for (k, v) in m {
                    if filled(v) {
                        bump(&mut node.sub, k, &mut self.paths, &mut self.dropped_paths);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    let Value::Object(m) = item else { continue };
                    let mut buf = itoa::Buffer::new();
                    let (Some(id), Some(v)) = (
                        object_get(m, "id").and_then(|id| id_str(id, &mut buf)),
                        object_get(m, "value"),
                    ) else {
                        continue;
                    };
                    if filled(v) {
                        bump(&mut node.ids, &id, &mut self.paths, &mut self.dropped_paths);
                    }
                }
            }
            _ => {}
        }
    }

    /// Adds another thread's counts.
    pub(crate) fn merge(&mut self, mut other: FieldCounts) {
        self.dropped_paths += other.dropped_paths;
        for (key, at) in other.top {
            let node = std::mem::take(&mut other.nodes[at]);
            let at = match self.top.get(&key) {
                Some(&at) => at,
                None => {
                    self.nodes.push(Node::default());
                    self.top.insert(key, self.nodes.len() - 1);
                    self.nodes.len() - 1
                }
            };
            let mine = &mut self.nodes[at];
            mine.filled += node.filled;
            for (k, n) in node.sub {
                *mine.sub.entry(k).or_default() += n;
            }
            for (k, n) in node.ids {
                *mine.ids.entry(k).or_default() += n;
            }
        }
    }

    /// Every path with its count, sorted by path: `key`, `key.sub`, `key[id=N]`.
    pub(crate) fn paths(&self) -> Vec<(FieldPath, u64)> {
        let mut out = vec![];
        for (key, &at) in &self.top {
            let node = &self.nodes[at];
            out.push((FieldPath::Top(key.clone()), node.filled));
            for (k, n) in &node.sub {
                out.push((FieldPath::Sub(key.clone(), k.clone()), *n));
            }
            for (k, n) in &node.ids {
                out.push((FieldPath::Id(key.clone(), k.clone()), *n));
            }
        }
        out.sort_by_cached_key(|(p, _)| p.to_string());
        out
    }
}

/// A source field as the coverage report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldPath {
    Top(String),
    /// A key of an object field.
    Sub(String, String),
    /// An id in a list of `{id, value}` objects.
    Id(String, String),
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldPath::Top(k) => f.write_str(k),
            FieldPath::Sub(k, s) => write!(f, "{k}.{s}"),
            FieldPath::Id(k, id) => write!(f, "{k}[id={id}]"),
        }
    }
}

impl FieldPath {
    /// Whether the mapping's text reads this field: the name (or id) appears in it as a
    /// whole word outside comments. A text check, not a template analysis: a name the
    /// mapping mentions counts as used.
    /// The record's own top-level field this path is in.
    pub(crate) fn top(&self) -> &str {
        match self {
            FieldPath::Top(k) | FieldPath::Sub(k, _) | FieldPath::Id(k, _) => k,
        }
    }

    pub(crate) fn mentioned_in(&self, mapping: &str) -> bool {
        let word = match self {
            FieldPath::Top(k) => k.as_str(),
            FieldPath::Sub(_, s) => s.as_str(),
            FieldPath::Id(_, id) => id.as_str(),
        };
        mapping
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .any(|l| contains_word(l, word))
    }
}

fn contains_word(line: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(word).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_fields_objects_and_id_lists() {
        let mut c = FieldCounts::default();
        c.add(RecordRef::Json(
            &json!({"id": 1, "fwd_emails": ["a@b.c"], "cc": [], "subject": " ",
            "custom_fields": [{"id": 360001, "value": "x"}, {"id": 360009, "value": null}],
            "via": {"channel": "email", "source": {}}}),
        ));
        c.add(RecordRef::Json(
            &json!({"id": 2, "custom_fields": [{"id": 360001, "value": "y"}]}),
        ));
        let got: Vec<(String, u64)> = c
            .paths()
            .into_iter()
            .map(|(p, n)| (p.to_string(), n))
            .collect();
        assert_eq!(
            got,
            [
                ("custom_fields".to_string(), 2),
                ("custom_fields[id=360001]".into(), 2),
                ("fwd_emails".into(), 1),
                ("id".into(), 2),
                ("via".into(), 1),
                ("via.channel".into(), 1),
            ]
        );
        let mapping = "# fwd_emails is not mapped\nsubject: \"{{ custom_fields | field(360001) }}\"\nid: \"{{ id }}\"\n";
        assert!(!FieldPath::Top("fwd_emails".into()).mentioned_in(mapping));
        assert!(FieldPath::Id("custom_fields".into(), "360001".into()).mentioned_in(mapping));
        assert!(!FieldPath::Id("custom_fields".into(), "36000".into()).mentioned_in(mapping));
        assert!(FieldPath::Top("id".into()).mentioned_in(mapping));
    }

    /// Rows sharing a header, rows of another header and JSON objects count alike, and
    /// threads' counts merge into the same totals.
    #[test]
    fn rows_count_as_their_objects() {
        use crate::source::{RecordValue, Row};
        let objects = [
            json!({"id": 1, "s": "x", "o": {"a": 1}, "cf": [{"id": 7, "value": "v"}]}),
            json!({"id": 2, "s": "", "o": {}, "cf": []}),
            json!({"s": "y", "id": 3}),
            json!({"id": 4, "s": "z", "o": {"a": null, "b": 2}, "cf": [{"id": 7, "value": null}]}),
        ];
        let header_of = |v: &Value| Row::from_object(v.as_object().unwrap());
        // Rows 0, 1 and 3 share one header; row 2 has its own.
        let shared = header_of(&objects[0]);
        let rows: Vec<RecordValue> = objects
            .iter()
            .map(|v| {
                let row = header_of(v);
                if row.iter().map(|(k, _)| k).eq(shared.iter().map(|(k, _)| k)) {
                    let cells = shared.iter().map(|(k, _)| v[k].clone()).collect();
                    RecordValue::Row(Row::new(shared.header().clone(), cells))
                } else {
                    RecordValue::Row(row)
                }
            })
            .collect();
        let mut json = FieldCounts::default();
        let mut by_row = FieldCounts::default();
        let mut halves = [FieldCounts::default(), FieldCounts::default()];
        for (i, (v, row)) in objects.iter().zip(&rows).enumerate() {
            json.add(RecordRef::Json(v));
            by_row.add(row.as_ref());
            halves[i % 2].add(row.as_ref());
        }
        let [mut merged, b] = halves;
        merged.merge(b);
        assert_eq!(by_row.paths(), json.paths());
        assert_eq!(merged.paths(), json.paths());
        assert!(
            json.paths()
                .contains(&(FieldPath::Id("cf".into(), "7".into()), 1))
        );
    }

    #[test]
    fn paths_are_capped() {
        let mut c = FieldCounts::default();
        let mut m = serde_json::Map::new();
        for i in 0..MAX_PATHS + 10 {
            m.insert(format!("f{i}"), json!(1));
        }
        c.add(RecordRef::Json(&Value::Object(m)));
        assert_eq!(c.paths().len(), MAX_PATHS);
        assert_eq!(c.dropped_paths, 10);
    }
}
