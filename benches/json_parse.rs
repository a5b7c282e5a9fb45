//! What a record costs to parse, today against the next candidate: the NDJSON reader builds
//! a `serde_json::Value` per line (objects are `preserve_order` IndexMaps, every string is
//! allocated), and issue 14's next step would parse each line into a tree that borrows its
//! strings from the line and keeps objects as `(key, value)` vectors. This bench measures
//! both on the same lines, alternating passes, so the gain is known before the pipeline is
//! reshaped for it (a borrowed tree cannot leave the thread that holds the line).
//!
//! Prints, per way, the fastest pass's wall and CPU time and the ratio between the two.
//! Asserts only that both ways read the same number of lines and top-level keys.
//!
//! `cargo bench --bench json_parse [-- --input FILE --passes N]`
//! (the default input, bench/data/tickets-100k.ndjson, is written by bench/dry-run.sh or
//! `python3 bench/gen.py 200000 bench/data`).

use std::borrow::Cow;
use std::fmt;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hfmigrate::pipeline::stages::thread_cpu;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The allocator hfmigrate runs with (src/main.rs), so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A JSON value whose strings point into the line where they need no unescaping.
#[allow(dead_code)] // built to be measured; only the top level is read back
enum Borrowed<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<Borrowed<'a>>),
    Object(Vec<(Cow<'a, str>, Borrowed<'a>)>),
}

struct BorrowedVisitor;

impl<'de> Visitor<'de> for BorrowedVisitor {
    type Value = Borrowed<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Borrowed::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Borrowed::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Borrowed::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Borrowed::Uint(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Borrowed::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Borrowed::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Borrowed::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Borrowed::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Borrowed::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(Key(key)) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Borrowed::Object(entries))
    }
}

impl<'de> Deserialize<'de> for Borrowed<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BorrowedVisitor)
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_str(BorrowedVisitor)? {
            Borrowed::Str(s) => Ok(Key(s)),
            _ => Err(serde::de::Error::custom(
                "an object key that is not a string",
            )),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Way {
    Value,
    Borrowed,
}

/// One pass over the file: lines and top-level keys read, wall and CPU time taken.
fn pass(input: &PathBuf, way: Way) -> (u64, u64, Duration, Option<Duration>) {
    let file = std::fs::File::open(input).expect("the input opens");
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, file);
    let mut line = Vec::new();
    let (mut lines, mut keys) = (0u64, 0u64);
    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    loop {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .expect("the input reads")
            == 0
        {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        lines += 1;
        keys += match way {
            Way::Value => {
                let v: serde_json::Value = serde_json::from_slice(&line).expect("a JSON line");
                v.as_object().map_or(0, |o| o.len() as u64)
            }
            Way::Borrowed => match serde_json::from_slice(&line).expect("a JSON line") {
                Borrowed::Object(o) => o.len() as u64,
                _ => 0,
            },
        };
    }
    let wall = t0.elapsed();
    let cpu = cpu0.zip(thread_cpu()).map(|(a, b)| b - a);
    (lines, keys, wall, cpu)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let input = arg("--input").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/data/tickets-100k.ndjson"),
        PathBuf::from,
    );
    let passes: usize = arg("--passes").map_or(5, |v| v.parse().expect("--passes takes a number"));
    if !input.exists() {
        println!(
            "json_parse: {} does not exist; write it with bench/dry-run.sh or \
             `python3 bench/gen.py 200000 bench/data`, or pass --input FILE",
            input.display()
        );
        return;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "json_parse: {}, {passes} passes each, alternating",
        input.display()
    );
    let mut best = [(Duration::MAX, Duration::MAX); 2];
    let mut counts = [(0, 0); 2];
    for _ in 0..passes {
        for (i, way) in [Way::Value, Way::Borrowed].into_iter().enumerate() {
            let (lines, keys, wall, cpu) = pass(&input, way);
            counts[i] = (lines, keys);
            best[i].0 = best[i].0.min(wall);
            best[i].1 = best[i].1.min(cpu.unwrap_or(wall));
        }
    }
    assert_eq!(
        counts[0], counts[1],
        "both ways read the same lines and keys"
    );
    let (lines, _) = counts[0];
    for (i, name) in ["serde_json::Value (today)", "borrowed tree"]
        .iter()
        .enumerate()
    {
        let (wall, cpu) = best[i];
        println!(
            "  {name:<26} wall {:>7.3} s  cpu {:>7.3} s  {:>9.0} lines/CPU-s",
            wall.as_secs_f64(),
            cpu.as_secs_f64(),
            lines as f64 / cpu.as_secs_f64()
        );
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "  borrowed / Value: {:.2}x by wall, {:.2}x per CPU-second ({lines} lines)",
        ratio(best[0].0, best[1].0),
        ratio(best[0].1, best[1].1)
    );
    let end = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "  load average at the start: {}; at the end: {}",
        load.trim(),
        end.trim()
    );
}
