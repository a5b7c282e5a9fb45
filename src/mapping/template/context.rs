//! Records as templates see them: the record's own fields plus the side files.
//!
//! Side files are lookup tables by index (`users[requester_id].email`) and per-ticket
//! joined lists (`comments[0]`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};

use super::Expr;
use super::value::value_to_string;
use crate::source::{RecordRef, SideIndex, key_string};

/// The side files of a run, by name.
#[derive(Default)]
pub struct Sides {
    pub tables: HashMap<String, Arc<SideTable>>,
    /// Joined side files with the expression that gives a ticket's key.
    pub joins: HashMap<String, (Arc<SideTable>, Arc<Expr>)>,
}

impl fmt::Debug for Sides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sides")
            .field("tables", &self.tables.keys().collect::<Vec<_>>())
            .field("joins", &self.joins.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A side file seen from templates. `None` index: an optional file that is absent.
///
/// [`SideIndex`] locks internally, so one table is shared by all builder threads as it is.
pub struct SideTable {
    pub name: String,
    pub index: Option<SideIndex>,
}

impl fmt::Debug for SideTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<side file {}>", self.name)
    }
}

impl SideTable {
    fn first(&self, key: &str) -> Value {
        let Some(index) = &self.index else {
            return Value::UNDEFINED;
        };
        match index.first(key) {
            Ok(Some(v)) => Value::from_serialize(&v),
            _ => Value::UNDEFINED,
        }
    }

    pub(crate) fn all(&self, key: &str) -> Value {
        let Some(index) = &self.index else {
            return Value::from(Vec::<Value>::new());
        };
        match index.get(key) {
            Ok(list) => Value::from_serialize(&list),
            Err(_) => Value::from(Vec::<Value>::new()),
        }
    }
}

impl Object for SideTable {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let json = serde_json::to_value(key).ok()?;
        let key = key_string(&json)?;
        let v = self.first(&key);
        if v.is_undefined() { None } else { Some(v) }
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }
}

/// A source record about to be built: the record as read, and its template context,
/// created only if a template off the fast path needs it (converting the whole record into
/// a minijinja value is the largest single cost of a record otherwise).
pub struct RecordInput<'a> {
    pub(super) record: RecordRef<'a>,
    pub(super) sides: &'a Arc<Sides>,
    full: std::sync::OnceLock<Value>,
}

impl<'a> RecordInput<'a> {
    pub fn new(record: impl Into<RecordRef<'a>>, sides: &'a Arc<Sides>) -> Self {
        RecordInput {
            record: record.into(),
            sides,
            full: std::sync::OnceLock::new(),
        }
    }

    /// The record as templates see it (with `row` and the side files).
    pub fn value(&self) -> &Value {
        self.full.get_or_init(|| {
            Value::from_dyn_object(RecordCtx::new(
                Value::from_serialize(self.record),
                self.sides.clone(),
            ))
        })
    }
}

/// One source record plus the side files, as templates see it.
pub struct RecordCtx {
    record: Value,
    sides: Arc<Sides>,
    extra: Vec<(String, Value)>,
    joined: Mutex<HashMap<String, Value>>,
}

impl fmt::Debug for RecordCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.record)
    }
}

impl RecordCtx {
    pub fn new(record: Value, sides: Arc<Sides>) -> Arc<RecordCtx> {
        Arc::new(RecordCtx {
            record,
            sides,
            extra: vec![],
            joined: Mutex::new(HashMap::new()),
        })
    }

    /// A context whose own fields are `record`, with extra names (`ticket`, `author`).
    pub fn with_extra(
        record: Value,
        sides: Arc<Sides>,
        extra: Vec<(String, Value)>,
    ) -> Arc<RecordCtx> {
        Arc::new(RecordCtx {
            record,
            sides,
            extra,
            joined: Mutex::new(HashMap::new()),
        })
    }

    pub fn record(&self) -> &Value {
        &self.record
    }

    fn joined(&self, name: &str) -> Option<Value> {
        let (table, key_expr) = self.sides.joins.get(name)?;
        if let Ok(cache) = self.joined.lock()
            && let Some(v) = cache.get(name)
        {
            return Some(v.clone());
        }
        // The join key is read from the record alone (with `row`), never from other side
        // files, so joins cannot recurse.
        let plain = Value::from_dyn_object(RecordCtx::new(
            self.record.clone(),
            Arc::new(Sides::default()),
        ));
        let key = key_expr.eval(&plain).ok()?;
        let key = value_to_string(&key);
        let list = if key.is_empty() {
            Value::from(Vec::<Value>::new())
        } else {
            table.all(&key)
        };
        if let Ok(mut cache) = self.joined.lock() {
            cache.insert(name.to_string(), list.clone());
        }
        Some(list)
    }
}

impl Object for RecordCtx {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        if name == "row" || name == "record" {
            return Some(self.record.clone());
        }
        if let Some((_, v)) = self.extra.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        if let Some(v) = self.joined(name) {
            return Some(v);
        }
        if let Some(t) = self.sides.tables.get(name) {
            return Some(Value::from_dyn_object(t.clone()));
        }
        self.record
            .get_attr(name)
            .ok()
            .filter(|v| !v.is_undefined())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<Value> = self
            .extra
            .iter()
            .map(|(k, _)| Value::from(k.as_str()))
            .collect();
        if let Ok(iter) = self.record.try_iter() {
            keys.extend(iter);
        }
        Enumerator::Values(keys)
    }
}
