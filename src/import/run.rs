//! The two phases of an import after its plan is confirmed: create the tickets, then post
//! their conversations, under one Ctrl-C counter, and record how the run ended.
//!
//! Conversations start only once no ticket is left to create (a stop during creation
//! leaves them for the next run), and each ticket's messages go in order, many tickets at
//! a time, under the same POST ceiling. The first Ctrl-C stops starting new work in
//! either phase and waits for requests in flight; a second abandons them, to be reconciled
//! by the next run.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::progress::Progress;
use super::replies::{self, RepliesError, RepliesReport};
use super::send::{Interrupts, SendOptions, SendReport, Stop, send_all};
use super::{Prepared, RunEnd, finish};
use crate::client::Client;
use crate::journal::{JournalError, Summary};

/// Why the end of a run could not be recorded; every outcome before it is in the journal.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot record the end of the run in the journal: {0}")]
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
    let Prepared {
        mut journal,
        marker,
        ..
    } = prepared;
    let interrupts = Interrupts::ctrl_c(client);
    let tickets = send_all(
        &mut journal,
        client,
        &marker,
        send,
        progress,
        interrupts.clone(),
    )
    .await;
    progress.finish();
    let journal = Mutex::new(journal);
    let mut interrupted_conversations = false;
    let conversation = if tickets.stop.is_none() {
        let stop = AtomicBool::new(false);
        let outcome = conversations(client, &journal, send, &stop, interrupts).await;
        interrupted_conversations = stop.load(Ordering::SeqCst);
        outcome
    } else {
        ConversationOutcome::NotStarted
    };
    let mut journal = journal.into_inner().map_err(|_| RunError::Poisoned)?;
    let (mut end, summary) = finish(&mut journal, &tickets)?;
    if interrupted_conversations {
        end = RunEnd::Interrupted;
    }
    Ok(ImportOutcome {
        tickets,
        conversation,
        interrupted_conversations,
        end,
        summary,
    })
}

/// The conversation phase, stopped by the first Ctrl-C and abandoned on the second.
async fn conversations(
    client: &Client,
    journal: &Mutex<crate::journal::Journal>,
    send: &SendOptions,
    stop: &AtomicBool,
    mut presses: Interrupts,
) -> ConversationOutcome {
    let work = replies::post_all_with(
        client,
        journal,
        replies::DEFAULT_TICKETS_IN_PARALLEL,
        stop,
        send.fetcher.as_deref(),
    );
    tokio::pin!(work);
    let before = presses.count();
    loop {
        tokio::select! {
            r = &mut work => break match r {
                Ok(report) => ConversationOutcome::Posted(report),
                Err(e) => ConversationOutcome::Failed(e),
            },
            n = presses.next() => {
                stop.store(true, Ordering::SeqCst);
                if n > before + 1 {
                    break ConversationOutcome::Abandoned;
                }
            }
        }
    }
}
