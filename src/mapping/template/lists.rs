//! Filters that take values apart or look them up: `split` a cell into a list, `field`
//! picks one entry of a Zendesk-style `[{id, value}]` list, `lookup` reads a side file.

use minijinja::value::Value;
use minijinja::{Error, ErrorKind, State};

use super::value::value_to_string;

/// `"a; b;c" | split(';')` → `["a", "b", "c"]` (trimmed, empty parts dropped);
/// `split(';', 2)` splits at most twice (Jira's `date;author;body` comment cells).
pub(super) fn filter_split(value: Value, sep: Option<String>, max: Option<usize>) -> Value {
    split_value(&value, sep.as_deref(), max)
}

/// The `split` filter; shared with the fast path.
pub(crate) fn split_value(value: &Value, sep: Option<&str>, max: Option<usize>) -> Value {
    if value.kind() == minijinja::value::ValueKind::Seq {
        return value.clone();
    }
    Value::from(split_parts(&value_to_string(value), sep, max))
}

/// The parts `split` makes of a string.
pub(crate) fn split_parts(s: &str, sep: Option<&str>, max: Option<usize>) -> Vec<String> {
    let sep = sep.unwrap_or(",");
    match max {
        Some(n) => s.splitn(n + 1, sep).map(|p| p.trim().to_string()).collect(),
        None => s
            .split(sep)
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
    }
}

/// `custom_fields | field(360001)`: the value of a Zendesk-style `[{id, value}]` list.
pub(super) fn filter_field(value: Value, id: Value) -> Value {
    field_value(&value, &value_to_string(&id))
}

/// The `field` filter with the wanted id as a string; shared with the fast path.
pub(crate) fn field_value(value: &Value, want: &str) -> Value {
    if let Ok(iter) = value.try_iter() {
        for item in iter {
            if let Ok(item_id) = item.get_attr("id")
                && value_to_string(&item_id) == want
            {
                return item.get_attr("value").unwrap_or(Value::UNDEFINED);
            }
        }
    }
    Value::UNDEFINED
}

/// `requester_id | lookup('users', 'email')`: a lookup in a side file.
pub(super) fn filter_lookup(
    state: &State,
    key: Value,
    table: String,
    attr: Option<String>,
) -> Result<Value, Error> {
    let t = state.lookup(&table).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("no side file named {table:?}"),
        )
    })?;
    let found = t.get_item(&key).unwrap_or(Value::UNDEFINED);
    Ok(match attr {
        Some(a) => found.get_attr(&a).unwrap_or(Value::UNDEFINED),
        None => found,
    })
}
