//! Tar archives (ustar, GNU and pax), including the legacy PyTorch tar format, whose
//! members (`sys_info`, `pickle`, `storages`, `tensors`) are scanned by content like
//! any other.
//!
//! Read as Python's tarfile reads them: the first zero block ends the archive, GNU long
//! names and pax `path`/`linkpath`/`size` records apply to the next header, unknown
//! types are regular files. Members are scanned in place when the input can seek, and
//! streamed otherwise (a tar inside gzip); either way the reader then moves on to the
//! next header, so memory stays flat.

use std::io::{self, Read, SeekFrom};

use super::{Window, check_path, escapes_root, link_escapes};
use crate::{Analyzer, Format, Scan, Severity, Source};

/// Tar archives, including the legacy PyTorch tar format.
pub struct TarAnalyzer;

impl Analyzer for TarAnalyzer {
    fn format(&self) -> Format {
        Format::Tar
    }

    fn analyse(&self, src: &mut dyn Source, scan: &mut Scan<'_>) {
        // Forward-only inputs refuse to seek to their end; members are then streamed.
        let len = src.seek(SeekFrom::End(0)).ok();
        if let Err(e) = src.seek(SeekFrom::Start(0)) {
            return scan.unreadable(Some(0), format!("cannot rewind: {e}"));
        }
        let mut reader = Reader {
            src,
            len,
            pos: 0,
            count: 0,
            pending: Pending::default(),
        };
        reader.run(scan);
    }
}

const BLOCK: u64 = 512;

/// What GNU long-name and pax headers say about the next member.
#[derive(Default)]
struct Pending {
    path: Option<String>,
    link: Option<String>,
    size: Option<u64>,
}

/// One parsed header block.
struct Header {
    name: String,
    link: String,
    kind: u8,
    size: u64,
}

struct Reader<'s> {
    src: &'s mut dyn Source,
    /// The input's length when it can seek; `None` for a forward-only stream.
    len: Option<u64>,
    pos: u64,
    count: u64,
    pending: Pending,
}

impl Reader<'_> {
    fn run(&mut self, scan: &mut Scan<'_>) {
        let entries_max = scan.limits().archive_entries_max;
        loop {
            let at = self.pos;
            let block = match self.read_block() {
                Ok(Some(block)) => block,
                Ok(None) => return,
                Err(e) => return scan.unreadable(Some(at), e),
            };
            scan.count_bytes(BLOCK);
            if block.iter().all(|&b| b == 0) {
                return;
            }
            let header = match parse_header(&block) {
                Ok(header) => header,
                Err(e) => return scan.unreadable(Some(at), e),
            };
            if self.count >= entries_max {
                return scan.unreadable(
                    Some(at),
                    format!("more than {entries_max} entries (limits.archive_entries_max)"),
                );
            }
            self.count += 1;
            if let Err(e) = self.entry(scan, header, at) {
                return scan.unreadable(Some(self.pos), e);
            }
        }
    }

    /// Reads the next 512-byte block; `None` at a clean end of input.
    fn read_block(&mut self) -> Result<Option<[u8; 512]>, String> {
        let mut block = [0u8; 512];
        let mut filled = 0;
        while let Some(rest) = block.get_mut(filled..)
            && !rest.is_empty()
        {
            match self.src.read(rest) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cannot read header: {e}")),
            }
        }
        self.pos += filled as u64;
        match filled {
            0 => Ok(None),
            512 => Ok(Some(block)),
            _ => Err("archive truncated inside a header".to_owned()),
        }
    }

    /// Handles one header: metadata for the next member, or a member to check and scan.
    fn entry(&mut self, scan: &mut Scan<'_>, header: Header, at: u64) -> Result<(), String> {
        let data = self.pos;
        let size = match header.kind {
            b'L' | b'K' | b'x' | b'g' => header.size,
            _ => self.pending.size.take().unwrap_or(header.size),
        };
        let next = size
            .div_ceil(BLOCK)
            .checked_mul(BLOCK)
            .and_then(|padded| data.checked_add(padded))
            .ok_or("member size out of range")?;
        match header.kind {
            b'L' => self.pending.path = Some(self.read_text(scan, size)?),
            b'K' => self.pending.link = Some(self.read_text(scan, size)?),
            b'x' => self.read_pax(scan, size)?,
            b'g' => {}
            _ => {
                let name = self.pending.path.take().unwrap_or(header.name);
                let link = self.pending.link.take().unwrap_or(header.link);
                self.member(scan, &name, &link, header.kind, at, size);
            }
        }
        self.skip_to(scan, next)
    }

    /// Checks one member and scans its data if it has any.
    fn member(
        &mut self,
        scan: &mut Scan<'_>,
        name: &str,
        link: &str,
        kind: u8,
        at: u64,
        size: u64,
    ) {
        check_path(scan, name, Some(at));
        match kind {
            b'1' | b'2' => report_link(scan, name, link, kind, at),
            b'3' | b'4' | b'6' => scan.finding(
                Severity::Medium,
                "archive.special-file",
                format!("member {name} is a device or FIFO; extracting it creates one"),
                Some(at),
            ),
            b'5' => {}
            _ if size > 0 => self.scan_data(scan, name, size),
            _ => {}
        }
    }

    fn scan_data(&mut self, scan: &mut Scan<'_>, name: &str, size: u64) {
        if self.len.is_some() {
            scan.member_seekable(name, &mut Window::new(&mut *self.src, self.pos, size));
        } else {
            let mut data = (&mut *self.src).take(size);
            scan.member_stream(name, &mut data);
            // What the member's analyser read moved the stream; account for it.
            self.pos += size - data.limit();
        }
    }

    /// Moves to the next header, reading through the rest of a member when the input
    /// cannot seek.
    fn skip_to(&mut self, scan: &mut Scan<'_>, next: u64) -> Result<(), String> {
        if self.len.is_none() {
            scan.count_bytes(next.saturating_sub(self.pos));
        }
        let reached = self
            .src
            .seek(SeekFrom::Start(next))
            .map_err(|e| format!("cannot skip to the next header: {e}"))?;
        // A forward-only stream stops short at its end; a file seeks past it.
        self.pos = reached.min(self.len.unwrap_or(u64::MAX));
        if self.pos < next {
            return Err("archive truncated inside member data".to_owned());
        }
        Ok(())
    }

    /// Reads a GNU long name (NUL-terminated) of at most `string_bytes_max` bytes.
    fn read_text(&mut self, scan: &mut Scan<'_>, size: u64) -> Result<String, String> {
        let bytes = self.read_meta(scan, size, scan.limits().string_bytes_max as u64)?;
        let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
        Ok(String::from_utf8_lossy(text).into_owned())
    }

    /// Reads a pax extended header and keeps the records that change the next member.
    fn read_pax(&mut self, scan: &mut Scan<'_>, size: u64) -> Result<(), String> {
        let bytes = self.read_meta(scan, size, scan.limits().header_bytes_max)?;
        for (key, value) in pax_records(&bytes) {
            match key {
                "path" => self.pending.path = Some(value.to_owned()),
                "linkpath" => self.pending.link = Some(value.to_owned()),
                "size" => {
                    let size = value
                        .parse()
                        .map_err(|_| format!("bad pax size {value:?}"))?;
                    self.pending.size = Some(size);
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn read_meta(&mut self, scan: &mut Scan<'_>, size: u64, max: u64) -> Result<Vec<u8>, String> {
        if size > max {
            return Err(format!(
                "extended header of {size} bytes is over the {max}-byte limit"
            ));
        }
        let mut bytes = Vec::new();
        (&mut *self.src)
            .take(size)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read extended header: {e}"))?;
        self.pos += bytes.len() as u64;
        scan.count_bytes(bytes.len() as u64);
        Ok(bytes)
    }
}

fn report_link(scan: &mut Scan<'_>, name: &str, link: &str, kind: u8, at: u64) {
    // A hard link's target is relative to the archive root, a symlink's to its directory.
    let escapes = if kind == b'1' {
        escapes_root(link).is_some()
    } else {
        link_escapes(name, link)
    };
    let what = if kind == b'1' { "hard link" } else { "symlink" };
    if escapes {
        scan.finding(
            Severity::High,
            "archive.link-escape",
            format!("member {name} is a {what} to {link}, outside the extraction directory"),
            Some(at),
        );
    } else {
        scan.finding(
            Severity::Low,
            "archive.link",
            format!("member {name} is a {what} to {link}"),
            Some(at),
        );
    }
}

/// Parses a header block, checking its checksum as tarfile does.
fn parse_header(block: &[u8; 512]) -> Result<Header, String> {
    let field = |from: usize, to: usize| block.get(from..to).unwrap_or_default();
    let stored = parse_number(field(148, 156)).ok_or("bad header checksum field")?;
    let unsigned: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
        return Err("bad header checksum: not a tar header".to_owned());
    }
    let size = parse_number(field(124, 136)).ok_or("bad member size field")?;
    let mut name = text(field(0, 100));
    if field(257, 262) == b"ustar" {
        let prefix = text(field(345, 500));
        if !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
    }
    Ok(Header {
        name,
        link: text(field(157, 257)),
        kind: block.get(156).copied().unwrap_or(0),
        size,
    })
}

/// A NUL-terminated header string.
fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned()
}

/// An octal number padded with spaces or NULs, or GNU base-256 (high bit set).
fn parse_number(bytes: &[u8]) -> Option<u64> {
    if let Some((&first, rest)) = bytes.split_first()
        && first & 0x80 != 0
    {
        if first != 0x80 {
            return None; // Negative base-256 numbers are no valid size.
        }
        return rest
            .iter()
            .try_fold(0u64, |n, &b| n.checked_mul(256)?.checked_add(u64::from(b)));
    }
    let mut digits = bytes
        .iter()
        .skip_while(|&&b| b == b' ' || b == 0)
        .take_while(|&&b| b != b' ' && b != 0);
    digits.try_fold(0u64, |n, &b| match b {
        b'0'..=b'7' => n.checked_mul(8)?.checked_add(u64::from(b - b'0')),
        _ => None,
    })
}

/// The `key=value` records of a pax header (`"<len> <key>=<value>\n"` each); a
/// malformed record ends the list.
fn pax_records(mut bytes: &[u8]) -> Vec<(&str, &str)> {
    let mut records = Vec::new();
    while let Some(space) = bytes.iter().position(|&b| b == b' ') {
        let len = std::str::from_utf8(bytes.get(..space).unwrap_or_default())
            .ok()
            .and_then(|s| s.parse::<usize>().ok());
        let Some(record) = len.and_then(|len| bytes.get(space + 1..len)) else {
            break;
        };
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Ok(record) = std::str::from_utf8(record)
            && let Some((key, value)) = record.split_once('=')
        {
            records.push((key, value));
        }
        bytes = len.and_then(|len| bytes.get(len..)).unwrap_or_default();
    }
    records
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;
    use crate::Limits;
    use crate::archive::testing::{PROBE, dispatched, rules, scan_with};

    /// One tar header block plus its padded data.
    pub(crate) fn member(name: &str, kind: u8, link: &str, data: &[u8]) -> Vec<u8> {
        member_sized(name, kind, link, data, data.len() as u64)
    }

    fn member_sized(name: &str, kind: u8, link: &str, data: &[u8], size: u64) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..265].copy_from_slice(b"ustar\x0000");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h.extend_from_slice(data);
        h.resize(h.len().div_ceil(512) * 512, 0);
        h
    }

    pub(crate) fn tar(members: &[Vec<u8>]) -> Vec<u8> {
        let mut out = members.concat();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    fn pax(records: &[(&str, &str)]) -> Vec<u8> {
        let mut body = String::new();
        for (k, v) in records {
            let rest = format!(" {k}={v}\n");
            let mut len = rest.len() + 1;
            while format!("{len}{rest}").len() != len {
                len += 1;
            }
            body.push_str(&format!("{len}{rest}"));
        }
        member("././@PaxHeader", b'x', "", body.as_bytes())
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// Scans `bytes` and checks the members dispatched and the rules fired.
    fn check(bytes: &[u8], limits: Limits, members: &[&str], findings: &[&str]) {
        let report = scan_with(bytes, limits);
        assert_eq!(dispatched(&report), members, "{report:#?}");
        assert_eq!(rules(&report), findings, "{report:#?}");
    }

    #[test]
    fn members_are_dispatched_and_tricks_reported() {
        let long = "d/".repeat(90) + "data.pkl";
        let long_names = [long.as_str()];
        let legacy = tar(&[
            member("sys_info", b'0', "", b"noise"),
            member("pickle", b'0', "", PROBE),
            member("storages", b'0', "", &[1u8; 3000]),
            member("tensors", b'0', "", b"noise"),
        ]);
        let cases: Vec<(Vec<u8>, &[&str], &[&str])> = vec![
            (legacy.clone(), &["pickle"], &[]),
            (gzip(&legacy), &["<gzip>!/pickle"], &[]),
            (
                tar(&[member("../evil", b'0', "", PROBE)]),
                &["../evil"],
                &["archive.path-traversal"],
            ),
            (
                tar(&[
                    member("a/up", b'2', "../../etc/passwd", b""),
                    member("a/in", b'2', "../b", b""),
                    member("h", b'1', "/etc/shadow", b""),
                ]),
                &[],
                &["archive.link-escape", "archive.link", "archive.link-escape"],
            ),
            (
                tar(&[member("dev", b'3', "", b"")]),
                &[],
                &["archive.special-file"],
            ),
            (
                tar(&[
                    member("././@LongLink", b'L', "", long.as_bytes()),
                    member("x", b'0', "", PROBE),
                ]),
                &long_names,
                &[],
            ),
            (
                tar(&[
                    pax(&[("path", "p/data.pkl"), ("size", &PROBE.len().to_string())]),
                    member_sized("short", b'0', "", PROBE, 0),
                ]),
                &["p/data.pkl"],
                &[],
            ),
            (
                tar(&[member(
                    "in.tar",
                    b'0',
                    "",
                    &tar(&[member("x", b'0', "", PROBE)]),
                )]),
                &["in.tar!/x"],
                &[],
            ),
        ];
        for (bytes, members, findings) in cases {
            check(&bytes, Limits::default(), members, findings);
        }
    }

    #[test]
    fn limits_and_damage_are_reported() {
        let three = tar(&[
            member("a", b'0', "", PROBE),
            member("b", b'0', "", PROBE),
            member("c", b'0', "", PROBE),
        ]);
        let few = Limits {
            archive_entries_max: 2,
            ..Limits::default()
        };
        check(&three, few.clone(), &["a", "b"], &[]);
        let report = scan_with(&three, few);
        assert!(
            report
                .unreadable
                .iter()
                .any(|u| u.reason.contains("archive_entries_max"))
        );

        let mut damaged = three.clone();
        damaged[1024] ^= 0x55; // the second header's name, so its checksum fails
        let report = scan_with(&damaged, Limits::default());
        assert_eq!(dispatched(&report), ["a"]);
        assert!(
            report
                .unreadable
                .iter()
                .any(|u| u.reason.contains("checksum"))
        );

        for cut in [1024 + 100, 600] {
            let report = scan_with(&three[..cut], Limits::default());
            assert_eq!(dispatched(&report), ["a"]);
            assert!(!report.unreadable.is_empty(), "{report:#?}");
            let report = scan_with(&gzip(&three[..cut]), Limits::default());
            assert_eq!(dispatched(&report), ["<gzip>!/a"]);
            assert!(!report.unreadable.is_empty(), "{report:#?}");
        }

        let bomb = gzip(&tar(&[member("zeros", b'0', "", &vec![0u8; 8 << 20])]));
        let strict = Limits {
            compression_ratio_max: 100,
            ..Limits::default()
        };
        check(&bomb, strict, &[], &["archive.bomb"]);
    }

    fn check_number(field: &[u8], expected: Option<u64>) {
        assert_eq!(parse_number(field), expected, "{field:?}");
    }

    #[test]
    fn numbers_in_headers() {
        let cases: [(&[u8], Option<u64>); 6] = [
            (b"00000000012\0", Some(10)),
            (b"  12 \0", Some(10)),
            (b"\0\0\0", Some(0)),
            (b"0009", None),
            (b"\x80\0\0\0\0\0\0\x01\0\0\0\0", Some(1 << 32)),
            (b"\xff\xff", None),
        ];
        for (field, expected) in cases {
            check_number(field, expected);
        }
    }
}
