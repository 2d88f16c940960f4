//! Local blob writes that bypass the page cache (`O_DIRECT`) once they are large.
//!
//! A buffered write copies every byte of a blob into freshly allocated
//! page-cache pages, and writeback plus the publishing fsync then push them to
//! the device: on a 2-core VM that copy took a third of a push's CPU, more than
//! the server's sha256 (BENCHMARKS.md, "A slower VM"). Here bytes are copied
//! once, into a few reused aligned buffers, and each full buffer is written on
//! a blocking thread while the next one fills. The file is switched to
//! `O_DIRECT` when the first buffer fills: a blob smaller than one buffer (a
//! config, a small layer) is written through the page cache in one call and
//! stays there for the pulls and scans that follow; a large one skips it, and
//! its unaligned tail is padded to a whole block and cut off again.
//!
//! The file is staged as `<key>#<n>` (the naming `object_store`'s local store
//! uses, so listings hide it), renamed to its key when finished and, with
//! fsync, flushed together with its folder first: a crash never leaves a
//! partial object under its key. Filesystems that do not report a direct-I/O
//! alignment get [`None`] from [`DirectWriter::create`], and the caller writes
//! through the page cache instead; one that refuses the switch is written
//! through it by this writer.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::task::JoinHandle;

/// The alignment used whatever smaller one the filesystem reports: the page
/// size, so buffers and offsets suit every block device.
const ALIGN_MIN: usize = 4096;
/// Larger alignments than this are not worth supporting; such files are
/// written through the page cache.
const ALIGN_MAX: usize = 64 * 1024;

/// A blob being written past the page cache; invisible until finished.
pub(crate) struct DirectWriter {
    file: Arc<File>,
    /// Taken when the file is published or discarded; a writer dropped with it
    /// still set removes the file.
    staging: Option<PathBuf>,
    dest: PathBuf,
    fsync: bool,
    align: usize,
    buffer_bytes: usize,
    /// Whether the file is in `O_DIRECT` mode (after the first full buffer).
    direct: bool,
    /// The buffer filling now; it starts at file offset `offset`.
    filling: Option<AlignedBuf>,
    offset: u64,
    in_flight: VecDeque<JoinHandle<io::Result<AlignedBuf>>>,
    in_flight_max: usize,
    spare: Vec<AlignedBuf>,
}

impl DirectWriter {
    /// Opens a staging file for `dest`, creating its folders. `None` when the
    /// filesystem cannot do direct I/O (nothing is left behind).
    ///
    /// Synchronous, as `object_store`'s local store opens its uploads: a few
    /// quick system calls, and no window in which a dropped request could
    /// leave an opened staging file behind.
    pub(crate) fn create(
        dest: PathBuf,
        fsync: bool,
        buffer_bytes: usize,
        in_flight_max: usize,
    ) -> io::Result<Option<Self>> {
        let Some((file, staging, align)) = open_staging(&dest, fsync)? else {
            return Ok(None);
        };
        Ok(Some(DirectWriter {
            file: Arc::new(file),
            staging: Some(staging),
            dest,
            fsync,
            align,
            direct: false,
            buffer_bytes: buffer_bytes.max(align).next_multiple_of(align),
            filling: None,
            offset: 0,
            in_flight: VecDeque::new(),
            in_flight_max: in_flight_max.max(1),
            spare: Vec::new(),
        }))
    }

    /// The staging file (for tests).
    #[cfg(test)]
    pub(crate) fn staging(&self) -> &Path {
        self.staging.as_deref().unwrap_or(Path::new(""))
    }

    /// Whether writes go past the page cache now (for tests).
    #[cfg(test)]
    pub(crate) fn is_direct(&self) -> bool {
        self.direct
    }

    /// The open file's status flags, as the kernel has them (for tests).
    #[cfg(test)]
    pub(crate) fn file_flags(&self) -> rustix::fs::OFlags {
        rustix::fs::fcntl_getfl(&*self.file).unwrap_or(rustix::fs::OFlags::empty())
    }

    /// Appends `bytes`, waiting while too many buffers are being written.
    pub(crate) async fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let buf = match self.filling.as_mut() {
                Some(buf) => buf,
                None => {
                    let fresh = match self.spare.pop() {
                        Some(buf) => buf,
                        None => AlignedBuf::new(self.buffer_bytes, self.align)?,
                    };
                    self.filling.insert(fresh)
                }
            };
            let taken = buf.fill(bytes);
            bytes = &bytes[taken..];
            if buf.is_full() {
                self.submit().await?;
            }
        }
        Ok(())
    }

    /// Starts writing the filling buffer, once fewer than the maximum are in
    /// flight. Cancel-safe: the buffer stays in place until the write starts.
    async fn submit(&mut self) -> io::Result<()> {
        if self.filling.is_none() {
            return Ok(());
        }
        while self.in_flight.len() >= self.in_flight_max {
            self.reclaim_oldest().await?;
        }
        let Some(mut buf) = self.filling.take() else {
            return Ok(());
        };
        // Switched (or not) once, before the first write: a blob that fills a
        // buffer is large.
        if self.offset == 0 && buf.is_full() {
            self.direct = switch_to_direct(&self.file);
        }
        // Only the tail is short; direct I/O needs whole aligned blocks, so it
        // is padded with zeros and the file cut back to size when finished.
        let at = self.offset;
        self.offset += buf.len as u64;
        buf.set_padding(self.direct);
        let file = Arc::clone(&self.file);
        self.in_flight
            .push_back(tokio::task::spawn_blocking(move || {
                file.write_all_at(buf.padded(), at)?;
                Ok(buf)
            }));
        Ok(())
    }

    /// Waits for the oldest write and keeps its buffer for reuse. The write
    /// leaves the queue only once it has ended, so a cancelled wait loses nothing.
    async fn reclaim_oldest(&mut self) -> io::Result<()> {
        let Some(write) = self.in_flight.front_mut() else {
            return Ok(());
        };
        let ended = write.await;
        self.in_flight.pop_front();
        let mut buf = ended.map_err(io::Error::other)??;
        buf.clear();
        self.spare.push(buf);
        Ok(())
    }

    /// Writes what is left, flushes (with fsync) and moves the file to its key.
    pub(crate) async fn finish(mut self) -> io::Result<()> {
        self.submit().await?;
        while !self.in_flight.is_empty() {
            self.reclaim_oldest().await?;
        }
        let file = Arc::clone(&self.file);
        let (dest, fsync, offset) = (self.dest.clone(), self.fsync, self.offset);
        let Some(staging) = self.staging.take() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || {
            let published = (|| {
                file.set_len(offset)?;
                if fsync {
                    file.sync_all()?;
                }
                std::fs::rename(&staging, &dest)
            })();
            if published.is_err() {
                let _ = std::fs::remove_file(&staging);
            }
            published?;
            if fsync {
                sync_parent(&dest)?;
            }
            Ok(())
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Discards everything written.
    pub(crate) async fn abort(mut self) -> io::Result<()> {
        while let Some(write) = self.in_flight.pop_front() {
            // The file goes anyway; a failed write has nothing left to say.
            let _ = write.await;
        }
        let Some(staging) = self.staging.take() else {
            return Ok(());
        };
        match tokio::fs::remove_file(&staging).await {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for DirectWriter {
    /// A writer neither finished nor aborted (its request was dropped) takes
    /// its staging file with it, as `object_store`'s uploads do; writes still
    /// running hold the open file, which unlinking does not disturb.
    fn drop(&mut self) {
        if let Some(staging) = self.staging.take() {
            let _ = std::fs::remove_file(staging);
        }
    }
}

/// Creates `<dest>#<n>` for the first free `n`, and the alignment direct I/O
/// on it needs; `None` when the filesystem cannot do it.
fn open_staging(dest: &Path, fsync: bool) -> io::Result<Option<(File, PathBuf, usize)>> {
    let mut suffix = 1u32;
    let (file, staging) = loop {
        let mut staging = dest.as_os_str().to_owned();
        staging.push(format!("#{suffix}"));
        let staging = PathBuf::from(staging);
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging);
        match opened {
            Ok(file) => break (file, staging),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => suffix += 1,
            Err(e) if e.kind() == ErrorKind::NotFound => create_parents(&staging, fsync)?,
            Err(e) => return Err(e),
        }
    };
    match direct_alignment(&file) {
        Some(align) => Ok(Some((file, staging, align))),
        None => {
            drop(file);
            std::fs::remove_file(&staging)?;
            Ok(None)
        }
    }
}

/// Puts `file` in `O_DIRECT` mode; false (and no change) if it refuses.
fn switch_to_direct(file: &File) -> bool {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    let switched = fcntl_getfl(file).and_then(|flags| fcntl_setfl(file, flags | OFlags::DIRECT));
    if let Err(e) = &switched {
        tracing::debug!(error = %e, "direct I/O refused; writing through the page cache");
    }
    switched.is_ok()
}

/// The buffer and offset alignment direct I/O on `file` needs, if the kernel
/// reports it (Linux 6.1+) and it is one this writer supports.
fn direct_alignment(file: &File) -> Option<usize> {
    use rustix::fs::{AtFlags, StatxFlags, statx};
    let stat = statx(file, "", AtFlags::EMPTY_PATH, StatxFlags::DIOALIGN).ok()?;
    if !StatxFlags::from_bits_retain(stat.stx_mask).contains(StatxFlags::DIOALIGN)
        || stat.stx_dio_offset_align == 0
    {
        return None;
    }
    let align = usize::try_from(stat.stx_dio_mem_align.max(stat.stx_dio_offset_align))
        .ok()?
        .max(ALIGN_MIN);
    (align.is_power_of_two() && align <= ALIGN_MAX).then_some(align)
}

/// Creates the folders above `path`; with `fsync`, flushes each new one and
/// the folder that got the first of them, so they survive a crash.
fn create_parents(path: &Path, fsync: bool) -> io::Result<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    let existing = parent
        .ancestors()
        .find(|dir| dir.is_dir())
        .map(Path::to_owned);
    std::fs::create_dir_all(parent)?;
    if fsync {
        for dir in parent.ancestors() {
            File::open(dir)?.sync_all()?;
            if Some(dir) == existing.as_deref() {
                break;
            }
        }
    }
    Ok(())
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// A heap buffer whose usable part starts on an `align` boundary.
struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    capacity: usize,
    align: usize,
    /// Bytes of data in it.
    len: usize,
    /// Bytes to write: `len` rounded up to the alignment.
    padded_len: usize,
}

impl AlignedBuf {
    fn new(capacity: usize, align: usize) -> io::Result<Self> {
        let storage = vec![0u8; capacity + align];
        let start = storage.as_ptr().align_offset(align);
        if start >= align {
            return Err(io::Error::other("could not align a direct I/O buffer"));
        }
        Ok(AlignedBuf {
            storage,
            start,
            capacity,
            align,
            len: 0,
            padded_len: 0,
        })
    }

    /// Copies as much of `bytes` as fits; returns how much.
    fn fill(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.capacity - self.len);
        let at = self.start + self.len;
        self.storage[at..at + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        n
    }

    fn is_full(&self) -> bool {
        self.len == self.capacity
    }

    /// With `direct`, rounds what is written up to whole aligned blocks of
    /// zeros; without, writes only the data.
    fn set_padding(&mut self, direct: bool) {
        self.padded_len = match direct {
            true => self.len.next_multiple_of(self.align),
            false => self.len,
        };
        let from = self.start + self.len;
        self.storage[from..self.start + self.padded_len].fill(0);
    }

    fn padded(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.padded_len]
    }

    fn clear(&mut self) {
        self.len = 0;
        self.padded_len = 0;
    }
}
