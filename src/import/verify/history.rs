//! Changes made after the import, read from the ticket's update history: every update
//! that is neither the creation nor one of the journal's messages came later, and its
//! `by` says who made it (`staff` with an id, `user`, or an automation such as a Smart
//! Rule). A field that differs and was changed by one of them is named as such.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::compare::{Checks, TicketReport, id_text, short, str_at};
use super::conversation::Conversation;
use super::expected::Expected;

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

/// Adds the later changes to `report` and names who changed each differing field.
pub(super) fn later_changes(
    c: &mut Checks,
    report: &mut TicketReport,
    e: &Expected,
    updates: &[Value],
    conversation: &Conversation,
) {
    let Conversation { posted, used } = conversation;
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
}
