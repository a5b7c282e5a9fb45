//! Side-file lookups at scale: the on-disk index behind `users[requester_id]` and joined
//! comments must stay fast when the side file is larger than memory would like.
//!
//! Builds an index of 600,000 comments over 200,000 tickets (ordered by `created_at`),
//! then prints the build time, the time per `get` (every comment of one ticket, keys in a
//! scattered order) and per `first` on 500 hot keys (the lookup cache). Prints figures,
//! asserts only that every lookup found what was written.
//!
//! `cargo bench --bench side_lookup [-- --tickets N]`

use std::io::Write as _;
use std::time::Instant;

use hfmigrate::source::{Format, ReadOptions, SideIndex, SideSpec};

fn main() {
    let mut tickets: u64 = 200_000;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--tickets") {
        tickets = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .expect("--tickets takes a number");
    }
    let mut file = tempfile::Builder::new()
        .suffix(".ndjson")
        .tempfile()
        .expect("a temp file");
    {
        let mut w = std::io::BufWriter::new(file.as_file_mut());
        for i in 0..tickets * 3 {
            writeln!(
                w,
                "{{\"id\":{i},\"ticket_id\":{},\"created_at\":\"2024-01-01T00:00:{:02}Z\",\"body\":\"{}\"}}",
                (i * 7919) % tickets,
                i % 60,
                "x".repeat(300)
            )
            .expect("writing the side file");
        }
    }
    let spec = SideSpec {
        name: "comments".into(),
        files: vec![file.path().to_path_buf()],
        read: ReadOptions {
            format: Some(Format::Ndjson),
            ..ReadOptions::default()
        },
        key: "ticket_id".into(),
        explode: None,
        order_by: Some("created_at".into()),
    };
    let started = Instant::now();
    let index = SideIndex::build(&spec, &mut |_| Ok(true), &mut |e| panic!("{}", e.message))
        .expect("the index builds");
    let built = started.elapsed();
    println!(
        "built {} entries / {} keys in {built:.2?}",
        index.len(),
        index.keys()
    );

    let started = Instant::now();
    let mut found = 0;
    for t in (0..tickets).map(|t| (t * 104_729) % tickets) {
        found += index.get(&t.to_string()).expect("get").len() as u64;
    }
    let per = started.elapsed() / tickets as u32;
    assert_eq!(
        found,
        tickets * 3,
        "every comment is found under its ticket"
    );
    println!("get: {per:.2?} per lookup ({found} entries)");

    let started = Instant::now();
    for t in 0..tickets {
        assert!(
            index
                .first(&(t % 500).to_string())
                .expect("first")
                .is_some()
        );
    }
    println!(
        "first, 500 hot keys: {:.2?} per lookup",
        started.elapsed() / tickets as u32
    );
}
