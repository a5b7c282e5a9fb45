//! Reading on after a syntax error inside the records array.
//!
//! serde_json cannot continue once it has met a syntax error, and before this one bad
//! byte in a 10,000-record export dropped the 9,990 records after it. JSON's structure
//! lets us resynchronise: from the start of the damaged record, a byte scanner that only
//! follows strings and brackets finds where each record ends; each record's bytes are
//! then parsed on their own. A record that does not parse is reported with its byte span
//! and line, and reading goes on at the next one. Where the structure gives no next
//! record (the file ends inside one, or a record grows past [`MAX_RECORD_BYTES`]), the
//! error says how many bytes were not read. Memory stays bounded by the largest record.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};

use super::syntax::describe_span_error;
use super::truncate;
use crate::source::{Location, RecordError, SourceRecord, json_kind};

/// A record larger than this while resynchronising is taken as a sign that the scanner
/// lost the structure (an unbalanced quote); the rest of the file is then reported as not
/// read rather than held in memory.
pub(super) const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// Where recovery starts: a byte offset between records or at the start of one, with the
/// line and record index there.
#[derive(Debug, Clone, Default)]
pub(super) struct Resume {
    pub offset: u64,
    pub line: u64,
    pub index: u64,
}

/// Reads the records array of `file` on from `from`, handing each record (or damaged
/// span) to `push`; stops early when `push` returns false.
pub(super) fn read_on(
    path: &std::sync::Arc<std::path::Path>,
    from: Resume,
    push: &mut dyn FnMut(Result<SourceRecord, RecordError>) -> bool,
) {
    let location = |line: u64, index: u64| Location {
        file: path.clone(),
        line: Some(line),
        index,
    };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            push(Err(RecordError {
                location: location(from.line, from.index),
                message: format!(
                    "cannot reopen the file to read on after the damage ({e}); nothing after byte {} was read",
                    from.offset
                ),
                raw: None,
            }));
            return;
        }
    };
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    if file.seek(SeekFrom::Start(from.offset)).is_err() {
        push(Err(RecordError {
            location: location(from.line, from.index),
            message: format!(
                "cannot read on after the damage; {} bytes from byte {} were not read",
                total.saturating_sub(from.offset),
                from.offset
            ),
            raw: None,
        }));
        return;
    }
    let mut scan = Scanner {
        bytes: BufReader::with_capacity(super::READ_BUFFER, file)
            .bytes()
            .peekable(),
        offset: from.offset,
        line: from.line,
    };
    let mut index = from.index;
    loop {
        let Some(start) = scan.next_record() else {
            return;
        };
        let Start::Record {
            offset,
            line,
            first,
        } = start
        else {
            if let Start::Junk { offset, line, byte } = start {
                let span = scan.skip_junk(byte);
                let ok = push(Err(RecordError {
                    location: location(line, index),
                    message: format!(
                        "damaged JSON between records at bytes {offset}–{}: {:?} is not a record; skipped, reading resumed at the next record",
                        offset + span.len() as u64,
                        String::from_utf8_lossy(&span)
                    ),
                    raw: Some(truncate(String::from_utf8_lossy(&span).into_owned())),
                }));
                if !ok {
                    return;
                }
            }
            continue;
        };
        let (bytes, complete) = scan.record(first);
        let end = offset + bytes.len() as u64;
        let at = location(line, index);
        index += 1;
        let item = if !complete {
            let unread = total.saturating_sub(offset);
            let why = if bytes.len() >= MAX_RECORD_BYTES {
                format!(
                    "no end of the record was found within {} MB (the damage broke the structure)",
                    MAX_RECORD_BYTES / (1024 * 1024)
                )
            } else {
                "the file ends inside it".into()
            };
            push(Err(RecordError {
                location: at,
                message: format!(
                    "damaged JSON from byte {offset}: {why}; {unread} bytes from byte {offset} to the end were not read as records"
                ),
                raw: Some(truncate(String::from_utf8_lossy(&bytes).into_owned())),
            }));
            return;
        } else {
            match super::checked::from_slice(&bytes) {
                Ok((value, repeated)) if value.is_object() => Ok(SourceRecord {
                    location: at,
                    value: crate::source::RecordValue::Json(value),
                    warning: repeated.as_deref().map(super::checked::repeated_message),
                }),
                Ok((value, _)) => Err(RecordError {
                    location: at,
                    message: format!("the record is {}, not an object", json_kind(&value)),
                    raw: Some(truncate(value.to_string())),
                }),
                Err(e) => Err(RecordError {
                    location: at,
                    message: format!(
                        "damaged JSON in bytes {offset}–{end} ({}); the record is skipped and reading resumed after it",
                        describe_span_error(&e, line)
                    ),
                    raw: Some(truncate(String::from_utf8_lossy(&bytes).into_owned())),
                }),
            }
        };
        if !push(item) {
            return;
        }
    }
}

/// What comes next between records.
enum Start {
    Record { offset: u64, line: u64, first: u8 },
    Junk { offset: u64, line: u64, byte: u8 },
}

struct Scanner<R: Read> {
    bytes: std::iter::Peekable<std::io::Bytes<BufReader<R>>>,
    /// Offset of the next byte.
    offset: u64,
    /// Line of the next byte.
    line: u64,
}

impl<R: Read> Scanner<R> {
    fn next_byte(&mut self) -> Option<u8> {
        let b = self.bytes.next()?.ok()?;
        self.offset += 1;
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    /// Skips whitespace and commas to the next record; `None` at the array's end or the
    /// file's.
    fn next_record(&mut self) -> Option<Start> {
        loop {
            let (offset, line) = (self.offset, self.line);
            match self.next_byte()? {
                b' ' | b'\t' | b'\r' | b'\n' | b',' => continue,
                b']' => return None,
                first @ (b'{' | b'[' | b'"') => {
                    return Some(Start::Record {
                        offset,
                        line,
                        first,
                    });
                }
                byte => return Some(Start::Junk { offset, line, byte }),
            }
        }
    }

    fn peek_byte(&mut self) -> Option<u8> {
        match self.bytes.peek() {
            Some(Ok(b)) => Some(*b),
            _ => None,
        }
    }

    /// Junk between records: its bytes up to (not including) the next comma, `{`, `]` or
    /// line end, where looking for the next record goes on.
    fn skip_junk(&mut self, first: u8) -> Vec<u8> {
        let mut span = vec![first];
        while let Some(b) = self.peek_byte() {
            if matches!(b, b',' | b'{' | b']' | b'\n') || span.len() >= 256 {
                break;
            }
            span.push(b);
            self.next_byte();
        }
        span
    }

    /// One record's bytes from its first byte to where its brackets close (strings and
    /// escapes followed); `false` when the file ended first or the record grew too large.
    fn record(&mut self, first: u8) -> (Vec<u8>, bool) {
        let mut bytes = vec![first];
        let mut depth: u32 = u32::from(first != b'"');
        let mut in_string = first == b'"';
        let mut escaped = false;
        loop {
            if bytes.len() >= MAX_RECORD_BYTES {
                return (bytes, false);
            }
            let Some(b) = self.next_byte() else {
                return (bytes, false);
            };
            bytes.push(b);
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                    if depth == 0 {
                        return (bytes, true);
                    }
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return (bytes, true);
                    }
                }
                _ => {}
            }
        }
    }
}
