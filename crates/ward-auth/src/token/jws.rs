//! The JWS compact serialisation, ES256 only.
//!
//! Why not a general JWT crate: a verifier that supports one algorithm has no
//! algorithm switch to confuse. The header's `alg` is compared with `ES256`
//! as a string and never used to pick a key type; there is no HMAC code at
//! all, so `alg: HS256` keyed with the public key cannot verify; `none` is
//! just another unknown value. The whole format is ~100 lines over `p256` and
//! `base64ct`, all of it tested against hand-made attack tokens.

use std::collections::HashMap;

use base64ct::{Base64UrlUnpadded, Encoding};
use p256::ecdsa::Signature;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use serde::{Deserialize, Serialize};

use super::key::{SigningKey, VerifyingKey};
use super::{TokenError, TokenKind};
use crate::echo::Echo;

/// The one algorithm signed and accepted.
pub(crate) const ALG: &str = "ES256";

/// The protected header. Unknown members (`jwk`, `jku`, `x5u`, `x5c`,
/// `crit`, `b64`, ...) are refused rather than ignored: Ward never uses
/// them, and a verifier that ignores `crit` violates RFC 7515.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// Signs `payload` (serialised claims) with a header naming the token kind and the key id.
pub(crate) fn sign(
    key: &SigningKey,
    kind: TokenKind,
    payload: &[u8],
) -> Result<String, TokenError> {
    let header = serde_json::to_vec(&Header {
        alg: ALG,
        typ: kind.typ(),
        kid: key.kid(),
    })
    .map_err(|e| TokenError::Encoding(e.to_string()))?;
    let mut token = Base64UrlUnpadded::encode_string(&header);
    token.push('.');
    token.push_str(&Base64UrlUnpadded::encode_string(payload));
    let signature: Signature = key
        .inner
        .try_sign(token.as_bytes())
        .map_err(|e| TokenError::Encoding(e.to_string()))?;
    // Low-S form, so each token has exactly one valid signature (p256 does not normalise).
    let signature = signature.normalize_s();
    token.push('.');
    token.push_str(&Base64UrlUnpadded::encode_string(&signature.to_bytes()));
    Ok(token)
}

fn decode(part: &str, what: &'static str) -> Result<Vec<u8>, TokenError> {
    Base64UrlUnpadded::decode_vec(part).map_err(|_| TokenError::Malformed(what))
}

/// Checks structure, header, key and signature; returns the payload bytes.
/// Nothing from the payload is read before the signature has been verified.
pub(crate) fn verify(
    token: &str,
    kind: TokenKind,
    keys: &HashMap<String, VerifyingKey>,
    token_bytes_max: usize,
) -> Result<Vec<u8>, TokenError> {
    if token.len() > token_bytes_max {
        return Err(TokenError::TooLarge {
            len: token.len(),
            max: token_bytes_max,
        });
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed(
            "a token has three dot-separated parts",
        ));
    };
    let header_bytes = decode(h, "header is not base64url")?;
    let header: Header<'_> = serde_json::from_slice(&header_bytes)
        .map_err(|_| TokenError::Malformed("header is not {alg, typ, kid}"))?;
    if header.alg != ALG {
        return Err(TokenError::UnsupportedAlgorithm(Echo::of(header.alg)));
    }
    if header.typ != kind.typ() {
        return Err(TokenError::WrongType { expected: kind });
    }
    let key = keys
        .get(header.kid)
        .ok_or_else(|| TokenError::UnknownKey(Echo::of(header.kid)))?;
    let signature_bytes = decode(s, "signature is not base64url")?;
    let signature =
        Signature::from_slice(&signature_bytes).map_err(|_| TokenError::BadSignature)?;
    if signature.normalize_s() != signature {
        return Err(TokenError::BadSignature);
    }
    // The signing input is exactly the bytes received before the second dot.
    let signing_input = &token.as_bytes()[..h.len() + 1 + p.len()];
    key.inner
        .verify(signing_input, &signature)
        .map_err(|_| TokenError::BadSignature)?;
    decode(p, "payload is not base64url")
}
