//! `hfmigrate dry-run`: validate everything and report, sending nothing.

use std::io::Write;
use std::sync::Arc;

use super::account::{client_for, pull, resolve_schema, runtime, sandbox_account};
use super::args::DryRunArgs;
use super::{Failure, usage};
use crate::client::Credentials;
use crate::dryrun::{self, DryRunError, DryRunOptions};
use crate::exit::Exit;
use crate::mapping::{self, MappingErrors};

pub(super) fn dry_run(args: DryRunArgs) -> Result<Exit, Failure> {
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
    };
    let summary = match dryrun::run(&plan, schema, &opts) {
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
    let text = crate::report::render_text(&summary, args.report.as_deref());
    let mut out = std::io::stdout().lock();
    if out.write_all(text.as_bytes()).is_err() {
        // A closed pipe (`| head`) is not an error worth a message.
        return Ok(Exit::done_unless(!summary.all_valid()));
    }
    Ok(Exit::done_unless(!summary.all_valid()))
}
