//! Finding the files to read: an `--input` folder is searched for the mapping's file
//! pattern, and side files are looked for next to the tickets.

use std::path::PathBuf;

use super::SourceError;

/// Expands the `--input` arguments into the files to read, in a stable order.
///
/// An export is usually a folder holding tickets next to side files, so a folder input is
/// searched for `pattern` (a file name relative to the folder; `*` and `?` match within
/// the last component, e.g. `tickets*.json`), while a file input is taken as it is. Matches
/// are sorted by name so that paged exports (`tickets-001.json`, `tickets-002.json`) are
/// read in order and runs are reproducible.
pub(crate) fn resolve_inputs(
    inputs: &[PathBuf],
    pattern: &str,
) -> Result<Vec<PathBuf>, SourceError> {
    let mut files = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|source| SourceError::Open {
            path: input.clone(),
            source,
        })?;
        if !meta.is_dir() {
            files.push(input.clone());
            continue;
        }
        let (sub, name_pattern) = match pattern.rsplit_once(['/', '\\']) {
            Some((dir, name)) => (input.join(dir), name),
            None => (input.clone(), pattern),
        };
        let mut found = Vec::new();
        let mut matched = Vec::new();
        let entries = std::fs::read_dir(&sub).map_err(|source| SourceError::Open {
            path: sub.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| SourceError::Open {
                path: sub.clone(),
                source,
            })?;
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if glob_match(name_pattern, &name) {
                matched.push(path);
            }
            found.push(name);
        }
        if matched.is_empty() {
            found.sort();
            return Err(SourceError::NoMatch {
                folder: sub,
                pattern: name_pattern.to_string(),
                found,
            });
        }
        matched.sort();
        files.extend(matched);
    }
    Ok(files)
}

/// The folder that side files named in a mapping are relative to.
///
/// Side files sit next to the tickets in an export, so this is the first input when it
/// is a folder, else the folder holding the first input file.
pub(crate) fn export_root(inputs: &[PathBuf]) -> PathBuf {
    match inputs.first() {
        Some(first) if first.is_dir() => first.clone(),
        Some(first) => match first.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        },
        None => PathBuf::from("."),
    }
}

/// Shell-style match of a whole file name: `*` any run of characters, `?` one character.
fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Greedy matching with a single backtrack point is enough for `*` and `?` and runs in
    // O(len(p) * len(n)) at worst.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn touch(dir: &Path, name: &str) {
        std::fs::write(dir.join(name), b"{}").unwrap();
    }

    #[test]
    fn glob_patterns() {
        assert!(glob_match("tickets*.json", "tickets.json"));
        assert!(glob_match("tickets*.json", "tickets-002.json"));
        assert!(!glob_match("tickets*.json", "tickets.json.bak"));
        assert!(glob_match("t?ckets.csv", "tickets.csv"));
        assert!(!glob_match("t?ckets.csv", "tckets.csv"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("*a*b*", "xxaybzz"));
        assert!(!glob_match("*a*b", "xxaybzz"));
        assert!(glob_match("users.json", "users.json"));
        assert!(!glob_match("users.json", "users.jsonl"));
        assert!(glob_match("café-*.csv", "café-1.csv"));
    }

    #[test]
    fn folders_are_searched_files_taken_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "tickets-002.json",
            "tickets-001.json",
            "users.json",
            "notes.txt",
        ] {
            touch(dir.path(), name);
        }
        std::fs::create_dir(dir.path().join("tickets-dir.json")).unwrap();
        let other = dir.path().join("notes.txt");
        let got =
            resolve_inputs(&[dir.path().to_path_buf(), other.clone()], "tickets*.json").unwrap();
        assert_eq!(
            got,
            [
                dir.path().join("tickets-001.json"),
                dir.path().join("tickets-002.json"),
                other
            ]
        );
        assert_eq!(export_root(&[dir.path().to_path_buf()]), dir.path());
        assert_eq!(export_root(&[dir.path().join("users.json")]), dir.path());
        assert_eq!(export_root(&[PathBuf::from("users.json")]), Path::new("."));
        assert_eq!(export_root(&[]), Path::new("."));
    }

    #[test]
    fn pattern_with_a_subfolder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("export")).unwrap();
        touch(&dir.path().join("export"), "tickets.csv");
        let got = resolve_inputs(&[dir.path().to_path_buf()], "export/*.csv").unwrap();
        assert_eq!(got, [dir.path().join("export").join("tickets.csv")]);
    }

    #[test]
    fn no_match_names_the_folder_pattern_and_files() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "Tickets.JSON");
        touch(dir.path(), "users.json");
        let err = resolve_inputs(&[dir.path().to_path_buf()], "tickets*.json").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no file in {} matches `tickets*.json`; the folder holds: Tickets.JSON, users.json",
                dir.path().display()
            )
        );
        let empty = tempfile::tempdir().unwrap();
        let err = resolve_inputs(&[empty.path().to_path_buf()], "*.csv").unwrap_err();
        assert!(
            err.to_string().ends_with("the folder holds no files"),
            "{err}"
        );
        let err = resolve_inputs(&[dir.path().join("missing.csv")], "*.csv").unwrap_err();
        assert!(matches!(err, SourceError::Open { .. }), "{err}");
        assert!(err.to_string().starts_with("cannot open "), "{err}");
    }
}
