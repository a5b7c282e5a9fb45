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
