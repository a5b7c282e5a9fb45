//! The ticket endpoints: list and search, create (one or a bulk list), the
//! `ticket/<n>/<action>/` writes, and inline image uploads.

use std::collections::HashMap;

use axum::extract::Request;
use axum::response::Response;
use serde_json::{Value, json};

use super::super::ops::{self, Action, Payload};
use super::super::render::{self, Detail};
use super::super::search::{self, TicketQuery};
use super::super::store::{Attachment, Store, Ticket};
use super::super::validate::FieldErrors;
use super::body::{Upload, content_type, drain, page_params, read_input};
use super::respond::{
    bad_request_list, bad_request_object, body_error, not_found, ok, request_error,
};
use super::{MAX_ATTACHMENTS, MAX_BULK, Shared, lock, now_seconds};
use crate::schema::{Behavior, Schema};

/// Turns uploaded `attachments` parts into stored attachment records, or the error when
/// they exceed 25 MB together.
fn take_attachments(store: &mut Store, files: &[Upload]) -> Result<Vec<Attachment>, FieldErrors> {
    let files: Vec<_> = files.iter().filter(|f| f.field == "attachments").collect();
    let total: u64 = files.iter().map(|f| f.size).sum();
    if total > MAX_ATTACHMENTS {
        let mut e = FieldErrors::default();
        e.add(
            "attachments",
            "The total size of all attachments should not exceed 25 MB.",
        );
        return Err(e);
    }
    Ok(files
        .into_iter()
        .map(|f| Attachment {
            id: store.next_attachment_id(),
            filename: f.filename.clone(),
            size: f.size,
            sha256: f.sha256.clone(),
        })
        .collect())
}

pub(super) fn list_tickets(shared: &Shared, q: &HashMap<String, String>) -> Response {
    let schema = &shared.schema;
    let (size, page) = match page_params(q) {
        Ok(p) => p,
        Err(e) => return bad_request_list(&e),
    };
    let text = q.get("q").map_or("", String::as_str);
    let query = match TicketQuery::compile(schema, text) {
        Ok(query) => query,
        Err(err) => return bad_request_list(&request_error(&err.to_string())),
    };
    // `status` defaults to all tickets, except that a search without it only looks at
    // pending tickets (observed by a third-party client; documented as `status=_all&q=`).
    let status_param = q.get("status").cloned().unwrap_or_else(|| {
        if q.contains_key("q") {
            "_pending".into()
        } else {
            "_all".into()
        }
    });
    let status_filter = match status_filter(schema, &status_param) {
        Ok(f) => f,
        Err(e) => return bad_request_list(&e),
    };
    let category_param = q.get("category").cloned().unwrap_or_else(|| "_all".into());
    let category = match category_filter(&category_param) {
        Ok(c) => c,
        Err(e) => return bad_request_list(&e),
    };
    let sort = q.get("sort").cloned().unwrap_or_else(|| "updated".into());
    let store = lock(&shared.store);
    let searching = !text.trim().is_empty();
    let now = std::time::Instant::now();
    let mut matches: Vec<_> = store
        .tickets
        .values()
        .filter(|t| !searching || shared.searchable(t.id, now))
        .filter(|t| status_filter(t.status))
        .filter(|t| category.is_none_or(|c| t.category == c))
        .filter(|t| query.matches(schema, &store, t))
        .collect();
    if search::sort(schema, &sort, &mut matches).is_none() {
        return bad_request_list(&request_error(&format!("`{sort}` is not a sort option")));
    }
    let shape = ItemShape::from_query(q);
    let items: Vec<Value> = matches
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|t| shape.render(shared, &store, t))
        .collect();
    let mut out = render::page(matches.len(), page, size, items);
    out.insert(
        "filters".into(),
        json!({"status": status_param, "category": category_param, "q": text, "sort": sort}),
    );
    ok(&Value::Object(out))
}

/// The `status` filter: `_all`, `_pending`, `_completed` (by the status's behaviour) or
/// one status id.
fn status_filter<'a>(
    schema: &'a Schema,
    status_param: &str,
) -> Result<Box<dyn Fn(u64) -> bool + 'a>, FieldErrors> {
    let filter: Box<dyn Fn(u64) -> bool + 'a> = match status_param {
        "_all" => Box::new(|_| true),
        "_pending" | "_completed" => {
            let want = if status_param == "_pending" {
                Behavior::Pending
            } else {
                Behavior::Completed
            };
            Box::new(move |s| schema.status(s).is_some_and(|s| s.behavior == want))
        }
        other => match other.parse::<u64>() {
            Ok(id) => Box::new(move |s| s == id),
            Err(_) => {
                return Err(request_error(&format!(
                    "`{other}` is not a status id, _all or _pending"
                )));
            }
        },
    };
    Ok(filter)
}

/// The `category` filter: `_all` (`None`) or one category id.
fn category_filter(category_param: &str) -> Result<Option<u64>, FieldErrors> {
    Ok(match category_param {
        "_all" => None,
        other => match other.parse::<u64>() {
            Ok(id) => Some(id),
            Err(_) => {
                return Err(request_error(&format!("`{other}` is not a category id")));
            }
        },
    })
}

/// What a list shows of each ticket: only its id with `minify_response=true`, its updates
/// with `show_updates`, and only the keys `fields` names.
struct ItemShape<'q> {
    minify: bool,
    detail: Detail,
    fields: Option<Vec<&'q str>>,
}

impl<'q> ItemShape<'q> {
    fn from_query(q: &'q HashMap<String, String>) -> ItemShape<'q> {
        ItemShape {
            minify: q.get("minify_response").is_some_and(|v| v == "true"),
            detail: Detail {
                updates: q
                    .get("show_updates")
                    .is_some_and(|v| v == "1" || v == "true"),
                cf_changes: false,
            },
            fields: q.get("fields").map(|f| {
                f.split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .collect()
            }),
        }
    }

    fn render(&self, shared: &Shared, store: &Store, t: &Ticket) -> Value {
        if self.minify {
            return json!(t.id);
        }
        let item = render::ticket(&shared.schema, store, &shared.base_url, t, self.detail);
        match (&self.fields, item) {
            (Some(fields), Value::Object(map)) => Value::Object(
                map.into_iter()
                    .filter(|(k, _)| fields.contains(&k.as_str()))
                    .collect(),
            ),
            (_, item) => item,
        }
    }
}

pub(super) async fn post_tickets(shared: &Shared, req: Request) -> Response {
    let schema = &shared.schema;
    let input = match read_input(req, false, shared.max_body).await {
        Ok(i) => i,
        Err(e) => return body_error(e, true),
    };
    let now = now_seconds();
    match input.value {
        Value::Array(items) => {
            if items.len() > MAX_BULK {
                return bad_request_list(&request_error(
                    "A maximum of 100 tickets can be created in one request.",
                ));
            }
            let mut store = lock(&shared.store);
            let results: Vec<Value> = items
                .iter()
                .map(|item| {
                    let Value::Object(payload) = item else {
                        return json!({"success": false, "error": request_error("Invalid data. Expected a dictionary.").to_list()});
                    };
                    match ops::check_new_ticket(schema, &store, payload) {
                        Ok(t) => {
                            let id = ops::create_ticket(schema, &mut store, t, Vec::new(), now);
                            shared.created(id);
                            let category = store.tickets.get(&id).map_or(0, |t| t.category);
                            json!({"display_id": render::display_id(schema, category, id), "id": id, "success": true})
                        }
                        Err(e) => json!({"success": false, "error": e.to_list()}),
                    }
                })
                .collect();
            ok(&Value::Array(results))
        }
        Value::Object(payload) => {
            let mut store = lock(&shared.store);
            let checked = ops::check_new_ticket(schema, &store, &payload);
            let attachments = take_attachments(&mut store, &input.files);
            match (checked, attachments) {
                (Ok(t), Ok(attachments)) => {
                    let id = ops::create_ticket(schema, &mut store, t, attachments, now);
                    shared.created(id);
                    match store.tickets.get(&id) {
                        Some(t) => ok(&render::ticket(
                            schema,
                            &store,
                            &shared.base_url,
                            t,
                            Detail {
                                updates: true,
                                cf_changes: false,
                            },
                        )),
                        None => not_found(),
                    }
                }
                (checked, attachments) => {
                    let mut e = FieldErrors::default();
                    if let Err(more) = checked {
                        e.0.extend(more.0);
                    }
                    if let Err(more) = attachments {
                        e.0.extend(more.0);
                    }
                    bad_request_list(&e)
                }
            }
        }
        _ => bad_request_list(&request_error(
            "Expected a JSON object or a list of objects.",
        )),
    }
}

pub(super) fn get_ticket(shared: &Shared, n: u64, q: &HashMap<String, String>) -> Response {
    let schema = &shared.schema;
    let detail = Detail {
        updates: true,
        cf_changes: q.get("show_cf_changes").is_some_and(|v| v == "true"),
    };
    let store = lock(&shared.store);
    match store.tickets.get(&n) {
        Some(t) => ok(&render::ticket(schema, &store, &shared.base_url, t, detail)),
        None => not_found(),
    }
}

pub(super) async fn delete_ticket(shared: &Shared, n: u64, req: Request) -> Response {
    let schema = &shared.schema;
    if !lock(&shared.store).tickets.contains_key(&n) {
        return not_found();
    }
    let input = match read_input(req, false, shared.max_body).await {
        Ok(i) => i,
        Err(e) => return body_error(e, false),
    };
    let Value::Object(payload) = input.value else {
        return bad_request_object(&request_error("Expected a JSON object"));
    };
    let mut store = lock(&shared.store);
    match ops::delete_ticket(schema, &mut store, n, &payload) {
        Ok(t) => ok(&json!({"deleted_ticket": render::display_id(schema, t.category, t.id)})),
        Err(e) if e.0.iter().any(|(f, _)| f == "ticket") => not_found(),
        Err(e) => bad_request_object(&e),
    }
}

pub(super) async fn ticket_action(
    shared: &Shared,
    n: u64,
    action: Action,
    req: Request,
) -> Response {
    let schema = &shared.schema;
    if !lock(&shared.store).tickets.contains_key(&n) {
        drain(req).await;
        return not_found();
    }
    let input = match read_input(req, false, shared.max_body).await {
        Ok(i) => i,
        Err(e) => return body_error(e, false),
    };
    let Value::Object(payload) = input.value else {
        return bad_request_object(&request_error("Expected a JSON object."));
    };
    let payload: Payload = payload;
    let now = now_seconds();
    let mut store = lock(&shared.store);
    let attachments = match take_attachments(&mut store, &input.files) {
        Ok(a) => a,
        Err(e) => return bad_request_object(&e),
    };
    match ops::apply_action(schema, &mut store, n, action, &payload, attachments, now) {
        Ok(()) => match store.tickets.get(&n) {
            Some(t) => ok(&render::ticket(
                schema,
                &store,
                &shared.base_url,
                t,
                Detail {
                    updates: true,
                    cf_changes: false,
                },
            )),
            None => not_found(),
        },
        Err(e) if e.0.iter().any(|(f, _)| f == "ticket") => not_found(),
        Err(e) => bad_request_object(&e),
    }
}

/// Whether the first bytes are an image format Pillow (and so HappyFox) reads.
fn is_image(head: &[u8]) -> bool {
    head.starts_with(b"\x89PNG\r\n\x1a\n")
        || head.starts_with(b"\xff\xd8\xff")
        || head.starts_with(b"GIF87a")
        || head.starts_with(b"GIF89a")
        || head.starts_with(b"BM")
        || (head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP")
}

pub(super) async fn inline_attachment(shared: &Shared, req: Request) -> Response {
    if !content_type(req.headers()).starts_with("multipart/form-data") {
        let mut e = FieldErrors::default();
        e.add("file", "The request should be multipart/form-data.");
        return bad_request_list(&e);
    }
    let input = match read_input(req, true, shared.max_body).await {
        Ok(i) => i,
        Err(e) => return body_error(e, true),
    };
    let files: Vec<_> = input.files.iter().filter(|f| f.field == "file").collect();
    let mut e = FieldErrors::default();
    match files.as_slice() {
        [] => e.add("file", "This field is required."),
        [Upload { size, head, .. }] => {
            if *size > MAX_ATTACHMENTS {
                e.add("file", "The file should not exceed 25 MB.");
            } else if !is_image(head) {
                e.add(
                    "file",
                    "Upload a valid image. The file you uploaded was either not an image or a corrupted image.",
                );
            }
        }
        _ => e.add("file", "Only one file can be uploaded at a time."),
    }
    if !e.is_empty() {
        return bad_request_list(&e);
    }
    let id = lock(&shared.store).next_attachment_id();
    ok(&json!({"url": format!("{}/get_hdp_temporarily_attachment/{id}/", shared.base_url)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_images_by_content() {
        assert!(is_image(b"\x89PNG\r\n\x1a\n...."));
        assert!(is_image(b"GIF89a..."));
        assert!(!is_image(b"%PDF-1.4"));
    }
}
