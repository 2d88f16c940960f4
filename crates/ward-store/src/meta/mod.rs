//! The metadata store: SQLite (embedded default) or PostgreSQL (scale-out).
//!
//! All SQL lives under this module. One query text serves both backends: the
//! statements use `$N` placeholders, which both drivers accept, and only
//! portable SQL (`ON CONFLICT`, `RETURNING`). The [`on_reader!`]/[`on_writer!`]
//! macros run one body against whichever pool is configured, so each query is
//! written once. SQLite gets a single writer connection (writes are serialised
//! in-process instead of failing with `SQLITE_BUSY`) and a pool of readers,
//! which WAL mode lets run beside the writer.

mod audit;
mod auth;
mod registry;
mod resolutions;
mod scan;
mod uploads;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use auth::{
    AccessToken, AccessTokenLogin, AuthObject, AuthStoreError, Group, LAST_USE_RESOLUTION_MS,
    NewAccessToken, NewRobot, NewUser, Page, PutOutcome, RepositoryLabel, Robot,
    StoredImmutabilityRule, StoredPolicy, StoredRoleBinding, User,
};
pub use registry::{
    DeleteManifestOutcome, ManifestMeta, NewManifest, PutManifestOutcome, Referrer, RepositoryPage,
    TagProtection,
};
pub use scan::{Quarantine, QuarantineSource, ReleasedScan, ScanJob, StoredScan};
pub use uploads::{NewUpload, Upload, UploadChunk};

/// Errors from the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or refused a statement.
    #[error("metadata database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying schema migrations failed.
    #[error("metadata schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be decoded; the database was edited by hand or is corrupt.
    #[error("stored metadata is corrupt: {0}")]
    Corrupt(String),
    /// Flushing SQLite's write-ahead log to disk failed; what it held may be lost.
    #[error("flushing the metadata database's write-ahead log failed: {0}")]
    Flush(std::io::Error),
    /// The database URL names no supported backend.
    #[error("unsupported database URL {0:?}: use sqlite://<path> or postgres://...")]
    UnsupportedUrl(String),
}

/// How the store connects.
#[derive(Clone, Debug)]
pub struct MetaStoreOptions {
    /// Most connections per pool (PostgreSQL) or readers (SQLite).
    pub connections_max: u32,
    /// How long SQLite waits for a lock held by another process.
    pub sqlite_busy_timeout: Duration,
    /// Whether SQLite syncs the WAL on every commit (`FULL`) or only at
    /// checkpoints (`NORMAL`, which survives process crashes but not power loss).
    pub sqlite_sync_every_commit: bool,
    /// Manifest resolutions (repository and tag or digest) kept in memory;
    /// 0 keeps none. SQLite only: a PostgreSQL database is shared by servers
    /// whose changes this one would not see (`resolutions` module).
    pub resolution_cache_entries: usize,
    /// How long a statement waits for a pooled connection (on SQLite, writes
    /// wait here for the one writer) before it fails.
    pub pool_wait_max: Duration,
}

impl Default for MetaStoreOptions {
    fn default() -> Self {
        MetaStoreOptions {
            connections_max: 8,
            sqlite_busy_timeout: Duration::from_secs(10),
            sqlite_sync_every_commit: true,
            resolution_cache_entries: 10_000,
            pool_wait_max: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite {
        reader: SqlitePool,
        writer: SqlitePool,
        /// The audit appender's memory, shared by every clone of the store.
        append: Arc<audit::SqliteAppendState>,
    },
    Postgres(PgPool),
}

/// Registry metadata: repositories, blobs, manifests, tags, uploads and more.
#[derive(Clone, Debug)]
pub struct MetaStore {
    backend: Backend,
    resolutions: Option<Arc<resolutions::ResolutionCache>>,
}

/// Runs `$body` with `$pool` bound to the pool for reads.
macro_rules! on_reader {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::meta::Backend::Sqlite { reader: $pool, .. } => $body,
            $crate::meta::Backend::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$pool` bound to the pool for writes, and `$pg` telling
/// whether the backend is PostgreSQL (for the rare statement that must differ).
macro_rules! on_writer {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::meta::Backend::Sqlite { writer: $pool, .. } => $body,
            $crate::meta::Backend::Postgres($pool) => $body,
        }
    };
    ($store:expr, |$pool:ident, $pg:ident| $body:expr) => {
        match &$store.backend {
            $crate::meta::Backend::Sqlite { writer: $pool, .. } => {
                let $pg = false;
                $body
            }
            $crate::meta::Backend::Postgres($pool) => {
                let $pg = true;
                $body
            }
        }
    };
}

/// Inside a transaction `$tx`, finds or creates repository `$name`; evaluates to its id.
macro_rules! ensure_repository {
    ($tx:ident, $name:expr, $now:expr) => {{
        sqlx::query("INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind($name.as_str())
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
            .bind($name.as_str())
            .fetch_one(&mut *$tx)
            .await?;
        id
    }};
}

/// Inside a transaction `$tx`, records blob `$digest` and links it into repository `$repo_id`.
macro_rules! insert_blob_and_link {
    ($tx:ident, $repo_id:expr, $digest:expr, $size:expr, $now:expr) => {{
        sqlx::query("INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING")
            .bind($digest.to_string())
            .bind($size)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        // New content is queued for scanning in the transaction that makes it
        // visible, so no blob can be served without having been queued.
        sqlx::query(
            "INSERT INTO scan_queue (digest, reason, enqueued_at, next_attempt_at) \
             SELECT $1, 'push', $2, $2 WHERE NOT EXISTS (SELECT 1 FROM scan_results WHERE digest = $1) \
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind($digest.to_string())
        .bind($now)
        .execute(&mut *$tx)
        .await?;
        sqlx::query(
            "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (repository_id, digest) DO NOTHING",
        )
        .bind($repo_id)
        .bind($digest.to_string())
        .bind($now)
        .execute(&mut *$tx)
        .await?;
    }};
}
pub(crate) use {ensure_repository, insert_blob_and_link, on_reader, on_writer};

pub(crate) static SQLITE_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("./migrations/sqlite");
pub(crate) static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("./migrations/postgres");

impl MetaStore {
    /// Connects to `url` (`sqlite://path` or `postgres://...`) and applies
    /// pending migrations. A SQLite file is created if missing.
    pub async fn connect(url: &str, options: &MetaStoreOptions) -> Result<Self, StoreError> {
        let store = if url.starts_with("sqlite:") {
            Self::connect_sqlite(url, options).await?
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Self::connect_postgres(url, options).await?
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The file of a `sqlite:` URL; `None` for other backends and in-memory databases.
    pub fn sqlite_file(url: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
        if !url.starts_with("sqlite:") {
            return Ok(None);
        }
        Ok(sqlite_file_of(url, &SqliteConnectOptions::from_str(url)?))
    }

    async fn connect_sqlite(url: &str, options: &MetaStoreOptions) -> Result<Self, StoreError> {
        let synchronous = if options.sqlite_sync_every_commit {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        };
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(options.sqlite_busy_timeout)
            .foreign_keys(true);
        // A SQLite connection is a handle in this process with nothing to go stale,
        // so sqlx's ping before every acquire (a round trip to the connection's
        // worker thread) buys nothing.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(options.pool_wait_max)
            .connect_with(connect.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.connections_max.max(1))
            .test_before_acquire(false)
            .acquire_timeout(options.pool_wait_max)
            .connect_with(connect.clone().read_only(true))
            .await?;
        // Audit appends leave their flush to one shared flush of the log
        // (`audit::flush_wal`), which only means something if commits are
        // otherwise durable and there is a file. SQLite names the log after the
        // database with symbolic links resolved; the file exists by now.
        let wal = match sqlite_file_of(url, &connect) {
            Some(file) if options.sqlite_sync_every_commit => {
                let mut wal = std::fs::canonicalize(&file)
                    .unwrap_or(file)
                    .into_os_string();
                wal.push("-wal");
                Some(std::path::PathBuf::from(wal))
            }
            _ => None,
        };
        let resolutions = (options.resolution_cache_entries > 0).then(|| {
            Arc::new(resolutions::ResolutionCache::new(
                options.resolution_cache_entries,
            ))
        });
        Ok(MetaStore {
            backend: Backend::Sqlite {
                reader,
                writer,
                append: Arc::new(audit::SqliteAppendState::new(wal)),
            },
            resolutions,
        })
    }

    async fn connect_postgres(url: &str, options: &MetaStoreOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.connections_max.max(2))
            .acquire_timeout(options.pool_wait_max)
            .connect_with(connect)
            .await?;
        Ok(MetaStore {
            backend: Backend::Postgres(pool),
            resolutions: None,
        })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite { writer, .. } => SQLITE_MIGRATIONS.run(writer).await?,
            Backend::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Takes the SQLite writer connection and keeps it until the returned
    /// connection drops, so that a test can make the store's writes wait for
    /// it; `None` on PostgreSQL.
    #[cfg(feature = "test-support")]
    pub async fn hold_sqlite_writer(
        &self,
    ) -> Result<Option<sqlx::pool::PoolConnection<sqlx::Sqlite>>, StoreError> {
        match &self.backend {
            Backend::Sqlite { writer, .. } => Ok(Some(writer.acquire().await?)),
            Backend::Postgres(_) => Ok(None),
        }
    }

    /// Changes to tags or manifests abandoned half-way whose outcome the
    /// store does not know yet. While there are any, manifest resolutions are
    /// not answered from memory (`resolutions` module).
    pub fn resolutions_unsettled(&self) -> usize {
        self.resolutions
            .as_ref()
            .map_or(0, |cache| cache.unsettled())
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_reader!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Closes every connection, waiting for in-flight statements.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { reader, writer, .. } => {
                reader.close().await;
                writer.close().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn to_i64(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} exceeds i64")))
}

pub(crate) fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what} {v}")))
}

pub(crate) fn parse_digest(s: &str) -> Result<ward_core::Digest, StoreError> {
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("stored digest {s:?}: {e}")))
}

/// The database file `options`, parsed from `url`, open; `None` for an
/// in-memory database: `sqlite::memory:` (which sqlx renames
/// `file:sqlx-in-memory-<n>`), an empty name, or `?mode=memory`. sqlx opens
/// names as SQLite URIs, so `file:ward.db` and `file:///var/ward.db` name
/// `ward.db` and `/var/ward.db`, and `file::memory:` is in memory.
fn sqlite_file_of(url: &str, options: &SqliteConnectOptions) -> Option<std::path::PathBuf> {
    let file = options.get_filename();
    let name = file.to_string_lossy();
    let memory_mode = url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| pair.eq_ignore_ascii_case("mode=memory"))
    });
    if memory_mode || name.starts_with("file:sqlx-in-memory-") {
        return None;
    }
    let path = match name.strip_prefix("file:") {
        Some(uri) => {
            // `file://<authority>/<path>`: only an empty or local authority opens.
            let path = match uri.strip_prefix("//") {
                Some(rest) => &rest[rest.find('/')?..],
                None => uri,
            };
            path.split(['?', '#']).next().unwrap_or_default()
        }
        // A plain name is taken as it is (sqlx decoded any `%3F` or `%23` in it).
        None => &name,
    };
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::MetaStore;

    /// A server on an in-memory database has no file to lock or flush; one
    /// on a file has exactly that file.
    #[test]
    fn only_sqlite_urls_naming_a_file_have_one() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://ward.db?mode=memory",
            "sqlite://ward.db?cache=shared&mode=memory",
            "sqlite:file::memory:",
            "postgres://postgres@127.0.0.1/test",
        ] {
            assert_eq!(MetaStore::sqlite_file(url).unwrap(), None, "{url}");
        }
        for (url, file) in [
            ("sqlite://ward-data/ward.db", "ward-data/ward.db"),
            (
                "sqlite:///var/lib/ward/ward.db?mode=rwc",
                "/var/lib/ward/ward.db",
            ),
            ("sqlite://memory.db", "memory.db"),
            ("sqlite:file:ward.db", "ward.db"),
            ("sqlite://odd%3Fname.db", "odd?name.db"),
            (
                "sqlite:file:///var/lib/ward/ward.db",
                "/var/lib/ward/ward.db",
            ),
        ] {
            assert_eq!(
                MetaStore::sqlite_file(url).unwrap().as_deref(),
                Some(std::path::Path::new(file)),
                "{url}"
            );
        }
    }
}
