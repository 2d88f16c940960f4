//! The whole suite against one registry, as one JSON document.
//!
//! A benchmark that fails is recorded as `{"error": ...}` in its place and the suite
//! goes on, so a registry still under construction yields every figure it can.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::Target;
use super::manifest_get::{self, Driver, ManifestGetOptions, ManifestGetReport};
use super::push_pull::{self, PushPullReport};
use super::raw::{self, RawReport};
use super::small_blobs::{self, SmallBlobsOptions, SmallBlobsReport};
use crate::client::AuthMode;
use crate::error::BenchError;
use crate::report::{Machine, load_average};

/// The targets on the 2-core machine.
const PUSH_VS_RAW_LIMIT_PCT_MIN: f64 = 80.0;
const PUSH_PEAK_RSS_MIB_MAX: f64 = 64.0;
const SMALL_BLOBS_PER_S_MIN: f64 = 150.0;
const MANIFEST_GET_PER_S_MIN: f64 = 20_000.0;

/// A benchmark's report, or why it failed.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Outcome<T> {
    /// It ran.
    Done(T),
    /// It failed.
    Failed {
        /// The error, as a person reads it.
        error: String,
    },
}

impl<T> Outcome<T> {
    fn from_result(result: Result<T, BenchError>) -> Self {
        match result {
            Ok(report) => Outcome::Done(report),
            Err(e) => Outcome::Failed {
                error: e.to_string(),
            },
        }
    }

    fn done(&self) -> Option<&T> {
        match self {
            Outcome::Done(report) => Some(report),
            Outcome::Failed { .. } => None,
        }
    }

    /// Whether the benchmark failed.
    pub fn failed(&self) -> bool {
        matches!(self, Outcome::Failed { .. })
    }
}

/// Where the machine's limits come from.
pub enum RawSource {
    /// Measure them now with a file of this size in this directory.
    Measure {
        /// Scratch directory (on the filesystem the registry stores to).
        dir: PathBuf,
        /// File size.
        size_bytes: u64,
    },
    /// Read a report `ward-bench raw --json` wrote before.
    File(PathBuf),
}

/// Sizes and loads of the suite.
pub struct AllOptions {
    /// The machine's limits.
    pub raw: RawSource,
    /// The large blob.
    pub push_size_bytes: u64,
    /// The small blobs.
    pub small_blobs: SmallBlobsOptions,
    /// Manifest `GET` load; `driver` is replaced by each of `drivers`.
    pub manifest_get: ManifestGetOptions,
    /// Load generators for manifest `GET`, each run in turn.
    pub drivers: Vec<Driver>,
}

/// A target of the issue and whether this run met it.
#[derive(Clone, Debug, Serialize)]
pub struct TargetCheck {
    /// The target in words.
    pub goal: &'static str,
    /// The figure compared.
    pub value: Option<f64>,
    /// `None` when the figure is missing (a failed benchmark, or no `--server-pid`).
    pub met: Option<bool>,
}

/// The suite's document.
#[derive(Clone, Debug, Serialize)]
pub struct AllReport {
    /// Always `all`.
    pub kind: &'static str,
    /// Version of this tool.
    pub tool_version: &'static str,
    /// Start time, seconds since the Unix epoch.
    pub started_unix: u64,
    /// The machine.
    pub machine: Machine,
    /// The registry's origin.
    pub registry: String,
    /// How the registry authenticated the client.
    pub auth: AuthMode,
    /// Load average before the suite (the machine may be shared).
    pub load_avg_before: Option<String>,
    /// Load average after it.
    pub load_avg_after: Option<String>,
    /// The machine's limits.
    pub raw: Outcome<RawReport>,
    /// One large blob.
    pub push_pull: Outcome<PushPullReport>,
    /// Many small blobs.
    pub small_blobs: Outcome<SmallBlobsReport>,
    /// Manifest `GET`, by driver.
    pub manifest_get: BTreeMap<&'static str, Outcome<ManifestGetReport>>,
    /// Push rate as a percentage of min(sha256, write+fsync).
    pub push_pct_of_raw_limit: Option<f64>,
    /// The targets.
    pub targets: BTreeMap<&'static str, TargetCheck>,
}

impl AllReport {
    /// Whether any benchmark failed.
    pub fn any_failed(&self) -> bool {
        self.raw.failed()
            || self.push_pull.failed()
            || self.small_blobs.failed()
            || self.manifest_get.values().any(Outcome::failed)
    }
}

/// Runs the suite.
pub async fn run(target: &Target, options: AllOptions) -> AllReport {
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let load_avg_before = load_average();
    let raw = Outcome::from_result(match &options.raw {
        RawSource::Measure { dir, size_bytes } => raw::run(dir, *size_bytes),
        RawSource::File(path) => read_raw(path),
    });
    // Reads first, then writes from small to large: the kernel writes pushed data back
    // for many seconds after a push, which would slow whatever ran next.
    let mut manifest_get = BTreeMap::new();
    for driver in options.drivers {
        let get_options = ManifestGetOptions {
            driver,
            ..options.manifest_get
        };
        let outcome = Outcome::from_result(manifest_get::run(target, get_options).await);
        manifest_get.insert(driver_name(driver), outcome);
    }
    let small_blobs = Outcome::from_result(small_blobs::run(target, options.small_blobs).await);
    let push_pull = Outcome::from_result(push_pull::run(target, options.push_size_bytes).await);
    let push_pct_of_raw_limit = match (raw.done(), push_pull.done()) {
        (Some(raw), Some(push_pull)) => Some(100.0 * push_pull.push.mb_per_s / raw.limit_mb_s()),
        _ => None,
    };
    let targets = check_targets(
        push_pct_of_raw_limit,
        push_pull.done(),
        small_blobs.done(),
        &manifest_get,
    );
    AllReport {
        kind: "all",
        tool_version: env!("CARGO_PKG_VERSION"),
        started_unix,
        machine: Machine::describe(),
        registry: target.registry.origin().to_owned(),
        auth: target.registry.auth_mode(),
        load_avg_before,
        load_avg_after: load_average(),
        raw,
        push_pull,
        small_blobs,
        manifest_get,
        push_pct_of_raw_limit,
        targets,
    }
}

/// The name a driver has in reports.
pub fn driver_name(driver: Driver) -> &'static str {
    match driver {
        Driver::Builtin => "builtin",
        Driver::Wrk => "wrk",
    }
}

fn read_raw(path: &PathBuf) -> Result<RawReport, BenchError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BenchError::io(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| {
        BenchError::Invalid(format!(
            "{} is not a report of `ward-bench raw --json`: {e}",
            path.display()
        ))
    })
}

fn check_targets(
    push_pct: Option<f64>,
    push_pull: Option<&PushPullReport>,
    small_blobs: Option<&SmallBlobsReport>,
    manifest_get: &BTreeMap<&'static str, Outcome<ManifestGetReport>>,
) -> BTreeMap<&'static str, TargetCheck> {
    let check = |goal, value: Option<f64>, met: fn(f64) -> bool| TargetCheck {
        goal,
        value,
        met: value.map(met),
    };
    let push_rss_mib = push_pull
        .and_then(|p| p.push.server_memory.as_ref())
        .and_then(|m| m.run_peak_kib())
        .map(|kib| kib as f64 / 1024.0);
    let best_get = manifest_get
        .values()
        .filter_map(Outcome::done)
        .map(|r| r.requests_per_s)
        .reduce(f64::max);
    BTreeMap::from([
        (
            "push_vs_raw_limit",
            check(
                "1 GiB push within 80% of min(sha256, write+fsync)",
                push_pct,
                |v| v >= PUSH_VS_RAW_LIMIT_PCT_MIN,
            ),
        ),
        (
            "push_peak_rss",
            check(
                "server peak RSS during the 1 GiB push under 64 MiB",
                push_rss_mib,
                |v| v < PUSH_PEAK_RSS_MIB_MAX,
            ),
        ),
        (
            "small_blobs_per_s",
            check(
                "100 x 1 MiB with 8 clients over 150 blobs/s",
                small_blobs.map(|s| s.blobs_per_s),
                |v| v > SMALL_BLOBS_PER_S_MIN,
            ),
        ),
        (
            "manifest_get_per_s",
            check(
                "manifest GET at 32 connections over 20,000/s (best driver)",
                best_get,
                |v| v > MANIFEST_GET_PER_S_MIN,
            ),
        ),
    ])
}
