//! The one place that decides what a HappyFox response means for the caller.
//!
//! Every retry, pause, reconciliation and abort in the tool follows from this function, so
//! it is pure (no clock, no I/O: the current time and the default lockout are arguments)
//! and tested row by row. The rules come from what HappyFox does and does not promise:
//! no idempotency keys (a write whose response was lost may have happened), a global rate
//! limit that answers 429 (or 503 on older accounts) for ten minutes, and error bodies in
//! two different shapes.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// What was asked, as far as classification cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    /// A GET of account reference data (`categories/`, `staff/`, ...): a 404 there means the
    /// URL is not a HappyFox API, so the run cannot continue.
    ReferenceGet,
    /// Any other GET (tickets, search, users): safe to repeat.
    Get,
    /// A single write (ticket create, reply, note, contact upsert): never repeated blindly.
    Post,
    /// `POST tickets/` with a list of `items` tickets: the answer is one result per item.
    BulkCreate { items: usize },
}

impl RequestKind {
    /// Whether sending the request twice is harmless.
    pub(crate) fn is_read(self) -> bool {
        matches!(self, RequestKind::ReferenceGet | RequestKind::Get)
    }
}

/// How a request failed below HTTP. The distinction that matters is whether any byte of
/// the request can have reached HappyFox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    /// DNS, TCP or TLS failed before the request was written: nothing was sent.
    Connect,
    /// The request went out but no complete answer came back in time.
    Timeout,
    /// The connection broke after the request was (maybe) written.
    ConnectionLost,
}

/// What came back, borrowed from the raw response so classification stays pure.
#[derive(Debug, Clone, Copy)]
pub enum Reply<'a> {
    Http {
        status: u16,
        /// The `Retry-After` header, verbatim.
        retry_after: Option<&'a str>,
        /// The `Location` header of a redirect (never followed).
        location: Option<&'a str>,
        body: &'a [u8],
    },
    Transport(TransportFailure),
}

/// One field's complaints, as HappyFox reports them. `__all__` means the whole request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub errors: Vec<String>,
}

/// A request HappyFox refused for good: resending it unchanged would fail the same way.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiError {
    /// HTTP status, or 200 for one failed item of a bulk create.
    pub status: u16,
    /// Per-field errors when the body had them.
    pub fields: Vec<FieldError>,
    /// The body text when it had no recognisable error shape (trimmed, shortened).
    pub message: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.fields.is_empty() {
            match &self.message {
                Some(m) if !m.is_empty() => write!(f, "HTTP {}: {m}", self.status),
                _ => write!(f, "HTTP {}", self.status),
            }
        } else {
            let parts: Vec<String> = self
                .fields
                .iter()
                .map(|fe| {
                    let joined = fe.errors.join(" ");
                    if fe.field == "__all__" || fe.field.is_empty() {
                        joined
                    } else {
                        format!("{}: {joined}", fe.field)
                    }
                })
                .collect();
            f.write_str(&parts.join("; "))
        }
    }
}

/// One item of a bulk create's answer, in request order.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemResult {
    Created { id: u64, display_id: String },
    Failed(ApiError),
}

/// Why the run must stop: nothing later can succeed until the user fixes something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fatal {
    #[error(
        "HappyFox rejected the API credentials (HTTP 401): check HAPPYFOX_API_KEY and HAPPYFOX_AUTH_CODE"
    )]
    Unauthorized,
    #[error(
        "HappyFox denied access (HTTP 403): the API key lacks a permission this needs; check HAPPYFOX_API_KEY and HAPPYFOX_AUTH_CODE and the key's role"
    )]
    Forbidden,
    #[error(
        "the server has no HappyFox API here (HTTP 404 on a reference endpoint): check --url / HAPPYFOX_URL"
    )]
    NotHappyFox,
    #[error(
        "the server answered with a redirect (HTTP {status}{}); redirects are never followed because HappyFox turns a redirected POST into a GET: use the final URL in --url / HAPPYFOX_URL",
        location.as_deref().map(|l| format!(" to {l}")).unwrap_or_default()
    )]
    Redirect {
        status: u16,
        location: Option<String>,
    },
}

/// The decision for one response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// Done; the parsed body (`Null` when it was empty).
    Success(Value),
    /// A bulk create answered item by item; some may have failed.
    BulkItems(Vec<ItemResult>),
    /// Throttled: nothing was done; wait this long (everyone, not just this request).
    RetryAfter(Duration),
    /// Nothing was done (or the request is a read): send it again after a short backoff.
    RetryNow(String),
    /// A write that may or may not have happened: reconcile before anything is resent.
    Unknown(String),
    /// Refused for good: journal it against the record; do not retry.
    Permanent(ApiError),
    /// Stop the whole run.
    Fatal(Fatal),
}

/// Decides what a response means. `now` (for HTTP-date `Retry-After`) and `lockout` (the
/// wait when a throttling answer says nothing, HappyFox's 10 minutes by default) are
/// arguments so the function stays pure.
pub(crate) fn classify(
    kind: RequestKind,
    reply: &Reply<'_>,
    now: jiff::Timestamp,
    lockout: Duration,
) -> Outcome {
    let (status, retry_after, location, body) = match *reply {
        Reply::Transport(TransportFailure::Connect) => {
            return Outcome::RetryNow("could not connect; nothing was sent".into());
        }
        Reply::Transport(failure) => {
            let what = match failure {
                TransportFailure::Timeout => "timed out waiting for the answer",
                _ => "the connection was lost before the answer arrived",
            };
            return if kind.is_read() {
                Outcome::RetryNow(what.into())
            } else {
                Outcome::Unknown(format!("{what}; the write may have happened"))
            };
        }
        Reply::Http {
            status,
            retry_after,
            location,
            body,
        } => (status, retry_after, location, body),
    };
    match status {
        200..=299 => success(kind, body),
        300..=399 => Outcome::Fatal(Fatal::Redirect {
            status,
            location: location.map(str::to_owned),
        }),
        401 => Outcome::Fatal(Fatal::Unauthorized),
        403 => Outcome::Fatal(Fatal::Forbidden),
        404 if kind == RequestKind::ReferenceGet => Outcome::Fatal(Fatal::NotHappyFox),
        // The server gave up waiting for our request body: it did not act on it.
        408 => Outcome::RetryNow("HTTP 408: the server did not receive the whole request".into()),
        429 => Outcome::RetryAfter(wait_time(retry_after, None, now, lockout)),
        503 => Outcome::RetryAfter(wait_time(retry_after, Some(body), now, lockout)),
        400..=499 => Outcome::Permanent(api_error(status, body)),
        _ if kind.is_read() => Outcome::RetryNow(format!("HTTP {status} on a read")),
        _ => Outcome::Unknown(format!(
            "HTTP {status} on a write; the write may have happened"
        )),
    }
}

fn success(kind: RequestKind, body: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(body);
    let value = if text.trim().is_empty() {
        Value::Null
    } else {
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => v,
            Err(_) if kind.is_read() => {
                return Outcome::Permanent(ApiError {
                    status: 200,
                    fields: Vec::new(),
                    message: Some(format!(
                        "the answer is not JSON (is the URL a HappyFox account?): {}",
                        shorten(&text)
                    )),
                });
            }
            Err(_) => {
                return Outcome::Unknown(
                    "the write was accepted but its answer is not JSON".into(),
                );
            }
        }
    };
    let RequestKind::BulkCreate { items } = kind else {
        return Outcome::Success(value);
    };
    let Value::Array(entries) = value else {
        return Outcome::Unknown("the bulk create answer is not a list".into());
    };
    if entries.len() != items {
        return Outcome::Unknown(format!(
            "the bulk create answer has {} results for {items} tickets",
            entries.len()
        ));
    }
    let mut results = Vec::with_capacity(entries.len());
    for entry in &entries {
        let created = entry.get("success").and_then(Value::as_bool) == Some(true);
        let id = entry.get("id").and_then(Value::as_u64);
        match (created, id) {
            (true, Some(id)) => results.push(ItemResult::Created {
                id,
                display_id: entry
                    .get("display_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            }),
            // Claims success without an id: we cannot record it, so reconcile it.
            (true, None) => {
                return Outcome::Unknown("a bulk create item succeeded without an id".into());
            }
            (false, _) => results.push(ItemResult::Failed(error_from_value(200, entry))),
        }
    }
    Outcome::BulkItems(results)
}

/// Parses both documented error shapes (`[{field, errors}]` and `{field: msg | [msg]}`),
/// plus `errors` as an alternative key, falling back to the body text.
fn api_error(status: u16, body: &[u8]) -> ApiError {
    let text = String::from_utf8_lossy(body);
    match serde_json::from_str::<Value>(&text) {
        Ok(value) => error_from_value(status, &value),
        Err(_) => ApiError {
            status,
            fields: Vec::new(),
            message: Some(shorten(&text)).filter(|m| !m.is_empty()),
        },
    }
}

fn error_from_value(status: u16, value: &Value) -> ApiError {
    let raw = value.get("error").or_else(|| value.get("errors"));
    let mut fields = Vec::new();
    let mut message = None;
    match raw {
        Some(Value::Array(list)) => {
            for item in list {
                match item {
                    Value::Object(o) => fields.push(FieldError {
                        field: o
                            .get("field")
                            .and_then(Value::as_str)
                            .unwrap_or("__all__")
                            .to_owned(),
                        errors: messages(o.get("errors").or_else(|| o.get("error"))),
                    }),
                    other => fields.push(FieldError {
                        field: "__all__".into(),
                        errors: messages(Some(other)),
                    }),
                }
            }
        }
        Some(Value::Object(map)) => {
            for (field, msgs) in map {
                fields.push(FieldError {
                    field: field.clone(),
                    errors: messages(Some(msgs)),
                });
            }
        }
        Some(Value::String(s)) => message = Some(shorten(s)),
        _ => {
            if let Some(s) = value.as_str() {
                message = Some(shorten(s));
            } else if !value.is_null() && value.get("success").is_none() {
                message = Some(shorten(&value.to_string()));
            }
        }
    }
    ApiError {
        status,
        fields,
        message,
    }
}

fn messages(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(list)) => list
            .iter()
            .map(|m| {
                m.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| m.to_string())
            })
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other.to_string()],
    }
}

/// Longest stretch of server text kept in an error: enough to read, not a whole HTML page.
const MAX_MESSAGE: usize = 300;

fn shorten(text: &str) -> String {
    let t = text.trim();
    if t.chars().count() <= MAX_MESSAGE {
        t.to_owned()
    } else {
        let cut: String = t.chars().take(MAX_MESSAGE).collect();
        format!("{cut}…")
    }
}

/// Throttling waits are honoured up to an hour: beyond that a header is more likely wrong
/// than meant, and the lockout HappyFox documents is ten minutes.
const MAX_WAIT: Duration = Duration::from_secs(3600);
/// A throttled request never comes back sooner than this, so a `Retry-After: 0` cannot
/// turn into a busy loop that extends the lockout.
const MIN_WAIT: Duration = Duration::from_secs(1);

fn wait_time(
    retry_after: Option<&str>,
    body: Option<&[u8]>,
    now: jiff::Timestamp,
    lockout: Duration,
) -> Duration {
    let wait = retry_after
        .and_then(|h| parse_retry_after(h, now))
        .or_else(|| body.and_then(seconds_in_body))
        .unwrap_or(lockout);
    wait.clamp(MIN_WAIT, MAX_WAIT.max(lockout))
}

/// `Retry-After` is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let delta = when.as_millisecond().saturating_sub(now.as_millisecond());
    Some(Duration::from_millis(u64::try_from(delta).unwrap_or(0)))
}

/// Old HappyFox accounts answer 503 "with the time to wait before retrying in the response
/// body"; the format is undocumented, so take the first "N second(s)" / "N sec" we see.
fn seconds_in_body(body: &[u8]) -> Option<Duration> {
    let text = String::from_utf8_lossy(body).to_lowercase();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let number = &text[start..i];
            let rest = text[i..].trim_start();
            if rest.starts_with("sec") || rest.starts_with('s') && !rest.starts_with("st") {
                if let Ok(n) = number.parse::<u64>() {
                    return Some(Duration::from_secs(n));
                }
            } else if rest.starts_with("min")
                && let Ok(n) = number.parse::<u64>()
            {
                return Some(Duration::from_secs(n.saturating_mul(60)));
            }
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LOCKOUT: Duration = Duration::from_secs(600);

    fn now() -> jiff::Timestamp {
        "2026-11-27T12:00:00Z".parse().unwrap()
    }

    fn http(status: u16, body: &str) -> Reply<'_> {
        Reply::Http {
            status,
            retry_after: None,
            location: None,
            body: body.as_bytes(),
        }
    }

    fn field(field: &str, errors: &[&str]) -> FieldError {
        FieldError {
            field: field.into(),
            errors: errors.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn permanent(status: u16, fields: Vec<FieldError>) -> Outcome {
        Outcome::Permanent(ApiError {
            status,
            fields,
            message: None,
        })
    }

    use RequestKind::*;
    use TransportFailure::*;

    #[test]
    fn every_row_of_the_table() {
        let bulk2 = r##"[{"display_id":"#DC00000011","id":11,"success":true},
            {"success":false,"error":[{"field":"category","errors":["This field is required."]}]}]"##;
        let rows: Vec<(&str, RequestKind, Reply<'_>, Outcome)> = vec![
            ("get ok", Get, http(200, r#"{"a":1}"#), Outcome::Success(json!({"a":1}))),
            ("reference ok", ReferenceGet, http(200, "[]"), Outcome::Success(json!([]))),
            ("post ok", Post, http(200, r#"{"id":3}"#), Outcome::Success(json!({"id":3}))),
            ("post empty body", Post, http(201, ""), Outcome::Success(Value::Null)),
            ("post non-json 200", Post, http(200, "<html>"), Outcome::Unknown(
                "the write was accepted but its answer is not JSON".into())),
            ("get non-json 200", Get, http(200, "<html>"), Outcome::Permanent(ApiError {
                status: 200, fields: vec![],
                message: Some("the answer is not JSON (is the URL a HappyFox account?): <html>".into()) })),
            ("bulk items", BulkCreate { items: 2 }, http(200, bulk2), Outcome::BulkItems(vec![
                ItemResult::Created { id: 11, display_id: "#DC00000011".into() },
                ItemResult::Failed(ApiError { status: 200, fields: vec![field("category", &["This field is required."])], message: None }),
            ])),
            ("bulk count mismatch", BulkCreate { items: 3 }, http(200, bulk2), Outcome::Unknown(
                "the bulk create answer has 2 results for 3 tickets".into())),
            ("bulk not a list", BulkCreate { items: 1 }, http(200, "{}"), Outcome::Unknown(
                "the bulk create answer is not a list".into())),
            ("bulk success without id", BulkCreate { items: 1 }, http(200, r#"[{"success":true}]"#),
                Outcome::Unknown("a bulk create item succeeded without an id".into())),
            ("bulk whole-request 400", BulkCreate { items: 1 }, http(400, r#"{"error":[{"field":"__all__","errors":["Too many"]}]}"#),
                permanent(400, vec![field("__all__", &["Too many"])])),
            ("redirect", Post, Reply::Http { status: 301, retry_after: None, location: Some("https://acme.happyfox.com/x"), body: b"" },
                Outcome::Fatal(Fatal::Redirect { status: 301, location: Some("https://acme.happyfox.com/x".into()) })),
            ("400 list shape", Post, http(400, r#"{"error":[{"field":"category","errors":["This field is required."]}]}"#),
                permanent(400, vec![field("category", &["This field is required."])])),
            ("400 object shape", Post, http(400, r#"{"error":{"t-cf-2":"This field should be filled"}}"#),
                permanent(400, vec![field("t-cf-2", &["This field should be filled"])])),
            ("400 object of lists", Post, http(400, r#"{"error":{"email":["bad","worse"]}}"#),
                permanent(400, vec![field("email", &["bad", "worse"])])),
            ("400 __all__", Post, http(400, r#"{"error":[{"field":"__all__","errors":["Request-wide"]}]}"#),
                permanent(400, vec![field("__all__", &["Request-wide"])])),
            ("400 plain text", Post, http(400, "Bad things"), Outcome::Permanent(ApiError {
                status: 400, fields: vec![], message: Some("Bad things".into()) })),
            ("401", Post, http(401, ""), Outcome::Fatal(Fatal::Unauthorized)),
            ("401 on get", Get, http(401, ""), Outcome::Fatal(Fatal::Unauthorized)),
            ("403", Get, http(403, ""), Outcome::Fatal(Fatal::Forbidden)),
            ("404 reference", ReferenceGet, http(404, "Cannot find"), Outcome::Fatal(Fatal::NotHappyFox)),
            ("404 ticket", Get, http(404, "Cannot find the requested object"), Outcome::Permanent(ApiError {
                status: 404, fields: vec![], message: Some("Cannot find the requested object".into()) })),
            ("408", Post, http(408, ""), Outcome::RetryNow("HTTP 408: the server did not receive the whole request".into())),
            ("429 no header", Post, http(429, ""), Outcome::RetryAfter(LOCKOUT)),
            ("429 seconds", Post, Reply::Http { status: 429, retry_after: Some("30"), location: None, body: b"" },
                Outcome::RetryAfter(Duration::from_secs(30))),
            ("429 zero", Get, Reply::Http { status: 429, retry_after: Some("0"), location: None, body: b"" },
                Outcome::RetryAfter(Duration::from_secs(1))),
            ("429 http-date", Get, Reply::Http { status: 429, retry_after: Some("Fri, 27 Nov 2026 12:02:00 GMT"), location: None, body: b"" },
                Outcome::RetryAfter(Duration::from_secs(120))),
            ("429 garbage header", Get, Reply::Http { status: 429, retry_after: Some("soon"), location: None, body: b"" },
                Outcome::RetryAfter(LOCKOUT)),
            ("503 body seconds", Post, http(503, "Rate limit exceeded. Try again in 45 seconds."),
                Outcome::RetryAfter(Duration::from_secs(45))),
            ("503 body json", Get, http(503, r#"{"error":"retry after 12 sec"}"#),
                Outcome::RetryAfter(Duration::from_secs(12))),
            ("503 header wins", Get, Reply::Http { status: 503, retry_after: Some("5"), location: None, body: b"wait 45 seconds" },
                Outcome::RetryAfter(Duration::from_secs(5))),
            ("503 nothing", Post, http(503, "Service Unavailable"), Outcome::RetryAfter(LOCKOUT)),
            ("500 on get", Get, http(500, ""), Outcome::RetryNow("HTTP 500 on a read".into())),
            ("502 on reference get", ReferenceGet, http(502, ""), Outcome::RetryNow("HTTP 502 on a read".into())),
            ("500 on post", Post, http(500, ""), Outcome::Unknown("HTTP 500 on a write; the write may have happened".into())),
            ("504 on bulk", BulkCreate { items: 100 }, http(504, ""), Outcome::Unknown("HTTP 504 on a write; the write may have happened".into())),
            ("connect get", Get, Reply::Transport(Connect), Outcome::RetryNow("could not connect; nothing was sent".into())),
            ("connect post", Post, Reply::Transport(Connect), Outcome::RetryNow("could not connect; nothing was sent".into())),
            ("timeout get", Get, Reply::Transport(Timeout), Outcome::RetryNow("timed out waiting for the answer".into())),
            ("timeout post", Post, Reply::Transport(Timeout), Outcome::Unknown("timed out waiting for the answer; the write may have happened".into())),
            ("lost bulk", BulkCreate { items: 5 }, Reply::Transport(ConnectionLost), Outcome::Unknown(
                "the connection was lost before the answer arrived; the write may have happened".into())),
            ("lost get", ReferenceGet, Reply::Transport(ConnectionLost), Outcome::RetryNow(
                "the connection was lost before the answer arrived".into())),
        ];
        for (name, kind, reply, expected) in rows {
            assert_eq!(
                classify(kind, &reply, now(), LOCKOUT),
                expected,
                "row {name:?}"
            );
        }
    }

    #[test]
    fn lockout_option_is_the_fallback() {
        let short = Duration::from_secs(7);
        assert_eq!(
            classify(Post, &http(429, ""), now(), short),
            Outcome::RetryAfter(short)
        );
    }

    #[test]
    fn retry_after_in_the_past_waits_the_minimum() {
        let reply = Reply::Http {
            status: 429,
            retry_after: Some("Fri, 27 Nov 2026 11:00:00 GMT"),
            location: None,
            body: b"",
        };
        assert_eq!(
            classify(Get, &reply, now(), LOCKOUT),
            Outcome::RetryAfter(MIN_WAIT)
        );
    }

    #[test]
    fn api_errors_read_like_sentences() {
        let e = ApiError {
            status: 400,
            fields: vec![
                field("category", &["Required."]),
                field("__all__", &["Whole."]),
            ],
            message: None,
        };
        assert_eq!(e.to_string(), "category: Required.; Whole.");
        let e = ApiError {
            status: 502,
            fields: vec![],
            message: None,
        };
        assert_eq!(e.to_string(), "HTTP 502");
    }

    #[test]
    fn fatal_messages_name_the_variables() {
        let m = Fatal::Unauthorized.to_string();
        assert!(m.contains("HAPPYFOX_API_KEY") && m.contains("HAPPYFOX_AUTH_CODE"));
    }
}
