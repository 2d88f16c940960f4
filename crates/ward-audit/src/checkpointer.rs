//! Periodic signed checkpoints, and a continuous self-check of the stored chain.
//!
//! The [`Checkpointer`] keeps the Merkle [`Frontier`] of the log. Each round it reads
//! the records appended since its last round, checks that each one links to the
//! previous and hashes correctly, extends the tree, and signs a checkpoint if the log
//! grew. A record that does not link is reported as tampering and **no checkpoint is
//! signed over it**: the server never vouches for an edited log.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::checkpoint::{self, Checkpoint, CheckpointSigner};
use crate::event::timestamp;
use crate::hash::Hash;
use crate::merkle::{self, Frontier};
use crate::store::{AuditStore, READ_RECORDS_MAX, StoredCheckpoint};

/// Why a checkpoint round failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CheckpointerError {
    /// The store failed.
    #[error("audit store failed: {0}")]
    Store(String),
    /// A stored record does not extend the chain: the log was edited.
    #[error(
        "audit log is damaged at seq {seq}: {detail}; no checkpoint will be signed until it is investigated"
    )]
    Tampered {
        /// The first record that does not fit.
        seq: u64,
        /// What is wrong with it.
        detail: String,
    },
    /// Signing failed.
    #[error("cannot sign checkpoint: {0}")]
    Sign(String),
}

/// The checkpointer's state, for `/metrics` and health output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointStatus {
    /// Size covered by the latest checkpoint this process knows of.
    pub tree_size: u64,
    /// When that checkpoint was signed.
    #[serde(default, with = "optional_time")]
    pub signed_at: Option<OffsetDateTime>,
    /// Checkpoints signed by this process.
    pub signed_total: u64,
    /// Failed rounds.
    pub failures_total: u64,
    /// The error of the last failed round, cleared by a successful one.
    pub last_error: Option<String>,
}

mod optional_time {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&crate::event::timestamp::format(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| crate::event::timestamp::parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Signs checkpoints over a store's log.
pub struct Checkpointer<S> {
    store: Arc<S>,
    signer: CheckpointSigner,
    frontier: Frontier,
    chain_head: Hash,
    signed_size: Option<u64>,
    status: watch::Sender<CheckpointStatus>,
}

fn store_error(e: impl std::fmt::Display) -> CheckpointerError {
    CheckpointerError::Store(e.to_string())
}

impl<S: AuditStore> Checkpointer<S> {
    /// Resumes from the latest stored checkpoint if it is this key's and consistent with
    /// the stored records; otherwise rebuilds the tree from the first record.
    pub async fn resume(
        store: Arc<S>,
        signer: CheckpointSigner,
    ) -> Result<Checkpointer<S>, CheckpointerError> {
        let (status, _) = watch::channel(CheckpointStatus::default());
        let mut this = Checkpointer {
            store,
            signer,
            frontier: Frontier::new(),
            chain_head: Hash::ZERO,
            signed_size: None,
            status,
        };
        let latest = this.store.latest_checkpoint().await.map_err(store_error)?;
        if let Some(stored) = latest {
            this.adopt(&stored).await?;
        }
        Ok(this)
    }

    /// Starts from `stored` when it is trustworthy; leaves the empty state otherwise.
    async fn adopt(&mut self, stored: &StoredCheckpoint) -> Result<(), CheckpointerError> {
        let Ok(cp) = checkpoint::open(&stored.note, &[self.signer.verifier()]) else {
            return Ok(());
        };
        let Ok(frontier) = Frontier::from_parts(cp.tree_size, stored.frontier.clone()) else {
            return Ok(());
        };
        if frontier.root() != cp.root_hash || cp.tree_size == 0 {
            return Ok(());
        }
        let last = self
            .store
            .read(cp.tree_size - 1, 1)
            .await
            .map_err(store_error)?;
        let linked = last
            .first()
            .is_some_and(|r| r.seq == cp.tree_size - 1 && r.hash == cp.chain_head);
        if linked {
            self.frontier = frontier;
            self.chain_head = cp.chain_head;
            self.signed_size = Some(cp.tree_size);
            self.status.send_modify(|s| {
                s.tree_size = cp.tree_size;
                s.signed_at = Some(cp.timestamp);
            });
        }
        Ok(())
    }

    /// A receiver of status snapshots.
    pub fn status(&self) -> watch::Receiver<CheckpointStatus> {
        self.status.subscribe()
    }

    /// Reads new records, checks them and signs a checkpoint if the log grew.
    /// Returns the checkpoint stored, if any.
    pub async fn checkpoint_now(&mut self) -> Result<Option<StoredCheckpoint>, CheckpointerError> {
        let result = self.round().await;
        self.status.send_modify(|s| match &result {
            Ok(Some(stored)) => {
                s.tree_size = stored.tree_size;
                s.signed_at = Some(stored.created_at);
                s.signed_total += 1;
                s.last_error = None;
            }
            Ok(None) => s.last_error = None,
            Err(e) => {
                s.failures_total += 1;
                s.last_error = Some(e.to_string());
            }
        });
        result
    }

    async fn round(&mut self) -> Result<Option<StoredCheckpoint>, CheckpointerError> {
        self.catch_up().await?;
        // Sign only what a power cut cannot take back.
        self.store.sync().await.map_err(store_error)?;
        let size = self.frontier.size();
        if size == 0 || self.signed_size == Some(size) {
            return Ok(None);
        }
        let now = timestamp::now();
        let cp = Checkpoint {
            origin: self.signer.origin().to_owned(),
            tree_size: size,
            root_hash: self.frontier.root(),
            chain_head: self.chain_head,
            timestamp: now,
        };
        let note = self
            .signer
            .sign(&cp)
            .map_err(|e| CheckpointerError::Sign(e.to_string()))?;
        let stored = StoredCheckpoint {
            tree_size: size,
            created_at: now,
            note,
            frontier: self.frontier.nodes().to_vec(),
        };
        self.store
            .put_checkpoint(&stored)
            .await
            .map_err(store_error)?;
        self.signed_size = Some(size);
        Ok(Some(stored))
    }

    /// Extends the frontier with every record stored since the last round.
    async fn catch_up(&mut self) -> Result<(), CheckpointerError> {
        loop {
            let next = self.frontier.size();
            let records = self
                .store
                .read(next, READ_RECORDS_MAX)
                .await
                .map_err(store_error)?;
            if records.is_empty() {
                return Ok(());
            }
            for record in records {
                let expected = self.frontier.size();
                let problem = if record.seq != expected {
                    Some(format!("expected seq {expected}, found seq {}", record.seq))
                } else if record.prev_hash != self.chain_head {
                    Some("its prev_hash is not the hash of the record before it".to_owned())
                } else if !record.is_self_consistent() {
                    Some("its hash does not match its content".to_owned())
                } else {
                    None
                };
                if let Some(detail) = problem {
                    return Err(CheckpointerError::Tampered {
                        seq: expected,
                        detail,
                    });
                }
                self.frontier
                    .push(merkle::leaf_hash(record.hash.as_bytes()));
                self.chain_head = record.hash;
            }
        }
    }

    /// Runs a round every `interval` until the task is aborted.
    pub fn spawn(mut self, interval: Duration) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                // Failures are kept in the status for health output; the next tick retries.
                let _ = self.checkpoint_now().await;
            }
        })
    }
}
