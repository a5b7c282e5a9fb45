//! `POST /_sandbox/ticket/<n>/update/<id>/delete`: removes one update from a ticket.
//!
//! HappyFox has no such call (an update can never be edited or deleted, see the API
//! notes); the sandbox has it so a test can stand for a message lost after the import
//! and check that `verify` notices and the next import posts it again.

use axum::response::Response;
use serde_json::json;

use super::respond::{json_response, ok};
use super::{Shared, lock};
use axum::http::StatusCode;

pub(super) fn delete_update(shared: &Shared, ticket: u64, update: u64) -> Response {
    let mut store = lock(&shared.store);
    let Some(t) = store.tickets.get_mut(&ticket) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no ticket {ticket}")}),
        );
    };
    let before = t.updates.len();
    t.updates.retain(|u| u.id != update);
    if t.updates.len() == before {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("ticket {ticket} has no update {update}")}),
        );
    }
    drop(store);
    shared
        .dirty
        .store(true, std::sync::atomic::Ordering::Release);
    ok(&json!({"deleted": update}))
}
