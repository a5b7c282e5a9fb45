//! From one source record to a validated HappyFox ticket plan: the create payload with
//! names resolved to ids, the final state, and the conversation to post afterwards.
//!
//! This is where HappyFox's rules are applied before anything is sent: required fields,
//! public categories, custom fields that exist and apply to the ticket's category, value
//! types, fields compulsory on completion. Every problem is collected for the record; an
//! error rejects it, a warning does not.

// Keys are the account's own names and ids, hashed for every record: FxHash, not SipHash.
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use minijinja::value::Value;
use serde::Serialize;
use serde_json::{Map, Value as Json};

use crate::attachments::{AttachmentRef, AttachmentSource, MAX_REQUEST_BYTES};
use crate::mapping::compile::{
    AttachmentsPlan, ConversationPlan, FieldRef, History, Mapped, Marker, ValueMap,
};
use crate::mapping::template::{
    INVALID_DATE, INVALID_NUMBER, RecordCtx, RecordInput, Sides, parse_instant, parse_number,
    value_to_string,
};
use crate::mapping::{Field, Plan};
use crate::problem::{Problem, ProblemKind};
use crate::schema::{self, Behavior, Category, FieldType, Schema, Staff};
use crate::source::{Location, SourceId, SourceRecord};

mod attachments;
pub mod conversation;
mod fields;
mod object;
mod ticket;
pub use object::TicketPayload;
/// Longest subject we send; longer ones are rejected rather than silently cut.
pub(crate) const MAX_SUBJECT_CHARS: usize = 255;
/// Longest single-line text custom field value.
pub(crate) const MAX_TEXT_FIELD_CHARS: usize = 255;
/// Bodies larger than this are reported: bulk requests carry 100 of them.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How a conversation entry is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// `staff_update` with `update_customer: false`.
    StaffReply,
    /// `staff_pvtnote`.
    PrivateNote,
    /// `user_reply`.
    ContactReply,
}

impl EntryKind {
    fn parse(s: &str) -> Option<EntryKind> {
        match s.trim() {
            "staff_reply" => Some(EntryKind::StaffReply),
            "private_note" => Some(EntryKind::PrivateNote),
            "contact_reply" => Some(EntryKind::ContactReply),
            _ => None,
        }
    }
}

/// One later conversation entry, ready to post.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryPlan {
    /// What the journal knows the entry by across exports: `id:` plus the source's id, or
    /// `h:` plus a hash of its time, author and text.
    pub key: String,
    pub kind: EntryKind,
    /// The original author's email as the source has it.
    pub author: String,
    /// The agent who posts it (staff replies and notes): the author or the fallback.
    pub staff: Option<u64>,
    /// The author fell back to the migration agent.
    pub fell_back: bool,
    /// Header plus body.
    pub html: String,
    /// Files posted with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentRef>,
}

/// The state the ticket ends in, sent with its last POST.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct FinalState {
    pub status: Option<u64>,
    pub completed: bool,
    pub custom_fields: Map<String, Json>,
}

impl FinalState {
    /// Whether anything must change after creation (a new ticket gets the default status).
    pub(crate) fn needs_post(&self, schema: &Schema) -> bool {
        let default = schema.default_status().map(|s| s.id);
        (self.status.is_some() && self.status != default) || !self.custom_fields.is_empty()
    }
}

/// A valid record, ready to send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketPlan {
    pub source_id: SourceId,
    #[serde(skip)]
    pub location: Option<Location>,
    pub payload: TicketPayload,
    pub(crate) final_state: FinalState,
    pub conversation: Vec<EntryPlan>,
    /// The conversation goes in one transcript note (`history: transcript`).
    pub transcript: bool,
    /// Files of the first message: the ticket is created on its own, multipart.
    pub attachments: Vec<AttachmentRef>,
}

/// The key under which attachments travel in journaled payloads; stripped before sending.
pub(crate) const ATTACHMENTS_KEY: &str = "__attachments";

impl TicketPlan {
    /// The payload as the journal stores it: the create payload plus its attachments.
    pub(crate) fn stored_payload(&self) -> serde_json::Result<String> {
        if self.attachments.is_empty() {
            return serde_json::to_string(&self.payload);
        }
        let mut p = self.payload.clone();
        p.insert(
            ATTACHMENTS_KEY.into(),
            serde_json::to_value(&self.attachments)?,
        );
        serde_json::to_string(&p)
    }
}

/// What became of one record.
#[derive(Debug, Clone)]
pub enum RecordOutcome {
    Valid {
        plan: Box<TicketPlan>,
        warnings: Vec<Problem>,
    },
    Rejected {
        source_id: Option<SourceId>,
        problems: Vec<Problem>,
    },
    Skipped {
        source_id: Option<SourceId>,
    },
}

/// Builds ticket plans for records with one compiled mapping and one account schema.
pub struct Builder<'p> {
    plan: &'p Plan,
    schema: Arc<Schema>,
    sides: Arc<Sides>,
    staff_by_key: HashMap<String, usize>,
    names: NameMaps,
    /// Absent optional side files that the conversation's `kind` reads: every entry's
    /// kind is then decided without them (an agent's public Zendesk comment becomes a
    /// contact reply), which each ticket with entries is warned about.
    kind_without: Vec<String>,
}

/// Schema names by their normalised form ([`schema::normal_name`]), built once per run: every
/// record resolves a category, a priority, a status and several choice labels, and a scan
/// comparing normalised copies of each name allocated for every comparison.
#[derive(Default)]
struct NameMaps {
    /// Index into `schema.categories`; the first of equal names wins, as a scan would.
    categories: NameIndex<usize>,
    priorities: NameIndex<usize>,
    statuses: NameIndex<usize>,
    /// Choice label → choice id, per ticket custom field id.
    ticket_choices: HashMap<u64, NameIndex<u64>>,
    /// Choice label → choice id, per contact custom field id.
    user_choices: HashMap<u64, NameIndex<u64>>,
}

/// Names compared as an admin reads them ([`schema::same_name`]). The account's own
/// spellings are kept beside the normalised forms: an export mostly spells a label exactly
/// as the account does ("Urgent"), and finding that one needs no lower-cased copy of it,
/// which was 7% of the builder threads.
struct NameIndex<V> {
    exact: HashMap<String, V>,
    normal: HashMap<String, V>,
}

impl<V> Default for NameIndex<V> {
    fn default() -> Self {
        NameIndex {
            exact: HashMap::default(),
            normal: HashMap::default(),
        }
    }
}

impl<V: Copy> NameIndex<V> {
    /// The first of names equal when normalised wins, as a scan would; an exact spelling
    /// takes the entry its normal form kept, so both lookups find the same one.
    fn new<'a>(names: impl Iterator<Item = (&'a str, V)>) -> NameIndex<V> {
        let mut index = NameIndex::default();
        for (name, v) in names {
            let kept = *index
                .normal
                .entry(schema::normal_name(name).into_owned())
                .or_insert(v);
            index.exact.entry(name.to_string()).or_insert(kept);
        }
        index
    }

    fn get(&self, name: &str) -> Option<V> {
        self.exact
            .get(name)
            .or_else(|| self.normal.get(schema::normal_name(name).as_ref()))
            .copied()
    }
}

impl NameMaps {
    fn new(schema: &Schema) -> NameMaps {
        fn index<'a>(names: impl Iterator<Item = &'a str>) -> NameIndex<usize> {
            NameIndex::new(names.enumerate().map(|(i, n)| (n, i)))
        }
        fn choices(list: Option<&[schema::Choice]>) -> NameIndex<u64> {
            NameIndex::new(list.unwrap_or(&[]).iter().map(|c| (c.text.as_str(), c.id)))
        }
        NameMaps {
            categories: index(schema.categories.iter().map(|c| c.name.as_str())),
            priorities: index(schema.priorities.iter().map(|c| c.name.as_str())),
            statuses: index(schema.statuses.iter().map(|c| c.name.as_str())),
            ticket_choices: schema
                .ticket_custom_fields
                .iter()
                .map(|f| (f.id, choices(f.choices.as_deref())))
                .collect(),
            user_choices: schema
                .user_custom_fields
                .iter()
                .map(|f| (f.id, choices(f.choices.as_deref())))
                .collect(),
        }
    }
}

impl<'p> Builder<'p> {
    pub fn new(plan: &'p Plan, schema: Arc<Schema>, sides: Arc<Sides>) -> Self {
        let mut staff_by_key = HashMap::default();
        for (i, s) in schema.staff.iter().enumerate() {
            staff_by_key.insert(s.email.to_lowercase(), i);
            staff_by_key.entry(s.name.to_lowercase()).or_insert(i);
        }
        let names = NameMaps::new(&schema);
        let kind_without = plan
            .conversation
            .as_ref()
            .map(|c| {
                c.kind
                    .expr
                    .variables()
                    .into_iter()
                    .filter(|v| sides.tables.get(v).is_some_and(|t| t.index.is_none()))
                    .collect()
            })
            .unwrap_or_default();
        Builder {
            plan,
            schema,
            sides,
            staff_by_key,
            names,
            kind_without,
        }
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    fn staff(&self, key: &str) -> Option<&Staff> {
        self.staff_by_key
            .get(&key.trim().to_lowercase())
            .map(|i| &self.schema.staff[*i])
    }

    /// Looks up the record's entries in every joined side file, so that they count as
    /// joined even though nothing is built from them.
    fn touch_joins(&self, input: &RecordInput<'_>) {
        for name in self.sides.joins.keys() {
            let _ = input.value().get_attr(name);
        }
    }

    /// What becomes of one record: valid with its plan and warnings, rejected with every
    /// problem found, or skipped by `source.skip_if`.
    pub fn build(&self, record: &SourceRecord) -> RecordOutcome {
        let input = RecordInput::new(record.value.as_ref(), &self.sides);
        let mut r = Run {
            b: self,
            ctx: &input,
            problems: vec![],
        };
        let Some(source_id) = SourceId::new(&r.string(&self.plan.source.id).unwrap_or_default())
        else {
            r.problems.push(Problem::error(
                ProblemKind::MissingRequired,
                "source.id",
                "the source id renders empty; every record needs a stable id",
            ));
            return RecordOutcome::Rejected {
                source_id: None,
                problems: r.problems,
            };
        };
        if let Some(skip) = &self.plan.source.skip_if {
            match skip.expr.eval_record(&input) {
                Ok(v) if v.is_true() => {
                    // Its joined entries belong to a ticket of the export (skipped on
                    // purpose), so they must not be reported as joining none.
                    self.touch_joins(&input);
                    return RecordOutcome::Skipped {
                        source_id: Some(source_id),
                    };
                }
                Ok(_) => {}
                Err(e) => r.problems.push(template_problem(&skip.name, &e)),
            }
        }
        if let Some(w) = &record.warning {
            r.problems
                .push(Problem::warning(ProblemKind::RepeatedKey, "", w.clone()));
        }
        let plan = r.ticket(&source_id);
        let (errors, warnings): (Vec<Problem>, Vec<Problem>) =
            r.problems.into_iter().partition(|p| p.is_error());
        match plan {
            Some(mut plan) if errors.is_empty() => {
                plan.location = Some(record.location.clone());
                RecordOutcome::Valid {
                    plan: Box::new(plan),
                    warnings,
                }
            }
            _ => {
                let mut problems = errors;
                problems.extend(warnings);
                RecordOutcome::Rejected {
                    source_id: Some(source_id),
                    problems,
                }
            }
        }
    }
}

/// The choices of one custom field: the list (for hints) and the lookup by label.
#[derive(Clone, Copy)]
struct Choices<'a> {
    list: Option<&'a [schema::Choice]>,
    by_name: Option<&'a NameIndex<u64>>,
}

/// What a template is evaluated against: the record being built (fast path where the
/// template allows), or a context built for conversation entries and headers.
#[derive(Clone, Copy)]
enum Ctx<'a> {
    Record(&'a RecordInput<'a>),
    Value(&'a Value),
}

/// The state of building one record.
struct Run<'a, 'p> {
    b: &'a Builder<'p>,
    ctx: &'a RecordInput<'a>,
    problems: Vec<Problem>,
}

fn template_problem(field: &str, e: &minijinja::Error) -> Problem {
    if e.kind() == minijinja::ErrorKind::OutOfFuel {
        return Problem::error(
            ProblemKind::TemplateError,
            field,
            format!(
                "the template did not finish within {} steps (a loop that never ends?); simplify it",
                crate::mapping::template::TEMPLATE_FUEL
            ),
        );
    }
    let detail = e
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| e.to_string());
    let kind = if detail.starts_with(INVALID_DATE) {
        ProblemKind::InvalidDate
    } else if detail.starts_with(INVALID_NUMBER) {
        ProblemKind::InvalidNumber
    } else {
        ProblemKind::TemplateError
    };
    let message = detail
        .strip_prefix(INVALID_DATE)
        .or_else(|| detail.strip_prefix(INVALID_NUMBER))
        .map(|m| m.trim_start_matches(':').trim().to_string())
        .unwrap_or(detail.clone());
    Problem::error(kind, field, message)
}

/// `s` without surrounding whitespace, reusing its buffer when there is none (the usual
/// case), since every field of every record is trimmed.
fn trimmed(s: String) -> String {
    if s.trim().len() == s.len() {
        s
    } else {
        s.trim().to_string()
    }
}

/// A name the account does not have, with the closest one it does as a hint.
fn unknown_name<'n>(
    kind: ProblemKind,
    field: &str,
    what: &str,
    name: &str,
    names: impl IntoIterator<Item = &'n str>,
) -> Problem {
    let hint = schema::did_you_mean(name, names)
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default();
    Problem::error(kind, field, format!("unknown {what} {name:?}{hint}"))
}

/// One rule with the sandbox's validation: [`crate::email`].
fn is_email(s: &str) -> bool {
    crate::email::is_valid(s)
}

fn is_created_at(s: &str) -> bool {
    let b = s.as_bytes();
    let shape = |i: usize, c: u8| b.get(i) == Some(&c);
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    (s.len() == 19 || (s.len() > 20 && shape(19, b'.') && digits(20..s.len())))
        && digits(0..4)
        && shape(4, b'-')
        && digits(5..7)
        && shape(7, b'-')
        && digits(8..10)
        && shape(10, b'T')
        && digits(11..13)
        && shape(13, b':')
        && digits(14..16)
        && shape(16, b':')
        && digits(17..19)
}

impl Run<'_, '_> {
    fn eval(&mut self, field: &Field, ctx: Ctx<'_>) -> Option<Value> {
        let result = match ctx {
            Ctx::Record(input) => field.expr.eval_record(input),
            Ctx::Value(v) => field.expr.eval(v),
        };
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(template_problem(&field.name, &e));
                None
            }
        }
    }

    fn apply_map(&mut self, field: &Field, map: &ValueMap, raw: String) -> String {
        match map.apply(&raw) {
            Mapped::Found(s) | Mapped::Passed(s) => s,
            Mapped::Defaulted { from, to } => {
                if !from.is_empty() {
                    self.problems.push(Problem::warning(
                        ProblemKind::UnmappedValue,
                        field.name.clone(),
                        format!("{from:?} is not in the value map; used the default {to:?}"),
                    ));
                }
                to
            }
        }
    }

    /// A field rendered as a string, value map applied.
    fn string_in(&mut self, field: &Field, ctx: Ctx<'_>) -> Option<String> {
        let s = match ctx {
            Ctx::Record(input) => match field.expr.eval_record_string(input) {
                Ok(s) => s,
                Err(e) => {
                    self.problems.push(template_problem(&field.name, &e));
                    return None;
                }
            },
            Ctx::Value(_) => value_to_string(&self.eval(field, ctx)?),
        };
        Some(match &field.map {
            Some(map) => self.apply_map(field, map, s),
            None => s,
        })
    }

    fn string(&mut self, field: &Field) -> Option<String> {
        let ctx = Ctx::Record(self.ctx);
        self.string_in(field, ctx)
    }

    fn opt_string(&mut self, field: &Option<Field>) -> Option<String> {
        field
            .as_ref()
            .and_then(|f| self.string(f))
            .map(trimmed)
            .filter(|s| !s.is_empty())
    }

    /// A field rendered as a list, each item through the value map.
    fn list(&mut self, field: &Field) -> Vec<String> {
        let items = match field.expr.eval_record_list(self.ctx) {
            Ok(items) => items,
            Err(e) => {
                self.problems.push(template_problem(&field.name, &e));
                return vec![];
            }
        };
        match &field.map {
            Some(map) => items
                .into_iter()
                .map(|i| self.apply_map(field, map, i))
                .filter(|s| !s.is_empty())
                .collect(),
            None => items,
        }
    }

    fn category(&mut self, name: &str, field: &str) -> Option<&Category> {
        let schema = &self.b.schema;
        let found = self
            .b
            .names
            .categories
            .get(name)
            .map(|i| &schema.categories[i])
            .or_else(|| name.parse::<u64>().ok().and_then(|id| schema.category(id)));
        match found {
            Some(c) if c.public => Some(c),
            Some(c) => {
                self.problems.push(Problem::error(
                    ProblemKind::PrivateCategory,
                    field,
                    format!(
                        "category {:?} is private; HappyFox creates tickets through the API only in public categories",
                        c.name
                    ),
                ));
                None
            }
            None => {
                self.problems.push(if name.is_empty() {
                    Problem::error(
                        ProblemKind::MissingRequired,
                        field,
                        "the category renders empty",
                    )
                } else {
                    unknown_name(
                        ProblemKind::UnknownCategory,
                        field,
                        "category",
                        name,
                        schema.categories.iter().map(|c| c.name.as_str()),
                    )
                });
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An exact spelling finds what its normalised form finds, the first of equal names
    /// wins either way, and other spellings still resolve.
    #[test]
    fn names_resolve_the_same_spelled_exactly_or_not() {
        let index = NameIndex::new(
            [
                ("URGENT", 0),
                ("Urgent", 1),
                ("Widget  Pro", 2),
                ("Ünïcode Ä", 3),
            ]
            .into_iter(),
        );
        assert_eq!(index.get("Urgent"), Some(0), "the first of equal names");
        assert_eq!(index.get("urgent"), Some(0));
        assert_eq!(index.get("Widget  Pro"), Some(2));
        assert_eq!(index.get("widget pro"), Some(2));
        assert_eq!(index.get("WIDGET\tPRO"), Some(2));
        assert_eq!(index.get("ünïcode ä"), Some(3));
        assert_eq!(index.get("Widget"), None);
    }

    #[test]
    fn emails() {
        assert!(is_email("a@b.co"));
        assert!(is_email("élodie.martin@exemple.fr"));
        assert!(!is_email("a@b"));
        assert!(!is_email("a b@c.de"));
        assert!(!is_email("@c.de"));
        assert!(!is_email("a@@c.de"));
        assert!(!is_email("Rachel <r@x.com>"));
    }

    #[test]
    fn created_at_shape() {
        assert!(is_created_at("2024-03-05T13:22:10"));
        assert!(is_created_at("2024-03-05T13:22:10.123"));
        assert!(!is_created_at("2024-03-05 13:22:10"));
        assert!(!is_created_at("2024-03-05T13:22:10Z"));
    }
}
