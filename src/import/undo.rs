//! `hfmigrate undo`: delete exactly the tickets a journal created, so a rehearsal leaves
//! the account as it found it (but for contacts, which HappyFox's API cannot delete).
//!
//! "Exactly" is the point: an account used for a rehearsal may hold tickets made by
//! people or by another tool, and ticket numbers say nothing about who made them. So each
//! ticket is read back first and deleted only while it still carries the marker the
//! journal sent; a ticket whose marker changed is skipped and listed. Every outcome is
//! journaled right after its answer, in the transaction that makes the record "not yet
//! created" again ([`Journal::record_undo`]), so a stopped undo continues with what is
//! left, and a later import on the same journal creates those tickets anew.
//!
//! Requests go through the import's [`Client`], with its pacing and retry rules: a delete
//! whose answer was lost is never resent blindly, the ticket is read again instead.

use std::collections::BTreeSet;

use futures::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};

use super::marker::MarkerKind;
use super::reconcile::{self, Lookup};
use super::send::{Interrupts, Member};
use super::verify::MARKER_NOTE;
use crate::client::{Client, ClientError, WriteOutcome};
use crate::journal::{CreatedTicket, Journal, JournalError, UndoOutcome};

/// Tickets read from the journal per page.
const PAGE: usize = 100;

/// How the undo runs.
#[derive(Debug, Clone)]
pub struct UndoOptions {
    /// The agent named as `staff_id` in every delete.
    pub staff_id: u64,
    /// Tickets handled at once; the client's pacing keeps the account's ceilings.
    pub concurrency: usize,
}

/// Why an undo cannot start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(
        "the journal does not say how its tickets were marked, so they cannot be told apart from anyone else's; run the import once more with this hfmigrate, which records it"
    )]
    NoMarker,
}

impl crate::exit::Classify for UndoError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            UndoError::NoMarker => crate::exit::Exit::Usage,
            UndoError::Journal(j) => crate::exit::usage_if(matches!(
                j,
                JournalError::ReadOnly { .. }
                    | JournalError::CannotOpen { .. }
                    | JournalError::NotAJournal { .. }
                    | JournalError::NewerVersion { .. }
                    | JournalError::Busy { .. }
            )),
        }
    }
}

/// A ticket left in HappyFox, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftTicket {
    pub source_id: String,
    pub ticket: u64,
    pub display_id: String,
    pub reason: String,
}

/// What the undo did. Serialised as `hfmigrate undo --json` prints it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UndoReport {
    /// Deleted by this run.
    pub deleted: u64,
    /// Already gone from HappyFox (by hand, or by an undo whose answer was lost).
    pub already_gone: u64,
    /// Left in place: their marker no longer matches the journal.
    pub skipped: Vec<LeftTicket>,
    /// HappyFox refused the delete, or its answer was lost and the ticket still exists.
    pub failed: Vec<LeftTicket>,
    /// Records of a batch whose answer was never seen that could not be searched for by
    /// marker (found ones are deleted like the rest), with why.
    pub unknown: Vec<String>,
    /// Contacts the import created or used (the API cannot delete contacts).
    pub contacts: Vec<String>,
    /// Ctrl-C stopped it: run it again to continue.
    pub interrupted: bool,
    /// The error that stopped it; run it again once it is fixed.
    pub stopped: Option<String>,
    /// Tickets the journal still calls created.
    pub left_created: u64,
}

impl UndoReport {
    /// How the command ends.
    pub fn exit(&self) -> crate::exit::Exit {
        use crate::exit::Exit;
        if self.stopped.is_some() {
            Exit::Fatal
        } else if self.interrupted {
            Exit::Interrupted
        } else {
            Exit::done_unless(
                !self.skipped.is_empty() || !self.failed.is_empty() || !self.unknown.is_empty(),
            )
        }
    }

    fn outcome(&self) -> &'static str {
        match self.exit() {
            crate::exit::Exit::Done => "undo_done",
            crate::exit::Exit::Incomplete => "undo_done_with_skips",
            crate::exit::Exit::Interrupted => "undo_interrupted",
            _ => "undo_failed",
        }
    }
}

/// Deletes every ticket the journal created that still carries its marker.
pub async fn undo(
    mut journal: Journal,
    client: &Client,
    opts: &UndoOptions,
    interrupts: Interrupts,
) -> Result<UndoReport, UndoError> {
    let kind = journal
        .note(MARKER_NOTE)?
        .as_deref()
        .and_then(MarkerKind::from_note)
        .ok_or(UndoError::NoMarker)?;
    let mut report = UndoReport::default();
    let mut contacts: BTreeSet<String> = journal
        .journaled_contacts()?
        .into_iter()
        .map(|(email, _)| email)
        .collect();
    // Batches whose answer was never seen: their tickets, if any, are found by marker.
    let found = find_in_flight(&journal, client, &kind, &mut report).await?;
    let mut run = Run {
        journal: &mut journal,
        client,
        kind: &kind,
        opts,
        interrupts: &interrupts,
        report: &mut report,
        contacts: &mut contacts,
    };
    if run.report.stopped.is_none() {
        run.handle(found).await?;
    }
    let mut after = 0;
    while run.report.stopped.is_none() && !run.report.interrupted {
        let page = run.journal.created_tickets(after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.row;
        run.handle(page).await?;
    }
    report.contacts = contacts.into_iter().collect();
    report.left_created = journal.created_count()?;
    journal.finish_run(report.outcome())?;
    Ok(report)
}

/// One undo's state while it works through the tickets.
struct Run<'a> {
    journal: &'a mut Journal,
    client: &'a Client,
    kind: &'a MarkerKind,
    opts: &'a UndoOptions,
    interrupts: &'a Interrupts,
    report: &'a mut UndoReport,
    contacts: &'a mut BTreeSet<String>,
}

impl Run<'_> {
    /// Undoes these tickets, a few at once, journaling each outcome as it arrives; stops
    /// starting new ones on Ctrl-C or once a request failed for good.
    async fn handle(&mut self, tickets: Vec<CreatedTicket>) -> Result<(), UndoError> {
        let (client, kind, staff_id) = (self.client, self.kind, self.opts.staff_id);
        let interrupts = self.interrupts;
        let mut results = futures::stream::iter(tickets)
            .take_while(|_| futures::future::ready(interrupts.count() == 0))
            .map(|t| async move {
                let outcome = undo_one(client, kind, &t, staff_id).await;
                (t, outcome)
            })
            .buffer_unordered(self.opts.concurrency.max(1));
        while let Some((ticket, outcome)) = results.next().await {
            let outcome = match outcome {
                Ok(o) => o,
                // Ctrl-C stopped the client before this one was sent: an interruption,
                // not a failure; it is tried again next run.
                Err(ClientError::Stopped { .. }) => {
                    self.report.interrupted = true;
                    continue;
                }
                Err(e) => {
                    // Keep what the others in flight did; this one is tried again next run.
                    self.report.stopped.get_or_insert_with(|| e.to_string());
                    continue;
                }
            };
            self.journal.record_undo(&ticket, &outcome)?;
            let left = |reason: String| LeftTicket {
                source_id: ticket.source_id.clone(),
                ticket: ticket.happyfox_id,
                display_id: ticket.display_id.clone(),
                reason,
            };
            match outcome {
                UndoOutcome::Deleted | UndoOutcome::Gone => {
                    if matches!(outcome, UndoOutcome::Deleted) {
                        self.report.deleted += 1;
                    } else {
                        self.report.already_gone += 1;
                    }
                    if let Some(email) = requester(&ticket) {
                        self.contacts.insert(email);
                    }
                }
                UndoOutcome::Skipped { reason } => self.report.skipped.push(left(reason)),
                UndoOutcome::Failed { reason } => self.report.failed.push(left(reason)),
            }
        }
        if interrupts.count() > 0 {
            self.report.interrupted = true;
        }
        Ok(())
    }
}

/// The tickets of records whose batch never got an answer, searched by marker as the
/// import's reconciliation does. Their records stay in flight: the next import searches
/// again, finds them absent and creates them anew. One that cannot be searched for is
/// listed, never guessed absent.
async fn find_in_flight(
    journal: &Journal,
    client: &Client,
    kind: &MarkerKind,
    report: &mut UndoReport,
) -> Result<Vec<CreatedTicket>, UndoError> {
    let mut members = Vec::new();
    for source_id in journal.in_flight_records()? {
        let stored = journal.payload(&source_id)?;
        let bytes = stored.as_ref().map_or(0, |p| p.len() as u64);
        match stored.and_then(|p| serde_json::from_str::<Value>(&p).ok()) {
            Some(payload) => members.push(Member {
                source_id,
                payload,
                bytes,
            }),
            None => report
                .unknown
                .push(format!("{source_id} (the journal holds no payload for it)")),
        }
    }
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let lookups = match reconcile::lookup_all(client, kind, &members).await {
        Ok(l) => l,
        Err(e) => {
            report.stopped = Some(e.to_string());
            return Ok(Vec::new());
        }
    };
    let mut found = Vec::new();
    for (m, lookup) in members.into_iter().zip(lookups) {
        match lookup {
            Lookup::Found(id, display_id) => found.push(CreatedTicket {
                row: 0,
                payload: Some(m.payload.to_string()),
                source_id: m.source_id,
                happyfox_id: id,
                display_id,
            }),
            Lookup::Absent => {}
            Lookup::Unsearchable(why) => report.unknown.push(format!("{} ({why})", m.source_id)),
        }
    }
    Ok(found)
}

/// Reads the ticket back and deletes it if it still carries the journal's marker.
async fn undo_one(
    client: &Client,
    kind: &MarkerKind,
    t: &CreatedTicket,
    staff_id: u64,
) -> Result<UndoOutcome, ClientError> {
    let expected = t
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .and_then(|p| kind.value_of(&p));
    let Some(expected) = expected else {
        return Ok(UndoOutcome::Skipped {
            reason: "the journal holds no marker for it, so it cannot be told apart from anyone else's ticket".into(),
        });
    };
    let Some(current) = read_ticket(client, t.happyfox_id).await? else {
        return Ok(UndoOutcome::Gone);
    };
    if !kind.matches(&expected, &current) {
        return Ok(UndoOutcome::Skipped {
            reason: format!(
                "it no longer carries the marker {expected:?} ({}); delete it by hand if it is the rehearsal's",
                describe_marker(kind, &current)
            ),
        });
    }
    let path = format!("ticket/{}/delete/", t.happyfox_id);
    Ok(
        match client
            .post_json(&path, &json!({ "staff_id": staff_id }))
            .await?
        {
            WriteOutcome::Done(_) | WriteOutcome::Items(_) => UndoOutcome::Deleted,
            WriteOutcome::Rejected(e) if e.status == 404 => UndoOutcome::Gone,
            WriteOutcome::Rejected(e) => UndoOutcome::Failed {
                reason: format!("HappyFox refused the delete: {e}"),
            },
            WriteOutcome::Unknown(why) => match read_ticket(client, t.happyfox_id).await? {
                None => UndoOutcome::Deleted,
                Some(_) => UndoOutcome::Failed {
                    reason: format!(
                        "the answer to the delete was lost ({why}) and the ticket still exists; run undo again"
                    ),
                },
            },
        },
    )
}

/// The ticket as HappyFox has it now; `None` when it does not exist.
async fn read_ticket(client: &Client, id: u64) -> Result<Option<Value>, ClientError> {
    match client.get_json(&format!("ticket/{id}/"), &[]).await {
        Ok(v) => Ok(Some(v)),
        Err(ClientError::Rejected { error, .. }) if error.status == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// What the ticket carries instead of the marker, for the skip's reason.
fn describe_marker(kind: &MarkerKind, ticket: &Value) -> String {
    match kind {
        MarkerKind::Field { id, name } => {
            let value = ticket
                .get("custom_fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|f| f.get("id").and_then(Value::as_u64) == Some(*id))
                .and_then(|f| f.get("value"))
                .and_then(Value::as_str)
                .unwrap_or("");
            format!("{name} is now {value:?}")
        }
        MarkerKind::Tag => {
            let tags = ticket.get("tags").and_then(Value::as_str).unwrap_or("");
            format!("its tags are now {tags:?}")
        }
    }
}

/// The requester's email of a created ticket, from its payload.
fn requester(t: &CreatedTicket) -> Option<String> {
    let payload: Value = serde_json::from_str(t.payload.as_deref()?).ok()?;
    let email = payload.get("email")?.as_str()?.trim();
    (!email.is_empty()).then(|| email.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_says_what_the_ticket_carries_now() {
        let kind = MarkerKind::Field {
            name: "Source ID".into(),
            id: 1,
        };
        let t = json!({"custom_fields": [{"id": 1, "name": "Source ID", "value": "edited"}]});
        assert_eq!(describe_marker(&kind, &t), "Source ID is now \"edited\"");
        assert!(!kind.matches("CSV-1", &t));
        let report = UndoReport {
            skipped: vec![LeftTicket {
                source_id: "1".into(),
                ticket: 1,
                display_id: "#SUP1".into(),
                reason: "x".into(),
            }],
            ..UndoReport::default()
        };
        assert_eq!(report.exit(), crate::exit::Exit::Incomplete);
        assert_eq!(UndoReport::default().exit(), crate::exit::Exit::Done);
    }
}
