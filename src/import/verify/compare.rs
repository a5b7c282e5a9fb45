//! One ticket read back from HappyFox, compared field by field with what should be there
//! ([`Expected`]), and its conversation message by message.
//!
//! A field that differs because somebody changed it after the import (a Smart Rule, an
//! agent) is still a difference, but says who changed it: the ticket's update history
//! names them, and every update that is neither the creation nor one of the journal's
//! messages is such a later change.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::expected::{Author, Expected, Kind, normalise_text, normalise_time, split_tags};

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
struct Checks(Vec<Check>);

impl Checks {
    fn add(&mut self, field: impl Into<String>, expected: String, actual: String) {
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

    fn differs(&mut self, field: &str, expected: String, actual: String) {
        self.0.push(Check {
            field: field.into(),
            ok: false,
            expected: Some(expected),
            actual: Some(actual),
            changed_after_import_by: None,
        });
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn id_text(v: Option<u64>) -> String {
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

/// Who made an update, as the report shows it.
fn who(update: &Value) -> String {
    let kind = str_at(update, "/by/type");
    let name = str_at(update, "/by/name");
    let id = update.pointer("/by/id").and_then(Value::as_u64);
    match kind {
        "staff" => format!("agent {name} (staff {})", id_text(id)),
        "user" => format!("contact {name}"),
        "" => "someone (no author in the history)".into(),
        other => format!("{other} {name}").trim_end().to_owned(),
    }
}

/// The fields an update changed, by the names the checks use.
fn fields_changed(update: &Value) -> Vec<String> {
    let mut out = vec![];
    for (key, field) in [
        ("status_change", "status"),
        ("priority_change", "priority"),
        ("assignee_change", "assignee"),
        ("due_date_change", "due date"),
        ("category_change", "category"),
    ] {
        if update.get(key).is_some_and(|c| !c.is_null()) {
            out.push(field.to_owned());
        }
    }
    for cf in update
        .get("custom_field_change")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = cf.get("name").and_then(Value::as_str) {
            out.push(format!("ticket field \"{name}\""));
        }
    }
    out
}

/// An update's message as (kind, author, normalised text, attachment names).
struct Posted<'a> {
    update: &'a Value,
    kind: Kind,
    staff: Option<u64>,
    email: String,
    text: String,
    files: Vec<String>,
}

impl<'a> Posted<'a> {
    fn of(update: &'a Value) -> Option<Posted<'a>> {
        let message = update.get("message").filter(|m| !m.is_null())?;
        let html = str_at(message, "/html");
        let text = if html.trim().is_empty() {
            str_at(message, "/text")
        } else {
            html
        };
        let by_staff = str_at(update, "/by/type") == "staff";
        Some(Posted {
            update,
            kind: Kind::of_update(update),
            staff: update
                .pointer("/by/id")
                .and_then(Value::as_u64)
                .filter(|_| by_staff),
            email: str_at(update, "/by/email").trim().to_lowercase(),
            text: normalise_text(text),
            files: message
                .get("attachments")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|a| a.get("filename").and_then(Value::as_str))
                .map(str::to_owned)
                .collect(),
        })
    }

    fn author(&self) -> String {
        match self.staff {
            Some(id) => format!("staff {id}"),
            None => self.email.clone(),
        }
    }

    fn update_id(&self) -> Option<u64> {
        self.update.get("update_id").and_then(Value::as_u64)
    }
}

fn author_text(a: &Author) -> String {
    match a {
        Author::Staff(id) => format!("staff {id}"),
        Author::Contact(email) => email.clone(),
        Author::Unknown => "(unknown)".into(),
    }
}

fn short(text: &str) -> String {
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

    // The conversation: every later update with a message, matched to the journal's.
    let posted: Vec<Posted> = updates.iter().skip(1).filter_map(Posted::of).collect();
    let mut used: HashSet<usize> = HashSet::new();
    let mut problems: Vec<String> = vec![];
    let mut order: Vec<(i64, usize)> = vec![];
    let mut files_expected: Vec<String> = e.first_attachments.clone();
    let mut files_actual: Vec<String> = creation
        .as_ref()
        .map(|p| p.files.clone())
        .unwrap_or_default();
    for m in &e.messages {
        if m.state != "created" {
            problems.push(format!(
                "message #{} ({}) is not posted yet (journal: {}); `hfmigrate import` posts it, `results` lists failures",
                m.position, m.journal_kind, m.state
            ));
            continue;
        }
        files_expected.extend(m.attachments.iter().cloned());
        let by_id = m.update_id.and_then(|id| {
            posted
                .iter()
                .position(|p| p.update_id() == Some(id))
                .filter(|i| !used.contains(i))
        });
        let found = by_id.or_else(|| {
            (0..posted.len()).find(|i| {
                !used.contains(i) && posted[*i].kind == m.kind && posted[*i].text == m.text
            })
        });
        let Some(i) = found else {
            report.missing_messages.push(m.id);
            problems.push(format!(
                "message #{} ({} by {}) is missing: \"{}\"",
                m.position,
                m.kind.label(),
                author_text(&m.author),
                short(&m.text)
            ));
            continue;
        };
        used.insert(i);
        order.push((m.position, i));
        let p = &posted[i];
        files_actual.extend(p.files.iter().cloned());
        if p.kind != m.kind {
            problems.push(format!(
                "message #{} is a {}, HappyFox shows a {}",
                m.position,
                m.kind.label(),
                p.kind.label()
            ));
        }
        let author_ok = match &m.author {
            Author::Staff(id) => p.staff == Some(*id),
            Author::Contact(email) => p.staff.is_none() && (email.is_empty() || *email == p.email),
            Author::Unknown => true,
        };
        if !author_ok {
            problems.push(format!(
                "message #{} author: {} expected, HappyFox shows {}",
                m.position,
                author_text(&m.author),
                p.author()
            ));
        }
        if p.text != m.text {
            problems.push(format!(
                "message #{} text: \"{}\" expected, HappyFox shows \"{}\"",
                m.position,
                short(&m.text),
                short(&p.text)
            ));
        }
    }
    if order.windows(2).any(|w| w[1].1 < w[0].1) {
        problems.push("messages are out of order".into());
    }
    // The same message twice is a duplicate, whatever the journal says.
    let mut seen: HashMap<(Kind, String, &str), usize> = HashMap::new();
    for p in &posted {
        *seen
            .entry((p.kind, p.author(), p.text.as_str()))
            .or_default() += 1;
    }
    let mut duplicates: Vec<String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|((kind, author, text), n)| {
            format!(
                "{} by {author} is there {n} times: \"{}\"",
                kind.label(),
                short(text)
            )
        })
        .collect();
    duplicates.sort();
    problems.extend(duplicates);
    if !e.messages.is_empty() || !posted.is_empty() {
        if problems.is_empty() {
            c.add(CONVERSATION, String::new(), String::new());
        } else {
            c.differs(
                CONVERSATION,
                format!("{} message(s) as journaled", e.messages.len()),
                problems.join("; "),
            );
        }
    }
    if !files_expected.is_empty() || !files_actual.is_empty() {
        files_expected.sort();
        files_actual.sort();
        c.add(
            ATTACHMENTS,
            format!(
                "{} file(s): {}",
                files_expected.len(),
                files_expected.join(", ")
            ),
            format!(
                "{} file(s): {}",
                files_actual.len(),
                files_actual.join(", ")
            ),
        );
    }

    // Updates that are neither the creation nor a journaled message came later.
    let mut later_fields: HashMap<String, String> = HashMap::new();
    for (i, p) in posted.iter().enumerate() {
        if used.contains(&i) {
            continue;
        }
        let is_duplicate = e
            .messages
            .iter()
            .any(|m| m.kind == p.kind && m.text == p.text);
        if !is_duplicate {
            report.changes_after_import.push(format!(
                "{} added by {}: \"{}\"",
                p.kind.label(),
                who(p.update),
                short(&p.text)
            ));
        }
    }
    let importer: HashSet<Option<u64>> = posted
        .iter()
        .enumerate()
        .filter(|(i, _)| used.contains(i))
        .map(|(_, p)| p.update_id())
        .collect();
    for u in updates.iter().skip(1) {
        let id = u.get("update_id").and_then(Value::as_u64);
        if importer.contains(&id) {
            continue;
        }
        for field in fields_changed(u) {
            let by = who(u);
            if u.get("message").is_none_or(Value::is_null) {
                report
                    .changes_after_import
                    .push(format!("{field} changed by {by}"));
            }
            later_fields.insert(field, by);
        }
    }
    for check in c.0.iter_mut().filter(|c| !c.ok) {
        check.changed_after_import_by = later_fields.get(&check.field).cloned();
    }
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
