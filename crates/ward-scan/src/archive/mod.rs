//! Archives and compressed streams: every member is recognised by content and scanned.
//!
//! Shared here: [`Window`] (a stored member read in place, so a large tensor is sniffed
//! and skipped, never copied), the metered decoding every compressed member goes through
//! (decompressed budget and bomb ratio checked while streaming, and the ratio of the
//! sizes an archive declares checked up front) and the path checks all archive formats
//! apply to member names.

use std::cell::Cell;
use std::io::{self, Read, Seek, SeekFrom};
use std::rc::Rc;

use crate::{Scan, Severity, Source};

pub mod compress;
pub mod sevenz;
pub mod tar;
pub mod zip;

/// A read-only view of the byte range `start..start + len` of a parent source. Reads
/// past the end return end-of-file; the parent is re-positioned on every read, so
/// several windows (nested archives) can share one parent.
pub struct Window<'a> {
    inner: &'a mut dyn Source,
    start: u64,
    len: u64,
    pos: u64,
}

impl<'a> Window<'a> {
    /// The range `start..start + len` of `inner`, read from its start.
    pub fn new(inner: &'a mut dyn Source, start: u64, len: u64) -> Self {
        Window {
            inner,
            start,
            len,
            pos: 0,
        }
    }
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let at = self.start.checked_add(self.pos).ok_or_else(overflow)?;
        self.inner.seek(SeekFrom::Start(at))?;
        let n = self.inner.read(buf.get_mut(..want).unwrap_or_default())?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(overflow)?;
        Ok(self.pos)
    }
}

fn overflow() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "seek out of range")
}

/// Counts the bytes a decoder pulls from its compressed input, for the bomb ratio of
/// streams whose compressed size is not declared (gzip, zstd, …).
#[derive(Clone, Default)]
pub(crate) struct Counter(Rc<Cell<u64>>);

impl Counter {
    pub(crate) fn get(&self) -> u64 {
        self.0.get()
    }

    /// `inner`, counting what is read from it into this counter.
    pub(crate) fn wrap<R: Read>(&self, inner: R) -> Counted<R> {
        Counted {
            inner,
            count: self.clone(),
        }
    }
}

/// A reader that adds what it reads to a [`Counter`].
pub(crate) struct Counted<R> {
    inner: R,
    count: Counter,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.0.set(self.count.get().saturating_add(n as u64));
        Ok(n)
    }
}

/// How large a compressed member is: declared (a zip entry) or counted as it is read.
pub(crate) enum Compressed {
    /// The declared compressed size.
    Known(u64),
    /// Bytes the decoder has read so far.
    Counted(Counter),
}

impl Compressed {
    fn bytes(&self) -> u64 {
        match self {
            Compressed::Known(n) => *n,
            Compressed::Counted(c) => c.get(),
        }
    }
}

/// Which bound stopped a decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trip {
    Budget,
    Ratio,
}

/// A decoder's output, stopped with an error once the scan's decompressed budget or
/// the member's ratio bound is crossed, so that a bomb is never expanded in full.
struct Metered<R> {
    inner: R,
    out: u64,
    budget: u64,
    ratio_max: u64,
    exempt: u64,
    compressed: Compressed,
    tripped: Option<Trip>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(trip) = self.tripped {
            return Err(tripped(trip));
        }
        let n = self.inner.read(buf)?;
        self.out = self.out.saturating_add(n as u64);
        let ratio_limit = self.compressed.bytes().saturating_mul(self.ratio_max);
        let trip = if self.out > self.budget {
            Some(Trip::Budget)
        } else if self.out > self.exempt && self.out > ratio_limit {
            Some(Trip::Ratio)
        } else {
            None
        };
        if let Some(trip) = trip {
            self.tripped = Some(trip);
            return Err(tripped(trip));
        }
        Ok(n)
    }
}

fn tripped(trip: Trip) -> io::Error {
    let what = match trip {
        Trip::Budget => "decompressed byte budget spent (limits.decompressed_bytes_max)",
        Trip::Ratio => "compression ratio too high (limits.compression_ratio_max)",
    };
    io::Error::other(what)
}

/// Scans the decoded stream `decoder` as member `name`, within the decompressed budget
/// and the ratio bound. With `drain`, what the member's analyser left unread is decoded
/// too (solid 7z blocks must be, to reach the next entry), still metered. False once
/// the scan's decompressed budget is spent, or a drained member tripped a bound: the
/// caller then stops decoding.
///
/// `declared` is the uncompressed size the archive's directory claims: judged against
/// the ratio bound up front, because a member that is only sniffed (unrecognised data)
/// is never decoded far enough for the streaming check to see a bomb. The streaming
/// check stays for directories that lie.
pub(crate) fn scan_decoded(
    scan: &mut Scan<'_>,
    name: &str,
    decoder: &mut dyn Read,
    compressed: Compressed,
    declared: Option<u64>,
    drain: bool,
) -> bool {
    let limits = scan.limits();
    let declared_bomb = declared.filter(|&size| {
        size > limits.compression_ratio_exempt_bytes
            && size
                > compressed
                    .bytes()
                    .saturating_mul(limits.compression_ratio_max)
    });
    let mut metered = Metered {
        inner: decoder,
        out: 0,
        budget: scan.decompressed_remaining(),
        ratio_max: limits.compression_ratio_max,
        exempt: limits.compression_ratio_exempt_bytes,
        compressed,
        tripped: None,
    };
    scan.member_stream(name, &mut metered);
    let drained = !drain || io::copy(&mut metered, &mut io::sink()).is_ok();
    if !drained && metered.tripped.is_none() {
        scan.unreadable(
            None,
            format!("member {name:?} is corrupt; decoding stopped"),
        );
    }
    let max = scan.limits().compression_ratio_max;
    let bomb = match (declared_bomb, metered.tripped) {
        (Some(size), _) => Some(format!(
            "member {name:?} declares {size} bytes from {} compressed, more than {max} times \
             (limits.compression_ratio_max)",
            metered.compressed.bytes()
        )),
        (None, Some(Trip::Ratio)) => Some(format!(
            "member {name:?} expands more than {max} times its compressed size \
             (limits.compression_ratio_max); read stopped after {} bytes",
            metered.out
        )),
        _ => None,
    };
    if let Some(message) = bomb {
        scan.finding(Severity::High, "archive.bomb", message, None);
    }
    scan.charge_decompressed(metered.out) && drained
}

/// Why an archive member's path would land outside the directory it is extracted
/// into, or `None` when it stays inside. Any `..` component counts: extractors differ
/// in how they resolve it.
pub(crate) fn escapes_root(path: &str) -> Option<&'static str> {
    rooted(path).or_else(|| {
        path.split(['/', '\\'])
            .any(|part| part == "..")
            .then_some("has a .. component")
    })
}

/// Why `path` ignores the extraction directory altogether (absolute, UNC or drive).
fn rooted(path: &str) -> Option<&'static str> {
    if path.starts_with('/') || path.starts_with('\\') {
        return Some("is absolute");
    }
    if let [drive, b':', ..] = path.as_bytes()
        && drive.is_ascii_alphabetic()
    {
        return Some("names a drive");
    }
    None
}

/// Reports member `name` if its path escapes the extraction root (HIGH: extracting it
/// overwrites files elsewhere).
pub(crate) fn check_path(scan: &mut Scan<'_>, name: &str, offset: Option<u64>) {
    if let Some(why) = escapes_root(name) {
        scan.finding(
            Severity::High,
            "archive.path-traversal",
            format!("member path {name} {why}: extracting it writes outside the target directory"),
            offset,
        );
    }
}

/// Whether `target` of a link stored at `path` resolves outside the extraction root.
pub(crate) fn link_escapes(path: &str, target: &str) -> bool {
    if rooted(target).is_some() {
        return true;
    }
    // Depth of the link's directory, then walk the target from there.
    let mut depth: i64 = 0;
    let parents = path
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".");
    let dirs = parents.count().saturating_sub(1);
    depth = depth.saturating_add(i64::try_from(dirs).unwrap_or(i64::MAX));
    for part in target.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth = depth.saturating_add(1),
        }
    }
    false
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers the archive tests share.

    use crate::{Finding, Limits, Report, Scanner};

    /// Scans `bytes` with `limits`.
    pub fn scan_with(bytes: &[u8], limits: Limits) -> Report {
        Scanner::new(limits).scan(&mut std::io::Cursor::new(bytes.to_vec()))
    }

    /// Scans `bytes` with the default limits.
    pub fn scan(bytes: &[u8]) -> Report {
        scan_with(bytes, Limits::default())
    }

    /// A member whose analysis leaves a trace naming it: a protocol-2 pickle that
    /// imports `posix.system` (never run), so every member the archive code dispatches
    /// shows up as a `pickle.denied-callable` finding located at its member chain.
    pub const PROBE: &[u8] = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.";

    /// Whether `finding` is the probe's trace.
    fn is_probe(finding: &Finding) -> bool {
        finding.rule == "pickle.denied-callable" && finding.message.contains("posix.system")
    }

    /// The member chains of every probe the scan reached and analysed, as `a!/b`.
    pub fn dispatched(report: &Report) -> Vec<String> {
        report
            .findings
            .iter()
            .filter(|f| is_probe(f))
            .map(|f| f.location.members.join("!/"))
            .collect()
    }

    /// Rule ids of the findings other than the probes' traces, in order.
    pub fn rules(report: &Report) -> Vec<String> {
        report
            .findings
            .iter()
            .filter(|f| !is_probe(f))
            .map(|f| f.rule.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_escape(path: &str, expected: bool) {
        assert_eq!(escapes_root(path).is_some(), expected, "{path}");
    }

    #[test]
    fn paths_that_escape() {
        let cases = [
            ("data.pkl", false),
            ("archive/data/0", false),
            ("a/../b", true),
            ("../../etc/passwd", true),
            ("/etc/passwd", true),
            ("\\\\server\\share", true),
            ("..\\..\\x", true),
            ("C:\\Windows\\x", true),
            ("c:x", true),
            ("a..b/c", false),
            ("./x", false),
        ];
        for (path, expected) in cases {
            check_escape(path, expected);
        }
    }

    fn check_link(path: &str, target: &str, expected: bool) {
        assert_eq!(link_escapes(path, target), expected, "{path} -> {target}");
    }

    #[test]
    fn links_that_escape() {
        let cases = [
            ("a/link", "b", false),
            ("a/link", "../b", false),
            ("a/link", "../../b", true),
            ("link", "../x", true),
            ("link", "/etc/passwd", true),
            ("a/b/link", "../../c/../d", false),
            ("a/link", "x/../../..", true),
        ];
        for (path, target, expected) in cases {
            check_link(path, target, expected);
        }
    }

    /// Damaged archives (every truncation point, pseudo-random byte flips) are
    /// scanned without panicking, and the scan ends.
    #[test]
    fn damaged_archives_never_panic() {
        use crate::archive::tar::tests::{member, tar};
        use crate::archive::zip::tests::{stored, zip};
        let probe = testing::PROBE;
        let tar_bytes = tar(&[member("a", b'0', "", probe), member("l", b'2', "../x", b"")]);
        let zip_bytes = zip(&[stored("a", probe), stored("t.tar", &tar_bytes)]);
        use crate::archive::compress::tests as c;
        let streams = [
            c::gzip(&zip_bytes),
            c::zlib(&tar_bytes),
            c::zstd(&tar_bytes),
            c::bzip2(&tar_bytes),
            c::xz(&tar_bytes),
            c::lzma(&tar_bytes),
            c::lz4(&tar_bytes),
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for original in [zip_bytes, tar_bytes].into_iter().chain(streams) {
            for cut in (0..original.len()).step_by(7) {
                testing::scan(&original[..cut]);
            }
            for _ in 0..300 {
                let mut bytes = original.clone();
                for _ in 0..4 {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let at = (state % bytes.len() as u64) as usize;
                    bytes[at] = (state >> 32) as u8;
                }
                testing::scan(&bytes);
            }
        }
    }

    #[test]
    fn window_reads_and_seeks_inside_its_range() {
        let mut parent = io::Cursor::new(b"0123456789".to_vec());
        let mut w = Window::new(&mut parent, 2, 5);
        let mut out = String::new();
        w.read_to_string(&mut out).unwrap();
        assert_eq!(out, "23456");
        w.seek(SeekFrom::End(-2)).unwrap();
        out.clear();
        w.read_to_string(&mut out).unwrap();
        assert_eq!(out, "56");
        assert!(w.seek(SeekFrom::Current(-10)).is_err());
    }
}
