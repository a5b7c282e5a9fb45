//! The import through the built binary against a real sandbox over HTTP: faults, crashes,
//! the rate limit, and every way a run can be refused, each checked against what the
//! sandbox holds and what the journal says.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hfmigrate::client::{Client, ClientOptions, Credentials, Target};
use hfmigrate::journal::Journal;
use hfmigrate::sandbox::{Latency, Limits, RunningSandbox};

use crate::support::{CODE, Hfmigrate, KEY, root, sample_schema, start_sandbox as start};

/// The generic-CSV sample repeated `copies` times with distinct ticket ids, so a run has
/// enough batches for faults and kills to land in; each copy keeps its conversation
/// (comments.csv repeated with the same ids), so kills land mid-conversation too.
pub(crate) fn replicated_csv(dir: &Path, copies: usize) -> PathBuf {
    let src = root().join("samples/generic-csv");
    let out = dir.join("export");
    std::fs::create_dir_all(&out).unwrap();
    for file in ["tickets.csv", "comments.csv"] {
        let mut reader = csv::Reader::from_path(src.join(file)).unwrap();
        let headers = reader.headers().unwrap().clone();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let mut writer = csv::Writer::from_path(out.join(file)).unwrap();
        writer.write_record(&headers).unwrap();
        for k in 1..=copies {
            for row in &rows {
                let mut fields: Vec<String> = row.iter().map(str::to_owned).collect();
                if !fields[0].trim().is_empty() {
                    fields[0] = format!("{}-{k}", fields[0].trim());
                }
                writer.write_record(&fields).unwrap();
            }
        }
        writer.flush().unwrap();
    }
    out
}

/// One run of the built binary, as a user would start it.
pub(crate) struct Run<'a> {
    pub url: &'a str,
    pub journal: &'a Path,
    pub mapping: &'a str,
    pub input: &'a Path,
    pub extra: Vec<String>,
    pub key: &'a str,
}

impl<'a> Run<'a> {
    /// A run of the test credentials with no extra flags.
    pub(crate) fn new(url: &'a str, journal: &'a Path, mapping: &'a str, input: &'a Path) -> Self {
        Run {
            url,
            journal,
            mapping,
            input,
            extra: vec![],
            key: KEY,
        }
    }

    pub(crate) fn command(&self) -> Command {
        let mut cmd = Hfmigrate::new(["import", "--yes", "--mapping", self.mapping, "--input"])
            .env("HAPPYFOX_API_KEY", self.key)
            .env("HAPPYFOX_AUTH_CODE", CODE)
            .command();
        cmd.arg(self.input)
            .arg("--journal")
            .arg(self.journal)
            .args([
                "--url",
                self.url,
                "--schema",
                "samples/happyfox-schema.json",
            ])
            .args(
                [
                    ("--post-per-min", "60000"),
                    ("--get-per-min", "60000"),
                    ("--reconcile-delay", "0s"),
                    // A killed run's requests may land until their timeout: a restart
                    // waits that long before concluding any absent, so tests keep it short.
                    ("--write-timeout", "5s"),
                    ("--progress-every", "1s"),
                ]
                .into_iter()
                // A test's own value of one of these replaces it.
                .filter(|(flag, _)| !self.extra.iter().any(|e| e == flag))
                .flat_map(|(flag, value)| [flag, value]),
            )
            .args(&self.extra);
        cmd
    }

    pub(crate) async fn output(&self) -> Output {
        let mut cmd = self.command();
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub(crate) fn client(sb: &RunningSandbox) -> Client {
    let options = ClientOptions {
        post_per_min: 60_000,
        get_per_min: 60_000,
        ..ClientOptions::default()
    };
    Client::new(
        Target::parse(&sb.url).unwrap(),
        Credentials::new(KEY, CODE).unwrap(),
        options,
    )
    .unwrap()
}

/// Searches the sandbox for one marker; returns the ids of tickets carrying it exactly.
pub(crate) async fn tickets_with_marker(c: &Client, marker: String) -> Vec<u64> {
    let q = format!("\"Source ID\":\"{marker}\"");
    let answer = c
        .get_json("tickets/", &[("status", "_all"), ("q", &q), ("size", "50")])
        .await
        .unwrap();
    answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["custom_fields"].as_array().unwrap().iter().any(|f| {
                f["name"] == "Source ID" && f["value"].as_str().map(str::trim) == Some(&*marker)
            })
        })
        .map(|t| t["id"].as_u64().unwrap())
        .collect()
}

/// Every created record of the journal is exactly one ticket in the sandbox, found by its
/// marker with the id the journal recorded, and the sandbox holds nothing else.
pub(crate) async fn assert_exactly_once(
    sb: &RunningSandbox,
    journal: &Path,
    dir: &Path,
    valid: u64,
) {
    let j = Journal::open_read_only(journal).unwrap();
    let s = j.summary().unwrap();
    assert_eq!(s.records.created, valid, "{s:?}");
    assert_eq!(s.records.pending + s.records.sending, 0, "{s:?}");
    let out = dir.join("results");
    j.write_results(&out).unwrap();
    let mut success = csv::Reader::from_path(out.join("success.csv")).unwrap();
    let rows: Vec<(String, u64)> = success
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_owned(), r[1].parse().unwrap())
        })
        .collect();
    let c = client(sb);
    let found = futures::future::join_all(
        rows.iter()
            .map(|(source_id, _)| tickets_with_marker(&c, format!("CSV-{source_id}"))),
    )
    .await;
    for ((source_id, ticket_id), found) in rows.iter().zip(found) {
        assert_eq!(found, vec![*ticket_id], "marker CSV-{source_id}");
    }
    let n = rows.len() as u64;
    assert_eq!(n, valid);
    assert_eq!(
        sb.stats().tickets,
        valid,
        "the sandbox holds exactly the created tickets"
    );
    // Every journaled message is on its ticket exactly once, after the creation update.
    assert_eq!(s.messages.pending + s.messages.sending, 0, "{s:?}");
    let db = rusqlite::Connection::open(journal).unwrap();
    let mut posted = std::collections::HashMap::new();
    let mut st = db
        .prepare("SELECT ticket_source_id, count(*) FROM messages WHERE state = 'created' GROUP BY ticket_source_id")
        .unwrap();
    for row in st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .unwrap()
    {
        let (id, count) = row.unwrap();
        posted.insert(id, count as usize);
    }
    for (source_id, ticket_id) in &rows {
        let detail = c
            .get_json(&format!("ticket/{ticket_id}/"), &[])
            .await
            .unwrap();
        let updates = detail["updates"]
            .as_array()
            .map(Vec::len)
            .unwrap_or_default();
        let want = posted.get(source_id).copied().unwrap_or_default();
        assert_eq!(
            updates,
            1 + want,
            "ticket {source_id}: creation plus each message once"
        );
    }
    assert_eq!(
        sb.stats().overlapping_writes,
        0,
        "no two writes to one ticket at once"
    );
}

/// Valid records of an export, counted in-process by the same pipeline the import uses.
pub(crate) fn valid_records(mapping: &str, input: &Path) -> u64 {
    let schema = std::sync::Arc::new(sample_schema());
    let plan = hfmigrate::mapping::load(&root().join(mapping), Some(schema.clone())).unwrap();
    let mut valid = 0;
    hfmigrate::pipeline::for_each(&plan, schema, &[input.to_path_buf()], &[], |p| {
        if matches!(p.outcome, hfmigrate::payload::RecordOutcome::Valid { .. }) {
            valid += 1;
        }
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap();
    valid
}

/// "validated N records: V valid, ..." from the plan the import prints.
fn valid_count(o: &Output) -> u64 {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.contains("validated"))
        .unwrap_or_else(|| panic!("{}", text(o)));
    line.split(": ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_end_with_exactly_one_ticket_per_valid_record() {
    let sb = start(|c| {
        c.limits = Limits {
            post_per_min: 0,
            get_per_min: 0,
            lockout: Duration::from_secs(1),
        };
        c.faults.fail_rate = 0.05;
        c.faults.drop_rate = 0.05;
        c.faults.latency = Some(Latency::Range(
            Duration::from_millis(1),
            Duration::from_millis(8),
        ));
        c.faults.seed = Some(7);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let input = replicated_csv(dir.path(), 4);
    let journal = dir.path().join("run.db");
    let run = Run {
        url: &sb.url,
        journal: &journal,
        mapping: "mappings/generic-csv.yaml",
        input: &input,
        extra: vec!["--batch-size".into(), "4".into()],
        key: KEY,
    };
    let o = run.output().await;
    // The sample has deliberate rejects: exit 3, everything valid created.
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let valid = valid_count(&o);
    assert!(valid > 60, "{valid}");
    let stats = sb.stats();
    assert!(
        stats.faults.fail + stats.faults.drop > 0,
        "no fault was injected: {stats:?}"
    );
    assert_exactly_once(&sb, &journal, dir.path(), valid).await;
    // verify reads the account back and agrees...
    let journal_path = journal.clone();
    let verify = move || {
        Hfmigrate::new(["verify", "--get-per-min", "60000", "--journal"])
            .credentials()
            .command()
            .arg(&journal_path)
            .output()
            .unwrap()
    };
    let o = tokio::task::spawn_blocking(verify.clone()).await.unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("{valid} verified")),
        "{}",
        text(&o)
    );
    let posts_before = sb
        .stats()
        .requests
        .get("POST tickets/")
        .map_or(0, |m| m.values().sum::<u64>());
    let again = run.output().await;
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    let posts_after = sb
        .stats()
        .requests
        .get("POST tickets/")
        .map_or(0, |m| m.values().sum::<u64>());
    assert_eq!(posts_before, posts_after, "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("not read again"),
        "{}",
        text(&again)
    );
    // ...and notices a ticket created twice behind the journal's back.
    let j = Journal::open_read_only(&journal).unwrap();
    let out = dir.path().join("dup");
    j.write_results(&out).unwrap();
    let first = csv::Reader::from_path(out.join("success.csv"))
        .unwrap()
        .records()
        .next()
        .unwrap()
        .unwrap()[0]
        .to_owned();
    let payload: serde_json::Value =
        serde_json::from_str(&j.payload(&first).unwrap().unwrap()).unwrap();
    // The sandbox still injects faults: post until the duplicate is stored (bounded).
    let before = sb.stats().tickets;
    for _ in 0..20 {
        let _ = client(&sb).post_json("tickets/", &payload).await;
        if sb.stats().tickets > before {
            break;
        }
    }
    assert_eq!(sb.stats().tickets, before + 1, "the duplicate was stored");
    let o = tokio::task::spawn_blocking(verify).await.unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("duplicated: {first}")),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_moments_every_record_is_created_once() {
    let sb = start(|c| {
        c.limits = Limits {
            post_per_min: 0,
            get_per_min: 0,
            lockout: Duration::from_secs(1),
        };
        c.faults.latency = Some(Latency::Range(
            Duration::from_millis(100),
            Duration::from_millis(300),
        ));
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let input = replicated_csv(dir.path(), 5);
    let journal = dir.path().join("run.db");
    let run = Run {
        url: &sb.url,
        journal: &journal,
        mapping: "mappings/generic-csv.yaml",
        input: &input,
        extra: vec!["--batch-size".into(), "2".into()],
        key: KEY,
    };
    let mut kills = 0;
    let mut finished = None;
    let mut attempts = 0;
    while kills < 12 && attempts < 40 {
        attempts += 1;
        let mut child = run
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let wait = Duration::from_millis(rand::random_range(150..600));
        tokio::time::sleep(wait).await;
        match child.try_wait().unwrap() {
            Some(status) => {
                finished = Some(status);
                break;
            }
            None => {
                // SIGKILL: no handler, no cleanup; the journal must cope.
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    assert!(
        kills >= 10,
        "only {kills} kills landed mid-run (finished: {finished:?})"
    );
    let o = run.output().await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let j = Journal::open_read_only(&journal).unwrap();
    let s = j.summary().unwrap();
    drop(j);
    assert_eq!(
        s.records.created,
        valid_records("mappings/generic-csv.yaml", &input)
    );
    assert_exactly_once(&sb, &journal, dir.path(), s.records.created).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_pauses_for_the_lockout_and_nothing_is_sent_during_it() {
    let lockout = Duration::from_secs(2);
    let sb = start(|c| {
        c.limits = Limits {
            post_per_min: 3,
            get_per_min: 0,
            lockout,
        };
        c.faults.latency = Some(Latency::Fixed(Duration::from_millis(5)));
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.db");
    let input = root().join("samples/zendesk");
    // Ticket creation only: conversations would add dozens of POSTs at 3 a minute, and
    // first-message attachments would make some tickets single creates of their own.
    let zendesk = std::fs::read_to_string(root().join("mappings/zendesk.yaml")).unwrap();
    let head = zendesk.split("\nconversation:").next().unwrap();
    let mut in_attachments = false;
    let creation_only: String = head
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter(|line| {
            if line.starts_with("  attachments:") {
                in_attachments = true;
            } else if !line.starts_with("    ") {
                in_attachments = false;
            }
            !in_attachments
        })
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(!creation_only.contains("content_url"), "{creation_only}");
    let mapping = dir.path().join("creation-only.yaml");
    std::fs::write(&mapping, creation_only).unwrap();
    let run = Run {
        url: &sb.url,
        journal: &journal,
        mapping: mapping.to_str().unwrap(),
        input: &input,
        extra: vec![
            "--batch-size".into(),
            "5".into(),
            "--lockout".into(),
            "2s".into(),
        ],
        key: KEY,
    };
    let started = Instant::now();
    let o = run.output().await;
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let stats = sb.stats();
    // 23 valid tickets (without a final status no ticket misses a field compulsory on
    // completion) in 5 batches against 3 POSTs a minute: one lockout, waited out.
    assert_eq!(stats.lockouts, 1, "{stats:?}\n{}", text(&o));
    assert!(took >= lockout, "{took:?}");
    // Only requests already on their way when the first 429 came back were refused: the
    // importer sent nothing while the lockout lasted.
    assert!(stats.rate_limited <= 4, "{stats:?}");
    let valid = valid_records(mapping.to_str().unwrap(), &input);
    assert_eq!(valid, 23);
    assert_eq!(stats.tickets, valid, "{stats:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("throttled"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_lose_nothing_and_never_show_credentials() {
    let sb = start(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.db");
    let input = root().join("samples/zendesk");
    let mut outputs: Vec<String> = vec![];
    let base = Run::new(&sb.url, &journal, "mappings/zendesk.yaml", &input);
    let ok = base.output().await;
    assert_eq!(ok.status.code(), Some(3), "{}", text(&ok));
    outputs.push(text(&ok));
    let created = || {
        Journal::open_read_only(&journal)
            .unwrap()
            .summary()
            .unwrap()
            .records
    };
    let before = created();
    assert_eq!(before.created, 22);

    // Wrong credentials: configuration (exit 2), the variables named, the value never echoed.
    let wrong = Run {
        key: "key-WRONG-99999",
        ..base_clone(&base)
    };
    let o = wrong.output().await;
    outputs.push(text(&o));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("HAPPYFOX_API_KEY") && err.contains("401"),
        "{err}"
    );
    assert!(!err.contains("key-WRONG-99999"), "{err}");

    // Nobody at that address: exit 1, a clear message.
    let gone = Run {
        url: "http://127.0.0.1:9",
        ..base_clone(&base)
    };
    let o = gone.output().await;
    outputs.push(text(&o));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot reach"),
        "{}",
        text(&o)
    );

    // A journal from another mapping: exit 2, what changed, the way out.
    let other = Run {
        mapping: "mappings/freshdesk.yaml",
        input: &root().join("samples/freshdesk"),
        ..base_clone(&base)
    };
    let o = other.output().await;
    outputs.push(text(&o));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the mapping changed") && err.contains("--allow-changes"),
        "{err}"
    );

    // A read-only journal: exit 2, said plainly.
    let mut perms = std::fs::metadata(&journal).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&journal, perms.clone()).unwrap();
    let o = base.output().await;
    outputs.push(text(&o));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("read-only"),
        "{}",
        text(&o)
    );
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&journal, perms).unwrap();

    // No terminal and no --yes: refused before anything happens.
    let o = Hfmigrate::new(["import", "--mapping", "mappings/zendesk.yaml", "--input"])
        .command()
        .arg(&input)
        .arg("--journal")
        .arg(&journal)
        .args(["--url", &sb.url])
        .output()
        .unwrap();
    outputs.push(text(&o));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--yes"));

    // --dry-run belongs to its own command.
    let dry = Run {
        extra: vec!["--dry-run".into()],
        ..base_clone(&base)
    };
    let o = dry.output().await;
    outputs.push(text(&o));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("hfmigrate dry-run"));

    // Nothing lost or sent twice by any of it.
    assert_eq!(created(), before);
    assert_eq!(sb.stats().tickets, 22);

    // status and results, then: no credential anywhere a run wrote.
    let status = Hfmigrate::new(["status", "--json", "--journal"])
        .command()
        .arg(&journal)
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let summary: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(summary["records"]["created"], 22);
    outputs.push(text(&status));
    let results = Hfmigrate::new(["results", "--journal"])
        .command()
        .arg(&journal)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(results.status.code(), Some(0), "{}", text(&results));
    outputs.push(text(&results));
    let token = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:{CODE}"))
    };
    let mut files = vec![];
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        files.push(entry.unwrap().path());
    }
    for entry in std::fs::read_dir(dir.path().join("out")).unwrap() {
        files.push(entry.unwrap().path());
    }
    for f in files.iter().filter(|f| f.is_file()) {
        outputs.push(String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned());
    }
    for o in &outputs {
        for secret in [KEY, CODE, token.as_str(), "TOPSECRET"] {
            assert!(!o.contains(secret), "{secret} leaked into:\n{o}");
        }
    }
}

fn base_clone<'a>(r: &Run<'a>) -> Run<'a> {
    Run {
        url: r.url,
        journal: r.journal,
        mapping: r.mapping,
        input: r.input,
        extra: r.extra.clone(),
        key: r.key,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_waits_for_requests_in_flight_and_exits_4() {
    let sb = start(|c| {
        c.limits = Limits {
            post_per_min: 0,
            get_per_min: 0,
            lockout: Duration::from_secs(1),
        };
        c.faults.latency = Some(Latency::Fixed(Duration::from_millis(300)));
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.db");
    let input = root().join("samples/zendesk");
    let run = Run {
        url: &sb.url,
        journal: &journal,
        mapping: "mappings/zendesk.yaml",
        input: &input,
        extra: vec!["--batch-size".into(), "1".into()],
        key: KEY,
    };
    let mut child = run
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the plan (sending starts right after it), then let requests get in flight.
    let stdout = child.stdout.take().unwrap();
    let plan = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut reader = std::io::BufReader::new(stdout);
        let mut seen = String::new();
        while reader.read_line(&mut seen).unwrap() > 0 {
            if seen.contains("conversations:") {
                break;
            }
        }
        (seen, reader)
    });
    let (lines, stdout) = tokio::time::timeout(Duration::from_secs(120), plan)
        .await
        .expect("the import printed its plan within 120 s")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let o = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut rest = String::new();
        let mut stdout = stdout;
        stdout.read_to_string(&mut rest).unwrap();
        let mut o = child.wait_with_output().unwrap();
        o.stdout = format!("{lines}{rest}").into_bytes();
        o
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("run the same command again"),
        "{}",
        text(&o)
    );
    let s = Journal::open_read_only(&journal)
        .unwrap()
        .summary()
        .unwrap();
    assert_eq!(
        s.batches.sending, 0,
        "in-flight batches were waited for: {s:?}"
    );
    assert!(s.records.created < 22, "{s:?}");
    assert_eq!(s.records.created, sb.stats().tickets);
    let o = run.output().await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(sb.stats().tickets, 22);
}

/// Issue 9 item 2: two side files reading the same file, keyed differently, are one
/// input to the journal (it failed with `UNIQUE constraint failed: inputs.path`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_side_files_may_read_the_same_file() {
    let sb = start(crate::support::unlimited).await;
    let dir = tempfile::tempdir().unwrap();
    let mapping = std::fs::read_to_string(root().join("mappings/generic-csv.yaml")).unwrap();
    let twice = mapping.replacen(
        "  side:\n",
        "  side:\n    authors: { file: comments.csv, key: Author Email, optional: true }\n",
        1,
    );
    assert_ne!(twice, mapping);
    let path = dir.path().join("twice.yaml");
    std::fs::write(&path, twice).unwrap();
    let input = root().join("samples/generic-csv");
    let journal = dir.path().join("run.db");
    let run = Run::new(&sb.url, &journal, path.to_str().unwrap(), &input);
    let o = run.output().await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let valid = valid_count(&o);
    assert!(valid > 0, "{}", text(&o));
    assert_eq!(sb.stats().tickets, valid);
    // And a re-run sees the same inputs: nothing changed, nothing read again.
    let o = run.output().await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("not read again"),
        "{}",
        text(&o)
    );
}

/// Issue 11 item 3: bulk creates are cut by size too. Four 8 MB bodies made one 33 MB
/// request, refused with HTTP 413 for all four; now every request stays under 25 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_are_split_across_bulk_creates_under_the_request_limit() {
    let sb = start(crate::support::unlimited).await;
    let dir = tempfile::tempdir().unwrap();
    let export = big_bodies(dir.path(), 4, 8 * 1024 * 1024);
    let journal = dir.path().join("run.db");
    let run = Run::new(&sb.url, &journal, "mappings/generic-csv.yaml", &export);
    let o = run.output().await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stats = sb.stats();
    assert_eq!(stats.tickets, 4, "{stats:?}");
    let posts = &stats.requests["POST tickets/"];
    assert!(!posts.contains_key("413"), "{posts:?}");
    assert!(posts.values().sum::<u64>() >= 2, "{posts:?}");
}

/// Issue 11 item 3: a 413 is "split and retry", never a failure of every member. A front
/// end with a lower limit than the documented 25 MB refuses a batch the importer cut to
/// fit that; the batch is halved until it passes, and only a record too large alone fails,
/// with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_splits_the_batch_until_it_fits_and_fails_only_what_cannot() {
    const LIMIT: usize = 256 * 1024;
    let sb = start(|c| {
        crate::support::unlimited(c);
        c.max_body_bytes = LIMIT;
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    // 30 tickets of 40 KB: 1.2 MB in one bulk create, five times the server's limit.
    let export = big_bodies(dir.path(), 30, 40 * 1024);
    // And one that no request under the limit can carry.
    let mut rows = csv::Reader::from_path(export.join("tickets.csv")).unwrap();
    let headers = rows.headers().unwrap().clone();
    let mut all: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    let mut huge: Vec<String> = all[0].iter().map(str::to_owned).collect();
    huge[0] = "HUGE-1".into();
    huge[2] = "x".repeat(LIMIT + 1);
    all.push(csv::StringRecord::from(huge));
    let mut writer = csv::Writer::from_path(export.join("tickets.csv")).unwrap();
    writer.write_record(&headers).unwrap();
    for row in &all {
        writer.write_record(row).unwrap();
    }
    writer.flush().unwrap();

    let journal = dir.path().join("run.db");
    let run = Run::new(&sb.url, &journal, "mappings/generic-csv.yaml", &export);
    let o = run.output().await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let stats = sb.stats();
    assert_eq!(stats.tickets, 30, "{stats:?}");
    let posts = &stats.requests["POST tickets/"];
    assert!(posts.get("413").copied().unwrap_or(0) >= 2, "{posts:?}");
    let j = Journal::open_read_only(&journal).unwrap();
    let s = j.summary().unwrap();
    assert_eq!((s.records.created, s.records.failed), (30, 1), "{s:?}");
    let out = dir.path().join("results");
    j.write_results(&out).unwrap();
    let failed = std::fs::read_to_string(out.join("errors.csv")).unwrap();
    assert!(failed.contains("HUGE-1"), "{failed}");
    assert!(failed.contains("HTTP 413"), "{failed}");
    assert!(!failed.contains("BIG-"), "{failed}");
}

/// A generic-CSV export of `n` tickets whose descriptions are `bytes` long.
fn big_bodies(dir: &Path, n: usize, bytes: usize) -> PathBuf {
    let export = dir.join("export");
    std::fs::create_dir(&export).unwrap();
    let sample = root().join("samples/generic-csv/tickets.csv");
    let mut reader = csv::Reader::from_path(sample).unwrap();
    let headers = reader.headers().unwrap().clone();
    let first = reader.records().next().unwrap().unwrap();
    let mut writer = csv::Writer::from_path(export.join("tickets.csv")).unwrap();
    writer.write_record(&headers).unwrap();
    let line = "All work and no play makes a long ticket. ";
    let body = line.repeat(bytes / line.len() + 1);
    for k in 1..=n {
        let mut row: Vec<String> = first.iter().map(str::to_owned).collect();
        row[0] = format!("BIG-{k}");
        row[2] = body.clone();
        writer.write_record(&row).unwrap();
    }
    writer.flush().unwrap();
    export
}

/// Issue 11 item 3: a first message that alone exceeds 25 MB can never be created; the
/// dry run says so (it called a 100 MB body valid).
#[test]
fn the_dry_run_rejects_a_body_over_the_request_limit() {
    let dir = tempfile::tempdir().unwrap();
    let export = big_bodies(dir.path(), 1, 26 * 1024 * 1024);
    let o = Hfmigrate::new([
        "dry-run",
        "--mapping",
        "mappings/generic-csv.yaml",
        "--schema",
        "samples/happyfox-schema.json",
        "--input",
    ])
    .command()
    .arg(&export)
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("at most 25 MB per request"),
        "{}",
        text(&o)
    );
}

/// A comment for a ticket the export does not hold never reaches HappyFox: the import
/// says where it is and ends with exit 3, and so does a resumed run, which does not read
/// the export again.
#[test]
fn side_entries_that_reach_no_ticket_make_the_import_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    std::fs::create_dir(&export).unwrap();
    std::fs::write(
        export.join("tickets.csv"),
        "Ticket ID,Subject,Description,Requester Name,Requester Email,Status,Priority,Category,Assignee,Tags,Created At,Product,Region,Order Value,Purchase Date,Affected Modules\n\
         3001,Printer jam,The printer jams.,Ann Lee,ann@example.com,Open,Medium,Support,,,2024-03-05 10:00:00,,,,,\n",
    )
    .unwrap();
    std::fs::write(
        export.join("comments.csv"),
        "Ticket ID,Author Email,Author Name,Created At,Public,Body\n\
         3001,alice@acme.example,Alice Martin,2024-03-05 19:33:11,true,Looking into it\n\
         9999,alice@acme.example,Alice Martin,2024-03-05 19:34:11,true,For a ticket not exported\n",
    )
    .unwrap();
    let journal = dir.path().join("run.db");
    let first = Hfmigrate::new([
        "-q".as_ref(),
        "import".as_ref(),
        "--mapping".as_ref(),
        "mappings/generic-csv.yaml".as_ref(),
        "--sandbox".as_ref(),
        "--yes".as_ref(),
        "--input".as_ref(),
        export.as_os_str(),
        "--journal".as_ref(),
        journal.as_os_str(),
    ] as [&std::ffi::OsStr; 10])
    .run();
    assert_eq!(first.code, 3, "{first:?}");
    assert!(first.stdout.contains("this run: 1 created"), "{first:?}");
    assert!(
        first
            .stdout
            .contains("side files: 1 entry of the export reaches no ticket")
            && first
                .stdout
                .contains("comments.csv:3: error: source.side.comments: key \"9999\""),
        "{first:?}"
    );
    // Kept in the journal, so a resumed run (which does not read the export again) still
    // ends with exit 3 for them.
    let conn = rusqlite::Connection::open(&journal).unwrap();
    let note: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'note.side_entries_lost'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(note.contains("\"count\":1"), "{note}");
}
