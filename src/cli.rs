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

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The mapping file.
    #[arg(long)]
    pub mapping: PathBuf,
    /// Export files, or the export folder.
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Override a side file's path: `--side users=exports/users.json`.
    #[arg(long, value_parser = parse_side)]
    pub side: Vec<(String, PathBuf)>,
    /// The journal (SQLite) that makes the import resumable: one file per migration. Run
    /// the same command again to continue where it stopped.
    #[arg(long)]
    pub journal: PathBuf,
    /// A schema snapshot; fetched live from the account when absent.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Import into an in-process sandbox (with --schema, or samples/happyfox-schema.json):
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
    /// How long to pause after a 429 that gives no Retry-After (HappyFox locks out for 10m).
    #[arg(long, default_value = "10m", value_parser = crate::sandbox::limits::parse_duration, hide = true)]
    pub lockout: std::time::Duration,
    /// Wait before searching for the tickets of a batch whose answer was lost.
    #[arg(long, default_value = "5s", value_parser = crate::sandbox::limits::parse_duration, hide = true)]
    pub reconcile_delay: std::time::Duration,
    /// Interval of the progress lines when stdout is not a terminal.
    #[arg(long, default_value = "10s", value_parser = crate::sandbox::limits::parse_duration, hide = true)]
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
pub struct StatusArgs {
    /// The journal to read (never modified).
    #[arg(long)]
    pub journal: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
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
pub struct ResultsArgs {
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
        Command::Import(args) => import(args),
        Command::Status(args) => status(&args),
        Command::Results(args) => results(&args),
        Command::Verify(args) => verify(&args),
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
    Schema::load(path).map_err(|e| usage(anyhow::Error::new(e)).with_help("pull one with `hfmigrate schema pull --out schema.json`, or use samples/happyfox-schema.json"))
}

trait WithHelp {
    fn with_help(self, help: &str) -> Self;
}

impl WithHelp for Failure {
    fn with_help(self, help: &str) -> Self {
        match self {
            Failure::Usage(e) => Failure::Usage(anyhow::anyhow!("{e:#}\n  help: {help}")),
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

/// The account an import talks to, and the sandbox behind it when `--sandbox` is used.
struct ImportTarget {
    client: Client,
    schema: Schema,
    label: String,
    sandbox: Option<crate::sandbox::RunningSandbox>,
}

fn import_target(
    args: &ImportArgs,
    rt: &tokio::runtime::Runtime,
    options: ClientOptions,
) -> Result<ImportTarget, Failure> {
    if args.sandbox {
        let path = args
            .schema
            .clone()
            .unwrap_or_else(|| PathBuf::from("samples/happyfox-schema.json"));
        let mut config = crate::sandbox::SandboxConfig::new(load_schema_file(&path)?);
        // A rehearsal of correctness, not of HappyFox's pacing: the sandbox does not limit,
        // while the client keeps its own ceilings.
        config.limits.post_per_min = 0;
        config.limits.get_per_min = 0;
        let sandbox = rt
            .block_on(crate::sandbox::spawn(config))
            .map_err(Failure::Fatal)?;
        let credentials =
            Credentials::new(sandbox.api_key.clone(), sandbox.auth_code.clone()).map_err(usage)?;
        let target = Target::parse(&sandbox.url).map_err(usage)?;
        let client = Client::new(target, credentials, options).map_err(usage)?;
        let schema = rt.block_on(pull(&client))?;
        let label = format!("an in-process sandbox at {}", sandbox.url);
        return Ok(ImportTarget {
            client,
            schema,
            label,
            sandbox: Some(sandbox),
        });
    }
    let url = args.target.url.clone().ok_or_else(|| {
        usage(anyhow::anyhow!(
            "no account URL: pass --url https://ACCOUNT.happyfox.com or set HAPPYFOX_URL (or rehearse with --sandbox)"
        ))
    })?;
    let credentials = Credentials::from_env().map_err(usage)?;
    let target = Target::parse(&url).map_err(usage)?;
    let client = Client::new(target, credentials, options).map_err(usage)?;
    // A live schema pull doubles as the check that the URL and credentials work; with a
    // schema file, one GET does that, before anything is read or written.
    let schema = match &args.schema {
        Some(path) => {
            let schema = load_schema_file(path)?;
            rt.block_on(client.get_json("statuses/", &[]))
                .map_err(|e| client_failure(e, "cannot reach the HappyFox account"))?;
            schema
        }
        None => rt.block_on(pull(&client))?,
    };
    let label = client.target().account_url();
    Ok(ImportTarget {
        client,
        schema,
        label,
        sandbox: None,
    })
}

fn client_failure(e: crate::client::ClientError, context: &str) -> Failure {
    if e.is_configuration() {
        usage(e)
    } else {
        Failure::Fatal(anyhow::Error::new(e).context(context.to_owned()))
    }
}

fn import(args: ImportArgs) -> Result<u8, Failure> {
    use crate::import::{self, ImportError, ImportOptions, Interrupts, SendOptions};
    use std::io::IsTerminal;

    if args.dry_run {
        return Err(usage(anyhow::anyhow!(
            "import has no --dry-run: use `hfmigrate dry-run` with the same --mapping and --input (it sends nothing)"
        )));
    }
    let interactive = std::io::stdin().is_terminal();
    if !args.yes && !interactive {
        return Err(usage(anyhow::anyhow!(
            "refusing to import without confirmation: stdin is not a terminal, so nobody can answer the prompt; pass --yes to import without asking"
        )));
    }
    if args.sandbox && args.journal.exists() {
        return Err(usage(anyhow::anyhow!(
            "{} already exists, but an in-process sandbox starts empty every time, so that journal cannot be continued against it; pass a new --journal path (or delete the old one)",
            args.journal.display()
        )));
    }
    import::check_journal_dir(&args.journal).map_err(usage)?;

    let rt = runtime()?;
    let options = ClientOptions {
        post_per_min: args.post_per_min.max(1),
        get_per_min: args.get_per_min.max(1),
        lockout: args.lockout,
        ..ClientOptions::default()
    };
    let target = import_target(&args, &rt, options)?;
    let schema = Arc::new(target.schema);
    let plan = mapping::load(&args.mapping, Some(schema.clone())).map_err(Failure::Mapping)?;
    // Attachments and inline images are read from the export's folder (never outside
    // it) or downloaded, with the source's header from the environment.
    let fetcher = {
        use crate::import::fetch::{FetchOptions, Fetcher, SourceAuth};
        let auth = SourceAuth::from_env().map_err(usage)?;
        let root = crate::source::export_root(&args.input);
        let options = FetchOptions {
            auth,
            // The in-process sandbox's test files are served over loopback http.
            allow_loopback_http: args.sandbox,
            ..FetchOptions::default()
        };
        Arc::new(Fetcher::new(&root, options).map_err(|e| {
            usage(anyhow::anyhow!(
                "cannot use the export folder {} for attachments: {e}",
                root.display()
            ))
        })?)
    };
    let closing_staff = crate::payload::conversation::closing_staff(&plan, &schema);
    let opts = ImportOptions {
        mapping_path: args.mapping.clone(),
        inputs: args.input.clone(),
        sides: args.side.clone(),
        journal_path: args.journal.clone(),
        target_url: target.client.target().account_url(),
        retry_failed: args.retry_failed,
        allow_changes: args.allow_changes,
    };
    let mut out = std::io::stdout();
    let mut prepared = match import::prepare(&plan, schema, &opts) {
        Ok(p) => p,
        Err(ImportError::Pipeline(crate::pipeline::PipelineError::Mapping(errors))) => {
            let text = std::fs::read_to_string(&args.mapping).unwrap_or_default();
            return Err(Failure::Mapping(MappingErrors::new(
                &args.mapping,
                &text,
                errors,
            )));
        }
        Err(e) if e.is_usage() => return Err(usage(e)),
        Err(e) => return Err(Failure::Fatal(e.into())),
    };

    // The plan: what will be sent and how long it takes at the ceiling.
    let r = prepared.summary.records;
    let posts = prepared.posts_left(args.batch_size);
    let _ = writeln!(out, "import into {}", target.label);
    let _ = writeln!(
        out,
        "  journal {} ({})",
        args.journal.display(),
        if prepared.resumed { "resumed" } else { "new" }
    );
    for c in &prepared.changes {
        let _ = writeln!(out, "  note: {c}");
    }
    match prepared.enqueued {
        Some(e) => {
            let _ = writeln!(
                out,
                "  validated {} records: {} valid, {} rejected, {} skipped",
                e.read, e.valid, e.rejected, e.skipped
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  mapping and inputs unchanged since the journal recorded them: not read again"
            );
        }
    }
    if prepared.requeued > 0 {
        let _ = writeln!(
            out,
            "  --retry-failed: {} failed record(s) queued again",
            prepared.requeued
        );
    }
    let _ = writeln!(
        out,
        "  tickets: {} to create, {} already created, {} failed or rejected{}",
        r.pending + r.sending,
        r.created,
        r.failed,
        if prepared.summary.batches.sending > 0 {
            format!(
                ", {} batch(es) from an earlier run to reconcile first",
                prepared.summary.batches.sending
            )
        } else {
            String::new()
        }
    );
    let secs = (posts * 60).div_ceil(u64::from(args.post_per_min.max(1)));
    let _ = writeln!(
        out,
        "  {posts} bulk create(s) of up to {} tickets at {} POST/min: about {}",
        args.batch_size,
        args.post_per_min,
        import::progress::human(std::time::Duration::from_secs(secs))
    );
    let m = prepared.summary.messages;
    let messages_left = m.pending + m.sending;
    if messages_left > 0 || m.created > 0 {
        let secs = (messages_left * 60).div_ceil(u64::from(args.post_per_min.max(1)));
        let _ = writeln!(
            out,
            "  conversations: {messages_left} message(s) to post after creation (replies, notes, final states), {} already posted: about {}",
            m.created,
            import::progress::human(std::time::Duration::from_secs(secs))
        );
    }
    if (posts > 0 || messages_left > 0) && !args.yes && !confirm(&target.label) {
        let _ = writeln!(out, "nothing sent");
        let _ = prepared.journal.finish_run("cancelled");
        return Ok(4);
    }

    let send = SendOptions {
        batch_size: args.batch_size,
        reconcile_delay: if args.sandbox {
            std::time::Duration::ZERO
        } else {
            args.reconcile_delay
        },
        post_per_min: args.post_per_min,
        fetcher: Some(fetcher.clone()),
        closing_staff,
    };
    let mut progress = import::progress::Progress::new(args.progress_every, send.batch_size);
    // One Ctrl-C counter for the whole run: ticket creation and conversations.
    let interrupts = rt.block_on(async { Interrupts::ctrl_c() });
    let report = rt.block_on(async {
        let interrupts = interrupts.clone();
        import::send_all(
            &mut prepared.journal,
            &target.client,
            &prepared.marker,
            &send,
            &mut progress,
            interrupts,
        )
        .await
    });
    progress.finish();
    // The conversations of created tickets, once no ticket is left to create: each
    // ticket's messages in order, many tickets at a time, under the same POST ceiling.
    let journal = std::sync::Mutex::new(prepared.journal);
    let mut conversation = None;
    let mut interrupted_replies = false;
    if report.stop.is_none() {
        let stop = std::sync::atomic::AtomicBool::new(false);
        let result = rt.block_on(async {
            let work = crate::import::replies::post_all_with(
                &target.client,
                &journal,
                crate::import::replies::DEFAULT_TICKETS_IN_PARALLEL,
                &stop,
                Some(&fetcher),
            );
            tokio::pin!(work);
            let mut presses = interrupts.clone();
            let before = presses.count();
            loop {
                tokio::select! {
                    r = &mut work => break Some(r),
                    n = presses.next() => {
                        stop.store(true, std::sync::atomic::Ordering::SeqCst);
                        if n > before + 1 {
                            // Abandoned: posts in flight stay `sending` and are
                            // reconciled by the next run.
                            break None;
                        }
                    }
                }
            }
        });
        interrupted_replies = stop.load(std::sync::atomic::Ordering::SeqCst);
        conversation = Some(result);
    }
    let mut journal = journal
        .into_inner()
        .map_err(|_| Failure::Fatal(anyhow::anyhow!("the journal lock was poisoned")))?;
    let (mut end, summary) = import::finish(&mut journal, &report)
        .context("cannot record the end of the run in the journal")?;
    if interrupted_replies {
        end = import::RunEnd::Interrupted;
    }
    let r = summary.records;
    let _ = writeln!(
        out,
        "this run: {} created, {} failed, {} bulk create(s); journal: {} created, {} failed or rejected, {} not yet created",
        report.created,
        report.failed,
        report.batches,
        r.created,
        r.failed,
        r.pending + r.sending
    );
    let (files_sent, files_failed) = match &conversation {
        Some(Some(Ok(c))) => (
            report.attachments_sent + c.attachments_sent,
            report.attachment_failures + c.attachment_failures,
        ),
        _ => (report.attachments_sent, report.attachment_failures),
    };
    if files_sent + files_failed > 0 {
        let _ = writeln!(
            out,
            "attachments: {files_sent} file(s) sent, {files_failed} not sent (listed in `hfmigrate results` under stage attachment)"
        );
    }
    match &conversation {
        Some(Some(Ok(c))) => {
            let _ = writeln!(
                out,
                "conversations: {} message(s) posted, {} failed, {} reconciled after an unknown outcome, {} contact(s) created; journal: {} posted, {} left",
                c.posted,
                c.failed,
                c.reconciled,
                c.contacts_created,
                summary.messages.created,
                summary.messages.pending + summary.messages.sending
            );
        }
        Some(Some(Err(e))) => {
            return Err(Failure::Fatal(anyhow::anyhow!(
                "posting conversations stopped: {e}; nothing is lost: run the same command again once this is fixed"
            )));
        }
        Some(None) => {
            let _ = writeln!(out, "conversations: abandoned on a second Ctrl-C");
        }
        None => {}
    }
    if report.unknown > 0 {
        let _ = writeln!(
            out,
            "  {} batch(es) of unknown outcome reconciled: {} ticket(s) found in HappyFox, {} batch(es) sent again",
            report.unknown, report.found, report.resent
        );
    }
    let stats = target.client.stats();
    if stats.throttled > 0 {
        let _ = writeln!(
            out,
            "  HappyFox throttled {} request(s): lower --post-per-min",
            stats.throttled
        );
    }
    if let Some(sb) = target.sandbox {
        let s = sb.stats();
        let _ = writeln!(
            out,
            "  sandbox: {} tickets, {} requests answered 429",
            s.tickets, s.rate_limited
        );
        let _ = rt.block_on(sb.stop());
    }
    if r.failed > 0 || files_failed > 0 {
        let _ = writeln!(
            out,
            "  see what failed: hfmigrate results --journal {} --out results/",
            args.journal.display()
        );
    }
    match report.stop {
        Some(import::Stop::Client(e)) => {
            return Err(Failure::Fatal(anyhow::Error::new(e).context(
                "import stopped; nothing is lost: the journal has every outcome, so run the same command again once this is fixed",
            )));
        }
        Some(import::Stop::Journal(e)) => {
            return Err(Failure::Fatal(anyhow::Error::new(e).context(
                "import stopped: the journal cannot record outcomes; batches in flight will be reconciled by the next run",
            )));
        }
        Some(import::Stop::Internal(e)) => {
            return Err(Failure::Fatal(anyhow::anyhow!(
                "import stopped: {e}; run the same command again to continue"
            )));
        }
        Some(import::Stop::Interrupted | import::Stop::Abandoned { .. }) => {
            let _ = writeln!(
                out,
                "interrupted: run the same command again to continue where it stopped"
            );
        }
        None if interrupted_replies => {
            let _ = writeln!(
                out,
                "interrupted: run the same command again to continue where it stopped"
            );
        }
        None => {}
    }
    Ok(end.exit_code())
}

/// Asks on the terminal; anything but yes is no.
fn confirm(target: &str) -> bool {
    eprint!("create these tickets in {target}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

fn status(args: &StatusArgs) -> Result<u8, Failure> {
    let journal = crate::journal::Journal::open_read_only(&args.journal).map_err(usage)?;
    let s = journal
        .summary()
        .context("cannot read the journal summary")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let text = serde_json::to_string_pretty(&s).context("cannot encode the summary")?;
        let _ = writeln!(out, "{text}");
        return Ok(0);
    }
    let r = s.records;
    let _ = writeln!(out, "journal {}", args.journal.display());
    let _ = writeln!(out, "  target:   {}", s.target_url);
    let _ = writeln!(
        out,
        "  runs:     {} (first started {}, last finished {})",
        s.runs,
        s.started_at.as_deref().unwrap_or("-"),
        s.last_finished_at.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "  records:  {} total: {} created, {} failed or rejected, {} pending, {} sending",
        r.total, r.created, r.failed, r.pending, r.sending
    );
    let m = s.messages;
    let _ = writeln!(
        out,
        "  messages: {} total: {} posted, {} failed, {} pending, {} of unknown outcome (reconciled on the next run)",
        m.total, m.created, m.failed, m.pending, m.sending
    );
    let b = &s.batches;
    let _ = writeln!(
        out,
        "  batches:  {} total, {} finished, {} without an answer{}",
        b.total,
        b.finished,
        b.sending,
        b.mean_seconds
            .map(|m| format!(", {m:.2}s from send to answer on average"))
            .unwrap_or_default()
    );
    if b.sending > 0 {
        let _ = writeln!(
            out,
            "  the next import reconciles the {} batch(es) without an answer before sending anything",
            b.sending
        );
    }
    Ok(0)
}

fn results(args: &ResultsArgs) -> Result<u8, Failure> {
    let journal = crate::journal::Journal::open_read_only(&args.journal).map_err(usage)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))
        .map_err(Failure::Usage)?;
    let w = journal.write_results(&args.out).map_err(usage)?;
    println!(
        "wrote {} ({} tickets created) and {} ({} records to fix)",
        w.success_csv.display(),
        w.successes,
        w.errors_csv.display(),
        w.errors
    );
    Ok(0)
}

fn verify(args: &VerifyArgs) -> Result<u8, Failure> {
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
        Err(VerifyError::Client(e)) => return Err(client_failure(e, "cannot read the tickets")),
        Err(e @ VerifyError::NoMarker) => return Err(usage(e)),
        Err(e) => return Err(Failure::Fatal(e.into())),
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
    Ok(if v.is_clean() { 0 } else { 3 })
}
