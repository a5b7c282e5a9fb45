//! `verify --input`: the export re-rendered through the mapping, with the same front half
//! the import uses (source → mapping → payload, [`crate::pipeline`]), and held against
//! the journal.
//!
//! A record whose payload and messages render exactly as the journal holds them needs
//! nothing more: comparing HappyFox with the journal compares it with the source. Only the
//! records that render differently (the mapping or the export changed after the import)
//! are kept, and HappyFox is compared with their new rendering; valid records the journal
//! does not call created are listed with their location, so none goes unseen.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use super::VerifyError;
use crate::journal::{Journal, JournalError, NewMessage};
use crate::mapping::Plan;
use crate::payload::RecordOutcome;
use crate::pipeline::{self, PipelineError};
use crate::schema::Schema;

/// The export and the mapping that reads it.
pub struct Export {
    pub plan: Plan,
    pub schema: Arc<Schema>,
    pub inputs: Vec<PathBuf>,
    /// `--side NAME=PATH` overrides.
    pub sides: Vec<(String, PathBuf)>,
}

/// A valid record of the export that is not a created ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotCreated {
    pub source_id: String,
    /// `file:line` of the record.
    pub location: String,
}

/// What the export says, next to the journal.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceCheck {
    /// Records read from the export.
    pub records: u64,
    /// Valid records (the mapping builds a payload).
    pub valid: u64,
    /// Records the mapping rejects or skips; `hfmigrate results` lists the rejected ones
    /// with their problems, as the import journaled them.
    pub rejected: u64,
    pub skipped: u64,
    /// Valid records the journal does not call created.
    pub not_created: Vec<NotCreated>,
    /// Created records that render differently now than the journal holds (compared
    /// with HappyFox in their new form).
    pub rendered_differently: Vec<String>,
}

impl SourceCheck {
    pub fn is_clean(&self) -> bool {
        self.not_created.is_empty() && self.rendered_differently.is_empty()
    }
}

/// The new rendering of a record that differs from the journal's.
pub(crate) struct Rendered {
    pub payload: String,
    pub messages: Vec<NewMessage>,
}

/// Reads the whole export. `created` holds the journal's created source ids.
pub(crate) fn render(
    journal: &Journal,
    export: &Export,
    created: &HashSet<String>,
) -> Result<(SourceCheck, HashMap<String, Rendered>), VerifyError> {
    let closing = crate::payload::conversation::closing_staff(&export.plan, &export.schema);
    let mut check = SourceCheck::default();
    let mut differs = HashMap::new();
    let ran = pipeline::for_each(
        &export.plan,
        export.schema.clone(),
        &export.inputs,
        &export.sides,
        |p| -> Result<(), JournalError> {
            check.records += 1;
            let plan = match p.outcome {
                RecordOutcome::Valid { plan, .. } => plan,
                RecordOutcome::Rejected { .. } => {
                    check.rejected += 1;
                    return Ok(());
                }
                RecordOutcome::Skipped { .. } => {
                    check.skipped += 1;
                    return Ok(());
                }
            };
            check.valid += 1;
            let source_id = plan.source_id.to_string();
            if !created.contains(&source_id) {
                check.not_created.push(NotCreated {
                    source_id,
                    location: p.location.to_string(),
                });
                return Ok(());
            }
            let payload = plan.stored_payload().unwrap_or_default();
            let messages = super::super::replies::journal_messages(&plan, &export.schema, closing);
            let same_payload = journal.payload(&source_id)?.as_deref() == Some(payload.as_str());
            let journaled = journal.ticket_messages(&source_id)?;
            let same_messages = journaled.len() == messages.len()
                && journaled.iter().zip(&messages).all(|(j, m)| {
                    j.position == m.position && j.kind == m.kind && j.payload == m.payload
                });
            if !(same_payload && same_messages) {
                check.rendered_differently.push(source_id.clone());
                differs.insert(source_id, Rendered { payload, messages });
            }
            Ok(())
        },
    );
    match ran {
        Ok(_) => Ok((check, differs)),
        Err(PipelineError::Consumer(e)) => Err(VerifyError::Journal(e)),
        Err(e) => Err(VerifyError::Export(e.to_string())),
    }
}
