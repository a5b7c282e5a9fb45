//! `report.html` in a real browser (issue 13): the page a migration lead forwards must open
//! from disk, offline, with the totals `report.json` has, and without a script error. A
//! string search of the file cannot tell that; headless Chromium can.
//!
//! Skipped with a reason when `/usr/bin/chromium` is absent, unless
//! `HFMIGRATE_REQUIRE_BROWSER=1` (CI sets it once it has installed the browser).
#![cfg(unix)]

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Hfmigrate;

const CHROMIUM: &str = "/usr/bin/chromium";
/// A browser that hangs must not hang the suite.
const BROWSER_LIMIT: Duration = Duration::from_secs(60);

/// The browser, or `None` after saying why the test is skipped.
fn chromium() -> Option<&'static Path> {
    let path = Path::new(CHROMIUM);
    if path.is_file() {
        return Some(path);
    }
    let required = std::env::var_os("HFMIGRATE_REQUIRE_BROWSER").is_some_and(|v| v == "1");
    assert!(
        !required,
        "HFMIGRATE_REQUIRE_BROWSER=1 but {CHROMIUM} is absent (apt-get install chromium)"
    );
    eprintln!(
        "skipped: {CHROMIUM} is absent, so report.html is not opened in a browser (apt-get install chromium; HFMIGRATE_REQUIRE_BROWSER=1 makes this a failure)"
    );
    None
}

/// What one headless Chromium run printed.
struct BrowserRun {
    stdout: String,
    stderr: String,
}

/// Chromium on `page` with `args`, a fresh profile, nothing fetched in the background,
/// and its console on stderr; killed with its helpers after [`BROWSER_LIMIT`].
fn run_chromium(browser: &Path, page: &Path, args: &[String], work: &Path) -> BrowserRun {
    let profile = tempfile::tempdir_in(work).expect("a profile directory");
    // Files rather than pipes: the browser's helpers inherit its output and may outlive it,
    // and a pipe they hold open would block the read.
    let out_path = work.join("chromium.stdout");
    let err_path = work.join("chromium.stderr");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        // Its own process group, so that a hung browser is killed with its helpers.
        .process_group(0)
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("chromium's status").is_some() {
            break;
        }
        if started.elapsed() > BROWSER_LIMIT {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
            panic!(
                "chromium {args:?} did not finish within {BROWSER_LIMIT:?}; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    BrowserRun {
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// Lines where the page's console spoke: an uncaught exception, or any console message
/// (the page has no script, so one means a resource it tried to load or a broken script).
fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("Uncaught") || l.contains(":CONSOLE"))
        .collect()
}

/// The lines Chromium 156 writes for `console.error("boom"); throw new Error("x")`, and
/// the older `CONSOLE(1)` form: the check must see both without a browser at hand.
#[test]
fn console_lines_are_recognised() {
    let stderr = "[1:1:1203/142810.994303:INFO:CONSOLE:1] \"boom\", source: file:///r.html (1)\n\
                  [1:1:1203/142811.000992:INFO:CONSOLE:1] \"Uncaught Error: x\", source: file:///r.html (1)\n\
                  [1:1:0101/000000.000000:INFO:CONSOLE(7)] \"old\", source: file:///r.html (7)\n\
                  [1:9:1203/142811.1:ERROR:bus.cc(407)] Failed to connect to the bus\n";
    assert_eq!(console_errors(stderr).len(), 3);
}

/// The text of the element with `id` in a DOM dump: `<span … id="count-read">30</span>`.
fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\">");
    let start = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no element {id} in the DOM:\n{dom}"))
        + marker.len();
    let rest = &dom[start..];
    &rest[..rest.find('<').unwrap_or(rest.len())]
}

#[test]
fn report_html_shows_the_totals_in_a_real_browser() {
    let Some(browser) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let r = Hfmigrate::new([
        "dry-run",
        "--mapping",
        "mappings/generic-csv.yaml",
        "--schema",
        "samples/happyfox-schema.json",
        "--input",
        "samples/generic-csv/",
        "--report",
        report.to_str().unwrap(),
    ])
    .run();
    // The sample has rejects on purpose: exit 3.
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let page = report.join("report.html");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("report.json")).unwrap())
            .unwrap();

    let dump = run_chromium(browser, &page, &["--dump-dom".to_string()], dir.path());
    let dom = &dump.stdout;
    assert!(
        dom.contains("</html>"),
        "no DOM dumped; stderr:\n{}",
        dump.stderr
    );
    for key in ["read", "valid", "rejected", "skipped"] {
        assert_eq!(
            text_of(dom, &format!("count-{key}")),
            json["counts"][key].to_string(),
            "{key}"
        );
    }
    assert_eq!(text_of(dom, "percent-valid"), "70%", "21 of 30");
    let top_category = json["breakdowns"]["category"]["values"][0]["value"]
        .as_str()
        .expect("a category breakdown in report.json");
    assert!(dom.contains(top_category), "{top_category} not shown");
    assert!(
        dom.contains("href=\"rejects.csv\""),
        "rejects.csv is linked"
    );
    assert!(dom.contains("<h2>Coverage</h2>"));
    let errors = console_errors(&dump.stderr);
    assert!(errors.is_empty(), "console: {errors:#?}");

    let png = dir.path().join("report.png");
    let shot = run_chromium(
        browser,
        &page,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,2000".to_string(),
        ],
        dir.path(),
    );
    let size = std::fs::metadata(&png)
        .unwrap_or_else(|e| panic!("no screenshot ({e}); stderr:\n{}", shot.stderr))
        .len();
    // A blank 1280×2000 page compresses to a few kB; the report's text and tables do not.
    assert!(size > 20_000, "screenshot of {size} bytes: blank?");
    let errors = console_errors(&shot.stderr);
    assert!(errors.is_empty(), "console: {errors:#?}");
}
