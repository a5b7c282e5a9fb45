//! What `hfmigrate status` shows: counts per state and batch timings, read in one pass that
//! may run while an import writes.

use serde::Serialize;

use super::{Journal, JournalError};

/// Counts per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    pub pending: u64,
    pub sending: u64,
    pub created: u64,
    pub failed: u64,
    pub total: u64,
}

/// Batch counts and timings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BatchSummary {
    pub total: u64,
    /// Sent, answer not yet recorded (in flight now, or unknown if from an earlier run).
    pub sending: u64,
    pub finished: u64,
    /// Mean seconds between sending a batch and recording its outcome.
    pub mean_seconds: Option<f64>,
}

/// What `hfmigrate status` shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub target_url: String,
    pub tool_version: String,
    /// UTC, RFC 3339.
    pub started_at: Option<String>,
    pub last_finished_at: Option<String>,
    pub runs: u64,
    pub records: StateCounts,
    pub batches: BatchSummary,
    pub messages: StateCounts,
}

fn rfc3339(ms: i64) -> Option<String> {
    jiff::Timestamp::from_millisecond(ms)
        .ok()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

impl Journal {
    /// Counts and timings for `hfmigrate status`. Messages and batches are counted from
    /// their state indexes. Records have only partial state indexes (to keep each state
    /// change cheap), so counting them scans the records table, whose rows stay small
    /// because payloads live apart.
    pub fn summary(&self) -> Result<Summary, JournalError> {
        let counts = |table: &str| -> Result<StateCounts, JournalError> {
            let mut c = StateCounts::default();
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT state, count(*) FROM {table} GROUP BY state"
            ))?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let state: String = row.get(0)?;
                let n = u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0);
                match state.as_str() {
                    "pending" => c.pending += n,
                    "sending" => c.sending += n,
                    "created" => c.created += n,
                    _ => c.failed += n,
                }
                c.total += n;
            }
            Ok(c)
        };
        let records = counts("records")?;
        let messages = counts("messages")?;
        let (total, sending, finished, mean): (i64, i64, i64, Option<f64>) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(state = 'sending'), 0), coalesce(sum(state = 'finished'), 0),
                    avg(CASE WHEN finished_at IS NOT NULL THEN (finished_at - sent_at) / 1000.0 END)
             FROM batches",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        let (runs, first, last): (i64, Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT count(*), min(started_at), max(finished_at) FROM runs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(Summary {
            target_url: self.meta("target_url")?.unwrap_or_default(),
            tool_version: self.meta("tool_version")?.unwrap_or_default(),
            started_at: first.and_then(rfc3339),
            last_finished_at: last.and_then(rfc3339),
            runs: u64::try_from(runs).unwrap_or(0),
            records,
            batches: BatchSummary {
                total: u64::try_from(total).unwrap_or(0),
                sending: u64::try_from(sending).unwrap_or(0),
                finished: u64::try_from(finished).unwrap_or(0),
                mean_seconds: mean,
            },
            messages,
        })
    }
}
