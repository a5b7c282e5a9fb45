//! The rate limit, injected faults, latency, overlapping writes, stats and the state file.

use super::*;

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
    let first = sb.ticket(json!({})).await;
    sb.ticket(json!({})).await;
    let (status, _) = sb.post("/_sandbox/reset", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let s = sb.stats().await;
    assert_eq!((s.tickets, s.contacts, s.updates), (0, 0, 0));
    assert_eq!(sb.get("users/").await.1["page_info"]["last_index"], 0);
    // A new account: ids start over, so `GET ticket/1/` after a reset and one ticket works.
    let again = sb.ticket(json!({})).await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["display_id"], first["display_id"]);
    let (status, _) = sb.get(&format!("ticket/{}/", first["id"])).await;
    assert_eq!(status, StatusCode::OK);
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
