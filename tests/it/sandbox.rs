//! Sandbox contract tests: the sandbox started in-process, hit over real HTTP.
//!
//! Every request and response example of the HappyFox reference is replayed here (ids
//! adapted to the bundled sample schema) and the answers are compared field by field and
//! type by type with the documented examples, so a client written against the sandbox
//! reads production answers unchanged.

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

// ---------------------------------------------------------------------------------------
// Reference data and auth.

#[tokio::test]
async fn reference_endpoints_serve_the_schema_as_bare_arrays() {
    let sb = start(config()).await;
    let schema = sample_schema();
    let schema = serde_json::to_value(&schema).expect("schema json");
    let examples = [
        (
            "categories",
            json!({"id": 3, "name": "Arturia", "description": "", "public": true, "prepopulate_cc": "AR", "time_spent_mandatory": true}),
        ),
        (
            "statuses",
            json!({"id": 6, "name": "On hold", "color": "120D58", "order": 1, "default": false, "behavior": "pending"}),
        ),
        (
            "priorities",
            json!({"id": 3, "name": "High", "order": 3, "default": false}),
        ),
        (
            "staff",
            json!({"id": 14, "name": "George - Admin", "email": "g@x.io", "is_account_admin": false, "active": true, "role": {"id": 1, "name": "Administrator"}, "categories": [3, 4], "permissions": ["x"]}),
        ),
        (
            "ticket_custom_fields",
            json!({"name": "City", "depends_on_choice": null, "required": false, "compulsory_on_completed": true, "choices": [{"text": "Bengaluru", "id": 4, "dependant_fields": []}], "compulsory_on_move": false, "type": "choice", "id": 3, "categories": [{"category": 1, "order": 3}], "visible_to_staff_only": false}),
        ),
        (
            "user_custom_fields",
            json!({"id": 4, "name": "Account Number", "type": "text", "required": true, "order": 1, "choices": null, "depends_on_choice": null, "visible_to_staff_only": false}),
        ),
        (
            "contact_groups",
            json!({"id": 1, "name": "test group", "description": "x", "tagged_domains": "example.com"}),
        ),
    ];
    for (name, example) in examples {
        let (status, body) = sb.get(&format!("{name}/")).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(body, schema[name], "{name} serves the schema unchanged");
        assert_shape(&body, &json!([example]), name);
    }
    // Paths without the trailing slash are not HappyFox URLs.
    assert_eq!(sb.get("categories").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn serve_runs_on_a_given_listener_until_dropped() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut c = config();
    c.api_key = "key".into();
    c.auth_code = "code".into();
    let server = tokio::spawn(sandbox::serve(listener, c));
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/api/1.1/json/priorities/");
    let resp = http
        .get(&url)
        .basic_auth("key", Some("code"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), StatusCode::OK);
    server.abort();
    let _ = server.await;
    let fresh = reqwest::Client::new();
    assert!(
        fresh.get(&url).send().await.is_err(),
        "stopped when dropped"
    );
}

#[tokio::test]
async fn every_call_needs_basic_auth_and_a_401_says_nothing() {
    let sb = start(config()).await;
    let url = sb.url("categories/");
    let cases = [
        sb.http.get(&url),
        sb.http.get(&url).basic_auth(&sb.sb.api_key, Some("wrong")),
        sb.http
            .get(&url)
            .basic_auth("wrong", Some(&sb.sb.auth_code)),
        sb.http.get(&url).bearer_auth(&sb.sb.auth_code),
        sb.http.post(sb.url("tickets/")).json(&json!({})),
        sb.http.get(sb.url("/_sandbox/stats")),
        sb.http.post(sb.url("/_sandbox/reset")),
    ];
    for rb in cases {
        let resp = rb.send().await.expect("send");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let body = resp.bytes().await.expect("body");
        assert!(body.is_empty(), "401 body must be empty: {body:?}");
    }
    assert_eq!(sb.stats().await.tickets, 0);
}

// ---------------------------------------------------------------------------------------
// Ticket creation.

#[tokio::test]
async fn create_ticket_example_1_returns_the_full_ticket() {
    let sb = start(config()).await;
    // Example 1 of "Create Ticket", ids adapted to the sample schema (Billing's fields).
    let t = sb
        .ticket(json!({
            "category": 2,
            "t-cf-2": 11,
            "t-cf-1": "text field value",
            "t-cf-4": 200,
            "t-cf-5": "2019-12-20",
            "c-cf-2": 52,
        }))
        .await;
    assert_eq!(t["subject"], "test ticket");
    assert_eq!(t["first_message"], "example ticket");
    assert_eq!(t["category"]["id"], 2);
    assert_eq!(
        t["status"]["name"], "New",
        "new tickets get the default status"
    );
    assert_eq!(t["priority"]["name"], "Medium", "and the default priority");
    let id = t["id"].as_u64().expect("id");
    assert_eq!(t["display_id"], format!("#BIL{id:08}"));
    let cf = |name: &str| {
        t["custom_fields"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["name"] == name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(cf("Source ID")["value"], "text field value");
    assert_eq!(cf("Product")["value"], "Widget Pro");
    assert_eq!(cf("Product")["value_id"], 11);
    assert_eq!(cf("Order Value")["value"], 200);
    assert_eq!(cf("Purchase Date")["value"], "2019-12-20");
    assert_eq!(cf("Invoice Number")["value"], Value::Null);
    assert_eq!(
        cf("Affected Modules"),
        Value::Null,
        "fields of other categories are not listed"
    );
    assert_eq!(t["user"]["email"], "james@example.com");
    let plan = t["user"]["custom_fields"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["name"] == "Plan"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(plan["value"], "Pro");
    assert_eq!(t["updates"].as_array().map(Vec::len), Some(1));
    assert_eq!(t["updates"][0]["by"]["type"], "user");
    assert_eq!(t["updates"][0]["message"]["text"], "example ticket");
    // What the detail endpoint returns is what creation returned.
    let (status, again) = sb.get(&format!("ticket/{id}/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, t);
    // Creating the ticket created its contact, once.
    sb.ticket(json!({"subject": "second"})).await;
    let (_, users) = sb.get("users/").await;
    assert_eq!(users["page_info"]["last_index"], 1);
    assert_eq!(users["data"][0]["tickets_count"], 2);
}

#[tokio::test]
async fn ticket_detail_has_every_documented_field_with_its_type() {
    let sb = start(config()).await;
    let t = sb
        .ticket(json!({
            "phone": "02323412",
            "c-cf-1": "Changed company",
            "t-cf-1": "grey",
            "tags": "test",
            "created_at": "2019-08-13T08:59:11",
        }))
        .await;
    let id = t["id"].as_u64().expect("id");
    assert_eq!(t["created_at"], "2019-08-13 08:59:11", "created_at is kept");
    // A staff update with every kind of change, sent as multipart with an attachment.
    let form = reqwest::multipart::Form::new()
        .text("staff", "1")
        .text("status", "2")
        .text("priority", "3")
        .text("assignee", "1")
        .text("due_date", "16/08/2019")
        .text("time_spent", "12")
        .text("cc", "james@example.com")
        .text("html", "<p>Attachment added</p>")
        .part(
            "attachments",
            reqwest::multipart::Part::bytes(b"GIF89a....".to_vec()).file_name("bicycle.gif"),
        );
    let (status, t) = sb
        .multipart(&format!("ticket/{id}/staff_update/"), form)
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_shape(&t, &documented_ticket(), "ticket");
    let last = &t["updates"][1];
    assert_eq!(
        last["status_change"],
        json!({"new_name": "In Progress", "new": 2, "old": 1, "old_name": "New"})
    );
    assert_eq!(
        last["priority_change"],
        json!({"new_name": "High", "new": 3, "old": 2, "old_name": "Medium"})
    );
    assert_eq!(
        last["due_date_change"],
        json!({"new": "2019-08-16", "old": null})
    );
    assert_eq!(
        last["by"],
        json!({"email": "migration-bot@acme.example", "type": "staff", "id": 1, "name": "Migration Bot"})
    );
    assert_eq!(last["message"]["attachments"][0]["filename"], "bicycle.gif");
    assert_eq!(last["message"]["message_type"], Value::Null);
    assert_eq!(t["attachments_count"], 1);
    assert_eq!(t["messages_count"], 2);
    assert_eq!(t["time_spent"], 12);
    assert_eq!(t["due_date"], "2019-08-16");
    assert_eq!(t["assigned_to"]["id"], 1);
    assert_eq!(t["unresponded"], false);
    assert_eq!(t["user"]["primary_phone"]["number"], "02323412");
}

#[tokio::test]
async fn single_create_failures_use_the_documented_shape() {
    let sb = start(config()).await;
    // The reference's first failure example, exactly.
    let (status, body) = sb
        .post(
            "tickets/",
            json!({"name": "james", "email": "james@example.com", "subject": "s", "text": "t"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": [{"field": "category", "errors": ["This field is required."]}]})
    );
    // The second: a required custom field left out.
    let mut c = config();
    if let Some(f) = c.schema.ticket_custom_fields.iter_mut().find(|f| f.id == 3) {
        f.required = true;
    }
    let strict = start(c).await;
    let (status, body) = strict
        .post(
            "tickets/",
            json!({"name": "james", "email": "james@example.com", "subject": "s", "text": "t", "category": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": [{"field": "t-cf-3", "errors": ["This field is required."]}]})
    );
    assert_eq!(sb.stats().await.tickets, 0, "nothing stored on failure");
}

#[tokio::test]
async fn every_validation_rule_rejects_what_happyfox_rejects() {
    let sb = start(config()).await;
    let base = json!({"name": "james", "email": "james@example.com", "category": 1, "subject": "s", "text": "t"});
    let with = |patch: Value, remove: &[&str]| {
        let mut b = base.clone();
        if let Some(obj) = b.as_object_mut() {
            for k in remove {
                obj.remove(*k);
            }
            if let Some(p) = patch.as_object() {
                for (k, v) in p {
                    obj.insert(k.clone(), v.clone());
                }
            }
        }
        b
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "name",
            with(json!({}), &["name"]),
            "This field is required.",
        ),
        (
            "email",
            with(json!({}), &["email"]),
            "This field is required.",
        ),
        (
            "email",
            with(json!({"email": "james@"}), &[]),
            "Enter a valid email address.",
        ),
        (
            "client",
            with(json!({"client": 999}), &["name", "email"]),
            "Select a valid choice. That choice is not one of the available choices.",
        ),
        (
            "subject",
            with(json!({"subject": ""}), &[]),
            "This field is required.",
        ),
        (
            "text",
            with(json!({}), &["text"]),
            "Either text or html is required.",
        ),
        (
            "category",
            with(json!({"category": 99}), &[]),
            "Select a valid choice. That choice is not one of the available choices.",
        ),
        (
            "category",
            with(json!({"category": 3}), &[]),
            "Select a valid choice. That choice is not one of the available choices.",
        ),
        (
            "category",
            with(json!({"category": "Support"}), &[]),
            "Select a valid choice. That choice is not one of the available choices.",
        ),
        (
            "priority",
            with(json!({"priority": 9}), &[]),
            "Select a valid choice. That choice is not one of the available choices.",
        ),
        (
            "assignee",
            with(json!({"assignee": 5}), &[]),
            "Select a valid choice. That choice is not one of the available choices.",
        ),
        (
            "assignee",
            with(json!({"assignee": 77}), &[]),
            "Select a valid choice. That choice is not one of the available choices.",
        ),
        (
            "cc",
            with(json!({"cc": "a@b.io, nope"}), &[]),
            "Enter a valid email address.",
        ),
        (
            "created_at",
            with(json!({"created_at": "2019-08-13 08:59:11"}), &[]),
            "Enter a valid date/time.",
        ),
        (
            "created_at",
            with(json!({"created_at": "2019-08-13T08:59:11Z"}), &[]),
            "Enter a valid date/time.",
        ),
        (
            "due_date",
            with(json!({"due_date": "08/16/2019"}), &[]),
            "Enter a valid date.",
        ),
        (
            "t-cf-99",
            with(json!({"t-cf-99": "x"}), &[]),
            "This custom field does not exist.",
        ),
        (
            "t-cf-4",
            with(json!({"t-cf-4": 5}), &[]),
            "This custom field is not applicable to the category of this ticket.",
        ),
        (
            "t-cf-2",
            with(json!({"t-cf-2": "Widget Pro"}), &[]),
            "Select a valid choice. That choice is not one of the available choices.",
        ),
        (
            "t-cf-2",
            with(json!({"t-cf-2": 21}), &[]),
            "Select a valid choice. That choice is not one of the available choices.",
        ),
        (
            "t-cf-3",
            with(json!({"t-cf-3": [21, 99]}), &[]),
            "Select a valid choice. That choice is not one of the available choices.",
        ),
        (
            "t-cf-3",
            with(json!({"t-cf-3": {"a": 1}}), &[]),
            "Enter a list of values.",
        ),
        (
            "t-cf-5",
            with(json!({"category": 2, "t-cf-5": "20/12/2019"}), &[]),
            "Enter a valid date.",
        ),
        (
            "t-cf-4",
            with(json!({"category": 2, "t-cf-4": 1.234}), &[]),
            "Ensure that there are no more than 2 decimal places.",
        ),
        (
            "t-cf-4",
            with(json!({"category": 2, "t-cf-4": "lots"}), &[]),
            "Enter a number.",
        ),
        (
            "c-cf-9",
            with(json!({"c-cf-9": "x"}), &[]),
            "This custom field does not exist.",
        ),
        (
            "c-cf-2",
            with(json!({"c-cf-2": 11}), &[]),
            "Select a valid choice. That choice is not one of the available choices.",
        ),
    ];
    for (field, payload, message) in cases {
        let (status, body) = sb.post("tickets/", payload.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{payload} → {body}");
        let errors = body["error"].as_array().cloned().unwrap_or_default();
        assert!(
            errors.iter().any(|e| e["field"] == field
                && e["errors"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|m| m == message))),
            "{payload}: expected {field}: {message}, got {body}"
        );
    }
    // All errors are reported together, in a stable order.
    let (_, body) = sb.post("tickets/", json!({"t-cf-99": 1})).await;
    let fields: Vec<&str> = body["error"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        fields,
        ["name", "email", "subject", "text", "category", "t-cf-99"]
    );
    // The accepted formats are accepted.
    for payload in [
        with(json!({"created_at": "2019-08-13T08:59:11.123"}), &[]),
        with(json!({"due_date": "2019-08-16"}), &[]),
        with(json!({"html": "<p>hi</p>"}), &["text"]),
        with(
            json!({"category": "2", "t-cf-4": "12.50", "t-cf-2": "12"}),
            &[],
        ),
        with(json!({"assignee": null, "priority": 4}), &[]),
        with(json!({"client": 1}), &["name", "email"]),
    ] {
        let (status, body) = sb.post("tickets/", payload.clone()).await;
        assert_eq!(status, StatusCode::OK, "{payload} → {body}");
    }
    assert_eq!(sb.stats().await.tickets, 6);
}

#[tokio::test]
async fn bulk_create_reports_each_item_in_request_order() {
    let sb = start(config()).await;
    let (status, body) = sb
        .post(
            "tickets/",
            json!([
                {"name": "a", "email": "a@example.com", "category": 1, "subject": "one", "text": "1"},
                {"name": "b", "email": "b@example.com", "subject": "two", "text": "2"},
                {"name": "c", "email": "c@example.com", "category": 4, "subject": "three", "text": "3"},
                "not an object",
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let items = body.as_array().expect("list");
    assert_eq!(items.len(), 4);
    // The documented shapes, exactly.
    assert_shape(
        &items[0],
        &json!({"display_id": "#DC00000011", "id": 11, "success": true}),
        "ok",
    );
    assert_eq!(items[0].as_object().map(|o| o.len()), Some(3));
    assert_eq!(
        items[1],
        json!({"success": false, "error": [{"field": "category", "errors": ["This field is required."]}]})
    );
    assert_eq!(items[2]["success"], true);
    assert!(
        items[2]["display_id"]
            .as_str()
            .is_some_and(|d| d.starts_with("#SAL"))
    );
    assert_eq!(items[3]["success"], false);
    let (_, t) = sb.get(&format!("ticket/{}/", items[2]["id"])).await;
    assert_eq!(t["subject"], "three");

    // 100 is the maximum.
    let hundred: Vec<Value> = (0..100)
        .map(|i| json!({"name": "n", "email": format!("u{i}@example.com"), "category": 1, "subject": format!("s{i}"), "text": "t"}))
        .collect();
    let (status, body) = sb.post("tickets/", Value::Array(hundred.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().map(Vec::len), Some(100));
    let mut too_many = hundred;
    too_many.push(json!({}));
    let before = sb.stats().await.tickets;
    let (status, body) = sb.post("tickets/", Value::Array(too_many)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].is_array());
    assert_eq!(
        sb.stats().await.tickets,
        before,
        "a rejected bulk stores nothing"
    );
}

#[tokio::test]
async fn multipart_create_takes_attachments_up_to_25_mb() {
    let sb = start(config()).await;
    // "Example 2: Creating ticket with attachments", as the Python sample sends it.
    let form = reqwest::multipart::Form::new()
        .text("category", "4")
        .text("name", "Name")
        .text("text", "Ticket creation message")
        .text("subject", "Ticket creation subject")
        .text("email", "john@example.com")
        .text("t-cf-2", "11")
        .part(
            "attachments",
            reqwest::multipart::Part::bytes(PNG.to_vec())
                .file_name("Second_screen.png")
                .mime_str("image/png")
                .expect("mime"),
        );
    let (status, t) = sb.multipart("tickets/", form).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["attachments_count"], 1);
    assert_eq!(
        t["updates"][0]["message"]["attachments"][0]["filename"],
        "Second_screen.png"
    );
    assert_eq!(t["subject"], "Ticket creation subject");

    let big = vec![0u8; 25 * 1024 * 1024 + 1];
    let form = reqwest::multipart::Form::new()
        .text("category", "1")
        .text("name", "Name")
        .text("text", "t")
        .text("subject", "s")
        .text("email", "john@example.com")
        .part(
            "attachments",
            reqwest::multipart::Part::bytes(big).file_name("big.bin"),
        );
    let (status, body) = sb.multipart("tickets/", form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"][0]["field"], "attachments");
    assert_eq!(sb.stats().await.tickets, 1);
}

#[tokio::test]
async fn inline_attachments_take_one_image_and_return_a_url() {
    let sb = start(config()).await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(PNG.to_vec()).file_name("inline.png"),
    );
    let (status, body) = sb.multipart("ticket-inline-attachment", form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(1));
    assert!(
        body["url"]
            .as_str()
            .is_some_and(|u| u.contains("/get_hdp_temporarily_attachment/"))
    );
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"%PDF-1.4".to_vec()).file_name("doc.pdf"),
    );
    let (status, body) = sb.multipart("ticket-inline-attachment", form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"][0]["field"], "file");
    let form = reqwest::multipart::Form::new().text("other", "x");
    assert_eq!(
        sb.multipart("ticket-inline-attachment", form).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        sb.post("ticket-inline-attachment", json!({})).await.0,
        StatusCode::BAD_REQUEST
    );
}

// ---------------------------------------------------------------------------------------
// Ticket updates.

#[tokio::test]
async fn staff_update_example_and_its_documented_failure() {
    let sb = start(config()).await;
    let t = sb.ticket(json!({})).await;
    let id = t["id"].as_u64().expect("id");
    // The reference's example payload, ids adapted.
    let (status, t) = sb
        .post(
            &format!("ticket/{id}/staff_update/"),
            json!({"staff": 1, "status": 2, "html": "<p>Example reply</p>", "t-cf-3": [21, 22], "c-cf-2": 52}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["status"]["id"], 2);
    let last = &t["updates"][1];
    assert_eq!(last["message"]["html"], "<p>Example reply</p>");
    assert_eq!(last["message"]["text"], "Example reply");
    assert_eq!(last["by"]["type"], "staff");
    assert!(t["last_staff_reply_at"].is_string());
    let modules = t["custom_fields"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["id"] == 3))
        .cloned()
        .unwrap_or_default();
    assert_eq!(modules["value_id"], json!([21, 22]));
    // `ccf-` works as well as `c-cf-`.
    let (status, t) = sb
        .post(
            &format!("ticket/{id}/staff_update/"),
            json!({"staff": 2, "ccf-1": "Acme"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["user"]["custom_fields"][0]["value"], "Acme");
    assert_eq!(t["user"]["custom_fields"][1]["value"], "Pro", "others kept");

    // Closing needs the fields compulsory on completion: the documented failure shape.
    let (status, body) = sb
        .post(
            &format!("ticket/{id}/staff_update/"),
            json!({"staff": 1, "status": 6}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": {"t-cf-6": "This field should be filled before marking this ticket as completed"}})
    );
    let billing = sb.ticket(json!({"category": 2})).await;
    let bid = billing["id"].as_u64().expect("id");
    let (_, body) = sb
        .post(
            &format!("ticket/{bid}/staff_pvtnote/"),
            json!({"staff": 1, "status": 5}),
        )
        .await;
    assert_eq!(
        body,
        json!({"error": {"t-cf-8": "This field should be filled before marking this ticket as completed"}})
    );
    let (status, t) = sb
        .post(
            &format!("ticket/{bid}/staff_update/"),
            json!({"staff": 1, "status": 5, "t-cf-8": "INV-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["status"]["behavior"], "completed");
    // Completed → completed needs no new check.
    let (status, _) = sb
        .post(
            &format!("ticket/{bid}/staff_update/"),
            json!({"staff": 1, "status": 6}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    for (payload, field) in [
        (json!({"html": "x"}), "staff"),
        (json!({"staff": 5, "html": "x"}), "staff"),
        (json!({"staff": 1, "status": 99}), "status"),
        (json!({"staff": 1, "priority": 99}), "priority"),
        (json!({"staff": 1, "assignee": 5}), "assignee"),
        (json!({"staff": 1, "due_date": "2019/08/16"}), "due_date"),
        (json!({"staff": 1, "time_spent": "ten"}), "time_spent"),
        (json!({"staff": 1, "t-cf-4": 3}), "t-cf-4"),
        (json!({"staff": 1, "ccf-8": 3}), "ccf-8"),
    ] {
        let (status, body) = sb
            .post(&format!("ticket/{id}/staff_update/"), payload.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{payload}");
        assert!(body["error"][field].is_string(), "{payload} → {body}");
    }
    assert_eq!(
        sb.post("ticket/999/staff_update/", json!({"staff": 1}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn private_notes_replies_tags_fields_and_delete() {
    let sb = start(config()).await;
    let t = sb.ticket(json!({"tags": "test"})).await;
    let id = t["id"].as_u64().expect("id");
    let user = t["user"]["id"].as_u64().expect("user id");

    let (status, t) = sb
        .post(
            &format!("ticket/{id}/staff_pvtnote/"),
            json!({"staff": 3, "plaintext": "internal", "alert": "s"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["updates"][1]["message"]["message_type"], "p");
    assert_eq!(
        t["last_staff_reply_at"],
        Value::Null,
        "a note is not a reply"
    );

    // The reference's user_reply sample.
    let (status, t) = sb
        .post(
            &format!("ticket/{id}/user_reply/"),
            json!({"text": "This is a response sent by the user via API", "cc": "exampleaddress@example.com", "bcc": "exampleaddress-2@example.com", "user": user}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let last = &t["updates"][2];
    assert_eq!(last["by"]["type"], "user");
    assert_eq!(last["by"]["id"], user);
    assert_eq!(last["message"]["cc_list"], "exampleaddress@example.com");
    assert_eq!(t["unresponded"], true);
    let (status, body) = sb
        .post(
            &format!("ticket/{id}/user_reply/"),
            json!({"text": "x", "user": 999}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["user"].is_string());
    let (_, body) = sb
        .post(&format!("ticket/{id}/user_reply/"), json!({"user": user}))
        .await;
    assert_eq!(body, json!({"error": {"text": "This field is required."}}));

    // The reference's update_tags example.
    let (status, t) = sb
        .post(
            &format!("ticket/{id}/update_tags/"),
            json!({"add": "test1, example", "remove": "test"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t["tags"], "test1,example");

    let (status, t) = sb
        .post(
            &format!("ticket/{id}/update_custom_fields/"),
            json!({"staff": 1, "t-cf-9": 42}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert!(
        t["custom_fields"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f["value"] == "Incident"))
    );
    let (status, _) = sb
        .post(
            &format!("ticket/{id}/update_custom_fields/"),
            json!({"t-cf-9": 42}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Delete example.
    let (status, body) = sb
        .post(&format!("ticket/{id}/delete/"), json!({"staff_id": 1}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"deleted_ticket": format!("#SUP{id:08}")}));
    assert_eq!(
        sb.get(&format!("ticket/{id}/")).await.0,
        StatusCode::NOT_FOUND
    );
    let s = sb.stats().await;
    assert_eq!((s.tickets, s.updates, s.deleted_tickets), (0, 0, 1));
    let t2 = sb.ticket(json!({})).await;
    assert!(t2["id"].as_u64() > Some(id), "ids are never reused");
}

// ---------------------------------------------------------------------------------------
// Contacts.

#[tokio::test]
async fn contacts_upsert_by_email_and_reset_fields_not_sent() {
    let sb = start(config()).await;
    let (status, c) = sb
        .post(
            "users/",
            json!({"name": "Ann", "email": "ann@example.com", "phones": [{"type": "mo", "number": "555-1", "is_primary": true}], "c-cf-1": "Acme", "c-cf-5": [61, 62], "is_login_enabled": "FALSE"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    let id = c["id"].as_u64().expect("id");
    assert_eq!(c["custom_fields"][0]["value"], "Acme");
    assert_eq!(c["custom_fields"][4]["value"], json!(["English", "French"]));
    assert_eq!(c["primary_phone"]["number"], "555-1");
    // Same email, different case: the same contact, and Company is reset.
    let (status, c) = sb
        .post(
            "users/",
            json!({"name": "Ann B", "email": "ANN@example.com", "c-cf-2": 53}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c["id"], id);
    assert_eq!(c["name"], "Ann B");
    assert_eq!(c["custom_fields"][0]["value"], Value::Null);
    assert_eq!(c["custom_fields"][1]["value"], "Enterprise");
    assert_eq!(c["phones"].as_array().map(Vec::len), Some(1));

    let (status, list) = sb
        .post(
            "users/",
            json!([
                {"name": "Bob", "email": "bob@example.com"},
                {"name": "No Email"},
                {"name": "Ann C", "email": "ann@example.com"},
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["success"], true);
    assert_eq!(list[0]["email"], "bob@example.com");
    assert_eq!(list[1]["success"], false);
    assert_eq!(list[1]["error"][0]["field"], "email");
    assert_eq!(list[2]["id"], id);
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"name": "x", "email": format!("x{i}@e.io")}))
        .collect();
    assert_eq!(
        sb.post("users/", Value::Array(many)).await.0,
        StatusCode::BAD_REQUEST
    );

    let (status, by_email) = sb.get("user/ann%40example.com/").await;
    assert_eq!(status, StatusCode::OK);
    let (_, by_id) = sb.get(&format!("user/{id}/")).await;
    assert_eq!(by_email, by_id);
    assert_eq!(
        sb.get("user/nobody@example.com/").await.0,
        StatusCode::NOT_FOUND
    );

    let (_, found) = sb.get("users/?q=email:bob@example.com").await;
    assert_eq!(found["page_info"]["last_index"], 1);
    assert_eq!(found["data"][0]["name"], "Bob");
    let (_, found) = sb.get("users/?q=name:ann").await;
    assert_eq!(found["data"][0]["id"], id);
    let (_, page) = sb.get("users/?size=1&page=2").await;
    assert_eq!(
        page["page_info"],
        json!({"count": 1, "last_index": 2, "page_count": 2, "start_index": 2, "end_index": 2})
    );
}

// ---------------------------------------------------------------------------------------
// Listing and search.

#[tokio::test]
async fn ticket_lists_paginate_filter_sort_and_search() {
    let sb = start(config()).await;
    let mut ids = Vec::new();
    for i in 0..12u32 {
        let t = sb
            .ticket(json!({
                "email": format!("c{}@example.com", i % 3),
                "category": if i % 2 == 0 { 1 } else { 2 },
                "subject": format!("ticket {i}"),
                "tags": if i % 4 == 0 { "migrated,zendesk" } else { "other" },
                "t-cf-1": format!("ZD-{i}"),
                "created_at": format!("2019-01-{:02}T10:00:00", i + 1),
            }))
            .await;
        ids.push(t["id"].as_u64().expect("id"));
    }
    let (_, closed) = sb
        .post(
            &format!("ticket/{}/staff_update/", ids[1]),
            json!({"staff": 1, "status": 6, "t-cf-8": "I"}),
        )
        .await;
    assert_eq!(closed["status"]["name"], "Closed");

    let (status, p) = sb.get("tickets/?status=_all").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        p["page_info"],
        json!({"count": 10, "last_index": 12, "page_count": 2, "start_index": 1, "end_index": 10})
    );
    assert!(p["data"][0].get("updates").is_none(), "lists omit updates");
    assert_eq!(p["filters"]["status"], "_all");
    let (_, p) = sb.get("tickets/?size=500&page=1").await;
    assert_eq!(p["page_info"]["count"], 12, "size is capped at 50");
    let (_, p) = sb.get("tickets/?size=5&page=3&sort=ticketa").await;
    assert_eq!(p["page_info"]["count"], 2);
    assert_eq!(p["data"][0]["id"], ids[10]);
    assert_eq!(sb.get("tickets/?size=0").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        sb.get("tickets/?sort=sideways").await.0,
        StatusCode::BAD_REQUEST
    );
    let (_, p) = sb.get("tickets/?sort=createa&size=50").await;
    assert_eq!(p["data"][0]["id"], ids[0]);
    let (_, p) = sb.get("tickets/?category=2&size=50").await;
    assert_eq!(p["page_info"]["last_index"], 6);
    let (_, p) = sb.get("tickets/?status=6").await;
    assert_eq!(p["page_info"]["last_index"], 1);
    let (_, p) = sb
        .get("tickets/?minify_response=true&sort=ticketa&size=3")
        .await;
    assert_eq!(p["data"], json!(ids[..3]));
    // The "Fetch specific JSON fields" example.
    let (_, p) = sb
        .get("tickets/?fields=id,last_user_reply_at,last_staff_reply_at&size=2")
        .await;
    assert_eq!(p["data"][0].as_object().map(|o| o.len()), Some(3));
    assert_shape(
        &p,
        &json!({"page_info": {"count": 10, "last_index": 365, "page_count": 37, "start_index": 1, "end_index": 10},
                "data": [{"last_staff_reply_at": null, "id": 768, "last_user_reply_at": "2023-10-31 09:11:05"}],
                "filters": {"status": "_all", "category": "_all", "q": "", "sort": "updated"}}),
        "fields",
    );

    let search = |q: &str| {
        let url = format!(
            "tickets/?status=_all&size=50&q={}",
            q.replace('%', "%25")
                .replace('"', "%22")
                .replace(' ', "%20")
                .replace('+', "%2B")
        );
        let sb = &sb;
        async move {
            let (status, p) = sb.get(&url).await;
            assert_eq!(status, StatusCode::OK, "{url}: {p}");
            let mut found: Vec<u64> = p["data"]
                .as_array()
                .map(|a| a.iter().filter_map(|t| t["id"].as_u64()).collect())
                .unwrap_or_default();
            found.sort();
            found
        }
    };
    assert_eq!(
        search(r#"tag:"migrated""#).await,
        vec![ids[0], ids[4], ids[8]]
    );
    assert_eq!(
        search(r#""Source ID":"zd-5""#).await,
        vec![ids[5]],
        "names and values are case-insensitive"
    );
    assert_eq!(search(r#""source id":"ZD-5""#).await, vec![ids[5]]);
    assert_eq!(
        search(r#"contact:"c1@example.com""#).await,
        vec![ids[1], ids[4], ids[7], ids[10]]
    );
    assert_eq!(search(r#"status:"New","Closed""#).await.len(), 12);
    assert_eq!(search(r#"status:"Closed""#).await, vec![ids[1]]);
    assert_eq!(
        search(r#"created-on-or-after:"2019/01/11""#).await,
        vec![ids[10], ids[11]]
    );
    assert_eq!(search(r#"created-before:"2019/01/02""#).await, vec![ids[0]]);
    assert_eq!(
        search(r#"tag:"migrated"+contact:"c0@example.com""#).await,
        vec![ids[0]]
    );
    assert_eq!(
        search(r#"tag:"migrated" "Source ID":"ZD-4""#).await,
        vec![ids[4]]
    );
    assert_eq!(
        search(&format!("id:SUP{:08},{}", ids[0], ids[1])).await,
        vec![ids[0], ids[1]]
    );
    // Unquoted `+` in the URL is a space, as the reference's examples rely on.
    let (_, p) = sb
        .get("tickets/?status=_all&q=tag:%22migrated%22+status:%22In+Progress%22,%22New%22")
        .await;
    assert_eq!(p["page_info"]["last_index"], 3);
    // Without status=_all a search only sees pending tickets.
    let (_, p) = sb.get("tickets/?q=status:%22Closed%22").await;
    assert_eq!(p["page_info"]["last_index"], 0);
    for bad in [
        r#""Nope":"x""#,
        r#"tag:"open"#,
        r#"created-on:"2019-01-01""#,
    ] {
        let url = format!("tickets/?status=_all&q={}", bad.replace('"', "%22"));
        assert_eq!(sb.get(&url).await.0, StatusCode::BAD_REQUEST, "{bad}");
    }
}

// ---------------------------------------------------------------------------------------
// Limits, faults, stats, state.

#[tokio::test]
async fn the_rate_limit_locks_every_call_out_for_the_lockout() {
    let mut c = config();
    c.limits = Limits {
        post_per_min: 3,
        get_per_min: 4,
        lockout: Duration::from_millis(700),
    };
    let sb = start(c).await;
    for _ in 0..3 {
        assert_eq!(
            sb.post("users/", json!({"name": "a", "email": "a@e.io"}))
                .await
                .0,
            StatusCode::OK
        );
    }
    let (status, _) = sb
        .post("users/", json!({"name": "a", "email": "a@e.io"}))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Every call is refused during the lockout, GETs included.
    assert_eq!(sb.get("categories/").await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sb.get("users/").await.0, StatusCode::TOO_MANY_REQUESTS);
    let s = sb.stats().await;
    assert_eq!(s.rate_limited, 3);
    assert_eq!(s.lockouts, 1);
    assert_eq!(s.served("POST users/", "429"), 1);
    assert_eq!(s.served("GET categories/", "429"), 1);
    tokio::time::sleep(Duration::from_millis(750)).await;
    for _ in 0..4 {
        assert_eq!(sb.get("categories/").await.0, StatusCode::OK);
    }
    assert_eq!(sb.get("categories/").await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sb.stats().await.lockouts, 2);
}

#[tokio::test]
async fn a_failure_fault_stores_nothing_and_is_counted() {
    let mut c = config();
    c.faults = Faults {
        fail_rate: 1.0,
        seed: Some(1),
        ..Faults::default()
    };
    let sb = start(c).await;
    let (status, _) = sb
        .post(
            "tickets/",
            json!({"name": "a", "email": "a@e.io", "category": 1, "subject": "s", "text": "t"}),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let s = sb.stats().await;
    assert_eq!(s.tickets, 0);
    assert_eq!(s.contacts, 0);
    assert_eq!(s.faults.fail, 1);
    assert_eq!(s.served("POST tickets/", "500"), 1);
}

#[tokio::test]
async fn a_drop_fault_stores_the_write_then_closes_the_connection() {
    let mut c = config();
    c.faults = Faults {
        drop_rate: 1.0,
        seed: Some(1),
        ..Faults::default()
    };
    let sb = start(c).await;
    let result = sb
        .auth(sb.http.post(sb.url("tickets/")))
        .json(&json!({"name": "a", "email": "a@e.io", "category": 1, "subject": "s", "text": "t"}))
        .send()
        .await;
    assert!(result.is_err(), "the client sees no response: {result:?}");
    // Reads are never dropped, and the write was stored.
    let s = sb.stats().await;
    assert_eq!(s.tickets, 1);
    assert_eq!(s.faults.drop, 1);
    assert_eq!(s.served("POST tickets/", "dropped"), 1);
    let (status, p) = sb.get("tickets/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(p["page_info"]["last_index"], 1);
    // A failed write is not dropped (nothing was stored).
    let (status, _) = sb.post("tickets/", json!({"subject": "s"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn latency_is_added_and_counted() {
    let mut c = config();
    c.faults = Faults {
        latency: Some(Latency::Range(
            Duration::from_millis(40),
            Duration::from_millis(60),
        )),
        seed: Some(3),
        ..Faults::default()
    };
    let sb = start(c).await;
    let t0 = Instant::now();
    for _ in 0..3 {
        assert_eq!(sb.get("statuses/").await.0, StatusCode::OK);
    }
    assert!(t0.elapsed() >= Duration::from_millis(120));
    assert_eq!(sb.stats().await.faults.latency, 3);
}

#[tokio::test]
async fn concurrent_writes_to_one_ticket_are_recorded_and_may_be_refused() {
    for reject in [false, true] {
        let mut c = config();
        c.faults.latency = Some(Latency::Fixed(Duration::from_millis(150)));
        c.reject_overlaps = reject;
        let sb = start(c).await;
        let t = sb.ticket(json!({})).await;
        let id = t["id"].as_u64().expect("id");
        let other = sb.ticket(json!({})).await["id"].as_u64().expect("id");
        let path = format!("ticket/{id}/staff_pvtnote/");
        let other_path = format!("ticket/{other}/staff_pvtnote/");
        let note = json!({"staff": 1, "plaintext": "n"});
        let (a, b, c) = tokio::join!(
            sb.post(&path, note.clone()),
            sb.post(&path, note.clone()),
            sb.post(&other_path, note.clone())
        );
        let s = sb.stats().await;
        assert_eq!(s.overlapping_writes, 1, "reject={reject}");
        assert_eq!(s.overlaps_by_ticket.get(&id), Some(&1));
        assert_eq!(s.overlaps_by_ticket.get(&other), None);
        assert_eq!(c.0, StatusCode::OK);
        let statuses = [a.0, b.0];
        if reject {
            assert!(statuses.contains(&StatusCode::CONFLICT));
            assert_eq!(s.conflicts, 1);
        } else {
            assert_eq!(statuses, [StatusCode::OK, StatusCode::OK]);
        }
        // Writes one after another never overlap.
        sb.post(&path, note.clone()).await;
        assert_eq!(sb.stats().await.overlapping_writes, 1);
    }
}

#[tokio::test]
async fn urlencoded_payloads_are_read_like_json() {
    let sb = start(config()).await;
    let resp = sb
        .auth(sb.http.post(sb.url("tickets/")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("name=Form+User&email=form%40example.com&category=1&subject=Via+form&text=hello&t-cf-3=21&t-cf-3=23")
        .send()
        .await
        .expect("POST form");
    let (status, t) = Sb::read(resp).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["subject"], "Via form");
    assert_eq!(t["user"]["email"], "form@example.com");
    let modules = t["custom_fields"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["id"] == 3))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        modules["value_id"],
        json!([21, 23]),
        "repeated keys are a list"
    );
}

#[tokio::test]
async fn the_state_file_is_saved_while_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.json");
    let mut c = config();
    c.state_file = Some(path.clone());
    c.save_every = Duration::from_millis(50);
    let sb = start(c).await;
    sb.ticket(json!({"subject": "saved before any crash"}))
        .await;
    let t0 = Instant::now();
    let mut saved = String::new();
    while t0.elapsed() < Duration::from_secs(5) && !saved.contains("saved before any crash") {
        tokio::time::sleep(Duration::from_millis(25)).await;
        saved = std::fs::read_to_string(&path).unwrap_or_default();
    }
    assert!(
        saved.contains("saved before any crash"),
        "state written periodically"
    );
    drop(sb);
}

#[tokio::test]
async fn reset_clears_the_account() {
    let sb = start(config()).await;
    sb.ticket(json!({})).await;
    let (status, _) = sb.post("/_sandbox/reset", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let s = sb.stats().await;
    assert_eq!((s.tickets, s.contacts, s.updates), (0, 0, 0));
    assert_eq!(sb.get("users/").await.1["page_info"]["last_index"], 0);
}

#[tokio::test]
async fn the_state_file_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.json");
    let mut c = config();
    c.state_file = Some(path.clone());
    let sb = start(c.clone()).await;
    let t = sb.ticket(json!({"tags": "kept"})).await;
    sb.post(
        &format!("ticket/{}/staff_update/", t["id"]),
        json!({"staff": 1, "html": "<p>r</p>"}),
    )
    .await;
    let (_, before) = sb.get(&format!("ticket/{}/", t["id"])).await;
    sb.sb.stop().await.expect("stop saves");
    assert!(path.exists());
    let sb = start(c).await;
    let (status, after) = sb.get(&format!("ticket/{}/", t["id"])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after, before);
    let t2 = sb.ticket(json!({})).await;
    assert_eq!(t2["id"], t["id"].as_u64().map(|i| i + 1).unwrap_or(0));
    assert_eq!(
        t2["user"]["id"], t["user"]["id"],
        "the contact index was rebuilt"
    );
}

// ---------------------------------------------------------------------------------------
// Property: whatever valid calls are made, ids are unique and reads return what was posted.

#[derive(Debug, Clone)]
enum Call {
    Create {
        category: u64,
        subject: String,
        tag: String,
    },
    Bulk(Vec<(u64, String)>),
    Reply {
        ticket: usize,
        text: String,
    },
    Note {
        ticket: usize,
        text: String,
    },
    UserReply {
        ticket: usize,
        text: String,
    },
}

fn call() -> impl Strategy<Value = Call> {
    let category = prop::sample::select(vec![1u64, 2, 4]);
    let words = "[a-zA-Z0-9éø][a-zA-Z0-9 éø]{0,19}";
    prop_oneof![
        (category.clone(), words, "[a-z]{1,8}").prop_map(|(category, subject, tag)| Call::Create {
            category,
            subject,
            tag
        }),
        prop::collection::vec((category, words), 1..8).prop_map(Call::Bulk),
        (any::<usize>(), words).prop_map(|(ticket, text)| Call::Reply { ticket, text }),
        (any::<usize>(), words).prop_map(|(ticket, text)| Call::Note { ticket, text }),
        (any::<usize>(), words).prop_map(|(ticket, text)| Call::UserReply { ticket, text }),
    ]
}

/// What a ticket should look like, from the calls made.
#[derive(Debug, Default, Clone)]
struct Expected {
    id: u64,
    display_id: String,
    subject: String,
    tags: String,
    /// (text, by type, message_type)
    messages: Vec<(String, &'static str, Value)>,
}

#[test]
fn any_sequence_of_valid_calls_keeps_ids_unique_and_reads_what_was_written() {
    let rt = runtime();
    let sb = rt.block_on(start(config()));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&prop::collection::vec(call(), 1..14), |calls| {
        rt.block_on(async {
            sb.post("/_sandbox/reset", json!({})).await;
            let mut tickets: Vec<Expected> = Vec::new();
            let prefix = |c: u64| match c {
                1 => "SUP",
                2 => "BIL",
                _ => "SAL",
            };
            for call in calls {
                match call {
                    Call::Create { category, subject, tag } => {
                        let t = sb
                            .ticket(json!({"category": category, "subject": subject, "text": format!("first {subject}"), "tags": tag}))
                            .await;
                        let id = t["id"].as_u64().expect("id");
                        let want = format!("#{}{id:08}", prefix(category));
                        prop_assert_eq!(t["display_id"].as_str(), Some(want.as_str()));
                        tickets.push(Expected {
                            id,
                            display_id: t["display_id"].as_str().unwrap_or("").to_string(),
                            subject: subject.clone(),
                            tags: tag,
                            messages: vec![(format!("first {subject}"), "user", Value::Null)],
                        });
                    }
                    Call::Bulk(items) => {
                        let body: Vec<Value> = items
                            .iter()
                            .map(|(c, s)| json!({"name": "n", "email": "bulk@example.com", "category": c, "subject": s, "text": s}))
                            .collect();
                        let (status, results) = sb.post("tickets/", Value::Array(body)).await;
                        prop_assert_eq!(status, StatusCode::OK);
                        let results = results.as_array().cloned().unwrap_or_default();
                        prop_assert_eq!(results.len(), items.len());
                        for ((c, s), r) in items.iter().zip(results) {
                            prop_assert_eq!(&r["success"], &json!(true));
                            let id = r["id"].as_u64().expect("id");
                            let want = format!("#{}{id:08}", prefix(*c));
                            prop_assert_eq!(r["display_id"].as_str(), Some(want.as_str()));
                            tickets.push(Expected {
                                id,
                                display_id: r["display_id"].as_str().unwrap_or("").to_string(),
                                subject: s.clone(),
                                tags: String::new(),
                                messages: vec![(s.clone(), "user", Value::Null)],
                            });
                        }
                    }
                    Call::Reply { ticket, text } | Call::Note { ticket, text } | Call::UserReply { ticket, text }
                        if tickets.is_empty() =>
                    {
                        let _ = (ticket, text);
                    }
                    Call::Reply { ticket, text } => {
                        let i = ticket % tickets.len();
                        let (status, _) = sb
                            .post(&format!("ticket/{}/staff_update/", tickets[i].id), json!({"staff": 1, "plaintext": text}))
                            .await;
                        prop_assert_eq!(status, StatusCode::OK);
                        tickets[i].messages.push((text, "staff", Value::Null));
                    }
                    Call::Note { ticket, text } => {
                        let i = ticket % tickets.len();
                        let (status, _) = sb
                            .post(&format!("ticket/{}/staff_pvtnote/", tickets[i].id), json!({"staff": 2, "plaintext": text}))
                            .await;
                        prop_assert_eq!(status, StatusCode::OK);
                        tickets[i].messages.push((text, "staff", json!("p")));
                    }
                    Call::UserReply { ticket, text } => {
                        let i = ticket % tickets.len();
                        let (_, t) = sb.get(&format!("ticket/{}/", tickets[i].id)).await;
                        let user = t["user"]["id"].clone();
                        let (status, _) = sb
                            .post(&format!("ticket/{}/user_reply/", tickets[i].id), json!({"user": user, "text": text}))
                            .await;
                        prop_assert_eq!(status, StatusCode::OK);
                        tickets[i].messages.push((text, "user", Value::Null));
                    }
                }
            }
            let mut ids: Vec<u64> = tickets.iter().map(|t| t.id).collect();
            ids.sort();
            ids.dedup();
            prop_assert_eq!(ids.len(), tickets.len(), "ticket ids are unique");
            let mut display: Vec<&str> = tickets.iter().map(|t| t.display_id.as_str()).collect();
            display.sort();
            display.dedup();
            prop_assert_eq!(display.len(), tickets.len(), "display ids are unique");
            for e in &tickets {
                let (status, t) = sb.get(&format!("ticket/{}/", e.id)).await;
                prop_assert_eq!(status, StatusCode::OK);
                prop_assert_eq!(t["subject"].as_str(), Some(e.subject.as_str()));
                prop_assert_eq!(t["display_id"].as_str(), Some(e.display_id.as_str()));
                prop_assert_eq!(t["tags"].as_str(), Some(e.tags.as_str()));
                let got: Vec<(String, String, Value)> = t["updates"]
                    .as_array()
                    .map(|u| {
                        u.iter()
                            .map(|u| {
                                (
                                    u["message"]["text"].as_str().unwrap_or("").to_string(),
                                    u["by"]["type"].as_str().unwrap_or("").to_string(),
                                    u["message"]["message_type"].clone(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let want: Vec<(String, String, Value)> = e
                    .messages
                    .iter()
                    .map(|(m, by, kind)| (m.clone(), by.to_string(), kind.clone()))
                    .collect();
                prop_assert_eq!(got, want);
                prop_assert_eq!(t["messages_count"].as_u64(), Some(e.messages.len() as u64));
            }
            let s = sb.stats().await;
            prop_assert_eq!(s.tickets, tickets.len() as u64);
            prop_assert_eq!(s.updates, tickets.iter().map(|t| t.messages.len() as u64).sum::<u64>());
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
