//! Reading helpdesk exports as a stream of records.
//!
//! Exports are large (millions of tickets) and messy (BOMs, Windows-1252, repeated CSV
//! headers, truncated JSON), so every reader streams: memory does not grow with the size of
//! the file, and every record carries the file and line (or index) it came from so that a
//! problem can be reported where the user can fix it. A malformed record is reported and
//! skipped; the records after it are still read wherever the format allows.
//!
//! Records are JSON objects: a CSV row is an object of strings (a repeated header becomes
//! a list of strings) kept as cells beside its file's header ([`Row`]), a JSON record is
//! kept as it is. The mapping's templates see the same shape whatever the format.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

mod csv;
mod inputs;
mod json;
mod record;
pub mod side;

pub(crate) use inputs::{check_pattern, export_root, find_files, is_pattern, resolve_inputs};
pub(crate) use json::{Lines, Shape, parse_line};
pub(crate) use record::{Header, KeyHint, id_text, object_get};
pub use record::{RecordRef, RecordValue, Row};
pub use side::{ComputeKey, SideIndex, SideKey, SideSpec, Unjoined};

/// A record's stable id in the source helpdesk, as the mapping's `source.id` renders it
/// (trimmed, never empty): the journal's key, the marker's default value and what
/// duplicate detection compares. A type of its own so it is never confused with a
/// HappyFox id or a display id.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct SourceId(String);

/// Shown as the quoted id, as messages (`source id "3003" appeared before`) quote it.
impl fmt::Debug for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl SourceId {
    /// The id of a rendered `source.id`: trimmed, `None` when empty.
    pub fn new(rendered: &str) -> Option<SourceId> {
        let t = rendered.trim();
        (!t.is_empty()).then(|| SourceId(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for SourceId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for SourceId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for SourceId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Where a record came from, precise enough to open the file at that place.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    pub file: Arc<Path>,
    /// 1-based line where the record starts (CSV, NDJSON, and JSON where known).
    pub line: Option<u64>,
    /// 0-based index of the record within its file.
    pub index: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}", self.file.display(), line),
            None => write!(f, "{} record {}", self.file.display(), self.index + 1),
        }
    }
}

/// One record of an export.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    pub location: Location,
    /// Always a JSON object, or a CSV row.
    pub value: RecordValue,
    /// Something the reader noticed that lost part of the record (a key repeated in a JSON
    /// object keeps only its last value); the record becomes a warning there.
    pub warning: Option<String>,
}

/// How a file's bytes are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    /// One JSON document; the records are an array at `ReadOptions::records` (or the
    /// top-level array), or the document is one record (`records: .`).
    Json,
    /// One JSON object per line.
    Ndjson,
}

/// Text encoding of a CSV file. UTF-8 (with or without BOM) is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    #[default]
    Utf8,
    Windows1252,
}

/// How to read one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// `None`: decided by the file extension (`.csv`, `.json`, `.ndjson`/`.jsonl`).
    pub format: Option<Format>,
    /// For JSON documents: the dotted path of the array holding the records
    /// (`tickets`, `data.items`); `None` for a top-level array; `.` when the whole
    /// document is one record.
    pub records: Option<String>,
    /// CSV field delimiter.
    pub delimiter: u8,
    pub encoding: Encoding,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            format: None,
            records: None,
            delimiter: b',',
            encoding: Encoding::Utf8,
        }
    }
}

/// A file that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot tell the format of {path} from its extension; name it .csv, .json, .ndjson or .jsonl, or set `format` in the mapping"
    )]
    UnknownFormat { path: PathBuf },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("side file index: {0}")]
    Index(#[from] rusqlite::Error),
    /// An input folder holds no file the mapping's pattern names; listing what is there
    /// usually shows the typo or the wrong folder at once.
    #[error("{}", no_match_message(folder, pattern, found))]
    NoMatch {
        folder: PathBuf,
        pattern: String,
        /// File names present in the folder, sorted.
        found: Vec<String>,
    },
}

fn no_match_message(folder: &Path, pattern: &str, found: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut msg = format!("no file in {} matches `{pattern}`", folder.display());
    if found.is_empty() {
        msg.push_str("; the folder holds no files");
    } else {
        msg.push_str("; the folder holds: ");
        msg.push_str(
            &found
                .iter()
                .take(SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        );
        if found.len() > SHOWN {
            msg.push_str(&format!(" and {} more", found.len() - SHOWN));
        }
    }
    msg
}

/// A record that could not be read; the stream goes on after it where it can.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{location}: {message}")]
pub struct RecordError {
    pub location: Location,
    pub message: String,
    /// The raw text of the record where it is available (CSV row), for rejects files.
    pub raw: Option<String>,
}

/// The records of one file, in order. Items are `Err` for unreadable records.
pub(crate) type RecordStream = Box<dyn Iterator<Item = Result<SourceRecord, RecordError>> + Send>;

/// Opens `path` and streams its records.
pub fn read(path: &Path, opts: &ReadOptions) -> Result<RecordStream, SourceError> {
    match format_of(path, opts)? {
        Format::Csv => csv::read(path, opts),
        Format::Json if opts.records.as_deref() == Some(json::WHOLE_DOCUMENT) => {
            json::read_single(path)
        }
        Format::Json => json::read_document(path, opts),
        Format::Ndjson => json::read_lines(path, opts),
    }
}

/// A file opened for the pipeline: its records, or an NDJSON file's lines, which the
/// pipeline parses with [`parse_line`] on its builder threads rather than on the thread
/// that reads.
pub(crate) enum Opened {
    Records(RecordStream),
    Lines(Lines),
}

pub(crate) fn open(path: &Path, opts: &ReadOptions) -> Result<Opened, SourceError> {
    Ok(match format_of(path, opts)? {
        Format::Ndjson => Opened::Lines(Lines::open(path, opts)?),
        _ => Opened::Records(read(path, opts)?),
    })
}

/// The format the mapping names, or else the one the file name implies.
pub(crate) fn format_of(path: &Path, opts: &ReadOptions) -> Result<Format, SourceError> {
    match opts.format {
        Some(f) => Ok(f),
        None => format_from_extension(path),
    }
}

/// The format implied by a file name.
pub(crate) fn format_from_extension(path: &Path) -> Result<Format, SourceError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("csv") | Some("tsv") | Some("txt") => Ok(Format::Csv),
        Some("json") => Ok(Format::Json),
        Some("ndjson") | Some("jsonl") => Ok(Format::Ndjson),
        _ => Err(SourceError::UnknownFormat {
            path: path.to_path_buf(),
        }),
    }
}

/// Looks up a dotted path (`via.source.from`, `custom_fields.0.value`) in a record.
pub(crate) fn get_path<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |v, part| match v {
        Value::Object(m) => m.get(part),
        Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// How a value is named in messages ("the record is a number, not an object").
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A key value as the string used to join records: `123` and `"123"` are the same key.
pub(crate) fn key_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    #[test]
    fn format_from_extension_and_unknown() {
        assert_eq!(
            format_from_extension(Path::new("a.CSV")).unwrap(),
            Format::Csv
        );
        assert_eq!(
            format_from_extension(Path::new("a.jsonl")).unwrap(),
            Format::Ndjson
        );
        let err = read(Path::new("export.xml"), &ReadOptions::default())
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("cannot tell the format of export.xml")
        );
    }

    #[test]
    fn paths_and_keys() {
        let v = serde_json::json!({"via": {"source": {"from": "x"}}, "f": [{"v": 1}], "id": 5});
        assert_eq!(get_path(&v, "via.source.from").unwrap(), "x");
        assert_eq!(get_path(&v, "f.0.v").unwrap(), 1);
        assert!(get_path(&v, "f.1.v").is_none());
        assert_eq!(key_string(get_path(&v, "id").unwrap()).unwrap(), "5");
        assert_eq!(key_string(&serde_json::json!("5")).unwrap(), "5");
        assert!(key_string(&serde_json::json!("")).is_none());
        assert!(key_string(&serde_json::Value::Null).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Whatever bytes a file holds, reading it reports errors and never panics.
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..400),
                "[{}\"a,:\\[\\]\n\r0-9x ]{0,200}".prop_map(String::into_bytes),
            ],
            records in proptest::option::of("[a-z]{1,3}(\\.[0-9a-z]{1,2})?"),
        ) {
            for (suffix, encoding) in [
                (".csv", Encoding::Utf8),
                (".csv", Encoding::Windows1252),
                (".json", Encoding::Utf8),
                (".ndjson", Encoding::Utf8),
            ] {
                let mut f = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
                f.write_all(&bytes).unwrap();
                f.flush().unwrap();
                let opts = ReadOptions { records: records.clone(), encoding, ..Default::default() };
                if let Ok(stream) = read(f.path(), &opts) {
                    for item in stream {
                        let _ = item.map_err(|e| e.to_string());
                    }
                }
            }
        }
    }
}
