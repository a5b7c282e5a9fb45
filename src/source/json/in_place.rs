//! A JSON value read into the value the previous line left, reusing what it allocated.
//!
//! A builder thread parses a line, builds its ticket and is done with the record before
//! the next line. Read afresh, every line allocated each of its strings, lists and nested
//! objects, the `{id, value}` items of a custom-field list each a `serde_json::Map` with
//! two key `String`s hashed into it, and freed them all a moment later. Read into the last
//! line's value (which cut an NDJSON dry run's instructions by 14%), a
//! string is copied into the last one's buffer, a list's items into its items, and an
//! object whose keys are the last one's, in order, has each key compared where it lies and
//! its value read into the old one: nothing is allocated, hashed or freed.
//!
//! Whatever the old value was, the result is exactly the value [`Checked`] would read,
//! with the same repeated key noticed: an object whose keys differ from the old one's is
//! finished as `Checked` finishes one.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::checked::{Checked, read_entries};
use super::shaped::{Key, KeySeed};

/// Reads one value into `slot`, as [`Checked`] would read it.
pub(super) struct InPlace<'a> {
    pub slot: &'a mut Value,
    pub repeated: &'a mut Option<String>,
}

impl InPlace<'_> {
    fn checked(&mut self) -> Checked<'_> {
        Checked {
            repeated: &mut *self.repeated,
            capacity: 0,
        }
    }

    fn set<E>(self, v: Result<Value, E>) -> Result<(), E> {
        *self.slot = v?;
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for InPlace<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for InPlace<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(mut self, v: bool) -> Result<(), E> {
        let v = self.checked().visit_bool(v);
        self.set(v)
    }
    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<(), E> {
        let v = self.checked().visit_i64(v);
        self.set(v)
    }
    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<(), E> {
        let v = self.checked().visit_u64(v);
        self.set(v)
    }
    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<(), E> {
        let v = self.checked().visit_f64(v);
        self.set(v)
    }
    fn visit_none<E>(self) -> Result<(), E> {
        self.set(Ok(Value::Null))
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.set(Ok(Value::Null))
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        match self.slot {
            Value::String(s) => {
                s.clear();
                s.push_str(v);
                Ok(())
            }
            slot => {
                *slot = Value::String(v.to_string());
                Ok(())
            }
        }
    }
    fn visit_string<E>(self, v: String) -> Result<(), E> {
        self.set(Ok(Value::String(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let Value::Array(items) = &mut *self.slot else {
            let v = self.checked().visit_seq(seq);
            return self.set(v);
        };
        // Items past the old ones start as null, which reads as `Checked` reads.
        let mut n = 0;
        loop {
            if n == items.len() {
                items.push(Value::Null);
            }
            let seed = InPlace {
                slot: &mut items[n],
                repeated: &mut *self.repeated,
            };
            if seq.next_element_seed(seed)?.is_none() {
                items.truncate(n);
                return Ok(());
            }
            n += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let Value::Object(object) = &mut *self.slot else {
            let v = self.checked().visit_map(map);
            return self.set(v);
        };
        // The old object's keys, in order, while the new one's match them.
        let mut read = 0;
        let ended = {
            let mut old = object.iter_mut();
            loop {
                let Some((want, slot)) = old.next() else {
                    break Ended::Longer;
                };
                match map.next_key_seed(KeySeed { want: Some(want) })? {
                    None => break Ended::Shorter,
                    Some(Key::Expected) => {
                        map.next_value_seed(InPlace {
                            slot,
                            repeated: &mut *self.repeated,
                        })?;
                        read += 1;
                    }
                    Some(Key::Other(key)) => break Ended::Differs(key),
                }
            }
        };
        match ended {
            // Keys after the old ones: read on into the object, as `Checked` reads them.
            Ended::Longer => read_entries(object, &mut map, self.repeated),
            Ended::Shorter => {
                keep_first(object, read);
                Ok(())
            }
            Ended::Differs(key) => {
                keep_first(object, read);
                let value = map.next_value_seed(Checked {
                    repeated: &mut *self.repeated,
                    capacity: 0,
                })?;
                // The keys so far were the old object's, so distinct: this one may repeat
                // one of them.
                super::checked::insert(object, key, value, self.repeated);
                read_entries(object, &mut map, self.repeated)
            }
        }
    }
}

/// How an object's keys ended against the old object's.
enum Ended {
    /// It has more keys (or as many, each the old one's).
    Longer,
    /// It ended before the old one's keys did.
    Shorter,
    /// Its key after the ones read differs from the old one's there.
    Differs(String),
}

/// Drops the keys after the first `n`, keeping the order.
fn keep_first(object: &mut Map<String, Value>, n: usize) {
    if n >= object.len() {
        return;
    }
    let mut i = 0;
    object.retain(|_, _| {
        i += 1;
        i <= n
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_place(old: &Value, text: &str) -> Result<(Value, Option<String>), String> {
        let mut slot = old.clone();
        let mut repeated = None;
        let mut de = serde_json::Deserializer::from_str(text);
        InPlace {
            slot: &mut slot,
            repeated: &mut repeated,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| e.to_string())?;
        Ok((slot, repeated))
    }

    /// Each text read into each other's value (and into values of every kind) is what
    /// `Checked` reads from it alone: the same value, in the same order, with the same
    /// repeated key, and the same error.
    #[test]
    fn a_value_read_in_place_is_the_value_read_afresh() {
        let texts = [
            r#"{"a":1,"b":{"c":2},"d":[1,"x"]}"#,
            r#"{"a":"s","b":{"c":"t","e":[{"id":1,"value":"v"}]},"d":[2]}"#,
            r#"{"a":"s","b":{"c":"t"},"d":[]}"#,
            r#"{"b":{"c":2},"a":1}"#,
            r#"{"a":1}"#,
            r#"{"a":1,"b":2,"a":3}"#,
            r#"{"a":1,"b":{"c":1,"d":2,"c":3}}"#,
            r#"{"a":1,"b":{"x":1,"c":1,"x":2}}"#,
            r#"{"a":1,"b":{"c":1,"c":5}}"#,
            r#"{}"#,
            r#"[{"id":1,"value":"a"},{"id":2,"value":"b"},{"id":3,"value":null}]"#,
            r#"[{"id":1,"value":"a"},{"value":"b","id":2}]"#,
            r#"[{"id":1,"value":"a","id":4}]"#,
            r#"[]"#,
            r#"["x\n\u00e9",1.5,-2,true,null]"#,
            r#""text""#,
            r#"12"#,
            r#"null"#,
            r#"{"a":[1,2,3],"b":"\"q\""}"#,
            r#"{"a":[1,2,3],"b":"#,
            r#"{"a":1,"b":{"c":1}"#,
        ];
        for old_text in texts {
            let Ok((old, _)) = super::super::checked::from_slice(old_text.as_bytes()) else {
                continue;
            };
            for text in texts {
                let want =
                    super::super::checked::from_slice(text.as_bytes()).map_err(|e| e.to_string());
                let got = in_place(&old, text);
                match (&got, &want) {
                    (Ok((v, r)), Ok((w, wr))) => {
                        assert_eq!(v, w, "{text} into {old_text}");
                        assert_eq!(
                            serde_json::to_string(v).unwrap(),
                            serde_json::to_string(w).unwrap(),
                            "order of {text} into {old_text}"
                        );
                        assert_eq!(r, wr, "repeated key of {text} into {old_text}");
                    }
                    (Err(e), Err(we)) => assert_eq!(e, we, "{text} into {old_text}"),
                    _ => panic!("{text} into {old_text}: {got:?} against {want:?}"),
                }
            }
        }
    }
}
