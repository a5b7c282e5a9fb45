//! Where a run's time goes, stage by stage: reading (parsing CSV and JSON documents,
//! cutting NDJSON lines), building (parsing those lines, source ids, templates, payloads)
//! and reporting (the duplicate-id check in input order, and what the caller does with
//! each outcome: the dry run's tallies and report files).
//!
//! Issue 14 asks for the next cost to be visible without a profiler, so the pipeline
//! always keeps these figures (a clock read per chunk of records, a file read per thread)
//! and the dry run prints them to stderr when `HFMIGRATE_STAGE_TIMES` is set. Each stage
//! has its own threads, so a thread's CPU time is its stage's; CPU time comes from
//! `/proc/thread-self/schedstat` (nanoseconds on the CPU), and where that file is missing
//! only the busy wall time (time spent working, waits on the other stages left out) is
//! shown. On a loaded machine busy wall time includes time the thread waited for a CPU.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The environment variable that makes the dry run print [`StageTimes`].
pub const STAGE_TIMES_ENV: &str = "HFMIGRATE_STAGE_TIMES";

/// Whether the figures should be printed.
pub fn stage_times_wanted() -> bool {
    std::env::var_os(STAGE_TIMES_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The CPU time the calling thread has used so far, where the kernel tells it (public for
/// the benches, which time their passes the way the stages are timed).
pub fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// One stage's figures, summed over its threads.
#[derive(Debug, Default)]
pub struct Stage {
    cpu_ns: AtomicU64,
    busy_ns: AtomicU64,
    threads: AtomicU64,
    /// A thread of the stage could not read its CPU time.
    cpu_unknown: AtomicU64,
}

impl Stage {
    /// CPU time of the stage's threads; `None` when one of them could not tell.
    pub fn cpu(&self) -> Option<Duration> {
        (self.cpu_unknown.load(Relaxed) == 0)
            .then(|| Duration::from_nanos(self.cpu_ns.load(Relaxed)))
    }

    /// Time spent working, summed over the stage's threads.
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_ns.load(Relaxed))
    }

    pub fn threads(&self) -> u64 {
        self.threads.load(Relaxed)
    }

    pub(crate) fn add_busy(&self, d: Duration) {
        self.busy_ns.fetch_add(d.as_nanos() as u64, Relaxed);
    }

    /// Starts timing the calling thread as one of this stage's.
    pub(crate) fn thread(&self) -> ThreadClock<'_> {
        ThreadClock {
            stage: self,
            cpu_start: thread_cpu(),
            busy: Duration::ZERO,
        }
    }
}

/// The figures of one thread of a stage, added to the stage when dropped.
pub(crate) struct ThreadClock<'s> {
    stage: &'s Stage,
    cpu_start: Option<Duration>,
    busy: Duration,
}

impl ThreadClock<'_> {
    /// Runs `f` and counts its duration as busy time.
    pub(crate) fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.busy += start.elapsed();
        out
    }

    /// Counts the time since `start` as busy time.
    pub(crate) fn busy_since(&mut self, start: Instant) {
        self.busy += start.elapsed();
    }
}

impl Drop for ThreadClock<'_> {
    fn drop(&mut self) {
        let s = self.stage;
        s.threads.fetch_add(1, Relaxed);
        s.add_busy(self.busy);
        match (self.cpu_start, thread_cpu()) {
            (Some(a), Some(b)) => {
                s.cpu_ns
                    .fetch_add(b.saturating_sub(a).as_nanos() as u64, Relaxed);
            }
            _ => {
                s.cpu_unknown.fetch_add(1, Relaxed);
            }
        }
    }
}

/// The three stages of a pipeline run.
#[derive(Debug, Default)]
pub struct StageTimes {
    /// The reader thread: reading, parsing CSV and JSON documents, cutting NDJSON lines.
    pub read: Stage,
    /// The builder threads: parsing NDJSON lines, source ids, templates and payloads,
    /// field coverage.
    pub build: Stage,
    /// The consumer (the calling thread): the duplicate-id check, and what it does with
    /// each outcome.
    pub report: Stage,
}

impl StageTimes {
    /// The figures as lines for stderr; `finish` is the time the caller spent after the
    /// records (the dry run's report files), on the consumer's thread.
    pub fn render(&self, finish: Option<&Stage>) -> String {
        let secs = |d: Duration| format!("{:.2}", d.as_secs_f64());
        let cpu = |d: Option<Duration>| d.map_or_else(|| "?".to_string(), secs);
        let mut out = String::from(
            "stage times (s; CPU from /proc/thread-self/schedstat, busy wall summed over threads):\n",
        );
        let mut total = Some(Duration::ZERO);
        let stages = [
            ("read", "CSV, JSON parse; NDJSON lines", Some(&self.read)),
            (
                "build",
                "NDJSON parse, source ids, templates, payloads",
                Some(&self.build),
            ),
            (
                "report",
                "duplicate ids, tallies, payloads.ndjson, rejects",
                Some(&self.report),
            ),
            ("finish", "report.json, report.html, rejects.csv", finish),
        ];
        for (name, what, stage) in stages {
            let Some(stage) = stage else { continue };
            total = total.zip(stage.cpu()).map(|(t, c)| t + c);
            out.push_str(&format!(
                "  {name:<7} cpu {:>7}  busy {:>7}  threads {}  ({what})\n",
                cpu(stage.cpu()),
                secs(stage.busy()),
                stage.threads()
            ));
        }
        out.push_str(&format!("  total   cpu {:>7}\n", cpu(total)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_adds_its_busy_time_and_cpu_to_its_stage() {
        let times = StageTimes::default();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    let mut clock = times.build.thread();
                    clock.time(|| {
                        let start = Instant::now();
                        while start.elapsed() < Duration::from_millis(20) {}
                    });
                });
            }
        });
        assert_eq!(times.build.threads(), 2);
        assert!(times.build.busy() >= Duration::from_millis(40));
        // Less than the busy time when other work took the CPU meanwhile.
        if let Some(cpu) = times.build.cpu() {
            assert!(
                cpu > Duration::ZERO && cpu <= times.build.busy() + Duration::from_millis(20),
                "{cpu:?}"
            );
        }
        let text = times.render(None);
        assert!(text.contains("  build   cpu"), "{text}");
        assert_eq!(times.read.threads(), 0);
    }
}
