//! `hfmigrate schema pull`: a GET-only snapshot of the account's reference data.

use std::path::Path;

use anyhow::Context;

use super::account::{client_for, pull, runtime};
use super::args::TargetArgs;
use super::{Failure, usage};
use crate::client::{ClientOptions, Credentials};
use crate::exit::Exit;

pub(super) fn schema_pull(out: &Path, target: &TargetArgs) -> Result<Exit, Failure> {
    let url = target.url.clone().ok_or_else(|| {
        usage(anyhow::anyhow!(
            "no account URL: pass --url https://ACCOUNT.happyfox.com or set HAPPYFOX_URL"
        ))
    })?;
    let credentials = Credentials::from_env().map_err(usage)?;
    let options = target.network.options(ClientOptions::default());
    let client = client_for(&url, credentials, options)?;
    let schema = runtime()?.block_on(pull(&client))?;
    let text = serde_json::to_string_pretty(&schema).context("cannot serialise the schema")?;
    // `--out snapshots/acme.json` names a folder to create, as `--report` and `--journal` do.
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    }
    std::fs::write(out, text + "\n").with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "wrote {}: {} categories, {} statuses, {} priorities, {} staff, {} ticket and {} contact custom fields, {} contact groups",
        out.display(),
        schema.categories.len(),
        schema.statuses.len(),
        schema.priorities.len(),
        schema.staff.len(),
        schema.ticket_custom_fields.len(),
        schema.user_custom_fields.len(),
        schema.contact_groups.len()
    );
    Ok(Exit::Done)
}
