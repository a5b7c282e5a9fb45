//! Reaching the HappyFox account (or an in-process sandbox) and its schema, shared by
//! the commands that need one.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::args::{ImportArgs, TargetArgs};
use super::{Failure, usage};
use crate::client::{Client, ClientOptions, Credentials, Target};
use crate::exit::Exit;
use crate::schema::Schema;

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::fatal)
}

pub(super) fn load_schema_file(path: &Path) -> Result<Schema, Failure> {
    Schema::load(path).map_err(|e| usage(anyhow::Error::new(e)).with_help("pull one with `hfmigrate schema pull --out schema.json`, or use samples/happyfox-schema.json"))
}

pub(super) trait WithHelp {
    fn with_help(self, help: &str) -> Self;
}

impl WithHelp for Failure {
    fn with_help(self, help: &str) -> Self {
        match self {
            Failure::Error {
                exit: Exit::Usage,
                error,
            } => usage(anyhow::anyhow!("{error:#}\n  help: {help}")),
            other => other,
        }
    }
}

/// The account an in-process sandbox serves: `--schema`, else the bundled sample; and
/// how to name it in messages.
pub(super) fn sandbox_account(schema: &Option<PathBuf>) -> Result<(Schema, String), Failure> {
    match schema {
        Some(path) => Ok((load_schema_file(path)?, path.display().to_string())),
        None => Ok((Schema::sample(), crate::schema::SAMPLE_NAME.to_string())),
    }
}

pub(super) fn client_for(
    url: &str,
    credentials: Credentials,
    options: ClientOptions,
) -> Result<Client, Failure> {
    let target = Target::parse(url).map_err(usage)?;
    Client::new(target, credentials, options).map_err(usage)
}

pub(super) async fn pull(client: &Client) -> Result<Schema, Failure> {
    crate::client::pull_schema(client)
        .await
        .map_err(|e| Failure::of(e).context("cannot read the account schema"))
}

/// The schema for `check`/`dry-run`: a file, else live from the account, else none.
pub(super) fn resolve_schema(
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
    let client = client_for(
        url,
        credentials,
        target.network.options(ClientOptions::default()),
    )?;
    let schema = runtime()?.block_on(pull(&client))?;
    Ok(Some((schema, format!("live from {url}"))))
}

/// The account an import talks to, and the sandbox behind it when `--sandbox` is used.
pub(super) struct ImportTarget {
    pub(super) client: Client,
    pub(super) schema: Schema,
    pub(super) label: String,
    pub(super) sandbox: Option<crate::sandbox::RunningSandbox>,
}

pub(super) fn import_target(
    args: &ImportArgs,
    rt: &tokio::runtime::Runtime,
    options: ClientOptions,
) -> Result<ImportTarget, Failure> {
    if args.sandbox {
        let (account, _) = sandbox_account(&args.schema)?;
        let mut config = crate::sandbox::SandboxConfig::new(account);
        // A rehearsal of correctness, not of HappyFox's pacing: the sandbox does not limit,
        // while the client keeps its own ceilings.
        config.limits.post_per_min = 0;
        config.limits.get_per_min = 0;
        let sandbox = rt
            .block_on(crate::sandbox::spawn(config))
            .map_err(Failure::fatal)?;
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
                .map_err(|e| Failure::of(e).context("cannot reach the HappyFox account"))?;
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
