//! The command line as the user types it: every subcommand's flags, parsed by clap.
//!
//! Kept apart from what the commands do, so the whole surface (and its help text) reads
//! in one place and the commands receive plain values.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::client::ClientOptions;

const EXIT_CODES: &str = "Exit codes: 0 everything done; 1 fatal error; 2 usage or configuration error; 3 finished, but some records were rejected or failed; 4 interrupted, resumable.";

/// Move a whole helpdesk into HappyFox.
///
/// Credentials come only from the environment: HAPPYFOX_API_KEY and HAPPYFOX_AUTH_CODE.
#[derive(Debug, Parser)]
#[command(name = "hfmigrate", version, about, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// How much the program says and how, for every subcommand.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct OutputArgs {
    /// Say only what matters at the end: no progress, no plan unless a confirmation is
    /// asked; errors and the summary are always printed.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say more: progress as plain timestamped lines even on a terminal, and the requests
    /// made in the summary.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Colour the progress bar and the `error:` prefix: auto (stderr is a terminal and
    /// NO_COLOR is unset or empty), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

/// When to colour output (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Shells `hfmigrate completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check a mapping file (and, with a schema, every name in it) without reading data.
    #[command(after_long_help = EXAMPLES_CHECK)]
    Check(CheckArgs),
    /// Read the export, build and validate every payload, write a report; send nothing.
    #[command(name = "dry-run", after_long_help = EXAMPLES_DRY_RUN)]
    DryRun(DryRunArgs),
    /// Work with the HappyFox account's reference data.
    #[command(subcommand, after_long_help = EXAMPLES_SCHEMA)]
    Schema(SchemaCommand),
    /// Run a local HappyFox API on loopback for rehearsals and tests.
    #[command(after_long_help = EXAMPLES_SANDBOX)]
    Sandbox(crate::sandbox::SandboxArgs),
    /// Print the JSON Schema of mapping files (shipped as mappings/mapping.schema.json).
    #[command(name = "mapping-schema", after_long_help = EXAMPLES_MAPPING_SCHEMA)]
    MappingSchema,
    /// Create every valid ticket in HappyFox exactly once; safe to stop and re-run.
    #[command(after_long_help = EXAMPLES_IMPORT)]
    Import(ImportArgs),
    /// Summarise a journal: records by state, batches, timings (read-only).
    #[command(after_long_help = EXAMPLES_STATUS)]
    Status(StatusArgs),
    /// Write success.csv and errors.csv from a journal.
    #[command(after_long_help = EXAMPLES_RESULTS)]
    Results(ResultsArgs),
    /// Read every created ticket back from HappyFox and compare it field by field with
    /// what the import sent (GET only); exit 3 when anything differs.
    #[command(after_long_help = EXAMPLES_VERIFY)]
    Verify(VerifyArgs),
    /// Delete exactly the tickets a journal created (a rehearsal's), after reading each
    /// back; resumable. Contacts cannot be deleted through the API: they are listed.
    #[command(after_long_help = EXAMPLES_UNDO)]
    Undo(UndoArgs),
    /// Check the account before a run: the acting agent, its permissions, the marker
    /// field in every category, the categories and the fallback agent (GET only, but for
    /// `--canary`).
    #[command(after_long_help = EXAMPLES_PREFLIGHT)]
    Preflight(PreflightArgs),
    /// Draft a mapping from an export and the account's schema (reads only; sends nothing).
    #[command(after_long_help = EXAMPLES_INIT)]
    Init(InitArgs),
    /// Run a mapping's unit tests (`NAME.tests.yaml` beside `NAME.yaml`).
    #[command(after_long_help = EXAMPLES_TEST)]
    Test(TestArgs),
    /// Print a shell completion script for bash, zsh or fish.
    #[command(after_long_help = EXAMPLES_COMPLETIONS)]
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the manual page (roff), always in step with this binary's flags.
    #[command(after_long_help = EXAMPLES_MAN)]
    Man {
        /// Write hfmigrate.1 and one page per subcommand (hfmigrate-import.1, ...) into
        /// this folder instead of printing the main page.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

const EXAMPLES_CHECK: &str = "Examples:
  hfmigrate check --mapping mappings/zendesk.yaml
  hfmigrate check --mapping my.yaml --schema schema.json --json";
const EXAMPLES_DRY_RUN: &str = "Examples:
  hfmigrate dry-run --mapping mappings/zendesk.yaml --input samples/zendesk --sandbox
  hfmigrate dry-run --mapping my.yaml --input export/ --schema schema.json --report report/
  hfmigrate dry-run --mapping my.yaml --input export/tickets.csv --schema schema.json --json";
const EXAMPLES_SCHEMA: &str = "Examples (with HAPPYFOX_API_KEY and HAPPYFOX_AUTH_CODE set):
  hfmigrate schema pull --url https://acme.happyfox.com --out schema.json";
const EXAMPLES_SANDBOX: &str = "Examples:
  hfmigrate sandbox                       # the sample account on 127.0.0.1:8765
  hfmigrate sandbox --latency 50ms..800ms --fail-rate 5% --state sandbox.json";
const EXAMPLES_MAPPING_SCHEMA: &str = "Examples:
  hfmigrate mapping-schema > mappings/mapping.schema.json";
const EXAMPLES_IMPORT: &str = "Examples:
  hfmigrate import --sandbox --mapping mappings/zendesk.yaml --input samples/zendesk --journal rehearsal.db
  hfmigrate import --url https://acme.happyfox.com --mapping my.yaml --input export/ --journal acme.db
  hfmigrate import ... --yes --json > outcome.json    # unattended; progress stays on stderr";
const EXAMPLES_STATUS: &str = "Examples:
  hfmigrate status --journal acme.db
  hfmigrate status --journal acme.db --json";
const EXAMPLES_RESULTS: &str = "Examples:
  hfmigrate results --journal acme.db --out results/";
const EXAMPLES_VERIFY: &str = "Examples:
  hfmigrate verify --journal acme.db
  hfmigrate verify --journal acme.db --input export/ --mapping my.yaml --report verify/
  hfmigrate verify --journal acme.db --sample 500 --seed 7";
const EXAMPLES_COMPLETIONS: &str = "Examples:
  hfmigrate completions bash > ~/.local/share/bash-completion/completions/hfmigrate
  hfmigrate completions zsh > \"${fpath[1]}/_hfmigrate\"
  hfmigrate completions fish > ~/.config/fish/completions/hfmigrate.fish";
const EXAMPLES_UNDO: &str = "Examples (with the credentials of the account the journal targets):
  hfmigrate undo --journal rehearsal.db
  hfmigrate undo --journal rehearsal.db --yes --json";
const EXAMPLES_PREFLIGHT: &str = "Examples:
  hfmigrate preflight --mapping my.yaml --schema schema.json
  hfmigrate preflight --mapping my.yaml --url https://acme.happyfox.com --for undo
  hfmigrate preflight --mapping my.yaml --url https://acme.happyfox.com --canary";
const EXAMPLES_INIT: &str = "Examples:
  hfmigrate init --from zendesk --input export/ --schema schema.json --out my.yaml
  hfmigrate init --from csv --input tickets.csv --schema schema.json --out my.yaml --sample 10000
  hfmigrate init --from zendesk --input newer-export/ --schema schema.json --update my.yaml";
const EXAMPLES_TEST: &str = "Examples:
  hfmigrate test --mapping mappings/zendesk.yaml
  hfmigrate test --mapping my.yaml --tests my-cases.yaml --schema schema.json";
const EXAMPLES_MAN: &str = "Examples:
  hfmigrate man > hfmigrate.1 && man ./hfmigrate.1
  hfmigrate man --out /usr/local/share/man/man1";

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
    /// Print the result as JSON (docs/json-output.md) instead of text.
    #[arg(long)]
    pub json: bool,
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
    /// The time the import may take (e.g. `12h`, a cut-over night): says whether the plan
    /// fits, and if not, before which creation date tickets as transcripts
    /// (`conversation.history: transcript`) would make it fit.
    #[arg(long, value_parser = crate::duration::parse)]
    pub window: Option<std::time::Duration>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print the summary as JSON (docs/json-output.md) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Interval of the progress lines when stderr is not a terminal.
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse, hide = true)]
    pub progress_every: std::time::Duration,
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
    /// Wait before searching for the tickets of a batch whose answer was lost, and again
    /// before a second search concludes one absent: at least as long as the account's
    /// search lags behind its writes.
    #[arg(long, default_value = "5s", value_parser = crate::duration::parse)]
    pub reconcile_delay: std::time::Duration,
    /// Before creating anything, list the account's tickets and adopt those that carry
    /// this mapping's markers as created (done by itself for a new journal).
    #[arg(long)]
    pub adopt: bool,
    /// Interval of the progress lines when stdout is not a terminal.
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse, hide = true)]
    pub progress_every: std::time::Duration,
    /// Tickets per bulk create (HappyFox takes up to 100); smaller only for rehearsals.
    #[arg(long, default_value_t = crate::import::BATCH_SIZE, value_parser = parse_batch_size, hide = true)]
    pub batch_size: usize,
    /// Refused: the dry run is its own command.
    #[arg(long, hide = true)]
    pub dry_run: bool,
    /// Skip the pre-flight check of the account (`hfmigrate preflight`) before importing.
    #[arg(long)]
    pub no_preflight: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print the outcome as JSON on stdout (docs/json-output.md); the plan and progress
    /// go to stderr.
    #[arg(long)]
    pub json: bool,
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
    /// The journal of the import. Verify keeps its progress there (a stopped verify
    /// continues where it stopped) and marks messages HappyFox does not show, which the
    /// next import posts; nothing is sent to HappyFox.
    #[arg(long)]
    pub journal: PathBuf,
    /// Write verify.html (for people) and verify.json here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Compare a random N of the created tickets (the seed is printed).
    #[arg(long)]
    pub sample: Option<usize>,
    /// The seed of --sample, to compare the same tickets again.
    #[arg(long, requires = "sample")]
    pub seed: Option<u64>,
    /// Print the summary as JSON (versioned: `{"version":1,...}`).
    #[arg(long)]
    pub json: bool,
    /// Also compare with the export, re-rendered through --mapping as the import does:
    /// export files, or the export folder.
    #[arg(long, num_args = 1.., requires = "mapping")]
    pub input: Vec<PathBuf>,
    /// The mapping that reads --input.
    #[arg(long, requires = "input")]
    pub mapping: Option<PathBuf>,
    /// Override a side file's path: `--side users=exports/users.json`.
    #[arg(long, value_parser = parse_side, requires = "input")]
    pub side: Vec<(String, PathBuf)>,
    /// A schema snapshot for --mapping; read from the account when absent.
    #[arg(long, requires = "input")]
    pub schema: Option<PathBuf>,
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

#[derive(Debug, Args)]
pub(crate) struct UndoArgs {
    /// The journal of the import to undo; it records every deletion, so running the same
    /// command again continues, and a later import on it creates the tickets anew.
    #[arg(long)]
    pub journal: PathBuf,
    /// Account URL; must be the one the journal recorded (the default).
    #[arg(long)]
    pub url: Option<String>,
    /// The agent (email or name) named as `staff_id` in each delete; the first active
    /// account administrator when absent. Needs the permission to delete tickets.
    #[arg(long)]
    pub staff: Option<String>,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// POST ceiling per minute (HappyFox allows 300 for the whole account).
    #[arg(long, default_value_t = ClientOptions::default().post_per_min)]
    pub post_per_min: u32,
    /// GET ceiling per minute (HappyFox allows 500).
    #[arg(long, default_value_t = ClientOptions::default().get_per_min)]
    pub get_per_min: u32,
    /// Print the summary as JSON (`{"version": 1, ...}`); the plan goes to stderr.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PreflightArgs {
    /// The mapping the run will use (required for `--for import`).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// A schema snapshot; fetched live when a URL and credentials are set instead.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// What the run will do, which decides the permissions it needs.
    #[arg(long = "for", value_enum, default_value = "import")]
    pub purpose: crate::import::preflight::Purpose,
    /// The agent (email or name) the run acts as; by default the mapping's fallback
    /// agent, else the first active account administrator.
    #[arg(long)]
    pub staff: Option<String>,
    /// Also create one test ticket in the account (needs --url), post one reply, read it
    /// back to show what the account did on its own (Smart Rules, status, assignee,
    /// notifications), then delete it. Its contact stays (the API cannot delete contacts).
    #[arg(long)]
    pub canary: bool,
    /// Print the result as JSON (`{"version": 1, ...}`).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TestArgs {
    /// The mapping file.
    #[arg(long)]
    pub mapping: PathBuf,
    /// The tests file; by default the mapping's name with `.tests.yaml` for `.yaml`.
    #[arg(long)]
    pub tests: Option<PathBuf>,
    /// A schema snapshot; else the one the tests file names, else the bundled sample
    /// account.
    #[arg(long)]
    pub schema: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The helpdesk the export comes from: zendesk, freshdesk, zoho-desk, freshservice, jira, servicenow, help-scout, intercom or csv.
    #[arg(long)]
    pub from: String,
    /// Export files, or the export folder.
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// The account's schema snapshot (`hfmigrate schema pull`); names are matched to it.
    #[arg(long)]
    pub schema: PathBuf,
    /// Where to write the mapping (its tests file goes beside it); refused if it exists.
    #[arg(long, required_unless_present = "update", conflicts_with = "update")]
    pub out: Option<PathBuf>,
    /// Add the values seen in this export to an existing drafted mapping, leaving every
    /// line already in it as it is.
    #[arg(long)]
    pub update: Option<PathBuf>,
    /// Read only the first N ticket records (for huge exports).
    #[arg(long)]
    pub sample: Option<u64>,
    /// A side file kept outside the export folder: `--side users=exports/users.json`
    /// (then pass the same to `dry-run` and `import`).
    #[arg(long, value_parser = parse_side)]
    pub side: Vec<(String, PathBuf)>,
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
