//! `hfmigrate undo`: the plan, the confirmation, the deletions and what is left.

use std::io::Write;

use super::account::{pull, runtime};
use super::args::UndoArgs;
use super::{Failure, usage};
use crate::client::{Client, ClientOptions, Credentials, Target};
use crate::exit::Exit;
use crate::import::preflight::{self, Purpose};
use crate::import::send::Interrupts;
use crate::import::undo::{self, UndoOptions, UndoReport};
use crate::journal::Journal;

/// Tickets read back and deleted at once; the client's pacing keeps the ceilings.
const CONCURRENCY: usize = 4;

pub(super) fn undo(args: &UndoArgs) -> Result<Exit, Failure> {
    use std::io::IsTerminal;

    if !args.yes && !std::io::stdin().is_terminal() {
        return Err(usage(anyhow::anyhow!(
            "refusing to delete tickets without confirmation: stdin is not a terminal, so nobody can answer the prompt; pass --yes to delete without asking"
        )));
    }
    let mut journal = Journal::open_for_undo(&args.journal).map_err(usage)?;
    let recorded = journal.target_url().map_err(Failure::fatal)?;
    let target = Target::parse(&recorded).map_err(usage)?;
    if let Some(url) = &args.url {
        let given = Target::parse(url).map_err(usage)?;
        if given.account_url() != target.account_url() {
            return Err(usage(anyhow::anyhow!(
                "{} created its tickets in {}, not {}; ticket numbers belong to one account, so undo only deletes in the journal's (drop --url)",
                args.journal.display(),
                target.account_url(),
                given.account_url()
            )));
        }
    }
    let credentials = Credentials::from_env().map_err(usage)?;
    let options = ClientOptions {
        post_per_min: args.post_per_min.max(1),
        get_per_min: args.get_per_min.max(1),
        ..ClientOptions::default()
    };
    let client = Client::new(target, credentials, options).map_err(usage)?;
    let url = client.target().account_url();
    let rt = runtime()?;
    let schema = rt.block_on(pull(&client))?;
    let check = preflight::check(None, &schema, Purpose::Undo, args.staff.as_deref());
    // With --json, stdout carries only the summary.
    let mut plan: Box<dyn Write> = if args.json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    super::preflight::render(&mut plan, &check, &url);
    let staff_id = check.acting.as_ref().map(|a| a.id);
    super::preflight::require(check)?;
    let Some(staff_id) = staff_id else {
        return Err(Failure::fatal(anyhow::anyhow!(
            "the pre-flight chose no agent to act as"
        )));
    };

    let count = journal.created_count().map_err(Failure::fatal)?;
    let _ = writeln!(
        plan,
        "undo {}: {count} ticket(s) this journal created in {url} will be read back and deleted if they still carry their marker",
        args.journal.display()
    );
    let secs = (count * 60).div_ceil(u64::from(args.post_per_min.max(1)));
    let _ = writeln!(
        plan,
        "  {count} delete(s) at {} POST/min: about {}",
        args.post_per_min,
        crate::duration::format(std::time::Duration::from_secs(secs))
    );
    if count > 0 && !args.yes && !confirm(count, &url) {
        let _ = writeln!(plan, "nothing deleted");
        let _ = journal.finish_run("undo_cancelled");
        return Ok(Exit::Interrupted);
    }
    drop(plan);
    let opts = UndoOptions {
        staff_id,
        concurrency: CONCURRENCY,
    };
    let report = rt
        .block_on(async { undo::undo(journal, &client, &opts, Interrupts::ctrl_c(&client)).await })
        .map_err(Failure::of)?;
    if args.json {
        print_json(args, &url, staff_id, &report);
    } else {
        print_report(args, &report);
    }
    Ok(report.exit())
}

fn print_json(args: &UndoArgs, url: &str, staff_id: u64, report: &UndoReport) {
    #[derive(serde::Serialize)]
    struct Summary<'a> {
        version: u32,
        command: &'static str,
        exit: u8,
        journal: String,
        account: &'a str,
        staff_id: u64,
        #[serde(flatten)]
        report: &'a UndoReport,
    }
    let summary = Summary {
        version: 1,
        command: "undo",
        exit: report.exit().code(),
        journal: args.journal.display().to_string(),
        account: url,
        staff_id,
        report,
    };
    match serde_json::to_string(&summary) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot encode the summary: {e}"),
    }
}

fn print_report(args: &UndoArgs, r: &UndoReport) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "this run: {} deleted, {} already gone, {} skipped, {} failed; journal: {} still created",
        r.deleted,
        r.already_gone,
        r.skipped.len(),
        r.failed.len(),
        r.left_created
    );
    for t in &r.skipped {
        let _ = writeln!(
            out,
            "  skipped: {} (ticket {} {}): {}",
            t.source_id, t.ticket, t.display_id, t.reason
        );
    }
    for t in &r.failed {
        let _ = writeln!(
            out,
            "  failed: {} (ticket {} {}): {}",
            t.source_id, t.ticket, t.display_id, t.reason
        );
    }
    if !r.unknown.is_empty() {
        let _ = writeln!(
            out,
            "  {} record(s) of a batch whose answer was never seen could not be searched for by marker, so their tickets (if any) are left: {}; check HappyFox by hand",
            r.unknown.len(),
            r.unknown.join(", ")
        );
    }
    if !r.contacts.is_empty() {
        let _ = writeln!(
            out,
            "  {} contact(s) the import created or used remain (HappyFox's API cannot delete contacts; remove the rehearsal's by hand): {}",
            r.contacts.len(),
            r.contacts.join(", ")
        );
    }
    if let Some(e) = &r.stopped {
        let _ = writeln!(
            out,
            "stopped: {e}; every deletion so far is journaled: run the same command again once this is fixed"
        );
    } else if r.interrupted {
        let _ = writeln!(
            out,
            "interrupted: run the same command again to continue where it stopped"
        );
    } else if r.deleted + r.already_gone > 0 {
        let _ = writeln!(
            out,
            "  hfmigrate import with the same --journal {} creates these tickets again",
            args.journal.display()
        );
    }
}

/// Asks on the terminal; anything but yes is no.
fn confirm(count: u64, url: &str) -> bool {
    eprint!("delete {count} ticket(s) from {url}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
