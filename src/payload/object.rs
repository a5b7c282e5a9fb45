//! The create payload of one ticket: a JSON object built key by key for every record.
//!
//! It was a `serde_json::Map`, which allocates each key and hashes it with SipHash on
//! every insert and lookup: 7% of a CSV dry run's CPU time for objects of fifteen
//! keys that are only built, read a few times and written out. Here the keys are kept in
//! order in a list, the fixed ones (`subject`, `html`, ...) not allocated at all, and
//! found by comparing them, which costs less than one hash at this size.

use std::borrow::Cow;
use std::fmt;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value as Json};

/// The exact JSON object sent to `POST tickets/` for one ticket, its keys in the order
/// they were first set.
#[derive(Clone, Default)]
pub struct TicketPayload {
    entries: Vec<(Cow<'static, str>, Json)>,
}

impl TicketPayload {
    pub(crate) fn with_capacity(n: usize) -> TicketPayload {
        TicketPayload {
            entries: Vec::with_capacity(n),
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k == key)
    }

    /// Sets `key`, in its place if it was set before (as a map does).
    pub(crate) fn insert(&mut self, key: Cow<'static, str>, value: Json) {
        match self.position(&key) {
            Some(i) => self.entries[i].1 = value,
            None => self.entries.push((key, value)),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Json> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        self.position(key).map(|i| &mut self.entries[i].1)
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Json)> {
        self.entries.iter().map(|(k, v)| (&**k, v))
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Json)> {
        self.entries.iter_mut().map(|(k, v)| (&**k, v))
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// A copy as a `serde_json` object, in the same order.
    pub fn to_map(&self) -> Map<String, Json> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}

impl From<Map<String, Json>> for TicketPayload {
    fn from(map: Map<String, Json>) -> TicketPayload {
        TicketPayload {
            entries: map.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        }
    }
}

/// Equal when they hold the same keys with the same values, in any order (as objects
/// compare).
impl PartialEq for TicketPayload {
    fn eq(&self, other: &TicketPayload) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

/// Shown as the object it is.
impl fmt::Debug for TicketPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for TicketPayload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Built key by key, it is the object a `serde_json::Map` would have been: a key set
    /// again keeps its place, and it serialises, compares and shows alike.
    #[test]
    fn behaves_as_the_map_it_replaced() {
        let mut p = TicketPayload::with_capacity(2);
        let mut m = Map::new();
        for (k, v) in [
            ("subject", json!("Hi")),
            ("t-cf-7", json!(3)),
            ("subject", json!("Hello")),
            ("html", json!("<p>x</p>")),
        ] {
            let key: Cow<'static, str> = if k.starts_with("t-cf") {
                k.to_string().into()
            } else {
                k.into()
            };
            p.insert(key, v.clone());
            m.insert(k.to_string(), v);
        }
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            serde_json::to_string(&m).unwrap()
        );
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"subject":"Hello","t-cf-7":3,"html":"<p>x</p>"}"#
        );
        assert_eq!(format!("{p:?}"), format!("{m:?}"));
        assert_eq!(p.to_map(), m);
        assert_eq!(TicketPayload::from(m.clone()), p);
        assert_eq!(p.get("t-cf-7"), Some(&json!(3)));
        assert!(p.contains_key("html") && !p.contains_key("text"));
        if let Some(Json::String(s)) = p.get_mut("html") {
            s.push('!');
        }
        assert_eq!(p.get("html"), Some(&json!("<p>x</p>!")));
        assert_ne!(TicketPayload::from(m), p);
        let mut reordered = TicketPayload::default();
        for (k, v) in p.iter().collect::<Vec<_>>().into_iter().rev() {
            reordered.insert(k.to_string().into(), v.clone());
        }
        assert_eq!(reordered, p);
        assert_eq!(p.len(), 3);
    }
}
