//! Compressed streams: gzip, zlib, Zstandard, bzip2, xz, LZMA and LZ4 (the
//! compressors joblib offers); the decompressed data is scanned as one member, streamed.

use std::io::{self, Read};

use flate2::read::{MultiGzDecoder, ZlibDecoder};
use lzma_rust2::{LzmaReader, XzReader};
use ruzstd::decoding::{FrameDecoder, StreamingDecoder};

use super::{Compressed, Counted, Counter, Window, scan_decoded};
use crate::{Analyzer, Format, Scan, Source};

/// gzip streams, all members concatenated as Python's gzip module reads them.
pub struct GzipAnalyzer;
/// zlib streams (joblib's default compression).
pub struct ZlibAnalyzer;
/// Zstandard streams, all frames concatenated.
pub struct ZstdAnalyzer;
/// bzip2 streams (joblib `.bz2`).
pub struct Bzip2Analyzer;
/// xz streams (joblib `.xz`).
pub struct XzAnalyzer;
/// Raw `.lzma` ("LZMA alone") streams (joblib `.lzma`).
pub struct LzmaAnalyzer;
/// LZ4 frames (joblib `.lz4`), all frames concatenated.
pub struct Lz4Analyzer;

/// The codecs, each read through one streaming decoder.
#[derive(Clone, Copy)]
enum Codec {
    Gzip,
    Zlib,
    Zstd,
    Bzip2,
    Xz,
    Lzma,
    Lz4,
}

impl Codec {
    /// The member name the decoded data is scanned under.
    fn member(self) -> &'static str {
        match self {
            Codec::Gzip => "<gzip>",
            Codec::Zlib => "<zlib>",
            Codec::Zstd => "<zstd>",
            Codec::Bzip2 => "<bzip2>",
            Codec::Xz => "<xz>",
            Codec::Lzma => "<lzma>",
            Codec::Lz4 => "<lz4>",
        }
    }

    /// A decoder over `input`, or why there cannot be one.
    fn open<'a>(
        self,
        input: Counted<&'a mut dyn Source>,
        scan: &Scan<'_>,
    ) -> Result<Box<dyn Read + 'a>, String> {
        Ok(match self {
            Codec::Gzip => Box::new(MultiGzDecoder::new(input)),
            Codec::Zlib => Box::new(ZlibDecoder::new(input)),
            Codec::Zstd => Box::new(zstd(input, scan)?),
            Codec::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(input)),
            Codec::Xz => Box::new(XzReader::new_mem_limit(input, true, memory_kb(scan))),
            Codec::Lzma => Box::new(
                LzmaReader::new_mem_limit(input, memory_kb(scan), None)
                    .map_err(|e| e.to_string())?,
            ),
            Codec::Lz4 => Box::new(Lz4Frames(lz4_flex::frame::FrameDecoder::new(Peek::new(
                input,
            )))),
        })
    }

    /// Decodes `src` and scans the output as one member.
    fn analyse(self, src: &mut dyn Source, scan: &mut Scan<'_>) {
        let counter = Counter::default();
        let name = self.member();
        match self.open(counter.wrap(src), scan) {
            Ok(mut decoder) => {
                scan_decoded(
                    scan,
                    name,
                    &mut decoder,
                    Compressed::Counted(counter.clone()),
                    None,
                    false,
                );
            }
            Err(e) => scan.unreadable(Some(0), format!("cannot decode {name}: {e}")),
        }
        scan.count_bytes(counter.get());
    }
}

macro_rules! stream_analyzer {
    ($analyzer:ident, $format:ident) => {
        impl Analyzer for $analyzer {
            fn format(&self) -> Format {
                Format::$format
            }

            fn analyse(&self, src: &mut dyn Source, scan: &mut Scan<'_>) {
                Codec::$format.analyse(src, scan);
            }
        }
    };
}

stream_analyzer!(GzipAnalyzer, Gzip);
stream_analyzer!(ZlibAnalyzer, Zlib);
stream_analyzer!(ZstdAnalyzer, Zstd);
stream_analyzer!(Bzip2Analyzer, Bzip2);
stream_analyzer!(XzAnalyzer, Xz);
stream_analyzer!(LzmaAnalyzer, Lzma);
stream_analyzer!(Lz4Analyzer, Lz4);

/// The decoder memory limit in KiB, as the LZMA decoders take it.
fn memory_kb(scan: &Scan<'_>) -> u32 {
    u32::try_from(scan.limits().decoder_memory_bytes_max / 1024).unwrap_or(u32::MAX)
}

/// A Zstandard decoder over `input` that reads every frame, not only the first, with
/// the window bounded by [`crate::Limits::decoder_memory_bytes_max`].
pub(crate) fn zstd<R: Read>(input: R, scan: &Scan<'_>) -> Result<ZstdFrames<R>, String> {
    let window_max = scan.limits().decoder_memory_bytes_max;
    let decoder = StreamingDecoder::new_with_max_window_size(Peek::new(input), window_max)
        .map_err(|e| e.to_string())?;
    Ok(ZstdFrames {
        current: Some(decoder),
        window_max,
    })
}

/// Concatenated Zstandard frames decoded one after another, as the `zstd` tool does.
pub(crate) struct ZstdFrames<R: Read> {
    current: Option<StreamingDecoder<Peek<R>, FrameDecoder>>,
    window_max: u64,
}

impl<R: Read> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(decoder) = self.current.as_mut() else {
                return Ok(0);
            };
            let n = decoder.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            let Some(decoder) = self.current.take() else {
                return Ok(0);
            };
            let mut input = decoder.into_inner();
            if input.at_end()? {
                return Ok(0);
            }
            let next = StreamingDecoder::new_with_max_window_size(input, self.window_max)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            self.current = Some(next);
        }
    }
}

/// Concatenated LZ4 frames read as one stream, as Python's `lz4.frame` reads them.
struct Lz4Frames<R: Read>(lz4_flex::frame::FrameDecoder<Peek<R>>);

impl<R: Read> Read for Lz4Frames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.0.read(buf)?;
            // Each pass consumes at least a frame header, so this ends with the input.
            if n > 0 || buf.is_empty() || self.0.get_mut().at_end()? {
                return Ok(n);
            }
        }
    }
}

/// A reader that can tell whether it is at its end without losing a byte.
pub(crate) struct Peek<R> {
    inner: R,
    pending: Option<u8>,
}

impl<R: Read> Peek<R> {
    fn new(inner: R) -> Self {
        Peek {
            inner,
            pending: None,
        }
    }

    fn at_end(&mut self) -> io::Result<bool> {
        if self.pending.is_some() {
            return Ok(false);
        }
        let mut byte = [0u8; 1];
        let n = self.inner.read(&mut byte)?;
        self.pending = (n == 1).then_some(byte[0]);
        Ok(n == 0)
    }
}

impl<R: Read> Read for Peek<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match (self.pending.take(), buf.first_mut()) {
            (Some(byte), Some(first)) => {
                *first = byte;
                Ok(1)
            }
            (pending, _) => {
                self.pending = pending;
                self.inner.read(buf)
            }
        }
    }
}

/// A zip LZMA entry (method 14): a 4-byte version/size prefix, 5 property bytes,
/// then raw LZMA data.
pub(crate) fn zip_lzma<'a>(
    mut window: Window<'a>,
    uncompressed: u64,
    scan: &Scan<'_>,
) -> Result<LzmaReader<Window<'a>>, String> {
    let mut head = [0u8; 9];
    window
        .read_exact(&mut head)
        .map_err(|e| format!("LZMA header truncated: {e}"))?;
    let [_, _, _, _, props, d0, d1, d2, d3] = head;
    let dict_size = u32::from_le_bytes([d0, d1, d2, d3]);
    if u64::from(dict_size) > scan.limits().decoder_memory_bytes_max {
        return Err(format!(
            "LZMA dictionary of {dict_size} bytes is over limits.decoder_memory_bytes_max"
        ));
    }
    LzmaReader::new_with_props(window, uncompressed, props, dict_size, None)
        .map_err(|e| e.to_string())
}

/// Whether the first bytes are a zlib stream: CMF says deflate with a window of at
/// most 32 KiB, FCHECK holds, no preset dictionary, and the head inflates cleanly.
pub fn sniff_zlib(head: &[u8]) -> bool {
    let [cmf, flg, ..] = *head else {
        return false;
    };
    let header_ok = cmf & 0x0f == 8
        && cmf >> 4 <= 7
        && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
        && flg & 0x20 == 0;
    header_ok && inflates(head)
}

/// Whether `head` inflates as zlib without error as far as it goes.
fn inflates(head: &[u8]) -> bool {
    let mut out = vec![0u8; 64 << 10];
    let mut inflater = flate2::Decompress::new(true);
    inflater
        .decompress(head, &mut out, flate2::FlushDecompress::None)
        .is_ok()
}

/// Whether the first bytes are a bzip2 stream: `BZh`, a block size digit, then the
/// magic of a block or of the end of stream.
pub fn sniff_bzip2(head: &[u8]) -> bool {
    let block = head.get(4..10);
    head.starts_with(b"BZh")
        && head.get(3).is_some_and(|d| (b'1'..=b'9').contains(d))
        && (block == Some(b"1AY&SY") || block == Some(b"\x17\x72\x45\x38\x50\x90"))
}

/// Whether the first bytes are an `.lzma` ("LZMA alone") header as xz-utils and
/// Python's lzma module write it: properties liblzma accepts (lc + lp <= 4,
/// pb <= 4), a dictionary size of the form
/// 2^n or 2^n + 2^(n-1), a plausible or unknown size, and the range coder's zero byte.
pub fn sniff_lzma(head: &[u8]) -> bool {
    let Some(&[props, d0, d1, d2, d3, s0, s1, s2, s3, s4, s5, s6, s7, first]) = head.get(..14)
    else {
        return false;
    };
    let dict = u32::from_le_bytes([d0, d1, d2, d3]);
    let size = u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]);
    let dict_ok = (12..=30).any(|n| dict == 1 << n || dict == (1 << n) + (1 << (n - 1)));
    let (lc, lp, pb) = (props % 9, props / 9 % 5, props / 45);
    let props_ok = props < 9 * 5 * 5 && lc + lp <= 4 && pb <= 4;
    props_ok && dict_ok && (size == u64::MAX || size < 1 << 48) && first == 0
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;
    use crate::Limits;
    use crate::archive::testing::{PROBE, dispatched, rules, scan, scan_with};

    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    pub(crate) fn bzip2(data: &[u8]) -> Vec<u8> {
        let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    pub(crate) fn xz(data: &[u8]) -> Vec<u8> {
        let mut enc =
            lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    pub(crate) fn lzma(data: &[u8]) -> Vec<u8> {
        let options = lzma_rust2::LzmaOptions::default();
        let mut enc = lzma_rust2::LzmaWriter::new_use_header(Vec::new(), &options, None).unwrap();
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    pub(crate) fn lz4(data: &[u8]) -> Vec<u8> {
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    pub(crate) fn zstd(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        ruzstd::encoding::compress(data, &mut out, ruzstd::encoding::CompressionLevel::Fastest);
        out
    }

    /// Scans `bytes` and checks the member chains dispatched and the rules fired.
    fn check(bytes: &[u8], limits: Limits, members: &[&str], findings: &[&str]) {
        let report = scan_with(bytes, limits);
        assert_eq!(dispatched(&report), members, "{report:#?}");
        assert_eq!(rules(&report), findings, "{report:#?}");
    }

    #[test]
    fn compressed_streams_are_scanned_as_members() {
        let two_members = [gzip(&PROBE[..5]), gzip(&PROBE[5..])].concat();
        let tar = crate::archive::tar::tests::tar(&[
            crate::archive::tar::tests::member("a", b'0', "", PROBE),
            crate::archive::tar::tests::member("b", b'0', "", PROBE),
        ]);
        let (tar_head, tar_tail) = tar.split_at(700);
        let cases: Vec<(Vec<u8>, &[&str])> = vec![
            (gzip(PROBE), &["<gzip>"]),
            (two_members, &["<gzip>"]),
            (zlib(PROBE), &["<zlib>"]),
            (bzip2(PROBE), &["<bzip2>"]),
            (xz(PROBE), &["<xz>"]),
            (lzma(PROBE), &["<lzma>"]),
            (gzip(&gzip(PROBE)), &["<gzip>!/<gzip>"]),
            (zstd(PROBE), &["<zstd>"]),
            (lz4(PROBE), &["<lz4>"]),
            ([lz4(&PROBE[..3]), lz4(&PROBE[3..])].concat(), &["<lz4>"]),
            // A tar split over two frames is read across them.
            (
                [zstd(tar_head), zstd(tar_tail)].concat(),
                &["<zstd>!/a", "<zstd>!/b"],
            ),
            (gzip(b"not a model"), &[]),
        ];
        for (bytes, members) in cases {
            check(&bytes, Limits::default(), members, &[]);
        }
    }

    #[test]
    fn a_bomb_is_stopped_and_reported() {
        let zeros = vec![0u8; 8 << 20];
        let limits = Limits {
            compression_ratio_max: 100,
            ..Limits::default()
        };
        // Unrecognised data is only sniffed, so it takes a member that is read in
        // full (a zip, spooled for random access) to expand the bomb.
        let zip =
            crate::archive::zip::tests::zip(&[crate::archive::zip::tests::stored("z", &zeros)]);
        check(&gzip(&zip), limits.clone(), &[], &["archive.bomb"]);
        check(&gzip(&zeros), limits, &[], &[]);
        let limits = Limits {
            decompressed_bytes_max: 1 << 20,
            ..Limits::default()
        };
        let report = scan_with(&zlib(&zip), limits);
        assert!(
            report
                .unreadable
                .iter()
                .any(|u| u.reason.contains("limits.decompressed_bytes_max")),
            "{report:#?}"
        );
    }

    #[test]
    fn truncated_stream_is_unreadable_not_fatal() {
        let bytes = gzip(&[PROBE, &[7u8; 100_000]].concat());
        let report = scan(bytes.get(..bytes.len() / 2).unwrap());
        assert_eq!(dispatched(&report), ["<gzip>"]);
    }

    type Sniff = fn(&[u8]) -> bool;

    fn check_sniff(sniff: Sniff, head: &[u8], expected: bool) {
        assert_eq!(sniff(head), expected, "{head:02x?}");
    }

    #[test]
    fn sniffers_accept_real_heads_and_reject_noise() {
        let noise: Vec<u8> = (0u32..1024)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let cases: Vec<(Sniff, Vec<u8>, bool)> = vec![
            (sniff_zlib, zlib(b"hello hello hello"), true),
            (sniff_zlib, b"\x78\x9c\xff\xff\xff\xff".to_vec(), false),
            (sniff_zlib, b"\x78\x9d".to_vec(), false),
            (sniff_zlib, noise.clone(), false),
            (sniff_zlib, b"x".to_vec(), false),
            (sniff_bzip2, bzip2(b"abc"), true),
            (sniff_bzip2, bzip2(b""), true),
            (sniff_bzip2, b"BZh9junk".to_vec(), false),
            (sniff_lzma, lzma(b"abc"), true),
            (sniff_lzma, noise, false),
            (sniff_lzma, b"\x5d\x00\x00".to_vec(), false),
        ];
        for (sniff, head, expected) in cases {
            check_sniff(sniff, &head, expected);
        }
    }
}
