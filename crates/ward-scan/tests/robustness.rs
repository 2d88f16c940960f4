//! Robustness: thousands of mutated inputs of every format family are scanned with
//! tight limits. The scanner must not panic, must keep its output and its count of
//! bytes read within bounds set by the limits, and must finish (the test finishing is
//! the proof; there are no timing asserts).
//!
//! Deterministic and self-contained: the seeds are built here (or are the committed
//! HDF5 fixtures) and mutated by a fixed-seed xorshift generator, so a failure names a
//! family and a round that reproduce exactly. The coverage-guided counterpart is the
//! cargo-fuzz project in `fuzz/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Cursor, Write};

use ward_scan::{Limits, Report, Scanner, Severity};

/// Mutated inputs scanned per family; `WARD_ROBUSTNESS_ROUNDS` raises it for a
/// longer soak (the mutations of the first rounds stay the same).
fn rounds() -> usize {
    std::env::var("WARD_ROBUSTNESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6000)
}

/// Limits small enough that every scan is quick and bounded.
fn limits() -> Limits {
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

/// Scans every seed (each must be found at least HIGH, so the mutations start from
/// inputs that reach deep into the parser), then [`rounds`] mutations of them, each
/// passed through `wrap` (identity, or a compressor so that the mutated bytes reach
/// the analysers as a forward-only or spooled archive member).
fn check(family: &str, seeds: &[Vec<u8>], wrap: fn(Vec<u8>) -> Vec<u8>) {
    let limits = limits();
    let scanner = Scanner::new(limits.clone());
    for (i, seed) in seeds.iter().enumerate() {
        let seed = wrap(seed.clone());
        let report = scanner.scan(&mut Cursor::new(&seed));
        let worst = report.findings.iter().map(|f| f.severity).max();
        assert!(
            worst >= Some(Severity::High),
            "{family} seed {i} is not found: {report:#?}"
        );
        bounded(&limits, seed.len(), &report, family, i);
    }
    let mut rng = Rng::new(family);
    let mut found = 0;
    let rounds = rounds();
    for round in 0..rounds {
        let seed = &seeds[rng.below(seeds.len())];
        let input = wrap(mutate(&mut rng, seed));
        let report = scanner.scan(&mut Cursor::new(&input));
        bounded(&limits, input.len(), &report, family, round);
        found += usize::from(report.findings.iter().any(|f| f.severity >= Severity::High));
    }
    // Mutations must leave many inputs parseable deep enough to find the payload, or
    // the test only exercises the format detection.
    assert!(
        found >= rounds / 50,
        "{family}: only {found} mutated inputs found"
    );
}

/// The bounds every report on arbitrary input keeps.
fn bounded(limits: &Limits, input_len: usize, report: &Report, family: &str, round: usize) {
    // Each archive level may re-read what lies below it: the input, what was
    // decompressed or spooled, and overlapping zip entries once each.
    let levels = u64::from(limits.archive_depth_max) + 1;
    let per_level = input_len as u64 + limits.decompressed_bytes_max + limits.spool_bytes_max;
    let bytes_max = per_level * levels * (limits.archive_entries_max + 1);
    let at = format!("{family} round {round}");
    assert!(
        report.bytes_scanned <= bytes_max,
        "{at}: {} bytes scanned",
        report.bytes_scanned
    );
    assert!(report.findings.len() <= limits.findings_max + 1, "{at}");
    let depth_max = limits.archive_depth_max as usize;
    let locations = report.findings.iter().map(|f| &f.location);
    let locations = locations.chain(report.unreadable.iter().map(|u| &u.location));
    for location in locations {
        assert!(location.members.len() <= depth_max, "{at}: {location:?}");
    }
}

/// xorshift64*: small, fast and the same on every platform.
struct Rng(u64);

impl Rng {
    /// Seeded from the family name, so each family explores different mutations.
    fn new(name: &str) -> Self {
        let seed = name.bytes().fold(0x9E37_79B9_7F4A_7C15u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
        });
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Values that break length and count fields: zero, one, sign and width boundaries.
const INTERESTING: [u64; 10] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 40,
    u64::MAX,
];

/// One to three stacked mutations of `seed`.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(3) {
        mutate_once(rng, &mut data);
    }
    data
}

fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>) {
    let len = data.len();
    let at = rng.below(len + 1);
    match rng.below(8) {
        // Flip one bit.
        0 if len > 0 => data[at % len] ^= 1 << rng.below(8),
        // Overwrite a byte with a boundary value.
        1 if len > 0 => data[at % len] = INTERESTING[rng.below(5)] as u8,
        // Truncate.
        2 => data.truncate(at),
        // Delete a chunk.
        3 => {
            let end = (at + 1 + rng.below(64)).min(len);
            data.drain(at.min(end)..end);
        }
        // Duplicate a chunk in place (repeated records, doubled headers).
        4 => {
            let end = (at + 1 + rng.below(256)).min(len);
            let chunk = data[at.min(end)..end].to_vec();
            data.splice(at..at, chunk);
        }
        // Copy a chunk from elsewhere (a header where data should be).
        5 => {
            let from = rng.below(len);
            let end = (from + 1 + rng.below(64)).min(len);
            let chunk = data[from.min(end)..end].to_vec();
            data.splice(at..at, chunk);
        }
        // Insert random bytes.
        6 => {
            let chunk: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
            data.splice(at..at, chunk);
        }
        // Corrupt a length or count field: a boundary value or a value near the
        // input's size, as 2, 4 or 8 bytes in either byte order.
        _ => {
            let value = match rng.below(3) {
                0 => INTERESTING[rng.below(INTERESTING.len())],
                1 => (len as u64)
                    .wrapping_add(rng.below(3) as u64)
                    .wrapping_sub(1),
                _ => rng.next() >> (rng.below(64)),
            };
            let width = [2, 4, 8][rng.below(3)];
            let bytes = if rng.below(2) == 0 {
                value.to_le_bytes()[..width].to_vec()
            } else {
                value.to_be_bytes()[8 - width..].to_vec()
            };
            for (i, b) in bytes.into_iter().enumerate() {
                if let Some(slot) = data.get_mut(at + i) {
                    *slot = b;
                }
            }
        }
    }
}

// ---- Seed builders -------------------------------------------------------------

/// Protocol 2: `posix.system("id")`.
const PICKLE_P2: &[u8] = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
/// Protocol 4 with a frame, memo and `STACK_GLOBAL`: `builtins.exec(...)`.
const PICKLE_P4: &[u8] = b"\x80\x04\x95\x27\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04exec\x94\x93\x94\x8c\x0bprint('hi')\x94\x85\x94R\x94.";
/// Protocol 0: `os.system('id')` with a mark and a tuple.
const PICKLE_P0: &[u8] = b"cos\nsystem\n(S'id'\ntR.";
/// A torch-like state dict (persistent ids, dict, rebuild call) that then calls
/// `subprocess.Popen`.
const PICKLE_TORCH: &[u8] = b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storageq\x03ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x000q\x05X\x03\x00\x00\x00cpuq\x06K\x04tq\x07QK\x00K\x04\x85K\x01\x85\x89ccollections\nOrderedDict\n)Rq\x08tq\x09Rq\x0as0csubprocess\nPopen\nX\x02\x00\x00\x00idq\x0b\x85R.";

fn pickles() -> Vec<Vec<u8>> {
    [PICKLE_P2, PICKLE_P4, PICKLE_P0, PICKLE_TORCH]
        .map(<[u8]>::to_vec)
        .to_vec()
}

/// A zip of `(name, data, deflated)` entries with correct CRCs and a central directory.
fn zip(entries: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, deflated) in entries {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let stored = if *deflated {
            deflate(data)
        } else {
            data.to_vec()
        };
        let method: u16 = if *deflated { 8 } else { 0 };
        let common = [
            &20u16.to_le_bytes()[..],
            &0u16.to_le_bytes(),
            &method.to_le_bytes(),
            &0u16.to_le_bytes(),
            &0x21u16.to_le_bytes(),
            &crc.sum().to_le_bytes(),
            &(stored.len() as u32).to_le_bytes(),
            &(data.len() as u32).to_le_bytes(),
            &(name.len() as u16).to_le_bytes(),
            &0u16.to_le_bytes(),
        ]
        .concat();
        let offset = out.len() as u32;
        out.extend(b"PK\x03\x04");
        out.extend(&common);
        out.extend(name.as_bytes());
        out.extend(&stored);
        central.extend(b"PK\x01\x02\x14\x00");
        central.extend(&common);
        central.extend([0u8; 8]);
        central.extend(0u32.to_le_bytes());
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let n = entries.len() as u16;
    let cd_at = out.len() as u32;
    out.extend(&central);
    out.extend(b"PK\x05\x06\x00\x00\x00\x00");
    for v in [n, n] {
        out.extend(v.to_le_bytes());
    }
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_at.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

fn zips() -> Vec<Vec<u8>> {
    let torch = [
        ("archive/data.pkl", PICKLE_TORCH, false),
        ("archive/data/0", &[0u8; 16][..], false),
        ("archive/version", b"3\n", false),
    ];
    let deflated = [
        ("archive/data.pkl", PICKLE_P2, true),
        ("../evil.pkl", PICKLE_P0, true),
    ];
    let inner = zip(&[("data.pkl", PICKLE_P4, false)]);
    let keras = [
        (
            "metadata.json",
            br#"{"keras_version": "3.6.0"}"#.as_slice(),
            false,
        ),
        ("config.json", KERAS_CONFIG.as_bytes(), true),
    ];
    vec![
        zip(&torch),
        zip(&deflated),
        zip(&[("inner.zip", &inner, false), ("x.npy", &npy_object(), true)]),
        zip(&keras),
    ]
}

/// A ustar member: a header (with its checksum) and the data padded to 512 bytes.
fn tar_member(name: &str, kind: u8, link: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    let mut put = |at: usize, s: &[u8]| h[at..at + s.len()].copy_from_slice(s);
    put(0, name.as_bytes());
    put(100, b"0000644\0");
    put(108, b"0000000\0");
    put(116, b"0000000\0");
    put(124, format!("{:011o}\0", data.len()).as_bytes());
    put(136, b"00000000000\0");
    put(148, b"        ");
    put(156, &[kind]);
    put(157, link.as_bytes());
    put(257, b"ustar\x0000");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn tar(members: &[Vec<u8>]) -> Vec<u8> {
    let mut out = members.concat();
    out.extend([0u8; 1024]);
    out
}

fn tars() -> Vec<Vec<u8>> {
    vec![
        tar(&[
            tar_member("pickle", b'0', "", b"\x80\x02K\x03."),
            tar_member("tensors", b'0', "", PICKLE_P2),
            tar_member("storages", b'0', "", &[0u8; 100]),
        ]),
        tar(&[
            tar_member("link", b'2', "../../etc/passwd", b""),
            tar_member("model.pkl.gz", b'0', "", &gzip(PICKLE_P4)),
        ]),
    ]
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn compressed() -> Vec<Vec<u8>> {
    let data = [PICKLE_P2, &[b'N'; 200][..], b"0", PICKLE_P4].concat();
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(&data).unwrap();
    let mut bz2 = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz2.write_all(&data).unwrap();
    let mut xz = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
    xz.write_all(&data).unwrap();
    let options = lzma_rust2::LzmaOptions::default();
    let mut lzma = lzma_rust2::LzmaWriter::new_use_header(Vec::new(), &options, None).unwrap();
    lzma.write_all(&data).unwrap();
    let mut lz4 = lz4_flex::frame::FrameEncoder::new(Vec::new());
    lz4.write_all(&data).unwrap();
    let mut zstd = Vec::new();
    ruzstd::encoding::compress(
        &data[..],
        &mut zstd,
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    vec![
        gzip(&data),
        zlib.finish().unwrap(),
        bz2.finish().unwrap(),
        xz.finish().unwrap(),
        lzma.finish().unwrap(),
        lz4.finish().unwrap(),
        zstd,
        gzip(&tars()[0]),
    ]
}

fn sevenzips() -> Vec<Vec<u8>> {
    use sevenz_rust2::{ArchiveEntry, ArchiveWriter};
    let archive = |entries: &[(&str, &[u8])]| {
        let mut writer = ArchiveWriter::new(Cursor::new(Vec::new())).unwrap();
        for (name, data) in entries {
            let entry = ArchiveEntry::new_file(name);
            writer
                .push_archive_entry(entry, Some(Cursor::new(data.to_vec())))
                .unwrap();
        }
        writer.finish().unwrap().into_inner()
    };
    vec![
        archive(&[("data.pkl", PICKLE_P2)]),
        archive(&[("a.bin", &[7u8; 300]), ("b.pkl", PICKLE_P0)]),
    ]
}

/// A version 1.0 `.npy` header for `descr` and `shape`, padded as NumPy pads it.
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

fn npy_object() -> Vec<u8> {
    npy("'|O'", "(1,)", PICKLE_P4)
}

fn numpys() -> Vec<Vec<u8>> {
    vec![
        npy_object(),
        npy("[('a', '<f4'), ('b', '|O')]", "(2,)", PICKLE_P2),
    ]
}

fn safetensors_file(header: &str, data_len: usize) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(vec![0u8; data_len]);
    out
}

fn safetensors() -> Vec<Vec<u8>> {
    let overlap = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
    let out_of_range = r#"{"a":{"dtype":"F16","shape":[2,2],"data_offsets":[0,800]}}"#;
    vec![
        safetensors_file(overlap, 12),
        safetensors_file(out_of_range, 8),
    ]
}

fn gguf_string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// A version 3 GGUF file: a few metadata values, a string array and a chat template
/// that escapes to Python internals.
fn gguf() -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend(1u64.to_le_bytes());
    out.extend(4u64.to_le_bytes());
    gguf_string(&mut out, "general.architecture");
    out.extend(8u32.to_le_bytes());
    gguf_string(&mut out, "llama");
    gguf_string(&mut out, "llama.context_length");
    out.extend(4u32.to_le_bytes());
    out.extend(4096u32.to_le_bytes());
    gguf_string(&mut out, "tokenizer.ggml.tokens");
    out.extend(9u32.to_le_bytes());
    out.extend(8u32.to_le_bytes());
    out.extend(3u64.to_le_bytes());
    for token in ["<s>", "</s>", "a"] {
        gguf_string(&mut out, token);
    }
    gguf_string(&mut out, "tokenizer.chat_template");
    out.extend(8u32.to_le_bytes());
    gguf_string(
        &mut out,
        "{% for m in messages %}{{ m.content }}{% endfor %}{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    );
    out.extend([0u8; 64]);
    out
}

/// Protocol buffer encoders: varint, a varint field, a length-delimited field.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn pb_int(number: u64, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(&mut out, number << 3);
    varint(&mut out, v);
    out
}

fn pb_bytes(number: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(&mut out, (number << 3) | 2);
    varint(&mut out, payload.len() as u64);
    out.extend(payload);
    out
}

fn pb_msg(number: u64, fields: &[Vec<u8>]) -> Vec<u8> {
    pb_bytes(number, &fields.concat())
}

/// An ONNX model: a standard op, a custom-domain op, a subgraph in an attribute and
/// an initializer stored outside the model at a path that escapes its directory.
fn onnx() -> Vec<Vec<u8>> {
    let node = |op: &str, domain: &str| {
        let mut fields = vec![
            pb_bytes(1, b"x"),
            pb_bytes(2, b"y"),
            pb_bytes(4, op.as_bytes()),
        ];
        fields.push(pb_bytes(7, domain.as_bytes()));
        pb_msg(1, &fields)
    };
    let subgraph = pb_msg(7, &[node("Relu", "")]);
    let if_node = pb_msg(
        1,
        &[
            pb_bytes(4, b"If"),
            pb_msg(5, &[pb_bytes(1, b"then_branch"), subgraph]),
        ],
    );
    let external = pb_msg(
        5,
        &[
            pb_int(1, 4),
            pb_int(2, 1),
            pb_bytes(8, b"w"),
            pb_msg(
                13,
                &[pb_bytes(1, b"location"), pb_bytes(2, b"../../etc/passwd")],
            ),
            pb_int(14, 1),
        ],
    );
    let graph = pb_msg(
        7,
        &[
            node("Relu", ""),
            node("Exec", "evil.custom"),
            if_node,
            external,
        ],
    );
    let model = [
        pb_int(1, 8),
        pb_bytes(2, b"pytorch"),
        graph,
        pb_msg(8, &[pb_bytes(1, b""), pb_int(2, 17)]),
    ];
    vec![model.concat()]
}

/// A SavedModel whose graph reads and writes files.
fn savedmodel() -> Vec<Vec<u8>> {
    let node = |name: &str, op: &str| {
        pb_msg(
            1,
            &[pb_bytes(1, name.as_bytes()), pb_bytes(2, op.as_bytes())],
        )
    };
    let function = pb_msg(
        2,
        &[pb_msg(
            1,
            &[
                pb_msg(1, &[pb_bytes(1, b"f")]),
                pb_msg(3, &[pb_bytes(1, b"w"), pb_bytes(2, b"WriteFile")]),
            ],
        )],
    );
    let graph = pb_msg(2, &[node("c", "Const"), node("r", "ReadFile"), function]);
    let meta = pb_msg(2, &[pb_msg(1, &[pb_bytes(4, b"serve")]), graph]);
    vec![[pb_int(1, 1), meta].concat()]
}

/// A Keras config with a Lambda layer (marshalled Python code).
const KERAS_CONFIG: &str = r#"{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 4]}}, {"class_name": "Lambda", "config": {"name": "evil", "function": ["4wEAAAAAAAAAAAAAAAEAAAADAAAA", null, null], "function_type": "lambda"}}, {"class_name": "Dense", "config": {"units": 2, "activation": "os.system"}}]}}"#;

fn keras_json() -> Vec<Vec<u8>> {
    vec![KERAS_CONFIG.as_bytes().to_vec()]
}

fn hdf5() -> Vec<Vec<u8>> {
    [
        &include_bytes!("../src/formats/keras/fixtures/keras2_lambda.h5")[..],
        include_bytes!("../src/formats/keras/fixtures/latest_lambda.h5"),
        include_bytes!("../src/formats/keras/fixtures/dense_storage_lambda.h5"),
        include_bytes!("../src/formats/keras/fixtures/vlen_lambda.h5"),
    ]
    .map(<[u8]>::to_vec)
    .to_vec()
}

#[test]
fn pickle_survives_mutation() {
    check("pickle", &pickles(), same);
}

#[test]
fn zip_survives_mutation() {
    check("zip", &zips(), same);
}

#[test]
fn tar_survives_mutation() {
    check("tar", &tars(), same);
}

#[test]
fn compressed_streams_survive_mutation() {
    check("compressed", &compressed(), same);
}

#[test]
fn sevenzip_survives_mutation() {
    check("7z", &sevenzips(), same);
}

#[test]
fn numpy_survives_mutation() {
    check("numpy", &numpys(), same);
}

#[test]
fn safetensors_survives_mutation() {
    check("safetensors", &safetensors(), same);
}

#[test]
fn gguf_survives_mutation() {
    check("gguf", &[gguf()], same);
}

#[test]
fn onnx_survives_mutation() {
    check("onnx", &onnx(), same);
}

#[test]
fn savedmodel_survives_mutation() {
    check("savedmodel", &savedmodel(), same);
}

#[test]
fn keras_json_survives_mutation() {
    check("keras-json", &keras_json(), same);
}

#[test]
fn hdf5_survives_mutation() {
    check("hdf5", &hdf5(), same);
}

fn same(data: Vec<u8>) -> Vec<u8> {
    data
}

/// Seeds of the formats that archives commonly hold.
fn members() -> Vec<Vec<u8>> {
    [
        pickles(),
        tars(),
        numpys(),
        safetensors(),
        vec![gguf()],
        onnx(),
        savedmodel(),
        keras_json(),
    ]
    .concat()
}

/// Mutated members inside a gzip stream: read forwards, or spooled for formats that
/// need random access.
#[test]
fn streamed_members_survive_mutation() {
    check("streamed", &members(), |data| gzip(&data));
}

/// Mutated members stored in a zip: read in place through a window of the file.
#[test]
fn stored_members_survive_mutation() {
    let seeds = [members(), hdf5()].concat();
    check("stored", &seeds, |data| zip(&[("member", &data, false)]));
}
