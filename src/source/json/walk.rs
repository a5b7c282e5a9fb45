//! The reader thread's walk through a JSON document.
//!
//! serde_json drives the walk: seeds follow the records path one key or index at a time,
//! skip every other value without building it, and turn each element of the records array
//! into a record, batched onto the channel of [`super::document`]. A records path that
//! does not lead to an array stops the walk with a message naming what is there instead.

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::document::{BATCH_BYTES, BATCH_RECORDS, Msg};
use super::recover::{Resume, read_on};
use super::syntax::describe_syntax_error;
use super::{BOM, READ_BUFFER, truncate};
use crate::source::{Location, RecordError, SourceError, SourceRecord, json_kind};

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
                // Offsets count from the file's first byte (recovery seeks to them).
                self.consumed.set(BOM.len() as u64);
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
    /// The records array was read to its `]`.
    array_done: bool,
    /// A record's value is being parsed.
    in_record: bool,
    /// Keys of the last record, room made for in the next (see `Checked::capacity`).
    keys: usize,
    /// Where the current record starts (valid while `in_record`).
    record_start: Resume,
    /// Just after the last record parsed (or the array's `[`).
    after_last: Resume,
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

    /// The place just after the bytes handed to the parser so far.
    fn resume_here(&self) -> Resume {
        Resume {
            offset: self.consumed.get(),
            line: self.newlines.get() + 1,
            index: self.index,
        }
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

pub(super) fn scan_document(
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
        array_done: false,
        in_record: false,
        keys: 0,
        record_start: Resume {
            offset: 0,
            line: 1,
            index: 0,
        },
        after_last: Resume {
            offset: 0,
            line: 1,
            index: 0,
        },
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
            None if walk.array_done
                || matches!(
                    e.classify(),
                    serde_json::error::Category::Eof | serde_json::error::Category::Io
                ) =>
            {
                Msg::Items(vec![Err(RecordError {
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
                })])
            }
            None => {
                // A syntax error inside the array: report it and read on from the
                // damaged record (or from after the last good one).
                let from = if walk.in_record {
                    std::mem::take(&mut walk.record_start)
                } else {
                    let at = std::mem::take(&mut walk.after_last);
                    let item = Err(RecordError {
                        location: Location {
                            file: walk.file.clone(),
                            line: Some(e.line() as u64),
                            index: walk.index,
                        },
                        message: format!(
                            "{} (between records, after byte {}); reading resumed at the next record",
                            describe_syntax_error(&e),
                            at.offset
                        ),
                        raw: None,
                    });
                    if !walk.push(item) {
                        return;
                    }
                    at
                };
                let file = walk.file.clone();
                let mut stopped = false;
                read_on(&file, from, &mut |item| {
                    let ok = walk.push(item);
                    stopped |= !ok;
                    ok
                });
                if stopped {
                    return;
                }
                Msg::Done
            }
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
        "set `records:` to the key that holds them, or to `.` when the whole document is one record"
    } else {
        "set `records:` to the path of the list that holds them, or to `.` when the whole document is one record (its fields are then under that path, such as `item.subject`)"
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
            self.walk.after_last = self.walk.resume_here();
            while seq.next_element_seed(Record { walk: self.walk })?.is_some() {}
            self.walk.array_done = true;
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
        // serde_json has already taken the record's first byte (it peeks one ahead).
        walk.record_start = Resume {
            offset: walk.consumed.get().saturating_sub(1),
            line: walk.newlines.get() + 1,
            index: walk.index,
        };
        walk.in_record = true;
        let mut repeated = None;
        let value = super::checked::Checked {
            repeated: &mut repeated,
            capacity: walk.keys,
        }
        .deserialize(d)?;
        walk.in_record = false;
        if let serde_json::Value::Object(m) = &value {
            walk.keys = m.len();
        }
        walk.index += 1;
        walk.after_last = walk.resume_here();
        let item = if value.is_object() {
            Ok(SourceRecord {
                location,
                value: crate::source::RecordValue::Json(value),
                warning: repeated.as_deref().map(super::checked::repeated_message),
            })
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

#[cfg(test)]
mod tests {
    use super::super::test_files::{doc, opts, write};
    use crate::source::read;
    use serde_json::json;

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
        let items: Vec<_> = read(f.path(), &opts(None)).unwrap().collect();
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
            err.to_string().ends_with("the document is an object, not a list of records; set `records:` to the key that holds them, or to `.` when the whole document is one record; its keys are: audits, meta"),
            "{err}"
        );
        let err = doc("{\"tickets\":{\"a\":1}}", Some("tickets")).unwrap_err();
        assert!(
            err.to_string()
                .contains("`tickets` is an object, not a list of records; set `records:` to the path of the list that holds them, or to `.` when the whole document is one record"),
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
        assert_eq!(items.len(), 3);
        let e = items[1].as_ref().unwrap_err();
        assert_eq!(e.location.line, Some(2));
        assert!(
            e.message.starts_with(
                "damaged JSON in bytes 13–29 (invalid JSON at line 2: expected `,` or `}`"
            ),
            "{}",
            e.message
        );
        assert_eq!(e.raw.as_deref(), Some("{\"id\": 2 \"x\": 3}"));
        let last = items[2].as_ref().unwrap();
        assert_eq!(last.value, json!({"id": 4}));
        assert_eq!((last.location.line, last.location.index), (Some(3), 2));
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

    /// Issue 11.4: one bad byte dropped every record after it. Now reading resumes at the
    /// next record, and only the damaged one is reported, with its byte span.
    #[test]
    fn one_bad_byte_costs_one_record() {
        let mut text = String::from("{\"tickets\": [\n");
        for i in 0..1000 {
            let rec = if i == 500 {
                format!("{{\"id\": {i}, \"s\": \"a\" x}}")
            } else {
                format!("{{\"id\": {i}, \"nested\": [{{\"a\": \"}}\"}}, {{}}]}}")
            };
            text.push_str(&rec);
            text.push_str(if i < 999 { ",\n" } else { "\n" });
        }
        text.push_str("], \"next\": null}");
        let items = doc(&text, Some("tickets")).unwrap();
        assert_eq!(items.len(), 1000);
        let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].location.line, Some(502));
        assert_eq!(errors[0].location.index, 500);
        assert!(
            errors[0].message.starts_with("damaged JSON in bytes "),
            "{}",
            errors[0].message
        );
        let last = items[999].as_ref().unwrap();
        assert_eq!(last.value["id"], 999);
        assert_eq!(last.location.line, Some(1001));
        // The byte span is where the damaged record is.
        let start = text.find("{\"id\": 500").unwrap();
        assert!(
            errors[0].message.contains(&format!("bytes {start}–")),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn invalid_utf8_missing_comma_and_junk_between_records() {
        let mut bytes = b"\xEF\xBB\xBF[{\"id\": 1} {\"id\": 2},\n{\"id\": 3, \"s\": \"caf\xe9\"},\n xyz, {\"id\": 4}]".to_vec();
        let f = write(".json", &bytes);
        let items: Vec<_> = read(f.path(), &opts(None)).unwrap().collect();
        let ok: Vec<_> = items
            .iter()
            .filter_map(|i| i.as_ref().ok())
            .map(|r| r.value["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ok, [1, 2, 4], "{items:?}");
        let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].message.contains("between records, after byte 13"),
            "{}",
            errors[0].message
        );
        assert!(
            errors[1].message.starts_with("damaged JSON in bytes 25–"),
            "{}",
            errors[1].message
        );
        assert!(
            errors[1].message.contains("invalid unicode code point"),
            "{}",
            errors[1].message
        );
        assert!(
            errors[2].message.contains("\"xyz\" is not a record"),
            "{}",
            errors[2].message
        );
        bytes.clear();
    }

    /// When the structure gives no next record (an unbalanced quote runs to the end), the
    /// error says how many bytes were not read.
    #[test]
    fn unbalanced_quote_says_how_many_bytes_were_not_read() {
        let text = "[{\"id\": 1},\n{\"id\": 2, \"s\": \"x\"\"},\n{\"id\": 3}]";
        let items = doc(text, None).unwrap();
        assert_eq!(items.len(), 2, "{items:?}");
        let e = items[1].as_ref().unwrap_err();
        let start = text.find("{\"id\": 2").unwrap();
        assert!(
            e.message.ends_with(&format!(
                "{} bytes from byte {start} to the end were not read as records",
                text.len() - start
            )),
            "{}",
            e.message
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
}
