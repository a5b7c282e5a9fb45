//! README.md's commands are part of the product: a newcomer copies them. Two checks keep
//! them true: the rehearsal block runs as written, against a real sandbox, with each
//! line's exit code as the README states it; and every `hfmigrate` line in any `sh` block
//! names a subcommand and flags the built binary accepts.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use crate::support::{Hfmigrate, root};

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).expect("README.md reads")
}

/// The fenced `sh` blocks of `text`, each with the heading it sits under.
fn sh_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut heading = String::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match current.as_mut() {
            Some(block) if line.trim_start().starts_with("```") => {
                blocks.push((heading.clone(), std::mem::take(block)));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None if line.trim_start().starts_with("```sh") => current = Some(String::new()),
            None if line.starts_with('#') => heading = line.trim_start_matches('#').trim().into(),
            None => {}
        }
    }
    blocks
}

/// The exit code a README line promises: `# exits N` in its comment, else 0.
fn expected_exit(line: &str) -> i32 {
    line.split_once("# exits ")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}

/// A port nobody listens on at the moment; the sandbox binds it a moment later.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// The rehearsal block as a script that stops at the first line whose exit code is not
/// the one the README gives, naming it.
fn checked_script(block: &str, port: u16) -> String {
    let mut script = String::from("set -u\n");
    for (n, line) in block.lines().enumerate() {
        let line = line.replace("8765", &port.to_string());
        let command = line.split(" # ").next().unwrap_or("").trim();
        if command.is_empty() || command.starts_with('#') {
            continue;
        }
        script.push_str(&line);
        script.push('\n');
        if command.ends_with('&') || command.starts_with("export ") {
            continue;
        }
        let expected = expected_exit(&line);
        script.push_str(&format!(
            "rc=$?; if [ $rc -ne {expected} ]; then echo \"README rehearsal line {}: exit $rc, the README says {expected}: {}\" >&2; kill %1 2>/dev/null; exit 1; fi\n",
            n + 1,
            command.replace('"', "'"),
        ));
    }
    script
}

#[test]
fn the_rehearsal_block_runs_as_written() {
    let text = readme();
    let (_, block) = sh_blocks(&text)
        .into_iter()
        .find(|(heading, _)| heading == "Rehearsal against the sandbox")
        .expect("README has a rehearsal block under its heading");
    let dir = tempfile::tempdir().expect("a temp dir");
    for shared in ["mappings", "samples"] {
        std::os::unix::fs::symlink(root().join(shared), dir.path().join(shared))
            .expect("link the repository's folder");
    }
    let binary = Path::new(env!("CARGO_BIN_EXE_hfmigrate"));
    let path = format!(
        "{}:{}",
        binary.parent().expect("the binary's folder").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(checked_script(&block, free_port()))
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("HAPPYFOX_URL")
        .env_remove("HAPPYFOX_API_KEY")
        .env_remove("HAPPYFOX_AUTH_CODE")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the rehearsal failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let success = std::fs::read_to_string(dir.path().join("rehearsal/results/success.csv"))
        .expect("results wrote success.csv");
    assert_eq!(
        success.lines().count(),
        1 + 22,
        "header and the 22 valid tickets"
    );
    assert!(
        stdout.contains("this run: 0 created"),
        "the second import sent nothing:\n{stdout}"
    );
    assert!(
        dir.path().join("rehearsal/report/report.html").is_file(),
        "the dry run wrote its report"
    );
}

/// `hfmigrate a b --x ... --y` → (["a", "b"], ["--x", "--y"]): the subcommand path and
/// the long flags of one README line.
fn command_and_flags(line: &str) -> Option<(Vec<String>, Vec<String>)> {
    let line = line.split(" # ").next()?;
    let args = if let Some((_, rest)) = line.split_once("cargo run --release -- ") {
        rest
    } else {
        line.trim_start().strip_prefix("hfmigrate ")?
    };
    // The shell's part of the line (a redirection, a pipe, `&`) is not hfmigrate's.
    let args = args.split(['>', '|', '&', ';']).next().unwrap_or(args);
    let mut words = args.split_whitespace();
    let mut command = Vec::new();
    let mut flags = Vec::new();
    for word in words.by_ref() {
        if word.starts_with('-') {
            flags.push(word.to_string());
            break;
        }
        command.push(word.to_string());
    }
    flags.extend(
        words
            .filter(|w| w.starts_with("--"))
            .map(|w| w.split('=').next().unwrap_or(w).to_string()),
    );
    flags.retain(|f| f.starts_with("--") && f != "--help");
    Some((command, flags))
}

/// `flag` appears in `help` as a whole flag, not as the start of a longer one.
fn has_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(at, _)| {
        !help[at + flag.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
    })
}

#[test]
fn every_readme_command_names_flags_the_binary_has() {
    let text = readme();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (heading, block) in sh_blocks(&text) {
        for line in block.lines() {
            let Some((command, flags)) = command_and_flags(line) else {
                continue;
            };
            let help = Hfmigrate::new(command.iter().map(String::as_str).chain(["--help"])).run();
            if help.code != 0 {
                wrong.push(format!(
                    "[{heading}] {line}: `{}` is no command",
                    command.join(" ")
                ));
                continue;
            }
            for flag in flags {
                if !has_flag(&help.stdout, &flag) {
                    wrong.push(format!("[{heading}] {line}: {flag} is not a flag of it"));
                }
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 10,
        "the README's commands were found ({checked})"
    );
    assert!(
        wrong.is_empty(),
        "README commands the binary refuses:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checker_catches_a_stale_flag() {
    let (command, flags) =
        command_and_flags("hfmigrate import --mapping m.yaml --journal-path x  # note")
            .expect("a command line");
    assert_eq!(command, ["import"]);
    assert_eq!(flags, ["--mapping", "--journal-path"]);
    let help = Hfmigrate::new(["import", "--help"]).run();
    assert!(!has_flag(&help.stdout, "--journal-path"));
    assert!(has_flag(&help.stdout, "--journal"));
    assert!(!has_flag("--output-dir", "--output"));
    let (command, flags) =
        command_and_flags("hfmigrate completions bash > ~/x/hfmigrate   # or zsh").unwrap();
    assert_eq!(
        (command, flags),
        (vec!["completions".to_string(), "bash".into()], vec![])
    );
    assert_eq!(expected_exit("hfmigrate x   # exits 3: two invalid"), 3);
    assert_eq!(expected_exit("hfmigrate x"), 0);
}
