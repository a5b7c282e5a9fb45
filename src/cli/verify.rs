//! `hfmigrate verify`: read the created tickets back and compare with the journal.

use std::io::Write;

use anyhow::Context;

use super::account::runtime;
use super::args::VerifyArgs;
use super::{Failure, usage};
use crate::client::{Client, ClientOptions, Credentials, Target};
use crate::exit::Exit;

pub(super) fn verify(args: &VerifyArgs) -> Result<Exit, Failure> {
    use crate::import::verify::{self, VerifyError};
    let journal = crate::journal::Journal::open_read_only(&args.journal).map_err(usage)?;
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
    let options = ClientOptions {
        get_per_min: args.get_per_min.max(1),
        ..ClientOptions::default()
    };
    let client = Client::new(target, credentials, options).map_err(usage)?;
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let v = match runtime()?.block_on(verify::verify(&journal, &client, scratch.path())) {
        Ok(v) => v,
        Err(VerifyError::Client(e)) => {
            return Err(Failure::of(e).context("cannot read the tickets"));
        }
        Err(e) => return Err(Failure::of(e)),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "read {} tickets from {}; the journal lists {} created: {} verified",
        v.tickets_read,
        client.target(),
        v.created,
        v.ok
    );
    for id in &v.missing {
        let _ = writeln!(out, "  missing: {id} (no ticket carries its marker)");
    }
    for (id, tickets) in &v.duplicated {
        let _ = writeln!(out, "  duplicated: {id} is on tickets {tickets:?}");
    }
    for (id, journal_id, found) in &v.other_id {
        let _ = writeln!(
            out,
            "  different ticket: {id} is ticket {found}, the journal says {journal_id}"
        );
    }
    for (marker, ticket) in &v.unexpected {
        let _ = writeln!(
            out,
            "  not in the journal as created: ticket {ticket} carries marker {marker}"
        );
    }
    Ok(Exit::done_unless(!v.is_clean()))
}
