//! What can be wrong with one record, in a form the report can group and count.
//!
//! Per-record problems never stop a run: an error rejects the record, a warning is
//! reported and the record still goes. Each problem has a kind (for grouping and counting
//! in the report), the field it concerns, and a message a migration lead can act on.

use std::fmt;

use serde::Serialize;

/// Rejects the record, or only reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Warning,
    Error,
}

/// The kinds of problem, for grouping in reports. Stable names: they appear in
/// `report.json` and `rejects.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The record itself could not be read (malformed CSV row, bad JSON).
    UnreadableRecord,
    /// A template failed to render for this record.
    TemplateError,
    MissingRequired,
    InvalidEmail,
    /// A contact without a real email gets an address on the reserved `.invalid` domain.
    PlaceholderEmail,
    UnknownCategory,
    PrivateCategory,
    UnknownStatus,
    UnknownPriority,
    UnknownAssignee,
    InactiveAssignee,
    UnknownChoice,
    FieldNotInCategory,
    InvalidDate,
    InvalidNumber,
    DuplicateSourceId,
    EmptySubject,
    EmptyBody,
    Oversized,
    CompulsoryOnCompletion,
    UnmappedValue,
    UnknownAuthor,
    InvalidConversation,
    /// An attachment that cannot be sent (no source, outside the export folder).
    AttachmentProblem,
    /// An entry of a side file that could not be read, or has no key: it reaches no ticket.
    UnreadableSideEntry,
    /// Side-file entries whose key no ticket of the export asked for.
    UnjoinedSideEntry,
    /// A key repeated in one JSON object of the record: only its last value is read.
    RepeatedKey,
    /// NUL bytes were removed from text the ticket sends.
    NulBytes,
    /// The export holds no record at all.
    EmptyExport,
    /// A template decides with a side file that is absent (e.g. a comment's kind without
    /// the users file).
    MissingLookup,
    /// A ticket or entry whose time the mapping reads renders none: HappyFox shows the
    /// time of the import, and a header names no time.
    NoTime,
}

impl ProblemKind {
    /// A short human title for report headings.
    pub(crate) fn title(self) -> &'static str {
        match self {
            ProblemKind::UnreadableRecord => "unreadable record",
            ProblemKind::TemplateError => "template error",
            ProblemKind::MissingRequired => "missing required field",
            ProblemKind::InvalidEmail => "invalid email",
            ProblemKind::PlaceholderEmail => "contact without email (placeholder address used)",
            ProblemKind::UnknownCategory => "unknown category",
            ProblemKind::PrivateCategory => "private category",
            ProblemKind::UnknownStatus => "unknown status",
            ProblemKind::UnknownPriority => "unknown priority",
            ProblemKind::UnknownAssignee => "unknown assignee",
            ProblemKind::InactiveAssignee => "inactive assignee",
            ProblemKind::UnknownChoice => "unknown choice label",
            ProblemKind::FieldNotInCategory => "custom field not valid for the category",
            ProblemKind::InvalidDate => "unparseable date",
            ProblemKind::InvalidNumber => "unparseable number",
            ProblemKind::DuplicateSourceId => "duplicate source id",
            ProblemKind::EmptySubject => "empty subject",
            ProblemKind::EmptyBody => "empty body",
            ProblemKind::Oversized => "oversized value",
            ProblemKind::CompulsoryOnCompletion => "field compulsory on completion missing",
            ProblemKind::UnmappedValue => "unmapped value (default used)",
            ProblemKind::UnknownAuthor => "conversation author falls back",
            ProblemKind::InvalidConversation => "invalid conversation entry",
            ProblemKind::AttachmentProblem => "attachment left out",
            ProblemKind::UnreadableSideEntry => {
                "side file entry left out (unreadable or without key)"
            }
            ProblemKind::UnjoinedSideEntry => {
                "side file key joined to no ticket (its entries are not migrated)"
            }
            ProblemKind::EmptyExport => "empty export",
            ProblemKind::NulBytes => "NUL bytes removed",
            ProblemKind::RepeatedKey => "key repeated in a JSON object (last value read)",
            ProblemKind::MissingLookup => "decided without an absent side file",
            ProblemKind::NoTime => "no original time (the import's time is shown)",
        }
    }

    /// The snake_case name used in machine-readable outputs.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// One problem with one record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub(crate) severity: Severity,
    pub kind: ProblemKind,
    /// The payload field it concerns (`subject`, `custom_fields.Product`).
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn error(kind: ProblemKind, field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            kind,
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn warning(
        kind: ProblemKind,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            severity: Severity::Warning,
            kind,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Problems not tied to one ticket record (a side file's entries, the damaged part of a
/// file), collected while reading: every one counted, the first few per kind kept with
/// their location, so memory stays bounded however many there are.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Sampled {
    /// (kind, severity, count, first examples as (location, problem)).
    groups: Vec<SampledGroup>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SampledGroup {
    pub kind: ProblemKind,
    pub severity: Severity,
    pub count: u64,
    pub first: Vec<(String, Problem)>,
}

impl Sampled {
    /// How many examples each kind keeps.
    pub(crate) const KEPT: usize = 5;

    pub(crate) fn add(&mut self, location: impl fmt::Display, problem: Problem) {
        self.add_many(1, location, problem);
    }

    /// `count` problems like `problem`, the first at `location`.
    pub(crate) fn add_many(&mut self, count: u64, location: impl fmt::Display, problem: Problem) {
        let g = match self
            .groups
            .iter()
            .position(|g| g.kind == problem.kind && g.severity == problem.severity)
        {
            Some(i) => &mut self.groups[i],
            None => {
                self.groups.push(SampledGroup {
                    kind: problem.kind,
                    severity: problem.severity,
                    count: 0,
                    first: vec![],
                });
                let last = self.groups.len() - 1;
                &mut self.groups[last]
            }
        };
        g.count += count;
        if g.first.len() < Self::KEPT {
            g.first.push((location.to_string(), problem));
        }
    }

    pub(crate) fn groups(&self) -> &[SampledGroup] {
        &self.groups
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.field.is_empty() {
            write!(f, "{sev}: {}", self.message)
        } else {
            write!(f, "{sev}: {}: {}", self.field, self.message)
        }
    }
}
