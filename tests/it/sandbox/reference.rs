//! Reference data and Basic auth: the schema endpoints and what every call needs.

use super::*;

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
