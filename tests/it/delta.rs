//! Delta runs through the built binary against a real sandbox over HTTP: after a full
//! import of the Zendesk sample, a newer export that adds a ticket, adds two comments to
//! an imported ticket (one older than its last posted entry), changes a status and
//! removes a comment posts exactly what is new, applies the status once, reports the
//! removed comment, and a third run with the same export sends nothing, with and without
//! faults on the wire.

use std::path::{Path, PathBuf};

use hfmigrate::sandbox::RunningSandbox;
use serde_json::{Value, json};

use crate::import::Run;
use crate::support::{CODE, Hfmigrate, KEY, Outcome, root, start_sandbox, unlimited};

const MAPPING: &str = "mappings/zendesk.yaml";
/// The ticket that gets two new comments.
const GROWS: u64 = 1002;
/// The ticket whose last comment the newer export no longer has.
const SHRINKS: u64 = 1005;
/// The ticket whose status moves from open to pending.
const MOVES: u64 = 1007;
/// The ticket the newer export adds.
const NEW: u64 = 1026;

const NEWER_COMMENT: &str = "Delta: the fix works here too, thank you";
const OLDER_COMMENT: &str = "Delta: a note written long ago, exported only now";

fn import_command(sb: &RunningSandbox, input: &Path, journal: &Path) -> std::process::Command {
    let mut run = Run::new(&sb.url, journal, MAPPING, input);
    run.extra = vec!["--no-preflight".into()];
    run.command()
}

async fn import(sb: &RunningSandbox, input: &Path, journal: &Path) -> Outcome {
    let mut cmd = import_command(sb, input, journal);
    tokio::task::spawn_blocking(move || Outcome::from(cmd.output().expect("the binary runs")))
        .await
        .unwrap()
}

/// Imports until the journal has nothing left (faults may stop a run); the last outcome.
async fn import_to_the_end(sb: &RunningSandbox, input: &Path, journal: &Path) -> Outcome {
    for _ in 0..12 {
        let o = import(sb, input, journal).await;
        let s = hfmigrate::journal::Journal::open_read_only(journal)
            .unwrap()
            .summary()
            .unwrap();
        let left = s.records.pending + s.records.sending + s.messages.pending + s.messages.sending;
        if left == 0 && matches!(o.code, 0 | 3) {
            return o;
        }
    }
    panic!("the import did not finish in 12 runs");
}

fn copy_sample(to: &Path) {
    std::fs::create_dir_all(to.join("attachments")).unwrap();
    let from = root().join("samples/zendesk");
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
    for entry in std::fs::read_dir(from.join("attachments")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join("attachments").join(entry.file_name())).unwrap();
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn write_json(p: &Path, v: &Value) {
    std::fs::write(p, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

fn comment_audit(id: u64, ticket: u64, at: &str, author: u64, body: &str) -> Value {
    json!({
        "id": id, "ticket_id": ticket, "created_at": at, "author_id": author,
        "events": [{"id": id + 1, "type": "Comment", "author_id": author, "body": body,
                    "public": true, "attachments": [], "audit_id": id}]
    })
}

/// The newer export: the sample with the changes the cut-over brings.
fn newer_export(dir: &Path) -> PathBuf {
    copy_sample(dir);
    let tickets_path = dir.join("tickets.json");
    let mut tickets = read_json(&tickets_path);
    let list = tickets["tickets"].as_array_mut().unwrap();
    let mut added = list
        .iter()
        .find(|t| t["id"] == json!(MOVES))
        .unwrap()
        .clone();
    added["id"] = json!(NEW);
    added["subject"] = json!("A ticket opened after the full import");
    for t in list.iter_mut() {
        if t["id"] == json!(MOVES) {
            t["status"] = json!("pending");
        }
    }
    list.push(added);
    write_json(&tickets_path, &tickets);

    let audits_path = dir.join("ticket_audits.json");
    let mut audits = read_json(&audits_path);
    let list = audits["audits"].as_array_mut().unwrap();
    let of = |t: u64| -> Vec<Value> {
        list.iter()
            .filter(|a| a["ticket_id"] == json!(t))
            .cloned()
            .collect()
    };
    let grows = of(GROWS);
    let first = &grows[0];
    let last = grows.last().unwrap();
    let requester = first["author_id"].as_u64().unwrap();
    // One after everything, one between the first and the last entry already posted.
    let newer = comment_audit(
        990_000_000_010,
        GROWS,
        "2030-01-01T00:00:00Z",
        requester,
        NEWER_COMMENT,
    );
    let between = {
        let a = first["created_at"].as_str().unwrap();
        let b = last["created_at"].as_str().unwrap();
        assert!(a < b);
        // A second after the first comment: older than the last one posted.
        let at = a.parse::<jiff::Timestamp>().unwrap() + jiff::SignedDuration::from_secs(1);
        comment_audit(
            990_000_000_020,
            GROWS,
            &at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            requester,
            OLDER_COMMENT,
        )
    };
    // The last comment of SHRINKS disappears from the export.
    let shrinks_last = of(SHRINKS)
        .into_iter()
        .rfind(|a| {
            a["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "Comment")
        })
        .unwrap();
    list.push(newer);
    list.push(between);
    list.retain(|a| a["id"] != shrinks_last["id"]);
    write_json(&audits_path, &audits);
    dir.to_path_buf()
}

fn happyfox_id(journal: &Path, source: u64) -> u64 {
    let db = rusqlite::Connection::open(journal).unwrap();
    db.query_row(
        "SELECT happyfox_id FROM records WHERE source_id = ?1 AND state = 'created'",
        [source.to_string()],
        |r| r.get::<_, i64>(0),
    )
    .unwrap_or_else(|e| panic!("ticket {source} not created: {e}")) as u64
}

/// The ticket as HappyFox shows it; the sandbox's injected faults answer some reads 500
/// too, so a read is tried again (a bounded number of times).
async fn ticket(sb: &RunningSandbox, id: u64) -> Value {
    let client = reqwest::Client::new();
    for _ in 0..50 {
        let resp = client
            .get(format!("{}/api/1.1/json/ticket/{id}/", sb.url))
            .basic_auth(KEY, Some(CODE))
            .send()
            .await;
        if let Ok(r) = resp.and_then(reqwest::Response::error_for_status)
            && let Ok(v) = r.json::<Value>().await
        {
            return v;
        }
    }
    panic!("ticket {id} could not be read in 50 tries");
}

/// Every update's text, in order.
async fn texts(sb: &RunningSandbox, id: u64) -> Vec<String> {
    ticket(sb, id).await["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let m = &u["message"];
            let html = m["html"].as_str().filter(|s| !s.is_empty());
            html.or(m["text"].as_str()).unwrap_or_default().to_string()
        })
        .collect()
}

fn posts(sb: &RunningSandbox) -> u64 {
    sb.stats()
        .requests
        .iter()
        .filter(|(k, _)| k.starts_with("POST") && !k.contains("_sandbox"))
        .flat_map(|(_, by)| by.iter())
        .filter(|(status, _)| status.starts_with('2'))
        .map(|(_, n)| n)
        .sum()
}

/// Starts the delta, SIGKILLs it after each of `kills` (ms) and starts it again; how many
/// kills landed while it was still running.
async fn killed(sb: &RunningSandbox, input: &Path, journal: &Path, kills: &[u64]) -> usize {
    let mut landed = 0;
    for ms in kills {
        let mut child = import_command(sb, input, journal)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            landed += 1;
        }
        child.wait().unwrap();
    }
    landed
}

async fn delta_is_exactly_once(
    configure: impl FnOnce(&mut hfmigrate::sandbox::SandboxConfig),
    kills: &[u64],
) {
    let sb = start_sandbox(configure).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.db");
    let full = dir.path().join("full");
    copy_sample(&full);
    let o = import_to_the_end(&sb, &full, &journal).await;
    assert!(
        !o.stdout.contains("delta"),
        "the first run is the full one: {o:?}"
    );
    let tickets_before = sb.stats().tickets;
    let grows = happyfox_id(&journal, GROWS);
    let moves = happyfox_id(&journal, MOVES);
    let shrinks = happyfox_id(&journal, SHRINKS);
    let grows_before = texts(&sb, grows).await;
    let moves_before = ticket(&sb, moves).await;
    let shrinks_before = texts(&sb, shrinks).await.len();

    let newer = newer_export(&dir.path().join("newer"));
    if !kills.is_empty() {
        let landed = killed(&sb, &newer, &journal, kills).await;
        assert!(landed >= 2, "only {landed} kill(s) landed mid-run");
    }
    let o = import_to_the_end(&sb, &newer, &journal).await;
    assert!(
        !o.stderr.contains("belongs to a different run") && !o.stderr.contains("--allow-changes"),
        "a newer export of the same mapping is the normal path: {o:?}"
    );
    if kills.is_empty() {
        // (A killed run said it before it died; the run that finishes may be a resume.)
        assert!(o.stdout.contains("delta 1"), "{}", o.stdout);
    }
    assert_eq!(
        sb.stats().tickets,
        tickets_before + 1,
        "exactly the new ticket"
    );
    happyfox_id(&journal, NEW);

    let grows_after = texts(&sb, grows).await;
    assert_eq!(
        grows_after.len(),
        grows_before.len() + 2,
        "{grows_after:#?}"
    );
    assert_eq!(&grows_after[..grows_before.len()], &grows_before[..]);
    let added = &grows_after[grows_before.len()..];
    // Oldest first among the new ones; the older one keeps its time in the header.
    assert!(added[0].contains(OLDER_COMMENT), "{added:#?}");
    assert!(added[1].contains(NEWER_COMMENT), "{added:#?}");
    let once = |s: &str| grows_after.iter().filter(|t| t.contains(s)).count();
    assert_eq!((once(OLDER_COMMENT), once(NEWER_COMMENT)), (1, 1));

    let moves_after = ticket(&sb, moves).await;
    assert_ne!(
        moves_after["status"], moves_before["status"],
        "status applied"
    );
    let moves_updates = |t: &Value| t["updates"].as_array().unwrap().len();
    assert_eq!(
        moves_updates(&moves_after),
        moves_updates(&moves_before) + 1,
        "the status is one update"
    );
    // The removed comment stays in HappyFox and is reported.
    assert_eq!(texts(&sb, shrinks).await.len(), shrinks_before);
    let status = Hfmigrate::new(["status", "--journal"])
        .command()
        .arg(&journal)
        .output()
        .unwrap();
    let status = format!(
        "{}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        status.contains(&format!("{SHRINKS} entry")) && status.contains("removed in the source"),
        "{status}"
    );
    assert!(status.contains("delta 1: 1 new ticket(s), 2 new entries (1 out of order), 1 state update(s), reported 1 removed"), "{status}");

    // The same export again: nothing is sent.
    let before = posts(&sb);
    let o = import(&sb, &newer, &journal).await;
    assert!(matches!(o.code, 0 | 3), "{o:?}");
    assert_eq!(posts(&sb), before, "a third run sends nothing: {o:?}");
    sb.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_export_posts_exactly_what_is_new() {
    delta_is_exactly_once(unlimited, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_stays_exactly_once_under_failing_and_dropped_writes() {
    delta_is_exactly_once(
        |c| {
            unlimited(c);
            c.faults.fail_rate = 0.05;
            c.faults.drop_rate = 0.05;
            c.faults.seed = Some(7);
        },
        &[],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_killed_mid_run_under_faults_stays_exactly_once() {
    delta_is_exactly_once(
        |c| {
            unlimited(c);
            c.faults.fail_rate = 0.05;
            c.faults.drop_rate = 0.05;
            c.faults.seed = Some(11);
            c.faults.write_latency = Some(hfmigrate::sandbox::Latency::Range(
                std::time::Duration::from_millis(300),
                std::time::Duration::from_millis(700),
            ));
        },
        &[700, 1_200, 1_800],
    )
    .await;
}
