//! The blob port: bytes under keys, on `object_store`.
//!
//! This layer knows nothing of digests, repositories or uploads; it streams
//! bytes in and out under keys that [`crate::paths`] builds. Writes go through
//! multipart uploads that only become visible when finished, so a crash or a
//! dropped request never leaves a partial object under its final key.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart,
};

/// Errors from the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobStoreError {
    /// The key does not exist.
    #[error("object {0} not found")]
    NotFound(String),
    /// The requested byte range lies outside the object.
    #[error("requested range is not satisfiable for an object of {size} bytes")]
    RangeNotSatisfiable {
        /// The object's size.
        size: u64,
    },
    /// The backend failed.
    #[error("blob storage failed: {0}")]
    Backend(#[from] object_store::Error),
    /// Local filesystem housekeeping failed.
    #[error("blob storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Tuning of how bytes are written.
#[derive(Clone, Debug)]
pub struct BlobStoreOptions {
    /// Size of each part of a multipart write; also the write buffer per upload.
    pub part_size_bytes: usize,
    /// Parts written concurrently per upload; bounds memory per upload to
    /// about `part_size_bytes * (parts_in_flight_max + 1)`.
    pub parts_in_flight_max: usize,
    /// Size of each piece read from a local file when serving.
    pub read_chunk_bytes: usize,
}

impl Default for BlobStoreOptions {
    fn default() -> Self {
        BlobStoreOptions {
            part_size_bytes: 8 * 1024 * 1024,
            parts_in_flight_max: 2,
            read_chunk_bytes: 256 * 1024,
        }
    }
}

/// A stream of bytes read from the store.
pub type ByteStream = BoxStream<'static, Result<Bytes, BlobStoreError>>;

/// Bytes under keys.
#[derive(Clone, Debug)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    local_root: Option<PathBuf>,
    options: BlobStoreOptions,
}

/// A blob being written; invisible until [`BlobWriter::finish`] returns.
pub struct BlobWriter {
    upload: WriteMultipart,
    written_bytes: u64,
    parts_in_flight_max: usize,
}

impl BlobStore {
    /// A store on the local filesystem under `root`, created if missing. With
    /// `fsync`, a finished write is on stable storage before it is reported done.
    pub fn local(
        root: impl Into<PathBuf>,
        fsync: bool,
        options: BlobStoreOptions,
    ) -> Result<Self, BlobStoreError> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        let root = root.canonicalize()?;
        let fs = LocalFileSystem::new_with_prefix(&root)?
            .with_fsync(fsync)
            .with_automatic_cleanup(true);
        Ok(BlobStore {
            inner: Arc::new(fs),
            local_root: Some(root),
            options,
        })
    }

    /// A store on any `object_store` backend (S3, GCS, Azure...).
    pub fn remote(inner: Arc<dyn ObjectStore>, options: BlobStoreOptions) -> Self {
        BlobStore {
            inner,
            local_root: None,
            options,
        }
    }

    /// Starts writing `key`.
    pub async fn writer(&self, key: &Path) -> Result<BlobWriter, BlobStoreError> {
        let upload = self.inner.put_multipart(key).await?;
        Ok(BlobWriter {
            upload: WriteMultipart::new_with_chunk_size(upload, self.options.part_size_bytes),
            written_bytes: 0,
            parts_in_flight_max: self.options.parts_in_flight_max,
        })
    }

    /// The file holding `key`, when the store is the local filesystem.
    pub fn local_path(&self, key: &Path) -> Option<PathBuf> {
        let root = self.local_root.as_ref()?;
        Some(
            key.parts()
                .fold(root.clone(), |p, part| p.join(part.as_ref())),
        )
    }

    /// Writes small `bytes` to `key` in one call.
    pub async fn put(&self, key: &Path, bytes: Bytes) -> Result<(), BlobStoreError> {
        self.inner.put(key, bytes.into()).await?;
        Ok(())
    }

    /// Streams the object at `key`, or the byte `range` of it.
    pub async fn read(
        &self,
        key: &Path,
        range: Option<Range<u64>>,
    ) -> Result<ByteStream, BlobStoreError> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        let result = self
            .inner
            .get_opts(key, options)
            .await
            .map_err(|e| not_found_or(key, e))?;
        let range = result.range.clone();
        match result.payload {
            // object_store reads local files 8 KiB at a time; serve bigger pieces.
            GetResultPayload::File(file, _) => Ok(local_file_stream(
                file,
                range,
                self.options.read_chunk_bytes,
            )),
            GetResultPayload::Stream(s) => Ok(s.map_err(BlobStoreError::from).boxed()),
        }
    }

    /// The size of the object at `key`, if it exists.
    pub async fn size(&self, key: &Path) -> Result<Option<u64>, BlobStoreError> {
        match self.inner.head(key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves `from` to `to`, replacing `to` atomically if it exists.
    pub async fn rename(&self, from: &Path, to: &Path) -> Result<(), BlobStoreError> {
        self.inner
            .rename(from, to)
            .await
            .map_err(|e| not_found_or(from, e))
    }

    /// Deletes `key`; a missing key is not an error.
    pub async fn delete(&self, key: &Path) -> Result<(), BlobStoreError> {
        match self.inner.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes everything under `prefix`, including unfinished writes.
    pub async fn delete_prefix(&self, prefix: &Path) -> Result<(), BlobStoreError> {
        if let Some(root) = &self.local_root {
            // Unfinished local writes are hidden from listings; remove the folder.
            let dir = root.join(prefix.as_ref());
            return match tokio::fs::remove_dir_all(&dir).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.into()),
            };
        }
        let keys = self.inner.list(Some(prefix)).map_ok(|m| m.location).boxed();
        self.inner
            .delete_stream(keys)
            .try_for_each(|_| async { Ok(()) })
            .await?;
        Ok(())
    }

    /// The immediate sub-folders of `prefix` (one level of a key hierarchy).
    pub async fn folders(&self, prefix: &Path) -> Result<Vec<Path>, BlobStoreError> {
        Ok(self
            .inner
            .list_with_delimiter(Some(prefix))
            .await?
            .common_prefixes)
    }
}

impl BlobWriter {
    /// Appends `bytes`, waiting while too many parts are in flight.
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), BlobStoreError> {
        self.upload
            .wait_for_capacity(self.parts_in_flight_max)
            .await?;
        self.written_bytes += bytes.len() as u64;
        self.upload.put(bytes);
        Ok(())
    }

    /// Bytes accepted so far.
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    /// Makes the object visible under its key; returns its size.
    pub async fn finish(self) -> Result<u64, BlobStoreError> {
        self.upload.finish().await?;
        Ok(self.written_bytes)
    }

    /// Discards everything written.
    pub async fn abort(self) -> Result<(), BlobStoreError> {
        self.upload.abort().await?;
        Ok(())
    }
}

fn not_found_or(key: &Path, e: object_store::Error) -> BlobStoreError {
    match e {
        object_store::Error::NotFound { .. } => BlobStoreError::NotFound(key.to_string()),
        other => BlobStoreError::Backend(other),
    }
}

fn local_file_stream(file: std::fs::File, range: Range<u64>, chunk_bytes: usize) -> ByteStream {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let state = (tokio::fs::File::from_std(file), range, false);
    futures::stream::try_unfold(state, move |(mut file, range, seeked)| async move {
        if range.start >= range.end {
            return Ok(None);
        }
        if !seeked {
            file.seek(std::io::SeekFrom::Start(range.start)).await?;
        }
        let want = usize::try_from(range.end - range.start)
            .unwrap_or(usize::MAX)
            .min(chunk_bytes);
        let mut buf = vec![0u8; want];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "blob file is shorter than its recorded size",
            ));
        }
        buf.truncate(n);
        let next = (range.start + n as u64)..range.end;
        Ok(Some((Bytes::from(buf), (file, next, true))))
    })
    .map_err(BlobStoreError::Io)
    .boxed()
}
