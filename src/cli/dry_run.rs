//! `hfmigrate dry-run`: validate everything and report, sending nothing.

use std::io::Write;
use std::sync::Arc;

use super::account::{client_for, pull, resolve_schema, runtime, sandbox_account};
use super::args::DryRunArgs;
use super::ticker::Ticker;
use super::{Failure, Output, usage};
use crate::client::Credentials;
use crate::dryrun::{self, DryRunError, DryRunOptions, LiveCounts};
use crate::exit::Exit;
use crate::mapping::{self, MappingErrors};

pub(super) fn dry_run(args: DryRunArgs, output: Output) -> Result<Exit, Failure> {
    let (schema, label, _sandbox, _rt) = if args.sandbox {
        let (account, name) = sandbox_account(&args.schema)?;
        let rt = runtime()?;
        let sandbox = rt
            .block_on(crate::sandbox::spawn(crate::sandbox::SandboxConfig::new(
                account,
            )))
            .map_err(Failure::fatal)?;
        let credentials =
            Credentials::new(sandbox.api_key.clone(), sandbox.auth_code.clone()).map_err(usage)?;
        let client = client_for(&sandbox.url, credentials, Default::default())?;
        let schema = rt.block_on(pull(&client))?;
        let label = format!(
            "pulled from an in-process sandbox at {} (account {})",
            sandbox.url, name
        );
        (schema, label, Some(sandbox), Some(rt))
    } else {
        match resolve_schema(&args.schema, &args.target)? {
            Some((s, l)) => (s, l, None, None),
            None => {
                return Err(usage(anyhow::anyhow!(
                    "dry-run needs the HappyFox account's schema to resolve names to ids; pass --schema FILE (from `hfmigrate schema pull`), set HAPPYFOX_URL with HAPPYFOX_API_KEY and HAPPYFOX_AUTH_CODE, or use --sandbox"
                )));
            }
        }
    };
    let schema = Arc::new(schema);
    let plan =
        mapping::load(&args.export.mapping, Some(schema.clone())).map_err(Failure::Mapping)?;
    let opts = DryRunOptions {
        mapping_path: args.export.mapping.clone(),
        inputs: args.export.input.clone(),
        sides: args.export.side.clone(),
        schema_label: label,
        report_dir: args.report.clone(),
        post_per_min: args.post_per_min,
        window: args.window,
        live: Some(Arc::new(LiveCounts::default())),
    };
    let ticker = (!output.quiet)
        .then(|| opts.live.clone())
        .flatten()
        .map(|live| {
            Ticker::start(
                "validation",
                move |elapsed| describe(&live, elapsed),
                args.progress_every,
                output,
            )
        });
    let result = dryrun::run(&plan, schema, &opts);
    drop(ticker);
    let summary = match result {
        Ok(s) => s,
        Err(DryRunError::Mapping(errors)) => {
            let text = std::fs::read_to_string(&args.export.mapping).unwrap_or_default();
            return Err(Failure::Mapping(MappingErrors::new(
                &args.export.mapping,
                &text,
                errors,
            )));
        }
        Err(e) => return Err(Failure::of(e)),
    };
    let exit = Exit::done_unless(!summary.all_valid());
    let text = if args.json {
        json_summary(&summary, args.report.as_deref(), exit) + "\n"
    } else {
        crate::report::render_text(&summary, args.report.as_deref())
    };
    let mut out = std::io::stdout().lock();
    if out.write_all(text.as_bytes()).is_err() {
        // A closed pipe (`| head`) is not an error worth a message.
        return Ok(exit);
    }
    Ok(exit)
}

/// The `--json` shape of a dry run (docs/json-output.md): the same counts as the text,
/// in the same words.
fn json_summary(
    s: &crate::report::Summary,
    report: Option<&std::path::Path>,
    exit: Exit,
) -> String {
    let c = &s.counts;
    let a = &s.api;
    let problems: Vec<_> = s
        .problems
        .iter()
        .map(|g| {
            serde_json::json!({
                "kind": g.kind,
                "title": g.title,
                "count": g.count,
                "examples": g.examples,
            })
        })
        .collect();
    serde_json::json!({
        "version": super::JSON_VERSION,
        "command": "dry-run",
        "exit": exit.code(),
        "mapping": s.mapping,
        "inputs": s.inputs,
        "schema": s.schema,
        "records": {
            "read": c.read,
            "valid": c.valid,
            "rejected": c.rejected,
            "skipped": c.skipped,
            "valid_with_warnings": c.with_warnings,
        },
        "problems": problems,
        "requests": {
            "bulk_creates": a.bulk_creates,
            "single_creates": a.single_creates,
            "conversation_posts": a.conversation_posts,
            "final_state_posts": a.final_state_posts,
            "attachment_extra_posts": a.attachment_extra_posts,
            "inline_image_uploads": a.inline_images,
            "posts": a.total_posts,
            "gets_at_most": a.gets,
            "post_ceiling_per_min": a.post_ceiling_per_min,
            "estimated_seconds": a.estimated_seconds,
        },
        "attachments": {
            "files": a.attachments,
            "bytes": a.attachment_bytes,
            "oversize": a.oversize_attachments,
        },
        "window": s.window,
        "report_dir": report.map(|p| p.display().to_string()),
        "seconds": s.seconds,
    })
    .to_string()
}

/// `25000 records read (24900 valid, 80 rejected, 20 skipped) | 41000 records/s | 1s`.
fn describe(live: &LiveCounts, elapsed: std::time::Duration) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let read = live.read.load(Relaxed);
    let rate = read as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "{read} records read ({} valid, {} rejected, {} skipped) | {rate:.0} records/s | {} so far",
        live.valid.load(Relaxed),
        live.rejected.load(Relaxed),
        live.skipped.load(Relaxed),
        crate::duration::format(elapsed)
    )
}
