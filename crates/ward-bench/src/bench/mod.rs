//! The benchmarks. Each returns a serialisable report; `report` turns reports into tables.

pub mod all;
pub mod manifest_get;
pub mod push_pull;
pub mod raw;
pub mod small_blobs;
pub mod wrk;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::client::Registry;
use crate::procmem::{MemoryOptions, MemoryWatch, ServerMemory};

/// What every registry benchmark needs: the registry, where to push, and what to watch.
#[derive(Clone)]
pub struct Target {
    /// The registry client (shared by all tasks of a run).
    pub registry: Arc<Registry>,
    /// Repositories are created under this namespace.
    pub namespace: String,
    /// Base seed of all generated content; distinct per run unless given.
    pub seed: u64,
    /// Server memory watching.
    pub memory: MemoryOptions,
}

impl Target {
    /// A repository name for one benchmark, distinct per run so runs never collide.
    pub fn repository(&self, kind: &str) -> String {
        format!("{}/{kind}-{:08x}", self.namespace, self.seed as u32)
    }

    /// Starts watching the server's memory, when a pid was given.
    pub fn watch_memory(&self) -> Option<MemoryWatch> {
        MemoryWatch::start(&self.memory)
    }
}

/// Ends a memory watch, if one was started.
pub async fn finish_watch(watch: Option<MemoryWatch>) -> Option<ServerMemory> {
    match watch {
        Some(watch) => Some(watch.finish().await),
        None => None,
    }
}

/// A timed transfer.
#[derive(Clone, Debug, Serialize)]
pub struct Transfer {
    /// Wall-clock seconds from the first request to the last byte.
    pub seconds: f64,
    /// Bytes moved per second, in MB/s.
    pub mb_per_s: f64,
    /// The server's memory during the transfer.
    pub server_memory: Option<ServerMemory>,
}

/// Milliseconds, for reports.
pub fn millis(duration: Option<Duration>) -> Option<f64> {
    duration.map(|d| d.as_secs_f64() * 1e3)
}
