//! `check` and `dry-run` through the built binary: shipped mappings on the bundled samples
//! and on real payloads, every kind of bad input with its message and position, and the
//! report files.

use std::path::{Path, PathBuf};

use crate::support::{Hfmigrate, Outcome, root};

/// `hfmigrate ARGS` from the repository with no HappyFox variables set.
fn hfmigrate(args: &[&str]) -> Outcome {
    Hfmigrate::new(args).run()
}

/// Replaces a temp dir path so snapshots are stable.
fn redact(text: &str, dir: &Path) -> String {
    text.replace(&dir.display().to_string(), "[TMP]")
}

fn dry_run(mapping: &str, inputs: &[&str], extra: &[&str]) -> Outcome {
    let mut args = vec![
        "dry-run",
        "--mapping",
        mapping,
        "--schema",
        "samples/happyfox-schema.json",
    ];
    args.push("--input");
    args.extend_from_slice(inputs);
    args.extend_from_slice(extra);
    hfmigrate(&args)
}

#[test]
fn shipped_mappings_check_clean_against_the_sample_schema() {
    for name in ["zendesk", "freshdesk", "generic-csv"] {
        let m = format!("mappings/{name}.yaml");
        let r = hfmigrate(&[
            "check",
            "--mapping",
            &m,
            "--schema",
            "samples/happyfox-schema.json",
        ]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        assert!(r.stdout.contains("mapping is valid"), "{}", r.stdout);
    }
}

#[test]
fn zendesk_sample() {
    let r = dry_run("mappings/zendesk.yaml", &["samples/zendesk/"], &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn freshdesk_sample() {
    let r = dry_run("mappings/freshdesk.yaml", &["samples/freshdesk/"], &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn generic_csv_sample() {
    let r = dry_run("mappings/generic-csv.yaml", &["samples/generic-csv/"], &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    insta::assert_snapshot!(r.stdout);
}

/// The real payloads recorded by other projects live outside the repository; CI always
/// has them (and requires them), a fresh clone does not.
fn real(path: &str) -> Option<String> {
    hfmigrate::test_fixtures::real_fixture(path).map(|p| p.display().to_string())
}

fn counts_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|l| l.starts_with("records:"))
        .unwrap_or_default()
}

#[test]
fn zendesk_mapping_on_real_payloads() {
    let (Some(tickets), Some(audits), Some(incremental)) = (
        real("zendesk/api_tickets_list.json"),
        real("zendesk/api_ticket_audits_list.json"),
        real("zendesk/incremental_tickets_cursor_based.json"),
    ) else {
        return;
    };
    let side = format!("comments={audits}");
    let r = dry_run("mappings/zendesk.yaml", &[&tickets], &["--side", &side]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        counts_line(&r.stdout),
        "records: 91 read, 91 valid, 0 rejected, 0 skipped (91 valid with warnings)"
    );
    assert!(
        r.stdout
            .contains("side file comments: 88 entries for 86 keys"),
        "{}",
        r.stdout
    );
    let r = dry_run("mappings/zendesk.yaml", &[&incremental], &["--side", &side]);
    assert_eq!(
        counts_line(&r.stdout),
        "records: 87 read, 86 valid, 0 rejected, 1 skipped (86 valid with warnings)",
        "{}",
        r.stdout
    );
}

#[test]
fn freshdesk_mapping_on_real_payloads() {
    let (Some(tickets), Some(contacts), Some(agents), Some(conv)) = (
        real("freshdesk/api_v2_all_tickets.json"),
        real("freshdesk/api_v2_contacts.json"),
        real("freshdesk/api_v2_agents.json"),
        real("freshdesk/api_v2_conversations.json"),
    ) else {
        return;
    };
    let sides = [
        format!("contacts={contacts}"),
        format!("agents={agents}"),
        format!("conversations={conv}"),
    ];
    let r = dry_run(
        "mappings/freshdesk.yaml",
        &[&tickets],
        &[
            "--side", &sides[0], "--side", &sides[1], "--side", &sides[2],
        ],
    );
    // The legacy list's requester is not in the recorded contacts file: no email, so the
    // ticket is rejected, and the report says why.
    assert_eq!(
        counts_line(&r.stdout),
        "records: 1 read, 0 valid, 1 rejected, 0 skipped (0 valid with warnings)",
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("the contact email is empty"),
        "{}",
        r.stdout
    );
}

#[test]
fn report_files_are_written_and_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let r = dry_run(
        "mappings/generic-csv.yaml",
        &["samples/generic-csv/"],
        &["--report", &d],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json["counts"]["read"], 30);
    assert_eq!(json["counts"]["rejected"], 9);
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains("duplicate source id") && !html.contains("<script")
    );
    // rejects.csv: one row per rejected record, original columns kept, formulas neutralised.
    let mut rdr = csv::Reader::from_path(dir.path().join("rejects.csv")).unwrap();
    let headers = rdr.headers().unwrap().clone();
    assert_eq!(&headers[0], "hfmigrate_location");
    assert!(headers.iter().any(|h| h == "Requester Email"));
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 9);
    let subj = headers.iter().position(|h| h == "Subject").unwrap();
    let formula = rows
        .iter()
        .find(|r| r[1] == *"3011")
        .expect("3011 rejected");
    assert!(formula[subj].starts_with("'=SUM("), "{}", &formula[subj]);
    assert!(
        formula[2].contains("cannot read \"31.02.2024 09:15\""),
        "{}",
        &formula[2]
    );
    // payloads.ndjson: batches of at most 100, exactly the valid records.
    let text = std::fs::read_to_string(dir.path().join("payloads.ndjson")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    let body = lines[0]["body"].as_array().unwrap();
    assert_eq!(body.len(), 21);
    let first = &body[0];
    insta::assert_json_snapshot!("generic_csv_first_payload", {
        let mut v = first.clone();
        if let Some(html) = v.get_mut("html") {
            *html = serde_json::Value::from(format!(
                "[{} bytes of HTML]",
                html.as_str().unwrap_or_default().len()
            ));
        }
        v
    });
}

/// A report file that cannot be written (here a full device) stops the run with that
/// file's path, not the input's, and a non-zero exit.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_names_the_report_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    for name in ["payloads.ndjson", "rejects.csv"] {
        let _ = std::fs::remove_file(dir.path().join("payloads.ndjson"));
        let _ = std::fs::remove_file(dir.path().join("rejects.csv"));
        std::os::unix::fs::symlink("/dev/full", dir.path().join(name)).unwrap();
        let r = dry_run(
            "mappings/generic-csv.yaml",
            &["samples/generic-csv/"],
            &["--report", &d],
        );
        let stderr = redact(&r.stderr, dir.path());
        assert_ne!(r.code, 0, "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot write the report to [TMP]/{name}: "))
                && stderr.contains("No space left on device"),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn mapping_errors_are_all_shown_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("bad.yaml");
    std::fs::write(
        &m,
        r#"source:
  tickets: { file: tickets.csv }
  id: "{{ row['Ticket ID'] }}"
ticket:
  category: Internal IT
  contact:
    email: "{{ row['Requester Email'] | lowercase }}"
  subject: "{{ row['Subject'] "
  html: "{{ row['Description'] }}"
  priority: { value: "{{ row['Priority'] }}", map: { Urgent: Critcal } }
  custom_fields:
    Prodcut: "{{ row['Product'] }}"
    Region: { value: "{{ row['Region'] }}", map: { eu: Europe } }
final:
  status: Done
"#,
    )
    .unwrap();
    let r = hfmigrate(&[
        "check",
        "--mapping",
        m.to_str().unwrap(),
        "--schema",
        "samples/happyfox-schema.json",
    ]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(redact(&r.stderr, dir.path()));
}

#[test]
fn unknown_yaml_key_has_position_and_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("typo.yaml");
    std::fs::write(&m, "source:\n  tickets: { file: t.csv }\n  id: \"{{ id }}\"\nticket:\n  category: Support\n  contact: { email: x }\n  subjet: hi\n  html: x\n").unwrap();
    let r = hfmigrate(&["check", "--mapping", m.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(redact(&r.stderr, dir.path()));
}

#[test]
fn malformed_yaml_and_duplicate_keys() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("broken.yaml");
    std::fs::write(&m, "source:\n  tickets: { file: t.csv\n  id: x\n").unwrap();
    let r = hfmigrate(&["check", "--mapping", m.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains(&format!("{}:", m.display())),
        "{}",
        r.stderr
    );
    let d = dir.path().join("dup.yaml");
    std::fs::write(&d, "source:\n  tickets: { file: t.csv }\n  id: x\n  id: y\nticket:\n  category: Support\n  contact: { email: x }\n  subject: s\n  html: x\n").unwrap();
    let r = hfmigrate(&["check", "--mapping", d.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(redact(&r.stderr, dir.path()));
}

#[test]
fn unknown_csv_column_is_a_mapping_error_with_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.yaml");
    let text = std::fs::read_to_string(root().join("mappings/generic-csv.yaml"))
        .unwrap()
        .replace("row['Requester Email']", "row['Requester Mail']");
    std::fs::write(&m, text).unwrap();
    let r = dry_run(m.to_str().unwrap(), &["samples/generic-csv/"], &[]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr.contains("unknown column `Requester Mail`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("did you mean `Requester Email`?"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("{}:24:12", m.display())),
        "{}",
        r.stderr
    );
}

fn csv_export(dir: &Path, tickets: &[u8]) -> PathBuf {
    let folder = dir.join("export");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("tickets.csv"), tickets).unwrap();
    folder
}

const HEADER: &str = "Ticket ID,Subject,Description,Requester Name,Requester Email,Status,Priority,Category,Assignee,Tags,Created At,Product,Region,Order Value,Purchase Date,Affected Modules\n";

#[test]
fn every_record_problem_kind_is_reported_with_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(300);
    let rows = [
        "1,Fine,Body,Ann,ann@example.com,Open,Normal,Support,alice@acme.example,a;b,2024-03-05 14:22:10,Widget Pro,EMEA,,,API".to_string(),
        "2,No email,Body,Bob,,Open,Normal,Support,,,2024-03-05 14:22:10,,,,,".into(),
        "3,Bad email,Body,Cy,cy@@example,Open,Normal,Support,,,2024-03-05 14:22:10,,,,,".into(),
        "4,Bad category,Body,Di,di@example.com,Open,Normal,Suport,,,2024-03-05 14:22:10,,,,,".into(),
        "5,Private,Body,Ed,ed@example.com,Open,Normal,Internal IT,,,2024-03-05 14:22:10,,,,,".into(),
        "6,Bad choice,Body,Fa,fa@example.com,Open,Normal,Support,,,2024-03-05 14:22:10,Widget Max,,,,".into(),
        "7,Wrong category,Body,Gu,gu@example.com,Open,Normal,Support,,,2024-03-05 14:22:10,,,12.5,,".into(),
        "8,Bad date,Body,Ha,ha@example.com,Open,Normal,Billing,,,yesterday,,,,,".into(),
        "9,Bad number,Body,Io,io@example.com,Open,Normal,Billing,,,2024-03-05 14:22:10,,,lots,,".into(),
        "1,Duplicate,Body,Jo,jo@example.com,Open,Normal,Support,,,2024-03-05 14:22:10,,,,,".into(),
        "11,,Body,Ka,ka@example.com,Open,Normal,Support,,,2024-03-05 14:22:10,,,,,".into(),
        "12,Empty body,,Li,li@example.com,Open,Normal,Support,,,2024-03-05 14:22:10,,,,,".into(),
        format!("13,{long},Body,Mo,mo@example.com,Open,Normal,Support,,,2024-03-05 14:22:10,,,,,"),
        "14,Closed without summary,Body,Ni,ni@example.com,Solved,Normal,Support,,,2024-03-05 14:22:10,,,,,".into(),
        "15,Unknown agent,Body,Ol,ol@example.com,Open,Normal,Support,nobody@acme.example,,2024-03-05 14:22:10,,,,,".into(),
        "16,Too,many,fields,here,Open,Normal,Support,,,2024-03-05 14:22:10,,,,,,,".into(),
    ];
    let mut csv = HEADER.to_string();
    for r in &rows {
        csv.push_str(r);
        csv.push('\n');
    }
    let folder = csv_export(dir.path(), csv.as_bytes());
    let r = dry_run(
        "mappings/generic-csv.yaml",
        &[folder.to_str().unwrap()],
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    insta::assert_snapshot!(redact(&r.stdout, dir.path()));
}

#[test]
fn windows_1252_and_invalid_utf8_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend_from_slice(
        b"1,Caf\xe9,Body,Ann,ann@example.com,Open,Normal,Support,,,2024-03-05 14:22:10,,,,,\n",
    );
    bytes.extend_from_slice(
        b"2,Fine,Body,Bob,bob@example.com,Open,Normal,Support,,,2024-03-05 14:22:10,,,,,\n",
    );
    let folder = csv_export(dir.path(), &bytes);
    // As UTF-8 the first row is unreadable and the second still goes through.
    let r = dry_run(
        "mappings/generic-csv.yaml",
        &[folder.to_str().unwrap()],
        &[],
    );
    assert_eq!(r.code, 3);
    assert!(
        r.stdout.contains("records: 2 read, 1 valid, 1 rejected"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("tickets.csv:2"), "{}", r.stdout);
    // Declared as Windows-1252 both rows are fine and the accent survives.
    let m = dir.path().join("cp1252.yaml");
    let text = std::fs::read_to_string(root().join("mappings/generic-csv.yaml"))
        .unwrap()
        .replace(
            "tickets: { file: tickets.csv }",
            "tickets: { file: tickets.csv, encoding: windows-1252 }",
        );
    std::fs::write(&m, text).unwrap();
    let rep = dir.path().join("rep");
    let r = dry_run(
        m.to_str().unwrap(),
        &[folder.to_str().unwrap()],
        &["--report", rep.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let payloads = std::fs::read_to_string(rep.join("payloads.ndjson")).unwrap();
    assert!(payloads.contains("\"subject\":\"Café\""), "{payloads}");
}

#[test]
fn missing_input_and_truncated_json() {
    let r = dry_run("mappings/zendesk.yaml", &["does/not/exist"], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("does/not/exist"), "{}", r.stderr);

    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("zd");
    std::fs::create_dir_all(&folder).unwrap();
    let full = std::fs::read_to_string(root().join("samples/zendesk/tickets.json")).unwrap();
    // Cut the document in the middle of the third ticket.
    let cut = full
        .match_indices("\"url\"")
        .nth(2)
        .map(|(i, _)| i + 40)
        .unwrap();
    std::fs::write(folder.join("tickets.json"), &full[..cut]).unwrap();
    let r = dry_run("mappings/zendesk.yaml", &[folder.to_str().unwrap()], &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stdout.contains("records: 3 read, 2 valid, 1 rejected"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("unreadable record"), "{}", r.stdout);
}

#[test]
fn dry_run_without_a_schema_says_how_to_get_one() {
    let r = hfmigrate(&[
        "dry-run",
        "--mapping",
        "mappings/zendesk.yaml",
        "--input",
        "samples/zendesk/",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("schema pull"), "{}", r.stderr);
}

#[test]
fn dry_run_with_the_in_process_sandbox_pulls_the_schema_over_http() {
    let r = hfmigrate(&[
        "dry-run",
        "--mapping",
        "mappings/freshdesk.yaml",
        "--input",
        "samples/freshdesk/",
        "--sandbox",
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stdout.contains("pulled from an in-process sandbox"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("records: 16 read, 12 valid, 4 rejected"),
        "{}",
        r.stdout
    );
}

#[test]
fn shipped_json_schema_is_current() {
    let shipped = std::fs::read_to_string(root().join("mappings/mapping.schema.json")).unwrap();
    assert!(
        shipped == hfmigrate::mapping::json_schema(),
        "mappings/mapping.schema.json is stale: run `cargo run -- mapping-schema > mappings/mapping.schema.json`"
    );
}

mod no_panic {
    //! Whatever a record holds, building its ticket plan never panics: every shipped
    //! mapping over arbitrary JSON records (strings, numbers, nesting, odd Unicode).

    use std::sync::Arc;

    use hfmigrate::mapping::template::Sides;
    use hfmigrate::payload::{Builder, RecordOutcome};
    use hfmigrate::schema::Schema;
    use hfmigrate::source::{Location, SourceRecord};
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null)),
            ".{0,40}".prop_map(Value::from),
            "[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:]{0,8}Z?".prop_map(Value::from),
            "[a-z.]{0,8}@[a-z.]{0,8}".prop_map(Value::from),
        ]
    }

    fn json() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-z_ ]{1,10}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Field names the shipped mappings read, so generated records hit real code paths.
    const KEYS: &[&str] = &[
        "id",
        "status",
        "subject",
        "description",
        "priority",
        "type",
        "group_id",
        "tags",
        "custom_fields",
        "created_at",
        "due_at",
        "due_by",
        "requester_id",
        "assignee_id",
        "requester",
        "url",
        "Ticket ID",
        "Subject",
        "Description",
        "Requester Email",
        "Requester Name",
        "Category",
        "Status",
        "Priority",
        "Created At",
        "Tags",
        "Product",
        "Order Value",
        "Purchase Date",
        "Affected Modules",
        "deleted",
        "spam",
    ];

    fn record() -> impl Strategy<Value = Value> {
        prop::collection::vec((prop::sample::select(KEYS), json()), 0..12).prop_map(|pairs| {
            let mut m = Map::new();
            for (k, v) in pairs {
                m.insert(k.to_string(), v);
            }
            Value::Object(m)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
        #[test]
        fn shipped_mappings_never_panic(value in record()) {
            let root = super::root();
            let schema = Arc::new(Schema::load(&root.join("samples/happyfox-schema.json")).unwrap());
            for name in ["zendesk", "freshdesk", "generic-csv"] {
                let plan = hfmigrate::mapping::load(&root.join(format!("mappings/{name}.yaml")), Some(schema.clone())).unwrap();
                let builder = Builder::new(&plan, schema.clone(), Arc::new(Sides::default()));
                let rec = SourceRecord {
                    location: Location { file: Arc::from(std::path::Path::new("x.json")), line: Some(1), index: 0 },
                    value: hfmigrate::source::RecordValue::Json(value.clone()),
                    warning: None,
                };
                match builder.build(&rec) {
                    RecordOutcome::Valid { plan, .. } => prop_assert!(!plan.source_id.is_empty()),
                    RecordOutcome::Rejected { problems, .. } => prop_assert!(problems.iter().any(|p| p.is_error())),
                    RecordOutcome::Skipped { .. } => {}
                }
            }
        }
    }
}

/// After `cargo install` no `samples/` folder is beside the binary: `--sandbox` serves the
/// account compiled into it, whatever the working directory.
#[test]
fn sandbox_runs_need_no_samples_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = root().join("mappings/zendesk.yaml");
    let input = root().join("samples/zendesk");
    let mut dry = Hfmigrate::new(["dry-run", "--sandbox", "--mapping"]).command();
    dry.arg(&mapping)
        .arg("--input")
        .arg(&input)
        .current_dir(dir.path());
    let o = Outcome::from(dry.output().unwrap());
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(
        o.stdout
            .contains("records: 25 read, 22 valid, 2 rejected, 1 skipped"),
        "{}",
        o.stdout
    );
    let mut import = Hfmigrate::new(["import", "--sandbox", "--yes", "--mapping"]).command();
    import
        .arg(&mapping)
        .arg("--input")
        .arg(&input)
        .args(["--journal", "run.db", "--post-per-min", "60000"])
        .current_dir(dir.path());
    let o = Outcome::from(import.output().unwrap());
    assert_eq!(o.code, 3, "{}\n{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("this run: 22 created"), "{}", o.stdout);
}

/// Two valid tickets with comments.csv beside them; returns the export folder.
fn export_with_comments(dir: &Path, comments: &str) -> PathBuf {
    let tickets = format!(
        "{HEADER}1,Fine,Body,Ann,ann@example.com,Open,Normal,Support,,,2024-03-05 14:22:10,,,,,\n2,Also fine,Body,Bob,bob@example.com,Open,Normal,Support,,,2024-03-05 14:22:10,,,,,\n"
    );
    let folder = csv_export(dir, tickets.as_bytes());
    std::fs::write(folder.join("comments.csv"), comments).unwrap();
    folder
}

const COMMENTS_HEADER: &str = "Ticket ID,Author Email,Author Name,Created At,Public,Body\n";

/// The generic mapping with the comments' `key` replaced.
fn generic_with_comment_key(dir: &Path, key: &str) -> PathBuf {
    let m = dir.join("mapping.yaml");
    let text = std::fs::read_to_string(root().join("mappings/generic-csv.yaml"))
        .unwrap()
        .replace("key: Ticket ID", &format!("key: {key}"));
    std::fs::write(&m, text).unwrap();
    m
}

/// Issue 9.1: a `key` no record has (a typo) lost every conversation with exit 0.
#[test]
fn side_key_that_no_record_has_is_a_mapping_error() {
    let dir = tempfile::tempdir().unwrap();
    let folder = export_with_comments(
        dir.path(),
        &format!("{COMMENTS_HEADER}1,alice@acme.example,Alice,2024-0305 15:00:00,true,Hi\n"),
    );
    let m = generic_with_comment_key(dir.path(), "TicketId");
    let r = dry_run(m.to_str().unwrap(), &[folder.to_str().unwrap()], &[]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("none of the 1 records") && r.stderr.contains("`key: TicketId`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("did you mean `Ticket ID`?"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("mapping.yaml:11"), "{}", r.stderr);
}

/// Issue 9.1, 12.4: a template in `key` is computed per record, so `check` accepts it.
#[test]
fn template_in_side_key_is_accepted_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let m = generic_with_comment_key(dir.path(), "\"{{ row['Ticket ID'] }}\"");
    let r = hfmigrate(&["check", "--mapping", m.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

/// Issues 9.1, 9.5, 9.6: side entries without a key or joining no exported ticket are
/// problems with their location, and the run exits 3.
#[test]
fn side_entries_left_out_or_unjoined_are_listed_with_locations() {
    let dir = tempfile::tempdir().unwrap();
    let folder = export_with_comments(
        dir.path(),
        &format!(
            "{COMMENTS_HEADER}1,alice@acme.example,Alice,2024-03-05 15:00:00,true,Hi\n,alice@acme.example,Alice,2024-03-05 15:00:00,true,No ticket id\n77,alice@acme.example,Alice,2024-03-05 15:00:00,true,Ticket not exported\n77,alice@acme.example,Alice,2024-03-05 16:00:00,true,Again\n"
        ),
    );
    let rep = dir.path().join("rep");
    let r = dry_run(
        "mappings/generic-csv.yaml",
        &[folder.to_str().unwrap()],
        &["--report", rep.to_str().unwrap()],
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("records: 2 read, 2 valid, 0 rejected"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("comments.csv:3"), "{}", r.stdout);
    assert!(r.stdout.contains("no key at `Ticket ID`"), "{}", r.stdout);
    assert!(r.stdout.contains("comments.csv:4"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("key \"77\" matches no ticket of the export"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("2 of them join no ticket"),
        "{}",
        r.stdout
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rep.join("report.json")).unwrap()).unwrap();
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"unreadable_side_entry"), "{kinds:?}");
    assert!(kinds.contains(&"unjoined_side_entry"), "{kinds:?}");
    assert_eq!(report["side_files"][0]["unjoined"], 2);
}

/// Runs `hfmigrate ARGS` and fails the test if it has not ended within `limit`.
fn run_within(args: &[&str], limit: std::time::Duration) -> Outcome {
    let mut child = Hfmigrate::new(args)
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap().into();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hfmigrate {args:?} did not end within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Issue 11.6: a template that never finishes hung the dry run; now it is that record's
/// problem and the run ends.
#[test]
fn template_that_never_finishes_is_a_record_problem() {
    let dir = tempfile::tempdir().unwrap();
    let folder = export_with_comments(dir.path(), COMMENTS_HEADER);
    let m = dir.path().join("mapping.yaml");
    let text = std::fs::read_to_string(root().join("mappings/generic-csv.yaml"))
        .unwrap()
        .replace(
            "subject: \"{{ row['Subject'] }}\"",
            "subject: \"{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}{{ row['Subject'] }}\"",
        );
    assert!(text.contains("range(100000)"));
    std::fs::write(&m, text).unwrap();
    let r = run_within(
        &[
            "dry-run",
            "--mapping",
            m.to_str().unwrap(),
            "--schema",
            "samples/happyfox-schema.json",
            "--input",
            folder.to_str().unwrap(),
        ],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("records: 2 read, 0 valid, 2 rejected"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("did not finish within"), "{}", r.stdout);
}

/// Issue 9.4: without users.json an agent's public comment is posted as a contact reply;
/// the dry run now warns that the kind was decided without the file.
#[test]
fn conversation_kind_without_its_lookup_file_is_warned() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("zd");
    std::fs::create_dir_all(&folder).unwrap();
    for f in ["tickets.json", "ticket_audits.json"] {
        std::fs::copy(root().join("samples/zendesk").join(f), folder.join(f)).unwrap();
    }
    let r = dry_run("mappings/zendesk.yaml", &[folder.to_str().unwrap()], &[]);
    assert!(
        r.stdout.contains("side file users: not present"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("decided without an absent side file"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("was decided without side file `users`, which is absent"),
        "{}",
        r.stdout
    );
    // With the file there is no such warning.
    let r = dry_run("mappings/zendesk.yaml", &["samples/zendesk/"], &[]);
    assert!(!r.stdout.contains("decided without"), "{}", r.stdout);
}

/// Issue 11.4: one bad byte in a JSON export dropped every record after it and the
/// counts hid it. Now only the damaged ticket is lost, reported with its byte span.
#[test]
fn one_bad_byte_in_a_json_export_costs_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("zd");
    std::fs::create_dir_all(&folder).unwrap();
    let full = std::fs::read_to_string(root().join("samples/zendesk/tickets.json")).unwrap();
    let whole = dry_run("mappings/zendesk.yaml", &["samples/zendesk/"], &[]);
    let read = |stdout: &str| -> u64 {
        let line = counts_line(stdout);
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let total = read(&whole.stdout);
    // A stray byte in the third ticket's subject value.
    let damaged = full.replacen(
        "\"subject\": \"Charged twice",
        "\"subject\": x\"Charged twice",
        1,
    );
    assert_ne!(damaged, full);
    std::fs::write(folder.join("tickets.json"), &damaged).unwrap();
    let r = dry_run("mappings/zendesk.yaml", &[folder.to_str().unwrap()], &[]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert_eq!(read(&r.stdout), total, "{}", r.stdout);
    assert!(r.stdout.contains("damaged JSON in bytes "), "{}", r.stdout);
    assert!(r.stdout.contains("tickets.json:"), "{}", r.stdout);
}

/// Issue 11.5: after an unreadable row came first, rejects.csv lost the source columns of
/// every later reject and copied the raw line into all columns.
#[test]
fn rejects_keep_every_source_column_after_an_unreadable_row() {
    let dir = tempfile::tempdir().unwrap();
    let csv_text = format!(
        "{HEADER}1,Too,many,fields,here,Open,Normal,Support,,,2024-03-05 14:22:10,,,,,,,\n2,=HYPERLINK(\"x\"),Body,Bob,,Open,Normal,Support,,,2024-03-05 14:22:10,,,,,\n"
    );
    let folder = csv_export(dir.path(), csv_text.as_bytes());
    let rep = dir.path().join("rep");
    let r = dry_run(
        "mappings/generic-csv.yaml",
        &[folder.to_str().unwrap()],
        &["--report", rep.to_str().unwrap()],
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let mut rdr = csv::Reader::from_path(rep.join("rejects.csv")).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {headers:?}"))
    };
    // The unreadable row: its raw text in one column, the source columns empty.
    assert_eq!(
        &rows[0][col("hfmigrate_raw")],
        "1,Too,many,fields,here,Open,Normal,Support,,,2024-03-05 14:22:10,,,,,,,"
    );
    assert_eq!(&rows[0][col("Subject")], "");
    // The later reject keeps its own cells, formulas neutralised.
    assert_eq!(&rows[1][col("Ticket ID")], "2");
    assert_eq!(&rows[1][col("Subject")], "'=HYPERLINK(\"x\")");
    assert_eq!(&rows[1][col("Requester Name")], "Bob");
    assert_eq!(&rows[1][col("hfmigrate_raw")], "");
    // No spill file is left behind.
    let left: Vec<_> = std::fs::read_dir(&rep)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".rejects-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// JSON sources: a rejected record is one JSON cell, an unreadable one keeps its raw text.
#[test]
fn json_rejects_hold_the_record_as_one_cell() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("zd");
    std::fs::create_dir_all(&folder).unwrap();
    let full = std::fs::read_to_string(root().join("samples/zendesk/tickets.json")).unwrap();
    let damaged = full.replacen(
        "\"subject\": \"Charged twice",
        "\"subject\": x\"Charged twice",
        1,
    );
    std::fs::write(folder.join("tickets.json"), &damaged).unwrap();
    let rep = dir.path().join("rep");
    let r = dry_run(
        "mappings/zendesk.yaml",
        &[folder.to_str().unwrap()],
        &["--report", rep.to_str().unwrap()],
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let mut rdr = csv::Reader::from_path(rep.join("rejects.csv")).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let rec = headers
        .iter()
        .position(|h| h == "hfmigrate_record")
        .unwrap();
    let raw = headers.iter().position(|h| h == "hfmigrate_raw").unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let damaged_row = rows.iter().find(|r| r[2].contains("damaged JSON")).unwrap();
    assert!(
        damaged_row[raw].contains("x\"Charged twice"),
        "{damaged_row:?}"
    );
    let other = rows.iter().find(|r| !r[rec].is_empty()).unwrap();
    let value: serde_json::Value = serde_json::from_str(&other[rec]).unwrap();
    assert!(value.get("id").is_some(), "{value}");
}

/// Issue 11.9: an empty export exited 0 with no warning.
#[test]
fn empty_export_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let folder = csv_export(dir.path(), HEADER.as_bytes());
    let r = dry_run(
        "mappings/generic-csv.yaml",
        &[folder.to_str().unwrap()],
        &[],
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("the export holds no records"),
        "{}",
        r.stdout
    );
}

/// Issue 11.9: `--side comments=typo.csv` on an optional side file dropped every reply,
/// and `--side unknown=…` was accepted.
#[test]
fn side_overrides_must_name_a_side_file_and_an_existing_file() {
    let r = dry_run(
        "mappings/generic-csv.yaml",
        &["samples/generic-csv/"],
        &["--side", "comments=samples/generic-csv/comment.csv"],
    );
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("--side comments=samples/generic-csv/comment.csv names no file"),
        "{}",
        r.stderr
    );
    let r = dry_run(
        "mappings/generic-csv.yaml",
        &["samples/generic-csv/"],
        &["--side", "coments=samples/generic-csv/comments.csv"],
    );
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("names no side file of the mapping; did you mean `comments`?"),
        "{}",
        r.stderr
    );
}

/// Issue 11.10: a value map with `default` and no `map` mapped every value to the default.
#[test]
fn value_map_with_default_and_no_map_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("mapping.yaml");
    let text = std::fs::read_to_string(root().join("mappings/generic-csv.yaml"))
        .unwrap()
        .replace(
            "    map: { Low: Low, Normal: Medium, High: High, Urgent: Critical }\n",
            "",
        );
    std::fs::write(&m, text).unwrap();
    let r = hfmigrate(&["check", "--mapping", m.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("`ticket.priority` has a `default` but no `map`"),
        "{}",
        r.stderr
    );
}

/// Issue 9, "a loss report before anything is written": every source field with how many
/// records fill it and whether the mapping names it, and the values changed per kind.
#[test]
fn coverage_section_lists_fields_nothing_maps() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("fd");
    std::fs::create_dir_all(&folder).unwrap();
    for f in ["agents.json", "contacts.json", "conversations.json"] {
        std::fs::copy(root().join("samples/freshdesk").join(f), folder.join(f)).unwrap();
    }
    // A Freshdesk field the mapping does not name, filled in one ticket.
    let tickets = std::fs::read_to_string(root().join("samples/freshdesk/tickets.json")).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&tickets).unwrap();
    value[0]["fwd_emails"] = serde_json::json!(["boss@example.com"]);
    std::fs::write(folder.join("tickets.json"), value.to_string()).unwrap();
    let rep = dir.path().join("rep");
    let r = dry_run(
        "mappings/freshdesk.yaml",
        &[folder.to_str().unwrap()],
        &["--report", rep.to_str().unwrap()],
    );
    assert!(r.code == 0 || r.code == 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("not mapped: fwd_emails (1 records)"),
        "{}",
        r.stdout
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rep.join("report.json")).unwrap()).unwrap();
    insta::assert_json_snapshot!("freshdesk_coverage", report["coverage"]);
    let html = std::fs::read_to_string(rep.join("report.html")).unwrap();
    assert!(html.contains("<h2>Coverage</h2>") && html.contains("<code>fwd_emails</code>"));
}

/// Issue 11.10: NUL bytes passed into payloads; now they are removed and counted.
#[test]
fn nul_bytes_are_removed_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let tickets = format!(
        "{HEADER}1,Fine\0,Bo\0dy,Ann,ann@example.com,Open,Normal,Support,,,2024-03-05 14:22:10,,,,,\n"
    );
    let folder = csv_export(dir.path(), tickets.as_bytes());
    let rep = dir.path().join("rep");
    let r = dry_run(
        "mappings/generic-csv.yaml",
        &[folder.to_str().unwrap()],
        &["--report", rep.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("NUL bytes removed"), "{}", r.stdout);
    assert!(r.stdout.contains("2 NUL bytes removed"), "{}", r.stdout);
    let payloads = std::fs::read_to_string(rep.join("payloads.ndjson")).unwrap();
    assert!(!payloads.contains("\\u0000"), "{payloads}");
    assert!(payloads.contains("\"subject\":\"Fine\""), "{payloads}");
}

/// Issue 11.10: a duplicate JSON key silently kept the last value; now it is a warning
/// at the record's line.
#[test]
fn repeated_json_key_is_a_warning_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("zd");
    std::fs::create_dir_all(&folder).unwrap();
    let full = std::fs::read_to_string(root().join("samples/zendesk/tickets.json")).unwrap();
    let changed = full.replacen(
        "\"subject\": \"Charged twice",
        "\"subject\": \"First subject\", \"subject\": \"Charged twice",
        1,
    );
    assert_ne!(changed, full);
    std::fs::write(folder.join("tickets.json"), &changed).unwrap();
    let r = dry_run("mappings/zendesk.yaml", &[folder.to_str().unwrap()], &[]);
    assert!(
        r.stdout.contains("key repeated in a JSON object"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("key `subject` appears twice in one object of the record"),
        "{}",
        r.stdout
    );
}

/// Issue 12: a ticket or reply with no time in the export was posted with the time of
/// the import, and its header read "wrote on :", with no word in the report. (The header
/// itself is checked by the generic mapping's unit tests.)
#[test]
fn a_ticket_or_entry_without_a_time_is_warned_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let tickets = format!(
        "{HEADER}1,Undated,Body,Ann,ann@example.com,Open,Normal,Support,,,,,,,,\n2,Dated,Body,Bob,bob@example.com,Open,Normal,Support,,,2024-03-05 14:22:10,,,,,\n"
    );
    let folder = csv_export(dir.path(), tickets.as_bytes());
    std::fs::write(
        folder.join("comments.csv"),
        format!("{COMMENTS_HEADER}2,agent@example.com,Agent,,true,No time\n2,agent@example.com,Agent,2024-03-06 09:00:00,true,Timed\n"),
    )
    .unwrap();
    let report = dir.path().join("report");
    let r = dry_run(
        "mappings/generic-csv.yaml",
        &[folder.to_str().unwrap()],
        &["--report", report.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("no original time (the import's time is shown)"),
        "{}",
        r.stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("report.json")).unwrap())
            .unwrap();
    let group = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "no_time")
        .cloned()
        .unwrap_or_default();
    assert_eq!(group["count"], 2, "{json:#}");
    let examples: Vec<String> = group["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let line = format!("{} {} {}", e["location"], e["source_id"], e["field"]);
            redact(&line, dir.path())
        })
        .collect();
    insta::assert_debug_snapshot!(examples);
    let payloads = std::fs::read_to_string(report.join("payloads.ndjson")).unwrap();
    let first: serde_json::Value = serde_json::from_str(payloads.lines().next().unwrap()).unwrap();
    assert!(first["body"][0].get("created_at").is_none(), "{first}");
    assert!(first["body"][1].get("created_at").is_some(), "{first}");
}
