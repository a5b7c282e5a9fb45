//! Creating a ticket (`POST tickets/`, one item of a bulk list or a single create), with
//! its requester made or found on the way.

use serde_json::Value;

use super::super::store::{
    Attachment, Author, Body, Message, Phone, Seconds, Store, Ticket, Update, set_cf,
};
use super::super::validate::{
    self as v, FieldErrors, INVALID_CHOICE, INVALID_DATETIME, INVALID_EMAIL, REQUIRED,
};
use super::Payload;
use super::contacts::new_contact;
use super::read::{
    CfWrites, read_assignee, read_body, read_bool, read_custom_fields, read_due_date,
    read_email_list, read_id_of, read_text,
};
use crate::schema::Schema;

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
pub(crate) struct NewTicket {
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
pub(crate) fn check_new_ticket(
    schema: &Schema,
    store: &Store,
    payload: &Payload,
) -> Result<NewTicket, FieldErrors> {
    let mut e = FieldErrors::default();
    let requester = read_requester(store, payload, &mut e);
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
    let created_at = read_created_at(payload, &mut e);
    let due_date = read_due_date(payload, &mut e).flatten();
    let visible_only_staff = read_bool(payload, "visible_only_staff", &mut e);
    let (ticket_cf, contact_cf) = read_custom_fields(schema, payload, category, &["c-cf-"], &mut e);
    check_required_fields(schema, category, &ticket_cf, &mut e);
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

/// The requester. A non-blank `client` wins: `name`, `email` and `phone` are then not read,
/// so they cannot fail the create.
fn read_requester(store: &Store, payload: &Payload, e: &mut FieldErrors) -> Option<Requester> {
    if !v::is_blank(payload.get("client")) {
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
        let name = read_text(payload, "name", e).filter(|n| !n.trim().is_empty());
        let email = read_text(payload, "email", e).filter(|n| !n.trim().is_empty());
        if name.is_none() {
            e.add("name", REQUIRED);
        }
        match &email {
            None => e.add("email", REQUIRED),
            Some(m) if !v::valid_email(m.trim()) => e.add("email", INVALID_EMAIL),
            Some(_) => {}
        }
        let phone = read_text(payload, "phone", e).filter(|p| !p.trim().is_empty());
        match (name, email) {
            (Some(name), Some(email)) => Some(Requester::New {
                name,
                email: email.trim().to_string(),
                phone,
            }),
            _ => None,
        }
    }
}

fn read_created_at(payload: &Payload, e: &mut FieldErrors) -> Option<Seconds> {
    match payload.get("created_at") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_str().and_then(v::parse_created_at) {
            Some(s) => Some(s),
            None => {
                e.add("created_at", INVALID_DATETIME);
                None
            }
        },
    }
}

/// The category's required ticket fields must all have a value.
fn check_required_fields(
    schema: &Schema,
    category: Option<u64>,
    ticket_cf: &CfWrites,
    e: &mut FieldErrors,
) {
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
}

/// Stores a checked ticket and returns its id. The contact is created when the email is
/// new; the first update is the contact's message.
pub(crate) fn create_ticket(
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
