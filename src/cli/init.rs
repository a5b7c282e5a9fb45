//! `hfmigrate init`: draft a mapping (and its tests file) from an export and a schema.

use std::io::Write;
use std::sync::Arc;

use super::Failure;
use super::account::load_schema_file;
use super::args::InitArgs;
use crate::exit::Exit;
use crate::init::{self, InitOptions};

pub(super) fn init(args: InitArgs) -> Result<Exit, Failure> {
    let schema = Arc::new(load_schema_file(&args.schema)?);
    let (out, updating) = match (&args.out, &args.update) {
        (_, Some(u)) => (u.clone(), true),
        (Some(o), None) => (o.clone(), false),
        (None, None) => {
            return Err(super::usage(anyhow::anyhow!(
                "pass --out FILE for a new mapping, or --update FILE to extend one"
            )));
        }
    };
    let opts = InitOptions {
        from: args.from.clone(),
        inputs: args.input.clone(),
        schema,
        sample: args.sample,
        sides: args.side.clone(),
        out: out.clone(),
    };
    let draft = init::draft(&opts).map_err(Failure::of)?;
    let written = if updating {
        init::update(&out, &draft).map_err(Failure::of)?
    } else {
        init::write(&out, &draft).map_err(Failure::of)?
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(draft.summary.render(&out).as_bytes());
    let _ = writeln!(stdout, "{written}");
    Ok(Exit::Done)
}
