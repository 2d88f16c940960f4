//! NumPy .npy arrays; object arrays carry pickles.
//!
//! Layout: `\x93NUMPY`, major and minor version bytes, the header length (u16 LE for
//! version 1, u32 LE for versions 2 and 3), then a Python dict literal naming `descr`,
//! `fortran_order` and `shape`. Plain arrays hold raw numbers after it and cannot carry
//! code, so their data is never read; object arrays (an `O` type code anywhere in
//! `descr`) hold a pickle, which is analysed like any other.

use std::io::Read;

use crate::{Analyzer, Format, Scan, Severity, Source};

/// NumPy .npy arrays; object arrays carry pickles.
pub struct NumpyAnalyzer;

impl Analyzer for NumpyAnalyzer {
    fn format(&self) -> Format {
        Format::Numpy
    }

    fn analyse(&self, src: &mut dyn Source, scan: &mut Scan<'_>) {
        match read_header(src, scan.limits().header_bytes_max) {
            Ok((header, data_offset)) => {
                scan.count_bytes(data_offset);
                if descr_has_object(&header) {
                    scan.finding(
                        Severity::Info,
                        "numpy.object-array",
                        "object array: its data is a pickle (loading needs allow_pickle=True); analysed as one",
                        Some(data_offset),
                    );
                    crate::pickle::analyse_stream(src, scan, data_offset);
                }
            }
            Err(why) => {
                scan.finding(
                    Severity::Low,
                    "numpy.malformed",
                    format!("malformed .npy header: {why}"),
                    Some(0),
                );
                scan.unreadable(Some(0), format!("malformed .npy header: {why}"));
            }
        }
    }
}

/// Reads the magic, version and header; returns the header text and where data starts.
fn read_header(src: &mut dyn Read, max: u64) -> Result<(String, u64), String> {
    let mut fixed = [0u8; 8];
    src.read_exact(&mut fixed)
        .map_err(|e| format!("cannot read the magic: {e}"))?;
    let [0x93, b'N', b'U', b'M', b'P', b'Y', major, _minor] = fixed else {
        return Err("no \\x93NUMPY magic".into());
    };
    let (len, prefix) = match major {
        1 => {
            let mut b = [0u8; 2];
            src.read_exact(&mut b).map_err(|e| e.to_string())?;
            (u64::from(u16::from_le_bytes(b)), 10)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            src.read_exact(&mut b).map_err(|e| e.to_string())?;
            (u64::from(u32::from_le_bytes(b)), 12)
        }
        v => return Err(format!("unsupported version {v}")),
    };
    if len > max {
        return Err(format!(
            "header of {len} bytes exceeds {max} (limits.header_bytes_max)"
        ));
    }
    let mut header = Vec::new();
    let got = src
        .take(len)
        .read_to_end(&mut header)
        .map_err(|e| e.to_string())?;
    if (got as u64) < len {
        return Err("header is truncated".into());
    }
    let text = String::from_utf8_lossy(&header).into_owned();
    if !text.contains("descr") {
        return Err("header names no descr".into());
    }
    Ok((text, prefix + len))
}

/// Whether the `descr` value names the object type code (`O`, `|O`, `<O8`) anywhere.
fn descr_has_object(header: &str) -> bool {
    let Some(start) = header.find("'descr'").or_else(|| header.find("\"descr\"")) else {
        return false;
    };
    let rest = header.get(start + 7..).unwrap_or("");
    let value = descr_value(rest);
    value
        .split(['\'', '"'])
        .skip(1)
        .step_by(2)
        .any(is_object_code)
}

/// The text of the descr value: up to the end of its quote or bracket group.
fn descr_value(rest: &str) -> &str {
    let rest = rest.trim_start_matches([':', ' ']);
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for (i, c) in rest.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                if depth == 0 {
                    return rest.get(..=i).unwrap_or(rest);
                }
            }
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '(') => depth += 1,
            (None, ']' | ')') => {
                depth -= 1;
                if depth <= 0 {
                    return rest.get(..=i).unwrap_or(rest);
                }
            }
            (None, ',' | '}') if depth == 0 => return rest.get(..i).unwrap_or(rest),
            _ => {}
        }
    }
    rest
}

fn is_object_code(token: &str) -> bool {
    let t = token.trim_start_matches(['<', '>', '|', '=']);
    t.strip_prefix('O')
        .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::Scanner;

    /// Expected findings: severity, rule and a substring of the message.
    type Expect = Vec<(Severity, &'static str, &'static str)>;

    fn npy(version: u8, header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = b"\x93NUMPY".to_vec();
        out.extend([version, 0]);
        if version == 1 {
            out.extend((header.len() as u16).to_le_bytes());
        } else {
            out.extend((header.len() as u32).to_le_bytes());
        }
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    fn check(input: Vec<u8>, expected: &[(Severity, &str, &str)]) {
        let report = Scanner::default().scan(&mut Cursor::new(input));
        let got: Vec<_> = report
            .findings
            .iter()
            .map(|f| (f.severity, f.rule.as_str()))
            .collect();
        let want: Vec<_> = expected.iter().map(|(s, r, _)| (*s, *r)).collect();
        assert_eq!(got, want, "{report:#?}");
        for (f, (_, _, needle)) in report.findings.iter().zip(expected) {
            assert!(f.message.contains(needle), "{f:?} lacks {needle}");
        }
    }

    const PAYLOAD: &[u8] = b"\x80\x03cposix\nsystem\nX\x02\x00\x00\x00ls\x85R.";

    #[test]
    fn headers() {
        let plain = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n";
        let object = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n";
        let fields =
            "{'descr': [('Owner', '<i4'), ('x', '|O')], 'fortran_order': False, 'shape': (1,), }";
        let object_info = (Severity::Info, "numpy.object-array", "object array");
        let system = (Severity::Critical, "pickle.denied-callable", "posix.system");
        let cases: Vec<(Vec<u8>, Expect)> = vec![
            (npy(1, plain, &[0xff; 16]), vec![]),
            (npy(2, plain, PAYLOAD), vec![]),
            (npy(1, object, PAYLOAD), vec![object_info, system]),
            (npy(3, fields, PAYLOAD), vec![object_info, system]),
            (
                npy(9, plain, b""),
                vec![(Severity::Low, "numpy.malformed", "version 9")],
            ),
            (
                npy(1, plain, b"").get(..20).unwrap().to_vec(),
                vec![(Severity::Low, "numpy.malformed", "truncated")],
            ),
        ];
        for (input, expected) in cases {
            check(input, &expected);
        }
    }
}
