//! `preflight --canary`: one real test ticket, to see what the account does on its own.
//!
//! Smart Rules, auto-assignment and notifications are configured in HappyFox's admin
//! panel and invisible to the API's reference data, yet they fire for every created
//! ticket and reply. Finding them on a migration's 100,000th ticket is too late, so the
//! canary creates one ticket (marked as a test, with the run's marker), posts one staff
//! reply that must not notify anyone, reads the ticket back, reports every difference
//! from what was sent (updates by others, status, assignee, priority, tags, a customer
//! notification), and deletes it.

use serde::Serialize;
use serde_json::{Value, json};

use crate::client::{ApiError, Client, ClientError, WriteOutcome};
use crate::mapping::{Marker, Plan};
use crate::schema::{self, Schema};

/// The canary's requester. HappyFox creates a contact for it, which the API cannot delete;
/// a reserved domain (RFC 2606) so that nobody ever receives mail for it.
pub const CANARY_EMAIL: &str = "hfmigrate-canary@example.invalid";
/// The tag (and marker value) that says what the ticket is.
const CANARY_TAG: &str = "hfmigrate-canary";

/// What the canary saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Canary {
    pub ticket: u64,
    pub display_id: String,
    pub category: String,
    /// What the account did that the canary did not ask for; empty when nothing.
    pub observations: Vec<String>,
    /// Whether the test ticket was deleted again.
    pub deleted: bool,
    /// The contact the ticket created, which stays.
    pub contact: String,
}

/// Why the canary could not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum CanaryError {
    #[error(
        "HappyFox refused the canary's test ticket in category {category:?}: {error}; the import's tickets would be refused the same way"
    )]
    Refused { category: String, error: ApiError },
    #[error(
        "the answer to {what} was lost ({why}); search HappyFox for tag {CANARY_TAG:?} and delete the test ticket by hand"
    )]
    Lost { what: &'static str, why: String },
    #[error("HappyFox refused {what} on the canary's ticket {ticket}: {error}; delete it by hand")]
    Step {
        what: &'static str,
        ticket: u64,
        error: String,
    },
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl crate::exit::Classify for CanaryError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            CanaryError::Refused { .. } => crate::exit::Exit::Usage,
            CanaryError::Client(e) => e.exit(),
            CanaryError::Lost { .. } | CanaryError::Step { .. } => crate::exit::Exit::Fatal,
        }
    }
}

/// Creates, replies to, reads back and deletes one test ticket in `category` (a public
/// category the mapping targets), acting as agent `staff`.
pub async fn run(
    client: &Client,
    schema: &Schema,
    plan: &Plan,
    category: &schema::Category,
    staff: u64,
) -> Result<Canary, CanaryError> {
    let mut body = json!({
        "subject": "hfmigrate canary: a test ticket, deleted right away",
        "text": "Created by `hfmigrate preflight --canary` to see what this account does on its own with an imported ticket. It is deleted again at once.",
        "category": category.id,
        "name": "hfmigrate canary",
        "email": CANARY_EMAIL,
        "tags": CANARY_TAG,
    });
    if let Some(Marker::CustomField { field, .. }) = &plan.marker
        && let Some(f) = schema
            .ticket_custom_fields
            .iter()
            .find(|f| schema::same_name(&f.name, &field.name))
    {
        body[format!("t-cf-{}", f.id)] = json!(CANARY_TAG);
    }
    let created = match client.post_json("tickets/", &body).await? {
        WriteOutcome::Done(v) => v,
        WriteOutcome::Rejected(error) => {
            return Err(CanaryError::Refused {
                category: category.name.clone(),
                error,
            });
        }
        WriteOutcome::Unknown(why) => {
            return Err(CanaryError::Lost {
                what: "the test ticket's create",
                why,
            });
        }
        WriteOutcome::Items(_) => {
            return Err(CanaryError::Lost {
                what: "the test ticket's create",
                why: "a list of results answered a single create".into(),
            });
        }
    };
    let id = created.get("id").and_then(Value::as_u64).unwrap_or(0);
    let mut canary = Canary {
        ticket: id,
        display_id: str_of(&created, "display_id"),
        category: category.name.clone(),
        contact: CANARY_EMAIL.into(),
        ..Canary::default()
    };
    let reply = json!({
        "staff": staff,
        "plaintext": "hfmigrate canary: a staff reply that must not notify anyone.",
        "update_customer": false,
    });
    let replied = client
        .post_json(&format!("ticket/{id}/staff_update/"), &reply)
        .await;
    let now = client.get_json(&format!("ticket/{id}/"), &[]).await;
    // Delete whatever happened above: the test ticket must not stay.
    let deleted = client
        .post_json(
            &format!("ticket/{id}/delete/"),
            &json!({ "staff_id": staff }),
        )
        .await;
    match deleted? {
        WriteOutcome::Done(_) | WriteOutcome::Items(_) => canary.deleted = true,
        WriteOutcome::Rejected(e) => {
            return Err(CanaryError::Step {
                what: "the delete",
                ticket: id,
                error: e.to_string(),
            });
        }
        WriteOutcome::Unknown(why) => {
            return Err(CanaryError::Lost {
                what: "the test ticket's delete",
                why,
            });
        }
    }
    match replied? {
        WriteOutcome::Done(_) | WriteOutcome::Items(_) => {}
        WriteOutcome::Rejected(e) => canary.observations.push(format!(
            "HappyFox refused the staff reply: {e}; the import's replies would be refused too"
        )),
        WriteOutcome::Unknown(why) => canary
            .observations
            .push(format!("the staff reply's answer was lost ({why})")),
    }
    canary
        .observations
        .extend(observe(schema, &created, &now?, staff));
    Ok(canary)
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn name_of(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(|o| o.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Every difference between what the canary sent and the ticket as it is now.
fn observe(schema: &Schema, created: &Value, now: &Value, staff: u64) -> Vec<String> {
    let mut seen = Vec::new();
    if let Some(default) = schema.statuses.iter().find(|s| s.default)
        && let Some(status) = name_of(now, "status")
        && !schema::same_name(&status, &default.name)
    {
        seen.push(format!(
            "status is {status:?}, not the default {:?}: something set it",
            default.name
        ));
    }
    if let Some(a) = now.get("assigned_to").filter(|a| !a.is_null()) {
        seen.push(format!(
            "assigned to {} although the canary assigned nobody (auto-assignment or a Smart Rule)",
            a.get("name").and_then(Value::as_str).unwrap_or("an agent")
        ));
    }
    if name_of(created, "priority") != name_of(now, "priority") {
        seen.push(format!(
            "priority changed from {:?} to {:?}",
            name_of(created, "priority").unwrap_or_default(),
            name_of(now, "priority").unwrap_or_default()
        ));
    }
    let tags = str_of(now, "tags");
    let extra: Vec<&str> = tags
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty() && *t != CANARY_TAG)
        .collect();
    if !extra.is_empty() {
        seen.push(format!("tags added: {}", extra.join(", ")));
    }
    let updates = now
        .get("updates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for u in &updates {
        let by = u.get("by").cloned().unwrap_or(Value::Null);
        let by_staff = by.get("id").and_then(Value::as_u64) == Some(staff);
        let message = u.get("message").filter(|m| !m.is_null());
        if message.is_some_and(|m| m.get("customer_updated") == Some(&Value::Bool(true))) {
            seen.push(format!(
                "update {} notified the customer (customer_updated: true) although the reply asked not to",
                u.get("update_id").map(Value::to_string).unwrap_or_default()
            ));
        }
        // The create (by the contact) and the reply (by the agent) are the canary's.
        let by_contact = by.get("type").and_then(Value::as_str) == Some("user");
        if !by_staff && !by_contact {
            seen.push(format!(
                "an update the canary did not make, by {} at {} (a Smart Rule or an integration?)",
                by.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("the system"),
                str_of(u, "timestamp")
            ));
        }
    }
    if updates.len() > 2 {
        seen.push(format!(
            "{} updates on the ticket; the canary made 2 (its creation and one reply)",
            updates.len()
        ));
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untouched_ticket_shows_nothing_and_an_automated_one_everything() {
        let schema = Schema::sample();
        let default = schema.statuses.iter().find(|s| s.default).unwrap();
        let created = json!({"priority": {"name": "Medium"}});
        let calm = json!({
            "status": {"name": default.name}, "assigned_to": null, "priority": {"name": "Medium"},
            "tags": CANARY_TAG,
            "updates": [
                {"by": {"id": 9, "type": "user"}, "message": {"customer_updated": false}},
                {"by": {"id": 1, "type": "staff"}, "message": {"customer_updated": false}},
            ],
        });
        assert_eq!(observe(&schema, &created, &calm, 1), Vec::<String>::new());
        let busy = json!({
            "status": {"name": "Closed"}, "assigned_to": {"name": "Alice Martin"},
            "priority": {"name": "High"}, "tags": "hfmigrate-canary,vip",
            "updates": [
                {"by": {"id": 9, "type": "user"}, "message": null},
                {"by": {"id": 1, "type": "staff"}, "message": {"customer_updated": true}, "update_id": 7},
                {"by": {"name": "Smart Rule: triage"}, "timestamp": "2026-01-01 10:00:00", "message": null},
            ],
        });
        let seen = observe(&schema, &created, &busy, 1);
        assert_eq!(seen.len(), 7, "{seen:#?}");
        assert!(seen.iter().any(|s| s.contains("Smart Rule: triage")));
        assert!(seen.iter().any(|s| s.contains("notified the customer")));
    }
}
