//! Until when a write may still land, and keeping the file whole without its log.
//!
//! A POST that a run put on the wire and then died with is not over when the process is:
//! the server may still be working on it, and it may land seconds later. Concluding "not
//! created" (and sending again) before it could possibly land is how a restart creates
//! duplicates. So every batch and message `sending` carries a `deadline`: the running
//! process moves it to `now + lease` at every [`Journal::heartbeat`] while the request
//! is in flight (waiting for a pacing token, retrying or waiting for the answer), and
//! once the process is gone it stays where it was. The lease is the client's request
//! timeout plus a few heartbeats; a later run waits for `deadline` (plus the account's
//! search lag) before it concludes anything is absent.
//!
//! The heartbeat also checkpoints the write-ahead log every few seconds, so a journal
//! whose `-wal` file is lost (deleted, or the `.db` copied alone) has lost seconds of
//! history, not the whole run.

use std::time::{Duration, Instant};

use rusqlite::params;

use super::{Journal, JournalError, now_ms};

/// The lease of a journal whose importer did not say (and of rows of older journals,
/// which have no deadline): the client's default request timeout plus slack.
pub(crate) const DEFAULT_LEASE: Duration = Duration::from_secs(130);

/// How often the heartbeat folds the write-ahead log into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

pub(super) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Journal {
    /// The lease of the requests this run begins: how long after a heartbeat one of them
    /// may still land (the request timeout plus time for the next heartbeat to come).
    pub(crate) fn set_lease(&mut self, lease: Duration) {
        self.lease_ms = ms(lease);
    }

    /// The default lease for requests begun without one.
    pub(crate) fn lease(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.lease_ms).unwrap_or(0))
    }

    /// Moves the deadline of every request of this run still in flight to `now + lease`,
    /// and every few seconds checkpoints the write-ahead log. Call it about once a second
    /// while requests are in flight.
    pub(crate) fn heartbeat(&mut self) -> Result<(), JournalError> {
        let now = now_ms();
        self.conn
            .prepare_cached(
                "UPDATE batches SET deadline = ?2 + coalesce(lease, ?3)
                 WHERE state = 'sending' AND run = ?1",
            )?
            .execute(params![self.run, now, self.lease_ms])?;
        self.conn
            .prepare_cached(
                "UPDATE messages SET deadline = ?2 + coalesce(lease, ?3)
                 WHERE state = 'sending' AND run = ?1",
            )?
            .execute(params![self.run, now, self.lease_ms])?;
        if self.last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Folds the write-ahead log into the database file as far as readers allow
    /// (`PASSIVE`: never waits for them), noting until when this run's requests may land
    /// so that a copy of the file alone knows how long to wait.
    pub(crate) fn checkpoint(&mut self) -> Result<(), JournalError> {
        let alive_until = now_ms() + ms(CHECKPOINT_EVERY) + self.lease_ms;
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES ('alive_until', ?1)")?
            .execute([alive_until.to_string()])?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        self.last_checkpoint = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{info, pending};
    use super::*;

    #[test]
    fn a_dead_runs_deadline_stays_where_its_last_heartbeat_put_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.db");
        let before;
        {
            let mut j = Journal::open(&path, &info()).unwrap();
            j.set_lease(Duration::from_secs(60));
            j.upsert_pending(&pending(2)).unwrap();
            j.begin_batch(&["ZD-0"]).unwrap();
            before = now_ms();
            std::thread::sleep(Duration::from_millis(20));
            j.heartbeat().unwrap();
            // Dropped with the batch in flight: the process died.
        }
        let j = Journal::open(&path, &info()).unwrap();
        let unknown = j.unknown_batches().unwrap();
        assert_eq!(unknown.len(), 1);
        let deadline = unknown[0].deadline;
        assert!(deadline >= before + 60_000 + 20, "{deadline} vs {before}");
        assert!(deadline <= now_ms() + 60_000, "{deadline}");
        // A later run's heartbeat is not the dead run's: its deadline does not move.
        let mut j = j;
        j.heartbeat().unwrap();
        assert_eq!(j.unknown_batches().unwrap()[0].deadline, deadline);
    }
}
