//! Adoption: tickets the account already holds for this mapping, found by their markers
//! and recorded as created before anything is sent.
//!
//! The journal is the importer's memory; when it is new (a first run, or a replacement
//! for one lost), or knows it lost its latest writes, the account may hold tickets it does
//! not know about, and creating them again would make duplicates. So before the first
//! create the account's tickets are listed (oldest first, 50 a page, paced like every
//! GET), each marker is matched against the pending records, and matches are adopted.
//! The page reached is a journal note, so a stopped listing resumes where it stopped.
//! A lost journal costs a listing of the account, never a duplicate.

use std::collections::HashMap;

use serde_json::Value;

use super::marker::MarkerKind;
use super::progress::Progress;
use super::send::{Interrupts, Stop};
use crate::client::Client;
use crate::journal::Journal;

/// The journal note holding the listing's progress: the last page done, or `done`.
pub(crate) const ADOPT_NOTE: &str = "adopt.page";
/// What the note says once the listing is complete.
pub(crate) const ADOPT_DONE: &str = "done";
/// Tickets per page (the most HappyFox lists at once).
const PAGE_SIZE: u64 = 50;

/// Whether a listing is due (asked for, or begun and not finished).
pub(crate) fn pending(journal: &Journal) -> bool {
    journal
        .note(ADOPT_NOTE)
        .ok()
        .flatten()
        .is_some_and(|n| n != ADOPT_DONE)
}

/// Lists the account's tickets from where the note says and adopts those carrying the
/// marker of a pending record. Their messages are read back before they are posted,
/// not before `not_before` (ms since the epoch). Returns how many were adopted.
pub(crate) async fn adopt_all(
    journal: &mut Journal,
    client: &Client,
    kind: &MarkerKind,
    not_before: i64,
    interrupts: &Interrupts,
    progress: &Progress,
) -> Result<u64, Stop> {
    let wanted = markers_of_pending(journal, kind).map_err(Stop::Journal)?;
    if wanted.is_empty() {
        journal
            .set_note(ADOPT_NOTE, ADOPT_DONE)
            .map_err(Stop::Journal)?;
        return Ok(0);
    }
    let done: u64 = journal
        .note(ADOPT_NOTE)
        .map_err(Stop::Journal)?
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    progress.println(&format!(
        "adopting: listing the account's tickets from page {} to find those of the {} records still to create that it already holds (by marker)",
        done + 1,
        wanted.len()
    ));
    let before = interrupts.count();
    let mut adopted = 0;
    let mut page = done + 1;
    loop {
        if interrupts.count() > before {
            return Err(Stop::Interrupted);
        }
        let number = page.to_string();
        let size = PAGE_SIZE.to_string();
        let answer = client
            .get_json(
                "tickets/",
                &[
                    ("status", "_all"),
                    ("sort", "createa"),
                    ("size", &size),
                    ("page", &number),
                ],
            )
            .await
            .map_err(Stop::Client)?;
        let tickets = answer
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let found: Vec<(String, u64, String)> = tickets
            .iter()
            .filter_map(|t| {
                let id = t.get("id")?.as_u64()?;
                let display = t
                    .get("display_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let source_id = kind
                    .values_in(t)
                    .into_iter()
                    .find_map(|v| wanted.get(&v).cloned())?;
                Some((source_id, id, display))
            })
            .collect();
        adopted += journal.adopt(&found, not_before).map_err(Stop::Journal)?;
        journal
            .set_note(ADOPT_NOTE, &number)
            .map_err(Stop::Journal)?;
        let pages = answer
            .get("page_info")
            .and_then(|p| p.get("page_count"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if tickets.is_empty() || page >= pages {
            break;
        }
        page += 1;
    }
    journal
        .set_note(ADOPT_NOTE, ADOPT_DONE)
        .map_err(Stop::Journal)?;
    progress.println(&format!(
        "adopting: {adopted} ticket(s) the account already held are recorded as created"
    ));
    Ok(adopted)
}

/// Marker value → source id of every pending record.
fn markers_of_pending(
    journal: &Journal,
    kind: &MarkerKind,
) -> Result<HashMap<String, String>, crate::journal::JournalError> {
    let mut wanted = HashMap::new();
    let mut cursor = 0;
    loop {
        let rows = journal.next_pending(cursor, 1_000)?;
        let Some(last) = rows.last() else { break };
        cursor = last.row;
        for r in rows {
            if let Some(value) = serde_json::from_str::<Value>(&r.payload)
                .ok()
                .and_then(|p| kind.value_of(&p))
            {
                wanted.insert(value, r.source_id);
            }
        }
    }
    Ok(wanted)
}
