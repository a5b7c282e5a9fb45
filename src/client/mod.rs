//! The HappyFox HTTP client: the only code that talks to the account.
//!
//! It exists to make three promises the rest of the tool relies on. Writes are never
//! repeated when their outcome is unknown (HappyFox has no idempotency keys, so the caller
//! reconciles through the journal instead). The account's rate limit is never hit on
//! purpose (one 429 locks the whole account out for ten minutes): see [`pace`]. And the
//! credentials never leave the client: not in URLs, errors, `Debug` output or panics
//! (`credentials.rs`).
//!
//! Every answer goes through one pure function, [`classify()`], which decides between
//! success, per-item results, waiting, retrying, reconciling, a permanent refusal and
//! stopping the run; `request.rs` is the one loop that sends, classifies and retries.
//! This file holds the [`Client`] itself, its options and its counters; beside it,
//! `multipart.rs` turns a write with files into a form, `transport.rs` describes a
//! failed connection without its URL, `error.rs` is what can go wrong, and
//! `schema_pull.rs` reads the account's reference data.

mod budget;
pub mod classify;
mod credentials;
mod error;
mod multipart;
mod notice;
pub mod pace;
mod request;
mod schema_pull;
mod transport;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;

pub use classify::{ApiError, Fatal, ItemResult, Reply};
pub(crate) use classify::{Outcome, RequestKind, TransportFailure, classify};
pub(crate) use credentials::{API_KEY_VAR, AUTH_CODE_VAR};
pub use credentials::{Credentials, Target};
pub use error::ClientError;
pub(crate) use multipart::ATTACHMENTS_FIELD;
pub use multipart::{FilePart, INLINE_FILE_FIELD};
pub use pace::ConcurrencyOptions;
pub(crate) use pace::{Method, Pacer, Signal};
pub use request::WriteOutcome;
pub(crate) use schema_pull::REFERENCE_ENDPOINTS;
pub use schema_pull::pull_schema;
pub(crate) use transport::describe;

/// Knobs of the client; [`Default`] is what a real account wants.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// POSTs per minute; HappyFox allows 300 for the whole account, 80% leaves room for
    /// anyone else using the API.
    pub post_per_min: u32,
    /// GETs per minute; HappyFox allows 500.
    pub get_per_min: u32,
    /// Requests that may go back to back at start-up (a few, so the first minute stays
    /// under the ceiling too).
    pub burst: u32,
    pub connect_timeout: Duration,
    /// For one attempt at a GET, answer included: reads are small and quick, so a server
    /// that accepts and never answers is found out in seconds, not minutes.
    pub read_timeout: Duration,
    /// For one write, answer included. Bulk creates of 100 tickets can be slow.
    pub request_timeout: Duration,
    /// How long a throttling answer that says nothing makes us wait: HappyFox's lockout.
    pub lockout: Duration,
    /// Adaptive concurrency: where it starts and the most it may reach.
    pub concurrency: ConcurrencyOptions,
    /// Attempts at one request before giving up: a GET, a write that provably was not
    /// sent, and a write whose answer was unusable (counted across the caller's resends).
    pub retries: u32,
    /// Total time one request may take over all its attempts (throttling waits, which
    /// the server orders, excepted).
    pub retry_for: Duration,
    /// No `warning:` lines on stderr (in-process tests).
    pub quiet: bool,
    /// Throttling answers accepted in a row for one request before giving up.
    pub throttle_retries: u32,
    /// First backoff after a failed read; doubles each time, with jitter, up to 30 s.
    pub backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            post_per_min: crate::happyfox::DEFAULT_POST_CEILING,
            get_per_min: crate::happyfox::DEFAULT_GET_CEILING,
            burst: 3,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            lockout: crate::happyfox::LOCKOUT,
            concurrency: ConcurrencyOptions {
                initial: 4,
                max: 32,
            },
            retries: 5,
            retry_for: Duration::from_secs(120),
            quiet: false,
            throttle_retries: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// Counters for the progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ClientStats {
    pub posts_sent: u64,
    pub gets_sent: u64,
    /// Throttling answers received; anything but 0 means the ceilings are too high.
    pub throttled: u64,
    pub concurrency: usize,
    /// Requests admitted (some may still wait for their token).
    pub in_flight: usize,
    /// Requests sent and not yet answered: what a Ctrl-C waits for.
    pub on_wire: usize,
    /// The POST ceiling now, per minute: lower than configured after a throttle.
    pub post_ceiling: u32,
}

/// A paced, authenticated HappyFox client. Cheap to clone; clones share pacing, so one
/// client per run keeps every request under the same account-wide ceiling.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    target: Target,
    credentials: Credentials,
    pacer: Pacer,
    options: ClientOptions,
    posts: AtomicU64,
    gets: AtomicU64,
    on_wire: AtomicUsize,
    unanswered: budget::Unanswered,
    notices: notice::Notices,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.inner.target.account_url())
            .field("credentials", &self.inner.credentials)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(
        target: Target,
        credentials: Credentials,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .user_agent(concat!("hfmigrate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Setup(e.without_url().to_string()))?;
        let pacer = Pacer::new(
            options.post_per_min,
            options.get_per_min,
            options.burst,
            options.concurrency,
        );
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                target,
                credentials,
                pacer,
                notices: notice::Notices::new(options.quiet),
                options,
                posts: AtomicU64::new(0),
                gets: AtomicU64::new(0),
                on_wire: AtomicUsize::new(0),
                unanswered: budget::Unanswered::default(),
            }),
        })
    }

    pub fn target(&self) -> &Target {
        &self.inner.target
    }

    pub fn stats(&self) -> ClientStats {
        let p = &self.inner.pacer;
        ClientStats {
            posts_sent: self.inner.posts.load(Ordering::Relaxed),
            gets_sent: self.inner.gets.load(Ordering::Relaxed),
            throttled: p.throttled.load(Ordering::Relaxed),
            concurrency: p.limit.limit(),
            in_flight: p.limit.in_flight(),
            on_wire: self.inner.on_wire.load(Ordering::Relaxed),
            post_ceiling: p.post.per_min(),
        }
    }

    /// Stops sending (Ctrl-C): every request still waiting for its turn (a slot, a token,
    /// the end of a lockout or of a backoff) returns [`ClientError::Stopped`] at once,
    /// unsent; requests already on the wire are answered as usual. For all clones, and
    /// for good: a stopped client sends nothing more.
    pub fn stop(&self) {
        self.inner.pacer.stop();
    }

    /// Whether [`Client::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        self.inner.pacer.is_stopping()
    }

    /// The last retry, timeout or throttle the client reported, for a progress line.
    pub fn last_problem(&self) -> Option<String> {
        self.inner.notices.last()
    }
}
