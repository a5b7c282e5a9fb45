//! The request loop: every GET and write the client sends is paced, authenticated,
//! classified and retried here, and only here.
//!
//! A GET is repeated (after a backoff, or after the lockout) while repeating is safe and
//! its budget (attempts and total time, `budget.rs`) lasts. A write is resent only when
//! HappyFox provably did nothing (throttled, or the connection never opened); an unknown
//! outcome goes back to the caller to reconcile, and the same write asked for again once
//! its budget is spent is refused unsent. Whatever comes back, errors included, is
//! scrubbed of the credentials first; every retry and wait is said on stderr (`notice.rs`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use super::budget::{Budget, shown, write_key};
use super::multipart::{form_fields, multipart_form};
use super::pace::Cut;
use super::transport::{describe, transport_failure};
use super::{
    ApiError, Client, ClientError, FilePart, ItemResult, Method, Outcome, REFERENCE_ENDPOINTS,
    Reply, RequestKind, Signal, TransportFailure, classify,
};

/// What a write came to, for the caller to journal.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    /// Done; the answer's body.
    Done(Value),
    /// A bulk create's per-item results, in request order.
    Items(Vec<ItemResult>),
    /// Refused for good: journal the error against the record(s); do not resend.
    Rejected(ApiError),
    /// It may or may not have happened: reconcile (search the markers) before resending.
    Unknown(String),
}

/// One sent request's classified answer plus what the transport said, for messages.
struct Sent {
    outcome: Outcome,
    detail: Option<String>,
}

/// A write's body, kept in a form that can be rebuilt for each attempt.
enum WriteBody<'a> {
    Json(Vec<u8>),
    Multipart {
        fields: Vec<(String, String)>,
        files: &'a [FilePart],
    },
}

impl WriteBody<'_> {
    /// What identifies this write across resends (see `budget.rs`).
    fn key(&self, path: &str) -> [u8; 32] {
        match self {
            WriteBody::Json(bytes) => write_key(path, bytes),
            WriteBody::Multipart { fields, files } => {
                let mut text = Vec::new();
                for (k, v) in fields {
                    text.extend_from_slice(format!("{k}={v}\n").as_bytes());
                }
                for f in files.iter() {
                    text.extend_from_slice(format!("file {}={}\n", f.field, f.name).as_bytes());
                }
                write_key(path, &text)
            }
        }
    }
}

/// What came back: status, `Retry-After`, `Location` and body; or how reading it failed.
type ReplyParts = (u16, Option<String>, Option<String>, Vec<u8>);

async fn read_reply(
    response: reqwest::Response,
) -> (Result<ReplyParts, TransportFailure>, Option<String>) {
    let status = response.status().as_u16();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = header(reqwest::header::RETRY_AFTER);
    let location = header(reqwest::header::LOCATION);
    match response.bytes().await {
        Ok(body) => (Ok((status, retry_after, location, body.to_vec())), None),
        Err(e) => (Err(transport_failure(&e)), Some(describe(&e))),
    }
}

/// A reason with what the transport said, once.
fn with_detail(reason: String, detail: Option<String>) -> String {
    match detail {
        Some(d) if !reason.contains(&d) => format!("{reason} ({d})"),
        _ => reason,
    }
}

impl Client {
    /// A paced GET, repeated (with backoff, or after the lockout) while repeating is safe
    /// and its budget lasts; each attempt waits at most [`super::ClientOptions::read_timeout`].
    pub async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ClientError> {
        let kind = if REFERENCE_ENDPOINTS.contains(&path.trim_start_matches('/')) {
            RequestKind::ReferenceGet
        } else {
            RequestKind::Get
        };
        let url = self.inner.target.endpoint(path)?;
        let budget = Budget::start(&self.inner.options);
        let mut failures = 0;
        let mut throttles = 0;
        loop {
            let timeout = budget.attempt_timeout(self.inner.options.read_timeout);
            let sent = self
                .send(Method::Get, kind, timeout, || {
                    self.inner
                        .http
                        .get(url.clone())
                        .query(query)
                        .timeout(timeout)
                })
                .await?;
            match sent.outcome {
                Outcome::Success(v) => return Ok(v),
                Outcome::BulkItems(_) => {
                    return Err(ClientError::Unexpected {
                        path: path.into(),
                        detail: "per-item results for a GET".into(),
                    });
                }
                Outcome::RetryAfter(_) => {
                    throttles += 1;
                    if throttles > self.inner.options.throttle_retries {
                        return Err(ClientError::Throttled {
                            path: path.into(),
                            times: throttles,
                        });
                    }
                }
                Outcome::RetryNow(reason) | Outcome::Unknown(reason) => {
                    failures += 1;
                    let wait = self.backoff(failures);
                    if !budget.allows(failures, wait) {
                        return Err(self.gave_up(path, failures, &budget, reason, sent.detail));
                    }
                    let reason = self
                        .inner
                        .credentials
                        .scrub(&with_detail(reason, sent.detail));
                    self.inner.notices.say(format!(
                        "GET {path}: {reason}; trying again in {} (attempt {} of at most {}, giving up {} after the first)",
                        shown(wait),
                        failures + 1,
                        budget.attempts(),
                        shown(self.inner.options.retry_for),
                    ));
                    if !self.inner.pacer.sleep(wait).await {
                        return Err(ClientError::Stopped { path: path.into() });
                    }
                }
                Outcome::Permanent(error) => {
                    return Err(ClientError::Rejected {
                        path: path.into(),
                        error: self.scrub_api(error),
                    });
                }
                Outcome::Fatal(f) => return Err(ClientError::Fatal(f)),
            }
        }
    }

    /// A paced single write. Resent only when HappyFox provably did nothing (throttled, or
    /// the connection never opened); an unknown outcome is returned for the caller to
    /// reconcile, never retried here.
    pub async fn post_json(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<WriteOutcome, ClientError> {
        self.write(path, RequestKind::Post, body).await
    }

    /// `POST tickets/` (or `users/`) with up to 100 items; same retry rules as
    /// [`Client::post_json`], per-item results in request order.
    pub async fn bulk_create<T: Serialize>(
        &self,
        path: &str,
        items: &[T],
    ) -> Result<WriteOutcome, ClientError> {
        self.write(path, RequestKind::BulkCreate { items: items.len() }, &items)
            .await
    }

    /// A paced single write as `multipart/form-data`: the text `fields` (an object; see
    /// [`form_fields`]) plus `files` streamed from disk, for ticket creates, replies and
    /// notes with attachments and for `ticket-inline-attachment`. Same retry rules as
    /// [`Client::post_json`]; the files are reopened for each attempt, since a streamed
    /// body is used up by sending it.
    pub async fn post_multipart(
        &self,
        path: &str,
        fields: &impl Serialize,
        files: &[FilePart],
    ) -> Result<WriteOutcome, ClientError> {
        let fields = form_fields(path, fields)?;
        self.write_body(
            path,
            RequestKind::Post,
            WriteBody::Multipart { fields, files },
        )
        .await
    }

    async fn write(
        &self,
        path: &str,
        kind: RequestKind,
        body: &(impl Serialize + ?Sized),
    ) -> Result<WriteOutcome, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Encode {
            path: path.into(),
            detail: e.to_string(),
        })?;
        self.write_body(path, kind, WriteBody::Json(bytes)).await
    }

    async fn write_body(
        &self,
        path: &str,
        kind: RequestKind,
        body: WriteBody<'_>,
    ) -> Result<WriteOutcome, ClientError> {
        let url = self.inner.target.endpoint(path)?;
        let key = body.key(path);
        let options = &self.inner.options;
        if let Some(spent) = self.inner.unanswered.spent(&key, options) {
            return Err(ClientError::NoAnswer {
                path: path.into(),
                url: self.inner.target.account_url(),
                attempts: spent.count,
                elapsed: shown(spent.first.elapsed()),
                reason: spent.last_reason,
            });
        }
        let what = match kind {
            RequestKind::BulkCreate { items } => format!("POST {path} ({items} tickets)"),
            _ => format!("POST {path}"),
        };
        let budget = Budget::start(options);
        let mut failures = 0;
        let mut throttles = 0;
        loop {
            let request = self.inner.http.post(url.clone());
            let (request, timeout) = match &body {
                WriteBody::Json(bytes) => (
                    request
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(bytes.clone()),
                    options.request_timeout,
                ),
                WriteBody::Multipart { fields, files } => {
                    let (form, bytes) = multipart_form(path, fields, files).await?;
                    // A large upload needs longer than a JSON write: allow for 256 KiB/s.
                    let timeout =
                        options.request_timeout + Duration::from_secs(bytes / (256 * 1024));
                    (request.multipart(form).timeout(timeout), timeout)
                }
            };
            let sent = self.send(Method::Post, kind, timeout, || request).await?;
            let definite = !matches!(
                sent.outcome,
                Outcome::Unknown(_) | Outcome::RetryNow(_) | Outcome::RetryAfter(_)
            );
            if definite {
                self.inner.unanswered.forget(&key);
            }
            match sent.outcome {
                Outcome::Success(v) => return Ok(WriteOutcome::Done(v)),
                Outcome::BulkItems(items) => {
                    return Ok(WriteOutcome::Items(
                        items
                            .into_iter()
                            .map(|i| match i {
                                ItemResult::Failed(e) => ItemResult::Failed(self.scrub_api(e)),
                                created => created,
                            })
                            .collect(),
                    ));
                }
                Outcome::RetryAfter(_) => {
                    throttles += 1;
                    if throttles > options.throttle_retries {
                        return Err(ClientError::Throttled {
                            path: path.into(),
                            times: throttles,
                        });
                    }
                }
                Outcome::RetryNow(reason) => {
                    failures += 1;
                    let wait = self.backoff(failures);
                    if !budget.allows(failures, wait) {
                        return Err(self.gave_up(path, failures, &budget, reason, sent.detail));
                    }
                    let reason = self
                        .inner
                        .credentials
                        .scrub(&with_detail(reason, sent.detail));
                    self.inner.notices.say(format!(
                        "{what}: {reason}; trying again in {} (attempt {} of at most {})",
                        shown(wait),
                        failures + 1,
                        budget.attempts(),
                    ));
                    if !self.inner.pacer.sleep(wait).await {
                        return Err(ClientError::Stopped { path: path.into() });
                    }
                }
                Outcome::Unknown(reason) => {
                    let reason = self
                        .inner
                        .credentials
                        .scrub(&with_detail(reason, sent.detail));
                    let count = self.inner.unanswered.record(key, &reason);
                    self.inner.notices.say(format!(
                        "{what}: {reason}; its outcome is unknown, so it is looked up before anything is sent again (unusable answer {count} of at most {} for this request)",
                        options.retries.max(1),
                    ));
                    return Ok(WriteOutcome::Unknown(reason));
                }
                Outcome::Permanent(e) => return Ok(WriteOutcome::Rejected(self.scrub_api(e))),
                Outcome::Fatal(f) => return Err(ClientError::Fatal(f)),
            }
        }
    }

    /// Sends one request once: paced, authenticated, classified, fed back to pacing.
    /// [`ClientError::Stopped`] when Ctrl-C came before it could be sent.
    async fn send(
        &self,
        method: Method,
        kind: RequestKind,
        timeout: Duration,
        build: impl FnOnce() -> reqwest::RequestBuilder,
    ) -> Result<Sent, ClientError> {
        let inner = &self.inner;
        let Some(slot) = inner.pacer.admit(method).await else {
            let path = build()
                .build()
                .map(|r| r.url().path().to_owned())
                .unwrap_or_default();
            return Err(ClientError::Stopped { path });
        };
        match method {
            Method::Get => inner.gets.fetch_add(1, Ordering::Relaxed),
            Method::Post => inner.posts.fetch_add(1, Ordering::Relaxed),
        };
        let started = Instant::now();
        let request = inner.credentials.authorize(build());
        // reqwest's own timeout is the bound; this one holds even for whatever it might
        // not cover (a connection checkout, a stalled body), so no attempt outlives it.
        let limit = timeout + inner.options.connect_timeout;
        inner.on_wire.fetch_add(1, Ordering::Relaxed);
        let answer = tokio::time::timeout(limit, async {
            match request.send().await {
                Ok(response) => Ok(read_reply(response).await),
                Err(e) => Err(e),
            }
        })
        .await;
        let (reply_owned, detail) = match answer {
            Err(_) => (
                Err(TransportFailure::Timeout),
                Some(format!("no answer within {}", shown(limit))),
            ),
            Ok(Err(e)) => (Err(transport_failure(&e)), Some(describe(&e))),
            Ok(Ok(reply)) => reply,
        };
        inner.on_wire.fetch_sub(1, Ordering::Relaxed);
        let rtt = started.elapsed();
        let (outcome, signal) = match &reply_owned {
            Ok((status, retry_after, location, body)) => {
                let reply = Reply::Http {
                    status: *status,
                    retry_after: retry_after.as_deref(),
                    location: location.as_deref(),
                    body,
                };
                let outcome = classify(kind, &reply, jiff::Timestamp::now(), inner.options.lockout);
                let signal = if *status == 429 || *status >= 500 {
                    Signal::BackPressure
                } else {
                    Signal::Answered(rtt)
                };
                (outcome, signal)
            }
            Err(failure) => {
                let reply = Reply::Transport(*failure);
                let outcome = classify(kind, &reply, jiff::Timestamp::now(), inner.options.lockout);
                let signal = match failure {
                    TransportFailure::Connect => Signal::Ignore,
                    _ => Signal::BackPressure,
                };
                (outcome, signal)
            }
        };
        inner.pacer.limit.observe(slot.waited, signal);
        if let Outcome::RetryAfter(wait) = outcome {
            let status = reply_owned.as_ref().map(|r| r.0).unwrap_or(429);
            let header = reply_owned.as_ref().ok().and_then(|r| r.1.clone());
            let cut = inner.pacer.throttle(wait, method);
            if let Some(cut) = cut {
                self.say_throttled(status, header.is_some(), wait, method, cut);
            }
        }
        drop(slot);
        Ok(Sent {
            outcome,
            detail: detail.map(|d| inner.credentials.scrub(&d)),
        })
    }

    /// The first throttling answer of a lockout: how long everyone waits and why, and
    /// the lowered ceiling.
    fn say_throttled(
        &self,
        status: u16,
        had_header: bool,
        wait: Duration,
        method: Method,
        cut: Cut,
    ) {
        let until = jiff::Zoned::now()
            .checked_add(jiff::SignedDuration::try_from(wait).unwrap_or_default())
            .map(|z| z.strftime("%H:%M:%S").to_string())
            .unwrap_or_default();
        let source = if had_header {
            "as its Retry-After says"
        } else {
            "no Retry-After, so --lockout"
        };
        let name = match method {
            Method::Get => "GET",
            Method::Post => "POST",
        };
        self.inner.notices.say(format!(
            "HappyFox throttled a request (HTTP {status}): every request waits {} ({source}), until {until}; the {name} ceiling is lowered from {} to {}/min (the account let {} through in the last minute) and recovers by {}/min",
            shown(wait),
            cut.from,
            cut.to,
            cut.let_through,
            cut.recovery_per_min,
        ));
    }

    fn backoff(&self, failures: u32) -> Duration {
        let base = self.inner.options.backoff.as_secs_f64();
        let exp = base * 2f64.powi(i32::try_from(failures.saturating_sub(1)).unwrap_or(30));
        let capped = exp.min(30.0);
        let jitter = rand::random_range(0.5..=1.0);
        Duration::from_secs_f64(capped * jitter)
    }

    fn gave_up(
        &self,
        path: &str,
        attempts: u32,
        budget: &Budget,
        reason: String,
        detail: Option<String>,
    ) -> ClientError {
        let creds = &self.inner.credentials;
        if reason.starts_with("could not connect") {
            return ClientError::Unreachable {
                url: self.inner.target.account_url(),
                detail: creds.scrub(&detail.unwrap_or(reason)),
            };
        }
        ClientError::GaveUp {
            path: path.into(),
            attempts,
            elapsed: shown(budget.elapsed()),
            reason: creds.scrub(&with_detail(reason, detail)),
        }
    }

    fn scrub_api(&self, mut e: ApiError) -> ApiError {
        let c = &self.inner.credentials;
        e.message = e.message.map(|m| c.scrub(&m));
        for f in &mut e.fields {
            f.field = c.scrub(&f.field);
            for m in &mut f.errors {
                *m = c.scrub(m);
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientOptions, Credentials, Fatal, Target};

    /// A local server that answers with whatever the test says, for paths the sandbox
    /// cannot fake (a redirect, a server echoing the Authorization header).
    async fn one_shot(response: &'static str) -> (Target, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await.unwrap();
            sock.write_all(response.as_bytes()).await.unwrap();
            sock.shutdown().await.ok();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (Target::parse(&format!("http://{addr}")).unwrap(), handle)
    }

    fn client(target: Target) -> Client {
        let creds = Credentials::new("key-abcdef", "code-uvwxyz").unwrap();
        let options = ClientOptions {
            retries: 1,
            ..ClientOptions::default()
        };
        Client::new(target, creds, options).unwrap()
    }

    #[tokio::test]
    async fn basic_auth_goes_in_a_header_and_redirects_are_not_followed() {
        let (target, server) = one_shot(
            "HTTP/1.1 302 Found\r\nLocation: https://acme.happyfox.com/api/1.1/json/tickets/\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        let c = client(target);
        let e = c
            .post_json("tickets/", &serde_json::json!({"a": 1}))
            .await
            .unwrap_err();
        let request = server.await.unwrap();
        assert!(
            request.starts_with("POST /api/1.1/json/tickets/ HTTP/1.1"),
            "{request}"
        );
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode("key-abcdef:code-uvwxyz");
        assert!(
            request.contains(&format!("authorization: Basic {token}")),
            "{request}"
        );
        assert!(
            matches!(e, ClientError::Fatal(Fatal::Redirect { status: 302, .. })),
            "{e}"
        );
    }

    #[tokio::test]
    async fn an_echoed_secret_is_scrubbed_from_errors() {
        let (target, server) = one_shot(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 62\r\n\r\n{\"error\":{\"key\":\"bad key key-abcdef with code code-uvwxyz!!\"}}",
        )
        .await;
        let c = client(target);
        let out = c
            .post_json("tickets/", &serde_json::json!({}))
            .await
            .unwrap();
        server.await.unwrap();
        let text = format!("{out:?}");
        assert!(
            !text.contains("key-abcdef") && !text.contains("code-uvwxyz"),
            "{text}"
        );
        assert!(text.contains("[redacted]"), "{text}");
    }

    #[tokio::test]
    async fn a_dropped_connection_after_sending_is_unknown() {
        let (target, server) = one_shot("").await;
        let c = client(target);
        let out = c
            .post_json("tickets/", &serde_json::json!({}))
            .await
            .unwrap();
        server.await.unwrap();
        assert!(matches!(out, WriteOutcome::Unknown(_)), "{out:?}");
        assert_eq!(c.stats().posts_sent, 1, "an unknown write is never resent");
    }
}
