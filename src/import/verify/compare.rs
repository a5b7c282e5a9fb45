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
        c.add(
            "category",
            id_text(e.category),
            id_text(id_at("/category/id")),
        );
    }
    if e.priority.is_some() {
        c.add(
            "priority",
            id_text(e.priority),
            id_text(id_at("/priority/id")),
        );
    }
    if e.assignee.is_some() {
        c.add(
            "assignee",
            id_text(e.assignee),
            id_text(id_at("/assigned_to/id")),
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
        c.add("status", id_text(e.status), id_text(id_at("/status/id")));
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
