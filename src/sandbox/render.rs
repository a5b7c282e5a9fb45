//! HappyFox's response shapes, built from the compact store.
//!
//! Field names, nesting and types follow the examples of the API reference (ticket detail,
//! contact, `updates[]`, custom fields, `page_info`), so a client written against the
//! sandbox reads production responses unchanged.

use serde_json::{Map, Value, json};

use super::store::{Author, Contact, Seconds, Store, Ticket, Update};
use super::validate::CfValue;
use crate::schema::{Behavior, Choice, FieldType, Schema};

/// `"YYYY-MM-DD HH:MM:SS"`, UTC, as every timestamp in HappyFox responses.
pub fn timestamp(s: Seconds) -> String {
    match jiff::Timestamp::from_second(s) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => String::new(),
    }
}

fn opt_timestamp(s: Option<Seconds>) -> Value {
    s.map_or(Value::Null, |s| Value::String(timestamp(s)))
}

/// `#` + the category prefix + the 8-digit ticket number.
pub fn display_id(schema: &Schema, category: u64, id: u64) -> String {
    let prefix = schema
        .category(category)
        .map(|c| c.prepopulate_cc.as_str())
        .unwrap_or("");
    format!("#{prefix}{id:08}")
}

fn choice_text(choices: Option<&[Choice]>, id: u64) -> Value {
    choices
        .unwrap_or_default()
        .iter()
        .find(|c| c.id == id)
        .map_or(Value::Null, |c| Value::String(c.text.clone()))
}

/// `(value, value_id)` of a custom field as HappyFox shows it: choices show their label as
/// `value` and their id as `value_id`; other types have `value_id: null`.
fn cf_value(value: Option<&CfValue>, choices: Option<&[Choice]>) -> (Value, Value) {
    match value {
        None => (Value::Null, Value::Null),
        Some(CfValue::Text(t)) => (Value::String(t.clone()), Value::Null),
        Some(CfValue::Number(n)) => (Value::Number(n.clone()), Value::Null),
        Some(CfValue::Date(d)) => (Value::String(d.clone()), Value::Null),
        Some(CfValue::Choice(id)) => (choice_text(choices, *id), json!(id)),
        Some(CfValue::Multi(ids)) => (
            Value::Array(ids.iter().map(|id| choice_text(choices, *id)).collect()),
            json!(ids),
        ),
    }
}

fn field_type(kind: &FieldType) -> &str {
    kind.as_str()
}

/// The contact object (`user` in a ticket, `GET user/<id>/`, items of `GET users/`).
pub fn contact(schema: &Schema, store: &Store, c: &Contact) -> Value {
    let phones: Vec<Value> = c
        .phones
        .iter()
        .map(|p| json!({"type": p.kind, "number": p.number, "id": p.id}))
        .collect();
    let primary = c
        .phones
        .iter()
        .find(|p| p.is_primary)
        .or(c.phones.first())
        .map_or(
            Value::Null,
            |p| json!({"type": p.kind, "number": p.number, "id": p.id}),
        );
    let pending = c
        .tickets
        .iter()
        .filter_map(|id| store.tickets.get(id))
        .filter(|t| {
            schema
                .status(t.status)
                .is_none_or(|s| s.behavior == Behavior::Pending)
        })
        .count();
    let custom: Vec<Value> = schema
        .user_custom_fields
        .iter()
        .map(|f| {
            let (value, value_id) = cf_value(c.cf(f.id), f.choices.as_deref());
            json!({
                "name": f.name,
                "value": value,
                "value_id": value_id,
                "type": field_type(&f.kind),
                "id": f.id,
                "visible_to_staff_only": f.visible_to_staff_only,
            })
        })
        .collect();
    json!({
        "name": c.name,
        "primary_phone": primary,
        "phones": phones,
        "created_at": timestamp(c.created_at),
        "updated_at": timestamp(c.updated_at),
        "pending_tickets_count": pending,
        "contact_groups": [],
        "tickets_count": c.tickets.len(),
        "id": c.id,
        "email": c.email,
        "custom_fields": custom,
    })
}

fn by(schema: &Schema, store: &Store, a: Author) -> Value {
    match a {
        Author::Staff(id) => {
            let s = schema.staff_member(id);
            json!({
                "email": s.map(|s| s.email.as_str()),
                "type": "staff",
                "id": id,
                "name": s.map(|s| s.name.as_str()),
            })
        }
        Author::User(id) => {
            let c = store.contacts.get(&id);
            json!({
                "email": c.and_then(|c| c.email.as_deref()),
                "type": "user",
                "id": id,
                "name": c.map(|c| c.name.as_str()),
            })
        }
    }
}

fn change(old: u64, new: u64, name: impl Fn(u64) -> Option<String>) -> Value {
    json!({"new_name": name(new), "new": new, "old": old, "old_name": name(old)})
}

/// A file name as one URL path segment (names have spaces, `#`, `?` and non-ASCII).
fn url_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn update(schema: &Schema, store: &Store, base_url: &str, u: &Update, show_cf: bool) -> Value {
    let status_name = |id| schema.status(id).map(|s| s.name.clone());
    let priority_name = |id| schema.priority(id).map(|p| p.name.clone());
    let message = u.message.as_ref().map_or(Value::Null, |m| {
        let attachments: Vec<Value> = m
            .attachments
            .iter()
            .map(|a| {
                json!({
                    "url": format!("{base_url}/attachments/{}/{}", a.id, url_segment(&a.filename)),
                    "id": a.id,
                    "filename": a.filename,
                })
            })
            .collect();
        json!({
            "attachments": attachments,
            "bcc_list": m.bcc,
            "text": m.body.text(),
            "cc_list": m.cc,
            "customer_updated": m.customer_updated,
            "html": m.body.html(),
            "forward_list": null,
            "message_type": if m.private { json!("p") } else { Value::Null },
            "subject": m.subject,
        })
    });
    let changes = u.changes();
    let cf = changes
        .map(|c| c.custom_fields.as_slice())
        .unwrap_or_default();
    let cf_change = if show_cf && !cf.is_empty() {
        Value::Array(
            cf.iter()
                .map(|(id, old, new)| {
                    let f = schema.ticket_field(*id);
                    let choices = f.and_then(|f| f.choices.as_deref());
                    json!({
                        "id": id,
                        "name": f.map(|f| f.name.as_str()),
                        "old": cf_value(old.as_ref(), choices).0,
                        "new": cf_value(new.as_ref(), choices).0,
                    })
                })
                .collect(),
        )
    } else {
        Value::Null
    };
    let staff_name = |id: Option<u64>| {
        id.and_then(|id| schema.staff_member(id))
            .map(|s| s.name.clone())
    };
    json!({
        "priority_change": changes.and_then(|c| c.priority).map_or(Value::Null, |(o, n)| change(o, n, priority_name)),
        "category_change": null,
        "custom_field_change": cf_change,
        "timestamp": timestamp(u.at),
        "due_date_change": changes.and_then(|c| c.due_date.as_ref()).map_or(Value::Null, |(o, n)| json!({"new": n, "old": o})),
        "by": by(schema, store, u.by),
        "time_spent": u.time_spent,
        "update_id": u.id,
        "message": message,
        "assignee_change": changes.and_then(|c| c.assignee).map_or(Value::Null, |(o, n)| {
            json!({"new_name": staff_name(n), "new": n, "old": o, "old_name": staff_name(o)})
        }),
        "status_change": changes.and_then(|c| c.status).map_or(Value::Null, |(o, n)| change(o, n, status_name)),
        "satisfaction_survey": null,
    })
}

/// What a ticket rendering includes beyond the summary.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Detail {
    pub updates: bool,
    pub cf_changes: bool,
}

/// The ticket object of `GET ticket/<n>/` (and, without `updates`, of list items).
pub fn ticket(schema: &Schema, store: &Store, base_url: &str, t: &Ticket, d: Detail) -> Value {
    let custom: Vec<Value> = schema
        .ticket_custom_fields
        .iter()
        .filter(|f| f.applies_to(t.category))
        .map(|f| {
            let (value, value_id) = cf_value(t.cf(f.id), f.choices.as_deref());
            json!({
                "compulsory_on_complete": f.compulsory_on_completed,
                "name": f.name,
                "value": value,
                "value_id": value_id,
                "type": field_type(&f.kind),
                "id": f.id,
                "visible_to_staff_only": f.visible_to_staff_only,
            })
        })
        .collect();
    let first_message = t
        .updates
        .iter()
        .find_map(|u| u.message.as_ref())
        .map(|m| m.body.text())
        .unwrap_or_default();
    let user = store
        .contacts
        .get(&t.user)
        .map_or(Value::Null, |c| contact(schema, store, c));
    let assigned = t
        .assignee
        .and_then(|id| schema.staff_member(id))
        .map_or(Value::Null, |s| json!(s));
    let mut out: Map<String, Value> = Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_string(), v);
    };
    put("status", json!(schema.status(t.status)));
    put("first_message", Value::String(first_message));
    put("last_user_reply_at", opt_timestamp(t.last_user_reply_at));
    put("time_spent", json!(t.time_spent));
    put("id", json!(t.id));
    put("messages_count", json!(t.messages_count()));
    put("subject", json!(t.subject));
    put("category", json!(schema.category(t.category)));
    put("attachments_count", json!(t.attachments_count()));
    put("last_updated_at", json!(timestamp(t.last_updated_at)));
    put("priority", json!(schema.priority(t.priority)));
    put("last_staff_reply_at", opt_timestamp(t.last_staff_reply_at));
    put("custom_fields", Value::Array(custom));
    put("sla_breaches", json!(0));
    put("merged_tickets", json!([]));
    put("visible_only_staff", json!(t.visible_only_staff));
    put("display_id", json!(display_id(schema, t.category, t.id)));
    put("due_date", json!(t.due_date));
    put("tags", json!(t.tags.join(",")));
    put("last_modified", json!(timestamp(t.last_modified)));
    put("user", user);
    put("subscribers", json!([]));
    put("unresponded", json!(t.unresponded()));
    put("created_at", json!(timestamp(t.created_at)));
    put("source", json!("TKT_CREATION_API"));
    put("assigned_to", assigned);
    if d.updates {
        put(
            "updates",
            Value::Array(
                t.updates
                    .iter()
                    .map(|u| update(schema, store, base_url, u, d.cf_changes))
                    .collect(),
            ),
        );
    }
    put("merged_to", Value::Null);
    Value::Object(out)
}

/// The list envelope of `GET tickets/` and `GET users/`. `total` is the number of matches,
/// `page` is 1-based, `items` the page's rendered items.
pub fn page(total: usize, page: usize, size: usize, items: Vec<Value>) -> Map<String, Value> {
    let page_count = total.div_ceil(size);
    let count = items.len();
    let start = if count == 0 { 0 } else { (page - 1) * size + 1 };
    let end = if count == 0 { 0 } else { start + count - 1 };
    let mut out = Map::new();
    out.insert(
        "page_info".into(),
        json!({
            "count": count,
            "last_index": total,
            "page_count": page_count,
            "start_index": start,
            "end_index": end,
        }),
    );
    out.insert("data".into(), Value::Array(items));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_ids_are_prefix_and_eight_digits() {
        let schema: Schema = serde_json::from_value(json!({
            "categories": [{"id": 1, "name": "Default", "prepopulate_cc": "DC", "public": true}]
        }))
        .expect("schema");
        assert_eq!(display_id(&schema, 1, 3), "#DC00000003");
        assert_eq!(display_id(&schema, 1, 123_456_789), "#DC123456789");
    }

    #[test]
    fn page_info_counts_like_happyfox() {
        let p = page(365, 1, 10, vec![json!(1); 10]);
        assert_eq!(
            p["page_info"],
            json!({"count": 10, "last_index": 365, "page_count": 37, "start_index": 1, "end_index": 10})
        );
        let p = page(365, 37, 10, vec![json!(1); 5]);
        assert_eq!(p["page_info"]["start_index"], 361);
        assert_eq!(p["page_info"]["end_index"], 365);
        let p = page(0, 1, 10, vec![]);
        assert_eq!(p["page_info"]["page_count"], 0);
    }

    #[test]
    fn timestamps_are_utc_with_a_space() {
        assert_eq!(timestamp(1_565_686_751), "2019-08-13 08:59:11");
    }
}
