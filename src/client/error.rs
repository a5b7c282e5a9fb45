//! What can go wrong talking to HappyFox, as one error type. It also decides which
//! failures are the user's to fix (credentials, URL) rather than the run's, which is what
//! the exit code tells a script. No variant ever holds a credential.

use super::{API_KEY_VAR, AUTH_CODE_VAR, ApiError, Fatal};

/// Everything that can go wrong talking to HappyFox. No variant ever holds a credential.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{} not set: HappyFox credentials come only from the environment (API key as {API_KEY_VAR}, auth code as {AUTH_CODE_VAR})", missing.join(" and "))]
    MissingCredentials { missing: Vec<&'static str> },
    #[error("{var} is not usable: {reason}")]
    BadCredentials { var: &'static str, reason: String },
    #[error("invalid HappyFox URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "refusing plain http:// for {url}: HappyFox treats a POST over http as a GET, so writes would silently do nothing; use https:// (http is allowed only for loopback addresses such as a local sandbox)"
    )]
    InsecureUrl { url: String },
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
    /// Transparent: the cause is the message, said once (anyhow's `{:#}` would otherwise
    /// print it again as its own source).
    #[error(transparent)]
    Fatal(#[from] Fatal),
    #[error("HappyFox refused {path}: {error}")]
    Rejected { path: String, error: ApiError },
    #[error("cannot reach {url} ({detail}); check --url / HAPPYFOX_URL and the network")]
    Unreachable { url: String, detail: String },
    #[error(
        "{path}: no usable answer after {attempts} attempt(s) in {elapsed}; the last: {reason}. Check that the URL is the HappyFox account and that it is up, or allow more with --retries / --retry-for"
    )]
    GaveUp {
        path: String,
        attempts: u32,
        /// How long the attempts took, as the messages write durations.
        elapsed: String,
        reason: String,
    },
    /// The same write came back without a usable answer as often (or for as long) as its
    /// budget allows; this time it was not sent.
    #[error(
        "{path}: {attempts} answer(s) in {elapsed} did not say what became of the same request (the last: {reason}), so it was not sent again. The server at {url} is not answering like HappyFox: check it, then run the same command again (the journal looks up whatever may have arrived; --retries / --retry-for allow more)"
    )]
    NoAnswer {
        path: String,
        url: String,
        attempts: u32,
        elapsed: String,
        reason: String,
    },
    /// Ctrl-C came while the request waited for its turn: it was not sent.
    #[error("{path} was not sent: stopping on Ctrl-C")]
    Stopped { path: String },
    #[error(
        "{path} was throttled by HappyFox {times} times in a row (429/503); lower --post-per-min / --get-per-min or try later"
    )]
    Throttled { path: String, times: u32 },
    #[error("unexpected answer from {path}: {detail}")]
    Unexpected { path: String, detail: String },
    #[error("cannot encode the request for {path}: {detail}")]
    Encode { path: String, detail: String },
}

impl crate::exit::Classify for ClientError {
    /// The user must fix their setup (credentials, URL) rather than the run having
    /// failed on the way. A key HappyFox refuses (401), lacks a permission (403), or a
    /// URL that is not a HappyFox API (404 on reference data, a redirect) is as much
    /// configuration as a key that is missing: exit 2 for all of them.
    fn exit(&self) -> crate::exit::Exit {
        if matches!(self, ClientError::Stopped { .. }) {
            return crate::exit::Exit::Interrupted;
        }
        crate::exit::usage_if(matches!(
            self,
            ClientError::MissingCredentials { .. }
                | ClientError::BadCredentials { .. }
                | ClientError::BadUrl { .. }
                | ClientError::InsecureUrl { .. }
                | ClientError::Fatal(_)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_credentials_name_both_variables() {
        let e = ClientError::MissingCredentials {
            missing: vec![API_KEY_VAR, AUTH_CODE_VAR],
        };
        let m = e.to_string();
        assert!(
            m.starts_with("HAPPYFOX_API_KEY and HAPPYFOX_AUTH_CODE not set"),
            "{m}"
        );
        assert_eq!(crate::exit::Classify::exit(&e), crate::exit::Exit::Usage);
    }
}
