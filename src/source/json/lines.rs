//! NDJSON: one JSON object per line.
//!
//! Each line is parsed on its own, so a bad line is reported with its line number and raw
//! text and the next line is read; blank lines are skipped.
//!
//! Cutting the lines ([`Lines`]) and parsing one ([`parse_line`]) are apart so that the
//! pipeline can cut on its reader thread and parse on its builder threads: parsing is most
//! of the cost of reading NDJSON, and one thread doing it all held back the others.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use super::shaped::{Shape, Shaped};
use super::syntax::describe_line_error;
use super::{BOM, READ_BUFFER, truncate};
use crate::source::{
    Location, ReadOptions, RecordError, RecordStream, SourceError, SourceRecord, json_kind,
};

pub(crate) fn read_lines(path: &Path, opts: &ReadOptions) -> Result<RecordStream, SourceError> {
    Ok(Box::new(LineRecords {
        lines: Lines::open(path, opts)?,
        buf: Vec::new(),
        shape: Shape::default(),
    }))
}

/// The non-blank lines of an NDJSON file, unparsed, each with where it is.
pub(crate) struct Lines {
    reader: BufReader<File>,
    file: Arc<Path>,
    line: u64,
    index: u64,
    done: bool,
}

impl Lines {
    pub(crate) fn open(path: &Path, _opts: &ReadOptions) -> Result<Lines, SourceError> {
        let file = File::open(path).map_err(|source| SourceError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Lines {
            reader: BufReader::with_capacity(READ_BUFFER, file),
            file: Arc::from(path),
            line: 0,
            index: 0,
            done: false,
        })
    }

    /// Appends the next non-blank line to `buf` (without a first line's BOM) and says where
    /// it is; `None` at the end of the file. A read error ends the file: it is the last
    /// item, as nothing after it can be trusted to be where it seems.
    pub(crate) fn next_into(&mut self, buf: &mut Vec<u8>) -> Option<Result<Location, RecordError>> {
        loop {
            if self.done {
                return None;
            }
            let start = buf.len();
            let read = read_line(&mut self.reader, buf);
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
                    buf.truncate(start);
                    self.done = true;
                    return Some(Err(RecordError {
                        location,
                        message: format!("cannot read further: {e}"),
                        raw: None,
                    }));
                }
            }
            if self.line == 1 && buf[start..].starts_with(BOM) {
                buf.drain(start..start + BOM.len());
            }
            if buf[start..].iter().all(u8::is_ascii_whitespace) {
                buf.truncate(start);
                continue;
            }
            self.index += 1;
            return Some(Ok(location));
        }
    }
}

/// `reader.read_until(b'\n', buf)`, with the memchr crate's search: the standard
/// library's, which `read_until` uses, was a few per cent of an NDJSON dry run.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut read = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let (used, found) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        buf.extend_from_slice(&available[..used]);
        reader.consume(used);
        read += used;
        if found || used == 0 {
            return Ok(read);
        }
    }
}

/// Parses one line that [`Lines`] cut. `shape` holds the keys of the last line parsed on
/// this thread, which an object's keys are compared with (see [`super::shaped`]).
pub(crate) fn parse_line(
    text: &[u8],
    location: Location,
    shape: &mut Shape,
) -> Result<SourceRecord, RecordError> {
    let raw = || {
        Some(truncate(
            String::from_utf8_lossy(text).trim_end().to_string(),
        ))
    };
    match super::shaped::from_slice(text, shape) {
        Ok((Shaped::Row(row), repeated)) => Ok(SourceRecord {
            location,
            value: crate::source::RecordValue::Row(row),
            warning: repeated.as_deref().map(super::checked::repeated_message),
        }),
        Ok((Shaped::Other(value), _)) => Err(RecordError {
            location,
            message: format!("the line is {}, not a JSON object", json_kind(&value)),
            raw: raw(),
        }),
        Err(e) => Err(RecordError {
            location,
            message: describe_line_error(&e),
            raw: raw(),
        }),
    }
}

/// The records of an NDJSON file, read and parsed on one thread.
struct LineRecords {
    lines: Lines,
    buf: Vec<u8>,
    shape: Shape,
}

impl Iterator for LineRecords {
    type Item = Result<SourceRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.buf.clear();
        Some(match self.lines.next_into(&mut self.buf)? {
            Ok(location) => parse_line(&self.buf, location, &mut self.shape),
            Err(e) => Err(e),
        })
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

    /// Lines cut across the reader's buffer read as `read_until` reads them.
    #[test]
    fn lines_read_as_read_until_reads_them() {
        use std::io::{BufRead, BufReader};
        for text in [
            &b""[..],
            b"\n",
            b"a",
            b"ab\ncd",
            b"abcdefg\n\n\r\nxyz\n",
            b"\n\nlast",
        ] {
            for capacity in [1, 2, 3, 64] {
                let mut ours = BufReader::with_capacity(capacity, text);
                let mut std = BufReader::with_capacity(capacity, text);
                loop {
                    let (mut a, mut b) = (b"kept".to_vec(), b"kept".to_vec());
                    let n = super::read_line(&mut ours, &mut a).unwrap();
                    assert_eq!(n, std.read_until(b'\n', &mut b).unwrap());
                    assert_eq!(a, b, "{text:?} with a buffer of {capacity}");
                    if n == 0 {
                        break;
                    }
                }
            }
        }
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
