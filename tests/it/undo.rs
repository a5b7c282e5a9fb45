//! `hfmigrate undo` through the built binary against a real sandbox over HTTP: it deletes
//! exactly the journal's tickets, resumes after a kill, skips a ticket whose marker
//! changed, and leaves a journal the import can start again from.

use std::path::Path;
use std::time::Duration;

use hfmigrate::client::{ClientOptions, WriteOutcome};
use hfmigrate::journal::Journal;
use hfmigrate::sandbox::{Latency, RunningSandbox};
use serde_json::{Value, json};

use crate::import::Run;
use crate::support::{Hfmigrate, Outcome, client_for, fast, start_sandbox, unlimited};

const MAPPING: &str = "mappings/generic-csv.yaml";
const INPUT: &str = "samples/generic-csv";

fn undo_command(journal: &Path, extra: &[&str]) -> std::process::Command {
    let mut cmd = Hfmigrate::new(["undo", "--post-per-min", "60000", "--get-per-min", "60000"])
        .credentials()
        .command();
    cmd.arg("--journal").arg(journal).args(extra);
    cmd
}

async fn undo(journal: &Path, extra: &[&str]) -> Outcome {
    let mut cmd = undo_command(journal, extra);
    tokio::task::spawn_blocking(move || Outcome::from(cmd.output().expect("the binary runs")))
        .await
        .unwrap()
}

async fn import_async(sb: &RunningSandbox, journal: &Path) -> Outcome {
    Outcome::from(
        Run::new(&sb.url, journal, MAPPING, Path::new(INPUT))
            .output()
            .await,
    )
}

/// Imports the sample and checks it did something; returns how many tickets it created.
async fn imported(sb: &RunningSandbox, journal: &Path) -> u64 {
    let o = import_async(sb, journal).await;
    assert!(matches!(o.code, 0 | 3), "{o:?}");
    let created = Journal::open_read_only(journal)
        .unwrap()
        .summary()
        .unwrap()
        .records
        .created;
    assert!(created >= 3, "{o:?}");
    assert_eq!(sb.stats().tickets, created);
    created
}

/// Someone else's ticket in the same account: it must survive every undo.
async fn someone_elses_ticket(sb: &RunningSandbox) -> u64 {
    let c = client_for(sb, fast(ClientOptions::default()));
    let body = json!({
        "name": "Other Person", "email": "other@example.com", "category": 1,
        "subject": "not from the migration", "text": "made by hand",
        "t-cf-1": "HAND-1",
    });
    match c.post_json("tickets/", &body).await.unwrap() {
        WriteOutcome::Done(v) => v["id"].as_u64().expect("an id"),
        other => panic!("{other:?}"),
    }
}

async fn exists(sb: &RunningSandbox, id: u64) -> bool {
    let c = client_for(sb, fast(ClientOptions::default()));
    c.get_json(&format!("ticket/{id}/"), &[]).await.is_ok()
}

async fn wait_for_deletions(sb: &RunningSandbox, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sb.stats().deleted_tickets < n {
        assert!(
            std::time::Instant::now() < deadline,
            "the undo never got to {n} deletions"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn created_ids(journal: &Path) -> Vec<(String, u64)> {
    let db = rusqlite::Connection::open(journal).unwrap();
    let mut st = db
        .prepare("SELECT source_id, happyfox_id FROM records WHERE state = 'created' ORDER BY id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_deletes_exactly_the_journals_tickets_and_import_recreates_them() {
    let sb = start_sandbox(unlimited).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.db");
    let created = imported(&sb, &journal).await;
    let other = someone_elses_ticket(&sb).await;
    let before = created_ids(&journal);

    // Off a terminal without --yes: refused, nothing deleted.
    let o = undo(&journal, &[]).await;
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("pass --yes"), "{o:?}");
    assert_eq!(sb.stats().tickets, created + 1);

    let o = undo(&journal, &["--yes", "--json"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    let summary: Value = serde_json::from_str(&o.stdout).expect("--json prints JSON");
    assert_eq!(summary["version"], 1);
    assert_eq!(
        (summary["command"].as_str(), summary["exit"].as_u64()),
        (Some("undo"), Some(0))
    );
    assert_eq!(summary["deleted"], created, "{summary:#}");
    assert_eq!(summary["skipped"], json!([]));
    assert_eq!(summary["account"], sb.url.as_str());
    assert!(
        summary["contacts"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "the requesters are listed: {summary:#}"
    );
    assert!(o.stderr.contains(&format!("{created} ticket(s)")), "{o:?}");
    assert!(!o.stdout.contains("TOPSECRET") && !o.stderr.contains("TOPSECRET"));
    assert_eq!(sb.stats().tickets, 1, "only someone else's ticket is left");
    assert!(exists(&sb, other).await);
    for (_, id) in &before {
        assert!(!exists(&sb, *id).await, "ticket {id} deleted");
    }
    let s = Journal::open_read_only(&journal)
        .unwrap()
        .summary()
        .unwrap();
    assert_eq!(s.records.created, 0, "{s:?}");
    assert_eq!(s.messages.created, 0, "{s:?}");

    // A second undo finds nothing left to do.
    let o = undo(&journal, &["--yes"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("0 deleted"), "{o:?}");

    // The import starts clean: every record is created again, once.
    let o = import_async(&sb, &journal).await;
    assert!(matches!(o.code, 0 | 3), "{o:?}");
    let s = Journal::open_read_only(&journal)
        .unwrap()
        .summary()
        .unwrap();
    assert_eq!(s.records.created, created, "{o:?}");
    assert_eq!(s.messages.pending + s.messages.sending, 0, "{s:?}");
    assert_eq!(sb.stats().tickets, created + 1);
    let again = created_ids(&journal);
    assert_eq!(again.len(), before.len());
    for ((a, old), (b, new)) in before.iter().zip(&again) {
        assert_eq!(a, b);
        assert_ne!(old, new, "{a} is a new ticket");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_whose_marker_changed_is_skipped_and_listed() {
    let sb = start_sandbox(unlimited).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.db");
    imported(&sb, &journal).await;
    let (source_id, id) = created_ids(&journal)[0].clone();
    let c = client_for(&sb, fast(ClientOptions::default()));
    let o = c
        .post_json(
            &format!("ticket/{id}/update_custom_fields/"),
            &json!({"staff": 1, "t-cf-1": "REUSED-BY-A-PERSON"}),
        )
        .await
        .unwrap();
    assert!(matches!(o, WriteOutcome::Done(_)), "{o:?}");

    let o = undo(&journal, &["--yes"]).await;
    assert_eq!(o.code, 3, "{o:?}");
    assert!(
        o.stdout
            .contains(&format!("skipped: {source_id} (ticket {id}"))
            && o.stdout.contains("REUSED-BY-A-PERSON"),
        "{o:?}"
    );
    assert!(exists(&sb, id).await, "the changed ticket is left alone");
    assert_eq!(sb.stats().tickets, 1);
    let left = created_ids(&journal);
    assert_eq!(
        left,
        vec![(source_id, id)],
        "it stays created in the journal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_or_killed_undo_resumes_where_it_stopped() {
    let sb = start_sandbox(|c| {
        unlimited(c);
        c.faults.latency = Some(Latency::Fixed(Duration::from_millis(150)));
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.db");
    imported(&sb, &journal).await;
    let other = someone_elses_ticket(&sb).await;

    // Ctrl-C: what is in flight finishes, nothing new starts, and the journal knows
    // exactly what is left.
    let child = undo_command(&journal, &["--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_deletions(&sb, 2).await;
    let status = std::process::Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let o = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(4), "{out}");
    assert!(
        out.contains("interrupted: run the same command again"),
        "{out}"
    );
    let journal_left = created_ids(&journal).len() as u64;
    assert!(journal_left > 0, "interrupted before the end: {out}");
    assert_eq!(sb.stats().tickets, journal_left + 1, "{out}");

    // SIGKILL: deletions whose outcome was not journaled are found gone next time.
    let deleted = sb.stats().deleted_tickets;
    let mut child = undo_command(&journal, &["--yes"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_deletions(&sb, deleted + 2).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let left = sb.stats().tickets;
    assert!(left > 1, "killed before the end ({left} left)");
    let journal_left = created_ids(&journal).len() as u64;

    // A deletion the sandbox made but the killed undo never journaled is found gone:
    // it counts as already gone, not deleted, so only the sum is exact.
    let o = undo(&journal, &["--yes", "--json"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    let summary: Value = serde_json::from_str(&o.stdout).unwrap();
    let deleted = summary["deleted"].as_u64().unwrap();
    let gone = summary["already_gone"].as_u64().unwrap();
    assert_eq!(deleted + gone, journal_left, "{summary:#}");
    assert!(
        deleted < left,
        "the other ticket is never deleted: {summary:#}"
    );
    assert_eq!(sb.stats().tickets, 1);
    assert!(exists(&sb, other).await);
    assert_eq!(
        Journal::open_read_only(&journal)
            .unwrap()
            .summary()
            .unwrap()
            .records
            .created,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_delete_permission_is_refused_before_anything_is_deleted() {
    let sb = start_sandbox(unlimited).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.db");
    let created = imported(&sb, &journal).await;
    let o = undo(&journal, &["--yes", "--staff", "alice@acme.example"]).await;
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr
            .contains("Alice Martin (alice@acme.example) lacks the \"delete_tickets\" permission"),
        "{o:?}"
    );
    assert_eq!(sb.stats().tickets, created, "nothing deleted");
    // The sandbox refuses such a delete as HappyFox would.
    let (_, id) = created_ids(&journal)[0];
    let c = client_for(&sb, fast(ClientOptions::default()));
    let o = c
        .post_json(&format!("ticket/{id}/delete/"), &json!({"staff_id": 2}))
        .await
        .unwrap();
    assert!(
        matches!(&o, WriteOutcome::Rejected(e) if e.to_string().contains("permission to delete")),
        "{o:?}"
    );
    // A journal path that does not exist is not created.
    let missing = dir.path().join("typo.db");
    let o = undo(&missing, &["--yes"]).await;
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("no such file"), "{o:?}");
    assert!(!missing.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_whose_create_answer_was_lost_is_found_by_marker_and_deleted() {
    let sb = start_sandbox(unlimited).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.db");
    let created = imported(&sb, &journal).await;
    let other = someone_elses_ticket(&sb).await;
    // As if the answer of the bulk create that made this ticket had been lost: the
    // record is in a batch still `sending`, with no ticket id.
    let (source_id, id) = created_ids(&journal)[0].clone();
    {
        let db = rusqlite::Connection::open(&journal).unwrap();
        db.execute(
            "INSERT INTO batches (run, state, members, created_at, sent_at) VALUES (1, 'sending', 1, 0, 0)",
            [],
        )
        .unwrap();
        let batch = db.last_insert_rowid();
        db.execute(
            "UPDATE records SET state = 'sending', batch = ?1, happyfox_id = NULL, display_id = NULL WHERE source_id = ?2",
            rusqlite::params![batch, source_id],
        )
        .unwrap();
    }
    let o = undo(&journal, &["--yes", "--json"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    let summary: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(summary["deleted"], created, "{summary:#}");
    assert!(!exists(&sb, id).await, "found by its marker and deleted");
    assert!(exists(&sb, other).await);
    assert_eq!(sb.stats().tickets, 1);

    // The import reconciles that batch (absent now) and creates every record once.
    let o = import_async(&sb, &journal).await;
    assert!(matches!(o.code, 0 | 3), "{o:?}");
    let s = Journal::open_read_only(&journal)
        .unwrap()
        .summary()
        .unwrap();
    assert_eq!(s.records.created, created, "{o:?}");
    assert_eq!(sb.stats().tickets, created + 1);
}
