//! `hfmigrate verify`: read the account back and compare it with the journal.
//!
//! The journal says what the importer believes; only HappyFox knows what exists. Verify
//! lists every ticket (50 per GET, well inside the GET budget) and groups those carrying a
//! marker: each record the journal calls created must be exactly one ticket with its
//! marker and the id the journal holds, and no ticket may carry the marker of a record the
//! journal does not call created (that would be a duplicate waiting to happen).
//!
//! Then each created ticket is read back and compared field by field ([`run`]): what
//! should be there ([`expected`]), the comparison ([`compare`]), the totals
//! ([`summary`]) and the page for people ([`html`]).

mod compare;
mod conversation;
mod expected;
mod history;
pub mod html;
mod run;
mod source;
mod summary;

pub use compare::{Check, TicketReport};
pub use run::{FieldOptions, VerifyProgress, verify_fields};
pub use source::{Export, NotCreated, SourceCheck};
pub use summary::{FieldRate, FieldSummary, SUMMARY_VERSION, Sample, full_verify_seconds};

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::marker::MarkerKind;
use crate::client::{Client, ClientError};
use crate::journal::{Journal, JournalError};

/// The journal note holding the marker kind, written by every import.
pub(crate) const MARKER_NOTE: &str = "marker";

/// Tickets per page; HappyFox's maximum.
const PAGE_SIZE: usize = 50;

/// What verify found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Tickets read from the account.
    pub tickets_read: u64,
    /// Records the journal calls created.
    pub created: u64,
    /// Created records found exactly once, with the journal's ticket id.
    pub ok: u64,
    /// Source ids the journal calls created with no ticket carrying their marker.
    pub missing: Vec<String>,
    /// Source ids whose marker is on more than one ticket (ticket ids).
    pub duplicated: Vec<(String, Vec<u64>)>,
    /// Source ids found on a different ticket than the journal says (journal id, found).
    pub other_id: Vec<(String, u64, u64)>,
    /// Marker values on tickets that the journal does not call created.
    pub unexpected: Vec<(String, u64)>,
}

impl Verification {
    pub(crate) fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.duplicated.is_empty()
            && self.other_id.is_empty()
            && self.unexpected.is_empty()
    }
}

/// Why verify could not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(
        "the journal does not say how tickets were marked (it was written before verify existed); run the import once more, which records it"
    )]
    NoMarker,
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot read the journal's results: {0}")]
    Results(String),
    #[error(
        "interrupted after comparing {compared} of {total} tickets; run the same verify again to continue"
    )]
    Interrupted { compared: u64, total: u64 },
    #[error("{0}")]
    Export(String),
}

impl crate::exit::Classify for VerifyError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            VerifyError::Client(e) => e.exit(),
            VerifyError::NoMarker => crate::exit::Exit::Usage,
            VerifyError::Journal(_) | VerifyError::Results(_) => crate::exit::Exit::Fatal,
            VerifyError::Interrupted { .. } => crate::exit::Exit::Interrupted,
            VerifyError::Export(_) => crate::exit::Exit::Usage,
        }
    }
}

impl MarkerKind {
    /// The note form: `tag` or `field:<id>:<name>`.
    pub(crate) fn to_note(&self) -> String {
        match self {
            MarkerKind::Tag => "tag".into(),
            MarkerKind::Field { name, id } => format!("field:{id}:{name}"),
        }
    }

    pub(crate) fn from_note(note: &str) -> Option<MarkerKind> {
        if note == "tag" {
            return Some(MarkerKind::Tag);
        }
        let rest = note.strip_prefix("field:")?;
        let (id, name) = rest.split_once(':')?;
        Some(MarkerKind::Field {
            name: name.to_owned(),
            id: id.parse().ok()?,
        })
    }

    /// The marker values a listed ticket carries (for tags, every tag: the caller keeps
    /// only the ones it expects).
    fn values_on(&self, ticket: &Value) -> Vec<String> {
        match self {
            MarkerKind::Field { id, .. } => ticket
                .get("custom_fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|f| f.get("id").and_then(Value::as_u64) == Some(*id))
                .filter_map(|f| f.get("value").and_then(Value::as_str))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect(),
            MarkerKind::Tag => ticket
                .get("tags")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .split(',')
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect(),
        }
    }
}

/// Compares the account with the journal. `scratch` is a folder for the journal's results
/// file, which is how created records are streamed out of it.
pub async fn verify(
    journal: &Journal,
    client: &Client,
    scratch: &Path,
) -> Result<Verification, VerifyError> {
    let kind = journal
        .note(MARKER_NOTE)?
        .as_deref()
        .and_then(MarkerKind::from_note)
        .ok_or(VerifyError::NoMarker)?;
    // marker value -> (source id, ticket id the journal holds)
    let mut expected: HashMap<String, (String, u64)> = HashMap::new();
    let written = journal.write_results(scratch)?;
    let mut reader = csv::Reader::from_path(&written.success_csv)
        .map_err(|e| VerifyError::Results(e.to_string()))?;
    for row in reader.records() {
        let row = row.map_err(|e| VerifyError::Results(e.to_string()))?;
        // write_results neutralises formula-like cells with a leading apostrophe.
        let source_id = row.get(0).unwrap_or_default();
        let source_id = match source_id.strip_prefix('\'') {
            Some(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => s,
            _ => source_id,
        };
        let ticket: u64 = row.get(1).and_then(|t| t.parse().ok()).unwrap_or(0);
        let marker = journal
            .payload(source_id)?
            .and_then(|p| serde_json::from_str::<Value>(&p).ok())
            .and_then(|p| kind.value_of(&p));
        if let Some(m) = marker {
            expected.insert(m, (source_id.to_owned(), ticket));
        }
    }
    let mut v = Verification {
        created: written.successes,
        ..Verification::default()
    };
    // Marker value -> tickets carrying it.
    let mut found: HashMap<String, Vec<u64>> = HashMap::new();
    let mut page = 1usize;
    loop {
        let page_text = page.to_string();
        let size = PAGE_SIZE.to_string();
        let answer = client
            .get_json(
                "tickets/",
                &[("status", "_all"), ("size", &size), ("page", &page_text)],
            )
            .await?;
        let items = answer
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for t in &items {
            v.tickets_read += 1;
            let Some(id) = t.get("id").and_then(Value::as_u64) else {
                continue;
            };
            for value in kind.values_on(t) {
                if matches!(kind, MarkerKind::Tag) && !expected.contains_key(&value) {
                    continue;
                }
                found.entry(value).or_default().push(id);
            }
        }
        let pages = answer
            .get("page_info")
            .and_then(|p| p.get("page_count"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if items.is_empty() || page as u64 >= pages {
            break;
        }
        page += 1;
    }
    for (marker, (source_id, ticket)) in &expected {
        match found.get(marker).map(Vec::as_slice) {
            None | Some([]) => v.missing.push(source_id.clone()),
            Some([one]) if one == ticket => v.ok += 1,
            Some([one]) => v.other_id.push((source_id.clone(), *ticket, *one)),
            Some(many) => v.duplicated.push((source_id.clone(), many.to_vec())),
        }
    }
    for (marker, ids) in &found {
        if !expected.contains_key(marker) {
            for id in ids {
                v.unexpected.push((marker.clone(), *id));
            }
        }
    }
    v.missing.sort();
    v.duplicated.sort();
    v.other_id.sort();
    v.unexpected.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_notes_round_trip() {
        for k in [
            MarkerKind::Tag,
            MarkerKind::Field {
                name: "Source: ID".into(),
                id: 12,
            },
        ] {
            assert_eq!(MarkerKind::from_note(&k.to_note()), Some(k));
        }
        assert_eq!(MarkerKind::from_note("field:x:y"), None);
    }
}
