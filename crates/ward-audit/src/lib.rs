//! ward-audit: Ward's append-only, tamper-evident audit log.
//!
//! Every security-relevant act becomes an [`AuditEvent`]; the server records it with
//! one call and gets an answer only once it is durable:
//!
//! ```ignore
//! let audit = ward_audit::Audit::start(store, &config.audit, signer).await?;
//! audit.log().record(AuditEvent::new(EventType::Push).user(&who).repository(&repo).digest(&digest)).await?;
//! ```
//!
//! Main types:
//!
//! - [`AuditEvent`] / [`EventType`]: what happened (the mission's fields and Ward's own);
//! - [`AuditRecord`]: a stored event in the hash chain (`seq`, `prev_hash`, `hash`, canonical JSON);
//! - [`AuditStore`]: the storage port `ward-store` implements (its module documents the
//!   exact tables and triggers);
//! - [`AuditLog`]: the group-committing front end; [`Audit`] starts it with the
//!   [`Checkpointer`], the sinks and the alert rules;
//! - [`merkle`]: the RFC 9162 tree with inclusion and consistency proofs;
//! - [`checkpoint`]: Ed25519-signed C2SP checkpoints;
//! - [`verify()`](verify::verify) / [`export`]: the offline verifier and the JSON-lines export format;
//! - [`sink`] and [`alert`]: at-least-once delivery to files, syslog, webhooks; alerting rules.
//!
//! The design decision a reader must know: **the store chains, under its own lock.**
//! [`AuditStore::append`] receives an [`EventBatch`] and links it to the head it reads
//! inside its transaction ([`EventBatch::link`]), so any number of server processes
//! sharing one PostgreSQL keep a single chain, and nothing outside the store ever
//! guesses the next `seq`. Everything else — sinks, alerts, checkpoints, verification —
//! reads the durable log through the same port, so nothing can see an event the log
//! does not hold, and no event the log holds can be silently skipped.
//!
//! **This crate writes no SQL and serves no HTTP.**
//!
//! ```
//! use ward_audit::{AuditEvent, ChainHead, EventBatch, EventType, verify};
//! let batch = EventBatch::new(vec![
//!     AuditEvent::new(EventType::AuthFailure).user("mallory").reason("bad password"),
//!     AuditEvent::new(EventType::Push).user("alice").repository("lib/app").tag("1.0"),
//! ]).unwrap();
//! let records: Vec<_> = batch.link(&ChainHead::EMPTY).events.into_iter().map(|l| l.record).collect();
//! let report = verify::verify(records, &[], &[], None);
//! assert!(report.is_intact());
//! assert_eq!(report.unprotected_tail, 2); // no signed checkpoint yet
//! ```
#![deny(missing_docs)]

pub mod alert;
pub mod bench;
pub mod canonical;
pub mod checkpoint;
pub mod checkpointer;
pub mod config;
pub mod event;
pub mod export;
pub mod hash;
pub mod log;
pub mod merkle;
pub mod record;
pub mod service;
pub mod sink;
pub mod store;
pub mod verify;

pub use alert::{Alert, AlertEngine, RuleConfig, Severity};
pub use checkpoint::{Checkpoint, CheckpointSigner, CheckpointVerifier};
pub use checkpointer::{CheckpointStatus, Checkpointer};
pub use config::AuditConfig;
pub use event::{Artifact, AuditEvent, EventLimits, EventType, Outcome};
pub use hash::Hash;
pub use log::{AuditError, AuditLog, LogConfig, Receipt};
pub use record::{AuditRecord, ChainHead, EventBatch};
pub use service::{Audit, AuditStatus};
pub use store::{AuditStore, EventFilter, StoredCheckpoint};
pub use verify::{ProblemKind, Report, verify};
