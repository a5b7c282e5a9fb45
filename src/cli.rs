//! Command-line entry point: parse arguments, call the library, map errors to exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Move a whole helpdesk into HappyFox.
#[derive(Debug, Parser)]
#[command(name = "hfmigrate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a local HappyFox API on loopback for rehearsals and tests.
    Sandbox(crate::sandbox::SandboxArgs),
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sandbox(args) => crate::sandbox::run_command(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
