//! A JSON document that is one record (`records: .`): Help Scout, Intercom and ServiceNow
//! export one object per file, a Freshdesk ticket fetched one by one is one document.
//!
//! The document is read whole (it is one record, and records are held whole anyway), then
//! handed out as a stream of one record located at the file and the line where the object
//! starts. Whatever is wrong with it (not JSON, not an object) is that record's error, so
//! one broken file of a folder of single-record files costs that record only.

use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeSeed;

use super::checked::{Checked, repeated_message};
use super::syntax::describe_syntax_error;
use super::{BOM, truncate};
use crate::source::{Location, RecordError, RecordStream, SourceError, SourceRecord, json_kind};

/// The `records:` value that makes the whole document one record.
pub(crate) const WHOLE_DOCUMENT: &str = ".";

pub(crate) fn read_single(path: &Path) -> Result<RecordStream, SourceError> {
    let bytes = std::fs::read(path).map_err(|source| SourceError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let item = parse(Arc::from(path), &bytes);
    Ok(Box::new(std::iter::once(item)))
}

fn parse(file: Arc<Path>, bytes: &[u8]) -> Result<SourceRecord, RecordError> {
    let text = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let line = 1 + text
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .filter(|&&b| b == b'\n')
        .count() as u64;
    let location = Location {
        file,
        line: Some(line),
        index: 0,
    };
    let fail = |message: String, raw: Option<String>| RecordError {
        location: location.clone(),
        message,
        raw,
    };
    let mut repeated = None;
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = Checked {
        repeated: &mut repeated,
        capacity: 0,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v))
    .map_err(|e| {
        let raw = truncate(String::from_utf8_lossy(text).into_owned());
        fail(
            format!(
                "{}; the file is one record (`records: .`), so it is skipped",
                describe_syntax_error(&e)
            ),
            Some(raw),
        )
    })?;
    if !value.is_object() {
        let hint = if value.is_array() {
            "; to read its items as records, omit `records:`"
        } else {
            ""
        };
        return Err(fail(
            format!(
                "the document is {}, not one record (an object), as `records: .` says{hint}",
                json_kind(&value)
            ),
            Some(truncate(value.to_string())),
        ));
    }
    Ok(SourceRecord {
        location,
        value: crate::source::RecordValue::Json(value),
        warning: repeated.as_deref().map(repeated_message),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_files::{opts, write};
    use crate::source::read;

    fn one(text: &str) -> Result<crate::source::SourceRecord, crate::source::RecordError> {
        let f = write(".json", text.as_bytes());
        let mut items: Vec<_> = read(f.path(), &opts(Some("."))).unwrap().collect();
        assert_eq!(items.len(), 1);
        items.pop().unwrap()
    }

    #[test]
    fn a_bare_object_is_one_record_located_where_it_starts() {
        let r = one("\u{feff}\n\n{\"item\": {\"id\": 7, \"subject\": \"Hi\"}}\n").unwrap();
        assert_eq!(r.value["item"]["id"], 7);
        assert_eq!(r.location.line, Some(3));
        assert_eq!(r.location.index, 0);
        assert!(r.warning.is_none());
        let r = one("{\"id\": 1, \"id\": 2}").unwrap();
        assert!(r.warning.unwrap().contains("id"));
    }

    #[test]
    fn what_is_not_one_object_is_the_records_error() {
        let e = one("[{\"id\": 1}]").unwrap_err();
        assert!(
            e.message
                .starts_with("the document is a list, not one record (an object), as `records: .` says; to read its items as records, omit `records:`"),
            "{}",
            e.message
        );
        assert_eq!(e.location.line, Some(1));
        let e = one("{\"id\": 1,\n\"subject\": }").unwrap_err();
        assert!(
            e.message.starts_with("invalid JSON at line 2 column "),
            "{}",
            e.message
        );
        assert!(e.message.ends_with("so it is skipped"), "{}", e.message);
        let e = one("").unwrap_err();
        assert!(e.message.contains("cut off"), "{}", e.message);
        let e = one("{} {}").unwrap_err();
        assert!(e.message.starts_with("invalid JSON"), "{}", e.message);
    }
}
