//! `hfmigrate preflight`: check the account before a run, and print what was found.

use std::io::Write;

use super::account::resolve_schema;
use super::args::PreflightArgs;
use super::{Failure, usage};
use crate::exit::Exit;
use crate::import::preflight::{self, Preflight, PreflightFailed, Purpose};
use crate::mapping;

pub(super) fn preflight(args: &PreflightArgs) -> Result<Exit, Failure> {
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
    let report = preflight::check(plan.as_ref(), &schema, args.purpose, args.staff.as_deref());
    let mut out = std::io::stdout().lock();
    if args.json {
        let json = serde_json::json!({ "version": 1, "account": label, "passed": report.passed(), "preflight": report });
        let _ = writeln!(out, "{json:#}");
        return Ok(if report.passed() {
            Exit::Done
        } else {
            Exit::Usage
        });
    }
    render(&mut out, &report, &label);
    require(report)?;
    let _ = writeln!(out, "pre-flight passed");
    Ok(Exit::Done)
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
