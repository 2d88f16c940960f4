//! Inputs: anything readable and seekable, and an adapter for forward-only streams.

use std::io::{self, Read, Seek, SeekFrom};

/// What analysers read: a byte stream that can seek. Blanket-implemented.
pub trait Source: Read + Seek {}

impl<T: Read + Seek + ?Sized> Source for T {}

/// Makes a forward-only stream (a decompressed archive member) usable as a [`Source`]
/// for analysers that only read forwards: seeking forwards reads and discards, seeking
/// to the current position is free, and any other seek is an error.
pub struct ForwardOnly<R> {
    inner: R,
    position: u64,
}

impl<R: Read> ForwardOnly<R> {
    /// Wraps `inner`, counting from position 0.
    pub fn new(inner: R) -> Self {
        ForwardOnly { inner, position: 0 }
    }

    /// Bytes read (or skipped) so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The wrapped stream.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for ForwardOnly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.position += n as u64;
        Ok(n)
    }
}

impl<R: Read> Seek for ForwardOnly<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.position.checked_add_signed(d),
            SeekFrom::End(_) => None,
        };
        match target {
            Some(t) if t >= self.position => {
                let skip = t - self.position;
                let copied = io::copy(&mut (&mut self.inner).take(skip), &mut io::sink())?;
                self.position += copied;
                Ok(self.position)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this stream can only be read forwards",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_seeks_skip_and_backward_seeks_fail() {
        let mut src = ForwardOnly::new(&b"0123456789"[..]);
        let mut two = [0u8; 2];
        src.read_exact(&mut two).unwrap();
        assert_eq!(src.seek(SeekFrom::Current(3)).unwrap(), 5);
        src.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"56");
        assert_eq!(src.stream_position().unwrap(), 7);
        assert!(src.seek(SeekFrom::Start(1)).is_err());
        assert!(src.seek(SeekFrom::End(0)).is_err());
    }
}
