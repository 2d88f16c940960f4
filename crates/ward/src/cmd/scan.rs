//! `ward scan`: placeholder until its issue lands.

use std::process::ExitCode;

/// Arguments of `ward scan`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `ward scan`.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("ward scan is not implemented yet")
}
