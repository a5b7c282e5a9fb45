//! Ticket updates: staff updates, private notes, contact replies, tags, fields and delete.

use super::*;

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
