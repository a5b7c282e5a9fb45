//! How serde_json's errors are told: where the JSON breaks and what is wrong there, in
//! words a user can act on.

/// A syntax error in a JSON document, with the line and column where it breaks.
pub(super) fn describe_syntax_error(e: &serde_json::Error) -> String {
    let bare = without_position(e);
    match e.classify() {
        serde_json::error::Category::Eof => format!(
            "the JSON document is cut off at line {} column {} ({bare})",
            e.line(),
            e.column()
        ),
        serde_json::error::Category::Io => format!("cannot read further: {bare}"),
        _ => format!(
            "invalid JSON at line {} column {}: {bare}",
            e.line(),
            e.column()
        ),
    }
}

/// A syntax error in one NDJSON line: the line is in the record's location, so only the
/// column is told here.
pub(super) fn describe_line_error(e: &serde_json::Error) -> String {
    format!(
        "invalid JSON at column {}: {}",
        e.column(),
        without_position(e)
    )
}

/// serde_json's message without its trailing position, which is reported separately.
fn without_position(e: &serde_json::Error) -> String {
    let mut full = e.to_string();
    if let Some(at) = full.rfind(" at line ") {
        full.truncate(at);
    }
    full
}

/// A syntax error in one record's bytes parsed on their own (after a resynchronisation):
/// the line is made absolute from the line the record starts on.
/// (The column is told only past the record's first line: on that line it would count
/// from where the record starts.)
pub(super) fn describe_span_error(e: &serde_json::Error, first_line: u64) -> String {
    let line = first_line + (e.line() as u64).saturating_sub(1);
    if e.line() > 1 {
        format!(
            "invalid JSON at line {line} column {}: {}",
            e.column(),
            without_position(e)
        )
    } else {
        format!("invalid JSON at line {line}: {}", without_position(e))
    }
}
