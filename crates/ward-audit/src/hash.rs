//! The 32-byte SHA-256 value every chain link, Merkle node and checkpoint root is made of.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// Length in bytes of a [`Hash`](struct@Hash).
pub const HASH_LEN: usize = 32;

/// A SHA-256 output. Displayed and serialised as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_LEN]);

/// Why a string is not a [`Hash`](struct@Hash).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed hash {0:?}: expected 64 lowercase hex characters")]
pub struct HashParseError(pub String);

impl Hash {
    /// The all-zero hash: the `prev_hash` of the first event of a log.
    pub const ZERO: Hash = Hash([0; HASH_LEN]);

    /// SHA-256 over the concatenation of `parts`.
    pub fn of_parts(parts: &[&[u8]]) -> Hash {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Hash(hasher.finalize().into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// Wraps a slice that must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        <[u8; HASH_LEN]>::try_from(bytes).ok().map(Hash)
    }

    /// The 64-character lowercase hex form.
    pub fn hex(&self) -> String {
        let mut out = String::with_capacity(HASH_LEN * 2);
        for byte in self.0 {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl FromStr for Hash {
    type Err = HashParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || HashParseError(s.chars().take(80).collect());
        if s.len() != HASH_LEN * 2 {
            return Err(malformed());
        }
        let mut out = [0u8; HASH_LEN];
        for (slot, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            let hi = hex_value(pair[0]).ok_or_else(malformed)?;
            let lo = hex_value(pair[1]).ok_or_else(malformed)?;
            *slot = hi << 4 | lo;
        }
        Ok(Hash(out))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.hex())
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.hex())
    }
}

impl<'de> serde::Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_uppercase_and_wrong_length() {
        let h = Hash::of_parts(&[b"abc"]);
        assert_eq!(
            h.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(h.hex().parse::<Hash>().unwrap(), h);
        assert!(h.hex().to_uppercase().parse::<Hash>().is_err());
        assert!(h.hex()[1..].parse::<Hash>().is_err());
        assert!(format!("{}0", h.hex()).parse::<Hash>().is_err());
    }

    #[test]
    fn of_parts_is_sha256_of_the_concatenation() {
        assert_eq!(Hash::of_parts(&[b"a", b"bc"]), Hash::of_parts(&[b"abc"]));
    }
}
