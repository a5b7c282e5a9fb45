//! Sandbox contract tests: the sandbox started in-process, hit over real HTTP.
//!
//! Every request and response example of the HappyFox reference is replayed here (ids
//! adapted to the bundled sample schema) and the answers are compared field by field and
//! type by type with the documented examples, so a client written against the sandbox
//! reads production answers unchanged.

mod contacts;
mod create;
mod limits;
mod properties;
mod reference;
mod search;
mod updates;

use std::time::{Duration, Instant};

use hfmigrate::sandbox::{self, Faults, Latency, Limits, RunningSandbox, SandboxConfig, Stats};
use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::sample_schema;

// ---------------------------------------------------------------------------------------
// Harness.

struct Sb {
    sb: RunningSandbox,
    http: reqwest::Client,
}

fn config() -> SandboxConfig {
    let mut c = SandboxConfig::new(sample_schema());
    // Most tests make more calls than HappyFox allows per minute; the limit has its own test.
    c.limits = Limits {
        post_per_min: 0,
        get_per_min: 0,
        lockout: Duration::from_secs(600),
    };
    c
}

async fn start(config: SandboxConfig) -> Sb {
    let sb = sandbox::spawn(config).await.expect("sandbox starts");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    Sb { sb, http }
}

impl Sb {
    fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{path}", self.sb.url)
        } else {
            format!("{}{path}", self.sb.api())
        }
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        rb.basic_auth(&self.sb.api_key, Some(&self.sb.auth_code))
    }

    async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .auth(self.http.get(self.url(path)))
            .send()
            .await
            .expect("GET");
        Self::read(resp).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .auth(self.http.post(self.url(path)))
            .json(&body)
            .send()
            .await
            .expect("POST");
        Self::read(resp).await
    }

    async fn multipart(&self, path: &str, form: reqwest::multipart::Form) -> (StatusCode, Value) {
        let resp = self
            .auth(self.http.post(self.url(path)))
            .multipart(form)
            .send()
            .await
            .expect("POST multipart");
        Self::read(resp).await
    }

    async fn stats(&self) -> Stats {
        let (status, body) = self.get("/_sandbox/stats").await;
        assert_eq!(status, StatusCode::OK);
        serde_json::from_value(body).expect("stats shape")
    }

    /// Creates a ticket and returns its detail.
    async fn ticket(&self, extra: Value) -> Value {
        let mut body = json!({
            "name": "james",
            "email": "james@example.com",
            "category": 1,
            "subject": "test ticket",
            "text": "example ticket",
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let (status, t) = self.post("tickets/", body).await;
        assert_eq!(status, StatusCode::OK, "{t}");
        t
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Checks that `actual` has every field of the documented `example`, with the same JSON
/// type. `null` in the example says nothing about the type; for arrays, some element of
/// `actual` must match the example's first element (an empty `actual` cannot be checked).
fn shape_mismatch(actual: &Value, example: &Value, path: &str) -> Option<String> {
    match (example, actual) {
        (Value::Null, _) => None,
        (Value::Object(ex), Value::Object(ac)) => ex.iter().find_map(|(k, ev)| match ac.get(k) {
            None => Some(format!("{path}.{k} is missing")),
            Some(av) => shape_mismatch(av, ev, &format!("{path}.{k}")),
        }),
        (Value::Array(ex), Value::Array(ac)) => match (ex.first(), ac.is_empty()) {
            (Some(first), false) => {
                let all: Vec<String> = ac
                    .iter()
                    .filter_map(|a| shape_mismatch(a, first, &format!("{path}[]")))
                    .collect();
                (all.len() == ac.len()).then(|| all.join("; "))
            }
            _ => None,
        },
        (Value::Bool(_), Value::Bool(_))
        | (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_)) => None,
        _ => Some(format!(
            "{path}: expected the type of {example}, got {actual}"
        )),
    }
}

fn assert_shape(actual: &Value, example: &Value, path: &str) {
    if let Some(m) = shape_mismatch(actual, example, path) {
        panic!("{m}\nin {actual}");
    }
}

/// The "Ticket detail page" example response of the reference (its typos fixed).
fn documented_ticket() -> Value {
    serde_json::from_str(
        r##"{
        "status": {"name": "In Progress", "color": "0066CC", "order": 2, "default": false, "behavior": "pending", "id": 2},
        "first_message": "Example message\n\n",
        "last_user_reply_at": "2019-08-13 08:59:11",
        "time_spent": 12,
        "id": 3,
        "messages_count": 2,
        "subject": "Example ticket",
        "category": {"prepopulate_cc": "AR", "description": "Default Category, please edit this.", "time_spent_mandatory": false, "public": true, "id": 1, "name": "Default Category"},
        "attachments_count": 1,
        "last_updated_at": "2019-08-13 08:59:42",
        "priority": {"default": false, "id": 3, "name": "High", "order": 3},
        "last_staff_reply_at": "2019-08-13 08:59:42",
        "custom_fields": [{"compulsory_on_complete": false, "name": "Product Color", "value": "grey", "value_id": null, "type": "text", "id": 1, "visible_to_staff_only": false}],
        "sla_breaches": 0,
        "merged_tickets": [],
        "visible_only_staff": null,
        "display_id": "#DC00000003",
        "due_date": "2019-08-16",
        "tags": "test",
        "last_modified": "2019-08-13 08:59:42",
        "user": {
            "name": "Welcome",
            "primary_phone": {"type": "o", "number": "02323412", "id": 1},
            "phones": [{"type": "o", "number": "02323412", "id": 1}],
            "created_at": "2019-07-16 11:27:30",
            "updated_at": "2019-08-13 08:59:11",
            "pending_tickets_count": 3,
            "contact_groups": [],
            "tickets_count": 3,
            "id": 1,
            "email": "james@example.com",
            "custom_fields": [{"name": "Company", "value": "Changed company", "value_id": null, "type": "text", "id": 2, "visible_to_staff_only": false}]
        },
        "subscribers": [{"first_name": "Admin", "last_name": "User", "id": 1, "email": "james@example.com"}],
        "unresponded": false,
        "created_at": "2019-08-13 08:59:11",
        "source": "TKT_CREATION_ADMIN_PANEL",
        "assigned_to": {
            "name": "Admin User", "is_account_admin": true, "email": "james@example.com",
            "role": {"name": "Administrator", "id": 1}, "active": true, "id": 1,
            "categories": [1], "permissions": ["relate_tickets", "manage_import_assets"]
        },
        "updates": [{
            "priority_change": {"new_name": "High", "new": 3, "old": 1, "old_name": "Medium"},
            "category_change": null,
            "custom_field_change": null,
            "timestamp": "2019-08-13 08:59:42",
            "due_date_change": {"new": "2019-08-16", "old": null},
            "by": {"email": "james@example.com", "type": "staff", "id": 1, "name": "admin"},
            "time_spent": 12,
            "update_id": 52,
            "message": {
                "attachments": [{"url": "https://exampleurl.com/attachments/examplefile.jpg", "id": 22, "filename": "bicycle.gif"}],
                "bcc_list": "",
                "text": "Attachment added\n\n",
                "cc_list": "james@example.com",
                "customer_updated": false,
                "html": "<p>Attachment added</p>",
                "forward_list": null,
                "message_type": null,
                "subject": ""
            },
            "assignee_change": null,
            "status_change": {"new_name": "In Progress", "new": 2, "old": 1, "old_name": "New"},
            "satisfaction_survey": null
        }],
        "merged_to": null
    }"##,
    )
    .expect("the documented example is JSON")
}

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
