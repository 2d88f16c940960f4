//! safetensors files: header and tensor layout consistency.
//!
//! A safetensors file is an 8-byte little-endian header length, a JSON header and the
//! tensor bytes. It cannot carry code; what can go wrong is a header that lies about
//! the layout. Only the header is read; the tensor bytes never are.
//!
//! Grading: a layout that makes a loader read outside the data or alias memory (header
//! or tensor past the end of the file, overlapping tensors, a shape whose size is not
//! the span it claims) is HIGH, since those are what loader bugs are made of. A header
//! that strict loaders simply reject, or that hides bytes no tensor accounts for (gaps,
//! trailing data: room for a second, polyglot payload), is MEDIUM. Offsets listed out
//! of order are allowed by the format and not reported.

use std::fmt;
use std::io::{Read, SeekFrom};

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::{Analyzer, Format, Scan, Severity, Source};

/// safetensors files: header and tensor layout consistency.
pub struct SafetensorsAnalyzer;

impl Analyzer for SafetensorsAnalyzer {
    fn format(&self) -> Format {
        Format::Safetensors
    }

    fn needs_seek(&self) -> bool {
        true
    }

    fn analyse(&self, src: &mut dyn Source, scan: &mut Scan<'_>) {
        let header = match read_header(src, scan) {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(e) => {
                scan.unreadable(Some(0), format!("safetensors: {e}"));
                return;
            }
        };
        check_header(&header.json, header.data_len, scan);
    }
}

struct Header {
    json: Vec<u8>,
    /// Bytes after the header: the tensor data region.
    data_len: u64,
}

/// Reads the header, reporting a length that does not fit. `None` when the header
/// cannot be checked.
fn read_header(src: &mut dyn Source, scan: &mut Scan<'_>) -> std::io::Result<Option<Header>> {
    let file_len = src.seek(SeekFrom::End(0))?;
    src.seek(SeekFrom::Start(0))?;
    let mut len = [0u8; 8];
    src.read_exact(&mut len)?;
    let n = u64::from_le_bytes(len);
    let Some(data_len) = file_len.checked_sub(8).and_then(|rest| rest.checked_sub(n)) else {
        scan.finding(
            Severity::High,
            "safetensors.header-length",
            format!("safetensors header length {n} exceeds the file ({file_len} bytes)"),
            Some(0),
        );
        return Ok(None);
    };
    let max = scan.limits().header_bytes_max;
    if n > max {
        scan.unreadable(
            Some(8),
            format!(
                "safetensors header of {n} bytes is larger than {max} (limits.header_bytes_max)"
            ),
        );
        return Ok(None);
    }
    let mut json = Vec::new();
    src.take(n).read_to_end(&mut json)?;
    scan.count_bytes(8 + n);
    Ok(Some(Header { json, data_len }))
}

/// Top-level header entries in file order, duplicates kept (a map would hide them).
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// One tensor's claimed layout.
struct Tensor<'a> {
    name: &'a str,
    begin: u64,
    end: u64,
}

fn check_header(json: &[u8], data_len: u64, scan: &mut Scan<'_>) {
    let medium = |scan: &mut Scan<'_>, rule: &str, msg: String| {
        scan.finding(Severity::Medium, rule, msg, Some(8));
    };
    if json.first() != Some(&b'{') {
        return medium(
            scan,
            "safetensors.header-json",
            "safetensors header does not start with '{'".into(),
        );
    }
    let entries = match serde_json::from_slice::<Entries>(json) {
        Ok(e) => e.0,
        Err(e) => {
            return medium(
                scan,
                "safetensors.header-json",
                format!("safetensors header is not valid JSON: {e}"),
            );
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut tensors = Vec::new();
    for (name, value) in &entries {
        if !seen.insert(name.as_str()) {
            medium(
                scan,
                "safetensors.duplicate-key",
                format!("safetensors header names {name:?} twice"),
            );
        }
        if name == "__metadata__" {
            if !is_string_map(value) {
                medium(
                    scan,
                    "safetensors.metadata",
                    "safetensors __metadata__ is not a map of strings to strings".into(),
                );
            }
            continue;
        }
        let Some(t) = tensor(name, value, scan) else {
            continue;
        };
        if t.end > data_len {
            scan.finding(
                Severity::High,
                "safetensors.out-of-range",
                format!("safetensors tensor {name:?} spans bytes {}..{} beyond the data ({data_len} bytes)", t.begin, t.end),
                Some(8),
            );
        }
        tensors.push(t);
    }
    check_layout(&mut tensors, data_len, scan);
}

fn is_string_map(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|m| m.values().all(Value::is_string))
}

/// Reads one tensor entry, reporting what is malformed; `None` if its span is unusable.
fn tensor<'a>(name: &'a str, value: &Value, scan: &mut Scan<'_>) -> Option<Tensor<'a>> {
    let bad = |scan: &mut Scan<'_>, what: &str| {
        scan.finding(
            Severity::Medium,
            "safetensors.entry",
            format!("safetensors tensor {name:?}: {what}"),
            Some(8),
        );
    };
    let dtype = value.get("dtype").and_then(Value::as_str);
    let shape: Option<Vec<u64>> = value
        .get("shape")
        .and_then(Value::as_array)
        .and_then(|dims| dims.iter().map(Value::as_u64).collect());
    let offsets: Option<Vec<u64>> = value
        .get("data_offsets")
        .and_then(Value::as_array)
        .and_then(|o| o.iter().map(Value::as_u64).collect());
    let Some([begin, end]) = offsets
        .as_deref()
        .and_then(|o| <[u64; 2]>::try_from(o).ok())
    else {
        bad(scan, "data_offsets is not two unsigned integers");
        return None;
    };
    if begin > end {
        bad(scan, &format!("data_offsets {begin}..{end} run backwards"));
        return None;
    }
    let bits = dtype.and_then(dtype_bits);
    match (dtype, bits, shape) {
        (None, _, _) => bad(scan, "no dtype"),
        (Some(d), None, _) => bad(scan, &format!("unknown dtype {d:?}")),
        (_, _, None) => bad(scan, "shape is not a list of unsigned integers"),
        (Some(d), Some(bits), Some(shape)) => {
            let size = shape
                .iter()
                .try_fold(bits, |acc, dim| acc.checked_mul(*dim))
                .filter(|b| b % 8 == 0)
                .map(|b| b / 8);
            if size != Some(end - begin) {
                scan.finding(
                    Severity::High,
                    "safetensors.size-mismatch",
                    format!(
                        "safetensors tensor {name:?} of dtype {d} and shape {shape:?} claims {} bytes ({begin}..{end})",
                        end - begin
                    ),
                    Some(8),
                );
            }
        }
    }
    Some(Tensor { name, begin, end })
}

/// Bits per element, for the dtypes safetensors defines.
fn dtype_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 8,
        "U16" | "I16" | "F16" | "BF16" => 16,
        "U32" | "I32" | "F32" => 32,
        "U64" | "I64" | "F64" | "C64" => 64,
        _ => return None,
    })
}

/// Sorted by offset, tensors must tile the data region exactly.
fn check_layout(tensors: &mut [Tensor<'_>], data_len: u64, scan: &mut Scan<'_>) {
    tensors.sort_by_key(|t| (t.begin, t.end));
    let mut covered = 0u64;
    let mut last = "";
    for t in tensors.iter() {
        if t.begin < covered {
            scan.finding(
                Severity::High,
                "safetensors.overlap",
                format!(
                    "safetensors tensor {:?} ({}..{}) overlaps tensor {last:?}",
                    t.name, t.begin, t.end
                ),
                Some(8),
            );
        } else if t.begin > covered {
            scan.finding(
                Severity::Medium,
                "safetensors.gap",
                format!(
                    "safetensors data has {} bytes no tensor uses before tensor {:?}",
                    t.begin - covered,
                    t.name
                ),
                Some(8),
            );
        }
        if t.end >= covered {
            covered = t.end;
            last = t.name;
        }
    }
    if covered < data_len {
        scan.finding(
            Severity::Medium,
            "safetensors.trailing-data",
            format!(
                "safetensors file has {} bytes after the last tensor",
                data_len - covered
            ),
            None,
        );
    }
}

/// Whether the first bytes look like safetensors: a little-endian header length, then
/// (within that length) a JSON object opening with a key or empty.
///
/// The length is not compared with the file: one that runs past the end is what the
/// analyser must report (`safetensors.header-length`), not a reason to call the file
/// unknown. Its two top bytes must be zero (under 256 TiB), which keeps text such as
/// a JSON document with an object at offset 8 from passing for safetensors.
pub fn sniff(head: &[u8]) -> bool {
    let Some(len) = head.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
        return false;
    };
    let n = u64::from_le_bytes(len);
    let json = head.get(8..).unwrap_or_default();
    let json = json
        .get(..usize::try_from(n).unwrap_or(usize::MAX))
        .unwrap_or(json);
    (2..1 << 48).contains(&n) && json.first() == Some(&b'{') && super::keras::sniff_json(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scanner;
    use std::io::Cursor;

    /// A file from a header and a data region of `data` bytes.
    fn file(header: &str, data: usize) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend(std::iter::repeat_n(0u8, data));
        out
    }

    fn check(input: &[u8], expected: &[&str]) {
        assert!(sniff(input), "sniff");
        let report = Scanner::default().scan(&mut Cursor::new(input.to_vec()));
        assert_eq!(report.format, Format::Safetensors);
        let mut got: Vec<String> = report
            .findings
            .iter()
            .map(|f| format!("{} {} {}", f.severity, f.rule, f.message))
            .collect();
        got.extend(
            report
                .unreadable
                .iter()
                .map(|u| format!("unreadable {}", u.reason)),
        );
        assert_eq!(got, expected);
    }

    #[test]
    fn judges_headers() {
        let ok = r#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]},"a":{"dtype":"BF16","shape":[8],"data_offsets":[0,16]}}  "#;
        let cases: Vec<(Vec<u8>, Vec<&str>)> = vec![
            (file(ok, 32), vec![]),
            (file("{}", 0), vec![]),
            (
                file(ok, 40),
                vec![
                    "MEDIUM safetensors.trailing-data safetensors file has 8 bytes after the last tensor",
                ],
            ),
            (
                file(
                    r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#,
                    6,
                ),
                vec![
                    "HIGH safetensors.overlap safetensors tensor \"b\" (2..6) overlaps tensor \"a\"",
                ],
            ),
            (
                file(
                    r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}}"#,
                    12,
                ),
                vec![
                    "MEDIUM safetensors.gap safetensors data has 4 bytes no tensor uses before tensor \"b\"",
                ],
            ),
            (
                file(
                    r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,400]}}"#,
                    4,
                ),
                vec![
                    "HIGH safetensors.size-mismatch safetensors tensor \"a\" of dtype U8 and shape [4] claims 400 bytes (0..400)",
                    "HIGH safetensors.out-of-range safetensors tensor \"a\" spans bytes 0..400 beyond the data (4 bytes)",
                ],
            ),
            (
                file(
                    r#"{"a":{"dtype":"X9","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,0]},"__metadata__":{"n":1}}"#,
                    1,
                ),
                vec![
                    "MEDIUM safetensors.entry safetensors tensor \"a\": unknown dtype \"X9\"",
                    "MEDIUM safetensors.duplicate-key safetensors header names \"a\" twice",
                    "MEDIUM safetensors.entry safetensors tensor \"a\": data_offsets 1..0 run backwards",
                    "MEDIUM safetensors.metadata safetensors __metadata__ is not a map of strings to strings",
                ],
            ),
            (
                file(
                    r#"{"a":{"dtype":"F32","shape":[18446744073709551615,2],"data_offsets":[0,8]}}"#,
                    8,
                ),
                vec![
                    "HIGH safetensors.size-mismatch safetensors tensor \"a\" of dtype F32 and shape [18446744073709551615, 2] claims 8 bytes (0..8)",
                ],
            ),
            (
                file(r#"{"a":1,}"#, 0),
                vec![
                    "MEDIUM safetensors.header-json safetensors header is not valid JSON: trailing comma at line 1 column 8",
                ],
            ),
            (
                [&(1u64 << 30).to_le_bytes()[..], b"{\"a\":{}}"].concat(),
                vec![
                    "HIGH safetensors.header-length safetensors header length 1073741824 exceeds the file (16 bytes)",
                ],
            ),
            (
                [&9u64.to_le_bytes()[..], b"{}"].concat(),
                vec![
                    "HIGH safetensors.header-length safetensors header length 9 exceeds the file (10 bytes)",
                ],
            ),
        ];
        for (input, expected) in cases {
            check(&input, &expected);
        }
    }

    #[test]
    fn sniffs() {
        let cases: &[(&[u8], bool)] = &[
            (&file("{\"a\":{}}", 0), true),
            (&file("{}", 0), true),
            (&file("[1]", 0), false),
            (
                &[&(1u64 << 30).to_le_bytes()[..], b"{\"a\":{}}"].concat(),
                true,
            ),
            (
                &[&(1u64 << 48).to_le_bytes()[..], b"{\"a\":{}}"].concat(),
                false,
            ),
            (b"{\"data\":{\"x\": 1}}", false),
            (b"\x80\x02}q\x00", false),
            (&[0xffu8; 16], false),
            (b"", false),
        ];
        for (input, expected) in cases {
            assert_eq!(sniff(input), *expected, "{input:02x?}");
        }
    }
    #[test]
    fn survives_garbage() {
        // Every truncation and byte flip: never panics, always finishes.
        let file = file(
            r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"__metadata__":{"k":"v"}}"#,
            4,
        );
        for cut in 0..file.len() {
            let _ = Scanner::default().scan(&mut Cursor::new(file[..cut].to_vec()));
        }
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0xff;
            let _ = Scanner::default().scan(&mut Cursor::new(bad));
        }
    }
}
