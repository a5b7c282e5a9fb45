//! Template results as payload values: strings and lists of strings.
//!
//! A template gives a minijinja value of any type; the payload takes strings (lists
//! comma-joined) and lists (strings split on commas), rendered here the same way for the
//! fast path and for minijinja.

use minijinja::value::Value;

/// Renders a value the way it would appear in a payload string: undefined and none are
/// empty, lists are comma-joined.
pub fn value_to_string(v: &Value) -> String {
    if v.is_undefined() || v.is_none() {
        return String::new();
    }
    if let Some(s) = v.as_str() {
        return s.to_string();
    }
    if v.kind() == minijinja::value::ValueKind::Seq
        && let Ok(iter) = v.try_iter()
    {
        return iter
            .map(|x| value_to_string(&x))
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(",");
    }
    v.to_string()
}

/// A value as a list of strings: lists item by item, strings split on commas.
pub fn value_to_list(v: &Value) -> Vec<String> {
    if v.is_undefined() || v.is_none() {
        return vec![];
    }
    if v.kind() == minijinja::value::ValueKind::Seq
        && let Ok(iter) = v.try_iter()
    {
        return iter
            .map(|x| value_to_string(&x).trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    value_to_string(v)
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

pub(super) fn is_empty(v: &Value) -> bool {
    v.is_undefined() || v.is_none() || v.as_str().is_some_and(|s| s.trim().is_empty())
}
