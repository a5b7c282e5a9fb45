//! The client against the real sandbox over HTTP: what a run sees on a good day, with
//! wrong credentials, under a tight rate limit, with faults, and with no server at all.

use std::time::{Duration, Instant};

use hfmigrate::client::{
    ApiError, Client, ClientError, ClientOptions, ConcurrencyOptions, Credentials, Fatal,
    ItemResult, Target, WriteOutcome, pull_schema,
};
use hfmigrate::sandbox::Limits;
use hfmigrate::schema::Schema;
use serde_json::json;

use crate::support::{client_for, sample_schema, start_sandbox as start};

fn quick() -> ClientOptions {
    ClientOptions {
        post_per_min: 6000,
        get_per_min: 6000,
        backoff: Duration::from_millis(10),
        ..ClientOptions::default()
    }
}

fn ticket(subject: &str) -> serde_json::Value {
    json!({"category": 1, "subject": subject, "text": "Body", "name": "Ann", "email": "ann@example.com"})
}

#[tokio::test]
async fn schema_pull_round_trips_the_sample_schema() {
    let sb = start(|_| {}).await;
    let client = client_for(&sb, ClientOptions::default());
    let pulled = pull_schema(&client).await.unwrap();
    assert_eq!(pulled.source.as_deref(), Some(sb.url.as_str()));
    let stamp = pulled.pulled_at.as_deref().unwrap();
    assert!(stamp.parse::<jiff::Timestamp>().is_ok(), "{stamp}");
    let expected = Schema {
        source: pulled.source.clone(),
        pulled_at: pulled.pulled_at.clone(),
        ..sample_schema()
    };
    assert_eq!(pulled, expected);
    // Written and read back as `schema pull --out` and `--schema` would.
    let text = serde_json::to_string_pretty(&pulled).unwrap();
    assert_eq!(serde_json::from_str::<Schema>(&text).unwrap(), pulled);
    assert_eq!(sb.stats().rate_limited, 0);
}

#[tokio::test]
async fn wrong_credentials_stop_the_run_without_showing_them() {
    let sb = start(|_| {}).await;
    let target = Target::parse(&sb.url).unwrap();
    let creds = Credentials::new("wrong-key-5f1e2d", "wrong-code-9a8b7c").unwrap();
    let client = Client::new(target, creds, ClientOptions::default()).unwrap();
    let err = pull_schema(&client).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Fatal(Fatal::Unauthorized)),
        "{err}"
    );
    let shown = format!("{err} {err:?} {client:?}");
    assert!(shown.contains("HAPPYFOX_API_KEY") && shown.contains("HAPPYFOX_AUTH_CODE"));
    for secret in [
        "wrong-key-5f1e2d",
        "wrong-code-9a8b7c",
        &sb.api_key,
        &sb.auth_code,
    ] {
        assert!(!shown.contains(secret), "{shown}");
    }
    // A write is stopped the same way, and not repeated.
    let err = client
        .post_json("tickets/", &ticket("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Fatal(Fatal::Unauthorized)),
        "{err}"
    );
    assert_eq!(client.stats().posts_sent, 1);
}

#[tokio::test]
async fn bulk_create_reports_each_item() {
    let sb = start(|_| {}).await;
    let client = client_for(&sb, quick());
    let mut bad = ticket("no category");
    bad.as_object_mut().unwrap().remove("category");
    let out = client
        .bulk_create("tickets/", &[ticket("one"), bad, ticket("three")])
        .await
        .unwrap();
    let WriteOutcome::Items(items) = out else {
        panic!("{out:?}")
    };
    assert_eq!(items.len(), 3);
    assert!(matches!(items[0], ItemResult::Created { .. }), "{items:?}");
    match &items[1] {
        ItemResult::Failed(ApiError { fields, .. }) => {
            assert!(fields.iter().any(|f| f.field == "category"), "{fields:?}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(items[2], ItemResult::Created { .. }), "{items:?}");
    assert_eq!(sb.stats().tickets, 2);
}

#[tokio::test]
async fn a_validation_error_is_permanent_and_not_retried() {
    let sb = start(|_| {}).await;
    let client = client_for(&sb, quick());
    let out = client
        .post_json("tickets/", &json!({"subject": "no category", "text": "x"}))
        .await
        .unwrap();
    let WriteOutcome::Rejected(e) = out else {
        panic!("{out:?}")
    };
    assert_eq!(e.status, 400);
    assert!(e.to_string().contains("category"), "{e}");
    assert_eq!(client.stats().posts_sent, 1);
}

#[tokio::test]
async fn a_tight_limit_is_paced_without_a_single_429() {
    let sb = start(|c| {
        c.limits = Limits {
            post_per_min: 120,
            get_per_min: 120,
            lockout: Duration::from_secs(600),
        }
    })
    .await;
    let client = client_for(
        &sb,
        ClientOptions {
            get_per_min: 120,
            post_per_min: 120,
            ..ClientOptions::default()
        },
    );
    let started = Instant::now();
    let calls = (0..10).map(|_| client.get_json("statuses/", &[]));
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    let elapsed = started.elapsed();
    // 3 at once, then one every 60/117 s: the rest of the 10 take about 3.6 s.
    assert!(elapsed >= Duration::from_secs(3), "{elapsed:?}: not paced");
    assert_eq!(sb.stats().rate_limited, 0);
    assert_eq!(client.stats().throttled, 0);
}

/// Crosses a whole minute, so it is slow: `cargo test --test it -- --ignored`.
#[tokio::test]
#[ignore]
async fn a_tiny_limit_holds_for_more_than_a_minute() {
    let sb = start(|c| {
        c.limits = Limits {
            post_per_min: 20,
            get_per_min: 20,
            lockout: Duration::from_secs(600),
        }
    })
    .await;
    let client = client_for(
        &sb,
        ClientOptions {
            get_per_min: 20,
            ..ClientOptions::default()
        },
    );
    let calls = (0..24).map(|_| client.get_json("priorities/", &[]));
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(sb.stats().rate_limited, 0);
}

#[tokio::test]
async fn a_429_pauses_for_the_lockout_and_nothing_is_sent_during_it() {
    let lockout = Duration::from_millis(1500);
    let sb = start(|c| {
        c.limits = Limits {
            post_per_min: 3,
            get_per_min: 3,
            lockout,
        }
    })
    .await;
    // Deliberately set too high, with one request at a time so the count is exact.
    let client = client_for(
        &sb,
        ClientOptions {
            lockout,
            concurrency: ConcurrencyOptions { initial: 1, max: 1 },
            ..quick()
        },
    );
    let started = Instant::now();
    for _ in 0..4 {
        client.get_json("categories/", &[]).await.unwrap();
    }
    let elapsed = started.elapsed();
    let stats = sb.stats();
    // 3 pass, the 4th trips a lockout, the client waits it out and sends it again.
    assert_eq!(stats.lockouts, 1);
    // Any request sent during a lockout would have been refused too.
    assert_eq!(
        stats.rate_limited, stats.lockouts,
        "requests sent during a lockout"
    );
    assert_eq!(client.stats().throttled, 1);
    assert!(elapsed >= lockout, "{elapsed:?}");
    // The throttle was said, with the lowered ceiling (the next GET waits for it).
    let said = client.last_problem().unwrap_or_default();
    assert!(
        said.contains("GET ceiling is lowered from 6000 to 2/min"),
        "{said}"
    );
}

#[tokio::test]
async fn a_lost_answer_to_a_write_is_unknown_and_never_resent() {
    let sb = start(|c| {
        c.faults.drop_rate = 1.0;
        c.faults.seed = Some(7);
    })
    .await;
    let client = client_for(&sb, quick());
    let out = client
        .bulk_create("tickets/", &[ticket("dropped")])
        .await
        .unwrap();
    assert!(matches!(out, WriteOutcome::Unknown(_)), "{out:?}");
    assert_eq!(client.stats().posts_sent, 1);
    // HappyFox did create it: resending blindly would have made a duplicate.
    assert_eq!(sb.stats().tickets, 1);
}

#[tokio::test]
async fn server_errors_retry_reads_and_leave_writes_unknown() {
    let sb = start(|c| {
        c.faults.fail_rate = 1.0;
        c.faults.seed = Some(7);
    })
    .await;
    let client = client_for(
        &sb,
        ClientOptions {
            retries: 3,
            ..quick()
        },
    );
    let err = client.get_json("categories/", &[]).await.unwrap_err();
    assert!(
        matches!(err, ClientError::GaveUp { attempts: 3, .. }),
        "{err}"
    );
    assert_eq!(client.stats().gets_sent, 3);
    let out = client.post_json("tickets/", &ticket("x")).await.unwrap();
    assert!(matches!(out, WriteOutcome::Unknown(_)), "{out:?}");
    assert_eq!(client.stats().posts_sent, 1);
}

#[tokio::test]
async fn an_unreachable_host_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let target = Target::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let creds = Credentials::new("unreach-key-123", "unreach-code-456").unwrap();
    let client = Client::new(
        target,
        creds,
        ClientOptions {
            retries: 2,
            ..quick()
        },
    )
    .unwrap();
    let err = pull_schema(&client).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(
        !text.contains("unreach-key") && !text.contains("unreach-code"),
        "{text}"
    );
    // Nothing was sent, so a write may be retried and then gives the same clear error.
    let err = client
        .post_json("tickets/", &ticket("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
}
