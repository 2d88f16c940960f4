//! Symbolic analysis of pickle streams, protocols 0-5; nothing is ever executed.
//!
//! The machine ([`machine`]) runs every opcode over summaries of values: strings (kept
//! up to [`crate::Limits::string_bytes_max`]), small tuples and dicts, and the globals
//! the pickle imports. Each global is judged against [`rules`] when it is imported
//! (GLOBAL, STACK_GLOBAL, INST, EXT*), once per pickle; names built at load time from
//! memoized or concatenated strings, `getattr` on modules and globals, and
//! `importlib.import_module` are evaluated so the callable they reach is named. A call
//! whose callable cannot be known is itself reported.
//!
//! Streams hold several pickles one after the other (legacy PyTorch files, joblib's
//! object arrays); all are analysed. Bytes after at least one complete pickle that do
//! not parse end the analysis with an INFO finding (legacy PyTorch storages follow its
//! pickles). joblib's inline array bytes after a `NumpyArrayWrapper` BUILD are skipped
//! by their computed size, and the pickle written there for object arrays is analysed.

mod input;
mod machine;
mod memo;
mod rules;

use std::io::Read;

use crate::{Analyzer, Format, Scan, Source};

pub use rules::{Verdict, canonical, judge};

/// Symbolic analysis of pickle streams, protocols 0-5; nothing is ever executed.
pub struct PickleAnalyzer;

impl Analyzer for PickleAnalyzer {
    fn format(&self) -> Format {
        Format::Pickle
    }

    fn analyse(&self, src: &mut dyn Source, scan: &mut Scan<'_>) {
        analyse_stream(src, scan, 0);
    }
}

/// Analyses the pickles in `src` from its current position to its end (or to the first
/// bytes that do not parse), reporting into `scan` at offsets `base_offset + position`.
/// Reads forwards only, through a buffer; memory is bounded by the pickle limits
/// whatever the stream's size. Counts the bytes read with [`Scan::count_bytes`].
pub fn analyse_stream(src: &mut dyn Read, scan: &mut Scan<'_>, base_offset: u64) {
    let mut input = input::Input::new(src);
    machine::Machine::new(scan, base_offset, true).stream(&mut input);
    scan.count_bytes(input.pos());
}

/// Whether the first bytes look like a pickle: PROTO 0-5 followed by a valid opcode,
/// or a plausible first opcode followed by a plausible parse of the opcodes that fit in
/// `head`. Python writes no PROTO below protocol 2 and never PROTO 0 or 1, but loads
/// all of these: a payload crafted to dodge the usual shapes must still be analysed.
pub fn sniff(head: &[u8]) -> bool {
    match head {
        // A payload may be followed by garbage: only the start has to parse.
        [0x80, 0..=5] => true,
        [0x80, 0..=5, next, ..] => shape(*next).is_some(),
        [
            b'(' | b']' | b'}' | b')' | b'c' | b'N' | b'I' | b'L' | b'S' | b'V' | b'K' | b'J'
            | b'M' | b'U' | b'X' | b'T' | b'B' | b'C' | 0x8c | 0x8d | 0x8e | 0x95,
            ..,
        ] => plausible(head, 3),
        _ => false,
    }
}

/// How an opcode's argument is laid out, for [`plausible`].
enum Arg {
    None,
    Fixed(usize),
    Line,
    TwoLines,
    Len1,
    Len4,
    Len8,
}

/// (argument, values popped, values pushed, pops to the mark) of each opcode.
fn shape(op: u8) -> Option<(Arg, usize, usize, bool)> {
    use Arg::*;
    Some(match op {
        b'(' => (None, 0, 0, false),
        b'.' => (None, 1, 0, false),
        b'0' => (None, 1, 0, false),
        b'Q' => (None, 1, 1, false),
        b'a' | b'b' => (None, 2, 1, false),
        b'1' => (None, 0, 0, true),
        b'2' => (None, 1, 2, false),
        b'N' | 0x88 | 0x89 | b')' | b']' | b'}' | 0x8f | 0x97 => (None, 0, 1, false),
        b'F' | b'I' | b'L' | b'S' | b'V' | b'P' => (Line, 0, 1, false),
        b'g' => (Line, 0, 1, false),
        b'p' => (Line, 1, 1, false),
        b'c' => (TwoLines, 0, 1, false),
        b'i' => (TwoLines, 0, 1, true),
        b'J' => (Fixed(4), 0, 1, false),
        b'K' | b'h' => (Fixed(1), 0, 1, false),
        b'M' => (Fixed(2), 0, 1, false),
        b'G' => (Fixed(8), 0, 1, false),
        b'q' => (Fixed(1), 1, 1, false),
        b'r' => (Fixed(4), 1, 1, false),
        b'j' => (Fixed(4), 0, 1, false),
        0x82 => (Fixed(1), 0, 1, false),
        0x83 => (Fixed(2), 0, 1, false),
        0x84 => (Fixed(4), 0, 1, false),
        0x95 => (Fixed(8), 0, 0, false),
        0x80 => (Fixed(1), 0, 0, false),
        b'U' | b'C' | 0x8c | 0x8a => (Len1, 0, 1, false),
        b'T' | b'X' | b'B' | 0x8b => (Len4, 0, 1, false),
        0x8d | 0x8e | 0x96 => (Len8, 0, 1, false),
        b'R' | 0x81 => (None, 2, 1, false),
        b's' => (None, 3, 1, false),
        0x92 => (None, 3, 1, false),
        0x93 => (None, 2, 1, false),
        0x94 | 0x98 => (None, 1, 1, false),
        0x85 => (None, 1, 1, false),
        0x86 => (None, 2, 1, false),
        0x87 => (None, 3, 1, false),
        b't' | b'l' | b'd' | b'o' | 0x91 => (None, 0, 1, true),
        b'e' | b'u' | 0x90 => (None, 1, 1, true),
        _ => return Option::None,
    })
}

/// Parses the opcodes in `head` tracking only stack depths; true if at least `min_ops`
/// valid opcodes come before the first invalid one (a payload may precede garbage), or
/// a complete small pickle ends at STOP.
fn plausible(head: &[u8], min_ops: usize) -> bool {
    let mut pos = 0usize;
    let mut depth = 0usize;
    let mut marks: Vec<usize> = Vec::new();
    let mut ops = 0usize;
    // A call needs only GLOBAL, its arguments and REDUCE: `cos\nfork\n)R`.
    let mut need = min_ops;
    while let Some(&op) = head.get(pos) {
        let Some((arg, pops, pushes, to_mark)) = shape(op) else {
            return ops >= need;
        };
        let Some(next) = arg_end(head, pos + 1, &arg, op) else {
            // The argument runs past the head: judge by what was read.
            return ops >= need;
        };
        if next == usize::MAX {
            return ops >= need;
        }
        if to_mark {
            let Some(m) = marks.pop() else {
                return ops >= need;
            };
            depth = m;
        }
        if op == b'(' {
            marks.push(depth);
        }
        let floor = marks.last().copied().unwrap_or(0);
        if depth < floor + pops {
            return ops >= need;
        }
        depth = depth - pops + pushes;
        ops += 1;
        if matches!(op, b'c' | b'i') {
            need = need.min(3);
        }
        pos = next;
        if op == b'.' {
            return ops >= min_ops.min(2) && marks.is_empty() && depth == 0;
        }
    }
    ops >= need
}

/// Where an opcode's argument ends: `None` if past `head`, `usize::MAX` if invalid.
fn arg_end(head: &[u8], start: usize, arg: &Arg, op: u8) -> Option<usize> {
    let len_at = |n: usize| -> Option<usize> {
        let bytes = head.get(start..start + n)?;
        let mut le = [0u8; 8];
        le.get_mut(..n)?.copy_from_slice(bytes);
        let len = usize::try_from(u64::from_le_bytes(le)).unwrap_or(usize::MAX);
        Some(start.saturating_add(n).saturating_add(len))
    };
    let line = |from: usize| -> Option<(usize, &[u8])> {
        let rest = head.get(from..)?;
        let i = rest.iter().position(|&b| b == b'\n')?;
        Some((from + i + 1, rest.get(..i)?))
    };
    match arg {
        Arg::None => Some(start),
        Arg::Fixed(n) => (start + n <= head.len()).then_some(start + n),
        Arg::Len1 => len_at(1),
        Arg::Len4 => len_at(4),
        Arg::Len8 => len_at(8),
        Arg::Line => {
            let (end, text) = line(start)?;
            Some(if line_ok(op, text) { end } else { usize::MAX })
        }
        Arg::TwoLines => {
            let (mid, module) = line(start)?;
            let (end, name) = line(mid)?;
            let ok = machine::dotted_identifier(module) && machine::dotted_identifier(name);
            Some(if ok { end } else { usize::MAX })
        }
    }
}

fn line_ok(op: u8, text: &[u8]) -> bool {
    let numeric = |t: &[u8]| {
        let t = t.strip_suffix(b"L").unwrap_or(t);
        let t = t.strip_prefix(b"-").unwrap_or(t);
        !t.is_empty() && t.iter().all(u8::is_ascii_digit)
    };
    match op {
        b'I' | b'L' | b'g' | b'p' => numeric(text),
        b'F' => !text.is_empty() && text.iter().all(|b| b"0123456789.-+eEinfa".contains(b)),
        b'S' => text.len() >= 2 && matches!(text.first(), Some(b'\'' | b'"')),
        _ => !text.iter().any(|&b| b < 0x20 && b != b'\t'),
    }
}

#[cfg(test)]
mod tests;
