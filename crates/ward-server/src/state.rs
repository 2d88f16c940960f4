//! What every request handler can reach: configuration, the two stores, the
//! manifest cache and the metrics registry.

use std::sync::Arc;

use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use ward_core::Digest;
use ward_store::{BlobStore, MetaStore};

use crate::config::Config;

/// Shared state of one running registry: one allocation behind an `Arc`,
/// since every request clones it (twice or more, through axum's extractors).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps the parts of a registry.
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    /// Configuration it was started with.
    pub config: Arc<Config>,
    /// Metadata.
    pub meta: MetaStore,
    /// Bytes.
    pub blobs: BlobStore,
    /// Manifest bytes by digest.
    pub manifests: ManifestCache,
    /// Counters and histograms.
    pub metrics: Arc<Metrics>,
    /// Authentication and authorization.
    pub access: Arc<crate::access::AccessControl>,
    /// The tamper-evident audit log.
    pub audit: Arc<ward_audit::Audit>,
    /// The public key (PEM) that verifies the log's checkpoints.
    pub audit_public_key: Arc<String>,
    /// Signature verdicts of the pull and promotion gates.
    pub signatures: Arc<crate::gate::SignatureGate>,
    /// Wakes the scan workers when new content is stored.
    pub scan_wake: Arc<crate::scanning::ScanWake>,
    /// Upload sessions a request is streaming bytes into right now.
    pub streaming_uploads: StreamingUploads,
}

/// The upload sessions this process is receiving bytes for, so that the
/// sweeper never expires a session in the middle of a long transfer (a
/// single `PATCH` of a large model can outlast the session TTL). Other
/// processes sharing the database see the session's `updated_at` moved on
/// instead (see `oci::uploads`).
#[derive(Default)]
pub struct StreamingUploads(std::sync::Mutex<std::collections::HashMap<uuid::Uuid, usize>>);

/// Marks one request streaming into a session until dropped.
pub struct Streaming<'a> {
    uploads: &'a StreamingUploads,
    id: uuid::Uuid,
}

impl StreamingUploads {
    /// Marks session `id` as receiving bytes until the guard is dropped.
    pub fn enter(&self, id: uuid::Uuid) -> Streaming<'_> {
        *self.ids().entry(id).or_default() += 1;
        Streaming { uploads: self, id }
    }

    /// Whether a request is streaming into session `id`.
    pub fn contains(&self, id: uuid::Uuid) -> bool {
        self.ids().contains_key(&id)
    }

    /// The counts stay right even if a holder of the lock panicked.
    fn ids(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<uuid::Uuid, usize>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Streaming<'_> {
    fn drop(&mut self) {
        let mut ids = self.uploads.ids();
        if let Some(n) = ids.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                ids.remove(&self.id);
            }
        }
    }
}

/// Manifest content keyed by digest. Content under a digest never changes, so
/// entries never go stale; whether a repository may see a manifest is decided
/// by the metadata store before the cache is consulted.
#[derive(Clone)]
pub struct ManifestCache(Arc<Cache<Digest, Bytes, ByteWeighter>>);

#[derive(Clone)]
struct ByteWeighter;

impl Weighter<Digest, Bytes> for ByteWeighter {
    fn weight(&self, _: &Digest, v: &Bytes) -> u64 {
        v.len() as u64 + 64
    }
}

impl ManifestCache {
    /// A cache holding at most `bytes_max` bytes.
    pub fn new(bytes_max: u64) -> Self {
        let items = usize::try_from(bytes_max / 1024)
            .unwrap_or(usize::MAX)
            .max(16);
        ManifestCache(Arc::new(Cache::with_weighter(
            items,
            bytes_max,
            ByteWeighter,
        )))
    }

    /// The cached bytes of `digest`.
    pub fn get(&self, digest: &Digest) -> Option<Bytes> {
        self.0.get(digest)
    }

    /// Remembers the bytes of `digest`.
    pub fn insert(&self, digest: Digest, bytes: Bytes) {
        self.0.insert(digest, bytes);
    }
}

/// Labels of a request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Endpoint name (`manifest_get`, ...), or `other`.
    pub endpoint: &'static str,
    /// HTTP method: one of the standard ones, or `other` (a client must not be
    /// able to grow the metric families with made-up methods).
    pub method: &'static str,
    /// Response status code.
    pub status: u16,
}

/// Labels of a latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// Endpoint name.
    pub endpoint: &'static str,
}

/// Labels of an audit sink's gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    /// The sink's configured name.
    pub sink: String,
    /// `file`, `stdout`, `syslog` or `webhook`.
    pub kind: String,
    /// `events` or `alerts`.
    pub feed: String,
}

/// Audit gauges, refreshed from the audit subsystem's status on every scrape.
#[derive(Default)]
pub struct AuditMetrics {
    /// Events recorded but not yet delivered, per sink.
    pub sink_lag_events: Family<SinkLabels, Gauge>,
    /// Items delivered by this process, per sink.
    pub sink_delivered: Family<SinkLabels, Gauge>,
    /// Failed delivery attempts by this process, per sink.
    pub sink_failed_attempts: Family<SinkLabels, Gauge>,
    /// Failures since the sink's last success.
    pub sink_consecutive_failures: Family<SinkLabels, Gauge>,
    /// Sequence numbers missing from the store that a sink had to skip.
    pub sink_gaps: Family<SinkLabels, Gauge>,
    /// Events this process appended to the log.
    pub events_recorded: Gauge,
    /// Commits those events went in (events / commits is the mean batch size).
    pub batches: Gauge,
    /// Failed appends (each failed the requests of its batch).
    pub write_failures: Gauge,
    /// Events waiting for the writer.
    pub queued_events: Gauge,
    /// 1 once a failed flush stopped the log (every audited request fails).
    pub broken: Gauge,
    /// Events covered by the latest signed checkpoint.
    pub checkpoint_tree_size: Gauge,
    /// Failed checkpoint rounds.
    pub checkpoint_failures: Gauge,
}

impl AuditMetrics {
    fn register(&self, registry: &mut Registry) {
        let families = [
            (
                "audit_sink_lag_events",
                "Audit events recorded but not yet delivered, per sink",
                &self.sink_lag_events,
            ),
            (
                "audit_sink_delivered",
                "Items a sink delivered since this process started",
                &self.sink_delivered,
            ),
            (
                "audit_sink_failed_attempts",
                "Failed delivery attempts since this process started",
                &self.sink_failed_attempts,
            ),
            (
                "audit_sink_consecutive_failures",
                "Delivery failures since the sink's last success",
                &self.sink_consecutive_failures,
            ),
            (
                "audit_sink_gaps",
                "Sequence numbers missing from the store that a sink skipped",
                &self.sink_gaps,
            ),
        ];
        for (name, help, family) in families {
            registry.register(name, help, family.clone());
        }
        let gauges = [
            (
                "audit_events_recorded",
                "Audit events this process appended",
                &self.events_recorded,
            ),
            (
                "audit_batches",
                "Audit commits this process made; events_recorded / batches is the mean batch",
                &self.batches,
            ),
            (
                "audit_write_failures",
                "Failed audit appends (their requests failed)",
                &self.write_failures,
            ),
            (
                "audit_queued_events",
                "Audit events waiting for the writer",
                &self.queued_events,
            ),
            (
                "audit_broken",
                "1 once a failed flush stopped the audit log; restart the server",
                &self.broken,
            ),
            (
                "audit_checkpoint_tree_size",
                "Events covered by the latest signed checkpoint",
                &self.checkpoint_tree_size,
            ),
            (
                "audit_checkpoint_failures",
                "Failed checkpoint rounds",
                &self.checkpoint_failures,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
    }

    /// Copies an audit status into the gauges.
    pub fn update(&self, status: &ward_audit::AuditStatus) {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.events_recorded
            .set(n(status.log.events_recorded_total));
        self.batches.set(n(status.log.batches_total));
        self.write_failures.set(n(status.log.store_failures_total));
        self.queued_events.set(n(status.log.queued_events));
        self.broken.set(i64::from(status.log.broken.is_some()));
        self.checkpoint_tree_size
            .set(n(status.checkpoints.tree_size));
        self.checkpoint_failures
            .set(n(status.checkpoints.failures_total));
        for sink in &status.sinks {
            let labels = SinkLabels {
                sink: sink.name.clone(),
                kind: sink.kind.clone(),
                feed: sink.feed.clone(),
            };
            self.sink_lag_events
                .get_or_create(&labels)
                .set(n(sink.lag_events));
            self.sink_delivered
                .get_or_create(&labels)
                .set(n(sink.delivered_total));
            self.sink_failed_attempts
                .get_or_create(&labels)
                .set(n(sink.failures_total));
            self.sink_consecutive_failures
                .get_or_create(&labels)
                .set(n(sink.consecutive_failures));
            self.sink_gaps
                .get_or_create(&labels)
                .set(n(sink.gaps_total));
        }
    }
}

/// The registry's metrics.
pub struct Metrics {
    registry: Registry,
    /// Requests by endpoint, method and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Latency by endpoint.
    pub latency: Family<EndpointLabels, Histogram>,
    /// Blob bytes accepted from clients.
    pub bytes_in: Counter,
    /// Blob and manifest bytes sent to clients.
    pub bytes_out: Counter,
    /// Upload sessions open, refreshed on every scrape.
    pub uploads_open: Gauge,
    /// The audit log and its sinks, refreshed on every scrape.
    pub audit: AuditMetrics,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ward");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.5, 14))
        });
        let bytes_in = Counter::default();
        let bytes_out = Counter::default();
        let uploads_open = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by endpoint, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to produce the response head, by endpoint",
            latency.clone(),
        );
        registry.register(
            "blob_received_bytes",
            "Blob bytes received from clients",
            bytes_in.clone(),
        );
        registry.register(
            "sent_bytes",
            "Blob and manifest bytes sent to clients",
            bytes_out.clone(),
        );
        registry.register(
            "upload_sessions_open",
            "Upload sessions currently open",
            uploads_open.clone(),
        );
        let audit = AuditMetrics::default();
        audit.register(&mut registry);
        Metrics {
            registry,
            audit,
            requests,
            latency,
            bytes_in,
            bytes_out,
            uploads_open,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
