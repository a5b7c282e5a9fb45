//! The conventions of the command line: progress in every phase, completions, the manual
//! page, `-q`/`-v`, `--color`, examples in the long help, `--json` and the confirmation.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hfmigrate::sandbox::Latency;
use serde_json::Value;

use crate::support::{Hfmigrate, Outcome, start_sandbox};

/// A generated export of `tickets` tickets with one comment each, in the generic-CSV
/// shape (`mappings/generic-csv.yaml`).
fn generated_csv(dir: &Path, tickets: usize) -> PathBuf {
    let out = dir.join("export");
    std::fs::create_dir_all(&out).unwrap();
    let mut t = csv::Writer::from_path(out.join("tickets.csv")).unwrap();
    t.write_record([
        "Ticket ID",
        "Subject",
        "Description",
        "Requester Name",
        "Requester Email",
        "Status",
        "Priority",
        "Category",
        "Assignee",
        "Tags",
        "Created At",
        "Product",
        "Region",
        "Order Value",
        "Purchase Date",
        "Affected Modules",
    ])
    .unwrap();
    let mut c = csv::Writer::from_path(out.join("comments.csv")).unwrap();
    c.write_record([
        "Ticket ID",
        "Author Email",
        "Author Name",
        "Created At",
        "Public",
        "Body",
    ])
    .unwrap();
    for n in 1..=tickets {
        let id = format!("G{n}");
        let subject = format!("Generated ticket {n}");
        let email = format!("customer{n}@example.com");
        t.write_record([
            id.as_str(),
            &subject,
            "The export stops after 30 seconds.",
            "A Customer",
            &email,
            "Open",
            "Normal",
            "Support",
            "bjorn@acme.example",
            "migrated",
            "2024-03-06 03:59:17",
            "Widget Lite",
            "Americas",
            "",
            "",
            "Reports",
        ])
        .unwrap();
        c.write_record([
            id.as_str(),
            "alice@acme.example",
            "Alice Martin",
            "2024-03-07 10:00:00",
            "true",
            &format!("Reply to ticket {n}"),
        ])
        .unwrap();
    }
    t.flush().unwrap();
    c.flush().unwrap();
    out
}

fn hfmigrate(args: &[&str]) -> Outcome {
    Hfmigrate::new(args).run()
}

/// A line of the plain progress display: `<RFC 3339 time> <phase>: <done>/<total> ...`.
fn progress_line<'a>(line: &'a str, phase: &str) -> Option<(u64, u64, &'a str)> {
    let (stamp, rest) = line.split_once(' ')?;
    stamp.parse::<jiff::Timestamp>().ok()?;
    let rest = rest.strip_prefix(phase)?.strip_prefix(": ")?;
    let (counts, _) = rest.split_once(' ')?;
    let (done, total) = counts.split_once('/')?;
    Some((done.parse().ok()?, total.parse().ok()?, rest))
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_lines_in_every_phase_off_a_terminal() {
    let sb = start_sandbox(|c| {
        crate::support::unlimited(c);
        c.faults.latency = Some(Latency::Range(
            Duration::from_millis(20),
            Duration::from_millis(40),
        ));
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let input = generated_csv(dir.path(), 2_000);
    let journal = dir.path().join("j.db");
    let mut cmd = Hfmigrate::new(["import", "--yes", "--mapping", "mappings/generic-csv.yaml"])
        .credentials()
        .command();
    cmd.arg("--input")
        .arg(&input)
        .arg("--journal")
        .arg(&journal);
    cmd.args(["--url", &sb.url, "--schema", "samples/happyfox-schema.json"]);
    cmd.args(["--post-per-min", "600000", "--get-per-min", "600000"]);
    cmd.args(["--reconcile-delay", "0s", "--progress-every", "50ms"]);
    let out: Outcome = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
        .into();
    assert_eq!(out.code, 0, "{out:?}");
    // Progress is on stderr, never mixed into the summary on stdout.
    assert!(!out.stdout.contains("ETA"), "{}", out.stdout);
    // Reading and journaling the export, before the plan: counts and rate (its total is
    // not known until the end).
    let validation = out
        .stderr
        .lines()
        .filter(|l| {
            l.split_once(' ').is_some_and(|(stamp, rest)| {
                stamp.parse::<jiff::Timestamp>().is_ok()
                    && rest.starts_with("validation: ")
                    && rest.contains(" records read and journaled | ")
            })
        })
        .count();
    assert!(validation >= 1, "no validation progress:\n{}", out.stderr);
    for phase in ["tickets", "conversations"] {
        let lines: Vec<_> = out
            .stderr
            .lines()
            .filter_map(|l| progress_line(l, phase))
            .collect();
        // Lines while the phase runs, not only its final line.
        let during = lines.iter().filter(|(done, total, _)| done < total).count();
        assert!(
            during >= 1,
            "no {phase} progress while it ran:\n{}",
            out.stderr
        );
        let (done, total, last) = lines.last().copied().unwrap();
        assert_eq!(done, total, "{phase}: {last}");
        assert!(last.contains("phase took"), "{phase}: {last}");
        for (_, _, rest) in &lines {
            for word in ["failed ", "POST ", "/min", "ETA ", "for the whole run"] {
                assert!(rest.contains(word), "{phase} line lacks {word:?}: {rest}");
            }
        }
        // A bounded rate: the phases take seconds, a line every 50 ms or 5% at most.
        assert!(lines.len() < 200, "{} {phase} lines", lines.len());
    }
    let tickets = out
        .stderr
        .lines()
        .filter_map(|l| progress_line(l, "tickets"))
        .next_back()
        .unwrap();
    assert_eq!(tickets.1, 2_000);
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for (shell, marker, flag) in [
        ("bash", "complete -F", "--retry-failed"),
        ("zsh", "#compdef hfmigrate", "--retry-failed"),
        ("fish", "complete -c hfmigrate", "-l retry-failed"),
    ] {
        let out = hfmigrate(&["completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        assert!(out.stdout.contains(marker), "{shell}: {}", out.stdout);
        // Subcommands and their flags are in it.
        for word in ["dry-run", "mapping-schema", flag] {
            assert!(out.stdout.contains(word), "{shell} lacks {word}");
        }
    }
    // The bash script is valid bash.
    if let Ok(status) = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            let script = hfmigrate(&["completions", "bash"]).stdout;
            child.stdin.take().unwrap().write_all(script.as_bytes())?;
            child.wait()
        })
    {
        assert!(status.success(), "bash -n refused the completion script");
    }
    assert_eq!(hfmigrate(&["completions", "tcsh"]).code, 2);
}

#[test]
fn manual_page_printed_and_written_per_subcommand() {
    let out = hfmigrate(&["man"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with(".ie") || out.stdout.contains(".TH hfmigrate"),
        "{}",
        &out.stdout[..200.min(out.stdout.len())]
    );
    for word in ["import", "dry\\-run", "Exit codes", "\\-\\-quiet"] {
        assert!(out.stdout.contains(word), "man page lacks {word}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Hfmigrate::new(["man", "--out"])
        .command()
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for page in ["hfmigrate.1", "hfmigrate-import.1", "hfmigrate-dry-run.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    let import = std::fs::read_to_string(dir.path().join("hfmigrate-import.1")).unwrap();
    assert!(import.contains("\\-\\-journal"), "{import}");
}

#[test]
fn every_subcommand_has_examples_in_its_long_help_only() {
    let subcommands = [
        "check",
        "dry-run",
        "schema",
        "sandbox",
        "mapping-schema",
        "import",
        "status",
        "results",
        "verify",
        "undo",
        "preflight",
        "init",
        "test",
        "completions",
        "man",
    ];
    for sub in subcommands {
        let long = hfmigrate(&[sub, "--help"]);
        assert_eq!(long.code, 0, "{sub}: {long:?}");
        let example = format!("\n  hfmigrate {sub} ");
        assert!(
            long.stdout.contains("Examples") && long.stdout.contains(&example),
            "{sub} --help:\n{}",
            long.stdout
        );
        let short = hfmigrate(&[sub, "-h"]);
        assert!(
            !short.stdout.contains("Examples"),
            "{sub} -h is the short help"
        );
    }
    // Every subcommand of the binary is in the list above.
    let help = hfmigrate(&["--help"]).stdout;
    let listed: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        // A command's name starts its line; a wrapped description is indented further.
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| *w != "help")
        .collect();
    assert_eq!(listed, subcommands);
}

/// An import of the Zendesk sample into an in-process sandbox with `extra` flags.
fn sandbox_import(dir: &Path, extra: &[&str]) -> Outcome {
    let mut cmd = Hfmigrate::new([
        "import",
        "--sandbox",
        "--yes",
        "--mapping",
        "mappings/zendesk.yaml",
        "--input",
        "samples/zendesk",
        "--progress-every",
        "1ms",
        "--post-per-min",
        "60000",
        "--journal",
    ])
    .command();
    cmd.arg(dir.join("j.db")).args(extra);
    cmd.output().unwrap().into()
}

#[test]
fn quiet_prints_only_the_summary_and_verbose_adds_lines_and_requests() {
    let dir = tempfile::tempdir().unwrap();
    let normal = sandbox_import(dir.path(), &[]);
    assert_eq!(normal.code, 3, "{normal:?}");
    assert!(normal.stdout.contains("import into"), "{normal:?}");
    assert!(normal.stderr.contains(" tickets: "), "{normal:?}");
    // The 2 records rejected by validation are neither this run's work nor its failures.
    let tickets = normal
        .stderr
        .lines()
        .rfind(|l| l.contains(" tickets: "))
        .unwrap();
    assert!(
        tickets.contains(": 22/22 tickets (100%) | failed 0 |"),
        "{tickets}"
    );
    // The sample's two attachments go with their tickets' creates.
    assert!(
        tickets.contains("| files 2 sent, 0 not sent |"),
        "{tickets}"
    );
    assert!(!normal.stdout.contains("requests:"), "{normal:?}");

    let dir = tempfile::tempdir().unwrap();
    let quiet = sandbox_import(dir.path(), &["-q"]);
    assert_eq!(quiet.code, 3, "{quiet:?}");
    assert!(quiet.stdout.contains("this run: 22 created"), "{quiet:?}");
    assert!(!quiet.stdout.contains("import into"), "{quiet:?}");
    assert_eq!(quiet.stderr, "", "quiet means no progress");

    let dir = tempfile::tempdir().unwrap();
    let verbose = sandbox_import(dir.path(), &["--verbose"]);
    assert!(verbose.stdout.contains("requests: "), "{verbose:?}");
    assert!(verbose.stderr.contains(" conversations: "), "{verbose:?}");

    assert_eq!(hfmigrate(&["-q", "-v", "status", "--journal", "x"]).code, 2);
}

#[test]
fn color_follows_the_flag_then_no_color() {
    let missing = ["status", "--journal", "no-such-journal.db"];
    let run = |color: Option<&str>, no_color: bool| {
        let mut h = Hfmigrate::new(missing);
        if no_color {
            h = h.env("NO_COLOR", "1");
        }
        let mut cmd = h.command();
        if let Some(c) = color {
            cmd.args(["--color", c]);
        }
        Outcome::from(cmd.output().unwrap())
    };
    let always = run(Some("always"), true);
    assert_eq!(always.code, 2, "{always:?}");
    assert!(always.stderr.contains("\x1b["), "{always:?}");
    assert!(always.stderr.contains("error:"), "{always:?}");
    for (color, no_color) in [(Some("never"), false), (None, false), (Some("auto"), true)] {
        let out = run(color, no_color);
        assert_eq!(out.code, 2);
        assert!(
            !out.stderr.contains('\x1b'),
            "{color:?} {no_color}: {out:?}"
        );
        assert!(out.stderr.starts_with("error: "), "{out:?}");
    }
    assert_eq!(hfmigrate(&["--color", "sometimes", "check"]).code, 2);
}

fn json(out: &Outcome) -> Value {
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON document on stdout: {out:?}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

#[test]
fn check_json_shape_on_success_and_on_error() {
    let out = hfmigrate(&[
        "check",
        "--mapping",
        "mappings/zendesk.yaml",
        "--schema",
        "samples/happyfox-schema.json",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = json(&out);
    assert_eq!(v["version"], 1);
    assert_eq!(v["command"], "check");
    assert_eq!(v["exit"], 0);
    assert_eq!(v["valid"], true);
    assert_eq!(v["conversation"], true);
    assert!(
        v["schema"]
            .as_str()
            .unwrap()
            .contains("happyfox-schema.json")
    );

    let bad = hfmigrate(&["check", "--mapping", "no-such.yaml", "--json"]);
    assert_eq!(bad.code, 2);
    let v = json(&bad);
    assert_eq!(
        (v["version"].as_u64(), v["exit"].as_u64()),
        (Some(1), Some(2))
    );
    assert!(v["error"].as_str().unwrap().contains("no-such.yaml"), "{v}");
    assert!(
        bad.stderr.contains("no-such.yaml"),
        "the error is on stderr too"
    );
}

#[test]
fn dry_run_json_has_the_texts_counts() {
    let args = [
        "dry-run",
        "--mapping",
        "mappings/zendesk.yaml",
        "--input",
        "samples/zendesk",
        "--schema",
        "samples/happyfox-schema.json",
    ];
    let text = hfmigrate(&args);
    let mut with_json = args.to_vec();
    with_json.push("--json");
    let out = hfmigrate(&with_json);
    assert_eq!(out.code, text.code, "{out:?}");
    let v = json(&out);
    assert_eq!(
        (v["version"].as_u64(), v["command"].as_str()),
        (Some(1), Some("dry-run"))
    );
    let r = &v["records"];
    let line = format!(
        "records: {} read, {} valid, {} rejected, {} skipped",
        r["read"], r["valid"], r["rejected"], r["skipped"]
    );
    assert!(
        text.stdout.contains(&line),
        "{line} not in:\n{}",
        text.stdout
    );
    assert_eq!(r["read"], 25);
    let posts = &v["requests"];
    assert_eq!(posts["bulk_creates"], 1);
    assert_eq!(posts["single_creates"], 2);
    let problems = v["problems"].as_array().unwrap();
    assert!(!problems.is_empty() && problems.iter().all(|p| p["count"].as_u64() > Some(0)));
}

#[test]
fn import_json_is_alone_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = sandbox_import(dir.path(), &["--json"]);
    assert_eq!(out.code, 3, "{out:?}");
    let v = json(&out);
    assert_eq!(
        (v["version"].as_u64(), v["command"].as_str()),
        (Some(1), Some("import"))
    );
    assert_eq!(v["exit"], 3);
    let t = &v["this_run"]["tickets"];
    assert_eq!(t["created"], 22);
    // One vocabulary: the Zendesk sample is one bulk create and two single creates, as
    // the dry run plans it.
    assert_eq!(
        (t["bulk_creates"].as_u64(), t["single_creates"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(v["this_run"]["conversations"]["state"], "posted");
    assert_eq!(v["journal_totals"]["tickets"]["created"], 22);
    assert!(
        out.stderr.contains("import into"),
        "the plan goes to stderr"
    );
}

/// Answering "n" on a terminal: `script` gives the import a terminal for stdin.
#[test]
fn answering_no_leaves_no_new_journal_so_the_same_command_runs_again() {
    if Command::new("script").arg("--version").output().is_err() {
        println!(
            "skipped: `script` (util-linux) is not installed, so no terminal can be given to the prompt"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.db");
    let bin = env!("CARGO_BIN_EXE_hfmigrate");
    let line = format!(
        "{bin} import --sandbox --mapping mappings/zendesk.yaml --input samples/zendesk --journal {}",
        journal.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .current_dir(crate::support::root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    }
    let out: Outcome = child.wait_with_output().unwrap().into();
    assert!(out.stdout.contains("nothing sent"), "{out:?}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
    let again = sandbox_import(dir.path(), &[]);
    assert_eq!(again.code, 3, "the same command runs: {again:?}");
}

#[test]
fn status_totals_count_the_records_the_mapping_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let import = sandbox_import(dir.path(), &[]);
    assert_eq!(import.code, 3, "{import:?}");
    let journal = dir.path().join("j.db");
    let mut cmd = Hfmigrate::new(["status", "--journal"]).command();
    cmd.arg(&journal);
    let status: Outcome = cmd.output().unwrap().into();
    assert_eq!(status.code, 0, "{status:?}");
    // The same 25 records the dry run and the import's plan count.
    assert!(
        status.stdout.contains(
            "records:  25 read: 22 created, 2 failed or rejected, 0 pending, 0 sending, 1 skipped"
        ),
        "{}",
        status.stdout
    );
    let mut cmd = Hfmigrate::new(["status", "--json", "--journal"]).command();
    cmd.arg(&journal);
    let v: Value = serde_json::from_slice(&cmd.output().unwrap().stdout).unwrap();
    assert_eq!(v["records"]["skipped"], 1);
    assert_eq!(v["records"]["read"], 25);
    assert_eq!(
        (v["version"].as_u64(), v["command"].as_str()),
        (Some(1), Some("status"))
    );
}

#[test]
fn dry_run_of_a_big_export_shows_progress_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let input = generated_csv(dir.path(), 20_000);
    let mut cmd = Hfmigrate::new([
        "dry-run",
        "--mapping",
        "mappings/generic-csv.yaml",
        "--schema",
        "samples/happyfox-schema.json",
        "--progress-every",
        "20ms",
        "--input",
    ])
    .command();
    cmd.arg(&input);
    let out: Outcome = cmd.output().unwrap().into();
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| {
            l.split_once(' ').is_some_and(|(stamp, rest)| {
                stamp.parse::<jiff::Timestamp>().is_ok() && rest.starts_with("validation: ")
            })
        })
        .collect();
    assert!(!lines.is_empty(), "no progress lines:\n{}", out.stderr);
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" records read (") && l.contains("records/s")),
        "{lines:?}"
    );
    assert!(
        !out.stdout.contains("records read ("),
        "progress stays off stdout"
    );
}

#[test]
fn sandbox_never_prints_credentials_it_was_given() {
    use std::io::BufRead;
    let mut child = Hfmigrate::new(["sandbox", "--listen", "127.0.0.1:0"])
        .credentials()
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut banner = String::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(banner.contains("credentials: as given"), "{banner}");
    assert!(!banner.contains(crate::support::KEY), "{banner}");
    assert!(!banner.contains(crate::support::CODE), "{banner}");
}
