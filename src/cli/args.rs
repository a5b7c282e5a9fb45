//! The command line as the user types it: every subcommand's flags, parsed by clap.
//!
//! Kept apart from what the commands do, so the whole surface (and its help text) reads
//! in one place and the commands receive plain values.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::client::ClientOptions;

const EXIT_CODES: &str = "Exit codes: 0 everything done; 1 fatal error; 2 usage or configuration error; 3 finished, but some records were rejected or failed; 4 interrupted, resumable.";

/// Move a whole helpdesk into HappyFox.
///
/// Credentials come only from the environment: HAPPYFOX_API_KEY and HAPPYFOX_AUTH_CODE.
#[derive(Debug, Parser)]
#[command(name = "hfmigrate", version, about, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check a mapping file (and, with a schema, every name in it) without reading data.
    Check(CheckArgs),
    /// Read the export, build and validate every payload, write a report; send nothing.
    #[command(name = "dry-run")]
    DryRun(DryRunArgs),
    /// Work with the HappyFox account's reference data.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Run a local HappyFox API on loopback for rehearsals and tests.
    Sandbox(crate::sandbox::SandboxArgs),
    /// Print the JSON Schema of mapping files (shipped as mappings/mapping.schema.json).
    #[command(name = "mapping-schema")]
    MappingSchema,
    /// Create every valid ticket in HappyFox exactly once; safe to stop and re-run.
    Import(ImportArgs),
    /// Summarise a journal: records by state, batches, timings (read-only).
    Status(StatusArgs),
    /// Write success.csv and errors.csv from a journal.
    Results(ResultsArgs),
    /// Read every ticket back from HappyFox and compare with the journal: each created
    /// record exactly once, with the id the journal holds (GET only).
    Verify(VerifyArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum SchemaCommand {
    /// Fetch categories, statuses, priorities, staff, custom fields and contact groups
    /// (GET only) into one JSON snapshot.
    Pull {
        /// Where to write the snapshot.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        target: TargetArgs,
    },
}

/// Where the HappyFox account is.
#[derive(Debug, Clone, Args)]
pub(crate) struct TargetArgs {
    /// Account URL, e.g. https://acme.happyfox.com (EU: .happyfox.net).
    #[arg(long, env = "HAPPYFOX_URL")]
    pub url: Option<String>,
    #[command(flatten)]
    pub network: NetworkArgs,
}

/// How long to wait for the account and how often to try, for every command that talks
/// to it: a server that never answers must end the run with a message, not hang it.
#[derive(Debug, Clone, Args)]
pub(crate) struct NetworkArgs {
    /// Longest wait for the answer to one read (GET) before it counts as failed.
    #[arg(long, default_value = "30s", value_parser = crate::duration::parse)]
    pub read_timeout: std::time::Duration,
    /// Longest wait for the answer to one write (POST); bulk creates of 100 can be slow.
    #[arg(long, default_value = "2m", value_parser = crate::duration::parse)]
    pub write_timeout: std::time::Duration,
    /// Attempts at one request before the run gives up on it, a write whose answer was
    /// unusable (not JSON, lost, timed out) included.
    #[arg(long, default_value_t = ClientOptions::default().retries, value_parser = clap::value_parser!(u32).range(1..))]
    pub retries: u32,
    /// Longest time one request may take over all its attempts (waits HappyFox orders
    /// with a 429 excepted).
    #[arg(long, default_value = "2m", value_parser = crate::duration::parse)]
    pub retry_for: std::time::Duration,
}

impl NetworkArgs {
    /// `base` with these timeouts and budgets.
    pub(crate) fn options(&self, base: ClientOptions) -> ClientOptions {
        ClientOptions {
            read_timeout: self.read_timeout,
            request_timeout: self.write_timeout,
            retries: self.retries,
            retry_for: self.retry_for,
            ..base
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The mapping file.
    #[arg(long)]
    pub mapping: PathBuf,
    /// A schema snapshot (`hfmigrate schema pull`); fetched live when a URL and
    /// credentials are set instead; names are not checked without either.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// The export and the mapping that reads it, the same for `dry-run` and `import`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The mapping file.
    #[arg(long)]
    pub mapping: PathBuf,
    /// Export files, or the export folder.
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Override a side file's path: `--side users=exports/users.json`.
    #[arg(long, value_parser = parse_side)]
    pub side: Vec<(String, PathBuf)>,
}

#[derive(Debug, Args)]
pub(crate) struct DryRunArgs {
    #[command(flatten)]
    pub export: ExportArgs,
    /// A schema snapshot; fetched live when a URL and credentials are set instead.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Write report.html, report.json, rejects.csv and payloads.ndjson here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Start an in-process sandbox (with --schema, or the bundled sample account) and
    /// read the schema from it over HTTP.
    #[arg(long)]
    pub sandbox: bool,
    /// The POST ceiling the time estimate assumes.
    #[arg(long, default_value_t = crate::happyfox::DEFAULT_POST_CEILING)]
    pub post_per_min: u32,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    pub export: ExportArgs,
    /// The journal (SQLite) that makes the import resumable: one file per migration. Run
    /// the same command again to continue where it stopped.
    #[arg(long)]
    pub journal: PathBuf,
    /// A schema snapshot; fetched live from the account when absent.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Import into an in-process sandbox (with --schema, or the bundled sample account):
    /// the whole run with no account.
    #[arg(long)]
    pub sandbox: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Send again the records that failed in an earlier run.
    #[arg(long)]
    pub retry_failed: bool,
    /// Continue a journal although the mapping or inputs changed since it began.
    #[arg(long)]
    pub allow_changes: bool,
    /// POST ceiling per minute (HappyFox allows 300 for the whole account).
    #[arg(long, default_value_t = ClientOptions::default().post_per_min)]
    pub post_per_min: u32,
    /// GET ceiling per minute (HappyFox allows 500).
    #[arg(long, default_value_t = ClientOptions::default().get_per_min)]
    pub get_per_min: u32,
    /// How long every request waits after a 429 that gives no Retry-After (HappyFox
    /// locks the account out for 10m); the ceiling is lowered after each one.
    #[arg(long, default_value = "10m", value_parser = crate::duration::parse)]
    pub lockout: std::time::Duration,
    /// Wait before searching for the tickets of a batch whose answer was lost.
    #[arg(long, default_value = "5s", value_parser = crate::duration::parse, hide = true)]
    pub reconcile_delay: std::time::Duration,
    /// Interval of the progress lines when stdout is not a terminal.
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse, hide = true)]
    pub progress_every: std::time::Duration,
    /// Tickets per bulk create (HappyFox takes up to 100); smaller only for rehearsals.
    #[arg(long, default_value_t = crate::import::BATCH_SIZE, value_parser = parse_batch_size, hide = true)]
    pub batch_size: usize,
    /// Refused: the dry run is its own command.
    #[arg(long, hide = true)]
    pub dry_run: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The journal to read (never modified).
    #[arg(long)]
    pub journal: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The journal to compare with (never modified).
    #[arg(long)]
    pub journal: PathBuf,
    /// Account URL; the one the journal recorded when absent.
    #[arg(long, env = "HAPPYFOX_URL")]
    pub url: Option<String>,
    /// GET ceiling per minute (HappyFox allows 500).
    #[arg(long, default_value_t = ClientOptions::default().get_per_min)]
    pub get_per_min: u32,
}

#[derive(Debug, Args)]
pub(crate) struct ResultsArgs {
    /// The journal to read (never modified).
    #[arg(long)]
    pub journal: PathBuf,
    /// Folder for success.csv and errors.csv (created if needed).
    #[arg(long)]
    pub out: PathBuf,
}

fn parse_batch_size(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=crate::import::BATCH_SIZE).contains(&n) => Ok(n),
        _ => Err(format!("expected 1 to {}", crate::import::BATCH_SIZE)),
    }
}

fn parse_side(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!("expected NAME=PATH, got {s:?}")),
    }
}
