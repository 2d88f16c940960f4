//! Zip archives, read the way Python's zipfile and PyTorch read them.
//!
//! The loaders find the end-of-central-directory record by searching back from the end
//! (last match wins), take sizes, methods and flags from the central directory, shift
//! every offset by the bytes prepended before the archive, and find an entry's data
//! after its *local* header's name and extra field. We do the same, so a header trick
//! cannot hide an entry the loader would still open, and we report where the headers
//! disagree. Stored entries are scanned in place through a [`Window`]: a 1 GiB tensor
//! is sniffed from its first bytes and skipped.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, SeekFrom};

use flate2::read::DeflateDecoder;

use super::compress::{zip_lzma, zstd};
use super::{Compressed, Window, check_path, link_escapes, scan_decoded};
use crate::detect::SNIFF_BYTES;
use crate::{Analyzer, Format, Scan, Severity, Source, detect};

/// Zip archives, read the way Python's zipfile and PyTorch read them.
pub struct ZipAnalyzer;

impl Analyzer for ZipAnalyzer {
    fn format(&self) -> Format {
        Format::Zip
    }

    fn needs_seek(&self) -> bool {
        true
    }

    fn analyse(&self, src: &mut dyn Source, scan: &mut Scan<'_>) {
        let file_len = match src.seek(SeekFrom::End(0)) {
            Ok(n) => n,
            Err(e) => return scan.unreadable(None, format!("cannot seek: {e}")),
        };
        let raw = match find_directory(src, file_len) {
            Ok(dir) => dir,
            Err(e) => return scan.unreadable(Some(file_len), e),
        };
        scan.count_bytes(raw.tail_bytes);
        let zipfile = raw.adjusted();
        match &zipfile {
            Ok(dir) => {
                if dir.concat > 0 {
                    scan.finding(
                        Severity::Low,
                        "zip.prepended-data",
                        format!("{} bytes precede the zip archive", dir.concat),
                        Some(0),
                    );
                }
                walk(src, scan, dir, file_len);
            }
            Err(e) => scan.unreadable(Some(raw.records_end), e.clone()),
        }
        // PyTorch's reader (miniz) takes the recorded offsets as they are; when they
        // lead to another directory, that is what it loads.
        if zipfile.as_ref().is_ok_and(|dir| dir.start == raw.start) || !raw.has_directory(src) {
            return;
        }
        if zipfile.is_ok() {
            scan.finding(
                Severity::High,
                "zip.ambiguous-directory",
                format!(
                    "two central directories: zipfile reads the one at offset {}, PyTorch's reader the one at {}",
                    zipfile.as_ref().map_or(0, |d| d.start),
                    raw.start
                ),
                Some(raw.start),
            );
        }
        walk(src, scan, &raw, file_len);
    }
}

/// Whether a zip end-of-central-directory record sits at the end of `src` and points at
/// a central directory: how the scanner finds a zip behind unrecognised leading bytes.
pub fn has_central_directory(src: &mut dyn Source) -> bool {
    let Ok(file_len) = src.seek(SeekFrom::End(0)) else {
        return false;
    };
    let Ok(raw) = find_directory(src, file_len) else {
        return false;
    };
    raw.adjusted().is_ok_and(|dir| dir.has_directory(src)) || raw.has_directory(src)
}

const EOCD_SIG: &[u8; 4] = b"PK\x05\x06";
const EOCD_LEN: u64 = 22;
const LOCATOR_SIG: &[u8; 4] = b"PK\x06\x07";
const LOCATOR_LEN: u64 = 20;
const EOCD64_SIG: &[u8; 4] = b"PK\x06\x06";
const EOCD64_LEN: u64 = 56;
const CD_SIG: &[u8; 4] = b"PK\x01\x02";
const CD_LEN: usize = 46;
const LOCAL_SIG: &[u8; 4] = b"PK\x03\x04";
const LOCAL_LEN: usize = 30;
const COMMENT_MAX: u64 = 0xffff;

/// Where a central directory is: as recorded (PyTorch's miniz reader reads it there)
/// or, after [`Directory::adjusted`], as zipfile computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Directory {
    /// Absolute offset of the central directory.
    start: u64,
    /// Its declared size in bytes.
    size: u64,
    /// Entries the end record declares.
    entries: u64,
    /// Bytes before the archive proper, added to every offset (zipfile's `concat`);
    /// negative when the directory claims to sit later than it does.
    concat: i64,
    /// Bytes read from the tail to find all this.
    tail_bytes: u64,
    /// Where the end records (zip64 record, or the end record) begin.
    records_end: u64,
}

impl Directory {
    /// The directory as zipfile sees it: every offset shifted by the bytes that
    /// precede the archive (`concat`: where the directory ends minus where the end
    /// record says it ends).
    fn adjusted(&self) -> Result<Directory, String> {
        let claimed_end = self
            .start
            .checked_add(self.size)
            .ok_or("central directory offset overflows")?;
        let concat = i128::from(self.records_end) - i128::from(claimed_end);
        let start = u64::try_from(i128::from(self.start) + concat)
            .map_err(|_| "central directory would start before the file")?;
        Ok(Directory {
            start,
            concat: i64::try_from(concat).map_err(|_| "central directory offset out of range")?,
            ..*self
        })
    }

    /// Whether a central directory (or an empty one) is where this view says.
    fn has_directory(&self, src: &mut dyn Source) -> bool {
        self.size == 0 || read_at::<4>(src, self.start).is_ok_and(|sig| &sig == CD_SIG)
    }
}

/// How much of the end is read first: enough for the end record and a short
/// comment, which is what nearly every archive has.
const SHORT_TAIL: u64 = 1024;

fn find_directory(src: &mut dyn Source, file_len: u64) -> Result<Directory, String> {
    // The last record wins, as in zipfile and miniz: a fake one in the comment of a
    // real one is what the loader sees too. The last one in the short tail is the
    // last one in the file, so the whole comment range is read only without one.
    let mut found = None;
    for tail_len in [
        file_len.min(SHORT_TAIL),
        file_len.min(EOCD_LEN + COMMENT_MAX),
    ] {
        let tail_start = file_len - tail_len;
        let mut tail = Vec::with_capacity(usize::try_from(tail_len).unwrap_or(0));
        src.seek(SeekFrom::Start(tail_start))
            .and_then(|_| src.take(tail_len).read_to_end(&mut tail))
            .map_err(|e| format!("cannot read the end of the zip: {e}"))?;
        let last = tail.windows(4).rposition(|w| w == EOCD_SIG);
        found = Some((tail_len, tail_start, tail, last));
        if last.is_some() {
            break;
        }
    }
    let Some((tail_len, tail_start, tail, last)) = found else {
        return Err("no zip end-of-central-directory record".into());
    };
    let at = last
        .filter(|&at| tail.len() - at >= EOCD_LEN as usize)
        .ok_or("no zip end-of-central-directory record")?;
    let eocd = tail.get(at..).unwrap_or_default();
    let eocd_pos = tail_start + at as u64;
    let mut dir = Directory {
        entries: u64::from(le16(eocd, 10)),
        size: u64::from(le32(eocd, 12)),
        start: u64::from(le32(eocd, 16)),
        concat: 0,
        tail_bytes: tail_len,
        records_end: eocd_pos,
    };
    let mut records_end = eocd_pos;
    if let Some(locator_pos) = eocd_pos.checked_sub(LOCATOR_LEN)
        && read_at::<4>(src, locator_pos).is_ok_and(|sig| &sig == LOCATOR_SIG)
    {
        // zipfile reads the zip64 record right before the locator, not where the
        // locator says it is.
        let pos = locator_pos
            .checked_sub(EOCD64_LEN)
            .ok_or("zip64 end record would start before the file")?;
        let rec = read_at::<{ EOCD64_LEN as usize }>(src, pos)
            .map_err(|e| format!("cannot read the zip64 end record: {e}"))?;
        if rec.get(..4) != Some(EOCD64_SIG.as_slice()) {
            return Err(format!("corrupt zip64 end record at offset {pos}"));
        }
        dir.entries = le64(&rec, 32);
        dir.size = le64(&rec, 40);
        dir.start = le64(&rec, 48);
        records_end = pos;
        dir.tail_bytes += LOCATOR_LEN + EOCD64_LEN;
    }
    dir.records_end = records_end;
    Ok(dir)
}

/// One central directory record, with zip64 sizes applied and `concat` not yet added.
#[derive(Debug, Default)]
struct Entry {
    name_raw: Vec<u8>,
    name: String,
    flags: u16,
    method: u16,
    compressed: u64,
    uncompressed: u64,
    header_offset: u64,
    /// Made on Unix with the symlink file type: extractors that honour modes (unzip,
    /// shutil) create a link whose target is the entry's data.
    symlink: bool,
}

impl Entry {
    fn parse(fixed: &[u8], name_raw: Vec<u8>, extra: &[u8]) -> Entry {
        let mut e = Entry {
            name: String::from_utf8_lossy(&name_raw).into_owned(),
            name_raw,
            flags: le16(fixed, 8),
            method: le16(fixed, 10),
            compressed: u64::from(le32(fixed, 20)),
            uncompressed: u64::from(le32(fixed, 24)),
            header_offset: u64::from(le32(fixed, 42)),
            symlink: le16(fixed, 4) >> 8 == 3 && (le32(fixed, 38) >> 16) & 0o170000 == 0o120000,
        };
        e.apply_zip64(extra);
        e
    }

    /// zipfile reads the zip64 extra's fields in this order, each only when the
    /// 32-bit field is saturated.
    fn apply_zip64(&mut self, mut extra: &[u8]) {
        while extra.len() >= 4 {
            let (id, len) = (le16(extra, 0), usize::from(le16(extra, 2)));
            let body = extra.get(4..4 + len).unwrap_or_default();
            if id == 1 {
                let mut values = body.chunks_exact(8).map(|c| le64(c, 0));
                for field in [
                    &mut self.uncompressed,
                    &mut self.compressed,
                    &mut self.header_offset,
                ] {
                    if *field == 0xffff_ffff
                        && let Some(v) = values.next()
                    {
                        *field = v;
                    }
                }
                return;
            }
            extra = extra.get(4 + len..).unwrap_or_default();
        }
    }

    fn encrypted(&self) -> bool {
        self.flags & 1 != 0 || self.method == 99
    }
}

/// How a walk of the central directory ended.
struct Walked {
    /// Records read.
    count: u64,
    /// Where the walk stopped.
    pos: u64,
    /// Why it stopped before the directory's end, if it did.
    stopped: Option<String>,
}

/// Calls `each` with every central directory record (index, entry, record length) in
/// order, as zipfile walks them: by the directory's size, not its declared count.
/// Stops early when `each` returns false.
fn each_entry(
    src: &mut dyn Source,
    dir: &Directory,
    entries_max: u64,
    mut each: impl FnMut(&mut dyn Source, u64, &Entry, u64) -> bool,
) -> Walked {
    let end = dir.start.saturating_add(dir.size);
    let mut walked = Walked {
        count: 0,
        pos: dir.start,
        stopped: None,
    };
    while walked.pos < end {
        if walked.count >= entries_max {
            walked.stopped = Some(format!(
                "more than {entries_max} entries (limits.archive_entries_max)"
            ));
            break;
        }
        let (entry, len) = match read_entry(src, walked.pos) {
            Ok(found) => found,
            Err(e) => {
                walked.stopped = Some(e);
                break;
            }
        };
        let index = walked.count;
        walked.count += 1;
        walked.pos = walked.pos.saturating_add(len);
        if !each(src, index, &entry, len) {
            break;
        }
    }
    walked
}

fn walk(src: &mut dyn Source, scan: &mut Scan<'_>, dir: &Directory, file_len: u64) {
    let end = dir.start.saturating_add(dir.size);
    if end > file_len {
        scan.unreadable(
            Some(dir.start),
            format!("central directory runs past the end of the file ({end} > {file_len})"),
        );
    }
    let entries_max = scan.limits().archive_entries_max;
    let mut state = State {
        concat: dir.concat,
        file_len,
        names: HashSet::new(),
        overlapping: survey(src, scan, dir, entries_max),
    };
    let walked = each_entry(src, dir, entries_max, |src, index, entry, len| {
        scan.count_bytes(len);
        scan_entry(src, scan, &mut state, index, entry)
    });
    if let Some(why) = walked.stopped {
        scan.unreadable(Some(walked.pos), why);
    } else if walked.count != dir.entries && walked.pos >= end {
        scan.finding(
            Severity::Low,
            "zip.header-mismatch",
            format!(
                "end record declares {} entries, the central directory holds {}",
                dir.entries, walked.count
            ),
            None,
        );
    }
}

/// First pass: where every entry's bytes lie (local header to end of data). Reports
/// overlapping entries and returns their indexes, so that the second pass does not
/// descend into archives they hold: overlap is how quines and overlap bombs multiply
/// a small file into unbounded nested work.
fn survey(
    src: &mut dyn Source,
    scan: &mut Scan<'_>,
    dir: &Directory,
    entries_max: u64,
) -> HashSet<u64> {
    let mut spans = Vec::new();
    each_entry(src, dir, entries_max, |src, index, entry, _| {
        if let Some(header) = entry.header_offset.checked_add_signed(dir.concat)
            && let Ok(fixed) = read_at::<LOCAL_LEN>(src, header)
        {
            let data = header
                + LOCAL_LEN as u64
                + u64::from(le16(&fixed, 26))
                + u64::from(le16(&fixed, 28));
            spans.push((
                header,
                data.saturating_add(entry.compressed),
                index,
                truncate(&entry.name),
            ));
        }
        true
    });
    report_overlaps(scan, &mut spans)
}

/// Reads the central directory record at `pos`: the entry and the record's length.
fn read_entry(src: &mut dyn Source, pos: u64) -> Result<(Entry, u64), String> {
    let fixed =
        read_at::<CD_LEN>(src, pos).map_err(|e| format!("central directory truncated: {e}"))?;
    if fixed.get(..4) != Some(CD_SIG.as_slice()) {
        return Err("bad central directory record signature".to_owned());
    }
    let (n, m, k) = (le16(&fixed, 28), le16(&fixed, 30), le16(&fixed, 32));
    let mut name = vec![0; usize::from(n)];
    let mut extra = vec![0; usize::from(m)];
    src.read_exact(&mut name)
        .and_then(|()| src.read_exact(&mut extra))
        .map_err(|e| format!("central directory record truncated: {e}"))?;
    let len = CD_LEN as u64 + u64::from(n) + u64::from(m) + u64::from(k);
    Ok((Entry::parse(&fixed, name, &extra), len))
}

/// What the scanning pass carries from entry to entry.
struct State {
    /// Bytes prepended to the archive, added to every offset.
    concat: i64,
    file_len: u64,
    /// Hashes of the names seen so far, as the loader compares them.
    names: HashSet<u64>,
    /// Indexes of entries whose bytes overlap another entry's.
    overlapping: HashSet<u64>,
}

/// Reports a name seen before: loaders disagree on which of the two they open.
fn check_duplicate(scan: &mut Scan<'_>, names: &mut HashSet<u64>, entry: &Entry) {
    // zipfile cuts names at the first NUL, so "a\0x" and "a\0y" are both "a" to it.
    let loader_name = entry.name_raw.split(|&b| b == 0).next().unwrap_or_default();
    let mut hasher = DefaultHasher::new();
    loader_name.hash(&mut hasher);
    if !names.insert(hasher.finish()) {
        scan.finding(
            Severity::High,
            "zip.duplicate-name",
            format!(
                "entry name {:?} appears more than once; loaders disagree on which they open",
                entry.name
            ),
            None,
        );
    }
}

/// Checks and scans one entry; false once the decompressed budget is spent.
fn scan_entry(
    src: &mut dyn Source,
    scan: &mut Scan<'_>,
    state: &mut State,
    index: u64,
    entry: &Entry,
) -> bool {
    let name = entry.name.as_str();
    check_path(scan, name, None);
    check_duplicate(scan, &mut state.names, entry);
    let file_len = state.file_len;
    let Some(header) = entry.header_offset.checked_add_signed(state.concat) else {
        scan.unreadable(
            None,
            format!("entry {name:?}: local header offset out of range"),
        );
        return true;
    };
    let data_start = match read_local(src, scan, entry, header) {
        Ok(start) => start,
        Err(e) => {
            scan.unreadable(Some(header), format!("entry {name:?}: {e}"));
            return true;
        }
    };
    let data_end = data_start.saturating_add(entry.compressed);
    if data_end > file_len {
        scan.finding(
            Severity::Medium,
            "zip.outside-file",
            format!("entry {name:?} claims data up to offset {data_end}, past the end of the file ({file_len})"),
            Some(data_start),
        );
        scan.unreadable(Some(file_len), format!("entry {name:?} is truncated"));
    }
    if entry.encrypted() && !report_encrypted(scan, entry, header) {
        return true;
    }
    let available = data_end.min(file_len).saturating_sub(data_start);
    if entry.symlink {
        report_symlink(src, scan, entry, data_start, available);
        return true;
    }
    if entry.compressed == 0 && entry.uncompressed == 0 {
        return true;
    }
    let overlaps = state.overlapping.contains(&index);
    decode(src, scan, entry, data_start, available, overlaps)
}

/// Reports an entry flagged as encrypted; true when its bytes should be scanned
/// anyway. Only AES (method 99) is surely ciphertext: PyTorch's reader ignores the
/// traditional encryption flag (GHSA-w8jq-xcqf-f792), so a flagged entry may hold a
/// clear payload that the loader reads and a flag-respecting scanner would skip. A
/// stored one is read as is (HIGH); a compressed one decodes only if it is in clear.
fn report_encrypted(scan: &mut Scan<'_>, entry: &Entry, header: u64) -> bool {
    let name = entry.name.as_str();
    if entry.method == 99 {
        scan.finding(
            Severity::Medium,
            "zip.encrypted",
            format!("entry {name:?} is AES-encrypted and cannot be scanned"),
            Some(header),
        );
        scan.unreadable(Some(header), format!("entry {name:?} is encrypted"));
        return false;
    }
    let (severity, how) = if entry.method == 0 {
        (Severity::High, "stored")
    } else {
        (Severity::Medium, "compressed")
    };
    scan.finding(
        severity,
        "zip.encrypted",
        format!(
            "entry {name:?} has the encryption flag set but is {how}: loaders that ignore \
             the flag (PyTorch) read its bytes as they are; scanned anyway"
        ),
        Some(header),
    );
    true
}

/// Reads the local header at `header` as zipfile does: signature, name and extra
/// lengths; reports fields that disagree with the central directory. Returns the
/// offset of the entry's data.
fn read_local(
    src: &mut dyn Source,
    scan: &mut Scan<'_>,
    entry: &Entry,
    header: u64,
) -> Result<u64, String> {
    let fixed = read_at::<LOCAL_LEN>(src, header).map_err(|e| format!("no local header: {e}"))?;
    if fixed.get(..4) != Some(LOCAL_SIG.as_slice()) {
        return Err("bad local header signature".to_owned());
    }
    let (n, m) = (le16(&fixed, 26), le16(&fixed, 28));
    let mut local_name = vec![0; usize::from(n)];
    src.read_exact(&mut local_name)
        .map_err(|e| format!("local header truncated: {e}"))?;
    scan.count_bytes(LOCAL_LEN as u64 + u64::from(n));
    if local_name != entry.name_raw {
        scan.finding(
            Severity::High,
            "zip.header-mismatch",
            format!(
                "entry {:?} has local header name {:?}: readers that trust local headers see another file",
                entry.name,
                String::from_utf8_lossy(&local_name)
            ),
            Some(header),
        );
    }
    let (flags, method) = (le16(&fixed, 6), le16(&fixed, 8));
    if method != entry.method || (flags & 1) != (entry.flags & 1) {
        scan.finding(
            Severity::Medium,
            "zip.header-mismatch",
            format!(
                "entry {:?}: local header says method {method} flags {flags:#x}, central directory method {} flags {:#x}",
                entry.name, entry.method, entry.flags
            ),
            Some(header),
        );
    }
    Ok(header + LOCAL_LEN as u64 + u64::from(n) + u64::from(m))
}

/// Scans an entry's data by its compression method; false once the budget is spent.
fn decode(
    src: &mut dyn Source,
    scan: &mut Scan<'_>,
    entry: &Entry,
    start: u64,
    len: u64,
    overlaps: bool,
) -> bool {
    let name = entry.name.as_str();
    if overlaps && holds_archive(src, scan, entry, start, len) {
        scan.unreadable(
            Some(start),
            format!(
                "entry {name:?} overlaps another entry and holds an archive; not descended into"
            ),
        );
        return true;
    }
    if entry.method == 0 {
        scan.member_seekable(name, &mut Window::new(src, start, len));
        return true;
    }
    match open(src, scan, entry, start, len) {
        Ok(mut reader) => {
            let declared = Some(entry.uncompressed);
            scan_decoded(
                scan,
                name,
                &mut reader,
                Compressed::Known(len),
                declared,
                false,
            )
        }
        Err(e) => {
            scan.unreadable(Some(start), format!("entry {name:?}: {e}"));
            true
        }
    }
}

/// Reports a symlink entry, naming its target (its data, of which the first
/// `string_bytes_max` bytes are read).
fn report_symlink(src: &mut dyn Source, scan: &mut Scan<'_>, entry: &Entry, start: u64, len: u64) {
    let max = scan.limits().string_bytes_max as u64;
    let mut target = Vec::new();
    let read = open(src, scan, entry, start, len).and_then(|r| {
        r.take(max)
            .read_to_end(&mut target)
            .map_err(|e| e.to_string())
    });
    let name = entry.name.as_str();
    if let Err(e) = read {
        return scan.unreadable(Some(start), format!("symlink entry {name:?}: {e}"));
    }
    let target = String::from_utf8_lossy(&target);
    if link_escapes(name, &target) {
        scan.finding(
            Severity::High,
            "archive.link-escape",
            format!("member {name} is a symlink to {target}, outside the extraction directory"),
            Some(start),
        );
    } else {
        scan.finding(
            Severity::Low,
            "archive.link",
            format!("member {name} is a symlink to {target}"),
            Some(start),
        );
    }
}

/// The entry's data, decoded.
fn open<'a>(
    src: &'a mut dyn Source,
    scan: &Scan<'_>,
    entry: &Entry,
    start: u64,
    len: u64,
) -> Result<Box<dyn Read + 'a>, String> {
    let window = Window::new(src, start, len);
    Ok(match entry.method {
        0 => Box::new(window),
        8 => Box::new(DeflateDecoder::new(window)),
        12 => Box::new(bzip2::read::MultiBzDecoder::new(window)),
        14 => Box::new(zip_lzma(window, entry.uncompressed, scan)?),
        93 => Box::new(zstd(window, scan)?),
        method => return Err(format!("compression method {method} is not supported")),
    })
}

/// Whether the entry's data starts like an archive or compressed stream.
fn holds_archive(
    src: &mut dyn Source,
    scan: &Scan<'_>,
    entry: &Entry,
    start: u64,
    len: u64,
) -> bool {
    let mut head = Vec::new();
    let read = open(src, scan, entry, start, len).and_then(|r| {
        r.take(SNIFF_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(|e| e.to_string())
    });
    let format = match read {
        Ok(_) => detect(&head),
        Err(_) => Format::Unknown,
    };
    match format {
        Format::Zip | Format::Tar | Format::Gzip | Format::Zlib | Format::Zstd => true,
        Format::SevenZip | Format::Bzip2 | Format::Xz | Format::Lzma => true,
        Format::Unknown => {
            entry.method == 0 && has_central_directory(&mut Window::new(src, start, len))
        }
        _ => false,
    }
}

/// Reports entries whose bytes overlap another's (a legitimate writer never does
/// this; overlap is how overlap bombs and "two names, one payload" tricks are built)
/// and returns the indexes of all entries involved.
fn report_overlaps(scan: &mut Scan<'_>, spans: &mut [(u64, u64, u64, String)]) -> HashSet<u64> {
    spans.sort_unstable_by_key(|s| (s.0, s.1));
    let mut furthest: Option<(u64, u64, &str)> = None;
    let mut overlapping = HashSet::new();
    let mut example = None;
    for (start, end, index, name) in spans.iter() {
        if let Some((prev_end, prev_index, prev)) = furthest
            && *start < prev_end
        {
            overlapping.insert(*index);
            overlapping.insert(prev_index);
            example.get_or_insert_with(|| format!("{name:?} overlaps {prev:?}"));
        }
        if furthest.is_none_or(|(e, _, _)| *end > e) {
            furthest = Some((*end, *index, name));
        }
    }
    if let Some(example) = example {
        scan.finding(
            Severity::Medium,
            "zip.overlap",
            format!(
                "{} entries overlap others, e.g. {example}",
                overlapping.len()
            ),
            None,
        );
    }
    overlapping
}

/// Entry names kept for later messages are cut short: memory stays bounded by the
/// entry count, not by what the names claim.
fn truncate(name: &str) -> String {
    name.chars().take(128).collect()
}

fn read_at<const N: usize>(src: &mut dyn Source, pos: u64) -> std::io::Result<[u8; N]> {
    let mut buf = [0; N];
    src.seek(SeekFrom::Start(pos))?;
    src.read_exact(&mut buf)?;
    Ok(buf)
}

fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_le_bytes)
}

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;
    use crate::Limits;
    use crate::archive::testing::{PROBE, dispatched, rules, scan, scan_with};

    /// One entry of a hand-built zip.
    #[derive(Clone)]
    pub(crate) struct E {
        name: &'static str,
        data: Vec<u8>,
        method: u16,
        flags: u16,
        local_name: Option<&'static str>,
        offset: Option<u32>,
        unix_mode: Option<u32>,
        /// Declared uncompressed size; `None` declares the stored bytes' length.
        uncompressed: Option<u32>,
    }

    pub(crate) fn stored(name: &'static str, data: &[u8]) -> E {
        E {
            name,
            data: data.to_vec(),
            method: 0,
            flags: 0,
            local_name: None,
            offset: None,
            unix_mode: None,
            uncompressed: None,
        }
    }

    fn deflated(name: &'static str, data: &[u8]) -> E {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        E {
            method: 8,
            data: enc.finish().unwrap(),
            uncompressed: Some(data.len() as u32),
            ..stored(name, data)
        }
    }

    fn u16le(out: &mut Vec<u8>, v: u16) {
        out.extend_from_slice(&v.to_le_bytes());
    }

    fn u32le(out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&v.to_le_bytes());
    }

    /// A zip of `entries` after `prefix` (offsets relative to the archive, as a
    /// writer that does not know about the prefix records them), optionally with a
    /// zip64 end record.
    fn zip_with(prefix: &[u8], entries: &[E], zip64: bool) -> Vec<u8> {
        let mut body = Vec::new();
        let mut offsets = Vec::new();
        for e in entries {
            offsets.push(body.len() as u32);
            let name = e.local_name.unwrap_or(e.name);
            body.extend_from_slice(LOCAL_SIG);
            for v in [20, e.flags, e.method, 0, 0] {
                u16le(&mut body, v);
            }
            let size = e.uncompressed.unwrap_or(e.data.len() as u32);
            for v in [0, e.data.len() as u32, size] {
                u32le(&mut body, v);
            }
            u16le(&mut body, name.len() as u16);
            u16le(&mut body, 0);
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(&e.data);
        }
        let cd_start = body.len() as u32;
        for (e, offset) in entries.iter().zip(offsets) {
            body.extend_from_slice(CD_SIG);
            let made_by = if e.unix_mode.is_some() { 0x31e } else { 20 };
            for v in [made_by, 20, e.flags, e.method, 0, 0] {
                u16le(&mut body, v);
            }
            let size = e.uncompressed.unwrap_or(e.data.len() as u32);
            for v in [0, e.data.len() as u32, size] {
                u32le(&mut body, v);
            }
            for v in [e.name.len() as u16, 0, 0, 0, 0] {
                u16le(&mut body, v);
            }
            u32le(&mut body, e.unix_mode.unwrap_or(0) << 16);
            u32le(&mut body, e.offset.unwrap_or(offset));
            body.extend_from_slice(e.name.as_bytes());
        }
        let cd_size = body.len() as u32 - cd_start;
        let count = entries.len() as u16;
        if zip64 {
            let eocd64_at = body.len() as u64;
            body.extend_from_slice(EOCD64_SIG);
            body.extend_from_slice(&44u64.to_le_bytes());
            for v in [45, 45] {
                u16le(&mut body, v);
            }
            u32le(&mut body, 0);
            u32le(&mut body, 0);
            for v in [
                u64::from(count),
                u64::from(count),
                u64::from(cd_size),
                u64::from(cd_start),
            ] {
                body.extend_from_slice(&v.to_le_bytes());
            }
            body.extend_from_slice(LOCATOR_SIG);
            u32le(&mut body, 0);
            body.extend_from_slice(&eocd64_at.to_le_bytes());
            u32le(&mut body, 1);
        }
        body.extend_from_slice(EOCD_SIG);
        for v in [0, 0, count, count] {
            u16le(&mut body, v);
        }
        let (size, start) = if zip64 {
            (u32::MAX, u32::MAX)
        } else {
            (cd_size, cd_start)
        };
        u32le(&mut body, size);
        u32le(&mut body, start);
        u16le(&mut body, 0);
        [prefix, &body].concat()
    }

    pub(crate) fn zip(entries: &[E]) -> Vec<u8> {
        zip_with(b"", entries, false)
    }

    fn unreadable_says(report: &crate::Report, what: &str) -> bool {
        report.unreadable.iter().any(|u| u.reason.contains(what))
    }

    /// Scans `bytes` and checks the members dispatched and the rules fired.
    fn check(bytes: &[u8], limits: Limits, members: &[&str], findings: &[&str]) {
        let report = scan_with(bytes, limits);
        assert_eq!(report.format, Format::Zip, "{report:#?}");
        assert_eq!(dispatched(&report), members, "{report:#?}");
        assert_eq!(rules(&report), findings, "{report:#?}");
    }

    #[test]
    fn entries_are_dispatched_and_tricks_reported() {
        let inner = zip(&[stored("data.pkl", PROBE)]);
        let encrypted = E {
            flags: 1,
            ..stored("secret.pkl", PROBE)
        };
        let aes = E {
            flags: 1,
            method: 99,
            ..stored("aes.pkl", PROBE)
        };
        let renamed = E {
            local_name: Some("other.pkl"),
            ..stored("data.pkl", PROBE)
        };
        let aliased = E {
            offset: Some(0),
            local_name: Some("a"),
            ..stored("b", PROBE)
        };
        let link = |name, target: &'static str| E {
            unix_mode: Some(0o120777),
            ..stored(name, target.as_bytes())
        };
        let cases: Vec<(Vec<u8>, &[&str], &[&str])> = vec![
            (zip(&[stored("data.pkl", PROBE)]), &["data.pkl"], &[]),
            (
                zip(&[link("a/l", "../../etc/passwd"), link("a/m", "../b")]),
                &[],
                &["archive.link-escape", "archive.link"],
            ),
            (
                zip(&[deflated("archive/data.pkl", PROBE)]),
                &["archive/data.pkl"],
                &[],
            ),
            (zip(&[stored("dir/", b""), stored("x", b"noise")]), &[], &[]),
            (zip(&[stored("in.zip", &inner)]), &["in.zip!/data.pkl"], &[]),
            (
                zip(&[deflated("in.zip", &inner)]),
                &["in.zip!/data.pkl"],
                &[],
            ),
            (
                zip(&[stored("../../etc/passwd", PROBE)]),
                &["../../etc/passwd"],
                &["archive.path-traversal"],
            ),
            (
                zip(&[stored("C:\\x", b"1"), stored("/abs", b"2")]),
                &[],
                &["archive.path-traversal", "archive.path-traversal"],
            ),
            (
                zip(&[stored("a", PROBE), stored("a", PROBE)]),
                &["a", "a"],
                &["zip.duplicate-name"],
            ),
            (
                zip(&[stored("a\0x", PROBE), stored("a\0y", PROBE)]),
                &["a\0x", "a\0y"],
                &["zip.duplicate-name"],
            ),
            (zip(&[renamed]), &["data.pkl"], &["zip.header-mismatch"]),
            (zip(&[encrypted]), &["secret.pkl"], &["zip.encrypted"]),
            (zip(&[aes]), &[], &["zip.encrypted"]),
            (
                zip(&[stored("a", PROBE), aliased]),
                &["a", "b"],
                &["zip.overlap", "zip.header-mismatch"],
            ),
            (
                zip_with(b"#!/bin/sh\nexit 0\n", &[stored("data.pkl", PROBE)], false),
                &["data.pkl"],
                &["zip.prepended-data"],
            ),
            (
                zip_with(b"", &[stored("data.pkl", PROBE)], true),
                &["data.pkl"],
                &[],
            ),
        ];
        for (bytes, members, findings) in cases {
            check(&bytes, Limits::default(), members, findings);
        }
    }

    #[test]
    fn limits_are_reported() {
        let three = zip(&[stored("a", PROBE), stored("b", PROBE), stored("c", PROBE)]);
        let few = Limits {
            archive_entries_max: 2,
            ..Limits::default()
        };
        check(&three, few.clone(), &["a", "b"], &[]);
        let report = scan_with(&three, few);
        assert!(unreadable_says(&report, "limits.archive_entries_max"));
        assert_eq!(report.unread_parts(), 1, "a limit leaves entries unread");
        assert_eq!(report.unreadable[0].kind, crate::UnreadKind::Limit);

        let nested = zip(&[stored(
            "1.zip",
            &zip(&[stored("2.zip", &zip(&[stored("p", PROBE)]))]),
        )]);
        let shallow = Limits {
            archive_depth_max: 2,
            ..Limits::default()
        };
        check(&nested, shallow.clone(), &[], &[]);
        assert!(unreadable_says(
            &scan_with(&nested, shallow),
            "limits.archive_depth_max"
        ));
        check(&nested, Limits::default(), &["1.zip!/2.zip!/p"], &[]);

        // A zip inside a deflated entry is spooled, so the whole entry is decoded: the
        // streaming check catches the bomb even when the directory lies about its size.
        let zeros = vec![0u8; 8 << 20];
        let in_zip = zip(&[stored("zeros", &zeros)]);
        let lying = E {
            uncompressed: None,
            ..deflated("in.zip", &in_zip)
        };
        let strict = Limits {
            compression_ratio_max: 100,
            ..Limits::default()
        };
        check(&zip(&[lying]), strict.clone(), &[], &["archive.bomb"]);
        // Unrecognised data is only sniffed, never decoded in full: the declared sizes
        // give the bomb away. One finding per member, even when both checks fire.
        let sniffed = zip(&[deflated("zeros", &zeros), stored("p", PROBE)]);
        check(&sniffed, strict.clone(), &["p"], &["archive.bomb"]);
        check(
            &zip(&[deflated("in.zip", &in_zip)]),
            strict,
            &[],
            &["archive.bomb"],
        );
        check(&sniffed, Limits::default(), &["p"], &[]);
    }

    #[test]
    fn both_loaders_views_of_the_directory_are_scanned() {
        // Same-sized entries put both directories at the same offset of their archives:
        // the recorded offset leads miniz to the first, zipfile's adjusted one to the
        // second.
        let hidden = zip(&[stored("evil", PROBE)]);
        let shown = zip(&[stored("good", &vec![b'.'; PROBE.len()])]);
        let report = scan(&[hidden.clone(), shown].concat());
        assert_eq!(dispatched(&report), ["evil"], "{report:#?}");
        assert_eq!(
            rules(&report),
            ["zip.prepended-data", "zip.ambiguous-directory"]
        );
    }

    #[test]
    fn overlapping_archives_are_not_descended_into() {
        let inner = zip(&[stored("p", PROBE)]);
        let alias = E {
            offset: Some(0),
            local_name: Some("x"),
            ..stored("y", &inner)
        };
        let bytes = zip(&[stored("x", &inner), alias]);
        let report = scan(&bytes);
        assert_eq!(dispatched(&report), Vec::<String>::new(), "{report:#?}");
        assert_eq!(rules(&report), ["zip.overlap", "zip.header-mismatch"]);
        let skipped = report
            .unreadable
            .iter()
            .filter(|u| u.reason.contains("not descended"));
        assert_eq!(skipped.count(), 2, "{report:#?}");
    }

    #[test]
    fn broken_archives_are_unreadable_not_fatal() {
        let good = zip(&[stored("a", PROBE), stored("b", &[7u8; 4096])]);
        let mut truncated = good.clone();
        truncated.truncate(good.len() - 10);
        let mut odd_method = zip(&[stored("a", PROBE)]);
        odd_method[8] = 9; // local method
        let cd = odd_method.len() - 22 - 47;
        odd_method[cd + 10] = 9; // central method: deflate64
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (odd_method, "compression method 9"),
            (
                b"PK\x03\x04 no directory".to_vec(),
                "no zip end-of-central-directory",
            ),
        ];
        for (bytes, reason) in cases {
            let report = scan(&bytes);
            assert!(
                report.unreadable.iter().any(|u| u.reason.contains(reason)),
                "{reason}: {report:#?}"
            );
        }
        // Data claimed past the end: the part that is there is still scanned.
        let mut short = zip(&[stored("a", &[PROBE, &[0u8; 100]].concat())]);
        let eocd = short.split_off(short.len() - 22);
        let cd = short.split_off(short.len() - 47);
        short.truncate(short.len() - 50);
        let cut = [short.clone(), cd, eocd].concat();
        let report = scan(&cut);
        assert!(
            rules(&report).contains(&"zip.overlap".to_owned()) || !report.unreadable.is_empty()
        );
    }

    #[test]
    fn a_large_stored_tensor_is_skipped_not_read() {
        let tensor = vec![0x3fu8; 32 << 20];
        let bytes = zip(&[
            stored("archive/data.pkl", PROBE),
            stored("archive/data/0", &tensor),
        ]);
        let report = scan(&bytes);
        assert_eq!(dispatched(&report), ["archive/data.pkl"]);
        // The end of the file searched for the end record, the headers and no more.
        assert!(report.bytes_scanned < 70_000, "{}", report.bytes_scanned);
    }

    #[test]
    fn the_end_record_is_found_before_a_long_comment() {
        // Past the short tail: found by reading the whole comment range.
        let mut bytes = zip(&[stored("data.pkl", PROBE)]);
        let comment = vec![b'c'; 5000];
        let len = bytes.len();
        bytes[len - 2..].copy_from_slice(&(comment.len() as u16).to_le_bytes());
        bytes.extend_from_slice(&comment);
        let report = scan(&bytes);
        assert_eq!(report.format, Format::Zip, "{report:#?}");
        assert_eq!(dispatched(&report), ["data.pkl"], "{report:#?}");
        assert!(report.unreadable.is_empty(), "{report:#?}");
    }

    #[test]
    fn central_directory_is_found_behind_unknown_bytes() {
        let mut cursor = std::io::Cursor::new(zip_with(b"??", &[stored("a", PROBE)], false));
        assert!(has_central_directory(&mut cursor));
        let mut noise = std::io::Cursor::new(b"PK\x05\x06 but nothing else".to_vec());
        assert!(!has_central_directory(&mut noise));
    }
}
