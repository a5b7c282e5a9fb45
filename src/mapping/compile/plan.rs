//! A compiled mapping: the [`Plan`] the payload stage turns records into tickets with.
//!
//! Everything here is already checked; the payload stage only evaluates templates and
//! applies value maps.

use std::sync::Arc;

use indexmap::IndexMap;
use jiff::tz::TimeZone;
use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::mapping::spec::Pos;
use crate::mapping::template::{Engine, Expr};
use crate::schema::Schema;
use crate::source::ReadOptions;

/// A value of the mapping, compiled.
#[derive(Debug)]
pub struct Field {
    /// Where it sits in the mapping (`ticket.subject`), for messages.
    pub name: String,
    pub pos: Pos,
    pub expr: Expr,
    pub map: Option<ValueMap>,
    /// The template text as written (empty for numbers and booleans).
    pub source: String,
}

/// A compiled `{ value, map, default }`.
#[derive(Debug, Clone)]
pub struct ValueMap {
    /// Looked up for every record: FxHash, not the SipHash that showed in profiles of the
    /// builders (the keys are the mapping's own).
    pub entries: IndexMap<String, String, FxBuildHasher>,
    lower: FxHashMap<String, String>,
    pub default: Option<String>,
}

/// What a value map did with one value.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    Found(String),
    /// Not in the map: the default was used.
    Defaulted {
        from: String,
        to: String,
    },
    /// Not in the map and no default: passed through as it is.
    Passed(String),
}

impl ValueMap {
    pub(super) fn new(entries: IndexMap<String, String>, default: Option<String>) -> Self {
        let lower = entries
            .iter()
            .map(|(k, v)| (k.to_lowercase(), v.clone()))
            .collect();
        ValueMap {
            entries: entries.into_iter().collect(),
            lower,
            default,
        }
    }

    pub fn apply(&self, value: &str) -> Mapped {
        let v = value.trim();
        if let Some(to) = self.entries.get(v) {
            return Mapped::Found(to.clone());
        }
        if let Some(to) = self.lower.get(&v.to_lowercase()) {
            return Mapped::Found(to.clone());
        }
        match &self.default {
            Some(d) => Mapped::Defaulted {
                from: v.to_string(),
                to: d.clone(),
            },
            None => Mapped::Passed(v.to_string()),
        }
    }

    /// Every name the map can produce (targets and default), for compile-time checks.
    pub(super) fn targets(&self) -> impl Iterator<Item = &String> {
        self.entries.values().chain(self.default.iter())
    }
}

/// A custom field named in the mapping, resolved to its id when a schema is known.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRef {
    pub name: String,
    pub id: Option<u64>,
}

/// A side file, ready to index.
#[derive(Debug)]
pub struct SidePlan {
    pub name: String,
    pub pos: Pos,
    pub file: String,
    pub read: ReadOptions,
    /// The key as written: a dotted path, or the source of `key_template`.
    pub key: String,
    /// `key:` written as a template, evaluated on each record of the file.
    pub key_template: Option<Arc<Expr>>,
    pub join: Option<Arc<Expr>>,
    pub explode: Option<String>,
    pub keep_if: Option<Expr>,
    pub order_by: Option<String>,
    pub optional: bool,
}

/// Where the records come from.
#[derive(Debug)]
pub struct SourcePlan {
    pub file: String,
    pub read: ReadOptions,
    pub id: Field,
    pub skip_if: Option<Field>,
    pub sides: Vec<SidePlan>,
}

/// The ticket-create payload fields.
#[derive(Debug)]
pub struct TicketFields {
    pub category: Field,
    pub contact_name: Option<Field>,
    pub contact_email: Field,
    pub contact_phone: Option<Field>,
    pub contact_fields: Vec<(FieldRef, Field)>,
    pub subject: Field,
    pub html: Option<Field>,
    pub text: Option<Field>,
    pub priority: Option<Field>,
    pub assignee: Option<Field>,
    pub tags: Option<Field>,
    pub cc: Option<Field>,
    pub bcc: Option<Field>,
    pub created_at: Option<Field>,
    pub due_date: Option<Field>,
    pub visible_only_staff: Option<Field>,
    pub custom_fields: Vec<(FieldRef, Field)>,
    pub attachments: Option<AttachmentsPlan>,
    pub first_message: Option<FirstMessagePlan>,
}

/// `ticket.first_message`, compiled: who really wrote the first message.
#[derive(Debug)]
pub struct FirstMessagePlan {
    pub author: Field,
    pub author_name: Option<Field>,
    /// `None` when the mapping turned the header off with `""`.
    pub header: Option<Field>,
}

/// A message's attachments, compiled.
#[derive(Debug)]
pub struct AttachmentsPlan {
    pub entries: Field,
    pub name: Field,
    pub path: Option<Field>,
    pub url: Option<Field>,
    pub size: Option<Field>,
    pub content_type: Option<Field>,
}

/// How the marker is written.
#[derive(Debug)]
pub enum Marker {
    CustomField {
        field: FieldRef,
        value: Option<Field>,
    },
    Tag(Field),
}

/// The conversation after the first message.
#[derive(Debug)]
pub struct ConversationPlan {
    pub entries: Field,
    /// The path each entry is sorted by (stably, entries without it last).
    pub order_by: Option<String>,
    pub skip_first: bool,
    pub keep_if: Option<Field>,
    pub history: History,
    /// The entry's stable key in the source; `None`: a hash of its time, author and text.
    pub id: Option<Field>,
    pub kind: Field,
    pub author: Field,
    pub author_name: Option<Field>,
    pub created_at: Option<Field>,
    pub html: Option<Field>,
    pub text: Option<Field>,
    pub header: Option<Field>,
    pub fallback_agent: Option<String>,
    pub attachments: Option<AttachmentsPlan>,
}

/// Which tickets post their later conversation as one transcript note.
#[derive(Debug)]
pub enum History {
    /// Every entry is its own post.
    Full,
    /// One private note, for the tickets `when` is true of (every ticket without it).
    Transcript { when: Option<Box<Field>> },
}

/// The state a ticket ends in.
#[derive(Debug, Default)]
pub struct FinalPlan {
    pub status: Option<Field>,
    pub custom_fields: Vec<(FieldRef, Field)>,
}

/// A compiled mapping: everything needed to turn a record into a ticket plan.
#[derive(Debug)]
pub struct Plan {
    pub engine: Engine,
    pub timezone: TimeZone,
    pub schema: Option<Arc<Schema>>,
    pub source: SourcePlan,
    pub ticket: TicketFields,
    pub marker: Option<Marker>,
    pub conversation: Option<ConversationPlan>,
    pub final_state: FinalPlan,
}

impl Plan {
    /// Every compiled field with a template, for checks against CSV headers.
    pub fn fields(&self) -> Vec<&Field> {
        let t = &self.ticket;
        let mut v: Vec<&Field> = vec![&self.source.id, &t.category, &t.contact_email, &t.subject];
        v.extend(self.source.skip_if.iter());
        for f in [
            &t.contact_name,
            &t.contact_phone,
            &t.html,
            &t.text,
            &t.priority,
            &t.assignee,
            &t.tags,
            &t.cc,
            &t.bcc,
            &t.created_at,
            &t.due_date,
            &t.visible_only_staff,
        ] {
            v.extend(f.iter());
        }
        if let Some(fm) = &t.first_message {
            v.push(&fm.author);
            v.extend(fm.author_name.iter());
        }
        v.extend(t.custom_fields.iter().map(|(_, f)| f));
        v.extend(t.contact_fields.iter().map(|(_, f)| f));
        v.extend(self.final_state.status.iter());
        v.extend(self.final_state.custom_fields.iter().map(|(_, f)| f));
        match &self.marker {
            Some(Marker::CustomField { value: Some(f), .. }) | Some(Marker::Tag(f)) => v.push(f),
            _ => {}
        }
        if let Some(c) = &self.conversation {
            v.push(&c.entries);
        }
        v
    }
}
