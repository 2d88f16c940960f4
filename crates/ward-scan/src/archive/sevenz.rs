//! 7z archives, read with the pure-Rust `sevenz-rust2` decoder.
//!
//! Every entry name is checked for traversal first, from the header alone. Entries are
//! then decoded one at a time and streamed to the scanner; in a solid block the bytes
//! an analyser leaves unread must be decoded to reach the next entry, so they are
//! drained through the same meter (decompressed budget, bomb ratio) and decoding stops
//! at the first bound crossed. Header buffers and decoder dictionaries are bounded by
//! [`crate::Limits::decoder_memory_bytes_max`]. Encrypted entries are reported, not
//! decrypted.

use std::collections::HashSet;
use std::io::SeekFrom;

use sevenz_rust2::{ArchiveReader, EntryDecision, Error, Password};

use super::{Compressed, check_path, scan_decoded};
use crate::{Analyzer, Format, Scan, Severity, Source};

/// 7z archives.
pub struct SevenZipAnalyzer;

impl Analyzer for SevenZipAnalyzer {
    fn format(&self) -> Format {
        Format::SevenZip
    }

    fn needs_seek(&self) -> bool {
        true
    }

    fn analyse(&self, src: &mut dyn Source, scan: &mut Scan<'_>) {
        let file_len = src.seek(SeekFrom::End(0)).unwrap_or(0);
        if let Err(e) = src.seek(SeekFrom::Start(0)) {
            return scan.unreadable(Some(0), format!("cannot rewind: {e}"));
        }
        let memory_kb =
            usize::try_from(scan.limits().decoder_memory_bytes_max / 1024).unwrap_or(usize::MAX);
        let mut reader =
            match ArchiveReader::new_with_memory_limit(src, Password::empty(), memory_kb) {
                Ok(reader) => reader,
                Err(e) => {
                    return scan.unreadable(Some(0), format!("cannot read the 7z header: {e}"));
                }
            };
        if !check_entries(&reader, scan) {
            return;
        }
        scan.count_bytes(file_len);
        decode_entries(&mut reader, scan, file_len);
    }
}

/// Checks names and encryption of every entry; false if there are too many to scan.
fn check_entries<R: std::io::Read + std::io::Seek>(
    reader: &ArchiveReader<R>,
    scan: &mut Scan<'_>,
) -> bool {
    let archive = reader.archive();
    let entries_max = scan.limits().archive_entries_max;
    if archive.files.len() as u64 > entries_max {
        scan.unreadable(
            None,
            format!(
                "{} entries, more than {entries_max} (limits.archive_entries_max)",
                archive.files.len()
            ),
        );
        return false;
    }
    for (index, entry) in archive.files.iter().enumerate() {
        check_path(scan, entry.name(), None);
        if entry.has_stream() && archive.is_file_encrypted(index) {
            let name = entry.name();
            scan.finding(
                Severity::Medium,
                "archive.encrypted",
                format!("entry {name:?} is encrypted and cannot be scanned"),
                None,
            );
            scan.unreadable(None, format!("entry {name:?} is encrypted"));
        }
    }
    true
}

fn decode_entries<R: std::io::Read + std::io::Seek>(
    reader: &mut ArchiveReader<R>,
    scan: &mut Scan<'_>,
    file_len: u64,
) {
    // Encrypted entries (already reported) are known by address: the callback gets
    // the entry, not its index.
    let archive = reader.archive();
    let encrypted: HashSet<usize> = (0..archive.files.len())
        .filter(|&i| archive.is_file_encrypted(i))
        .filter_map(|i| archive.files.get(i))
        .map(|e| std::ptr::from_ref(e) as usize)
        .collect();
    let result = reader.for_each_entries_with_decision(|entry, data| {
        if encrypted.contains(&(std::ptr::from_ref(entry) as usize)) {
            return Ok(EntryDecision::SkipBlock);
        }
        if !entry.has_stream() || entry.is_directory() {
            return Ok(EntryDecision::Continue);
        }
        // Per-entry packed sizes are unknown inside solid blocks; the whole file is
        // the conservative denominator for the ratio.
        let known = Compressed::Known(file_len);
        Ok(
            if scan_decoded(scan, entry.name(), data, known, Some(entry.size()), true) {
                EntryDecision::Continue
            } else {
                EntryDecision::Stop
            },
        )
    });
    match result {
        Ok(()) => {}
        Err(Error::PasswordRequired | Error::MaybeBadPassword(_)) => {}
        Err(e) => scan.unreadable(None, format!("cannot decode the 7z archive: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use sevenz_rust2::{ArchiveEntry, ArchiveWriter};

    use super::*;
    use crate::Limits;
    use crate::archive::testing::{PROBE, dispatched, rules, scan_with};

    /// A 7z of `entries`, one block each, or one solid block.
    fn sevenz(entries: &[(&str, &[u8])], solid: bool) -> Vec<u8> {
        let mut writer = ArchiveWriter::new(Cursor::new(Vec::new())).unwrap();
        if solid {
            let files = entries
                .iter()
                .map(|(name, _)| ArchiveEntry::new_file(name))
                .collect();
            let readers = entries
                .iter()
                .map(|(_, data)| Cursor::new(data.to_vec()).into())
                .collect();
            writer.push_archive_entries(files, readers).unwrap();
        } else {
            for (name, data) in entries {
                let entry = ArchiveEntry::new_file(name);
                writer
                    .push_archive_entry(entry, Some(Cursor::new(data.to_vec())))
                    .unwrap();
            }
        }
        writer.finish().unwrap().into_inner()
    }

    /// Scans `bytes` and checks the members dispatched and the rules fired.
    fn check(bytes: &[u8], limits: Limits, members: &[&str], findings: &[&str]) {
        let report = scan_with(bytes, limits);
        assert_eq!(report.format, Format::SevenZip, "{report:#?}");
        assert_eq!(dispatched(&report), members, "{report:#?}");
        assert_eq!(rules(&report), findings, "{report:#?}");
    }

    #[test]
    fn entries_are_streamed_and_checked() {
        let zeros = vec![0u8; 8 << 20];
        let strict = Limits {
            compression_ratio_max: 100,
            ..Limits::default()
        };
        let few = Limits {
            archive_entries_max: 1,
            ..Limits::default()
        };
        let entries: &[(&str, &[u8])] = &[("noise", b"abc"), ("data.pkl", PROBE)];
        type Case<'a> = (Vec<u8>, Limits, &'a [&'a str], &'a [&'a str]);
        let cases: Vec<Case<'_>> = vec![
            (
                sevenz(entries, false),
                Limits::default(),
                &["data.pkl"],
                &[],
            ),
            (sevenz(entries, true), Limits::default(), &["data.pkl"], &[]),
            (
                sevenz(&[("../x.pkl", PROBE)], false),
                Limits::default(),
                &["../x.pkl"],
                &["archive.path-traversal"],
            ),
            (
                sevenz(&[("zeros", &zeros), ("data.pkl", PROBE)], true),
                strict,
                &[],
                &["archive.bomb"],
            ),
            (sevenz(entries, false), few, &[], &[]),
        ];
        for (bytes, limits, members, findings) in cases {
            check(&bytes, limits, members, findings);
        }
    }

    #[test]
    fn damaged_archives_never_panic() {
        let original = sevenz(&[("a", PROBE), ("b", &[7u8; 3000])], true);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for cut in 0..original.len() {
            scan_with(&original[..cut], Limits::default());
        }
        for _ in 0..500 {
            let mut bytes = original.clone();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state % bytes.len() as u64) as usize;
                bytes[at] = (state >> 32) as u8;
            }
            scan_with(&bytes, Limits::default());
        }
    }

    #[test]
    fn a_damaged_archive_is_unreadable_not_fatal() {
        let mut bytes = sevenz(&[("data.pkl", PROBE)], false);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let report = scan_with(&bytes, Limits::default());
        assert!(!report.unreadable.is_empty(), "{report:#?}");
    }
}
