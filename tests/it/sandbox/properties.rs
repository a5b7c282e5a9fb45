//! Property: whatever valid calls are made, ids are unique and reads return what was posted.

use super::*;

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
