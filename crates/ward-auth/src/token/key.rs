//! The server's token signing key: ES256 (ECDSA P-256), PKCS#8 PEM on disk,
//! identified by its RFC 7638 JWK thumbprint.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64ct::{Base64UrlUnpadded, Encoding};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// Largest key file read, in bytes; a P-256 PKCS#8 PEM is about 240.
pub const KEY_FILE_BYTES_MAX: u64 = 16 * 1024;

/// Why a key could not be generated, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The key file can be read by group or others.
    #[error(
        "signing key {path} has permissions {mode:o}; it must be readable by its owner only (chmod 600 {path})"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The key file is not a regular file or is implausibly large.
    #[error("signing key {0} is not a regular file of at most {KEY_FILE_BYTES_MAX} bytes")]
    NotAKeyFile(PathBuf),
    /// Saving would overwrite an existing key.
    #[error("signing key {0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// The PEM text is not a P-256 PKCS#8 private key (or SPKI public key).
    #[error("not a P-256 {0} in PEM form")]
    Pem(&'static str),
    /// The operating system's random generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> KeyError {
    let path = path.to_owned();
    move |source| KeyError::Io { op, path, source }
}

/// A public key that verifies tokens, with its key id.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    pub(crate) inner: p256::ecdsa::VerifyingKey,
    kid: String,
}

/// A public key as a JSON Web Key (RFC 7517), e.g. for a JWKS document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `EC`.
    pub kty: String,
    /// `P-256`.
    pub crv: String,
    /// The x coordinate, base64url.
    pub x: String,
    /// The y coordinate, base64url.
    pub y: String,
    /// The key id (the RFC 7638 thumbprint).
    pub kid: String,
    /// `ES256`.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
}

impl VerifyingKey {
    fn from_inner(inner: p256::ecdsa::VerifyingKey) -> Self {
        let kid = thumbprint(&inner);
        Self { inner, kid }
    }

    /// The key id carried in the `kid` header of tokens it verifies:
    /// the RFC 7638 JWK thumbprint (SHA-256, base64url).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Reads an SPKI public key PEM (`-----BEGIN PUBLIC KEY-----`), e.g. a retired key kept for rotation.
    pub fn from_public_key_pem(pem: &str) -> Result<Self, KeyError> {
        p256::ecdsa::VerifyingKey::from_public_key_pem(pem)
            .map(Self::from_inner)
            .map_err(|_| KeyError::Pem("public key"))
    }

    /// The SPKI public key PEM.
    pub fn to_public_key_pem(&self) -> Result<String, KeyError> {
        self.inner
            .to_public_key_pem(LineEnding::LF)
            .map_err(|_| KeyError::Pem("public key"))
    }

    /// The key as a JWK.
    pub fn jwk(&self) -> Jwk {
        let (x, y) = coordinates(&self.inner);
        Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x,
            y,
            kid: self.kid.clone(),
            alg: "ES256".into(),
            key_use: "sig".into(),
        }
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .finish()
    }
}

fn coordinates(key: &p256::ecdsa::VerifyingKey) -> (String, String) {
    // Uncompressed SEC1: 0x04 || x (32 bytes) || y (32 bytes).
    let point = key.to_sec1_bytes();
    let (x, y) = point
        .get(1..)
        .unwrap_or_default()
        .split_at(32.min(point.len().saturating_sub(1)));
    (
        Base64UrlUnpadded::encode_string(x),
        Base64UrlUnpadded::encode_string(y),
    )
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
fn thumbprint(key: &p256::ecdsa::VerifyingKey) -> String {
    let (x, y) = coordinates(key);
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    Base64UrlUnpadded::encode_string(&Sha256::digest(canonical.as_bytes()))
}

/// The private key that signs tokens. `Debug` shows only the key id.
#[derive(Clone)]
pub struct SigningKey {
    pub(crate) inner: p256::ecdsa::SigningKey,
    public: VerifyingKey,
}

/// Whether [`SigningKey::load_or_generate`] found a key or made one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// Read from the file.
    Loaded,
    /// Generated and written to the file.
    Generated,
}

impl SigningKey {
    fn from_inner(inner: p256::ecdsa::SigningKey) -> Self {
        let public = VerifyingKey::from_inner(*inner.verifying_key());
        Self { inner, public }
    }

    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<Self, KeyError> {
        p256::ecdsa::SigningKey::try_generate()
            .map(Self::from_inner)
            .map_err(|e| KeyError::Random(e.to_string()))
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        p256::ecdsa::SigningKey::from_pkcs8_pem(pem)
            .map(Self::from_inner)
            .map_err(|_| KeyError::Pem("PKCS#8 private key"))
    }

    /// The PKCS#8 PEM text, wiped from memory when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.inner
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| KeyError::Pem("PKCS#8 private key"))
    }

    /// The public half.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    /// Reads a key file, refusing one that group or others can read (on Unix).
    pub fn load_pem_file(path: &Path) -> Result<Self, KeyError> {
        let file = File::open(path).map_err(io_error("open", path))?;
        let meta = file.metadata().map_err(io_error("inspect", path))?;
        if !meta.is_file() || meta.len() > KEY_FILE_BYTES_MAX {
            return Err(KeyError::NotAKeyFile(path.to_owned()));
        }
        check_owner_only(path, &meta)?;
        let mut text = Zeroizing::new(String::new());
        file.take(KEY_FILE_BYTES_MAX)
            .read_to_string(&mut text)
            .map_err(io_error("read", path))?;
        Self::from_pkcs8_pem(&text)
    }

    /// Writes the key to a new file readable by its owner only (mode 0600).
    ///
    /// The key is written to a temporary file in the same directory, synced,
    /// then linked into place, so a reader never sees half a key and an
    /// existing key is never overwritten ([`KeyError::Exists`]).
    pub fn save_pem_file(&self, path: &Path) -> Result<(), KeyError> {
        let pem = self.to_pkcs8_pem()?;
        let tmp = temporary_sibling(path)?;
        let written = write_owner_only(&tmp, pem.as_bytes());
        let linked = written.and_then(|()| match fs::hard_link(&tmp, path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(KeyError::Exists(path.to_owned()))
            }
            other => other.map_err(io_error("link", path)),
        });
        // The temporary name is ours alone; failing to remove it loses nothing.
        let _ = fs::remove_file(&tmp);
        linked?;
        sync_parent(path);
        Ok(())
    }

    /// Loads the key at `path`, or generates and saves one if there is none.
    /// When several processes race, all end up with the key that was linked first.
    pub fn load_or_generate(path: &Path) -> Result<(Self, KeyOrigin), KeyError> {
        match Self::load_pem_file(path) {
            Ok(key) => return Ok((key, KeyOrigin::Loaded)),
            Err(KeyError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let key = Self::generate()?;
        match key.save_pem_file(path) {
            Ok(()) => Ok((key, KeyOrigin::Generated)),
            Err(KeyError::Exists(_)) => Self::load_pem_file(path).map(|k| (k, KeyOrigin::Loaded)),
            Err(e) => Err(e),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid())
            .field("secret", &"[redacted]")
            .finish()
    }
}

fn temporary_sibling(path: &Path) -> Result<PathBuf, KeyError> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| KeyError::Random(e.to_string()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp_name = format!(".{name}.{}.tmp", Base64UrlUnpadded::encode_string(&random));
    Ok(path.with_file_name(tmp_name))
}

fn write_owner_only(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error("create", path))?;
    file.write_all(bytes).map_err(io_error("write", path))?;
    file.sync_all().map_err(io_error("sync", path))
}

fn sync_parent(path: &Path) {
    // Makes the new directory entry durable; not every platform can open a directory.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

#[cfg(unix)]
fn check_owner_only(path: &Path, meta: &fs::Metadata) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only(_path: &Path, _meta: &fs::Metadata) -> Result<(), KeyError> {
    Ok(())
}
