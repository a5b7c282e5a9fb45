//! The account-wide rate limit and the injected faults.
//!
//! HappyFox punishes a burst with a 10-minute lockout, so an importer must pace itself
//! rather than react to 429s; the sandbox enforces the same rule so that pacing bugs show
//! up in rehearsal. Faults (latency, 500 before commit, connection dropped after commit)
//! are drawn from one seeded generator so a failing rehearsal can be replayed.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::duration::parse as parse_duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Why a duration, latency or probability option was rejected.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OptionError {
    #[error("`{0}` is not a latency (a duration such as 50ms, or a range such as 50ms..800ms)")]
    Latency(String),
    #[error("`{0}` is not a probability (a number from 0 to 1, or a percentage such as 5%)")]
    Probability(String),
}

/// Added before every API call is handled: the delay a real network and server add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Latency {
    Fixed(Duration),
    /// Uniform between the two bounds (inclusive).
    Range(Duration, Duration),
}

impl std::str::FromStr for Latency {
    type Err = OptionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |_| OptionError::Latency(text.to_string());
        match text.split_once("..") {
            None => parse_duration(text).map(Latency::Fixed).map_err(bad),
            Some((lo, hi)) => {
                let lo = parse_duration(lo).map_err(bad)?;
                let hi = parse_duration(hi).map_err(bad)?;
                if lo > hi {
                    return Err(OptionError::Latency(text.to_string()));
                }
                Ok(Latency::Range(lo, hi))
            }
        }
    }
}

/// Parses `0.05` or `5%`.
pub(crate) fn parse_probability(text: &str) -> Result<f64, OptionError> {
    let bad = || OptionError::Probability(text.to_string());
    let t = text.trim();
    let p = match t.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
        None => t.parse::<f64>().map_err(|_| bad())?,
    };
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(bad())
    }
}

/// The HappyFox rate limit: requests per minute per method class, and the lockout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// POST requests allowed in any 60-second window; 0 turns the limit off.
    pub post_per_min: u32,
    /// GET requests allowed in any 60-second window; 0 turns the limit off.
    pub get_per_min: u32,
    /// How long every call is refused once a limit was exceeded.
    pub lockout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            post_per_min: crate::happyfox::POST_PER_MIN,
            get_per_min: crate::happyfox::GET_PER_MIN,
            lockout: crate::happyfox::LOCKOUT,
        }
    }
}

/// Which budget a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MethodClass {
    Get,
    Post,
}

/// The limiter's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allowed,
    /// Refused with 429; `started_lockout` is true for the request that tripped it.
    /// `retry_after` is what is left of a lockout shorter than HappyFox's ten minutes,
    /// sent as `Retry-After` (whole seconds, at least 1): HappyFox sends none, so a client
    /// must assume ten minutes, which would make a rehearsal with a short lockout wait
    /// for nothing.
    Limited {
        started_lockout: bool,
        retry_after: Option<Duration>,
    },
}

/// Sliding 60-second windows (the documented limit says "per minute" without saying how
/// the minute is counted; a sliding window is the strictest reading). Time is passed in so
/// tests can drive it with a fake clock.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limits: Limits,
    posts: VecDeque<Instant>,
    gets: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl RateLimiter {
    pub fn new(limits: Limits) -> Self {
        RateLimiter {
            limits,
            posts: VecDeque::new(),
            gets: VecDeque::new(),
            locked_until: None,
        }
    }

    /// Counts one request at `now` and says whether it may proceed. Refused requests are not
    /// counted, and a lockout empties both windows: after it ends the account starts afresh.
    pub fn check(&mut self, class: MethodClass, now: Instant) -> Verdict {
        if let Some(until) = self.locked_until {
            if now < until {
                return Verdict::Limited {
                    started_lockout: false,
                    retry_after: self.retry_after(until - now),
                };
            }
            self.locked_until = None;
        }
        let (queue, limit) = match class {
            MethodClass::Get => (&mut self.gets, self.limits.get_per_min),
            MethodClass::Post => (&mut self.posts, self.limits.post_per_min),
        };
        if limit == 0 {
            return Verdict::Allowed;
        }
        while queue
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            queue.pop_front();
        }
        if queue.len() >= limit as usize {
            self.locked_until = Some(now + self.limits.lockout);
            self.posts.clear();
            self.gets.clear();
            return Verdict::Limited {
                started_lockout: true,
                retry_after: self.retry_after(self.limits.lockout),
            };
        }
        queue.push_back(now);
        Verdict::Allowed
    }

    /// The `Retry-After` for `left` of the lockout, when the lockout is shorter than
    /// HappyFox's: rounded up to whole seconds.
    fn retry_after(&self, left: Duration) -> Option<Duration> {
        (self.limits.lockout < crate::happyfox::LOCKOUT).then(|| {
            Duration::from_secs(left.as_secs() + u64::from(left.subsec_nanos() > 0))
                .max(Duration::from_secs(1))
        })
    }

    /// Forgets all counts and any lockout (`POST /_sandbox/reset`).
    pub fn reset(&mut self) {
        self.posts.clear();
        self.gets.clear();
        self.locked_until = None;
    }
}

/// What can go wrong on purpose, all off by default.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Faults {
    pub latency: Option<Latency>,
    /// Added to every write on top of `latency`, before it is stored: a server slow to
    /// commit, whose writes can land after the client that sent them died or gave up.
    pub write_latency: Option<Latency>,
    /// Share of API calls answered 500 before anything is stored.
    pub fail_rate: f64,
    /// Share of successful writes whose connection is closed without a response after the
    /// write was stored: the case that makes a careless importer create duplicates.
    pub drop_rate: f64,
    /// Seed of the fault generator; a random seed when absent.
    pub seed: Option<u64>,
    /// How long a new ticket stays out of search results: an importer that searches for
    /// its markers right after a lost answer must not take "not found yet" for "absent".
    pub search_lag: Option<Duration>,
}

/// The faults chosen for one request, drawn up front in a fixed order so that a seed
/// replays the same sequence for the same sequence of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Draw {
    pub delay: Option<Duration>,
    pub fail: bool,
    pub drop: bool,
}

/// The seeded generator behind [`Faults`].
#[derive(Debug)]
pub(crate) struct FaultDice {
    faults: Faults,
    rng: StdRng,
}

impl FaultDice {
    pub fn new(faults: Faults) -> Self {
        let rng = match faults.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        FaultDice { faults, rng }
    }

    fn pick(&mut self, latency: Option<Latency>) -> Option<Duration> {
        match latency {
            None => None,
            Some(Latency::Fixed(d)) => Some(d),
            Some(Latency::Range(lo, hi)) => {
                let nanos = self
                    .rng
                    .random_range(lo.as_nanos() as u64..=hi.as_nanos() as u64);
                Some(Duration::from_nanos(nanos))
            }
        }
    }

    pub(crate) fn draw(&mut self, is_write: bool) -> Draw {
        let mut delay = self.pick(self.faults.latency);
        if is_write && let Some(extra) = self.pick(self.faults.write_latency) {
            delay = Some(delay.unwrap_or_default() + extra);
        }
        let fail = self.faults.fail_rate > 0.0 && self.rng.random_bool(self.faults.fail_rate);
        let drop = is_write
            && !fail
            && self.faults.drop_rate > 0.0
            && self.rng.random_bool(self.faults.drop_rate);
        Draw { delay, fail, drop }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(post: u32, get: u32, lockout_s: u64) -> RateLimiter {
        RateLimiter::new(Limits {
            post_per_min: post,
            get_per_min: get,
            lockout: Duration::from_secs(lockout_s),
        })
    }

    #[test]
    fn durations_and_latencies_parse_like_flags() {
        assert_eq!(
            "50ms..800ms".parse::<Latency>(),
            Ok(Latency::Range(
                Duration::from_millis(50),
                Duration::from_millis(800)
            ))
        );
        assert!("800ms..50ms".parse::<Latency>().is_err());
        assert_eq!(parse_probability("5%"), Ok(0.05));
        assert_eq!(parse_probability("0.25"), Ok(0.25));
        assert!(parse_probability("1.5").is_err());
    }

    #[test]
    fn over_the_limit_locks_every_call_out_until_the_lockout_ends() {
        let t0 = Instant::now();
        let mut rl = limiter(3, 5, 600);
        for i in 0..3 {
            assert_eq!(
                rl.check(MethodClass::Post, t0 + Duration::from_secs(i)),
                Verdict::Allowed
            );
        }
        assert_eq!(
            rl.check(MethodClass::Post, t0 + Duration::from_secs(10)),
            Verdict::Limited {
                started_lockout: true,
                retry_after: None,
            }
        );
        // GETs are refused too during the lockout.
        assert_eq!(
            rl.check(MethodClass::Get, t0 + Duration::from_secs(11)),
            Verdict::Limited {
                started_lockout: false,
                retry_after: None,
            }
        );
        assert_eq!(
            rl.check(MethodClass::Get, t0 + Duration::from_secs(609)),
            Verdict::Limited {
                started_lockout: false,
                retry_after: None,
            }
        );
        assert_eq!(
            rl.check(MethodClass::Post, t0 + Duration::from_secs(610)),
            Verdict::Allowed
        );
    }

    #[test]
    fn a_lockout_shorter_than_happyfoxs_says_how_long_is_left() {
        let t0 = Instant::now();
        let mut rl = limiter(1, 0, 5);
        assert_eq!(rl.check(MethodClass::Post, t0), Verdict::Allowed);
        assert_eq!(
            rl.check(MethodClass::Post, t0 + Duration::from_secs(1)),
            Verdict::Limited {
                started_lockout: true,
                retry_after: Some(Duration::from_secs(5)),
            }
        );
        assert_eq!(
            rl.check(MethodClass::Get, t0 + Duration::from_millis(3500)),
            Verdict::Limited {
                started_lockout: false,
                retry_after: Some(Duration::from_secs(3)),
            }
        );
    }

    #[test]
    fn the_window_slides() {
        let t0 = Instant::now();
        let mut rl = limiter(2, 2, 600);
        assert_eq!(rl.check(MethodClass::Get, t0), Verdict::Allowed);
        assert_eq!(
            rl.check(MethodClass::Get, t0 + Duration::from_secs(30)),
            Verdict::Allowed
        );
        // The first request leaves the window at t0+60s.
        assert_eq!(
            rl.check(MethodClass::Get, t0 + Duration::from_secs(60)),
            Verdict::Allowed
        );
        // POSTs have their own budget.
        assert_eq!(
            rl.check(MethodClass::Post, t0 + Duration::from_secs(61)),
            Verdict::Allowed
        );
        assert!(matches!(
            rl.check(MethodClass::Get, t0 + Duration::from_secs(61)),
            Verdict::Limited { .. }
        ));
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let t0 = Instant::now();
        let mut rl = limiter(0, 0, 600);
        for _ in 0..10_000 {
            assert_eq!(rl.check(MethodClass::Post, t0), Verdict::Allowed);
        }
    }

    #[test]
    fn a_seed_replays_the_same_faults() {
        let faults = Faults {
            latency: Some(Latency::Range(
                Duration::from_millis(1),
                Duration::from_millis(9),
            )),
            fail_rate: 0.3,
            drop_rate: 0.3,
            seed: Some(7),
            ..Faults::default()
        };
        let mut a = FaultDice::new(faults.clone());
        let mut b = FaultDice::new(faults);
        let da: Vec<Draw> = (0..200).map(|i| a.draw(i % 2 == 0)).collect();
        let db: Vec<Draw> = (0..200).map(|i| b.draw(i % 2 == 0)).collect();
        assert_eq!(da, db);
        assert!(da.iter().any(|d| d.fail));
        assert!(da.iter().any(|d| d.drop));
        assert!(da.iter().all(|d| !(d.fail && d.drop)));
        assert!(
            da.iter().skip(1).step_by(2).all(|d| !d.drop),
            "reads never drop"
        );
    }
}
