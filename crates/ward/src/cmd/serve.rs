//! `ward serve`: run the registry.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ward_server::config::{Config, LogFormat};

/// Arguments of `ward serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file (TOML); every key can also be set with a WARD_* variable.
    #[arg(long, env = "WARD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:5000.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Where the embedded database and blobs live.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Runs `ward serve` until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    init_logging(&config)?;
    let running = ward_server::start(config).await?;
    // One machine-readable line, so scripts and tests know when and where it listens.
    println!("ward listening on {}", running.local_addr);
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    running.stop().await;
    Ok(ExitCode::SUCCESS)
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARD_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log_level))
        .context("invalid log_level")?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("setting up logging: {e}"))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
