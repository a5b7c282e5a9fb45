//! `hfmigrate check`: compile a mapping and say what it holds.

use std::io::Write;
use std::sync::Arc;

use super::Failure;
use super::account::resolve_schema;
use super::args::CheckArgs;
use crate::exit::Exit;
use crate::mapping;

pub(super) fn check(args: CheckArgs) -> Result<Exit, Failure> {
    let schema = resolve_schema(&args.schema, &args.target)?;
    let label = schema.as_ref().map(|(_, l)| l.clone());
    let plan =
        mapping::load(&args.mapping, schema.map(|(s, _)| Arc::new(s))).map_err(Failure::Mapping)?;
    let mut out = std::io::stdout().lock();
    let t = &plan.ticket;
    if args.json {
        let value = serde_json::json!({
            "version": super::JSON_VERSION,
            "command": "check",
            "exit": Exit::Done.code(),
            "mapping": args.mapping.display().to_string(),
            "valid": true,
            "ticket_custom_fields": t.custom_fields.len(),
            "contact_custom_fields": t.contact_fields.len(),
            "side_files": plan.source.sides.len(),
            "conversation": plan.conversation.is_some(),
            "final_status": plan.final_state.status.is_some(),
            "schema": label,
        });
        let _ = writeln!(out, "{value}");
        return Ok(Exit::Done);
    }
    let _ = writeln!(out, "{}: mapping is valid", args.mapping.display());
    let _ = writeln!(
        out,
        "  {} ticket custom fields, {} contact custom fields, {} side files, conversation: {}, final status: {}",
        t.custom_fields.len(),
        t.contact_fields.len(),
        plan.source.sides.len(),
        if plan.conversation.is_some() {
            "yes"
        } else {
            "no"
        },
        if plan.final_state.status.is_some() {
            "yes"
        } else {
            "no"
        },
    );
    match label {
        Some(l) => {
            let _ = writeln!(out, "  names checked against the schema ({l})");
        }
        None => {
            let _ = writeln!(
                out,
                "  names not checked: pass --schema FILE or set HAPPYFOX_URL with credentials"
            );
        }
    }
    Ok(Exit::Done)
}
