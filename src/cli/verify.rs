//! `hfmigrate verify`: read the created tickets back, compare them field by field with
//! what the import sent, and render the result (stdout, `--json`, `--report DIR`).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use super::account::runtime;
use super::args::VerifyArgs;
use super::{Failure, usage};
use crate::client::{Client, ClientOptions, Credentials, Target};
use crate::exit::Exit;
use crate::import::verify::{self, Export, FieldOptions, FieldSummary, VerifyError};

/// How often a running verify says how far it is.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

pub(super) fn verify(args: &VerifyArgs) -> Result<Exit, Failure> {
    let mut journal = crate::journal::Journal::open_for_verify(&args.journal).map_err(usage)?;
    let url = match &args.url {
        Some(u) => u.clone(),
        None => {
            journal
                .summary()
                .context("cannot read the journal summary")?
                .target_url
        }
    };
    let credentials = Credentials::from_env().map_err(usage)?;
    let target = Target::parse(&url).map_err(usage)?;
    let get_per_min = args.get_per_min.max(1);
    let options = ClientOptions {
        get_per_min,
        ..ClientOptions::default()
    };
    let client = Client::new(target, credentials, options).map_err(usage)?;
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let opts = FieldOptions {
        sample: args.sample,
        seed: args.seed,
        get_per_min,
    };
    let rt = runtime()?;
    let export = match &args.mapping {
        Some(mapping) => Some(export(args, mapping, &rt, &client)?),
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let ran = rt.block_on(async {
        let flag = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::Relaxed);
            }
        });
        let interrupted = || stop.load(Ordering::Relaxed);
        // A line on stderr every 10 s, so a long verify shows it is reading and how long
        // it still needs at the ceiling.
        let last = std::sync::Mutex::new(std::time::Instant::now());
        let progress = |p: verify::VerifyProgress| {
            let Ok(mut last) = last.lock() else { return };
            if last.elapsed() < PROGRESS_EVERY || p.compared == p.total {
                return;
            }
            *last = std::time::Instant::now();
            let left = (p.total - p.compared) * 60 / u64::from(get_per_min);
            eprintln!(
                "verify: {} of {} tickets compared, {} differ; about {} left at {} GET/min",
                p.compared,
                p.total,
                p.differing,
                crate::duration::format(std::time::Duration::from_secs(left)),
                get_per_min
            );
        };
        verify::verify_fields(
            &mut journal,
            &client,
            opts,
            export.as_ref(),
            scratch.path(),
            &interrupted,
            &progress,
        )
        .await
    });
    let s = match ran {
        Ok(s) => s,
        Err(VerifyError::Client(e)) => {
            return Err(Failure::of(e).context("cannot read the tickets"));
        }
        Err(e) => return Err(Failure::of(e)),
    };
    if let Some(dir) = &args.report {
        write_report(dir, &s)?;
    }
    let exit = Exit::done_unless(!s.is_clean());
    let mut out = std::io::stdout().lock();
    if args.json {
        // The keys every command's `--json` carries (docs/json-output.md), on one line.
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            #[serde(flatten)]
            summary: &'a crate::import::verify::FieldSummary,
            command: &'static str,
            exit: u8,
        }
        let doc = Doc {
            summary: &s,
            command: "verify",
            exit: exit.code(),
        };
        let _ = writeln!(out, "{}", serde_json::to_string(&doc).unwrap_or_default());
    } else {
        let _ = out.write_all(render(&s).as_bytes());
        if let Some(dir) = &args.report {
            let _ = writeln!(out, "report: {}", dir.join("verify.html").display());
        }
    }
    Ok(exit)
}

/// The export of `--input` and the mapping that reads it, with the account's schema
/// (a snapshot with `--schema`, else read from the account: a few GETs).
fn export(
    args: &VerifyArgs,
    mapping: &std::path::Path,
    rt: &tokio::runtime::Runtime,
    client: &Client,
) -> Result<Export, Failure> {
    let schema = match &args.schema {
        Some(path) => crate::schema::Schema::load(path).map_err(usage)?,
        None => rt
            .block_on(crate::client::pull_schema(client))
            .map_err(|e| Failure::of(e).context("cannot read the account's schema"))?,
    };
    let schema = Arc::new(schema);
    let plan = crate::mapping::load(mapping, Some(schema.clone())).map_err(Failure::Mapping)?;
    Ok(Export {
        plan,
        schema,
        inputs: args.input.clone(),
        sides: args.side.clone(),
    })
}

fn write_report(dir: &std::path::Path, s: &FieldSummary) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the report folder {}", dir.display()))?;
    let html = verify::html::render(s).context("cannot render verify.html")?;
    let path = dir.join("verify.html");
    std::fs::write(&path, html).with_context(|| format!("cannot write {}", path.display()))?;
    let path = dir.join("verify.json");
    let json = serde_json::to_string_pretty(s).context("cannot encode verify.json")?;
    std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The stdout summary: markers, one line per field, then every difference.
fn render(s: &FieldSummary) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let m = &s.markers;
    let _ = writeln!(
        o,
        "read {} tickets from {}; the journal lists {} created: {} verified",
        m.tickets_read, s.target, m.created, m.ok
    );
    for id in &m.missing {
        let _ = writeln!(o, "  missing: {id} (no ticket carries its marker)");
    }
    for (id, tickets) in &m.duplicated {
        let _ = writeln!(o, "  duplicated: {id} is on tickets {tickets:?}");
    }
    for (id, journal_id, found) in &m.other_id {
        let _ = writeln!(
            o,
            "  different ticket: {id} is ticket {found}, the journal says {journal_id}"
        );
    }
    for (marker, ticket) in &m.unexpected {
        let _ = writeln!(
            o,
            "  not in the journal as created: ticket {ticket} carries marker {marker}"
        );
    }
    if let Some(src) = &s.source {
        let _ = writeln!(
            o,
            "export re-rendered through the mapping: {} record(s), {} valid, {} rejected and {} skipped by the mapping (`hfmigrate results` lists the rejected ones); {} valid record(s) are not created tickets",
            src.records,
            src.valid,
            src.rejected,
            src.skipped,
            src.not_created.len()
        );
        for n in &src.not_created {
            let _ = writeln!(
                o,
                "  not created: {} ({}); run `hfmigrate import` with this journal to send it",
                n.source_id, n.location
            );
        }
        for id in &src.rendered_differently {
            let _ = writeln!(
                o,
                "  rendered differently: {id} renders otherwise now than the journal holds (mapping or export changed after the import); HappyFox is compared with the new rendering"
            );
        }
    }
    let which = match s.sample {
        Some(sample) => format!(
            "a random {} of {} created tickets (seed {}; --sample {} --seed {} compares the same ones)",
            s.compared, s.created, sample.seed, sample.size, sample.seed
        ),
        None => format!("{} of {} created tickets", s.compared, s.created),
    };
    let resumed = if s.resumed > 0 {
        format!(" ({} compared by the earlier, stopped verify)", s.resumed)
    } else {
        String::new()
    };
    let _ = writeln!(
        o,
        "compared {which} field by field{resumed}: {} match in every field",
        s.matching
    );
    for f in &s.fields {
        let later = if f.changed_after_import > 0 {
            format!(", {} changed after the import", f.changed_after_import)
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "  {:<32} {:>5.1}%  ({}/{}{later})",
            f.field, f.percent, f.matched, f.checked
        );
    }
    for t in &s.differing {
        let _ = writeln!(
            o,
            "{} (ticket {} {}):",
            t.source_id, t.ticket_id, t.display_id
        );
        if let Some(why) = &t.unreadable {
            let _ = writeln!(o, "  {why}");
        }
        for c in t.checks.iter().filter(|c| !c.ok) {
            let by = c
                .changed_after_import_by
                .as_ref()
                .map(|b| format!(" [changed after the import by {b}]"))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  {} differs{by}: source {:?}, HappyFox {:?}",
                c.field,
                c.expected.as_deref().unwrap_or_default(),
                c.actual.as_deref().unwrap_or_default()
            );
        }
        for c in &t.changes_after_import {
            let _ = writeln!(o, "  after the import: {c}");
        }
    }
    if s.messages_marked_missing > 0 {
        let _ = writeln!(
            o,
            "{} posted message(s) are missing from HappyFox and are marked in the journal: the next `hfmigrate import` with the same journal posts them (once)",
            s.messages_marked_missing
        );
    }
    let _ = writeln!(
        o,
        "a full verify of {} tickets takes about {} at {} GET/min",
        s.created,
        crate::duration::format(std::time::Duration::from_secs(s.full_verify_seconds)),
        s.get_per_min
    );
    o
}
