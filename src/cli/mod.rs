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
mod init;
mod journal;
mod output;
mod preflight;
mod schema;
mod test;
mod ticker;
mod undo;
mod verify;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::exit::{Classify, Exit};
use crate::mapping::{self, MappingErrors};
pub(crate) use args::Command;
pub(crate) use args::{Cli, SchemaCommand};
pub(crate) use output::Output;

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
    let args: Vec<OsString> = std::env::args_os().collect();
    let matches = Cli::command()
        .color(output::clap_color(&args))
        .get_matches_from(args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let output = Output::new(&cli.output);
    let json = cli.command.json_name();
    let (exit, error) = match run(cli, output) {
        Ok(exit) => (exit, None),
        Err(Failure::Mapping(errors)) => {
            eprintln!("{errors}");
            (Exit::Usage, Some(errors.to_string()))
        }
        Err(Failure::Error { exit, error }) => {
            let text = said_once(&error);
            eprintln!("{} {text}", output.error_prefix());
            (exit, Some(text))
        }
    };
    if let (Some(command), Some(error)) = (json, error) {
        // `--json` readers get the failure on stdout too, in the documented shape.
        println!(
            "{}",
            serde_json::json!({
                "version": JSON_VERSION,
                "command": command,
                "exit": exit.code(),
                "error": error,
            })
        );
    }
    ExitCode::from(exit.code())
}

/// The version of every `--json` shape (docs/json-output.md): bumped when a field changes
/// meaning or disappears, never for a new field.
pub(crate) const JSON_VERSION: u32 = 1;

impl Command {
    /// The command's name when it was asked for `--json` output.
    fn json_name(&self) -> Option<&'static str> {
        match self {
            Command::Check(a) if a.json => Some("check"),
            Command::DryRun(a) if a.json => Some("dry-run"),
            Command::Import(a) if a.json => Some("import"),
            _ => None,
        }
    }
}

/// Runs a parsed command; `Ok` says how it ended.
pub(crate) fn run(cli: Cli, output: Output) -> Result<Exit, Failure> {
    match cli.command {
        Command::Check(args) => check::check(args),
        Command::DryRun(args) => dry_run::dry_run(args, output),
        Command::Schema(SchemaCommand::Pull { out, target }) => schema::schema_pull(&out, &target),
        Command::Sandbox(args) => crate::sandbox::run_command(args)
            .map(|()| Exit::Done)
            .map_err(Failure::fatal),
        Command::MappingSchema => {
            print!("{}", mapping::json_schema());
            Ok(Exit::Done)
        }
        Command::Import(args) => import::import(args, output),
        Command::Status(args) => journal::status(&args),
        Command::Results(args) => journal::results(&args),
        Command::Verify(args) => verify::verify(&args),
        Command::Undo(args) => undo::undo(&args),
        Command::Preflight(args) => preflight::preflight(&args),
        Command::Init(args) => init::init(args),
        Command::Test(args) => test::test(args),
        Command::Completions { shell } => {
            let shell = match shell {
                args::Shell::Bash => clap_complete::Shell::Bash,
                args::Shell::Zsh => clap_complete::Shell::Zsh,
                args::Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "hfmigrate",
                &mut std::io::stdout(),
            );
            Ok(Exit::Done)
        }
        Command::Man { out } => man(out.as_deref()),
    }
}

/// `hfmigrate man`: rendered from the same definitions as `--help`, so it cannot drift
/// from the flags the binary accepts (a checked-in page would).
fn man(out: Option<&std::path::Path>) -> Result<Exit, Failure> {
    use anyhow::Context as _;
    let command = Cli::command();
    match out {
        None => {
            let mut stdout = std::io::stdout().lock();
            clap_mangen::Man::new(command)
                .render(&mut stdout)
                .context("cannot write the manual page")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))
                .map_err(usage)?;
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("cannot write the manual pages into {}", dir.display()))?;
            println!("wrote the manual pages into {}", dir.display());
        }
    }
    Ok(Exit::Done)
}

/// The error and its causes as `a: b: c`, each cause once: a message that already
/// quotes its cause (`cannot write X: disk full`) is not followed by it again.
fn said_once(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_the_message_already_quotes_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot write out.db: {source}")]
        struct Write {
            source: std::io::Error,
        }
        let e = anyhow::Error::from(Write {
            source: std::io::Error::other("disk full"),
        });
        assert_eq!(said_once(&e), "cannot write out.db: disk full");
        let e = anyhow::Error::from(std::io::Error::other("refused")).context("cannot reach X");
        assert_eq!(said_once(&e), "cannot reach X: refused");
    }
}
