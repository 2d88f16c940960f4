//! A buffered forward reader that counts its position and keeps at most a bounded
//! prefix of long arguments, discarding the rest as it streams past.

use std::io::{self, BufRead, BufReader, Read};

/// Why reading a pickle stopped early.
#[derive(Debug)]
pub enum Stop {
    /// The stream ended inside an opcode.
    Truncated,
    /// The bytes are not a valid pickle here; why.
    Malformed(String),
    /// A named limit was reached; which and why.
    Limit(String),
    /// The underlying reader failed.
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Stop::Truncated
        } else {
            Stop::Io(e)
        }
    }
}

/// Result of a read inside the opcode loop.
pub type Step<T> = Result<T, Stop>;

/// Buffered input with a byte position.
pub struct Input<'r> {
    inner: BufReader<&'r mut dyn Read>,
    pos: u64,
}

impl<'r> Input<'r> {
    /// Reads `src` from its current position, which counts as 0.
    pub fn new(src: &'r mut dyn Read) -> Self {
        Input {
            inner: BufReader::with_capacity(64 << 10, src),
            pos: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// The next byte, or `None` at the end of the stream.
    #[inline]
    pub fn next_byte(&mut self) -> Step<Option<u8>> {
        let byte = match self.inner.buffer().first() {
            Some(b) => *b,
            None => match self.inner.fill_buf()?.first() {
                Some(b) => *b,
                None => return Ok(None),
            },
        };
        self.inner.consume(1);
        self.pos += 1;
        Ok(Some(byte))
    }

    /// The next byte; the stream must not end here.
    #[inline]
    pub fn byte(&mut self) -> Step<u8> {
        self.next_byte()?.ok_or(Stop::Truncated)
    }

    /// `N` bytes exactly.
    pub fn array<const N: usize>(&mut self) -> Step<[u8; N]> {
        let mut out = [0u8; N];
        if let Some(bytes) = self.inner.buffer().get(..N) {
            out.copy_from_slice(bytes);
            self.inner.consume(N);
            self.pos += N as u64;
            return Ok(out);
        }
        self.inner.read_exact(&mut out)?;
        self.pos += N as u64;
        Ok(out)
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Step<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> Step<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Reads `n` bytes, keeping the first `keep` of them in `out` (cleared first).
    pub fn read_kept(&mut self, n: u64, keep: usize, out: &mut Vec<u8>) -> Step<()> {
        out.clear();
        // Fast path: the whole argument is already buffered.
        if let Ok(len) = usize::try_from(n)
            && len <= keep
            && let Some(bytes) = self.inner.buffer().get(..len)
        {
            out.extend_from_slice(bytes);
            self.inner.consume(len);
            self.pos += n;
            return Ok(());
        }
        let kept = n.min(keep as u64);
        let got = (&mut self.inner).take(kept).read_to_end(out)?;
        self.pos += got as u64;
        if (got as u64) < kept {
            return Err(Stop::Truncated);
        }
        self.skip(n - kept)
    }

    /// Reads and discards `n` bytes.
    pub fn skip(&mut self, n: u64) -> Step<()> {
        if let Ok(len) = usize::try_from(n)
            && len <= self.inner.buffer().len()
        {
            self.inner.consume(len);
            self.pos += n;
            return Ok(());
        }
        let got = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
        self.pos += got;
        if got < n {
            return Err(Stop::Truncated);
        }
        Ok(())
    }

    /// Reads through the next `\n`, keeping at most `keep` bytes (without the newline).
    pub fn line(&mut self, keep: usize, out: &mut Vec<u8>) -> Step<()> {
        out.clear();
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                return Err(Stop::Truncated);
            }
            let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (buf.get(..i).unwrap_or(buf), true),
                None => (buf, false),
            };
            let room = keep.saturating_sub(out.len());
            out.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or(chunk));
            let used = chunk.len() + usize::from(done);
            self.inner.consume(used);
            self.pos += used as u64;
            if done {
                return Ok(());
            }
        }
    }
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[u8], keep: usize, expected: (&[u8], u64)) {
        let mut src = input;
        let mut inp = Input::new(&mut src);
        let mut out = Vec::new();
        inp.line(keep, &mut out).unwrap();
        assert_eq!((out.as_slice(), inp.pos()), expected);
    }

    #[test]
    fn lines_are_bounded() {
        type Case<'c> = (&'c [u8], usize, (&'c [u8], u64));
        let cases: [Case; 3] = [
            (b"os\nsystem\n", 10, (b"os", 3)),
            (b"abcdef\nx", 3, (b"abc", 7)),
            (b"\n", 3, (b"", 1)),
        ];
        for (input, keep, expected) in cases {
            check(input, keep, expected);
        }
    }

    #[test]
    fn take_keeps_a_prefix_and_skips_the_rest() {
        let mut src = &b"0123456789"[..];
        let mut inp = Input::new(&mut src);
        let mut out = Vec::new();
        inp.read_kept(8, 3, &mut out).unwrap();
        assert_eq!((out.as_slice(), inp.pos()), (&b"012"[..], 8));
        assert!(matches!(
            inp.read_kept(5, 3, &mut out),
            Err(Stop::Truncated)
        ));
    }
}
