//! A local HappyFox: the same API on loopback, with faults on demand.
//!
//! Nobody can rehearse a migration against production and HappyFox has no test accounts
//! on demand, so every test and rehearsal runs the real HTTP path against this server. It
//! is exactly as strict as HappyFox (same validation, error shapes, bulk limits, rate
//! limit and lockout) and adds what production cannot: injected faults and a stats
//! endpoint that tells what the client did. Tests start it in-process with [`spawn`];
//! `hfmigrate sandbox` runs it standalone.

mod http;
pub mod limits;
mod ops;
mod permissions;
mod render;
mod search;
pub mod stats;
mod store;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use limits::{Faults, Latency, Limits};
pub use stats::Stats;

use crate::schema::Schema;
use http::{KillableListener, Shared, lock};
use store::Store;

/// Options of `hfmigrate sandbox`. `Debug` hides the auth code.
#[derive(Clone, clap::Args)]
pub(crate) struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub listen: SocketAddr,
    /// The account's schema (categories, statuses, staff, custom fields...), as written by
    /// `schema pull`; the bundled sample account (samples/happyfox-schema.json) when absent.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// API key clients must send (Basic auth user); generated when absent.
    #[arg(long, env = "HAPPYFOX_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Auth code clients must send (Basic auth password); generated when absent.
    #[arg(long, env = "HAPPYFOX_AUTH_CODE", hide_env_values = true)]
    pub auth_code: Option<String>,
    /// POST requests allowed per minute before the lockout (0: no limit).
    #[arg(long, default_value_t = crate::happyfox::POST_PER_MIN)]
    pub post_per_min: u32,
    /// GET requests allowed per minute before the lockout (0: no limit).
    #[arg(long, default_value_t = crate::happyfox::GET_PER_MIN)]
    pub get_per_min: u32,
    /// How long every call gets 429 after a limit was exceeded.
    #[arg(long, default_value = "10m", value_parser = crate::duration::parse)]
    pub lockout: Duration,
    /// Delay added to every API call: `50ms`, or a range such as `50ms..800ms`.
    #[arg(long)]
    pub latency: Option<Latency>,
    /// Share of API calls answered 500 before anything is stored (`0.05` or `5%`).
    #[arg(long, default_value = "0", value_parser = limits::parse_probability)]
    pub fail_rate: f64,
    /// Share of successful writes stored and then answered by closing the connection.
    #[arg(long, default_value = "0", value_parser = limits::parse_probability)]
    pub drop_rate: f64,
    /// Seed for repeatable faults.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep the account in this JSON file: loaded at start, saved every few seconds and
    /// on exit.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Answer 409 to a write on a ticket that already has a write in progress (overlaps
    /// are always counted in the stats).
    #[arg(long)]
    pub reject_overlaps: bool,
    /// Answer 413 to a request whose body is larger than this many bytes (HappyFox takes
    /// 25 MB of attachments and a little framing): to rehearse a front end with a lower
    /// limit than the documented one.
    #[arg(long, default_value_t = http::MAX_BODY)]
    pub max_body_bytes: usize,
    /// Keep a new ticket out of search results (`GET tickets/?q=`) for this long after it
    /// was created: an account whose search index lags behind its writes.
    #[arg(long, value_parser = crate::duration::parse)]
    pub search_lag: Option<Duration>,
}

/// Everything a sandbox needs to start. `Debug` hides the auth code.
#[derive(Clone)]
pub struct SandboxConfig {
    pub schema: Schema,
    pub api_key: String,
    pub auth_code: String,
    pub limits: Limits,
    pub faults: Faults,
    /// Load from and save to this file (see [`SandboxArgs::state`]).
    pub state_file: Option<PathBuf>,
    /// How often the state file is rewritten when something changed.
    pub save_every: Duration,
    /// Answer 409 to overlapping writes on one ticket instead of only counting them.
    pub reject_overlaps: bool,
    /// Largest request body taken; larger ones get 413 (see [`SandboxArgs::max_body_bytes`]).
    pub max_body_bytes: usize,
}

impl std::fmt::Debug for SandboxArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxArgs")
            .field("listen", &self.listen)
            .field("schema", &self.schema)
            .field("api_key", &self.api_key)
            .field("auth_code", &self.auth_code.as_ref().map(|_| "<hidden>"))
            .field("post_per_min", &self.post_per_min)
            .field("get_per_min", &self.get_per_min)
            .field("lockout", &self.lockout)
            .field("latency", &self.latency)
            .field("fail_rate", &self.fail_rate)
            .field("drop_rate", &self.drop_rate)
            .field("seed", &self.seed)
            .field("state", &self.state)
            .field("reject_overlaps", &self.reject_overlaps)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("search_lag", &self.search_lag)
            .finish()
    }
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("api_key", &self.api_key)
            .field("auth_code", &"<hidden>")
            .field("limits", &self.limits)
            .field("faults", &self.faults)
            .field("state_file", &self.state_file)
            .field("save_every", &self.save_every)
            .field("reject_overlaps", &self.reject_overlaps)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl SandboxConfig {
    /// HappyFox's defaults (rate limit on, no faults, no state file) with random
    /// credentials.
    pub fn new(schema: Schema) -> SandboxConfig {
        SandboxConfig {
            schema,
            api_key: random_token(),
            auth_code: random_token(),
            limits: Limits::default(),
            faults: Faults::default(),
            state_file: None,
            save_every: Duration::from_secs(5),
            reject_overlaps: false,
            max_body_bytes: http::MAX_BODY,
        }
    }

    /// The sandbox of the bundled sample account.
    pub fn with_sample_schema() -> SandboxConfig {
        SandboxConfig::new(Schema::sample())
    }
}

fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

/// An uploaded attachment as the sandbox keeps it (contents are not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttachment {
    pub id: u64,
    pub filename: String,
    pub size: u64,
    /// Hex SHA-256 of the uploaded bytes.
    pub sha256: String,
}

/// A sandbox started by [`spawn`]; dropping it stops the server.
pub struct RunningSandbox {
    /// The account URL, e.g. `http://127.0.0.1:40123`; the API is under `/api/1.1/json/`.
    pub url: String,
    pub api_key: String,
    pub auth_code: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl std::fmt::Debug for RunningSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSandbox")
            .field("url", &self.url)
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

impl RunningSandbox {
    /// The API base, `<url>/api/1.1/json/`.
    pub fn api(&self) -> String {
        format!("{}/api/1.1/json/", self.url)
    }

    /// The same counters as `GET /_sandbox/stats`, read in-process.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// An attachment stored on a ticket (by the id `GET ticket/<n>/` lists), with what
    /// HappyFox does not show: its size and SHA-256, so tests can check the bytes arrived.
    pub fn attachment(&self, id: u64) -> Option<StoredAttachment> {
        let store = lock(&self.shared.store);
        store
            .tickets
            .values()
            .flat_map(|t| &t.updates)
            .filter_map(|u| u.message.as_deref())
            .flat_map(|m| &m.attachments)
            .find(|a| a.id == id)
            .map(|a| StoredAttachment {
                id: a.id,
                filename: a.filename.clone(),
                size: a.size,
                sha256: a.sha256.clone(),
            })
    }

    /// Stops accepting requests, lets in-flight ones finish and saves the state file.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.context("sandbox task failed")?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn base_url(listener: &TcpListener) -> anyhow::Result<String> {
    let addr = listener.local_addr().context("listener has no address")?;
    Ok(format!("http://{addr}"))
}

fn prepare(config: &SandboxConfig, url: String) -> anyhow::Result<Arc<Shared>> {
    let store = match &config.state_file {
        Some(path) => Store::load(path)?,
        None => Store::default(),
    };
    Ok(Arc::new(Shared::new(config, store, url)))
}

/// Serves the sandbox on `listener` until the returned future is dropped. The state file,
/// if any, is saved periodically (use [`spawn`] or the CLI for a final save on stop).
pub async fn serve(listener: TcpListener, config: SandboxConfig) -> anyhow::Result<()> {
    let shared = prepare(&config, base_url(&listener)?)?;
    run(listener, shared, &config, std::future::pending()).await
}

/// Starts a sandbox on `127.0.0.1:0` in the background.
pub async fn spawn(config: SandboxConfig) -> anyhow::Result<RunningSandbox> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind a loopback port")?;
    let url = base_url(&listener)?;
    let shared = prepare(&config, url.clone())?;
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn({
        let shared = shared.clone();
        let config = config.clone();
        async move {
            run(listener, shared, &config, async {
                let _ = rx.await;
            })
            .await
        }
    });
    Ok(RunningSandbox {
        url,
        api_key: config.api_key,
        auth_code: config.auth_code,
        shared,
        shutdown: Some(tx),
        task: Some(task),
    })
}

/// Aborts the periodic saver when the server future ends or is dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Saves the state. Saves are serialised: a periodic save still writing when the final
/// one starts must not finish after it with an older snapshot.
async fn save(
    shared: &Shared,
    path: &std::path::Path,
    one_at_a_time: &tokio::sync::Mutex<()>,
) -> anyhow::Result<()> {
    let _turn = one_at_a_time.lock().await;
    shared.dirty.store(false, Ordering::Release);
    let bytes = serde_json::to_vec(&*lock(&shared.store)).context("cannot serialise state")?;
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || Store::write_bytes(&path, &bytes))
        .await
        .context("state writer failed")??;
    Ok(())
}

async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    config: &SandboxConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let saving = Arc::new(tokio::sync::Mutex::new(()));
    let _saver = config.state_file.clone().map(|path| {
        let shared = shared.clone();
        let saving = saving.clone();
        let every = config.save_every;
        AbortOnDrop(
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    if shared.dirty.load(Ordering::Acquire)
                        && let Err(e) = save(&shared, &path, &saving).await
                    {
                        eprintln!("sandbox: {e:#}");
                    }
                }
            })
            .abort_handle(),
        )
    });
    let app = Router::new()
        .fallback(http::handle)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(shared.clone());
    axum::serve(
        KillableListener(listener),
        app.into_make_service_with_connect_info::<http::ConnHandle>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("sandbox server failed")?;
    if let Some(path) = &config.state_file {
        save(&shared, path, &saving).await?;
    }
    Ok(())
}

/// Runs `hfmigrate sandbox` until Ctrl-C.
pub(crate) fn run_command(args: SandboxArgs) -> anyhow::Result<()> {
    let schema = match &args.schema {
        Some(path) => Schema::load(path)?,
        None => Schema::sample(),
    };
    let generated = match (&args.api_key, &args.auth_code) {
        (Some(_), Some(_)) => false,
        (None, None) => true,
        _ => anyhow::bail!(
            "give both --api-key and --auth-code (or HAPPYFOX_API_KEY and HAPPYFOX_AUTH_CODE), or neither to generate them"
        ),
    };
    let mut config = SandboxConfig::new(schema);
    if let (Some(key), Some(code)) = (args.api_key, args.auth_code) {
        config.api_key = key;
        config.auth_code = code;
    }
    config.limits = Limits {
        post_per_min: args.post_per_min,
        get_per_min: args.get_per_min,
        lockout: args.lockout,
    };
    config.faults = Faults {
        latency: args.latency,
        fail_rate: args.fail_rate,
        drop_rate: args.drop_rate,
        seed: args.seed,
        search_lag: args.search_lag,
        ..Faults::default()
    };
    config.state_file = args.state;
    config.reject_overlaps = args.reject_overlaps;
    config.max_body_bytes = args.max_body_bytes;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let url = base_url(&listener)?;
        let shared = prepare(&config, url.clone())?;
        println!("HappyFox sandbox listening on {url}");
        println!("  API base:  {url}/api/1.1/json/");
        println!("  stats:     {url}/_sandbox/stats   reset: POST {url}/_sandbox/reset");
        if generated {
            println!("  HAPPYFOX_API_KEY={}", config.api_key);
            println!("  HAPPYFOX_AUTH_CODE={}", config.auth_code);
        } else {
            // Given credentials may be a real account's (exported in this shell): never
            // echoed, like every credential the program handles.
            println!("  credentials: as given (--api-key/--auth-code or HAPPYFOX_API_KEY/HAPPYFOX_AUTH_CODE)");
        }
        println!(
            "  limits:    {} POST/min, {} GET/min, lockout {}",
            config.limits.post_per_min,
            config.limits.get_per_min,
            crate::duration::format(config.limits.lockout)
        );
        if config.max_body_bytes != http::MAX_BODY {
            println!("  bodies:    413 over {} bytes", config.max_body_bytes);
        }
        if let Some(lag) = config.faults.search_lag {
            println!("  search:    new tickets found after {}", crate::duration::format(lag));
        }
        println!("Press Ctrl-C to stop.");
        run(listener, shared, &config, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_auth_code() {
        let mut c = SandboxConfig::new(Schema::default());
        c.auth_code = "s3cret-code".into();
        assert!(!format!("{c:?}").contains("s3cret-code"));
    }
}
