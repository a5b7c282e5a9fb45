//! The recorded payloads of other projects in `../shared/fixtures/real/`, for tests only.
//!
//! They are not the project's to ship (their licences differ), so a fresh clone has none:
//! a test that needs one skips with a printed reason. CI sets
//! `HFMIGRATE_REQUIRE_FIXTURES=1`, which turns the skip into a failure, so the shipped
//! mappings are still tested against real payloads there. Unit and integration tests use
//! this one guard.

use std::path::{Path, PathBuf};

/// Set to `1` to fail, rather than skip, tests whose recorded payloads are absent.
pub const REQUIRE_VAR: &str = "HFMIGRATE_REQUIRE_FIXTURES";

/// The recorded payload `rel` (e.g. `zendesk/api_ticket_audits_list.json`), or `None`
/// after printing why the test is skipped. Panics when it is absent and required.
#[doc(hidden)]
pub fn real_fixture(rel: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/real");
    let required = std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1");
    match locate(&root, rel, required) {
        Ok(Some(path)) => Some(path),
        Ok(None) => {
            eprintln!(
                "skipped: {rel}: ../shared/fixtures/real is absent (a fresh clone has none); set {REQUIRE_VAR}=1 to make this a failure"
            );
            None
        }
        Err(message) => panic!("{message}"),
    }
}

/// The decision, apart from the environment: the path when the folder exists, `None`
/// to skip, an error when required and absent. A present folder without the file is
/// always an error: the test names a fixture that does not exist.
fn locate(root: &Path, rel: &str, required: bool) -> Result<Option<PathBuf>, String> {
    if !root.is_dir() {
        return if required {
            Err(format!(
                "{} is absent and {REQUIRE_VAR}=1 requires the recorded payloads",
                root.display()
            ))
        } else {
            Ok(None)
        };
    }
    let path = root.join(rel);
    if path.is_file() {
        Ok(Some(path))
    } else {
        Err(format!("recorded payload {} not found", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_absent_and_required() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), "[]").unwrap();
        let found = locate(dir.path(), "a.json", false).unwrap();
        assert_eq!(found, Some(dir.path().join("a.json")));
        assert_eq!(locate(dir.path(), "a.json", true).unwrap(), found);
        assert!(locate(dir.path(), "missing.json", false).is_err());
        let absent = dir.path().join("nothing-here");
        assert_eq!(locate(&absent, "a.json", false), Ok(None));
        assert!(
            locate(&absent, "a.json", true)
                .unwrap_err()
                .contains(REQUIRE_VAR)
        );
    }
}
