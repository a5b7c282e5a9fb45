//! Reading payload fields the way HappyFox reads them: each reader returns the value or
//! records the field's error, so a check can go on and report every error at once.

use serde_json::Value;

use super::super::store::Body;
use super::super::validate::{
    self as v, CfValue, FieldErrors, INVALID_CHOICE, INVALID_DATE, INVALID_EMAIL, INVALID_VALUE,
    REQUIRED,
};
use super::Payload;
use crate::schema::Schema;

/// Which list a custom field key refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CfKind {
    Ticket,
    Contact,
}

/// Splits `t-cf-3` / `c-cf-3` / `ccf-3` keys. `Err` for a key with a custom-field prefix
/// and no valid id (reported as a nonexistent field).
fn cf_key(key: &str, contact_prefixes: &[&str]) -> Option<Result<(CfKind, u64), ()>> {
    let (kind, rest) = if let Some(rest) = key.strip_prefix("t-cf-") {
        (CfKind::Ticket, rest)
    } else if let Some(rest) = contact_prefixes.iter().find_map(|p| key.strip_prefix(p)) {
        (CfKind::Contact, rest)
    } else {
        return None;
    };
    Some(
        v::as_id(&Value::String(rest.to_string()))
            .map(|id| (kind, id))
            .ok_or(()),
    )
}

/// Custom-field values to write, by field id (`None` clears the field).
pub(super) type CfWrites = Vec<(u64, Option<CfValue>)>;

/// Custom-field values of a payload, checked against the schema. `category` limits
/// ticket fields to those that apply to it.
pub(super) fn read_custom_fields(
    schema: &Schema,
    payload: &Payload,
    category: Option<u64>,
    contact_prefixes: &[&str],
    errors: &mut FieldErrors,
) -> (CfWrites, CfWrites) {
    let mut ticket = Vec::new();
    let mut contact = Vec::new();
    let mut keys: Vec<(&String, &Value)> = payload.iter().collect();
    keys.sort_by_key(|(k, _)| {
        let id = k
            .rsplit('-')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        (!k.starts_with("t-cf-"), id)
    });
    for (key, value) in keys {
        let Some(parsed) = cf_key(key, contact_prefixes) else {
            continue;
        };
        let Ok((kind, id)) = parsed else {
            errors.add(key, v::UNKNOWN_FIELD);
            continue;
        };
        match kind {
            CfKind::Ticket => {
                let Some(field) = schema.ticket_field(id) else {
                    errors.add(key, v::UNKNOWN_FIELD);
                    continue;
                };
                if let Some(cat) = category
                    && !field.applies_to(cat)
                {
                    errors.add(key, v::NOT_IN_CATEGORY);
                    continue;
                }
                match v::parse_cf_value(&field.kind, field.choices.as_deref(), value) {
                    Ok(val) => ticket.push((id, val)),
                    Err(msg) => errors.add(key, msg),
                }
            }
            CfKind::Contact => {
                let Some(field) = schema.user_field(id) else {
                    errors.add(key, v::UNKNOWN_FIELD);
                    continue;
                };
                match v::parse_cf_value(&field.kind, field.choices.as_deref(), value) {
                    Ok(val) => contact.push((id, val)),
                    Err(msg) => errors.add(key, msg),
                }
            }
        }
    }
    (ticket, contact)
}

/// An active agent's id, or the error to report.
pub(super) fn active_staff(schema: &Schema, value: Option<&Value>) -> Result<u64, &'static str> {
    if v::is_blank(value) {
        return Err(REQUIRED);
    }
    value
        .and_then(v::as_id)
        .and_then(|id| schema.staff_member(id))
        .filter(|s| s.active)
        .map(|s| s.id)
        .ok_or(INVALID_CHOICE)
}

/// `assignee`: absent leaves it unchanged (`None`), `null` unassigns (`Some(None)`).
pub(super) fn read_assignee(
    schema: &Schema,
    payload: &Payload,
    errors: &mut FieldErrors,
) -> Option<Option<u64>> {
    let value = payload.get("assignee")?;
    if v::is_blank(Some(value)) {
        return Some(None);
    }
    match active_staff(schema, Some(value)) {
        Ok(id) => Some(Some(id)),
        Err(msg) => {
            errors.add("assignee", msg);
            None
        }
    }
}

pub(super) fn read_text(payload: &Payload, key: &str, errors: &mut FieldErrors) -> Option<String> {
    let value = payload.get(key)?;
    if value.is_null() {
        return None;
    }
    match v::as_text(value) {
        Some(t) => Some(t),
        None => {
            errors.add(key, INVALID_VALUE);
            None
        }
    }
}

pub(super) fn read_email_list(payload: &Payload, key: &str, errors: &mut FieldErrors) -> String {
    let text = read_text(payload, key, errors).unwrap_or_default();
    if !v::valid_email_list(&text) {
        errors.add(key, INVALID_EMAIL);
    }
    text
}

pub(super) fn read_bool(payload: &Payload, key: &str, errors: &mut FieldErrors) -> bool {
    match payload.get(key) {
        None | Some(Value::Null) => false,
        Some(value) => v::as_bool(value).unwrap_or_else(|| {
            errors.add(key, "Must be a valid boolean.");
            false
        }),
    }
}

pub(super) fn read_due_date(payload: &Payload, errors: &mut FieldErrors) -> Option<Option<String>> {
    let value = payload.get("due_date")?;
    if v::is_blank(Some(value)) {
        return Some(None);
    }
    match value.as_str().and_then(v::parse_due_date) {
        Some(d) => Some(Some(d.to_string())),
        None => {
            errors.add("due_date", INVALID_DATE);
            None
        }
    }
}

pub(super) fn read_id_of<T>(
    payload: &Payload,
    key: &str,
    lookup: impl Fn(u64) -> Option<T>,
    errors: &mut FieldErrors,
) -> Option<T> {
    let value = payload.get(key);
    if v::is_blank(value) {
        return None;
    }
    match value.and_then(v::as_id).and_then(lookup) {
        Some(t) => Some(t),
        None => {
            errors.add(key, INVALID_CHOICE);
            None
        }
    }
}

/// The message body of a create or staff update: `text`/`plaintext` and/or `html`.
pub(super) fn read_body(
    payload: &Payload,
    text_key: &str,
    errors: &mut FieldErrors,
) -> Option<Body> {
    let text = read_text(payload, text_key, errors).filter(|t| !t.trim().is_empty());
    let html = read_text(payload, "html", errors).filter(|t| !t.trim().is_empty());
    match (text, html) {
        (Some(text), Some(html)) => Some(Body::Both { text, html }),
        (Some(t), None) => Some(Body::Text(t)),
        (None, Some(h)) => Some(Body::Html(h)),
        (None, None) => None,
    }
}
