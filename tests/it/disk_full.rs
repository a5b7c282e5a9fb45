//! A journal on a disk that fills up, for real: a small tmpfs mounted for the test. The
//! import must stop with the journal's path and what to do, having lost nothing, and the
//! same command must finish the job once space is freed, creating nothing twice.
//!
//! Mounting needs root (or CAP_SYS_ADMIN); without it the test says so and skips.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hfmigrate::sandbox::Latency;

use crate::import::{Run, assert_exactly_once, replicated_csv, text, valid_records};
use crate::support::{KEY, start_sandbox};

const MAPPING: &str = "mappings/generic-csv.yaml";
/// Room for the journal of the replicated sample (about 3 MB with its log) many times.
const DISK_BYTES: u64 = 16 * 1024 * 1024;

/// A tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    /// `None`, with the reason printed, where this process may not mount.
    fn mount(at: &Path) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let size = format!("size={DISK_BYTES}");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk(at.to_path_buf())),
            Ok(o) => {
                eprintln!(
                    "skipped: cannot mount a small tmpfs to fill (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount to make a small disk to fill: {e}");
                None
            }
        }
    }

    /// Writes zeros until only about `leave` bytes are free (0: until the disk is full).
    fn fill(&self, leave: u64) -> PathBuf {
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        while leave == 0 || written + leave < DISK_BYTES - used(&self.0) {
            if f.write_all(&chunk).is_err() {
                break;
            }
            written += chunk.len() as u64;
        }
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Bytes taken on the disk by everything but the filler.
fn used(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != "filler")
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

async fn finish(child: std::process::Child) -> Output {
    tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
    )
    .await
    .expect("the run ends within 120 s")
    .unwrap()
}

/// Issue 11 item 9: a full disk while the export is read, then mid-run, then freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_import_with_the_journal_named_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("disk")) else {
        return;
    };
    let sb = start_sandbox(|c| {
        crate::support::unlimited(c);
        // Slow enough that the disk can be filled while tickets are being created.
        c.faults.latency = Some(Latency::Fixed(Duration::from_millis(50)));
    })
    .await;
    let input = replicated_csv(dir.path(), 20);
    let journal = disk.0.join("run.db");
    let run = Run {
        url: &sb.url,
        journal: &journal,
        mapping: MAPPING,
        input: &input,
        extra: ["--batch-size", "3"].map(String::from).to_vec(),
        key: KEY,
    };
    let said_once = |o: &Output, what: &str| {
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{}", text(o));
        assert!(err.contains(&journal.display().to_string()), "{}", text(o));
        assert!(err.contains(what), "{}", text(o));
        assert!(err.contains("free disk space"), "{}", text(o));
        assert_eq!(err.matches("full").count(), 1, "{}", text(o));
    };

    // Too little room to read the export into the journal: nothing is sent.
    let filler = disk.fill(600 * 1024);
    let o = run.output().await;
    said_once(
        &o,
        "could not be written while the export was read into it (its disk is full)",
    );
    assert_eq!(sb.stats().tickets, 0);

    // Room for the export, then the disk fills while tickets are being created.
    std::fs::remove_file(&filler).unwrap();
    let child = run
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while sb.stats().tickets == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing was created"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let filler = disk.fill(0);
    let o = finish(child).await;
    said_once(
        &o,
        "could not be written (its disk is full), so the import stopped",
    );
    let created = sb.stats().tickets;
    let valid = valid_records(MAPPING, &input);
    assert!(
        created < valid,
        "the disk filled only after the last create"
    );

    // Space freed: the same command finishes, and nothing exists twice.
    std::fs::remove_file(&filler).unwrap();
    let o = run.output().await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_exactly_once(&sb, &journal, dir.path(), valid).await;
}
