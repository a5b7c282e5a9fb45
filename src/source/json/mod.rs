//! JSON document and NDJSON readers.
//!
//! Both formats hold one JSON object per record, so they share the read buffer, the BOM
//! that some exporters put first and the cut-off of raw text kept for a rejected record.
//! A whole document is read on a thread of its own ([`document`], walked by [`walk`]);
//! NDJSON one line at a time ([`lines`]), each object into a row ([`shaped`]), read into the
//! last row's allocations ([`in_place`]); serde_json's errors are worded for both in
//! [`syntax`].

mod checked;
mod document;
mod in_place;
mod lines;
mod recover;
mod shaped;
mod single;
mod syntax;
mod walk;

pub(crate) use document::read_document;
pub(crate) use lines::{Lines, parse_line, read_lines};
pub(crate) use shaped::Shape;
pub(crate) use single::{WHOLE_DOCUMENT, read_single};

const READ_BUFFER: usize = 64 * 1024;
/// Longest raw text kept for a rejected record (rejects files, error messages).
const RAW_LIMIT: usize = 64 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

fn truncate(mut s: String) -> String {
    if s.len() > RAW_LIMIT {
        let mut cut = RAW_LIMIT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod test_files {
    use crate::source::{ReadOptions, RecordError, SourceError, SourceRecord, read};
    use std::io::Write;

    pub(super) fn write(suffix: &str, bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        f
    }

    pub(super) fn opts(records: Option<&str>) -> ReadOptions {
        ReadOptions {
            records: records.map(str::to_string),
            ..Default::default()
        }
    }

    pub(super) fn doc(
        text: &str,
        records: Option<&str>,
    ) -> Result<Vec<Result<SourceRecord, RecordError>>, SourceError> {
        let f = write(".json", text.as_bytes());
        read(f.path(), &opts(records)).map(|s| s.collect())
    }
}
