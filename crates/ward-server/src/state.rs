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

/// Shared state of one running registry.
#[derive(Clone)]
pub struct AppState {
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
    /// HTTP method.
    pub method: String,
    /// Response status code.
    pub status: u16,
}

/// Labels of a latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// Endpoint name.
    pub endpoint: &'static str,
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
        Metrics {
            registry,
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
