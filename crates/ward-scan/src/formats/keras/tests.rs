use super::*;
use crate::Scanner;
use std::io::Cursor;

/// Findings as "SEVERITY rule message", then unreadable reasons.
fn check(input: &[u8], format: Format, expected: &[&str]) {
    let report = Scanner::default().scan(&mut Cursor::new(input.to_vec()));
    assert_eq!(report.format, format);
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
    assert_eq!(got, expected, "{}", String::from_utf8_lossy(input));
}

const KERAS3: &str = r#"{"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "layers": [
  {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 4], "dtype": "float32"}, "registered_name": null},
  {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "activation": "relu",
    "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null},
    "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null}},
   "registered_name": null, "build_config": {"input_shape": [null, 4]}},
  {"module": "keras.layers", "class_name": "Activation", "config": {"activation": {"module": "keras.src.activations", "class_name": "function", "config": "softmax", "registered_name": "function"}}}
 ]}, "registered_name": null,
 "compile_config": {"optimizer": {"module": "keras.optimizers", "class_name": "Adam", "config": {"learning_rate": 0.001}, "registered_name": null},
  "loss": {"module": "keras.losses", "class_name": "MeanSquaredError", "config": {}, "registered_name": null}}}"#;

const KERAS2_LAMBDA: &str = r#"{"class_name": "Sequential", "config": {"name": "s", "layers": [
  {"class_name": "Lambda", "config": {"name": "lambda", "trainable": true, "function": ["4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMIAAAAdABkAYMBUwCpAk7aAmlkKQHaBGV4ZWMp", null, null],
   "function_type": "lambda", "module": "__main__", "output_shape": null}}]}, "keras_version": "2.15.0", "backend": "tensorflow"}"#;

#[test]
fn judges_json_configs() {
    let c = Format::Json;
    let cases: &[(&str, &[&str])] = &[
        (KERAS3, &[]),
        (
            r#"{"keras_version": "3.6.0", "date_saved": "2024-10-01@12:00:00"}"#,
            &[],
        ),
        (r#"{"a": [1, 2], "class_name": "Foo", "config": {}}"#, &[]),
        (
            KERAS2_LAMBDA,
            &[
                "CRITICAL keras.lambda Keras Lambda layer \"lambda\" carries marshalled Python bytecode",
            ],
        ),
        (
            r#"{"module": "keras.layers", "class_name": "Lambda", "config": {"name": "l", "function": {"class_name": "__lambda__", "config": {"code": "4wEAAA=="}}}}"#,
            &[
                "CRITICAL keras.lambda Keras Lambda layer \"l\" carries marshalled Python bytecode",
                "CRITICAL keras.lambda Keras __lambda__ object carries marshalled Python bytecode",
            ],
        ),
        (
            r#"{"class_name": "Lambda", "config": {"name": "l", "function": "helper", "function_type": "function"}}"#,
            &["HIGH keras.lambda Keras Lambda layer \"l\" calls the Python function helper"],
        ),
        (
            r#"{"class_name": "Lambda", "config": {"name": "l", "function": {"module": "builtins", "class_name": "function", "config": "exec"}}}"#,
            &[
                "HIGH keras.lambda Keras Lambda layer \"l\" calls the Python function builtins.exec",
                "CRITICAL keras.denied-module Keras config references builtins.exec (a module that runs code)",
            ],
        ),
        (
            r#"{"module": "builtins", "class_name": "function", "config": "eval", "registered_name": "function"}"#,
            &[
                "CRITICAL keras.denied-module Keras config references builtins.eval (a module that runs code)",
            ],
        ),
        (
            r#"{"layers": [{"module": "subprocess", "class_name": "Popen", "config": {"args": ["id"]}}]}"#,
            &[
                "CRITICAL keras.denied-module Keras config references subprocess.Popen (a module that runs code)",
            ],
        ),
        (
            r#"{"module": "shutil", "class_name": "function", "config": "rmtree"}"#,
            &[
                "HIGH keras.denied-module Keras config references shutil.rmtree (a module that reaches the system)",
            ],
        ),
        (
            r#"{"module": "my_package.layers", "class_name": "MyLayer", "registered_name": "Custom>MyLayer"}"#,
            &[
                "MEDIUM keras.custom-object Keras config references my_package.layers.MyLayer (a custom object outside Keras)",
            ],
        ),
        (
            r#"{"module": "tensorflow.python.ops.gen_io_ops", "class_name": "function", "config": "read_file"}"#,
            &[],
        ),
        (
            r#"{"module": "tensorflow.io", "class_name": "function", "config": "write_file"}"#,
            &[
                "HIGH keras.denied-module Keras config references tensorflow.io.write_file (TensorFlow file or Python access)",
            ],
        ),
        (
            r#"{"class_name": "TFOpLambda", "config": {"name": "tf.io.read_file", "function": "io.read_file"}}"#,
            &["HIGH keras.tf-op Keras TFOpLambda layer \"tf.io.read_file\" calls tf.io.read_file"],
        ),
        (
            r#"{"class_name": "TFOpLambda", "config": {"name": "tf.numpy_function", "function": "numpy_function"}}"#,
            &[
                "CRITICAL keras.tf-op Keras TFOpLambda layer \"tf.numpy_function\" calls tf.numpy_function",
            ],
        ),
        (
            r#"{"class_name": "TFOpLambda", "config": {"name": "add", "function": "math.add"}}"#,
            &[],
        ),
        (
            r#"{"class_name": "Lambda", "config": {"module": "os", "#,
            &[
                "CRITICAL keras.lambda Keras Lambda layer (in invalid JSON)",
                "CRITICAL keras.denied-module Keras config references module os (in invalid JSON)",
                "unreadable JSON: not valid: EOF while parsing a value at line 1 column 52",
            ],
        ),
    ];
    for (input, expected) in cases {
        check(input.as_bytes(), c, expected);
    }
}

#[test]
fn bounds_json_depth() {
    let deep = format!("{{\"a\": {}1{}}}", "[".repeat(100), "]".repeat(100));
    check(
        deep.as_bytes(),
        Format::Json,
        &["unreadable JSON nested deeper than 64 (limits.nesting_depth_max); the rest not judged"],
    );
}

#[test]
fn sniffs_json() {
    let cases: &[(&[u8], bool)] = &[
        (b"{\"a\": 1}", true),
        (b"  \n{ }", true),
        (b"\xef\xbb\xbf{\"k\"", true),
        (b"[1, 2]", false),
        (b"{a}", false),
        (b"{}\x00\x01", false),
        (b"{\"key\"  : 1", true),
        (b"{\"unfinished", true),
        (b"{\"k\x01\": 1}", false),
        (b"{\"k\" 1}", false),
        (b"", false),
    ];
    for (input, expected) in cases {
        assert_eq!(sniff_json(input), *expected, "{input:?}");
    }
}

// ---- Minimal HDF5 writer: just what h5py writes for root attributes. ----

fn pad8(mut v: Vec<u8>) -> Vec<u8> {
    v.resize(v.len().div_ceil(8) * 8, 0);
    v
}

fn u16le(v: usize) -> [u8; 2] {
    (v as u16).to_le_bytes()
}

fn fixed_string_type(size: usize) -> Vec<u8> {
    [&[0x13u8, 0, 0, 0][..], &(size as u32).to_le_bytes()].concat()
}

fn vlen_string_type() -> Vec<u8> {
    [
        &[0x19u8, 0x01, 0, 0][..],
        &16u32.to_le_bytes(),
        &fixed_string_type(1),
    ]
    .concat()
}

enum Value<'a> {
    Fixed(&'a str),
    /// (global heap collection address, object index)
    Heap(u64, u16),
}

/// An attribute message body; `version` 1 (padded, v1 headers) or 3.
fn attribute(version: u8, name: &str, value: &Value<'_>) -> Vec<u8> {
    let name = format!("{name}\0");
    let (dt, data) = match value {
        Value::Fixed(s) => (fixed_string_type(s.len()), s.as_bytes().to_vec()),
        Value::Heap(addr, index) => (
            vlen_string_type(),
            [
                &9u32.to_le_bytes()[..],
                &addr.to_le_bytes(),
                &u32::from(*index).to_le_bytes(),
            ]
            .concat(),
        ),
    };
    let ds: Vec<u8> = if version == 1 {
        vec![1, 0, 0, 0, 0, 0, 0, 0]
    } else {
        vec![2, 0, 0, 0]
    };
    let sizes = [u16le(name.len()), u16le(dt.len()), u16le(ds.len())].concat();
    if version == 1 {
        [
            vec![1, 0],
            sizes,
            pad8(name.into_bytes()),
            pad8(dt),
            pad8(ds),
            data,
        ]
        .concat()
    } else {
        [vec![3, 0], sizes, vec![0], name.into_bytes(), dt, ds, data].concat()
    }
}

/// A v1 header message.
fn msg_v1(kind: usize, data: Vec<u8>) -> Vec<u8> {
    let data = pad8(data);
    [&u16le(kind)[..], &u16le(data.len()), &[0, 0, 0, 0], &data].concat()
}

fn continuation(addr: u64, len: u64) -> Vec<u8> {
    [addr.to_le_bytes(), len.to_le_bytes()].concat()
}

fn global_heap(objects: &[&str]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, obj) in objects.iter().enumerate() {
        body.extend(u16le(i + 1));
        body.extend([1, 0, 0, 0, 0, 0]);
        body.extend((obj.len() as u64).to_le_bytes());
        body.extend(pad8(obj.as_bytes().to_vec()));
    }
    body.extend([0u8; 16]);
    let size = 16 + body.len() as u64;
    [&b"GCOL\x01\0\0\0"[..], &size.to_le_bytes(), &body].concat()
}

const SIG: &[u8] = b"\x89HDF\r\n\x1a\n";

/// Version 0 superblock (96 bytes) + v1 root header at 96 with `messages`, then
/// `tail` (continuation blocks, heaps) at `96 + 16 + messages`.
fn h5_v0(messages: &[Vec<u8>], tail: &[u8]) -> Vec<u8> {
    let body = messages.concat();
    let mut out = SIG.to_vec();
    out.extend([0, 0, 0, 0, 0, 8, 8, 0, 4, 0, 16, 0, 0, 0, 0, 0]);
    out.extend(0u64.to_le_bytes());
    out.extend(u64::MAX.to_le_bytes());
    out.extend(0u64.to_le_bytes());
    out.extend(u64::MAX.to_le_bytes());
    out.extend(0u64.to_le_bytes());
    out.extend(96u64.to_le_bytes());
    out.extend([0u8; 24]);
    assert_eq!(out.len(), 96);
    out.extend([1, 0]);
    out.extend(u16le(messages.len()));
    out.extend(1u32.to_le_bytes());
    out.extend((body.len() as u32).to_le_bytes());
    out.extend([0u8; 4]);
    out.extend(body);
    out.extend(tail);
    out
}

/// Version 2 superblock (48 bytes) + OHDR root header at 48 with v2 messages.
fn h5_v2(messages: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = SIG.to_vec();
    out.extend([2, 8, 8, 0]);
    out.extend(0u64.to_le_bytes());
    out.extend(u64::MAX.to_le_bytes());
    out.extend(0u64.to_le_bytes());
    out.extend(48u64.to_le_bytes());
    out.extend([0u8; 4]);
    let mut body = Vec::new();
    for (kind, data) in messages {
        body.push(*kind);
        body.extend(u16le(data.len()));
        body.push(0);
        body.extend(data);
    }
    out.extend(b"OHDR\x02\x02");
    out.extend((body.len() as u32).to_le_bytes());
    out.extend(body);
    out.extend([0u8; 4]);
    out
}

#[test]
fn reads_h5_root_attributes() {
    let h = Format::Hdf5;
    let lambda = msg_v1(
        0x0C,
        attribute(1, "model_config", &Value::Fixed(KERAS2_LAMBDA)),
    );
    let keras_version = msg_v1(0x0C, attribute(1, "keras_version", &Value::Fixed("2.15.0")));

    // model_config in the global heap, reached through a continuation block.
    let cont_len = msg_v1(0x0C, attribute(1, "model_config", &Value::Heap(0, 1))).len() as u64;
    let head = [keras_version.clone(), msg_v1(0x10, continuation(0, 0))].concat();
    let cont_at = 96 + 16 + head.len() as u64;
    let heap_at = cont_at + cont_len;
    let heap_msg = msg_v1(0x0C, attribute(1, "model_config", &Value::Heap(heap_at, 2)));
    let evil = r#"{"module": "posix", "class_name": "function", "config": "system"}"#;
    let tail = [heap_msg, global_heap(&["unrelated", evil])].concat();
    let via_heap = h5_v0(
        &[
            keras_version.clone(),
            msg_v1(0x10, continuation(cont_at, cont_len)),
        ],
        &tail,
    );

    let benign = h5_v0(
        &[
            keras_version.clone(),
            msg_v1(0x0C, attribute(1, "model_config", &Value::Fixed(KERAS3))),
        ],
        &[],
    );
    let truncated = h5_v0(
        &[lambda.clone(), msg_v1(0x10, continuation(1 << 20, 64))],
        &[],
    );
    let dense = [
        vec![0u8, 0],
        4096u64.to_le_bytes().to_vec(),
        8192u64.to_le_bytes().to_vec(),
    ]
    .concat();
    let v2 = h5_v2(&[
        (
            0x0C,
            attribute(
                3,
                "training_config",
                &Value::Fixed(r#"{"loss": {"module": "my.losses", "class_name": "Focal"}}"#),
            ),
        ),
        (0x15, dense),
    ]);
    let cases: Vec<(Vec<u8>, Vec<&str>)> = vec![
        (benign, vec![]),
        (h5_v0(&[keras_version], &[]), vec![]),
        (
            h5_v0(&[lambda], &[]),
            vec![
                "CRITICAL keras.lambda Keras Lambda layer \"lambda\" carries marshalled Python bytecode",
            ],
        ),
        (
            via_heap,
            vec![
                "CRITICAL keras.denied-module Keras config references posix.system (a module that runs code)",
            ],
        ),
        (
            truncated,
            vec![
                "CRITICAL keras.lambda Keras Lambda layer \"lambda\" carries marshalled Python bytecode",
                "unreadable HDF5: 64-byte structure runs past the end of the file",
            ],
        ),
        (
            v2,
            vec![
                "MEDIUM keras.custom-object Keras config references my.losses.Focal (a custom object outside Keras)",
                "MEDIUM keras.h5-unread-attributes HDF5 root group holds dense attribute storage that could not be read (146-byte structure runs past the end of the file); a Keras config there is not checked",
                "unreadable HDF5: dense attribute storage that could not be read (146-byte structure runs past the end of the file)",
            ],
        ),
        (
            [SIG, &[9u8; 40][..]].concat(),
            vec!["unreadable HDF5: unsupported superblock version 9"],
        ),
    ];
    for (input, expected) in cases {
        check(&input, h, &expected);
    }
}

#[test]
fn survives_garbage_h5() {
    // Every truncation and a sweep of byte flips: never panics, always finishes.
    let file = h5_v0(
        &[
            msg_v1(0x0C, attribute(1, "model_config", &Value::Heap(200, 1))),
            msg_v1(0x10, continuation(96, 64)),
        ],
        &global_heap(&[KERAS2_LAMBDA]),
    );
    for cut in 0..file.len() {
        let _ = Scanner::default().scan(&mut Cursor::new(file[..cut].to_vec()));
    }
    for i in 8..file.len() {
        let mut bad = file.clone();
        bad[i] ^= 0xff;
        let _ = Scanner::default().scan(&mut Cursor::new(bad));
    }
}

#[test]
fn reads_real_h5py_files() {
    let lambda =
        "CRITICAL keras.lambda Keras Lambda layer \"lambda\" carries marshalled Python bytecode";
    let cases: &[(&[u8], &[&str])] = &[
        (include_bytes!("fixtures/keras2_dense.h5"), &[]),
        (include_bytes!("fixtures/keras2_lambda.h5"), &[lambda]),
        (include_bytes!("fixtures/vlen_lambda.h5"), &[lambda]),
        (include_bytes!("fixtures/latest_lambda.h5"), &[lambda]),
        (
            include_bytes!("fixtures/dense_storage_lambda.h5"),
            &[lambda],
        ),
    ];
    for (input, expected) in cases {
        check(input, Format::Hdf5, expected);
    }
}

#[test]
fn survives_damaged_real_files() {
    let files: [&[u8]; 2] = [
        include_bytes!("fixtures/dense_storage_lambda.h5"),
        include_bytes!("fixtures/vlen_lambda.h5"),
    ];
    for file in files {
        for cut in (0..file.len()).step_by(7) {
            let _ = Scanner::default().scan(&mut Cursor::new(file[..cut].to_vec()));
        }
        for i in 8..file.len() {
            let mut bad = file.to_vec();
            bad[i] ^= 0x55;
            let _ = Scanner::default().scan(&mut Cursor::new(bad));
        }
    }
}
