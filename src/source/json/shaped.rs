//! An NDJSON line's object read as a row of the keys the line before it had.
//!
//! The records of an export have the same keys in the same order, line after line. Read
//! into a `serde_json::Map`, each line copied every key into a `String` and hashed it into
//! the map (SipHash), a seventh of an NDJSON dry run. Here each key is compared with the
//! name the previous line had at that place, without being copied, and the values become
//! the cells of a [`Row`] that shares the previous line's [`Header`], as a CSV file's rows
//! share theirs. A line whose keys differ gets a header of its own, which the lines after
//! it are then compared with.
//!
//! Values below the top level are read by [`Checked`], or into the cells of the row the
//! thread was last done with ([`InPlace`], reusing what that row allocated), and a repeated
//! key at any level is noticed as it is there: the record keeps the key's first place and
//! its last value, as a `serde_json::Map` would.

use std::fmt;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::checked::{Checked, parse_text};
use super::in_place::InPlace;
use crate::source::RecordValue;
use crate::source::record::{Header, Row};

/// The keys of the last object read on one thread, which the next is compared with.
#[derive(Default)]
pub(crate) struct Shape {
    header: Option<Arc<Header>>,
    /// The cells of the last row this thread was done with, which the next line is read
    /// into (see [`super::in_place`]).
    spare: Vec<Value>,
}

impl Shape {
    /// Keeps a record the thread is done with for the next line to be read into.
    pub(crate) fn recycle(&mut self, value: RecordValue) {
        if let RecordValue::Row(row) = value
            && self.spare.is_empty()
        {
            self.spare = row.into_cells();
        }
    }
}

/// A line's value: a row for an object, any other value as it is (for its error).
pub(super) enum Shaped {
    Row(Row),
    Other(Value),
}

/// Parses one JSON text as [`super::checked::from_slice`] does, an object into a row.
pub(super) fn from_slice(
    text: &[u8],
    shape: &mut Shape,
) -> serde_json::Result<(Shaped, Option<String>)> {
    let mut repeated = None;
    let value = parse_text(
        text,
        Top {
            shape,
            repeated: &mut repeated,
        },
    )?;
    Ok((value, repeated))
}

struct Top<'a> {
    shape: &'a mut Shape,
    repeated: &'a mut Option<String>,
}

impl Top<'_> {
    fn checked(&mut self) -> Checked<'_> {
        Checked {
            repeated: &mut *self.repeated,
            capacity: 0,
        }
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Shaped;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    // Any value but an object is read as `Checked` reads it, to be reported by its kind.
    fn visit_bool<E: de::Error>(mut self, v: bool) -> Result<Shaped, E> {
        self.checked().visit_bool(v).map(Shaped::Other)
    }
    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<Shaped, E> {
        self.checked().visit_i64(v).map(Shaped::Other)
    }
    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<Shaped, E> {
        self.checked().visit_u64(v).map(Shaped::Other)
    }
    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<Shaped, E> {
        self.checked().visit_f64(v).map(Shaped::Other)
    }
    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<Shaped, E> {
        self.checked().visit_str(v).map(Shaped::Other)
    }
    fn visit_unit<E: de::Error>(mut self) -> Result<Shaped, E> {
        self.checked().visit_unit().map(Shaped::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, seq: A) -> Result<Shaped, A::Error> {
        self.checked().visit_seq(seq).map(Shaped::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shaped, A::Error> {
        let expected = self.shape.header.clone();
        let expected_names = expected.as_deref().map_or(&[][..], Header::names);
        // Read into the last row's cells where there are some.
        let mut cells = std::mem::take(&mut self.shape.spare);
        cells.reserve(expected_names.len().saturating_sub(cells.len()));
        let mut read = 0;
        // The names read so far, once a key differs from the previous line's.
        let mut names: Option<Vec<String>> = None;
        loop {
            let want = match names {
                None => expected_names.get(read).map(String::as_str),
                Some(_) => None,
            };
            let Some(key) = map.next_key_seed(KeySeed { want })? else {
                break;
            };
            // A cell past the last row's starts as null, which reads as `Checked` reads.
            if read == cells.len() {
                cells.push(Value::Null);
            }
            map.next_value_seed(InPlace {
                slot: &mut cells[read],
                repeated: &mut *self.repeated,
            })?;
            if let Key::Other(key) = key {
                names
                    .get_or_insert_with(|| expected_names[..read].to_vec())
                    .push(key);
            }
            read += 1;
        }
        cells.truncate(read);
        let header = match (names, &expected) {
            (None, Some(header)) if cells.len() == header.names().len() => header.clone(),
            (names, _) => {
                let names = names.unwrap_or_else(|| expected_names[..cells.len()].to_vec());
                let (names, folded) = fold_repeats(names, cells, self.repeated);
                cells = folded;
                let header = Arc::new(Header::new(names));
                self.shape.header = Some(header.clone());
                header
            }
        };
        Ok(Shaped::Row(Row::new(header, cells)))
    }
}

/// Keys made distinct as a `serde_json::Map` makes them: a repeated key keeps its first
/// place and takes its last value, and is noted in `repeated` if it is the first.
fn fold_repeats(
    names: Vec<String>,
    cells: Vec<Value>,
    repeated: &mut Option<String>,
) -> (Vec<String>, Vec<Value>) {
    let mut at: FxHashMap<&str, usize> = FxHashMap::default();
    let mut place = Vec::with_capacity(names.len());
    let mut distinct = 0;
    for name in &names {
        let next = at.len();
        let i = *at.entry(name.as_str()).or_insert(next);
        if i == next {
            distinct += 1;
        } else if repeated.is_none() {
            *repeated = Some(name.clone());
        }
        place.push(i);
    }
    if distinct == names.len() {
        return (names, cells);
    }
    let mut out_names = Vec::with_capacity(distinct);
    let mut out_cells: Vec<Value> = Vec::with_capacity(distinct);
    for ((name, cell), i) in names.into_iter().zip(cells).zip(place) {
        if i == out_cells.len() {
            out_names.push(name);
            out_cells.push(cell);
        } else {
            out_cells[i] = cell;
        }
    }
    (out_names, out_cells)
}

/// A key: the one expected at its place, compared where it lies in the text, or another,
/// copied.
pub(super) enum Key {
    Expected,
    Other(String),
}

pub(super) struct KeySeed<'a> {
    pub want: Option<&'a str>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Key, E> {
        Ok(match self.want {
            Some(want) if want == key => Key::Expected,
            _ => Key::Other(key.to_string()),
        })
    }

    fn visit_string<E>(self, key: String) -> Result<Key, E> {
        Ok(match self.want {
            Some(want) if want == key => Key::Expected,
            _ => Key::Other(key),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(text: &str, shape: &mut Shape) -> (Value, Option<String>, Option<Arc<Header>>) {
        let (row, repeated) = read_row(text, shape);
        let header = shape.header.clone();
        (RecordValue::Row(row).into_json(), repeated, header)
    }

    fn read_row(text: &str, shape: &mut Shape) -> (Row, Option<String>) {
        let (shaped, repeated) = from_slice(text.as_bytes(), shape).unwrap();
        let Shaped::Row(row) = shaped else {
            panic!("{text} is an object")
        };
        (row, repeated)
    }

    /// Whatever the line before it had, a line reads as the object serde_json makes of it,
    /// in its order, with the same repeated key noticed.
    #[test]
    fn every_line_reads_as_its_object() {
        let lines = [
            r#"{"a":1,"b":{"c":2},"d":[1,"x"]}"#,
            r#"{"a":10,"b":{"c":20},"d":[]}"#,
            r#"{"a":1,"b":2}"#,
            r#"{"a":1,"b":2,"e":3}"#,
            r#"{"b":1,"a":2,"e":3}"#,
            r#"{}"#,
            r#"{"a":1,"a":2,"b":3,"a":4}"#,
            r#"{"a":1,"b":{"c":1,"c":2}}"#,
            r#"{"a":1,"b":2,"e":3}"#,
            r#"{"a\u0062":1,"b":2,"e":3}"#,
        ];
        let mut shape = Shape::default();
        let mut recycled = Shape::default();
        for text in lines.iter().chain(lines.iter().rev()) {
            let (object, repeated, _) = read(text, &mut shape);
            // Read into the cells of the line before, the same.
            let (row, again) = read_row(text, &mut recycled);
            let row = RecordValue::Row(row);
            assert_eq!(row, object, "{text} read into the row before");
            assert_eq!(
                serde_json::to_string(&row.as_ref()).unwrap(),
                serde_json::to_string(&object).unwrap(),
                "order of {text} read into the row before"
            );
            assert_eq!(again, repeated, "{text} read into the row before");
            recycled.recycle(row);
            let (want, want_repeated) = super::super::checked::from_slice(text.as_bytes())
                .map_err(|e| e.to_string())
                .unwrap();
            assert_eq!(object, want, "{text}");
            assert_eq!(
                serde_json::to_string(&object).unwrap(),
                serde_json::to_string(&want).unwrap(),
                "order of {text}"
            );
            assert_eq!(repeated, want_repeated, "{text}");
        }
    }

    /// Lines with the keys of the line before share its header; one that differs makes
    /// the header the next lines share.
    #[test]
    fn alike_lines_share_one_header() {
        let mut shape = Shape::default();
        let (_, _, first) = read(r#"{"id":1,"s":"x"}"#, &mut shape);
        let (_, _, same) = read(r#"{"id":2,"s":"y"}"#, &mut shape);
        assert!(Arc::ptr_eq(first.as_ref().unwrap(), same.as_ref().unwrap()));
        let (_, _, other) = read(r#"{"id":3}"#, &mut shape);
        assert!(!Arc::ptr_eq(
            first.as_ref().unwrap(),
            other.as_ref().unwrap()
        ));
        let (_, _, again) = read(r#"{"id":4}"#, &mut shape);
        assert!(Arc::ptr_eq(
            other.as_ref().unwrap(),
            again.as_ref().unwrap()
        ));
    }

    #[test]
    fn other_values_are_kept_for_their_error() {
        let mut shape = Shape::default();
        for (text, want) in [
            ("[1,{}]", json!([1, {}])),
            ("3", json!(3)),
            ("null", json!(null)),
        ] {
            let (shaped, _) = from_slice(text.as_bytes(), &mut shape).unwrap();
            let Shaped::Other(v) = shaped else {
                panic!("{text} is no object")
            };
            assert_eq!(v, want);
        }
    }
}
