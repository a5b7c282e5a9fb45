//! A local HappyFox: the same API on loopback, with faults on demand (to be implemented).

/// Options of `hfmigrate sandbox`.
#[derive(Debug, Clone, clap::Args)]
pub struct SandboxArgs {}

/// Runs `hfmigrate sandbox` until Ctrl-C.
pub fn run_command(_args: SandboxArgs) -> anyhow::Result<()> {
    anyhow::bail!("the sandbox is not implemented yet")
}
