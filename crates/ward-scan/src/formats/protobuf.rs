//! A minimal, bounded, streaming reader of the protocol buffer wire format.
//!
//! Analysers walk only the fields that can name code (op types, domains, paths) and
//! skip everything else, tensor bytes above all, by seeking. Nothing is buffered
//! beyond one read buffer and the strings kept, so memory stays flat in file size.

use std::io::{BufRead, BufReader, Read, Seek};

use crate::Source;

/// Wire type of a length-delimited field (strings, bytes, sub-messages).
pub const LEN: u8 = 2;
/// Wire type of a varint field.
pub const VARINT: u8 = 0;

/// Why reading stopped, and where.
#[derive(Debug)]
pub struct PbError {
    /// Byte offset at which the problem was seen.
    pub offset: u64,
    /// What was wrong, for a person.
    pub reason: String,
}

/// A result of the reader.
pub type PbResult<T> = Result<T, PbError>;

/// One field header: its number, wire type, and for length-delimited fields where
/// its payload ends. The payload has not been read.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Field number.
    pub number: u64,
    /// Wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
    pub wire: u8,
    /// For varint fields, the value.
    pub value: u64,
    /// End offset of the payload (equal to the position after the header for
    /// non-length-delimited fields, which are consumed already).
    pub end: u64,
}

/// A streaming reader over a [`Source`] that tracks its position.
pub struct Reader<'s> {
    src: BufReader<&'s mut dyn Source>,
    pos: u64,
    overrun: Option<PbError>,
}

impl<'s> Reader<'s> {
    /// Reads `src` from its current position, which is taken as offset 0.
    pub fn new(src: &'s mut dyn Source) -> Self {
        Reader {
            src: BufReader::with_capacity(16 << 10, src),
            pos: 0,
            overrun: None,
        }
    }

    /// The first field found longer than its enclosing message (or the input). Such a
    /// field is read up to the enclosing end, so that what precedes a truncation is
    /// still judged; the caller reports this once the walk is over.
    pub fn take_overrun(&mut self) -> Option<PbError> {
        self.overrun.take()
    }

    /// The current offset.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Bytes taken from an input of `len` bytes (`u64::MAX` when unknown), for
    /// [`crate::Scan::count_bytes`]. Not [`Reader::pos`]: skipping a field whose
    /// declared length runs past the end moves that beyond the end (a file seeks
    /// there, a stream stops short), though nothing more was read.
    pub fn consumed(&mut self, len: u64) -> u64 {
        let reached = self.src.get_mut().stream_position().unwrap_or(self.pos);
        reached.min(len)
    }

    fn err<T>(&self, reason: impl Into<String>) -> PbResult<T> {
        Err(PbError {
            offset: self.pos,
            reason: reason.into(),
        })
    }

    /// Whether the input ends here (no more bytes).
    pub fn at_eof(&mut self) -> PbResult<bool> {
        match self.src.fill_buf() {
            Ok(buf) => Ok(buf.is_empty()),
            Err(e) => self.err(format!("read error: {e}")),
        }
    }

    fn byte(&mut self) -> PbResult<u8> {
        let mut b = [0u8; 1];
        match self.src.read_exact(&mut b) {
            Ok(()) => {
                self.pos += 1;
                Ok(b[0])
            }
            Err(e) => self.err(format!("truncated: {e}")),
        }
    }

    /// Reads `N` bytes (fixed-size fields; other binary headers such as GGUF's).
    pub fn fixed<const N: usize>(&mut self) -> PbResult<[u8; N]> {
        let mut b = [0u8; N];
        match self.src.read_exact(&mut b) {
            Ok(()) => {
                self.pos += N as u64;
                Ok(b)
            }
            Err(e) => self.err(format!("truncated: {e}")),
        }
    }

    /// Reads a base-128 varint (at most 10 bytes).
    pub fn varint(&mut self) -> PbResult<u64> {
        let mut value = 0u64;
        for i in 0..10u32 {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        self.err("varint longer than 10 bytes")
    }

    /// Moves forwards to `offset` without reading the bytes into memory when the
    /// source can seek.
    pub fn skip_to(&mut self, offset: u64) -> PbResult<()> {
        let Some(delta) = offset.checked_sub(self.pos) else {
            return self.err("cannot move backwards");
        };
        let Ok(delta) = i64::try_from(delta) else {
            return self.err("skip too large");
        };
        match self.src.seek_relative(delta) {
            Ok(()) => {
                self.pos = offset;
                Ok(())
            }
            Err(e) => self.err(format!("cannot skip: {e}")),
        }
    }

    /// Reads the bytes up to `end`, keeping at most `keep` of them (the rest are
    /// skipped).
    pub fn bytes(&mut self, end: u64, keep: usize) -> PbResult<Vec<u8>> {
        let (out, res) = self.partial(end, keep);
        res.map(|()| out)
    }

    /// Like [`Reader::bytes`], but hands back what was read even when the input ends
    /// early, so that a truncated value can still be judged.
    pub fn partial(&mut self, end: u64, keep: usize) -> (Vec<u8>, PbResult<()>) {
        let len = end.saturating_sub(self.pos);
        let take = len.min(keep as u64);
        let mut out = Vec::new();
        let res = (&mut self.src).take(take).read_to_end(&mut out);
        self.pos += out.len() as u64;
        let res = match res {
            Ok(n) if n as u64 == take => self.skip_to(end),
            Ok(_) => self.err("truncated string"),
            Err(e) => self.err(format!("read error: {e}")),
        };
        (out, res)
    }

    /// Reads a string field's payload (lossily decoded, at most `keep` bytes).
    pub fn string(&mut self, field: &Field, keep: usize) -> PbResult<String> {
        let raw = self.bytes(field.end, keep)?;
        Ok(String::from_utf8_lossy(&raw).into_owned())
    }

    /// Reads the next field header of a message ending at `end`, or `None` at its
    /// end. `end == u64::MAX` means "until the input ends" (the outermost message).
    /// Varint and fixed-size fields are consumed; length-delimited ones are not.
    pub fn next(&mut self, end: u64) -> PbResult<Option<Field>> {
        if self.pos >= end || (end == u64::MAX && self.at_eof()?) {
            return Ok(None);
        }
        let tag = self.varint()?;
        let number = tag >> 3;
        let wire = (tag & 7) as u8;
        if number == 0 {
            return self.err("field number 0");
        }
        let mut field = Field {
            number,
            wire,
            value: 0,
            end: self.pos,
        };
        match wire {
            VARINT => field.value = self.varint()?,
            1 => self.skip_to(self.pos.saturating_add(8))?,
            5 => self.skip_to(self.pos.saturating_add(4))?,
            LEN => {
                let len = self.varint()?;
                field.end = match self.pos.checked_add(len).filter(|e| *e <= end) {
                    Some(e) => e,
                    None => {
                        if self.overrun.is_none() {
                            self.overrun = Some(PbError {
                                offset: self.pos,
                                reason: format!(
                                    "field {number} of {len} bytes overruns its message"
                                ),
                            });
                        }
                        end
                    }
                };
                return Ok(Some(field));
            }
            other => return self.err(format!("unsupported wire type {other}")),
        }
        if self.pos > end {
            return self.err(format!("field {number} overruns its message"));
        }
        field.end = self.pos;
        Ok(Some(field))
    }

    /// Calls `visit` for every field of a message ending at `end`, then moves to the
    /// end of each field whatever `visit` read of it.
    pub fn each(
        &mut self,
        end: u64,
        visit: &mut dyn FnMut(&mut Reader<'s>, &Field) -> PbResult<()>,
    ) -> PbResult<()> {
        while let Some(field) = self.next(end)? {
            visit(self, &field)?;
            if self.pos < field.end {
                self.skip_to(field.end)?;
            }
        }
        Ok(())
    }
}

/// The length of `src` when it can tell (seekable inputs), leaving it at its start.
/// Forward-only streams give `None`; their end is wherever the bytes end.
pub fn input_len(src: &mut dyn Source) -> Option<u64> {
    let len = src.seek(std::io::SeekFrom::End(0)).ok()?;
    src.seek(std::io::SeekFrom::Start(0)).ok()?;
    Some(len)
}

/// Walks the fields of a message held in `buf` (for sniffing): calls `visit(number,
/// wire, payload_len)` per field and stops at the first malformed or incomplete one.
/// Returns how many fields were complete or ran past the buffer's end (`true` when the
/// walk ended cleanly or at the buffer's end, `false` on a malformed tag).
pub fn walk_head(buf: &[u8], visit: &mut dyn FnMut(u64, u8, &[u8]) -> bool) -> bool {
    let mut i = 0usize;
    while i < buf.len() {
        let Some((tag, n)) = head_varint(buf.get(i..).unwrap_or_default()) else {
            return true;
        };
        i += n;
        let (number, wire) = (tag >> 3, (tag & 7) as u8);
        let rest = buf.get(i..).unwrap_or_default();
        let payload: &[u8] = match wire {
            VARINT => match head_varint(rest) {
                Some((_, n)) => {
                    i += n;
                    &[]
                }
                None => return visit(number, wire, &[]),
            },
            LEN => match head_varint(rest) {
                Some((len, n)) => {
                    let start = i + n;
                    let end = usize::try_from(len)
                        .ok()
                        .and_then(|l| start.checked_add(l))
                        .unwrap_or(usize::MAX);
                    i = end;
                    buf.get(start..end.min(buf.len())).unwrap_or_default()
                }
                None => return visit(number, wire, &[]),
            },
            1 => {
                i += 8;
                &[]
            }
            5 => {
                i += 4;
                &[]
            }
            _ => return false,
        };
        if number == 0 || !visit(number, wire, payload) {
            return false;
        }
    }
    true
}

/// A varint at the start of `buf`: (value, bytes used), or `None` if incomplete.
pub fn head_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in buf.iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod enc {
    //! Tiny protobuf encoders for tests.

    /// Appends a varint.
    pub fn varint(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    /// A varint field.
    pub fn int(number: u64, v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint(&mut out, number << 3);
        varint(&mut out, v);
        out
    }

    /// A length-delimited field.
    pub fn bytes(number: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(&mut out, (number << 3) | 2);
        varint(&mut out, payload.len() as u64);
        out.extend_from_slice(payload);
        out
    }

    /// A sub-message made of fields.
    pub fn msg(number: u64, fields: &[Vec<u8>]) -> Vec<u8> {
        bytes(number, &fields.concat())
    }
}

#[cfg(test)]
mod tests {
    use super::enc::*;
    use super::*;
    use std::io::Cursor;

    /// Flattens every field as "number:wire" (recursing into field 9).
    fn check(input: &[u8], expected: &str) {
        let mut cur = Cursor::new(input.to_vec());
        let mut r = Reader::new(&mut cur);
        let mut seen = Vec::new();
        let res = r.each(u64::MAX, &mut |r, f| {
            seen.push(format!("{}:{}", f.number, f.wire));
            if f.number == 9 {
                let s = r.string(f, 3)?;
                seen.push(s);
            }
            Ok(())
        });
        if let Err(e) = res {
            seen.push(format!("err@{}", e.offset));
        }
        assert_eq!(seen.join(" "), expected, "input {input:02x?}");
    }

    #[test]
    fn reads_and_skips_fields() {
        let cases: &[(Vec<u8>, &str)] = &[
            (vec![], ""),
            (int(1, 300), "1:0"),
            (
                [int(1, 1), bytes(2, b"abc"), bytes(9, b"hello")].concat(),
                "1:0 2:2 9:2 hel",
            ),
            (vec![0x08], "err@1"),
            (vec![0x12, 0x05, b'a'], "2:2"),
            (vec![0x0b], "err@1"),
            (vec![0x00], "err@1"),
            ([vec![0x08], vec![0xff; 11]].concat(), "err@11"),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    /// Skipping fields that claim more bytes than the input holds: the bytes counted
    /// as read stay within the input, seekable or not (found by fuzzing).
    #[test]
    fn counts_only_bytes_the_input_holds() {
        let fixed64 = vec![0x09, 1, 2];
        let past_end = [int(1, 1), vec![0x12, 0xff, 0xff, 0xff, 0xff, 0x0f], vec![1]].concat();
        let cases: &[(&[u8], u64)] = &[(&fixed64, 3), (&past_end, 9), (&[], 0)];
        for (input, expected) in cases {
            let mut cur = Cursor::new(input.to_vec());
            let mut r = Reader::new(&mut cur);
            let _ = r.each(u64::MAX, &mut |_, _| Ok(()));
            assert_eq!(r.consumed(input.len() as u64), *expected, "{input:02x?}");
            let mut stream = crate::ForwardOnly::new(*input);
            let mut r = Reader::new(&mut stream);
            let _ = r.each(u64::MAX, &mut |_, _| Ok(()));
            assert_eq!(r.consumed(u64::MAX), *expected, "stream {input:02x?}");
        }
    }

    #[test]
    fn walks_heads() {
        let mut seen = Vec::new();
        let buf = [int(1, 7), bytes(2, b"xy")].concat();
        assert!(walk_head(&buf, &mut |n, w, p| {
            seen.push((n, w, p.len()));
            true
        }));
        assert_eq!(seen, vec![(1, 0, 0), (2, 2, 2)]);
        assert!(!walk_head(&[0x0f], &mut |_, _, _| true));
    }
}
