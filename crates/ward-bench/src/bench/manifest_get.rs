//! Manifest `GET` by tag from many keep-alive connections.
//!
//! The built-in driver keeps one keep-alive connection per task and sends the same
//! prebuilt request bytes over it ([`crate::rawhttp`]); nothing is allocated per request
//! and latencies go into a fixed-size histogram.
//! Requests are counted when they complete inside the measurement window, which opens
//! after a warm-up so every connection is established and the server is warm.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use http::header;
use serde::Serialize;
use serde_json::json;

use super::{Target, finish_watch, millis, wrk};
use crate::blobgen::{BlobSpec, ReqBody, Sha256Digest};
use crate::client::{self, AuthMode, Registry, SMALL_BODY_BYTES_MAX};
use crate::error::BenchError;
use crate::histogram::Histogram;
use crate::procmem::ServerMemory;
use crate::rawhttp;

/// The manifest type pushed and asked for.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const LAYER_BYTES: u64 = 4096;
/// The tag hammered.
pub const TAG: &str = "bench";
/// Pause before reconnecting after a failed connect, so a dead server is not spun on.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// Which load generator produced a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// This tool's own HTTP/1.1 client.
    Builtin,
    /// `wrk` (Debian package `wrk`), driven with a generated Lua script.
    Wrk,
}

/// How hard and how long.
#[derive(Clone, Copy, Debug)]
pub struct ManifestGetOptions {
    /// Keep-alive connections.
    pub concurrency: usize,
    /// Length of the measurement window.
    pub duration: Duration,
    /// Time before the window opens (built-in driver only; wrk has no warm-up).
    pub warmup: Duration,
    /// The load generator.
    pub driver: Driver,
    /// Threads of wrk.
    pub wrk_threads: usize,
}

/// Figures of one run.
#[derive(Clone, Debug, Serialize)]
pub struct ManifestGetReport {
    /// Always `manifest-get`.
    pub kind: &'static str,
    /// Which load generator produced these figures.
    pub driver: Driver,
    /// The registry's origin.
    pub registry: String,
    /// The URL requested.
    pub url: String,
    /// The `Accept` header sent.
    pub accept: &'static str,
    /// Digest of the manifest served.
    pub manifest_digest: String,
    /// Its size.
    pub manifest_bytes: usize,
    /// How the registry authenticated the client.
    pub auth: AuthMode,
    /// Keep-alive connections.
    pub concurrency: usize,
    /// wrk threads, when wrk drove.
    pub wrk_threads: Option<usize>,
    /// Seconds of the measurement window.
    pub duration_seconds: f64,
    /// Seconds of warm-up before it.
    pub warmup_seconds: f64,
    /// Successful responses (200) completed in the window.
    pub requests: u64,
    /// Other statuses and connection failures in the window.
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Successful responses per second.
    pub requests_per_s: f64,
    /// Median latency, in ms.
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile latency, in ms.
    pub latency_p99_ms: Option<f64>,
    /// Largest latency, in ms.
    pub latency_max_ms: Option<f64>,
    /// The server's memory during the run (warm-up included).
    pub server_memory: Option<ServerMemory>,
}

/// The image pushed for the benchmark.
pub struct PushedImage {
    /// `/v2/<repo>/manifests/<tag>`.
    pub path: String,
    /// Digest of the manifest.
    pub digest: Sha256Digest,
    /// Size of the manifest.
    pub bytes: usize,
}

/// Pushes a config, a layer and a manifest under [`TAG`], and checks one `GET` of it.
pub async fn push_image(
    registry: &Registry,
    repository: &str,
    seed: u64,
) -> Result<PushedImage, BenchError> {
    let layer = BlobSpec {
        seed,
        size_bytes: LAYER_BYTES,
    }
    .generate();
    let layer_digest = Sha256Digest::of(&layer);
    let config = Bytes::from(
        json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [layer_digest.to_string()] },
        })
        .to_string(),
    );
    let config_digest = Sha256Digest::of(&config);
    for (digest, bytes) in [(layer_digest, &layer), (config_digest, &config)] {
        registry
            .push_blob(repository, &digest, bytes.len() as u64, || {
                ReqBody::full(bytes.clone())
            })
            .await?;
    }
    let manifest = Bytes::from(
        json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": { "mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest.to_string(), "size": config.len() },
            "layers": [{ "mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest.to_string(), "size": layer.len() }],
        })
        .to_string(),
    );
    registry
        .put_manifest(repository, TAG, MANIFEST_MEDIA_TYPE, &manifest)
        .await?;
    let image = PushedImage {
        path: format!("/v2/{repository}/manifests/{TAG}"),
        digest: Sha256Digest::of(&manifest),
        bytes: manifest.len(),
    };
    check_served(registry, &image).await?;
    Ok(image)
}

/// The hammered URL must answer the manifest pushed, since the load loop checks statuses only.
async fn check_served(registry: &Registry, image: &PushedImage) -> Result<(), BenchError> {
    let url = format!("{}{}", registry.origin(), image.path);
    let response = registry.send(
        http::Method::GET,
        &url,
        &[(header::ACCEPT, MANIFEST_MEDIA_TYPE)],
        || ReqBody::Empty,
    );
    let response = client::expect(response.await?, StatusCode::OK, &format!("GET {url}")).await?;
    let body = client::read_limited(response.into_body(), SMALL_BODY_BYTES_MAX).await?;
    let served = Sha256Digest::of(&body);
    if served != image.digest {
        return Err(BenchError::DigestMismatch {
            what: format!("GET {url}"),
            expected: image.digest.to_string(),
            actual: served.to_string(),
        });
    }
    Ok(())
}

/// Pushes the image and measures `GET` of its manifest with the chosen driver.
pub async fn run(
    target: &Target,
    options: ManifestGetOptions,
) -> Result<ManifestGetReport, BenchError> {
    if options.concurrency == 0 || options.duration.is_zero() {
        return Err(BenchError::Invalid(
            "manifest-get needs 1 or more connections and a non-zero duration".into(),
        ));
    }
    let registry = target.registry.clone();
    let repository = target.repository("manifest-get");
    let auth = registry
        .login(&format!("repository:{repository}:pull,push"))
        .await?;
    let image = push_image(&registry, &repository, target.seed).await?;
    let url = format!("{}{}", registry.origin(), image.path);

    let watch = target.watch_memory();
    let mut report = match options.driver {
        Driver::Builtin => run_builtin(&registry, &image, options).await?,
        Driver::Wrk => wrk_report(&registry, &url, options).await?,
    };
    report.server_memory = finish_watch(watch).await;
    report.auth = auth;
    report.manifest_digest = image.digest.to_string();
    report.manifest_bytes = image.bytes;
    Ok(report)
}

fn empty_report(
    registry: &Registry,
    url: String,
    options: ManifestGetOptions,
) -> ManifestGetReport {
    ManifestGetReport {
        kind: "manifest-get",
        driver: options.driver,
        registry: registry.origin().to_owned(),
        url,
        accept: MANIFEST_MEDIA_TYPE,
        manifest_digest: String::new(),
        manifest_bytes: 0,
        auth: AuthMode::None,
        concurrency: options.concurrency,
        wrk_threads: None,
        duration_seconds: options.duration.as_secs_f64(),
        warmup_seconds: 0.0,
        requests: 0,
        errors: 0,
        first_error: None,
        requests_per_s: 0.0,
        latency_p50_ms: None,
        latency_p99_ms: None,
        latency_max_ms: None,
        server_memory: None,
    }
}

async fn wrk_report(
    registry: &Registry,
    url: &str,
    options: ManifestGetOptions,
) -> Result<ManifestGetReport, BenchError> {
    let authorization = registry.cached().0;
    let load = wrk::Load {
        url,
        accept: MANIFEST_MEDIA_TYPE,
        authorization: authorization.as_ref(),
        options,
    };
    let outcome = wrk::run(&load).await?;
    let mut report = empty_report(registry, url.to_owned(), options);
    report.wrk_threads = Some(options.wrk_threads);
    report.duration_seconds = outcome.duration_seconds;
    report.requests = outcome.requests.saturating_sub(outcome.non_2xx_3xx);
    report.errors = outcome.non_2xx_3xx + outcome.socket_errors;
    report.first_error = (report.errors > 0).then(|| outcome.error_summary());
    report.requests_per_s =
        report.requests as f64 / outcome.duration_seconds.max(f64::MIN_POSITIVE);
    report.latency_p50_ms = millis(outcome.p50);
    report.latency_p99_ms = millis(outcome.p99);
    report.latency_max_ms = millis(outcome.max);
    Ok(report)
}

#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    fn contains(&self, at: Instant) -> bool {
        at >= self.start && at <= self.end
    }
}

#[derive(Default)]
struct ConnectionTally {
    latencies: Histogram,
    errors: u64,
    first_error: Option<String>,
}

impl ConnectionTally {
    fn fail(&mut self, counted: bool, error: impl FnOnce() -> String) {
        self.errors += u64::from(counted);
        if self.first_error.is_none() {
            self.first_error = Some(error());
        }
    }
}

async fn run_builtin(
    registry: &Arc<Registry>,
    image: &PushedImage,
    options: ManifestGetOptions,
) -> Result<ManifestGetReport, BenchError> {
    let start = Instant::now() + options.warmup;
    let window = Window {
        start,
        end: start + options.duration,
    };
    let tasks: Vec<_> = (0..options.concurrency)
        .map(|_| tokio::spawn(hammer(registry.clone(), image.path.clone(), window)))
        .collect();
    let mut total = ConnectionTally::default();
    for task in tasks {
        let tally = task
            .await
            .map_err(|e| BenchError::Invalid(format!("a connection task failed: {e}")))?;
        total.latencies.merge(&tally.latencies);
        total.errors += tally.errors;
        total.first_error = total.first_error.or(tally.first_error);
    }
    let mut report = empty_report(
        registry,
        format!("{}{}", registry.origin(), image.path),
        options,
    );
    report.warmup_seconds = options.warmup.as_secs_f64();
    report.requests = total.latencies.count();
    report.errors = total.errors;
    report.first_error = total.first_error;
    report.requests_per_s = report.requests as f64 / options.duration.as_secs_f64();
    report.latency_p50_ms = millis(total.latencies.quantile(0.5));
    report.latency_p99_ms = millis(total.latencies.quantile(0.99));
    report.latency_max_ms = millis(total.latencies.max());
    Ok(report)
}

/// One connection's request loop until the window closes.
async fn hammer(registry: Arc<Registry>, path: String, window: Window) -> ConnectionTally {
    let mut tally = ConnectionTally::default();
    let authority = registry.authority().as_str().to_owned();
    let (authorization, mut generation) = registry.cached();
    let mut request = rawhttp::build_get(
        &path,
        &authority,
        MANIFEST_MEDIA_TYPE,
        authorization.as_ref(),
    );
    let mut connection: Option<rawhttp::Connection> = None;
    while Instant::now() < window.end {
        let open = match connection.as_mut() {
            Some(open) => open,
            None => match rawhttp::Connection::open(&authority).await {
                Ok(open) => connection.insert(open),
                Err(e) => {
                    tally.fail(window.contains(Instant::now()), || e.to_string());
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        let sent_at = Instant::now();
        let outcome = open.exchange(&request).await;
        let done_at = Instant::now();
        let counted = window.contains(done_at);
        let head = match outcome {
            Ok(head) => head,
            Err(e) => {
                tally.fail(counted, || format!("GET {path}: {e}"));
                connection = None;
                continue;
            }
        };
        if head.close {
            connection = None;
        }
        match (head.status, head.challenge) {
            (200, _) if counted => tally.latencies.record(done_at - sent_at),
            (200, _) => {}
            (401, Some(challenge)) => {
                tally.fail(counted, || format!("GET {path}: HTTP 401 (token expired?)"));
                if let Err(e) = registry.reauthenticate(&challenge, generation).await {
                    tally.fail(false, || e.to_string());
                }
                let (authorization, refreshed) = registry.cached();
                generation = refreshed;
                request = rawhttp::build_get(
                    &path,
                    &authority,
                    MANIFEST_MEDIA_TYPE,
                    authorization.as_ref(),
                );
            }
            (status, _) => tally.fail(counted, || format!("GET {path}: HTTP {status}")),
        }
    }
    tally
}
