//! `conversation.history: transcript`: the later conversation of the tickets a rule picks
//! goes in one private note, so each costs one POST after its creation; read back from the
//! sandbox, the note holds every entry in order, and `verify` calls the ticket correct.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::import::{Run, client, text};
use crate::support::{CODE, Hfmigrate, KEY, root, start_sandbox};

/// The generic-CSV mapping with closed and solved tickets as transcripts.
fn transcript_mapping(dir: &Path) -> std::path::PathBuf {
    let mapping = std::fs::read_to_string(root().join("mappings/generic-csv.yaml")).unwrap();
    let with = mapping.replacen(
        "  entries: \"{{ comments }}\"\n",
        "  entries: \"{{ comments }}\"\n  history: transcript\n  history_when: \"{{ row['Status'] | lower in ['closed', 'solved'] }}\"\n",
        1,
    );
    assert_ne!(with, mapping, "the sample mapping's conversation moved");
    let path = dir.join("transcript.yaml");
    std::fs::write(&path, with).unwrap();
    path
}

/// Ticket id → comment bodies in file order, for the tickets whose status is given.
fn comments_of(statuses: &[&str]) -> BTreeMap<String, Vec<String>> {
    let sample = root().join("samples/generic-csv");
    let mut picked = BTreeMap::new();
    let mut tickets = csv::Reader::from_path(sample.join("tickets.csv")).unwrap();
    for row in tickets.deserialize::<BTreeMap<String, String>>() {
        let row = row.unwrap();
        if statuses.contains(&row["Status"].to_lowercase().as_str()) {
            picked.insert(row["Ticket ID"].clone(), Vec::new());
        }
    }
    let mut comments = csv::Reader::from_path(sample.join("comments.csv")).unwrap();
    for row in comments.deserialize::<BTreeMap<String, String>>() {
        let row = row.unwrap();
        if let Some(bodies) = picked.get_mut(&row["Ticket ID"])
            && !row["Body"].trim().is_empty()
        {
            bodies.push(row["Body"].clone());
        }
    }
    picked.retain(|_, bodies| !bodies.is_empty());
    picked
}

fn plain(html: &str) -> String {
    html.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcript_tickets_get_one_note_holding_every_entry_in_order() {
    let sb = start_sandbox(crate::support::unlimited).await;
    let dir = tempfile::tempdir().unwrap();
    let mapping = transcript_mapping(dir.path());
    let input = root().join("samples/generic-csv");

    // The dry run says how many tickets go as transcripts and what that saves.
    let report = dir.path().join("report");
    let o = Hfmigrate::new([
        "dry-run",
        "--schema",
        "samples/happyfox-schema.json",
        "--mapping",
    ])
    .command()
    .arg(&mapping)
    .arg("--input")
    .arg(&input)
    .arg("--report")
    .arg(&report)
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("as one transcript note each"), "{stdout}");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("report.json")).unwrap())
            .unwrap();
    let expected = comments_of(&["closed", "solved"]);
    assert!(
        !expected.is_empty(),
        "the sample has no closed ticket with comments"
    );

    let journal = dir.path().join("run.db");
    let mapping_arg = mapping.to_str().unwrap();
    let run = Run::new(&sb.url, &journal, mapping_arg, &input);
    let o = run.output().await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let sent = crate::support::post_count(&sb.stats());
    assert_eq!(
        json["api"]["total_posts"].as_u64(),
        Some(sent),
        "the dry run planned what was sent"
    );

    // Read back: each picked ticket has exactly one note after its creation, holding
    // every comment in order; the others keep one post per comment.
    let j = hfmigrate::journal::Journal::open_read_only(&journal).unwrap();
    let out = dir.path().join("results");
    j.write_results(&out).unwrap();
    let mut ids = BTreeMap::new();
    for r in csv::Reader::from_path(out.join("success.csv"))
        .unwrap()
        .records()
    {
        let r = r.unwrap();
        ids.insert(r[0].to_owned(), r[1].parse::<u64>().unwrap());
    }
    // Rejected records (the sample has some on purpose) create nothing.
    let mut expected = expected;
    expected.retain(|source, _| ids.contains_key(source));
    assert_eq!(
        json["conversation"]["transcripts"].as_u64(),
        Some(expected.len() as u64)
    );
    // The import's plan splits its messages by history mode before it sends one.
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        plan.contains(&format!(
            "by history mode: {} transcript note(s)",
            expected.len()
        )),
        "{plan}"
    );
    let c = client(&sb);
    for (source, bodies) in &expected {
        let id = ids[source];
        let t = c.get_json(&format!("ticket/{id}/"), &[]).await.unwrap();
        let updates = t["updates"].as_array().unwrap();
        let notes: Vec<&Value> = updates
            .iter()
            .filter(|u| u.pointer("/message/message_type").and_then(Value::as_str) == Some("p"))
            .collect();
        assert_eq!(notes.len(), 1, "ticket {source}: {updates:#?}");
        let note = plain(
            notes[0]
                .pointer("/message/text")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        let mut from = 0;
        for body in bodies {
            let first_line = plain(body.lines().next().unwrap());
            let at = note[from..].find(&first_line).unwrap_or_else(|| {
                panic!("ticket {source}: {first_line:?} missing or out of order in {note}")
            });
            from += at + first_line.len();
        }
        assert_eq!(
            updates.len(),
            2,
            "ticket {source}: creation and the transcript only"
        );
    }

    let o = Hfmigrate::new([
        "verify",
        "--get-per-min",
        "60000",
        "--url",
        &sb.url,
        "--journal",
    ])
    .env("HAPPYFOX_API_KEY", KEY)
    .env("HAPPYFOX_AUTH_CODE", CODE)
    .command()
    .arg(&journal)
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "verify: {}", text(&o));
}

/// `dry-run --window`: a plan too long for the window gets the cut-off date that makes it
/// fit, and the mapping written with that cut-off plans exactly the POSTs promised.
#[test]
fn the_window_suggests_a_cutoff_that_fits_when_applied() {
    let dir = tempfile::tempdir().unwrap();
    let dry_run = |mapping: &Path, extra: &[&str]| -> Value {
        let o = Hfmigrate::new([
            "dry-run",
            "--schema",
            "samples/happyfox-schema.json",
            "--json",
        ])
        .command()
        .arg("--mapping")
        .arg(mapping)
        .arg("--input")
        .arg(root().join("samples/generic-csv"))
        .args(extra)
        .output()
        .unwrap();
        assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    // 64 POSTs at 240 a minute is 16 s: a 12 s window holds 48.
    let plain = root().join("mappings/generic-csv.yaml");
    let j = dry_run(&plain, &["--window", "12s"]);
    let w = &j["window"];
    assert_eq!(
        (w["fits"].as_bool(), w["budget_posts"].as_u64()),
        (Some(false), Some(48))
    );
    let cutoff = w["suggestion"]["before"].as_str().unwrap().to_string();
    let promised = w["suggestion"]["posts"].as_u64().unwrap();
    assert!(promised <= 48, "{w}");
    let j = dry_run(&plain, &["--window", "1h"]);
    assert_eq!(j["window"]["fits"], true);
    assert!(j["window"]["suggestion"].is_null());

    // The lead applies it: the same export now plans what was promised, and fits.
    let mapping = std::fs::read_to_string(&plain).unwrap();
    let with = mapping.replacen(
        "  entries: \"{{ comments }}\"\n",
        &format!(
            "  entries: \"{{{{ comments }}}}\"\n  history: transcript\n  history_when: \"{{{{ (row['Created At'] | datetime) < '{cutoff}' }}}}\"\n"
        ),
        1,
    );
    assert_ne!(with, mapping);
    let path = dir.path().join("cutoff.yaml");
    std::fs::write(&path, with).unwrap();
    let j = dry_run(&path, &["--window", "12s"]);
    assert_eq!(j["requests"]["posts"].as_u64(), Some(promised), "{j}");
    assert_eq!(j["window"]["fits"], true, "{j}");
}
