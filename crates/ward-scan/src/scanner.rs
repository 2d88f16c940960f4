//! The scanner: limits, the per-scan context analysers report into, and dispatch by
//! recognised format.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::detect::{Format, SNIFF_BYTES, detect};
use crate::input::{ForwardOnly, Source};
use crate::report::{Finding, Location, Report, Severity, UnreadKind, Unreadable};
use crate::{RULESET_VERSION, archive, formats, pickle};

/// Every bound the scanner keeps. Crossing one is reported as [`Unreadable`] (and, for
/// archive bombs, as a finding); the scan of the rest goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Members read from one archive.
    pub archive_entries_max: u64,
    /// Archives nested inside archives (the file itself is depth 0).
    pub archive_depth_max: u32,
    /// Bytes decompressed over the whole scan, all members together.
    pub decompressed_bytes_max: u64,
    /// Decompressed / compressed size of one member beyond which it is a bomb.
    pub compression_ratio_max: u64,
    /// Decompressed bytes of one member below which its ratio is not judged: a few
    /// kilobytes of zeros legitimately compress a thousandfold.
    pub compression_ratio_exempt_bytes: u64,
    /// Memory one decoder may use for its window or dictionary (zstd window, LZMA/xz
    /// dictionary, 7z headers); streams that declare more are not decoded.
    pub decoder_memory_bytes_max: u64,
    /// Values on the pickle analyser's stack (including marks).
    pub pickle_stack_max: usize,
    /// Separate runs of consecutive memo indexes a pickle stores (Python stores one);
    /// a pickle that fragments its memo further is reported unreadable.
    pub pickle_memo_ranges_max: usize,
    /// Pickle memo entries kept because they may be judged later: globals, modules,
    /// dtypes, array wrappers and tuples holding them, and strings that named a global.
    /// Later ones are dropped (a memo reference to one is judged as a callable
    /// computed at load time) and reported once per pickle as INFO.
    pub pickle_memo_globals_max: usize,
    /// Estimated bytes of other pickle memo entries kept (strings that could be names,
    /// small tuples, tracked dicts); the oldest are evicted past it, so memory stays
    /// flat whatever the pickle size.
    pub pickle_memo_kept_bytes_max: u64,
    /// Opcodes read from one pickle stream (all concatenated pickles together).
    pub pickle_ops_max: u64,
    /// Tuples nested inside tuples that the pickle analyser tracks value by value;
    /// deeper tuples are kept only as opaque containers.
    pub pickle_nesting_max: u32,
    /// Bytes of strings longer than a few bytes the pickle analyser keeps per pickle
    /// (they may become names); later strings are kept only as "some string", so memory
    /// stays bounded whatever the pickle holds.
    pub pickle_kept_string_bytes_max: u64,
    /// Bytes of one string the analysers keep; longer strings are judged by their
    /// first bytes and their length.
    pub string_bytes_max: usize,
    /// Bytes of one structured header (safetensors JSON header, GGUF metadata value,
    /// Keras config, protocol buffer message) the analysers parse.
    pub header_bytes_max: u64,
    /// Bytes of one non-seekable member copied to a temporary file so that a format
    /// needing random access (a zip inside a gzip) can be read.
    pub spool_bytes_max: u64,
    /// Findings kept per scan; the rest are counted in one final finding.
    pub findings_max: usize,
    /// Nesting depth of protocol buffer messages (ONNX subgraphs, SavedModel
    /// functions) and JSON values (Keras configs) the analysers descend into.
    pub nesting_depth_max: u32,
    /// Metadata entries read from one GGUF header, and items of one GGUF array.
    pub gguf_items_max: u64,
    /// HDF5 object header blocks (first block plus continuations) read for one object.
    pub hdf5_header_blocks_max: u32,
    /// Objects walked in one HDF5 global heap collection to find a string.
    pub hdf5_heap_objects_max: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            archive_entries_max: 100_000,
            archive_depth_max: 8,
            decompressed_bytes_max: 64 << 30,
            compression_ratio_max: 1_000,
            compression_ratio_exempt_bytes: 1 << 20,
            decoder_memory_bytes_max: 256 << 20,
            pickle_stack_max: 1 << 20,
            pickle_memo_ranges_max: 4096,
            pickle_memo_globals_max: 1 << 16,
            pickle_memo_kept_bytes_max: 4 << 20,
            pickle_ops_max: 1 << 30,
            pickle_nesting_max: 32,
            pickle_kept_string_bytes_max: 64 << 20,
            string_bytes_max: 64 << 10,
            header_bytes_max: 64 << 20,
            spool_bytes_max: 16 << 30,
            findings_max: 1_000,
            nesting_depth_max: 64,
            gguf_items_max: 1 << 24,
            hdf5_header_blocks_max: 256,
            hdf5_heap_objects_max: 1 << 20,
        }
    }
}

/// One analyser per format (STYLE: one trait, one module per format).
pub trait Analyzer: Sync {
    /// The format this analyser reads.
    fn format(&self) -> Format;

    /// Whether it needs random access. Non-seekable members are spooled to a temporary
    /// file (bounded by [`Limits::spool_bytes_max`]) before such an analyser runs;
    /// others get a [`ForwardOnly`] stream.
    fn needs_seek(&self) -> bool {
        false
    }

    /// Reads `src` from its start, reporting into `scan`. Never panics and never bails
    /// on bad input: what cannot be read is reported with [`Scan::unreadable`].
    fn analyse(&self, src: &mut dyn Source, scan: &mut Scan<'_>);
}

/// The analyser for a format, or `None` for [`Format::Unknown`].
fn analyzer(format: Format) -> Option<&'static dyn Analyzer> {
    Some(match format {
        Format::Pickle => &pickle::PickleAnalyzer,
        Format::Zip => &archive::zip::ZipAnalyzer,
        Format::Tar => &archive::tar::TarAnalyzer,
        Format::Gzip => &archive::compress::GzipAnalyzer,
        Format::Zlib => &archive::compress::ZlibAnalyzer,
        Format::Zstd => &archive::compress::ZstdAnalyzer,
        Format::SevenZip => &archive::sevenz::SevenZipAnalyzer,
        Format::Bzip2 => &archive::compress::Bzip2Analyzer,
        Format::Xz => &archive::compress::XzAnalyzer,
        Format::Lzma => &archive::compress::LzmaAnalyzer,
        Format::Lz4 => &archive::compress::Lz4Analyzer,
        Format::Numpy => &formats::numpy::NumpyAnalyzer,
        Format::Hdf5 => &formats::keras::H5Analyzer,
        Format::Json => &formats::keras::JsonConfigAnalyzer,
        Format::SavedModel => &formats::savedmodel::SavedModelAnalyzer,
        Format::Onnx => &formats::onnx::OnnxAnalyzer,
        Format::Gguf => &formats::gguf::GgufAnalyzer,
        Format::Safetensors => &formats::safetensors::SafetensorsAnalyzer,
        Format::Unknown => return None,
    })
}

/// A configured scanner. Cheap to clone; one per process is enough.
#[derive(Debug, Clone, Default)]
pub struct Scanner {
    limits: Limits,
}

impl Scanner {
    /// A scanner with these limits.
    pub fn new(limits: Limits) -> Self {
        Scanner { limits }
    }

    /// Its limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Scans one seekable input from its start.
    pub fn scan(&self, src: &mut dyn Source) -> Report {
        let mut scan = Scan::new(self);
        let format = scan.dispatch_seekable(src);
        scan.finish(format)
    }

    /// Scans a file, or every regular file under a directory (symlinks are not
    /// followed), in path order. A file that cannot be opened gets a report whose
    /// `unreadable` says why.
    pub fn scan_path(&self, path: &Path) -> Vec<(PathBuf, Report)> {
        let mut files = Vec::new();
        collect_files(path, &mut files, self.limits.archive_entries_max);
        files
            .into_iter()
            .map(|file| {
                let report = match std::fs::File::open(&file) {
                    Ok(mut f) => self.scan(&mut f),
                    Err(e) => {
                        let mut scan = Scan::new(self);
                        scan.unreadable_io(None, "cannot open", &e);
                        scan.finish(Format::Unknown)
                    }
                };
                (file, report)
            })
            .collect()
    }
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>, files_max: u64) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        out.push(path.to_owned());
        return;
    };
    if !meta.is_dir() {
        if meta.is_file() {
            out.push(path.to_owned());
        }
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        out.push(path.to_owned());
        return;
    };
    let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    children.sort();
    for child in children {
        if out.len() as u64 >= files_max {
            return;
        }
        collect_files(&child, out, files_max);
    }
}

/// The state of one scan: where in the archive tree it is, what it found so far and
/// how much of each limit it has used. Analysers report into it.
pub struct Scan<'a> {
    scanner: &'a Scanner,
    members: Vec<String>,
    findings: Vec<Finding>,
    findings_dropped: u64,
    unreadable: Vec<Unreadable>,
    bytes_scanned: u64,
    decompressed_bytes: u64,
}

impl<'a> Scan<'a> {
    fn new(scanner: &'a Scanner) -> Self {
        Scan {
            scanner,
            members: Vec::new(),
            findings: Vec::new(),
            findings_dropped: 0,
            unreadable: Vec::new(),
            bytes_scanned: 0,
            decompressed_bytes: 0,
        }
    }

    fn finish(mut self, format: Format) -> Report {
        if self.findings_dropped > 0 {
            let dropped = self.findings_dropped;
            let max = self.findings.iter().map(|f| f.severity).max();
            self.findings.push(Finding {
                severity: max.unwrap_or(Severity::Info),
                rule: "scan.findings-limit".into(),
                message: format!("{dropped} more findings not listed (limits.findings_max)"),
                location: Location::default(),
            });
        }
        Report {
            format,
            findings: self.findings,
            unreadable: self.unreadable,
            bytes_scanned: self.bytes_scanned,
            ruleset: RULESET_VERSION.to_owned(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.scanner.limits
    }

    /// The current location (member chain) at `offset`.
    pub fn here(&self, offset: Option<u64>) -> Location {
        Location {
            members: self.members.clone(),
            offset,
        }
    }

    /// Records a finding at `offset` in the current member.
    pub fn finding(
        &mut self,
        severity: Severity,
        rule: &str,
        message: impl Into<String>,
        offset: Option<u64>,
    ) {
        let location = self.here(offset);
        if self.findings.len() >= self.scanner.limits.findings_max {
            self.findings_dropped += 1;
            // Keep the worst: a flood of MEDIUMs must not push out a CRITICAL.
            if let Some(weakest) = self.findings.iter_mut().min_by_key(|f| f.severity)
                && weakest.severity < severity
            {
                *weakest = Finding {
                    severity,
                    rule: rule.to_owned(),
                    message: message.into(),
                    location,
                };
            }
            return;
        }
        self.findings.push(Finding {
            severity,
            rule: rule.to_owned(),
            message: message.into(),
            location,
        });
    }

    /// Records that the current member could not be read past `offset`, and why.
    ///
    /// The reason says what kind of stop it was: a limit's message names the
    /// limit (`limits.<key>`), an encrypted part's says "encrypted"; any other
    /// reason is the content's fault ([`UnreadKind::Malformed`]). Failures to
    /// read the input itself go through [`Scan::unreadable_io`].
    pub fn unreadable(&mut self, offset: Option<u64>, reason: impl Into<String>) {
        let reason = reason.into();
        let kind = if reason.contains("limits.") {
            UnreadKind::Limit
        } else if reason.contains("encrypted") {
            UnreadKind::Encrypted
        } else {
            UnreadKind::Malformed
        };
        self.unread(offset, reason, kind);
    }

    /// Records that reading failed with `e`. Reading the file itself failing
    /// is an I/O failure; inside a member, the error comes from the decoder or
    /// archive reader in between, so it is the content's.
    pub fn unreadable_io(&mut self, offset: Option<u64>, context: &str, e: &io::Error) {
        let kind = if self.members.is_empty() {
            UnreadKind::Io
        } else {
            UnreadKind::Malformed
        };
        self.unread(offset, format!("{context}: {e}"), kind);
    }

    fn unread(&mut self, offset: Option<u64>, reason: String, kind: UnreadKind) {
        let location = self.here(offset);
        self.unreadable.push(Unreadable {
            location,
            reason,
            kind,
        });
    }

    /// Counts bytes read by an analyser.
    pub fn count_bytes(&mut self, n: u64) {
        self.bytes_scanned = self.bytes_scanned.saturating_add(n);
    }

    /// Charges `n` decompressed bytes against [`Limits::decompressed_bytes_max`];
    /// false (and an unreadable record) once the budget is spent.
    pub fn charge_decompressed(&mut self, n: u64) -> bool {
        self.decompressed_bytes = self.decompressed_bytes.saturating_add(n);
        if self.decompressed_bytes > self.scanner.limits.decompressed_bytes_max {
            self.unreadable(
                None,
                format!(
                    "decompressed more than {} bytes in one scan (limits.decompressed_bytes_max)",
                    self.scanner.limits.decompressed_bytes_max
                ),
            );
            return false;
        }
        true
    }

    /// Decompressed bytes still allowed in this scan by [`Limits::decompressed_bytes_max`],
    /// so a decoder can stop at the budget rather than after it.
    pub fn decompressed_remaining(&self) -> u64 {
        self.scanner
            .limits
            .decompressed_bytes_max
            .saturating_sub(self.decompressed_bytes)
    }

    /// How deep in nested archives the scan is (0 for the file itself).
    pub fn depth(&self) -> usize {
        self.members.len()
    }

    /// Scans an archive member that can seek (a stored zip entry over the same file).
    pub fn member_seekable(&mut self, name: &str, src: &mut dyn Source) -> Option<Format> {
        if !self.enter(name) {
            return None;
        }
        let format = self.dispatch_seekable(src);
        self.members.pop();
        Some(format)
    }

    /// Scans an archive member that can only be read forwards (a decompressed entry).
    /// Formats that need random access get it through a bounded temporary file.
    pub fn member_stream(&mut self, name: &str, src: &mut dyn Read) -> Option<Format> {
        if !self.enter(name) {
            return None;
        }
        let format = self.dispatch_stream(src);
        self.members.pop();
        Some(format)
    }

    fn enter(&mut self, name: &str) -> bool {
        if self.members.len() >= self.scanner.limits.archive_depth_max as usize {
            self.unreadable(
                None,
                format!(
                    "member {name:?} is nested deeper than {} archives (limits.archive_depth_max)",
                    self.scanner.limits.archive_depth_max
                ),
            );
            return false;
        }
        self.members.push(name.to_owned());
        true
    }

    fn dispatch_seekable(&mut self, src: &mut dyn Source) -> Format {
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        if let Err(e) = read_head(src, &mut head).and_then(|()| src.seek(SeekFrom::Start(0))) {
            self.unreadable_io(Some(0), "cannot read", &e);
            return Format::Unknown;
        }
        let mut format = detect(&head);
        if format == Format::Unknown && archive::zip::has_central_directory(src) {
            format = Format::Zip;
        }
        if src.seek(SeekFrom::Start(0)).is_err() {
            let e = io::Error::other("seek failed");
            self.unreadable_io(Some(0), "cannot rewind", &e);
            return format;
        }
        if let Some(analyzer) = analyzer(format) {
            analyzer.analyse(src, self);
        }
        format
    }

    fn dispatch_stream(&mut self, src: &mut dyn Read) -> Format {
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        if let Err(e) = read_head(src, &mut head) {
            self.unreadable_io(Some(0), "cannot read", &e);
            return Format::Unknown;
        }
        let format = detect(&head);
        let Some(analyzer) = analyzer(format) else {
            return format;
        };
        let mut chained = io::Cursor::new(head).chain(src);
        if analyzer.needs_seek() {
            match self.spool(&mut chained) {
                Some(mut file) => analyzer.analyse(&mut file, self),
                None => return format,
            }
        } else {
            analyzer.analyse(&mut ForwardOnly::new(chained), self);
        }
        format
    }

    fn spool(&mut self, src: &mut dyn Read) -> Option<std::fs::File> {
        let max = self.scanner.limits.spool_bytes_max;
        let result = tempfile::tempfile().and_then(|mut file| {
            let copied = io::copy(&mut src.take(max + 1), &mut file)?;
            file.seek(SeekFrom::Start(0))?;
            Ok((file, copied))
        });
        match result {
            Ok((_, copied)) if copied > max => {
                self.unreadable(
                    None,
                    format!("member is larger than {max} bytes and needs random access (limits.spool_bytes_max)"),
                );
                None
            }
            Ok((file, _)) => Some(file),
            Err(e) => {
                // The temporary file failing is ours, whatever the member holds.
                self.unread(
                    None,
                    format!("cannot copy member to a temporary file: {e}"),
                    UnreadKind::Io,
                );
                None
            }
        }
    }
}

fn read_head(src: &mut dyn Read, head: &mut Vec<u8>) -> io::Result<()> {
    src.take(SNIFF_BYTES as u64).read_to_end(head).map(|_| ())
}
