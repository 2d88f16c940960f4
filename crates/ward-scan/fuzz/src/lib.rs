//! The harness every ward-scan fuzz target shares: tight limits, a gate that keeps each
//! target on its own formats, and the invariants checked after every scan.
//!
//! A target scans its input through [`ward_scan::Scanner::scan`], the path the registry
//! uses, so content detection picks the analyser. Inputs that detection sends to another
//! format are rejected (not scanned, not kept in the corpus): a target stays on the
//! parser it is named after, while `scan_any` takes everything.
#![deny(missing_docs)]

use std::io::Cursor;

use ward_scan::{Format, Limits, Report, Scanner, detect};

/// Every target: its name and the formats it scans (empty: all of them).
pub const TARGETS: &[(&str, &[Format])] = &[
    ("scan_any", &[]),
    ("pickle", &[Format::Pickle]),
    // A zip's central directory may follow unrecognised bytes (prepended junk).
    ("zip", &[Format::Zip, Format::Unknown]),
    ("tar", &[Format::Tar]),
    (
        "compressed",
        &[
            Format::Gzip,
            Format::Zlib,
            Format::Zstd,
            Format::Bzip2,
            Format::Xz,
            Format::Lzma,
            Format::Lz4,
        ],
    ),
    ("sevenz", &[Format::SevenZip]),
    ("numpy", &[Format::Numpy]),
    ("safetensors", &[Format::Safetensors]),
    ("gguf", &[Format::Gguf]),
    ("onnx", &[Format::Onnx]),
    ("savedmodel", &[Format::SavedModel]),
    ("keras_json", &[Format::Json]),
    ("hdf5", &[Format::Hdf5]),
];

/// Limits small enough that one input takes milliseconds and a few megabytes, yet
/// large enough that every parser gets past its first few records.
pub fn limits() -> Limits {
    Limits {
        archive_entries_max: 64,
        archive_depth_max: 4,
        decompressed_bytes_max: 1 << 20,
        compression_ratio_exempt_bytes: 64 << 10,
        decoder_memory_bytes_max: 32 << 20,
        pickle_stack_max: 4096,
        pickle_memo_ranges_max: 256,
        pickle_memo_globals_max: 4096,
        pickle_memo_kept_bytes_max: 256 << 10,
        pickle_ops_max: 100_000,
        pickle_kept_string_bytes_max: 256 << 10,
        string_bytes_max: 4096,
        header_bytes_max: 1 << 20,
        spool_bytes_max: 1 << 20,
        findings_max: 64,
        nesting_depth_max: 32,
        gguf_items_max: 4096,
        hdf5_header_blocks_max: 32,
        hdf5_heap_objects_max: 4096,
        ..Limits::default()
    }
}

/// The formats target `name` accepts, or `None` for an unknown target.
pub fn formats(name: &str) -> Option<&'static [Format]> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Scans `data` as target `name` does and checks the invariants; `None` when the input
/// is not one of the target's formats (so the fuzzer drops it).
///
/// # Panics
/// On a broken invariant, which is what the fuzzer reports as a crash; also on an
/// unknown target name.
pub fn run(name: &str, data: &[u8]) -> Option<Report> {
    let Some(accepted) = formats(name) else {
        panic!("unknown fuzz target {name:?}");
    };
    let head = data.get(..1024).unwrap_or(data);
    if !accepted.is_empty() && !accepted.contains(&detect(head)) {
        return None;
    }
    let limits = limits();
    let report = Scanner::new(limits.clone()).scan(&mut Cursor::new(data));
    check(&limits, data.len() as u64, &report);
    Some(report)
}

/// The invariants of a report on arbitrary input: bounded work, bounded output.
///
/// # Panics
/// When one does not hold.
pub fn check(limits: &Limits, input_len: u64, report: &Report) {
    let bound = bytes_scanned_max(limits, input_len);
    assert!(
        report.bytes_scanned <= bound,
        "bytes_scanned {} above {bound} for a {input_len}-byte input",
        report.bytes_scanned
    );
    // One extra finding says how many were dropped.
    assert!(report.findings.len() <= limits.findings_max + 1);
    for finding in &report.findings {
        assert!(finding.location.members.len() <= limits.archive_depth_max as usize);
    }
    for unreadable in &report.unreadable {
        assert!(unreadable.location.members.len() <= limits.archive_depth_max as usize);
    }
}

/// The most bytes a scan may read: every archive level may re-read what is stored
/// below it (the input, or what was decompressed), and overlapping zip entries that
/// hold no archive are each read once more.
pub fn bytes_scanned_max(limits: &Limits, input_len: u64) -> u64 {
    let levels = u64::from(limits.archive_depth_max) + 1;
    input_len
        .saturating_add(limits.decompressed_bytes_max)
        .saturating_add(limits.spool_bytes_max)
        .saturating_mul(levels)
        .saturating_mul(limits.archive_entries_max.saturating_add(1))
}
