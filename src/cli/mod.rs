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
mod preflight;
mod schema;
mod undo;
mod verify;

mod init;
mod test;

use std::process::ExitCode;

use clap::Parser;

use crate::exit::{Classify, Exit};
use crate::mapping::{self, MappingErrors};
pub(crate) use args::Command;
pub(crate) use args::{Cli, SchemaCommand};

/// Why a command failed, with the exit code it means.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The mapping is wrong (exit 2); rendered with positions.
    Mapping(MappingErrors),
    /// Anything else, printed as `error: ...` with its causes.
    Error { exit: Exit, error: anyhow::Error },
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Error {
            exit: Exit::Fatal,
            error,
        }
    }
}

impl Failure {
    /// A library error, with the exit code it classifies itself as.
    fn of<E>(e: E) -> Failure
    where
        E: Classify + std::error::Error + Send + Sync + 'static,
    {
        Failure::Error {
            exit: e.exit(),
            error: e.into(),
        }
    }

    /// Says what could not be done, for failures on the way; a setup error the user must
    /// fix speaks for itself.
    fn context(self, context: &str) -> Failure {
        match self {
            Failure::Error { exit, error } if exit != Exit::Usage => Failure::Error {
                exit,
                error: error.context(context.to_owned()),
            },
            other => other,
        }
    }

    /// A failure on the way (exit 1).
    fn fatal(e: impl Into<anyhow::Error>) -> Failure {
        Failure::from(e.into())
    }
}

/// Something the user must change: the command line, a file or the setup (exit 2).
fn usage(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Error {
        exit: Exit::Usage,
        error: e.into(),
    }
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let exit = match run(cli) {
        Ok(exit) => exit,
        Err(Failure::Mapping(errors)) => {
            eprintln!("{errors}");
            Exit::Usage
        }
        Err(Failure::Error { exit, error }) => {
            eprintln!("error: {error:#}");
            exit
        }
    };
    ExitCode::from(exit.code())
}

/// Runs a parsed command; `Ok` says how it ended.
pub(crate) fn run(cli: Cli) -> Result<Exit, Failure> {
    match cli.command {
        Command::Check(args) => check::check(args),
        Command::DryRun(args) => dry_run::dry_run(args),
        Command::Schema(SchemaCommand::Pull { out, target }) => schema::schema_pull(&out, &target),
        Command::Sandbox(args) => crate::sandbox::run_command(args)
            .map(|()| Exit::Done)
            .map_err(Failure::fatal),
        Command::MappingSchema => {
            print!("{}", mapping::json_schema());
            Ok(Exit::Done)
        }
        Command::Import(args) => import::import(args),
        Command::Status(args) => journal::status(&args),
        Command::Results(args) => journal::results(&args),
        Command::Verify(args) => verify::verify(&args),
        Command::Undo(args) => undo::undo(&args),
        Command::Preflight(args) => preflight::preflight(&args),
        Command::Init(args) => init::init(args),
        Command::Test(args) => test::test(args),
    }
}
