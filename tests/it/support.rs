//! The harness every integration test uses: the repository, the sample account, an
//! in-process sandbox on loopback, and the built binary run as a user would run it.
//!
//! One place for these so that a test reads as what it checks, and so that what every
//! run shares (no HappyFox variables inherited from the developer's shell, the repository
//! as working directory) cannot drift between files.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use hfmigrate::client::{Client, ClientOptions, Credentials, Target};
use hfmigrate::sandbox::{self, RunningSandbox, SandboxConfig};
use hfmigrate::schema::Schema;

/// Test credentials: distinctive, so a test can grep output and files for a leak.
pub const KEY: &str = "key-TOPSECRET-4711";
pub const CODE: &str = "code-TOPSECRET-0815";

/// The repository: samples, mappings and the binary's working directory.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled sample account (`samples/happyfox-schema.json`).
pub fn sample_schema() -> Schema {
    Schema::load(&root().join("samples/happyfox-schema.json")).expect("the sample schema loads")
}

/// An in-process sandbox of the sample account on `127.0.0.1:0` with [`KEY`] and
/// [`CODE`] and HappyFox's limits; `configure` changes whatever a test needs.
pub async fn start_sandbox(configure: impl FnOnce(&mut SandboxConfig)) -> RunningSandbox {
    let mut config = SandboxConfig::new(sample_schema());
    config.api_key = KEY.into();
    config.auth_code = CODE.into();
    configure(&mut config);
    sandbox::spawn(config).await.expect("the sandbox starts")
}

/// For tests about what arrives rather than about pacing: no rate limit.
pub fn unlimited(config: &mut SandboxConfig) {
    config.limits.post_per_min = 0;
    config.limits.get_per_min = 0;
}

/// Client options for tests that make more calls than HappyFox allows per minute (the
/// limit has tests of its own).
pub fn fast(options: ClientOptions) -> ClientOptions {
    ClientOptions {
        post_per_min: 100_000,
        get_per_min: 100_000,
        ..options
    }
}

/// A client of `sb` with its credentials.
pub fn client_for(sb: &RunningSandbox, options: ClientOptions) -> Client {
    let target = Target::parse(&sb.url).expect("the sandbox URL parses");
    let credentials =
        Credentials::new(sb.api_key.clone(), sb.auth_code.clone()).expect("credentials");
    Client::new(target, credentials, options).expect("a client")
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code; -1 when it was ended by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Outcome {
    fn from(out: Output) -> Outcome {
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The built `hfmigrate`, run from the repository with no HappyFox variables inherited
/// and no standard input, in the manner of casey/just's `Test` builder.
pub struct Hfmigrate(Command);

impl Hfmigrate {
    pub fn new<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Hfmigrate {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hfmigrate"));
        cmd.current_dir(root())
            .env_remove("HAPPYFOX_URL")
            .env_remove("HAPPYFOX_API_KEY")
            .env_remove("HAPPYFOX_AUTH_CODE")
            .stdin(Stdio::null())
            .args(args);
        Hfmigrate(cmd)
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Hfmigrate {
        self.0.env(key, value);
        self
    }

    /// The credentials of the test sandboxes, from the environment as a user passes them.
    pub fn credentials(self) -> Hfmigrate {
        self.env("HAPPYFOX_API_KEY", KEY)
            .env("HAPPYFOX_AUTH_CODE", CODE)
    }

    /// The command itself, for tests that spawn it and signal it.
    pub fn command(self) -> Command {
        self.0
    }

    /// Runs it to the end.
    pub fn run(mut self) -> Outcome {
        self.0.output().expect("the binary runs").into()
    }
}

/// POSTs the sandbox has received (answered or not), on every endpoint.
pub fn post_count(stats: &hfmigrate::sandbox::Stats) -> u64 {
    stats
        .requests
        .iter()
        .filter(|(label, _)| label.starts_with("POST"))
        .map(|(_, by_status)| by_status.values().sum::<u64>())
        .sum()
}
