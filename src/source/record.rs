//! A record's fields as the readers hand them on.
//!
//! A JSON document's record is kept as the object it is. A CSV row is kept as its cells
//! beside its file's header, which every row of the file shares: building a JSON object
//! per row cloned every column name and hashed it into the object's map, a tenth of a CSV
//! dry run's time, only for the names to be hashed again by every lookup. An NDJSON line is
//! kept as a row too, of the keys the lines before it had (see `json::shaped`). Whatever
//! the format, templates, field counts and rejects see the same object (`to_json`).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustc_hash::FxHashMap;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

/// A key of a JSON object. Small objects (the `{id, value}` items of a custom field list, a
/// requester's name and email) are scanned: comparing a few short keys costs less than
/// hashing one with the SipHash of serde_json's maps, which showed in every profile.
pub(crate) fn object_get<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if object.len() <= SCANNED {
        object.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    } else {
        object.get(key)
    }
}

/// Objects up to this many keys are scanned by [`object_get`].
const SCANNED: usize = 8;

/// The text of an id that is a string or an integer, an integer written into `buf`: ids of
/// `{id, value}` lists are compared on every record, without allocating.
pub(crate) fn id_text<'a>(v: &'a Value, buf: &'a mut itoa::Buffer) -> Option<&'a str> {
    match v {
        Value::String(s) => Some(s),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Some(buf.format(u)),
            (None, Some(i)) => Some(buf.format(i)),
            _ => None,
        },
        _ => None,
    }
}

/// Where a key was last found in a record, for [`RecordRef::get_hinted`]. Shared by the
/// builder threads: it is only written when a record has the key elsewhere.
#[derive(Debug, Default)]
pub(crate) struct KeyHint(AtomicUsize);

/// Objects up to this many keys are searched from a [`KeyHint`]; larger ones are hashed.
const HINTED: usize = 64;

/// The fields of one record: a JSON object, or a CSV row.
#[derive(Clone, PartialEq)]
pub enum RecordValue {
    /// Always an object.
    Json(Value),
    Row(Row),
}

/// A record's fields, borrowed: what templates are evaluated on.
#[derive(Clone, Copy)]
pub enum RecordRef<'a> {
    Json(&'a Value),
    Row(&'a Row),
}

/// One CSV row: a value per distinct column name (a string, or a list of the non-empty
/// cells of a repeated header), in the order the names first appear. Or an NDJSON line's
/// object: a value per key, in the order of the line.
#[derive(Clone)]
pub struct Row {
    header: Arc<Header>,
    cells: Vec<Value>,
}

/// A CSV file's column names (or the keys of NDJSON lines alike), distinct and in order of
/// first appearance, with where each is in a row.
#[derive(Debug)]
pub(crate) struct Header {
    names: Vec<String>,
    position: FxHashMap<String, usize>,
}

impl Header {
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// `names` must be distinct.
    pub(crate) fn new(names: Vec<String>) -> Header {
        let position = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Header { names, position }
    }
}

impl Row {
    /// `cells` holds one value per name of `header`, in its order.
    pub(crate) fn new(header: Arc<Header>, cells: Vec<Value>) -> Row {
        debug_assert_eq!(header.names.len(), cells.len());
        Row { header, cells }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.header.position.get(name).map(|&i| &self.cells[i])
    }

    pub(crate) fn into_cells(self) -> Vec<Value> {
        self.cells
    }

    /// The header this row shares with the other rows of its file.
    pub(crate) fn header(&self) -> &Arc<Header> {
        &self.header
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.header
            .names
            .iter()
            .map(String::as_str)
            .zip(self.cells.iter())
    }

    /// A copy as one JSON object: each name and cell cloned once, as `into_json` of a clone.
    fn to_json(&self) -> Value {
        self.clone().into_json()
    }

    fn into_json(self) -> Value {
        let mut object = Map::with_capacity(self.cells.len());
        for (name, value) in self.header.names.iter().zip(self.cells) {
            object.insert(name.clone(), value);
        }
        Value::Object(object)
    }
}

#[cfg(test)]
impl Row {
    /// The row a CSV file with `object`'s keys as its header would give.
    pub(crate) fn from_object(object: &Map<String, Value>) -> Row {
        let header = Arc::new(Header::new(object.keys().cloned().collect()));
        Row::new(header, object.values().cloned().collect())
    }
}

impl PartialEq for Row {
    fn eq(&self, other: &Row) -> bool {
        self.iter().eq(other.iter())
    }
}

impl RecordValue {
    pub fn as_ref(&self) -> RecordRef<'_> {
        match self {
            RecordValue::Json(v) => RecordRef::Json(v),
            RecordValue::Row(r) => RecordRef::Row(r),
        }
    }

    /// The record as one JSON object (a row is copied into one).
    pub fn to_json(&self) -> Value {
        self.as_ref().to_json()
    }

    pub fn into_json(self) -> Value {
        match self {
            RecordValue::Json(v) => v,
            RecordValue::Row(r) => r.into_json(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.as_ref().get(name)
    }
}

impl<'a> RecordRef<'a> {
    pub fn get(self, name: &str) -> Option<&'a Value> {
        match self {
            RecordRef::Json(v) => v.get(name),
            RecordRef::Row(r) => r.get(name),
        }
    }

    /// `get` of a key that the records of an export keep in one place: checked first at
    /// the position `hint` remembers, one comparison instead of hashing the key (the
    /// SipHash of serde_json's maps, or a row header's map), which every template's lookup
    /// paid on every record.
    pub(crate) fn get_hinted(self, name: &str, hint: &KeyHint) -> Option<&'a Value> {
        match self {
            RecordRef::Json(Value::Object(m)) if m.len() <= HINTED => {
                let at = hint.0.load(Ordering::Relaxed);
                if let Some((k, v)) = m.iter().nth(at)
                    && k == name
                {
                    return Some(v);
                }
                let (at, v) = m
                    .iter()
                    .enumerate()
                    .find_map(|(i, (k, v))| (k == name).then_some((i, v)))?;
                hint.0.store(at, Ordering::Relaxed);
                Some(v)
            }
            // The same for a row, whose cells are in its header's order: a CSV file's rows
            // all share one header, and NDJSON lines alike share theirs.
            RecordRef::Row(r) => {
                let at = hint.0.load(Ordering::Relaxed);
                if let Some(n) = r.header.names.get(at)
                    && n == name
                {
                    return r.cells.get(at);
                }
                let at = *r.header.position.get(name)?;
                hint.0.store(at, Ordering::Relaxed);
                r.cells.get(at)
            }
            _ => self.get(name),
        }
    }

    /// The top-level fields in order; none for a JSON value that is not an object.
    pub fn entries(self) -> Box<dyn Iterator<Item = (&'a str, &'a Value)> + 'a> {
        match self {
            RecordRef::Json(Value::Object(m)) => Box::new(m.iter().map(|(k, v)| (k.as_str(), v))),
            RecordRef::Json(_) => Box::new(std::iter::empty()),
            RecordRef::Row(r) => Box::new(r.iter()),
        }
    }

    pub fn to_json(self) -> Value {
        match self {
            RecordRef::Json(v) => v.clone(),
            RecordRef::Row(r) => r.to_json(),
        }
    }
}

impl<'a> From<&'a Value> for RecordRef<'a> {
    fn from(v: &'a Value) -> Self {
        RecordRef::Json(v)
    }
}

impl<'a> From<&'a RecordValue> for RecordRef<'a> {
    fn from(v: &'a RecordValue) -> Self {
        v.as_ref()
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.cells.len()))?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl Serialize for RecordRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RecordRef::Json(v) => v.serialize(s),
            RecordRef::Row(r) => r.serialize(s),
        }
    }
}

/// Shown as the JSON object the record stands for.
impl fmt::Debug for RecordValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_json(), f)
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_json(), f)
    }
}

/// Compares with the JSON object the record stands for (in any order, as objects compare).
impl PartialEq<Value> for RecordValue {
    fn eq(&self, other: &Value) -> bool {
        match self {
            RecordValue::Json(v) => v == other,
            RecordValue::Row(r) => r.to_json() == *other,
        }
    }
}

/// A field by name, `Null` when absent, as `serde_json::Value` indexes.
impl std::ops::Index<&str> for RecordValue {
    type Output = Value;
    fn index(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(name).unwrap_or(&NULL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row() -> RecordValue {
        let header = Arc::new(Header::new(vec!["b".into(), "a".into()]));
        RecordValue::Row(Row::new(header, vec![json!("1"), json!(["x", "y"])]))
    }

    #[test]
    fn ids_as_text() {
        let mut buf = itoa::Buffer::new();
        assert_eq!(id_text(&json!("7"), &mut buf), Some("7"));
        assert_eq!(id_text(&json!(360001), &mut buf), Some("360001"));
        assert_eq!(id_text(&json!(-3), &mut buf), Some("-3"));
        assert_eq!(id_text(&json!(1.5), &mut buf), None);
        assert_eq!(id_text(&json!(null), &mut buf), None);
    }

    /// Whatever the hint remembers, a hinted lookup finds what `get` finds: records with
    /// the key elsewhere, without it, an object too large to scan, rows of other headers.
    #[test]
    fn hinted_lookups_find_what_get_finds() {
        let hint = KeyHint::default();
        let large: Map<String, Value> = (0..HINTED + 1)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect();
        let records = [
            json!({"a": 1, "b": 2, "c": 3}),
            json!({"a": 1, "b": 2, "c": 3}),
            json!({"c": 30, "a": 10}),
            json!({"a": 100}),
            json!({"b": 200, "c": 300}),
            json!([1, 2]),
            Value::Object(large),
        ];
        // The same records as rows of their own headers, and one more header.
        let mut rows: Vec<RecordValue> = records
            .iter()
            .filter_map(|v| v.as_object())
            .map(|m| RecordValue::Row(Row::from_object(m)))
            .collect();
        rows.push(row());
        for name in ["c", "a", "b", "k64", "zz"] {
            for v in records.iter().chain(records.iter().rev()) {
                let r = RecordRef::Json(v);
                assert_eq!(r.get_hinted(name, &hint), r.get(name), "{name} in {v}");
            }
            let row_hint = KeyHint::default();
            for row in rows.iter().chain(rows.iter().rev()) {
                let r = row.as_ref();
                assert_eq!(
                    r.get_hinted(name, &row_hint),
                    r.get(name),
                    "{name} in {row:?}"
                );
            }
        }
    }

    #[test]
    fn small_and_large_objects_find_the_same_keys() {
        for n in [0, 1, 2, SCANNED, SCANNED + 1, 40] {
            let object: Map<String, Value> = (0..n).map(|i| (format!("k{i}"), json!(i))).collect();
            for i in 0..n + 2 {
                let key = format!("k{i}");
                assert_eq!(
                    object_get(&object, &key),
                    object.get(&key),
                    "{n} keys, {key}"
                );
            }
        }
    }

    #[test]
    fn a_row_is_the_object_of_its_header_in_order() {
        let r = row();
        assert_eq!(r.get("a"), Some(&json!(["x", "y"])));
        assert_eq!(r["b"], "1");
        assert_eq!(r["c"], Value::Null);
        let json = r.to_json();
        assert_eq!(
            serde_json::to_string(&json).unwrap(),
            r#"{"b":"1","a":["x","y"]}"#
        );
        assert_eq!(
            serde_json::to_string(&r.as_ref()).unwrap(),
            serde_json::to_string(&json).unwrap()
        );
        assert_eq!(r, json);
        assert_ne!(r, json!({"b": "1"}));
        assert_eq!(r.clone().into_json(), json);
        let names: Vec<_> = r.as_ref().entries().map(|(k, _)| k).collect();
        assert_eq!(names, ["b", "a"]);
    }
}
