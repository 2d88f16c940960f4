//! JSON lines appended to a file, rotated by size: `audit.jsonl` is active,
//! `audit.jsonl.1` the most recent rotated file, up to `audit.jsonl.<files_kept_max>`.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use tokio::fs::{File, OpenOptions};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

use super::{Envelope, SinkError};

/// A rotating JSON-lines file.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file_bytes_max: u64,
    files_kept_max: usize,
    file: Option<(File, u64)>,
}

fn io(context: &str, path: &Path) -> impl FnOnce(std::io::Error) -> SinkError {
    let context = format!("{context} {}", path.display());
    move |e| SinkError::Io(format!("{context}: {e}"))
}

impl FileSink {
    /// A sink writing to `path`, rotating before it would exceed `file_bytes_max`,
    /// keeping `files_kept_max` (at least 1) rotated files.
    pub fn new(path: PathBuf, file_bytes_max: u64, files_kept_max: usize) -> FileSink {
        FileSink {
            path,
            file_bytes_max: file_bytes_max.max(1),
            files_kept_max: files_kept_max.max(1),
            file: None,
        }
    }

    /// Appends the batch, rotating as needed, and syncs it to disk.
    pub async fn deliver(&mut self, batch: &[Envelope]) -> Result<(), SinkError> {
        let result = self.write(batch).await;
        if result.is_err() {
            // Reopen next time: the handle may be the cause.
            self.file = None;
        }
        result
    }

    async fn write(&mut self, batch: &[Envelope]) -> Result<(), SinkError> {
        for envelope in batch {
            let len = envelope.line.len() as u64 + 1;
            let size = self.open().await?.1;
            if size > 0 && size + len > self.file_bytes_max {
                self.rotate().await?;
            }
            let path = self.path.clone();
            let (file, size) = self.open().await?;
            let mut line = Vec::with_capacity(envelope.line.len() + 1);
            line.extend_from_slice(envelope.line.as_bytes());
            line.push(b'\n');
            file.write_all(&line).await.map_err(io("writing", &path))?;
            *size += len;
        }
        if let Some((file, _)) = &mut self.file {
            file.sync_data().await.map_err(io("syncing", &self.path))?;
        }
        Ok(())
    }

    /// The open file and its size, opening (and repairing a torn last line) if needed.
    async fn open(&mut self) -> Result<&mut (File, u64), SinkError> {
        if self.file.is_none() {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&self.path)
                .await
                .map_err(io("opening", &self.path))?;
            let mut size = file
                .metadata()
                .await
                .map_err(io("reading", &self.path))?
                .len();
            if size > 0
                && !ends_with_newline(&mut file)
                    .await
                    .map_err(io("reading", &self.path))?
            {
                // A crash cut the last line short; end it so the next line stays parseable.
                file.write_all(b"\n")
                    .await
                    .map_err(io("writing", &self.path))?;
                size += 1;
            }
            self.file = Some((file, size));
        }
        self.file
            .as_mut()
            .ok_or_else(|| SinkError::Io(format!("{} is not open", self.path.display())))
    }

    async fn rotate(&mut self) -> Result<(), SinkError> {
        if let Some((file, _)) = self.file.take() {
            file.sync_all().await.map_err(io("syncing", &self.path))?;
        }
        let rotated = |n: usize| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        let oldest = rotated(self.files_kept_max);
        match tokio::fs::remove_file(&oldest).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io("removing", &oldest)(e));
            }
            _ => {}
        }
        for n in (1..self.files_kept_max).rev() {
            let from = rotated(n);
            match tokio::fs::rename(&from, rotated(n + 1)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io("rotating", &from)(e));
                }
                _ => {}
            }
        }
        tokio::fs::rename(&self.path, rotated(1))
            .await
            .map_err(io("rotating", &self.path))?;
        sync_parent(&self.path).await
    }
}

async fn ends_with_newline(file: &mut File) -> std::io::Result<bool> {
    file.seek(SeekFrom::End(-1)).await?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last).await?;
    Ok(last[0] == b'\n')
}

/// Makes the renames durable.
async fn sync_parent(path: &Path) -> Result<(), SinkError> {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let handle = File::open(dir).await.map_err(io("opening", dir))?;
        handle.sync_all().await.map_err(io("syncing", dir))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
