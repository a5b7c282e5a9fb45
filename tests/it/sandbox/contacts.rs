//! Contacts: upsert by email, and the custom fields an upsert resets.

use super::*;

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
