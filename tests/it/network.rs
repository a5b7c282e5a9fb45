//! Broken networks and servers, through the built binary: a server that accepts and never
//! answers, one that answers every write with something unusable, a lockout, and Ctrl-C.
//! Every test is bounded in time: a hang is a failure, never a stuck CI job.
//!
//! The broken servers are raw `TcpListener`s in the test: nothing else can be made to
//! misbehave exactly so, and the sandbox covers what HappyFox itself does.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hfmigrate::journal::Journal;
use hfmigrate::sandbox::{Latency, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{Hfmigrate, Outcome, start_sandbox};

/// Runs `cmd` to the end, killing it (and failing the test) after `limit`.
fn run_within(mut cmd: Command, limit: Duration) -> (Outcome, Duration) {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            let o: Outcome = child.wait_with_output().expect("output").into();
            panic!("still running after {limit:?}:\n{o:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    (child.wait_with_output().expect("output").into(), took)
}

/// How the raw server answers a POST.
#[derive(Debug, Clone, Copy)]
enum Broken {
    /// Accepts, reads, never answers (GETs too).
    Silent,
    Html200,
    TruncatedJson,
    EmptyBody,
    Closed,
    Html502,
}

/// A server on loopback that answers GETs with an empty ticket list (so reconciliation
/// finds nothing) and POSTs as `mode` says; counts the POSTs it received.
async fn broken_server(mode: Broken) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let posts = Arc::new(AtomicUsize::new(0));
    let counter = posts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(answer(sock, mode, counter.clone()));
        }
    });
    (url, posts)
}

async fn answer(mut sock: TcpStream, mode: Broken, posts: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    // The head, then as much body as Content-Length says.
    let head_end = loop {
        let Ok(n) = sock.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    if let Broken::Silent = mode {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return;
    }
    let is_post = head.starts_with("post");
    let reply = |status: &str, kind: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let html = "<html><body>Service temporarily unavailable</body></html>";
    let text = if !is_post {
        reply(
            "200 OK",
            "application/json",
            r#"{"data":[],"page_info":{"count":0,"page_count":0}}"#,
        )
    } else {
        posts.fetch_add(1, Ordering::SeqCst);
        match mode {
            Broken::Silent => unreachable!(),
            Broken::Html200 => reply("200 OK", "text/html", html),
            Broken::TruncatedJson => reply("200 OK", "application/json", r#"[{"id": 12, "succ"#),
            Broken::EmptyBody => reply("200 OK", "application/json", ""),
            Broken::Closed => String::new(),
            Broken::Html502 => reply("502 Bad Gateway", "text/html", html),
        }
    };
    let _ = sock.write_all(text.as_bytes()).await;
    let _ = sock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_pull_from_a_server_that_never_answers_ends_with_the_reason() {
    let (url, _) = broken_server(Broken::Silent).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("schema.json");
    let mut cmd = Hfmigrate::new(["schema", "pull", "--url", &url, "--out"])
        .credentials()
        .command();
    cmd.arg(&out).args([
        "--read-timeout",
        "1s",
        "--retries",
        "3",
        "--retry-for",
        "20s",
    ]);
    let (o, took) = tokio::task::spawn_blocking(move || run_within(cmd, Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(o.code, 1, "{o:?}");
    // Three attempts of one second each, plus backoffs.
    assert!(took < Duration::from_secs(15), "{took:?}");
    // Each retry is said as it happens, with its cause...
    assert!(o.stderr.contains("warning: GET "), "{o:?}");
    assert!(o.stderr.contains("timed out"), "{o:?}");
    // ...and the end says what was tried and what to do, the cause once.
    assert!(
        o.stderr.contains("no usable answer after 3 attempt(s)"),
        "{o:?}"
    );
    assert!(o.stderr.contains("--retries"), "{o:?}");
    assert!(!out.exists());
}

/// The generic CSV sample's first `n` rows, repeated with fresh ticket ids as needed,
/// and no conversation.
fn small_export(dir: &Path, n: usize) -> std::path::PathBuf {
    let src = crate::support::root().join("samples/generic-csv/tickets.csv");
    let mut reader = csv::Reader::from_path(src).unwrap();
    let headers = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let out = dir.join("export");
    std::fs::create_dir_all(&out).unwrap();
    let mut writer = csv::Writer::from_path(out.join("tickets.csv")).unwrap();
    writer.write_record(&headers).unwrap();
    for i in 0..n {
        let mut fields: Vec<String> = rows[i % rows.len()].iter().map(str::to_owned).collect();
        fields[0] = format!("{}-{}", fields[0].trim(), i / rows.len());
        writer.write_record(&fields).unwrap();
    }
    writer.flush().unwrap();
    std::fs::write(
        out.join("comments.csv"),
        "Ticket ID,Author Email,Author Name,Created At,Public,Body\n",
    )
    .unwrap();
    out
}

/// The generic CSV mapping without its final state, so each ticket is one POST.
fn creation_only_mapping(dir: &Path) -> std::path::PathBuf {
    let text =
        std::fs::read_to_string(crate::support::root().join("mappings/generic-csv.yaml")).unwrap();
    let head = text.split("\nfinal:").next().unwrap();
    let path = dir.join("creation-only.yaml");
    std::fs::write(&path, head).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_answered_with_garbage_are_not_resent_forever() {
    for mode in [
        Broken::Html200,
        Broken::TruncatedJson,
        Broken::EmptyBody,
        Broken::Closed,
        Broken::Html502,
    ] {
        let (url, posts) = broken_server(mode).await;
        let dir = tempfile::tempdir().unwrap();
        let input = small_export(dir.path(), 6);
        let journal = dir.path().join("run.db");
        let mut cmd = Hfmigrate::new([
            "import",
            "--yes",
            "--mapping",
            "mappings/generic-csv.yaml",
            "--schema",
            "samples/happyfox-schema.json",
            "--url",
            &url,
            "--batch-size",
            "3",
            "--reconcile-delay",
            "0s",
            "--write-timeout",
            "2s",
            "--retries",
            "3",
            "--input",
        ])
        .credentials()
        .command();
        cmd.arg(&input).arg("--journal").arg(&journal);
        let (o, took) =
            tokio::task::spawn_blocking(move || run_within(cmd, Duration::from_secs(90)))
                .await
                .unwrap();
        let posts = posts.load(Ordering::SeqCst);
        assert_eq!(o.code, 1, "{mode:?}: {o:?}");
        assert!(took < Duration::from_secs(45), "{mode:?}: {took:?}");
        // Two batches, each sent at most three times: never the same POST again and again.
        assert!((2..=6).contains(&posts), "{mode:?}: {posts} POSTs\n{o:?}");
        // The cause of each unusable answer is said as it comes...
        let cause = match mode {
            Broken::Html200 | Broken::TruncatedJson => "not JSON",
            Broken::EmptyBody => "not a list",
            Broken::Closed => "connection was lost",
            Broken::Html502 => "HTTP 502",
            Broken::Silent => unreachable!(),
        };
        assert!(
            o.stderr.contains("warning: POST tickets/"),
            "{mode:?}: {o:?}"
        );
        assert!(o.stderr.contains(cause), "{mode:?}: {o:?}");
        // ...and the run ends saying the request was not sent again and what to do.
        assert!(o.stderr.contains("was not sent again"), "{mode:?}: {o:?}");
        assert!(
            o.stderr.contains("run the same command again"),
            "{mode:?}: {o:?}"
        );
        // Nothing lost: every valid record is still to be created (or to be looked up);
        // the sample's one invalid row among the first six is the only failure.
        let s = Journal::open_read_only(&journal)
            .unwrap()
            .summary()
            .unwrap();
        assert_eq!(s.records.created, 0, "{mode:?}: {s:?}");
        assert_eq!(s.records.failed, 1, "{mode:?}: {s:?}");
        assert_eq!(s.records.pending + s.records.sending, 5, "{mode:?}: {s:?}");
        println!("{mode:?}: {posts} POSTs, {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_api_key_is_a_configuration_error_said_once() {
    let sb = start_sandbox(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("schema.json");
    let mut cmd = Hfmigrate::new(["schema", "pull", "--url", &sb.url, "--out"])
        .env("HAPPYFOX_API_KEY", "key-WRONG-31337")
        .env("HAPPYFOX_AUTH_CODE", "code-WRONG-31337")
        .command();
    cmd.arg(&out);
    let (o, _) = tokio::task::spawn_blocking(move || run_within(cmd, Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(o.code, 2, "{o:?}");
    assert_eq!(o.stderr.matches("HTTP 401").count(), 1, "{o:?}");
    assert!(o.stderr.contains("HAPPYFOX_API_KEY"), "{o:?}");
    assert!(!o.stderr.contains("WRONG-31337"), "{o:?}");
}

#[test]
fn the_sandbox_never_prints_a_key_from_the_environment() {
    let mut cmd = Hfmigrate::new(["sandbox", "--listen", "127.0.0.1:0"])
        .env("HAPPYFOX_API_KEY", "key-FROM-ENV-777")
        .env("HAPPYFOX_AUTH_CODE", "code-FROM-ENV-777")
        .command();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let banner = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut seen = String::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("Ctrl-C") {
                break;
            }
        }
        seen
    });
    let started = Instant::now();
    while !banner.is_finished() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    child.wait().ok();
    let seen = banner.join().unwrap();
    assert!(seen.contains("listening"), "{seen}");
    assert!(!seen.contains("FROM-ENV-777"), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_relocks_above_60_posts_a_minute_sees_one_lockout() {
    let sb = start_sandbox(|c| {
        c.limits = Limits {
            post_per_min: 60,
            get_per_min: 0,
            lockout: Duration::from_secs(3),
        };
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    // About 135 valid tickets: 61 before the lockout and more than the 60 a minute that
    // would trip the next one, had the ceiling stayed where it was (~2.5 minutes).
    let input = small_export(dir.path(), 190);
    let mapping = creation_only_mapping(dir.path());
    let journal = dir.path().join("run.db");
    // One ticket per POST at the default ceiling (240/min): the first minute's 61st POST
    // trips the lockout; after it the ceiling must stay under what the account allows.
    let mut cmd = Hfmigrate::new([
        "import",
        "--yes",
        "--mapping",
        mapping.to_str().unwrap(),
        "--schema",
        "samples/happyfox-schema.json",
        "--url",
        &sb.url,
        "--batch-size",
        "1",
        "--reconcile-delay",
        "0s",
        "--input",
    ])
    .credentials()
    .command();
    cmd.arg(&input).arg("--journal").arg(&journal);
    let (o, took) = tokio::task::spawn_blocking(move || run_within(cmd, Duration::from_secs(300)))
        .await
        .unwrap();
    let stats = sb.stats();
    println!("{took:?}");
    println!("{stats:?}\n{o:?}");
    assert_eq!(stats.lockouts, 1, "{stats:?}\n{o:?}");
    let s = Journal::open_read_only(&journal)
        .unwrap()
        .summary()
        .unwrap();
    assert_eq!(s.records.pending + s.records.sending, 0, "{s:?}\n{o:?}");
    assert_eq!(stats.tickets, s.records.created, "{stats:?}");
    // Said when it happened: the wait (the sandbox's Retry-After) and the new ceiling.
    assert!(o.stderr.contains("HTTP 429"), "{o:?}");
    assert!(o.stderr.contains("as its Retry-After says"), "{o:?}");
    assert!(o.stderr.contains("ceiling is lowered from 240"), "{o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_drops_what_waits_for_its_turn_and_exits_4() {
    // 1 s per request and a ceiling of 60 POSTs a minute: at any moment a few requests are
    // on the wire and many wait for a token.
    let sb = start_sandbox(|c| {
        c.limits.post_per_min = 0;
        c.limits.get_per_min = 0;
        c.faults.latency = Some(Latency::Fixed(Duration::from_millis(1000)));
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let input = small_export(dir.path(), 40);
    let journal = dir.path().join("run.db");
    let mut cmd = Hfmigrate::new([
        "import",
        "--yes",
        "--mapping",
        "mappings/generic-csv.yaml",
        "--schema",
        "samples/happyfox-schema.json",
        "--url",
        &sb.url,
        "--batch-size",
        "1",
        "--post-per-min",
        "120",
        "--input",
    ])
    .credentials()
    .command();
    cmd.arg(&input).arg("--journal").arg(&journal);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let sending get going, then press Ctrl-C.
    let until_sending = Instant::now();
    while sb.stats().tickets < 3 && until_sending.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let requests_before = crate::support::post_count(&sb.stats());
    let pressed = Instant::now();
    let status = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let o: Outcome = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no exit after Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap().into()
    })
    .await
    .unwrap();
    let took = pressed.elapsed();
    let after = crate::support::post_count(&sb.stats()) - requests_before;
    assert_eq!(o.code, 4, "{o:?}");
    // Only what was on the wire (a few, each answered within a second) was awaited.
    assert!(took < Duration::from_secs(5), "{took:?}\n{o:?}");
    assert!(after <= 4, "{after} POSTs arrived after Ctrl-C\n{o:?}");
    assert!(o.stderr.contains("Ctrl-C: stopping"), "{o:?}");
    let s = Journal::open_read_only(&journal)
        .unwrap()
        .summary()
        .unwrap();
    assert_eq!(s.records.created, sb.stats().tickets, "{s:?}");
    assert!(s.records.created < 40, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_validation_exits_4() {
    // An export large enough that validation takes a while.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export");
    std::fs::create_dir_all(&out).unwrap();
    let mut text = String::from(
        "Ticket ID,Subject,Description,Requester Name,Requester Email,Status,Priority,Category,Assignee,Tags,Created At,Product,Region,Order Value,Purchase Date,Affected Modules\n",
    );
    for i in 0..200_000 {
        text.push_str(&format!(
            "{i},Subject {i},Body {i},Ann,ann{i}@example.com,New,Low,Support,,,2024-01-01T00:00:00Z,,,,,\n"
        ));
    }
    std::fs::write(out.join("tickets.csv"), text).unwrap();
    std::fs::write(
        out.join("comments.csv"),
        "Ticket ID,Author Email,Author Name,Created At,Public,Body\n",
    )
    .unwrap();
    let sb = start_sandbox(|_| {}).await;
    let journal = dir.path().join("run.db");
    let mut cmd = Hfmigrate::new([
        "import",
        "--yes",
        "--mapping",
        "mappings/generic-csv.yaml",
        "--schema",
        "samples/happyfox-schema.json",
        "--url",
        &sb.url,
        "--input",
    ])
    .credentials()
    .command();
    cmd.arg(&out).arg("--journal").arg(&journal);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The account is reached (one GET) before validation starts.
    let started = Instant::now();
    while sb.stats().requests.is_empty() && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let o: Outcome = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no exit after Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap().into()
    })
    .await
    .unwrap();
    assert_eq!(o.code, 4, "{o:?}");
    assert!(o.stderr.contains("before anything was sent"), "{o:?}");
    assert_eq!(sb.stats().tickets, 0);
}
