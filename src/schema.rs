//! The HappyFox account's reference data: categories, statuses, priorities, staff, custom
//! fields and contact groups.
//!
//! Mappings name things the way a HappyFox admin sees them ("Billing", "Closed",
//! "Product"), but the API only takes ids. This snapshot is the one place where names turn
//! into ids. It is pulled once (`hfmigrate schema pull`, GET only) or read from a file so
//! that `check` and `dry-run` can run offline, and the sandbox serves the same file as its
//! account. Structs mirror the API's JSON shapes field for field; fields we do not model
//! are kept in `extra` so a pulled snapshot round-trips through the sandbox unchanged.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Everything `hfmigrate` needs to know about the target account, as one JSON document.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Schema {
    /// Where the snapshot came from (account URL); informational only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// When it was pulled, UTC, informational only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_at: Option<String>,
    #[serde(default)]
    pub categories: Vec<Category>,
    #[serde(default)]
    pub statuses: Vec<Status>,
    #[serde(default)]
    pub priorities: Vec<Priority>,
    #[serde(default)]
    pub staff: Vec<Staff>,
    #[serde(default)]
    pub ticket_custom_fields: Vec<TicketCustomField>,
    #[serde(default)]
    pub user_custom_fields: Vec<UserCustomField>,
    #[serde(default)]
    pub contact_groups: Vec<ContactGroup>,
}

/// `GET categories/`. Only public categories accept tickets created through the API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Category {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub public: bool,
    /// The prefix of display ids in this category (`#AR00000012`).
    #[serde(default)]
    pub prepopulate_cc: String,
    #[serde(default)]
    pub time_spent_mandatory: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Whether a status keeps a ticket open or completes it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Behavior {
    Pending,
    Completed,
}

/// `GET statuses/`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub color: String,
    #[serde(default)]
    pub order: i64,
    #[serde(default)]
    pub default: bool,
    pub behavior: Behavior,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `GET priorities/`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Priority {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub order: i64,
    #[serde(default)]
    pub default: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A staff role as embedded in `GET staff/`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Role {
    pub id: u64,
    pub name: String,
}

/// `GET staff/`. Agents cannot be created through the API, so mappings resolve authors
/// and assignees against this list and fall back when an agent is missing or inactive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Staff {
    pub id: u64,
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub is_account_admin: bool,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Category ids the agent belongs to.
    #[serde(default)]
    pub categories: Vec<u64>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn yes() -> bool {
    true
}

/// The API `type` of a custom field. HappyFox documents `text` and `choice`; the other
/// names are the ones the admin UI uses and are kept as given when unknown, so a pulled
/// snapshot never fails to load because of a type we have not seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldType {
    Text,
    Textarea,
    Number,
    Date,
    Choice,
    MultipleChoice,
    Other(String),
}

impl FieldType {
    pub fn as_str(&self) -> &str {
        match self {
            FieldType::Text => "text",
            FieldType::Textarea => "textarea",
            FieldType::Number => "number",
            FieldType::Date => "date",
            FieldType::Choice => "choice",
            FieldType::MultipleChoice => "multiple_choice",
            FieldType::Other(s) => s,
        }
    }

    fn parse(s: &str) -> FieldType {
        match s {
            "text" => FieldType::Text,
            "textarea" | "large_text" => FieldType::Textarea,
            "number" | "decimal" => FieldType::Number,
            "date" => FieldType::Date,
            "choice" | "dropdown" => FieldType::Choice,
            "multiple_choice" | "multiplechoice" | "multi_choice" => FieldType::MultipleChoice,
            other => FieldType::Other(other.to_string()),
        }
    }
}

impl Serialize for FieldType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FieldType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(FieldType::parse(&s))
    }
}

/// One option of a choice or multiple-choice field; the API takes its `id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Choice {
    pub id: u64,
    pub text: String,
    #[serde(default)]
    pub dependant_fields: Vec<Value>,
}

/// A category a ticket custom field applies to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FieldCategory {
    pub category: u64,
    #[serde(default)]
    pub order: i64,
}

/// `GET ticket_custom_fields/`. Sent as `t-cf-<id>`; applies only to its categories.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TicketCustomField {
    pub id: u64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub required: bool,
    /// Must have a value before the ticket moves to a completed status.
    #[serde(default)]
    pub compulsory_on_completed: bool,
    #[serde(default)]
    pub compulsory_on_move: bool,
    #[serde(default)]
    pub visible_to_staff_only: bool,
    #[serde(default)]
    pub depends_on_choice: Option<Value>,
    #[serde(default)]
    pub choices: Option<Vec<Choice>>,
    #[serde(default)]
    pub categories: Vec<FieldCategory>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TicketCustomField {
    /// Whether the field may be set on a ticket of this category.
    pub(crate) fn applies_to(&self, category: u64) -> bool {
        self.categories.iter().any(|c| c.category == category)
    }
}

/// `GET user_custom_fields/`. Sent as `c-cf-<id>` on ticket and contact creation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserCustomField {
    pub id: u64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub order: i64,
    #[serde(default)]
    pub choices: Option<Vec<Choice>>,
    #[serde(default)]
    pub depends_on_choice: Option<Value>,
    #[serde(default)]
    pub visible_to_staff_only: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `GET contact_groups/`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContactGroup {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tagged_domains: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Why a schema file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot read schema file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "schema file {path} is not a HappyFox schema snapshot (line {line}, column {column}): {message}"
    )]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
}

/// The bundled sample account (`samples/happyfox-schema.json`), compiled in so that
/// `--sandbox` and `hfmigrate sandbox` work from any directory, after `cargo install` too.
const SAMPLE_JSON: &str = include_str!("../samples/happyfox-schema.json");

/// How the bundled sample account is named in messages.
pub const SAMPLE_NAME: &str = "samples/happyfox-schema.json";

impl Schema {
    /// The bundled sample account.
    pub fn sample() -> Schema {
        // A constant of the binary, parsed by a unit test: not input the user controls.
        serde_json::from_str(SAMPLE_JSON).expect("the bundled sample schema parses")
    }

    /// Reads a snapshot written by `schema pull` (or by hand, as the bundled sample is).
    pub fn load(path: &Path) -> Result<Schema, SchemaError> {
        let text = std::fs::read_to_string(path).map_err(|source| SchemaError::Read {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| SchemaError::Parse {
            path: path.display().to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    }

    pub fn category(&self, id: u64) -> Option<&Category> {
        self.categories.iter().find(|c| c.id == id)
    }

    pub fn status(&self, id: u64) -> Option<&Status> {
        self.statuses.iter().find(|s| s.id == id)
    }

    pub fn priority(&self, id: u64) -> Option<&Priority> {
        self.priorities.iter().find(|p| p.id == id)
    }

    pub(crate) fn staff_member(&self, id: u64) -> Option<&Staff> {
        self.staff.iter().find(|s| s.id == id)
    }

    pub(crate) fn ticket_field(&self, id: u64) -> Option<&TicketCustomField> {
        self.ticket_custom_fields.iter().find(|f| f.id == id)
    }

    pub(crate) fn user_field(&self, id: u64) -> Option<&UserCustomField> {
        self.user_custom_fields.iter().find(|f| f.id == id)
    }

    /// The status a new ticket gets (the one marked default, else the first by order).
    pub(crate) fn default_status(&self) -> Option<&Status> {
        self.statuses
            .iter()
            .find(|s| s.default)
            .or_else(|| self.statuses.iter().min_by_key(|s| s.order))
    }

    /// The priority a ticket gets when none is sent.
    pub(crate) fn default_priority(&self) -> Option<&Priority> {
        self.priorities
            .iter()
            .find(|p| p.default)
            .or_else(|| self.priorities.iter().min_by_key(|p| p.order))
    }
}

/// Case- and space-insensitive name comparison, the way an admin reads names.
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    normal_name(a) == normal_name(b)
}

/// The form [`same_name`] compares: whitespace runs collapsed to one space, ends
/// trimmed, lower-cased. Borrows when the name is already in that form (the common case
/// for ASCII labels), so most lookups do not allocate.
pub(crate) fn normal_name(s: &str) -> std::borrow::Cow<'_, str> {
    let b = s.as_bytes();
    let plain = s.is_ascii()
        && b.first().is_none_or(|c| *c != b' ')
        && b.last().is_none_or(|c| *c != b' ')
        && !b
            .iter()
            .any(|c| c.is_ascii_uppercase() || (c.is_ascii_whitespace() && *c != b' '))
        && !s.contains("  ");
    if plain {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase(),
        )
    }
}

/// The closest name among `candidates`, for "did you mean" hints; `None` when nothing is
/// close enough to be a plausible typo.
pub(crate) fn did_you_mean<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let wanted = wanted.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&wanted, &c.to_lowercase()), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_sample_is_the_file_in_samples() {
        let file =
            Schema::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SAMPLE_NAME))
                .unwrap();
        assert_eq!(Schema::sample(), file);
        assert!(!Schema::sample().categories.is_empty());
    }

    #[test]
    fn bundled_sample_schema_loads_and_covers_every_case() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/happyfox-schema.json");
        let s = Schema::load(&path).expect("sample schema loads");
        assert!(s.categories.iter().any(|c| c.public));
        assert!(s.categories.iter().any(|c| !c.public));
        assert!(s.statuses.iter().any(|x| x.behavior == Behavior::Completed));
        assert!(s.statuses.iter().any(|x| x.behavior == Behavior::Pending));
        assert!(s.staff.iter().any(|x| !x.active));
        for t in [
            FieldType::Text,
            FieldType::Textarea,
            FieldType::Number,
            FieldType::Date,
            FieldType::Choice,
            FieldType::MultipleChoice,
        ] {
            assert!(
                s.ticket_custom_fields.iter().any(|f| f.kind == t),
                "no ticket field of type {t:?}"
            );
        }
        assert!(
            s.ticket_custom_fields
                .iter()
                .any(|f| f.compulsory_on_completed)
        );
        let all: Vec<u64> = s.categories.iter().map(|c| c.id).collect();
        assert!(
            s.ticket_custom_fields
                .iter()
                .any(|f| !all.iter().all(|c| f.applies_to(*c))),
            "some field must be limited to some categories"
        );
    }

    #[test]
    fn unknown_field_types_are_kept() {
        let f: TicketCustomField =
            serde_json::from_str(r#"{"id":1,"name":"X","type":"rating","categories":[]}"#).unwrap();
        assert_eq!(f.kind, FieldType::Other("rating".into()));
        assert_eq!(serde_json::to_value(&f).unwrap()["type"], "rating");
    }

    #[test]
    fn did_you_mean_finds_typos_only() {
        assert_eq!(
            did_you_mean("Prodcut", ["Product", "Region"]),
            Some("Product")
        );
        assert_eq!(did_you_mean("zzz", ["Product", "Region"]), None);
    }
}
