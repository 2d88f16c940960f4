//! `ward`: the registry server and its command-line client in one binary.

mod client;
mod cmd;
mod creds;
mod malloc;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ward",
    version,
    about = "Ward: a security-first OCI artifact registry"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the registry.
    Serve(cmd::serve::Args),
    /// Push files as an OCI artifact.
    Push(cmd::push::Args),
    /// Pull an artifact's files, verifying every digest.
    Pull(cmd::pull::Args),
    /// Save credentials for a registry.
    Login(cmd::login::Args),
    /// Forget saved credentials.
    Logout(cmd::login::LogoutArgs),
    /// Manage users, robots, tokens, roles, policies, repositories and immutability.
    Admin(cmd::admin::Args),
    /// Scan model files, directories and archives for code-execution payloads.
    Scan(cmd::scan::Args),
    /// Sign an artifact or a model directory.
    Sign(cmd::sign::Args),
    /// Verify a signed model or artifact against keys or certificate identities.
    Verify(cmd::verify::Args),
    /// Decide whether a reference may be deployed: resolve it, verify its
    /// signatures, print the digest to pin (exit 0 allow, 1 refuse, 2 error).
    Gate(cmd::gate::Args),
    /// Generate and inspect signing keys (cosign-compatible).
    Key(cmd::key::Args),
    /// Inspect and verify the audit log.
    Audit(cmd::audit::Args),
}

fn main() -> ExitCode {
    malloc::return_large_buffers_on_free();
    let cli = Cli::parse();
    let result = match cli.command {
        // Offline and CPU-bound: no async runtime, whose start-up (threads,
        // reading the cgroup's CPU quota) is most of the time a small scan takes.
        Command::Scan(args) => cmd::scan::run(args),
        command => tokio::runtime::Builder::new_multi_thread()
            // Tasks woken from outside the runtime wait in its global queue, which
            // a busy worker looks at only every this many tasks (31 by default).
            // The audit writer is woken so by SQLite's thread after each commit,
            // and every audited request waits for that commit: checking every 4
            // tasks raised audited manifest GETs by about a tenth here
            // (BENCHMARKS.md, "Manifest GET with the audit log on").
            .global_queue_interval(4)
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(run(command))),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => cmd::serve::run(args).await,
        Command::Push(args) => cmd::push::run(args).await,
        Command::Pull(args) => cmd::pull::run(args).await,
        Command::Login(args) => cmd::login::run(args).await,
        Command::Logout(args) => cmd::login::logout(args).await,
        Command::Admin(args) => cmd::admin::run(args).await,
        Command::Scan(args) => cmd::scan::run(args),
        Command::Sign(args) => cmd::sign::run(args).await,
        Command::Verify(args) => cmd::verify::run(args).await,
        Command::Gate(args) => cmd::gate::run(args).await,
        Command::Key(args) => cmd::key::run(args).await,
        Command::Audit(args) => cmd::audit::run(args).await,
    }
}
