//! NDJSON: one JSON object per line.
//!
//! Each line is parsed on its own, so a bad line is reported with its line number and raw
//! text and the next line is read; blank lines are skipped.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use super::syntax::describe_line_error;
use super::{BOM, READ_BUFFER, truncate};
use crate::source::{
    Location, ReadOptions, RecordError, RecordStream, SourceError, SourceRecord, json_kind,
};

pub(crate) fn read_lines(path: &Path, _opts: &ReadOptions) -> Result<RecordStream, SourceError> {
    let file = File::open(path).map_err(|source| SourceError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Box::new(LineRecords {
        reader: BufReader::with_capacity(READ_BUFFER, file),
        file: Arc::from(path),
        buf: Vec::new(),
        line: 0,
        index: 0,
        done: false,
        keys: 0,
    }))
}

struct LineRecords {
    reader: BufReader<File>,
    file: Arc<Path>,
    buf: Vec<u8>,
    line: u64,
    index: u64,
    done: bool,
    /// Keys of the last record, room made for in the next (see `Checked::capacity`).
    keys: usize,
}

impl Iterator for LineRecords {
    type Item = Result<SourceRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            self.buf.clear();
            let read = self.reader.read_until(b'\n', &mut self.buf);
            self.line += 1;
            let location = Location {
                file: self.file.clone(),
                line: Some(self.line),
                index: self.index,
            };
            match read {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(RecordError {
                        location,
                        message: format!("cannot read further: {e}"),
                        raw: None,
                    }));
                }
            }
            let mut text = self.buf.as_slice();
            if self.line == 1 && text.starts_with(BOM) {
                text = &text[BOM.len()..];
            }
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.index += 1;
            let raw = || {
                Some(truncate(
                    String::from_utf8_lossy(text).trim_end().to_string(),
                ))
            };
            let parsed = super::checked::from_slice(text, self.keys);
            if let Ok((serde_json::Value::Object(m), _)) = &parsed {
                self.keys = m.len();
            }
            return Some(match parsed {
                Ok((value, repeated)) if value.is_object() => Ok(SourceRecord {
                    location,
                    value: crate::source::RecordValue::Json(value),
                    warning: repeated.as_deref().map(super::checked::repeated_message),
                }),
                Ok((value, _)) => Err(RecordError {
                    location,
                    message: format!("the line is {}, not a JSON object", json_kind(&value)),
                    raw: raw(),
                }),
                Err(e) => Err(RecordError {
                    location,
                    message: describe_line_error(&e),
                    raw: raw(),
                }),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_files::{opts, write};
    use crate::source::read;
    use serde_json::json;

    #[test]
    fn ndjson_lines_blank_lines_and_bad_lines() {
        let text = b"{\"id\":1}\n\n  \r\n{\"id\":2, oops}\n[1]\r\n{\"id\":3}";
        let f = write(".ndjson", text);
        let items: Vec<_> = read(f.path(), &opts(None)).unwrap().collect();
        assert_eq!(items.len(), 4);
        let e = items[1].as_ref().unwrap_err();
        assert_eq!((e.location.line, e.location.index), (Some(4), 1));
        assert_eq!(e.message, "invalid JSON at column 10: key must be a string");
        assert_eq!(e.raw.as_deref(), Some("{\"id\":2, oops}"));
        assert!(
            e.to_string()
                .ends_with(".ndjson:4: invalid JSON at column 10: key must be a string"),
            "{e}"
        );
        assert_eq!(
            items[2].as_ref().unwrap_err().message,
            "the line is a list, not a JSON object"
        );
        let last = items[3].as_ref().unwrap();
        assert_eq!((last.location.line, last.location.index), (Some(6), 3));
        assert_eq!(last.value, json!({"id": 3}));
    }

    #[test]
    fn ndjson_invalid_utf8_and_bom() {
        let f = write(
            ".jsonl",
            b"\xEF\xBB\xBF{\"a\":\"x\"}\n{\"a\":\"caf\xE9\"}\n{\"a\":\"y\"}\n",
        );
        let items: Vec<_> = read(f.path(), &opts(None)).unwrap().collect();
        assert_eq!(items[0].as_ref().unwrap().value, json!({"a": "x"}));
        assert!(
            items[1]
                .as_ref()
                .unwrap_err()
                .message
                .contains("invalid unicode"),
            "{:?}",
            items[1]
        );
        assert!(items[2].is_ok());
    }
}
