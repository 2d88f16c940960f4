//! ONNX models: external data paths and operator domains.
//!
//! The `ModelProto` is streamed: graphs (and subgraphs held in node attributes),
//! nodes, tensors' names and `external_data`, opset imports and local functions are
//! read; `raw_data` and every other bulk field are skipped by seeking.
//!
//! Two things can reach outside the model when it is loaded: an external-data
//! `location` that escapes the model's directory (a loader reads, or maps, whatever
//! file it names), and an operator domain no standard runtime implements (a custom op,
//! i.e. a native library the host is expected to load). Domains of functions the model
//! itself defines are local and fine.

use std::collections::{BTreeMap, BTreeSet};

use super::protobuf::{Field, LEN, PbError, PbResult, Reader, VARINT, input_len, walk_head};
use crate::{Analyzer, Format, Scan, Severity, Source};

/// ONNX models: external data paths and operator domains.
pub struct OnnxAnalyzer;

impl Analyzer for OnnxAnalyzer {
    fn format(&self) -> Format {
        Format::Onnx
    }

    fn analyse(&self, src: &mut dyn Source, scan: &mut Scan<'_>) {
        let end = input_len(src).unwrap_or(u64::MAX);
        let mut r = Reader::new(src);
        let mut walk = Walk {
            keep: scan.limits().string_bytes_max,
            depth_max: scan.limits().nesting_depth_max,
            scan,
            domains: BTreeMap::new(),
            local: BTreeSet::new(),
        };
        let res = walk.model(&mut r, end);
        walk.judge_domains();
        scan.count_bytes(r.consumed(end));
        for e in res.err().into_iter().chain(r.take_overrun()) {
            scan.unreadable(Some(e.offset), format!("ONNX: {}", e.reason));
        }
    }
}

/// Distinct domains kept for judging at the end; more are not remembered.
const DOMAINS_MAX: usize = 1024;

/// Domains implemented by standard runtimes (ONNX itself, ONNX Runtime, PyTorch's
/// ATen fallback, OpenVINO); `com.microsoft.*` are ONNX Runtime's too.
const KNOWN_DOMAINS: &[&str] = &[
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "ai.onnx.training",
    "ai.onnx.preview",
    "ai.onnx.preview.training",
    "com.microsoft",
    "com.ms.internal.nhwc",
    "org.pytorch.aten",
    "org.openvinotoolkit",
];

/// Custom-op libraries that are well known but must be registered by the host.
const NOTED_DOMAINS: &[&str] = &["ai.onnx.contrib"];

struct Walk<'a, 'b> {
    scan: &'a mut Scan<'b>,
    keep: usize,
    depth_max: u32,
    /// Non-standard domains used, with where and by what they were first seen.
    domains: BTreeMap<String, (u64, String)>,
    /// Domains of functions the model defines.
    local: BTreeSet<String>,
}

impl Walk<'_, '_> {
    fn model(&mut self, r: &mut Reader<'_>, end: u64) -> PbResult<()> {
        r.each(end, &mut |r, f| match (f.number, f.wire) {
            (7, LEN) => self.graph(r, f, 1),
            (8, LEN) => self.opset(r, f, "opset_import"),
            (20, LEN) => r.each(f.end, &mut |r, f| match (f.number, f.wire) {
                (1 | 2, LEN) => self.graph(r, f, 2),
                _ => Ok(()),
            }),
            (25, LEN) => self.function(r, f),
            _ => Ok(()),
        })
    }

    fn deeper(&self, r: &Reader<'_>, depth: u32) -> PbResult<()> {
        if depth > self.depth_max {
            return Err(PbError {
                offset: r.pos(),
                reason: format!(
                    "graphs nested deeper than {} (limits.nesting_depth_max)",
                    self.depth_max
                ),
            });
        }
        Ok(())
    }

    /// `GraphProto`: nodes (1), initializers (5) and sparse initializers (15).
    fn graph(&mut self, r: &mut Reader<'_>, f: &Field, depth: u32) -> PbResult<()> {
        self.deeper(r, depth)?;
        r.each(f.end, &mut |r, f| match (f.number, f.wire) {
            (1, LEN) => self.node(r, f, depth),
            (5, LEN) => self.tensor(r, f),
            (15, LEN) => self.sparse(r, f),
            _ => Ok(()),
        })
    }

    /// `NodeProto`: name (3), op_type (4), attributes (5), domain (7).
    fn node(&mut self, r: &mut Reader<'_>, f: &Field, depth: u32) -> PbResult<()> {
        let (start, keep) = (r.pos(), self.keep);
        let (mut name, mut op, mut domain) = (String::new(), String::new(), String::new());
        let res = r.each(f.end, &mut |r, f| {
            match (f.number, f.wire) {
                (3, LEN) => name = r.string(f, keep)?,
                (4, LEN) => op = r.string(f, keep)?,
                (7, LEN) => domain = r.string(f, keep)?,
                (5, LEN) => self.attribute(r, f, depth)?,
                _ => {}
            }
            Ok(())
        });
        self.use_domain(&domain, start, || format!("op {op} in node {name:?}"));
        res
    }

    /// `AttributeProto`: tensors (5, 10), graphs (6, 11), sparse tensors (22, 23).
    fn attribute(&mut self, r: &mut Reader<'_>, f: &Field, depth: u32) -> PbResult<()> {
        r.each(f.end, &mut |r, f| match (f.number, f.wire) {
            (5 | 10, LEN) => self.tensor(r, f),
            (6 | 11, LEN) => self.graph(r, f, depth + 1),
            (22 | 23, LEN) => self.sparse(r, f),
            _ => Ok(()),
        })
    }

    fn sparse(&mut self, r: &mut Reader<'_>, f: &Field) -> PbResult<()> {
        r.each(f.end, &mut |r, f| match (f.number, f.wire) {
            (1 | 2, LEN) => self.tensor(r, f),
            _ => Ok(()),
        })
    }

    /// `TensorProto`: name (8) and `external_data` (13) entries; `raw_data` (9) and
    /// the typed data fields are skipped.
    fn tensor(&mut self, r: &mut Reader<'_>, f: &Field) -> PbResult<()> {
        let mut name = String::new();
        let keep = self.keep;
        r.each(f.end, &mut |r, f| match (f.number, f.wire) {
            (8, LEN) => {
                name = r.string(f, keep)?;
                Ok(())
            }
            (13, LEN) => {
                let at = r.pos();
                let (mut key, mut value) = (String::new(), String::new());
                r.each(f.end, &mut |r, f| {
                    match (f.number, f.wire) {
                        (1, LEN) => key = r.string(f, keep)?,
                        (2, LEN) => value = r.string(f, keep)?,
                        _ => {}
                    }
                    Ok(())
                })?;
                if key == "location" {
                    self.location(&value, &name, at);
                }
                Ok(())
            }
            _ => Ok(()),
        })
    }

    fn location(&mut self, path: &str, tensor: &str, at: u64) {
        if let Some(why) = escapes(path) {
            self.scan.finding(
                Severity::High,
                "onnx.external-data-path",
                format!(
                    "ONNX external data location {path:?} of tensor {tensor:?} {why}, outside the model directory"
                ),
                Some(at),
            );
        }
    }

    /// `OperatorSetIdProto`: domain (1).
    fn opset(&mut self, r: &mut Reader<'_>, f: &Field, what: &str) -> PbResult<()> {
        let at = r.pos();
        let mut domain = String::new();
        r.each(f.end, &mut |r, f| {
            if (f.number, f.wire) == (1, LEN) {
                domain = r.string(f, self.keep)?;
            }
            Ok(())
        })?;
        self.use_domain(&domain, at, || what.to_owned());
        Ok(())
    }

    /// `FunctionProto`: nodes (7), opset imports (9), its own domain (10).
    fn function(&mut self, r: &mut Reader<'_>, f: &Field) -> PbResult<()> {
        let keep = self.keep;
        r.each(f.end, &mut |r, f| match (f.number, f.wire) {
            (7, LEN) => self.node(r, f, 1),
            (9, LEN) => self.opset(r, f, "a function's opset_import"),
            (10, LEN) => {
                let domain = r.string(f, keep)?;
                if self.local.len() < DOMAINS_MAX {
                    self.local.insert(domain);
                }
                Ok(())
            }
            _ => Ok(()),
        })
    }

    fn use_domain(&mut self, domain: &str, at: u64, what: impl FnOnce() -> String) {
        let known = KNOWN_DOMAINS.contains(&domain) || domain.starts_with("com.microsoft.");
        if !known && !self.domains.contains_key(domain) && self.domains.len() < DOMAINS_MAX {
            self.domains.insert(domain.to_owned(), (at, what()));
        }
    }

    /// Judged at the end: functions (which define local domains) follow the graph.
    fn judge_domains(&mut self) {
        for (domain, (at, what)) in std::mem::take(&mut self.domains) {
            if self.local.contains(&domain) {
                continue;
            }
            let (severity, rule, why) = if NOTED_DOMAINS.contains(&domain.as_str()) {
                (
                    Severity::Low,
                    "onnx.extension-domain",
                    "needs a well-known custom-op library",
                )
            } else {
                (
                    Severity::Medium,
                    "onnx.custom-domain",
                    "is not a standard one; custom ops load native code",
                )
            };
            self.scan.finding(
                severity,
                rule,
                format!("ONNX operator domain {domain:?} ({what}) {why}"),
                Some(at),
            );
        }
    }
}

/// Why an external-data path escapes the model directory, if it does.
fn escapes(path: &str) -> Option<&'static str> {
    let bytes = path.as_bytes();
    if path.starts_with('/') || path.starts_with('\\') {
        Some("is absolute")
    } else if bytes.get(1) == Some(&b':') && bytes.first().is_some_and(u8::is_ascii_alphabetic) {
        Some("names a drive")
    } else if path.contains('\\') {
        Some("contains backslashes")
    } else if path.contains(':') {
        Some("contains a colon (a URL or stream name)")
    } else if path.split('/').any(|c| c == "..") {
        Some("climbs with ..")
    } else if path.contains('\0') {
        Some("contains NUL")
    } else if path.starts_with('~') {
        Some("names a home directory")
    } else {
        None
    }
}

/// Whether the first bytes look like a `ModelProto`: field 1 (ir_version) a small
/// varint first, then only `ModelProto` fields with their wire types.
pub fn sniff(head: &[u8]) -> bool {
    let mut fields = 0;
    let clean = walk_head(head, &mut |number, wire, payload| {
        fields += 1;
        match (fields, number, wire) {
            (1, 1, VARINT) => head.get(1).is_some_and(|v| (1..=32).contains(v)),
            (1, _, _) => false,
            // The names and doc string are text; a cut-off one must still be UTF-8 up
            // to its last whole character.
            (_, 2 | 3 | 4 | 6, LEN) => match std::str::from_utf8(payload) {
                Ok(_) => true,
                Err(e) => e.error_len().is_none(),
            },
            (_, 7 | 8 | 14 | 20 | 25 | 26, LEN) | (_, 5, VARINT) => true,
            _ => false,
        }
    });
    clean && fields >= 2
}

#[cfg(test)]
mod tests {
    use super::super::protobuf::enc::*;
    use super::*;
    use crate::Scanner;
    use std::io::Cursor;

    fn node(op: &str, domain: &str, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut fields = vec![
            bytes(1, b"x"),
            bytes(3, format!("n_{op}").as_bytes()),
            bytes(4, op.as_bytes()),
        ];
        fields.extend(
            attrs
                .iter()
                .map(|a| msg(5, &[bytes(1, b"attr"), a.clone()])),
        );
        fields.push(bytes(7, domain.as_bytes()));
        msg(1, &fields)
    }

    fn tensor(number: u64, name: &str, location: Option<&str>) -> Vec<u8> {
        let mut fields = vec![int(1, 4), int(2, 1), bytes(8, name.as_bytes())];
        match location {
            Some(loc) => {
                fields.push(msg(13, &[bytes(1, b"location"), bytes(2, loc.as_bytes())]));
                fields.push(msg(13, &[bytes(1, b"offset"), bytes(2, b"0")]));
                fields.push(int(14, 1));
            }
            None => fields.push(bytes(9, &[0u8; 4096])),
        }
        msg(number, &fields)
    }

    fn model(graph: &[Vec<u8>], tail: &[Vec<u8>]) -> Vec<u8> {
        let mut fields = vec![
            int(1, 8),
            bytes(2, b"pytorch"),
            bytes(3, b"2.4.0"),
            msg(7, graph),
            msg(8, &[bytes(1, b""), int(2, 17)]),
        ];
        fields.extend_from_slice(tail);
        fields.concat()
    }

    fn check(input: &[u8], expected: &[&str]) {
        assert!(sniff(input), "sniff");
        let report = Scanner::default().scan(&mut Cursor::new(input.to_vec()));
        assert_eq!(report.format, Format::Onnx);
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
    fn judges_models() {
        let benign = model(
            &[
                node("Conv", "", &[]),
                node("FusedMatMul", "com.microsoft", &[]),
                node("QLinearConv", "com.microsoft.nchwc", &[]),
                tensor(5, "w", None),
                tensor(5, "ext", Some("weights/model.onnx.data")),
            ],
            &[],
        );
        let escape = |loc: &str| model(&[tensor(5, "w", Some(loc))], &[]);
        let subgraph = msg(
            6,
            &[node("Evil", "evil.ops", &[]), tensor(5, "t", Some("C:\\x"))],
        );
        let nested = model(&[node("If", "", &[subgraph])], &[]);
        let function = msg(
            25,
            &[bytes(1, b"f"), node("Add", "", &[]), bytes(10, b"my.funcs")],
        );
        let local = model(&[node("f", "my.funcs", &[])], &[function]);
        let mut truncated = model(&[node("Custom", "x.y", &[]), tensor(5, "w", None)], &[]);
        truncated.truncate(200);
        let cases: Vec<(Vec<u8>, Vec<&str>)> = vec![
            (benign, vec![]),
            (
                escape("../../etc/passwd"),
                vec![
                    "HIGH onnx.external-data-path ONNX external data location \"../../etc/passwd\" of tensor \"w\" climbs with .., outside the model directory",
                ],
            ),
            (
                escape("/etc/passwd"),
                vec![
                    "HIGH onnx.external-data-path ONNX external data location \"/etc/passwd\" of tensor \"w\" is absolute, outside the model directory",
                ],
            ),
            (
                escape("a\\..\\b"),
                vec![
                    "HIGH onnx.external-data-path ONNX external data location \"a\\\\..\\\\b\" of tensor \"w\" contains backslashes, outside the model directory",
                ],
            ),
            (
                nested,
                vec![
                    "HIGH onnx.external-data-path ONNX external data location \"C:\\\\x\" of tensor \"t\" names a drive, outside the model directory",
                    "MEDIUM onnx.custom-domain ONNX operator domain \"evil.ops\" (op Evil in node \"n_Evil\") is not a standard one; custom ops load native code",
                ],
            ),
            (local, vec![]),
            (
                truncated,
                vec![
                    "MEDIUM onnx.custom-domain ONNX operator domain \"x.y\" (op Custom in node \"n_Custom\") is not a standard one; custom ops load native code",
                    "unreadable ONNX: field 7 of 4137 bytes overruns its message",
                ],
            ),
            (
                model(&[node("Tokenize", "ai.onnx.contrib", &[])], &[]),
                vec![
                    "LOW onnx.extension-domain ONNX operator domain \"ai.onnx.contrib\" (op Tokenize in node \"n_Tokenize\") needs a well-known custom-op library",
                ],
            ),
        ];
        for (input, expected) in cases {
            check(&input, &expected);
        }
    }

    #[test]
    fn bounds_nesting() {
        let mut g = node("Add", "", &[]);
        for _ in 0..100 {
            g = node("Loop", "", &[msg(6, &[g])]);
        }
        let input = model(&[g], &[]);
        let report = Scanner::default().scan(&mut Cursor::new(input));
        assert!(report.unreadable[0].reason.contains("nesting_depth_max"));
    }

    #[test]
    fn sniffs_by_structure() {
        let cases: &[(&[u8], bool)] = &[
            (&model(&[], &[]), true),
            (&[int(1, 7), bytes(2, b"tf2onnx")].concat(), true),
            (&[int(1, 7), int(9, 1)].concat(), false),
            (&[int(1, 7), bytes(2, b"\xff\xfe")].concat(), false),
            (&[bytes(2, b"pytorch"), int(1, 7)].concat(), false),
            (b"\x08\x07", false),
            (b"{\"a\": 1}", false),
        ];
        for (input, expected) in cases {
            assert_eq!(sniff(input), *expected, "{input:02x?}");
        }
    }
    #[test]
    fn survives_garbage() {
        // Every truncation and byte flip: never panics, always finishes.
        let file = model(
            &[node(
                "If",
                "",
                &[msg(
                    6,
                    &[node("E", "x.y", &[]), tensor(5, "t", Some("../a"))],
                )],
            )],
            &[],
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
