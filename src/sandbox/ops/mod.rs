//! The writes HappyFox accepts, each validated the way HappyFox validates it.
//!
//! Every write is two steps: check the whole payload against the schema and the store
//! (collecting every error, in a stable field order), then apply it. Nothing is stored when
//! any check fails, so a rejected request leaves no trace, exactly like the real API.

use serde_json::{Map, Value};

use super::store::{
    Attachment, Author, Body, Contact, Message, Phone, Seconds, Store, Ticket, Update, set_cf,
};
use super::validate::{
    self as v, CfValue, FieldErrors, INVALID_CHOICE, INVALID_DATE, INVALID_DATETIME, INVALID_EMAIL,
    INVALID_INTEGER, INVALID_VALUE, REQUIRED,
};
use crate::schema::{Behavior, Schema};

/// A payload as a flat map: a JSON object, or a form whose values are strings (repeated
/// keys become lists).
pub type Payload = Map<String, Value>;

/// Which list a custom field key refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CfKind {
    Ticket,
    Contact,
}

/// Splits `t-cf-3` / `c-cf-3` / `ccf-3` keys. `Err` for a key with a custom-field prefix
/// and no valid id (reported as a nonexistent field).
fn cf_key(key: &str, contact_prefixes: &[&str]) -> Option<Result<(CfKind, u64), ()>> {
    let (kind, rest) = if let Some(rest) = key.strip_prefix("t-cf-") {
        (CfKind::Ticket, rest)
    } else if let Some(rest) = contact_prefixes.iter().find_map(|p| key.strip_prefix(p)) {
        (CfKind::Contact, rest)
    } else {
        return None;
    };
    Some(
        v::as_id(&Value::String(rest.to_string()))
            .map(|id| (kind, id))
            .ok_or(()),
    )
}

/// Custom-field values to write, by field id (`None` clears the field).
type CfWrites = Vec<(u64, Option<CfValue>)>;

/// Custom-field values of a payload, checked against the schema. `category` limits
/// ticket fields to those that apply to it.
fn read_custom_fields(
    schema: &Schema,
    payload: &Payload,
    category: Option<u64>,
    contact_prefixes: &[&str],
    errors: &mut FieldErrors,
) -> (CfWrites, CfWrites) {
    let mut ticket = Vec::new();
    let mut contact = Vec::new();
    let mut keys: Vec<(&String, &Value)> = payload.iter().collect();
    keys.sort_by_key(|(k, _)| {
        let id = k
            .rsplit('-')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        (!k.starts_with("t-cf-"), id)
    });
    for (key, value) in keys {
        let Some(parsed) = cf_key(key, contact_prefixes) else {
            continue;
        };
        let Ok((kind, id)) = parsed else {
            errors.add(key, v::UNKNOWN_FIELD);
            continue;
        };
        match kind {
            CfKind::Ticket => {
                let Some(field) = schema.ticket_field(id) else {
                    errors.add(key, v::UNKNOWN_FIELD);
                    continue;
                };
                if let Some(cat) = category
                    && !field.applies_to(cat)
                {
                    errors.add(key, v::NOT_IN_CATEGORY);
                    continue;
                }
                match v::parse_cf_value(&field.kind, field.choices.as_deref(), value) {
                    Ok(val) => ticket.push((id, val)),
                    Err(msg) => errors.add(key, msg),
                }
            }
            CfKind::Contact => {
                let Some(field) = schema.user_field(id) else {
                    errors.add(key, v::UNKNOWN_FIELD);
                    continue;
                };
                match v::parse_cf_value(&field.kind, field.choices.as_deref(), value) {
                    Ok(val) => contact.push((id, val)),
                    Err(msg) => errors.add(key, msg),
                }
            }
        }
    }
    (ticket, contact)
}

/// An active agent's id, or the error to report.
fn active_staff(schema: &Schema, value: Option<&Value>) -> Result<u64, &'static str> {
    if v::is_blank(value) {
        return Err(REQUIRED);
    }
    value
        .and_then(v::as_id)
        .and_then(|id| schema.staff_member(id))
        .filter(|s| s.active)
        .map(|s| s.id)
        .ok_or(INVALID_CHOICE)
}

/// `assignee`: absent leaves it unchanged (`None`), `null` unassigns (`Some(None)`).
fn read_assignee(
    schema: &Schema,
    payload: &Payload,
    errors: &mut FieldErrors,
) -> Option<Option<u64>> {
    let value = payload.get("assignee")?;
    if v::is_blank(Some(value)) {
        return Some(None);
    }
    match active_staff(schema, Some(value)) {
        Ok(id) => Some(Some(id)),
        Err(msg) => {
            errors.add("assignee", msg);
            None
        }
    }
}

fn read_text(payload: &Payload, key: &str, errors: &mut FieldErrors) -> Option<String> {
    let value = payload.get(key)?;
    if value.is_null() {
        return None;
    }
    match v::as_text(value) {
        Some(t) => Some(t),
        None => {
            errors.add(key, INVALID_VALUE);
            None
        }
    }
}

fn read_email_list(payload: &Payload, key: &str, errors: &mut FieldErrors) -> String {
    let text = read_text(payload, key, errors).unwrap_or_default();
    if !v::valid_email_list(&text) {
        errors.add(key, INVALID_EMAIL);
    }
    text
}

fn read_bool(payload: &Payload, key: &str, errors: &mut FieldErrors) -> bool {
    match payload.get(key) {
        None | Some(Value::Null) => false,
        Some(value) => v::as_bool(value).unwrap_or_else(|| {
            errors.add(key, "Must be a valid boolean.");
            false
        }),
    }
}

fn read_due_date(payload: &Payload, errors: &mut FieldErrors) -> Option<Option<String>> {
    let value = payload.get("due_date")?;
    if v::is_blank(Some(value)) {
        return Some(None);
    }
    match value.as_str().and_then(v::parse_due_date) {
        Some(d) => Some(Some(d.to_string())),
        None => {
            errors.add("due_date", INVALID_DATE);
            None
        }
    }
}

fn read_id_of<T>(
    payload: &Payload,
    key: &str,
    lookup: impl Fn(u64) -> Option<T>,
    errors: &mut FieldErrors,
) -> Option<T> {
    let value = payload.get(key);
    if v::is_blank(value) {
        return None;
    }
    match value.and_then(v::as_id).and_then(lookup) {
        Some(t) => Some(t),
        None => {
            errors.add(key, INVALID_CHOICE);
            None
        }
    }
}

/// The message body of a create or staff update: `text`/`plaintext` and/or `html`.
fn read_body(payload: &Payload, text_key: &str, errors: &mut FieldErrors) -> Option<Body> {
    let text = read_text(payload, text_key, errors).filter(|t| !t.trim().is_empty());
    let html = read_text(payload, "html", errors).filter(|t| !t.trim().is_empty());
    match (text, html) {
        (Some(text), Some(html)) => Some(Body::Both { text, html }),
        (Some(t), None) => Some(Body::Text(t)),
        (None, Some(h)) => Some(Body::Html(h)),
        (None, None) => None,
    }
}

/// Who the ticket is for: an existing contact, or a new one made from name and email.
enum Requester {
    Existing(u64),
    New {
        name: String,
        email: String,
        phone: Option<String>,
    },
}

/// A create payload that passed validation.
pub struct NewTicket {
    requester: Requester,
    subject: String,
    body: Body,
    category: u64,
    priority: u64,
    assignee: Option<u64>,
    tags: Vec<String>,
    cc: String,
    bcc: String,
    created_at: Option<Seconds>,
    due_date: Option<String>,
    visible_only_staff: bool,
    ticket_cf: CfWrites,
    contact_cf: CfWrites,
}

/// Checks a `POST tickets/` payload (one item of a bulk list, or a single create).
pub fn check_new_ticket(
    schema: &Schema,
    store: &Store,
    payload: &Payload,
) -> Result<NewTicket, FieldErrors> {
    let mut e = FieldErrors::default();
    let requester = if !v::is_blank(payload.get("client")) {
        match payload
            .get("client")
            .and_then(v::as_id)
            .filter(|id| store.contacts.contains_key(id))
        {
            Some(id) => Some(Requester::Existing(id)),
            None => {
                e.add("client", INVALID_CHOICE);
                None
            }
        }
    } else {
        let name = read_text(payload, "name", &mut e).filter(|n| !n.trim().is_empty());
        let email = read_text(payload, "email", &mut e).filter(|n| !n.trim().is_empty());
        if name.is_none() {
            e.add("name", REQUIRED);
        }
        match &email {
            None => e.add("email", REQUIRED),
            Some(m) if !v::valid_email(m.trim()) => e.add("email", INVALID_EMAIL),
            Some(_) => {}
        }
        let phone = read_text(payload, "phone", &mut e).filter(|p| !p.trim().is_empty());
        match (name, email) {
            (Some(name), Some(email)) => Some(Requester::New {
                name,
                email: email.trim().to_string(),
                phone,
            }),
            _ => None,
        }
    };
    let subject = read_text(payload, "subject", &mut e).filter(|s| !s.trim().is_empty());
    if subject.is_none() && !e.0.iter().any(|(f, _)| f == "subject") {
        e.add("subject", REQUIRED);
    }
    let body = read_body(payload, "text", &mut e);
    if body.is_none() {
        e.add("text", v::TEXT_OR_HTML);
    }
    let category = if v::is_blank(payload.get("category")) {
        e.add("category", REQUIRED);
        None
    } else {
        read_id_of(
            payload,
            "category",
            |id| schema.category(id).filter(|c| c.public).map(|c| c.id),
            &mut e,
        )
    };
    let priority = if v::is_blank(payload.get("priority")) {
        schema.default_priority().map(|p| p.id)
    } else {
        read_id_of(
            payload,
            "priority",
            |id| schema.priority(id).map(|p| p.id),
            &mut e,
        )
    };
    let assignee = read_assignee(schema, payload, &mut e).flatten();
    let tags = read_text(payload, "tags", &mut e)
        .map(|t| v::split_tags(&t))
        .unwrap_or_default();
    let cc = read_email_list(payload, "cc", &mut e);
    let bcc = read_email_list(payload, "bcc", &mut e);
    let created_at = match payload.get("created_at") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_str().and_then(v::parse_created_at) {
            Some(s) => Some(s),
            None => {
                e.add("created_at", INVALID_DATETIME);
                None
            }
        },
    };
    let due_date = read_due_date(payload, &mut e).flatten();
    let visible_only_staff = read_bool(payload, "visible_only_staff", &mut e);
    let (ticket_cf, contact_cf) = read_custom_fields(schema, payload, category, &["c-cf-"], &mut e);
    if let Some(cat) = category {
        for f in schema
            .ticket_custom_fields
            .iter()
            .filter(|f| f.required && f.applies_to(cat))
        {
            if !ticket_cf
                .iter()
                .any(|(id, val)| *id == f.id && val.is_some())
            {
                e.add(&format!("t-cf-{}", f.id), REQUIRED);
            }
        }
    }
    match (requester, subject, body, category, priority) {
        (Some(requester), Some(subject), Some(body), Some(category), Some(priority))
            if e.is_empty() =>
        {
            Ok(NewTicket {
                requester,
                subject,
                body,
                category,
                priority,
                assignee,
                tags,
                cc,
                bcc,
                created_at,
                due_date,
                visible_only_staff,
                ticket_cf,
                contact_cf,
            })
        }
        _ => {
            if e.is_empty() {
                // The schema has no priority at all: nothing a client can fix.
                e.add("priority", REQUIRED);
            }
            Err(e)
        }
    }
}

fn new_contact(store: &mut Store, name: String, email: Option<String>, now: Seconds) -> u64 {
    store.last_contact_id += 1;
    let id = store.last_contact_id;
    if let Some(m) = &email {
        store.by_email.insert(m.to_lowercase(), id);
    }
    store.contacts.insert(
        id,
        Contact {
            id,
            name,
            email,
            phones: Vec::new(),
            created_at: now,
            updated_at: now,
            custom: Vec::new(),
            login_enabled: true,
            tickets: Vec::new(),
        },
    );
    id
}

/// Stores a checked ticket and returns its id. The contact is created when the email is
/// new; the first update is the contact's message.
pub fn create_ticket(
    schema: &Schema,
    store: &mut Store,
    t: NewTicket,
    attachments: Vec<Attachment>,
    now: Seconds,
) -> u64 {
    let user = match t.requester {
        Requester::Existing(id) => id,
        Requester::New { name, email, phone } => {
            let id = match store.contact_by_email(&email) {
                Some(c) => c.id,
                None => new_contact(store, name, Some(email), now),
            };
            if let Some(number) = phone {
                let pid = store.next_phone_id();
                if let Some(c) = store.contacts.get_mut(&id)
                    && !c.phones.iter().any(|p| p.number == number)
                {
                    let is_primary = c.phones.is_empty();
                    c.phones.push(Phone {
                        id: pid,
                        kind: "o".into(),
                        number,
                        is_primary,
                    });
                }
            }
            id
        }
    };
    if let Some(c) = store.contacts.get_mut(&user) {
        for (field, value) in t.contact_cf {
            set_cf(&mut c.custom, field, value);
        }
        if !c.custom.is_empty() {
            c.updated_at = now;
        }
    }
    store.last_ticket_id += 1;
    let id = store.last_ticket_id;
    let created = t.created_at.unwrap_or(now);
    let update_id = store.next_update_id();
    let mut first = Update::new(update_id, created, Author::User(user));
    first.message = Some(Box::new(Message {
        body: t.body,
        subject: String::new(),
        cc: t.cc,
        bcc: t.bcc,
        attachments,
        private: false,
        customer_updated: false,
    }));
    let mut custom = Vec::new();
    for (field, value) in t.ticket_cf {
        set_cf(&mut custom, field, value);
    }
    let status = schema.default_status().map(|s| s.id).unwrap_or(0);
    let ticket = Ticket {
        id,
        category: t.category,
        subject: t.subject,
        status,
        priority: t.priority,
        assignee: t.assignee,
        user,
        tags: t.tags,
        custom,
        created_at: created,
        last_modified: now,
        last_updated_at: created,
        last_user_reply_at: Some(created),
        last_staff_reply_at: None,
        last_closed_at: None,
        due_date: t.due_date,
        visible_only_staff: t.visible_only_staff,
        time_spent: 0,
        updates: vec![first],
    };
    store.tickets.insert(id, ticket);
    store.update_count += 1;
    if let Some(c) = store.contacts.get_mut(&user) {
        c.tickets.push(id);
    }
    id
}

/// The ticket-level writes, all of the `POST ticket/<n>/<action>/` family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    StaffUpdate,
    PrivateNote,
    UserReply,
    UpdateTags,
    UpdateCustomFields,
}

impl Action {
    pub fn from_path(segment: &str) -> Option<Action> {
        Some(match segment {
            "staff_update" => Action::StaffUpdate,
            "staff_pvtnote" => Action::PrivateNote,
            "user_reply" => Action::UserReply,
            "update_tags" => Action::UpdateTags,
            "update_custom_fields" => Action::UpdateCustomFields,
            _ => return None,
        })
    }
}

/// Applies one ticket action, or changes nothing and returns every error.
pub fn apply_action(
    schema: &Schema,
    store: &mut Store,
    ticket_id: u64,
    action: Action,
    payload: &Payload,
    attachments: Vec<Attachment>,
    now: Seconds,
) -> Result<(), FieldErrors> {
    let Some(ticket) = store.tickets.get(&ticket_id) else {
        let mut e = FieldErrors::default();
        e.add("ticket", "Cannot find the requested object");
        return Err(e);
    };
    let mut e = FieldErrors::default();
    match action {
        Action::UpdateTags => {
            let add = read_text(payload, "add", &mut e).unwrap_or_default();
            let remove = read_text(payload, "remove", &mut e).unwrap_or_default();
            if !e.is_empty() {
                return Err(e);
            }
            let remove = v::split_tags(&remove);
            let Some(t) = store.tickets.get_mut(&ticket_id) else {
                return Ok(());
            };
            for tag in v::split_tags(&add) {
                if !t.tags.contains(&tag) {
                    t.tags.push(tag);
                }
            }
            t.tags.retain(|tag| !remove.contains(tag));
            t.last_modified = now;
            Ok(())
        }
        Action::UserReply => {
            let user = if v::is_blank(payload.get("user")) {
                e.add("user", REQUIRED);
                None
            } else {
                read_id_of(
                    payload,
                    "user",
                    |id| store.contacts.get(&id).map(|c| c.id),
                    &mut e,
                )
            };
            let text = read_text(payload, "text", &mut e).filter(|t| !t.trim().is_empty());
            if text.is_none() && !e.0.iter().any(|(f, _)| f == "text") {
                e.add("text", REQUIRED);
            }
            let cc = read_email_list(payload, "cc", &mut e);
            let bcc = read_email_list(payload, "bcc", &mut e);
            let (Some(user), Some(text), true) = (user, text, e.is_empty()) else {
                return Err(e);
            };
            let body = if text.trim_start().starts_with('<') {
                Body::Html(text)
            } else {
                Body::Text(text)
            };
            let uid = store.next_update_id();
            let mut u = Update::new(uid, now, Author::User(user));
            u.message = Some(Box::new(Message {
                body,
                subject: String::new(),
                cc,
                bcc,
                attachments,
                private: false,
                customer_updated: false,
            }));
            let Some(t) = store.tickets.get_mut(&ticket_id) else {
                return Ok(());
            };
            t.updates.push(u);
            t.last_user_reply_at = Some(now);
            t.last_updated_at = now;
            t.last_modified = now;
            store.update_count += 1;
            Ok(())
        }
        Action::UpdateCustomFields => {
            let staff = active_staff(schema, payload.get("staff"));
            if let Err(msg) = staff {
                e.add("staff", msg);
            }
            let (ticket_cf, _) =
                read_custom_fields(schema, payload, Some(ticket.category), &[], &mut e);
            let completed = schema
                .status(ticket.status)
                .is_some_and(|s| s.behavior == Behavior::Completed);
            for (id, value) in &ticket_cf {
                if value.is_none()
                    && let Some(f) = schema.ticket_field(*id)
                {
                    if f.required {
                        e.add(&format!("t-cf-{id}"), REQUIRED);
                    } else if f.compulsory_on_completed && completed {
                        e.add(&format!("t-cf-{id}"), v::COMPULSORY_ON_COMPLETE);
                    }
                }
            }
            let (Ok(staff), true) = (staff, e.is_empty()) else {
                return Err(e);
            };
            let uid = store.next_update_id();
            let Some(t) = store.tickets.get_mut(&ticket_id) else {
                return Ok(());
            };
            let mut u = Update::new(uid, now, Author::Staff(staff));
            for (id, value) in ticket_cf {
                let old = t.set_cf(id, value.clone());
                if old != value {
                    u.changes_mut().custom_fields.push((id, old, value));
                }
            }
            t.last_modified = now;
            t.updates.push(u);
            store.update_count += 1;
            Ok(())
        }
        Action::StaffUpdate | Action::PrivateNote => {
            staff_write(schema, store, ticket_id, action, payload, attachments, now)
        }
    }
}

fn staff_write(
    schema: &Schema,
    store: &mut Store,
    ticket_id: u64,
    action: Action,
    payload: &Payload,
    attachments: Vec<Attachment>,
    now: Seconds,
) -> Result<(), FieldErrors> {
    let mut e = FieldErrors::default();
    let Some(ticket) = store.tickets.get(&ticket_id) else {
        e.add("ticket", "Cannot find the requested object");
        return Err(e);
    };
    let staff = active_staff(schema, payload.get("staff"));
    if let Err(msg) = staff {
        e.add("staff", msg);
    }
    let status = read_id_of(payload, "status", |id| schema.status(id), &mut e);
    let priority = read_id_of(payload, "priority", |id| schema.priority(id), &mut e);
    let assignee = read_assignee(schema, payload, &mut e);
    let category = schema.category(ticket.category);
    let time_spent = match payload.get("time_spent") {
        v if v::is_blank(v) => {
            if category.is_some_and(|c| c.time_spent_mandatory) {
                e.add("time_spent", REQUIRED);
            }
            0
        }
        Some(value) => v::as_id(value).unwrap_or_else(|| {
            e.add("time_spent", INVALID_INTEGER);
            0
        }),
        None => 0,
    };
    let due_date = read_due_date(payload, &mut e);
    let tags = read_text(payload, "tags", &mut e).map(|t| v::split_tags(&t));
    let (cc, bcc, customer_updated) = if action == Action::StaffUpdate {
        let cc = read_email_list(payload, "cc", &mut e);
        let bcc = read_email_list(payload, "bcc", &mut e);
        let updated = read_bool(payload, "update_customer", &mut e);
        read_bool(payload, "send_survey", &mut e);
        (cc, bcc, updated)
    } else {
        if let Some(alert) = payload.get("alert").filter(|a| !v::is_blank(Some(a)))
            && !(matches!(alert.as_str(), Some("s" | "c"))
                || v::as_id(alert)
                    .and_then(|id| schema.staff_member(id))
                    .is_some())
        {
            e.add("alert", INVALID_CHOICE);
        }
        (String::new(), String::new(), false)
    };
    let subject = if action == Action::StaffUpdate {
        read_text(payload, "subject", &mut e).unwrap_or_default()
    } else {
        String::new()
    };
    let body = read_body(payload, "plaintext", &mut e);
    let (ticket_cf, contact_cf) = read_custom_fields(
        schema,
        payload,
        Some(ticket.category),
        &["ccf-", "c-cf-"],
        &mut e,
    );
    // Compulsory-on-completion fields, checked only when the ticket moves from a pending
    // status to a completed one, against the values it will have after this update.
    let old_completed = schema
        .status(ticket.status)
        .is_some_and(|s| s.behavior == Behavior::Completed);
    if let Some(new) = status
        && new.behavior == Behavior::Completed
        && !old_completed
    {
        for f in schema
            .ticket_custom_fields
            .iter()
            .filter(|f| f.compulsory_on_completed && f.applies_to(ticket.category))
        {
            let after = match ticket_cf.iter().find(|(id, _)| *id == f.id) {
                Some((_, value)) => value.is_some(),
                None => ticket.cf(f.id).is_some(),
            };
            if !after {
                e.add(&format!("t-cf-{}", f.id), v::COMPULSORY_ON_COMPLETE);
            }
        }
    }
    let (Ok(staff), true) = (staff, e.is_empty()) else {
        return Err(e);
    };
    let status = status.map(|s| (s.id, s.behavior));
    let priority = priority.map(|p| p.id);
    let user = ticket.user;
    let uid = store.next_update_id();
    let mut u = Update::new(uid, now, Author::Staff(staff));
    u.time_spent = time_spent;
    let Some(t) = store.tickets.get_mut(&ticket_id) else {
        return Ok(());
    };
    if let Some((s, behavior)) = status
        && s != t.status
    {
        u.changes_mut().status = Some((t.status, s));
        t.status = s;
        if behavior == Behavior::Completed {
            t.last_closed_at = Some(now);
        }
    }
    if let Some(p) = priority
        && p != t.priority
    {
        u.changes_mut().priority = Some((t.priority, p));
        t.priority = p;
    }
    if let Some(a) = assignee
        && a != t.assignee
    {
        u.changes_mut().assignee = Some((t.assignee, a));
        t.assignee = a;
    }
    if let Some(d) = due_date
        && d != t.due_date
    {
        u.changes_mut().due_date = Some((t.due_date.clone(), d.clone()));
        t.due_date = d;
    }
    if let Some(tags) = tags {
        t.tags = tags;
    }
    for (id, value) in ticket_cf {
        let old = t.set_cf(id, value.clone());
        if old != value {
            u.changes_mut().custom_fields.push((id, old, value));
        }
    }
    t.time_spent += time_spent;
    if let Some(body) = body {
        u.message = Some(Box::new(Message {
            body,
            subject,
            cc,
            bcc,
            attachments,
            private: action == Action::PrivateNote,
            customer_updated,
        }));
        if action == Action::StaffUpdate {
            t.last_staff_reply_at = Some(now);
            t.last_updated_at = now;
        }
    } else if !attachments.is_empty() {
        u.message = Some(Box::new(Message {
            body: Body::Text(String::new()),
            subject,
            cc,
            bcc,
            attachments,
            private: action == Action::PrivateNote,
            customer_updated,
        }));
    }
    t.last_modified = now;
    t.updates.push(u);
    store.update_count += 1;
    if !contact_cf.is_empty()
        && let Some(c) = store.contacts.get_mut(&user)
    {
        for (field, value) in contact_cf {
            set_cf(&mut c.custom, field, value);
        }
        c.updated_at = now;
    }
    Ok(())
}

/// `POST ticket/<n>/delete/`: returns the deleted ticket's display id source (its category).
pub fn delete_ticket(
    schema: &Schema,
    store: &mut Store,
    ticket_id: u64,
    payload: &Payload,
) -> Result<Ticket, FieldErrors> {
    let mut e = FieldErrors::default();
    if let Err(msg) = active_staff(schema, payload.get("staff_id")) {
        e.add("staff_id", msg);
        return Err(e);
    }
    let Some(t) = store.tickets.remove(&ticket_id) else {
        e.add("ticket", "Cannot find the requested object");
        return Err(e);
    };
    store.update_count -= t.updates.len() as u64;
    store.deleted_tickets += 1;
    if let Some(c) = store.contacts.get_mut(&t.user) {
        c.tickets.retain(|id| *id != ticket_id);
    }
    Ok(t)
}

/// A contact payload that passed validation.
pub struct ContactWrite {
    name: String,
    email: String,
    phones: Vec<(Option<u64>, String, String, bool)>,
    custom: CfWrites,
    login_enabled: Option<bool>,
}

const PHONE_TYPES: [&str; 5] = ["mo", "w", "m", "h", "o"];

/// Checks one `POST users/` item.
pub fn check_contact(schema: &Schema, payload: &Payload) -> Result<ContactWrite, FieldErrors> {
    let mut e = FieldErrors::default();
    let name = read_text(payload, "name", &mut e).filter(|n| !n.trim().is_empty());
    if name.is_none() && !e.0.iter().any(|(f, _)| f == "name") {
        e.add("name", REQUIRED);
    }
    let email = read_text(payload, "email", &mut e).filter(|n| !n.trim().is_empty());
    match &email {
        None => e.add("email", REQUIRED),
        Some(m) if !v::valid_email(m.trim()) => e.add("email", INVALID_EMAIL),
        Some(_) => {}
    }
    let mut phones = Vec::new();
    match payload.get("phones") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let Some(obj) = item.as_object() else {
                    e.add("phones", INVALID_VALUE);
                    continue;
                };
                let kind = obj.get("type").and_then(Value::as_str).unwrap_or("");
                let number = obj.get("number").and_then(v::as_text).unwrap_or_default();
                if !PHONE_TYPES.contains(&kind) || number.trim().is_empty() {
                    e.add("phones", INVALID_VALUE);
                    continue;
                }
                let id = obj.get("id").and_then(v::as_id);
                let primary = obj.get("is_primary").and_then(v::as_bool).unwrap_or(false);
                phones.push((id, kind.to_string(), number, primary));
            }
        }
        Some(_) => e.add("phones", v::INVALID_LIST),
    }
    let login_enabled = match payload.get("is_login_enabled") {
        None | Some(Value::Null) => None,
        Some(value) => match v::as_bool(value) {
            Some(b) => Some(b),
            None => {
                e.add("is_login_enabled", "Must be a valid boolean.");
                None
            }
        },
    };
    let (_, custom) = read_custom_fields(schema, payload, None, &["c-cf-"], &mut e);
    for f in schema.user_custom_fields.iter().filter(|f| f.required) {
        if !custom.iter().any(|(id, val)| *id == f.id && val.is_some()) {
            e.add(&format!("c-cf-{}", f.id), REQUIRED);
        }
    }
    match (name, email, e.is_empty()) {
        (Some(name), Some(email), true) => Ok(ContactWrite {
            name,
            email: email.trim().to_string(),
            phones,
            custom,
            login_enabled,
        }),
        _ => Err(e),
    }
}

/// Creates or edits the contact with that email. Contact custom fields not sent are reset,
/// as HappyFox does; phones with an id replace that phone, phones without one are added.
pub fn upsert_contact(store: &mut Store, c: ContactWrite, now: Seconds) -> u64 {
    let id = match store.contact_by_email(&c.email) {
        Some(existing) => existing.id,
        None => new_contact(store, c.name.clone(), Some(c.email.clone()), now),
    };
    let mut new_ids = Vec::new();
    for _ in &c.phones {
        new_ids.push(store.next_phone_id());
    }
    let Some(contact) = store.contacts.get_mut(&id) else {
        return id;
    };
    contact.name = c.name;
    contact.updated_at = now;
    contact.custom = c
        .custom
        .into_iter()
        .filter_map(|(f, v)| v.map(|v| (f, v)))
        .collect();
    contact.custom.sort_by_key(|(f, _)| *f);
    if let Some(l) = c.login_enabled {
        contact.login_enabled = l;
    }
    for ((pid, kind, number, primary), new_id) in c.phones.into_iter().zip(new_ids) {
        if primary {
            contact.phones.iter_mut().for_each(|p| p.is_primary = false);
        }
        match pid.and_then(|pid| contact.phones.iter_mut().find(|p| p.id == pid)) {
            Some(p) => {
                p.kind = kind;
                p.number = number;
                p.is_primary = primary || p.is_primary;
            }
            None => {
                let is_primary = primary || contact.phones.is_empty();
                contact.phones.push(Phone {
                    id: new_id,
                    kind,
                    number,
                    is_primary,
                });
            }
        }
    }
    id
}
