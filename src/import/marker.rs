//! Finding a ticket again by the source-id marker written into it.
//!
//! HappyFox has no idempotency keys, so when a batch's answer is lost the only way to
//! know which of its tickets exist is to search for the marker each one carries (a text
//! custom field such as "Source ID", or a tag). The marker is read back from the payload
//! the journal stored, not re-rendered, so reconciliation looks for exactly what was sent.
//! Everything here is pure: the queries and the matching are unit-tested without a server.

use serde_json::Value;

use crate::mapping::Marker;

/// How tickets of this mapping are marked, reduced to what a search needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerKind {
    /// A text ticket custom field: its name (for the query) and id (for the payload key
    /// and for checking a hit).
    Field { name: String, id: u64 },
    /// A tag: the payload builder appends the marker tag last to `tags`.
    Tag,
}

impl MarkerKind {
    /// `None` when the mapping's marker cannot be searched (no marker, or a custom field
    /// the schema did not resolve): the import refuses to start, since an ambiguous batch
    /// could then never be reconciled.
    pub(crate) fn from_plan(marker: Option<&Marker>) -> Option<MarkerKind> {
        match marker? {
            Marker::CustomField { field, .. } => Some(MarkerKind::Field {
                name: field.name.clone(),
                id: field.id?,
            }),
            Marker::Tag(_) => Some(MarkerKind::Tag),
        }
    }

    /// The marker value of one payload, as sent.
    pub(crate) fn value_of(&self, payload: &Value) -> Option<String> {
        let value = match self {
            MarkerKind::Field { id, .. } => payload.get(format!("t-cf-{id}"))?.as_str()?,
            MarkerKind::Tag => payload.get("tags")?.as_str()?.rsplit(',').next()?,
        };
        let value = value.trim();
        (!value.is_empty()).then(|| value.to_owned())
    }

    /// The search query (`q`) for one marker value. `None` when the value cannot be
    /// quoted (HappyFox's query language has no escape for `"`): such a member must be
    /// checked by hand rather than guessed absent.
    pub(crate) fn query(&self, value: &str) -> Option<String> {
        if value.contains('"') {
            return None;
        }
        match self {
            MarkerKind::Field { name, .. } if !name.contains('"') => {
                Some(format!("\"{name}\":\"{value}\""))
            }
            MarkerKind::Field { .. } => None,
            MarkerKind::Tag => Some(format!("tag:\"{value}\"")),
        }
    }

    /// Whether a ticket from the search answer really carries this marker: search may be
    /// looser than equality (words, prefixes), and a wrong match would mark a record
    /// created that never was.
    pub fn matches(&self, value: &str, ticket: &Value) -> bool {
        match self {
            MarkerKind::Field { id, name } => ticket
                .get("custom_fields")
                .and_then(Value::as_array)
                .is_some_and(|fields| {
                    fields.iter().any(|f| {
                        let same_field = match f.get("id").and_then(Value::as_u64) {
                            Some(fid) => fid == *id,
                            None => f.get("name").and_then(Value::as_str) == Some(name),
                        };
                        same_field
                            && f.get("value")
                                .and_then(Value::as_str)
                                .is_some_and(|v| v.trim() == value)
                    })
                }),
            MarkerKind::Tag => ticket
                .get("tags")
                .and_then(Value::as_str)
                .is_some_and(|tags| tags.split(',').any(|t| t.trim() == value)),
        }
    }
}

impl MarkerKind {
    /// Every value a ticket (as a list or search answer shows it) could carry this
    /// marker as: the marker field's value, or each of its tags.
    pub(crate) fn values_in(&self, ticket: &Value) -> Vec<String> {
        match self {
            MarkerKind::Field { id, name } => ticket
                .get("custom_fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|f| match f.get("id").and_then(Value::as_u64) {
                    Some(fid) => fid == *id,
                    None => f.get("name").and_then(Value::as_str) == Some(name),
                })
                .filter_map(|f| f.get("value").and_then(Value::as_str))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect(),
            MarkerKind::Tag => ticket
                .get("tags")
                .and_then(Value::as_str)
                .into_iter()
                .flat_map(|tags| tags.split(','))
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect(),
        }
    }
}

/// The ticket carrying `value` in a search answer (`{page_info, data: [...]}`, or a bare
/// list), as `(id, display_id)`. Several hits (duplicates made outside this tool) resolve
/// to the oldest, the one a person would keep.
pub fn find(kind: &MarkerKind, value: &str, answer: &Value) -> Option<(u64, String)> {
    let list = match answer {
        Value::Array(items) => items,
        other => other.get("data")?.as_array()?,
    };
    list.iter()
        .filter(|t| kind.matches(value, t))
        .filter_map(|t| {
            let id = t.get("id")?.as_u64()?;
            let display = t
                .get("display_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            Some((id, display))
        })
        .min_by_key(|(id, _)| *id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field() -> MarkerKind {
        MarkerKind::Field {
            name: "Source ID".into(),
            id: 7,
        }
    }

    #[test]
    fn values_come_from_the_payload_as_sent() {
        let p = json!({"t-cf-7": " ZD-1 ", "tags": "vip,migrated-ZD-1"});
        assert_eq!(field().value_of(&p).as_deref(), Some("ZD-1"));
        assert_eq!(
            MarkerKind::Tag.value_of(&p).as_deref(),
            Some("migrated-ZD-1")
        );
        assert_eq!(field().value_of(&json!({"t-cf-8": "x"})), None);
        assert_eq!(field().value_of(&json!({"t-cf-7": ""})), None);
        assert_eq!(MarkerKind::Tag.value_of(&json!({"subject": "x"})), None);
    }

    #[test]
    fn queries_quote_names_and_values() {
        assert_eq!(
            field().query("ZD-1").as_deref(),
            Some(r#""Source ID":"ZD-1""#)
        );
        assert_eq!(
            MarkerKind::Tag.query("src-1").as_deref(),
            Some(r#"tag:"src-1""#)
        );
        assert_eq!(field().query("a\"b"), None);
    }

    #[test]
    fn only_an_exact_marker_is_a_hit() {
        let answer = json!({"page_info": {}, "data": [
            {"id": 5, "display_id": "#5", "tags": "a,ZD-10", "custom_fields": [{"id": 7, "name": "Source ID", "value": "ZD-10"}]},
            {"id": 9, "display_id": "#9", "tags": "ZD-1", "custom_fields": [{"id": 8, "name": "Other", "value": "ZD-1"}]},
            {"id": 4, "display_id": "#4", "tags": "", "custom_fields": [{"id": 7, "name": "Source ID", "value": "ZD-1"}]},
            {"id": 3, "display_id": "#3", "tags": "", "custom_fields": [{"id": 7, "name": "Source ID", "value": "ZD-1"}]}
        ]});
        assert_eq!(find(&field(), "ZD-1", &answer), Some((3, "#3".into())));
        assert_eq!(find(&field(), "ZD-2", &answer), None);
        assert_eq!(
            find(&MarkerKind::Tag, "ZD-1", &answer),
            Some((9, "#9".into()))
        );
        assert_eq!(find(&field(), "ZD-1", &json!({"error": "x"})), None);
    }
}
