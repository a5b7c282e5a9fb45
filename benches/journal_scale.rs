//! The journal at a million records: what enqueueing, sending and resuming cost.
//!
//! Enqueues N records (`JOURNAL_SCALE`, default 1,000,000), sends and finishes 90% of
//! them 100 per batch as the importer would, leaves one batch unknown as a crash would,
//! then reopens the file and times the resume start-up (open, unknown batches, first
//! pending page) and the status summary. Prints figures; asserts only that the resume
//! sees the unknown batch and the next page.
//!
//! `JOURNAL_SCALE=100000 cargo bench --bench journal_scale`

use std::time::{Duration, Instant};

use hfmigrate::journal::{ItemOutcome, Journal, PendingRecord, RunInfo};

fn main() {
    let n: usize = std::env::var("JOURNAL_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let info = RunInfo::new("mapping-1", vec![], "https://acme.happyfox.com");
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("big.db");
    let payload = format!(
        r#"{{"subject":"{}","html":"{}"}}"#,
        "s".repeat(60),
        "h".repeat(400)
    );
    let left = {
        let mut j = Journal::open(&path, &info).expect("the journal opens");
        let t = Instant::now();
        for chunk in 0..n.div_ceil(10_000) {
            let records: Vec<PendingRecord> = (chunk * 10_000..((chunk + 1) * 10_000).min(n))
                .map(|i| PendingRecord {
                    source_id: format!("ZD-{i}"),
                    file: "tickets.json".into(),
                    line: Some(i as u64),
                    payload: payload.clone(),
                })
                .collect();
            j.upsert_pending(&records).expect("upsert");
        }
        let insert = t.elapsed();
        println!(
            "upsert_pending: {n} records in {insert:.2?} ({:.1} µs/record)",
            insert.as_secs_f64() * 1e6 / n as f64
        );
        let t = Instant::now();
        let mut after = 0;
        let mut done = 0;
        let mut outcome_time = Duration::ZERO;
        while done < n * 9 / 10 {
            let rows = j.next_pending(after, 100).expect("next_pending");
            let Some(last) = rows.last() else { break };
            after = last.row;
            let ids: Vec<&str> = rows.iter().map(|r| r.source_id.as_str()).collect();
            let b = j.begin_batch(&ids).expect("begin_batch");
            let outcomes: Vec<ItemOutcome> = rows
                .iter()
                .map(|r| ItemOutcome::Created {
                    source_id: r.source_id.clone(),
                    happyfox_id: r.row as u64,
                    display_id: format!("#DC{:08}", r.row),
                })
                .collect();
            let t2 = Instant::now();
            j.finish_batch(b, &outcomes).expect("finish_batch");
            outcome_time += t2.elapsed();
            done += rows.len();
        }
        let all = t.elapsed();
        println!(
            "next_pending + begin_batch + finish_batch: {done} records in {all:.2?} ({:.1} µs/record; finish_batch alone {:.1} µs/record)",
            all.as_secs_f64() * 1e6 / done.max(1) as f64,
            outcome_time.as_secs_f64() * 1e6 / done.max(1) as f64
        );
        // Leave one batch unknown, as a crash would.
        let rows = j.next_pending(after, 100).expect("next_pending");
        let ids: Vec<&str> = rows.iter().map(|r| r.source_id.as_str()).collect();
        j.begin_batch(&ids).expect("begin_batch");
        n - done - ids.len()
    };
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let t = Instant::now();
    let j = Journal::open(&path, &info).expect("the journal reopens");
    let unknown = j.unknown_batches().expect("unknown_batches");
    let first = j.next_pending(0, 100).expect("next_pending");
    let startup = t.elapsed();
    println!(
        "resume start-up (open + unknown_batches + first pending page) on {n} records, {} MB: {startup:.2?}",
        size / 1_000_000
    );
    assert_eq!(unknown.len(), 1);
    assert_eq!(
        first.len(),
        left.min(100),
        "the next page of pending records"
    );
    let t = Instant::now();
    let s = j.summary().expect("summary");
    println!("summary: {:?} ({:.2?})", s.records, t.elapsed());
}
