//! `hfmigrate preflight` (and the same check at the start of `import`) against edited
//! copies of the sample account: each gap is one clear message and exit 2.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Hfmigrate, Outcome, root, start_sandbox, unlimited};

const MAPPING: &str = "mappings/generic-csv.yaml";

/// A copy of the sample schema, edited by `edit`, in `dir`.
fn schema_copy(dir: &Path, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let text = std::fs::read_to_string(root().join("samples/happyfox-schema.json")).unwrap();
    let mut schema: Value = serde_json::from_str(&text).unwrap();
    edit(&mut schema);
    let path = dir.join("schema.json");
    std::fs::write(&path, serde_json::to_string_pretty(&schema).unwrap()).unwrap();
    path
}

fn staff_mut<'a>(schema: &'a mut Value, email: &str) -> &'a mut Value {
    schema["staff"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["email"] == email)
        .unwrap()
}

fn preflight(args: &[&str], schema: &Path) -> Outcome {
    let mut cmd = Hfmigrate::new(["preflight"]).command();
    cmd.args(args).arg("--schema").arg(schema);
    cmd.output().expect("the binary runs").into()
}

#[test]
fn the_sample_account_passes() {
    let o = preflight(
        &["--mapping", MAPPING],
        &root().join("samples/happyfox-schema.json"),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("acting agent: Migration Bot"), "{o:?}");
    assert!(o.stdout.contains("pre-flight passed"), "{o:?}");
}

#[test]
fn an_agent_without_delete_permission_fails_for_undo_only() {
    let dir = tempfile::tempdir().unwrap();
    let schema = schema_copy(dir.path(), |s| {
        staff_mut(s, "migration-bot@acme.example")["is_account_admin"] = false.into();
    });
    let bot = ["--staff", "migration-bot@acme.example"];
    let o = preflight(&["--for", "undo", bot[0], bot[1]], &schema);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains(
            "agent Migration Bot (migration-bot@acme.example) lacks the \"delete_tickets\" permission this undo needs"
        ),
        "{o:?}"
    );
    // The same agent may import: it has manage_tickets and belongs to every category.
    let o = preflight(&["--mapping", MAPPING, bot[0], bot[1]], &schema);
    assert_eq!(o.code, 0, "{o:?}");
    // Asked for as JSON: versioned, with the problem named.
    let o = preflight(&["--for", "undo", "--json", bot[0], bot[1]], &schema);
    assert_eq!(o.code, 2, "{o:?}");
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["passed"], false);
    assert_eq!(
        v["preflight"]["problems"][0]["problem"],
        "missing_permission"
    );
}

#[test]
fn a_missing_marker_field_fails() {
    let dir = tempfile::tempdir().unwrap();
    let schema = schema_copy(dir.path(), |s| {
        s["ticket_custom_fields"]
            .as_array_mut()
            .unwrap()
            .retain(|f| f["name"] != "Source ID");
    });
    let o = preflight(&["--mapping", MAPPING], &schema);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr
            .contains("marker field \"Source ID\" does not exist in the account"),
        "{o:?}"
    );
}

#[test]
fn an_inactive_fallback_agent_fails_and_stops_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let schema = schema_copy(dir.path(), |s| {
        staff_mut(s, "migration-bot@acme.example")["active"] = false.into();
    });
    let o = preflight(&["--mapping", MAPPING], &schema);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains(
            "fallback agent Migration Bot (migration-bot@acme.example) (conversation.fallback_agent) is inactive"
        ),
        "{o:?}"
    );
    // The import stops too (the mapping's own check names the line) and sends nothing.
    let journal = dir.path().join("run.db");
    let mut cmd = Hfmigrate::new([
        "import",
        "--yes",
        "--sandbox",
        "--mapping",
        MAPPING,
        "--input",
        "samples/generic-csv",
    ])
    .command();
    cmd.arg("--schema")
        .arg(&schema)
        .arg("--journal")
        .arg(&journal);
    let o: Outcome = cmd.output().unwrap().into();
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("is inactive"), "{o:?}");
    assert!(!journal.exists(), "nothing was started");
}

#[test]
fn the_import_runs_the_preflight_first_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    // Billing tickets could not be found again: the marker field is not in Billing.
    let schema = schema_copy(dir.path(), |s| {
        for f in s["ticket_custom_fields"].as_array_mut().unwrap() {
            if f["name"] == "Source ID" {
                f["categories"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|c| c["category"] != 2);
            }
        }
    });
    let journal = dir.path().join("run.db");
    let import = |extra: &[&str]| -> Outcome {
        let mut cmd = Hfmigrate::new([
            "import",
            "--yes",
            "--sandbox",
            "--mapping",
            MAPPING,
            "--input",
            "samples/generic-csv",
        ])
        .command();
        cmd.arg("--schema")
            .arg(&schema)
            .arg("--journal")
            .arg(&journal)
            .args(extra);
        cmd.output().unwrap().into()
    };
    let o = import(&[]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains("pre-flight check failed (1 problem(s)):\n  - marker field \"Source ID\" is not used in category \"Billing\""),
        "{o:?}"
    );
    assert!(!journal.exists(), "nothing was started");
    let o = import(&["--no-preflight"]);
    assert!(matches!(o.code, 0 | 3), "{o:?}");
    assert!(journal.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_creates_reads_back_and_deletes_one_test_ticket() {
    let sb = start_sandbox(unlimited).await;
    let url = sb.url.clone();
    let run = move |extra: &'static [&'static str]| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || -> Outcome {
            let mut cmd = Hfmigrate::new(["preflight", "--canary", "--mapping", MAPPING])
                .credentials()
                .command();
            cmd.args(["--url", &url]).args(extra);
            cmd.output().unwrap().into()
        })
    };
    let o = run(&[]).await.unwrap();
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("canary: created ticket 1 ")
            && o.stdout
                .contains("posted one reply, read it back, deleted it")
            && o.stdout.contains("the account did nothing on its own")
            && o.stdout.contains("hfmigrate-canary@example.invalid stays"),
        "{o:?}"
    );
    let s = sb.stats();
    assert_eq!((s.tickets, s.deleted_tickets), (0, 1), "{s:?}");
    let o = run(&["--json"]).await.unwrap();
    assert_eq!(o.code, 0, "{o:?}");
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["canary"]["deleted"], true, "{v:#}");
    assert_eq!(v["canary"]["observations"], serde_json::json!([]), "{v:#}");
    assert_eq!(sb.stats().tickets, 0);
    // Without an account there is nothing to create a ticket in.
    let schema = root().join("samples/happyfox-schema.json");
    let o = preflight(&["--canary", "--mapping", MAPPING], &schema);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("--canary creates a test ticket"), "{o:?}");
}
