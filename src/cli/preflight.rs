//! `hfmigrate preflight`: check the account before a run, and print what was found.

use std::io::Write;

use super::account::{client_for, resolve_schema, runtime};
use super::args::PreflightArgs;
use super::{Failure, usage};
use crate::client::ClientOptions;
use crate::client::Credentials;
use crate::exit::Exit;
use crate::import::preflight::canary::{self, Canary};
use crate::import::preflight::{self, Preflight, PreflightFailed, Purpose};
use crate::mapping::{self, Plan};
use crate::schema::{self, Schema};

pub(super) fn preflight(args: &PreflightArgs) -> Result<Exit, Failure> {
    if args.canary && (args.target.url.is_none() || args.mapping.is_none()) {
        return Err(usage(anyhow::anyhow!(
            "--canary creates a test ticket in the account: pass --url https://ACCOUNT.happyfox.com (or set HAPPYFOX_URL) and the --mapping the import will use"
        )));
    }
    let Some((schema, label)) = resolve_schema(&args.schema, &args.target)? else {
        return Err(usage(anyhow::anyhow!(
            "preflight needs the account: pass --url https://ACCOUNT.happyfox.com (or set HAPPYFOX_URL) with the credentials in the environment, or a snapshot with --schema"
        )));
    };
    let plan = match &args.mapping {
        // Names are checked here, one problem per line, rather than by the mapping loader.
        Some(path) => Some(mapping::load(path, None).map_err(Failure::Mapping)?),
        None if args.purpose == Purpose::Import => {
            return Err(usage(anyhow::anyhow!(
                "preflight --for import needs the mapping the import will use: pass --mapping"
            )));
        }
        None => None,
    };
    let staff = args.staff.as_deref();
    let mut report = preflight::check(plan.as_ref(), &schema, args.purpose, staff);
    if args.canary {
        // The canary deletes its ticket again, so its agent needs that permission too.
        for p in preflight::check(None, &schema, Purpose::Undo, staff).problems {
            if !report.problems.contains(&p) {
                report.problems.push(p);
            }
        }
    }
    let canary = match (&plan, args.canary && report.passed()) {
        (Some(plan), true) => Some(run_canary(args, &schema, plan, &report)?),
        _ => None,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let json = serde_json::json!({
            "version": 1, "account": label, "passed": report.passed(),
            "preflight": report, "canary": canary,
        });
        let _ = writeln!(out, "{json:#}");
        return Ok(if report.passed() {
            Exit::Done
        } else {
            Exit::Usage
        });
    }
    render(&mut out, &report, &label);
    require(report)?;
    if let Some(c) = &canary {
        render_canary(&mut out, c);
    }
    let _ = writeln!(out, "pre-flight passed");
    Ok(Exit::Done)
}

fn run_canary(
    args: &PreflightArgs,
    schema: &Schema,
    plan: &Plan,
    report: &Preflight,
) -> Result<Canary, Failure> {
    let (Some(url), Some(acting)) = (&args.target.url, &report.acting) else {
        return Err(Failure::fatal(anyhow::anyhow!(
            "the canary needs an account URL and an acting agent"
        )));
    };
    let Some(category) = report.categories.first().and_then(|name| {
        schema
            .categories
            .iter()
            .find(|c| schema::same_name(&c.name, name))
    }) else {
        return Err(usage(anyhow::anyhow!(
            "the mapping targets no public category, so the canary has nowhere to create its ticket"
        )));
    };
    let credentials = Credentials::from_env().map_err(usage)?;
    let options = args.target.network.options(ClientOptions::default());
    let client = client_for(url, credentials, options)?;
    runtime()?
        .block_on(canary::run(&client, schema, plan, category, acting.id))
        .map_err(Failure::of)
}

fn render_canary(out: &mut impl Write, c: &Canary) {
    let _ = writeln!(
        out,
        "  canary: created ticket {} {} in {:?}, posted one reply, read it back{}",
        c.ticket,
        c.display_id,
        c.category,
        if c.deleted { ", deleted it" } else { "" }
    );
    if c.observations.is_empty() {
        let _ = writeln!(
            out,
            "    the account did nothing on its own (no other updates, status, assignee, tag or notification changes)"
        );
    }
    for o in &c.observations {
        let _ = writeln!(out, "    the account: {o}");
    }
    let _ = writeln!(
        out,
        "    contact {} stays (HappyFox's API cannot delete contacts)",
        c.contact
    );
}

/// What was checked: the acting agent, the categories, the notes.
pub(super) fn render(out: &mut impl Write, report: &Preflight, label: &str) {
    let purpose = match report.purpose {
        Purpose::Import => "import",
        Purpose::Undo => "undo",
    };
    let _ = writeln!(out, "pre-flight for {purpose} against {label}");
    if let Some(a) = &report.acting {
        let _ = writeln!(
            out,
            "  acting agent: {} <{}> (id {}, {}{})",
            a.name,
            a.email,
            a.id,
            a.chosen_by,
            if a.is_account_admin {
                ", account administrator"
            } else {
                ""
            }
        );
    }
    if !report.categories.is_empty() {
        let _ = writeln!(out, "  categories: {}", report.categories.join(", "));
    }
    for n in &report.notes {
        let _ = writeln!(out, "  note: {n}");
    }
}

/// A failed pre-flight stops the command (exit 2), with every problem listed.
pub(super) fn require(report: Preflight) -> Result<(), Failure> {
    if report.passed() {
        Ok(())
    } else {
        Err(Failure::of(PreflightFailed(report)))
    }
}
