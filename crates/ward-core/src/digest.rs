//! Content digests: the only names under which Ward stores bytes.
//!
//! Ward addresses content by sha256 (the default) or sha512 (which the OCI
//! distribution spec lets clients choose). Other algorithms that are valid
//! under the OCI digest grammar parse into [`DigestError::Unsupported`] so the
//! caller can answer with a precise error rather than "malformed".

use std::fmt;
use std::str::FromStr;

use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest as _, Sha256, Sha512};

/// Length in bytes of a sha256 digest.
pub const SHA256_LEN: usize = 32;
/// Length in bytes of a sha512 digest.
pub const SHA512_LEN: usize = 64;

/// A hash algorithm Ward stores content by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub enum Algorithm {
    /// SHA-256, the default everywhere.
    #[default]
    Sha256,
    /// SHA-512, accepted when a client asks for it.
    Sha512,
}

impl Algorithm {
    /// The name used in digest strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Output length in bytes.
    pub fn len_bytes(self) -> usize {
        match self {
            Algorithm::Sha256 => SHA256_LEN,
            Algorithm::Sha512 => SHA512_LEN,
        }
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            other if valid_algorithm(other) => Err(DigestError::Unsupported(other.to_owned())),
            other => Err(DigestError::Malformed(other.to_owned())),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A content digest, displayed as `sha256:<64 hex>` or `sha512:<128 hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    // sha256 uses the first 32 bytes; the rest stay zero so derived Eq/Hash hold.
    bytes: [u8; SHA512_LEN],
}

/// Why a string is not a digest Ward can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The string does not follow the OCI digest grammar, or the encoded part has the wrong form.
    #[error(
        "malformed digest {0:?}: expected sha256:<64 lowercase hex> or sha512:<128 lowercase hex>"
    )]
    Malformed(String),
    /// The string is a well-formed digest of an algorithm Ward does not store by.
    #[error("digest algorithm {0:?} is not supported: Ward stores content by sha256 or sha512")]
    Unsupported(String),
}

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_bytes(Sha256::digest(bytes).into())
    }

    /// The digest of `bytes` under `algorithm`.
    pub fn of_with(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let mut h = Hasher::new(algorithm);
        h.update(bytes);
        h.digest()
    }

    /// Wraps raw sha256 output.
    pub fn from_bytes(raw: [u8; SHA256_LEN]) -> Self {
        let mut bytes = [0u8; SHA512_LEN];
        bytes[..SHA256_LEN].copy_from_slice(&raw);
        Digest {
            algorithm: Algorithm::Sha256,
            bytes,
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The raw digest bytes (32 for sha256, 64 for sha512).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.algorithm.len_bytes()]
    }

    /// The 32 raw bytes of a sha256 digest; `None` for other algorithms.
    pub fn sha256_bytes(&self) -> Option<[u8; SHA256_LEN]> {
        let mut out = [0u8; SHA256_LEN];
        (self.algorithm == Algorithm::Sha256).then(|| {
            out.copy_from_slice(&self.bytes[..SHA256_LEN]);
            out
        })
    }

    /// The lowercase hex encoding, without the algorithm prefix.
    pub fn hex(&self) -> String {
        hex_encode(self.as_bytes())
    }

    /// Parses a bare lowercase hex string of a sha256 digest.
    pub fn from_hex(hex: &str) -> Result<Self, DigestError> {
        Self::from_hex_with(Algorithm::Sha256, hex)
    }

    /// Parses a bare lowercase hex string for `algorithm`.
    pub fn from_hex_with(algorithm: Algorithm, hex: &str) -> Result<Self, DigestError> {
        let malformed = || DigestError::Malformed(hex.to_owned());
        let len = algorithm.len_bytes();
        if hex.len() != len * 2 {
            return Err(malformed());
        }
        let mut bytes = [0u8; SHA512_LEN];
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or_else(malformed)?;
            let lo = hex_value(pair[1]).ok_or_else(malformed)?;
            bytes[i] = (hi << 4) | lo;
        }
        Ok(Digest { algorithm, bytes })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((algorithm, encoded)) = s.split_once(':') else {
            return Err(DigestError::Malformed(s.to_owned()));
        };
        if !valid_algorithm(algorithm) || !valid_encoded(encoded) {
            return Err(DigestError::Malformed(s.to_owned()));
        }
        let algorithm: Algorithm = algorithm.parse()?;
        Digest::from_hex_with(algorithm, encoded).map_err(|_| DigestError::Malformed(s.to_owned()))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// OCI grammar: `component (separator component)*`, component `[a-z0-9]+`, separator `[+._-]`.
fn valid_algorithm(s: &str) -> bool {
    let mut prev_sep = true;
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' => prev_sep = false,
            b'+' | b'.' | b'_' | b'-' if !prev_sep => prev_sep = true,
            _ => return false,
        }
    }
    !prev_sep
}

/// OCI grammar: `[a-zA-Z0-9=_-]+`.
fn valid_encoded(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Lowercase hex encoding of arbitrary bytes.
pub fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// An incremental hash whose progress can be saved and restored, so a chunked
/// upload resumes after a restart without reading back what was already received.
#[derive(Clone)]
pub struct Hasher {
    inner: HasherInner,
    len_bytes: u64,
}

#[derive(Clone)]
enum HasherInner {
    Sha256(Sha256),
    Sha512(Box<Sha512>),
}

/// Why a saved hasher state could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("saved hash state is corrupt ({0})")]
pub struct HasherStateError(&'static str);

const HASHER_STATE_VERSION: u8 = 1;

impl Hasher {
    /// A hasher for `algorithm` that has seen no bytes.
    pub fn new(algorithm: Algorithm) -> Self {
        let inner = match algorithm {
            Algorithm::Sha256 => HasherInner::Sha256(Sha256::new()),
            Algorithm::Sha512 => HasherInner::Sha512(Box::default()),
        };
        Hasher {
            inner,
            len_bytes: 0,
        }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            HasherInner::Sha256(_) => Algorithm::Sha256,
            HasherInner::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.inner {
            HasherInner::Sha256(h) => h.update(bytes),
            HasherInner::Sha512(h) => h.update(bytes),
        }
        self.len_bytes += bytes.len() as u64;
    }

    /// How many bytes have been fed so far.
    pub fn len_bytes(&self) -> u64 {
        self.len_bytes
    }

    /// The digest of everything fed so far; the hasher is left as it was.
    pub fn digest(&self) -> Digest {
        match &self.inner {
            HasherInner::Sha256(h) => Digest::from_bytes(h.clone().finalize().into()),
            HasherInner::Sha512(h) => {
                let mut bytes = [0u8; SHA512_LEN];
                bytes.copy_from_slice(&h.as_ref().clone().finalize());
                Digest {
                    algorithm: Algorithm::Sha512,
                    bytes,
                }
            }
        }
    }

    /// An opaque, versioned encoding of the state, for persistence.
    pub fn save(&self) -> Vec<u8> {
        let state: Vec<u8> = match &self.inner {
            HasherInner::Sha256(h) => h.serialize().to_vec(),
            HasherInner::Sha512(h) => h.serialize().to_vec(),
        };
        let mut out = Vec::with_capacity(2 + 8 + state.len());
        out.push(HASHER_STATE_VERSION);
        out.push(match self.algorithm() {
            Algorithm::Sha256 => 1,
            Algorithm::Sha512 => 2,
        });
        out.extend_from_slice(&self.len_bytes.to_be_bytes());
        out.extend_from_slice(&state);
        out
    }

    /// Restores a state written by [`Hasher::save`].
    pub fn restore(saved: &[u8]) -> Result<Self, HasherStateError> {
        let [version, algorithm, rest @ ..] = saved else {
            return Err(HasherStateError("truncated header"));
        };
        if *version != HASHER_STATE_VERSION {
            return Err(HasherStateError("unknown version"));
        }
        let (len, state) = rest
            .split_first_chunk::<8>()
            .ok_or(HasherStateError("truncated length"))?;
        let wrong_size = |_| HasherStateError("wrong state size");
        let invalid = |_| HasherStateError("invalid state");
        let inner = match algorithm {
            1 => HasherInner::Sha256(
                Sha256::deserialize(state.try_into().map_err(wrong_size)?).map_err(invalid)?,
            ),
            2 => HasherInner::Sha512(Box::new(
                Sha512::deserialize(state.try_into().map_err(wrong_size)?).map_err(invalid)?,
            )),
            _ => return Err(HasherStateError("unknown algorithm")),
        };
        Ok(Hasher {
            inner,
            len_bytes: u64::from_be_bytes(*len),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_displays_round_trip() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d, Digest::of(b""));
    }

    #[test]
    fn rejects_what_the_grammar_rejects() {
        let cases = [
            ("", DigestError::Malformed(String::new())),
            ("sha256", DigestError::Malformed("sha256".into())),
            ("sha256:", DigestError::Malformed("sha256:".into())),
            ("SHA256:abc", DigestError::Malformed("SHA256:abc".into())),
            ("sha256:abc", DigestError::Malformed("sha256:abc".into())),
            ("sha512:abcd", DigestError::Malformed("sha512:abcd".into())),
            ("md5:abcd", DigestError::Unsupported("md5".into())),
            ("sha-:abc", DigestError::Malformed("sha-:abc".into())),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<Digest>(), Err(want), "input {input:?}");
        }
        let upper = EMPTY.to_uppercase().replace("SHA256", "sha256");
        assert!(matches!(
            upper.parse::<Digest>(),
            Err(DigestError::Malformed(_))
        ));
    }

    #[test]
    fn sha512_round_trips() {
        let d = Digest::of_with(Algorithm::Sha512, b"");
        assert_eq!(
            d.to_string(),
            "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert_ne!(d, Digest::of(b""));
    }

    #[test]
    fn hasher_state_survives_save_and_restore() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 3) as u8).collect();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            for split in [0, 1, 63, 64, 65, 127, 128, 4096, 9_999, 10_000] {
                let mut h = Hasher::new(algorithm);
                h.update(&data[..split]);
                let mut resumed = Hasher::restore(&h.save()).unwrap();
                assert_eq!(resumed.len_bytes(), split as u64);
                assert_eq!(resumed.algorithm(), algorithm);
                resumed.update(&data[split..]);
                assert_eq!(
                    resumed.digest(),
                    Digest::of_with(algorithm, &data),
                    "{algorithm} split at {split}"
                );
            }
        }
    }

    #[test]
    fn corrupt_hasher_state_is_an_error() {
        assert!(Hasher::restore(&[]).is_err());
        assert!(Hasher::restore(&[2, 0, 0]).is_err());
        assert!(Hasher::restore(&[1, 9, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        let mut saved = Hasher::new(Algorithm::Sha256).save();
        saved.pop();
        assert!(Hasher::restore(&saved).is_err());
    }
}
