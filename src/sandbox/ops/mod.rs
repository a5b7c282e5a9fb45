//! The writes HappyFox accepts, each validated the way HappyFox validates it.
//!
//! Every write is two steps: check the whole payload against the schema and the store
//! (collecting every error, in a stable field order), then apply it. Nothing is stored when
//! any check fails, so a rejected request leaves no trace, exactly like the real API.

mod contacts;
mod create;
mod read;
mod update;

use serde_json::{Map, Value};

pub(crate) use contacts::{check_contact, upsert_contact};
pub(crate) use create::{check_new_ticket, create_ticket};
pub(crate) use update::Action;
pub(crate) use update::{apply_action, delete_ticket};

/// A payload as a flat map: a JSON object, or a form whose values are strings (repeated
/// keys become lists).
pub(crate) type Payload = Map<String, Value>;
