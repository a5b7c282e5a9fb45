//! The conversation of a ticket read back: every journaled message present exactly once,
//! in order, with its kind, author, text (header included) and attachments by name.
//!
//! A message is found by the update id the journal holds, else by kind and text (an
//! answer that was lost). The same message twice is a difference whatever the journal
//! says; a posted message that is not there is marked for the next import.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::compare::{ATTACHMENTS, CONVERSATION, Checks, TicketReport, short, str_at};
use super::expected::{Author, Expected, Kind, normalise_text};

/// An update's message as (kind, author, normalised text, attachment names).
pub(super) struct Posted<'a> {
    pub update: &'a Value,
    pub kind: Kind,
    pub staff: Option<u64>,
    pub email: String,
    pub text: String,
    pub files: Vec<String>,
}

impl<'a> Posted<'a> {
    pub(super) fn of(update: &'a Value) -> Option<Posted<'a>> {
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

    pub(super) fn update_id(&self) -> Option<u64> {
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

/// The later updates with a message, and which of them are the journal's.
pub(super) struct Conversation<'a> {
    pub posted: Vec<Posted<'a>>,
    /// Indexes into `posted` matched to a journaled message.
    pub used: HashSet<usize>,
}

/// Checks the conversation and the attachments; `updates[0]` is the creation.
pub(super) fn check<'a>(
    c: &mut Checks,
    report: &mut TicketReport,
    e: &Expected,
    updates: &'a [Value],
) -> Conversation<'a> {
    let creation = updates.first().and_then(Posted::of);
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
        if !m.reposted {
            order.push((m.position, i));
        }
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

    Conversation { posted, used }
}
