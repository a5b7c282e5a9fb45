//! How long and how often one request may be tried before the run gives up on it.
//!
//! A server that accepts connections and never answers, or answers every write with an
//! HTML page, must not keep an import busy for hours: every request gets a budget of
//! attempts and of total time ([`ClientOptions::retries`], [`ClientOptions::retry_for`]),
//! and when it is spent the caller gets an error that says what the last answer was.
//!
//! A write whose answer was unusable is never resent here (its outcome is unknown; the
//! caller reconciles first), so its attempts are counted across calls: [`Unanswered`]
//! remembers each such write by a digest of its path and body, and the same write asked
//! for again after its budget is spent is refused without being sent. Throttling waits
//! (429/503) are the server's own instructions and are bounded by
//! [`ClientOptions::throttle_retries`] instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::ClientOptions;

/// The budget of one call: its deadline and its attempts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    started: Instant,
    limit: Duration,
    attempts: u32,
}

/// No attempt is given less time than this, however little of the budget is left: an
/// answer needs a round trip.
const MIN_ATTEMPT: Duration = Duration::from_secs(1);

impl Budget {
    pub(super) fn start(options: &ClientOptions) -> Budget {
        Budget {
            started: Instant::now(),
            limit: options.retry_for,
            attempts: options.retries.max(1),
        }
    }

    /// The timeout of the next attempt: `timeout`, but never past the deadline.
    pub(super) fn attempt_timeout(&self, timeout: Duration) -> Duration {
        let left = self.limit.saturating_sub(self.started.elapsed());
        timeout.min(left).max(MIN_ATTEMPT)
    }

    /// Whether attempt number `failures + 1`, after waiting `wait`, is still within it.
    pub(super) fn allows(&self, failures: u32, wait: Duration) -> bool {
        failures < self.attempts && self.started.elapsed() + wait < self.limit
    }

    pub(super) fn attempts(&self) -> u32 {
        self.attempts
    }

    pub(super) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// A write whose answer was unusable, remembered so that sending it again counts.
#[derive(Debug, Clone)]
pub(super) struct Attempts {
    pub(super) count: u32,
    pub(super) first: Instant,
    pub(super) last_reason: String,
}

/// Writes with an unknown outcome, by digest of path and body; forgotten when the same
/// write gets a definite answer.
#[derive(Debug, Default)]
pub(super) struct Unanswered {
    writes: Mutex<HashMap<[u8; 32], Attempts>>,
}

/// What identifies a write across resends: its path and the bytes of its body (for a
/// multipart write, its fields and the files' paths).
pub(super) fn write_key(path: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    h.finalize().into()
}

impl Unanswered {
    /// The earlier attempts at this write when its budget is spent (then it must not be
    /// sent again), else `None`.
    pub(super) fn spent(&self, key: &[u8; 32], options: &ClientOptions) -> Option<Attempts> {
        let writes = lock(&self.writes);
        let a = writes.get(key)?;
        (a.count >= options.retries.max(1) || a.first.elapsed() >= options.retry_for)
            .then(|| a.clone())
    }

    /// Counts one more unknown outcome; returns the attempts so far.
    pub(super) fn record(&self, key: [u8; 32], reason: &str) -> u32 {
        let mut writes = lock(&self.writes);
        let a = writes.entry(key).or_insert_with(|| Attempts {
            count: 0,
            first: Instant::now(),
            last_reason: String::new(),
        });
        a.count += 1;
        a.last_reason = reason.to_owned();
        a.count
    }

    /// The write got a definite answer: its earlier attempts no longer matter.
    pub(super) fn forget(&self, key: &[u8; 32]) {
        lock(&self.writes).remove(key);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A duration as the messages write it: `800ms`, `12s`, `1.5s`, `4m05s`.
pub(crate) fn shown(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 10_000 && !ms.is_multiple_of(1000) {
        format!("{:.1}s", d.as_secs_f64())
    } else if d.as_secs() < 60 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() < 3600 {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{}h{:02}m", d.as_secs() / 3600, (d.as_secs() % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(retries: u32, retry_for: Duration) -> ClientOptions {
        ClientOptions {
            retries,
            retry_for,
            ..ClientOptions::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_budget_ends_by_attempts_or_by_time() {
        let b = Budget::start(&options(3, Duration::from_secs(60)));
        assert!(b.allows(1, Duration::from_secs(1)));
        assert!(b.allows(2, Duration::from_secs(1)));
        assert!(!b.allows(3, Duration::from_secs(1)), "three attempts made");
        assert_eq!(
            b.attempt_timeout(Duration::from_secs(30)),
            Duration::from_secs(30)
        );
        tokio::time::advance(Duration::from_secs(45)).await;
        assert_eq!(
            b.attempt_timeout(Duration::from_secs(30)),
            Duration::from_secs(15)
        );
        assert!(!b.allows(1, Duration::from_secs(20)), "past the deadline");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(b.attempt_timeout(Duration::from_secs(30)), MIN_ATTEMPT);
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_write_is_refused_once_its_budget_is_spent() {
        let o = options(2, Duration::from_secs(300));
        let u = Unanswered::default();
        let key = write_key("tickets/", b"[1]");
        let other = write_key("tickets/", b"[2]");
        assert!(u.spent(&key, &o).is_none());
        assert_eq!(u.record(key, "not JSON"), 1);
        assert!(u.spent(&key, &o).is_none());
        assert_eq!(u.record(key, "not JSON"), 2);
        let spent = u.spent(&key, &o).expect("two attempts spend it");
        assert_eq!(spent.last_reason, "not JSON");
        assert!(
            u.spent(&other, &o).is_none(),
            "another body has its own budget"
        );
        u.forget(&key);
        assert!(u.spent(&key, &o).is_none());
        // Time spends it too.
        u.record(other, "timed out");
        tokio::time::advance(Duration::from_secs(301)).await;
        assert!(u.spent(&other, &o).is_some());
    }

    #[test]
    fn durations_read_like_flags() {
        assert_eq!(shown(Duration::from_millis(800)), "800ms");
        assert_eq!(shown(Duration::from_millis(1500)), "1.5s");
        assert_eq!(shown(Duration::from_secs(30)), "30s");
        assert_eq!(shown(Duration::from_secs(245)), "4m05s");
        assert_eq!(shown(Duration::from_secs(3720)), "1h02m");
    }
}
