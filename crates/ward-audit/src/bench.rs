//! Measuring the sustained append rate of a store through the real [`AuditLog`].
//!
//! ```ignore
//! let (log, _writer) = AuditLog::start(store, LogConfig::default()).await?;
//! let result = ward_audit::bench::sustained_append(&log, 64, 1_000).await?;
//! println!("{result}");
//! ```

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::event::{AuditEvent, EventType};
use crate::log::{AuditError, AuditLog};

/// What a run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppendBench {
    /// Concurrent writers.
    pub writers: usize,
    /// Events stored.
    pub events: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Events per second.
    pub events_per_sec: f64,
    /// Median time from `record` to durable.
    pub latency_p50: Duration,
    /// 99th percentile of the same.
    pub latency_p99: Duration,
    /// Transactions used (events / batches is the mean batch size).
    pub batches: u64,
}

impl fmt::Display for AppendBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let batch = self.events as f64 / self.batches.max(1) as f64;
        write!(
            f,
            "{} events by {} writers in {:.2?}: {:.0} events/s, latency p50 {:.2?} p99 {:.2?}, mean batch {batch:.1}",
            self.events,
            self.writers,
            self.elapsed,
            self.events_per_sec,
            self.latency_p50,
            self.latency_p99
        )
    }
}

/// `writers` tasks each record `events_per_writer` pull events as fast as the log
/// acknowledges them; the first error aborts the run.
pub async fn sustained_append(
    log: &AuditLog,
    writers: usize,
    events_per_writer: usize,
) -> Result<AppendBench, AuditError> {
    let batches_before = log.stats().batches_total;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(writers);
    for writer in 0..writers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(events_per_writer);
            for i in 0..events_per_writer {
                let event = AuditEvent::new(EventType::Pull)
                    .user(format!("bench-{writer}"))
                    .repository("bench/repo")
                    .tag(i.to_string());
                let t = Instant::now();
                log.record(event).await?;
                latencies.push(t.elapsed());
            }
            Ok::<_, AuditError>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(writers * events_per_writer);
    for task in tasks {
        latencies.extend(task.await.map_err(|_| AuditError::Closed)??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let percentile = |p: usize| {
        latencies
            .get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let events = latencies.len() as u64;
    Ok(AppendBench {
        writers,
        events,
        elapsed,
        events_per_sec: events as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
        latency_p50: percentile(50),
        latency_p99: percentile(99),
        batches: log.stats().batches_total - batches_before,
    })
}
