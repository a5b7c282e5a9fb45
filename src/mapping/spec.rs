//! The mapping file as the user writes it: plain structs, strict, with source positions.
//!
//! These structs are the single source of truth for the mapping format: serde reads them
//! (unknown and duplicate keys are errors), their doc comments become the JSON Schema that
//! ships in `mappings/` for editors, and [`super::compile`] turns them into a plan. Nothing
//! here knows about HappyFox ids; that happens at compile time against the schema.

use std::borrow::Cow;
use std::fmt;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// A 1-based line and column in the mapping file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

/// A value with the place it was written, so compile errors can point at it.
#[derive(Debug, Clone)]
pub struct Sp<T> {
    pub value: T,
    pub pos: Pos,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Sp {
            value: s.value,
            pos: Pos {
                line: s.referenced.line(),
                column: s.referenced.column(),
            },
        })
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// A whole mapping file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    /// Where the records come from and how they are joined.
    pub source: SourceSpec,
    /// Defaults that apply to every value template.
    #[serde(default)]
    pub defaults: Defaults,
    /// How one source record becomes a HappyFox ticket.
    pub ticket: TicketSpec,
    /// How migrated tickets are found again in HappyFox, so that a batch whose response
    /// was lost can be reconciled instead of sent twice.
    #[serde(default)]
    pub marker: Option<MarkerSpec>,
    /// The rest of each ticket's conversation, posted after the ticket exists.
    #[serde(default)]
    pub conversation: Option<ConversationSpec>,
    /// The state each ticket is left in once its conversation is posted.
    #[serde(default, rename = "final")]
    pub final_state: Option<FinalSpec>,
}

/// Where the tickets are, which field identifies them, and the side files joined to them.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// The file (or glob, such as `tickets*.json`) with one record per ticket, relative
    /// to the `--input` folder. When `--input` names files, they are read instead.
    pub tickets: Sp<FileSpec>,
    /// The stable id of a record in the source system, e.g. `"{{ id }}"`. It keys the
    /// journal and the marker; two records with the same id are rejected as duplicates.
    pub id: Sp<String>,
    /// Records for which this is true are skipped (reported, never sent), e.g.
    /// `"{{ status == 'deleted' }}"`.
    #[serde(default)]
    pub skip_if: Option<Sp<String>>,
    /// Other files of the export, by the name templates use for them (`users`, `comments`).
    #[serde(default)]
    pub side: IndexMap<String, Sp<SideFileSpec>>,
}

/// How to read one file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// File name relative to the export folder, or a glob matching several files (read
    /// in path order): `*` and `?` within a folder, `**` across folders, `{a,b}` either
    /// name, e.g. `**/tickets*.json`.
    pub file: String,
    /// `csv`, `json` or `ndjson`; by default taken from the file extension.
    #[serde(default)]
    pub format: Option<FormatName>,
    /// For JSON documents: the dotted path of the array of records (`tickets`,
    /// `data.items`). Omit it when the document is a top-level array; `.` when the whole
    /// document is one record (one ticket per file, with a glob over the folder).
    #[serde(default)]
    pub records: Option<String>,
    /// CSV field delimiter, one character (default `,`; use `"\t"` for TSV).
    #[serde(default)]
    pub delimiter: Option<String>,
    /// CSV text encoding: `utf-8` (default, with or without BOM) or `windows-1252`.
    #[serde(default)]
    pub encoding: Option<EncodingName>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FormatName {
    Csv,
    Json,
    Ndjson,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum EncodingName {
    #[serde(rename = "utf-8", alias = "utf8")]
    Utf8,
    #[serde(rename = "windows-1252", alias = "cp1252", alias = "latin1")]
    Windows1252,
}

/// A side file: a lookup table (users by id) or entries joined to each ticket (comments
/// by ticket id).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SideFileSpec {
    /// File name relative to the export folder (override with `--side NAME=PATH`), or a
    /// glob (`sys_journal_field*.json`): every match is read into the one side file, in
    /// path order.
    pub file: String,
    /// `csv`, `json` or `ndjson`; by default taken from the file extension.
    #[serde(default)]
    pub format: Option<FormatName>,
    /// For JSON documents: the dotted path of the array of records; `.` when the whole
    /// document is one record (one entry per file, with a glob over the folder).
    #[serde(default)]
    pub records: Option<String>,
    /// CSV field delimiter, one character.
    #[serde(default)]
    pub delimiter: Option<String>,
    /// CSV text encoding: `utf-8` (default) or `windows-1252`.
    #[serde(default)]
    pub encoding: Option<EncodingName>,
    /// Dotted path of the key in each record of this file (`id`, `ticket_id`), or a
    /// template computing it from the record (before `explode`), e.g.
    /// `"{{ self | regex_replace('.*/issue/([^/]+)/.*', '$1') }}"`. A record it fails on
    /// or renders empty for is reported with its file:line and left out.
    pub key: String,
    /// Makes the file a per-ticket list: this template, evaluated on the ticket, gives the
    /// key whose entries the ticket sees under the side file's name (`"{{ id }}"`).
    /// Without it the file is a lookup table: `users[requester_id].email`.
    #[serde(default)]
    pub join: Option<Sp<String>>,
    /// Dotted path of an array in each record whose items become the entries (Zendesk
    /// audits: `events`). Each item gets `_parent`, the record it came from.
    #[serde(default)]
    pub explode: Option<String>,
    /// Only entries for which this is true are kept, e.g. `"{{ type == 'Comment' }}"`.
    #[serde(default)]
    pub keep_if: Option<Sp<String>>,
    /// Dotted path that orders the entries of one key (`created_at`,
    /// `_parent.created_at`); file order otherwise.
    #[serde(default)]
    pub order_by: Option<String>,
    /// A missing file (or a glob that matches nothing) is not an error: lookups in it
    /// find nothing.
    #[serde(default)]
    pub optional: bool,
}

/// Defaults for value templates.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// IANA zone for timestamps written without an offset (`Europe/Berlin`); UTC if
    /// omitted.
    #[serde(default)]
    pub timezone: Option<Sp<String>>,
}

/// A value: a template (`"{{ subject }}"`, `"Support"`), a number or boolean, or a value
/// map.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum ValueSpec {
    /// A minijinja template. A template that is a single `{{ expression }}` keeps the
    /// expression's type (a list stays a list).
    Template(String),
    Number(f64),
    Bool(bool),
    /// Translate source values into HappyFox names.
    Map(MapSpec),
}

/// `{ value, map, default }`: the rendered `value` is looked up in `map` (exact match
/// first, then ignoring case); unmapped values take `default` with a warning, or pass
/// through unchanged when there is no default.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MapSpec {
    pub value: String,
    #[serde(default)]
    pub map: IndexMap<String, String>,
    #[serde(default)]
    pub default: Option<String>,
}

impl<'de> Deserialize<'de> for ValueSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ValueSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a template string, a number, a boolean or { value, map, default }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ValueSpec, E> {
                Ok(ValueSpec::Template(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<ValueSpec, E> {
                Ok(ValueSpec::Template(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ValueSpec, E> {
                Ok(ValueSpec::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ValueSpec, E> {
                Ok(ValueSpec::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ValueSpec, E> {
                Ok(ValueSpec::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ValueSpec, E> {
                Ok(ValueSpec::Number(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ValueSpec, A::Error> {
                MapSpec::deserialize(de::value::MapAccessDeserializer::new(map)).map(ValueSpec::Map)
            }
        }
        d.deserialize_any(V)
    }
}

/// How a record becomes the ticket-create payload.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketSpec {
    /// Category name as HappyFox shows it; must be a public category.
    pub category: Sp<ValueSpec>,
    /// Who raised the ticket.
    pub contact: ContactSpec,
    pub subject: Sp<ValueSpec>,
    /// The first message as HTML. One of `html` and `text` is required.
    #[serde(default)]
    pub html: Option<Sp<ValueSpec>>,
    /// The first message as plain text.
    #[serde(default)]
    pub text: Option<Sp<ValueSpec>>,
    /// Priority name; the account's default priority when empty.
    #[serde(default)]
    pub priority: Option<Sp<ValueSpec>>,
    /// Agent email or name; unassigned when empty. Unknown or inactive agents leave the
    /// ticket unassigned with a warning.
    #[serde(default)]
    pub assignee: Option<Sp<ValueSpec>>,
    /// A list, or a comma-separated string.
    #[serde(default)]
    pub tags: Option<Sp<ValueSpec>>,
    /// Email addresses, as a list or comma-separated.
    #[serde(default)]
    pub cc: Option<Sp<ValueSpec>>,
    #[serde(default)]
    pub bcc: Option<Sp<ValueSpec>>,
    /// When the ticket was created; use the `datetime` filter to convert to UTC.
    #[serde(default)]
    pub created_at: Option<Sp<ValueSpec>>,
    /// Due date; use the `date` filter.
    #[serde(default)]
    pub due_date: Option<Sp<ValueSpec>>,
    /// Private ticket, visible to staff only.
    #[serde(default)]
    pub visible_only_staff: Option<Sp<ValueSpec>>,
    /// Ticket custom fields by the name the HappyFox admin sees.
    #[serde(default)]
    pub custom_fields: IndexMap<Sp<String>, Sp<ValueSpec>>,
    /// Files of the first message. A ticket with attachments is created on its own
    /// (multipart) instead of in a bulk request.
    #[serde(default)]
    pub attachments: Option<AttachmentsSpec>,
    /// Who really wrote the first message, when it was not the contact (an agent's
    /// outbound message, a ticket an agent opened for a customer). HappyFox always shows
    /// the first message as the contact's, and the contact stays the customer; this puts
    /// a header naming the real author above the message.
    #[serde(default)]
    pub first_message: Option<FirstMessageSpec>,
}

/// `ticket.first_message`: the real author of the first message, kept in a header.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirstMessageSpec {
    /// The author's email, empty when the contact wrote it, e.g.
    /// `"{{ source.author.email if source.author.type == 'admin' }}"`. When it (or
    /// `author_name`) renders non-empty and is not the contact's email, the header is
    /// prepended to `ticket.html` (or `ticket.text`, as text).
    pub author: Sp<ValueSpec>,
    /// The author's name, for the header.
    #[serde(default)]
    pub author_name: Option<Sp<ValueSpec>>,
    /// The header template; it sees the record's fields, `author`, `author_name` and
    /// `created_at` (the ticket's, as `ticket.created_at` renders it). By default the
    /// same wording as a conversation entry's default header.
    #[serde(default)]
    pub header: Option<Sp<String>>,
}

/// A message's attachments: a list from the record, and how to read each item. Item
/// templates see the item's fields, plus `ticket` (the ticket record).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentsSpec {
    /// An expression giving the list, e.g. `"{{ comments[0].attachments }}"`.
    pub entries: Sp<String>,
    /// The file name HappyFox shows.
    pub name: Sp<ValueSpec>,
    /// A file path relative to the export folder (nothing outside it is read).
    #[serde(default)]
    pub path: Option<Sp<ValueSpec>>,
    /// Or a URL to download (with `HFMIGRATE_SOURCE_AUTH_HEADER` when set).
    #[serde(default)]
    pub url: Option<Sp<ValueSpec>>,
    /// The size in bytes the export states, for planning (25 MB per request).
    #[serde(default)]
    pub size: Option<Sp<ValueSpec>>,
    #[serde(default)]
    pub content_type: Option<Sp<ValueSpec>>,
}

/// The ticket's contact.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactSpec {
    /// Display name; the email is used when it renders empty.
    #[serde(default)]
    pub name: Option<Sp<ValueSpec>>,
    pub email: Sp<ValueSpec>,
    #[serde(default)]
    pub phone: Option<Sp<ValueSpec>>,
    /// Contact custom fields by name.
    #[serde(default)]
    pub custom_fields: IndexMap<Sp<String>, Sp<ValueSpec>>,
}

/// The source-id marker written into every ticket.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkerSpec {
    /// A text ticket custom field (such as "Source ID") that holds the marker.
    #[serde(default)]
    pub custom_field: Option<Sp<String>>,
    /// Or a tag template, e.g. `"zd-{{ id }}"`.
    #[serde(default)]
    pub tag: Option<Sp<String>>,
    /// The marker value; the source id when omitted.
    #[serde(default)]
    pub value: Option<Sp<String>>,
}

/// How a ticket's later conversation is posted.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HistoryMode {
    /// Each entry is its own post.
    #[default]
    Full,
    /// All entries in one private note.
    Transcript,
}

/// The conversation after the first message.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationSpec {
    /// An expression giving the ticket's entries, oldest first, e.g. `"{{ comments }}"`.
    /// Entry templates below see the entry's fields, plus `ticket` (the ticket record)
    /// and the side files.
    pub entries: Sp<String>,
    /// Orders the entries before anything else reads them: a dotted path (`createdAt`,
    /// `_parent.created_at`) or a field name with spaces (`Created At`) in each entry,
    /// compared as a side file's `order_by` compares (numbers by value and before text,
    /// text byte by byte, so ISO times in one format sort by time). The sort is stable:
    /// entries with equal values, and entries without one (placed last), keep the order
    /// the list had. For exports that list a ticket's messages newest first (Help Scout's
    /// threads). `skip_first` then skips the first entry of the sorted list.
    #[serde(default)]
    pub order_by: Option<Sp<String>>,
    /// The first entry is the ticket's own first message: it is not posted again.
    #[serde(default)]
    pub skip_first: bool,
    /// Entries for which this is false are left out.
    #[serde(default)]
    pub keep_if: Option<Sp<String>>,
    /// `full` (the default): every entry is a post of its own. `transcript`: the whole
    /// later conversation is one private note (each entry with its author, time and kind,
    /// HTML kept, its files in the same post up to the request limit), which also carries
    /// the final state, so such a ticket costs one POST after its creation instead of one
    /// per entry. For old, closed tickets whose exact thread matters less than the budget.
    #[serde(default)]
    pub history: Option<Sp<HistoryMode>>,
    /// With `history: transcript`, the tickets that get a transcript (the ticket's fields,
    /// e.g. `"{{ status == 'closed' and updated_at < '2024-01-01' }}"`); the others keep
    /// their full history. Every ticket when absent.
    #[serde(default)]
    pub history_when: Option<Sp<String>>,
    /// The entry's own id in the source (Zendesk comment id, Freshdesk conversation id,
    /// a CSV comment id), e.g. `"{{ id }}"`. A delta run from a newer export posts exactly
    /// the entries whose id the journal has not seen. Without it, an entry is known by a
    /// hash of its created_at, author and text, so an entry edited in the source looks
    /// new (the run warns when it falls back).
    #[serde(default)]
    pub id: Option<Sp<ValueSpec>>,
    /// `staff_reply`, `private_note` or `contact_reply`.
    pub kind: Sp<ValueSpec>,
    /// Author's email: agents resolve to staff, contacts to contacts.
    pub author: Sp<ValueSpec>,
    /// Author's name, for the header.
    #[serde(default)]
    pub author_name: Option<Sp<ValueSpec>>,
    /// When the entry was written (`datetime` filter), for the header.
    #[serde(default)]
    pub created_at: Option<Sp<ValueSpec>>,
    #[serde(default)]
    pub html: Option<Sp<ValueSpec>>,
    #[serde(default)]
    pub text: Option<Sp<ValueSpec>>,
    /// Prepended to each posted body to keep the original author and time; the template
    /// sees `author_name`, `author`, `created_at`. Set to `""` to turn it off.
    #[serde(default)]
    pub header: Option<Sp<String>>,
    /// Agent email used when an entry's agent is missing or inactive in HappyFox.
    #[serde(default)]
    pub fallback_agent: Option<Sp<String>>,
    /// Files of each entry, posted with it.
    #[serde(default)]
    pub attachments: Option<AttachmentsSpec>,
}

/// The state a ticket ends in.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FinalSpec {
    /// Status name.
    #[serde(default)]
    pub status: Option<Sp<ValueSpec>>,
    /// Ticket custom fields set with the final post (compulsory-on-completion fields).
    #[serde(default)]
    pub custom_fields: IndexMap<Sp<String>, Sp<ValueSpec>>,
}

impl SideFileSpec {
    /// The reading part of this side file's spec.
    pub fn file_spec(&self) -> FileSpec {
        FileSpec {
            file: self.file.clone(),
            format: self.format,
            records: self.records.clone(),
            delimiter: self.delimiter.clone(),
            encoding: self.encoding,
        }
    }
}

impl std::hash::Hash for Sp<String> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state)
    }
}
impl PartialEq for Sp<String> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl Eq for Sp<String> {}
