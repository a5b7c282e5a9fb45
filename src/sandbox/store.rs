//! What the sandbox account holds: contacts, tickets and their updates.
//!
//! Kept compact on purpose (ids instead of embedded objects, one message body instead of
//! both text and html, timestamps as seconds) so that a rehearsal of ~100,000 tickets with
//! their conversations fits well under 1 GB. The JSON shapes HappyFox returns are built
//! from this on the way out (`render`). The whole store serialises to the `--state` file.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::validate::CfValue;

/// Seconds since the Unix epoch, UTC.
pub(crate) type Seconds = i64;

/// The account's mutable data. Ids are never reused while the account lives; a reset
/// starts a new account, numbered from 1 again.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Store {
    pub last_ticket_id: u64,
    pub last_contact_id: u64,
    pub last_update_id: u64,
    pub last_phone_id: u64,
    pub last_attachment_id: u64,
    pub tickets: BTreeMap<u64, Ticket>,
    pub contacts: BTreeMap<u64, Contact>,
    /// Lower-cased email → contact id; rebuilt after loading.
    #[serde(skip)]
    pub by_email: HashMap<String, u64>,
    /// Total updates across live tickets, kept so stats need not walk every ticket.
    #[serde(default)]
    pub update_count: u64,
    #[serde(default)]
    pub deleted_tickets: u64,
}

/// Who wrote an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Author {
    Staff(u64),
    User(u64),
}

/// A message body as it was sent; the other form is derived when rendering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    Text(String),
    Html(String),
    Both { text: String, html: String },
}

impl Body {
    pub fn text(&self) -> String {
        match self {
            Body::Text(t) | Body::Both { text: t, .. } => t.clone(),
            Body::Html(h) => crate::html_text::html_to_text(h),
        }
    }

    pub fn html(&self) -> String {
        match self {
            Body::Html(h) | Body::Both { html: h, .. } => h.clone(),
            Body::Text(t) => text_to_html(t),
        }
    }

    /// Lower-cased text for free-text search.
    pub(crate) fn contains_lower(&self, needle_lower: &str) -> bool {
        match self {
            Body::Text(t) | Body::Html(t) => t.to_lowercase().contains(needle_lower),
            Body::Both { text, .. } => text.to_lowercase().contains(needle_lower),
        }
    }
}

/// Plain text as HappyFox renders it in html: escaped, paragraphs and line breaks kept.
pub(crate) fn text_to_html(t: &str) -> String {
    let escaped = html_escape::encode_text(t);
    format!("<p>{}</p>", escaped.replace('\n', "<br>"))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: u64,
    pub filename: String,
    pub size: u64,
    /// Hex SHA-256 of the content, for tests (HappyFox does not show it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Message {
    pub body: Body,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cc: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bcc: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// A staff private note (`message_type: "p"`).
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub customer_updated: bool,
}

/// One entry of a ticket's `updates[]`: a message and/or property changes. Kept small
/// inline (most updates carry only a message), with the message and the rarer property
/// changes boxed, because a rehearsal stores hundreds of thousands of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Update {
    pub id: u64,
    pub at: Seconds,
    pub by: Author,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Box<Message>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Box<Changes>>,
    #[serde(default)]
    pub time_spent: u64,
}

/// Property changes recorded by an update (old, new).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Changes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<(u64, u64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<(u64, u64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<(Option<u64>, Option<u64>)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<(Option<String>, Option<String>)>,
    /// (field id, old, new).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_fields: Vec<(u64, Option<CfValue>, Option<CfValue>)>,
}

impl Update {
    pub fn new(id: u64, at: Seconds, by: Author) -> Self {
        Update {
            id,
            at,
            by,
            message: None,
            changes: None,
            time_spent: 0,
        }
    }

    /// The change record, created on first use.
    pub(crate) fn changes_mut(&mut self) -> &mut Changes {
        self.changes.get_or_insert_with(Box::default)
    }

    pub fn changes(&self) -> Option<&Changes> {
        self.changes.as_deref()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: u64,
    pub category: u64,
    pub subject: String,
    pub status: u64,
    pub priority: u64,
    pub assignee: Option<u64>,
    /// The contact who raised it.
    pub user: u64,
    pub tags: Vec<String>,
    /// Ticket custom fields that have a value, by field id.
    pub custom: Vec<(u64, CfValue)>,
    pub created_at: Seconds,
    pub last_modified: Seconds,
    pub last_updated_at: Seconds,
    pub last_user_reply_at: Option<Seconds>,
    pub last_staff_reply_at: Option<Seconds>,
    #[serde(default)]
    pub last_closed_at: Option<Seconds>,
    /// `yyyy-mm-dd`.
    pub due_date: Option<String>,
    pub visible_only_staff: bool,
    pub time_spent: u64,
    pub updates: Vec<Update>,
}

impl Ticket {
    pub fn cf(&self, field: u64) -> Option<&CfValue> {
        self.custom
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, v)| v)
    }

    /// Sets or clears a field and returns the old value.
    pub(crate) fn set_cf(&mut self, field: u64, value: Option<CfValue>) -> Option<CfValue> {
        set_cf(&mut self.custom, field, value)
    }

    pub fn attachments_count(&self) -> usize {
        self.updates
            .iter()
            .filter_map(|u| u.message.as_ref())
            .map(|m| m.attachments.len())
            .sum()
    }

    /// The contact wrote last and no staff reply came after.
    pub fn unresponded(&self) -> bool {
        match (self.last_user_reply_at, self.last_staff_reply_at) {
            (Some(_), None) => true,
            (Some(u), Some(s)) => u > s,
            _ => false,
        }
    }

    pub fn messages_count(&self) -> usize {
        self.updates.iter().filter(|u| u.message.is_some()).count()
    }
}

pub(crate) fn set_cf(
    list: &mut Vec<(u64, CfValue)>,
    field: u64,
    value: Option<CfValue>,
) -> Option<CfValue> {
    let pos = list.iter().position(|(f, _)| *f == field);
    match (pos, value) {
        (Some(i), Some(v)) => Some(std::mem::replace(&mut list[i].1, v)),
        (Some(i), None) => Some(list.remove(i).1),
        (None, Some(v)) => {
            list.push((field, v));
            list.sort_by_key(|(f, _)| *f);
            None
        }
        (None, None) => None,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Phone {
    pub id: u64,
    /// `mo`, `w`, `m`, `h` or `o`.
    pub kind: String,
    pub number: String,
    pub is_primary: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Contact {
    pub id: u64,
    pub name: String,
    pub email: Option<String>,
    pub phones: Vec<Phone>,
    pub created_at: Seconds,
    pub updated_at: Seconds,
    pub custom: Vec<(u64, CfValue)>,
    pub login_enabled: bool,
    /// Live tickets raised by this contact, for `tickets_count`.
    pub tickets: Vec<u64>,
}

impl Contact {
    pub fn cf(&self, field: u64) -> Option<&CfValue> {
        self.custom
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, v)| v)
    }
}

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StateError {
    #[error("cannot read sandbox state {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("sandbox state {path} is not a state file written by `hfmigrate sandbox`: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("cannot write sandbox state {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl Store {
    /// Reads a state file; a missing file is an empty account.
    pub fn load(path: &Path) -> Result<Store, StateError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Store::default()),
            Err(source) => {
                return Err(StateError::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let mut store: Store =
            serde_json::from_slice(&bytes).map_err(|source| StateError::Parse {
                path: path.display().to_string(),
                source,
            })?;
        store.reindex();
        Ok(store)
    }

    /// Writes through a temporary file and a rename, so a crash never leaves half a file.
    pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
        let err = |source| StateError::Write {
            path: path.display().to_string(),
            source,
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        std::fs::write(&tmp, bytes).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    fn reindex(&mut self) {
        self.by_email = self
            .contacts
            .values()
            .filter_map(|c| c.email.as_ref().map(|e| (e.to_lowercase(), c.id)))
            .collect();
        self.update_count = self.tickets.values().map(|t| t.updates.len() as u64).sum();
    }

    pub(crate) fn contact_by_email(&self, email: &str) -> Option<&Contact> {
        self.by_email
            .get(&email.to_lowercase())
            .and_then(|id| self.contacts.get(id))
    }

    pub(crate) fn next_update_id(&mut self) -> u64 {
        self.last_update_id += 1;
        self.last_update_id
    }

    pub(crate) fn next_phone_id(&mut self) -> u64 {
        self.last_phone_id += 1;
        self.last_phone_id
    }

    pub(crate) fn next_attachment_id(&mut self) -> u64 {
        self.last_attachment_id += 1;
        self.last_attachment_id
    }

    /// Forgets all tickets and contacts and starts ids at 1 again (`POST /_sandbox/reset`):
    /// the account is as new, so a rehearsal (or README's `curl` of ticket 1) after a reset
    /// sees the same ids as after a fresh start.
    pub fn clear(&mut self) {
        *self = Store::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_render_both_ways() {
        assert_eq!(Body::Text("a < b\nc".into()).html(), "<p>a &lt; b<br>c</p>");
        assert_eq!(
            Body::Html("<p>Hello &amp; welcome</p><p>Bye<br/>now</p>".into()).text(),
            "Hello & welcome\n\nBye\nnow"
        );
        // The text HappyFox shows has no style sheet in it and keeps a link's target.
        assert_eq!(
            Body::Html(
                "<style>p{margin:0}</style><p><a href=\"https://kb.example\">KB</a></p>".into()
            )
            .text(),
            "KB (https://kb.example)"
        );
    }

    #[test]
    fn custom_values_are_set_replaced_and_cleared() {
        let mut l = Vec::new();
        assert_eq!(set_cf(&mut l, 3, Some(CfValue::Choice(1))), None);
        assert_eq!(set_cf(&mut l, 1, Some(CfValue::Text("x".into()))), None);
        assert_eq!(l[0].0, 1, "kept in field order");
        assert_eq!(
            set_cf(&mut l, 3, Some(CfValue::Choice(2))),
            Some(CfValue::Choice(1))
        );
        assert_eq!(set_cf(&mut l, 1, None), Some(CfValue::Text("x".into())));
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn state_round_trips_through_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        assert!(
            Store::load(&path)
                .expect("missing is empty")
                .tickets
                .is_empty()
        );
        let mut s = Store::default();
        s.contacts.insert(
            1,
            Contact {
                id: 1,
                name: "A".into(),
                email: Some("A@x.io".into()),
                phones: vec![],
                created_at: 0,
                updated_at: 0,
                custom: vec![],
                login_enabled: true,
                tickets: vec![],
            },
        );
        let bytes = serde_json::to_vec(&s).expect("serialise");
        Store::write_bytes(&path, &bytes).expect("write");
        let back = Store::load(&path).expect("load");
        assert_eq!(back.contact_by_email("a@X.io").map(|c| c.id), Some(1));
    }
}
