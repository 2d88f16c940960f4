//! The audit log's storage: [`ward_audit::AuditStore`] for [`MetaStore`].
//!
//! The tables and triggers are migration `0002_audit.sql` of each backend, exactly as
//! `ward_audit::store` specifies them: `audit_events` (the chain; triggers refuse
//! UPDATE, DELETE and any INSERT that does not extend the chain), `audit_head` (one
//! row: size and hash of the last event), `audit_checkpoints` and
//! `audit_sink_cursors`.
//!
//! # Appending
//!
//! One transaction per batch: lock the head row, link the batch after it
//! ([`EventBatch::link`]), insert the records, move the head, commit. The lock is what
//! keeps one chain when several writers share a database:
//!
//! - **PostgreSQL**: `SELECT … FROM audit_head … FOR UPDATE` inside
//!   `BEGIN ISOLATION LEVEL READ COMMITTED`. Appenders in any number of processes
//!   queue on the row lock; the one that gets it reads the head its predecessor
//!   committed. The isolation level is explicit because under a server default of
//!   REPEATABLE READ or SERIALIZABLE a waiting appender would fail with a
//!   serialisation error instead of reading the new head. The batch goes in as one
//!   `INSERT … SELECT FROM UNNEST(…)` (ten array parameters whatever its size).
//! - **SQLite**: the store's single writer connection, which within one process
//!   already serialises appends. The store remembers the head it last committed, so a
//!   batch is linked without reading it and goes to sqlx's SQLite worker thread as one
//!   multi-statement command, `BEGIN IMMEDIATE; INSERT …; UPDATE audit_head …; COMMIT`:
//!   one round trip per batch instead of one per statement, which is what an append
//!   cost (each round trip wakes the worker thread and then the writer task). If
//!   another process appended to the same file meanwhile, the remembered head is
//!   stale, the chain trigger refuses the first row and nothing of the batch stays;
//!   the batch is then appended the locked way: `BEGIN IMMEDIATE` takes the file's
//!   write lock *before* the head is read, so a second process waits (up to
//!   `sqlite_busy_timeout`) instead of linking to a stale head. The first append of a
//!   process goes the locked way too. Several processes on one SQLite file therefore
//!   keep one chain, but only on a local filesystem (WAL needs shared memory) and at
//!   the cost of waiting on each other; PostgreSQL is the backend for several servers.
//!
//! A statement refused by a trigger or constraint fails the whole batch; nothing of it
//! is stored, and [`ward_audit::AuditLog`] fails every request of the batch.
//!
//! # Reading
//!
//! Records are rebuilt from `seq`, `prev_hash`, `hash` and `event_json` only; a row
//! that cannot be a record at all (a hash that is not 32 bytes, a negative `seq`) is
//! [`StoreError::Corrupt`] naming its `seq`. Rows that are merely wrong (edited,
//! missing, out of order) are returned as stored: finding them is the verifier's job.
//!
//! [`AuditStore::query`] selects by the copied columns (`user_name`, `repository`, …,
//! indexed) and then checks every record it returns against its hashed `event_json`
//! with [`EventFilter::matches`]; a record whose columns were edited to match is
//! refused as [`StoreError::Corrupt`], never returned. (A record whose columns were
//! edited *not* to match cannot be seen by a query; `ward audit verify` reads the
//! chain, not the columns.)
//!
//! A checkpoint's evidence is its signed note, returned verbatim. Its frontier is a
//! cache the checkpointer can rebuild: one that does not fit its size is dropped with
//! a warning rather than hiding the note from the verifier.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::Connection as _;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPool;
use sqlx::sqlite::{Sqlite, SqlitePool};
use ward_audit::event::timestamp;
use ward_audit::merkle::Frontier;
use ward_audit::record::LinkedEvent;
use ward_audit::store::{AuditStore, EventFilter, READ_RECORDS_MAX, StoredCheckpoint};
use ward_audit::{AuditRecord, ChainHead, EventBatch, Hash};

use super::{Backend, MetaStore, StoreError, on_reader, on_writer, to_i64, to_u64};

const HEAD_SELECT: &str = "SELECT size, head_hash FROM audit_head WHERE id = 1";
const HEAD_SELECT_FOR_UPDATE: &str =
    "SELECT size, head_hash FROM audit_head WHERE id = 1 FOR UPDATE";
const HEAD_UPDATE: &str = "UPDATE audit_head SET size = $1, head_hash = $2 WHERE id = 1";

/// Rows per SQLite `INSERT` (10 parameters each, far below SQLite's limit).
const SQLITE_ROWS_PER_INSERT: usize = 16;

/// Batches of at most this many events keep their statement prepared on the
/// writer connection; each size is its own text, and rarer, larger batches are
/// not worth a cache slot.
const SQLITE_PREPARED_BATCH_MAX: usize = 64;

/// Appends `rows` events, in order, as `INSERT … VALUES (…), (…)` statements of
/// [`SQLITE_ROWS_PER_INSERT`] rows; the chain trigger sees each row extend the last.
///
/// The parameters are anonymous `?`s, bound in order across the statements of
/// a command. Numbered ones (`$N`) cost sqlx a name lookup per parameter that
/// SQLite answers by walking the statement's parameter list, which made binding
/// a batch quadratic in its size (3 % of the server's CPU on audited pulls).
fn push_sqlite_events_insert(sql: &mut String, rows: usize) {
    for (chunk, start) in (0..rows).step_by(SQLITE_ROWS_PER_INSERT).enumerate() {
        if chunk > 0 {
            sql.push_str("; ");
        }
        sql.push_str(
            "INSERT INTO audit_events \
             (seq, prev_hash, hash, occurred_at, event_type, action, outcome, user_name, repository, event_json) VALUES ",
        );
        for row in start..rows.min(start + SQLITE_ROWS_PER_INSERT) {
            if row > start {
                sql.push_str(", ");
            }
            sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        }
    }
}

/// `INSERT INTO audit_events …` for `rows` rows: `10 * rows` parameters.
fn sqlite_events_insert(rows: usize) -> String {
    let mut sql = String::new();
    push_sqlite_events_insert(&mut sql, rows);
    sql
}

/// The whole of a remembered-head append of `rows` events as one command:
/// `BEGIN IMMEDIATE`, the inserts (`10 * rows` parameters), the head update
/// (two more: size and hash) and `COMMIT`. With [`Flush::Later`] the command
/// is wrapped in `PRAGMA synchronous = NORMAL` … `FULL`, so that this commit,
/// and no other on the writer connection, leaves its flush to the next
/// [`WalFlusher::flush`] (the audit log's syncer, through `sync_blocking`).
fn sqlite_batch_append(rows: usize, flush: Flush) -> String {
    let mut sql = String::new();
    if flush == Flush::Later {
        sql.push_str("PRAGMA synchronous = NORMAL; ");
    }
    sql.push_str("BEGIN IMMEDIATE; ");
    push_sqlite_events_insert(&mut sql, rows);
    sql.push_str("; UPDATE audit_head SET size = ?, head_hash = ? WHERE id = 1; COMMIT");
    if flush == Flush::Later {
        sql.push_str("; PRAGMA synchronous = FULL");
    }
    sql
}

/// Makes every commit made before this call durable by flushing the write-ahead
/// log, on a blocking thread.
async fn flush_wal(wal: Arc<WalFlusher>) -> Result<(), StoreError> {
    match tokio::task::spawn_blocking(move || wal.flush()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(StoreError::Flush(e)),
        Err(e) => Err(StoreError::Flush(std::io::Error::other(e))),
    }
}

/// Flushes SQLite's write-ahead log for the commits that left it unflushed.
///
/// One handle on the log is kept and reused while the log is the same file.
/// Linux reports a failed write-back once to each handle open when it
/// happened, so a handle opened afresh for every flush could be told nothing
/// of a failure another handle (SQLite's own) was told of first, and call
/// lost frames durable. A new file under the name (SQLite deletes the log
/// when its last connection closes, and creates another later) gets a new
/// handle. A log that is missing or new is still right to flush: SQLite
/// removes or restarts a log only after copying every frame of it into the
/// database and syncing the database, so a commit no longer in the file is
/// already on disk.
///
/// The first failure is final: after a failed flush the kernel may have
/// dropped pages it could not write, so no later flush can vouch for the
/// commits before it. The server must restart.
///
/// Flushes run one at a time. The handle is shared, and the kernel tells a
/// write-back error to one flush of it only: a second flush running beside
/// the failing one could return success for the lost frames before the
/// failure is recorded.
#[derive(Debug)]
pub(super) struct WalFlusher {
    path: PathBuf,
    /// The log as last opened, and which file it was.
    open: Mutex<Option<(Arc<std::fs::File>, FileId)>>,
    /// Held for the whole of a flush, from the check of `failed` to recording
    /// a failure.
    flushing: Mutex<()>,
    /// Why the first failed flush failed.
    failed: std::sync::OnceLock<String>,
}

/// A file's device and inode: which file a name stands for.
type FileId = (u64, u64);

impl WalFlusher {
    pub(super) fn new(path: PathBuf) -> WalFlusher {
        WalFlusher {
            path,
            open: Mutex::default(),
            flushing: Mutex::default(),
            failed: std::sync::OnceLock::new(),
        }
    }

    /// The log's file name.
    #[cfg(test)]
    pub(super) fn path(&self) -> &std::path::Path {
        &self.path
    }

    pub(super) fn flush(&self) -> std::io::Result<()> {
        let _one_at_a_time = self.flushing.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(first) = self.failed.get() {
            return Err(std::io::Error::other(format!(
                "an earlier flush of the write-ahead log failed ({first}); restart the server"
            )));
        }
        let flushed = self.flush_current();
        if let Err(e) = &flushed {
            let _ = self.failed.set(e.to_string());
        }
        flushed
    }

    fn flush_current(&self) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt as _;
        let missing = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        let file_id = match std::fs::metadata(&self.path) {
            Ok(meta) => (meta.dev(), meta.ino()),
            Err(e) if missing(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        let file = {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            match &*open {
                Some((file, id)) if *id == file_id => file.clone(),
                _ => match std::fs::File::open(&self.path) {
                    Ok(file) => open.insert((Arc::new(file), file_id)).0.clone(),
                    Err(e) if missing(&e) => return Ok(()),
                    Err(e) => return Err(e),
                },
            }
        };
        file.sync_data()
    }
}

impl MetaStore {
    /// The write-ahead log that audit commits leave unflushed, if any (SQLite
    /// on a file; PostgreSQL commits are durable).
    fn unflushed_wal(&self) -> Option<&Arc<WalFlusher>> {
        match &self.backend {
            Backend::Sqlite { append, .. } => append.wal.as_ref(),
            Backend::Postgres(_) => None,
        }
    }
}

/// Rows leave `UNNEST` in array order; `ORDER BY seq` makes the order the chain
/// trigger checks explicit.
const EVENTS_INSERT_POSTGRES: &str = "INSERT INTO audit_events \
     (seq, prev_hash, hash, occurred_at, event_type, action, outcome, user_name, repository, event_json) \
     SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::bytea[], $4::timestamptz[], $5::text[], \
     $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) ORDER BY 1";

const EVENTS_READ: &str = "SELECT seq, prev_hash, hash, event_json FROM audit_events \
     WHERE seq >= $1 ORDER BY seq LIMIT $2";

const CHECKPOINT_INSERT_SQLITE: &str = "INSERT INTO audit_checkpoints \
     (tree_size, created_at, note, frontier) VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size) DO NOTHING";
const CHECKPOINT_INSERT_POSTGRES: &str = "INSERT INTO audit_checkpoints \
     (tree_size, created_at, note, frontier) VALUES ($1, $2::timestamptz, $3, $4) \
     ON CONFLICT (tree_size) DO NOTHING";
// PostgreSQL spells created_at the way ward-audit writes timestamps, so both backends
// decode one text form.
const CHECKPOINTS_READ_SQLITE: &str = "SELECT tree_size, created_at, note, frontier \
     FROM audit_checkpoints WHERE tree_size >= $1 ORDER BY tree_size LIMIT $2";
const CHECKPOINTS_READ_POSTGRES: &str = "SELECT tree_size, \
     to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), note, frontier \
     FROM audit_checkpoints WHERE tree_size >= $1 ORDER BY tree_size LIMIT $2";
const CHECKPOINT_LATEST_SQLITE: &str = "SELECT tree_size, created_at, note, frontier \
     FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1";
const CHECKPOINT_LATEST_POSTGRES: &str = "SELECT tree_size, \
     to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), note, frontier \
     FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1";

const CURSOR_READ: &str = "SELECT next_seq FROM audit_sink_cursors WHERE sink = $1";
const CURSOR_UPSERT_SQLITE: &str = "INSERT INTO audit_sink_cursors (sink, next_seq, updated_at) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (sink) DO UPDATE SET next_seq = excluded.next_seq, updated_at = excluded.updated_at";
const CURSOR_UPSERT_POSTGRES: &str = "INSERT INTO audit_sink_cursors (sink, next_seq, updated_at) \
     VALUES ($1, $2, $3::timestamptz) \
     ON CONFLICT (sink) DO UPDATE SET next_seq = excluded.next_seq, updated_at = excluded.updated_at";

/// `seq, prev_hash, hash, event_json` as read.
type EventColumns = (i64, Vec<u8>, Vec<u8>, String);
/// `tree_size, created_at, note, frontier` as read.
type CheckpointColumns = (i64, String, String, Vec<u8>);

impl AuditStore for MetaStore {
    type Error = StoreError;

    async fn append(&self, batch: &EventBatch) -> Result<Vec<AuditRecord>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        match &self.backend {
            Backend::Sqlite { writer, append, .. } => {
                append_sqlite(writer, append, batch, Flush::AtCommit).await
            }
            Backend::Postgres(pool) => append_postgres(pool, batch).await,
        }
    }

    async fn append_unsynced(&self, batch: &EventBatch) -> Result<Vec<AuditRecord>, StoreError> {
        match &self.backend {
            Backend::Sqlite { writer, append, .. } if append.wal.is_some() && !batch.is_empty() => {
                append_sqlite(writer, append, batch, Flush::Later).await
            }
            _ => self.append(batch).await,
        }
    }

    fn batch_events_max(&self) -> Option<usize> {
        match self.backend {
            // Beyond this, every batch would be parsed and planned afresh.
            Backend::Sqlite { .. } => Some(SQLITE_PREPARED_BATCH_MAX),
            // One statement text whatever the size (`UNNEST` of arrays).
            Backend::Postgres(_) => None,
        }
    }

    async fn sync(&self) -> Result<(), StoreError> {
        match self.unflushed_wal() {
            Some(wal) => flush_wal(wal.clone()).await,
            None => Ok(()),
        }
    }

    fn sync_blocking(&self) -> Option<Result<(), StoreError>> {
        Some(match self.unflushed_wal() {
            Some(wal) => wal.flush().map_err(StoreError::Flush),
            None => Ok(()),
        })
    }

    async fn head(&self) -> Result<ChainHead, StoreError> {
        let row: Option<(i64, Vec<u8>)> = on_reader!(self, |pool| {
            sqlx::query_as(HEAD_SELECT).fetch_optional(pool).await?
        });
        chain_head(row)
    }

    async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        // Past i64::MAX no row can exist.
        let Ok(from) = i64::try_from(from_seq) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<EventColumns> = on_reader!(self, |pool| {
            sqlx::query_as(EVENTS_READ)
                .bind(from)
                .bind(sql_limit(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(record_of_row).collect()
    }

    async fn query(&self, filter: &EventFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let Some(query) = FilterQuery::new(filter, is_postgres(self)) else {
            return Ok(Vec::new());
        };
        let rows: Vec<EventColumns> = on_reader!(self, |pool| {
            // The text holds only fixed fragments and placeholder numbers; every
            // value is bound. Not kept prepared: each filter combination is its own
            // statement, and queries are rare next to the registry's hot statements.
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(query.sql.as_str())).persistent(false);
            for param in &query.params {
                q = match param {
                    Param::Int(n) => q.bind(*n),
                    Param::Text(s) => q.bind(s.as_str()),
                };
            }
            q.fetch_all(pool).await?
        });
        let records = rows
            .into_iter()
            .map(record_of_row)
            .collect::<Result<Vec<_>, _>>()?;
        for record in &records {
            confirm_match(filter, record)?;
        }
        Ok(records)
    }

    async fn put_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        let tree_size = to_i64(checkpoint.tree_size, "checkpoint tree_size")?;
        let created_at = timestamp::format(checkpoint.created_at);
        on_writer!(self, |pool, pg| {
            let sql = if pg {
                CHECKPOINT_INSERT_POSTGRES
            } else {
                CHECKPOINT_INSERT_SQLITE
            };
            sqlx::query(sql)
                .bind(tree_size)
                .bind(&created_at)
                .bind(&checkpoint.note)
                .bind(checkpoint.frontier_bytes())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let sql = if is_postgres(self) {
            CHECKPOINT_LATEST_POSTGRES
        } else {
            CHECKPOINT_LATEST_SQLITE
        };
        let row: Option<CheckpointColumns> = on_reader!(self, |pool| {
            sqlx::query_as(sql).fetch_optional(pool).await?
        });
        row.map(checkpoint_of_row).transpose()
    }

    async fn read_checkpoints(
        &self,
        from_size: u64,
        limit: usize,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let Ok(from) = i64::try_from(from_size) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let sql = if is_postgres(self) {
            CHECKPOINTS_READ_POSTGRES
        } else {
            CHECKPOINTS_READ_SQLITE
        };
        let rows: Vec<CheckpointColumns> = on_reader!(self, |pool| {
            sqlx::query_as(sql)
                .bind(from)
                .bind(sql_limit(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(checkpoint_of_row).collect()
    }

    async fn cursor(&self, sink: &str) -> Result<u64, StoreError> {
        let next: Option<i64> = on_reader!(self, |pool| {
            sqlx::query_scalar(CURSOR_READ)
                .bind(sink)
                .fetch_optional(pool)
                .await?
        });
        next.map_or(Ok(0), |n| to_u64(n, "audit sink cursor"))
    }

    async fn set_cursor(&self, sink: &str, next_seq: u64) -> Result<(), StoreError> {
        let next_seq = to_i64(next_seq, "audit sink cursor")?;
        let now = timestamp::format(timestamp::now());
        on_writer!(self, |pool, pg| {
            let sql = if pg {
                CURSOR_UPSERT_POSTGRES
            } else {
                CURSOR_UPSERT_SQLITE
            };
            sqlx::query(sql)
                .bind(sink)
                .bind(next_seq)
                .bind(&now)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}

/// `limit` capped at [`READ_RECORDS_MAX`], as a SQL `LIMIT`.
fn sql_limit(limit: usize) -> i64 {
    const CAP: i64 = READ_RECORDS_MAX as i64;
    i64::try_from(limit).map_or(CAP, |l| l.min(CAP))
}

fn is_postgres(store: &MetaStore) -> bool {
    matches!(store.backend, Backend::Postgres(_))
}

/// What the SQLite appender keeps between batches: the head after this process's
/// last committed batch (`None` until the first append and after a failed one),
/// and the write-ahead log to flush when commits do not flush it themselves.
#[derive(Debug)]
pub(super) struct SqliteAppendState {
    head: Mutex<Option<ChainHead>>,
    /// `Some` when the database is a file whose commits are configured to be
    /// durable (`synchronous = FULL`): then [`AuditStore::append_unsynced`] commits
    /// with `synchronous = NORMAL` and [`AuditStore::sync`] and
    /// [`AuditStore::sync_blocking`] flush this file.
    wal: Option<Arc<WalFlusher>>,
}

impl SqliteAppendState {
    pub(super) fn new(wal: Option<PathBuf>) -> SqliteAppendState {
        SqliteAppendState {
            head: Mutex::default(),
            wal: wal.map(|path| Arc::new(WalFlusher::new(path))),
        }
    }

    fn take(&self) -> Option<ChainHead> {
        self.head
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn remember(&self, head: ChainHead) {
        *self.head.lock().unwrap_or_else(PoisonError::into_inner) = Some(head);
    }
}

/// When a SQLite append's commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flush {
    /// In the commit, as the connection is configured.
    AtCommit,
    /// At the next [`flush_wal`]: the commit runs with `synchronous = NORMAL`.
    Later,
}

/// SQLite: one command per batch after the remembered head, or, when there is
/// none or it was stale, the locked way. The locked way flushes at its commit
/// unless the failed command before it left `synchronous = NORMAL`, which only
/// happens with [`Flush::Later`], whose caller flushes afterwards anyway.
async fn append_sqlite(
    pool: &SqlitePool,
    state: &SqliteAppendState,
    batch: &EventBatch,
    flush: Flush,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut tried_after = None;
    if let Some(head) = state.take() {
        match append_sqlite_after(&mut conn, batch, &head, flush).await {
            Ok((records, after)) => {
                state.remember(after);
                return Ok(records);
            }
            // Stale head (another process appended) or a real failure: the locked
            // way reads the head under the write lock and fails again if it was real.
            // A failed command also closes the connection once it is returned
            // (`CloseIfAbandoned`), so one left at `synchronous = NORMAL` is not reused.
            Err(_) => {
                rollback_sqlite(&mut conn).await;
                tried_after = Some(head);
            }
        }
    }
    let (records, after) = append_sqlite_locked(&mut conn, batch, tried_after.as_ref()).await?;
    state.remember(after);
    Ok(records)
}

/// Appends `batch` after `head` in one command, without reading the head.
async fn append_sqlite_after(
    conn: &mut PoolConnection<Sqlite>,
    batch: &EventBatch,
    head: &ChainHead,
    flush: Flush,
) -> Result<(Vec<AuditRecord>, ChainHead), StoreError> {
    let linked = batch.link(head);
    let rows = linked
        .events
        .iter()
        .map(EventRow::of)
        .collect::<Result<Vec<_>, _>>()?;
    let after = linked.head_after;
    let sql = sqlite_batch_append(rows.len(), flush);
    let mut query =
        sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(rows.len() <= SQLITE_PREPARED_BATCH_MAX);
    for row in rows {
        query = row.bind_to(query);
    }
    query = query
        .bind(to_i64(after.size, "audit head size")?)
        .bind(after.hash.as_bytes().to_vec());
    let guard = CloseIfAbandoned {
        conn,
        running: true,
    };
    query.execute(&mut **guard.conn).await?;
    guard.done();
    Ok((linked.events.into_iter().map(|e| e.record).collect(), after))
}

/// Closes the writer connection if dropped while its command runs or after it
/// failed. A command abandoned between `BEGIN` and `COMMIT` (its future dropped)
/// would leave the transaction open, and the connection's next user would write
/// inside it; one that failed may have left `synchronous = NORMAL` behind
/// ([`Flush::Later`]). Closing the connection rolls the transaction back, and the
/// pool opens a new one with the configured settings.
struct CloseIfAbandoned<'c> {
    conn: &'c mut PoolConnection<Sqlite>,
    running: bool,
}

impl CloseIfAbandoned<'_> {
    fn done(mut self) {
        self.running = false;
    }
}

impl Drop for CloseIfAbandoned<'_> {
    fn drop(&mut self) {
        if self.running {
            self.conn.close_on_drop();
        }
    }
}

/// Ends whatever transaction a failed or abandoned command left open. With none
/// open SQLite answers an error, which is expected and ignored; a connection that
/// cannot roll back fails its next statement, which fails that append.
async fn rollback_sqlite(conn: &mut PoolConnection<Sqlite>) {
    let _ = sqlx::query("ROLLBACK").execute(&mut **conn).await;
}

/// The writer connection's `BEGIN IMMEDIATE` is the head lock: the head is read
/// after it, so no other process can move it before this batch commits.
///
/// `tried_after` is the head a failed one-command append of this batch linked
/// it after. That command can fail after its `COMMIT` (the trailing `PRAGMA
/// synchronous = FULL`); then the record it would have made last is in the
/// log, whatever other processes appended since, and the batch is not
/// appended a second time. The chain hash makes that record proof of the
/// whole batch.
async fn append_sqlite_locked(
    conn: &mut PoolConnection<Sqlite>,
    batch: &EventBatch,
    tried_after: Option<&ChainHead>,
) -> Result<(Vec<AuditRecord>, ChainHead), StoreError> {
    let mut tx = (**conn).begin_with("BEGIN IMMEDIATE").await?;
    let row: Option<(i64, Vec<u8>)> = sqlx::query_as(HEAD_SELECT).fetch_optional(&mut *tx).await?;
    let current = chain_head(row)?;
    if let Some(tried) = tried_after.map(|head| batch.link(head))
        && let Some(last) = tried.head_after.size.checked_sub(1)
    {
        let hash: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT hash FROM audit_events WHERE seq = ?")
                .bind(to_i64(last, "audit seq")?)
                .fetch_optional(&mut *tx)
                .await?;
        if hash.as_deref() == Some(tried.head_after.hash.as_bytes().as_slice()) {
            // Nothing was written here; sqlx rolls back on drop if this fails.
            let _ = tx.rollback().await;
            return Ok((
                tried.events.into_iter().map(|e| e.record).collect(),
                current,
            ));
        }
    }
    let linked = batch.link(&current);
    for chunk in linked.events.chunks(SQLITE_ROWS_PER_INSERT) {
        let rows = chunk
            .iter()
            .map(EventRow::of)
            .collect::<Result<Vec<_>, _>>()?;
        let sql = sqlite_events_insert(rows.len());
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in rows {
            query = row.bind_to(query);
        }
        query.execute(&mut *tx).await?;
    }
    let head = linked.head_after;
    sqlx::query(HEAD_UPDATE)
        .bind(to_i64(head.size, "audit head size")?)
        .bind(head.hash.as_bytes().as_slice())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((linked.events.into_iter().map(|e| e.record).collect(), head))
}

/// PostgreSQL: the head row's `FOR UPDATE` lock is the head lock, across processes.
async fn append_postgres(
    pool: &PgPool,
    batch: &EventBatch,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await?;
    let row: Option<(i64, Vec<u8>)> = sqlx::query_as(HEAD_SELECT_FOR_UPDATE)
        .fetch_optional(&mut *tx)
        .await?;
    let linked = batch.link(&chain_head(row)?);
    let rows = linked
        .events
        .iter()
        .map(EventRow::of)
        .collect::<Result<Vec<_>, _>>()?;
    sqlx::query(EVENTS_INSERT_POSTGRES)
        .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.record.prev_hash.as_bytes().to_vec())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| r.record.hash.as_bytes().to_vec())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| r.occurred_at.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.event_type).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.action).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.outcome).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.user_name).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.repository).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.record.event_json.as_str())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
    let head = linked.head_after;
    sqlx::query(HEAD_UPDATE)
        .bind(to_i64(head.size, "audit head size")?)
        .bind(head.hash.as_bytes().as_slice())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(linked.events.into_iter().map(|e| e.record).collect())
}

/// The column values of one linked event.
struct EventRow<'a> {
    seq: i64,
    record: &'a AuditRecord,
    occurred_at: String,
    event_type: &'static str,
    action: &'a str,
    outcome: &'static str,
    user_name: Option<&'a str>,
    repository: Option<&'a str>,
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

impl<'a> EventRow<'a> {
    /// Binds the row's ten columns, in the order of the `INSERT`.
    fn bind_to(self, query: SqliteQuery<'a>) -> SqliteQuery<'a> {
        query
            .bind(self.seq)
            .bind(self.record.prev_hash.as_bytes().as_slice())
            .bind(self.record.hash.as_bytes().as_slice())
            .bind(self.occurred_at)
            .bind(self.event_type)
            .bind(self.action)
            .bind(self.outcome)
            .bind(self.user_name)
            .bind(self.repository)
            .bind(self.record.event_json.as_str())
    }

    fn of(linked: &'a LinkedEvent<'a>) -> Result<EventRow<'a>, StoreError> {
        let event = linked.event;
        Ok(EventRow {
            seq: to_i64(linked.record.seq, "audit event seq")?,
            record: &linked.record,
            occurred_at: timestamp::format(event.timestamp),
            event_type: event.event_type.as_str(),
            action: &event.action,
            outcome: event.outcome.as_str(),
            user_name: event.user.as_deref(),
            repository: event.repository.as_deref(),
        })
    }
}

fn corrupt(message: String) -> StoreError {
    StoreError::Corrupt(message)
}

fn chain_head(row: Option<(i64, Vec<u8>)>) -> Result<ChainHead, StoreError> {
    let Some((size, hash)) = row else {
        return Err(corrupt(
            "audit_head has no row, though migration 0002 creates it and its trigger refuses \
             deletes: the schema was edited outside Ward"
                .into(),
        ));
    };
    let hash = Hash::from_slice(&hash).ok_or_else(|| {
        corrupt(format!(
            "audit_head.head_hash is {} bytes, not 32: the table was edited outside Ward",
            hash.len()
        ))
    })?;
    Ok(ChainHead {
        size: to_u64(size, "audit head size")?,
        hash,
    })
}

fn record_of_row(
    (seq, prev_hash, hash, event_json): EventColumns,
) -> Result<AuditRecord, StoreError> {
    let seq = to_u64(seq, "audit event seq")?;
    let hash_column = |bytes: &[u8], column: &str| {
        Hash::from_slice(bytes).ok_or_else(|| {
            corrupt(format!(
                "audit_events seq {seq}: {column} is {} bytes, not 32: the table was edited \
                 outside Ward",
                bytes.len()
            ))
        })
    };
    Ok(AuditRecord {
        seq,
        prev_hash: hash_column(&prev_hash, "prev_hash")?,
        hash: hash_column(&hash, "hash")?,
        event_json,
    })
}

fn checkpoint_of_row(
    (tree_size, created_at, note, frontier): CheckpointColumns,
) -> Result<StoredCheckpoint, StoreError> {
    let tree_size = to_u64(tree_size, "audit checkpoint tree_size")?;
    let created_at = timestamp::parse(&created_at).map_err(|e| {
        corrupt(format!(
            "audit_checkpoints tree_size {tree_size}: created_at {created_at:?} is not a timestamp: {e}"
        ))
    })?;
    let frontier = match Frontier::from_bytes(tree_size, &frontier) {
        Ok(frontier) => frontier.nodes().to_vec(),
        Err(error) => {
            tracing::warn!(
                tree_size,
                %error,
                "audit checkpoint's stored frontier does not fit its size; it is ignored and \
                 the tree will be rebuilt from the events"
            );
            Vec::new()
        }
    };
    Ok(StoredCheckpoint {
        tree_size,
        created_at,
        note,
        frontier,
    })
}

/// Refuses a record selected by its columns that its hashed event does not match.
fn confirm_match(filter: &EventFilter, record: &AuditRecord) -> Result<(), StoreError> {
    let event = record.event().map_err(|e| {
        corrupt(format!(
            "audit_events seq {}: event_json is not an event ({e}): the table was edited \
             outside Ward; run `ward audit verify`",
            record.seq
        ))
    })?;
    if filter.matches(record, &event) {
        return Ok(());
    }
    Err(corrupt(format!(
        "audit_events seq {}: its query columns match the filter but its hashed event does \
         not: the table was edited outside Ward; run `ward audit verify`",
        record.seq
    )))
}

enum Param {
    Int(i64),
    Text(String),
}

/// The SQL of one [`EventFilter`]: only the conditions it sets, so each can use its index.
struct FilterQuery {
    sql: String,
    params: Vec<Param>,
}

impl FilterQuery {
    /// `None` when no row can match (`after_seq` at the end of the `seq` range).
    fn new(filter: &EventFilter, pg: bool) -> Option<FilterQuery> {
        let from = match filter.after_seq {
            None => 0,
            Some(after) => i64::try_from(after).ok()?.checked_add(1)?,
        };
        let mut query = FilterQuery {
            sql: "SELECT seq, prev_hash, hash, event_json FROM audit_events WHERE seq >= $1"
                .to_owned(),
            params: vec![Param::Int(from)],
        };
        let text = [
            ("user_name", filter.user.as_deref()),
            ("repository", filter.repository.as_deref()),
            ("action", filter.action.as_deref()),
            ("outcome", filter.outcome.map(|o| o.as_str())),
            ("event_type", filter.event_type.map(|t| t.as_str())),
        ];
        for (column, value) in text {
            if let Some(value) = value {
                query.condition(column, "=", "", Param::Text(value.to_owned()));
            }
        }
        let cast = if pg { "::timestamptz" } else { "" };
        // The canonical spelling truncated to microseconds, and whether nothing was cut.
        let micros = |when| {
            let truncated = timestamp::normalize(when);
            (timestamp::format(truncated), truncated == when)
        };
        // Stored times are whole microseconds, so a bound with a finer remainder is
        // the same as its truncation compared strictly (since) or inclusively (until).
        if let Some(since) = filter.since {
            let (at, exact) = micros(since);
            let op = if exact { ">=" } else { ">" };
            query.condition("occurred_at", op, cast, Param::Text(at));
        }
        if let Some(until) = filter.until {
            let (at, exact) = micros(until);
            let op = if exact { "<" } else { "<=" };
            query.condition("occurred_at", op, cast, Param::Text(at));
        }
        let limit = query.placeholder(Param::Int(i64::try_from(filter.page_size()).ok()?));
        query.sql += &format!(" ORDER BY seq LIMIT {limit}");
        Some(query)
    }

    fn placeholder(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    fn condition(&mut self, column: &str, op: &str, cast: &str, param: Param) {
        let placeholder = self.placeholder(param);
        self.sql += &format!(" AND {column} {op} {placeholder}{cast}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use ward_audit::{AuditEvent, EventType};

    fn batch(users: std::ops::Range<usize>) -> EventBatch {
        EventBatch::new(
            users
                .map(|i| AuditEvent::new(EventType::Pull).user(format!("u{i}")))
                .collect(),
        )
        .unwrap()
    }

    /// The writer connection's `PRAGMA synchronous` (2 is `FULL`).
    async fn writer_synchronous(store: &MetaStore) -> i64 {
        let Backend::Sqlite { writer, .. } = &store.backend else {
            unreachable!("a SQLite store")
        };
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(writer)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn only_unsynced_audit_commits_skip_the_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::testing::sqlite_store(dir.path()).await;
        let Backend::Sqlite { append, .. } = &store.backend else {
            unreachable!("a SQLite store")
        };
        let flusher = append.wal.clone().unwrap();
        let wal = flusher.path();
        assert!(wal.ends_with("ward.db-wal"), "{}", wal.display());
        assert_eq!(writer_synchronous(&store).await, 2);

        // The first append goes the locked way, the second after the remembered head.
        store.append_unsynced(&batch(0..2)).await.unwrap();
        store.append_unsynced(&batch(2..5)).await.unwrap();
        assert!(
            sqlite_batch_append(3, Flush::Later).starts_with("PRAGMA synchronous = NORMAL"),
            "the remembered-head command leaves its flush for later"
        );
        assert_eq!(
            writer_synchronous(&store).await,
            2,
            "every other write on the connection still flushes at its commit"
        );
        assert!(wal.exists());
        assert!(
            flusher.open.lock().unwrap().is_none(),
            "nothing flushed yet"
        );
        // The audit log's syncer flushes on a thread of its own, through the
        // same flusher.
        assert!(matches!(store.sync_blocking(), Some(Ok(()))));
        assert!(
            flusher.open.lock().unwrap().is_some(),
            "the log was flushed"
        );

        // A stale remembered head: the command fails after `NORMAL`, and the
        // locked way that follows must leave the connection at `FULL`.
        let other = crate::testing::sqlite_store(dir.path()).await;
        other.append(&batch(5..6)).await.unwrap();
        let records = store.append_unsynced(&batch(6..8)).await.unwrap();
        assert_eq!(records[0].seq, 6);
        assert_eq!(writer_synchronous(&store).await, 2);
        store.sync().await.unwrap();
        assert_eq!(other.read(0, 100).await.unwrap().len(), 8);
    }

    /// A one-command append whose `COMMIT` went through but whose command still
    /// failed (its trailing `PRAGMA`) is not appended again by the locked way.
    #[tokio::test]
    async fn a_batch_committed_by_a_failed_command_is_not_appended_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::testing::sqlite_store(dir.path()).await;
        store.append(&batch(0..2)).await.unwrap();
        let Backend::Sqlite { writer, .. } = &store.backend else {
            unreachable!("a SQLite store")
        };
        let head = store.head().await.unwrap();
        let once = batch(2..5);
        let mut conn = writer.acquire().await.unwrap();
        // The command commits; suppose its caller saw an error all the same.
        let (committed, after) = append_sqlite_after(&mut conn, &once, &head, Flush::AtCommit)
            .await
            .unwrap();
        let (records, locked_after) = append_sqlite_locked(&mut conn, &once, Some(&head))
            .await
            .unwrap();
        assert_eq!(locked_after, after);
        assert_eq!(records, committed, "the records the commit made");
        assert_eq!(
            store.head().await.unwrap().size,
            5,
            "nothing appended twice"
        );
        // A different batch after the same tried head is appended as usual.
        let (records, _) = append_sqlite_locked(&mut conn, &batch(5..6), Some(&head))
            .await
            .unwrap();
        assert_eq!(records[0].seq, 5);
        // Found even when others appended after it before the lock was taken.
        let (records, now) = append_sqlite_locked(&mut conn, &once, Some(&head))
            .await
            .unwrap();
        assert_eq!(records, committed);
        assert_eq!(now.size, 6, "the head to remember is the current one");
        drop(conn);
        assert_eq!(store.read(0, 100).await.unwrap().len(), 6);
    }

    #[tokio::test]
    async fn a_missing_log_has_nothing_left_to_flush_but_other_failures_are_final() {
        let dir = tempfile::tempdir().unwrap();
        let flush = |path: PathBuf| flush_wal(Arc::new(WalFlusher::new(path)));
        flush(dir.path().join("gone.db-wal")).await.unwrap();

        let file = dir.path().join("not-a-folder");
        std::fs::write(&file, b"").unwrap();
        let flusher = Arc::new(WalFlusher::new(file.join("ward.db-wal")));
        let error = flush_wal(flusher.clone())
            .await
            .expect_err("a log that cannot be opened is not flushed");
        assert!(matches!(error, StoreError::Flush(_)), "{error}");
        assert!(error.to_string().contains("write-ahead log"), "{error}");
        // The log's name works again, but what the failed flush was to cover
        // may be lost: nothing is called flushed any more.
        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
        std::fs::write(file.join("ward.db-wal"), b"frames").unwrap();
        assert!(flush(file.join("ward.db-wal")).await.is_ok());
        let error = flush_wal(flusher)
            .await
            .expect_err("the first failure is final");
        assert!(error.to_string().contains("restart the server"), "{error}");
    }

    /// A flush that starts while another is failing reports the failure:
    /// it must not flush the shared handle, which the kernel would answer
    /// with success after telling the first flush of the lost write-back.
    #[test]
    fn a_flush_beside_a_failing_one_reports_its_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ward.db-wal");
        std::fs::write(&path, b"frames").unwrap();
        let flusher = Arc::new(WalFlusher::new(path));
        // The first flush is under way (it holds the flush) ...
        let first = flusher.flushing.lock().unwrap();
        let (started, starting) = std::sync::mpsc::channel();
        let second = std::thread::spawn({
            let flusher = flusher.clone();
            move || {
                started.send(()).unwrap();
                flusher.flush()
            }
        });
        starting.recv().unwrap();
        // ... and fails while the second one has started.
        flusher.failed.set("EIO".to_owned()).unwrap();
        drop(first);
        let error = second
            .join()
            .unwrap()
            .expect_err("the second flush must not call the lost frames durable");
        assert!(error.to_string().contains("EIO"), "{error}");
    }

    #[tokio::test]
    async fn the_log_is_flushed_through_one_handle_until_it_is_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ward.db-wal");
        std::fs::write(&path, b"first log").unwrap();
        let flusher = Arc::new(WalFlusher::new(path.clone()));
        flush_wal(flusher.clone()).await.unwrap();
        let first = flusher.open.lock().unwrap().as_ref().unwrap().0.clone();
        flush_wal(flusher.clone()).await.unwrap();
        let again = flusher.open.lock().unwrap().as_ref().unwrap().0.clone();
        assert!(Arc::ptr_eq(&first, &again), "the same log, the same handle");

        // SQLite deleted the log and started another under the same name.
        std::fs::rename(&path, dir.path().join("old")).unwrap();
        std::fs::write(&path, b"second log").unwrap();
        flush_wal(flusher.clone()).await.unwrap();
        let second = flusher.open.lock().unwrap().as_ref().unwrap().0.clone();
        assert!(!Arc::ptr_eq(&first, &second), "a new file, a new handle");
    }
}
