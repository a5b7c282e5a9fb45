//! Command-line entry point: parse arguments, call the library, map errors to exit codes.
//!
//! Exit codes (also in `--help` and README):
//! 0 everything done; 1 fatal error; 2 usage or configuration error (bad mapping, missing
//! file or schema); 3 finished but some records were rejected or failed; 4 interrupted,
//! resumable.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::client::{Client, ClientOptions, Credentials, Target};
use crate::dryrun::{self, DryRunError, DryRunOptions};
use crate::mapping::{self, MappingErrors};
use crate::schema::Schema;

const EXIT_CODES: &str = "Exit codes: 0 everything done; 1 fatal error; 2 usage or configuration error; 3 finished, but some records were rejected or failed; 4 interrupted, resumable.";

/// Move a whole helpdesk into HappyFox.
///
/// Credentials come only from the environment: HAPPYFOX_API_KEY and HAPPYFOX_AUTH_CODE.
#[derive(Debug, Parser)]
#[command(name = "hfmigrate", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
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
pub struct TargetArgs {
    /// Account URL, e.g. https://acme.happyfox.com (EU: .happyfox.net).
    #[arg(long, env = "HAPPYFOX_URL")]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
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

#[derive(Debug, Args)]
pub struct DryRunArgs {
    /// The mapping file.
    #[arg(long)]
    pub mapping: PathBuf,
    /// Export files, or the export folder.
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Override a side file's path: `--side users=exports/users.json`.
    #[arg(long, value_parser = parse_side)]
    pub side: Vec<(String, PathBuf)>,
    /// A schema snapshot; fetched live when a URL and credentials are set instead.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Write report.html, report.json, rejects.csv and payloads.ndjson here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Start an in-process sandbox (with --schema, or samples/happyfox-schema.json) and
    /// read the schema from it over HTTP.
    #[arg(long)]
    pub sandbox: bool,
    /// The POST ceiling the time estimate assumes.
    #[arg(long, default_value_t = dryrun::DEFAULT_POST_PER_MIN)]
    pub post_per_min: u32,
    #[command(flatten)]
    pub target: TargetArgs,
}

fn parse_side(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!("expected NAME=PATH, got {s:?}")),
    }
}

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
        Command::Check(args) => check(args),
        Command::DryRun(args) => dry_run(args),
        Command::Schema(SchemaCommand::Pull { out, target }) => schema_pull(&out, &target),
        Command::Sandbox(args) => crate::sandbox::run_command(args)
            .map(|()| 0)
            .map_err(Failure::Fatal),
        Command::MappingSchema => {
            print!("{}", mapping::json_schema());
            Ok(0)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::Fatal)
}

fn load_schema_file(path: &Path) -> Result<Schema, Failure> {
    Schema::load(path).map_err(|e| usage(anyhow::anyhow!("{e}")).with_help("pull one with `hfmigrate schema pull --out schema.json`, or use samples/happyfox-schema.json"))
}

trait WithHelp {
    fn with_help(self, help: &str) -> Self;
}

impl WithHelp for Failure {
    fn with_help(self, help: &str) -> Self {
        match self {
            Failure::Usage(e) => Failure::Usage(e.context(format!("help: {help}"))),
            other => other,
        }
    }
}

fn client_for(url: &str, credentials: Credentials) -> Result<Client, Failure> {
    let target = Target::parse(url).map_err(usage)?;
    Client::new(target, credentials, ClientOptions::default()).map_err(usage)
}

async fn pull(client: &Client) -> Result<Schema, Failure> {
    crate::client::pull_schema(client).await.map_err(|e| {
        if e.is_configuration() {
            usage(e)
        } else {
            Failure::Fatal(anyhow::Error::new(e).context("cannot read the account schema"))
        }
    })
}

/// The schema for `check`/`dry-run`: a file, else live from the account, else none.
fn resolve_schema(
    file: &Option<PathBuf>,
    target: &TargetArgs,
) -> Result<Option<(Schema, String)>, Failure> {
    if let Some(path) = file {
        return Ok(Some((load_schema_file(path)?, path.display().to_string())));
    }
    let Some(url) = &target.url else {
        return Ok(None);
    };
    let credentials = Credentials::from_env().map_err(usage)?;
    let client = client_for(url, credentials)?;
    let schema = runtime()?.block_on(pull(&client))?;
    Ok(Some((schema, format!("live from {url}"))))
}

fn check(args: CheckArgs) -> Result<u8, Failure> {
    let schema = resolve_schema(&args.schema, &args.target)?;
    let label = schema.as_ref().map(|(_, l)| l.clone());
    let plan =
        mapping::load(&args.mapping, schema.map(|(s, _)| Arc::new(s))).map_err(Failure::Mapping)?;
    let mut out = std::io::stdout().lock();
    let t = &plan.ticket;
    let _ = writeln!(out, "{}: mapping is valid", args.mapping.display());
    let _ = writeln!(
        out,
        "  {} ticket custom fields, {} contact custom fields, {} side files, conversation: {}, final status: {}",
        t.custom_fields.len(),
        t.contact_fields.len(),
        plan.source.sides.len(),
        if plan.conversation.is_some() {
            "yes"
        } else {
            "no"
        },
        if plan.final_state.status.is_some() {
            "yes"
        } else {
            "no"
        },
    );
    match label {
        Some(l) => {
            let _ = writeln!(out, "  names checked against the schema ({l})");
        }
        None => {
            let _ = writeln!(
                out,
                "  names not checked: pass --schema FILE or set HAPPYFOX_URL with credentials"
            );
        }
    }
    Ok(0)
}

fn dry_run(args: DryRunArgs) -> Result<u8, Failure> {
    let (schema, label, _sandbox, _rt) = if args.sandbox {
        let path = args
            .schema
            .clone()
            .unwrap_or_else(|| PathBuf::from("samples/happyfox-schema.json"));
        let account = load_schema_file(&path)?;
        let rt = runtime()?;
        let sandbox = rt
            .block_on(crate::sandbox::spawn(crate::sandbox::SandboxConfig::new(
                account,
            )))
            .map_err(Failure::Fatal)?;
        let credentials =
            Credentials::new(sandbox.api_key.clone(), sandbox.auth_code.clone()).map_err(usage)?;
        let client = client_for(&sandbox.url, credentials)?;
        let schema = rt.block_on(pull(&client))?;
        let label = format!(
            "pulled from an in-process sandbox at {} (account {})",
            sandbox.url,
            path.display()
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
    let plan = mapping::load(&args.mapping, Some(schema.clone())).map_err(Failure::Mapping)?;
    let opts = DryRunOptions {
        mapping_path: args.mapping.clone(),
        inputs: args.input.clone(),
        sides: args.side.clone(),
        schema_label: label,
        report_dir: args.report.clone(),
        post_per_min: args.post_per_min,
    };
    let summary = match dryrun::run(&plan, schema, &opts) {
        Ok(s) => s,
        Err(DryRunError::Mapping(errors)) => {
            let text = std::fs::read_to_string(&args.mapping).unwrap_or_default();
            return Err(Failure::Mapping(MappingErrors::new(
                &args.mapping,
                &text,
                errors,
            )));
        }
        Err(e @ (DryRunError::Source(_) | DryRunError::Side { .. })) => return Err(usage(e)),
        Err(e) => return Err(Failure::Fatal(e.into())),
    };
    let text = crate::report::render_text(&summary, args.report.as_deref());
    let mut out = std::io::stdout().lock();
    if out.write_all(text.as_bytes()).is_err() {
        // A closed pipe (`| head`) is not an error worth a message.
        return Ok(if summary.all_valid() { 0 } else { 3 });
    }
    Ok(if summary.all_valid() { 0 } else { 3 })
}

fn schema_pull(out: &Path, target: &TargetArgs) -> Result<u8, Failure> {
    let url = target.url.clone().ok_or_else(|| {
        usage(anyhow::anyhow!(
            "no account URL: pass --url https://ACCOUNT.happyfox.com or set HAPPYFOX_URL"
        ))
    })?;
    let credentials = Credentials::from_env().map_err(usage)?;
    let client = client_for(&url, credentials)?;
    let schema = runtime()?.block_on(pull(&client))?;
    let text = serde_json::to_string_pretty(&schema).context("cannot serialise the schema")?;
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
    Ok(0)
}
