//! The later conversation of one record: which entries, their kind, who posts them, the
//! header that keeps the original author and time, and their files.

use serde_json::json;

use super::*;
use crate::attachments::plan_groups;

/// What a message says, as a hash: its kind, author, text and file names, without the
/// agent who signs it or the final state it may carry (both may change between exports
/// without the entry changing). The journal's older rows, which have no key, are
/// recognised by the same hash of their stored body.
pub(crate) fn message_content(kind: &str, author: &str, body: &Map<String, Json>) -> String {
    let text = body
        .get("html")
        .or_else(|| body.get("text"))
        .and_then(Json::as_str)
        .unwrap_or_default();
    let names: Vec<&str> = body
        .get(ATTACHMENTS_KEY)
        .and_then(Json::as_array)
        .map(|files| files.iter().filter_map(|f| f["name"].as_str()).collect())
        .unwrap_or_default();
    short_hash(&[kind, author, text, &names.join("\n")])
}

/// The key of the closing note that carries a ticket's final state when no entry can.
pub(crate) const FINAL_NOTE_KEY: &str = "final";

/// A short, stable digest of some strings (16 hex digits of SHA-256): enough to tell a
/// ticket's entries apart, short enough to keep in the journal for every message.
pub(crate) fn short_hash(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

/// Who posts an entry, and whether that is someone other than its author.
struct Poster {
    staff: Option<u64>,
    fell_back: bool,
}

impl Run<'_, '_> {
    pub(super) fn conversation(&mut self, conv: &ConversationPlan) -> Vec<EntryPlan> {
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
        let mut entries: Vec<Value> = iter.collect();
        if let Some(path) = &conv.order_by {
            sort_entries(&mut entries, path);
        }
        let mut out = vec![];
        let mut keys = std::collections::HashSet::new();
        for (i, entry) in entries.into_iter().enumerate() {
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
            let Some(Poster { staff, fell_back }) = self.poster(kind, &author, fallback, &at)
            else {
                continue;
            };
            if conv.created_at.is_some() && created_at.trim().is_empty() {
                self.problems.push(Problem::warning(
                    ProblemKind::NoTime,
                    &at,
                    "no time in the export: its header names none, and HappyFox shows the time of the import",
                ));
            }
            let header = match &conv.header {
                Some(h) => self.header(
                    h,
                    ectx.clone(),
                    &author,
                    &header_name(&author, &author_name, fell_back),
                    &created_at,
                ),
                None => String::new(),
            };
            let attachments = match &conv.attachments {
                Some(a) => {
                    let ticket = self.ctx.value().clone();
                    self.attachments(a, Ctx::Value(&ectx), &ticket, &format!("{at} attachments"))
                }
                None => vec![],
            };
            let html = format!("{header}{body}");
            let source_key = conv
                .id
                .as_ref()
                .and_then(|f| self.string_in(f, Ctx::Value(&ectx)))
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty());
            let key = match source_key {
                Some(id) => {
                    if !keys.insert(format!("id:{id}")) {
                        self.problems.push(Problem::error(
                            ProblemKind::InvalidConversation,
                            &at,
                            format!("entry id {id:?} is used twice in this ticket's conversation; `conversation.id` must give each entry its own id"),
                        ));
                        continue;
                    }
                    format!("id:{id}")
                }
                None => {
                    // Identical entries (same time, author and text) are told apart by
                    // their order among themselves.
                    let base = format!("h:{}", short_hash(&[&created_at, &author, &body]));
                    let mut key = base.clone();
                    let mut n = 1;
                    while !keys.insert(key.clone()) {
                        n += 1;
                        key = format!("{base}#{n}");
                    }
                    key
                }
            };
            out.push(EntryPlan {
                key,
                kind,
                author,
                staff,
                fell_back,
                html,
                attachments,
            });
        }
        if !out.is_empty() && !self.b.kind_without.is_empty() {
            let names = self.b.kind_without.join("`, `");
            self.problems.push(Problem::warning(
                ProblemKind::MissingLookup,
                &conv.kind.name,
                format!(
                    "the kind of {} entries was decided without side file `{names}`, which is absent: they may be posted as the wrong kind (an agent's public reply as a contact reply); give the file (or --side {}=PATH), as the mapping's comment on `kind` says",
                    out.len(),
                    self.b.kind_without[0]
                ),
            ));
        }
        out
    }

    /// A message's header (`conversation.header`, `ticket.first_message.header`): the
    /// template sees `base`'s fields, `author`, `author_name`, `created_at` and `ticket`.
    pub(super) fn header(
        &mut self,
        h: &Field,
        base: Value,
        author: &str,
        author_name: &str,
        created_at: &str,
    ) -> String {
        let hctx = vec![
            ("author".to_string(), Value::from(author)),
            ("author_name".to_string(), Value::from(author_name)),
            ("created_at".to_string(), Value::from(created_at)),
            ("ticket".to_string(), self.ctx.value().clone()),
        ];
        let hv = Value::from_dyn_object(RecordCtx::with_extra(base, self.b.sides.clone(), hctx));
        self.string_in(h, Ctx::Value(&hv)).unwrap_or_default()
    }

    /// Who posts an entry: a contact reply its author's contact (or the ticket's contact
    /// when the author has no valid email); a staff post the author's agent, or the
    /// fallback agent with a warning. `None` (with an error) when nobody can post it.
    fn poster(
        &mut self,
        kind: EntryKind,
        author: &str,
        fallback: Option<u64>,
        at: &str,
    ) -> Option<Poster> {
        match kind {
            EntryKind::ContactReply => {
                if !is_email(author) {
                    self.problems.push(Problem::warning(
                        ProblemKind::UnknownAuthor,
                        at,
                        format!("contact reply author {author:?} has no valid email; it will be posted as the ticket's contact"),
                    ));
                    Some(Poster {
                        staff: None,
                        fell_back: true,
                    })
                } else {
                    Some(Poster {
                        staff: None,
                        fell_back: false,
                    })
                }
            }
            _ => match self.b.staff(author) {
                Some(s) if s.active => Some(Poster {
                    staff: Some(s.id),
                    fell_back: false,
                }),
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
                                at,
                                format!("author {author:?} {why}; posted as the fallback agent"),
                            ));
                            Some(Poster {
                                staff: Some(f),
                                fell_back: true,
                            })
                        }
                        None => {
                            self.problems.push(Problem::error(
                                ProblemKind::UnknownAuthor,
                                at,
                                format!("author {author:?} {why} and the mapping has no `conversation.fallback_agent`"),
                            ));
                            None
                        }
                    }
                }
            },
        }
    }
}

/// Sorts a ticket's entries by the value at `path` in each, stably (`conversation.order_by`).
fn sort_entries(entries: &mut [Value], path: &str) {
    // `sort_by_cached_key` is stable and reads each entry's key once.
    entries.sort_by_cached_key(|e| OrderKey::of(&value_at(e, path)));
}

/// The value at `path` in an entry: the field of that exact name (CSV columns with spaces
/// or dots), else the dotted path (`_parent.created_at`, `items.0.at`).
fn value_at(entry: &Value, path: &str) -> Value {
    if let Ok(v) = entry.get_item(&Value::from(path))
        && !v.is_undefined()
        && !v.is_none()
    {
        return v;
    }
    path.split('.')
        .try_fold(entry.clone(), |v, part| {
            let next = match part.parse::<usize>() {
                Ok(i) if v.kind() == minijinja::value::ValueKind::Seq => {
                    v.get_item(&Value::from(i))
                }
                _ => v.get_attr(part),
            };
            next.ok().filter(|n| !n.is_undefined())
        })
        .unwrap_or(Value::UNDEFINED)
}

/// An `order_by` value compared the way a side file's `order_by` is (SQLite's order in
/// `source::side::build`): numbers by value, then text byte by byte, then entries without
/// a value; booleans count as 0 and 1, lists and objects as no value. Kept to the same
/// order so that the same `order_by` means the same thing inline and in a side file.
#[derive(Debug, Clone, PartialEq)]
enum OrderKey {
    Int(i64),
    Real(f64),
    Text(String),
    Missing,
}

impl OrderKey {
    fn of(v: &Value) -> OrderKey {
        use minijinja::value::ValueKind;
        match v.kind() {
            ValueKind::Bool => OrderKey::Int(i64::from(v.is_true())),
            ValueKind::Number => match i64::try_from(v.clone()) {
                Ok(i) => OrderKey::Int(i),
                Err(_) => f64::try_from(v.clone()).map_or(OrderKey::Missing, |f| {
                    if f.is_nan() {
                        OrderKey::Missing
                    } else {
                        OrderKey::Real(f)
                    }
                }),
            },
            ValueKind::String => OrderKey::Text(v.as_str().unwrap_or_default().to_owned()),
            _ => OrderKey::Missing,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            OrderKey::Int(_) | OrderKey::Real(_) => 0,
            OrderKey::Text(_) => 1,
            OrderKey::Missing => 2,
        }
    }
}

impl Eq for OrderKey {}

impl PartialOrd for OrderKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use OrderKey::*;
        match (self, other) {
            (Int(a), Int(b)) => a.cmp(b),
            (Int(a), Real(b)) => (*a as f64).total_cmp(b),
            (Real(a), Int(b)) => a.total_cmp(&(*b as f64)),
            (Real(a), Real(b)) => a.total_cmp(b),
            (Text(a), Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// The body of the closing note that carries a final state no other post could carry.
pub(crate) const CLOSING_NOTE: &str = "<p><i>Migrated with hfmigrate: final state applied.</i></p>";

/// What a message after the create is: the entry kinds of the source, and the two kinds
/// of private note the migration itself writes. The journal records it by [`name`].
///
/// [`name`]: MessageKind::name
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum MessageKind {
    StaffReply,
    PrivateNote,
    ContactReply,
    /// A private note carrying files beyond an entry's first 25 MB request.
    AttachmentsNote,
    /// The closing note: the final state when no entry can carry it.
    FinalNote,
    /// The whole later conversation in one private note (`history: transcript`).
    Transcript,
}

impl MessageKind {
    /// The name the journal stores.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::StaffReply => "staff_reply",
            MessageKind::PrivateNote => "private_note",
            MessageKind::ContactReply => "contact_reply",
            MessageKind::AttachmentsNote => "attachments_note",
            MessageKind::FinalNote => "final_note",
            MessageKind::Transcript => "transcript",
        }
    }
}

/// One POST a valid ticket needs after its creation, with its exact body (files under
/// [`ATTACHMENTS_KEY`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlannedMessage {
    /// 1-based order within the ticket.
    pub position: i64,
    /// What the journal knows it by across exports (see [`EntryPlan::key`]); the
    /// migration's own notes are keyed by what they belong to.
    pub key: String,
    /// A hash of its content without the final state it may carry, which a delta
    /// compares apart.
    pub content: String,
    pub kind: MessageKind,
    /// The original author's email; empty for the migration's own notes and for contact
    /// replies posted as the ticket's contact.
    pub author: String,
    pub author_name: String,
    pub body: Map<String, Json>,
}

/// The author's name as the header shows it. A reply that falls back to the migration
/// agent keeps who really wrote it: the original email goes with the name.
fn header_name(author: &str, author_name: &str, fell_back: bool) -> String {
    match (fell_back, author.is_empty(), author_name.trim().is_empty()) {
        (true, false, false) if !author_name.contains(author) => {
            format!("{author_name} ({author})")
        }
        _ => author_name.to_owned(),
    }
}

/// The agent who signs closing notes: the mapping's fallback agent, else the first
/// active account admin, else the first active agent.
pub fn closing_staff(plan: &Plan, schema: &Schema) -> Option<u64> {
    let fallback = plan
        .conversation
        .as_ref()
        .and_then(|c| c.fallback_agent.as_deref())
        .and_then(|f| {
            schema.staff.iter().find(|s| {
                s.active && (schema::same_name(&s.email, f) || schema::same_name(&s.name, f))
            })
        });
    fallback
        .or_else(|| schema.staff.iter().find(|s| s.active && s.is_account_admin))
        .or_else(|| schema.staff.iter().find(|s| s.active))
        .map(|s| s.id)
}

/// The messages a valid ticket needs after creation, with their exact bodies; the final
/// state is folded into the last staff post, or a closing note when needed. The dry run
/// counts these and the import journals them: both see the same plan.
pub(crate) fn plan_messages(
    ticket: &TicketPlan,
    schema: &Schema,
    closing_staff: Option<u64>,
) -> Vec<PlannedMessage> {
    plan_messages_as(ticket, schema, closing_staff, ticket.transcript)
}

/// [`plan_messages`] with the history mode given: a delta keeps the mode a ticket was
/// first journaled with, whatever `history_when` says of the newer export.
pub(crate) fn plan_messages_as(
    ticket: &TicketPlan,
    schema: &Schema,
    closing_staff: Option<u64>,
    as_transcript: bool,
) -> Vec<PlannedMessage> {
    let mut out: Vec<PlannedMessage> = Vec::new();
    let mut push = |kind: MessageKind, body: Map<String, Json>, author: String, key: String| {
        out.push(PlannedMessage {
            position: out.len() as i64 + 1,
            key,
            content: message_content(kind.name(), &author, &body),
            kind,
            author,
            author_name: String::new(),
            body,
        })
    };
    let transcript = match closing_staff {
        Some(staff) if as_transcript && !ticket.conversation.is_empty() => Some(staff),
        _ => None,
    };
    if let Some(staff) = transcript {
        let (body, rest) = transcript_note(&ticket.conversation, staff);
        push(
            MessageKind::Transcript,
            body,
            String::new(),
            TRANSCRIPT_KEY.into(),
        );
        let total = rest.len() + 1;
        for (k, group) in rest.into_iter().enumerate() {
            push(
                MessageKind::AttachmentsNote,
                continuation_note(staff, k + 2, total, group),
                String::new(),
                format!("{TRANSCRIPT_KEY}/files{}", k + 2),
            );
        }
    }
    for e in ticket.conversation.iter().filter(|_| transcript.is_none()) {
        let mut body = Map::new();
        let kind = match e.kind {
            EntryKind::StaffReply => {
                body.insert("staff".into(), json!(e.staff));
                body.insert("html".into(), json!(e.html));
                body.insert("update_customer".into(), json!(false));
                body.insert("send_survey".into(), json!(false));
                MessageKind::StaffReply
            }
            EntryKind::PrivateNote => {
                body.insert("staff".into(), json!(e.staff));
                body.insert("html".into(), json!(e.html));
                MessageKind::PrivateNote
            }
            EntryKind::ContactReply => {
                body.insert("text".into(), json!(e.html));
                MessageKind::ContactReply
            }
        };
        let author = if e.fell_back && e.kind == EntryKind::ContactReply {
            String::new()
        } else {
            e.author.clone()
        };
        // HappyFox takes 25 MB per request: files beyond the first group (by the sizes the
        // export states) follow in private notes right after the entry, in order.
        let groups = attachment_groups(&e.attachments, closing_staff.is_some());
        let mut groups = groups.into_iter();
        if let Some(first) = groups.next() {
            body.insert(
                ATTACHMENTS_KEY.into(),
                serde_json::to_value(&first).unwrap_or_default(),
            );
        }
        push(kind, body, author, e.key.clone());
        let rest: Vec<_> = groups.collect();
        let total = rest.len() + 1;
        for (k, group) in rest.into_iter().enumerate() {
            let note = match closing_staff {
                Some(staff) => continuation_note(staff, k + 2, total, group),
                None => continue,
            };
            push(
                MessageKind::AttachmentsNote,
                note,
                String::new(),
                format!("{}/files{}", e.key, k + 2),
            );
        }
    }
    let f = &ticket.final_state;
    if f.needs_post(schema) {
        let carrier = out
            .last_mut()
            .filter(|m| m.kind != MessageKind::ContactReply);
        let target = match carrier {
            Some(m) => Some(&mut m.body),
            None => match closing_staff {
                Some(staff) => {
                    let mut body = Map::new();
                    body.insert("staff".into(), json!(staff));
                    body.insert("html".into(), json!(CLOSING_NOTE));
                    out.push(PlannedMessage {
                        position: out.len() as i64 + 1,
                        key: FINAL_NOTE_KEY.into(),
                        content: closing_note_content().to_string(),
                        kind: MessageKind::FinalNote,
                        author: String::new(),
                        author_name: String::new(),
                        body,
                    });
                    out.last_mut().map(|m| &mut m.body)
                }
                None => None,
            },
        };
        if let Some(body) = target {
            if let Some(status) = f.status {
                body.insert("status".into(), json!(status));
            }
            for (k, v) in &f.custom_fields {
                body.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// The content hash of a closing note, which is the same for every ticket: its kind and
/// fixed text (the staff who signs it and the state it carries are not part of it). Most
/// closed tickets of an export get one, so it is hashed once, not once per ticket.
fn closing_note_content() -> &'static str {
    static CONTENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CONTENT.get_or_init(|| {
        let mut body = Map::new();
        body.insert("html".into(), json!(CLOSING_NOTE));
        message_content(MessageKind::FinalNote.name(), "", &body)
    })
}

/// The key of a ticket's transcript note; a delta compares its content as a whole.
pub(crate) const TRANSCRIPT_KEY: &str = "transcript";

/// The note after a message that carries its files beyond the first request.
fn continuation_note(
    staff: u64,
    part: usize,
    total: usize,
    files: Vec<AttachmentRef>,
) -> Map<String, Json> {
    let mut note = Map::new();
    note.insert("staff".into(), json!(staff));
    note.insert(
        "html".into(),
        json!(format!(
            "<p><i>Attachments continued ({part}/{total})</i></p>"
        )),
    );
    note.insert(
        ATTACHMENTS_KEY.into(),
        serde_json::to_value(&files).unwrap_or_default(),
    );
    note
}

/// What a transcript says an entry was, since one private note cannot be a reply.
fn entry_label(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::StaffReply => "Reply to the customer",
        EntryKind::PrivateNote => "Private note",
        EntryKind::ContactReply => "Reply from the customer",
    }
}

/// The transcript note of a ticket's later entries, oldest first: each entry's kind, its
/// header (author and original time) and its HTML as it would have been posted; and its
/// files beyond the first 25 MB request, for continuation notes.
fn transcript_note(
    entries: &[EntryPlan],
    staff: u64,
) -> (Map<String, Json>, Vec<Vec<AttachmentRef>>) {
    let mut html = format!(
        "<p><i>Conversation migrated as one transcript: {} entr{}, oldest first.</i></p>",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" }
    );
    for e in entries {
        html.push_str(&format!(
            "<hr><p><b>{}</b></p>{}",
            entry_label(e.kind),
            e.html
        ));
    }
    let files: Vec<AttachmentRef> = entries
        .iter()
        .flat_map(|e| e.attachments.iter().cloned())
        .collect();
    let mut groups = attachment_groups(&files, true).into_iter();
    let mut body = Map::new();
    body.insert("staff".into(), json!(staff));
    body.insert("html".into(), json!(html));
    if let Some(first) = groups.next() {
        body.insert(
            ATTACHMENTS_KEY.into(),
            serde_json::to_value(&first).unwrap_or_default(),
        );
    }
    (body, groups.collect())
}

/// A message's files split into requests of at most 25 MB by their stated sizes (unknown
/// sizes count as 0; a single file over the limit stays in the first group, where sending
/// reports it). Without an agent to sign continuation notes everything stays together.
fn attachment_groups(files: &[AttachmentRef], can_split: bool) -> Vec<Vec<AttachmentRef>> {
    if files.is_empty() {
        return vec![];
    }
    if !can_split {
        return vec![files.to_vec()];
    }
    let sized: Vec<(&str, u64)> = files
        .iter()
        .map(|a| (a.name.as_str(), a.size.unwrap_or(0)))
        .collect();
    let (groups, oversize) = match plan_groups(&sized, MAX_REQUEST_BYTES) {
        Ok(g) => (g, vec![]),
        Err(o) => (
            o.groups,
            o.files.iter().map(|f| f.index).collect::<Vec<_>>(),
        ),
    };
    let mut out: Vec<Vec<AttachmentRef>> = groups
        .into_iter()
        .map(|g| g.into_iter().map(|i| files[i].clone()).collect())
        .collect();
    if out.is_empty() {
        out.push(vec![]);
    }
    out[0].extend(oversize.into_iter().map(|i| files[i].clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closing note's hash, computed once, is the hash of any ticket's closing note.
    #[test]
    fn the_closing_note_hashes_as_its_body_does() {
        for staff in [1, 7] {
            let mut body = Map::new();
            body.insert("staff".into(), json!(staff));
            body.insert("html".into(), json!(CLOSING_NOTE));
            let each = message_content(MessageKind::FinalNote.name(), "", &body);
            assert_eq!(closing_note_content(), each);
        }
    }

    fn file(name: &str, mb: u64) -> AttachmentRef {
        AttachmentRef {
            name: name.into(),
            source: AttachmentSource::Path(name.into()),
            size: Some(mb * 1024 * 1024),
            content_type: None,
        }
    }

    fn ticket_with(files: Vec<AttachmentRef>) -> TicketPlan {
        TicketPlan {
            source_id: SourceId::new("1").unwrap(),
            location: None,
            payload: Default::default(),
            final_state: Default::default(),
            conversation: vec![EntryPlan {
                key: "id:1".into(),
                kind: EntryKind::StaffReply,
                author: "a@b.co".into(),
                staff: Some(2),
                fell_back: false,
                html: "<p>files</p>".into(),
                attachments: files,
            }],
            transcript: false,
            attachments: vec![],
        }
    }

    fn files_of(m: &PlannedMessage) -> Vec<String> {
        m.body[ATTACHMENTS_KEY]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| f["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn a_transcript_is_one_note_with_every_entry_its_files_and_the_final_state() {
        let schema = Schema::default();
        let mut t = ticket_with(vec![file("a", 20), file("b", 1)]);
        let mut note = t.conversation[0].clone();
        note.key = "id:2".into();
        note.kind = EntryKind::PrivateNote;
        note.html = "<p>second</p>".into();
        note.attachments = vec![file("c", 10)];
        let mut reply = note.clone();
        reply.key = "id:3".into();
        reply.kind = EntryKind::ContactReply;
        reply.html = "<p>third</p>".into();
        reply.attachments = vec![];
        t.conversation.extend([note, reply]);
        t.final_state.status = Some(5);
        t.transcript = true;
        let m = plan_messages(&t, &schema, Some(9));
        let kinds: Vec<MessageKind> = m.iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds,
            [MessageKind::Transcript, MessageKind::AttachmentsNote]
        );
        let html = m[0].body["html"].as_str().unwrap();
        let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s} not in {html}"));
        assert!(at("3 entries") < at("Reply to the customer"));
        assert!(at("<p>files</p>") < at("Private note"));
        assert!(at("<p>second</p>") < at("Reply from the customer"));
        assert!(at("Reply from the customer") < at("<p>third</p>"));
        assert_eq!(m[0].body["staff"], 9);
        assert_eq!(files_of(&m[0]), vec!["a", "b"]);
        assert_eq!(files_of(&m[1]), vec!["c"]);
        // The final state rides on the last staff post, the continuation here.
        assert_eq!(m[1].body["status"], 5);
        // Without an agent to sign it, the conversation keeps its full history.
        let full = plan_messages(&t, &schema, None);
        assert_eq!(full.len(), 3);
    }

    /// The side file's own case (`order_by_numbers_strings_missing_and_ties` in
    /// `source::side::build`), inline: the same order, so `order_by` means one thing.
    #[test]
    fn order_by_sorts_like_a_side_file_numbers_text_missing_stable() {
        let entries = |json: Json| -> Vec<Value> {
            json.as_array()
                .unwrap()
                .iter()
                .map(Value::from_serialize)
                .collect()
        };
        let names = |v: &[Value]| -> Vec<String> {
            v.iter()
                .map(|e| e.get_attr("n").unwrap().to_string())
                .collect()
        };
        let mut v = entries(json!([
            {"n": "a", "o": 10}, {"n": "b"}, {"n": "c", "o": 9}, {"n": "d", "o": 10},
            {"n": "e", "o": 2.5}, {"n": "f", "o": null}, {"n": "t", "o": "2"},
            {"n": "u", "o": true}
        ]));
        sort_entries(&mut v, "o");
        assert_eq!(names(&v), ["u", "e", "c", "a", "d", "t", "b", "f"]);
        let mut v = entries(json!([
            {"n": "g", "p": {"at": "2024-01-02T00:00:00Z"}},
            {"n": "h", "p": {"at": "2023-12-31T23:00:00Z"}},
            {"n": "i", "p": {}}
        ]));
        sort_entries(&mut v, "p.at");
        assert_eq!(names(&v), ["h", "g", "i"]);
        // A column whose name has spaces (or dots) is read whole.
        let mut v = entries(json!([
            {"n": "j", "Created At": "2024-05-02"}, {"n": "k", "Created At": "2024-05-01"}
        ]));
        sort_entries(&mut v, "Created At");
        assert_eq!(names(&v), ["k", "j"]);
    }

    #[test]
    fn replies_over_25_mb_continue_in_notes_right_after_them() {
        let schema = Schema::default();
        let t = ticket_with(vec![file("a", 20), file("b", 10), file("c", 10)]);
        let m = plan_messages(&t, &schema, Some(9));
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].kind, m[1].kind),
            (MessageKind::StaffReply, MessageKind::AttachmentsNote)
        );
        assert_eq!(files_of(&m[0]), vec!["a"]);
        assert_eq!(files_of(&m[1]), vec!["b", "c"]);
        assert!(
            m[1].body["html"]
                .as_str()
                .unwrap()
                .contains("Attachments continued (2/2)")
        );
        assert_eq!(m[1].body["staff"], 9);
        // At exactly 25 MB everything goes with the reply.
        let m = plan_messages(
            &ticket_with(vec![file("a", 20), file("b", 5)]),
            &schema,
            Some(9),
        );
        assert_eq!(m.len(), 1);
        // A single file over 25 MB stays with the reply, where sending reports it.
        let m = plan_messages(
            &ticket_with(vec![file("big", 30), file("s", 1)]),
            &schema,
            Some(9),
        );
        assert_eq!(m.len(), 1);
        assert_eq!(files_of(&m[0]).len(), 2);
        // Nobody to sign a continuation note: nothing is split.
        let m = plan_messages(
            &ticket_with(vec![file("a", 20), file("b", 10)]),
            &schema,
            None,
        );
        assert_eq!(m.len(), 1);
    }
}
