//! The sustained append rate of the audit log on a real store: `writers`
//! concurrent tasks each record events as fast as the log makes them durable
//! (batched into shared commits), as request handlers do.
//!
//! ```sh
//! cargo run --release -p ward-store --example audit_append -- sqlite 64 500
//! WARD_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release -p ward-store --example audit_append -- postgres 64 500
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ward_audit::log::{AuditLog, LogConfig};
use ward_store::testing;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map_or("sqlite", String::as_str);
    let writers: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(64);
    let events: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(500);
    let dir = tempfile::tempdir().unwrap();
    let store = match backend {
        "sqlite" => testing::sqlite_store(dir.path()).await,
        "postgres" => testing::postgres_store().await,
        other => panic!("unknown backend {other}: sqlite or postgres"),
    };
    let (log, _writer) = AuditLog::start(Arc::new(store), LogConfig::default())
        .await
        .unwrap();
    // A short warm-up, then the measured run.
    ward_audit::bench::sustained_append(&log, writers, 10)
        .await
        .unwrap();
    let result = ward_audit::bench::sustained_append(&log, writers, events)
        .await
        .unwrap();
    println!("{backend}: {result}");
}
