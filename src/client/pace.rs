//! Pacing: how fast and how many requests go out.
//!
//! HappyFox punishes one request over its per-minute limit with a 10-minute lockout for the
//! whole account, so the client must never find the limit by hitting it. Three mechanisms
//! work together, all on tokio's clock so tests can run them under paused time:
//!
//! - a token bucket per method whose refill leaves room for its small initial burst, so
//!   *no* 60-second window ever holds more requests than the ceiling;
//! - a global pause: when any request is throttled, nobody sends until the lockout ends;
//! - an adaptive concurrency limit (AIMD, as in Vector): enough requests in flight to use
//!   the whole POST budget even when each takes seconds, and halved on back-pressure.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

/// Requests per minute for one method, with at most `burst` sent back to back.
///
/// The refill rate is `(per_min - burst) / 60.5 s`, so over any 60-second window at most
/// `burst + (per_min - burst) = per_min` tokens are handed out, start-up included. The
/// extra half second absorbs network jitter: HappyFox counts arrivals, not departures, and
/// two requests sent exactly a minute apart may arrive a little closer.
///
/// The rate is not fixed: a throttling answer means the account had less room than the
/// ceiling assumed (someone else is using it), so [`TokenBucket::cut`] halves it from
/// what actually got through in the last minute, and it recovers additively (see
/// [`RECOVERY_SHARE`]), slowly past the level that was throttled: one more lockout costs
/// ten minutes of the whole account.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    state: Mutex<BucketState>,
    /// The ceiling the user set, per minute.
    configured: f64,
}

#[derive(Debug)]
struct BucketState {
    /// May go negative: a waiter reserves its token before sleeping, which keeps waiters
    /// in order and stops them from waking together.
    tokens: f64,
    /// Tokens accrue from here; after a lockout it is the lockout's end.
    last: Instant,
    /// The ceiling now, per minute.
    per_min: f64,
    burst: f64,
    /// Up to here the ceiling recovers quickly; past it (the level that was throttled)
    /// slowly.
    cap: f64,
    /// When the ceiling last changed, for the additive recovery.
    changed: Instant,
    /// Tokens handed out in the last minute: what the server let through.
    handed: VecDeque<Instant>,
}

/// The minute the ceiling is counted over, plus the jitter margin.
const WINDOW_SECS: f64 = 60.5;
/// After a throttle the ceiling recovers by this share of the configured ceiling per
/// minute up to 90% of the level that was throttled, and by one per [`SLOW_RECOVERY`]
/// beyond (probing, slowly, for room another user may have given back).
const RECOVERY_SHARE: f64 = 0.05;
const SLOW_RECOVERY: Duration = Duration::from_secs(600);
/// The lowest ceiling a throttle can bring: a run that can send nothing never ends.
const MIN_PER_MIN: f64 = 2.0;

/// A ceiling lowered by a throttle: from, to (per minute), and how many requests had
/// gone out in the minute before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cut {
    pub from: u32,
    pub to: u32,
    pub let_through: u32,
    pub recovery_per_min: u32,
}

impl BucketState {
    fn interval(&self) -> f64 {
        WINDOW_SECS / (self.per_min - self.burst).max(0.5)
    }
}

impl TokenBucket {
    pub fn new(per_min: u32, burst: u32) -> TokenBucket {
        let per_min = per_min.max(1);
        let burst = burst.clamp(1, per_min);
        let now = Instant::now();
        TokenBucket {
            state: Mutex::new(BucketState {
                tokens: f64::from(burst),
                last: now,
                per_min: f64::from(per_min),
                burst: f64::from(burst),
                cap: f64::from(per_min),
                changed: now,
                handed: VecDeque::new(),
            }),
            configured: f64::from(per_min),
        }
    }

    /// The ceiling now, per minute.
    pub(crate) fn per_min(&self) -> u32 {
        let mut s = lock(&self.state);
        self.recover(&mut s, Instant::now());
        s.per_min as u32
    }

    /// Waits for a token; says whether it had to wait. A cancelled wait loses its token,
    /// which only makes pacing slower.
    pub(crate) async fn acquire(&self) -> bool {
        let wait = {
            let mut s = lock(&self.state);
            let now = Instant::now();
            self.recover(&mut s, now);
            let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
            s.tokens = (s.tokens + elapsed / s.interval()).min(s.burst);
            s.last = s.last.max(now);
            s.tokens -= 1.0;
            let wait = (s.tokens < 0.0).then(|| Duration::from_secs_f64(-s.tokens * s.interval()));
            let at = now + wait.unwrap_or_default();
            s.handed.push_back(at);
            while s
                .handed
                .front()
                .is_some_and(|t| at.saturating_duration_since(*t) >= Duration::from_secs(60))
            {
                s.handed.pop_front();
            }
            wait
        };
        match wait {
            Some(wait) => {
                tokio::time::sleep(wait).await;
                true
            }
            None => false,
        }
    }

    /// Additive recovery after a cut: quickly up to the cap, slowly past it.
    fn recover(&self, s: &mut BucketState, now: Instant) {
        if s.per_min >= self.configured {
            return;
        }
        let (step, period) = if s.per_min < s.cap {
            (
                (self.configured * RECOVERY_SHARE).max(1.0),
                Duration::from_secs(60),
            )
        } else {
            (1.0, SLOW_RECOVERY)
        };
        let periods = now.saturating_duration_since(s.changed).as_secs_f64() / period.as_secs_f64();
        if periods >= 1.0 {
            let limit = if s.per_min < s.cap {
                s.cap
            } else {
                self.configured
            };
            s.per_min = (s.per_min + step * periods.floor())
                .min(limit)
                .min(self.configured);
            s.changed = now;
        }
    }

    /// Lowers the ceiling after a throttle: half of what got through in the last minute
    /// (or of the ceiling, if that is lower), and no bursts from now on.
    pub(crate) fn cut(&self) -> Cut {
        let mut s = lock(&self.state);
        let now = Instant::now();
        while s
            .handed
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(60))
        {
            s.handed.pop_front();
        }
        let let_through = s.handed.iter().filter(|t| **t <= now).count() as f64;
        let from = s.per_min;
        let to = (from.min(let_through) * 0.5).max(MIN_PER_MIN);
        s.per_min = to;
        s.cap = (let_through * 0.9).max(to);
        s.burst = 1.0;
        // What waiters reserved was priced at the old rate (they sleep on it already):
        // start afresh with the one token the first request after the pause may use.
        s.tokens = 1.0;
        s.changed = now;
        Cut {
            from: from as u32,
            to: to as u32,
            let_through: let_through as u32,
            recovery_per_min: (self.configured * RECOVERY_SHARE).max(1.0) as u32,
        }
    }

    /// Keeps at most one of the tokens saved up and lets none accrue before `until` (a
    /// lockout's end): the first request after it goes at once, the next ones at the
    /// (lowered) rate, never a burst.
    pub(crate) fn drain(&self, until: Instant) {
        let mut s = lock(&self.state);
        s.tokens = s.tokens.min(1.0);
        s.last = s.last.max(until);
    }
}

/// One pause for the whole client: a throttling answer stops every request until it ends.
#[derive(Debug, Default)]
pub(crate) struct Pause {
    until: Mutex<Option<Instant>>,
}

impl Pause {
    /// Extends the pause to at least `until`.
    pub fn until(&self, until: Instant) {
        let mut u = lock(&self.until);
        if u.is_none_or(|current| current < until) {
            *u = Some(until);
        }
    }

    /// When the current pause ends, if one is in force.
    pub fn active(&self) -> Option<Instant> {
        let u = *lock(&self.until);
        u.filter(|&t| t > Instant::now())
    }

    /// Returns once no pause is in force (at once if none is).
    pub async fn wait(&self) {
        while let Some(t) = self.active() {
            tokio::time::sleep_until(t).await;
        }
    }
}

/// Tuning of the adaptive concurrency limit.
#[derive(Debug, Clone, Copy)]
pub struct ConcurrencyOptions {
    pub initial: usize,
    pub max: usize,
}

/// How a finished request should move the concurrency limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Answered (any answer that is not back-pressure), after this long.
    Answered(Duration),
    /// 429/503, a timeout, a 5xx: the server is struggling; back off.
    BackPressure,
    /// Nothing learned (connect errors, cancelled).
    Ignore,
}

/// An AIMD limit on requests in flight: +1 per round trip while the limit is what holds
/// requests back and latency stays near its average, ×½ (at most once per round trip) on
/// back-pressure.
#[derive(Debug)]
pub(crate) struct ConcurrencyLimit {
    semaphore: std::sync::Arc<Semaphore>,
    state: Mutex<LimitState>,
    max: usize,
    current: AtomicUsize,
    in_flight: AtomicUsize,
}

#[derive(Debug)]
struct LimitState {
    limit: usize,
    /// Permits to swallow as they come back, after a decrease.
    debt: usize,
    /// Moving average of round-trip time, seconds.
    rtt: Option<f64>,
    /// No change before this instant: one adjustment per round trip.
    next_change: Instant,
}

/// A slot in flight; dropping it gives the slot back.
#[derive(Debug)]
pub(crate) struct Slot<'a> {
    permit: Option<OwnedSemaphorePermit>,
    owner: &'a ConcurrencyLimit,
    /// Whether this request waited for a slot and then found a token ready: only then was
    /// the concurrency limit (not the rate) what held it back, so only then can raising
    /// the limit help.
    pub waited: bool,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.owner.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some(permit) = self.permit.take() {
            let mut s = lock(&self.owner.state);
            if s.debt > 0 {
                s.debt -= 1;
                permit.forget();
            }
        }
    }
}

impl ConcurrencyLimit {
    pub fn new(options: ConcurrencyOptions) -> ConcurrencyLimit {
        let max = options.max.max(1);
        let initial = options.initial.clamp(1, max);
        ConcurrencyLimit {
            semaphore: std::sync::Arc::new(Semaphore::new(initial)),
            state: Mutex::new(LimitState {
                limit: initial,
                debt: 0,
                rtt: None,
                next_change: Instant::now(),
            }),
            max,
            current: AtomicUsize::new(initial),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// The limit now, for progress displays.
    pub fn limit(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// Requests holding a slot now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) async fn acquire(&self) -> Slot<'_> {
        let (permit, waited) = match self.semaphore.clone().try_acquire_owned() {
            Ok(p) => (Some(p), false),
            // The semaphore is never closed, so an error here cannot happen; carrying on
            // without a permit would only lift the limit for one request.
            Err(_) => (self.semaphore.clone().acquire_owned().await.ok(), true),
        };
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Slot {
            permit,
            owner: self,
            waited,
        }
    }

    /// Feeds back what one request saw.
    pub(crate) fn observe(&self, waited: bool, signal: Signal) {
        let now = Instant::now();
        let mut s = lock(&self.state);
        match signal {
            Signal::Ignore => {}
            Signal::Answered(rtt) => {
                let rtt = rtt.as_secs_f64();
                let avg = s.rtt.map_or(rtt, |a| 0.8 * a + 0.2 * rtt);
                let latency_holds = rtt <= avg * 1.5 + 0.05;
                s.rtt = Some(avg);
                if waited && latency_holds && now >= s.next_change && s.limit < self.max {
                    s.limit += 1;
                    if s.debt > 0 {
                        s.debt -= 1;
                    } else {
                        self.semaphore.add_permits(1);
                    }
                    s.next_change = now + Duration::from_secs_f64(avg);
                }
            }
            Signal::BackPressure => {
                if now >= s.next_change && s.limit > 1 {
                    let new = (s.limit / 2).max(1);
                    let mut cut = s.limit - new;
                    s.limit = new;
                    // Take back idle permits now; the rest as requests finish.
                    while cut > 0 {
                        match self.semaphore.try_acquire() {
                            Ok(p) => {
                                p.forget();
                                cut -= 1;
                            }
                            Err(_) => break,
                        }
                    }
                    s.debt += cut;
                    s.next_change = now + Duration::from_secs_f64(s.rtt.unwrap_or(1.0));
                }
            }
        }
        self.current.store(s.limit, Ordering::Relaxed);
    }
}

/// Which bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
}

/// Everything that decides when a request may go out, shared by all requests of a client.
#[derive(Debug)]
pub(crate) struct Pacer {
    pub post: TokenBucket,
    pub get: TokenBucket,
    pub pause: Pause,
    pub limit: ConcurrencyLimit,
    /// Requests throttled by the server (429/503) since start: should stay 0.
    pub throttled: AtomicU64,
    /// Set on Ctrl-C: requests still waiting to be admitted are not sent at all.
    stopping: watch::Sender<bool>,
}

impl Pacer {
    pub fn new(post_per_min: u32, get_per_min: u32, burst: u32, c: ConcurrencyOptions) -> Pacer {
        Pacer {
            post: TokenBucket::new(post_per_min, burst),
            get: TokenBucket::new(get_per_min, burst),
            pause: Pause::default(),
            limit: ConcurrencyLimit::new(c),
            throttled: AtomicU64::new(0),
            stopping: watch::Sender::new(false),
        }
    }

    /// Waits until a request may be sent: a slot in flight, no pause, a token; `None`
    /// once [`Pacer::stop`] was called, at once for every waiter.
    pub(crate) async fn admit(&self, method: Method) -> Option<Slot<'_>> {
        let mut stopping = self.stopping.subscribe();
        if *stopping.borrow_and_update() {
            return None;
        }
        tokio::select! {
            biased;
            _ = stopping.wait_for(|s| *s) => None,
            slot = self.admit_unless_stopped(method) => Some(slot),
        }
    }

    /// The slot is taken first so tokens are spent only by requests that go out at once;
    /// a pause that began while we waited for the token costs the token and we wait again.
    async fn admit_unless_stopped(&self, method: Method) -> Slot<'_> {
        let mut slot = self.limit.acquire().await;
        loop {
            self.pause.wait().await;
            let paced = match method {
                Method::Get => self.get.acquire().await,
                Method::Post => self.post.acquire().await,
            };
            if paced {
                slot.waited = false;
            }
            if self.pause.active().is_none() {
                return slot;
            }
        }
    }

    /// Sleeps for `wait` (a backoff), or less if the client is stopped meanwhile;
    /// `false` when stopped.
    pub(crate) async fn sleep(&self, wait: Duration) -> bool {
        let mut stopping = self.stopping.subscribe();
        if *stopping.borrow_and_update() {
            return false;
        }
        tokio::select! {
            biased;
            _ = stopping.wait_for(|s| *s) => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    /// Nothing more is admitted: every request waiting for a slot, a token or the end of
    /// a pause gives up now; requests already sent are not affected.
    pub(crate) fn stop(&self) {
        self.stopping.send_replace(true);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Stops everyone for `wait`, lets no token accrue meanwhile, and on the first
    /// throttle of a lockout lowers the ceiling of `method` (returned, to be said).
    pub(crate) fn throttle(&self, wait: Duration, method: Method) -> Option<Cut> {
        let first = self.pause.active().is_none();
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let until = Instant::now() + wait;
        self.pause.until(until);
        self.post.drain(until);
        self.get.drain(until);
        first.then(|| match method {
            Method::Get => self.get.cut(),
            Method::Post => self.post.cut(),
        })
    }
}

/// Pacing state stays usable after a panic elsewhere: the data is plain numbers.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn max_in_window(times: &[Duration], window: Duration) -> usize {
        let mut best = 0;
        let mut j = 0;
        for i in 0..times.len() {
            while times[i] - times[j] >= window {
                j += 1;
            }
            best = best.max(i - j + 1);
        }
        best
    }

    /// Sends as fast as pacing allows from many tasks, each request taking `latency`.
    async fn run(
        pacer: Arc<Pacer>,
        tasks: usize,
        total: usize,
        latency: Duration,
    ) -> Vec<Duration> {
        let start = Instant::now();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let left = Arc::new(AtomicUsize::new(total));
        let mut handles = Vec::new();
        for _ in 0..tasks {
            let (pacer, sent, left) = (pacer.clone(), sent.clone(), left.clone());
            handles.push(tokio::spawn(async move {
                while left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let slot = pacer.admit(Method::Post).await.unwrap();
                    sent.lock().unwrap().push(start.elapsed());
                    tokio::time::sleep(latency).await;
                    pacer.limit.observe(slot.waited, Signal::Answered(latency));
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let mut v = sent.lock().unwrap().clone();
        v.sort();
        v
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_ceiling_in_any_minute() {
        let c = ConcurrencyOptions {
            initial: 4,
            max: 64,
        };
        let pacer = Arc::new(Pacer::new(240, 400, 3, c));
        let times = run(pacer, 100, 1000, Duration::from_millis(50)).await;
        assert_eq!(times.len(), 1000);
        let peak = max_in_window(&times, Duration::from_secs(60));
        assert!(peak <= 240, "{peak} requests in one minute");
        // ...and it is not much slower than the ceiling either.
        assert!(peak >= 235, "only {peak} requests in the busiest minute");
        // No burst at start: the first second holds at most the burst plus refill.
        let first_second = times
            .iter()
            .filter(|t| **t < Duration::from_secs(1))
            .count();
        assert!(
            first_second <= 7,
            "{first_second} requests in the first second"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_requests_still_reach_the_ceiling() {
        let c = ConcurrencyOptions {
            initial: 2,
            max: 32,
        };
        let pacer = Arc::new(Pacer::new(240, 400, 2, c));
        let times = run(pacer.clone(), 64, 1200, Duration::from_secs(2)).await;
        // Skip the first minute (the limit is still climbing), then expect the ceiling.
        let later: Vec<Duration> = times
            .iter()
            .copied()
            .filter(|t| *t >= Duration::from_secs(60))
            .collect();
        let peak = max_in_window(&later, Duration::from_secs(60));
        assert!(peak >= 228, "only {peak}/240 per minute with 2 s requests");
        assert!(peak <= 240);
        assert!(pacer.limit.limit() >= 8, "limit {}", pacer.limit.limit());
        println!("concurrency settled at {}", pacer.limit.limit());
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_pauses_everyone() {
        let c = ConcurrencyOptions { initial: 8, max: 8 };
        let pacer = Arc::new(Pacer::new(6000, 6000, 5, c));
        let start = Instant::now();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let throttled_at = Arc::new(Mutex::new(None));
        let mut handles = Vec::new();
        for i in 0..8u64 {
            let (pacer, sent, at) = (pacer.clone(), sent.clone(), throttled_at.clone());
            handles.push(tokio::spawn(async move {
                for n in 0..20u64 {
                    let _slot = pacer.admit(Method::Post).await.unwrap();
                    sent.lock().unwrap().push(start.elapsed());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if i == 0 && n == 3 {
                        *at.lock().unwrap() = Some(start.elapsed());
                        pacer.throttle(Duration::from_secs(600), Method::Post);
                    }
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let times = sent.lock().unwrap().clone();
        let throttle_at = throttled_at.lock().unwrap().unwrap();
        let during = times
            .iter()
            .filter(|t| **t > throttle_at && **t < throttle_at + Duration::from_secs(600))
            .count();
        assert_eq!(during, 0, "requests sent during the lockout");
        assert_eq!(times.len(), 160);
        assert_eq!(pacer.throttled.load(Ordering::Relaxed), 1);
    }

    /// An account that locks everyone out for `lockout` as soon as it sees more than
    /// `per_min` POSTs in a sliding minute, as HappyFox does when someone else is using
    /// the rest of its limit.
    struct Account {
        per_min: usize,
        lockout: Duration,
        seen: std::collections::VecDeque<Instant>,
        locked_until: Option<Instant>,
        lockouts: u32,
    }

    impl Account {
        /// `Some(wait)` when the request is refused with a 429.
        fn post(&mut self, now: Instant) -> Option<Duration> {
            if let Some(until) = self.locked_until.filter(|u| *u > now) {
                return Some(until - now);
            }
            while self
                .seen
                .front()
                .is_some_and(|t| now - *t >= Duration::from_secs(60))
            {
                self.seen.pop_front();
            }
            if self.seen.len() >= self.per_min {
                self.lockouts += 1;
                self.seen.clear();
                self.locked_until = Some(now + self.lockout);
                return Some(self.lockout);
            }
            self.seen.push_back(now);
            None
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lockout_lowers_the_ceiling_enough_that_it_does_not_recur() {
        let c = ConcurrencyOptions {
            initial: 4,
            max: 16,
        };
        let pacer = Arc::new(Pacer::new(240, 400, 3, c));
        let account = Arc::new(Mutex::new(Account {
            per_min: 60,
            lockout: Duration::from_secs(600),
            seen: Default::default(),
            locked_until: None,
            lockouts: 0,
        }));
        let done = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for _ in 0..16 {
            let (pacer, account, done) = (pacer.clone(), account.clone(), done.clone());
            handles.push(tokio::spawn(async move {
                while done.load(Ordering::SeqCst) < 600 {
                    let slot = pacer.admit(Method::Post).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let refused = account.lock().unwrap().post(Instant::now());
                    match refused {
                        Some(wait) => {
                            pacer.limit.observe(slot.waited, Signal::BackPressure);
                            pacer.throttle(wait, Method::Post);
                        }
                        None => {
                            done.fetch_add(1, Ordering::SeqCst);
                            pacer
                                .limit
                                .observe(slot.waited, Signal::Answered(Duration::from_millis(200)));
                        }
                    }
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let lockouts = account.lock().unwrap().lockouts;
        // 600 POSTs at under 60 a minute take well over ten simulated minutes, long
        // enough for the recovery to have tried its luck.
        assert_eq!(lockouts, 1, "lockouts");
        let ceiling = pacer.post.per_min();
        assert!((30..60).contains(&ceiling), "ceiling {ceiling}");
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_lockout_requests_resume_paced_not_in_a_burst() {
        let c = ConcurrencyOptions { initial: 8, max: 8 };
        let pacer = Arc::new(Pacer::new(240, 3, 3, c));
        for _ in 0..3 {
            drop(pacer.admit(Method::Post).await.unwrap());
        }
        pacer.throttle(Duration::from_secs(10), Method::Post);
        let start = Instant::now();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for _ in 0..4 {
            let (pacer, sent) = (pacer.clone(), sent.clone());
            handles.push(tokio::spawn(async move {
                let _slot = pacer.admit(Method::Post).await.unwrap();
                sent.lock().unwrap().push(start.elapsed());
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let mut times = sent.lock().unwrap().clone();
        times.sort();
        assert!(times[0] >= Duration::from_secs(10), "{times:?}");
        // The ceiling after the cut is low; what matters is that no two go together.
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] >= Duration::from_millis(500),
                "a burst after the lockout: {times:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_drops_every_waiter_at_once() {
        let c = ConcurrencyOptions { initial: 2, max: 2 };
        let pacer = Arc::new(Pacer::new(6, 6, 1, c));
        let mut handles = Vec::new();
        for _ in 0..10 {
            let pacer = pacer.clone();
            handles.push(tokio::spawn(async move {
                pacer.admit(Method::Post).await.map(drop).is_some()
            }));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let stopped_at = Instant::now();
        pacer.stop();
        let mut admitted = 0;
        for h in handles {
            admitted += usize::from(h.await.unwrap());
        }
        assert_eq!(
            stopped_at.elapsed(),
            Duration::ZERO,
            "waiters returned at once"
        );
        assert!(admitted <= 1, "{admitted} admitted after the stop");
        assert!(pacer.admit(Method::Get).await.is_none());
        assert!(!pacer.sleep(Duration::from_secs(60)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn back_pressure_halves_and_answers_raise_the_limit() {
        let limit = ConcurrencyLimit::new(ConcurrencyOptions {
            initial: 8,
            max: 10,
        });
        limit.observe(true, Signal::BackPressure);
        assert_eq!(limit.limit(), 4);
        // A second signal in the same round trip does not cut again.
        limit.observe(true, Signal::BackPressure);
        assert_eq!(limit.limit(), 4);
        tokio::time::advance(Duration::from_secs(2)).await;
        for _ in 0..20 {
            limit.observe(true, Signal::Answered(Duration::from_millis(100)));
            tokio::time::advance(Duration::from_millis(200)).await;
        }
        assert_eq!(limit.limit(), 10, "bounded by max");
        // Not raised when slots were free (the limit was not what held requests back).
        let idle = ConcurrencyLimit::new(ConcurrencyOptions {
            initial: 2,
            max: 10,
        });
        for _ in 0..5 {
            idle.observe(false, Signal::Answered(Duration::from_millis(100)));
            tokio::time::advance(Duration::from_millis(200)).await;
        }
        assert_eq!(idle.limit(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_decrease_is_enforced_on_slots_in_flight() {
        let limit = ConcurrencyLimit::new(ConcurrencyOptions { initial: 4, max: 4 });
        let slots: Vec<_> = futures::future::join_all((0..4).map(|_| limit.acquire())).await;
        assert_eq!(limit.in_flight(), 4);
        limit.observe(true, Signal::BackPressure);
        drop(slots);
        assert_eq!(limit.in_flight(), 0);
        assert_eq!(limit.semaphore.available_permits(), 2);
    }
}
