//! `ward-bench`: measures an OCI Distribution registry (Ward, or any peer) over HTTP.
//!
//! Subcommands measure the machine's limits (`raw`), one large blob pushed and pulled
//! (`push-pull`), many small blobs pushed concurrently (`small-blobs`), and manifest
//! `GET` throughput (`manifest-get`); `all` runs the suite as one JSON document and
//! `combine` puts several such documents side by side. Every figure comes from the
//! protocol alone, so the tool measures Ward and its peers the same way, and it is
//! written to cost the shared CPU little: content comes from a fast PRNG instead of
//! memory, and the request loop reuses connections and preallocated state.

mod bench;
mod blobgen;
mod challenge;
mod client;
mod error;
mod histogram;
mod procmem;
mod rawhttp;
mod report;
mod units;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use serde_json::Value;

use crate::bench::Target;
use crate::bench::all::{AllOptions, RawSource};
use crate::bench::manifest_get::{Driver, ManifestGetOptions};
use crate::bench::small_blobs::SmallBlobsOptions;
use crate::client::{Credentials, Registry};
use crate::error::BenchError;
use crate::procmem::MemoryOptions;
use crate::report::Row;
use crate::units::{parse_duration, parse_size};

#[derive(Parser)]
#[command(
    name = "ward-bench",
    version,
    about = "Benchmarks an OCI Distribution registry (Ward or a peer) over HTTP"
)]
struct Cli {
    /// Print one JSON object instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Client runtime threads; 1 runs the client on one core, leaving the rest to the server.
    #[arg(long, global = true, default_value_t = 1)]
    client_threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The machine's limits: sha256 rate of one core and sequential write + fsync rate.
    Raw(RawArgs),
    /// One blob pushed monolithically (POST + streaming PUT) and pulled back, digest verified.
    PushPull(PushPullArgs),
    /// Distinct small blobs pushed by concurrent clients.
    SmallBlobs(SmallBlobsArgs),
    /// Manifest GET by tag from many keep-alive connections.
    ManifestGet(ManifestGetArgs),
    /// The whole suite against one registry, as one JSON document.
    All(AllArgs),
    /// Prints `all` documents side by side and writes them into one JSON file.
    Combine(CombineArgs),
    /// Waits until a registry answers `GET /v2/` (any status), for scripts.
    Wait(WaitArgs),
}

#[derive(Args)]
struct RegistryArgs {
    /// The registry's base URL (plain http).
    #[arg(
        long,
        env = "WARD_BENCH_REGISTRY",
        default_value = "http://127.0.0.1:5000"
    )]
    registry: String,
    /// User for Basic auth or the token flow.
    #[arg(long, env = "WARD_BENCH_USER")]
    user: Option<String>,
    /// Password; prefer the environment variable, which `ps` does not show.
    #[arg(
        long,
        env = "WARD_BENCH_PASSWORD",
        hide_env_values = true,
        requires = "user"
    )]
    password: Option<String>,
}

#[derive(Args)]
struct TargetArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// The server's pid, to report its peak memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Reset the server's VmHWM before each benchmark (writes 5 to /proc/<pid>/clear_refs).
    #[arg(long, requires = "server_pid")]
    reset_hwm: bool,
    /// How often to sample the server's VmRSS; 0ms disables sampling.
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    rss_sample: Duration,
    /// Repositories are created under this namespace.
    #[arg(long, default_value = "ward-bench")]
    namespace: String,
    /// Seed of the generated content (default: from the clock, so each run pushes new blobs).
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Args)]
struct RawArgs {
    /// Directory for the scratch file; use the filesystem the registry stores to.
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: PathBuf,
    /// Size of the scratch file.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    size: u64,
}

#[derive(Args)]
struct PushPullArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Size of the blob.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    size: u64,
}

#[derive(Args)]
struct SmallBlobsArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Number of distinct blobs.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Size of each blob.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    size: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

#[derive(Args)]
struct GetLoadArgs {
    /// Keep-alive connections.
    #[arg(long = "concurrency", default_value_t = 32)]
    get_concurrency: usize,
    /// Length of the measurement.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Warm-up before measuring (built-in driver).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// wrk threads (with --driver wrk).
    #[arg(long, default_value_t = 1)]
    wrk_threads: usize,
}

#[derive(Args)]
struct ManifestGetArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    load: GetLoadArgs,
    /// Load generator.
    #[arg(long, value_enum, default_value = "builtin")]
    driver: Driver,
}

#[derive(Args)]
struct AllArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Directory for the raw measurement's scratch file.
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: PathBuf,
    /// Size of the raw measurement's file.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    raw_size: u64,
    /// Take the raw limits from `ward-bench raw --json` output instead of measuring.
    #[arg(long)]
    raw_json: Option<PathBuf>,
    /// Size of the pushed and pulled blob.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    push_size: u64,
    /// Number of small blobs.
    #[arg(long, default_value_t = 100)]
    small_count: usize,
    /// Size of each small blob.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    small_size: u64,
    /// Concurrent clients pushing small blobs.
    #[arg(long, default_value_t = 8)]
    small_concurrency: usize,
    #[command(flatten)]
    load: GetLoadArgs,
    /// Load generators for manifest GET, run in turn.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "builtin,wrk")]
    drivers: Vec<Driver>,
}

#[derive(Args)]
struct CombineArgs {
    /// Reports as NAME=FILE (each written by `ward-bench all --json`).
    #[arg(required = true, value_parser = parse_named_file)]
    reports: Vec<(String, PathBuf)>,
    /// Write the combined JSON document here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct WaitArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// Give up after this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
}

fn parse_named_file(text: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected NAME=FILE"))?;
    Ok((name.to_owned(), PathBuf::from(path)))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = if cli.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.client_threads)
            .enable_all()
            .build()
    };
    let outcome = runtime
        .map_err(|e| BenchError::io("starting the async runtime", e))
        .and_then(|runtime| runtime.block_on(dispatch(cli.command, cli.json)));
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ward-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command, json: bool) -> Result<ExitCode, BenchError> {
    match command {
        Command::Raw(args) => emit(
            &bench::raw::run(&args.dir, args.size)?,
            json,
            report::RAW_ROWS,
        ),
        Command::PushPull(args) => {
            let target = make_target(&args.target, 1)?;
            emit(
                &bench::push_pull::run(&target, args.size).await?,
                json,
                report::PUSH_PULL_ROWS,
            )
        }
        Command::SmallBlobs(args) => {
            let target = make_target(&args.target, args.concurrency)?;
            let options = SmallBlobsOptions {
                count: args.count,
                size_bytes: args.size,
                concurrency: args.concurrency,
            };
            emit(
                &bench::small_blobs::run(&target, options).await?,
                json,
                report::SMALL_BLOBS_ROWS,
            )
        }
        Command::ManifestGet(args) => {
            let target = make_target(&args.target, 1)?;
            let options = get_options(&args.load, args.driver);
            emit(
                &bench::manifest_get::run(&target, options).await?,
                json,
                report::MANIFEST_GET_ROWS,
            )
        }
        Command::All(args) => run_all(args, json).await,
        Command::Combine(args) => combine(&args),
        Command::Wait(args) => wait(&args).await,
    }
}

async fn run_all(args: AllArgs, json: bool) -> Result<ExitCode, BenchError> {
    let target = make_target(&args.target, args.small_concurrency)?;
    let raw = match args.raw_json {
        Some(path) => RawSource::File(path),
        None => RawSource::Measure {
            dir: args.dir,
            size_bytes: args.raw_size,
        },
    };
    let options = AllOptions {
        raw,
        push_size_bytes: args.push_size,
        small_blobs: SmallBlobsOptions {
            count: args.small_count,
            size_bytes: args.small_size,
            concurrency: args.small_concurrency,
        },
        manifest_get: get_options(&args.load, Driver::Builtin),
        drivers: args.drivers,
    };
    let report = bench::all::run(&target, options).await;
    emit(&report, json, report::ALL_ROWS)?;
    Ok(if report.any_failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn get_options(load: &GetLoadArgs, driver: Driver) -> ManifestGetOptions {
    ManifestGetOptions {
        concurrency: load.get_concurrency,
        duration: load.duration,
        warmup: load.warmup,
        driver,
        wrk_threads: load.wrk_threads,
    }
}

fn make_registry(args: &RegistryArgs, idle_connections_max: usize) -> Result<Registry, BenchError> {
    let credentials = match (&args.user, &args.password) {
        (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password.clone())),
        (Some(_), None) => {
            return Err(BenchError::Invalid(
                "--user needs --password (or WARD_BENCH_PASSWORD)".into(),
            ));
        }
        _ => None,
    };
    Registry::new(&args.registry, credentials, idle_connections_max)
}

fn make_target(args: &TargetArgs, idle_connections_max: usize) -> Result<Target, BenchError> {
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Ok(Target {
        registry: Arc::new(make_registry(&args.registry, idle_connections_max)?),
        namespace: args.namespace.clone(),
        seed: args
            .seed
            .unwrap_or(clock ^ u64::from(std::process::id()) << 32),
        memory: MemoryOptions {
            pid: args.server_pid,
            reset_hwm: args.reset_hwm,
            sample_interval: args.rss_sample,
        },
    })
}

/// Prints a report as JSON or as a table.
fn emit(report: &impl Serialize, json: bool, rows: &[Row]) -> Result<ExitCode, BenchError> {
    let value = serde_json::to_value(report)
        .map_err(|e| BenchError::Invalid(format!("serialising the report: {e}")))?;
    if json {
        println!("{value}");
    } else {
        print!("{}", report::render(&[("", &value)], rows));
    }
    Ok(ExitCode::SUCCESS)
}

fn combine(args: &CombineArgs) -> Result<ExitCode, BenchError> {
    let mut runs = serde_json::Map::new();
    for (name, path) in &args.reports {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BenchError::io(format!("reading {}", path.display()), e))?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            BenchError::Invalid(format!(
                "{} is not JSON from `ward-bench all --json`: {e}",
                path.display()
            ))
        })?;
        runs.insert(name.clone(), value);
    }
    let columns: Vec<(&str, &Value)> = runs
        .iter()
        .map(|(name, value)| (name.as_str(), value))
        .collect();
    print!("{}", report::render(&columns, report::ALL_ROWS));
    if let Some(out) = &args.out {
        let document = serde_json::json!({ "kind": "combined", "tool_version": env!("CARGO_PKG_VERSION"), "runs": runs });
        let text = serde_json::to_string_pretty(&document)
            .map_err(|e| BenchError::Invalid(format!("serialising the combined report: {e}")))?;
        std::fs::write(out, text + "\n")
            .map_err(|e| BenchError::io(format!("writing {}", out.display()), e))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Polls `GET /v2/` every 100 ms: a script starting a server has nothing else to wait on.
async fn wait(args: &WaitArgs) -> Result<ExitCode, BenchError> {
    let registry = make_registry(&args.registry, 1)?;
    let url = format!("{}/v2/", registry.origin());
    let deadline = Instant::now() + args.timeout;
    loop {
        let error = match registry.probe().await {
            Ok(_) => return Ok(ExitCode::SUCCESS),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(BenchError::Invalid(format!(
                "no answer from {url} within {:?}: {error}",
                args.timeout
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
