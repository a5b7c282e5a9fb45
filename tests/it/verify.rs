//! `hfmigrate verify` field by field, against the sandbox over real HTTP: the bundled
//! samples read back at 100% on every field, and changes made after the import (tags,
//! status, a reply deleted) are found, named, and the deleted reply is posted again once.

use std::ffi::OsString;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::{CODE, Hfmigrate, KEY, Outcome, start_sandbox, unlimited};

/// Runs the binary off the runtime's threads (the sandbox is served by them).
async fn run(cmd: Hfmigrate) -> Outcome {
    tokio::task::spawn_blocking(move || cmd.run())
        .await
        .expect("the binary ran")
}

async fn import(url: &str, sample: &str, journal: &Path) -> Outcome {
    let args: Vec<OsString> = vec![
        "import".into(),
        "--mapping".into(),
        format!("mappings/{sample}.yaml").into(),
        "--input".into(),
        format!("samples/{sample}").into(),
        "--url".into(),
        url.into(),
        "-y".into(),
        "--journal".into(),
        journal.into(),
    ];
    run(Hfmigrate::new(args).credentials()).await
}

async fn verify(url: &str, journal: &Path, extra: &[&str]) -> Outcome {
    let mut args: Vec<OsString> = vec![
        "verify".into(),
        "--get-per-min".into(),
        "60000".into(),
        "--url".into(),
        url.into(),
        "--journal".into(),
        journal.into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    run(Hfmigrate::new(args).credentials()).await
}

fn shown(o: &Outcome) -> String {
    format!("exit {}\n{}\n{}", o.code, o.stdout, o.stderr)
}

async fn post(url: &str, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .basic_auth(KEY, Some(CODE))
        .json(&body)
        .send()
        .await
        .expect("POST");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn ticket(url: &str, id: u64) -> Value {
    reqwest::Client::new()
        .get(format!("{url}/api/1.1/json/ticket/{id}/"))
        .basic_auth(KEY, Some(CODE))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("a ticket")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_samples_read_back_at_100_percent_on_every_field() {
    for sample in ["zendesk", "freshdesk", "generic-csv"] {
        let sb = start_sandbox(unlimited).await;
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("run.db");
        let o = import(&sb.url, sample, &journal).await;
        // The samples hold deliberate rejects.
        assert_eq!(o.code, 3, "{sample}: {}", shown(&o));
        let report = dir.path().join("report");
        let mapping = format!("mappings/{sample}.yaml");
        let input = format!("samples/{sample}");
        let o = verify(
            &sb.url,
            &journal,
            &[
                "--json",
                "--report",
                report.to_str().unwrap(),
                "--input",
                &input,
                "--mapping",
                &mapping,
            ],
        )
        .await;
        assert_eq!(o.code, 0, "{sample}: {}", shown(&o));
        let s: Value = serde_json::from_str(&o.stdout).expect("--json prints JSON");
        assert_eq!(s["version"], 1);
        assert_eq!(
            (s["command"].as_str(), s["exit"].as_u64()),
            (Some("verify"), Some(0))
        );
        assert_eq!(o.stdout.trim().lines().count(), 1, "one line");
        assert!(s["created"].as_u64().unwrap() > 10, "{sample}: {s}");
        assert_eq!(s["compared"], s["created"], "{sample}");
        assert_eq!(s["matching"], s["created"], "{sample}");
        // The export re-rendered through the mapping is what the journal sent.
        let src = &s["source"];
        assert_eq!(src["valid"], s["created"], "{sample}: {src}");
        assert_eq!(src["not_created"], json!([]), "{sample}");
        assert_eq!(src["rendered_differently"], json!([]), "{sample}");
        let fields = s["fields"].as_array().unwrap();
        for name in [
            "subject",
            "first message",
            "contact email",
            "category",
            "priority",
            "tags",
            "created at",
            "status",
            "conversation",
        ] {
            assert!(
                fields.iter().any(|f| f["field"] == name),
                "{sample}: {name} is not checked: {s}"
            );
        }
        for f in fields {
            assert_eq!(f["percent"], 100.0, "{sample}: {f}");
        }
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(report.join("verify.json")).unwrap())
                .unwrap();
        // stdout adds only the keys every command's --json carries.
        let mut summary = s.clone();
        for key in ["command", "exit"] {
            summary.as_object_mut().unwrap().remove(key);
        }
        assert_eq!(written, summary, "{sample}: verify.json is the summary");
        let html = std::fs::read_to_string(report.join("verify.html")).unwrap();
        assert!(html.contains("subject"), "{sample}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_after_the_import_are_named_and_a_deleted_reply_is_posted_again_once() {
    let sb = start_sandbox(unlimited).await;
    let url = sb.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.db");
    let o = import(&url, "zendesk", &journal).await;
    assert_eq!(o.code, 3, "{}", shown(&o));
    let o = verify(&url, &journal, &[]).await;
    assert_eq!(o.code, 0, "{}", shown(&o));
    // Kofi is no HappyFox agent: his replies are posted by the migration agent, and the
    // header keeps his email with his name, so the record shows who wrote them.
    let mut kept = 0;
    for id in 1..=22 {
        let t = ticket(&url, id).await;
        for u in t["updates"].as_array().unwrap() {
            let html = u["message"]["html"].as_str().unwrap_or_default();
            if html.contains("Kofi Mensah") {
                assert!(
                    html.contains("Kofi Mensah (kofi.mensah@acme.example) wrote on"),
                    "{html}"
                );
                kept += 1;
            }
        }
    }
    assert_eq!(kept, 2, "both of Kofi's replies");

    // ZD-1001 holds Alice's reply; tickets are numbered in the order batches land.
    let reply = "thanks for the detailed log";
    let mut n = 0;
    for id in 1..=22 {
        let t = ticket(&url, id).await;
        let fields = t["custom_fields"].as_array().unwrap();
        if fields
            .iter()
            .any(|f| f["name"] == "Source ID" && f["value"] == "ZD-1001")
        {
            n = id;
        }
    }
    assert!(n > 0, "ZD-1001 is a ticket");
    let before = ticket(&url, n).await;
    let find = |t: &Value| -> Vec<u64> {
        t["updates"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| {
                u["message"]["html"]
                    .as_str()
                    .is_some_and(|h| h.contains(reply))
            })
            .map(|u| u["update_id"].as_u64().unwrap())
            .collect()
    };
    let ids = find(&before);
    assert_eq!(ids.len(), 1, "{before}");
    // A reply lost after the import, a tag added and a status set by another agent.
    let (status, body) = post(
        &url,
        &format!("/_sandbox/ticket/{n}/update/{}/delete", ids[0]),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &url,
        &format!("/api/1.1/json/ticket/{n}/update_tags/"),
        json!({"staff": 3, "add": "edited-later"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &url,
        &format!("/api/1.1/json/ticket/{n}/staff_pvtnote/"),
        json!({"staff": 3, "html": "reopening", "status": 2}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let report = dir.path().join("report");
    let o = verify(&url, &journal, &["--report", report.to_str().unwrap()]).await;
    assert_eq!(o.code, 3, "{}", shown(&o));
    let out = &o.stdout;
    assert!(out.contains(&format!("1001 (ticket {n} ")), "{}", shown(&o));
    assert!(out.contains("  tags differs"), "{}", shown(&o));
    assert!(
        out.contains("  status differs [changed after the import by agent"),
        "{}",
        shown(&o)
    );
    assert!(
        out.contains("  conversation differs") && out.contains("is missing"),
        "{}",
        shown(&o)
    );
    assert!(
        out.contains("1 posted message(s) are missing from HappyFox and are marked in the journal"),
        "{}",
        shown(&o)
    );
    assert!(out.contains("private note added by agent"), "{}", shown(&o));
    let html = std::fs::read_to_string(report.join("verify.html")).unwrap();
    // minijinja escapes `/` too; a browser reads the entities back.
    let html = html_escape::decode_html_entities(&html);
    assert!(
        html.contains(&format!("href=\"{url}/staff/ticket/{n}\"")),
        "a link to the ticket in the agent portal: {html}"
    );
    // Only the changed ticket differs.
    let field_line = out
        .lines()
        .find(|l| l.trim_start().starts_with("tags "))
        .unwrap();
    assert!(field_line.contains("(21/22"), "{field_line}");

    // The next import posts the deleted reply, once; the others are not posted again.
    let updates_before = ticket(&url, n).await["updates"].as_array().unwrap().len();
    let o = import(&url, "zendesk", &journal).await;
    assert_eq!(o.code, 3, "{}", shown(&o));
    assert!(o.stdout.contains("1 message(s) posted"), "{}", shown(&o));
    let after = ticket(&url, n).await;
    assert_eq!(find(&after).len(), 1, "{after}");
    assert_eq!(
        after["updates"].as_array().unwrap().len(),
        updates_before + 1,
        "{after}"
    );
    // A second import posts nothing more.
    let o = import(&url, "zendesk", &journal).await;
    assert!(o.stdout.contains("0 message(s) posted"), "{}", shown(&o));
    assert_eq!(find(&ticket(&url, n).await).len(), 1);
    // The reply is back: it comes last (HappyFox cannot backdate it), which is not held
    // against the order; the agents' changes are still named.
    let o = verify(&url, &journal, &[]).await;
    assert_eq!(o.code, 3, "{}", shown(&o));
    assert!(!o.stdout.contains("out of order"), "{}", shown(&o));
    assert!(!o.stdout.contains("is missing"), "{}", shown(&o));
    assert!(o.stdout.contains("  tags differs"), "{}", shown(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_record_of_the_export_that_is_no_ticket_is_listed_with_its_line() {
    let sb = start_sandbox(unlimited).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.db");
    let o = import(&sb.url, "generic-csv", &journal).await;
    assert_eq!(o.code, 3, "{}", shown(&o));
    // The export gains a record after the import.
    let export = dir.path().join("export");
    std::fs::create_dir(&export).unwrap();
    for f in ["tickets.csv", "comments.csv"] {
        std::fs::copy(
            crate::support::root().join("samples/generic-csv").join(f),
            export.join(f),
        )
        .unwrap();
    }
    let mut csv = std::fs::read_to_string(export.join("tickets.csv")).unwrap();
    let lines = csv.lines().count();
    csv.push_str("3999,Added later,Body,Late Comer,late@example.com,Open,Low,Sales,,migrated,2024-03-22 01:18:33,Widget Pro,Americas,,,\n");
    std::fs::write(export.join("tickets.csv"), csv).unwrap();
    let o = verify(
        &sb.url,
        &journal,
        &[
            "--input",
            export.to_str().unwrap(),
            "--mapping",
            "mappings/generic-csv.yaml",
        ],
    )
    .await;
    assert_eq!(o.code, 3, "{}", shown(&o));
    assert!(
        o.stdout.contains(&format!(
            "  not created: 3999 ({}:{}); run `hfmigrate import`",
            export.join("tickets.csv").display(),
            lines + 1
        )),
        "{}",
        shown(&o)
    );
}

/// `GET ticket/{n}/` calls the sandbox answered so far.
fn ticket_reads(sb: &hfmigrate::sandbox::RunningSandbox) -> u64 {
    sb.stats()
        .requests
        .get("GET ticket/{n}/")
        .map_or(0, |m| m.values().sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_verify_continues_where_it_stopped() {
    let sb = start_sandbox(unlimited).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.db");
    let o = import(&sb.url, "zendesk", &journal).await;
    assert_eq!(o.code, 3, "{}", shown(&o));
    let before = ticket_reads(&sb);
    // One GET a second, so that it is stopped part way.
    let mut child = Hfmigrate::new(["verify", "--get-per-min", "60", "--url", sb.url.as_str()])
        .credentials()
        .command();
    child.arg("--journal").arg(&journal);
    let child = child
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ticket_reads(&sb) < before + 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "verify read no 3 tickets within 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let status = std::process::Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let o: Outcome = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
        .into();
    assert_eq!(o.code, 4, "{}", shown(&o));
    assert!(
        o.stderr.contains("run the same verify again to continue"),
        "{}",
        shown(&o)
    );
    let first = ticket_reads(&sb) - before;
    assert!((3..22).contains(&first), "{first} read before the stop");

    let o = verify(&sb.url, &journal, &[]).await;
    assert_eq!(o.code, 0, "{}", shown(&o));
    assert!(
        o.stdout.contains(&format!(
            "compared 22 of 22 created tickets field by field ({first} compared by the earlier, stopped verify)"
        )),
        "{}",
        shown(&o)
    );
    assert_eq!(ticket_reads(&sb) - before, 22, "every ticket read once");
    // A finished verify starts over.
    let o = verify(&sb.url, &journal, &[]).await;
    assert_eq!(o.code, 0, "{}", shown(&o));
    assert_eq!(ticket_reads(&sb) - before, 44);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_is_seeded_and_estimates_the_full_verify() {
    let sb = start_sandbox(unlimited).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.db");
    let o = import(&sb.url, "zendesk", &journal).await;
    assert_eq!(o.code, 3, "{}", shown(&o));
    let o = verify(&sb.url, &journal, &["--sample", "5", "--json"]).await;
    assert_eq!(o.code, 0, "{}", shown(&o));
    let s: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(s["compared"], 5);
    assert_eq!(s["sample"]["size"], 5);
    let seed = s["sample"]["seed"].as_u64().expect("the seed is reported");
    // 22 reads + 1 list page at 60000/min.
    assert_eq!(s["full_verify_seconds"], 1);
    let before = ticket_reads(&sb);
    let seed = seed.to_string();
    let o = verify(&sb.url, &journal, &["--sample", "5", "--seed", &seed]).await;
    assert_eq!(o.code, 0, "{}", shown(&o));
    assert!(
        o.stdout.contains(&format!(
            "compared a random 5 of 22 created tickets (seed {seed}; --sample 5 --seed {seed} compares the same ones)"
        )),
        "{}",
        shown(&o)
    );
    assert!(
        o.stdout
            .contains("a full verify of 22 tickets takes about 1s at 60000 GET/min"),
        "{}",
        shown(&o)
    );
    assert_eq!(ticket_reads(&sb) - before, 5);
}
