//! Writing the draft: the preset's mapping text, line by line, with each value map
//! replaced by one drafted from the values read, custom fields the account or the export
//! lacks commented out with a TODO, the source's unmapped fields added, and the account's
//! fields with no source listed at the end.

use std::fmt::Write as _;

use super::matching::{self, How};
use super::values::Counts;

/// A replacement of lines `start..end` (0-based) of the preset text.
#[derive(Debug)]
pub(crate) struct Edit {
    pub start: usize,
    pub end: usize,
    pub lines: Vec<String>,
}

/// Applies non-overlapping edits (any order) to `text`.
pub(crate) fn apply(text: &str, mut edits: Vec<Edit>) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // From the bottom, so earlier line numbers stay right; an insertion at the end of a
    // block goes after the replacement of the block's last line.
    edits.sort_by(|a, b| b.start.cmp(&a.start).then(b.end.cmp(&a.end)));
    for e in edits {
        let end = e.end.min(lines.len());
        lines.splice(e.start..end, e.lines);
    }
    // A `custom_fields:` whose entries were all commented out would read as null.
    for i in 0..lines.len() {
        let l = &lines[i];
        if l.trim() == "custom_fields:" {
            let ind = indent_of(l);
            let only_comments = lines[i + 1..]
                .iter()
                .take_while(|n| !n.trim().is_empty() && indent_of(n) > ind)
                .all(|n| n.trim_start().starts_with('#'));
            if only_comments {
                lines[i].push_str(" {}");
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

pub(crate) fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The end (exclusive) of the YAML block whose key is on line `key`: the following lines
/// indented deeper.
pub(crate) fn block_end(lines: &[&str], key: usize) -> usize {
    let ind = indent_of(lines[key]);
    let mut i = key + 1;
    while i < lines.len() && !lines[i].trim().is_empty() && indent_of(lines[i]) > ind {
        i += 1;
    }
    i
}

/// `# TODO ...` lines of a draft, for the summary.
pub(crate) fn todo_count(text: &str) -> usize {
    text.lines()
        .filter(|l| l.trim_start().starts_with("# TODO"))
        .count()
}

/// A YAML scalar: JSON's double-quoted form is valid YAML and escapes everything.
pub(crate) fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A YAML key or plain value, quoted when YAML would read it otherwise.
pub(crate) fn key(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || " _-./()&".contains(c))
        && !s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == ' ')
        && !s.ends_with(' ')
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "yes" | "no" | "true" | "false" | "null" | "on" | "off" | "y" | "n"
        );
    if plain { s.to_string() } else { q(s) }
}

pub(crate) fn tickets(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped} ticket{}", if n == 1 { "" } else { "s" })
}

/// What drafting one value map found, for the summary.
#[derive(Debug, Default)]
pub(crate) struct MapDraft {
    pub lines: Vec<String>,
    pub matched: Vec<(String, String, How)>,
    pub todo: Vec<String>,
}

/// The `map:` entries for the values seen: matched ones live with their count and how,
/// unmatched ones as `# TODO` lines naming the closest account names. `hints` are the
/// preset's (or the definitions') names for values; `what` names the targets
/// ("category", "choice of \"Product\"").
pub(crate) fn draft_map(
    indent: &str,
    counts: &Counts,
    hints: &dyn Fn(&str) -> Option<String>,
    named: &dyn Fn(&str) -> Option<String>,
    names: &[&str],
    what: &str,
) -> MapDraft {
    let mut d = MapDraft::default();
    let mut live = 0;
    let mut body = vec![];
    for (value, n) in counts.sorted() {
        let hint = hints(value);
        // The export's own name for the value (a group's name, an option's label) is what
        // the admin recognises; the value itself and the preset's suggestion come next.
        let own = named(value);
        let by_name = own.as_deref().and_then(|o| {
            matching::best(o, None, names).map(|(name, how)| {
                (
                    name,
                    how,
                    format!("named {o:?} in the export, {}", how.label()),
                )
            })
        });
        let found = by_name.or_else(|| {
            matching::best(value, hint.as_deref(), names)
                .map(|(name, how)| (name, how, how.label().to_string()))
        });
        match found {
            Some((name, how, label)) => {
                live += 1;
                body.push(format!(
                    "{indent}  {}: {}  # {}, {label}",
                    q(value),
                    key(name),
                    tickets(n),
                ));
                d.matched.push((value.to_string(), name.to_string(), how));
            }
            None => {
                let closest = matching::closest(own.as_deref().unwrap_or(value), names);
                // The preset's suggestion is named so the user sees why it was not taken.
                let preset = hint
                    .map(|h| format!(" (the preset's {h:?} is not one)"))
                    .unwrap_or_default();
                body.push(format!(
                    "{indent}  # TODO {}{} ({}): no {what} of the account matches{preset}; closest: {}",
                    q(value),
                    own.map(|o| format!(" (named {o:?} in the export)"))
                        .unwrap_or_default(),
                    tickets(n),
                    closest.join(", ")
                ));
                d.todo.push(value.to_string());
            }
        }
    }
    if counts.values.len() >= super::values::MAX_DISTINCT {
        body.push(format!(
            "{indent}  # more than {} distinct values: only the first are listed",
            super::values::MAX_DISTINCT
        ));
    }
    d.lines.push(format!(
        "{indent}map:{}",
        if live == 0 { " {}" } else { "" }
    ));
    d.lines.extend(body);
    d
}

/// Lines commenting a block out, with the TODO that says why above them.
pub(crate) fn comment_out(lines: &[&str], why: &str) -> Vec<String> {
    let ind = lines.first().map_or(0, |l| indent_of(l));
    let pad = " ".repeat(ind);
    let mut out = vec![format!("{pad}# TODO {why}")];
    for l in lines {
        out.push(format!("{pad}# {}", &l[ind.min(l.len())..]));
    }
    out
}

/// `key: value` lines of a profile or summary, aligned.
pub(crate) fn bullet(out: &mut String, text: &str) {
    let _ = writeln!(out, "  - {text}");
}
