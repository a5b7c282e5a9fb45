//! What the user sees while tickets go out.
//!
//! An import of a large helpdesk runs for hours at HappyFox's pace, so the display must
//! answer "is it healthy and when will it end": tickets done of total, the POST rate
//! against the ceiling (well under it means something other than the limit holds it back),
//! concurrency, retries, ambiguous batches being reconciled, failures and an ETA. On a
//! terminal that is an indicatif bar; otherwise (CI logs, `nohup`) a plain line every few
//! seconds, since a bar's redraws would fill a log file with noise.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One reading of the import's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Records the journal holds with a payload to send (created, failed or to do).
    pub total: u64,
    pub created: u64,
    pub failed: u64,
    /// POSTs sent by this run so far.
    pub posts: u64,
    /// POST ceiling per minute.
    pub ceiling: u32,
    pub concurrency: usize,
    pub in_flight: usize,
    /// Batches sent again after reconciliation plus throttled answers.
    pub retries: u64,
    /// Batches whose outcome is unknown and being looked up.
    pub reconciling: u64,
}

impl Snapshot {
    fn done(&self) -> u64 {
        self.created + self.failed
    }

    /// Seconds left at the ceiling: what remains, 100 per POST.
    fn eta(&self, batch_size: u64) -> Duration {
        let left = self.total.saturating_sub(self.done());
        let posts = left.div_ceil(batch_size.max(1));
        Duration::from_secs_f64(posts as f64 * 60.0 / f64::from(self.ceiling.max(1)))
    }
}

/// Formats seconds as `1h02m`, `3m05s` or `12s`.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The progress display: a bar on a terminal, periodic lines elsewhere, nothing when quiet.
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Plain lines: the interval and when the last one went out.
    lines: Option<(Duration, Instant)>,
    /// (when, posts) readings over the last minute, for the POST rate.
    window: VecDeque<(Instant, u64)>,
    started: Instant,
    batch_size: u64,
}

impl Progress {
    /// Chooses the form from whether stdout is a terminal; `every` is the interval of
    /// plain lines.
    pub fn new(every: Duration, batch_size: usize) -> Progress {
        let terminal = std::io::stdout().is_terminal();
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stdout());
            let style =
                ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} tickets {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            lines: (!terminal).then_some((every, now)),
            window: VecDeque::new(),
            started: now,
            batch_size: batch_size as u64,
        }
    }

    /// No display at all (tests that drive the sender in-process).
    pub fn hidden(batch_size: usize) -> Progress {
        Progress {
            bar: None,
            lines: None,
            window: VecDeque::new(),
            started: Instant::now(),
            batch_size: batch_size as u64,
        }
    }

    /// POSTs per minute over the last minute; `None` for the first 10 s, when the start-up
    /// burst would make a short window read above the ceiling.
    fn rate(&mut self, posts: u64) -> Option<f64> {
        let now = Instant::now();
        self.window.push_back((now, posts));
        while self
            .window
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(60))
        {
            self.window.pop_front();
        }
        match self.window.front() {
            Some((t, p)) if now.duration_since(*t) >= Duration::from_secs(10) => {
                Some(posts.saturating_sub(*p) as f64 * 60.0 / now.duration_since(*t).as_secs_f64())
            }
            _ => None,
        }
    }

    fn describe(&mut self, s: &Snapshot) -> String {
        let rate = self
            .rate(s.posts)
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
        let mut text = format!(
            "| POST {rate}/min of {} | concurrency {} ({} in flight) | retries {} | failed {}",
            s.ceiling, s.concurrency, s.in_flight, s.retries, s.failed
        );
        if s.reconciling > 0 {
            text.push_str(&format!(
                " | reconciling {} batch(es) of unknown outcome",
                s.reconciling
            ));
        }
        text.push_str(&format!(" | ETA {}", human(s.eta(self.batch_size))));
        text
    }

    /// Shows the latest counters (the plain form only every interval).
    pub fn update(&mut self, s: &Snapshot) {
        if let Some(bar) = &self.bar {
            bar.set_length(s.total);
            bar.set_position(s.done());
            let msg = self.describe(s);
            if let Some(bar) = &self.bar {
                bar.set_message(msg);
            }
            return;
        }
        let Some((every, last)) = self.lines else {
            return;
        };
        if last.elapsed() < every {
            // Keep the rate window fed between lines.
            self.rate(s.posts);
            return;
        }
        self.lines = Some((every, Instant::now()));
        let line = format!(
            "[{}] {}/{} tickets done {}",
            human(self.started.elapsed()),
            s.done(),
            s.total,
            self.describe(s)
        );
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }

    /// A message that must not be lost under the bar (a warning, Ctrl-C handling).
    pub fn println(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                if self.lines.is_some() {
                    let _ = writeln!(std::io::stdout().lock(), "{text}");
                }
            }
        }
    }

    /// Removes the bar before the final summary.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_is_posts_left_at_the_ceiling() {
        let s = Snapshot {
            total: 10_000,
            created: 4_000,
            ceiling: 240,
            ..Snapshot::default()
        };
        // 6,000 left = 60 POSTs at 4 per second.
        assert_eq!(s.eta(100), Duration::from_secs(15));
        assert_eq!(human(Duration::from_secs(3725)), "1h02m");
        assert_eq!(human(Duration::from_secs(185)), "3m05s");
        assert_eq!(human(Duration::from_secs(9)), "9s");
    }
}
