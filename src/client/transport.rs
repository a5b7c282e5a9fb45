//! What a transport error (no answer at all) was, in words safe to show.
//!
//! reqwest's own text for an error carries the URL, and a signed download URL carries a
//! token, so the words come from the error's causes only. The importer's attachment
//! downloads use the same description as the HappyFox requests.

use super::TransportFailure;

pub(super) fn transport_failure(e: &reqwest::Error) -> TransportFailure {
    if e.is_connect() {
        TransportFailure::Connect
    } else if e.is_timeout() {
        TransportFailure::Timeout
    } else {
        TransportFailure::ConnectionLost
    }
}

/// The causes of a transport error, outermost first and without repeats; never the
/// error itself, whose text carries the URL.
fn error_causes(e: &reqwest::Error) -> Vec<String> {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts
}

/// What went wrong with a transport error ("connection refused", "operation timed
/// out"): its causes, outermost first, joined; never the error's own text, which carries
/// the URL (and a signed download URL carries a token).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut parts = error_causes(e);
    if e.is_timeout() && !parts.iter().any(|p| p.contains("timed out")) {
        parts.insert(0, "timed out".into());
    }
    if parts.is_empty() {
        return "transport error".into();
    }
    parts.join(": ")
}
