//! The two phases of an import after its plan is confirmed: create the tickets, then post
//! their conversations, under one Ctrl-C counter, and record how the run ended.
//!
//! Conversations start only once no ticket is left to create (a stop during creation
//! leaves them for the next run), and each ticket's messages go in order, many tickets at
//! a time, under the same POST ceiling. The first Ctrl-C stops starting new work in
//! either phase and waits for requests in flight; a second abandons them, to be reconciled
//! by the next run.
//!
//! Requests a killed run sent may still land until their journaled deadline. The batches
//! and messages they belong to are deferred, not waited for: both phases go on with
//! everything else, and only then does the run wait (saying until when) for the earliest
//! deadline and go round again, so created tickets' conversations never queue behind
//! unrelated reconciliations.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::adopt;
use super::progress::Progress;
use super::replies::{self, RepliesError, RepliesReport};
use super::send::{Interrupts, SendOptions, SendReport, Stop, send_all};
use super::{Prepared, RunEnd, finish};
use crate::client::Client;
use crate::journal::{JournalError, Summary};

/// Why a run stopped without an end; every outcome before it is in the journal.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The journal could not be written mid-run (a full disk, a file made read-only):
    /// nothing more may be sent, since its outcome could not be recorded.
    #[error(
        "the journal {path} could not be written ({}), so the import stopped before sending anything it could not record; every outcome before this is in the journal: free disk space (or fix the file's permissions) and run the same command again",
        .cause.cause()
    )]
    Journal { path: String, cause: JournalError },
    #[error("the journal lock was poisoned by a crashed task")]
    Poisoned,
}

/// Inside [`run`]: a journal error before the journal's path is attached.
#[derive(Debug, thiserror::Error)]
enum Inner {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("the journal lock was poisoned by a crashed task")]
    Poisoned,
}

/// What became of the conversation phase.
#[derive(Debug)]
pub enum ConversationOutcome {
    /// Ticket creation stopped, so no conversation was started.
    NotStarted,
    /// Posted until done or until the first Ctrl-C.
    Posted(RepliesReport),
    /// Posting stopped on an error; nothing is lost, the next run continues.
    Failed(RepliesError),
    /// A second Ctrl-C: posts in flight stay `sending`, reconciled by the next run.
    Abandoned,
}

/// What one import run did, for the summary and the exit code.
#[derive(Debug)]
pub struct ImportOutcome {
    pub tickets: SendReport,
    pub conversation: ConversationOutcome,
    /// A Ctrl-C arrived during the conversation phase.
    pub interrupted_conversations: bool,
    pub end: RunEnd,
    /// The journal at the end of the run.
    pub summary: Summary,
    /// Side-file entries of the export that no ticket carries (they make the exit 3).
    pub side_lost: super::LostSideEntries,
    /// What newer exports changed that the import reports instead of applying (an entry
    /// changed in the source, or a state no agent could apply, makes the exit 3).
    pub delta_findings: Vec<crate::journal::Finding>,
}

impl ImportOutcome {
    /// Files sent and files left out, over both phases.
    pub fn files(&self) -> (u64, u64) {
        let t = &self.tickets;
        match &self.conversation {
            ConversationOutcome::Posted(c) => (
                t.attachments_sent + c.attachments_sent,
                t.attachment_failures + c.attachment_failures,
            ),
            _ => (t.attachments_sent, t.attachment_failures),
        }
    }

    /// Whether the run was stopped by Ctrl-C (and can be resumed by running it again).
    pub fn interrupted(&self) -> bool {
        self.interrupted_conversations
            || matches!(
                self.tickets.stop,
                Some(Stop::Interrupted | Stop::Abandoned { .. })
            )
    }
}

/// Runs both phases of a prepared import against `client`.
pub async fn run(
    prepared: Prepared,
    client: &Client,
    send: &SendOptions,
    progress: &mut Progress,
) -> Result<ImportOutcome, RunError> {
    let path = prepared.journal.path().display().to_string();
    run_inner(prepared, client, send, progress)
        .await
        .map_err(|e| match e {
            Inner::Journal(cause) => RunError::Journal { path, cause },
            Inner::Poisoned => RunError::Poisoned,
        })
}

async fn run_inner(
    prepared: Prepared,
    client: &Client,
    send: &SendOptions,
    progress: &mut Progress,
) -> Result<ImportOutcome, Inner> {
    let Prepared {
        mut journal,
        marker,
        ..
    } = prepared;
    let interrupts = Interrupts::ctrl_c(client);
    let mut tickets = SendReport::default();
    let mut conversation = ConversationOutcome::NotStarted;
    let mut interrupted_conversations = false;
    // The requests of this run may land until a lease after its last heartbeat; the
    // checkpoint puts that in the file itself at once, for a copy made without the log.
    journal.set_lease(send.request_timeout + super::send::LEASE_SLACK);
    if let Err(e) = journal.checkpoint() {
        tickets.stop = Some(Stop::Journal(e));
    }
    if tickets.stop.is_none() && adopt::pending(&journal) {
        let not_before = journal.lost_log().unwrap_or(0);
        let what = "the creates of a run whose journal log is lost, before listing the account";
        if !wait_until(not_before, what, interrupts.clone()).await {
            tickets.stop = Some(Stop::Interrupted);
        } else {
            match adopt::adopt_all(
                &mut journal,
                client,
                &marker,
                not_before,
                &interrupts,
                progress,
            )
            .await
            {
                Ok(n) => tickets.adopted = n,
                Err(stop) => tickets.stop = Some(stop),
            }
        }
    }
    while tickets.stop.is_none() {
        let pass = send_all(
            &mut journal,
            client,
            &marker,
            send,
            progress,
            interrupts.clone(),
        )
        .await;
        tickets.absorb(pass);
        progress.finish();
        if tickets.stop.is_some() {
            break;
        }
        let shared = Mutex::new(journal);
        let stop = AtomicBool::new(false);
        let outcome =
            conversations(client, &shared, send, &stop, interrupts.clone(), progress).await;
        progress.poll_conversations(&shared, client);
        progress.finish();
        journal = shared.into_inner().map_err(|_| Inner::Poisoned)?;
        interrupted_conversations = stop.load(Ordering::SeqCst);
        let report = match (outcome, &mut conversation) {
            (ConversationOutcome::Posted(later), ConversationOutcome::Posted(so_far)) => {
                so_far.absorb(later);
                so_far.clone()
            }
            (ConversationOutcome::Posted(first), _) => {
                conversation = ConversationOutcome::Posted(first.clone());
                first
            }
            (other, _) => {
                conversation = other;
                break;
            }
        };
        if interrupted_conversations {
            break;
        }
        let until = match (tickets.deferred_until, report.deferred_until) {
            (Some(a), Some(b)) => a.min(b),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => break,
        };
        let why = format!(
            "{} batch(es) and {} ticket conversation(s) an earlier run left in flight (everything else is done)",
            tickets.deferred, report.deferred
        );
        if !wait_until(until, &why, interrupts.clone()).await {
            interrupted_conversations = true;
            break;
        }
    }
    let (mut end, summary) = finish(&mut journal, &tickets)?;
    if interrupted_conversations {
        end = RunEnd::Interrupted;
    }
    let side_lost = super::LostSideEntries::recorded(&journal)?;
    let delta_findings = journal.delta_findings()?;
    Ok(ImportOutcome {
        tickets,
        conversation,
        interrupted_conversations,
        end,
        summary,
        side_lost,
        delta_findings,
    })
}

/// Waits for the deadline (ms since the epoch) of requests an earlier run may still have
/// on their way, saying what it waits for and until when; `false` on Ctrl-C.
async fn wait_until(deadline: i64, what: &str, mut presses: Interrupts) -> bool {
    let left = Duration::from_millis(u64::try_from(deadline - super::send::now_ms()).unwrap_or(0));
    if left.is_zero() {
        return true;
    }
    let at = jiff::Timestamp::from_millisecond(deadline)
        .map(|t| t.strftime("%H:%M:%S UTC").to_string())
        .unwrap_or_default();
    eprintln!(
        "waiting {} (until {at}) for {what}: their requests may still land until then, and concluding them absent sooner could send them twice",
        crate::duration::format(left)
    );
    let before = presses.count();
    let sleep = tokio::time::sleep(left);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return true,
            n = presses.next() => if n > before { return false },
        }
    }
}

/// The conversation phase, stopped by the first Ctrl-C and abandoned on the second.
async fn conversations(
    client: &Client,
    journal: &Mutex<crate::journal::Journal>,
    send: &SendOptions,
    stop: &AtomicBool,
    mut presses: Interrupts,
    progress: &mut Progress,
) -> ConversationOutcome {
    let work = replies::post_all_timed(
        client,
        journal,
        replies::DEFAULT_TICKETS_IN_PARALLEL,
        stop,
        send.fetcher.as_deref(),
        send.reconcile_delay,
    );
    tokio::pin!(work);
    let before = presses.count();
    let mut heartbeat = tokio::time::interval(super::send::HEARTBEAT);
    let mut tick = tokio::time::interval(super::progress::CONVERSATION_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                // Posts in flight keep their deadlines ahead of now; if the journal
                // cannot say so, stop starting new ones.
                let beat = journal.lock().map_err(|_| ()).and_then(|mut j| j.heartbeat().map_err(|_| ()));
                if beat.is_err() {
                    stop.store(true, Ordering::SeqCst);
                }
            }
            r = &mut work => break match r {
                Ok(report) => ConversationOutcome::Posted(report),
                Err(e) => ConversationOutcome::Failed(e),
            },
            n = presses.next() => {
                stop.store(true, Ordering::SeqCst);
                if n > before + 1 {
                    progress.println("abandoning the messages in flight; the next run reconciles them");
                    break ConversationOutcome::Abandoned;
                }
                progress.println("stopping: finishing the messages in flight (Ctrl-C again to abandon them; the next run reconciles them)");
            }
            _ = tick.tick() => progress.poll_conversations(journal, client),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_that_cannot_be_written_is_named_with_what_to_do_and_its_cause_once() {
        let cause = JournalError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(13),
            Some("database or disk is full".into()),
        ));
        let e = RunError::Journal {
            path: "/data/run.db".into(),
            cause,
        };
        let text = e.to_string();
        assert!(text.contains("/data/run.db"), "{text}");
        assert!(text.contains("free disk space"), "{text}");
        assert_eq!(text.matches("disk is full").count(), 1, "{text}");
        assert!(
            std::error::Error::source(&e).is_none(),
            "the cause is said once"
        );
    }
}
