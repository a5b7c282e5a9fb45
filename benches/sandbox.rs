//! Sandbox throughput and memory: it must never be the bottleneck of a rehearsal.
//!
//! Starts the sandbox in-process (faults off, rate limit off) and drives it over loopback
//! HTTP with reqwest: first 100-ticket bulk creates, then staff replies, private notes and
//! contact replies spread over the created tickets (one writer per ticket at a time, as
//! HappyFox requires). Prints tickets/s, replies/s and resident memory per ticket.
//!
//! `cargo bench --bench sandbox [-- --tickets N --replies N --concurrency N --max-secs S]`
//! (or `bench/sandbox.sh`). Every phase is bounded in count and in time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hfmigrate::sandbox::{self, Limits, SandboxConfig};
use serde_json::{Value, json};

struct Opts {
    tickets: usize,
    replies: usize,
    concurrency: usize,
    max_secs: u64,
}

fn opts() -> Opts {
    let mut o = Opts {
        tickets: 100_000,
        replies: 100_000,
        concurrency: 16,
        max_secs: 90,
    };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        let n = pair[1].parse::<usize>().ok();
        match (pair[0].as_str(), n) {
            ("--tickets", Some(n)) => o.tickets = n,
            ("--replies", Some(n)) => o.replies = n,
            ("--concurrency", Some(n)) => o.concurrency = n.max(1),
            ("--max-secs", Some(n)) => o.max_secs = n as u64,
            _ => {}
        }
    }
    o
}

/// Resident set size of this process in bytes (Linux), 0 elsewhere.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

const BODY: &str = "Hello, our invoices page has been failing since the last update. \
    I tried another browser and cleared the cache, but the totals still show the old plan. \
    Could you have a look? The account is on the Pro plan and the card was charged twice.";

fn main() -> anyhow::Result<()> {
    let o = opts();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(o))
}

async fn run(o: Opts) -> anyhow::Result<()> {
    let mut config = SandboxConfig::with_sample_schema();
    config.limits = Limits {
        post_per_min: 0,
        get_per_min: 0,
        lockout: Duration::from_secs(600),
    };
    let sb = sandbox::spawn(config).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.concurrency)
        .build()?;
    let api = sb.api();
    let (key, code) = (sb.api_key.clone(), sb.auth_code.clone());
    let rss_start = rss();
    let deadline = Duration::from_secs(o.max_secs);

    // Phase 1: bulk creates of 100.
    let batches = o.tickets.div_ceil(100);
    let next = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(o.tickets)));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.concurrency {
        let (client, api, key, code) = (client.clone(), api.clone(), key.clone(), code.clone());
        let (next, ids) = (next.clone(), ids.clone());
        let total = o.tickets;
        tasks.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches || t0.elapsed() > deadline {
                    return anyhow::Ok(());
                }
                let items: Vec<Value> = (b * 100..((b + 1) * 100).min(total))
                    .map(|i| {
                        json!({
                            "name": format!("Customer {}", i % 5000),
                            "email": format!("customer{}@example.com", i % 5000),
                            "category": 1 + (i % 2) as u64,
                            "subject": format!("Invoice totals wrong after update #{i}"),
                            "text": BODY,
                            "tags": "migrated,zendesk",
                            "t-cf-1": format!("ZD-{i}"),
                            "created_at": "2024-03-01T10:00:00",
                        })
                    })
                    .collect();
                let resp = client
                    .post(format!("{api}tickets/"))
                    .basic_auth(&key, Some(&code))
                    .json(&items)
                    .send()
                    .await?;
                anyhow::ensure!(resp.status().is_success(), "bulk create: {}", resp.status());
                let results: Vec<Value> = resp.json().await?;
                let mut got: Vec<u64> = results.iter().filter_map(|r| r["id"].as_u64()).collect();
                anyhow::ensure!(got.len() == items.len(), "some bulk items failed");
                if let Ok(mut all) = ids.lock() {
                    all.append(&mut got);
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let create_secs = t0.elapsed().as_secs_f64();
    let ids: Vec<u64> = ids.lock().map(|v| v.clone()).unwrap_or_default();
    let created = ids.len();
    let rss_created = rss();

    // Phase 2: replies, notes and contact replies. Task k only touches tickets k, k+C, ...
    // so no two writes to one ticket overlap.
    let ids = Arc::new(ids);
    let done = Arc::new(AtomicUsize::new(0));
    let t1 = Instant::now();
    let mut tasks = Vec::new();
    let per_task = o.replies.div_ceil(o.concurrency);
    for k in 0..o.concurrency {
        let (client, api, key, code) = (client.clone(), api.clone(), key.clone(), code.clone());
        let (ids, done) = (ids.clone(), done.clone());
        let total = o.replies;
        tasks.push(tokio::spawn(async move {
            let mine: Vec<u64> = ids.iter().skip(k).step_by(o.concurrency).copied().collect();
            if mine.is_empty() {
                return anyhow::Ok(());
            }
            for n in 0..per_task {
                if done.load(Ordering::Relaxed) >= total || t1.elapsed() > deadline {
                    break;
                }
                let ticket = mine[n % mine.len()];
                let (path, body) = match n % 4 {
                    0 | 1 => ("staff_update", json!({"staff": 2, "plaintext": BODY})),
                    2 => (
                        "staff_pvtnote",
                        json!({"staff": 3, "html": format!("<p>{BODY}</p>")}),
                    ),
                    _ => (
                        "user_reply",
                        json!({"user": 1 + (ticket % 5000), "text": BODY}),
                    ),
                };
                let resp = client
                    .post(format!("{api}ticket/{ticket}/{path}/"))
                    .basic_auth(&key, Some(&code))
                    .json(&body)
                    .send()
                    .await?;
                anyhow::ensure!(resp.status().is_success(), "{path}: {}", resp.status());
                resp.bytes().await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let reply_secs = t1.elapsed().as_secs_f64();
    let replies = done.load(Ordering::Relaxed);
    let rss_end = rss();
    let stats = sb.stats();
    sb.stop().await?;

    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "sandbox benchmark (loopback, faults off, rate limit off, {} concurrent clients)",
        o.concurrency
    );
    println!(
        "  bulk create : {created} tickets in {create_secs:.2} s = {:.0} tickets/s ({:.0} requests/s of 100)",
        created as f64 / create_secs,
        created as f64 / 100.0 / create_secs
    );
    println!(
        "  replies     : {replies} replies/notes/contact replies in {reply_secs:.2} s = {:.0} requests/s",
        replies as f64 / reply_secs
    );
    println!(
        "  memory (RSS): start {:.0} MB, after create {:.0} MB, after replies {:.0} MB; {:.0} bytes per ticket with its conversation",
        mb(rss_start),
        mb(rss_created),
        mb(rss_end),
        rss_end.saturating_sub(rss_start) as f64 / created.max(1) as f64
    );
    println!(
        "  stored      : {} tickets, {} updates, {} contacts; overlapping writes {}",
        stats.tickets, stats.updates, stats.contacts, stats.overlapping_writes
    );
    Ok(())
}
