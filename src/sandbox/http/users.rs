//! The contact endpoints (`users/`): list and search, and create-or-update (one or a
//! bulk list).

use std::collections::HashMap;

use axum::extract::Request;
use axum::response::Response;
use serde_json::{Value, json};

use super::super::ops;
use super::super::render;
use super::super::search::ContactQuery;
use super::body::{page_params, read_input};
use super::respond::{bad_request_list, body_error, not_found, ok, request_error};
use super::{MAX_BULK, Shared, lock, now_seconds};

pub(super) fn list_users(shared: &Shared, q: &HashMap<String, String>) -> Response {
    let (size, page) = match page_params(q) {
        Ok(p) => p,
        Err(e) => return bad_request_list(&e),
    };
    let query = match ContactQuery::compile(q.get("q").map_or("", String::as_str)) {
        Ok(query) => query,
        Err(err) => return bad_request_list(&request_error(&err.to_string())),
    };
    let store = lock(&shared.store);
    let matches: Vec<_> = store
        .contacts
        .values()
        .filter(|c| query.matches(c))
        .collect();
    let items = matches
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|c| render::contact(&shared.schema, &store, c))
        .collect();
    ok(&Value::Object(render::page(
        matches.len(),
        page,
        size,
        items,
    )))
}

/// `GET user/<id>/`: a number is a contact id, anything else an email.
pub(super) fn get_user(shared: &Shared, who: &str) -> Response {
    let schema = &shared.schema;
    let store = lock(&shared.store);
    let found = match who.parse::<u64>() {
        Ok(id) => store.contacts.get(&id),
        Err(_) => store.contact_by_email(who),
    };
    match found {
        Some(c) => ok(&render::contact(schema, &store, c)),
        None => not_found(),
    }
}

pub(super) async fn post_users(shared: &Shared, req: Request) -> Response {
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
                    "A maximum of 100 contacts can be created in one request.",
                ));
            }
            let mut store = lock(&shared.store);
            let results: Vec<Value> = items
                .iter()
                .map(|item| {
                    let email = item.get("email").cloned().unwrap_or(Value::Null);
                    let Value::Object(payload) = item else {
                        return json!({"email": email, "success": false, "error": request_error("Invalid data. Expected a dictionary.").to_list()});
                    };
                    match ops::check_contact(schema, payload) {
                        Ok(c) => {
                            let id = ops::upsert_contact(&mut store, c, now);
                            json!({"email": email, "success": true, "id": id})
                        }
                        Err(e) => json!({"email": email, "success": false, "error": e.to_list()}),
                    }
                })
                .collect();
            ok(&Value::Array(results))
        }
        Value::Object(payload) => match ops::check_contact(schema, &payload) {
            Ok(c) => {
                let mut store = lock(&shared.store);
                let id = ops::upsert_contact(&mut store, c, now);
                match store.contacts.get(&id) {
                    Some(c) => ok(&render::contact(schema, &store, c)),
                    None => not_found(),
                }
            }
            Err(e) => bad_request_list(&e),
        },
        _ => bad_request_list(&request_error(
            "Expected a JSON object or a list of objects.",
        )),
    }
}
