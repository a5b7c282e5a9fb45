//! `hfmigrate test`: the shipped mappings' unit tests pass, a failing case prints its
//! differences and exits 3, a malformed tests file exits 2 with its line.

use std::path::Path;

use crate::support::{Hfmigrate, Outcome, root};

fn test_cmd(args: &[&str]) -> Outcome {
    let mut all = vec!["test"];
    all.extend_from_slice(args);
    Hfmigrate::new(all).run()
}

/// Every shipped mapping has a tests file with a valid, a rejected and a conversation
/// case, and all of them pass.
#[test]
fn every_shipped_mapping_has_passing_tests() {
    let mut mappings = vec![];
    for entry in std::fs::read_dir(root().join("mappings")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && !name.ends_with(".tests.yaml") {
            mappings.push(name);
        }
    }
    mappings.sort();
    assert!(mappings.len() >= 3, "{mappings:?}");
    for m in &mappings {
        let mapping = format!("mappings/{m}");
        let tests = root().join(format!("mappings/{}", m.replace(".yaml", ".tests.yaml")));
        let text = std::fs::read_to_string(&tests)
            .unwrap_or_else(|_| panic!("{m} has no tests file {}", tests.display()));
        for needed in ["outcome: valid", "outcome: rejected", "conversation:"] {
            assert!(
                text.contains(needed),
                "{} lacks a case with {needed}",
                tests.display()
            );
        }
        let r = test_cmd(&["--mapping", &mapping]);
        assert_eq!(r.code, 0, "{m}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(" 0 failed"), "{}", r.stdout);
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const TICKET: &str = r#"
    ticket:
      id: 1
      status: open
      group_id: 360011111101
      requester_id: 7
      subject: Hello
      description: Body
    side:
      users:
        - { id: 7, name: Jo, email: jo@example.com, role: end-user }
"#;

#[test]
fn a_failing_case_prints_each_difference_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let tests = write(
        dir.path(),
        "z.tests.yaml",
        &format!(
            "cases:\n  - name: passes\n{TICKET}    expect: {{ payload: {{ subject: Hello, category: 1 }} }}\n  - name: wrong subject and problem\n{TICKET}    expect:\n      payload: {{ subject: Bye, email: jo@example.com, nope: 1 }}\n      problems: [{{ kind: unknown_choice }}]\n"
        ),
    );
    let r = test_cmd(&["--mapping", "mappings/zendesk.yaml", "--tests", &tests]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let out = r.stdout.replace(&dir.path().display().to_string(), "[TMP]");
    assert!(out.contains("ok    passes ([TMP]/z.tests.yaml:2)"), "{out}");
    assert!(
        out.contains("FAIL  wrong subject and problem ([TMP]/z.tests.yaml:15)"),
        "{out}"
    );
    assert!(
        out.contains(r#"payload.subject: expected "Bye", got "Hello""#),
        "{out}"
    );
    assert!(out.contains("payload.nope: expected 1, missing"), "{out}");
    assert!(
        out.contains("problems: expected unknown_choice, not found"),
        "{out}"
    );
    assert!(
        !out.contains("payload.email"),
        "a matching key is no difference: {out}"
    );
    assert!(out.contains("2 cases, 1 passed, 1 failed"), "{out}");
}

#[test]
fn a_malformed_tests_file_exits_2_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let tests = write(
        dir.path(),
        "bad.tests.yaml",
        "cases:\n  - name: typo\n    ticket: {}\n    expect: { outcom: valid }\n",
    );
    let r = test_cmd(&["--mapping", "mappings/zendesk.yaml", "--tests", &tests]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&format!("{tests}:4:")), "{}", r.stderr);
    assert!(r.stderr.contains("outcom"), "{}", r.stderr);

    let unknown_side = write(
        dir.path(),
        "side.tests.yaml",
        "cases:\n  - name: a\n    ticket: {}\n  - name: b\n    ticket: {}\n    side: { userz: [] }\n",
    );
    let r = test_cmd(&[
        "--mapping",
        "mappings/zendesk.yaml",
        "--tests",
        &unknown_side,
    ]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!("{unknown_side}:4:"))
            && r.stderr
                .contains("no side file \"userz\" (it has: users, comments)"),
        "{}",
        r.stderr
    );

    let missing = dir.path().join("none.yaml");
    let r = test_cmd(&[
        "--mapping",
        "mappings/zendesk.yaml",
        "--tests",
        &missing.display().to_string(),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot read the tests file"),
        "{}",
        r.stderr
    );
}
