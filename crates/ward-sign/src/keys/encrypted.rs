//! cosign's encrypted private-key format (go-securesystemslib `encrypted`).
//!
//! The PEM body is JSON: `{"kdf":{"name":"scrypt","params":{"N","r","p"},"salt"},
//! "cipher":{"name":"nacl/secretbox","nonce"},"ciphertext"}`. The key is
//! scrypt(password, salt, N, r, p, 32); the ciphertext is a NaCl secretbox
//! (Poly1305 tag first, then XSalsa20 output; the nonce is *not* prefixed) of
//! the PKCS#8 DER private key.

use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead, KeyInit};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::KeyError;
use crate::encoding::{b64_decode, b64_encode};

/// scrypt cost cosign writes: N = 2^15, r = 8, p = 1.
const WRITE_LOG_N: u8 = 15;
const WRITE_R: u32 = 8;
const WRITE_P: u32 = 1;
const SALT_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
const KEY_BYTES: usize = 32;

/// Upper bounds on the scrypt cost a key file may ask for, so a hostile key
/// file cannot make Ward allocate gigabytes or spin for minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScryptLimits {
    /// Largest accepted log2(N).
    pub log_n_max: u8,
    /// Largest accepted r.
    pub r_max: u32,
    /// Largest accepted p.
    pub p_max: u32,
}

impl Default for ScryptLimits {
    /// N up to 2^20 with r = 8 is 1 GiB of memory at most: far above what cosign
    /// writes (2^15, 32 MiB), far below exhaustion.
    fn default() -> Self {
        ScryptLimits {
            log_n_max: 20,
            r_max: 16,
            p_max: 4,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// Decrypts the JSON body of an encrypted cosign key to PKCS#8 DER.
pub fn decrypt_cosign_key(
    body: &[u8],
    password: &[u8],
    limits: &ScryptLimits,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let doc: EncryptedKey = serde_json::from_slice(body)
        .map_err(|e| KeyError::Malformed(format!("encrypted key JSON: {e}")))?;
    if doc.kdf.name != "scrypt" {
        return Err(KeyError::UnsupportedEncryption(format!(
            "key derivation {:?}",
            doc.kdf.name
        )));
    }
    if doc.cipher.name != "nacl/secretbox" {
        return Err(KeyError::UnsupportedEncryption(format!(
            "cipher {:?}",
            doc.cipher.name
        )));
    }
    let params = scrypt_params(&doc.kdf.params, limits)?;
    let field = |name: &str, text: &str| {
        b64_decode(text)
            .map_err(|_| KeyError::Malformed(format!("encrypted key field {name} is not base64")))
    };
    let salt = field("salt", &doc.kdf.salt)?;
    let nonce = field("nonce", &doc.cipher.nonce)?;
    let ciphertext = field("ciphertext", &doc.ciphertext)?;
    let nonce: [u8; NONCE_BYTES] = nonce
        .try_into()
        .map_err(|_| KeyError::Malformed(format!("secretbox nonce must be {NONCE_BYTES} bytes")))?;
    let key = derive_key(password, &salt, &params)?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    let plaintext = cipher
        .decrypt((&nonce).into(), ciphertext.as_slice())
        .map_err(|_| KeyError::WrongPassword)?;
    Ok(Zeroizing::new(plaintext))
}

/// Encrypts PKCS#8 DER into the JSON body of an encrypted cosign key, with a
/// fresh salt and nonce and cosign's scrypt cost.
pub fn encrypt_cosign_key(pkcs8_der: &[u8], password: &[u8]) -> Result<Vec<u8>, KeyError> {
    let mut salt = [0u8; SALT_BYTES];
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut salt).map_err(|e| KeyError::Randomness(e.to_string()))?;
    getrandom::fill(&mut nonce).map_err(|e| KeyError::Randomness(e.to_string()))?;
    let params = scrypt::Params::new(WRITE_LOG_N, WRITE_R, WRITE_P)
        .map_err(|e| KeyError::UnsupportedEncryption(format!("scrypt parameters: {e}")))?;
    let key = derive_key(password, &salt, &params)?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    let ciphertext = cipher
        .encrypt((&nonce).into(), pkcs8_der)
        .map_err(|_| KeyError::Sign("secretbox encryption failed".into()))?;
    let doc = EncryptedKey {
        kdf: Kdf {
            name: "scrypt".into(),
            params: KdfParams {
                n: 1u64 << WRITE_LOG_N,
                r: WRITE_R,
                p: WRITE_P,
            },
            salt: b64_encode(&salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: b64_encode(&nonce),
        },
        ciphertext: b64_encode(&ciphertext),
    };
    serde_json::to_vec(&doc)
        .map_err(|e| KeyError::Malformed(format!("encoding encrypted key: {e}")))
}

fn scrypt_params(params: &KdfParams, limits: &ScryptLimits) -> Result<scrypt::Params, KeyError> {
    let too_expensive = || KeyError::KdfTooExpensive {
        n: params.n,
        r: params.r,
        p: params.p,
        log_n_max: limits.log_n_max,
        r_max: limits.r_max,
        p_max: limits.p_max,
    };
    if !params.n.is_power_of_two() || params.n < 2 {
        return Err(KeyError::UnsupportedEncryption(format!(
            "scrypt N={} is not a power of two",
            params.n
        )));
    }
    let log_n = u8::try_from(params.n.trailing_zeros()).map_err(|_| too_expensive())?;
    if log_n > limits.log_n_max || params.r > limits.r_max || params.p > limits.p_max {
        return Err(too_expensive());
    }
    scrypt::Params::new(log_n, params.r, params.p)
        .map_err(|e| KeyError::UnsupportedEncryption(format!("scrypt parameters: {e}")))
}

fn derive_key(
    password: &[u8],
    salt: &[u8],
    params: &scrypt::Params,
) -> Result<Zeroizing<[u8; KEY_BYTES]>, KeyError> {
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    scrypt::scrypt(password, salt, params, key.as_mut())
        .map_err(|e| KeyError::UnsupportedEncryption(format!("scrypt: {e}")))?;
    Ok(key)
}
