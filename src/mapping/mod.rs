//! Mapping files: the user's YAML description of how a source record becomes a HappyFox
//! ticket, loaded strictly and compiled once into a [`Plan`].
//!
//! Two stages, as in Vector and just: YAML → plain spec structs ([`spec`]), which catches
//! syntax, unknown and duplicate keys with their positions; then spec → [`Plan`]
//! ([`compile`]), which parses every template and resolves every name against the account
//! schema, collecting all errors so the user sees them together.

pub mod compile;
pub mod error;
pub mod fast;
pub mod spec;
pub mod template;

use std::path::Path;
use std::sync::Arc;

pub use compile::{Field, Mapped, Marker, Plan, compile};
pub use error::{MappingError, MappingErrors};
pub use spec::{MappingSpec, Pos};

use crate::schema::{Schema, did_you_mean};

/// Reads and parses a mapping file (first stage only).
pub fn parse(path: &Path, text: &str) -> Result<MappingSpec, MappingErrors> {
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::Error,
    };
    serde_saphyr::from_str_with_options::<MappingSpec>(text, options).map_err(|e| {
        let pos = e.location().map(|l| Pos {
            line: l.line(),
            column: l.column(),
        });
        let raw = e.to_string();
        let message = first_line_message(&raw);
        let help = unknown_key_help(&message);
        MappingErrors::new(path, text, vec![MappingError { pos, message, help }])
    })
}

/// Loads a mapping file and compiles it, with the schema when there is one.
pub fn load(path: &Path, schema: Option<Arc<Schema>>) -> Result<Plan, MappingErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        MappingErrors::new(
            path,
            "",
            vec![
                MappingError::new(format!("cannot read the mapping file: {e}"))
                    .help("check the --mapping path; shipped mappings are in mappings/"),
            ],
        )
    })?;
    let spec = parse(path, &text)?;
    compile(&spec, schema).map_err(|errors| MappingErrors::new(path, &text, errors))
}

/// serde-saphyr renders its own snippet; we render ours, so keep only the message.
fn first_line_message(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw).trim();
    let first = first.strip_prefix("error:").unwrap_or(first).trim();
    // "line 7 column 3: message": the position is shown separately.
    let first = match first.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((pos, rest)) if pos.contains("column") => rest,
        _ => first,
    };
    let first = first
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(first);
    // Drop a trailing "at line X column Y" that we show as a position instead.
    match first.rfind(" at line ") {
        Some(i) => first[..i].trim_end_matches(',').to_string(),
        None => first.to_string(),
    }
}

/// "unknown field `subjet`, expected one of a, b" → "did you mean `subject`?"
fn unknown_key_help(message: &str) -> Option<String> {
    let rest = message.split("unknown field").nth(1)?;
    let wanted = rest.split('`').nth(1)?;
    let list = rest.split("expected one of").nth(1).unwrap_or("");
    let expected: Vec<&str> = list
        .split(',')
        .map(|s| s.trim().trim_matches('`'))
        .filter(|s| !s.is_empty())
        .collect();
    match did_you_mean(wanted, expected.iter().copied()) {
        Some(s) => Some(format!("did you mean `{s}`?")),
        None if !expected.is_empty() => Some(format!("expected one of: {}", expected.join(", "))),
        None => None,
    }
}

/// The JSON Schema of mapping files, generated from the spec structs.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(MappingSpec);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
