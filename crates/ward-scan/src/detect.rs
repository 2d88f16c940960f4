//! Recognising a format from its first bytes, never from a name or media type.

use serde::{Deserialize, Serialize};

/// How many leading bytes [`detect`] looks at. Callers pass at least this many when
/// the input has them.
pub const SNIFF_BYTES: usize = 1024;

/// A format the scanner recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// A Python pickle stream (protocols 0–5), possibly several concatenated; this
    /// covers joblib files and the legacy raw PyTorch format.
    Pickle,
    /// A zip archive: PyTorch checkpoints, Keras v3, `.npz` and plain zips.
    Zip,
    /// A POSIX/GNU tar archive (including the legacy PyTorch tar format).
    Tar,
    /// gzip-compressed data.
    Gzip,
    /// zlib-compressed data (joblib's default compressor).
    Zlib,
    /// Zstandard-compressed data.
    Zstd,
    /// A 7z archive.
    SevenZip,
    /// bzip2-compressed data (joblib `.bz2`).
    Bzip2,
    /// xz-compressed data (joblib `.xz`).
    Xz,
    /// Raw `.lzma` ("LZMA alone") data (joblib `.lzma`).
    Lzma,
    /// LZ4 frames (joblib `.lz4`).
    Lz4,
    /// A NumPy `.npy` array.
    Numpy,
    /// HDF5 (Keras H5 models).
    Hdf5,
    /// A JSON document (Keras `config.json`, configs inside archives).
    Json,
    /// A TensorFlow SavedModel protocol buffer (`saved_model.pb`).
    SavedModel,
    /// An ONNX model protocol buffer.
    Onnx,
    /// A GGUF model (llama.cpp).
    Gguf,
    /// A safetensors file.
    Safetensors,
    /// Nothing the scanner knows; such data cannot carry code for any loader it covers.
    Unknown,
}

impl Format {
    /// The kebab-case name, as printed and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pickle => "pickle",
            Format::Zip => "zip",
            Format::Tar => "tar",
            Format::Gzip => "gzip",
            Format::Zlib => "zlib",
            Format::Zstd => "zstd",
            Format::SevenZip => "seven-zip",
            Format::Bzip2 => "bzip2",
            Format::Xz => "xz",
            Format::Lzma => "lzma",
            Format::Lz4 => "lz4",
            Format::Numpy => "numpy",
            Format::Hdf5 => "hdf5",
            Format::Json => "json",
            Format::SavedModel => "saved-model",
            Format::Onnx => "onnx",
            Format::Gguf => "gguf",
            Format::Safetensors => "safetensors",
            Format::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Recognises a format from the first bytes of an input (up to [`SNIFF_BYTES`]).
///
/// Magic numbers are checked first; the weaker, structural signals (a pickle without a
/// PROTO opcode, protocol buffers, JSON) last. A zip whose central directory sits at the
/// end of otherwise unrecognised data is found by the scanner, which also looks at the
/// tail of seekable inputs.
pub fn detect(head: &[u8]) -> Format {
    const MAGICS: &[(&[u8], Format)] = &[
        (b"PK\x03\x04", Format::Zip),
        (b"PK\x05\x06", Format::Zip),
        (b"PK\x07\x08", Format::Zip),
        (b"\x1f\x8b", Format::Gzip),
        (b"\x28\xb5\x2f\xfd", Format::Zstd),
        (b"7z\xbc\xaf\x27\x1c", Format::SevenZip),
        (b"\xfd7zXZ\x00", Format::Xz),
        (b"\x04\x22\x4d\x18", Format::Lz4),
        (b"\x93NUMPY", Format::Numpy),
        (b"\x89HDF\r\n\x1a\n", Format::Hdf5),
        (b"GGUF", Format::Gguf),
    ];
    if let Some((_, format)) = MAGICS.iter().find(|(magic, _)| head.starts_with(magic)) {
        return *format;
    }
    if head.get(257..262) == Some(b"ustar") {
        return Format::Tar;
    }
    if crate::archive::compress::sniff_bzip2(head) {
        return Format::Bzip2;
    }
    if crate::formats::safetensors::sniff(head) {
        return Format::Safetensors;
    }
    if crate::pickle::sniff(head) {
        return Format::Pickle;
    }
    if crate::archive::compress::sniff_zlib(head) {
        return Format::Zlib;
    }
    if crate::archive::compress::sniff_lzma(head) {
        return Format::Lzma;
    }
    if crate::formats::savedmodel::sniff(head) {
        return Format::SavedModel;
    }
    if crate::formats::onnx::sniff(head) {
        return Format::Onnx;
    }
    if crate::formats::keras::sniff_json(head) {
        return Format::Json;
    }
    Format::Unknown
}
