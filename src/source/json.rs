//! JSON document and NDJSON readers.
//!
//! API exports put the records in an array inside one document (`{"tickets": [...],
//! "next_page": ...}`) that can be gigabytes long, so the document is never parsed whole:
//! a reader thread walks it with serde_json, skips everything off the records path and
//! hands the records over one at a time through a small bounded channel. Memory is bounded
//! by the largest record, not by the file. A document that breaks off (a truncated
//! download) still yields every record before the break, then one error saying where.

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::*;

/// Records in flight between the reader thread and the consumer. Small, so that memory
/// stays bounded by a few records even when the consumer is slow.
const CHANNEL_BOUND: usize = 4;
/// Records are handed over in batches, which costs far less thread hand-off than one
/// message per record; a batch closes at this many records or bytes of JSON.
const BATCH_RECORDS: usize = 64;
const BATCH_BYTES: u64 = 256 * 1024;
const READ_BUFFER: usize = 64 * 1024;
/// Longest raw text kept for a rejected record (rejects files, error messages).
const RAW_LIMIT: usize = 64 * 1024;

pub(super) fn read_document(path: &Path, opts: &ReadOptions) -> Result<RecordStream, SourceError> {
    read_document_counted(path, opts, Arc::new(AtomicU64::new(0)))
}

/// As [`read_document`], adding every byte read from the file to `bytes_read`, which lets
/// tests check that reading really is incremental.
fn read_document_counted(
    path: &Path,
    opts: &ReadOptions,
    bytes_read: Arc<AtomicU64>,
) -> Result<RecordStream, SourceError> {
    let file = File::open(path).map_err(|source| SourceError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let records_path: Vec<String> = opts
        .records
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(|p| p.split('.').map(str::to_string).collect())
        .unwrap_or_default();
    let location_file: Arc<Path> = Arc::from(path);
    let (tx, rx) = sync_channel(CHANNEL_BOUND);
    let thread_file = location_file.clone();
    std::thread::Builder::new()
        .name("json-reader".into())
        .spawn(move || scan_document(file, bytes_read, records_path, thread_file, tx))
        .map_err(|e| SourceError::Invalid {
            path: path.to_path_buf(),
            message: format!("cannot start the reader thread: {e}"),
        })?;
    // The first message says whether the records array was found, so a wrong `records:`
    // path fails before any processing starts.
    match rx.recv() {
        Ok(Msg::Started) => Ok(Box::new(DocumentRecords {
            rx,
            batch: Vec::new().into_iter(),
            file: location_file,
            yielded: 0,
            finished: false,
        })),
        Ok(Msg::Fatal(e)) => Err(e),
        Ok(Msg::Items(_)) | Ok(Msg::Done) | Err(_) => Err(SourceError::Invalid {
            path: path.to_path_buf(),
            message: "the JSON reader stopped unexpectedly".into(),
        }),
    }
}

enum Msg {
    /// The records array was reached; items follow.
    Started,
    /// The file cannot be read as asked (bad records path, not JSON before the array).
    Fatal(SourceError),
    Items(Vec<Result<SourceRecord, RecordError>>),
    /// The document was read to its end.
    Done,
}

struct DocumentRecords {
    rx: Receiver<Msg>,
    batch: std::vec::IntoIter<Result<SourceRecord, RecordError>>,
    file: Arc<Path>,
    yielded: u64,
    finished: bool,
}

impl Iterator for DocumentRecords {
    type Item = Result<SourceRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.batch.next() {
                self.yielded += 1;
                return Some(item);
            }
            if self.finished {
                return None;
            }
            match self.rx.recv() {
                Ok(Msg::Items(items)) => self.batch = items.into_iter(),
                Ok(Msg::Done) => self.finished = true,
                Ok(Msg::Started) | Ok(Msg::Fatal(_)) | Err(_) => {
                    self.finished = true;
                    return Some(Err(RecordError {
                        location: Location {
                            file: self.file.clone(),
                            line: None,
                            index: self.yielded,
                        },
                        message: "the JSON reader stopped unexpectedly; the records after this point were not read".into(),
                        raw: None,
                    }));
                }
            }
        }
    }
}

/// A buffered reader that counts the newlines it has handed out. serde_json pulls bytes
/// one at a time and peeks only one ahead, so when a record starts the count is exactly
/// the number of lines before it.
struct LineCounter {
    inner: File,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    first: bool,
    newlines: Rc<Cell<u64>>,
    /// Bytes handed out to the parser.
    consumed: Rc<Cell<u64>>,
    bytes_read: Arc<AtomicU64>,
}

impl Read for LineCounter {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.len {
            self.len = loop {
                match self.inner.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            self.pos = 0;
            self.bytes_read
                .fetch_add(self.len as u64, Ordering::Relaxed);
            if std::mem::take(&mut self.first) && self.buf[..self.len].starts_with(BOM) {
                self.pos = BOM.len();
            }
            if self.pos == self.len {
                return Ok(0);
            }
        }
        // serde_json asks for one byte at a time; keep that path short.
        if let [slot] = out {
            let byte = self.buf[self.pos];
            *slot = byte;
            self.pos += 1;
            self.consumed.set(self.consumed.get() + 1);
            if byte == b'\n' {
                self.newlines.set(self.newlines.get() + 1);
            }
            return Ok(1);
        }
        let n = out.len().min(self.len - self.pos);
        let chunk = &self.buf[self.pos..self.pos + n];
        out[..n].copy_from_slice(chunk);
        let lf = chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        if lf > 0 {
            self.newlines.set(self.newlines.get() + lf);
        }
        self.pos += n;
        self.consumed.set(self.consumed.get() + n as u64);
        Ok(n)
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why the walk was stopped on purpose (as opposed to a JSON syntax error).
enum Stop {
    /// The consumer dropped the stream.
    Disconnected,
    /// The records path does not lead to an array; the message says what is there.
    Path(String),
}

/// State shared by the seeds of one document walk (all on the reader thread).
struct Walk {
    tx: SyncSender<Msg>,
    file: Arc<Path>,
    path: Vec<String>,
    newlines: Rc<Cell<u64>>,
    consumed: Rc<Cell<u64>>,
    batch: Vec<Result<SourceRecord, RecordError>>,
    /// `consumed` when the current batch began.
    batch_start: u64,
    index: u64,
    started: bool,
    stop: Option<Stop>,
}

impl Walk {
    fn send(&mut self, msg: Msg) -> bool {
        if self.tx.send(msg).is_err() {
            self.stop = Some(Stop::Disconnected);
            return false;
        }
        true
    }

    /// Adds a record to the batch, sending the batch when it is full.
    fn push(&mut self, item: Result<SourceRecord, RecordError>) -> bool {
        if self.batch.is_empty() {
            self.batch_start = self.consumed.get();
        }
        self.batch.push(item);
        if self.batch.len() >= BATCH_RECORDS
            || self.consumed.get() - self.batch_start >= BATCH_BYTES
        {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let batch = std::mem::take(&mut self.batch);
        self.send(Msg::Items(batch))
    }

    fn stop<E: de::Error>(&mut self, why: Stop) -> E {
        self.stop = Some(why);
        E::custom("stopped")
    }

    /// How the path up to `depth` is named in messages.
    fn named(&self, depth: usize) -> String {
        if depth == 0 {
            "the document".into()
        } else {
            format!("`{}`", self.path[..depth].join("."))
        }
    }
}

fn scan_document(
    file: File,
    bytes_read: Arc<AtomicU64>,
    path: Vec<String>,
    location_file: Arc<Path>,
    tx: SyncSender<Msg>,
) {
    let newlines = Rc::new(Cell::new(0));
    let consumed = Rc::new(Cell::new(0));
    let reader = LineCounter {
        consumed: consumed.clone(),
        inner: file,
        buf: vec![0; READ_BUFFER].into_boxed_slice(),
        pos: 0,
        len: 0,
        first: true,
        newlines: newlines.clone(),
        bytes_read,
    };
    let mut walk = Walk {
        tx,
        file: location_file,
        path,
        newlines,
        consumed,
        batch: Vec::new(),
        batch_start: 0,
        index: 0,
        started: false,
        stop: None,
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let result = Navigate {
        walk: &mut walk,
        depth: 0,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    let msg = match result {
        Ok(()) => Msg::Done,
        Err(e) => match walk.stop.take() {
            Some(Stop::Disconnected) => return,
            Some(Stop::Path(message)) => Msg::Fatal(SourceError::Invalid {
                path: walk.file.to_path_buf(),
                message,
            }),
            None if !walk.started => Msg::Fatal(SourceError::Invalid {
                path: walk.file.to_path_buf(),
                message: format!(
                    "{} before the records were reached",
                    describe_syntax_error(&e)
                ),
            }),
            None => Msg::Items(vec![Err(RecordError {
                location: Location {
                    file: walk.file.clone(),
                    line: Some(e.line() as u64),
                    index: walk.index,
                },
                message: format!(
                    "{}; the records before this point were read, the rest of the file is skipped",
                    describe_syntax_error(&e)
                ),
                raw: None,
            })]),
        },
    };
    if !walk.flush() {
        return;
    }
    // After a reported break the stream still needs its end marker.
    let then_done = walk.started && matches!(msg, Msg::Items(_));
    if walk.send(msg) && then_done {
        walk.send(Msg::Done);
    }
}

/// serde_json's message without its trailing position, which is reported separately.
fn describe_syntax_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let bare = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(m, _)| m);
    match e.classify() {
        serde_json::error::Category::Eof => format!(
            "the JSON document is cut off at line {} column {} ({bare})",
            e.line(),
            e.column()
        ),
        serde_json::error::Category::Io => format!("cannot read further: {bare}"),
        _ => format!(
            "invalid JSON at line {} column {}: {bare}",
            e.line(),
            e.column()
        ),
    }
}

/// Walks toward the records array, skipping everything else.
struct Navigate<'w> {
    walk: &'w mut Walk,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Navigate<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Navigate<'_> {
    fn at_target(&self) -> bool {
        self.depth == self.walk.path.len()
    }

    fn not_here<E: de::Error>(self, found: &str) -> E {
        let message = if self.at_target() {
            format!(
                "{} is {found}, not a list of records; {}",
                self.walk.named(self.depth),
                records_hint(self.depth)
            )
        } else {
            format!(
                "records path `{}` not found: {} is {found}",
                self.walk.path.join("."),
                self.walk.named(self.depth)
            )
        };
        self.walk.stop(Stop::Path(message))
    }
}

fn records_hint(depth: usize) -> &'static str {
    if depth == 0 {
        "set `records:` to the key that holds them"
    } else {
        "set `records:` to the path of the list that holds them"
    }
}

impl<'de> Visitor<'de> for Navigate<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object or array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.at_target() {
            if !self.walk.send(Msg::Started) {
                return Err(de::Error::custom("stopped"));
            }
            self.walk.started = true;
            while seq.next_element_seed(Record { walk: self.walk })?.is_some() {}
            return Ok(());
        }
        let Ok(wanted) = self.walk.path[self.depth].parse::<usize>() else {
            return Err(self.not_here("a list"));
        };
        let mut i = 0;
        while i < wanted {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(self.not_here(&format!("a list of only {i} items")));
            }
            i += 1;
        }
        let next = Navigate {
            walk: &mut *self.walk,
            depth: self.depth + 1,
        };
        if seq.next_element_seed(next)?.is_none() {
            return Err(self.not_here(&format!("a list of only {i} items")));
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let wanted = self.walk.path.get(self.depth).cloned();
        let mut keys: Vec<String> = Vec::new();
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if !found && wanted.as_deref() == Some(key.as_str()) {
                found = true;
                map.next_value_seed(Navigate {
                    walk: &mut *self.walk,
                    depth: self.depth + 1,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
                if !found && keys.len() < 50 {
                    keys.push(key);
                }
            }
        }
        if found {
            return Ok(());
        }
        let listed = if keys.is_empty() {
            "it has no keys".to_string()
        } else {
            format!("its keys are: {}", keys.join(", "))
        };
        let message = match wanted {
            None => format!(
                "{} is an object, not a list of records; {}; {listed}",
                self.walk.named(self.depth),
                records_hint(self.depth)
            ),
            Some(w) => format!(
                "records path `{}` not found: {} has no key `{w}`; {listed}",
                self.walk.path.join("."),
                self.walk.named(self.depth)
            ),
        };
        Err(self.walk.stop(Stop::Path(message)))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.not_here("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.not_here("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.not_here("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.not_here("a number"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.not_here("a string"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.not_here("null"))
    }
}

/// One element of the records array.
struct Record<'w> {
    walk: &'w mut Walk,
}

impl<'de> DeserializeSeed<'de> for Record<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let walk = self.walk;
        let location = Location {
            file: walk.file.clone(),
            line: Some(walk.newlines.get() + 1),
            index: walk.index,
        };
        let value = <Value as serde::Deserialize>::deserialize(d)?;
        walk.index += 1;
        let item = if value.is_object() {
            Ok(SourceRecord { location, value })
        } else {
            Err(RecordError {
                location,
                message: format!("the record is {}, not an object", json_kind(&value)),
                raw: Some(truncate(value.to_string())),
            })
        };
        if walk.push(item) {
            Ok(())
        } else {
            Err(de::Error::custom("stopped"))
        }
    }
}

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

pub(super) fn read_lines(path: &Path, _opts: &ReadOptions) -> Result<RecordStream, SourceError> {
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
    }))
}

struct LineRecords {
    reader: BufReader<File>,
    file: Arc<Path>,
    buf: Vec<u8>,
    line: u64,
    index: u64,
    done: bool,
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
            return Some(match serde_json::from_slice::<Value>(text) {
                Ok(value) if value.is_object() => Ok(SourceRecord { location, value }),
                Ok(value) => Err(RecordError {
                    location,
                    message: format!("the line is {}, not a JSON object", json_kind(&value)),
                    raw: raw(),
                }),
                Err(e) => Err(RecordError {
                    location,
                    message: {
                        let full = e.to_string();
                        let bare = full
                            .rsplit_once(" at line ")
                            .map_or(full.as_str(), |(m, _)| m);
                        format!("invalid JSON at column {}: {bare}", e.column())
                    },
                    raw: raw(),
                }),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::real_fixture;
    use serde_json::json;
    use std::io::Write;

    fn write(suffix: &str, bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        f
    }

    fn opts(records: Option<&str>) -> ReadOptions {
        ReadOptions {
            records: records.map(str::to_string),
            ..Default::default()
        }
    }

    fn doc(
        text: &str,
        records: Option<&str>,
    ) -> Result<Vec<Result<SourceRecord, RecordError>>, SourceError> {
        let f = write(".json", text.as_bytes());
        super::super::read(f.path(), &opts(records)).map(|s| s.collect())
    }

    #[test]
    fn records_at_a_key_with_lines_and_indexes() {
        let text = "{\"count\": 2,\n \"tickets\": [\n  {\"id\": 1},\n  {\"id\": 2,\n   \"s\": \"x\"}\n ],\n \"next\": null}\n";
        let items = doc(text, Some("tickets")).unwrap();
        assert_eq!(items.len(), 2);
        let r = items[1].as_ref().unwrap();
        assert_eq!(r.value, json!({"id": 2, "s": "x"}));
        assert_eq!((r.location.line, r.location.index), (Some(4), 1));
        assert_eq!(items[0].as_ref().unwrap().location.line, Some(3));
    }

    #[test]
    fn top_level_array_and_nested_path() {
        let items = doc("[{\"a\":1},{\"a\":2}]", None).unwrap();
        assert_eq!(items.len(), 2);
        let items = doc(
            "{\"data\":{\"skip\":[1,2,{\"x\":[]}],\"items\":[{\"a\":1}]},\"z\":1}",
            Some("data.items"),
        )
        .unwrap();
        assert_eq!(items[0].as_ref().unwrap().value, json!({"a": 1}));
        let items = doc(
            "{\"pages\":[{\"r\":[]},{\"r\":[{\"a\":3}]}]}",
            Some("pages.1.r"),
        )
        .unwrap();
        assert_eq!(items[0].as_ref().unwrap().value, json!({"a": 3}));
    }

    #[test]
    fn bom_is_skipped() {
        let f = write(".json", b"\xEF\xBB\xBF[{\"a\":1}]");
        let items: Vec<_> = super::super::read(f.path(), &opts(None)).unwrap().collect();
        assert_eq!(items[0].as_ref().unwrap().value, json!({"a": 1}));
    }

    #[test]
    fn missing_records_path_lists_the_keys_that_exist() {
        let err = doc("{\"audits\":[],\"meta\":{},\"links\":{}}", Some("tickets")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.ends_with(": records path `tickets` not found: the document has no key `tickets`; its keys are: audits, meta, links"),
            "{msg}"
        );
        let err = doc("{\"data\":{\"rows\":[]}}", Some("data.items")).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("`data` has no key `items`; its keys are: rows"),
            "{err}"
        );
        let err = doc("{\"audits\":[],\"meta\":{}}", None).unwrap_err();
        assert!(
            err.to_string().ends_with("the document is an object, not a list of records; set `records:` to the key that holds them; its keys are: audits, meta"),
            "{err}"
        );
        let err = doc("{\"tickets\":{\"a\":1}}", Some("tickets")).unwrap_err();
        assert!(
            err.to_string()
                .contains("`tickets` is an object, not a list of records"),
            "{err}"
        );
        let err = doc("{\"tickets\":\"x\"}", Some("tickets.a")).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("records path `tickets.a` not found: `tickets` is a string"),
            "{err}"
        );
    }

    #[test]
    fn truncated_document_yields_the_records_before_the_break() {
        let text = "{\"tickets\": [\n{\"id\": 1},\n{\"id\": 2},\n{\"id\": 3, \"subj";
        let items = doc(text, Some("tickets")).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].as_ref().unwrap().value, json!({"id": 2}));
        let e = items[2].as_ref().unwrap_err();
        assert_eq!((e.location.line, e.location.index), (Some(4), 2));
        assert!(
            e.message.starts_with(
                "the JSON document is cut off at line 4 column 15 (EOF while parsing a string"
            ),
            "{}",
            e.message
        );
        assert!(
            e.to_string()
                .contains(".json:4: the JSON document is cut off"),
            "{e}"
        );
    }

    #[test]
    fn malformed_document_reports_the_position() {
        let text = "[{\"id\": 1},\n {\"id\": 2 \"x\": 3},\n {\"id\": 4}]";
        let items = doc(text, None).unwrap();
        assert_eq!(items.len(), 2);
        let e = items[1].as_ref().unwrap_err();
        assert_eq!(e.location.line, Some(2));
        assert!(
            e.message
                .starts_with("invalid JSON at line 2 column 11: expected `,` or `}`"),
            "{}",
            e.message
        );
        // Broken after the array: every record was read, the damage is still reported.
        let items = doc("{\"t\":[{\"a\":1}],\"next\":", Some("t")).unwrap();
        assert_eq!(items.len(), 2);
        assert!(items[1].as_ref().unwrap_err().message.contains("cut off"));
        let items = doc("[{\"a\":1}] x", None).unwrap();
        assert!(
            items[1]
                .as_ref()
                .unwrap_err()
                .message
                .contains("trailing characters")
        );
    }

    #[test]
    fn not_json_before_the_records_is_fatal() {
        let err = doc("<html>", Some("tickets")).unwrap_err();
        assert!(
            err.to_string().ends_with(
                "invalid JSON at line 1 column 1: expected value before the records were reached"
            ),
            "{err}"
        );
        assert!(
            doc("", None)
                .unwrap_err()
                .to_string()
                .contains("cut off at line 1 column 0")
        );
    }

    #[test]
    fn non_object_record_is_an_error_and_reading_goes_on() {
        let items = doc("[{\"a\":1}, 5, \"x\", {\"a\":2}]", None).unwrap();
        assert_eq!(items.len(), 4);
        let e = items[1].as_ref().unwrap_err();
        assert_eq!(e.message, "the record is a number, not an object");
        assert_eq!(e.location.index, 1);
        assert_eq!(items[3].as_ref().unwrap().location.index, 3);
    }

    #[test]
    fn real_zendesk_audits_and_freshdesk_conversations() {
        let (Some(audits), Some(conversations)) = (
            real_fixture("zendesk/api_ticket_audits_list.json"),
            real_fixture("freshdesk/api_v2_conversations.json"),
        ) else {
            return;
        };
        let items: Vec<_> = super::super::read(&audits, &opts(Some("audits")))
            .unwrap()
            .collect();
        assert_eq!(items.len(), 91);
        assert!(items.iter().all(|i| i.is_ok()));
        let err = super::super::read(&audits, &opts(Some("tickets")))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("its keys are: audits, meta, links"),
            "{err}"
        );
        let items: Vec<_> = super::super::read(&conversations, &opts(None))
            .unwrap()
            .collect();
        assert_eq!(items.len(), 2);
        let first = items[0].as_ref().unwrap();
        assert_eq!(first.location.line, Some(2));
        assert_eq!(first.value["ticket_id"], 1);
        assert_eq!(items[1].as_ref().unwrap().location.line, Some(20));
    }

    #[test]
    fn dropping_the_stream_stops_the_reader() {
        let mut text = String::from("[");
        for i in 0..10_000 {
            text.push_str(&format!("{{\"id\":{i}}},"));
        }
        text.push_str("{}]");
        let f = write(".json", text.as_bytes());
        let mut stream = super::super::read(f.path(), &opts(None)).unwrap();
        assert!(stream.next().unwrap().is_ok());
        drop(stream);
    }

    #[test]
    fn ndjson_lines_blank_lines_and_bad_lines() {
        let text = b"{\"id\":1}\n\n  \r\n{\"id\":2, oops}\n[1]\r\n{\"id\":3}";
        let f = write(".ndjson", text);
        let items: Vec<_> = super::super::read(f.path(), &opts(None)).unwrap().collect();
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
        let items: Vec<_> = super::super::read(f.path(), &opts(None)).unwrap().collect();
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

    /// 200,000 records are streamed without being held: the stream is consumed one record
    /// at a time, and while the consumer pauses, the reader thread cannot get further ahead
    /// than the batches the channel holds plus one read buffer.
    #[test]
    fn large_files_stream_in_bounded_memory() {
        const N: u64 = 200_000;
        let body = "x".repeat(200);
        let mut nd = tempfile::Builder::new()
            .suffix(".ndjson")
            .tempfile()
            .unwrap();
        let mut js = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
        {
            let mut nd_w = std::io::BufWriter::new(nd.as_file_mut());
            let mut js_w = std::io::BufWriter::new(js.as_file_mut());
            writeln!(js_w, "{{\"meta\":{{\"n\":{N}}},\"tickets\":[").unwrap();
            for i in 0..N {
                let rec = format!("{{\"id\":{i},\"subject\":\"s{i}\",\"body\":\"{body}\"}}");
                writeln!(nd_w, "{rec}").unwrap();
                writeln!(js_w, "{}{rec}", if i == 0 { "" } else { "," }).unwrap();
            }
            write!(js_w, "]}}").unwrap();
        }
        let size = js.as_file().metadata().unwrap().len();
        assert!(size > 40_000_000);

        let bytes_read = Arc::new(AtomicU64::new(0));
        let mut stream =
            read_document_counted(js.path(), &opts(Some("tickets")), bytes_read.clone()).unwrap();
        let first = stream.next().unwrap().unwrap();
        assert_eq!(first.location.line, Some(2));
        std::thread::sleep(std::time::Duration::from_millis(200));
        let ahead = bytes_read.load(Ordering::Relaxed);
        let record_size = 260;
        assert!(
            ahead
                <= (CHANNEL_BOUND as u64 + 3) * BATCH_RECORDS as u64 * record_size
                    + 2 * READ_BUFFER as u64,
            "the reader ran {ahead} bytes ahead"
        );
        let mut count = 1;
        let mut last = first;
        for item in stream {
            last = item.unwrap();
            count += 1;
        }
        assert_eq!(count, N);
        assert_eq!(last.location.index, N - 1);
        assert_eq!(last.location.line, Some(N + 1));
        assert_eq!(bytes_read.load(Ordering::Relaxed), size);

        let mut count = 0;
        for item in super::super::read(nd.path(), &opts(None)).unwrap() {
            let r = item.unwrap();
            count += 1;
            assert_eq!(r.location.line, Some(count));
        }
        assert_eq!(count, N);
    }
}
