//! The blob port: bytes under keys, on `object_store`.
//!
//! This layer knows nothing of digests, repositories or uploads; it streams
//! bytes in and out under keys that [`crate::paths`] builds. Writes go through
//! multipart uploads that only become visible when finished, so a crash or a
//! dropped request never leaves a partial object under its final key.

mod direct;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// On the local filesystem with fsync on, flush what an upload has written
    /// every this many bytes, in the background, so that the fsync that
    /// publishes the blob has little left to do; 0 leaves it all to that fsync.
    /// Writes with `direct_io` need none of it.
    pub sync_interval_bytes: u64,
    /// On the local filesystem, write blobs larger than `part_size_bytes`
    /// past the page cache (`O_DIRECT`) from `parts_in_flight_max + 1` reused
    /// buffers; filesystems that cannot are written through it as before.
    /// Less CPU per pushed byte, but a pull soon after reads from the device.
    pub direct_io: bool,
}

impl Default for BlobStoreOptions {
    fn default() -> Self {
        BlobStoreOptions {
            part_size_bytes: 8 * 1024 * 1024,
            parts_in_flight_max: 2,
            read_chunk_bytes: 256 * 1024,
            sync_interval_bytes: 64 * 1024 * 1024,
            direct_io: false,
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
    /// Local filesystem only: whether finished writes are fsynced.
    fsync: bool,
    options: BlobStoreOptions,
    /// Set when the local filesystem turned out unable to do direct I/O.
    direct_refused: Arc<AtomicBool>,
}

/// A blob being written; invisible until [`BlobWriter::finish`] returns.
pub struct BlobWriter {
    sink: Sink,
    written_bytes: u64,
}

enum Sink {
    /// Any backend, and local filesystems without direct I/O.
    Multipart {
        upload: WriteMultipart,
        parts_in_flight_max: usize,
        early_sync: Option<EarlySync>,
    },
    /// The local filesystem, past the page cache.
    Direct(direct::DirectWriter),
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
            fsync,
            options,
            direct_refused: Arc::default(),
        })
    }

    /// A store on any `object_store` backend (S3, GCS, Azure...).
    pub fn remote(inner: Arc<dyn ObjectStore>, options: BlobStoreOptions) -> Self {
        BlobStore {
            inner,
            local_root: None,
            fsync: false,
            options,
            direct_refused: Arc::default(),
        }
    }

    /// Starts writing `key`.
    pub async fn writer(&self, key: &Path) -> Result<BlobWriter, BlobStoreError> {
        let local = self.local_path(key);
        let direct = self.options.direct_io && !self.direct_refused.load(Ordering::Relaxed);
        if let Some(file) = local.clone().filter(|_| direct) {
            let options = &self.options;
            let direct = direct::DirectWriter::create(
                file,
                self.fsync,
                options.part_size_bytes,
                options.parts_in_flight_max,
            )?;
            match direct {
                Some(direct) => {
                    return Ok(BlobWriter {
                        sink: Sink::Direct(direct),
                        written_bytes: 0,
                    });
                }
                // One filesystem under the root: do not ask again.
                None => self.direct_refused.store(true, Ordering::Relaxed),
            }
        }
        let upload = self.inner.put_multipart(key).await?;
        let interval = self.options.sync_interval_bytes;
        let early_sync = match local {
            Some(file) if self.fsync && interval > 0 => Some(EarlySync::new(&file, interval)),
            _ => None,
        };
        Ok(BlobWriter {
            sink: Sink::Multipart {
                upload: WriteMultipart::new_with_chunk_size(upload, self.options.part_size_bytes),
                parts_in_flight_max: self.options.parts_in_flight_max,
                early_sync,
            },
            written_bytes: 0,
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
        let len = bytes.len() as u64;
        match &mut self.sink {
            Sink::Multipart {
                upload,
                parts_in_flight_max,
                early_sync,
            } => {
                upload.wait_for_capacity(*parts_in_flight_max).await?;
                upload.put(bytes);
                if let Some(sync) = early_sync.as_mut() {
                    sync.after(self.written_bytes + len);
                }
            }
            Sink::Direct(direct) => direct.write(&bytes).await?,
        }
        self.written_bytes += len;
        Ok(())
    }

    /// Bytes accepted so far.
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    /// Makes the object visible under its key; returns its size.
    pub async fn finish(self) -> Result<u64, BlobStoreError> {
        match self.sink {
            Sink::Multipart {
                upload, early_sync, ..
            } => {
                if let Some(sync) = early_sync {
                    sync.settle().await;
                }
                upload.finish().await?;
            }
            Sink::Direct(direct) => direct.finish().await?,
        }
        Ok(self.written_bytes)
    }

    /// Discards everything written.
    pub async fn abort(self) -> Result<(), BlobStoreError> {
        match self.sink {
            Sink::Multipart { upload, .. } => upload.abort().await?,
            Sink::Direct(direct) => direct.abort().await?,
        }
        Ok(())
    }
}

/// Flushes an upload's staging file while the upload goes on.
///
/// Without it every byte of a blob is still in the page cache when the upload
/// finishes, and the fsync that publishes it writes them all while the client
/// waits (0.37 s of a 1 GiB push here). With it, `fdatasync` runs on a blocking
/// thread each `interval` bytes, overlapping the disk with the network and the
/// hashing, and the final fsync has only the tail left.
///
/// Best effort, never needed for durability: the publishing fsync still covers
/// every byte. The staging file is `object_store`'s (`<file>#1`, the first
/// free suffix; upload keys are unique, so it is always the first); if a
/// future `object_store` names it differently, the open fails and nothing is
/// flushed early.
struct EarlySync {
    staging: PathBuf,
    interval: u64,
    next_at: u64,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl EarlySync {
    fn new(file: &std::path::Path, interval: u64) -> Self {
        let mut staging = file.as_os_str().to_owned();
        staging.push("#1");
        EarlySync {
            staging: staging.into(),
            interval,
            next_at: interval,
            running: None,
        }
    }

    /// Starts a flush once `written` passes the next mark, unless one runs.
    fn after(&mut self, written: u64) {
        if written < self.next_at || self.running.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        self.next_at = written + self.interval;
        let staging = self.staging.clone();
        self.running = Some(tokio::task::spawn_blocking(move || {
            if let Ok(file) = std::fs::File::open(&staging) {
                let _ = file.sync_data();
            }
        }));
    }

    /// Waits for a flush still running, so none outlives the upload.
    async fn settle(self) {
        if let Some(running) = self.running {
            let _ = running.await;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn early_sync(writer: &BlobWriter) -> Option<&EarlySync> {
        match &writer.sink {
            Sink::Multipart { early_sync, .. } => early_sync.as_ref(),
            Sink::Direct(_) => None,
        }
    }

    fn buffered(options: BlobStoreOptions) -> BlobStoreOptions {
        BlobStoreOptions {
            direct_io: false,
            ..options
        }
    }

    /// `EarlySync` flushes the file `object_store` stages the upload in, found
    /// by its naming; if that naming changed, the flushes would silently miss.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn early_sync_flushes_the_file_object_store_writes() {
        let dir = tempfile::tempdir().unwrap();
        let options = buffered(BlobStoreOptions {
            part_size_bytes: 4096,
            sync_interval_bytes: 8192,
            ..BlobStoreOptions::default()
        });
        let store = BlobStore::local(dir.path(), true, options).unwrap();
        let key = Path::from("uploads/session/data");
        let mut writer = store.writer(&key).await.unwrap();
        let staging = early_sync(&writer).unwrap().staging.clone();
        for _ in 0..8 {
            writer.write(Bytes::from(vec![7u8; 4096])).await.unwrap();
        }
        assert!(
            early_sync(&writer).unwrap().running.is_some(),
            "no flush started after 32 KiB with an 8 KiB interval"
        );
        // Parts are written as they fill, so the staged file holds bytes already.
        let Sink::Multipart { upload, .. } = &mut writer.sink else {
            panic!("a buffered store wrote directly");
        };
        upload.wait_for_capacity(0).await.unwrap();
        assert!(
            std::fs::metadata(&staging).unwrap().len() > 0,
            "{} is not the file object_store stages into",
            staging.display()
        );
        assert_eq!(writer.finish().await.unwrap(), 32 * 1024);
        assert!(!staging.exists(), "the staged file was published");
        assert_eq!(
            std::fs::read(dir.path().join("uploads/session/data"))
                .unwrap()
                .len(),
            32 * 1024
        );
    }

    #[tokio::test]
    async fn no_early_sync_without_fsync_or_interval() {
        let dir = tempfile::tempdir().unwrap();
        let key = Path::from("uploads/session/data");
        let unsynced = buffered(BlobStoreOptions::default());
        let unsynced = BlobStore::local(dir.path(), false, unsynced).unwrap();
        assert!(early_sync(&unsynced.writer(&key).await.unwrap()).is_none());
        let off = buffered(BlobStoreOptions {
            sync_interval_bytes: 0,
            ..BlobStoreOptions::default()
        });
        let synced_at_end = BlobStore::local(dir.path(), true, off).unwrap();
        assert!(early_sync(&synced_at_end.writer(&key).await.unwrap()).is_none());
    }

    /// Whether the filesystem under `dir` does direct I/O, asked of the kernel
    /// apart from the writer (of a regular file: ext4 and XFS answer only for those).
    fn does_direct_io(dir: &std::path::Path) -> bool {
        use rustix::fs::{AtFlags, CWD, StatxFlags, statx};
        let probe = dir.join("probe");
        std::fs::write(&probe, b"").unwrap();
        let stat = statx(CWD, &probe, AtFlags::empty(), StatxFlags::DIOALIGN).unwrap();
        std::fs::remove_file(&probe).unwrap();
        StatxFlags::from_bits_retain(stat.stx_mask).contains(StatxFlags::DIOALIGN)
            && stat.stx_dio_offset_align > 0
    }

    /// Every size around the alignment and the buffer size comes back intact,
    /// whether the bytes arrive in one piece or in odd ones, and the staging
    /// file is gone once the blob is published.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn direct_writes_keep_every_byte_of_every_size() {
        let dir = tempfile::tempdir().unwrap();
        let part = 64 * 1024;
        let options = BlobStoreOptions {
            part_size_bytes: part,
            parts_in_flight_max: 2,
            direct_io: true,
            ..BlobStoreOptions::default()
        };
        let store = BlobStore::local(dir.path(), true, options).unwrap();
        let sizes = [
            0,
            1,
            4095,
            4096,
            4097,
            part - 1,
            part,
            part + 1,
            5 * part + 12_345,
        ];
        for (i, size) in sizes.into_iter().enumerate() {
            let bytes: Vec<u8> = (0..size).map(|j| (j * 7 + j / 251 + i) as u8).collect();
            for piece in [size.max(1), 1000] {
                let key = Path::from(format!("blobs/{i}-{piece}"));
                let mut writer = store.writer(&key).await.unwrap();
                let staging = match &writer.sink {
                    Sink::Direct(direct) => direct.staging().to_owned(),
                    Sink::Multipart { .. } => {
                        assert!(
                            !does_direct_io(dir.path()),
                            "the filesystem does direct I/O but the writer buffers"
                        );
                        return;
                    }
                };
                for chunk in bytes.chunks(piece) {
                    writer.write(Bytes::copy_from_slice(chunk)).await.unwrap();
                }
                let Sink::Direct(direct) = &writer.sink else {
                    unreachable!()
                };
                assert_eq!(
                    direct.is_direct(),
                    size >= part,
                    "a blob of {size} bytes went past the page cache or not (one buffer is {part})"
                );
                assert_eq!(
                    direct.file_flags().contains(rustix::fs::OFlags::DIRECT),
                    size >= part,
                    "the file's own flags disagree for {size} bytes"
                );
                assert_eq!(writer.finish().await.unwrap(), size as u64);
                assert!(!staging.exists(), "{} was left behind", staging.display());
                let path = store.local_path(&key).unwrap();
                assert!(
                    std::fs::read(&path).unwrap() == bytes,
                    "size {size} came back changed"
                );
            }
        }
    }

    /// An aborted or dropped direct write leaves no file, staged or
    /// published; a second writer of the same key stages beside an unfinished one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn direct_writes_abort_cleanly_and_stage_apart() {
        let dir = tempfile::tempdir().unwrap();
        let options = BlobStoreOptions {
            part_size_bytes: 8192,
            direct_io: true,
            ..BlobStoreOptions::default()
        };
        let store = BlobStore::local(dir.path(), false, options).unwrap();
        let key = Path::from("uploads/x/data");
        let mut first = store.writer(&key).await.unwrap();
        let mut second = store.writer(&key).await.unwrap();
        let (Sink::Direct(a), Sink::Direct(b)) = (&first.sink, &second.sink) else {
            assert!(!does_direct_io(dir.path()));
            return;
        };
        assert_ne!(a.staging(), b.staging());
        let staged = [a.staging().to_owned(), b.staging().to_owned()];
        first.write(Bytes::from(vec![1u8; 50_000])).await.unwrap();
        second.write(Bytes::from(vec![2u8; 30_000])).await.unwrap();
        first.abort().await.unwrap();
        let mut dropped = store.writer(&key).await.unwrap();
        dropped.write(Bytes::from(vec![3u8; 50_000])).await.unwrap();
        let Sink::Direct(c) = &dropped.sink else {
            unreachable!()
        };
        let dropped_staging = c.staging().to_owned();
        assert!(dropped_staging.exists());
        drop(dropped);
        assert!(!dropped_staging.exists(), "a dropped writer left its file");
        assert_eq!(second.finish().await.unwrap(), 30_000);
        assert!(
            staged.iter().all(|s| !s.exists()),
            "a staging file was left"
        );
        assert_eq!(
            std::fs::read(store.local_path(&key).unwrap()).unwrap(),
            vec![2u8; 30_000]
        );
    }
}
