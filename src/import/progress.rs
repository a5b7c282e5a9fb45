//! What the user sees while an import runs, in every phase.
//!
//! An import of a large helpdesk runs for hours at HappyFox's pace, so the display must
//! answer "is it healthy and when will it end" in each phase — tickets (bulk and single
//! creates, with their files), reconciliation of batches whose answer was lost, then
//! conversations (replies, notes, final states, with their files): done of total, the
//! POST rate against the ceiling (well under it means something other than the limit holds
//! it back), requests in flight, retries, failures and an ETA for the *whole* run, not just
//! the phase. On a terminal that is an indicatif bar on stderr; otherwise (CI logs,
//! `nohup`) a plain timestamped line on stderr at a bounded rate — every interval, or at
//! each 5% step but never more than ten times an interval — since a bar's redraws would
//! fill a log file with noise. Stdout carries only the plan and the summary (or `--json`).

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::client::Client;
use crate::duration::format as human_duration;
use crate::journal::Journal;

/// How often the conversation phase reads its counters from the journal.
pub(crate) const CONVERSATION_TICK: Duration = Duration::from_secs(1);

/// One reading of the ticket phase's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// Files (attachments, inline images) sent with the tickets so far, and left out.
    pub files_sent: u64,
    pub files_not_sent: u64,
    /// The client's last retry, timeout or throttle, said on the line while there are
    /// retries, so a slow run says why without scrolling back through stderr.
    pub last_problem: Option<String>,
}

/// Appends "(last: …)" to the retry count, cut to a line's worth.
fn push_last_problem(detail: &mut String, retries: u64, last: Option<&str>) {
    const MAX: usize = 80;
    let Some(last) = last.filter(|_| retries > 0) else {
        return;
    };
    let cut: String = last.chars().take(MAX).collect();
    let more = if cut.len() < last.len() { "…" } else { "" };
    detail.push_str(&format!(" (last: {cut}{more})"));
}

impl Snapshot {
    fn done(&self) -> u64 {
        self.created + self.failed
    }
}

/// How the display is drawn, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct Display {
    /// Interval of the plain lines (when stderr is not a terminal).
    pub every: Duration,
    /// `-q`: nothing but the summary.
    pub quiet: bool,
    /// Colours in the bar (`--color`, `NO_COLOR`).
    pub color: bool,
    /// `-v`: plain lines even on a terminal, for a log kept with `script` or `tee`.
    pub plain: bool,
}

/// One phase's reading, in the words every phase shares.
struct Reading {
    /// `tickets`, `reconciliation`, `conversations`.
    phase: &'static str,
    /// What `done` counts: `tickets`, `messages`.
    unit: &'static str,
    done: u64,
    total: u64,
    /// Failed in this run (validation rejects are not failures of the run).
    failed: u64,
    posts: u64,
    /// POSTs still to send for the whole run, this phase and the ones after it.
    posts_left: u64,
    ceiling: u32,
    in_flight: usize,
    /// Phase-specific counters, already worded.
    detail: String,
}

/// The plain lines' state: the interval, when the last one went out and at which 5% step.
struct Lines {
    every: Duration,
    last: Option<Instant>,
    step: u64,
}

/// The progress display: a bar on a terminal, periodic lines elsewhere, nothing when quiet.
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Whether a bar is drawn (stderr is a terminal).
    terminal: bool,
    color: bool,
    lines: Option<Lines>,
    /// (when, posts) readings over the last minute, for the POST rate.
    window: VecDeque<(Instant, u64)>,
    batch_size: u64,
    /// The phase being shown and when it started.
    phase: Option<(&'static str, Instant)>,
    /// The last reading, shown again when the phase ends.
    last: Option<Reading>,
    /// Messages waiting for the conversation phase, for the whole run's ETA.
    messages_ahead: u64,
    /// The POST ceiling, from the ticket phase (the conversation phase runs under it too).
    ceiling: u32,
    /// Ticket counts when this run began: they are not this run's work.
    tickets_before: Option<(u64, u64)>,
    messages_before: Option<(u64, u64)>,
}

impl Progress {
    /// Chooses the form from whether stderr is a terminal; `every` is the interval of
    /// plain lines.
    pub fn new(every: Duration, batch_size: usize) -> Progress {
        Progress::with_display(
            Display {
                every,
                quiet: false,
                color: true,
                plain: false,
            },
            batch_size,
        )
    }

    /// As [`Progress::new`], with `-q` and `--color` applied.
    pub fn with_display(display: Display, batch_size: usize) -> Progress {
        let terminal = !display.quiet && !display.plain && std::io::stderr().is_terminal();
        let lines = (!display.quiet && !terminal).then_some(Lines {
            every: display.every,
            last: None,
            step: 0,
        });
        Progress {
            terminal,
            color: display.color,
            lines,
            ..Progress::hidden(batch_size)
        }
    }

    /// No display at all (tests that drive the sender in-process, `-q`).
    pub fn hidden(batch_size: usize) -> Progress {
        Progress {
            bar: None,
            terminal: false,
            color: false,
            lines: None,
            window: VecDeque::new(),
            batch_size: batch_size as u64,
            phase: None,
            last: None,
            messages_ahead: 0,
            ceiling: crate::happyfox::DEFAULT_POST_CEILING,
            tickets_before: None,
            messages_before: None,
        }
    }

    /// Messages the conversation phase will post after the tickets, so that the ticket
    /// phase's ETA is the whole run's.
    pub fn expect_messages(&mut self, messages: u64) {
        self.messages_ahead = messages;
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

    /// Shows the ticket phase's latest counters.
    pub fn update(&mut self, s: &Snapshot) {
        let (created_before, failed_before) =
            *self.tickets_before.get_or_insert((s.created, s.failed));
        let failed = s.failed.saturating_sub(failed_before);
        let to_do = s.total.saturating_sub(created_before + failed_before);
        let done = s.done().saturating_sub(created_before + failed_before);
        let left = to_do.saturating_sub(done);
        self.ceiling = s.ceiling;
        let mut detail = format!("concurrency {} | retries {}", s.concurrency, s.retries);
        push_last_problem(&mut detail, s.retries, s.last_problem.as_deref());
        if s.files_sent + s.files_not_sent > 0 {
            detail.push_str(&format!(
                " | files {} sent, {} not sent",
                s.files_sent, s.files_not_sent
            ));
        }
        if s.reconciling > 0 {
            detail.push_str(&format!(
                " | reconciling {} batch(es) of unknown outcome",
                s.reconciling
            ));
        }
        let reading = Reading {
            phase: if s.reconciling > 0 && s.in_flight == 0 {
                "reconciliation"
            } else {
                "tickets"
            },
            unit: "tickets",
            done,
            total: to_do,
            failed,
            posts: s.posts,
            posts_left: left.div_ceil(self.batch_size.max(1)) + self.messages_ahead,
            ceiling: s.ceiling,
            in_flight: s.in_flight,
            detail,
        };
        self.show(reading);
    }

    /// Shows the conversation phase's counters, read from the journal (which every
    /// message's outcome reaches before the next is sent) and the client.
    pub(crate) fn poll_conversations(&mut self, journal: &Mutex<Journal>, client: &Client) {
        if self.bar.is_none() && self.lines.is_none() && !self.terminal {
            return;
        }
        let Ok(summary) = journal.lock().map(|j| j.summary()) else {
            return;
        };
        let Ok(summary) = summary else {
            return;
        };
        let m = summary.messages;
        let (posted_before, failed_before) =
            *self.messages_before.get_or_insert((m.created, m.failed));
        let to_do = m.total.saturating_sub(posted_before + failed_before);
        let done = (m.created + m.failed).saturating_sub(posted_before + failed_before);
        let stats = client.stats();
        self.ceiling = stats.post_ceiling;
        let ceiling = self.ceiling;
        let mut detail = format!("retries {}", stats.throttled);
        push_last_problem(
            &mut detail,
            stats.throttled,
            client.last_problem().as_deref(),
        );
        if m.sending > 0 {
            detail.push_str(&format!(" | {} begun (queued or in flight)", m.sending));
        }
        let reading = Reading {
            phase: "conversations",
            unit: "messages",
            done,
            total: to_do,
            failed: m.failed.saturating_sub(failed_before),
            posts: stats.posts_sent,
            posts_left: to_do.saturating_sub(done),
            ceiling,
            in_flight: stats.in_flight,
            detail,
        };
        self.show(reading);
    }

    fn describe(&mut self, r: &Reading) -> String {
        let rate = self.rate(r.posts);
        let shown = rate.map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
        // The measured rate when there is one (latency may hold the run below the
        // ceiling), else the ceiling.
        let per_min = rate
            .filter(|r| *r >= 1.0)
            .unwrap_or(f64::from(r.ceiling.max(1)));
        let eta = Duration::from_secs_f64(r.posts_left as f64 * 60.0 / per_min);
        format!(
            "failed {} | POST {shown}/min of {} | {} in flight | {} | ETA {} for the whole run",
            r.failed,
            r.ceiling,
            r.in_flight,
            r.detail,
            human_duration(eta)
        )
    }

    fn show(&mut self, reading: Reading) {
        let now = Instant::now();
        let new_phase = self.phase.is_none_or(|(p, _)| p != reading.phase);
        if new_phase {
            self.phase = Some((reading.phase, now));
            if let Some(lines) = &mut self.lines {
                lines.last = None;
                lines.step = 0;
            }
            if self.terminal {
                self.bar = Some(self.new_bar(reading.phase, reading.unit, reading.total));
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_length(reading.total);
            bar.set_position(reading.done);
            let msg = self.describe(&reading);
            if let Some(bar) = &self.bar {
                bar.set_message(msg);
            }
            self.last = Some(reading);
            return;
        }
        let Some(lines) = &self.lines else {
            self.last = Some(reading);
            return;
        };
        let step = (reading.done * 20).checked_div(reading.total).unwrap_or(0);
        let due = match lines.last {
            None => true,
            Some(last) => {
                let since = now.duration_since(last);
                since >= lines.every || (step > lines.step && since >= lines.every / 10)
            }
        };
        if !due {
            // Keep the rate window fed between lines.
            self.rate(reading.posts);
            self.last = Some(reading);
            return;
        }
        let line = self.line(&reading);
        if let Some(lines) = &mut self.lines {
            lines.last = Some(now);
            lines.step = step;
        }
        let _ = writeln!(std::io::stderr().lock(), "{line}");
        self.last = Some(reading);
    }

    /// `2026-12-03T06:30:00Z tickets: 1200/2000 (60%) failed 0 | ...`.
    fn line(&mut self, r: &Reading) -> String {
        let stamp = jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or(jiff::Timestamp::now());
        let percent = (r.done * 100).checked_div(r.total).unwrap_or(100);
        format!(
            "{stamp} {}: {}/{} {} ({percent}%) | {}",
            r.phase,
            r.done,
            r.total,
            r.unit,
            self.describe(r)
        )
    }

    fn new_bar(&self, phase: &str, unit: &str, total: u64) -> ProgressBar {
        if let Some(old) = &self.bar {
            old.finish_and_clear();
        }
        // Created with its length: a bar of length 0 draws as complete until it is set.
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let template = if self.color {
            format!("{phase} {{bar:30.cyan/blue}} {{pos}}/{{len}} {unit} {{msg}}")
        } else {
            format!("{phase} {{bar:30}} {{pos}}/{{len}} {unit} {{msg}}")
        };
        let style = ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(250));
        bar
    }

    /// A message that must not be lost under the bar (a warning, Ctrl-C handling).
    pub fn println(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                if self.lines.is_some() {
                    let _ = writeln!(std::io::stderr().lock(), "{text}");
                }
            }
        }
    }

    /// Ends the current phase: its last reading is written once more as a plain line,
    /// with how long the phase took, and the bar is removed.
    pub(crate) fn finish(&mut self) {
        let Some(reading) = self.last.take() else {
            return;
        };
        let took = self.phase.map(|(_, t)| t.elapsed()).unwrap_or_default();
        if self.bar.is_none() && self.lines.is_none() {
            return;
        }
        let text = format!(
            "{} (phase took {})",
            self.line(&reading),
            human_duration(took)
        );
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let _ = writeln!(std::io::stderr().lock(), "{text}");
        // The next phase starts afresh, even if it has the same name.
        self.phase = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(done: u64, total: u64, posts_left: u64) -> Reading {
        Reading {
            phase: "tickets",
            unit: "tickets",
            done,
            total,
            failed: 0,
            posts: 0,
            posts_left,
            ceiling: 240,
            in_flight: 0,
            detail: String::new(),
        }
    }

    #[test]
    fn eta_is_the_whole_runs_posts_at_the_ceiling() {
        let mut p = Progress::hidden(100);
        p.expect_messages(60);
        // 6,000 tickets left = 60 bulk creates, then 60 messages, at 4 per second.
        p.update(&Snapshot {
            total: 10_000,
            created: 0,
            ceiling: 240,
            ..Snapshot::default()
        });
        let r = p.last.take().unwrap();
        assert_eq!(r.posts_left, 100 + 60);
        let text = p.describe(&reading(4_000, 10_000, 120));
        assert!(text.contains("ETA 30s for the whole run"), "{text}");
    }

    #[test]
    fn the_line_says_why_it_retries_and_the_live_ceiling() {
        let mut p = Progress::hidden(100);
        let quiet = Snapshot {
            total: 500,
            ceiling: 120,
            last_problem: Some("an old problem".into()),
            ..Snapshot::default()
        };
        p.update(&quiet);
        let r = p.last.take().unwrap();
        assert!(!r.detail.contains("last:"), "{}", r.detail);
        let long = format!(
            "POST tickets/ answered HTTP 502 (not JSON), retrying in 2s{}",
            "!".repeat(100)
        );
        p.update(&Snapshot {
            retries: 3,
            last_problem: Some(long),
            ..quiet
        });
        let r = p.last.take().unwrap();
        assert!(
            r.detail
                .contains("retries 3 (last: POST tickets/ answered HTTP 502"),
            "{}",
            r.detail
        );
        assert!(r.detail.ends_with("…)"), "{}", r.detail);
        assert_eq!(r.ceiling, 120);
    }

    #[test]
    fn records_done_before_this_run_are_not_its_work_nor_its_failures() {
        let mut p = Progress::hidden(100);
        // 48 rejected at validation and 2 created by an earlier run.
        let first = Snapshot {
            total: 2_000,
            created: 2,
            failed: 48,
            ceiling: 300,
            ..Snapshot::default()
        };
        p.update(&first);
        p.update(&Snapshot {
            created: 1_002,
            failed: 49,
            ..first
        });
        let r = p.last.take().unwrap();
        assert_eq!((r.done, r.total, r.failed), (1_001, 1_950, 1));
    }
}
