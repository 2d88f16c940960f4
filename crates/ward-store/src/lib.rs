//! ward-store: where the registry keeps its metadata and its bytes.
//!
//! Two ports, deliberately small:
//!
//! - [`MetaStore`]: repositories, blobs and their per-repository links,
//!   manifests, tags, referrers and upload sessions, in SQLite (WAL, the
//!   embedded default) or PostgreSQL (for several servers sharing one
//!   database). One schema, migrations for both, one test suite run on both.
//! - [`BlobStore`]: bytes under keys on `object_store` (local filesystem by
//!   default, S3-compatible buckets by configuration). It knows nothing of
//!   digests or repositories; [`paths`] is the one place keys are made.
//!
//! The design decision a reader must know: **visibility is metadata.** Bytes
//! are written to the blob store first, under keys nobody can read, and become
//! visible only when a transaction in the metadata store records them — after
//! their digest was verified. A crash between the two leaves unreachable bytes,
//! never a reference to missing ones.
//!
//! **Only this crate writes SQL, and it knows nothing of HTTP.**
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ward_store::{MetaStore, MetaStoreOptions};
//! let meta = MetaStore::connect("sqlite://ward-data/ward.db", &MetaStoreOptions::default()).await?;
//! meta.ping().await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod blob;
pub mod meta;
pub mod paths;
#[cfg(feature = "test-support")]
pub mod testing;

pub use blob::{BlobStore, BlobStoreError, BlobStoreOptions, BlobWriter, ByteStream};
pub use meta::{MetaStore, MetaStoreOptions, StoreError, now_ms};
/// Keys in the blob store.
pub use object_store::path::Path as ObjectKey;
