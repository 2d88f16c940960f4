//! Many small, distinct blobs pushed by concurrent clients (`POST` + `PUT` each).
//!
//! Blobs are generated and hashed before the clock starts, so the figure is the
//! registry's, not the client's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;

use super::{Target, finish_watch, millis};
use crate::blobgen::{BlobSpec, ReqBody, Sha256Digest};
use crate::client::AuthMode;
use crate::error::BenchError;
use crate::histogram::Histogram;
use crate::procmem::ServerMemory;
use crate::units::{human_bytes, mb_per_s};

/// Bytes of blobs held in memory at once; above it, use fewer or smaller blobs.
pub const PREGENERATED_BYTES_MAX: u64 = 2 << 30;

/// How many blobs, how big, how many clients.
#[derive(Clone, Copy, Debug)]
pub struct SmallBlobsOptions {
    /// Number of distinct blobs.
    pub count: usize,
    /// Size of each.
    pub size_bytes: u64,
    /// Concurrent clients.
    pub concurrency: usize,
}

/// Figures of one run.
#[derive(Clone, Debug, Serialize)]
pub struct SmallBlobsReport {
    /// Always `small-blobs`.
    pub kind: &'static str,
    /// The registry's origin.
    pub registry: String,
    /// The repository pushed to.
    pub repository: String,
    /// How the registry authenticated the client.
    pub auth: AuthMode,
    /// Blobs attempted.
    pub count: usize,
    /// Size of each.
    pub size_bytes: u64,
    /// Concurrent clients.
    pub concurrency: usize,
    /// Blobs the registry accepted.
    pub pushed: u64,
    /// Blobs that failed.
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Wall-clock seconds for all pushes.
    pub seconds: f64,
    /// Accepted blobs per second.
    pub blobs_per_s: f64,
    /// Accepted bytes per second, in MB/s.
    pub mb_per_s: f64,
    /// Median time for one blob's `POST` + `PUT`, in ms.
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile of the same, in ms.
    pub latency_p99_ms: Option<f64>,
    /// The server's memory during the run.
    pub server_memory: Option<ServerMemory>,
}

#[derive(Default)]
struct ClientTally {
    latencies: Histogram,
    pushed: u64,
    errors: u64,
    first_error: Option<String>,
}

/// Pushes `options.count` distinct blobs from `options.concurrency` tasks.
pub async fn run(
    target: &Target,
    options: SmallBlobsOptions,
) -> Result<SmallBlobsReport, BenchError> {
    let total_bytes = options.size_bytes.saturating_mul(options.count as u64);
    if total_bytes > PREGENERATED_BYTES_MAX || options.concurrency == 0 {
        return Err(BenchError::Invalid(format!(
            "small-blobs needs 1 or more clients and at most {} of blobs in memory; asked {} x {} with {} clients",
            human_bytes(PREGENERATED_BYTES_MAX),
            options.count,
            human_bytes(options.size_bytes),
            options.concurrency
        )));
    }
    let registry = target.registry.clone();
    let repository = target.repository("small-blobs");
    let auth = registry
        .login(&format!("repository:{repository}:pull,push"))
        .await?;
    let blobs: Arc<Vec<(Sha256Digest, Bytes)>> = Arc::new(
        (0..options.count as u64)
            .map(|i| BlobSpec {
                seed: target.seed.wrapping_add(i + 1),
                size_bytes: options.size_bytes,
            })
            .map(|spec| {
                let bytes = spec.generate();
                (Sha256Digest::of(&bytes), bytes)
            })
            .collect(),
    );

    let watch = target.watch_memory();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..options.concurrency)
        .map(|_| {
            let (registry, repository, blobs, next) = (
                registry.clone(),
                repository.clone(),
                blobs.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                let mut tally = ClientTally::default();
                while let Some((digest, bytes)) = blobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let pushed_at = Instant::now();
                    let body = || ReqBody::full(bytes.clone());
                    match registry
                        .push_blob(&repository, digest, bytes.len() as u64, body)
                        .await
                    {
                        Ok(()) => {
                            tally.pushed += 1;
                            tally.latencies.record(pushed_at.elapsed());
                        }
                        Err(e) => {
                            tally.errors += 1;
                            tally.first_error.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = ClientTally::default();
    for client in clients {
        let tally = client
            .await
            .map_err(|e| BenchError::Invalid(format!("a client task failed: {e}")))?;
        total.latencies.merge(&tally.latencies);
        total.pushed += tally.pushed;
        total.errors += tally.errors;
        total.first_error = total.first_error.or(tally.first_error);
    }
    let elapsed = started.elapsed();
    let server_memory = finish_watch(watch).await;
    if total.pushed == 0 {
        return Err(BenchError::Invalid(format!(
            "no blob was accepted; first error: {}",
            total.first_error.unwrap_or_default()
        )));
    }
    Ok(SmallBlobsReport {
        kind: "small-blobs",
        registry: registry.origin().to_owned(),
        repository,
        auth,
        count: options.count,
        size_bytes: options.size_bytes,
        concurrency: options.concurrency,
        pushed: total.pushed,
        errors: total.errors,
        first_error: total.first_error,
        seconds: elapsed.as_secs_f64(),
        blobs_per_s: total.pushed as f64 / elapsed.as_secs_f64(),
        mb_per_s: mb_per_s(total.pushed * options.size_bytes, elapsed),
        latency_p50_ms: millis(total.latencies.quantile(0.5)),
        latency_p99_ms: millis(total.latencies.quantile(0.99)),
        server_memory,
    })
}
