//! One ticket read back from HappyFox, compared field by field with what should be there
//! ([`Expected`]); the conversation is checked by [`conversation`], and [`history`] says
//! which differences somebody made after the import.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::conversation::{self, Posted};
use super::expected::{Expected, normalise_text, normalise_time, split_tags};
use super::history;

/// The conversation's field name.
pub(crate) const CONVERSATION: &str = "conversation";
pub(crate) const ATTACHMENTS: &str = "attachments";

/// One field of one ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub field: String,
    pub ok: bool,
    /// What should be there (only kept for a difference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What HappyFox holds (only kept for a difference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// Who changed the field after the import, when the history says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_after_import_by: Option<String>,
}

/// Everything verify found about one ticket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TicketReport {
    pub source_id: String,
    pub ticket_id: u64,
    pub display_id: String,
    pub checks: Vec<Check>,
    /// Updates made after the import (a reply, a Smart Rule's change), described.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes_after_import: Vec<String>,
    /// Journal ids of posted messages HappyFox does not show; marked for the next import.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_messages: Vec<i64>,
    /// Set when the ticket itself could not be read (deleted, or refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

impl TicketReport {
    pub fn is_clean(&self) -> bool {
        self.unreadable.is_none()
            && self.changes_after_import.is_empty()
            && self.checks.iter().all(|c| c.ok)
    }
}

/// Collects checks, keeping values only for the differences.
pub(super) struct Checks(pub(super) Vec<Check>);

impl Checks {
    pub(super) fn add(&mut self, field: impl Into<String>, expected: String, actual: String) {
        let ok = expected == actual;
        self.0.push(Check {
            field: field.into(),
            ok,
            expected: (!ok).then_some(expected),
            actual: (!ok).then_some(actual),
            changed_after_import_by: None,
        });
    }

    /// A reference by id (category, priority, status, assignee): compared by id, shown
    /// with HappyFox's name for it.
    fn add_id(&mut self, field: &str, expected: Option<u64>, actual: Option<u64>, name: &str) {
        let ok = expected == actual;
        let shown = match (actual, name.trim()) {
            (Some(id), n) if !n.is_empty() => format!("{id} ({n})"),
            _ => id_text(actual),
        };
        self.0.push(Check {
            field: field.into(),
            ok,
            expected: (!ok).then(|| id_text(expected)),
            actual: (!ok).then_some(shown),
            changed_after_import_by: None,
        });
    }

    pub(super) fn differs(&mut self, field: &str, expected: String, actual: String) {
        self.0.push(Check {
            field: field.into(),
            ok: false,
            expected: Some(expected),
            actual: Some(actual),
            changed_after_import_by: None,
        });
    }
}

pub(super) fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(super) fn id_text(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "(none)".into())
}

/// A custom field value in one comparable form: choices by id (sorted when several),
/// numbers by value, text trimmed.
fn field_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), |f| format!("{f}")),
        Value::Array(items) => {
            let mut parts: Vec<String> = items.iter().map(field_value).collect();
            parts.sort();
            parts.join(",")
        }
        other => other.to_string(),
    }
}

/// A HappyFox custom field entry's value, by id when it is a choice.
fn actual_field(entry: &Value, expected: &Value) -> String {
    let by_id = entry.get("value_id").filter(|v| !v.is_null());
    let numeric_choice = match expected {
        Value::Number(_) => true,
        Value::Array(a) => a.iter().all(Value::is_number),
        _ => false,
    };
    match by_id {
        Some(ids) if numeric_choice => field_value(ids),
        _ => field_value(entry.get("value").unwrap_or(&Value::Null)),
    }
}

fn compare_fields(
    checks: &mut Checks,
    prefix: &str,
    expected: &[(u64, Value)],
    actual: Option<&Value>,
) {
    let entries = actual
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (id, want) in expected {
        let entry = entries
            .iter()
            .find(|f| f.get("id").and_then(Value::as_u64) == Some(*id));
        let name = entry
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map_or_else(|| format!("#{id}"), |n| format!("\"{n}\""));
        let got = entry.map_or_else(|| "(no such field)".into(), |f| actual_field(f, want));
        checks.add(format!("{prefix} {name}"), field_value(want), got);
    }
}

pub(super) fn short(text: &str) -> String {
    const MAX: usize = 120;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}…")
}

/// Compares one ticket. `ticket` is the body of `GET ticket/<n>/`.
pub(crate) fn compare(mut report: TicketReport, e: &Expected, ticket: &Value) -> TicketReport {
    let mut c = Checks(vec![]);
    if let Some(s) = &e.subject {
        c.add(
            "subject",
            s.trim().to_owned(),
            str_at(ticket, "/subject").trim().to_owned(),
        );
    }
    let updates: Vec<Value> = ticket
        .get("updates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let creation = updates.first().and_then(Posted::of);
    if let Some(want) = &e.first_message {
        let got = creation
            .as_ref()
            .map(|p| p.text.clone())
            .unwrap_or_else(|| normalise_text(str_at(ticket, "/first_message")));
        if *want == got {
            c.add("first message", String::new(), String::new());
        } else {
            c.differs("first message", short(want), short(&got));
        }
    }
    if let Some(name) = &e.contact_name {
        c.add(
            "contact name",
            name.trim().to_owned(),
            str_at(ticket, "/user/name").trim().to_owned(),
        );
    }
    if let Some(email) = &e.contact_email {
        c.add(
            "contact email",
            email.clone(),
            str_at(ticket, "/user/email").trim().to_lowercase(),
        );
    }
    compare_fields(
        &mut c,
        "contact field",
        &e.contact_fields,
        ticket.pointer("/user/custom_fields"),
    );
    let id_at = |p: &str| ticket.pointer(p).and_then(Value::as_u64);
    if e.category.is_some() {
        c.add_id(
            "category",
            e.category,
            id_at("/category/id"),
            str_at(ticket, "/category/name"),
        );
    }
    if e.priority.is_some() {
        c.add_id(
            "priority",
            e.priority,
            id_at("/priority/id"),
            str_at(ticket, "/priority/name"),
        );
    }
    if e.assignee.is_some() {
        c.add_id(
            "assignee",
            e.assignee,
            id_at("/assigned_to/id"),
            str_at(ticket, "/assigned_to/name"),
        );
    }
    if let Some(tags) = &e.tags {
        c.add(
            "tags",
            tags.join(","),
            split_tags(str_at(ticket, "/tags")).join(","),
        );
    }
    if let Some(d) = &e.due_date {
        c.add(
            "due date",
            d.trim().to_owned(),
            str_at(ticket, "/due_date").trim().to_owned(),
        );
    }
    if let Some(t) = &e.created_at {
        c.add(
            "created at",
            t.clone(),
            normalise_time(str_at(ticket, "/created_at")),
        );
    }
    compare_fields(
        &mut c,
        "ticket field",
        &e.ticket_fields,
        ticket.get("custom_fields"),
    );
    if e.status.is_some() {
        c.add_id(
            "status",
            e.status,
            id_at("/status/id"),
            str_at(ticket, "/status/name"),
        );
    }

    let conversation = conversation::check(&mut c, &mut report, e, &updates);
    history::later_changes(&mut c, &mut report, e, &updates, &conversation);
    report.checks = c.0;
    report
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::journal::JournaledMessage;

    fn expected() -> Expected {
        let payload = json!({
            "subject": "Export fails", "name": "Ann", "email": "ann@example.com",
            "html": "<p>It fails.</p>", "category": 1, "priority": 2, "tags": "a,b",
            "t-cf-2": 11, "created_at": "2024-03-04T08:00:00"
        });
        let reply = JournaledMessage {
            id: 7,
            position: 1,
            kind: "staff_reply".into(),
            author: "bo@acme.example".into(),
            author_name: "Bo".into(),
            payload: r#"{"staff":3,"html":"<p>Try again.</p>","status":4}"#.into(),
            state: "created".into(),
            update_id: Some(20),
        };
        Expected::build(payload.as_object().unwrap(), &[reply], &[])
    }

    fn update(id: u64, by: Value, html: &str, status: Option<u64>) -> Value {
        json!({
            "update_id": id, "by": by,
            "message": {"html": html, "text": "", "message_type": null, "attachments": []},
            "status_change": status.map(|s| json!({"old": 1, "new": s})),
        })
    }

    fn ticket(updates: Vec<Value>, status: u64) -> Value {
        json!({
            "subject": "Export fails", "first_message": "It fails.",
            "user": {"name": "Ann", "email": "Ann@example.com", "custom_fields": []},
            "category": {"id": 1, "name": "Support"}, "priority": {"id": 2, "name": "Medium"},
            "status": {"id": status, "name": "Some status"}, "tags": "b,a",
            "custom_fields": [{"id": 2, "name": "Product", "value": "Widget", "value_id": 11}],
            "created_at": "2024-03-04 08:00:00", "updates": updates,
        })
    }

    fn creation() -> Value {
        update(
            1,
            json!({"type": "user", "id": 5, "email": "ann@example.com"}),
            "<p>It fails.</p>",
            None,
        )
    }

    fn bo() -> Value {
        json!({"type": "staff", "id": 3, "name": "Bo"})
    }

    #[test]
    fn a_faithful_ticket_matches_in_every_field() {
        let t = ticket(vec![creation(), update(20, bo(), "Try again.", Some(4))], 4);
        let r = compare(TicketReport::default(), &expected(), &t);
        assert!(r.is_clean(), "{r:#?}");
        let fields: Vec<&str> = r.checks.iter().map(|c| c.field.as_str()).collect();
        for f in [
            "subject",
            "first message",
            "contact email",
            "tags",
            "ticket field \"Product\"",
            "status",
            "conversation",
        ] {
            assert!(fields.contains(&f), "{f} not checked: {fields:?}");
        }
    }

    #[test]
    fn the_same_reply_twice_is_a_difference_whatever_the_journal_says() {
        let t = ticket(
            vec![
                creation(),
                update(20, bo(), "Try again.", Some(4)),
                update(21, bo(), "<p>Try again.</p>", None),
            ],
            4,
        );
        let r = compare(TicketReport::default(), &expected(), &t);
        let c = r.checks.iter().find(|c| c.field == CONVERSATION).unwrap();
        assert!(!c.ok);
        assert!(
            c.actual.as_deref().unwrap().contains("is there 2 times"),
            "{c:?}"
        );
        assert!(
            r.changes_after_import.is_empty(),
            "a duplicate is no later change"
        );
        assert!(r.missing_messages.is_empty());
    }

    #[test]
    fn a_reply_missing_from_happyfox_is_marked_for_posting_again() {
        let t = ticket(vec![creation()], 4);
        let r = compare(TicketReport::default(), &expected(), &t);
        assert_eq!(r.missing_messages, vec![7]);
        let c = r.checks.iter().find(|c| c.field == CONVERSATION).unwrap();
        assert!(
            c.actual
                .as_deref()
                .unwrap()
                .contains("message #1 (staff reply by staff 3) is missing"),
            "{c:?}"
        );
    }

    #[test]
    fn a_smart_rule_change_is_reported_as_such() {
        let rule = json!({"update_id": 30, "by": {"type": "smartrule", "id": 2, "name": "Escalate"},
                          "message": null, "status_change": {"old": 4, "new": 6}});
        let t = ticket(
            vec![creation(), update(20, bo(), "Try again.", Some(4)), rule],
            6,
        );
        let r = compare(TicketReport::default(), &expected(), &t);
        let status = r.checks.iter().find(|c| c.field == "status").unwrap();
        assert!(!status.ok);
        assert_eq!(status.actual.as_deref(), Some("6 (Some status)"));
        assert_eq!(
            status.changed_after_import_by.as_deref(),
            Some("smartrule Escalate")
        );
        assert_eq!(
            r.changes_after_import,
            vec!["status changed by smartrule Escalate"]
        );
    }
}
