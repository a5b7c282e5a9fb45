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
