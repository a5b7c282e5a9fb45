//! The writes on an existing ticket: the `ticket/<n>/<action>/` family and delete.

use super::super::store::{
    Attachment, Author, Body, Message, Seconds, Store, Ticket, Update, set_cf,
};
use super::super::validate::{self as v, FieldErrors, INVALID_CHOICE, INVALID_INTEGER, REQUIRED};
use super::Payload;
use super::read::{
    CfWrites, active_staff, read_assignee, read_body, read_bool, read_custom_fields, read_due_date,
    read_email_list, read_id_of, read_text,
};
use crate::schema::{Behavior, Schema, Status};

/// The ticket-level writes, all of the `POST ticket/<n>/<action>/` family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
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
pub(crate) fn apply_action(
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
    match action {
        Action::UpdateTags => update_tags(store, ticket_id, payload, now),
        Action::UserReply => user_reply(store, ticket_id, payload, attachments, now),
        Action::UpdateCustomFields => {
            let (category, status) = (ticket.category, ticket.status);
            update_custom_fields(schema, store, ticket_id, category, status, payload, now)
        }
        Action::StaffUpdate | Action::PrivateNote => {
            let w = check_staff_write(schema, ticket, action, payload)?;
            apply_staff_write(store, ticket_id, action, w, attachments, now);
            Ok(())
        }
    }
}

/// `update_tags`: adds the `add` tags the ticket lacks, then removes the `remove` ones.
fn update_tags(
    store: &mut Store,
    ticket_id: u64,
    payload: &Payload,
    now: Seconds,
) -> Result<(), FieldErrors> {
    let mut e = FieldErrors::default();
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

/// `user_reply`: a message from a contact; text starting with `<` is taken as HTML.
fn user_reply(
    store: &mut Store,
    ticket_id: u64,
    payload: &Payload,
    attachments: Vec<Attachment>,
    now: Seconds,
) -> Result<(), FieldErrors> {
    let mut e = FieldErrors::default();
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

/// `update_custom_fields`: a staff update that only sets ticket fields. Clearing a required
/// field is refused, and so is clearing a compulsory-on-completion one while the ticket's
/// `status` is a completed one.
fn update_custom_fields(
    schema: &Schema,
    store: &mut Store,
    ticket_id: u64,
    category: u64,
    status: u64,
    payload: &Payload,
    now: Seconds,
) -> Result<(), FieldErrors> {
    let mut e = FieldErrors::default();
    let staff = active_staff(schema, payload.get("staff"));
    if let Err(msg) = staff {
        e.add("staff", msg);
    }
    let (ticket_cf, _) = read_custom_fields(schema, payload, Some(category), &[], &mut e);
    let completed = schema
        .status(status)
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

/// A staff update or private note that passed validation. `None` leaves a property as it
/// is; `assignee` and `due_date` use `Some(None)` to clear it.
struct StaffWrite {
    staff: u64,
    status: Option<(u64, Behavior)>,
    priority: Option<u64>,
    assignee: Option<Option<u64>>,
    time_spent: u64,
    due_date: Option<Option<String>>,
    tags: Option<Vec<String>>,
    cc: String,
    bcc: String,
    customer_updated: bool,
    subject: String,
    body: Option<Body>,
    ticket_cf: CfWrites,
    contact_cf: CfWrites,
}

/// Checks a `staff_update` or `staff_pvtnote` payload against the schema and the ticket.
fn check_staff_write(
    schema: &Schema,
    ticket: &Ticket,
    action: Action,
    payload: &Payload,
) -> Result<StaffWrite, FieldErrors> {
    let mut e = FieldErrors::default();
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
    check_compulsory_on_completion(schema, ticket, status, &ticket_cf, &mut e);
    let (Ok(staff), true) = (staff, e.is_empty()) else {
        return Err(e);
    };
    Ok(StaffWrite {
        staff,
        status: status.map(|s| (s.id, s.behavior)),
        priority: priority.map(|p| p.id),
        assignee,
        time_spent,
        due_date,
        tags,
        cc,
        bcc,
        customer_updated,
        subject,
        body,
        ticket_cf,
        contact_cf,
    })
}

/// Compulsory-on-completion fields, checked only when the ticket moves from a pending
/// status to a completed one, against the values it will have after this update.
fn check_compulsory_on_completion(
    schema: &Schema,
    ticket: &Ticket,
    status: Option<&Status>,
    ticket_cf: &CfWrites,
    e: &mut FieldErrors,
) {
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
}

/// Stores a checked staff write: the property changes it makes (recorded on the update),
/// its message if it has a body or files, and the contact's fields.
fn apply_staff_write(
    store: &mut Store,
    ticket_id: u64,
    action: Action,
    w: StaffWrite,
    attachments: Vec<Attachment>,
    now: Seconds,
) {
    let StaffWrite {
        staff,
        status,
        priority,
        assignee,
        time_spent,
        due_date,
        tags,
        cc,
        bcc,
        customer_updated,
        subject,
        body,
        ticket_cf,
        contact_cf,
    } = w;
    let uid = store.next_update_id();
    let mut u = Update::new(uid, now, Author::Staff(staff));
    u.time_spent = time_spent;
    let Some(t) = store.tickets.get_mut(&ticket_id) else {
        return;
    };
    let user = t.user;
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
}

/// `POST ticket/<n>/delete/`: returns the removed ticket, whose category and id make the
/// display id the answer names.
pub(crate) fn delete_ticket(
    schema: &Schema,
    store: &mut Store,
    ticket_id: u64,
    payload: &Payload,
) -> Result<Ticket, FieldErrors> {
    let mut e = FieldErrors::default();
    match active_staff(schema, payload.get("staff_id")) {
        Err(msg) => {
            e.add("staff_id", msg);
            return Err(e);
        }
        Ok(id)
            if !schema
                .staff_member(id)
                .is_some_and(crate::sandbox::permissions::may_delete) =>
        {
            e.add(
                "staff_id",
                "This agent's role does not have permission to delete tickets.",
            );
            return Err(e);
        }
        Ok(_) => {}
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
