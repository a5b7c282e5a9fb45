//! Finding the files to read: an `--input` folder is searched for the mapping's file
//! pattern, and side files are looked for next to the tickets.
//!
//! Patterns are globs (the `globset` crate): `*` and `?` match within one folder level,
//! `**` any number of folders, `{a,b}` either spelling and `[abc]` one of the characters.
//! `\` separates folders like `/`, as Windows users write paths.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use super::SourceError;

/// Expands the `--input` arguments into the files to read, in a stable order.
///
/// An export is usually a folder holding tickets next to side files, so a folder input is
/// searched for `pattern` (relative to the folder, e.g. `tickets*.json` or
/// `**/tickets*.json`), while a file input is taken as it is. Matches are sorted by path
/// so that paged exports (`tickets-001.json`, `tickets-002.json`) are read in order and
/// runs are reproducible.
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
        files.extend(find_files(input, pattern)?);
    }
    Ok(files)
}

/// True when `pattern` can match more than one file name (it holds `*`, `?`, `[` or `{`).
pub(crate) fn is_pattern(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{'])
}

/// Why `pattern` is not a usable file pattern, for the mapping's compile errors.
pub(crate) fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.trim().is_empty() {
        return Err("the file pattern is empty".into());
    }
    FilePattern::new(Path::new("."), pattern).map(|_| ())
}

/// The files under `folder` that `pattern` matches, sorted by path; `NoMatch` (listing
/// what the searched folder holds) when there is none.
pub(crate) fn find_files(folder: &Path, pattern: &str) -> Result<Vec<PathBuf>, SourceError> {
    let compiled = FilePattern::new(folder, pattern).map_err(|message| SourceError::Invalid {
        path: folder.to_path_buf(),
        message: format!("`{pattern}`: {message}"),
    })?;
    let mut found = Vec::new();
    let mut matched = Vec::new();
    walk(&compiled, &compiled.base, "", 1, &mut |rel, path| {
        if compiled.matcher.is_match(rel) {
            matched.push(path);
        }
        found.push(rel.to_string());
    })?;
    if matched.is_empty() {
        found.sort();
        return Err(SourceError::NoMatch {
            folder: compiled.base,
            pattern: compiled.rest,
            found,
        });
    }
    matched.sort();
    Ok(matched)
}

/// A pattern split into the folder it starts in (its leading components without
/// wildcards) and the glob matched against paths relative to that folder.
struct FilePattern {
    base: PathBuf,
    /// The glob, relative to `base`, with `/` between components.
    rest: String,
    matcher: GlobMatcher,
    /// How many folder levels below `base` can match; `None` with `**`.
    depth: Option<usize>,
}

impl FilePattern {
    fn new(folder: &Path, pattern: &str) -> Result<FilePattern, String> {
        let normalized = pattern.replace('\\', "/");
        let parts: Vec<&str> = normalized
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        let Some((_, dirs)) = parts.split_last() else {
            return Err("the file pattern names no file".into());
        };
        let literal = dirs.iter().take_while(|p| !is_pattern(p)).count();
        // An absolute pattern starts at the root, as `Path::join` would have it.
        let mut base = if normalized.starts_with('/') {
            PathBuf::from("/")
        } else {
            folder.to_path_buf()
        };
        for dir in &parts[..literal] {
            base.push(dir);
        }
        let rest = parts[literal..].join("/");
        let glob = GlobBuilder::new(&rest)
            .literal_separator(true)
            .backslash_escape(false)
            .build()
            .map_err(|e| format!("not a valid file pattern: {}", e.kind()))?;
        let depth = (!rest.split('/').any(|p| p.contains("**"))).then(|| parts.len() - literal);
        Ok(FilePattern {
            base,
            rest,
            matcher: glob.compile_matcher(),
            depth,
        })
    }
}

/// Calls `file` with every file under `dir` (its path relative to the pattern's base, and
/// its path) down to the pattern's depth. Symbolic links to files are followed, links to
/// folders are not (a link loop would never end).
fn walk(
    pattern: &FilePattern,
    dir: &Path,
    prefix: &str,
    level: usize,
    file: &mut dyn FnMut(&str, PathBuf),
) -> Result<(), SourceError> {
    let open = |source| SourceError::Open {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(open)? {
        entries.push(entry.map_err(open)?);
    }
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            if pattern.depth.is_none_or(|d| level < d) {
                walk(pattern, &path, &rel, level + 1, file)?;
            }
        } else if path.is_file() {
            file(&rel, path);
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn touch(dir: &Path, name: &str) {
        std::fs::write(dir.join(name), b"{}").unwrap();
    }

    fn glob_match(pattern: &str, name: &str) -> bool {
        FilePattern::new(Path::new("."), pattern)
            .unwrap()
            .matcher
            .is_match(name)
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
        // `*` stays within one folder level; `**` crosses them; `{a,b}` alternates.
        assert!(!glob_match("*.json", "2024/tickets.json"));
        assert!(glob_match("**/tickets*.json", "2024/01/tickets-1.json"));
        assert!(glob_match("**/tickets*.json", "tickets.json"));
        assert!(glob_match("{tickets,issues}.json", "issues.json"));
        assert!(!glob_match("{tickets,issues}.json", "users.json"));
    }

    #[cfg(unix)]
    #[test]
    fn an_absolute_pattern_is_not_under_the_input_folder() {
        let export = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        touch(elsewhere.path(), "tickets-1.json");
        let pattern = format!("{}/tickets*.json", elsewhere.path().display());
        let got = resolve_inputs(&[export.path().to_path_buf()], &pattern).unwrap();
        assert_eq!(got, [elsewhere.path().join("tickets-1.json")]);
    }

    #[test]
    fn invalid_patterns_say_why() {
        let err = check_pattern("tickets{a,b.json").unwrap_err();
        assert!(err.starts_with("not a valid file pattern: "), "{err}");
        assert!(check_pattern("").is_err());
        assert!(check_pattern("**/t*.json").is_ok());
        let dir = tempfile::tempdir().unwrap();
        let err = find_files(dir.path(), "[z-a].json").unwrap_err();
        assert!(
            err.to_string()
                .contains("`[z-a].json`: not a valid file pattern"),
            "{err}"
        );
    }

    #[test]
    fn double_star_searches_sub_folders_in_path_order() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["2024/02", "2024/01", "old"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        touch(dir.path(), "tickets-9.json");
        touch(&dir.path().join("2024/02"), "tickets-1.json");
        touch(&dir.path().join("2024/01"), "tickets-2.json");
        touch(&dir.path().join("2024/01"), "tickets-1.json");
        touch(&dir.path().join("old"), "users.json");
        let got = resolve_inputs(&[dir.path().to_path_buf()], "**/tickets*.json").unwrap();
        let rel: Vec<_> = got
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect();
        assert_eq!(
            rel,
            [
                "2024/01/tickets-1.json",
                "2024/01/tickets-2.json",
                "2024/02/tickets-1.json",
                "tickets-9.json"
            ]
        );
        // Without `**`, `*` matches one level only.
        let got = resolve_inputs(&[dir.path().to_path_buf()], "2024/*/tickets-1.json").unwrap();
        assert_eq!(got.len(), 2);
        let got = resolve_inputs(&[dir.path().to_path_buf()], "{old,new}/*.json").unwrap();
        assert_eq!(got, [dir.path().join("old").join("users.json")]);
        // No match lists what the searched folders hold, sub-folders included.
        let err = resolve_inputs(&[dir.path().to_path_buf()], "**/issues.json").unwrap_err();
        assert!(
            err.to_string().ends_with(
                "the folder holds: 2024/01/tickets-1.json, 2024/01/tickets-2.json, 2024/02/tickets-1.json, old/users.json, tickets-9.json"
            ),
            "{err}"
        );
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
