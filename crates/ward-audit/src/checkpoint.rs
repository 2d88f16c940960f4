//! Signed checkpoints: the server's Ed25519 signature over the log's size, Merkle root
//! and chain head, as a C2SP `tlog-checkpoint` inside a C2SP `signed-note`.
//!
//! ```text
//! ward.example/audit                                  origin (also the key name)
//! 1042                                                tree size (number of events)
//! 5dnaealmWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=       base64 RFC 9162 root hash
//! chain-head 3YL2JfXRIJy7NRg6bqKbrQ3vAWXxbvPm7d2VlHxiZ3k=   extension: hash of record 1041
//! timestamp 2026-05-01T12:00:00.000000Z               extension: when it was signed
//!
//! — ward.example/audit <base64(4-byte key id || 64-byte Ed25519 signature)>
//! ```
//!
//! The key id is the first four bytes of `SHA-256(key name || "\n" || 0x01 || public key)`
//! and the signature covers the text up to and including its last newline, exactly
//! as in the signed-note specification, so standard note tooling can check Ward's
//! checkpoints given [`CheckpointVerifier::vkey`].
//!
//! The private key is a PKCS#8 PEM file readable only by its owner (mode 0600);
//! [`CheckpointSigner::load`] refuses a key file that group or others can read.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::event::timestamp;
use crate::hash::Hash;
use crate::merkle::{self, Frontier};
use crate::record::AuditRecord;

/// The longest signed note accepted, in bytes.
pub const NOTE_BYTES_MAX: usize = 64 * 1024;
/// The most signature lines accepted on one note (the reference implementation's cap).
pub const NOTE_SIGNATURES_MAX: usize = 100;
/// The signed-note algorithm byte of Ed25519.
const ALG_ED25519: u8 = 0x01;

/// A tree head: what a checkpoint commits to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The log's identity; also the name of the key that signs it.
    pub origin: String,
    /// Number of events covered.
    pub tree_size: u64,
    /// RFC 9162 root over the first `tree_size` records.
    pub root_hash: Hash,
    /// `hash` of record `tree_size - 1` (zero for an empty log).
    pub chain_head: Hash,
    /// When it was signed.
    #[serde(with = "timestamp")]
    pub timestamp: OffsetDateTime,
}

/// Why a checkpoint or key was refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The note or its body does not follow the format.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// No signature line is from a trusted key.
    #[error("checkpoint is not signed by a trusted key (signed by: {0})")]
    UnknownKey(String),
    /// A signature line from a trusted key does not verify: the note was altered or forged.
    #[error("signature of {0} does not verify: the checkpoint was altered or forged")]
    BadSignature(String),
    /// The key that signed is not named after the checkpoint's origin.
    #[error("checkpoint for origin {origin:?} is signed as {signer:?}")]
    OriginMismatch {
        /// The origin line.
        origin: String,
        /// The signing key's name.
        signer: String,
    },
    /// An origin unusable as a key name.
    #[error("origin {0:?} is not a valid key name: it must be non-empty, without spaces or '+'")]
    BadOrigin(String),
}

/// Why a key could not be created, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the file failed.
    #[error("checkpoint key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file is readable by others.
    #[error(
        "checkpoint key file {path} has mode {mode:o}; it must be readable by its owner only (chmod 600 {path})"
    )]
    Permissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The PEM does not hold an Ed25519 key.
    #[error("{0}: not an Ed25519 key in PKCS#8 / SubjectPublicKeyInfo PEM form")]
    Format(String),
    /// A verifier key string is malformed.
    #[error("malformed verifier key {0:?}: expected <name>+<8 hex key id>+<base64 of 0x01 || key>")]
    BadVkey(String),
    /// The operating system's random source failed.
    #[error("no randomness for key generation: {0}")]
    Random(String),
    /// The origin is not a valid key name.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// The server's checkpoint signing key.
pub struct CheckpointSigner {
    origin: String,
    key: SigningKey,
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("origin", &self.origin)
            .field(
                "public_key",
                &B64.encode(self.key.verifying_key().as_bytes()),
            )
            .finish_non_exhaustive()
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl CheckpointSigner {
    /// A fresh key from the operating system's random source.
    pub fn generate(origin: &str) -> Result<CheckpointSigner, KeyError> {
        check_name(origin)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        let key = SigningKey::from_bytes(&seed);
        seed.fill(0);
        Ok(CheckpointSigner {
            origin: origin.to_owned(),
            key,
        })
    }

    /// Wraps a raw 32-byte Ed25519 seed (tests and key import).
    pub fn from_seed(origin: &str, seed: &[u8; 32]) -> Result<CheckpointSigner, KeyError> {
        check_name(origin)?;
        Ok(CheckpointSigner {
            origin: origin.to_owned(),
            key: SigningKey::from_bytes(seed),
        })
    }

    /// Parses a PKCS#8 PEM private key.
    pub fn from_pkcs8_pem(origin: &str, pem: &str) -> Result<CheckpointSigner, KeyError> {
        check_name(origin)?;
        let key = SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| KeyError::Format(format!("private key: {e}")))?;
        Ok(CheckpointSigner {
            origin: origin.to_owned(),
            key,
        })
    }

    /// Reads the key at `path`, refusing a file that group or others can read.
    pub fn load(path: &Path, origin: &str) -> Result<CheckpointSigner, KeyError> {
        check_owner_only(path)?;
        let pem = std::fs::read_to_string(path).map_err(io_error(path))?;
        CheckpointSigner::from_pkcs8_pem(origin, &pem)
            .map_err(|e| KeyError::Format(format!("{}: {e}", path.display())))
    }

    /// Writes the key to a new file at `path` with mode 0600. Never overwrites.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let pem = self
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Format(e.to_string()))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io_error(path))?;
        file.write_all(pem.as_bytes()).map_err(io_error(path))?;
        file.sync_all().map_err(io_error(path))
    }

    /// Loads the key at `path`, or generates and saves one if there is no file yet.
    pub fn load_or_generate(path: &Path, origin: &str) -> Result<CheckpointSigner, KeyError> {
        if path.exists() {
            return CheckpointSigner::load(path, origin);
        }
        let signer = CheckpointSigner::generate(origin)?;
        signer.save(path)?;
        Ok(signer)
    }

    /// The log origin this key signs for.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The matching verifier.
    pub fn verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier {
            name: Some(self.origin.clone()),
            key: self.key.verifying_key(),
        }
    }

    /// Signs `checkpoint` and returns the signed note text.
    pub fn sign(&self, checkpoint: &Checkpoint) -> Result<String, CheckpointError> {
        if checkpoint.origin != self.origin {
            return Err(CheckpointError::OriginMismatch {
                origin: checkpoint.origin.clone(),
                signer: self.origin.clone(),
            });
        }
        Ok(self.sign_text(&checkpoint.body()))
    }

    /// Signs arbitrary note text (which must end in a newline): the signed-note primitive.
    pub fn sign_text(&self, text: &str) -> String {
        let signature = self.key.sign(text.as_bytes());
        let id = key_id(&self.origin, &self.key.verifying_key());
        let mut blob = Vec::with_capacity(4 + 64);
        blob.extend_from_slice(&id.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        format!("{text}\n\u{2014} {} {}\n", self.origin, B64.encode(blob))
    }
}

#[cfg(unix)]
fn check_owner_only(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .map_err(io_error(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.display().to_string(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

/// A public key trusted to sign checkpoints.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckpointVerifier {
    /// The key name, when known (from a vkey); a PEM key trusts any name whose key id matches.
    name: Option<String>,
    key: VerifyingKey,
}

impl fmt::Debug for CheckpointVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointVerifier")
            .field("name", &self.name)
            .field("key", &B64.encode(self.key.as_bytes()))
            .finish()
    }
}

impl CheckpointVerifier {
    /// Parses a SubjectPublicKeyInfo PEM public key.
    pub fn from_public_pem(pem: &str) -> Result<CheckpointVerifier, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem)
            .map_err(|e| KeyError::Format(format!("public key: {e}")))?;
        Ok(CheckpointVerifier { name: None, key })
    }

    /// Reads a PEM public key file.
    pub fn load_public_pem(path: &Path) -> Result<CheckpointVerifier, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(io_error(path))?;
        CheckpointVerifier::from_public_pem(&pem)
            .map_err(|e| KeyError::Format(format!("{}: {e}", path.display())))
    }

    /// A trusted key as given on a command line: the path of a PEM public key file,
    /// or a signed-note verifier key (`<name>+<hex id>+<base64>`).
    pub fn from_argument(argument: &str) -> Result<CheckpointVerifier, KeyError> {
        let path = Path::new(argument);
        if !path.exists() && argument.contains('+') {
            return CheckpointVerifier::from_vkey(argument);
        }
        CheckpointVerifier::load_public_pem(path)
    }

    /// The PEM public key.
    pub fn to_public_pem(&self) -> Result<String, KeyError> {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Format(e.to_string()))
    }

    /// Parses a signed-note verifier key, `<name>+<hex key id>+<base64(0x01 || key)>`.
    pub fn from_vkey(vkey: &str) -> Result<CheckpointVerifier, KeyError> {
        let bad = || KeyError::BadVkey(vkey.chars().take(200).collect());
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        check_name(name).map_err(|_| bad())?;
        let id_ok = id_hex.len() == 8 && id_hex.bytes().all(|b| b.is_ascii_hexdigit());
        let id = u32::from_str_radix(id_hex, 16)
            .ok()
            .filter(|_| id_ok)
            .ok_or_else(bad)?;
        let raw = B64.decode(key_b64).map_err(|_| bad())?;
        let Some((&ALG_ED25519, key_bytes)) = raw.split_first() else {
            return Err(bad());
        };
        let bytes = <[u8; 32]>::try_from(key_bytes).map_err(|_| bad())?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad())?;
        if key_id(name, &key) != id {
            return Err(bad());
        }
        Ok(CheckpointVerifier {
            name: Some(name.to_owned()),
            key,
        })
    }

    /// The signed-note verifier key for `name`.
    pub fn vkey(&self, name: &str) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{name}+{:08x}+{}", key_id(name, &self.key), B64.encode(raw))
    }

    fn accepts(&self, name: &str, id: u32) -> bool {
        self.name.as_deref().is_none_or(|n| n == name) && key_id(name, &self.key) == id
    }
}

/// The signed-note key id of an Ed25519 key.
fn key_id(name: &str, key: &VerifyingKey) -> u32 {
    let h = Hash::of_parts(&[name.as_bytes(), b"\n", &[ALG_ED25519], key.as_bytes()]);
    u32::from_be_bytes([h.0[0], h.0[1], h.0[2], h.0[3]])
}

fn check_name(name: &str) -> Result<(), CheckpointError> {
    let ok = !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+');
    if ok {
        Ok(())
    } else {
        Err(CheckpointError::BadOrigin(name.to_owned()))
    }
}

impl Checkpoint {
    /// The checkpoint of the log made of exactly `records` (seq 0 to `len - 1`).
    pub fn over(origin: &str, records: &[AuditRecord], timestamp: OffsetDateTime) -> Checkpoint {
        let mut frontier = Frontier::new();
        for record in records {
            frontier.push(merkle::leaf_hash(record.hash.as_bytes()));
        }
        Checkpoint {
            origin: origin.to_owned(),
            tree_size: records.len() as u64,
            root_hash: frontier.root(),
            chain_head: records.last().map_or(Hash::ZERO, |r| r.hash),
            timestamp,
        }
    }

    /// The note text (body) of this checkpoint.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\nchain-head {}\ntimestamp {}\n",
            self.origin,
            self.tree_size,
            B64.encode(self.root_hash.0),
            B64.encode(self.chain_head.0),
            timestamp::format(self.timestamp),
        )
    }

    /// Parses a note text produced by [`Checkpoint::body`].
    pub fn parse_body(text: &str) -> Result<Checkpoint, CheckpointError> {
        let malformed = |what: &str| CheckpointError::Malformed(what.to_owned());
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .ok_or_else(|| malformed("note text does not end in a newline"))?
            .split('\n')
            .collect();
        let [origin, size, root, chain, time] = lines[..] else {
            return Err(malformed(
                "expected 5 lines: origin, size, root, chain-head, timestamp",
            ));
        };
        check_name(origin)?;
        let canonical_size =
            size == "0" || (!size.starts_with('0') && size.bytes().all(|b| b.is_ascii_digit()));
        let tree_size = size
            .parse::<u64>()
            .ok()
            .filter(|_| canonical_size)
            .ok_or_else(|| malformed("tree size is not a decimal number without leading zeros"))?;
        let decode_hash = |b64: &str, what: &str| {
            B64.decode(b64)
                .ok()
                .and_then(|raw| Hash::from_slice(&raw))
                .ok_or_else(|| malformed(&format!("{what} is not a base64 32-byte hash")))
        };
        let root_hash = decode_hash(root, "root hash")?;
        let chain_b64 = chain
            .strip_prefix("chain-head ")
            .ok_or_else(|| malformed("line 4 is not 'chain-head <base64>'"))?;
        let chain_head = decode_hash(chain_b64, "chain head")?;
        let time_text = time
            .strip_prefix("timestamp ")
            .ok_or_else(|| malformed("line 5 is not 'timestamp <RFC 3339>'"))?;
        let when =
            timestamp::parse(time_text).map_err(|e| malformed(&format!("timestamp: {e}")))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            tree_size,
            root_hash,
            chain_head,
            timestamp: when,
        })
    }
}

/// One signature line of a note.
struct SignatureLine<'a> {
    name: &'a str,
    id: u32,
    signature: Signature,
}

/// Splits a signed note into its text (with its final newline) and signature lines.
fn split_note(note: &str) -> Result<(&str, Vec<SignatureLine<'_>>), CheckpointError> {
    let malformed = |what: &str| CheckpointError::Malformed(what.to_owned());
    if note.len() > NOTE_BYTES_MAX {
        return Err(malformed("note is longer than NOTE_BYTES_MAX"));
    }
    if note.chars().any(|c| c < ' ' && c != '\n') {
        return Err(malformed("note contains control characters"));
    }
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| malformed("no blank line between text and signatures"))?;
    let (text, sigs) = (&note[..=split], &note[split + 2..]);
    let sig_lines = sigs
        .strip_suffix('\n')
        .ok_or_else(|| malformed("signatures do not end in a newline"))?
        .split('\n')
        .map(parse_signature_line)
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| malformed("a signature line is not '\u{2014} <name> <base64>'"))?;
    if sig_lines.len() > NOTE_SIGNATURES_MAX {
        return Err(malformed("more than NOTE_SIGNATURES_MAX signatures"));
    }
    Ok((text, sig_lines))
}

fn parse_signature_line(line: &str) -> Option<SignatureLine<'_>> {
    let rest = line.strip_prefix("\u{2014} ")?;
    let (name, b64) = rest.split_once(' ')?;
    check_name(name).ok()?;
    let raw = B64.decode(b64).ok()?;
    let (id, sig) = raw.split_at_checked(4)?;
    let id = u32::from_be_bytes(<[u8; 4]>::try_from(id).ok()?);
    // Signatures of other algorithms have other lengths; they cannot match an Ed25519 key id.
    let signature = <[u8; 64]>::try_from(sig)
        .map(|bytes| Signature::from_bytes(&bytes))
        .unwrap_or_else(|_| Signature::from_bytes(&[0; 64]));
    Some(SignatureLine {
        name,
        id,
        signature,
    })
}

/// Verifies a signed note with `verifiers` and returns its text. Lines from unknown keys
/// are ignored; a line from a known key that does not verify rejects the whole note.
pub fn open_note<'a>(
    note: &'a str,
    verifiers: &[CheckpointVerifier],
) -> Result<(&'a str, Vec<String>), CheckpointError> {
    let (text, lines) = split_note(note)?;
    let mut signers = Vec::new();
    for line in &lines {
        for verifier in verifiers.iter().filter(|v| v.accepts(line.name, line.id)) {
            verifier
                .key
                .verify_strict(text.as_bytes(), &line.signature)
                .map_err(|_| CheckpointError::BadSignature(line.name.to_owned()))?;
            signers.push(line.name.to_owned());
        }
    }
    if signers.is_empty() {
        let names: Vec<&str> = lines.iter().map(|l| l.name).collect();
        return Err(CheckpointError::UnknownKey(names.join(", ")));
    }
    Ok((text, signers))
}

/// Verifies a signed checkpoint and parses it. The checkpoint's origin must be the name
/// of a key that signed it.
pub fn open(note: &str, verifiers: &[CheckpointVerifier]) -> Result<Checkpoint, CheckpointError> {
    let (text, signers) = open_note(note, verifiers)?;
    let checkpoint = Checkpoint::parse_body(text)?;
    if !signers.contains(&checkpoint.origin) {
        return Err(CheckpointError::OriginMismatch {
            origin: checkpoint.origin,
            signer: signers.join(", "),
        });
    }
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    // The example key and note of the signed-note reference implementation
    // (golang.org/x/mod/sumdb/note, note_test.go): a known answer for key ids,
    // signature layout and the signed bytes.
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY_B64: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn peter() -> CheckpointSigner {
        let raw = B64.decode(PETER_SKEY_B64).unwrap();
        assert_eq!(raw[0], ALG_ED25519);
        CheckpointSigner::from_seed("PeterNeumann", &raw[1..].try_into().unwrap()).unwrap()
    }

    #[test]
    fn signing_matches_the_reference_note_byte_for_byte() {
        let signer = peter();
        assert_eq!(signer.verifier().vkey("PeterNeumann"), PETER_VKEY);
        let note = signer.sign_text(PETER_TEXT);
        assert_eq!(note, format!("{PETER_TEXT}\n{PETER_SIG}"));
        let verifier = CheckpointVerifier::from_vkey(PETER_VKEY).unwrap();
        let (text, signers) = open_note(&note, std::slice::from_ref(&verifier)).unwrap();
        assert_eq!(
            (text, signers),
            (PETER_TEXT, vec!["PeterNeumann".to_owned()])
        );
        let altered = note.replace("cryptography", "cryptographY");
        assert!(matches!(
            open_note(&altered, &[verifier]),
            Err(CheckpointError::BadSignature(_))
        ));
    }

    #[test]
    fn malformed_vkeys_are_refused() {
        let bad = [
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        ];
        for vkey in bad {
            assert!(CheckpointVerifier::from_vkey(vkey).is_err(), "{vkey}");
        }
    }

    #[test]
    fn malformed_notes_are_refused_before_any_signature_check() {
        let verifier = CheckpointVerifier::from_vkey(PETER_VKEY).unwrap();
        let cases = [
            PETER_TEXT.to_owned(),
            format!("{PETER_TEXT}\n"),
            format!("{PETER_TEXT}\n{}", PETER_SIG.trim_end()),
            format!("\u{1}{PETER_TEXT}\n{PETER_SIG}"),
            format!("{PETER_TEXT}\n{PETER_SIG}Unexpected line.\n"),
            format!("{PETER_TEXT}\n{}", PETER_SIG.repeat(101)),
            format!("{PETER_TEXT}\n- PeterNeumann AAAA\n"),
        ];
        for note in cases {
            assert!(
                matches!(
                    open_note(&note, std::slice::from_ref(&verifier)),
                    Err(CheckpointError::Malformed(_))
                ),
                "{note:?}"
            );
        }
    }

    fn sample(origin: &str) -> Checkpoint {
        Checkpoint {
            origin: origin.to_owned(),
            tree_size: 1042,
            root_hash: Hash::of_parts(&[b"root"]),
            chain_head: Hash::of_parts(&[b"head"]),
            timestamp: datetime!(2026-05-01 12:00:00 UTC),
        }
    }

    #[test]
    fn checkpoints_round_trip_and_reject_forgeries() {
        let signer = CheckpointSigner::generate("ward.test/audit").unwrap();
        let other = CheckpointSigner::generate("ward.test/audit").unwrap();
        let trusted = [signer.verifier()];
        let checkpoint = sample("ward.test/audit");
        let note = signer.sign(&checkpoint).unwrap();
        assert!(note.starts_with("ward.test/audit\n1042\n"));
        assert_eq!(open(&note, &trusted).unwrap(), checkpoint);

        let bigger = note.replacen("\n1042\n", "\n1043\n", 1);
        assert!(matches!(
            open(&bigger, &trusted),
            Err(CheckpointError::BadSignature(_))
        ));
        let by_other = other.sign(&checkpoint).unwrap();
        assert!(matches!(
            open(&by_other, &trusted),
            Err(CheckpointError::UnknownKey(_))
        ));
        // A trusted key signing a body whose origin is not its name.
        let renamed = signer.sign_text(&sample("elsewhere/log").body());
        assert!(matches!(
            open(&renamed, &trusted),
            Err(CheckpointError::OriginMismatch { .. })
        ));
        // The public PEM form verifies as well as the in-memory verifier.
        let pem = signer.verifier().to_public_pem().unwrap();
        let from_pem = CheckpointVerifier::from_public_pem(&pem).unwrap();
        assert_eq!(open(&note, &[from_pem]).unwrap(), checkpoint);
    }

    #[test]
    fn bodies_are_parsed_strictly() {
        let good = sample("o").body();
        assert_eq!(Checkpoint::parse_body(&good).unwrap(), sample("o"));
        let cases = [
            good.replacen("\n1042\n", "\n01042\n", 1),
            good.replacen("\n1042\n", "\n-1\n", 1),
            good.replacen("chain-head ", "chainhead ", 1),
            good.trim_end().to_owned(),
            format!("{good}extra\n"),
            good.replacen("timestamp 2026", "timestamp x026", 1),
        ];
        for body in cases {
            assert!(Checkpoint::parse_body(&body).is_err(), "{body:?}");
        }
        assert!(CheckpointSigner::generate("has space").is_err());
        assert!(CheckpointSigner::generate("a+b").is_err());
    }

    #[test]
    fn key_files_are_owner_only_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.pem");
        let signer = CheckpointSigner::load_or_generate(&path, "o").unwrap();
        let again = CheckpointSigner::load_or_generate(&path, "o").unwrap();
        assert_eq!(signer.verifier(), again.verifier());
        assert!(
            signer.save(&path).is_err(),
            "an existing key must not be overwritten"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                CheckpointSigner::load(&path, "o"),
                Err(KeyError::Permissions { mode: 0o644, .. })
            ));
        }
        let vkey = signer.verifier().vkey("o");
        assert_eq!(
            CheckpointVerifier::from_argument(&vkey).unwrap().vkey("o"),
            vkey
        );
        assert!(CheckpointVerifier::from_argument("/no/such/key.pem").is_err());
        let pub_path = dir.path().join("checkpoint-pub.pem");
        std::fs::write(&pub_path, signer.verifier().to_public_pem().unwrap()).unwrap();
        let loaded = CheckpointVerifier::from_argument(pub_path.to_str().unwrap()).unwrap();
        assert_eq!(
            loaded.to_public_pem().unwrap(),
            signer.verifier().to_public_pem().unwrap()
        );
        assert!(
            CheckpointVerifier::load_public_pem(&path).is_err(),
            "a private key is not a public key"
        );
    }

    #[test]
    fn debug_output_never_shows_the_private_key() {
        let signer = peter();
        let seed = &B64.decode(PETER_SKEY_B64).unwrap()[1..];
        let shown = format!("{signer:?}");
        assert!(!shown.contains(&B64.encode(seed)), "{shown}");
        assert!(
            !shown.contains(&Hash::from_slice(seed).unwrap().hex()),
            "{shown}"
        );
        assert!(shown.contains("PeterNeumann"));
    }
}
