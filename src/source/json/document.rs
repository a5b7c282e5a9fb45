//! A JSON document read on a thread of its own.
//!
//! API exports put the records in an array inside one document (`{"tickets": [...],
//! "next_page": ...}`) that can be gigabytes long, so the document is never parsed whole:
//! a reader thread walks it with serde_json, skips everything off the records path and
//! hands the records over one at a time through a small bounded channel. Memory is bounded
//! by the largest record, not by the file. A document that breaks off (a truncated
//! download) still yields every record before the break, then one error saying where.
//! This is the consumer's end of that channel; the thread's walk is in [`super::walk`].

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{Receiver, sync_channel};

use super::walk::scan_document;
use crate::source::{Location, ReadOptions, RecordError, RecordStream, SourceError, SourceRecord};

/// Records in flight between the reader thread and the consumer. Small, so that memory
/// stays bounded by a few records even when the consumer is slow.
const CHANNEL_BOUND: usize = 4;
/// Records are handed over in batches, which costs far less thread hand-off than one
/// message per record; a batch closes at this many records or bytes of JSON.
pub(super) const BATCH_RECORDS: usize = 64;
pub(super) const BATCH_BYTES: u64 = 256 * 1024;

pub(crate) fn read_document(path: &Path, opts: &ReadOptions) -> Result<RecordStream, SourceError> {
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

pub(super) enum Msg {
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

#[cfg(test)]
mod tests {
    use super::super::READ_BUFFER;
    use super::super::test_files::{opts, write};
    use super::*;
    use crate::source::read;
    use crate::test_fixtures::real_fixture;
    use std::io::Write;
    use std::sync::atomic::Ordering;

    #[test]
    fn real_zendesk_audits_and_freshdesk_conversations() {
        let (Some(audits), Some(conversations)) = (
            real_fixture("zendesk/api_ticket_audits_list.json"),
            real_fixture("freshdesk/api_v2_conversations.json"),
        ) else {
            return;
        };
        let items: Vec<_> = read(&audits, &opts(Some("audits"))).unwrap().collect();
        assert_eq!(items.len(), 91);
        assert!(items.iter().all(|i| i.is_ok()));
        let err = read(&audits, &opts(Some("tickets"))).err().unwrap();
        assert!(
            err.to_string()
                .contains("its keys are: audits, meta, links"),
            "{err}"
        );
        let items: Vec<_> = read(&conversations, &opts(None)).unwrap().collect();
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
        let mut stream = read(f.path(), &opts(None)).unwrap();
        assert!(stream.next().unwrap().is_ok());
        drop(stream);
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
        for item in read(nd.path(), &opts(None)).unwrap() {
            let r = item.unwrap();
            count += 1;
            assert_eq!(r.location.line, Some(count));
        }
        assert_eq!(count, N);
    }
}
