//! Keys: parsing (SPKI, PKCS#8, SEC1, PKCS#1 and cosign's encrypted PEM),
//! generation, signing, verification and key ids.
//!
//! Verification is deliberately lenient about *which* standard scheme a key
//! was used with (an RSA key is tried with PKCS#1 v1.5 and PSS, a P-384 key with
//! SHA-384 and SHA-256) because cosign, sigstore and model-signing disagree on
//! defaults; every scheme tried is a sound one, so leniency costs no security.
//! Signing always uses one fixed scheme per key type (see [`PrivateKey::sign`]).

mod encrypted;

use std::fmt;

use const_oid::ObjectIdentifier;
use der::Decode;
use ecdsa::signature::hazmat::PrehashVerifier;
use ecdsa::signature::{Signer as _, Verifier as _};
use pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::traits::PublicKeyParts;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use spki::{DecodePublicKey, EncodePublicKey};
use ward_core::Digest;
use zeroize::Zeroizing;

use crate::encoding::{PemError, pem_decode, pem_encode};

pub use encrypted::{ScryptLimits, decrypt_cosign_key, encrypt_cosign_key};

/// PEM label cosign 2.x and sigstore-rs write for encrypted private keys.
pub const SIGSTORE_PRIVATE_KEY_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM label cosign 1.x wrote; still read by every cosign.
pub const COSIGN_PRIVATE_KEY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// Smallest RSA modulus accepted for signing or verification.
pub const RSA_BITS_MIN: usize = 2048;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Why a key could not be read, written, generated or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not PEM.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// A PEM block of a kind this function does not read.
    #[error("unexpected PEM block {found:?}, expected {expected}")]
    UnexpectedLabel {
        /// The label found.
        found: String,
        /// What was expected instead.
        expected: &'static str,
    },
    /// Well-formed, but an algorithm Ward does not support.
    #[error("unsupported key algorithm {0}: Ward supports ECDSA P-256/P-384, Ed25519 and RSA")]
    Unsupported(String),
    /// The DER inside is not a valid key.
    #[error("malformed key: {0}")]
    Malformed(String),
    /// An RSA key below [`RSA_BITS_MIN`].
    #[error("RSA key of {0} bits is too small (minimum {RSA_BITS_MIN})")]
    RsaTooSmall(usize),
    /// An encrypted key was given without a password.
    #[error("the private key is encrypted: a password is required")]
    PasswordRequired,
    /// Authentication of the encrypted key failed.
    #[error("wrong password for the encrypted private key (or the key file is corrupt)")]
    WrongPassword,
    /// The encrypted key uses a KDF or cipher other than scrypt + NaCl secretbox.
    #[error("unsupported key encryption: {0}")]
    UnsupportedEncryption(String),
    /// The scrypt parameters in an encrypted key exceed the configured limits.
    #[error(
        "scrypt parameters N={n} r={r} p={p} exceed the limits (log2 N <= {log_n_max}, r <= {r_max}, p <= {p_max})"
    )]
    KdfTooExpensive {
        /// N from the file.
        n: u64,
        /// r from the file.
        r: u32,
        /// p from the file.
        p: u32,
        /// Configured maximum of log2(N).
        log_n_max: u8,
        /// Configured maximum of r.
        r_max: u32,
        /// Configured maximum of p.
        p_max: u32,
    },
    /// The operating system's random number generator failed.
    #[error("could not obtain randomness from the operating system: {0}")]
    Randomness(String),
    /// Signing failed inside the crypto library.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// A signature did not verify. Deliberately carries no detail: which check
/// failed inside a signature scheme is not useful to anyone but an attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature does not verify with this key")]
pub struct BadSignature;

/// Key types Ward can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// ECDSA over NIST P-256 with SHA-256: cosign's default.
    #[default]
    EcdsaP256,
    /// ECDSA over NIST P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
    /// RSA, 3072-bit modulus, PKCS#1 v1.5 with SHA-256.
    Rsa3072,
    /// RSA, 4096-bit modulus, PKCS#1 v1.5 with SHA-256.
    Rsa4096,
}

impl KeyAlgorithm {
    /// Every algorithm with its command-line name.
    pub const ALL: [(&'static str, KeyAlgorithm); 5] = [
        ("ecdsa-p256", KeyAlgorithm::EcdsaP256),
        ("ecdsa-p384", KeyAlgorithm::EcdsaP384),
        ("ed25519", KeyAlgorithm::Ed25519),
        ("rsa-3072", KeyAlgorithm::Rsa3072),
        ("rsa-4096", KeyAlgorithm::Rsa4096),
    ];
}

impl std::str::FromStr for KeyAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, alg)| *alg)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown key algorithm {s:?} (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// A key id: the sha256 of the key's DER SubjectPublicKeyInfo, the same
/// derivation Rekor uses for log ids.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct KeyId(pub Digest);

impl KeyId {
    /// The key id of a DER SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        KeyId(Digest::of(spki_der))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// An explicit signature scheme, for formats that name theirs (X.509).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureScheme {
    /// ECDSA with SHA-256, DER-encoded signature.
    EcdsaSha256,
    /// ECDSA with SHA-384, DER-encoded signature.
    EcdsaSha384,
    /// ECDSA with SHA-512, DER-encoded signature.
    EcdsaSha512,
    /// Pure Ed25519.
    Ed25519,
    /// RSA PKCS#1 v1.5 with SHA-256.
    RsaPkcs1Sha256,
    /// RSA PKCS#1 v1.5 with SHA-384.
    RsaPkcs1Sha384,
    /// RSA PKCS#1 v1.5 with SHA-512.
    RsaPkcs1Sha512,
    /// RSA PSS with SHA-256 and MGF1-SHA-256, any salt length.
    RsaPssSha256,
    /// RSA PSS with SHA-384 and MGF1-SHA-384, any salt length.
    RsaPssSha384,
    /// RSA PSS with SHA-512 and MGF1-SHA-512, any salt length.
    RsaPssSha512,
}

#[derive(Clone, PartialEq, Eq)]
enum PublicInner {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(rsa::PublicKey),
}

/// A public key of a supported type, with the DER it was read from.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    inner: PublicInner,
    spki_der: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}, {})", self.algorithm_name(), self.key_id())
    }
}

impl PublicKey {
    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = spki::SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| KeyError::Malformed(format!("SubjectPublicKeyInfo: {e}")))?;
        let oid = info.algorithm.oid;
        let malformed = |e: &dyn fmt::Display| KeyError::Malformed(format!("{oid} key: {e}"));
        let inner = if oid == OID_EC_PUBLIC_KEY {
            let curve = info.algorithm.parameters_oid().map_err(|e| malformed(&e))?;
            match curve {
                OID_P256 => PublicInner::P256(
                    p256::ecdsa::VerifyingKey::from_public_key_der(der)
                        .map_err(|e| malformed(&e))?,
                ),
                OID_P384 => PublicInner::P384(
                    p384::ecdsa::VerifyingKey::from_public_key_der(der)
                        .map_err(|e| malformed(&e))?,
                ),
                other => return Err(KeyError::Unsupported(format!("ECDSA curve {other}"))),
            }
        } else if oid == OID_ED25519 {
            PublicInner::Ed25519(
                ed25519_dalek::VerifyingKey::from_public_key_der(der).map_err(|e| malformed(&e))?,
            )
        } else if oid == OID_RSA || oid == OID_RSA_PSS {
            // RSASSA-PSS SPKIs carry the same PKCS#1 key bits under another OID.
            let bits = info.subject_public_key.raw_bytes();
            let key = rsa::PublicKey::from_pkcs1_der(bits).map_err(|e| malformed(&e))?;
            let size_bits = key.size() * 8;
            if size_bits < RSA_BITS_MIN {
                return Err(KeyError::RsaTooSmall(size_bits));
            }
            PublicInner::Rsa(key)
        } else {
            return Err(KeyError::Unsupported(oid.to_string()));
        };
        Ok(PublicKey {
            inner,
            spki_der: der.to_vec(),
        })
    }

    /// Reads a `PUBLIC KEY` PEM block (the first block in `text`).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let block = pem_decode(text)?;
        if block.label != "PUBLIC KEY" {
            return Err(KeyError::UnexpectedLabel {
                found: block.label,
                expected: "PUBLIC KEY",
            });
        }
        Self::from_spki_der(&block.contents)
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// `PUBLIC KEY` PEM, as cosign and `cryptography` write it.
    pub fn to_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.spki_der)
    }

    /// sha256 of the DER SubjectPublicKeyInfo.
    pub fn key_id(&self) -> KeyId {
        KeyId::of_spki(&self.spki_der)
    }

    /// A short human name of the key type, e.g. `ecdsa-p256`.
    pub fn algorithm_name(&self) -> &'static str {
        match &self.inner {
            PublicInner::P256(_) => "ecdsa-p256",
            PublicInner::P384(_) => "ecdsa-p384",
            PublicInner::Ed25519(_) => "ed25519",
            PublicInner::Rsa(_) => "rsa",
        }
    }

    /// Whether this is an elliptic-curve (ECDSA) key.
    pub fn is_ecdsa(&self) -> bool {
        matches!(self.inner, PublicInner::P256(_) | PublicInner::P384(_))
    }

    /// Verifies `signature` over `message` with any sound scheme for this key type.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), BadSignature> {
        let schemes: &[SignatureScheme] = match &self.inner {
            PublicInner::P256(_) => &[SignatureScheme::EcdsaSha256],
            PublicInner::P384(_) => &[SignatureScheme::EcdsaSha384, SignatureScheme::EcdsaSha256],
            PublicInner::Ed25519(_) => &[SignatureScheme::Ed25519],
            PublicInner::Rsa(_) => &[
                SignatureScheme::RsaPkcs1Sha256,
                SignatureScheme::RsaPssSha256,
                SignatureScheme::RsaPkcs1Sha384,
                SignatureScheme::RsaPssSha384,
                SignatureScheme::RsaPkcs1Sha512,
                SignatureScheme::RsaPssSha512,
            ],
        };
        schemes
            .iter()
            .find(|&&scheme| self.verify_with(scheme, message, signature).is_ok())
            .map(|_| ())
            .ok_or(BadSignature)
    }

    /// Verifies a signature over a message known only by its sha256 (a
    /// messageSignature bundle, a manifest digest). Ed25519 cannot do this.
    pub fn verify_sha256_prehash(
        &self,
        digest: &[u8; 32],
        signature: &[u8],
    ) -> Result<(), BadSignature> {
        match &self.inner {
            PublicInner::P256(key) => ecdsa_prehash(key, digest, signature),
            PublicInner::P384(key) => ecdsa_prehash(key, digest, signature),
            PublicInner::Ed25519(_) => Err(BadSignature),
            PublicInner::Rsa(key) => {
                let pkcs1 = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.clone());
                let pss = rsa::pss::VerifyingKey::<Sha256>::new_with_auto_salt_len(key.clone());
                let pkcs1_ok = rsa::pkcs1v15::Signature::try_from(signature)
                    .is_ok_and(|sig| pkcs1.verify_prehash(digest, &sig).is_ok());
                let pss_ok = || {
                    rsa::pss::Signature::try_from(signature)
                        .is_ok_and(|sig| pss.verify_prehash(digest, &sig).is_ok())
                };
                (pkcs1_ok || pss_ok()).then_some(()).ok_or(BadSignature)
            }
        }
    }

    /// Verifies with one explicit scheme; a scheme that does not fit the key fails.
    pub fn verify_with(
        &self,
        scheme: SignatureScheme,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), BadSignature> {
        use SignatureScheme as S;
        match (&self.inner, scheme) {
            (PublicInner::P256(key), S::EcdsaSha256 | S::EcdsaSha384 | S::EcdsaSha512) => {
                ecdsa_prehash(key, &hash_for(scheme, message), signature)
            }
            (PublicInner::P384(key), S::EcdsaSha256 | S::EcdsaSha384 | S::EcdsaSha512) => {
                ecdsa_prehash(key, &hash_for(scheme, message), signature)
            }
            (PublicInner::Ed25519(key), S::Ed25519) => {
                let sig =
                    ed25519_dalek::Signature::from_slice(signature).map_err(|_| BadSignature)?;
                key.verify(message, &sig).map_err(|_| BadSignature)
            }
            (PublicInner::Rsa(key), _) => rsa_verify(key, scheme, message, signature),
            _ => Err(BadSignature),
        }
    }
}

fn hash_for(scheme: SignatureScheme, message: &[u8]) -> Vec<u8> {
    match scheme {
        SignatureScheme::EcdsaSha384 => Sha384::digest(message).to_vec(),
        SignatureScheme::EcdsaSha512 => Sha512::digest(message).to_vec(),
        _ => Sha256::digest(message).to_vec(),
    }
}

/// ECDSA over a prehash, accepting DER (what everyone writes) and the fixed-size
/// `r || s` form (what WebCrypto writes).
fn ecdsa_prehash<C>(
    key: &ecdsa::VerifyingKey<C>,
    prehash: &[u8],
    signature: &[u8],
) -> Result<(), BadSignature>
where
    C: ecdsa::EcdsaCurve + ecdsa::elliptic_curve::CurveArithmetic,
    ecdsa::der::MaxSize<C>: ecdsa::elliptic_curve::array::ArraySize,
    <ecdsa::elliptic_curve::FieldBytesSize<C> as std::ops::Add>::Output:
        std::ops::Add<ecdsa::der::MaxOverhead> + ecdsa::elliptic_curve::array::ArraySize,
{
    let sig = ecdsa::Signature::<C>::from_der(signature)
        .or_else(|_| ecdsa::Signature::<C>::from_slice(signature))
        .map_err(|_| BadSignature)?;
    key.verify_prehash(prehash, &sig).map_err(|_| BadSignature)
}

fn rsa_verify(
    key: &rsa::PublicKey,
    scheme: SignatureScheme,
    message: &[u8],
    signature: &[u8],
) -> Result<(), BadSignature> {
    use SignatureScheme as S;
    let key = key.clone();
    let ok = match scheme {
        S::RsaPkcs1Sha256 => pkcs1_verify::<Sha256>(key, message, signature),
        S::RsaPkcs1Sha384 => pkcs1_verify::<Sha384>(key, message, signature),
        S::RsaPkcs1Sha512 => pkcs1_verify::<Sha512>(key, message, signature),
        S::RsaPssSha256 => pss_verify::<Sha256>(key, message, signature),
        S::RsaPssSha384 => pss_verify::<Sha384>(key, message, signature),
        S::RsaPssSha512 => pss_verify::<Sha512>(key, message, signature),
        _ => false,
    };
    ok.then_some(()).ok_or(BadSignature)
}

fn pkcs1_verify<D>(key: rsa::PublicKey, message: &[u8], signature: &[u8]) -> bool
where
    D: sha2::Digest + const_oid::AssociatedOid,
{
    let verifier = rsa::pkcs1v15::VerifyingKey::<D>::new(key);
    rsa::pkcs1v15::Signature::try_from(signature)
        .is_ok_and(|sig| verifier.verify(message, &sig).is_ok())
}

fn pss_verify<D>(key: rsa::PublicKey, message: &[u8], signature: &[u8]) -> bool
where
    D: sha2::Digest + sha2::digest::FixedOutputReset,
{
    let verifier = rsa::pss::VerifyingKey::<D>::new_with_auto_salt_len(key);
    rsa::pss::Signature::try_from(signature).is_ok_and(|sig| verifier.verify(message, &sig).is_ok())
}

enum PrivateInner {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
    Rsa(Box<rsa::PrivateKey>),
}

/// A private key of a supported type. Its `Debug` shows only the public half.
pub struct PrivateKey {
    inner: PrivateInner,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(public: {:?})", self.public)
    }
}

impl PrivateKey {
    /// Generates a fresh key from the operating system's randomness.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, KeyError> {
        let inner = match algorithm {
            KeyAlgorithm::EcdsaP256 => {
                PrivateInner::P256(random_scalar(32, p256::ecdsa::SigningKey::from_slice)?)
            }
            KeyAlgorithm::EcdsaP384 => {
                PrivateInner::P384(random_scalar(48, p384::ecdsa::SigningKey::from_slice)?)
            }
            KeyAlgorithm::Ed25519 => {
                let mut seed = Zeroizing::new([0u8; 32]);
                getrandom::fill(seed.as_mut()).map_err(|e| KeyError::Randomness(e.to_string()))?;
                PrivateInner::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
            }
            KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                let bits = if algorithm == KeyAlgorithm::Rsa3072 {
                    3072
                } else {
                    4096
                };
                let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits)
                    .map_err(|e| KeyError::Randomness(e.to_string()))?;
                PrivateInner::Rsa(Box::new(key))
            }
        };
        Self::from_inner(inner)
    }

    fn from_inner(inner: PrivateInner) -> Result<Self, KeyError> {
        let spki = match &inner {
            PrivateInner::P256(k) => k.verifying_key().to_public_key_der(),
            PrivateInner::P384(k) => k.verifying_key().to_public_key_der(),
            PrivateInner::Ed25519(k) => k.verifying_key().to_public_key_der(),
            PrivateInner::Rsa(k) => k.to_public_key().to_public_key_der(),
        }
        .map_err(|e| KeyError::Malformed(format!("encoding public key: {e}")))?;
        let public = PublicKey::from_spki_der(spki.as_bytes())?;
        Ok(PrivateKey { inner, public })
    }

    /// Reads a PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = pkcs8::PrivateKeyInfoRef::from_der(der)
            .map_err(|e| KeyError::Malformed(format!("PKCS#8: {e}")))?;
        let oid = info.algorithm.oid;
        let malformed =
            |e: &dyn fmt::Display| KeyError::Malformed(format!("{oid} private key: {e}"));
        let inner = if oid == OID_EC_PUBLIC_KEY {
            match info.algorithm.parameters_oid().map_err(|e| malformed(&e))? {
                OID_P256 => PrivateInner::P256(
                    p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| malformed(&e))?,
                ),
                OID_P384 => PrivateInner::P384(
                    p384::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| malformed(&e))?,
                ),
                other => return Err(KeyError::Unsupported(format!("ECDSA curve {other}"))),
            }
        } else if oid == OID_ED25519 {
            PrivateInner::Ed25519(
                ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(|e| malformed(&e))?,
            )
        } else if oid == OID_RSA {
            PrivateInner::Rsa(Box::new(
                rsa::PrivateKey::from_pkcs8_der(der).map_err(|e| malformed(&e))?,
            ))
        } else {
            return Err(KeyError::Unsupported(oid.to_string()));
        };
        Self::from_inner(inner)
    }

    /// Reads a private key PEM: cosign's encrypted formats (both labels, which
    /// need `password`), unencrypted PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE
    /// KEY`) and PKCS#1 (`RSA PRIVATE KEY`).
    pub fn from_pem(text: &str, password: Option<&[u8]>) -> Result<Self, KeyError> {
        let block = pem_decode(text)?;
        match block.label.as_str() {
            SIGSTORE_PRIVATE_KEY_LABEL | COSIGN_PRIVATE_KEY_LABEL => {
                let password = password.ok_or(KeyError::PasswordRequired)?;
                let der = decrypt_cosign_key(&block.contents, password, &ScryptLimits::default())?;
                Self::from_pkcs8_der(&der)
            }
            "PRIVATE KEY" => Self::from_pkcs8_der(&block.contents),
            "EC PRIVATE KEY" => Self::from_sec1_der(&block.contents),
            "RSA PRIVATE KEY" => {
                let key = rsa::PrivateKey::from_pkcs1_der(&block.contents)
                    .map_err(|e| KeyError::Malformed(format!("PKCS#1 RSA key: {e}")))?;
                Self::from_inner(PrivateInner::Rsa(Box::new(key)))
            }
            _ => Err(KeyError::UnexpectedLabel {
                found: block.label.clone(),
                expected: "a private key (ENCRYPTED SIGSTORE PRIVATE KEY, PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)",
            }),
        }
    }

    fn from_sec1_der(der: &[u8]) -> Result<Self, KeyError> {
        let inner = if let Ok(key) = p256::SecretKey::from_sec1_der(der) {
            PrivateInner::P256(key.into())
        } else if let Ok(key) = p384::SecretKey::from_sec1_der(der) {
            PrivateInner::P384(key.into())
        } else {
            return Err(KeyError::Malformed(
                "SEC1 EC key is neither P-256 nor P-384".into(),
            ));
        };
        Self::from_inner(inner)
    }

    /// Whether a PEM text holds a password-protected cosign key.
    pub fn pem_is_encrypted(text: &str) -> bool {
        pem_decode(text).is_ok_and(|b| {
            matches!(
                b.label.as_str(),
                SIGSTORE_PRIVATE_KEY_LABEL | COSIGN_PRIVATE_KEY_LABEL
            )
        })
    }

    /// The PKCS#8 DER encoding; wiped on drop.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let doc = match &self.inner {
            PrivateInner::P256(k) => k.to_pkcs8_der(),
            PrivateInner::P384(k) => k.to_pkcs8_der(),
            // PKCS#8 v1 (no embedded public key): OpenSSL 3.0 and Python
            // `cryptography` reject the v2 form for Ed25519.
            PrivateInner::Ed25519(k) => ed25519_dalek::ed25519::pkcs8::KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_der(),
            PrivateInner::Rsa(k) => k.to_pkcs8_der(),
        }
        .map_err(|e| KeyError::Malformed(format!("encoding PKCS#8: {e}")))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// Unencrypted `PRIVATE KEY` PEM (for tools such as `model_signing`).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        Ok(Zeroizing::new(pem_encode(
            "PRIVATE KEY",
            &self.to_pkcs8_der()?,
        )))
    }

    /// cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`), readable by
    /// cosign 1.x and 2.x and sigstore-rs.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> Result<Zeroizing<String>, KeyError> {
        let body = encrypt_cosign_key(&self.to_pkcs8_der()?, password)?;
        Ok(Zeroizing::new(pem_encode(
            SIGSTORE_PRIVATE_KEY_LABEL,
            &body,
        )))
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `message` the way cosign does for this key type: ECDSA P-256 with
    /// SHA-256 and P-384 with SHA-384 (ASN.1 DER), pure Ed25519, RSA PKCS#1
    /// v1.5 with SHA-256.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let sig = match &self.inner {
            PrivateInner::P256(k) => {
                let sig: p256::ecdsa::DerSignature = k
                    .try_sign(message)
                    .map_err(|e| KeyError::Sign(e.to_string()))?;
                sig.to_bytes().to_vec()
            }
            PrivateInner::P384(k) => {
                let sig: p384::ecdsa::DerSignature = k
                    .try_sign(message)
                    .map_err(|e| KeyError::Sign(e.to_string()))?;
                sig.to_bytes().to_vec()
            }
            PrivateInner::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
            PrivateInner::Rsa(k) => {
                let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(k.as_ref().clone());
                let sig: rsa::pkcs1v15::Signature = signer
                    .try_sign(message)
                    .map_err(|e| KeyError::Sign(e.to_string()))?;
                Box::<[u8]>::from(sig).to_vec()
            }
        };
        Ok(sig)
    }

    /// The RSA key inside, for schemes that need PSS.
    pub(crate) fn rsa(&self) -> Option<&rsa::PrivateKey> {
        match &self.inner {
            PrivateInner::Rsa(k) => Some(k),
            _ => None,
        }
    }
}

/// Draws uniformly random scalars until one is a valid ECDSA secret (all but a
/// negligible fraction are).
fn random_scalar<K, E>(
    len: usize,
    from_slice: impl Fn(&[u8]) -> Result<K, E>,
) -> Result<K, KeyError> {
    const ATTEMPTS_MAX: usize = 64;
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    for _ in 0..ATTEMPTS_MAX {
        getrandom::fill(&mut bytes).map_err(|e| KeyError::Randomness(e.to_string()))?;
        if let Ok(key) = from_slice(&bytes) {
            return Ok(key);
        }
    }
    Err(KeyError::Randomness("no valid scalar drawn".into()))
}
