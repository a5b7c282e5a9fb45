//! Attachments through the import's sender and the conversation poster, over real HTTP
//! against the sandbox. Driven at the journal level (payloads carry `__attachments` as
//! the mapping stores them), so they do not depend on the mapping syntax: a ticket with
//! files is one multipart create, a reply carries its files, what cannot be sent is
//! reported while the ticket or message still is, a first message over 25 MB continues in
//! a journaled note, and a dropped multipart create is reconciled by marker, not repeated.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hfmigrate::attachments::MAX_REQUEST_BYTES;
use hfmigrate::client::{Client, ClientOptions};
use hfmigrate::import::fetch::{FetchOptions, Fetcher};
use hfmigrate::import::progress::Progress;
use hfmigrate::import::replies;
use hfmigrate::import::{Interrupts, MarkerKind, SendOptions, SendReport, send_all};
use hfmigrate::journal::{Journal, NewMessage, PendingRecord, RunInfo};
use hfmigrate::sandbox::{RunningSandbox, SandboxConfig};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::support::{client_for, fast, start_sandbox, unlimited};

async fn sandbox_with(configure: impl FnOnce(&mut SandboxConfig)) -> (RunningSandbox, Client) {
    let sb = start_sandbox(|config| {
        unlimited(config);
        configure(config);
    })
    .await;
    let client = client_for(&sb, fast(ClientOptions::default()));
    (sb, client)
}

/// The "Source ID" text custom field of the sample account (id 1).
fn marker() -> MarkerKind {
    MarkerKind::Field {
        name: "Source ID".into(),
        id: 1,
    }
}

fn ticket(source_id: &str, attachments: Value) -> (String, Value) {
    let mut body = json!({
        "subject": format!("Ticket {source_id}"),
        "html": format!("<p>Body of {source_id}</p>"),
        "category": 1,
        "email": format!("{}@example.com", source_id.to_lowercase()),
        "name": "Ann",
        "t-cf-1": format!("ATT-{source_id}"),
    });
    if !attachments.is_null() {
        body["__attachments"] = attachments;
    }
    (source_id.to_string(), body)
}

struct Setup {
    _dir: tempfile::TempDir,
    export: std::path::PathBuf,
    journal: Journal,
    fetcher: Arc<Fetcher>,
}

fn setup(url: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    std::fs::create_dir_all(export.join("files")).unwrap();
    let journal = Journal::open(
        &dir.path().join("journal.db"),
        &RunInfo::new("test-mapping", vec![], url),
    )
    .unwrap();
    let fetcher = Arc::new(
        Fetcher::new(
            &export,
            FetchOptions {
                allow_loopback_http: true,
                connect_timeout: Duration::from_secs(2),
                timeout: Duration::from_secs(5),
                ..FetchOptions::default()
            },
        )
        .unwrap(),
    );
    Setup {
        _dir: dir,
        export,
        journal,
        fetcher,
    }
}

impl Setup {
    fn enqueue(&mut self, tickets: &[(String, Value)]) {
        let records: Vec<PendingRecord> = tickets
            .iter()
            .map(|(id, body)| PendingRecord {
                source_id: id.clone(),
                file: "tickets.csv".into(),
                line: None,
                payload: body.to_string(),
            })
            .collect();
        self.journal.upsert_pending(&records).unwrap();
    }

    async fn send(&mut self, client: &Client) -> SendReport {
        let options = SendOptions {
            reconcile_delay: Duration::ZERO,
            fetcher: Some(self.fetcher.clone()),
            closing_staff: Some(2),
            ..SendOptions::default()
        };
        let mut progress = Progress::new(Duration::from_secs(3600), options.batch_size);
        let report = send_all(
            &mut self.journal,
            client,
            &marker(),
            &options,
            &mut progress,
            Interrupts::manual().1,
        )
        .await;
        assert!(report.stop.is_none(), "{:?}", report.stop);
        report
    }

    fn file(&self, rel: &str, bytes: &[u8]) -> String {
        std::fs::write(self.export.join(rel), bytes).unwrap();
        hex::encode(Sha256::digest(bytes))
    }

    /// The HappyFox id the journal recorded for a source id.
    fn ticket_id(&self, dir: &Path, source_id: &str) -> u64 {
        let out = self.journal.write_results(dir).unwrap();
        let mut r = csv::Reader::from_path(out.success_csv).unwrap();
        r.records()
            .map(Result::unwrap)
            .find(|row| &row[0] == source_id)
            .map(|row| row[1].parse().unwrap())
            .unwrap_or_else(|| panic!("{source_id} not created"))
    }

    /// errors.csv rows of stage `attachment`, as (source id, error).
    fn attachment_errors(&self, dir: &Path) -> Vec<(String, String)> {
        let out = self.journal.write_results(dir).unwrap();
        let mut r = csv::Reader::from_path(out.errors_csv).unwrap();
        r.records()
            .map(Result::unwrap)
            .filter(|row| &row[3] == "attachment")
            .map(|row| (row[2].to_string(), row[4].to_string()))
            .collect()
    }
}

/// Per update of a ticket: (filename, size, sha256) of each attachment, from the API and
/// the sandbox's record of the bytes.
async fn files_of(
    sb: &RunningSandbox,
    client: &Client,
    ticket: u64,
) -> Vec<Vec<(String, u64, String)>> {
    let detail = client
        .get_json(&format!("ticket/{ticket}/"), &[])
        .await
        .unwrap();
    assert!(
        !detail.to_string().contains("__attachments"),
        "the reserved key reached HappyFox: {detail}"
    );
    detail["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            u["message"]["attachments"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    let stored = sb.attachment(a["id"].as_u64().unwrap()).unwrap();
                    (stored.filename, stored.size, stored.sha256)
                })
                .collect()
        })
        .collect()
}

fn sparse(path: &Path, size: u64) {
    std::fs::File::create(path).unwrap().set_len(size).unwrap();
}

fn sparse_sha(size: u64) -> String {
    let mut d = Sha256::new();
    let zeros = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        d.update(&zeros[..n]);
        left -= n as u64;
    }
    hex::encode(d.finalize())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_with_two_files_is_one_multipart_create_and_the_rest_stay_in_bulk() {
    let (sb, client) = sandbox_with(|_| {}).await;
    let mut s = setup(&sb.url);
    let log_sha = s.file("files/log.txt", &b"a line of log\n".repeat(500));
    let pdf: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let pdf_sha = s.file("files/scan.pdf", &pdf);
    s.enqueue(&[
        ticket(
            "A",
            json!([{"name": "log.txt", "source": {"path": "files/log.txt"}, "size": 7000},
                   {"name": "Scan (1).pdf", "source": {"path": "files/scan.pdf"}}]),
        ),
        ticket("B", Value::Null),
        ticket("C", json!([])),
    ]);
    let report = s.send(&client).await;
    assert_eq!(report.created, 3);
    assert_eq!(report.attachments_sent, 2);
    assert_eq!(report.attachment_failures, 0);
    // One multipart create for A, one bulk create for B and C.
    assert_eq!(client.stats().posts_sent, 2);
    assert_eq!(sb.stats().tickets, 3);
    let out = tempfile::tempdir().unwrap();
    let a = s.ticket_id(out.path(), "A");
    assert_eq!(
        files_of(&sb, &client, a).await,
        vec![vec![
            ("log.txt".to_string(), 7000, log_sha),
            ("Scan (1).pdf".to_string(), 100_000, pdf_sha),
        ]]
    );
    let b = s.ticket_id(out.path(), "B");
    assert_eq!(files_of(&sb, &client, b).await, vec![Vec::new()]);
    assert!(s.attachment_errors(out.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_cannot_be_sent_are_reported_and_the_ticket_is_still_created() {
    let (sb, client) = sandbox_with(|_| {}).await;
    let mut s = setup(&sb.url);
    let ok_sha = s.file("files/ok.txt", b"fine");
    sparse(&s.export.join("files/huge.bin"), MAX_REQUEST_BYTES + 1);
    std::fs::write(s.export.parent().unwrap().join("secret.txt"), b"outside").unwrap();
    // Nothing listens on port 9 of loopback: the download fails.
    s.enqueue(&[ticket(
        "F",
        json!([{"name": "ok.txt", "source": {"path": "files/ok.txt"}},
               {"name": "huge.bin", "source": {"path": "files/huge.bin"}},
               {"name": "gone.txt", "source": {"path": "files/gone.txt"}},
               {"name": "secret.txt", "source": {"path": "../secret.txt"}},
               {"name": "remote.pdf", "source": {"url": "http://127.0.0.1:9/remote.pdf"}}]),
    )]);
    let report = s.send(&client).await;
    assert_eq!(report.created, 1);
    assert_eq!(report.attachments_sent, 1);
    assert_eq!(report.attachment_failures, 4);
    assert_eq!(client.stats().posts_sent, 1);
    let out = tempfile::tempdir().unwrap();
    let f = s.ticket_id(out.path(), "F");
    assert_eq!(
        files_of(&sb, &client, f).await,
        vec![vec![("ok.txt".to_string(), 4, ok_sha)]]
    );
    let errors = s.attachment_errors(out.path());
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(errors.iter().all(|(id, _)| id == "F"));
    let text: Vec<&str> = errors.iter().map(|(_, e)| e.as_str()).collect();
    let has = |what: &str, name: &str| {
        text.iter()
            .any(|e| e.contains(name) && e.to_lowercase().contains(what))
    };
    assert!(has("over the", "huge.bin"), "{text:?}");
    assert!(has("not found", "gone.txt"), "{text:?}");
    assert!(has("outside the export", "secret.txt"), "{text:?}");
    assert!(has("downloading", "remote.pdf"), "{text:?}");
    // Sending again reports the same files once, not twice.
    assert_eq!(s.journal.attachment_failures().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_message_over_25_mb_continues_in_one_journaled_note_posted_once() {
    let (sb, client) = sandbox_with(|_| {}).await;
    let mut s = setup(&sb.url);
    let big = 20 * 1024 * 1024;
    let more = 10 * 1024 * 1024;
    sparse(&s.export.join("files/a.bin"), big);
    sparse(&s.export.join("files/b.bin"), more);
    s.enqueue(&[ticket(
        "S",
        json!([{"name": "a.bin", "source": {"path": "files/a.bin"}},
               {"name": "b.bin", "source": {"path": "files/b.bin"}}]),
    )]);
    let report = s.send(&client).await;
    assert_eq!((report.created, report.attachment_failures), (1, 0));
    let journal = Mutex::new(s.journal);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let replies = replies::post_all_with(&client, &journal, 4, &stop, Some(&s.fetcher))
        .await
        .unwrap();
    assert_eq!((replies.posted, replies.failed), (1, 0));
    assert_eq!(replies.attachments_sent, 1);
    s.journal = journal.into_inner().unwrap();
    // Nothing left: a second pass posts nothing more.
    let journal = Mutex::new(s.journal);
    let again = replies::post_all_with(&client, &journal, 4, &stop, Some(&s.fetcher))
        .await
        .unwrap();
    assert_eq!(again.posted, 0);
    s.journal = journal.into_inner().unwrap();
    assert_eq!(client.stats().posts_sent, 2);
    let out = tempfile::tempdir().unwrap();
    let id = s.ticket_id(out.path(), "S");
    assert_eq!(
        files_of(&sb, &client, id).await,
        vec![
            vec![("a.bin".to_string(), big, sparse_sha(big))],
            vec![("b.bin".to_string(), more, sparse_sha(more))],
        ]
    );
    let detail = client
        .get_json(&format!("ticket/{id}/"), &[])
        .await
        .unwrap();
    let note = &detail["updates"][1]["message"];
    assert_eq!(note["message_type"], "p", "{note}");
    assert!(
        note["html"]
            .as_str()
            .unwrap_or_default()
            .contains("continued (2/2)"),
        "{note}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_and_contact_replies_carry_their_files_and_inline_images() {
    let (sb, client) = sandbox_with(|_| {}).await;
    let mut s = setup(&sb.url);
    let fix_sha = s.file("files/fix.patch", b"--- a\n+++ b\n");
    let shot_sha = s.file("files/shot.png", b"\x89PNG\r\n\x1a\nshot");
    s.file("files/logo.png", b"\x89PNG\r\n\x1a\nlogo");
    s.enqueue(&[ticket("R", Value::Null)]);
    s.send(&client).await;
    let messages = vec![
        NewMessage {
            position: 1,
            key: "id:1".into(),
            content: String::new(),
            kind: "staff_reply".into(),
            author: String::new(),
            author_name: String::new(),
            payload: json!({"staff": 2, "html": "<p>Try this <img src=\"files/logo.png\"></p>",
                "update_customer": false, "send_survey": false,
                "__attachments": [{"name": "fix.patch", "source": {"path": "files/fix.patch"}},
                                  {"name": "missing.txt", "source": {"path": "files/missing.txt"}}]})
            .to_string(),
        },
        NewMessage {
            position: 2,
            key: "id:2".into(),
            content: String::new(),
            kind: "contact_reply".into(),
            author: String::new(),
            author_name: String::new(),
            payload: json!({"text": "It works, screenshot attached",
                "__attachments": [{"name": "shot.png", "source": {"path": "files/shot.png"}}]})
            .to_string(),
        },
    ];
    s.journal
        .add_messages(&[("R".to_string(), messages)])
        .unwrap();
    let posts_before = client.stats().posts_sent;
    let journal = Mutex::new(s.journal);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let report = replies::post_all_with(&client, &journal, 4, &stop, Some(&s.fetcher))
        .await
        .unwrap();
    s.journal = journal.into_inner().unwrap();
    assert_eq!((report.posted, report.failed), (2, 0), "{report:?}");
    // fix.patch, the inline logo and shot.png.
    assert_eq!(report.attachments_sent, 3);
    assert_eq!(report.attachment_failures, 1);
    // Two messages and one inline upload (plus the contact, created by JSON).
    assert_eq!(
        sb.stats().served("POST ticket-inline-attachment", "200")
            + sb.stats().served("POST ticket/{n}/staff_update/", "200")
            + sb.stats().served("POST ticket/{n}/user_reply/", "200"),
        3,
        "{:?}",
        sb.stats()
    );
    assert!(client.stats().posts_sent - posts_before <= 4);
    let out = tempfile::tempdir().unwrap();
    let id = s.ticket_id(out.path(), "R");
    let files = files_of(&sb, &client, id).await;
    assert_eq!(
        files[1..],
        [
            vec![("fix.patch".to_string(), 12, fix_sha)],
            vec![("shot.png".to_string(), 12, shot_sha)],
        ]
    );
    let detail = client
        .get_json(&format!("ticket/{id}/"), &[])
        .await
        .unwrap();
    let html = detail["updates"][1]["message"]["html"]
        .as_str()
        .unwrap_or_default();
    assert!(html.contains("/get_hdp_temporarily_attachment/"), "{html}");
    assert!(!html.contains("files/logo.png"), "{html}");
    let errors = s.attachment_errors(out.path());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].1.contains("missing.txt"), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_multipart_create_is_found_by_marker_and_not_sent_again() {
    // Every write is stored, then its connection closed without an answer.
    let (sb, client) = sandbox_with(|c| c.faults.drop_rate = 1.0).await;
    let mut s = setup(&sb.url);
    let sha = s.file("files/log.txt", b"dropped but stored");
    s.enqueue(&[ticket(
        "D",
        json!([{"name": "log.txt", "source": {"path": "files/log.txt"}}]),
    )]);
    let report = s.send(&client).await;
    assert_eq!(report.unknown, 1, "{report:?}");
    assert_eq!(report.found, 1, "{report:?}");
    assert_eq!(report.resent, 0, "{report:?}");
    assert_eq!(report.created, 1);
    assert_eq!(client.stats().posts_sent, 1, "never sent twice");
    assert_eq!(sb.stats().tickets, 1);
    let out = tempfile::tempdir().unwrap();
    let id = s.ticket_id(out.path(), "D");
    assert_eq!(
        files_of(&sb, &client, id).await,
        vec![vec![("log.txt".to_string(), 18, sha)]]
    );
}

/// The built binary with a mapping that declares attachments: the export folder is where
/// paths are read from, the summary counts files sent and left out, and `results` lists
/// the ones left out under stage `attachment`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_files_from_the_export_folder_and_reports_the_rest() {
    let (sb, client) = sandbox_with(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    std::fs::create_dir_all(export.join("files")).unwrap();
    std::fs::write(export.join("files/a.txt"), b"first file").unwrap();
    std::fs::write(
        export.join("tickets.json"),
        json!({"tickets": [
            {"id": 1, "subject": "With a file", "body": "<p>one</p>", "email": "a@example.com",
             "files": [{"file": "a.txt", "at": "files/a.txt"},
                       {"file": "gone.txt", "at": "files/gone.txt"}]},
            {"id": 2, "subject": "Without", "body": "<p>two</p>", "email": "b@example.com",
             "files": []}
        ]})
        .to_string(),
    )
    .unwrap();
    let mapping = dir.path().join("mapping.yaml");
    std::fs::write(
        &mapping,
        r#"source:
  tickets: { file: tickets.json, records: tickets }
  id: "{{ id }}"
ticket:
  category: Support
  contact:
    name: "{{ email }}"
    email: "{{ email }}"
  subject: "{{ subject }}"
  html: "{{ body }}"
  custom_fields:
    Source ID: "CLI-{{ id }}"
  attachments:
    entries: "{{ files }}"
    name: "{{ file }}"
    path: "{{ at }}"
marker: { custom_field: Source ID, value: "CLI-{{ id }}" }
"#,
    )
    .unwrap();
    let journal = dir.path().join("run.db");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hfmigrate"));
    cmd.current_dir(root)
        .env("HAPPYFOX_API_KEY", &sb.api_key)
        .env("HAPPYFOX_AUTH_CODE", &sb.auth_code)
        .env_remove("HAPPYFOX_URL")
        .env_remove("HFMIGRATE_SOURCE_AUTH_HEADER")
        .args(["import", "--yes", "--mapping"])
        .arg(&mapping)
        .arg("--input")
        .arg(&export)
        .arg("--journal")
        .arg(&journal)
        .args(["--url", &sb.url, "--schema", "samples/happyfox-schema.json"])
        .args(["--post-per-min", "60000", "--get-per-min", "60000"])
        .args(["--reconcile-delay", "0s"])
        .stdin(std::process::Stdio::null());
    let o = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let shown = format!("{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("attachments: 1 file(s) sent, 1 not sent"),
        "{shown}"
    );
    // One multipart create for ticket 1, one bulk create for ticket 2.
    assert_eq!(sb.stats().served("POST tickets/", "200"), 2, "{shown}");
    let j = Journal::open_read_only(&journal).unwrap();
    let out = dir.path().join("results");
    let written = j.write_results(&out).unwrap();
    let errors = std::fs::read_to_string(written.errors_csv).unwrap();
    assert!(
        errors.contains(",1,attachment,") && errors.contains("gone.txt"),
        "{errors}"
    );
    let success = std::fs::read_to_string(written.success_csv).unwrap();
    let id: u64 = success
        .lines()
        .find(|l| l.starts_with("1,"))
        .and_then(|l| l.split(',').nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{success}"));
    let files = files_of(&sb, &client, id).await;
    assert_eq!(files[0].len(), 1, "{files:?}");
    assert_eq!(files[0][0].0, "a.txt");
}
