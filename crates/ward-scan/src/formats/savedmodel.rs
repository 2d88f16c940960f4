//! TensorFlow SavedModel graphs: ops that touch files or run Python.
//!
//! A `saved_model.pb` is a `SavedModel` message: field 1 the schema version, field 2
//! the `MetaGraphDef`s. Ops live in `MetaGraphDef.graph_def` (2) as `GraphDef.node` (1)
//! and in `GraphDef.library` (2) as `FunctionDef.node_def` (3); a `NodeDef` names its
//! op in field 2. Only those paths are read; constants (`NodeDef.attr`) and everything
//! else are skipped by seeking.
//!
//! Keras layers saved in a SavedModel also carry their config as JSON: in
//! `MetaGraphDef.object_graph_def` (7) -> `SavedObject` (1) -> `user_object` (4) ->
//! `metadata` (3), and in the sibling `keras_metadata.pb` (a `SavedMetadata`: nodes
//! (1) -> `metadata` (5)), which is recognised here too. Those configs go to the Keras
//! checks, so a Lambda layer's bytecode is found in either place.

use super::keras;
use super::protobuf::{Field, LEN, PbResult, Reader, VARINT, input_len, walk_head};
use crate::{Analyzer, Format, Scan, Severity, Source};

/// TensorFlow SavedModel graphs: ops that touch files or run Python.
pub struct SavedModelAnalyzer;

impl Analyzer for SavedModelAnalyzer {
    fn format(&self) -> Format {
        Format::SavedModel
    }

    fn analyse(&self, src: &mut dyn Source, scan: &mut Scan<'_>) {
        let end = input_len(src).unwrap_or(u64::MAX);
        let mut r = Reader::new(src);
        let keep = scan.limits().string_bytes_max;
        let res = r.each(end, &mut |r, f| match (f.number, f.wire) {
            (2, LEN) => meta_graph(r, f, scan, keep),
            // keras_metadata.pb: SavedMetadata.nodes
            (1, LEN) => keras_json(r, f, 5, scan),
            _ => Ok(()),
        });
        scan.count_bytes(r.consumed(end));
        for e in res.err().into_iter().chain(r.take_overrun()) {
            scan.unreadable(Some(e.offset), format!("SavedModel: {}", e.reason));
        }
    }
}

/// `MetaGraphDef`: `graph_def` (2) holds ops, `object_graph_def` (7) Keras configs.
fn meta_graph(r: &mut Reader<'_>, f: &Field, scan: &mut Scan<'_>, keep: usize) -> PbResult<()> {
    r.each(f.end, &mut |r, f| match (f.number, f.wire) {
        (2, LEN) => graph_def(r, f, scan, keep),
        (7, LEN) => r.each(f.end, &mut |r, f| match (f.number, f.wire) {
            (1, LEN) => r.each(f.end, &mut |r, f| match (f.number, f.wire) {
                (4, LEN) => keras_json(r, f, 3, scan),
                _ => Ok(()),
            }),
            _ => Ok(()),
        }),
        _ => Ok(()),
    })
}

/// A message whose field `number` is a Keras object's JSON config: judged as one.
fn keras_json(r: &mut Reader<'_>, f: &Field, number: u64, scan: &mut Scan<'_>) -> PbResult<()> {
    let max = scan.limits().header_bytes_max;
    r.each(f.end, &mut |r, f| {
        if (f.number, f.wire) != (number, LEN) {
            return Ok(());
        }
        let at = r.pos();
        let keep = usize::try_from(max).unwrap_or(usize::MAX);
        let text = r.bytes(f.end, keep)?;
        if (text.len() as u64) < f.end - at {
            scan.unreadable(
                Some(at),
                "Keras metadata larger than limits.header_bytes_max",
            );
        } else if let Ok(config) = serde_json::from_slice(&text) {
            keras::judge(scan, &config, at);
        }
        Ok(())
    })
}

/// `GraphDef`: `node` (1) and `library` (2).
fn graph_def(r: &mut Reader<'_>, f: &Field, scan: &mut Scan<'_>, keep: usize) -> PbResult<()> {
    r.each(f.end, &mut |r, f| match (f.number, f.wire) {
        (1, LEN) => node_def(r, f, scan, keep, None),
        (2, LEN) => library(r, f, scan, keep),
        _ => Ok(()),
    })
}

/// `FunctionDefLibrary.function` (1) -> `FunctionDef`: `signature` (1, an `OpDef`
/// whose name is field 1) and `node_def` (3).
fn library(r: &mut Reader<'_>, f: &Field, scan: &mut Scan<'_>, keep: usize) -> PbResult<()> {
    r.each(f.end, &mut |r, f| {
        if (f.number, f.wire) != (1, LEN) {
            return Ok(());
        }
        let mut name = String::new();
        r.each(f.end, &mut |r, f| match (f.number, f.wire) {
            (1, LEN) => r.each(f.end, &mut |r, f| {
                if (f.number, f.wire) == (1, LEN) {
                    name = r.string(f, keep)?;
                }
                Ok(())
            }),
            (3, LEN) => node_def(r, f, scan, keep, Some(&name)),
            _ => Ok(()),
        })
    })
}

/// `NodeDef`: `name` (1) and `op` (2). Judged once the node is read.
fn node_def(
    r: &mut Reader<'_>,
    f: &Field,
    scan: &mut Scan<'_>,
    keep: usize,
    function: Option<&str>,
) -> PbResult<()> {
    let start = r.pos();
    let mut name = String::new();
    // Judged as soon as the op is read: a truncated tail must not hide it.
    r.each(f.end, &mut |r, f| {
        match (f.number, f.wire) {
            (1, LEN) => name = r.string(f, keep)?,
            (2, LEN) => report_op(scan, &r.string(f, keep)?, &name, function, start),
            _ => {}
        }
        Ok(())
    })
}

fn report_op(scan: &mut Scan<'_>, op: &str, name: &str, function: Option<&str>, at: u64) {
    if let Some((severity, rule, why)) = judge_op(op) {
        let place = match function {
            Some(func) => format!("function {func:?}"),
            None => "the graph".to_owned(),
        };
        scan.finding(
            severity,
            rule,
            format!("TensorFlow op {op} ({why}) in node {name:?} of {place}"),
            Some(at),
        );
    }
}

/// Ops that reach outside the graph. Checkpoint ops (SaveV2, RestoreV2,
/// MergeV2Checkpoints) are in every SavedModel and are deliberately absent.
const OPS: &[(&str, Severity, &str)] = &[
    ("PyFunc", Severity::Critical, "runs Python"),
    ("PyFuncStateless", Severity::Critical, "runs Python"),
    ("EagerPyFunc", Severity::Critical, "runs Python"),
    ("ReadFile", Severity::High, "reads files"),
    ("WriteFile", Severity::High, "writes files"),
    ("MatchingFiles", Severity::High, "lists files"),
    ("ImmutableConst", Severity::High, "maps a file into memory"),
    ("DebugIdentity", Severity::High, "writes to debug URLs"),
    (
        "DebugIdentityV2",
        Severity::High,
        "writes debug events to files",
    ),
    ("DebugIdentityV3", Severity::High, "writes to debug URLs"),
    ("CreateSummaryFileWriter", Severity::High, "writes files"),
    ("WriteRawProtoSummary", Severity::High, "writes files"),
    ("DatasetToTFRecord", Severity::High, "writes files"),
    ("SaveDataset", Severity::High, "writes files"),
    ("SaveDatasetV2", Severity::High, "writes files"),
    ("LoadDataset", Severity::Medium, "reads files"),
    ("TFRecordDataset", Severity::Medium, "reads files"),
    ("TFRecordDatasetV2", Severity::Medium, "reads files"),
    ("TextLineDataset", Severity::Medium, "reads files"),
    ("FixedLengthRecordDataset", Severity::Medium, "reads files"),
    (
        "FixedLengthRecordDatasetV2",
        Severity::Medium,
        "reads files",
    ),
    ("WholeFileReader", Severity::Medium, "reads files"),
    ("WholeFileReaderV2", Severity::Medium, "reads files"),
    ("LoadAndRemapMatrix", Severity::Medium, "reads checkpoints"),
    ("PrintV2", Severity::Low, "prints, possibly to a file"),
    (
        "InitializeTableFromTextFile",
        Severity::Low,
        "reads a vocabulary file",
    ),
    (
        "InitializeTableFromTextFileV2",
        Severity::Low,
        "reads a vocabulary file",
    ),
];

fn judge_op(op: &str) -> Option<(Severity, &'static str, &'static str)> {
    let (_, severity, why) = OPS.iter().find(|(name, _, _)| *name == op)?;
    let rule = match severity {
        Severity::Critical => "savedmodel.python-op",
        Severity::High | Severity::Medium => "savedmodel.file-op",
        _ => "savedmodel.notable-op",
    };
    Some((*severity, rule, why))
}

/// Whether the first bytes look like a `SavedModel`: field 1 a small varint (the
/// schema version), then field 2 whose payload starts as a `MetaGraphDef` (only
/// length-delimited fields 1–7). ONNX also starts `08 xx 12`, but its field 2 is the
/// producer name, whose text does not parse as such fields.
pub fn sniff(head: &[u8]) -> bool {
    sniff_saved_model(head) || sniff_keras_metadata(head)
}

/// `keras_metadata.pb`: a `SavedMetadata` (field 1 messages) naming Keras identifiers.
fn sniff_keras_metadata(head: &[u8]) -> bool {
    const IDENTIFIER: &[u8] = b"_tf_keras_";
    head.first() == Some(&0x0a)
        && head.windows(IDENTIFIER.len()).any(|w| w == IDENTIFIER)
        && walk_head(head, &mut |number, wire, _| (number, wire) == (1, LEN))
}

fn sniff_saved_model(head: &[u8]) -> bool {
    let mut fields = 0;
    let mut ok = true;
    let clean = walk_head(head, &mut |number, wire, payload| {
        fields += 1;
        ok = match (fields, number, wire) {
            (1, 1, VARINT) => head.get(1).is_some_and(|v| *v <= 8),
            (_, 1, VARINT) => false,
            (n, 2, LEN) if n >= 2 => n > 2 || meta_graph_head(payload),
            _ => false,
        };
        ok
    });
    clean && ok && fields >= 2
}

fn meta_graph_head(payload: &[u8]) -> bool {
    let mut fields = 0;
    payload.len() >= 2
        && walk_head(payload, &mut |number, wire, _| {
            fields += 1;
            (1..=7).contains(&number) && wire == LEN
        })
        && fields >= 1
}

#[cfg(test)]
mod tests {
    use super::super::protobuf::enc::*;
    use super::*;
    use crate::Scanner;
    use std::io::Cursor;

    fn node(name: &str, op: &str) -> Vec<u8> {
        msg(
            1,
            &[
                bytes(1, name.as_bytes()),
                bytes(2, op.as_bytes()),
                bytes(5, &[0u8; 300]),
            ],
        )
    }

    fn function(name: &str, nodes: &[(&str, &str)]) -> Vec<u8> {
        let mut fields = vec![msg(1, &[bytes(1, name.as_bytes())])];
        for (n, op) in nodes {
            fields.push(msg(3, &[bytes(1, n.as_bytes()), bytes(2, op.as_bytes())]));
        }
        msg(1, &fields)
    }

    fn saved_model(graph: &[Vec<u8>]) -> Vec<u8> {
        let meta_info = msg(1, &[bytes(4, b"serve")]);
        [int(1, 1), msg(2, &[meta_info, msg(2, graph)])].concat()
    }

    const LAMBDA: &str = r#"{"class_name": "Lambda", "config": {"name": "evil", "function": ["4wEAAA==", null, null], "function_type": "lambda"}}"#;

    fn user_object(metadata: &str) -> Vec<u8> {
        msg(
            1,
            &[msg(
                4,
                &[bytes(1, b"_tf_keras_layer"), bytes(3, metadata.as_bytes())],
            )],
        )
    }

    fn keras_metadata(metadata: &str) -> Vec<u8> {
        msg(
            1,
            &[
                msg(1, &[int(1, 1)]),
                int(2, 3),
                bytes(3, b"root.layer"),
                bytes(4, b"_tf_keras_layer"),
                bytes(5, metadata.as_bytes()),
            ],
        )
    }

    /// Findings as "SEVERITY rule message" lines plus unreadable reasons.
    fn check(input: &[u8], expected: &[&str]) {
        assert!(sniff(input), "sniff");
        let report = Scanner::default().scan(&mut Cursor::new(input.to_vec()));
        assert_eq!(report.format, Format::SavedModel);
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
    fn judges_ops() {
        let benign = saved_model(&[
            node("a", "Const"),
            node("save/SaveV2", "SaveV2"),
            node("restore", "RestoreV2"),
            node("m", "MergeV2Checkpoints"),
        ]);
        let lib = msg(2, &[function("f", &[("p", "PyFunc"), ("x", "AddV2")])]);
        let evil = saved_model(&[node("r", "ReadFile"), lib]);
        let mut truncated = saved_model(&[node("w", "WriteFile"), node("b", "Const")]);
        truncated.truncate(truncated.len() - 3);
        let cases: &[(&[u8], &[&str])] = &[
            (&benign, &[]),
            (
                &evil,
                &[
                    "HIGH savedmodel.file-op TensorFlow op ReadFile (reads files) in node \"r\" of the graph",
                    "CRITICAL savedmodel.python-op TensorFlow op PyFunc (runs Python) in node \"p\" of function \"f\"",
                ],
            ),
            (
                &truncated,
                &[
                    "HIGH savedmodel.file-op TensorFlow op WriteFile (writes files) in node \"w\" of the graph",
                    "unreadable SavedModel: field 2 of 648 bytes overruns its message",
                ],
            ),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn judges_keras_metadata() {
        let meta_info = msg(1, &[bytes(4, b"serve")]);
        let objects = msg(
            7,
            &[
                user_object(r#"{"class_name": "Dense"}"#),
                user_object(LAMBDA),
            ],
        );
        let in_saved_model = [int(1, 1), msg(2, &[meta_info, objects])].concat();
        let keras_pb = [
            keras_metadata(r#"{"class_name": "Dense"}"#),
            keras_metadata(LAMBDA),
        ]
        .concat();
        let critical =
            "CRITICAL keras.lambda Keras Lambda layer \"evil\" carries marshalled Python bytecode";
        let cases: &[(&[u8], &[&str])] =
            &[(&in_saved_model, &[critical]), (&keras_pb, &[critical])];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn sniffs_by_structure() {
        let onnx = [int(1, 7), bytes(2, b"pytorch"), bytes(3, b"2.1")].concat();
        let cases: &[(&[u8], bool)] = &[
            (&saved_model(&[node("a", "Const")]), true),
            (&onnx, false),
            (&[int(1, 1), bytes(2, b"")].concat(), false),
            (&keras_metadata("{}"), true),
            (&msg(1, &[bytes(4, b"something")]), false),
            (b"\x08\x01", false),
            (b"hello world", false),
            (&[], false),
        ];
        for (input, expected) in cases {
            assert_eq!(sniff(input), *expected, "{input:02x?}");
        }
    }
    #[test]
    fn survives_garbage() {
        // Every truncation and byte flip: never panics, always finishes.
        let file = saved_model(&[
            node("r", "ReadFile"),
            msg(2, &[function("f", &[("p", "PyFunc")])]),
        ]);
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
