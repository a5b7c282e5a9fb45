//! Progress of a phase whose total is not known until it ends (reading and validating an
//! export): the counts so far and the rate, on stderr, while the library works on this
//! thread. A spinner on a terminal; elsewhere a timestamped line every interval, in the
//! shape of the import's progress lines (`<time> <phase>: ...`). Stops when dropped.

use std::io::IsTerminal;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Output;

pub(super) struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Shows `describe(elapsed)` for `phase` until dropped.
    pub(super) fn start(
        phase: &'static str,
        describe: impl Fn(Duration) -> String + Send + 'static,
        every: Duration,
        output: Output,
    ) -> Ticker {
        let (tx, rx) = mpsc::channel::<()>();
        let terminal = !output.verbose && std::io::stderr().is_terminal();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let spinner = terminal.then(|| {
                let s = indicatif::ProgressBar::new_spinner();
                s.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                s.set_prefix(phase);
                s
            });
            // A terminal is redrawn often; a log gets a line per interval.
            let wait = if terminal {
                Duration::from_millis(250)
            } else {
                every
            };
            while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(wait) {
                let text = describe(started.elapsed());
                match &spinner {
                    Some(s) => s.set_message(format!("{phase}: {text}")),
                    None => {
                        let now = jiff::Timestamp::now();
                        let stamp = now.round(jiff::Unit::Second).unwrap_or(now);
                        eprintln!("{stamp} {phase}: {text}");
                    }
                }
            }
            if let Some(s) = spinner {
                s.finish_and_clear();
            }
        });
        Ticker {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
