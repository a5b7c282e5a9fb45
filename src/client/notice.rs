//! What the client says while it waits or retries, so a run is never silent about why
//! it is not progressing: one `warning:` line on stderr per event (a timeout, an answer
//! that is not JSON, a throttle and the new ceiling), at most one a second with the
//! rest counted, and the last one kept for progress displays.
//!
//! Every text passes through the credentials' scrubber before it gets here; these lines
//! never carry a key.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines closer together than this are counted instead of printed.
const GAP: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(super) struct Notices {
    state: Mutex<State>,
    /// Off in tests that drive the client in-process and check their own output.
    quiet: bool,
}

#[derive(Debug, Default)]
struct State {
    printed_at: Option<Instant>,
    suppressed: u64,
    last: Option<String>,
}

impl Notices {
    pub(super) fn new(quiet: bool) -> Notices {
        Notices {
            state: Mutex::default(),
            quiet,
        }
    }

    /// Says `text` on stderr (unless one was said less than a second ago) and keeps it
    /// as the last problem.
    pub(super) fn say(&self, text: String) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let due = s.printed_at.is_none_or(|t| now.duration_since(t) >= GAP);
        if due && !self.quiet {
            let more = match s.suppressed {
                0 => String::new(),
                n => format!(" ({n} similar line(s) not shown)"),
            };
            eprintln!("warning: {text}{more}");
            s.printed_at = Some(now);
            s.suppressed = 0;
        } else if !self.quiet {
            s.suppressed += 1;
        }
        s.last = Some(text);
    }

    /// The last thing said, for a progress line.
    pub(super) fn last(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last
            .clone()
    }
}
