//! Conversations posted after creation, over real HTTP against the sandbox: order, kind,
//! author and text match the source, no two writes to one ticket overlap, and faults
//! (failed and dropped posts) neither duplicate nor lose a message.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use hfmigrate::client::{Client, ClientOptions, ItemResult, WriteOutcome};
use hfmigrate::import::replies;
use hfmigrate::journal::{ItemOutcome, Journal, PendingRecord, RunInfo};
use hfmigrate::payload::conversation::closing_staff;
use hfmigrate::payload::{RecordOutcome, TicketPlan};
use hfmigrate::sandbox::RunningSandbox;
use hfmigrate::schema::Schema;
use serde_json::Value;

use crate::support::{self, fast, root, sample_schema, start_sandbox, unlimited};

/// Valid ticket plans of a bundled sample, through the same pipeline the import uses.
fn plans(mapping: &str, input: &str) -> (hfmigrate::mapping::Plan, Arc<Schema>, Vec<TicketPlan>) {
    let schema = Arc::new(sample_schema());
    let plan = hfmigrate::mapping::load(&root().join(mapping), Some(schema.clone())).unwrap();
    let mut out = vec![];
    hfmigrate::pipeline::for_each(&plan, schema.clone(), &[root().join(input)], &[], |p| {
        if let RecordOutcome::Valid { plan, .. } = p.outcome {
            out.push(*plan);
        }
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap();
    (plan, schema, out)
}

/// A client for the sandbox with ceilings far above anything the tests send.
fn client_for(sb: &RunningSandbox) -> Client {
    support::client_for(sb, fast(ClientOptions::default()))
}

/// Creates the tickets (bulk) and journals them as created with their messages.
async fn create_and_journal(
    client: &Client,
    journal: &mut Journal,
    plan: &hfmigrate::mapping::Plan,
    schema: &Schema,
    tickets: &[TicketPlan],
) -> Vec<u64> {
    let pending: Vec<PendingRecord> = tickets
        .iter()
        .map(|t| PendingRecord {
            source_id: t.source_id.to_string(),
            file: "sample".into(),
            line: None,
            payload: serde_json::to_string(&t.payload).unwrap(),
        })
        .collect();
    journal.upsert_pending(&pending).unwrap();
    let ids: Vec<&str> = tickets.iter().map(|t| t.source_id.as_str()).collect();
    let batch = journal.begin_batch(&ids).unwrap();
    let bodies: Vec<serde_json::Map<String, Value>> =
        tickets.iter().map(|t| t.payload.to_map()).collect();
    let WriteOutcome::Items(items) = client.bulk_create("tickets/", &bodies).await.unwrap() else {
        panic!("bulk create did not answer per item");
    };
    let mut outcomes = vec![];
    let mut created = vec![];
    for (t, item) in tickets.iter().zip(items) {
        let ItemResult::Created { id, display_id } = item else {
            panic!("sample ticket {} refused: {item:?}", t.source_id);
        };
        created.push(id);
        outcomes.push(ItemOutcome::Created {
            source_id: t.source_id.to_string(),
            happyfox_id: id,
            display_id,
        });
    }
    journal.finish_batch(batch, &outcomes).unwrap();
    let staff = closing_staff(plan, schema);
    let messages: Vec<_> = tickets
        .iter()
        .map(|t| {
            (
                t.source_id.to_string(),
                replies::journal_messages(t, schema, staff),
            )
        })
        .collect();
    journal.add_messages(&messages).unwrap();
    created
}

fn run_info(url: &str) -> RunInfo {
    RunInfo::new("test-mapping", vec![], url)
}

/// The sandbox's updates after creation, as (kind, author id, text).
async fn updates(client: &Client, ticket: u64) -> Vec<(String, u64, String)> {
    let detail = client
        .get_json(&format!("ticket/{ticket}/"), &[])
        .await
        .unwrap();
    let ups = detail["updates"].as_array().cloned().unwrap_or_default();
    ups.iter()
        .skip(1)
        .filter_map(|u| {
            let m = u.get("message")?;
            let kind = match (u["by"]["type"].as_str(), m["message_type"].as_str()) {
                (Some("user"), _) => "contact_reply",
                (_, Some("p")) => "private_note",
                _ => "staff_reply",
            };
            let text = m["html"]
                .as_str()
                .filter(|s| !s.is_empty())
                .or(m["text"].as_str())
                .unwrap_or_default();
            Some((
                kind.to_string(),
                u["by"]["id"].as_u64().unwrap_or_default(),
                text.to_string(),
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zendesk_conversations_match_the_source_in_order_kind_author_and_text() {
    let (plan, schema, tickets) = plans("mappings/zendesk.yaml", "samples/zendesk/");
    assert_eq!(tickets.len(), 22);
    let sb = start_sandbox(unlimited).await;
    let client = client_for(&sb);
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("run.db"), &run_info(&sb.url)).unwrap();
    let ids = create_and_journal(&client, &mut journal, &plan, &schema, &tickets).await;
    let journal = Arc::new(Mutex::new(journal));
    let stop = AtomicBool::new(false);
    let report = replies::post_all(&client, &journal, 8, &stop)
        .await
        .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");

    let mut expected_total = 0;
    for (t, id) in tickets.iter().zip(&ids) {
        let got = updates(&client, *id).await;
        let want = replies::journal_messages(t, &schema, closing_staff(&plan, &schema));
        expected_total += want.len();
        assert_eq!(got.len(), want.len(), "ticket {} ({})", t.source_id, id);
        for ((kind, by, text), m) in got.iter().zip(&want) {
            let kind_expected = if m.kind == "final_note" {
                "private_note"
            } else {
                m.kind.as_str()
            };
            assert_eq!(kind, kind_expected, "ticket {}", t.source_id);
            let body: Value = serde_json::from_str(&m.payload).unwrap();
            let sent = body["html"].as_str().or(body["text"].as_str()).unwrap();
            assert_eq!(text, sent, "ticket {} position {}", t.source_id, m.position);
            if let Some(staff) = body["staff"].as_u64() {
                assert_eq!(*by, staff);
            }
        }
        // The original author and time are kept in a header.
        for e in &t.conversation {
            assert!(e.html.contains("wrote on"), "{}", e.html);
        }
    }
    assert_eq!(report.posted as usize, expected_total);
    let stats = sb.stats();
    assert_eq!(
        stats.overlapping_writes, 0,
        "{:?}",
        stats.overlaps_by_ticket
    );
    // Final states: solved/closed tickets end completed.
    let detail = client
        .get_json(&format!("ticket/{}/", ids[0]), &[])
        .await
        .unwrap();
    assert_eq!(
        detail["status"]["behavior"], "completed",
        "{}",
        detail["status"]
    );
    // A second run posts nothing.
    let again = replies::post_all(&client, &journal, 8, &stop)
        .await
        .unwrap();
    assert_eq!(again.posted + again.reconciled + again.failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_neither_duplicate_nor_lose_a_message() {
    let (plan, schema, tickets) = plans("mappings/freshdesk.yaml", "samples/freshdesk/");
    let sb = start_sandbox(|config| {
        unlimited(config);
        config.faults.fail_rate = 0.15;
        config.faults.drop_rate = 0.15;
        config.faults.seed = Some(7);
    })
    .await;
    let client = client_for(&sb);
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("run.db"), &run_info(&sb.url)).unwrap();
    let pending: Vec<PendingRecord> = tickets
        .iter()
        .map(|t| PendingRecord {
            source_id: t.source_id.to_string(),
            file: "s".into(),
            line: None,
            payload: serde_json::to_string(&t.payload).unwrap(),
        })
        .collect();
    journal.upsert_pending(&pending).unwrap();
    // Tickets one at a time, found again by their marker when an answer is lost.
    let mut created: Vec<u64> = vec![];
    for t in &tickets {
        let batch = journal.begin_batch(&[t.source_id.as_str()]).unwrap();
        let q = format!("\"Source ID\":\"FD-{}\"", t.source_id);
        // Faults fail or drop 30% of requests; 50 rounds without a ticket is a bug.
        let mut rounds = 0;
        let id = loop {
            rounds += 1;
            assert!(
                rounds <= 50,
                "ticket {} neither found by its marker nor created in 50 rounds",
                t.source_id
            );
            let found = client
                .get_json("tickets/", &[("status", "_all"), ("q", &q)])
                .await
                .unwrap();
            if let Some(hit) = found["data"].as_array().and_then(|d| d.first()) {
                break hit["id"].as_u64().unwrap();
            }
            if let Ok(WriteOutcome::Items(items)) = client
                .bulk_create("tickets/", std::slice::from_ref(&t.payload.to_map()))
                .await
                && let Some(ItemResult::Created { id, .. }) = items.first()
            {
                break *id;
            }
        };
        journal
            .finish_batch(
                batch,
                &[ItemOutcome::Created {
                    source_id: t.source_id.to_string(),
                    happyfox_id: id,
                    display_id: String::new(),
                }],
            )
            .unwrap();
        created.push(id);
    }
    let staff = closing_staff(&plan, &schema);
    let messages: Vec<_> = tickets
        .iter()
        .map(|t| {
            (
                t.source_id.to_string(),
                replies::journal_messages(t, &schema, staff),
            )
        })
        .collect();
    journal.add_messages(&messages).unwrap();
    let journal = Arc::new(Mutex::new(journal));
    let stop = AtomicBool::new(false);
    // Each pass is what a re-run does: messages left `sending` are reconciled first.
    for _ in 0..10 {
        let _ = replies::post_all(&client, &journal, 4, &stop).await;
        let c = journal.lock().unwrap().message_counts().unwrap();
        if c.pending + c.sending == 0 {
            break;
        }
    }
    let counts = journal.lock().unwrap().message_counts().unwrap();
    assert_eq!(counts.pending + counts.sending, 0, "{counts:?}");
    assert_eq!(
        counts.failed,
        0,
        "{:?}",
        journal.lock().unwrap().failed_messages().unwrap()
    );
    let stats = sb.stats();
    assert!(
        stats.faults.fail > 0 && stats.faults.drop > 0,
        "faults were injected: {:?}",
        stats.faults
    );
    for (t, id) in tickets.iter().zip(&created) {
        let got = updates(&client, *id).await;
        let want = &messages
            .iter()
            .find(|(s, _)| t.source_id == s.as_str())
            .unwrap()
            .1;
        assert_eq!(
            got.len(),
            want.len(),
            "ticket {}: every message exactly once",
            t.source_id
        );
        for ((_, _, text), m) in got.iter().zip(want) {
            let body: Value = serde_json::from_str(&m.payload).unwrap();
            assert_eq!(
                Some(text.as_str()),
                body["html"].as_str().or(body["text"].as_str())
            );
        }
    }
}
