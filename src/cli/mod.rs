//! Command-line entry point: parse arguments, call the library, map errors to exit codes.
//!
//! Exit codes (also in `--help` and README):
//! 0 everything done; 1 fatal error; 2 usage or configuration error (bad mapping, missing
//! file or schema); 3 finished but some records were rejected or failed; 4 interrupted,
//! resumable.

mod account;
mod args;
mod check;
mod dry_run;
mod import;
mod journal;
mod schema;
mod verify;

use std::process::ExitCode;

use clap::Parser;

use crate::mapping::{self, MappingErrors};
pub use args::{Cli, Command, SchemaCommand};

/// Why a command failed, deciding the exit code.
#[derive(Debug)]
pub enum Failure {
    /// Exit 2: the user must change the command line, a file or the configuration.
    Usage(anyhow::Error),
    /// Exit 2: the mapping is wrong; rendered with positions.
    Mapping(MappingErrors),
    /// Exit 1.
    Fatal(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Fatal(e)
    }
}

fn usage(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Usage(e.into())
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Mapping(errors)) => {
            eprintln!("{errors}");
            ExitCode::from(2)
        }
        Err(Failure::Usage(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Fatal(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs a parsed command; `Ok` carries the exit code.
pub fn run(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Check(args) => check::check(args),
        Command::DryRun(args) => dry_run::dry_run(args),
        Command::Schema(SchemaCommand::Pull { out, target }) => schema::schema_pull(&out, &target),
        Command::Sandbox(args) => crate::sandbox::run_command(args)
            .map(|()| 0)
            .map_err(Failure::Fatal),
        Command::MappingSchema => {
            print!("{}", mapping::json_schema());
            Ok(0)
        }
        Command::Import(args) => import::import(args),
        Command::Status(args) => journal::status(&args),
        Command::Results(args) => journal::results(&args),
        Command::Verify(args) => verify::verify(&args),
    }
}
