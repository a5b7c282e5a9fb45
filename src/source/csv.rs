//! CSV reader.
//!
//! Exports written by spreadsheet tools and helpdesks are messy: a UTF-8 BOM, Windows-1252
//! bytes, fields with quotes and newlines, rows with a cell too many, headers repeated once
//! per comment (Jira). Rows are read as bytes and decoded one at a time so that one bad row
//! is reported with its line and the rest of the file is still read.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::Mutex;

use ::csv::{ByteRecord, Reader, ReaderBuilder};
use serde_json::{Map, Value};

use super::*;

pub(super) fn read(path: &Path, opts: &ReadOptions) -> Result<RecordStream, SourceError> {
    let open_err = |source| SourceError::Open {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(open_err)?;
    let input: Box<dyn Read + Send> = match opts.encoding {
        Encoding::Utf8 => {
            let mut buf = BufReader::with_capacity(64 * 1024, file);
            // The csv crate would keep a BOM glued to the first header name.
            if buf
                .fill_buf()
                .map_err(open_err)?
                .starts_with(b"\xEF\xBB\xBF")
            {
                buf.consume(3);
            }
            Box::new(buf)
        }
        Encoding::Windows1252 => Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::WINDOWS_1252))
                .build(file),
        ),
    };
    records(Arc::from(path), opts.delimiter, input)
}

/// Streams the rows of CSV text from any reader; `file` is only used for locations.
fn records(
    file: Arc<Path>,
    delimiter: u8,
    input: Box<dyn Read + Send>,
) -> Result<RecordStream, SourceError> {
    let breaks = Arc::new(Mutex::new(LineBreaks::default()));
    let counting: Box<dyn Read + Send> = Box::new(Counting {
        inner: input,
        breaks: breaks.clone(),
    });
    let mut reader = ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(64 * 1024)
        .from_reader(counting);
    let mut header = ByteRecord::new();
    let has_header = reader
        .read_byte_record(&mut header)
        .map_err(|e| SourceError::Invalid {
            path: file.to_path_buf(),
            message: format!("cannot read the header row: {e}"),
        })?;
    let mut names = Vec::with_capacity(header.len());
    for (i, cell) in header.iter().enumerate() {
        let name = std::str::from_utf8(cell).map_err(|e| SourceError::Invalid {
            path: file.to_path_buf(),
            message: format!(
                "line {}: header {} is not valid UTF-8 (byte {}); if the file comes from Excel on Windows, set `encoding: windows-1252`",
                start_line(&breaks, &reader, &header),
                i + 1,
                e.valid_up_to()
            ),
        })?;
        // Spreadsheet headers often carry stray spaces that the mapping should not need.
        names.push(name.trim().to_string());
    }
    let columns = Columns::new(names);
    Ok(Box::new(CsvRecords {
        reader,
        breaks,
        file,
        columns,
        row: ByteRecord::new(),
        delimiter,
        index: 0,
        done: !has_header,
    }))
}

/// The header row, grouped so that a repeated name collects all its columns.
struct Columns {
    /// Number of cells in the header row.
    width: usize,
    /// In order of first appearance: the name and the columns that carry it.
    groups: Vec<(String, Vec<usize>)>,
}

impl Columns {
    fn new(names: Vec<String>) -> Columns {
        let width = names.len();
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        let mut seen: std::collections::HashMap<String, usize> = Default::default();
        for (i, name) in names.into_iter().enumerate() {
            match seen.get(&name) {
                Some(&g) => groups[g].1.push(i),
                None => {
                    seen.insert(name.clone(), groups.len());
                    groups.push((name, vec![i]));
                }
            }
        }
        Columns { width, groups }
    }

    fn name_of(&self, column: usize) -> &str {
        self.groups
            .iter()
            .find(|(_, cols)| cols.contains(&column))
            .map_or("", |(name, _)| name.as_str())
    }
}

/// Where line breaks are in the text the CSV parser has consumed.
///
/// The csv crate's record position is where the previous record's terminator ended, so it
/// points at blank lines and at the `\n` of a `\r\n`; reporting that line would send the
/// user to the wrong row. Recording the breaks as they stream past lets the real first
/// line of each record be computed, while keeping only the breaks not yet behind us.
#[derive(Default)]
struct LineBreaks {
    /// Offsets and bytes (`\n` or `\r`) of the breaks after the last record's content.
    pending: VecDeque<(u64, u8)>,
    /// `\n` bytes before `pending`.
    newlines_before: u64,
    /// Bytes seen so far.
    offset: u64,
}

impl LineBreaks {
    /// The first line of a record that ends (terminator included) at `end` and holds
    /// `inner_newlines` newlines inside quoted fields.
    fn start_line(&mut self, end: u64, inner_newlines: u64) -> u64 {
        let at = |p: &VecDeque<(u64, u8)>, off: u64| p.binary_search_by_key(&off, |e| e.0).is_ok();
        // The parser stops after the first byte of a terminator (`\n`, or `\r` of `\r\n`).
        let content_end = if end > 0 && at(&self.pending, end - 1) {
            end - 1
        } else {
            end
        };
        while let Some(&(off, byte)) = self.pending.front() {
            if off >= content_end {
                break;
            }
            if byte == b'\n' {
                self.newlines_before += 1;
            }
            self.pending.pop_front();
        }
        (1 + self.newlines_before)
            .saturating_sub(inner_newlines)
            .max(1)
    }
}

struct Counting {
    inner: Box<dyn Read + Send>,
    breaks: Arc<Mutex<LineBreaks>>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut breaks = self.breaks.lock().unwrap_or_else(|e| e.into_inner());
        let base = breaks.offset;
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' || b == b'\r' {
                breaks.pending.push_back((base + i as u64, b));
            }
        }
        breaks.offset += n as u64;
        Ok(n)
    }
}

fn start_line(
    breaks: &Mutex<LineBreaks>,
    reader: &Reader<Box<dyn Read + Send>>,
    record: &ByteRecord,
) -> u64 {
    let inner = record
        .iter()
        .map(|f| f.iter().filter(|&&b| b == b'\n').count() as u64)
        .sum();
    breaks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .start_line(reader.position().byte(), inner)
}

struct CsvRecords {
    reader: Reader<Box<dyn Read + Send>>,
    breaks: Arc<Mutex<LineBreaks>>,
    file: Arc<Path>,
    columns: Columns,
    row: ByteRecord,
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
        let mut w = ::csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .terminator(::csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        let bytes = match w.write_byte_record(&self.row) {
            Ok(()) => w.into_inner().unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let mut s = String::from_utf8_lossy(&bytes).into_owned();
        if s.ends_with('\n') {
            s.pop();
        }
        s
    }

    fn convert(&self) -> Result<Value, String> {
        if self.row.len() != self.columns.width {
            return Err(format!(
                "row has {} fields but the header has {}",
                self.row.len(),
                self.columns.width
            ));
        }
        let mut cells = Vec::with_capacity(self.row.len());
        for (i, cell) in self.row.iter().enumerate() {
            match std::str::from_utf8(cell) {
                Ok(s) => cells.push(s),
                Err(e) => {
                    return Err(format!(
                        "column {} (`{}`) is not valid UTF-8 at byte {}; if the file comes from Excel on Windows, set `encoding: windows-1252`",
                        i + 1,
                        self.columns.name_of(i),
                        e.valid_up_to()
                    ));
                }
            }
        }
        let mut object = Map::with_capacity(self.columns.groups.len());
        for (name, cols) in &self.columns.groups {
            let value = match cols.as_slice() {
                [single] => Value::String(cells[*single].to_string()),
                many => Value::Array(
                    many.iter()
                        .map(|&c| cells[c])
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_string()))
                        .collect(),
                ),
            };
            object.insert(name.clone(), value);
        }
        Ok(Value::Object(object))
    }
}

impl Iterator for CsvRecords {
    type Item = Result<SourceRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut row = std::mem::take(&mut self.row);
        let read = self.reader.read_byte_record(&mut row);
        self.row = row;
        let item = match read {
            Ok(false) => {
                self.done = true;
                return None;
            }
            Ok(true) => {
                let line = Some(start_line(&self.breaks, &self.reader, &self.row));
                match self.convert() {
                    Ok(value) => Ok(SourceRecord {
                        warning: None,
                        location: self.location(line),
                        value,
                    }),
                    Err(message) => Err(RecordError {
                        location: self.location(line),
                        message,
                        raw: Some(self.raw()),
                    }),
                }
            }
            Err(e) => {
                // With `flexible` and byte records only I/O errors remain, and the reader
                // cannot resume after those.
                self.done = true;
                let line = e.position().map(|p| p.line());
                Err(RecordError {
                    location: self.location(line),
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
            .map(|r| r.as_ref().unwrap().value.clone())
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
}
