//! Passwords (argon2id) and generated secrets (robot secrets, personal access tokens).
//!
//! Two kinds of credential, two kinds of storage:
//!
//! - **Human passwords** are low-entropy and guessable, so they are stored as
//!   argon2id hashes in PHC string format ([`PasswordHash`]), deliberately slow
//!   and memory-hard. Defaults follow the OWASP Password Storage Cheat Sheet:
//!   19 MiB of memory, 2 iterations, 1 lane.
//! - **Generated secrets** ([`generate_secret`]) carry 256 bits from the OS
//!   random generator. Nobody can guess one, so a slow hash adds nothing; they
//!   are stored as a plain SHA-256 digest ([`SecretDigest`]), which lets the
//!   store find the owning token by digest in one indexed lookup instead of
//!   running argon2 against every candidate. The digest of a 256-bit random
//!   value reveals nothing usable about it.
//!
//! Generated secrets start with a recognisable prefix (`ward_rbt_`,
//! `ward_pat_`) and end with a CRC-32 checksum, so secret scanners (GitHub
//! push protection, trufflehog, gitleaks) can find leaked ones with few false
//! positives, and the server can refuse a mistyped secret without a lookup.

use std::fmt;
use std::str::FromStr;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::secret::{SecretString, ct_eq};

/// Why hashing or verifying failed. Mismatched passwords are not errors:
/// [`PasswordHasher::verify`] returns `Ok(false)` for them.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The argon2 parameters are out of range.
    #[error("invalid argon2 parameters: {0}")]
    BadParams(String),
    /// A new password is shorter than the configured minimum.
    #[error("password is too short: use at least {min} characters")]
    TooShort {
        /// Minimum length in characters.
        min: usize,
    },
    /// A password is longer than the configured maximum.
    #[error("password is too long: at most {max} bytes")]
    TooLong {
        /// Maximum length in bytes.
        max: usize,
    },
    /// A stored hash is not a PHC string this crate can read.
    #[error("stored password hash is malformed: {0}")]
    MalformedHash(String),
    /// A stored hash uses an algorithm other than argon2id.
    #[error(
        "stored password hash uses {0:?}; only argon2id is accepted (reset the password to re-hash it)"
    )]
    UnsupportedAlgorithm(String),
    /// A stored hash asks for more work than the configured maximum; refusing
    /// prevents a tampered row from exhausting memory or CPU.
    #[error(
        "stored password hash asks for m={m_kib} KiB, t={t}, p={p}, beyond the configured maximum"
    )]
    HashTooExpensive {
        /// Memory in KiB.
        m_kib: u32,
        /// Iterations.
        t: u32,
        /// Lanes.
        p: u32,
    },
    /// argon2 itself failed.
    #[error("argon2 failed: {0}")]
    Argon2(String),
    /// The operating system's random generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// Password hashing parameters and limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordConfig {
    /// argon2id memory cost in KiB (OWASP: 19456 = 19 MiB).
    pub memory_kib: u32,
    /// argon2id iterations (OWASP: 2).
    pub iterations: u32,
    /// argon2id lanes (OWASP: 1).
    pub parallelism: u32,
    /// Shortest new password accepted, in characters (NIST SP 800-63B asks for at least 8).
    pub new_password_chars_min: usize,
    /// Longest password accepted, in bytes.
    pub password_bytes_max: usize,
    /// Most memory a stored hash may ask for, in KiB.
    pub stored_memory_kib_max: u32,
    /// Most iterations a stored hash may ask for.
    pub stored_iterations_max: u32,
    /// Most lanes a stored hash may ask for.
    pub stored_parallelism_max: u32,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            new_password_chars_min: 12,
            password_bytes_max: 1024,
            stored_memory_kib_max: 256 * 1024,
            stored_iterations_max: 16,
            stored_parallelism_max: 8,
        }
    }
}

/// An argon2id hash in PHC string format (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
///
/// Stored as that string. `Debug` shows the parameters but not salt or hash,
/// which would help an offline cracker.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a stored PHC string; it is parsed when used.
    pub fn from_phc(phc: impl Into<String>) -> Self {
        Self(phc.into())
    }

    /// The PHC string, for storage.
    pub fn as_phc(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `$alg$v=..$params$salt$hash`: keep the first three fields.
        let visible: Vec<&str> = self.0.split('$').take(4).collect();
        write!(f, "PasswordHash({}$[redacted])", visible.join("$"))
    }
}

impl Serialize for PasswordHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PasswordHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

/// Hashes and verifies passwords with argon2id.
///
/// Build one at startup and share it: construction runs argon2 once to
/// prepare the hash [`PasswordHasher::dummy_verify`] checks against.
pub struct PasswordHasher {
    config: PasswordConfig,
    argon2: Argon2<'static>,
    dummy: PasswordHash,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Validates the parameters and prepares the dummy hash.
    pub fn new(config: PasswordConfig) -> Result<Self, PasswordError> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            Some(Params::DEFAULT_OUTPUT_LEN),
        )
        .map_err(|e| PasswordError::BadParams(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = Self {
            config,
            argon2,
            dummy: PasswordHash(String::new()),
        };
        let throwaway = generate_password()?;
        hasher.dummy = hasher.hash_unchecked(&throwaway)?;
        Ok(hasher)
    }

    /// The configuration in use.
    pub fn config(&self) -> &PasswordConfig {
        &self.config
    }

    /// Checks a new password against the length limits.
    pub fn check_new_password(&self, password: &SecretString) -> Result<(), PasswordError> {
        if password.len() > self.config.password_bytes_max {
            return Err(PasswordError::TooLong {
                max: self.config.password_bytes_max,
            });
        }
        if password.expose().chars().count() < self.config.new_password_chars_min {
            return Err(PasswordError::TooShort {
                min: self.config.new_password_chars_min,
            });
        }
        Ok(())
    }

    /// Hashes a password with a fresh random salt. Only the length maximum is
    /// enforced here; call [`Self::check_new_password`] when a person picks one.
    pub fn hash(&self, password: &SecretString) -> Result<PasswordHash, PasswordError> {
        if password.len() > self.config.password_bytes_max {
            return Err(PasswordError::TooLong {
                max: self.config.password_bytes_max,
            });
        }
        self.hash_unchecked(password)
    }

    fn hash_unchecked(&self, password: &SecretString) -> Result<PasswordHash, PasswordError> {
        let salt = argon2::password_hash::try_generate_salt()
            .map_err(|e| PasswordError::Random(e.to_string()))?;
        let hash = self
            .argon2
            .hash_password_with_salt(password.expose().as_bytes(), &salt)
            .map_err(|e| PasswordError::Argon2(e.to_string()))?;
        Ok(PasswordHash(hash.to_string()))
    }

    /// Whether `password` matches `hash`. `Ok(false)` on mismatch; errors only
    /// for hashes that cannot be checked (malformed, not argon2id, too expensive).
    pub fn verify(
        &self,
        password: &SecretString,
        hash: &PasswordHash,
    ) -> Result<bool, PasswordError> {
        let parsed = argon2::PasswordHash::new(hash.as_phc())
            .map_err(|e| PasswordError::MalformedHash(e.to_string()))?;
        if parsed.algorithm.as_str() != ARGON2ID_IDENT.as_str() {
            return Err(PasswordError::UnsupportedAlgorithm(
                parsed.algorithm.as_str().to_owned(),
            ));
        }
        let params =
            Params::try_from(&parsed).map_err(|e| PasswordError::MalformedHash(e.to_string()))?;
        self.check_stored_cost(&params)?;
        if password.len() > self.config.password_bytes_max {
            // No stored hash can match; still spend the same time.
            self.dummy_verify(password);
            return Ok(false);
        }
        match self
            .argon2
            .verify_password(password.expose().as_bytes(), &parsed)
        {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(e) => Err(PasswordError::Argon2(e.to_string())),
        }
    }

    fn check_stored_cost(&self, params: &Params) -> Result<(), PasswordError> {
        let c = &self.config;
        if params.m_cost() > c.stored_memory_kib_max
            || params.t_cost() > c.stored_iterations_max
            || params.p_cost() > c.stored_parallelism_max
        {
            return Err(PasswordError::HashTooExpensive {
                m_kib: params.m_cost(),
                t: params.t_cost(),
                p: params.p_cost(),
            });
        }
        Ok(())
    }

    /// Runs a full verification against a throwaway hash and returns nothing.
    ///
    /// Call it when the username does not exist (or the account is disabled)
    /// so that the response takes as long as for a real user with a wrong
    /// password, and usernames cannot be enumerated by timing.
    pub fn dummy_verify(&self, password: &SecretString) {
        let bytes = password.expose().as_bytes();
        let bytes = &bytes[..bytes.len().min(self.config.password_bytes_max)];
        if let Ok(parsed) = argon2::PasswordHash::new(self.dummy.as_phc()) {
            let _ = self.argon2.verify_password(bytes, &parsed);
        }
    }

    /// Whether a stored hash should be replaced at the next successful login
    /// because it was made with other parameters than the current ones.
    pub fn needs_rehash(&self, hash: &PasswordHash) -> bool {
        let Ok(parsed) = argon2::PasswordHash::new(hash.as_phc()) else {
            return true;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm.as_str() != ARGON2ID_IDENT.as_str()
            || parsed.version != Some(Version::V0x13.into())
            || params.m_cost() != self.config.memory_kib
            || params.t_cost() != self.config.iterations
            || params.p_cost() != self.config.parallelism
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` characters drawn uniformly from [`BASE62`] by rejection sampling.
fn random_base62(n: usize) -> Result<String, PasswordError> {
    let mut out = String::with_capacity(n);
    let mut buf = zeroize::Zeroizing::new([0u8; 64]);
    while out.len() < n {
        getrandom::fill(buf.as_mut()).map_err(|e| PasswordError::Random(e.to_string()))?;
        // 248 = 4 × 62: bytes at or above it would bias the low characters.
        for &b in buf.iter().filter(|&&b| b < 248).take(n - out.len()) {
            out.push(char::from(BASE62[usize::from(b % 62)]));
        }
    }
    Ok(out)
}

/// A random password of 24 base62 characters (about 143 bits), for the first
/// admin when none is configured.
pub fn generate_password() -> Result<SecretString, PasswordError> {
    random_base62(24).map(SecretString::new)
}

/// What a generated secret is for; each kind has its own scannable prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SecretKind {
    /// A robot account's secret: `ward_rbt_...`.
    Robot,
    /// A user's personal access token: `ward_pat_...`.
    PersonalAccessToken,
}

impl SecretKind {
    /// The prefix every secret of this kind starts with.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Robot => "ward_rbt_",
            Self::PersonalAccessToken => "ward_pat_",
        }
    }
}

/// Random base62 characters in a secret: 43 × log2(62) ≈ 256 bits.
const SECRET_BODY_CHARS: usize = 43;
/// Base62 characters of the CRC-32 checksum (62^6 > 2^32).
const SECRET_CHECKSUM_CHARS: usize = 6;

/// A freshly generated secret. Show it to its owner once, store only its [`SecretDigest`].
#[derive(Debug)]
pub struct GeneratedSecret {
    /// What it is for.
    pub kind: SecretKind,
    /// The secret itself (`ward_pat_<43 base62><6 base62 checksum>`).
    pub value: SecretString,
}

impl GeneratedSecret {
    /// The digest to store.
    pub fn digest(&self) -> SecretDigest {
        SecretDigest::of(&self.value)
    }
}

/// Generates a 256-bit secret of the given kind.
pub fn generate_secret(kind: SecretKind) -> Result<GeneratedSecret, PasswordError> {
    let body = zeroize::Zeroizing::new(random_base62(SECRET_BODY_CHARS)?);
    let mut value =
        String::with_capacity(kind.prefix().len() + SECRET_BODY_CHARS + SECRET_CHECKSUM_CHARS);
    value.push_str(kind.prefix());
    value.push_str(&body);
    push_checksum(&mut value);
    Ok(GeneratedSecret {
        kind,
        value: SecretString::new(value),
    })
}

fn push_checksum(value: &mut String) {
    let mut crc = crc32(value.as_bytes());
    let mut digits = [b'0'; SECRET_CHECKSUM_CHARS];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    value.extend(digits.iter().map(|&b| char::from(b)));
}

/// CRC-32 (IEEE 802.3, as zlib): a typo detector for secret scanners, not a MAC.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// Why a presented string is not a well-formed Ward secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretFormatError {
    /// Does not start with a known prefix.
    #[error("not a Ward secret: expected a ward_rbt_ or ward_pat_ prefix")]
    UnknownPrefix,
    /// Wrong length or characters.
    #[error("malformed Ward secret: wrong length or characters")]
    Malformed,
    /// The checksum does not match: a typo or a truncated copy.
    #[error("Ward secret checksum mismatch: the secret was mistyped or truncated")]
    BadChecksum,
}

/// Checks the shape and checksum of a presented secret and says which kind it
/// claims to be. Cheap and allocation-free; does not prove the secret is valid.
pub fn parse_secret(presented: &str) -> Result<SecretKind, SecretFormatError> {
    let kind = [SecretKind::Robot, SecretKind::PersonalAccessToken]
        .into_iter()
        .find(|k| presented.starts_with(k.prefix()))
        .ok_or(SecretFormatError::UnknownPrefix)?;
    let rest = &presented[kind.prefix().len()..];
    if rest.len() != SECRET_BODY_CHARS + SECRET_CHECKSUM_CHARS
        || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(SecretFormatError::Malformed);
    }
    let split = presented.len() - SECRET_CHECKSUM_CHARS;
    let mut crc = crc32(&presented.as_bytes()[..split]);
    let mut want = [b'0'; SECRET_CHECKSUM_CHARS];
    for d in want.iter_mut().rev() {
        *d = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    if presented.as_bytes()[split..] != want {
        return Err(SecretFormatError::BadChecksum);
    }
    Ok(kind)
}

/// The stored form of a generated secret: its SHA-256 digest, shown and
/// serialised as `sha256:<64 hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    /// The digest of a secret.
    pub fn of(secret: &SecretString) -> Self {
        Self::of_str(secret.expose())
    }

    /// The digest of a presented string (as received in a request).
    pub fn of_str(presented: &str) -> Self {
        Self(Sha256::digest(presented.as_bytes()).into())
    }

    /// Whether `presented` hashes to this digest, compared in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        ct_eq(&Self::of_str(presented).0, &self.0)
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretDigest({self})")
    }
}

/// A stored secret digest could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid secret digest: expected sha256:<64 lowercase hex>")]
pub struct SecretDigestError;

impl FromStr for SecretDigest {
    type Err = SecretDigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix("sha256:").ok_or(SecretDigestError)?;
        if hex.len() != 64 {
            return Err(SecretDigestError);
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            let nibble = |c: u8| match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                _ => Err(SecretDigestError),
            };
            *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Ok(Self(out))
    }
}

impl Serialize for SecretDigest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SecretDigest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small parameters keep the tests fast; the defaults get their own test.
    fn fast() -> PasswordHasher {
        PasswordHasher::new(PasswordConfig {
            memory_kib: 64,
            iterations: 1,
            ..PasswordConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn defaults_are_owasp_and_produce_phc_argon2id() {
        let hasher = PasswordHasher::new(PasswordConfig::default()).unwrap();
        let hash = hasher.hash(&"correct horse battery staple".into()).unwrap();
        assert!(
            hash.as_phc().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.as_phc()
        );
        assert!(
            hasher
                .verify(&"correct horse battery staple".into(), &hash)
                .unwrap()
        );
        assert!(!hasher.needs_rehash(&hash));
    }

    #[test]
    fn verify_table() {
        let hasher = fast();
        let hash = hasher.hash(&"s3cret-Passw0rd".into()).unwrap();
        let cases = [
            ("s3cret-Passw0rd", true),
            ("s3cret-passw0rd", false),
            ("s3cret-Passw0rd ", false),
            ("", false),
        ];
        for (attempt, want) in cases {
            assert_eq!(
                hasher.verify(&attempt.into(), &hash).unwrap(),
                want,
                "{attempt:?}"
            );
        }
        let huge = "x".repeat(5000);
        assert!(!hasher.verify(&huge.as_str().into(), &hash).unwrap());
    }

    #[test]
    fn same_password_gets_different_salts() {
        let hasher = fast();
        let a = hasher.hash(&"same".into()).unwrap();
        let b = hasher.hash(&"same".into()).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn unusable_stored_hashes_are_errors() {
        let hasher = fast();
        let cases: &[(&str, &str)] = &[
            ("not a hash", "MalformedHash"),
            (
                "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                "UnsupportedAlgorithm",
            ),
            (
                "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                "HashTooExpensive",
            ),
            (
                "$argon2id$v=19$m=64,t=1000,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                "HashTooExpensive",
            ),
        ];
        for (phc, want) in cases {
            let err = hasher
                .verify(&"pw".into(), &PasswordHash::from_phc(*phc))
                .unwrap_err();
            assert!(format!("{err:?}").starts_with(want), "{phc}: {err:?}");
        }
    }

    #[test]
    fn needs_rehash_when_parameters_change() {
        let old = fast();
        let hash = old.hash(&"pw".into()).unwrap();
        assert!(!old.needs_rehash(&hash));
        let stronger = PasswordHasher::new(PasswordConfig {
            memory_kib: 128,
            iterations: 1,
            ..PasswordConfig::default()
        })
        .unwrap();
        assert!(stronger.needs_rehash(&hash));
        assert!(
            stronger.verify(&"pw".into(), &hash).unwrap(),
            "old hashes still verify"
        );
        assert!(stronger.needs_rehash(&PasswordHash::from_phc("garbage")));
    }

    #[test]
    fn dummy_hash_costs_the_same_as_a_real_one() {
        let hasher = fast();
        let real = hasher.hash(&"pw".into()).unwrap();
        let params = |h: &PasswordHash| h.as_phc().split('$').nth(3).map(str::to_owned);
        assert_eq!(params(&hasher.dummy), params(&real));
        assert!(hasher.dummy.as_phc().starts_with("$argon2id$"));
        // Never matches anything a caller could send, including the empty string.
        hasher.dummy_verify(&"".into());
    }

    #[test]
    fn new_password_rules() {
        let hasher = fast();
        assert!(matches!(
            hasher.check_new_password(&"short".into()),
            Err(PasswordError::TooShort { min: 12 })
        ));
        assert!(hasher.check_new_password(&"twelve chars".into()).is_ok());
        assert!(
            hasher.check_new_password(&"ééééééééééé".into()).is_err(),
            "counts characters"
        );
        let long = "x".repeat(1025);
        assert!(matches!(
            hasher.check_new_password(&long.as_str().into()),
            Err(PasswordError::TooLong { max: 1024 })
        ));
        assert!(matches!(
            hasher.hash(&long.as_str().into()),
            Err(PasswordError::TooLong { .. })
        ));
    }

    #[test]
    fn bad_params_are_refused() {
        let err = PasswordHasher::new(PasswordConfig {
            parallelism: 0,
            ..PasswordConfig::default()
        })
        .unwrap_err();
        assert!(matches!(err, PasswordError::BadParams(_)), "{err:?}");
    }

    #[test]
    fn password_hash_debug_hides_salt_and_hash() {
        let hasher = fast();
        let hash = hasher.hash(&"pw".into()).unwrap();
        let salt_and_hash: Vec<&str> = hash.as_phc().split('$').skip(4).collect();
        let debug = format!("{hash:?}");
        assert!(debug.contains("m=64,t=1,p=1"), "{debug}");
        for part in salt_and_hash {
            assert!(!debug.contains(part), "{debug} leaks {part}");
        }
    }

    #[test]
    fn generated_secrets_have_prefix_length_and_valid_checksum() {
        for kind in [SecretKind::Robot, SecretKind::PersonalAccessToken] {
            let s = generate_secret(kind).unwrap();
            let text = s.value.expose();
            assert!(text.starts_with(kind.prefix()), "{kind:?}");
            assert_eq!(text.len(), 9 + 43 + 6);
            assert_eq!(parse_secret(text), Ok(kind));
            assert_eq!(format!("{s:?}").matches("[redacted]").count(), 1);
            assert!(!format!("{s:?}").contains(&text[9..]));
        }
        let a = generate_secret(SecretKind::Robot).unwrap();
        let b = generate_secret(SecretKind::Robot).unwrap();
        assert_ne!(a.value.expose(), b.value.expose());
    }

    #[test]
    fn generated_characters_are_roughly_uniform() {
        // 62 symbols × 200 draws each: a broken sampler (e.g. `b % 62` over all
        // 256 byte values, or a stuck generator) shows up as a far outlier.
        let text = random_base62(62 * 200).unwrap();
        let mut counts = [0usize; 62];
        for b in text.bytes() {
            let i = BASE62.iter().position(|&c| c == b).unwrap();
            counts[i] += 1;
        }
        for (i, &c) in counts.iter().enumerate() {
            assert!(
                (120..=290).contains(&c),
                "symbol {} drawn {c} times",
                BASE62[i] as char
            );
        }
    }

    #[test]
    fn parse_secret_table() {
        let good = generate_secret(SecretKind::PersonalAccessToken).unwrap();
        let good = good.value.expose();
        let replace_at = |i: usize, c: char| {
            let mut s = good.to_owned();
            let was = s.remove(i);
            s.insert(i, if was == c { 'q' } else { c });
            s
        };
        let cases: Vec<(String, Result<SecretKind, SecretFormatError>)> = vec![
            (good.to_owned(), Ok(SecretKind::PersonalAccessToken)),
            (replace_at(20, 'a'), Err(SecretFormatError::BadChecksum)),
            (
                replace_at(good.len() - 1, 'a'),
                Err(SecretFormatError::BadChecksum),
            ),
            (
                good[..good.len() - 1].to_owned(),
                Err(SecretFormatError::Malformed),
            ),
            (format!("{good}x"), Err(SecretFormatError::Malformed)),
            (replace_at(15, '-'), Err(SecretFormatError::Malformed)),
            (
                good.replace("ward_pat_", "ward_rbt_"),
                Err(SecretFormatError::BadChecksum),
            ),
            (
                "ghp_abcdef".to_owned(),
                Err(SecretFormatError::UnknownPrefix),
            ),
            (String::new(), Err(SecretFormatError::UnknownPrefix)),
            ("ward_rbt_".to_owned(), Err(SecretFormatError::Malformed)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_secret(&input), want, "{input:?}");
        }
    }

    #[test]
    fn crc32_known_answer() {
        // The standard check value for CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn secret_digest_round_trip_and_match() {
        let s = generate_secret(SecretKind::Robot).unwrap();
        let d = s.digest();
        assert!(d.matches(s.value.expose()));
        assert!(!d.matches("ward_rbt_wrong"));
        let text = d.to_string();
        assert!(text.starts_with("sha256:") && text.len() == 71);
        assert_eq!(text.parse::<SecretDigest>().unwrap(), d);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<SecretDigest>(&json).unwrap(), d);
        // Known answer: sha256("abc").
        assert_eq!(
            SecretDigest::of_str("abc").to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        for bad in [
            "",
            "sha256:",
            "sha512:00",
            &format!("sha256:{}", "G".repeat(64)),
            &text.to_uppercase(),
        ] {
            assert!(bad.parse::<SecretDigest>().is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_passwords() {
        let a = generate_password().unwrap();
        assert_eq!(a.len(), 24);
        assert!(a.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a.expose(), generate_password().unwrap().expose());
    }
}
