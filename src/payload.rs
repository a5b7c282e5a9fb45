//! From one source record to a validated HappyFox ticket plan: the create payload with
//! names resolved to ids, the final state, and the conversation to post afterwards.
//!
//! This is where HappyFox's rules are applied before anything is sent: required fields,
//! public categories, custom fields that exist and apply to the ticket's category, value
//! types, fields compulsory on completion. Every problem is collected for the record; an
//! error rejects it, a warning does not.

use std::collections::HashMap;
use std::sync::Arc;

use minijinja::value::Value;
use serde::Serialize;
use serde_json::{Map, Value as Json};

use crate::attachments::{AttachmentRef, AttachmentSource, MAX_REQUEST_BYTES};
use crate::mapping::compile::{
    AttachmentsPlan, ConversationPlan, FieldRef, Mapped, Marker, ValueMap,
};
use crate::mapping::template::{
    INVALID_DATE, INVALID_NUMBER, RecordCtx, RecordInput, Sides, parse_instant, parse_number,
    value_to_string,
};
use crate::mapping::{Field, Plan};
use crate::problem::{Problem, ProblemKind};
use crate::schema::{self, Behavior, Category, FieldType, Schema, Staff};
use crate::source::{Location, SourceRecord};

/// Longest subject we send; longer ones are rejected rather than silently cut.
pub const MAX_SUBJECT_CHARS: usize = 255;
/// Longest single-line text custom field value.
pub const MAX_TEXT_FIELD_CHARS: usize = 255;
/// Bodies larger than this are reported: bulk requests carry 100 of them.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The exact JSON object sent to `POST tickets/` for one ticket.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct TicketPayload(pub Map<String, Json>);

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
pub struct FinalState {
    pub status: Option<u64>,
    pub completed: bool,
    pub custom_fields: Map<String, Json>,
}

impl FinalState {
    /// Whether anything must change after creation (a new ticket gets the default status).
    pub fn needs_post(&self, schema: &Schema) -> bool {
        let default = schema.default_status().map(|s| s.id);
        (self.status.is_some() && self.status != default) || !self.custom_fields.is_empty()
    }
}

/// A valid record, ready to send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketPlan {
    pub source_id: String,
    #[serde(skip)]
    pub location: Option<Location>,
    pub payload: TicketPayload,
    pub final_state: FinalState,
    pub conversation: Vec<EntryPlan>,
    /// Files of the first message: the ticket is created on its own, multipart.
    pub attachments: Vec<AttachmentRef>,
}

/// The key under which attachments travel in journaled payloads; stripped before sending.
pub const ATTACHMENTS_KEY: &str = "__attachments";

impl TicketPlan {
    /// The payload as the journal stores it: the create payload plus its attachments.
    pub fn stored_payload(&self) -> serde_json::Result<String> {
        if self.attachments.is_empty() {
            return serde_json::to_string(&self.payload);
        }
        let mut p = self.payload.0.clone();
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
        source_id: Option<String>,
        problems: Vec<Problem>,
    },
    Skipped {
        source_id: Option<String>,
    },
}

/// Builds ticket plans for records with one compiled mapping and one account schema.
pub struct Builder<'p> {
    plan: &'p Plan,
    schema: Arc<Schema>,
    sides: Arc<Sides>,
    staff_by_key: HashMap<String, usize>,
    names: NameMaps,
}

/// Schema names by their normalised form ([`norm_name`]), built once per run: every
/// record resolves a category, a priority, a status and several choice labels, and a scan
/// comparing normalised copies of each name allocated for every comparison.
#[derive(Default)]
struct NameMaps {
    /// Index into `schema.categories`; the first of equal names wins, as a scan would.
    categories: HashMap<String, usize>,
    priorities: HashMap<String, usize>,
    statuses: HashMap<String, usize>,
    /// Choice label → choice id, per ticket custom field id.
    ticket_choices: HashMap<u64, HashMap<String, u64>>,
    /// Choice label → choice id, per contact custom field id.
    user_choices: HashMap<u64, HashMap<String, u64>>,
}

impl NameMaps {
    fn new(schema: &Schema) -> NameMaps {
        fn index<'a>(names: impl Iterator<Item = &'a str>) -> HashMap<String, usize> {
            let mut map = HashMap::new();
            for (i, n) in names.enumerate() {
                map.entry(norm_name(n).into_owned()).or_insert(i);
            }
            map
        }
        fn choices(list: Option<&[schema::Choice]>) -> HashMap<String, u64> {
            let mut map = HashMap::new();
            for c in list.unwrap_or(&[]) {
                map.entry(norm_name(&c.text).into_owned()).or_insert(c.id);
            }
            map
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

/// The form [`schema::same_name`] compares: whitespace runs collapsed to one space, ends
/// trimmed, lower-cased. Borrows when the name is already in that form (the common case
/// for ASCII labels), so most lookups do not allocate.
fn norm_name(s: &str) -> std::borrow::Cow<'_, str> {
    let b = s.as_bytes();
    let plain = s.is_ascii()
        && b.first().is_none_or(|c| *c != b' ')
        && b.last().is_none_or(|c| *c != b' ')
        && !b
            .iter()
            .any(|c| c.is_ascii_uppercase() || (c.is_ascii_whitespace() && *c != b' '))
        && !s.contains("  ");
    if plain {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase(),
        )
    }
}

impl<'p> Builder<'p> {
    pub fn new(plan: &'p Plan, schema: Arc<Schema>, sides: Arc<Sides>) -> Self {
        let mut staff_by_key = HashMap::new();
        for (i, s) in schema.staff.iter().enumerate() {
            staff_by_key.insert(s.email.to_lowercase(), i);
            staff_by_key.entry(s.name.to_lowercase()).or_insert(i);
        }
        let names = NameMaps::new(&schema);
        Builder {
            plan,
            schema,
            sides,
            staff_by_key,
            names,
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

    /// The source id [`Builder::build`] will give `record` when its outcome can be a
    /// duplicate (valid, or rejected with an id); `None` for a skipped record or one with
    /// no id. Cheap on the fast path, so the pipeline can catch repeated ids in input order
    /// before the records are built in parallel.
    pub fn dedupe_key(&self, record: &SourceRecord) -> Option<String> {
        let input = RecordInput::new(&record.value, &self.sides);
        let mut r = Run {
            b: self,
            ctx: &input,
            problems: vec![],
        };
        let source_id = r.string(&self.plan.source.id).unwrap_or_default();
        let source_id = source_id.trim();
        if source_id.is_empty() {
            return None;
        }
        if let Some(skip) = &self.plan.source.skip_if
            && let Ok(v) = skip.expr.eval_record(&input)
            && v.is_true()
        {
            return None;
        }
        Some(source_id.to_string())
    }

    /// The source id alone (for records that are rejected before anything else).
    pub fn build(&self, record: &SourceRecord) -> RecordOutcome {
        let input = RecordInput::new(&record.value, &self.sides);
        let mut r = Run {
            b: self,
            ctx: &input,
            problems: vec![],
        };
        let source_id = r.string(&self.plan.source.id).unwrap_or_default();
        if source_id.trim().is_empty() {
            r.problems.push(Problem::error(
                ProblemKind::MissingRequired,
                "source.id",
                "the source id renders empty; every record needs a stable id",
            ));
            return RecordOutcome::Rejected {
                source_id: None,
                problems: r.problems,
            };
        }
        let source_id = source_id.trim().to_string();
        if let Some(skip) = &self.plan.source.skip_if {
            match skip.expr.eval_record(&input) {
                Ok(v) if v.is_true() => {
                    return RecordOutcome::Skipped {
                        source_id: Some(source_id),
                    };
                }
                Ok(_) => {}
                Err(e) => r.problems.push(template_problem(&skip.name, &e)),
            }
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
    by_name: Option<&'a HashMap<String, u64>>,
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

fn is_email(s: &str) -> bool {
    let s = s.trim();
    if s.len() > 254
        || s.chars()
            .any(|c| c.is_whitespace() || c == ',' || c == '<' || c == '>')
    {
        return false;
    }
    let mut parts = s.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains("..")
        }
        _ => false,
    }
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
            .get(norm_name(name).as_ref())
            .map(|i| &schema.categories[*i])
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

    fn ticket(&mut self, source_id: &str) -> Option<TicketPlan> {
        let plan = self.b.plan;
        let t = &plan.ticket;
        // Sized for a typical payload (contact, subject, body, ids, a dozen custom fields)
        // so that it does not grow step by step for every record.
        let mut p = Map::with_capacity(16 + t.custom_fields.len() + t.contact_fields.len());

        // Contact.
        let email = self
            .string(&t.contact_email)
            .map(trimmed)
            .unwrap_or_default();
        if email.is_empty() {
            self.problems.push(Problem::error(
                ProblemKind::MissingRequired,
                &t.contact_email.name,
                "the contact email is empty; HappyFox needs name and email for a new contact",
            ));
        } else if email.to_ascii_lowercase().ends_with(".invalid") && is_email(&email) {
            self.problems.push(Problem::warning(
                ProblemKind::PlaceholderEmail,
                &t.contact_email.name,
                format!("no email in the export; the contact is created as {email:?}, which can never receive mail"),
            ));
        } else if !is_email(&email) {
            self.problems.push(Problem::error(
                ProblemKind::InvalidEmail,
                &t.contact_email.name,
                format!("{email:?} is not a valid email address"),
            ));
        }
        let name = self
            .opt_string(&t.contact_name)
            .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_string());
        p.insert("name".into(), Json::from(name));
        p.insert("email".into(), Json::from(email));
        if let Some(phone) = self.opt_string(&t.contact_phone) {
            p.insert("phone".into(), Json::from(phone));
        }

        // Subject and body.
        let subject = self.string(&t.subject).map(trimmed).unwrap_or_default();
        if subject.is_empty() {
            self.problems.push(Problem::error(
                ProblemKind::EmptySubject,
                &t.subject.name,
                "the subject is empty",
            ));
        } else if subject.chars().count() > MAX_SUBJECT_CHARS {
            self.problems.push(Problem::error(
                ProblemKind::Oversized,
                &t.subject.name,
                format!(
                    "the subject has {} characters; at most {MAX_SUBJECT_CHARS} are accepted",
                    subject.chars().count()
                ),
            ));
        }
        p.insert("subject".into(), Json::from(subject));
        let (body_key, body_field) = match (&t.html, &t.text) {
            (Some(h), _) => ("html", h),
            (None, Some(x)) => ("text", x),
            (None, None) => return None,
        };
        let body = self.string(body_field).unwrap_or_default();
        if body.trim().is_empty() {
            self.problems.push(Problem::error(
                ProblemKind::EmptyBody,
                &body_field.name,
                "the first message is empty",
            ));
        } else if body.len() > MAX_BODY_BYTES {
            self.problems.push(Problem::warning(
                ProblemKind::Oversized,
                &body_field.name,
                format!(
                    "the first message is {} KB; large bodies slow bulk creates",
                    body.len() / 1024
                ),
            ));
        }
        p.insert(body_key.into(), Json::from(body));

        // Category.
        let cat_name = self.string(&t.category).map(trimmed).unwrap_or_default();
        let category = self.category(&cat_name, &t.category.name).cloned();
        if let Some(c) = &category {
            p.insert("category".into(), Json::from(c.id));
        }

        // Priority and assignee.
        if let Some(name) = t.priority.as_ref().and_then(|f| {
            let s = self.string(f)?;
            Some((f.name.clone(), trimmed(s)))
        }) {
            let (field, name) = name;
            if !name.is_empty() {
                match self
                    .b
                    .names
                    .priorities
                    .get(norm_name(&name).as_ref())
                    .map(|i| &self.b.schema.priorities[*i])
                {
                    Some(pr) => {
                        p.insert("priority".into(), Json::from(pr.id));
                    }
                    None => self.problems.push(unknown_name(
                        ProblemKind::UnknownPriority,
                        &field,
                        "priority",
                        &name,
                        self.b.schema.priorities.iter().map(|x| x.name.as_str()),
                    )),
                }
            }
        }
        if let Some(field) = &t.assignee
            && let Some(who) = self.string(field).map(trimmed).filter(|s| !s.is_empty())
        {
            match self.b.staff(&who) {
                Some(s) if s.active => {
                    p.insert("assignee".into(), Json::from(s.id));
                }
                Some(s) => self.problems.push(Problem::warning(
                    ProblemKind::InactiveAssignee,
                    &field.name,
                    format!(
                        "agent {:?} is inactive in HappyFox; the ticket will be unassigned",
                        s.email
                    ),
                )),
                None => self.problems.push(Problem::warning(
                    ProblemKind::UnknownAssignee,
                    &field.name,
                    format!("{who:?} is not a HappyFox agent; the ticket will be unassigned"),
                )),
            }
        }

        // Tags, cc, bcc.
        let mut tags: Vec<String> = match &t.tags {
            Some(f) => self
                .list(f)
                .into_iter()
                .map(|s| s.replace(',', " "))
                .collect(),
            None => vec![],
        };
        if let Some(Marker::Tag(f)) = &plan.marker
            && let Some(tag) = self.string(f).map(trimmed).filter(|s| !s.is_empty())
        {
            tags.push(tag);
        }
        tags.dedup();
        if !tags.is_empty() {
            p.insert("tags".into(), Json::from(tags.join(",")));
        }
        for (key, field) in [("cc", &t.cc), ("bcc", &t.bcc)] {
            let Some(field) = field else { continue };
            let (good, bad): (Vec<String>, Vec<String>) =
                self.list(field).into_iter().partition(|e| is_email(e));
            for e in bad {
                self.problems.push(Problem::warning(
                    ProblemKind::InvalidEmail,
                    &field.name,
                    format!("{e:?} is not a valid email address; left out"),
                ));
            }
            if !good.is_empty() {
                p.insert(key.into(), Json::from(good.join(", ")));
            }
        }

        // Dates and visibility.
        if let Some(field) = &t.created_at
            && let Some(s) = self.string(field).map(trimmed).filter(|s| !s.is_empty())
        {
            if is_created_at(&s) {
                p.insert("created_at".into(), Json::from(s));
            } else {
                self.problems.push(Problem::error(
                    ProblemKind::InvalidDate,
                    &field.name,
                    format!(
                        "{s:?} is not yyyy-mm-ddThh:mm:ss; convert it with the `datetime` filter"
                    ),
                ));
            }
        }
        if let Some(field) = &t.due_date
            && let Some(s) = self.string(field).map(trimmed).filter(|s| !s.is_empty())
        {
            match self.date(&s) {
                Some(d) => {
                    p.insert("due_date".into(), Json::from(d));
                }
                None => self.problems.push(Problem::error(
                    ProblemKind::InvalidDate,
                    &field.name,
                    format!("cannot read {s:?} as a date"),
                )),
            }
        }
        if let Some(field) = &t.visible_only_staff {
            let ctx = Ctx::Record(self.ctx);
            if let Some(v) = self.eval(field, ctx) {
                let yes = match v.as_str() {
                    Some(s) => matches!(
                        s.trim().to_ascii_lowercase().as_str(),
                        "true" | "yes" | "1" | "y"
                    ),
                    None => v.is_true(),
                };
                if yes {
                    p.insert("visible_only_staff".into(), Json::from(true));
                }
            }
        }

        // Custom fields.
        let cat_id = category.as_ref().map(|c| c.id);
        for (r, field) in &t.custom_fields {
            if let Some((key, value)) = self.ticket_field(r, field, cat_id) {
                p.insert(key, value);
            }
        }
        for (r, field) in &t.contact_fields {
            if let Some((key, value)) = self.contact_field(r, field) {
                p.insert(key, value);
            }
        }
        if let Some(Marker::CustomField { field: r, value }) = &plan.marker {
            let marker = match value {
                Some(f) => trimmed(self.string(f).unwrap_or_default()),
                None => source_id.to_string(),
            };
            if let (Some(id), Some(cat)) = (r.id, cat_id) {
                match self.b.schema.ticket_field(id) {
                    Some(def) if def.applies_to(cat) => {
                        p.insert(format!("t-cf-{id}"), Json::from(marker));
                    }
                    _ => self.problems.push(Problem::error(
                        ProblemKind::FieldNotInCategory,
                        "marker",
                        format!(
                            "the marker field {:?} does not apply to category {:?}; add the category to the field in HappyFox",
                            r.name,
                            category.as_ref().map(|c| c.name.as_str()).unwrap_or_default()
                        ),
                    )),
                }
            }
        }

        // Final state.
        let mut final_state = FinalState::default();
        if let Some(field) = &plan.final_state.status
            && let Some(name) = self.string(field).map(trimmed).filter(|s| !s.is_empty())
        {
            match self
                .b
                .names
                .statuses
                .get(norm_name(&name).as_ref())
                .map(|i| &self.b.schema.statuses[*i])
            {
                Some(st) => {
                    final_state.status = Some(st.id);
                    final_state.completed = st.behavior == Behavior::Completed;
                }
                None => self.problems.push(unknown_name(
                    ProblemKind::UnknownStatus,
                    &field.name,
                    "status",
                    &name,
                    self.b.schema.statuses.iter().map(|x| x.name.as_str()),
                )),
            }
        }
        for (r, field) in &plan.final_state.custom_fields {
            if let Some((key, value)) = self.ticket_field(r, field, cat_id) {
                final_state.custom_fields.insert(key, value);
            }
        }
        if final_state.completed
            && let Some(cat) = cat_id
        {
            for def in self
                .b
                .schema
                .ticket_custom_fields
                .iter()
                .filter(|f| f.compulsory_on_completed && f.applies_to(cat))
            {
                let key = format!("t-cf-{}", def.id);
                if !p.contains_key(&key) && !final_state.custom_fields.contains_key(&key) {
                    self.problems.push(Problem::error(
                            ProblemKind::CompulsoryOnCompletion,
                            format!("custom_fields.{}", def.name),
                            format!(
                                "{:?} must be filled before the ticket can be moved to a completed status; map it under `ticket.custom_fields` or `final.custom_fields`",
                                def.name
                            ),
                        ));
                }
            }
        }

        // Conversation.
        let conversation = match &plan.conversation {
            Some(conv) => self.conversation(conv),
            None => vec![],
        };
        let attachments = match &plan.ticket.attachments {
            Some(a) => {
                let ticket = self.ctx.value().clone();
                self.attachments(a, Ctx::Record(self.ctx), &ticket, "ticket.attachments")
            }
            None => vec![],
        };

        Some(TicketPlan {
            source_id: source_id.to_string(),
            location: None,
            payload: TicketPayload(p),
            final_state,
            conversation,
            attachments,
        })
    }

    /// A message's attachments; items that cannot be sent are reported, never guessed.
    fn attachments(
        &mut self,
        plan: &AttachmentsPlan,
        ctx: Ctx<'_>,
        ticket: &Value,
        at: &str,
    ) -> Vec<AttachmentRef> {
        let Some(list) = self.eval(&plan.entries, ctx) else {
            return vec![];
        };
        if list.is_undefined() || list.is_none() {
            return vec![];
        }
        let Ok(items) = list.try_iter() else {
            self.problems.push(Problem::error(
                ProblemKind::InvalidConversation,
                &plan.entries.name,
                "does not give a list of attachments",
            ));
            return vec![];
        };
        let mut out = vec![];
        for (i, item) in items.enumerate() {
            let extra = vec![("ticket".to_string(), ticket.clone())];
            let ictx =
                Value::from_dyn_object(RecordCtx::with_extra(item, self.b.sides.clone(), extra));
            let get = |run: &mut Self, f: &Option<Field>| {
                f.as_ref()
                    .and_then(|f| run.string_in(f, Ctx::Value(&ictx)))
                    .map(trimmed)
                    .filter(|s| !s.is_empty())
            };
            let path = get(self, &plan.path);
            let url = get(self, &plan.url);
            let size = get(self, &plan.size)
                .and_then(|s| s.parse::<f64>().ok())
                .map(|f| f as u64);
            let content_type = get(self, &plan.content_type);
            let name = self
                .string_in(&plan.name, Ctx::Value(&ictx))
                .map(trimmed)
                .filter(|s| !s.is_empty());
            let where_ = format!("{at} #{}", i + 1);
            let source = match (path, url) {
                (Some(p), _) => {
                    let pb = std::path::PathBuf::from(&p);
                    if pb.is_absolute()
                        || pb
                            .components()
                            .any(|c| c == std::path::Component::ParentDir)
                    {
                        self.problems.push(Problem::warning(
                            ProblemKind::AttachmentProblem,
                            &where_,
                            format!("{p:?} leaves the export folder; it will not be read"),
                        ));
                        continue;
                    }
                    AttachmentSource::Path(pb)
                }
                (None, Some(u)) => AttachmentSource::Url(u),
                (None, None) => {
                    self.problems.push(Problem::warning(
                        ProblemKind::AttachmentProblem,
                        &where_,
                        "has neither a path nor a URL; left out",
                    ));
                    continue;
                }
            };
            let name = name.unwrap_or_else(|| match &source {
                AttachmentSource::Path(p) => p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                AttachmentSource::Url(u) => u
                    .rsplit('/')
                    .next()
                    .unwrap_or("attachment")
                    .split('?')
                    .next()
                    .unwrap_or("attachment")
                    .to_string(),
            });
            if let Some(sz) = size.filter(|s| *s > MAX_REQUEST_BYTES) {
                self.problems.push(Problem::warning(
                    ProblemKind::Oversized,
                    &where_,
                    format!(
                        "{name:?} is {:.1} MB; HappyFox takes at most 25 MB per request, so it will be reported, not sent",
                        sz as f64 / (1024.0 * 1024.0)
                    ),
                ));
            }
            out.push(AttachmentRef {
                name,
                source,
                size,
                content_type,
            });
        }
        out
    }

    fn date(&self, s: &str) -> Option<String> {
        let t = s.trim();
        if t.len() == 10 && t.parse::<jiff::civil::Date>().is_ok() {
            return Some(t.to_string());
        }
        if let Ok(d) = jiff::civil::Date::strptime("%d/%m/%Y", t) {
            return Some(d.to_string());
        }
        parse_instant(t, None, &self.b.plan.timezone)
            .ok()
            .map(|ts| ts.to_zoned(self.b.plan.timezone.clone()).date().to_string())
    }

    /// A custom field value converted to what the API takes for its type.
    fn typed_value(
        &mut self,
        field: &Field,
        field_name: &str,
        kind: &FieldType,
        choices: Choices<'_>,
    ) -> Option<Json> {
        match kind {
            FieldType::MultipleChoice => {
                let labels = self.list(field);
                if labels.is_empty() {
                    return None;
                }
                let mut ids = vec![];
                for l in labels {
                    ids.push(Json::from(self.choice(field, field_name, &l, choices)?));
                }
                Some(Json::from(ids))
            }
            _ => {
                let s = trimmed(self.string(field)?);
                if s.is_empty() {
                    return None;
                }
                match kind {
                    FieldType::Choice => {
                        self.choice(field, field_name, &s, choices).map(Json::from)
                    }
                    FieldType::Number => match parse_number(&s) {
                        Some(n) => {
                            let rounded = (n * 100.0).round() / 100.0;
                            if rounded.fract() == 0.0 && rounded.abs() < 9.0e15 {
                                Some(Json::from(rounded as i64))
                            } else {
                                serde_json::Number::from_f64(rounded).map(Json::Number)
                            }
                        }
                        None => {
                            self.problems.push(Problem::error(
                                ProblemKind::InvalidNumber,
                                &field.name,
                                format!("cannot read {s:?} as a number for {field_name:?}"),
                            ));
                            None
                        }
                    },
                    FieldType::Date => match self.date(&s) {
                        Some(d) => Some(Json::from(d)),
                        None => {
                            self.problems.push(Problem::error(
                                ProblemKind::InvalidDate,
                                &field.name,
                                format!("cannot read {s:?} as a date for {field_name:?}"),
                            ));
                            None
                        }
                    },
                    FieldType::Text if s.chars().count() > MAX_TEXT_FIELD_CHARS => {
                        self.problems.push(Problem::error(
                            ProblemKind::Oversized,
                            &field.name,
                            format!("{} characters for the text field {field_name:?}; at most {MAX_TEXT_FIELD_CHARS}", s.chars().count()),
                        ));
                        None
                    }
                    _ => Some(Json::from(s)),
                }
            }
        }
    }

    fn choice(
        &mut self,
        field: &Field,
        field_name: &str,
        label: &str,
        choices: Choices<'_>,
    ) -> Option<u64> {
        let found = choices
            .by_name
            .and_then(|m| m.get(norm_name(label).as_ref()).copied());
        let choices = choices.list.unwrap_or(&[]);
        match found {
            Some(id) => Some(id),
            None => {
                let hint = schema::did_you_mean(label, choices.iter().map(|c| c.text.as_str()))
                    .map(|s| format!("did you mean {s:?}?"))
                    .unwrap_or_else(|| {
                        format!(
                            "choices: {}",
                            choices
                                .iter()
                                .map(|c| c.text.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    });
                self.problems.push(Problem::error(
                    ProblemKind::UnknownChoice,
                    &field.name,
                    format!("{label:?} is not a choice of {field_name:?} ({hint}); add it to the value map"),
                ));
                None
            }
        }
    }

    fn ticket_field(
        &mut self,
        r: &FieldRef,
        field: &Field,
        category: Option<u64>,
    ) -> Option<(String, Json)> {
        let id = r.id?;
        let b = self.b;
        let def = b.schema.ticket_field(id)?;
        let choices = Choices {
            list: def.choices.as_deref(),
            by_name: b.names.ticket_choices.get(&id),
        };
        let value = self.typed_value(field, &def.name, &def.kind, choices)?;
        if let Some(cat) = category
            && !def.applies_to(cat)
        {
            let cat_name = self
                .b
                .schema
                .category(cat)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            self.problems.push(Problem::error(
                ProblemKind::FieldNotInCategory,
                &field.name,
                format!(
                    "custom field {:?} does not apply to category {cat_name:?}",
                    def.name
                ),
            ));
            return None;
        }
        Some((format!("t-cf-{id}"), value))
    }

    fn contact_field(&mut self, r: &FieldRef, field: &Field) -> Option<(String, Json)> {
        let id = r.id?;
        let b = self.b;
        let def = b.schema.user_field(id)?;
        let choices = Choices {
            list: def.choices.as_deref(),
            by_name: b.names.user_choices.get(&id),
        };
        let value = self.typed_value(field, &def.name, &def.kind, choices)?;
        Some((format!("c-cf-{id}"), value))
    }

    fn conversation(&mut self, conv: &ConversationPlan) -> Vec<EntryPlan> {
        let ctx = Ctx::Record(self.ctx);
        let Some(entries) = self.eval(&conv.entries, ctx) else {
            return vec![];
        };
        let Ok(iter) = entries.try_iter() else {
            self.problems.push(Problem::error(
                ProblemKind::InvalidConversation,
                &conv.entries.name,
                "does not give a list of entries",
            ));
            return vec![];
        };
        let fallback = conv
            .fallback_agent
            .as_deref()
            .and_then(|f| self.b.staff(f))
            .map(|s| s.id);
        let mut out = vec![];
        for (i, entry) in iter.enumerate() {
            if i == 0 && conv.skip_first {
                continue;
            }
            let extra = vec![
                ("ticket".to_string(), self.ctx.value().clone()),
                ("position".to_string(), Value::from(i)),
            ];
            let ectx =
                Value::from_dyn_object(RecordCtx::with_extra(entry, self.b.sides.clone(), extra));
            if let Some(keep) = &conv.keep_if {
                match self.eval(keep, Ctx::Value(&ectx)) {
                    Some(v) if !v.is_true() => continue,
                    None => continue,
                    _ => {}
                }
            }
            let at = format!("{} #{}", conv.entries.name, i + 1);
            let kind_s = self
                .string_in(&conv.kind, Ctx::Value(&ectx))
                .unwrap_or_default();
            let Some(kind) = EntryKind::parse(&kind_s) else {
                self.problems.push(Problem::error(
                    ProblemKind::InvalidConversation,
                    &at,
                    format!("kind {kind_s:?} must be staff_reply, private_note or contact_reply"),
                ));
                continue;
            };
            let author = self
                .string_in(&conv.author, Ctx::Value(&ectx))
                .map(trimmed)
                .unwrap_or_default();
            let author_name = conv
                .author_name
                .as_ref()
                .and_then(|f| self.string_in(f, Ctx::Value(&ectx)))
                .unwrap_or_default();
            let created_at = conv
                .created_at
                .as_ref()
                .and_then(|f| self.string_in(f, Ctx::Value(&ectx)))
                .unwrap_or_default();
            let body = match (&conv.html, &conv.text) {
                (Some(h), _) => self.string_in(h, Ctx::Value(&ectx)).unwrap_or_default(),
                (None, Some(t)) => crate::mapping::template::text_to_html(
                    &self.string_in(t, Ctx::Value(&ectx)).unwrap_or_default(),
                ),
                (None, None) => String::new(),
            };
            if body.trim().is_empty() {
                self.problems.push(Problem::warning(
                    ProblemKind::InvalidConversation,
                    &at,
                    "empty entry; it will not be posted",
                ));
                continue;
            }
            let (staff, fell_back) = match kind {
                EntryKind::ContactReply => {
                    if !is_email(&author) {
                        self.problems.push(Problem::warning(
                            ProblemKind::UnknownAuthor,
                            &at,
                            format!("contact reply author {author:?} has no valid email; it will be posted as the ticket's contact"),
                        ));
                        (None, true)
                    } else {
                        (None, false)
                    }
                }
                _ => match self.b.staff(&author) {
                    Some(s) if s.active => (Some(s.id), false),
                    other => {
                        let why = if other.is_some() {
                            "is inactive in HappyFox"
                        } else {
                            "is not a HappyFox agent"
                        };
                        match fallback {
                            Some(f) => {
                                self.problems.push(Problem::warning(
                                    ProblemKind::UnknownAuthor,
                                    &at,
                                    format!(
                                        "author {author:?} {why}; posted as the fallback agent"
                                    ),
                                ));
                                (Some(f), true)
                            }
                            None => {
                                self.problems.push(Problem::error(
                                    ProblemKind::UnknownAuthor,
                                    &at,
                                    format!("author {author:?} {why} and the mapping has no `conversation.fallback_agent`"),
                                ));
                                continue;
                            }
                        }
                    }
                },
            };
            let header = match &conv.header {
                Some(h) => {
                    let mut hctx = vec![
                        ("author".to_string(), Value::from(author.clone())),
                        ("author_name".to_string(), Value::from(author_name.clone())),
                        ("created_at".to_string(), Value::from(created_at.clone())),
                    ];
                    hctx.push(("ticket".to_string(), self.ctx.value().clone()));
                    let hv = Value::from_dyn_object(RecordCtx::with_extra(
                        ectx.clone(),
                        self.b.sides.clone(),
                        hctx,
                    ));
                    self.string_in(h, Ctx::Value(&hv)).unwrap_or_default()
                }
                None => String::new(),
            };
            let attachments = match &conv.attachments {
                Some(a) => {
                    let ticket = self.ctx.value().clone();
                    self.attachments(a, Ctx::Value(&ectx), &ticket, &format!("{at} attachments"))
                }
                None => vec![],
            };
            out.push(EntryPlan {
                kind,
                author,
                staff,
                fell_back,
                html: format!("{header}{body}"),
                attachments,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
