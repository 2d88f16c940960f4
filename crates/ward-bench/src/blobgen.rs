//! Deterministic blob content: a fast PRNG stream that can be regenerated at will.
//!
//! A blob is named by `(seed, size_bytes)`. Its bytes are the little-endian words of
//! xoshiro256** seeded through splitmix64, cut at `size_bytes`. Because the stream is a
//! pure function of the seed, the client computes the digest in a first pass and then
//! generates the very same bytes again while uploading, so a 1 GiB blob never sits in
//! memory and a request can be retried (for example after an authentication challenge).

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use sha2::{Digest as _, Sha256};

/// Bytes generated per upload chunk; a multiple of 8 so chunk borders fall on word borders.
pub const UPLOAD_CHUNK_BYTES: usize = 512 * 1024;

/// xoshiro256** by Blackman and Vigna: fast, small state, and good enough statistically
/// that neither compression nor deduplication can shortcut the server's work.
#[derive(Clone, Debug)]
pub struct Xoshiro256 {
    s: [u64; 4],
}

impl Xoshiro256 {
    /// A generator in exactly this state (used to check the reference vectors).
    pub fn from_state(s: [u64; 4]) -> Self {
        Self { s }
    }

    /// A generator whose state is four outputs of splitmix64 started at `seed`, as the
    /// xoshiro authors recommend (it never yields the forbidden all-zero state).
    pub fn from_seed(seed: u64) -> Self {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9e37_79b9_7f4a_7c15);
            splitmix64_mix(sm)
        };
        Self::from_state([next(), next(), next(), next()])
    }

    /// The next 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Fills `buf` with the next outputs as little-endian words. A tail shorter than a word
    /// consumes a whole word, so only the last fill of a stream may have a ragged length.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut words = buf.chunks_exact_mut(8);
        for word in &mut words {
            word.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            let bytes = self.next_u64().to_le_bytes();
            tail.copy_from_slice(&bytes[..tail.len()]);
        }
    }
}

fn splitmix64_mix(z: u64) -> u64 {
    let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A sha256 digest, displayed in the OCI form `sha256:<64 lowercase hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The digest a finished hasher holds.
    pub fn from_hasher(hasher: Sha256) -> Self {
        Self(hasher.finalize().into())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A blob defined by its generator seed and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobSpec {
    /// Seed of the generator; distinct seeds give distinct blobs.
    pub seed: u64,
    /// Length of the blob.
    pub size_bytes: u64,
}

impl BlobSpec {
    /// The blob's bytes as a stream of chunks of `chunk_bytes` (rounded up to a whole word).
    pub fn chunks(&self, chunk_bytes: usize) -> BlobChunks {
        BlobChunks {
            rng: Xoshiro256::from_seed(self.seed),
            remaining_bytes: self.size_bytes,
            chunk_bytes: chunk_bytes.max(8).next_multiple_of(8),
        }
    }

    /// The digest, computed by generating the whole stream once into a reused buffer.
    pub fn digest(&self) -> Sha256Digest {
        let mut chunks = self.chunks(UPLOAD_CHUNK_BYTES);
        let mut buf = vec![0u8; chunks.chunk_bytes];
        let mut hasher = Sha256::new();
        while let Some(len) = chunks.fill_next(&mut buf) {
            hasher.update(&buf[..len]);
        }
        Sha256Digest::from_hasher(hasher)
    }

    /// The whole blob in memory; meant for small blobs only.
    pub fn generate(self) -> Bytes {
        let mut out = Vec::with_capacity(usize::try_from(self.size_bytes).unwrap_or(0));
        for chunk in self.chunks(UPLOAD_CHUNK_BYTES) {
            out.extend_from_slice(&chunk);
        }
        Bytes::from(out)
    }
}

/// The chunks of one blob, generated on demand.
#[derive(Clone, Debug)]
pub struct BlobChunks {
    rng: Xoshiro256,
    remaining_bytes: u64,
    chunk_bytes: usize,
}

impl BlobChunks {
    /// Generates the next chunk into `buf` (at least `chunk_bytes` long) and returns its length.
    pub fn fill_next(&mut self, buf: &mut [u8]) -> Option<usize> {
        let len = self.next_len()?;
        self.rng.fill(&mut buf[..len]);
        self.remaining_bytes -= len as u64;
        Some(len)
    }

    fn next_len(&self) -> Option<usize> {
        if self.remaining_bytes == 0 {
            return None;
        }
        Some(
            usize::try_from(self.remaining_bytes)
                .map_or(self.chunk_bytes, |r| r.min(self.chunk_bytes)),
        )
    }
}

impl Iterator for BlobChunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let mut buf = vec![0u8; self.next_len()?];
        self.fill_next(&mut buf)?;
        Some(Bytes::from(buf))
    }
}

/// A request body: nothing, bytes already in memory, or a generated blob.
#[derive(Debug)]
pub enum ReqBody {
    /// No body.
    Empty,
    /// A body held in memory (small blobs, manifests); taken when sent.
    Full(Option<Bytes>),
    /// A blob generated while it is sent.
    Generated(BlobChunks),
}

impl ReqBody {
    /// A body of `bytes`.
    pub fn full(bytes: Bytes) -> Self {
        Self::Full(Some(bytes))
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = match self.get_mut() {
            ReqBody::Empty => None,
            ReqBody::Full(bytes) => bytes.take(),
            ReqBody::Generated(chunks) => chunks.next(),
        };
        Poll::Ready(next.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Empty => true,
            ReqBody::Full(bytes) => bytes.is_none(),
            ReqBody::Generated(chunks) => chunks.remaining_bytes == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Empty => SizeHint::with_exact(0),
            ReqBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ReqBody::Generated(chunks) => SizeHint::with_exact(chunks.remaining_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn xoshiro256starstar_matches_the_reference_implementation() {
        // First outputs of the authors' C reference (xoshiro256starstar.c) from state {1, 2, 3, 4}.
        let expected: [u64; 10] = [
            11520,
            0,
            1509978240,
            1215971899390074240,
            1216172134540287360,
            607988272756665600,
            16172922978634559625,
            8476171486693032832,
            10595114339597558777,
            2904607092377533576,
        ];
        let mut rng = Xoshiro256::from_state([1, 2, 3, 4]);
        let got: Vec<u64> = (0..expected.len()).map(|_| rng.next_u64()).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn splitmix64_matches_the_reference_implementation() {
        // splitmix64.c started at 0 yields 0xe220a8397b1dcdaf first.
        assert_eq!(splitmix64_mix(0x9e37_79b9_7f4a_7c15), 0xe220_a839_7b1d_cdaf);
    }

    fn collect(spec: BlobSpec, chunk_bytes: usize) -> Vec<u8> {
        spec.chunks(chunk_bytes).flat_map(|c| c.to_vec()).collect()
    }

    #[test]
    fn stream_is_independent_of_chunk_size_and_exactly_as_long_as_asked() {
        for size_bytes in [0u64, 1, 7, 8, 9, 4095, 4096, 1_000_003] {
            let spec = BlobSpec {
                seed: 42,
                size_bytes,
            };
            let reference = collect(spec, 8);
            assert_eq!(reference.len() as u64, size_bytes);
            for chunk_bytes in [1, 16, 1000, 4096, UPLOAD_CHUNK_BYTES] {
                assert_eq!(
                    collect(spec, chunk_bytes),
                    reference,
                    "size {size_bytes} chunk {chunk_bytes}"
                );
            }
        }
    }

    #[test]
    fn streamed_digest_equals_digest_of_the_whole_blob() {
        for size_bytes in [0u64, 5, 3 * UPLOAD_CHUNK_BYTES as u64 + 11] {
            let spec = BlobSpec {
                seed: 7,
                size_bytes,
            };
            let whole = spec.generate();
            assert_eq!(whole.len() as u64, size_bytes);
            assert_eq!(spec.digest(), Sha256Digest::of(&whole));
        }
    }

    #[test]
    fn empty_blob_has_the_well_known_digest() {
        let spec = BlobSpec {
            seed: 1,
            size_bytes: 0,
        };
        assert_eq!(
            spec.digest().to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn distinct_seeds_give_distinct_blobs() {
        let a = BlobSpec {
            seed: 1,
            size_bytes: 64,
        };
        let b = BlobSpec {
            seed: 2,
            size_bytes: 64,
        };
        assert_ne!(a.generate(), b.generate());
        assert_eq!(a.generate(), a.generate());
    }

    #[test]
    fn generated_body_streams_the_blob_and_announces_its_length() {
        let spec = BlobSpec {
            seed: 9,
            size_bytes: 2 * UPLOAD_CHUNK_BYTES as u64 + 3,
        };
        let body = ReqBody::Generated(spec.chunks(UPLOAD_CHUNK_BYTES));
        assert_eq!(body.size_hint().exact(), Some(spec.size_bytes));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let collected = runtime.block_on(body.collect()).unwrap().to_bytes();
        assert_eq!(collected, spec.generate());
    }
}
