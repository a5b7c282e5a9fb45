//! Exactly once when the journal's picture is incomplete: a run killed while its writes
//! are still on their way to a slow server, a journal that lost its write-ahead log or
//! was copied without it, and a journal pointed at another account.

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
