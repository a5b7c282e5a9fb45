//! The journal as a re-run sees it: resumed after a stop or a crash, refused when it
//! cannot be written or comes from a newer build, and honest about changed inputs.

use std::path::{Path, PathBuf};

use hfmigrate::client::{Credentials, Target};
use hfmigrate::journal::{
    Change, InputFingerprint, ItemOutcome, Journal, JournalError, PendingRecord, RunInfo,
    fingerprint_bytes,
};

fn records(ids: &[&str]) -> Vec<PendingRecord> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| PendingRecord {
            source_id: (*id).to_owned(),
            file: "tickets.csv".into(),
            line: Some(i as u64 + 2),
            payload: format!(r#"{{"subject":"{id}"}}"#),
        })
        .collect()
}

fn info() -> RunInfo {
    RunInfo::new(
        fingerprint_bytes(b"mapping"),
        vec![],
        "https://acme.happyfox.com",
    )
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("run.db")
}

#[test]
fn a_resumed_journal_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut j = Journal::open(&db(&dir), &info()).unwrap();
        j.upsert_pending(&records(&["a", "b", "c"])).unwrap();
        let b = j.begin_batch(&["a"]).unwrap();
        j.finish_batch(
            b,
            &[ItemOutcome::Created {
                source_id: "a".into(),
                happyfox_id: 11,
                display_id: "#DC00000011".into(),
            }],
        )
        .unwrap();
        j.finish_run("interrupted").unwrap();
    }
    let mut j = Journal::open(&db(&dir), &info()).unwrap();
    assert!(j.resumed());
    assert!(j.changes().is_empty(), "{:?}", j.changes());
    assert!(j.unknown_batches().unwrap().is_empty());
    let s = j.summary().unwrap();
    assert_eq!((s.records.created, s.records.pending, s.runs), (1, 2, 2));
    assert_eq!(s.target_url, "https://acme.happyfox.com");
    // Feeding the same input again changes nothing.
    let r = j.upsert_pending(&records(&["a", "b", "c"])).unwrap();
    assert_eq!((r.inserted, r.unchanged), (0, 3));
    let pending: Vec<String> = j
        .next_pending(0, 10)
        .unwrap()
        .into_iter()
        .map(|p| p.source_id)
        .collect();
    assert_eq!(pending, ["b", "c"]);
    let json = serde_json::to_value(j.summary().unwrap()).unwrap();
    assert_eq!(json["records"]["created"], 1);
}

#[test]
fn a_crash_between_begin_and_finish_leaves_the_batch_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let batch;
    {
        let mut j = Journal::open(&db(&dir), &info()).unwrap();
        j.upsert_pending(&records(&["a", "b", "c"])).unwrap();
        batch = j.begin_batch(&["a", "b"]).unwrap();
        // In this run the batch is in flight, not unknown.
        assert!(j.unknown_batches().unwrap().is_empty());
        // Dropped without finish_batch: the process died while the POST was out.
    }
    let mut j = Journal::open(&db(&dir), &info()).unwrap();
    let unknown = j.unknown_batches().unwrap();
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].batch, batch);
    assert_eq!(unknown[0].source_ids, ["a", "b"]);
    // Its members cannot be sent again until it is reconciled.
    assert!(matches!(
        j.begin_batch(&["a"]),
        Err(JournalError::NotPending { .. })
    ));
    // Reconciliation: "a" was found in HappyFox, "b" was not.
    j.finish_batch(
        batch,
        &[
            ItemOutcome::Created {
                source_id: "a".into(),
                happyfox_id: 5,
                display_id: "#DC00000005".into(),
            },
            ItemOutcome::NotSent {
                source_id: "b".into(),
            },
        ],
    )
    .unwrap();
    assert!(j.unknown_batches().unwrap().is_empty());
    let pending: Vec<String> = j
        .next_pending(0, 10)
        .unwrap()
        .into_iter()
        .map(|p| p.source_id)
        .collect();
    assert_eq!(pending, ["b", "c"]);
}

#[test]
fn a_read_only_journal_is_refused_clearly() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    Journal::open(&path, &info()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let err = Journal::open(&path, &info()).unwrap_err();
    assert!(matches!(err, JournalError::ReadOnly { .. }), "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");
    // `status` still reads it.
    assert_eq!(
        Journal::open_read_only(&path)
            .unwrap()
            .summary()
            .unwrap()
            .runs,
        1
    );

    let ro_dir = dir.path().join("locked");
    std::fs::create_dir(&ro_dir).unwrap();
    std::fs::set_permissions(&ro_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let err = Journal::open(&ro_dir.join("new.db"), &info()).unwrap_err();
    assert!(matches!(err, JournalError::ReadOnly { .. }), "{err}");
    std::fs::set_permissions(&ro_dir, std::fs::Permissions::from_mode(0o755)).unwrap();

    let err = Journal::open(&dir.path().join("missing/dir/run.db"), &info()).unwrap_err();
    assert!(matches!(err, JournalError::CannotOpen { .. }), "{err}");
}

#[test]
fn a_journal_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    Journal::open(&path, &info()).unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = Journal::open(&path, &info()).unwrap_err();
    assert!(
        matches!(err, JournalError::NewerVersion { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade hfmigrate"), "{err}");
}

fn write(path: &Path, text: &str) -> InputFingerprint {
    std::fs::write(path, text).unwrap();
    InputFingerprint::of(path).unwrap()
}

#[test]
fn changed_mapping_inputs_and_target_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    let b = dir.path().join("b.csv");
    let first = RunInfo::new(
        fingerprint_bytes(b"mapping v1"),
        vec![write(&a, "id\n1\n"), write(&b, "id\n2\n")],
        "https://acme.happyfox.com",
    );
    Journal::open(&db(&dir), &first).unwrap();

    // Same content, new modification time: said, but not a reason to stop.
    let file = std::fs::File::options().write(true).open(&a).unwrap();
    file.set_modified(
        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000),
    )
    .unwrap();
    drop(file);
    let touched = RunInfo {
        inputs: vec![InputFingerprint::of(&a).unwrap(), first.inputs[1].clone()],
        ..first.clone()
    };
    let j = Journal::open(&db(&dir), &touched).unwrap();
    assert_eq!(j.changes().len(), 1, "{:?}", j.changes());
    assert!(!j.changes()[0].is_significant());
    drop(j);

    let c = dir.path().join("c.csv");
    let second = RunInfo::new(
        fingerprint_bytes(b"mapping v2"),
        vec![write(&a, "id\n1\n3\n"), write(&c, "id\n4\n")],
        "https://other.happyfox.net",
    );
    let mut j = Journal::open(&db(&dir), &second).unwrap();
    let changes = j.changes().to_vec();
    assert!(changes.contains(&Change::MappingChanged), "{changes:?}");
    assert!(changes.contains(&Change::TargetChanged {
        before: "https://acme.happyfox.com".into(),
        after: "https://other.happyfox.net".into()
    }));
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, Change::InputModified { path, .. } if path.ends_with("a.csv")))
    );
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, Change::InputRemoved { path } if path.ends_with("b.csv")))
    );
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, Change::InputAdded { path } if path.ends_with("c.csv")))
    );
    // A changed mapping or target stops the run; a newer export is a delta.
    for c in &changes {
        assert_eq!(
            c.is_significant(),
            matches!(c, Change::MappingChanged | Change::TargetChanged { .. }),
            "{c:?}"
        );
    }
    let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(|t| t.contains("size 5 → 7 bytes")),
        "{text:?}"
    );
    // Refusing leaves the record as it was; accepting records the new fingerprints.
    j.accept_changes(&second).unwrap();
    assert!(j.changes().is_empty());
    drop(j);
    assert!(
        Journal::open(&db(&dir), &second)
            .unwrap()
            .changes()
            .is_empty()
    );
}

#[test]
fn results_are_safe_to_open_in_a_spreadsheet() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(&db(&dir), &info()).unwrap();
    j.upsert_pending(&records(&["=cmd|'/c calc'!A1", "@SUM(1)", "plain"]))
        .unwrap();
    let b = j
        .begin_batch(&["=cmd|'/c calc'!A1", "@SUM(1)", "plain"])
        .unwrap();
    j.finish_batch(
        b,
        &[
            ItemOutcome::Created {
                source_id: "=cmd|'/c calc'!A1".into(),
                happyfox_id: 1,
                display_id: "#DC00000001".into(),
            },
            ItemOutcome::Failed {
                source_id: "@SUM(1)".into(),
                stage: "create".into(),
                error: "+HYPERLINK(\"http://x\")".into(),
            },
            ItemOutcome::Created {
                source_id: "plain".into(),
                happyfox_id: 3,
                display_id: "#DC00000003".into(),
            },
        ],
    )
    .unwrap();
    let out = j.write_results(&dir.path().join("results")).unwrap();
    assert_eq!((out.successes, out.errors), (2, 1));
    let success = std::fs::read_to_string(&out.success_csv).unwrap();
    assert_eq!(
        success,
        "source_id,ticket_id,display_id,ticket_url\n\
         '=cmd|'/c calc'!A1,1,#DC00000001,https://acme.happyfox.com/staff/ticket/1\n\
         plain,3,#DC00000003,https://acme.happyfox.com/staff/ticket/3\n"
    );
    let errors = std::fs::read_to_string(&out.errors_csv).unwrap();
    assert_eq!(
        errors,
        "file,line,source_id,stage,error,attempts\n\
         tickets.csv,3,'@SUM(1),create,\"'+HYPERLINK(\"\"http://x\"\")\",1\n"
    );
}

#[test]
fn no_credential_ever_lands_in_the_journal() {
    let secret_key = format!("fake-key-{}", std::process::id());
    let secret_code = format!("fake-code-{:x}", rand::random::<u64>());
    let creds = Credentials::new(&secret_key, &secret_code).unwrap();
    assert!(!format!("{creds:?}").contains(&secret_key));
    let target = Target::parse("https://acme.happyfox.com").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let info = RunInfo::new("m", vec![], target.account_url());
        let mut j = Journal::open(&path, &info).unwrap();
        j.upsert_pending(&records(&["a"])).unwrap();
        // Even a careless caller passing a URL with credentials in it stores none.
        let careless = RunInfo::new(
            "m",
            vec![],
            format!("https://{secret_key}:{secret_code}@acme.happyfox.com/?code={secret_code}"),
        );
        j.accept_changes(&careless).unwrap();
        j.finish_run("done").unwrap();
    }
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let haystack = String::from_utf8_lossy(&bytes);
    assert!(haystack.contains("acme.happyfox.com"));
    assert!(!haystack.contains(&secret_key), "API key in the journal");
    assert!(!haystack.contains(&secret_code), "auth code in the journal");
}
