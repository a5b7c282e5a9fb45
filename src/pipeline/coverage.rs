//! Which source fields the export fills, counted while records are built, so that the
//! dry run can list the fields with data that the mapping never reads before anything is
//! written (issue 9, "a loss report").
//!
//! Counting is per builder thread and merged at the end. Field names are looked up by
//! `&str` in nested maps (a record's own keys, one level into objects, and the ids of
//! `[{id, value}]` lists such as Zendesk's `custom_fields`), so a record whose fields were
//! seen before allocates nothing. The number of paths is capped, which keeps memory flat
//! whatever the export holds.

use rustc_hash::FxHashMap as HashMap;
use serde_json::Value;

use crate::source::{RecordRef, id_text, object_get};

/// Paths counted at most; more are counted together as `dropped_paths`.
pub(crate) const MAX_PATHS: usize = 2_000;

/// Fields seen in the records, with how many records have a non-empty value.
#[derive(Debug, Default)]
pub(crate) struct FieldCounts {
    top: HashMap<String, Node>,
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
        for (key, value) in record.entries() {
            if !filled(value) {
                continue;
            }
            let node = match self.top.get_mut(key) {
                Some(n) => n,
                None if self.paths < MAX_PATHS => {
                    self.paths += 1;
                    self.top.entry(key.to_string()).or_default()
                }
                None => {
                    self.dropped_paths += 1;
                    continue;
                }
            };
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
    }

    /// Adds another thread's counts.
    pub(crate) fn merge(&mut self, other: FieldCounts) {
        self.dropped_paths += other.dropped_paths;
        for (key, node) in other.top {
            let mine = self.top.entry(key).or_default();
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
        for (key, node) in &self.top {
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
