//! Ticket lists: pagination, filters, sorting and search.

use super::*;

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
