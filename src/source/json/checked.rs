//! A JSON value read with its repeated keys noticed.
//!
//! serde_json keeps the last of two equal keys in an object without a word, so the
//! earlier value would vanish from the migration unseen. This reads the same
//! `serde_json::Value` and remembers the first repeated key (with its path), which the
//! record then carries as a warning.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Reads one value; `repeated` receives the first key that appears twice in one object,
/// if any. (Only the key: building every key's path would allocate for every field of
/// every record.)
pub(super) struct Checked<'a> {
    pub repeated: &'a mut Option<String>,
    /// Keys to make room for if the value is an object: the previous record's count, as
    /// a document's records are alike, so a record's map is not grown and rehashed key by
    /// key. Nested values start empty.
    pub capacity: usize,
}

impl<'de> DeserializeSeed<'de> for Checked<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let seed = Checked {
                repeated: &mut *self.repeated,
                capacity: 0,
            };
            match seq.next_element_seed(seed)? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::with_capacity(self.capacity);
        read_entries(&mut out, &mut map, self.repeated)?;
        Ok(Value::Object(out))
    }
}

/// Reads the rest of an object's entries into `out`, noticing a repeated key.
pub(super) fn read_entries<'de, A: MapAccess<'de>>(
    out: &mut Map<String, Value>,
    map: &mut A,
    repeated: &mut Option<String>,
) -> Result<(), A::Error> {
    while let Some(key) = map.next_key::<String>()? {
        let value = map.next_value_seed(Checked {
            repeated: &mut *repeated,
            capacity: 0,
        })?;
        insert(out, key, value, repeated);
    }
    Ok(())
}

/// Inserts as `serde_json::Map` does (a repeated key keeps its place and takes the last
/// value), noting the first repeated key.
pub(super) fn insert(
    out: &mut Map<String, Value>,
    key: String,
    value: Value,
    repeated: &mut Option<String>,
) {
    // One hash per key: the entry both notices a repeat and stores the value.
    match out.entry(key) {
        serde_json::map::Entry::Vacant(e) => {
            e.insert(value);
        }
        serde_json::map::Entry::Occupied(mut e) => {
            if repeated.is_none() {
                *repeated = Some(e.key().clone());
            }
            e.insert(value);
        }
    }
}

/// Parses one JSON text, noticing a repeated key.
pub(super) fn from_slice(text: &[u8]) -> serde_json::Result<(Value, Option<String>)> {
    let mut repeated = None;
    let value = parse_text(
        text,
        Checked {
            repeated: &mut repeated,
            capacity: 0,
        },
    )?;
    Ok((value, repeated))
}

/// Parses one whole JSON text with `visitor`.
///
/// Text that is valid UTF-8 as a whole (nearly every line) is checked once and parsed as
/// a `str`: parsed from bytes, serde_json checks each string on its own, and those many
/// short checks were a tenth of the parse. Text that is not is parsed from bytes, so its
/// error is serde_json's, naming where the bad byte is.
pub(super) fn parse_text<T, V>(text: &[u8], visitor: V) -> serde_json::Result<T>
where
    V: for<'de> Visitor<'de, Value = T>,
{
    match std::str::from_utf8(text) {
        Ok(s) => parse(&mut serde_json::Deserializer::from_str(s), visitor),
        Err(_) => parse(&mut serde_json::Deserializer::from_slice(text), visitor),
    }
}

fn parse<'de, R: serde_json::de::Read<'de>, V: Visitor<'de>>(
    de: &mut serde_json::Deserializer<R>,
    visitor: V,
) -> serde_json::Result<V::Value> {
    let value = de.deserialize_any(visitor)?;
    de.end()?;
    Ok(value)
}

/// The warning a record with a repeated key carries.
pub(super) fn repeated_message(key: &str) -> String {
    format!("key `{key}` appears twice in one object of the record; only its last value is read")
}

#[cfg(test)]
mod tests {
    use super::super::test_files::doc;
    use super::*;

    /// Parsed as a checked `str` or as bytes, a text gives the same value or error.
    #[test]
    fn text_parses_as_its_bytes_do() {
        let texts: [&[u8]; 5] = [
            br#"{"a":"\u00e9 \n \"q\"","b":[1,-2,3.5e3,{"c":null,"c":true}]}"#,
            "{\"\u{e9}t\u{e9}\": \"\u{1f600}\"}".as_bytes(),
            br#"{"a": "x" "#,
            br#"{"a":"\ud800"} trailing"#,
            b"{\"a\":\"\xff\"}",
        ];
        for text in texts {
            let as_text = from_slice(text).map_err(|e| e.to_string());
            let mut repeated = None;
            let as_bytes = parse(
                &mut serde_json::Deserializer::from_slice(text),
                Checked {
                    repeated: &mut repeated,
                    capacity: 0,
                },
            )
            .map(|v| (v, repeated))
            .map_err(|e| e.to_string());
            assert_eq!(as_text, as_bytes, "{}", String::from_utf8_lossy(text));
        }
        let e = from_slice(b"{\"a\":\"\xff\"}").unwrap_err();
        assert!(e.to_string().contains("invalid unicode"), "{e}");
    }

    /// Issue 11.10: a repeated key silently kept the last value; the record now says so.
    #[test]
    fn a_repeated_key_is_noticed() {
        let (v, repeated) =
            from_slice(br#"{"a": 1, "b": {"c": 1, "c": 2}, "d": [{"e": 1}]}"#).unwrap();
        assert_eq!(v["b"]["c"], 2);
        assert_eq!(repeated.as_deref(), Some("c"));
        let (_, repeated) = from_slice(br#"{"a": 1, "b": [1, 2.5, null, true, "x"]}"#).unwrap();
        assert_eq!(repeated, None);
        let items = doc("[{\"id\": 1, \"id\": 2}, {\"id\": 3}]", None).unwrap();
        let first = items[0].as_ref().unwrap();
        assert_eq!(first.value["id"], 2);
        assert!(
            first
                .warning
                .as_deref()
                .unwrap()
                .starts_with("key `id` appears twice"),
            "{:?}",
            first.warning
        );
        assert!(items[1].as_ref().unwrap().warning.is_none());
    }
}
