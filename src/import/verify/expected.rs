//! What HappyFox should hold for one created record, read from what the journal sent:
//! the create payload, then each message in order (a later message may set the status,
//! priority, assignee or due date, the last one that does wins).

use serde_json::{Map, Value};

use crate::journal::JournaledMessage;
use crate::payload::ATTACHMENTS_KEY;

/// How a message shows in HappyFox's `updates[]`: who posted it and whether it is private.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    StaffReply,
    PrivateNote,
    ContactReply,
}

impl Kind {
    /// The journal's kinds: closing and attachment notes are private notes too.
    pub(crate) fn of_journal(kind: &str) -> Kind {
        match kind {
            "staff_reply" => Kind::StaffReply,
            "contact_reply" => Kind::ContactReply,
            _ => Kind::PrivateNote,
        }
    }

    /// An update's kind from its `by.type` and `message.message_type`.
    pub(crate) fn of_update(update: &Value) -> Kind {
        let by = update.pointer("/by/type").and_then(Value::as_str);
        let private = update
            .pointer("/message/message_type")
            .and_then(Value::as_str);
        match (by, private) {
            (Some("user"), _) => Kind::ContactReply,
            (_, Some("p")) => Kind::PrivateNote,
            _ => Kind::StaffReply,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::StaffReply => "staff reply",
            Kind::PrivateNote => "private note",
            Kind::ContactReply => "contact reply",
        }
    }
}

/// Who should appear as a message's author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Author {
    Staff(u64),
    /// A contact, by lower-cased email.
    Contact(String),
    Unknown,
}

/// One journaled message as HappyFox should show it.
#[derive(Debug, Clone)]
pub(crate) struct ExpectedMessage {
    pub id: i64,
    pub position: i64,
    pub journal_kind: String,
    pub kind: Kind,
    pub author: Author,
    /// Normalised text (see [`normalise_text`]), header included.
    pub text: String,
    pub attachments: Vec<String>,
    pub state: String,
    pub update_id: Option<u64>,
    /// Posted again after a verify found it missing: it comes last, by necessity.
    pub reposted: bool,
}

/// The ticket HappyFox should hold.
#[derive(Debug, Clone, Default)]
pub(crate) struct Expected {
    pub subject: Option<String>,
    pub first_message: Option<String>,
    pub first_attachments: Vec<String>,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    pub contact_fields: Vec<(u64, Value)>,
    pub category: Option<u64>,
    pub priority: Option<u64>,
    pub assignee: Option<u64>,
    pub status: Option<u64>,
    pub tags: Option<Vec<String>>,
    pub due_date: Option<String>,
    pub created_at: Option<String>,
    pub ticket_fields: Vec<(u64, Value)>,
    pub messages: Vec<ExpectedMessage>,
}

/// Text as both sides are compared: HTML (anything with a tag) through the same
/// HTML→text conversion the mappings use, then every run of whitespace as one space, so
/// that HappyFox's re-rendering of markup and line breaks is not a difference.
pub(crate) fn normalise_text(s: &str) -> String {
    let text = if s.contains('<') {
        crate::mapping::template::html_to_text(s)
    } else {
        s.to_owned()
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A message body's text: its `html`, else its `text` (contact replies), else `plaintext`.
fn body_text(body: &Map<String, Value>) -> Option<String> {
    ["html", "text", "plaintext"]
        .iter()
        .filter_map(|k| body.get(*k).and_then(Value::as_str))
        .find(|s| !s.trim().is_empty())
        .map(normalise_text)
}

fn attachment_names(body: &Map<String, Value>) -> Vec<String> {
    body.get(ATTACHMENTS_KEY)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// A `t-cf-<id>` / `c-cf-<id>` key's id.
fn field_id(key: &str, prefix: &str) -> Option<u64> {
    key.strip_prefix(prefix)?.parse().ok()
}

/// HappyFox's `YYYY-MM-DD HH:MM:SS` from the payload's ISO form (`T`, fractions, `Z`).
pub(crate) fn normalise_time(s: &str) -> String {
    let s = s.trim().replacen('T', " ", 1);
    s.chars().take(19).collect()
}

impl Expected {
    /// `payload` is the create payload; `messages` the ticket's journaled messages;
    /// `failed_files` the attachments the import recorded as not sent (they are in
    /// `results` already, so not expected here), as (position, name).
    pub(crate) fn build(
        payload: &Map<String, Value>,
        messages: &[JournaledMessage],
        failed_files: &[(i64, String)],
    ) -> Expected {
        let text = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_owned);
        let id = |v: Option<&Value>| v.and_then(Value::as_u64);
        let sent = |position: i64, names: Vec<String>| -> Vec<String> {
            names
                .into_iter()
                .filter(|n| !failed_files.iter().any(|(p, f)| *p == position && f == n))
                .collect()
        };
        let mut e = Expected {
            subject: text("subject"),
            first_message: body_text(payload),
            first_attachments: sent(0, attachment_names(payload)),
            contact_name: text("name"),
            contact_email: text("email").map(|e| e.trim().to_lowercase()),
            category: id(payload.get("category")),
            priority: id(payload.get("priority")),
            assignee: id(payload.get("assignee")),
            status: id(payload.get("status")),
            tags: text("tags").map(|t| split_tags(&t)),
            due_date: text("due_date"),
            created_at: text("created_at").map(|t| normalise_time(&t)),
            ..Expected::default()
        };
        for (k, v) in payload {
            if let Some(f) = field_id(k, "t-cf-") {
                e.ticket_fields.push((f, v.clone()));
            } else if let Some(f) = field_id(k, "c-cf-") {
                e.contact_fields.push((f, v.clone()));
            }
        }
        let contact = e.contact_email.clone().unwrap_or_default();
        for m in messages {
            let body: Map<String, Value> = serde_json::from_str(&m.payload).unwrap_or_default();
            for (key, slot) in [
                ("status", &mut e.status),
                ("priority", &mut e.priority),
                ("assignee", &mut e.assignee),
            ] {
                if let Some(v) = id(body.get(key)) {
                    *slot = Some(v);
                }
            }
            if let Some(d) = body.get("due_date").and_then(Value::as_str) {
                e.due_date = Some(d.to_owned());
            }
            let kind = Kind::of_journal(&m.kind);
            let author = match (kind, id(body.get("staff"))) {
                (Kind::ContactReply, _) => {
                    let email = if m.author.contains('@') {
                        m.author.trim().to_lowercase()
                    } else {
                        contact.clone()
                    };
                    Author::Contact(email)
                }
                (_, Some(staff)) => Author::Staff(staff),
                _ => Author::Unknown,
            };
            e.messages.push(ExpectedMessage {
                id: m.id,
                position: m.position,
                journal_kind: m.kind.clone(),
                kind,
                author,
                text: body_text(&body).unwrap_or_default(),
                attachments: sent(m.position, attachment_names(&body)),
                state: m.state.clone(),
                update_id: m.update_id,
                reposted: false,
            });
        }
        e
    }
}

/// Tags as a sorted set (HappyFox keeps them as one comma-separated string).
pub(crate) fn split_tags(s: &str) -> Vec<String> {
    let mut tags: Vec<String> = s
        .split(',')
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_compared_after_html_and_whitespace_normalisation() {
        assert_eq!(
            normalise_text("<p>Hello,</p>\n<p>it  <b>works</b> &amp; more</p>"),
            normalise_text("Hello,\nit works & more")
        );
        assert_ne!(normalise_text("<p>a</p>"), normalise_text("b"));
    }

    #[test]
    fn later_messages_set_the_final_state() {
        let payload: Map<String, Value> = serde_json::from_str(
            r#"{"subject":"s","html":"<p>x</p>","status":1,"priority":2,"t-cf-3":[1,2],"c-cf-1":"A","created_at":"2024-03-04T08:00:00Z","tags":"b, a"}"#,
        )
        .unwrap();
        let m = JournaledMessage {
            id: 1,
            position: 1,
            kind: "final_note".into(),
            author: String::new(),
            author_name: String::new(),
            payload: r#"{"staff":1,"html":"closing","status":5}"#.into(),
            state: "created".into(),
            update_id: Some(9),
        };
        let e = Expected::build(&payload, &[m], &[]);
        assert_eq!(e.status, Some(5));
        assert_eq!(e.priority, Some(2));
        assert_eq!(e.created_at.as_deref(), Some("2024-03-04 08:00:00"));
        assert_eq!(e.tags, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(e.ticket_fields, vec![(3, serde_json::json!([1, 2]))]);
        assert_eq!(e.messages[0].kind, Kind::PrivateNote);
        assert_eq!(e.messages[0].author, Author::Staff(1));
    }
}
