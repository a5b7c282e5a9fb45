//! The CSV header checked against the mapping: a CSV file's columns are known from its
//! first row, so a template that names a column the file does not have is a mapping error
//! with a did-you-mean, reported once before any record is judged.

use std::collections::HashSet;
use std::path::Path;

use crate::mapping::{MappingError, Plan};

/// Names templates may use besides the record's own fields.
fn builtin_names(plan: &Plan) -> HashSet<String> {
    let mut names: HashSet<String> = [
        "row",
        "record",
        "ticket",
        "position",
        "loop",
        "range",
        "dict",
        "namespace",
        "debug",
        "true",
        "false",
        "none",
        "__tz",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.extend(plan.source.sides.iter().map(|s| s.name.clone()));
    names
}

/// `row['Column Name']` references in a template's source.
fn row_subscripts(source: &str) -> Vec<String> {
    let mut out = vec![];
    for prefix in ["row[", "record["] {
        let mut rest = source;
        while let Some(i) = rest.find(prefix) {
            rest = &rest[i + prefix.len()..];
            let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
                continue;
            };
            if let Some(end) = rest[1..].find(q) {
                out.push(rest[1..1 + end].to_string());
            }
        }
    }
    out
}

/// For CSV sources the columns are known from the header: a template that names a column
/// the file does not have is a mapping error, found before any record is judged.
pub(super) fn check_columns(
    plan: &Plan,
    first: &serde_json::Value,
    file: &Path,
) -> Vec<MappingError> {
    let Some(columns) = first.as_object() else {
        return vec![];
    };
    let builtins = builtin_names(plan);
    let mut errors = vec![];
    let mut seen = HashSet::new();
    for field in plan.fields() {
        let mut wanted: Vec<String> = field
            .expr
            .variables()
            .into_iter()
            .filter(|v| !builtins.contains(v))
            .collect();
        wanted.extend(row_subscripts(&field.source));
        for col in wanted {
            if columns.contains_key(&col) || !seen.insert((field.name.clone(), col.clone())) {
                continue;
            }
            let hint = crate::schema::did_you_mean(&col, columns.keys().map(String::as_str))
                .map(|s| {
                    format!("did you mean `{s}`? (columns with spaces are read as row['{s}'])")
                })
                .unwrap_or_else(|| {
                    format!(
                        "the columns of {} are: {}",
                        file.display(),
                        columns.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                });
            errors.push(
                MappingError::at(
                    field.pos,
                    format!(
                        "{}: unknown column `{col}` in {}",
                        field.name,
                        file.display()
                    ),
                )
                .help(hint),
            );
        }
    }
    errors
}
