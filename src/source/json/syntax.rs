//! How serde_json's errors are told: where the JSON breaks and what is wrong there, in
//! words a user can act on.

/// serde_json's message without its trailing position, which is reported separately.
pub(super) fn describe_syntax_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let bare = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(m, _)| m);
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
