//! Upload sessions: their progress survives restarts.
//!
//! A session records its size, the saved hash state of everything received so
//! far, and the ordered list of chunk objects holding the bytes. A chunk is
//! appended only if the session is still at the offset the writer started
//! from, so two racing requests cannot both extend it.

use sqlx::Row;
use uuid::Uuid;
use ward_core::Digest;
use ward_core::name::RepositoryName;

use super::{
    Backend, MetaStore, StoreError, ensure_repository, insert_blob_and_link, on_reader, on_writer,
    to_i64, to_u64,
};

/// A session to create.
pub struct NewUpload<'a> {
    /// Server-generated id.
    pub id: Uuid,
    /// The repository it uploads into.
    pub repository: &'a RepositoryName,
    /// Saved state of an empty hasher of the session's algorithm.
    pub hash_state: &'a [u8],
    /// Creation time, Unix milliseconds.
    pub now_ms: i64,
    /// Most sessions the repository may have open: beyond, none is created.
    pub open_max: u64,
}

/// An upload session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// Its id.
    pub id: Uuid,
    /// The repository it uploads into.
    pub repository: String,
    /// Bytes received so far.
    pub size: u64,
    /// Saved hash state of those bytes.
    pub hash_state: Vec<u8>,
    /// When it last received bytes, Unix milliseconds.
    pub updated_at_ms: i64,
    /// The chunk objects, in order.
    pub chunks: Vec<UploadChunk>,
}

/// One accepted chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadChunk {
    /// Its key in the blob store.
    pub object_key: String,
    /// Its size.
    pub size: u64,
}

impl MetaStore {
    /// Creates an upload session, unless its repository already has
    /// `open_max` open (then `false`). The count and the insert are one step:
    /// concurrent requests cannot push a repository past its limit.
    pub async fn create_upload(&self, u: NewUpload<'_>) -> Result<bool, StoreError> {
        const INSERT: &str = "INSERT INTO uploads (id, repository, size, hash_state, created_at, updated_at) \
             SELECT $1, $2, 0, $3, $4, $4 \
             WHERE (SELECT COUNT(*) FROM uploads WHERE repository = $2) < $5";
        let open_max = i64::try_from(u.open_max).unwrap_or(i64::MAX);
        // The same statement for either backend's query type.
        macro_rules! insert {
            () => {
                sqlx::query(INSERT)
                    .bind(u.id.to_string())
                    .bind(u.repository.as_str())
                    .bind(u.hash_state)
                    .bind(u.now_ms)
                    .bind(open_max)
            };
        }
        let inserted = match &self.backend {
            // One statement on the one writer connection: nothing can interleave.
            Backend::Sqlite { writer, .. } => insert!().execute(writer).await?.rows_affected(),
            Backend::Postgres(pool) => {
                // Two transactions would each count the other's row out.
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind(format!("ward.uploads:{}", u.repository.as_str()))
                    .execute(&mut *tx)
                    .await?;
                let done = insert!().execute(&mut *tx).await?;
                tx.commit().await?;
                done.rows_affected()
            }
        } == 1;
        Ok(inserted)
    }

    /// The session `id`, with its chunks.
    pub async fn upload(&self, id: Uuid) -> Result<Option<Upload>, StoreError> {
        let (head, chunks) = on_reader!(self, |pool| {
            let head = sqlx::query(
                "SELECT repository, size, hash_state, updated_at FROM uploads WHERE id = $1",
            )
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?;
            let Some(head) = head else { return Ok(None) };
            let chunks = sqlx::query(
                "SELECT object_key, size FROM upload_chunks WHERE upload_id = $1 ORDER BY seq",
            )
            .bind(id.to_string())
            .fetch_all(pool)
            .await?;
            let head = (
                head.try_get::<String, _>(0)?,
                head.try_get::<i64, _>(1)?,
                head.try_get::<Vec<u8>, _>(2)?,
                head.try_get::<i64, _>(3)?,
            );
            let mut list = Vec::with_capacity(chunks.len());
            for c in chunks {
                list.push((c.try_get::<String, _>(0)?, c.try_get::<i64, _>(1)?));
            }
            (head, list)
        });
        let (repository, size, hash_state, updated_at_ms) = head;
        let chunks = chunks
            .into_iter()
            .map(|(object_key, size)| {
                Ok(UploadChunk {
                    object_key,
                    size: to_u64(size, "chunk size")?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Some(Upload {
            id,
            repository,
            size: to_u64(size, "upload size")?,
            hash_state,
            updated_at_ms,
            chunks,
        }))
    }

    /// Appends a chunk if the session is still `expected_size` bytes long;
    /// returns false (changing nothing) if it has moved on or is gone.
    pub async fn append_upload_chunk(
        &self,
        id: Uuid,
        expected_size: u64,
        chunk: &UploadChunk,
        hash_state: &[u8],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let expected = to_i64(expected_size, "upload size")?;
        let chunk_size = to_i64(chunk.size, "chunk size")?;
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE uploads SET size = size + $2, hash_state = $3, updated_at = $4 \
                 WHERE id = $1 AND size = $5",
            )
            .bind(id.to_string())
            .bind(chunk_size)
            .bind(hash_state)
            .bind(now_ms)
            .bind(expected)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO upload_chunks (upload_id, seq, object_key, size) VALUES ($1, \
                 (SELECT COUNT(*) FROM upload_chunks WHERE upload_id = $1), $2, $3)",
            )
            .bind(id.to_string())
            .bind(&chunk.object_key)
            .bind(chunk_size)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Ends session `id` by linking the verified blob into its repository, in
    /// one transaction; returns false if the session no longer exists.
    pub async fn complete_upload(
        &self,
        id: Uuid,
        repository: &RepositoryName,
        digest: &Digest,
        size: u64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let size = to_i64(size, "blob size")?;
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("DELETE FROM uploads WHERE id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            let repo_id = ensure_repository!(tx, repository, now_ms);
            insert_blob_and_link!(tx, repo_id, digest, size, now_ms);
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Deletes session `id`; returns whether it existed.
    pub async fn delete_upload(&self, id: Uuid) -> Result<bool, StoreError> {
        on_writer!(self, |pool| {
            let done = sqlx::query("DELETE FROM uploads WHERE id = $1")
                .bind(id.to_string())
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Marks session `id` as in use at `now_ms`, so that sweeps of idle
    /// sessions leave it alone; returns false if it no longer exists.
    pub async fn touch_upload(&self, id: Uuid, now_ms: i64) -> Result<bool, StoreError> {
        on_writer!(self, |pool| {
            let done = sqlx::query("UPDATE uploads SET updated_at = $2 WHERE id = $1")
                .bind(id.to_string())
                .bind(now_ms)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Sessions last touched before `before_ms`, at most `limit`.
    pub async fn stale_uploads(&self, before_ms: i64, limit: u32) -> Result<Vec<Uuid>, StoreError> {
        let ids: Vec<String> = on_reader!(self, |pool| {
            sqlx::query_scalar(
                "SELECT id FROM uploads WHERE updated_at < $1 ORDER BY updated_at LIMIT $2",
            )
            .bind(before_ms)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        ids.iter()
            .map(|s| {
                Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("upload id {s:?}: {e}")))
            })
            .collect()
    }

    /// How many sessions are open in `repository`.
    pub async fn open_uploads(&self, repository: &RepositoryName) -> Result<u64, StoreError> {
        let n: i64 = on_reader!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM uploads WHERE repository = $1")
                .bind(repository.as_str())
                .fetch_one(pool)
                .await?
        });
        to_u64(n, "upload count")
    }

    /// How many sessions are open in the whole registry.
    pub async fn open_uploads_total(&self) -> Result<u64, StoreError> {
        let n: i64 = on_reader!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM uploads")
                .fetch_one(pool)
                .await?
        });
        to_u64(n, "upload count")
    }

    /// Whether session `id` exists.
    pub async fn upload_exists(&self, id: Uuid) -> Result<bool, StoreError> {
        on_reader!(self, |pool| {
            let row = sqlx::query("SELECT 1 FROM uploads WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?;
            Ok(row.is_some())
        })
    }
}
