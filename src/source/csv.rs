//! CSV reader.
//!
//! Exports written by spreadsheet tools and helpdesks are messy: a UTF-8 BOM, Windows-1252
//! bytes, fields with quotes and newlines, rows with a cell too many, headers repeated once
//! per comment (Jira). Rows are read as bytes and decoded one at a time so that one bad row
//! is reported with its line and the rest of the file is still read.

use std::fs::File;
use std::io::{BufRead, BufReader};

use ::csv::ByteRecord;
use csv_core::ReadRecordResult;
use serde_json::Value;

use super::record::{Header, Row};
use super::*;

pub(super) fn read(path: &Path, opts: &ReadOptions) -> Result<RecordStream, SourceError> {
    let open_err = |source| SourceError::Open {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(open_err)?;
    let input: Box<dyn BufRead + Send> = match opts.encoding {
        Encoding::Utf8 => {
            let mut buf = BufReader::with_capacity(64 * 1024, file);
            // The parser would keep a BOM glued to the first header name.
            if buf
                .fill_buf()
                .map_err(open_err)?
                .starts_with(b"\xEF\xBB\xBF")
            {
                buf.consume(3);
            }
            Box::new(buf)
        }
        Encoding::Windows1252 => Box::new(BufReader::with_capacity(
            64 * 1024,
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::WINDOWS_1252))
                .build(file),
        )),
    };
    records(Arc::from(path), opts.delimiter, input)
}

/// Streams the rows of CSV text from any reader; `file` is only used for locations.
fn records(
    file: Arc<Path>,
    delimiter: u8,
    input: Box<dyn BufRead + Send>,
) -> Result<RecordStream, SourceError> {
    let mut rows = Rows::new(delimiter, input);
    let header_line = rows.next_row().map_err(|e| SourceError::Invalid {
        path: file.to_path_buf(),
        message: format!("cannot read the header row: {e}"),
    })?;
    let mut names = Vec::with_capacity(rows.len());
    if let Some(line) = header_line {
        for i in 0..rows.len() {
            let name = std::str::from_utf8(rows.field(i)).map_err(|e| SourceError::Invalid {
                path: file.to_path_buf(),
                message: format!(
                    "line {line}: header {} is not valid UTF-8 (byte {}); if the file comes from Excel on Windows, set `encoding: windows-1252`",
                    i + 1,
                    e.valid_up_to()
                ),
            })?;
            // Spreadsheet headers often carry stray spaces that the mapping should not need.
            names.push(name.trim().to_string());
        }
    }
    let columns = Columns::new(names);
    Ok(Box::new(CsvRecords {
        rows,
        file,
        columns,
        delimiter,
        index: 0,
        done: header_line.is_none(),
    }))
}

/// The header row, grouped so that a repeated name collects all its columns.
struct Columns {
    /// Number of cells in the header row.
    width: usize,
    /// In order of first appearance, the columns that carry each name of `header`.
    groups: Vec<Vec<usize>>,
    /// The distinct names, shared by every row of the file.
    header: Arc<Header>,
}

impl Columns {
    fn new(names: Vec<String>) -> Columns {
        let width = names.len();
        let mut distinct: Vec<String> = Vec::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut seen: std::collections::HashMap<String, usize> = Default::default();
        for (i, name) in names.into_iter().enumerate() {
            match seen.get(&name) {
                Some(&g) => groups[g].push(i),
                None => {
                    seen.insert(name.clone(), groups.len());
                    distinct.push(name);
                    groups.push(vec![i]);
                }
            }
        }
        Columns {
            width,
            groups,
            header: Arc::new(Header::new(distinct)),
        }
    }

    fn name_of(&self, column: usize) -> &str {
        self.groups
            .iter()
            .position(|cols| cols.contains(&column))
            .map_or("", |g| self.header.names()[g].as_str())
    }
}

/// The rows of CSV text as bytes, each with the line it starts on.
///
/// Drives `csv_core` directly (as the csv crate's reader does) so that the bytes each row
/// consumed are at hand: the parser counts every `\n` it consumes, and a row's first line
/// is that count minus the newlines inside its quoted fields and minus its terminator when
/// that was a `\n`. Blank lines before a row and the `\n` of a `\r\n` are consumed with the
/// next row, before its content, so they move its first line as they should.
struct Rows {
    core: csv_core::Reader,
    input: Box<dyn BufRead + Send>,
    /// The unescaped bytes of the current row's fields, back to back.
    fields: Vec<u8>,
    /// Where each field of the current row ends in `fields`.
    ends: Vec<usize>,
    /// Number of fields in the current row.
    len: usize,
}

impl Rows {
    fn new(delimiter: u8, input: Box<dyn BufRead + Send>) -> Rows {
        Rows {
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            input,
            fields: vec![0; 4096],
            ends: vec![0; 64],
            len: 0,
        }
    }

    /// Reads the next row; its first line, or `None` at the end of the input.
    fn next_row(&mut self) -> std::io::Result<Option<u64>> {
        let (mut outlen, mut endlen) = (0, 0);
        loop {
            let input = self.input.fill_buf()?;
            let (res, nin, nout, nend) =
                self.core
                    .read_record(input, &mut self.fields[outlen..], &mut self.ends[endlen..]);
            // A row ends on consuming its terminator's first byte, or at the end of the input
            // (an empty `input`, so `nin == 0`).
            let ended_on_newline = nin > 0 && input[nin - 1] == b'\n';
            self.input.consume(nin);
            outlen += nout;
            endlen += nend;
            match res {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let n = self.fields.len() * 2;
                    self.fields.resize(n, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                ReadRecordResult::Record => {
                    self.len = endlen;
                    let inner = self.fields[..outlen]
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count() as u64;
                    let line = self
                        .core
                        .line()
                        .saturating_sub(inner + u64::from(ended_on_newline));
                    return Ok(Some(line.max(1)));
                }
                ReadRecordResult::End => {
                    self.len = 0;
                    return Ok(None);
                }
            }
        }
    }

    /// Number of fields in the current row.
    fn len(&self) -> usize {
        self.len
    }

    /// The bytes of field `i` (`< len()`) of the current row.
    fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.fields[start..self.ends[i]]
    }

    /// All field bytes of the current row, back to back.
    fn bytes(&self) -> &[u8] {
        &self.fields[..self.ends[..self.len].last().copied().unwrap_or(0)]
    }
}

struct CsvRecords {
    rows: Rows,
    file: Arc<Path>,
    columns: Columns,
    delimiter: u8,
    index: u64,
    done: bool,
}

impl CsvRecords {
    fn location(&self, line: Option<u64>) -> Location {
        Location {
            file: self.file.clone(),
            line,
            index: self.index,
        }
    }

    /// The row as CSV text, so a rejected row can be written back out and fixed.
    fn raw(&self) -> String {
        let row: ByteRecord = (0..self.rows.len()).map(|i| self.rows.field(i)).collect();
        let mut w = ::csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .terminator(::csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        let bytes = match w.write_byte_record(&row) {
            Ok(()) => w.into_inner().unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let mut s = String::from_utf8_lossy(&bytes).into_owned();
        if s.ends_with('\n') {
            s.pop();
        }
        s
    }

    fn convert(&self) -> Result<Row, String> {
        let rows = &self.rows;
        if rows.len() != self.columns.width {
            return Err(format!(
                "row has {} fields but the header has {}",
                rows.len(),
                self.columns.width
            ));
        }
        // One check for the whole row; the cells of valid UTF-8 are then valid one by one
        // (a field boundary never splits a character: the delimiter and quotes are ASCII).
        let all = std::str::from_utf8(rows.bytes()).map_err(|_| self.utf8_error())?;
        let cell = |i: usize| {
            let start = if i == 0 { 0 } else { rows.ends[i - 1] };
            &all[start..rows.ends[i]]
        };
        let mut cells = Vec::with_capacity(self.columns.groups.len());
        for cols in &self.columns.groups {
            cells.push(match cols.as_slice() {
                [single] => Value::String(cell(*single).to_string()),
                many => Value::Array(
                    many.iter()
                        .map(|&c| cell(c))
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_string()))
                        .collect(),
                ),
            });
        }
        Ok(Row::new(self.columns.header.clone(), cells))
    }

    /// The message for the first cell of the current row that is not valid UTF-8.
    fn utf8_error(&self) -> String {
        for i in 0..self.rows.len() {
            if let Err(e) = std::str::from_utf8(self.rows.field(i)) {
                return format!(
                    "column {} (`{}`) is not valid UTF-8 at byte {}; if the file comes from Excel on Windows, set `encoding: windows-1252`",
                    i + 1,
                    self.columns.name_of(i),
                    e.valid_up_to()
                );
            }
        }
        "the row is not valid UTF-8".to_string()
    }
}

impl Iterator for CsvRecords {
    type Item = Result<SourceRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match self.rows.next_row() {
            Ok(None) => {
                self.done = true;
                return None;
            }
            Ok(Some(line)) => {
                let line = Some(line);
                match self.convert() {
                    Ok(row) => Ok(SourceRecord {
                        warning: None,
                        location: self.location(line),
                        value: RecordValue::Row(row),
                    }),
                    Err(message) => Err(RecordError {
                        location: self.location(line),
                        message,
                        raw: Some(self.raw()),
                    }),
                }
            }
            Err(e) => {
                // The parser accepts any bytes, so only I/O errors remain, and reading cannot
                // resume after those.
                self.done = true;
                Err(RecordError {
                    location: self.location(None),
                    message: format!("cannot read further: {e}"),
                    raw: None,
                })
            }
        };
        self.index += 1;
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        f
    }

    fn read_all(bytes: &[u8], opts: &ReadOptions) -> Vec<Result<SourceRecord, RecordError>> {
        let f = write(bytes);
        super::super::read(f.path(), opts).unwrap().collect()
    }

    fn ok_values(items: &[Result<SourceRecord, RecordError>]) -> Vec<Value> {
        items
            .iter()
            .map(|r| r.as_ref().unwrap().value.to_json())
            .collect()
    }

    #[test]
    fn rows_become_objects_of_strings_with_lines() {
        let items = read_all(b"id,subject\n1,Hello\n2,\n", &ReadOptions::default());
        assert_eq!(
            ok_values(&items),
            vec![
                serde_json::json!({"id": "1", "subject": "Hello"}),
                serde_json::json!({"id": "2", "subject": ""}),
            ]
        );
        let loc = &items[1].as_ref().unwrap().location;
        assert_eq!((loc.line, loc.index), (Some(3), 1));
        assert!(loc.to_string().ends_with(".csv:3"), "{loc}");
    }

    #[test]
    fn bom_is_stripped_from_the_first_header() {
        let items = read_all(b"\xEF\xBB\xBFid,name\n7,Ann\n", &ReadOptions::default());
        assert_eq!(
            ok_values(&items),
            vec![serde_json::json!({"id": "7", "name": "Ann"})]
        );
    }

    #[test]
    fn windows_1252_is_decoded() {
        let opts = ReadOptions {
            encoding: Encoding::Windows1252,
            ..Default::default()
        };
        let items = read_all(b"name,price\ncaf\xE9,\x80 5\n", &opts);
        assert_eq!(
            ok_values(&items),
            vec![serde_json::json!({"name": "café", "price": "€ 5"})]
        );
        assert_eq!(items[0].as_ref().unwrap().location.line, Some(2));
    }

    #[test]
    fn quoted_fields_keep_commas_quotes_and_newlines_and_lines_follow() {
        let text = b"id,body\n1,\"a, b \"\"quoted\"\"\nsecond line\r\nthird\"\n2,plain\n";
        let items = read_all(text, &ReadOptions::default());
        assert_eq!(
            ok_values(&items),
            vec![
                serde_json::json!({"id": "1", "body": "a, b \"quoted\"\nsecond line\r\nthird"}),
                serde_json::json!({"id": "2", "body": "plain"}),
            ]
        );
        assert_eq!(items[1].as_ref().unwrap().location.line, Some(5));
    }

    #[test]
    fn delimiter_option() {
        let opts = ReadOptions {
            delimiter: b';',
            ..Default::default()
        };
        let items = read_all(b"a;b\n1,5;x\n", &opts);
        assert_eq!(
            ok_values(&items),
            vec![serde_json::json!({"a": "1,5", "b": "x"})]
        );
    }

    #[test]
    fn repeated_headers_become_lists_without_empty_cells() {
        let text = b"Key,Comment,Labels,Comment,Labels,Comment\nHD-1,c1,l1,,l2,c3\nHD-2,,,,,\n";
        let items = read_all(text, &ReadOptions::default());
        assert_eq!(
            ok_values(&items),
            vec![
                serde_json::json!({"Key": "HD-1", "Comment": ["c1", "c3"], "Labels": ["l1", "l2"]}),
                serde_json::json!({"Key": "HD-2", "Comment": [], "Labels": []}),
            ]
        );
        // Column order of the object is the order of first appearance.
        let keys: Vec<_> = items[0]
            .as_ref()
            .unwrap()
            .value
            .to_json()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["Key", "Comment", "Labels"]);
    }

    #[test]
    fn wrong_field_count_is_reported_and_reading_goes_on() {
        let text = b"id,subject\n1,ok\n2,too,many\n3\n4,fine\n";
        let items = read_all(text, &ReadOptions::default());
        assert_eq!(items.len(), 4);
        let e = items[1].as_ref().unwrap_err();
        assert_eq!(e.location.line, Some(3));
        assert_eq!(e.message, "row has 3 fields but the header has 2");
        assert_eq!(e.raw.as_deref(), Some("2,too,many"));
        assert!(e.to_string().contains(".csv:3: row has 3 fields"), "{e}");
        let e = items[2].as_ref().unwrap_err();
        assert_eq!(e.location.line, Some(4));
        assert_eq!(e.message, "row has 1 fields but the header has 2");
        assert_eq!(
            items[3].as_ref().unwrap().value,
            serde_json::json!({"id": "4", "subject": "fine"})
        );
        assert_eq!(items[3].as_ref().unwrap().location.index, 3);
    }

    #[test]
    fn invalid_utf8_rejects_only_its_row() {
        let text = b"id,name\n1,caf\xE9\n2,ok\n";
        let items = read_all(text, &ReadOptions::default());
        let e = items[0].as_ref().unwrap_err();
        assert_eq!(e.location.line, Some(2));
        assert!(
            e.message
                .starts_with("column 2 (`name`) is not valid UTF-8 at byte 3"),
            "{}",
            e.message
        );
        assert_eq!(e.raw.as_deref(), Some("1,caf\u{FFFD}"));
        assert_eq!(
            items[1].as_ref().unwrap().value,
            serde_json::json!({"id": "2", "name": "ok"})
        );
    }

    #[test]
    fn invalid_utf8_in_the_header_is_fatal_with_a_hint() {
        let f = write(b"id,caf\xE9\n1,2\n");
        let err = super::super::read(f.path(), &ReadOptions::default())
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(msg.contains("header 2 is not valid UTF-8"), "{msg}");
        assert!(msg.contains("windows-1252"), "{msg}");
    }

    #[test]
    fn empty_file_has_no_records() {
        assert!(read_all(b"", &ReadOptions::default()).is_empty());
        assert!(read_all(b"id,name\n", &ReadOptions::default()).is_empty());
    }

    #[test]
    fn lines_skip_blank_lines_and_count_quoted_newlines() {
        let text = b"id,body\n\n1,\"x\ny\"\n\n\n2,z\n3,\"\"\n";
        let items = read_all(text, &ReadOptions::default());
        let lines: Vec<_> = items
            .iter()
            .map(|i| i.as_ref().unwrap().location.line)
            .collect();
        assert_eq!(lines, [Some(3), Some(7), Some(8)]);
    }

    #[test]
    fn crlf_line_endings() {
        let items = read_all(b"id,name\r\n1,a\r\n2,b\r\n", &ReadOptions::default());
        assert_eq!(ok_values(&items).len(), 2);
        assert_eq!(items[1].as_ref().unwrap().location.line, Some(3));
        assert_eq!(items[1].as_ref().unwrap().value["name"], "b");
    }

    #[test]
    fn lines_at_the_end_of_input_without_a_terminator() {
        let items = read_all(b"id,x\n1,\"a\nb\"\n\n2,c", &ReadOptions::default());
        let lines: Vec<_> = items
            .iter()
            .map(|i| i.as_ref().unwrap().location.line)
            .collect();
        assert_eq!(lines, [Some(2), Some(5)]);
        let items = read_all(b"id,x\r\n1,\"a\n\"", &ReadOptions::default());
        assert_eq!(items[0].as_ref().unwrap().location.line, Some(2));
        assert_eq!(items[0].as_ref().unwrap().value["x"], "a\n");
    }

    #[test]
    fn long_rows_with_many_fields() {
        let header: Vec<String> = (0..200).map(|i| format!("c{i}")).collect();
        let cells: Vec<String> = (0..200)
            .map(|i| format!("\"{}\n\"", "x".repeat(i * 10)))
            .collect();
        let text = format!(
            "{}\n{}\n{}\n",
            header.join(","),
            cells.join(","),
            cells.join(",")
        );
        let items = read_all(text.as_bytes(), &ReadOptions::default());
        assert_eq!(items.len(), 2);
        let first = items[0].as_ref().unwrap();
        assert_eq!(first.location.line, Some(2));
        assert_eq!(first.value["c199"].as_str().map(str::len), Some(1991));
        assert_eq!(items[1].as_ref().unwrap().location.line, Some(203));
    }
}
