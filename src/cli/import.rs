//! `hfmigrate import`: the plan, the confirmation, the two phases and what they did.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::account::{import_target, runtime};
use super::args::ImportArgs;
use super::ticker::Ticker;
use super::{Failure, Output, usage};
use crate::client::{Client, ClientOptions};
use crate::exit::Exit;
use crate::import::fetch::{FetchOptions, Fetcher, SourceAuth};
use crate::import::plan::PostPlan;
use crate::import::{self, ConversationOutcome, ImportError, ImportOptions, SendOptions};
use crate::mapping::{self, MappingErrors};
use crate::sandbox::RunningSandbox;

pub(super) fn import(args: ImportArgs, output: Output) -> Result<Exit, Failure> {
    use std::io::IsTerminal;

    if args.dry_run {
        return Err(usage(anyhow::anyhow!(
            "import has no --dry-run: use `hfmigrate dry-run` with the same --mapping and --input (it sends nothing)"
        )));
    }
    let interactive = std::io::stdin().is_terminal();
    if !args.yes && !interactive {
        return Err(usage(anyhow::anyhow!(
            "refusing to import without confirmation: stdin is not a terminal, so nobody can answer the prompt; pass --yes to import without asking"
        )));
    }
    if args.sandbox && args.journal.exists() {
        return Err(usage(anyhow::anyhow!(
            "{} already exists, but an in-process sandbox starts empty every time, so that journal cannot be continued against it; pass a new --journal path (or delete the old one)",
            args.journal.display()
        )));
    }
    import::check_journal_dir(&args.journal).map_err(usage)?;

    let rt = runtime()?;
    {
        // Until sending starts, Ctrl-C exits 4 at once: nothing has been sent.
        let _runtime = rt.enter();
        import::Interrupts::exit_until_sending();
    }
    let options = ClientOptions {
        post_per_min: args.post_per_min.max(1),
        get_per_min: args.get_per_min.max(1),
        lockout: args.lockout,
        ..args.target.network.options(ClientOptions::default())
    };
    // A write of a killed run can land until its attempt's limit: the write timeout
    // plus the connection's, which the client adds around every attempt.
    let write_limit = options.request_timeout + options.connect_timeout;
    let target = import_target(&args, &rt, options)?;
    let schema = Arc::new(target.schema);
    let plan =
        mapping::load(&args.export.mapping, Some(schema.clone())).map_err(Failure::Mapping)?;
    if !args.no_preflight {
        super::preflight::require(import::preflight::check(
            Some(&plan),
            &schema,
            import::preflight::Purpose::Import,
            None,
        ))?;
    }
    let fetcher = fetcher(&args)?;
    let closing_staff = crate::payload::conversation::closing_staff(&plan, &schema);
    let opts = ImportOptions {
        mapping_path: args.export.mapping.clone(),
        inputs: args.export.input.clone(),
        sides: args.export.side.clone(),
        journal_path: args.journal.clone(),
        target_url: target.client.target().account_url(),
        retry_failed: args.retry_failed,
        allow_changes: args.allow_changes,
        adopt: args.adopt,
        read_so_far: Some(Arc::new(AtomicU64::new(0))),
    };
    // With --json, stdout carries the JSON alone; the words go to stderr. With -q they go
    // nowhere unless a confirmation is asked.
    let mut out: Box<dyn Write> = if args.json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let ticker = (!output.quiet)
        .then(|| opts.read_so_far.clone())
        .flatten()
        .map(|read| {
            let describe = move |elapsed: std::time::Duration| {
                let n = read.load(Ordering::Relaxed);
                let rate = n as f64 / elapsed.as_secs_f64().max(0.001);
                format!(
                    "{n} records read and journaled | {rate:.0} records/s | {} so far",
                    crate::duration::format(elapsed)
                )
            };
            Ticker::start("validation", describe, args.progress_every, output)
        });
    let prepared = import::prepare(&plan, schema, &opts);
    drop(ticker);
    let mut prepared = match prepared {
        Ok(p) => p,
        Err(ImportError::Pipeline(crate::pipeline::PipelineError::Mapping(errors))) => {
            let text = std::fs::read_to_string(&args.export.mapping).unwrap_or_default();
            return Err(Failure::Mapping(MappingErrors::new(
                &args.export.mapping,
                &text,
                errors,
            )));
        }
        Err(e) => return Err(Failure::of(e)),
    };

    if let Some(e) = prepared.enqueued {
        // The journal keeps only records it may send or has rejected; `status` adds the
        // ones the mapping's filters skipped, so its total is the export's.
        prepared
            .journal
            .set_note(super::journal::SKIPPED_NOTE, &e.skipped.to_string())
            .map_err(Failure::fatal)?;
    }
    let asking = !args.yes;
    let plan = prepared
        .post_plan(args.batch_size)
        .map_err(Failure::fatal)?;
    let anything_to_send = if output.quiet && !asking {
        print_plan(&mut std::io::sink(), &prepared, plan, &args, &target.label)
    } else {
        print_plan(&mut out, &prepared, plan, &args, &target.label)
    };
    if anything_to_send && asking && !confirm(&target.label) {
        let _ = writeln!(out, "nothing sent");
        cancel(prepared, &args.journal);
        return Ok(Exit::Interrupted);
    }

    let send = SendOptions {
        batch_size: args.batch_size,
        reconcile_delay: if args.sandbox {
            std::time::Duration::ZERO
        } else {
            args.reconcile_delay
        },
        post_per_min: args.post_per_min,
        fetcher: Some(fetcher),
        closing_staff,
        request_timeout: write_limit,
    };
    let display = import::progress::Display {
        every: args.progress_every,
        quiet: output.quiet,
        color: output.color,
        plain: output.verbose,
    };
    let mut progress = import::progress::Progress::with_display(display, send.batch_size);
    let m = prepared.summary.messages;
    progress.expect_messages(m.pending + m.sending);
    let outcome = rt
        .block_on(import::run(prepared, &target.client, &send, &mut progress))
        .map_err(Failure::fatal)?;
    let json = args
        .json
        .then(|| json_outcome(&outcome, &args, &target.label));
    print_outcome(&mut out, &outcome)?;
    if output.verbose {
        let stats = target.client.stats();
        let _ = writeln!(
            out,
            "  requests: {} POST(s), {} GET(s), {} throttled",
            stats.posts_sent, stats.gets_sent, stats.throttled
        );
    }
    print_account(&mut out, &target.client, target.sandbox, &rt);
    let end = outcome.end;
    let steps = print_next_steps(&mut out, outcome, &args);
    if let Some(json) = json
        && steps.is_ok()
    {
        println!("{json}");
    }
    steps?;
    Ok(end.exit())
}

/// Answering "no" to the confirmation: a journal this run created is removed with its
/// side files, so the same command (a `--sandbox` rehearsal in particular, which refuses
/// an existing journal) can be run again as if nothing happened; a journal that existed
/// before keeps everything and records the cancelled run.
fn cancel(mut prepared: import::Prepared, path: &std::path::Path) {
    if prepared.resumed {
        let _ = prepared.journal.finish_run("cancelled");
        return;
    }
    // Closes the database and releases the lock before the files go.
    drop(prepared);
    for suffix in ["", "-wal", "-shm", "-journal", ".lock"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = std::path::PathBuf::from(name);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!(
                "warning: cannot remove {} ({e}); delete it before running the same command again",
                file.display()
            ),
        }
    }
}

/// The `--json` shape of an import (docs/json-output.md).
fn json_outcome(outcome: &import::ImportOutcome, args: &ImportArgs, target: &str) -> String {
    let t = &outcome.tickets;
    let r = outcome.summary.records;
    let m = outcome.summary.messages;
    let (files_sent, files_not_sent) = outcome.files();
    let conversations = match &outcome.conversation {
        ConversationOutcome::Posted(c) => serde_json::json!({
            "state": "posted",
            "posted": c.posted,
            "failed": c.failed,
            "reconciled": c.reconciled,
            "contacts_created": c.contacts_created,
        }),
        ConversationOutcome::Failed(e) => serde_json::json!({
            "state": "failed",
            "error": e.to_string(),
        }),
        ConversationOutcome::Abandoned => serde_json::json!({ "state": "abandoned" }),
        ConversationOutcome::NotStarted => serde_json::json!({ "state": "not_started" }),
    };
    let stop = t.stop.as_ref().map(|s| match s {
        import::Stop::Interrupted => "interrupted".to_owned(),
        import::Stop::Abandoned { .. } => "abandoned".to_owned(),
        import::Stop::Client(e) => format!("client: {e}"),
        import::Stop::Journal(e) => format!("journal: {e}"),
        import::Stop::Internal(e) => format!("internal: {e}"),
    });
    serde_json::json!({
        "version": super::JSON_VERSION,
        "command": "import",
        "exit": outcome.end.exit().code(),
        "target": target,
        "journal": args.journal.display().to_string(),
        "interrupted": outcome.interrupted(),
        "this_run": {
            "tickets": {
                "created": t.created,
                "failed": t.failed,
                "bulk_creates": t.batches - t.single_creates,
                "single_creates": t.single_creates,
                "unknown_batches": t.unknown,
                "found_by_reconciliation": t.found,
                "resent_batches": t.resent,
                "stopped": stop,
            },
            "conversations": conversations,
            "files": { "sent": files_sent, "not_sent": files_not_sent },
        },
        "side_entries_lost": { "count": outcome.side_lost.count, "first": outcome.side_lost.first },
        "journal_totals": {
            "tickets": {
                "created": r.created,
                "failed_or_rejected": r.failed,
                "not_yet_created": r.pending + r.sending,
            },
            "messages": {
                "posted": m.created,
                "failed": m.failed,
                "left": m.pending + m.sending,
            },
        },
    })
    .to_string()
}

/// Attachments and inline images are read from the export's folder (never outside it)
/// or downloaded, with the source's header from the environment.
fn fetcher(args: &ImportArgs) -> Result<Arc<Fetcher>, Failure> {
    let auth = SourceAuth::from_env().map_err(usage)?;
    let root = crate::source::export_root(&args.export.input);
    let options = FetchOptions {
        auth,
        // The in-process sandbox's test files are served over loopback http.
        allow_loopback_http: args.sandbox,
        ..FetchOptions::default()
    };
    let fetcher = Fetcher::new(&root, options).map_err(|e| {
        usage(anyhow::anyhow!(
            "cannot use the export folder {} for attachments: {e}",
            root.display()
        ))
    })?;
    Ok(Arc::new(fetcher))
}

/// What the account (or the sandbox) saw of the run.
fn print_account(
    out: &mut impl Write,
    client: &Client,
    sandbox: Option<RunningSandbox>,
    rt: &tokio::runtime::Runtime,
) {
    let stats = client.stats();
    if stats.throttled > 0 {
        let _ = writeln!(
            out,
            "  HappyFox throttled {} request(s): lower --post-per-min",
            stats.throttled
        );
    }
    if let Some(sb) = sandbox {
        let s = sb.stats();
        let _ = writeln!(
            out,
            "  sandbox: {} tickets, {} requests answered 429",
            s.tickets, s.rate_limited
        );
        let _ = rt.block_on(sb.stop());
    }
}

/// Where to look next, and the error that stopped the run, if any.
fn print_next_steps(
    out: &mut impl Write,
    outcome: import::ImportOutcome,
    args: &ImportArgs,
) -> Result<(), Failure> {
    let (_, files_failed) = outcome.files();
    if outcome.summary.records.failed > 0 || files_failed > 0 {
        let _ = writeln!(
            out,
            "  see what failed: hfmigrate results --journal {} --out results/",
            args.journal.display()
        );
    }
    match outcome.tickets.stop {
        Some(import::Stop::Client(e)) => {
            // A key or URL HappyFox refuses is configuration (exit 2), said once.
            return Err(Failure::of(e).context(
                "import stopped; nothing is lost: the journal has every outcome, so run the same command again once this is fixed",
            ));
        }
        Some(import::Stop::Journal(e)) => {
            // Said as the run's other journal failures are: the path, the cause once, and
            // what to do (the cause's own text would repeat SQLite's two phrasings).
            return Err(Failure::fatal(anyhow::anyhow!(
                "the journal {} could not be written ({}), so the import stopped before sending anything it could not record; batches in flight are reconciled by the next run: free disk space (or fix the file's permissions) and run the same command again",
                args.journal.display(),
                e.cause()
            )));
        }
        Some(import::Stop::Internal(e)) => {
            return Err(Failure::fatal(anyhow::anyhow!(
                "import stopped: {e}; run the same command again to continue"
            )));
        }
        _ if outcome.interrupted() => {
            let _ = writeln!(
                out,
                "interrupted: run the same command again to continue where it stopped"
            );
        }
        _ => {}
    }
    Ok(())
}

/// The plan before confirmation: what will be sent and how long it takes at the ceiling.
/// Whether there is anything to send at all.
fn print_plan(
    out: &mut impl Write,
    prepared: &import::Prepared,
    plan: PostPlan,
    args: &ImportArgs,
    label: &str,
) -> bool {
    let r = prepared.summary.records;
    let posts = plan;
    let _ = writeln!(out, "import into {}", label);
    let _ = writeln!(
        out,
        "  journal {} ({})",
        args.journal.display(),
        if prepared.resumed { "resumed" } else { "new" }
    );
    for c in &prepared.changes {
        let _ = writeln!(out, "  note: {c}");
    }
    match prepared.enqueued {
        Some(e) => {
            let _ = writeln!(
                out,
                "  validated {} records: {} valid, {} rejected, {} skipped",
                e.read, e.valid, e.rejected, e.skipped
            );
            if e.entries_keyed_by_hash {
                let _ = writeln!(
                    out,
                    "  warning: the mapping's conversation has no `id:`, so entries are known by a hash of their time, author and text; in a delta run an entry edited in the old helpdesk is posted again as new (give `conversation.id` the export's comment id to avoid it)"
                );
            }
            if e.run.delta > 0 {
                let d = e.run;
                let _ = writeln!(
                    out,
                    "  delta {} (a newer export of the same mapping): {} new ticket(s), {} new entr{} on tickets already imported ({} older than an entry already posted: posted last, with their original time), {} state update(s)",
                    d.delta,
                    d.new_tickets,
                    d.new_entries,
                    if d.new_entries == 1 { "y" } else { "ies" },
                    d.out_of_order,
                    d.state_updates
                );
                if d.removed + d.changed + d.deleted > 0 {
                    let _ = writeln!(
                        out,
                        "  reported, not applied (HappyFox keeps what it has): {} entr{} removed and {} changed in the source, {} record(s) deleted there; `hfmigrate status` lists them",
                        d.removed,
                        if d.removed == 1 { "y" } else { "ies" },
                        d.changed,
                        d.deleted
                    );
                }
            }
        }
        None => {
            let _ = writeln!(
                out,
                "  mapping and inputs unchanged since the journal recorded them: not read again"
            );
        }
    }
    if prepared.requeued + prepared.requeued_messages > 0 {
        let _ = writeln!(
            out,
            "  --retry-failed: {} failed record(s) and {} failed message(s) queued again",
            prepared.requeued, prepared.requeued_messages
        );
    }
    let _ = writeln!(
        out,
        "  tickets: {} to create, {} already created, {} failed or rejected{}",
        r.pending + r.sending,
        r.created,
        r.failed,
        if prepared.summary.batches.sending > 0 {
            format!(
                ", {} batch(es) from an earlier run to reconcile first",
                prepared.summary.batches.sending
            )
        } else {
            String::new()
        }
    );
    let about = |n: u64| {
        let secs = (n * 60).div_ceil(u64::from(args.post_per_min.max(1)));
        crate::duration::format(std::time::Duration::from_secs(secs))
    };
    let uploads = if posts.inline_uploads > 0 {
        format!(
            ", and {} inline image upload(s) for them and their conversations",
            posts.inline_uploads
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  {} bulk create(s) of up to {} tickets, {} single create(s) of tickets with files{uploads}",
        posts.bulk_creates, args.batch_size, posts.single_creates,
    );
    let m = prepared.summary.messages;
    if posts.messages > 0 || m.created > 0 {
        let _ = writeln!(
            out,
            "  conversations: {} message(s) to post after creation (replies, notes, final states), {} already posted: about {}",
            posts.messages,
            m.created,
            about(posts.messages)
        );
        if posts.transcripts > 0 {
            let full = posts.messages - posts.transcripts;
            let _ = writeln!(
                out,
                "    by history mode: {} transcript note(s) (`history: transcript`, one per ticket, its final state included): about {}; {} other message(s): about {}",
                posts.transcripts,
                about(posts.transcripts),
                full,
                about(full)
            );
        }
    }
    let _ = writeln!(
        out,
        "  POSTs: {} in all, at {} POST/min: about {}",
        posts.total(),
        args.post_per_min,
        about(posts.total())
    );
    posts.total() > 0
}

/// What this run did, phase by phase, and what the journal holds now.
fn print_outcome(out: &mut impl Write, outcome: &import::ImportOutcome) -> Result<(), Failure> {
    let report = &outcome.tickets;
    let r = outcome.summary.records;
    let _ = writeln!(
        out,
        "this run: {} created, {} failed, in {} bulk create(s) and {} single create(s); journal: {} created, {} failed or rejected, {} not yet created",
        report.created,
        report.failed,
        report.batches - report.single_creates,
        report.single_creates,
        r.created,
        r.failed,
        r.pending + r.sending
    );
    let lost = &outcome.side_lost;
    if lost.count > 0 {
        let _ = writeln!(
            out,
            "side files: {} {} no ticket (unreadable, without a key, or for a ticket not exported); the dry run's report lists them all:",
            lost.count,
            if lost.count == 1 {
                "entry of the export reaches"
            } else {
                "entries of the export reach"
            }
        );
        for line in &lost.first {
            let _ = writeln!(out, "  {line}");
        }
    }
    let findings = &outcome.delta_findings;
    if !findings.is_empty() {
        let differ = findings
            .iter()
            .filter(|f| f.kind.leaves_a_difference())
            .count();
        let _ = writeln!(
            out,
            "newer exports: {} change(s) reported, not applied (HappyFox cannot edit or delete an update); {differ} leave HappyFox differing from the export{}:",
            findings.len(),
            if differ > 0 { " (exit 3)" } else { "" }
        );
        for f in findings.iter().take(10) {
            let _ = writeln!(
                out,
                "  {} entry {}: {}: {}",
                f.ticket, f.entry, f.kind, f.detail
            );
        }
        if findings.len() > 10 {
            let _ = writeln!(
                out,
                "  … and {} more (`hfmigrate status --journal J` lists them all)",
                findings.len() - 10
            );
        }
    }
    let (files_sent, files_failed) = outcome.files();
    if files_sent + files_failed > 0 {
        let _ = writeln!(
            out,
            "attachments: {files_sent} file(s) sent, {files_failed} not sent (listed in `hfmigrate results` under stage attachment)"
        );
    }
    let m = outcome.summary.messages;
    match &outcome.conversation {
        ConversationOutcome::Posted(c) => {
            let _ = writeln!(
                out,
                "conversations: {} message(s) posted, {} failed, {} reconciled after an unknown outcome, {} contact(s) created; journal: {} posted, {} left",
                c.posted,
                c.failed,
                c.reconciled,
                c.contacts_created,
                m.created,
                m.pending + m.sending
            );
        }
        ConversationOutcome::Failed(e) => {
            let exit = match e {
                import::replies::RepliesError::Client(c) => crate::exit::Classify::exit(c),
                _ => Exit::Fatal,
            };
            return Err(Failure::Error {
                exit,
                error: anyhow::anyhow!(
                    "posting conversations stopped: {e}; nothing is lost: run the same command again once this is fixed"
                ),
            });
        }
        ConversationOutcome::Abandoned => {
            let _ = writeln!(out, "conversations: abandoned on a second Ctrl-C");
        }
        ConversationOutcome::NotStarted => {}
    }
    if report.unknown > 0 {
        let _ = writeln!(
            out,
            "  {} batch(es) of unknown outcome reconciled: {} ticket(s) found in HappyFox, {} batch(es) sent again",
            report.unknown, report.found, report.resent
        );
    }
    Ok(())
}

/// Asks on the terminal; anything but yes is no.
pub(super) fn confirm(target: &str) -> bool {
    eprint!("create these tickets in {target}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
