//! [`AuditLog`]: the front end the server records through, with group commit.
//!
//! Every [`AuditLog::record`] call sends its event into one bounded queue. A single
//! writer task takes whatever is waiting (up to `batch_events_max`) and appends it to
//! the store in one transaction ([`AuditStore::append_unsynced`]); a syncer on a
//! blocking thread of its own then makes the committed batches durable
//! ([`AuditStore::sync_blocking`] where the store has it, else [`AuditStore::sync`];
//! one flush for every batch committed since the last) and only then answers each
//! caller, from that thread: no task is woken to learn that a flush ended. The writer
//! commits the next batch while the syncer flushes the last, so a request waits for
//! about one commit and one flush rather than for a whole commit-and-flush in
//! progress and then its own. A caller therefore learns its event is durable before
//! it answers its own client, and concurrent requests share one commit. If the store
//! fails, every caller of that batch gets the error, so the server fails those
//! requests rather than losing their records. A failed flush fails its callers and
//! every later one: after a failed `fsync` the kernel may have dropped what it could
//! not write, so nothing after it can be promised durable (the server must restart).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::canonical::CanonicalError;
use crate::event::{AuditEvent, EventLimits};
use crate::hash::Hash;
use crate::record::{AuditRecord, ChainHead, EventBatch};
use crate::store::AuditStore;

/// Sizing of the log front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// Events that may wait for the writer; further callers wait for room.
    pub queue_events_max: usize,
    /// Most events appended in one transaction (the store may ask for fewer:
    /// [`AuditStore::batch_events_max`]).
    pub batch_events_max: usize,
    /// Field size limits applied before recording.
    pub limits: EventLimits,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            queue_events_max: 8192,
            batch_events_max: 512,
            limits: EventLimits::default(),
        }
    }
}

/// Proof that an event is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Its position in the log.
    pub seq: u64,
    /// Its chain hash.
    pub hash: Hash,
}

/// Why an event was not recorded. The request that caused it must fail.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// The store refused or failed the append; nothing of the batch was stored.
    #[error("audit store failed, the event was not recorded: {0}")]
    Store(Arc<dyn std::error::Error + Send + Sync>),
    /// The writer task is gone (shutting down or crashed).
    #[error("audit log writer has stopped, the event was not recorded")]
    Closed,
    /// The event has no canonical encoding.
    #[error("audit event cannot be encoded: {0}")]
    Encode(#[from] CanonicalError),
}

/// Counters of the log front end, for `/metrics` and health output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStats {
    /// Events stored.
    pub events_recorded_total: u64,
    /// Transactions committed.
    pub batches_total: u64,
    /// Failed appends (each failed every event of its batch).
    pub store_failures_total: u64,
    /// Events whose caller got an error.
    pub events_failed_total: u64,
    /// Events waiting for the writer right now.
    pub queued_events: u64,
    /// The last store error.
    pub last_error: Option<String>,
    /// The head after the last batch made durable.
    pub head: Option<ChainHead>,
    /// Why the log records nothing more: set by a failed flush, until a restart.
    pub broken: Option<String>,
}

#[derive(Default)]
struct Counters {
    recorded: AtomicU64,
    batches: AtomicU64,
    store_failures: AtomicU64,
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

struct Request {
    event: AuditEvent,
    /// Its canonical JSON, encoded by the caller so the writer only links.
    json: String,
    reply: oneshot::Sender<Result<Receipt, AuditError>>,
}

/// The handle the server records through. Cheap to clone; the writer stops when the
/// last clone is dropped.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Request>,
    head: watch::Receiver<ChainHead>,
    limits: EventLimits,
    counters: Arc<Counters>,
    broken: Arc<OnceLock<AuditError>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("head", &*self.head.borrow())
            .finish()
    }
}

impl AuditLog {
    /// Reads the store's head and starts the writer task.
    pub async fn start<S: AuditStore>(
        store: Arc<S>,
        config: LogConfig,
    ) -> Result<(AuditLog, JoinHandle<()>), AuditError> {
        let head = store
            .head()
            .await
            .map_err(|e| AuditError::Store(Arc::new(e)))?;
        let (tx, rx) = mpsc::channel(config.queue_events_max.max(1));
        let (head_tx, head_rx) = watch::channel(head);
        let counters = Arc::new(Counters::default());
        let broken = Arc::new(OnceLock::new());
        let batch_max = store
            .batch_events_max()
            .map_or(config.batch_events_max, |m| m.min(config.batch_events_max));
        let (committed_tx, committed_rx) = mpsc::channel(COMMITTED_BATCHES_MAX);
        let syncer = Syncer {
            store: store.clone(),
            head: head_tx,
            counters: counters.clone(),
            broken: broken.clone(),
        };
        // A thread of its own: it waits on the flush, not on the runtime. It
        // runs for the log's whole life, so a test with a paused clock
        // (`tokio::time::pause`) would never see time advance by itself.
        let runtime = tokio::runtime::Handle::current();
        let syncer = tokio::task::spawn_blocking(move || syncer.run(committed_rx, &runtime));
        let writer = Writer {
            store,
            counters: counters.clone(),
            batch_max: batch_max.max(1),
            broken: broken.clone(),
        };
        let task = tokio::spawn(writer.run(rx, committed_tx, syncer));
        let log = AuditLog {
            tx,
            head: head_rx,
            limits: config.limits,
            counters,
            broken,
        };
        Ok((log, task))
    }

    /// Records `event` and returns once it is durable in the store.
    pub async fn record(&self, mut event: AuditEvent) -> Result<Receipt, AuditError> {
        event.clamp(&self.limits);
        // Encoded here, on the caller's task, rather than by the one writer
        // whose commit every caller of the batch waits for.
        let json = crate::canonical::event_json(&event)?;
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { event, json, reply })
            .await
            .map_err(|_| AuditError::Closed)?;
        answer.await.map_err(|_| AuditError::Closed)?
    }

    /// The head after the latest commit of this process; changes wake sinks.
    pub fn subscribe(&self) -> watch::Receiver<ChainHead> {
        self.head.clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> LogStats {
        let c = &self.counters;
        LogStats {
            events_recorded_total: c.recorded.load(Ordering::Relaxed),
            batches_total: c.batches.load(Ordering::Relaxed),
            store_failures_total: c.store_failures.load(Ordering::Relaxed),
            events_failed_total: c.failed.load(Ordering::Relaxed),
            queued_events: (self.tx.max_capacity() - self.tx.capacity()) as u64,
            last_error: c.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
            head: Some(*self.head.borrow()),
            broken: self.broken.get().map(ToString::to_string),
        }
    }
}

struct Writer<S> {
    store: Arc<S>,
    counters: Arc<Counters>,
    batch_max: usize,
    /// Set by the first failed flush; every later batch fails with it.
    broken: Arc<OnceLock<AuditError>>,
}

/// A batch committed by the writer, waiting for the syncer's flush.
struct Committed {
    records: Vec<AuditRecord>,
    replies: Vec<oneshot::Sender<Result<Receipt, AuditError>>>,
}

/// Committed batches that may wait for the syncer; the writer waits beyond that.
const COMMITTED_BATCHES_MAX: usize = 64;

impl<S: AuditStore> Writer<S> {
    /// Commits until the last [`AuditLog`] is dropped, then waits for the
    /// syncer to answer what it was handed.
    async fn run(
        self,
        mut rx: mpsc::Receiver<Request>,
        committed_tx: mpsc::Sender<Committed>,
        syncer: JoinHandle<()>,
    ) {
        // Kept across batches: its capacity is reused rather than regrown.
        let mut pending = Vec::new();
        while rx.recv_many(&mut pending, self.batch_max).await > 0 {
            let Some(committed) = self.commit(&mut pending).await else {
                continue;
            };
            if let Err(lost) = committed_tx.send(committed).await {
                // The syncer is gone (it panicked): nobody can flush this batch.
                fail_all(&self.counters, lost.0.replies, AuditError::Closed);
            }
        }
        drop(committed_tx);
        let _ = syncer.await;
    }

    /// Commits `requests` as one batch; `None` when its callers were already failed.
    async fn commit(&self, requests: &mut Vec<Request>) -> Option<Committed> {
        let mut events = Vec::with_capacity(requests.len());
        let mut json = Vec::with_capacity(requests.len());
        let mut replies = Vec::with_capacity(requests.len());
        for r in requests.drain(..) {
            events.push(r.event);
            json.push(r.json);
            replies.push(r.reply);
        }
        if let Some(error) = self.broken.get() {
            fail_all(&self.counters, replies, error.clone());
            return None;
        }
        let batch = EventBatch::encoded(events, json);
        match self.store.append_unsynced(&batch).await {
            Ok(records) if records.len() == replies.len() => Some(Committed { records, replies }),
            Ok(records) => {
                let message = format!(
                    "store returned {} records for a batch of {}",
                    records.len(),
                    replies.len()
                );
                let error = AuditError::Store(Arc::new(BrokenStore(message)));
                fail_all(&self.counters, replies, error);
                None
            }
            Err(e) => {
                fail_all(&self.counters, replies, AuditError::Store(Arc::new(e)));
                None
            }
        }
    }
}

/// Flushes what the writer committed and answers its callers.
struct Syncer<S> {
    store: Arc<S>,
    head: watch::Sender<ChainHead>,
    counters: Arc<Counters>,
    broken: Arc<OnceLock<AuditError>>,
}

impl<S: AuditStore> Syncer<S> {
    /// Runs on a blocking thread until the writer is gone.
    fn run(self, mut rx: mpsc::Receiver<Committed>, runtime: &tokio::runtime::Handle) {
        let mut batches = Vec::new();
        while rx.blocking_recv_many(&mut batches, COMMITTED_BATCHES_MAX) > 0 {
            // Every batch taken was committed before this flush starts.
            let flushed = match self.broken.get() {
                Some(error) => Err(error.clone()),
                None => self.flush(runtime).map_err(|e| {
                    let error = AuditError::Store(Arc::new(e));
                    let _ = self.broken.set(error.clone());
                    error
                }),
            };
            match flushed {
                Ok(()) => self.answer(&mut batches),
                Err(error) => {
                    for batch in batches.drain(..) {
                        fail_all(&self.counters, batch.replies, error.clone());
                    }
                }
            }
        }
    }

    fn flush(&self, runtime: &tokio::runtime::Handle) -> Result<(), S::Error> {
        match self.store.sync_blocking() {
            Some(flushed) => flushed,
            None => runtime.block_on(self.store.sync()),
        }
    }

    fn answer(&self, batches: &mut Vec<Committed>) {
        let mut head = None;
        for Committed { records, replies } in batches.drain(..) {
            head = records.last().map(AuditRecord::head_after).or(head);
            self.counters.batches.fetch_add(1, Ordering::Relaxed);
            self.counters
                .recorded
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            for (record, reply) in records.iter().zip(replies) {
                // A caller that gave up still has its event stored; nothing to undo.
                let _ = reply.send(Ok(Receipt {
                    seq: record.seq,
                    hash: record.hash,
                }));
            }
        }
        // One wake-up for the sinks per flush, however many batches it covered.
        if let Some(head) = head {
            self.head.send_replace(head);
        }
    }
}

/// Fails every caller of one batch with `error`.
fn fail_all(
    counters: &Counters,
    replies: Vec<oneshot::Sender<Result<Receipt, AuditError>>>,
    error: AuditError,
) {
    counters.store_failures.fetch_add(1, Ordering::Relaxed);
    counters
        .failed
        .fetch_add(replies.len() as u64, Ordering::Relaxed);
    if let Ok(mut last) = counters.last_error.lock() {
        *last = Some(error.to_string());
    }
    for reply in replies {
        let _ = reply.send(Err(error.clone()));
    }
}

/// A store that broke the [`AuditStore::append`] contract.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BrokenStore(String);
