//! Writing a draft, and `--update`: adding the values a new export shows to a mapping the
//! user has already edited, without changing any line that is there.

use std::collections::HashSet;
use std::path::Path;

use indexmap::IndexMap;

use super::render::indent_of;
use super::{Draft, InitError};

/// Writes a new mapping and, when there is none yet, its tests file; says what it wrote.
pub fn write(out: &Path, draft: &Draft) -> Result<String, InitError> {
    if out.exists() {
        return Err(InitError::Exists {
            path: out.to_path_buf(),
        });
    }
    put(out, &draft.mapping)?;
    let tests = super::tests_path(out);
    if tests.exists() {
        return Ok(format!(
            "wrote {}; kept the existing {}",
            out.display(),
            tests.display()
        ));
    }
    put(&tests, &draft.tests)?;
    Ok(format!("wrote {} and {}", out.display(), tests.display()))
}

/// Adds to `existing` every value of the draft's value maps that its maps do not hold yet
/// (as an entry or a TODO), at the end of that map; every other line stays as it is.
pub fn update(existing: &Path, draft: &Draft) -> Result<String, InitError> {
    let text = std::fs::read_to_string(existing).map_err(|source| InitError::Read {
        path: existing.to_path_buf(),
        source,
    })?;
    let (new_text, added) = merge(&text, &draft.mapping);
    if added == 0 {
        return Ok(format!("{}: no new values; unchanged", existing.display()));
    }
    put(existing, &new_text)?;
    Ok(format!(
        "{}: added {added} newly seen value line{}; no other line changed",
        existing.display(),
        if added == 1 { "" } else { "s" }
    ))
}

fn put(path: &Path, text: &str) -> Result<(), InitError> {
    std::fs::write(path, text).map_err(|source| InitError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// One `map:` block: where it is, and the values it names.
#[derive(Debug, Default)]
struct MapBlock {
    header: usize,
    end: usize,
    /// Lower-cased values, from entries and TODO lines.
    values: HashSet<String>,
    /// Entry or TODO lines by value (lower-cased), for the draft's side.
    lines: IndexMap<String, String>,
}

/// Map blocks by their key path (`ticket.priority.map`).
fn map_blocks(text: &str) -> IndexMap<String, MapBlock> {
    let lines: Vec<&str> = text.lines().collect();
    let mut stack: Vec<(usize, String)> = vec![];
    let mut out = IndexMap::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with('-') {
            continue;
        }
        let Some(k) = entry_key(t) else { continue };
        let ind = indent_of(line);
        while stack.last().is_some_and(|(d, _)| *d >= ind) {
            stack.pop();
        }
        stack.push((ind, k.clone()));
        if k == "map" {
            let path = stack
                .iter()
                .map(|(_, k)| k.as_str())
                .collect::<Vec<_>>()
                .join(".");
            let mut b = MapBlock {
                header: i,
                end: i + 1,
                ..MapBlock::default()
            };
            let mut j = i + 1;
            while j < lines.len() && !lines[j].trim().is_empty() && indent_of(lines[j]) > ind {
                let e = lines[j].trim_start();
                let value = match e.strip_prefix("# TODO ") {
                    Some(rest) => leading_key(rest),
                    None if !e.starts_with('#') => entry_key(e),
                    None => None,
                };
                if let Some(v) = value {
                    let v = v.to_lowercase();
                    b.values.insert(v.clone());
                    b.lines.insert(v, lines[j].to_string());
                }
                j += 1;
            }
            b.end = j;
            out.insert(path, b);
        }
    }
    out
}

/// The key of a `key: value` (or `key:`) line, unquoted.
fn entry_key(t: &str) -> Option<String> {
    if t.starts_with('"') || t.starts_with('\'') {
        return leading_key(t);
    }
    let (k, _) = t.split_once(':')?;
    Some(k.trim().to_string())
}

/// A quoted string at the start of `t`.
fn leading_key(t: &str) -> Option<String> {
    if t.starts_with('"') {
        let mut de = serde_json::Deserializer::from_str(t).into_iter::<String>();
        return de.next()?.ok();
    }
    let rest = t.strip_prefix('\'')?;
    rest.split_once('\'').map(|(k, _)| k.to_string())
}

/// `existing` with the draft's map lines for values it lacks; and how many were added.
fn merge(existing: &str, drafted: &str) -> (String, usize) {
    let old = map_blocks(existing);
    let new = map_blocks(drafted);
    let mut lines: Vec<String> = existing.lines().map(str::to_string).collect();
    let mut inserts: Vec<(usize, usize, Vec<String>)> = vec![];
    let mut added = 0;
    for (path, nb) in &new {
        let Some(ob) = old.get(path) else { continue };
        let fresh: Vec<String> = nb
            .lines
            .iter()
            .filter(|(v, _)| !ob.values.contains(*v))
            .map(|(_, l)| l.clone())
            .collect();
        if fresh.is_empty() {
            continue;
        }
        added += fresh.len();
        inserts.push((ob.end, ob.header, fresh));
    }
    inserts.sort_by_key(|b| std::cmp::Reverse(b.0));
    for (end, header, fresh) in inserts {
        let live = fresh.iter().any(|l| !l.trim_start().starts_with('#'));
        lines.splice(end..end, fresh);
        // `map: {}` holds no entry yet; a live one needs the block form.
        if live && lines[header].trim_end().ends_with("map: {}") {
            let h = lines[header].trim_end().trim_end_matches(" {}").to_string();
            lines[header] = h;
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    (out, added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_values_are_added_and_edited_lines_kept() {
        let existing = "ticket:\n  priority:\n    value: \"{{ p }}\"\n    map:\n      low: Niedrig   # edited by hand\n      # TODO \"odd\" (1 ticket): decide\n    default: Medium\nfinal:\n  status:\n    value: \"{{ s }}\"\n    map: {}\n";
        let drafted = "ticket:\n  priority:\n    value: \"{{ p }}\"\n    map:\n      \"low\": Low  # 5 tickets, exact\n      \"high\": High  # 2 tickets, exact\n      # TODO \"odd\" (1 ticket): x\n    default: Medium\nfinal:\n  status:\n    value: \"{{ s }}\"\n    map:\n      \"open\": Open  # 1 ticket, exact\n";
        let (out, added) = merge(existing, drafted);
        assert_eq!(added, 2);
        assert_eq!(
            out,
            "ticket:\n  priority:\n    value: \"{{ p }}\"\n    map:\n      low: Niedrig   # edited by hand\n      # TODO \"odd\" (1 ticket): decide\n      \"high\": High  # 2 tickets, exact\n    default: Medium\nfinal:\n  status:\n    value: \"{{ s }}\"\n    map:\n      \"open\": Open  # 1 ticket, exact\n"
        );
        assert_eq!(merge(&out, drafted).1, 0);
    }
}
