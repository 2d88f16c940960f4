//! An in-memory [`AuditStore`] for the tests of this crate only: it follows the trait's
//! contract (chaining under one lock, atomic batches) so the log, sinks, checkpointer
//! and verifier can be exercised before `ward-store` exists. The real SQLite and
//! PostgreSQL implementations get their own tests in `ward-store`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use ward_audit::store::{AuditStore, EventFilter, StoredCheckpoint};
use ward_audit::{AuditEvent, AuditRecord, ChainHead, EventBatch, EventType};

#[derive(Debug, thiserror::Error)]
#[error("memory store: {0}")]
pub struct MemoryError(pub String);

pub struct State {
    pub records: Vec<AuditRecord>,
    pub head: ChainHead,
    pub checkpoints: BTreeMap<u64, StoredCheckpoint>,
    pub cursors: HashMap<String, u64>,
    /// Sizes of the batches appended, in order.
    pub batch_sizes: Vec<usize>,
    /// Records a power cut would keep: `append` and `sync` move it to the end,
    /// `append_unsynced` does not.
    pub durable: usize,
}

pub struct MemoryStore {
    pub state: Mutex<State>,
    /// When set, appends fail (and store nothing).
    pub fail_appends: AtomicBool,
    /// When set, reads fail.
    pub fail_reads: AtomicBool,
    /// When set, syncs fail (and make nothing durable).
    pub fail_syncs: AtomicBool,
    /// When set, the store offers [`AuditStore::sync_blocking`].
    pub blocking_syncs: AtomicBool,
    /// Calls of `sync_blocking` that flushed (or failed to).
    pub blocking_syncs_done: AtomicUsize,
    /// The largest batch the store asks for; 0 for no limit.
    pub batch_hint: AtomicUsize,
    /// Appends wait for a permit here when gating is on.
    gate: Semaphore,
    gated: AtomicBool,
    /// Signalled whenever an append is waiting at the gate.
    pub entered: Notify,
}

impl MemoryStore {
    pub fn new() -> Arc<MemoryStore> {
        Arc::new(MemoryStore {
            state: Mutex::new(State {
                records: Vec::new(),
                head: ChainHead::EMPTY,
                checkpoints: BTreeMap::new(),
                cursors: HashMap::new(),
                batch_sizes: Vec::new(),
                durable: 0,
            }),
            fail_appends: AtomicBool::new(false),
            fail_reads: AtomicBool::new(false),
            fail_syncs: AtomicBool::new(false),
            blocking_syncs: AtomicBool::new(false),
            blocking_syncs_done: AtomicUsize::new(0),
            batch_hint: AtomicUsize::new(0),
            gate: Semaphore::new(0),
            gated: AtomicBool::new(false),
            entered: Notify::new(),
        })
    }

    /// From now on every append waits for [`MemoryStore::release`].
    pub fn close_gate(&self) {
        self.gated.store(true, Ordering::SeqCst);
    }

    /// Lets `n` waiting (or future) appends through.
    pub fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }

    /// Stops gating.
    pub fn open_gate(&self) {
        self.gated.store(false, Ordering::SeqCst);
        self.gate.add_permits(1_000_000);
    }

    pub fn records(&self) -> Vec<AuditRecord> {
        self.state.lock().unwrap().records.clone()
    }

    /// Appends `n` pull events without making them durable, as a store whose
    /// commit did not flush yet.
    pub async fn append_unflushed(&self, n: usize) {
        let events = (0..n)
            .map(|i| AuditEvent::new(EventType::Pull).user(format!("u{i}")))
            .collect();
        self.append_unsynced(&EventBatch::new(events).unwrap())
            .await
            .unwrap();
    }

    /// How many records a power cut would keep.
    pub fn durable(&self) -> usize {
        self.state.lock().unwrap().durable
    }

    pub fn batch_sizes(&self) -> Vec<usize> {
        self.state.lock().unwrap().batch_sizes.clone()
    }

    /// Edits rows directly, as a DBA bypassing the triggers would.
    pub fn tamper(&self, edit: impl FnOnce(&mut Vec<AuditRecord>)) {
        edit(&mut self.state.lock().unwrap().records);
    }

    fn flush(&self) -> Result<(), MemoryError> {
        if self.fail_syncs.load(Ordering::SeqCst) {
            return Err(MemoryError("fsync failed".into()));
        }
        let mut state = self.state.lock().unwrap();
        state.durable = state.records.len();
        Ok(())
    }

    fn check_reads(&self) -> Result<(), MemoryError> {
        if self.fail_reads.load(Ordering::SeqCst) {
            return Err(MemoryError("reads are failing".into()));
        }
        Ok(())
    }
}

impl AuditStore for MemoryStore {
    type Error = MemoryError;

    async fn append(&self, batch: &EventBatch) -> Result<Vec<AuditRecord>, MemoryError> {
        let records = self.append_unsynced(batch).await?;
        let mut state = self.state.lock().unwrap();
        state.durable = state.records.len();
        Ok(records)
    }

    fn batch_events_max(&self) -> Option<usize> {
        Some(self.batch_hint.load(Ordering::SeqCst)).filter(|&n| n > 0)
    }

    async fn sync(&self) -> Result<(), MemoryError> {
        self.flush()
    }

    fn sync_blocking(&self) -> Option<Result<(), MemoryError>> {
        if !self.blocking_syncs.load(Ordering::SeqCst) {
            return None;
        }
        self.blocking_syncs_done.fetch_add(1, Ordering::SeqCst);
        Some(self.flush())
    }

    async fn append_unsynced(&self, batch: &EventBatch) -> Result<Vec<AuditRecord>, MemoryError> {
        if self.gated.load(Ordering::SeqCst) {
            self.entered.notify_one();
            self.gate.acquire().await.unwrap().forget();
        }
        if self.fail_appends.load(Ordering::SeqCst) {
            return Err(MemoryError("disk full".into()));
        }
        let mut state = self.state.lock().unwrap();
        let linked = batch.link(&state.head);
        let records: Vec<AuditRecord> = linked.events.into_iter().map(|l| l.record).collect();
        state.records.extend(records.iter().cloned());
        state.head = linked.head_after;
        state.batch_sizes.push(records.len());
        Ok(records)
    }

    async fn head(&self) -> Result<ChainHead, MemoryError> {
        self.check_reads()?;
        Ok(self.state.lock().unwrap().head)
    }

    async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, MemoryError> {
        self.check_reads()?;
        let state = self.state.lock().unwrap();
        let mut out: Vec<AuditRecord> = state
            .records
            .iter()
            .filter(|r| r.seq >= from_seq)
            .cloned()
            .collect();
        out.sort_by_key(|r| r.seq);
        out.truncate(limit);
        Ok(out)
    }

    async fn query(&self, filter: &EventFilter) -> Result<Vec<AuditRecord>, MemoryError> {
        self.check_reads()?;
        let state = self.state.lock().unwrap();
        Ok(state
            .records
            .iter()
            .filter(|r| r.event().is_ok_and(|e| filter.matches(r, &e)))
            .take(filter.page_size())
            .cloned()
            .collect())
    }

    async fn put_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), MemoryError> {
        let mut state = self.state.lock().unwrap();
        state
            .checkpoints
            .entry(checkpoint.tree_size)
            .or_insert_with(|| checkpoint.clone());
        Ok(())
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, MemoryError> {
        self.check_reads()?;
        Ok(self
            .state
            .lock()
            .unwrap()
            .checkpoints
            .values()
            .next_back()
            .cloned())
    }

    async fn read_checkpoints(
        &self,
        from_size: u64,
        limit: usize,
    ) -> Result<Vec<StoredCheckpoint>, MemoryError> {
        self.check_reads()?;
        let state = self.state.lock().unwrap();
        Ok(state
            .checkpoints
            .range(from_size..)
            .take(limit)
            .map(|(_, c)| c.clone())
            .collect())
    }

    async fn cursor(&self, sink: &str) -> Result<u64, MemoryError> {
        self.check_reads()?;
        Ok(self
            .state
            .lock()
            .unwrap()
            .cursors
            .get(sink)
            .copied()
            .unwrap_or(0))
    }

    async fn set_cursor(&self, sink: &str, next_seq: u64) -> Result<(), MemoryError> {
        self.state
            .lock()
            .unwrap()
            .cursors
            .insert(sink.to_owned(), next_seq);
        Ok(())
    }
}

/// A deadline for awaiting progress: a hung test fails instead of hanging.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
