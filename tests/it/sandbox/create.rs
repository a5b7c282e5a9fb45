//! Ticket creation: single, bulk and multipart creates, inline attachments, and every validation rule.

use super::*;

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
