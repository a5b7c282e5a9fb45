//! Contacts (`POST users/`): checking a contact payload and creating or editing the
//! contact with that email.

use serde_json::Value;

use super::super::store::{Contact, Phone, Seconds, Store};
use super::super::validate::{self as v, FieldErrors, INVALID_EMAIL, INVALID_VALUE, REQUIRED};
use super::Payload;
use super::read::{CfWrites, read_custom_fields, read_text};
use crate::schema::Schema;

pub(super) fn new_contact(
    store: &mut Store,
    name: String,
    email: Option<String>,
    now: Seconds,
) -> u64 {
    store.last_contact_id += 1;
    let id = store.last_contact_id;
    if let Some(m) = &email {
        store.by_email.insert(m.to_lowercase(), id);
    }
    store.contacts.insert(
        id,
        Contact {
            id,
            name,
            email,
            phones: Vec::new(),
            created_at: now,
            updated_at: now,
            custom: Vec::new(),
            login_enabled: true,
            tickets: Vec::new(),
        },
    );
    id
}

/// A contact payload that passed validation.
pub(crate) struct ContactWrite {
    name: String,
    email: String,
    phones: Vec<(Option<u64>, String, String, bool)>,
    custom: CfWrites,
    login_enabled: Option<bool>,
}

const PHONE_TYPES: [&str; 5] = ["mo", "w", "m", "h", "o"];

/// Checks one `POST users/` item.
pub(crate) fn check_contact(
    schema: &Schema,
    payload: &Payload,
) -> Result<ContactWrite, FieldErrors> {
    let mut e = FieldErrors::default();
    let name = read_text(payload, "name", &mut e).filter(|n| !n.trim().is_empty());
    if name.is_none() && !e.0.iter().any(|(f, _)| f == "name") {
        e.add("name", REQUIRED);
    }
    let email = read_text(payload, "email", &mut e).filter(|n| !n.trim().is_empty());
    match &email {
        None => e.add("email", REQUIRED),
        Some(m) if !v::valid_email(m.trim()) => e.add("email", INVALID_EMAIL),
        Some(_) => {}
    }
    let mut phones = Vec::new();
    match payload.get("phones") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let Some(obj) = item.as_object() else {
                    e.add("phones", INVALID_VALUE);
                    continue;
                };
                let kind = obj.get("type").and_then(Value::as_str).unwrap_or("");
                let number = obj.get("number").and_then(v::as_text).unwrap_or_default();
                if !PHONE_TYPES.contains(&kind) || number.trim().is_empty() {
                    e.add("phones", INVALID_VALUE);
                    continue;
                }
                let id = obj.get("id").and_then(v::as_id);
                let primary = obj.get("is_primary").and_then(v::as_bool).unwrap_or(false);
                phones.push((id, kind.to_string(), number, primary));
            }
        }
        Some(_) => e.add("phones", v::INVALID_LIST),
    }
    let login_enabled = match payload.get("is_login_enabled") {
        None | Some(Value::Null) => None,
        Some(value) => match v::as_bool(value) {
            Some(b) => Some(b),
            None => {
                e.add("is_login_enabled", "Must be a valid boolean.");
                None
            }
        },
    };
    let (_, custom) = read_custom_fields(schema, payload, None, &["c-cf-"], &mut e);
    for f in schema.user_custom_fields.iter().filter(|f| f.required) {
        if !custom.iter().any(|(id, val)| *id == f.id && val.is_some()) {
            e.add(&format!("c-cf-{}", f.id), REQUIRED);
        }
    }
    match (name, email, e.is_empty()) {
        (Some(name), Some(email), true) => Ok(ContactWrite {
            name,
            email: email.trim().to_string(),
            phones,
            custom,
            login_enabled,
        }),
        _ => Err(e),
    }
}

/// Creates or edits the contact with that email. Contact custom fields not sent are reset,
/// as HappyFox does; phones with an id replace that phone, phones without one are added.
pub(crate) fn upsert_contact(store: &mut Store, c: ContactWrite, now: Seconds) -> u64 {
    let id = match store.contact_by_email(&c.email) {
        Some(existing) => existing.id,
        None => new_contact(store, c.name.clone(), Some(c.email.clone()), now),
    };
    let mut new_ids = Vec::new();
    for _ in &c.phones {
        new_ids.push(store.next_phone_id());
    }
    let Some(contact) = store.contacts.get_mut(&id) else {
        return id;
    };
    contact.name = c.name;
    contact.updated_at = now;
    contact.custom = c
        .custom
        .into_iter()
        .filter_map(|(f, v)| v.map(|v| (f, v)))
        .collect();
    contact.custom.sort_by_key(|(f, _)| *f);
    if let Some(l) = c.login_enabled {
        contact.login_enabled = l;
    }
    for ((pid, kind, number, primary), new_id) in c.phones.into_iter().zip(new_ids) {
        if primary {
            contact.phones.iter_mut().for_each(|p| p.is_primary = false);
        }
        match pid.and_then(|pid| contact.phones.iter_mut().find(|p| p.id == pid)) {
            Some(p) => {
                p.kind = kind;
                p.number = number;
                p.is_primary = primary || p.is_primary;
            }
            None => {
                let is_primary = primary || contact.phones.is_empty();
                contact.phones.push(Phone {
                    id: new_id,
                    kind,
                    number,
                    is_primary,
                });
            }
        }
    }
    id
}
