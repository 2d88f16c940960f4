//! Compressed streams: gzip, zlib and Zstandard; the decompressed data is scanned as a member.

use crate::{Analyzer, Format, Scan, Source};

/// gzip streams.
pub struct GzipAnalyzer;
/// zlib streams (joblib's default compression).
pub struct ZlibAnalyzer;
/// Zstandard streams.
pub struct ZstdAnalyzer;

impl Analyzer for GzipAnalyzer {
    fn format(&self) -> Format {
        Format::Gzip
    }

    fn analyse(&self, _src: &mut dyn Source, scan: &mut Scan<'_>) {
        scan.unreadable(None, "not analysed yet");
    }
}

impl Analyzer for ZlibAnalyzer {
    fn format(&self) -> Format {
        Format::Zlib
    }

    fn analyse(&self, _src: &mut dyn Source, scan: &mut Scan<'_>) {
        scan.unreadable(None, "not analysed yet");
    }
}

impl Analyzer for ZstdAnalyzer {
    fn format(&self) -> Format {
        Format::Zstd
    }

    fn analyse(&self, _src: &mut dyn Source, scan: &mut Scan<'_>) {
        scan.unreadable(None, "not analysed yet");
    }
}

/// Whether the first bytes are a zlib header (CMF/FLG with a valid check).
pub fn sniff_zlib(_head: &[u8]) -> bool {
    false
}
