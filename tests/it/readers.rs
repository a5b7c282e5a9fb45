//! Reading exports through the built binary: file globs over sub-folders, side files
//! split over several files, one record per file, and computed join keys (issue 12).

use std::path::{Path, PathBuf};

use crate::support::{Hfmigrate, Outcome};

/// The ticket part every mapping here shares: JSON records with `id`, `email`,
/// `subject` and `body`.
const TICKET: &str = r#"
ticket:
  category: Support
  contact: { email: "{{ email }}" }
  subject: "{{ subject }}"
  text: "{{ body }}"
"#;

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn ticket_json(id: u32) -> String {
    format!(
        r#"{{"id": {id}, "email": "c{id}@example.com", "subject": "Ticket {id}", "body": "Body {id}"}}"#
    )
}

/// `dry-run` of `source` (the mapping's `source:` block, plus `extra` YAML after the
/// ticket) on the folder `export`, with the report in `dir/report`.
fn dry_run(dir: &Path, source: &str, extra: &str, export: &Path) -> (Outcome, serde_json::Value) {
    let mapping = write(dir, "mapping.yaml", &format!("{source}{TICKET}{extra}"));
    let report = dir.join("report");
    let args: [&std::ffi::OsStr; 9] = [
        "dry-run".as_ref(),
        "--mapping".as_ref(),
        mapping.as_os_str(),
        "--schema".as_ref(),
        "samples/happyfox-schema.json".as_ref(),
        "--input".as_ref(),
        export.as_os_str(),
        "--report".as_ref(),
        report.as_os_str(),
    ];
    let r = Hfmigrate::new(args).run();
    let json = std::fs::read_to_string(report.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    (r, json)
}

/// The source ids of `payloads.ndjson`, in the order the dry run read them.
fn source_ids(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("report/payloads.ndjson")).unwrap();
    text.lines()
        .flat_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["source_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn counts_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|l| l.starts_with("records:"))
        .unwrap_or_default()
}

/// Item 1: `**` finds ticket files in sub-folders, read in path order.
#[test]
fn double_star_glob_reads_tickets_in_sub_folders_in_path_order() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    write(
        &export,
        "2024/02/tickets-1.json",
        &format!(r#"{{"tickets": [{}]}}"#, ticket_json(3)),
    );
    write(
        &export,
        "2024/01/tickets-1.json",
        &format!(r#"{{"tickets": [{}, {}]}}"#, ticket_json(1), ticket_json(2)),
    );
    write(&export, "notes/readme.txt", "not a ticket");
    let source = r#"
source:
  tickets: { file: "**/{tickets,issues}*.json", records: tickets }
  id: "{{ id }}"
"#;
    let (r, _) = dry_run(dir.path(), source, "", &export);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        counts_line(&r.stdout).starts_with("records: 3 read, 3 valid"),
        "{}",
        r.stdout
    );
    assert_eq!(source_ids(dir.path()), ["1", "2", "3"]);
    // No match: the message names the folder and lists what it holds, sub-folders too.
    let source = r#"
source:
  tickets: { file: "**/conversations*.json", records: tickets }
  id: "{{ id }}"
"#;
    let (r, _) = dry_run(dir.path(), source, "", &export);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("matches `**/conversations*.json`")
            && r.stderr.contains(
                "the folder holds: 2024/01/tickets-1.json, 2024/02/tickets-1.json, notes/readme.txt"
            ),
        "{}",
        r.stderr
    );
}

/// ServiceNow-like: incidents with their journal split over several files.
const JOURNAL_SOURCE: &str = r#"
source:
  tickets: { file: incidents.json, records: records }
  id: "{{ id }}"
  side:
    journal:
      file: "sys_journal_field*.json"
      records: records
      key: element_id
      join: "{{ id }}"
      order_by: created_at
"#;

const JOURNAL_CONVERSATION: &str = r#"
conversation:
  entries: "{{ journal }}"
  kind: private_note
  author: alice@acme.example
  text: "{{ value }}"
"#;

/// Item 2: a side file's `file:` glob reads every match into the one index, in path
/// order, and each entry keeps its own file:line.
#[test]
fn side_file_glob_reads_every_match_into_one_index() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    write(
        &export,
        "incidents.json",
        &format!(r#"{{"records": [{}, {}]}}"#, ticket_json(1), ticket_json(2)),
    );
    write(
        &export,
        "sys_journal_field_2.json",
        "{\"records\": [\n{\"element_id\": 1, \"value\": \"second\", \"created_at\": \"2024-01-02\"},\n{\"element_id\": 9, \"value\": \"orphan\", \"created_at\": \"2024-01-03\"}\n]}",
    );
    write(
        &export,
        "sys_journal_field_1.json",
        "{\"records\": [\n{\"element_id\": 1, \"value\": \"first\", \"created_at\": \"2024-01-01\"},\n{\"element_id\": 2, \"value\": \"other\", \"created_at\": \"2024-01-01\"}\n]}",
    );
    let (r, report) = dry_run(dir.path(), JOURNAL_SOURCE, JOURNAL_CONVERSATION, &export);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let side = &report["side_files"][0];
    assert_eq!(side["entries"], 4, "{side}");
    assert_eq!(side["keys"], 3, "{side}");
    assert_eq!(side["unjoined"], 1, "{side}");
    assert!(
        side["path"]
            .as_str()
            .unwrap()
            .ends_with("sys_journal_field*.json (2 files)"),
        "{side}"
    );
    // The orphan is located in its own file, at its own line.
    assert!(
        r.stdout.contains("sys_journal_field_2.json:3"),
        "{}",
        r.stdout
    );
    // A required glob that matches nothing names the pattern and the folder.
    std::fs::remove_file(export.join("sys_journal_field_1.json")).unwrap();
    std::fs::remove_file(export.join("sys_journal_field_2.json")).unwrap();
    let (r, _) = dry_run(dir.path(), JOURNAL_SOURCE, JOURNAL_CONVERSATION, &export);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "no file in {} matches `sys_journal_field*.json`; the folder holds: incidents.json",
            export.display()
        )) && r
            .stderr
            .contains("pass --side journal=PATH, or mark it `optional: true`"),
        "{}",
        r.stderr
    );
    // An optional one is absent: every lookup finds nothing.
    let optional = JOURNAL_SOURCE.replace(
        "order_by: created_at",
        "order_by: created_at\n      optional: true",
    );
    let (r, report) = dry_run(dir.path(), &optional, JOURNAL_CONVERSATION, &export);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(report["side_files"][0]["path"].is_null(), "{report}");
}

/// Item 3: `records: .` with a glob over a folder: each file is one record located at the
/// file, for tickets and for a side file alike; a broken file costs its record only.
#[test]
fn one_record_per_file_with_records_dot() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    write(&export, "tickets/2.json", &ticket_json(2));
    write(&export, "tickets/1.json", &format!("\n{}", ticket_json(1)));
    write(&export, "tickets/3.json", "{\"id\": 3, \"subject\": ");
    write(&export, "tickets/4.json", "[{\"id\": 4}]");
    write(
        &export,
        "conversations/a.json",
        "{\"ticket_id\": 1, \"body\": \"reply to one\"}",
    );
    write(
        &export,
        "conversations/b.json",
        "{\"ticket_id\": 2, \"body\": \"reply to two\"}",
    );
    let source = r#"
source:
  tickets: { file: "tickets/*.json", records: . }
  id: "{{ id }}"
  side:
    conversations:
      file: "conversations/*.json"
      records: .
      key: ticket_id
      join: "{{ id }}"
"#;
    let conversation = r#"
conversation:
  entries: "{{ conversations }}"
  kind: private_note
  author: alice@acme.example
  text: "{{ body }}"
"#;
    let (r, report) = dry_run(dir.path(), source, conversation, &export);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        counts_line(&r.stdout).starts_with("records: 4 read, 2 valid"),
        "{}",
        r.stdout
    );
    assert_eq!(source_ids(dir.path()), ["1", "2"]);
    let side = &report["side_files"][0];
    assert_eq!(
        (side["entries"].as_u64(), side["unjoined"].as_u64()),
        (Some(2), Some(0)),
        "{side}"
    );
    let out = format!(
        "{}{}",
        r.stdout,
        std::fs::read_to_string(dir.path().join("report/report.json")).unwrap()
    );
    assert!(out.contains("3.json:1"), "{out}");
    assert!(
        out.contains("the file is one record (`records: .`), so it is skipped"),
        "{out}"
    );
    assert!(out.contains("4.json:1"), "{out}");
    assert!(
        out.contains("the document is a list, not one record"),
        "{out}"
    );
}

/// JSM-like: comments carry their issue only in their `self` URL.
const JSM_SOURCE: &str = r#"
source:
  tickets: { file: issues.json, records: issues }
  id: "{{ id }}"
  side:
    comments:
      file: comments.json
      records: comments
      key: "{{ self | regex_replace('.*/issue/([^/]+)/.*', '$1') }}"
      join: "{{ id }}"
"#;

/// Item 4: a template `key:` is evaluated on each side record and indexed by its value;
/// a record it fails on or renders empty for is a located, counted problem.
#[test]
fn computed_join_keys_index_by_the_rendered_template() {
    // `\1`, Python's and sed's spelling of `$1`, keys the entries the same.
    let sed_source = JSM_SOURCE.replace("'$1'", "'\\\\1'");
    assert!(sed_source.contains(r"'\\1'"), "{sed_source}");
    for source in [JSM_SOURCE, sed_source.as_str()] {
        computed_join_keys_with(source);
    }
}

fn computed_join_keys_with(source: &str) {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    write(
        &export,
        "issues.json",
        &format!(
            r#"{{"issues": [{}, {}]}}"#,
            ticket_json(10001),
            ticket_json(10002)
        ),
    );
    write(
        &export,
        "comments.json",
        concat!(
            "{\"comments\": [\n",
            "{\"self\": \"https://acme.atlassian.net/rest/api/2/issue/10001/comment/1\", \"body\": \"one\"},\n",
            "{\"self\": \"https://acme.atlassian.net/rest/api/2/issue/10002/comment/2\", \"body\": \"two\"},\n",
            "{\"self\": \"https://acme.atlassian.net/rest/api/2/issue/10001/comment/3\", \"body\": \"three\"},\n",
            "{\"body\": \"no self\"}\n",
            "]}"
        ),
    );
    let conversation = r#"
conversation:
  entries: "{{ comments }}"
  kind: private_note
  author: alice@acme.example
  text: "{{ body }}"
"#;
    let (r, report) = dry_run(dir.path(), source, conversation, &export);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let side = &report["side_files"][0];
    assert_eq!(side["entries"], 3, "{side}");
    assert_eq!(side["keys"], 2, "{side}");
    assert_eq!(side["unreadable"], 1, "{side}");
    assert_eq!(side["unjoined"], 0, "{side}");
    assert!(r.stdout.contains("comments.json:5"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("renders empty for this record, so the entry is left out"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("3 private notes, 0 contact replies on 2 tickets"),
        "{}",
        r.stdout
    );
    // A template that gives no key for any record is the mapping's error.
    let typo = JSM_SOURCE.replace("self |", "selff |");
    let (r, _) = dry_run(dir.path(), &typo, conversation, &export);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("gives no key for any of the 4 records")
            && r.stderr
                .contains("the first record's fields are: self, body"),
        "{}",
        r.stderr
    );
}

/// A page of a side-file glob changed after the import is a newer export: the delta
/// run reads it again and posts exactly the entry it adds (every matched file is part of
/// the journal's fingerprint, not only a file of the side file's literal name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_page_of_a_side_file_glob_is_a_delta() {
    let sb = crate::support::start_sandbox(crate::support::unlimited).await;
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    write(
        &export,
        "incidents.json",
        &format!(r#"{{"records": [{}]}}"#, ticket_json(1)),
    );
    let page = |entries: &str| format!("{{\"records\": [{entries}]}}");
    let first = r#"{"element_id": 1, "value": "first", "created_at": "2024-01-01", "sys_id": "a"}"#;
    let second =
        r#"{"element_id": 1, "value": "second", "created_at": "2024-01-02", "sys_id": "b"}"#;
    write(&export, "sys_journal_field_1.json", &page(first));
    write(&export, "sys_journal_field_2.json", &page(second));
    let conversation = JOURNAL_CONVERSATION.replace(
        "  kind: private_note\n",
        "  id: \"{{ sys_id }}\"\n  kind: private_note\n",
    );
    let marker = "marker: { tag: \"sn-{{ id }}\" }\n";
    let mapping = write(
        dir.path(),
        "mapping.yaml",
        &format!("{JOURNAL_SOURCE}{TICKET}{marker}{conversation}"),
    );
    let journal = dir.path().join("run.db");
    let run = crate::import::Run::new(&sb.url, &journal, mapping.to_str().unwrap(), &export);
    let o = run.output().await;
    assert_eq!(o.status.code(), Some(0), "{}", crate::import::text(&o));
    let notes = |sb: &hfmigrate::sandbox::RunningSandbox| {
        sb.stats().requests["POST ticket/{n}/staff_pvtnote/"]
            .values()
            .sum::<u64>()
    };
    assert_eq!(notes(&sb), 2);
    let third = r#"{"element_id": 1, "value": "third", "created_at": "2024-01-03", "sys_id": "c"}"#;
    write(
        &export,
        "sys_journal_field_2.json",
        &page(&format!("{second}, {third}")),
    );
    let o = run.output().await;
    assert_eq!(o.status.code(), Some(0), "{}", crate::import::text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("1 new entry"), "{out}");
    assert_eq!(notes(&sb), 3);
}

/// A side file named like a record field hides that field in templates (side files win):
/// the coverage says so instead of counting the field as mapped because its name occurs.
#[test]
fn a_side_file_named_like_a_record_field_is_named_as_hiding_it() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    write(
        &export,
        "tickets.json",
        r#"[{"id": 1, "email": "c1@example.com", "subject": "S", "body": "B", "people": "Ana, Bo"}]"#,
    );
    write(&export, "people.json", r#"[{"id": "1", "name": "Ana"}]"#);
    let source = r#"
source:
  tickets: { file: tickets.json }
  id: "{{ id }}"
  side:
    people: { file: people.json, key: id }
"#;
    let extra = "  tags: \"{{ [people['1'].name] }}\"\n";
    let (r, report) = dry_run(dir.path(), source, extra, &export);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("  not mapped: people (1 records): the side file \"people\" of the same name hides it in templates; rename the side file to read it"),
        "{}",
        r.stdout
    );
    let field = report["coverage"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "people")
        .cloned()
        .unwrap_or_default();
    assert_eq!(field["mapped"], false, "{field}");
    assert_eq!(field["hidden_by_side_file"], "people", "{field}");
}
