//! Exactly once when the journal's picture is incomplete: a run killed while its writes
//! are still on their way to a slow server, a journal that lost its write-ahead log or
//! was copied without it, and a journal pointed at another account.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hfmigrate::sandbox::{Latency, Limits, RunningSandbox};

use crate::import::{Run, assert_exactly_once, replicated_csv, text, valid_records};
use crate::support::{KEY, start_sandbox};

const MAPPING: &str = "mappings/generic-csv.yaml";

/// A sandbox without rate limit whose writes take `write` to commit, and whose reads are
/// quick.
async fn slow_writes(write: Latency) -> RunningSandbox {
    start_sandbox(|c| {
        c.limits = Limits {
            post_per_min: 0,
            get_per_min: 0,
            lockout: Duration::from_secs(1),
        };
        c.faults.latency = Some(Latency::Fixed(Duration::from_millis(2)));
        c.faults.write_latency = Some(write);
    })
    .await
}

/// Starts the run, lets it work for `after`, and SIGKILLs it; whether it was still running.
async fn kill_after(run: &Run<'_>, after: Duration) -> bool {
    let mut child = run
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(after).await;
    if child.try_wait().unwrap().is_some() {
        return false;
    }
    // SIGKILL: no handler, no cleanup; the requests it sent are still being processed.
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

/// Issue 11 item 0: a killed run's creates and replies land after the restart has begun;
/// the restart must not conclude they are absent before their deadline has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_with_slow_writes_and_immediate_restarts_duplicate_nothing() {
    let sb = slow_writes(Latency::Range(
        Duration::from_millis(1500),
        Duration::from_millis(2500),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let input = replicated_csv(dir.path(), 2);
    let journal = dir.path().join("run.db");
    let run = Run {
        url: &sb.url,
        journal: &journal,
        mapping: MAPPING,
        input: &input,
        extra: ["--batch-size", "3"].map(String::from).to_vec(),
        key: KEY,
    };
    let mut kills = 0;
    // Kills early (creates in flight) and later (replies in flight), restarting at once.
    for ms in [2_500, 3_000, 6_000, 9_000, 12_000] {
        if kill_after(&run, Duration::from_millis(ms)).await {
            kills += 1;
        }
    }
    assert!(kills >= 3, "only {kills} kills landed mid-run");
    let o = tokio::time::timeout(Duration::from_secs(240), run.output())
        .await
        .expect("the last run ends within 240 s");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let valid = valid_records(MAPPING, &input);
    assert_exactly_once(&sb, &journal, dir.path(), valid).await;
}

/// Issue 11 item 0: an account whose search lags behind its writes. A create whose answer
/// was dropped is searched for after `--reconcile-delay` (1 s here); the ticket only shows
/// in search 1.5 s after it was made, so the first search finds nothing, and only the
/// second search, after the same delay again, keeps it from being created twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_that_lags_behind_creation_duplicates_nothing() {
    const LAG: Duration = Duration::from_millis(1500);
    let sb = start_sandbox(|c| {
        crate::support::unlimited(c);
        c.faults.search_lag = Some(LAG);
        c.faults.drop_rate = 0.25;
        c.faults.seed = Some(11);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let input = replicated_csv(dir.path(), 2);
    let journal = dir.path().join("run.db");
    let run = Run {
        url: &sb.url,
        journal: &journal,
        mapping: MAPPING,
        input: &input,
        extra: ["--batch-size", "3", "--reconcile-delay", "1s"]
            .map(String::from)
            .to_vec(),
        key: KEY,
    };
    let o = tokio::time::timeout(Duration::from_secs(240), run.output())
        .await
        .expect("the run ends within 240 s");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let stats = sb.stats();
    let creates = &stats.requests["POST tickets/"];
    assert!(
        creates.get("dropped").copied().unwrap_or(0) > 0,
        "no create's answer was dropped, so nothing was reconciled: {creates:?}"
    );
    // The check searches too: wait until everything is searchable.
    tokio::time::sleep(LAG).await;
    assert_exactly_once(&sb, &journal, dir.path(), valid_records(MAPPING, &input)).await;
}

/// Runs the import until `after`, SIGKILLs it, and checks it had created something.
async fn kill_mid_run(run: &Run<'_>, after: Duration) {
    assert!(
        kill_after(run, after).await,
        "the run finished before the kill"
    );
}

fn sidecar(journal: &Path, suffix: &str) -> PathBuf {
    let mut name = journal.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Issue 11 item 1: the write-ahead log deleted after a kill. The journal is checkpointed
/// during the run and notices what it lost: the next import adopts what the account holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_write_ahead_log_costs_time_never_duplicates() {
    let sb = slow_writes(Latency::Range(
        Duration::from_millis(100),
        Duration::from_millis(300),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let input = replicated_csv(dir.path(), 4);
    let journal = dir.path().join("run.db");
    let run = Run {
        url: &sb.url,
        journal: &journal,
        mapping: MAPPING,
        input: &input,
        extra: ["--batch-size", "2"].map(String::from).to_vec(),
        key: KEY,
    };
    kill_mid_run(&run, Duration::from_millis(2_500)).await;
    assert!(
        sb.stats().tickets > 0,
        "nothing was created before the kill"
    );
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(sidecar(&journal, suffix));
    }
    let o = run.output().await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_exactly_once(&sb, &journal, dir.path(), valid_records(MAPPING, &input)).await;
}

/// Issue 11 item 1: only the `.db` copied elsewhere to resume there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_copied_without_its_log_duplicates_nothing() {
    let sb = slow_writes(Latency::Range(
        Duration::from_millis(100),
        Duration::from_millis(300),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let input = replicated_csv(dir.path(), 4);
    let journal = dir.path().join("run.db");
    let run = Run {
        url: &sb.url,
        journal: &journal,
        mapping: MAPPING,
        input: &input,
        extra: ["--batch-size", "2"].map(String::from).to_vec(),
        key: KEY,
    };
    kill_mid_run(&run, Duration::from_millis(2_500)).await;
    assert!(
        sb.stats().tickets > 0,
        "nothing was created before the kill"
    );
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let copy = elsewhere.join("run.db");
    std::fs::copy(&journal, &copy).unwrap();
    let resumed = Run {
        journal: &copy,
        extra: run.extra.clone(),
        ..run
    };
    let o = resumed.output().await;
    // Either resumed from what the copy holds, or refused as a journal whose contents are
    // gone (nothing sent); never a second ticket for a record.
    match o.status.code() {
        Some(3) => {
            assert_exactly_once(&sb, &copy, &elsewhere, valid_records(MAPPING, &input)).await
        }
        Some(2) => {
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("new --journal path"),
                "{}",
                text(&o)
            );
            // The way out it names: a new journal adopts what the account holds.
            let fresh = elsewhere.join("new.db");
            let o = Run {
                journal: &fresh,
                extra: resumed.extra.clone(),
                ..resumed
            }
            .output()
            .await;
            assert_eq!(o.status.code(), Some(3), "{}", text(&o));
            assert_exactly_once(&sb, &fresh, &elsewhere, valid_records(MAPPING, &input)).await;
        }
        _ => panic!("{}", text(&o)),
    }
}

/// Issue 11 item 2: a journal pointed at another account is refused, with or without
/// --allow-changes, and nothing is sent there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_pointed_at_another_account_is_refused() {
    let first = slow_writes(Latency::Fixed(Duration::from_millis(1))).await;
    let second = slow_writes(Latency::Fixed(Duration::from_millis(1))).await;
    let dir = tempfile::tempdir().unwrap();
    let input = replicated_csv(dir.path(), 1);
    let journal = dir.path().join("run.db");
    let run = Run::new(&first.url, &journal, MAPPING, &input);
    let o = run.output().await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    for extra in [vec![], vec!["--allow-changes".to_string()]] {
        let moved = Run {
            url: &second.url,
            extra,
            ..run
        };
        let o = moved.output().await;
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("use a new journal for a new account") && !err.contains("--allow-changes"),
            "{}",
            text(&o)
        );
    }
    assert_eq!(second.stats().tickets, 0);
    assert!(
        second
            .stats()
            .requests
            .keys()
            .all(|k| !k.starts_with("POST"))
    );
}

/// Issue 9 item 3: a ticket HappyFox refuses at creation takes its conversation with it:
/// its messages are failed with the ticket's error (listed by `results`), not left
/// pending, and the run ends with the usual summary and exit 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_refused_at_creation_fails_its_messages_and_exits_3() {
    // The account no longer has the Billing category the importer's snapshot lists.
    let sb = start_sandbox(|c| {
        crate::support::unlimited(c);
        c.schema.categories.retain(|cat| cat.name != "Billing");
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let input = replicated_csv(dir.path(), 1);
    let journal = dir.path().join("run.db");
    let run = Run::new(&sb.url, &journal, MAPPING, &input);
    let o = run.output().await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("conversations:"),
        "{}",
        text(&o)
    );
    let j = hfmigrate::journal::Journal::open_read_only(&journal).unwrap();
    let s = j.summary().unwrap();
    assert_eq!(s.messages.pending + s.messages.sending, 0, "{s:?}");
    let failed = j.failed_messages().unwrap();
    assert!(!failed.is_empty(), "a Billing ticket has comments");
    for (_, _, _, error) in &failed {
        assert!(
            error.starts_with("not posted: its ticket was not created ("),
            "{error}"
        );
    }
}
